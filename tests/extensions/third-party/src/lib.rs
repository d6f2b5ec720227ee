//! A third-party build of a plugin named `flannel`, depending only on the SDK:
//! loaded with `--extension`, it replaces the built-in one. Its setup also
//! reports what the sandbox let it see.

use skoop_sdk::host::cluster;
use skoop_sdk::*;

struct ThirdParty;

/// The host's walk stands; the plugin only says where it was asked.
fn note(at: &str) -> HopAnswer {
    vec![Suspicion::new(
        Level::Info,
        format!("third-party flannel handled {at}"),
    )]
    .into()
}

impl CniPlugin for ThirdParty {
    fn metadata() -> Metadata {
        Metadata {
            name: "flannel".into(),
            version: "9.9.9-third-party".into(),
            description: "a vendor's own flannel plugin".into(),
            config: vec![ConfigKey::new(
                "flannel-greeting",
                "a word to log",
                Some("hello"),
            )],
            detect_daemonsets: vec!["kube-flannel-ds".into()],
            ..Metadata::default()
        }
    }

    fn setup() -> Result<(Self, Vec<Suspicion>)> {
        let env = std::env::vars().count();
        let args = std::env::args().count();
        let file = match std::fs::read("/etc/hostname") {
            Ok(_) => "readable".to_string(),
            Err(e) => format!("denied ({})", e.kind()),
        };
        let greeting = cluster::config("flannel-greeting").unwrap_or_default();
        let probe = format!(
            "sandbox probe: {env} environment variables, {args} arguments, /etc/hostname {file}; greeting {greeting}"
        );
        // A hostile message: clear the screen, retitle the terminal, fake a line.
        let hostile = "terminal probe: \u{1b}[2J\u{1b}]0;pwned\u{7}\r\nCRITICAL fake";
        Ok((
            ThirdParty,
            vec![
                Suspicion::new(Level::Info, probe),
                Suspicion::new(Level::Info, hostile.to_string()),
            ],
        ))
    }

    fn pod_send(&self, pod: &Pod, _: &KernelWalk) -> Result<HopAnswer> {
        let mut f = Suspicions::new();
        VethPod::new(None, None).check(pod, &mut f)?;
        let mut answer = note(&pod.id());
        if let HopAnswer::Checks { suspicions, .. } = &mut answer {
            suspicions.extend(f.into_suspicions());
        }
        Ok(answer)
    }

    fn pod_receive(&self, pod: &Pod, _: &KernelWalk) -> Result<HopAnswer> {
        Ok(note(&pod.id()))
    }

    fn to_pod(&self, node: &Node, _: &KernelWalk, _: &Pod) -> Result<HopAnswer> {
        Ok(note(&node.name))
    }

    fn to_host(&self, node: &Node, _: &KernelWalk, _: &Node) -> Result<HopAnswer> {
        Ok(note(&node.name))
    }

    fn to_external(&self, node: &Node, _: &KernelWalk) -> Result<HopAnswer> {
        Ok(note(&node.name))
    }

    fn serve(&self, node: &Node, _: &KernelWalk) -> Result<HopAnswer> {
        Ok(note(&node.name))
    }
}

export_cni_plugin!(ThirdParty);
