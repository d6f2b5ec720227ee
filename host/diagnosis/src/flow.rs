//! Flows from what a person types, and the demos' default flows.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::Result;
use skoop_engine::flow::Flow;
use skoop_error::bad_input;
use skoop_netstack::packet::Protocol;

/// `value` as the address `what` needs (`-s`, `-d`, a form field).
pub fn ip(what: &str, value: &str) -> Result<Ipv4Addr> {
    match value.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => Ok(ip),
        Ok(IpAddr::V6(_)) => Err(bad_input(format!(
            "{what} {value}: IPv6 is not supported yet; give an IPv4 address"
        ))),
        Err(_) => Err(bad_input(format!(
            "{what} {value:?} is not an IPv4 address"
        ))),
    }
}

/// A flow from `-s`, `-d`, `-p` and the protocol.
pub fn flow(src: &str, dst: &str, port: u16, protocol: Protocol) -> Result<Flow> {
    Ok(Flow {
        src: ip("-s", src)?,
        dst: ip("-d", dst)?,
        dport: port,
        protocol,
    })
}

/// The flow a built-in demo diagnoses when none is given.
pub fn demo_flow(name: &str) -> Result<Flow> {
    let demo = skoop_demos::find(name)?.ok_or_else(|| unknown_demo(name))?;
    let f = &demo.about.flow;
    let protocol = Protocol::parse(&f.protocol).ok_or_else(|| {
        anyhow::anyhow!(
            "host/demos/{}/demo.json: flow.protocol {:?} is not a protocol (tcp, udp, sctp)",
            demo.files.dir,
            f.protocol
        )
    })?;
    flow(&f.src, &f.dst, f.port, protocol)
}

pub(crate) fn unknown_demo(name: &str) -> anyhow::Error {
    let names = skoop_demos::all()
        .map(|all| {
            all.iter()
                .map(|d| d.about.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    bad_input(format!(
        "no built-in demo {name:?}; the demos are: {names} (--demo list)"
    ))
}
