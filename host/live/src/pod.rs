//! The collector pod: its manifest, and what its status says.

use serde_json::{Value, json};

/// Label on every collector pod.
pub const APP_LABEL: &str = "skoop-collector";
/// The collector container's name.
pub const CONTAINER: &str = "collect";

/// A pod name for `node`: DNS-1123, at most 63 characters, unique per run.
pub fn name(node: &str, run_id: &str) -> String {
    let mut base: String = node
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '-' }
        })
        .collect();
    base.truncate(63 - "skoop-".len() - 1 - run_id.len());
    let base = base.trim_matches('-');
    format!("skoop-{base}-{run_id}")
}

/// The manifest: privileged, host network and PID, pinned to the node,
/// tolerating every taint, running `skoop collect --node NODE` once.
pub fn manifest(name: &str, namespace: &str, node: &str, image: &str, run_id: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": APP_LABEL,
                "app.kubernetes.io/managed-by": "skoop",
                "skoop.io/run": run_id,
            },
            "annotations": {"skoop.io/node": node},
        },
        "spec": {
            "nodeName": node,
            "hostNetwork": true,
            "hostPID": true,
            "dnsPolicy": "ClusterFirstWithHostNet",
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 0,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": CONTAINER,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["skoop", "collect", "--node", node],
                "securityContext": {"privileged": true},
                "volumeMounts": [
                    {"name": "run", "mountPath": "/run", "mountPropagation": "HostToContainer"},
                ],
            }],
            "volumes": [{"name": "run", "hostPath": {"path": "/run"}}],
        },
    })
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

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// Read a pod's status.
pub fn state(pod: &Value) -> State {
    let phase = s(pod, "/status/phase");
    let container = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .and_then(|cs| cs.first());
    match phase {
        "Succeeded" => return State::Done,
        "Failed" => {
            let why = container
                .and_then(|c| c.pointer("/state/terminated"))
                .map(|t| {
                    format!(
                        "{} (exit code {}){}",
                        s(t, "/reason"),
                        t.get("exitCode").and_then(Value::as_i64).unwrap_or(-1),
                        match s(t, "/message") {
                            "" => String::new(),
                            m => format!(": {}", m.trim()),
                        }
                    )
                })
                .unwrap_or_else(|| {
                    format!("{} {}", s(pod, "/status/reason"), s(pod, "/status/message"))
                });
            return State::Failed(format!("Failed: {}", why.trim()));
        }
        _ => {}
    }
    if let Some(cond) = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| s(c, "/type") == "PodScheduled" && s(c, "/status") == "False")
        })
        && s(cond, "/reason") == "Unschedulable"
    {
        return State::Failed(format!("Unschedulable: {}", s(cond, "/message")));
    }
    if let Some(waiting) = container.and_then(|c| c.pointer("/state/waiting")) {
        let reason = s(waiting, "/reason");
        if HOPELESS.contains(&reason) {
            return State::Failed(format!("{reason}: {}", s(waiting, "/message")));
        }
        if !reason.is_empty() {
            return State::Waiting(format!("{phase}, {reason}"));
        }
    }
    if let Some(t) = container.and_then(|c| c.pointer("/state/terminated")) {
        // Terminated but the phase is not final yet.
        if t.get("exitCode").and_then(Value::as_i64) == Some(0) {
            return State::Done;
        }
    }
    let phase = if phase.is_empty() { "Pending" } else { phase };
    State::Waiting(phase.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        let n = name("Node_1.example.com", "ab12c");
        assert_eq!(n, "skoop-node-1-example-com-ab12c");
        let long = name(&"x".repeat(300), "ab12c");
        assert!(long.len() <= 63, "{long}");
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
