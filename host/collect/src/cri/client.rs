//! A minimal CRI gRPC client over the runtime's unix socket: list the ready
//! pod sandboxes and find each one's network namespace.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use super::proto::{
    LIST_POD_SANDBOX, ListPodSandboxRequest, ListPodSandboxResponse, NAMESPACE_MODE_NODE,
    POD_SANDBOX_STATUS, PodSandboxFilter, PodSandboxStateValue, PodSandboxStatusRequest,
    PodSandboxStatusResponse, SANDBOX_READY,
};

/// A ready pod sandbox with its own network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    pub namespace: String,
    pub name: String,
    pub netns: PathBuf,
}

/// What listing the sandboxes gave: the pods found, and those skipped with why.
#[derive(Debug, Default)]
pub struct Listing {
    pub sandboxes: Vec<Sandbox>,
    pub skipped: Vec<String>,
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// List the pod sandboxes of the runtime behind `socket` (blocking).
pub fn list_sandboxes(socket: &Path) -> Result<Listing> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the CRI client runtime")?;
    rt.block_on(async {
        tokio::time::timeout(TIMEOUT, list(socket))
            .await
            .map_err(|_| {
                anyhow!(
                    "CRI socket {} did not answer within {TIMEOUT:?}",
                    socket.display()
                )
            })?
    })
}

async fn connect(socket: &Path) -> Result<Channel> {
    let path = socket.to_path_buf();
    // The URI is required by the API but unused: the connector dials the socket.
    Endpoint::try_from("http://cri.invalid")
        .context("building the CRI endpoint")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { UnixStream::connect(path).await.map(TokioIo::new) }
        }))
        .await
        .with_context(|| format!("connecting to CRI socket {}", socket.display()))
}

async fn unary<Req, Resp>(channel: &Channel, path: &'static str, req: Req) -> Result<Resp>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| anyhow!("CRI channel not ready: {e}"))?;
    let resp = grpc
        .unary(
            tonic::Request::new(req),
            http::uri::PathAndQuery::from_static(path),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .map_err(|s| anyhow!("CRI {path} failed: {}: {}", s.code(), s.message()))?;
    Ok(resp.into_inner())
}

async fn list(socket: &Path) -> Result<Listing> {
    let channel = connect(socket).await?;
    let request = ListPodSandboxRequest {
        filter: Some(PodSandboxFilter {
            id: String::new(),
            state: Some(PodSandboxStateValue {
                state: SANDBOX_READY,
            }),
        }),
    };
    let listed: ListPodSandboxResponse = unary(&channel, LIST_POD_SANDBOX, request).await?;
    let mut out = Listing::default();
    for sb in listed.items {
        let Some(meta) = sb.metadata.clone() else {
            out.skipped.push(format!("sandbox {}: no metadata", sb.id));
            continue;
        };
        let key = format!("{}/{}", meta.namespace, meta.name);
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: sb.id.clone(),
            verbose: true,
        };
        let status: PodSandboxStatusResponse = match unary(&channel, POD_SANDBOX_STATUS, req).await
        {
            Ok(s) => s,
            Err(e) => {
                out.skipped.push(format!("{key}: {e:#}"));
                continue;
            }
        };
        let host_network = status
            .status
            .as_ref()
            .and_then(|s| s.linux.as_ref())
            .and_then(|l| l.namespaces.as_ref())
            .and_then(|n| n.options.as_ref())
            .is_some_and(|o| o.network == NAMESPACE_MODE_NODE);
        if host_network {
            continue;
        }
        match netns_from_info(&status) {
            Some(netns) => out.sandboxes.push(Sandbox {
                namespace: meta.namespace,
                name: meta.name,
                netns,
            }),
            None => out.skipped.push(format!(
                "{key}: the runtime's verbose status names no network namespace"
            )),
        }
    }
    out.sandboxes
        .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(out)
}

/// The sandbox's netns from the verbose `info`: the OCI spec's network
/// namespace path (containerd), else the sandbox process's `/proc/PID/ns/net`
/// (containerd and cri-dockerd both report `pid`).
pub fn netns_from_info(status: &PodSandboxStatusResponse) -> Option<PathBuf> {
    let info: serde_json::Value = serde_json::from_str(status.info.get("info")?).ok()?;
    let spec_path = info
        .pointer("/runtimeSpec/linux/namespaces")
        .and_then(|n| n.as_array())
        .and_then(|ns| {
            ns.iter()
                .find(|n| n.get("type").and_then(|t| t.as_str()) == Some("network"))
                .and_then(|n| n.get("path"))
                .and_then(|p| p.as_str())
                .filter(|p| !p.is_empty())
        });
    if let Some(p) = spec_path {
        return Some(PathBuf::from(p));
    }
    let pid = info
        .get("pid")
        .and_then(|p| p.as_u64())
        .filter(|p| *p > 0)?;
    Some(PathBuf::from(format!("/proc/{pid}/ns/net")))
}
