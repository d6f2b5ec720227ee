//! The collector pod: its manifest, and what its status says.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, HostPathVolumeSource, Pod, PodSpec, PodStatus, SecurityContext, Toleration, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Label on every collector pod.
pub const APP_LABEL: &str = "skoop-collector";
/// The collector container's name.
pub const CONTAINER: &str = "collect";

/// A pod name for `node`: DNS-1123, at most 63 characters, unique per run.
pub fn name(node: &str, run_id: &str) -> String {
    named("skoop-", node, run_id)
}

/// The name of the pod that probes from `node` (`--probe`): not the
/// collector's, which may exist on the same node in the same run.
pub fn probe_name(node: &str, run_id: &str) -> String {
    named("skoop-probe-", node, run_id)
}

/// The collector's command: dump the node.
pub fn collect_command(node: &str) -> Vec<String> {
    ["skoop", "collect", "--node", node]
        .map(String::from)
        .to_vec()
}

/// The probe's command: `skoop collect probe ARGS`.
pub fn probe_command(args: &[String]) -> Vec<String> {
    let mut c: Vec<String> = ["skoop", "collect", "probe"].map(String::from).to_vec();
    c.extend_from_slice(args);
    c
}

fn named(prefix: &str, node: &str, run_id: &str) -> String {
    let mut base: String = node
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '-' }
        })
        .collect();
    base.truncate(63usize.saturating_sub(prefix.len() + 1 + run_id.len()));
    let base = base.trim_matches('-');
    format!("{prefix}{base}-{run_id}")
}

/// The manifest: privileged, host network and PID, pinned to the node,
/// tolerating every taint, running `command` once (`skoop collect --node
/// NODE`, or a probe: the same rights reach the pods' netns through CRI).
pub fn manifest(
    name: &str,
    namespace: &str,
    node: &str,
    image: &str,
    run_id: &str,
    command: Vec<String>,
) -> Pod {
    let labels = [
        ("app.kubernetes.io/name", APP_LABEL),
        ("app.kubernetes.io/managed-by", "skoop"),
        ("skoop.io/run", run_id),
    ];
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            annotations: Some(BTreeMap::from([("skoop.io/node".into(), node.into())])),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            host_network: Some(true),
            host_pid: Some(true),
            dns_policy: Some("ClusterFirstWithHostNet".into()),
            restart_policy: Some("Never".into()),
            automount_service_account_token: Some(false),
            termination_grace_period_seconds: Some(0),
            tolerations: Some(vec![Toleration {
                operator: Some("Exists".into()),
                ..Toleration::default()
            }]),
            containers: vec![Container {
                name: CONTAINER.into(),
                image: Some(image.into()),
                image_pull_policy: Some("IfNotPresent".into()),
                command: Some(command),
                security_context: Some(SecurityContext {
                    privileged: Some(true),
                    ..SecurityContext::default()
                }),
                volume_mounts: Some(vec![VolumeMount {
                    name: "run".into(),
                    mount_path: "/run".into(),
                    mount_propagation: Some("HostToContainer".into()),
                    ..VolumeMount::default()
                }]),
                ..Container::default()
            }],
            volumes: Some(vec![Volume {
                name: "run".into(),
                host_path: Some(HostPathVolumeSource {
                    path: "/run".into(),
                    type_: None,
                }),
                ..Volume::default()
            }]),
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// Where a collector pod is.
#[derive(Debug, PartialEq, Eq)]
pub enum State {
    /// Still starting; the text says why (phase and reason).
    Waiting(String),
    /// The dump is in its log.
    Done,
    /// It will never produce a dump; the text is the status reason.
    Failed(String),
}

/// Container waiting reasons that will not resolve by waiting.
const HOPELESS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

fn text(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

/// Read a pod's status.
pub fn state(pod: &Pod) -> State {
    let none = PodStatus::default();
    let status = pod.status.as_ref().unwrap_or(&none);
    let phase = text(&status.phase);
    let container = status
        .container_statuses
        .as_deref()
        .and_then(<[_]>::first)
        .and_then(|c| c.state.as_ref());
    let terminated = container.and_then(|c| c.terminated.as_ref());
    match phase {
        "Succeeded" => return State::Done,
        "Failed" => {
            let why = terminated
                .map(|t| {
                    format!(
                        "{} (exit code {}){}",
                        text(&t.reason),
                        t.exit_code,
                        match text(&t.message).trim() {
                            "" => String::new(),
                            m => format!(": {m}"),
                        }
                    )
                })
                .unwrap_or_else(|| format!("{} {}", text(&status.reason), text(&status.message)));
            return State::Failed(format!("Failed: {}", why.trim()));
        }
        _ => {}
    }
    if let Some(cond) = status.conditions.as_deref().and_then(|cs| {
        cs.iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
    }) && text(&cond.reason) == "Unschedulable"
    {
        return State::Failed(format!("Unschedulable: {}", text(&cond.message)));
    }
    if let Some(waiting) = container.and_then(|c| c.waiting.as_ref()) {
        let reason = text(&waiting.reason);
        if HOPELESS.contains(&reason) {
            return State::Failed(format!("{reason}: {}", text(&waiting.message)));
        }
        if !reason.is_empty() {
            return State::Waiting(format!("{phase}, {reason}"));
        }
    }
    // Terminated but the phase is not final yet.
    if terminated.is_some_and(|t| t.exit_code == 0) {
        return State::Done;
    }
    let phase = if phase.is_empty() { "Pending" } else { phase };
    State::Waiting(phase.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn state(v: &Value) -> State {
        super::state(&serde_json::from_value(v.clone()).unwrap())
    }

    #[test]
    fn manifest_is_a_privileged_pinned_pod() {
        let pod = manifest(
            "skoop-n1-ab12c",
            "skoop",
            "n1",
            "img:1",
            "ab12c",
            collect_command("n1"),
        );
        let v = serde_json::to_value(&pod).unwrap();
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["kind"], "Pod");
        assert_eq!(v["metadata"]["labels"]["skoop.io/run"], "ab12c");
        assert_eq!(v["metadata"]["annotations"]["skoop.io/node"], "n1");
        assert_eq!(v["spec"]["nodeName"], "n1");
        assert_eq!(v["spec"]["hostPID"], true);
        assert_eq!(v["spec"]["tolerations"], json!([{"operator": "Exists"}]));
        let c = &v["spec"]["containers"][0];
        assert_eq!(c["command"], json!(["skoop", "collect", "--node", "n1"]));
        assert_eq!(c["securityContext"], json!({"privileged": true}));
        assert_eq!(
            v["spec"]["volumes"],
            json!([{"name": "run", "hostPath": {"path": "/run"}}])
        );
    }

    #[test]
    fn names_are_dns_labels() {
        let n = name("Node_1.example.com", "ab12c");
        assert_eq!(n, "skoop-node-1-example-com-ab12c");
        let long = name(&"x".repeat(300), "ab12c");
        assert!(long.len() <= 63, "{long}");
        assert_eq!(probe_name("node-1", "ab12c"), "skoop-probe-node-1-ab12c");
        let long = probe_name(&"x".repeat(300), "ab12c");
        assert!(long.len() <= 63, "{long}");
        assert_eq!(
            probe_command(&["--dst".into(), "10.0.0.1".into()]),
            ["skoop", "collect", "probe", "--dst", "10.0.0.1"]
        );
    }

    #[test]
    fn states_are_read() {
        let unsched = json!({"status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/3 nodes are available"}]}});
        assert_eq!(
            state(&unsched),
            State::Failed("Unschedulable: 0/3 nodes are available".into())
        );
        let pull = json!({"status": {"phase": "Pending", "containerStatuses": [
            {"state": {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}}]}});
        assert!(matches!(state(&pull), State::Failed(m) if m.starts_with("ImagePullBackOff")));
        let crash = json!({"status": {"phase": "Failed", "containerStatuses": [
            {"state": {"terminated": {"reason": "Error", "exitCode": 2}}}]}});
        assert_eq!(
            state(&crash),
            State::Failed("Failed: Error (exit code 2)".into())
        );
        assert_eq!(
            state(&json!({"status": {"phase": "Succeeded"}})),
            State::Done
        );
        assert_eq!(state(&json!({})), State::Waiting("Pending".into()));
    }
}
