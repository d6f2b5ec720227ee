//! What calling an extension costs: instantiating it from its pre-linked
//! InstancePre, re-creating it after a trap, an export call, a host import,
//! and recording.
//!
//! `cargo bench -p skoop-wasm --bench calls` (release build; the built-in
//! flannel plugin on the built-in demo cluster).

use std::sync::Arc;
use std::time::{Duration, Instant};

use skoop_engine::bundle;
use skoop_engine::cluster::Retain;
use skoop_engine::facts::Facts;
use skoop_engine::path::{NetNode, NetNodeKind};
use skoop_engine::plugin::{Plugin, Role};
use skoop_engine::settings::{ProxyMode, Settings};
use skoop_engine::walk::{Arrival, Walker};
use skoop_netstack::packet::{Packet, Protocol};
use skoop_wasm::hostcalls::{CallLog, ExtensionCalls};
use skoop_wasm::runtime::Runtime;
use skoop_wasm::sandbox::Limits;
use skoop_wasm::{Extension, Lending, Registry};

fn per_op(n: u32, f: impl FnMut()) -> Duration {
    let mut f = f;
    // Warm up, then time.
    for _ in 0..(n / 10).max(1) {
        f();
    }
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed() / n
}

fn facts() -> Arc<Facts> {
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demos/flannel");
    let b = bundle::load_dir(&demo, Retain::with_reads(["v1/ConfigMap"])).expect("the demo loads");
    let netstacks = b.nodes.netstacks(&b.view);
    let nodes: Vec<String> = b.view.nodes.keys().cloned().collect();
    netstacks.prefetch(&nodes);
    Arc::new(Facts::new(
        b.view,
        netstacks,
        Settings {
            network_plugin: "flannel".into(),
            cloud_provider: "generic".into(),
            proxy_mode: ProxyMode::Iptables,
            cluster_cidr: Some("10.244.0.0/16".parse().expect("cidr")),
            masquerade_mark: None,
            masquerade_all: false,
        },
    ))
}

fn state(ext: &Extension, facts: &Arc<Facts>) -> Lending {
    Lending {
        facts: Some(facts.clone()),
        reads: ext.info.reads.clone(),
        ..Lending::default()
    }
}

fn main() {
    let registry = Registry::load(Runtime::new(None).expect("engine"), &[]).expect("built-ins");
    let ext = &registry.plugins["flannel"];
    let facts = facts();
    let limits = Limits::default();

    let pre = per_op(200, || {
        registry
            .plugin(ext, state(ext, &facts), None, limits)
            .expect("instantiate");
    });
    println!(
        "instantiate flannel from its InstancePre:          {:>8.1} µs",
        pre.as_secs_f64() * 1e6
    );

    let mut plugin = registry
        .plugin(ext, state(ext, &facts), None, limits)
        .expect("instantiate");
    plugin.setup().expect("setup");
    let setup = per_op(50, || {
        let mut p = registry
            .plugin(ext, state(ext, &facts), None, limits)
            .expect("instantiate");
        p.setup().expect("setup");
    });
    println!(
        "re-create after a trap (InstancePre + setup):      {:>8.1} µs",
        setup.as_secs_f64() * 1e6
    );

    // An export call that makes no import: the round trip alone.
    let owner = per_op(20_000, || {
        plugin
            .address_owner("192.0.2.1".parse().expect("ip"))
            .expect("address-owner");
    });
    println!(
        "export call plugin.address-owner (no import):      {:>8.2} µs",
        owner.as_secs_f64() * 1e6
    );

    // pod-send from client-1: the host walks the pod's kernel, and the
    // plugin checks the pod's veth against the walk.
    let pod = facts.view.pods["default/client-1"].clone();
    let packet = Packet {
        src: "10.244.0.5".parse().expect("ip"),
        sport: 40000,
        dst: "10.244.1.7".parse().expect("ip"),
        dport: 8080,
        protocol: Protocol::Tcp,
        mark: 0,
        encap: None,
        reply: false,
        tos: 0,
        size: 1450,
        icmp: None,
    };
    let at = NetNode {
        kind: NetNodeKind::Pod,
        id: pod.id(),
    };
    let walk = Walker {
        facts: &facts,
        plugin: &mut plugin,
    }
    .walk(&at, &Arrival::originated(packet))
    .expect("the host's walk");
    let walked = per_op(2_000, || {
        Walker {
            facts: &facts,
            plugin: &mut plugin,
        }
        .walk(&at, &Arrival::originated(packet))
        .expect("the host's walk");
    });
    println!(
        "the host's kernel walk of client-1 (no call):      {:>8.2} µs",
        walked.as_secs_f64() * 1e6
    );
    let before = plugin.import_calls();
    plugin.hop(Role::PodSend(&pod), &walk).expect("pod-send");
    let imports = plugin.import_calls() - before;
    let send = per_op(2_000, || {
        plugin.hop(Role::PodSend(&pod), &walk).expect("pod-send");
    });
    println!(
        "export call plugin.pod-send ({imports} imports):             {:>8.2} µs ({:.2} µs per import, host work included)",
        send.as_secs_f64() * 1e6,
        (send.saturating_sub(owner)).as_secs_f64() * 1e6 / imports.max(1) as f64
    );

    // The same with every import recorded (--record-host-calls).
    *plugin.calls() = Some(CallLog::Record {
        current: Vec::new(),
        log: Arc::new(std::sync::Mutex::new(ExtensionCalls::default())),
    });
    let recorded = per_op(2_000, || {
        plugin.hop(Role::PodSend(&pod), &walk).expect("pod-send");
    });
    println!(
        "the same, recording host calls:                    {:>8.2} µs",
        recorded.as_secs_f64() * 1e6
    );
}
