//! A fake CRI runtime on a unix socket, for testing the client.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::rt::{TokioExecutor, TokioIo};
use tonic::body::Body;
use tonic::server::{Grpc, UnaryService};
use tonic::{Request, Response, Status};

use super::client::list_sandboxes;
use super::proto::*;

#[derive(Clone)]
struct FakeCri;

struct List;
impl UnaryService<ListPodSandboxRequest> for List {
    type Response = ListPodSandboxResponse;
    type Future = std::future::Ready<Result<Response<Self::Response>, Status>>;
    fn call(&mut self, req: Request<ListPodSandboxRequest>) -> Self::Future {
        let ready_only = req
            .get_ref()
            .filter
            .as_ref()
            .and_then(|f| f.state.as_ref())
            .map(|s| s.state);
        let sb = |id: &str, ns: &str, name: &str| PodSandbox {
            id: id.into(),
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: id.into(),
                namespace: ns.into(),
                attempt: 0,
            }),
            state: SANDBOX_READY,
        };
        let items = vec![
            sb("a", "default", "web-1"),
            sb("b", "kube-system", "coredns-1"),
            sb("c", "kube-flannel", "kube-flannel-ds-x"),
            sb("d", "default", "broken"),
        ];
        assert_eq!(
            ready_only,
            Some(SANDBOX_READY),
            "the client asks for ready sandboxes only"
        );
        std::future::ready(Ok(Response::new(ListPodSandboxResponse { items })))
    }
}

struct StatusOf;
impl UnaryService<PodSandboxStatusRequest> for StatusOf {
    type Response = PodSandboxStatusResponse;
    type Future = std::future::Ready<Result<Response<Self::Response>, Status>>;
    fn call(&mut self, req: Request<PodSandboxStatusRequest>) -> Self::Future {
        let req = req.into_inner();
        assert!(req.verbose, "the client asks for verbose status");
        let mode = |network| LinuxPodSandboxStatus {
            namespaces: Some(Namespace {
                options: Some(NamespaceOption { network }),
            }),
        };
        let info = |json: &str| HashMap::from([("info".to_string(), json.to_string())]);
        let (linux, info) = match req.pod_sandbox_id.as_str() {
            // containerd: the OCI spec names the netns path.
            "a" => (
                mode(0),
                info(
                    r#"{"pid":4242,"runtimeSpec":{"linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/var/run/netns/cni-1234"}]}}}"#,
                ),
            ),
            // cri-dockerd-like: only the sandbox pid.
            "b" => (mode(0), info(r#"{"pid":777}"#)),
            // hostNetwork: skipped.
            "c" => (mode(NAMESPACE_MODE_NODE), info(r#"{"pid":1}"#)),
            _ => return std::future::ready(Err(Status::not_found("sandbox gone"))),
        };
        let status = PodSandboxStatus {
            id: req.pod_sandbox_id,
            metadata: None,
            state: SANDBOX_READY,
            linux: Some(linux),
        };
        std::future::ready(Ok(Response::new(PodSandboxStatusResponse {
            status: Some(status),
            info,
        })))
    }
}

impl tower::Service<http::Request<Body>> for FakeCri {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let path = req.uri().path().to_string();
        Box::pin(async move {
            Ok(match path.as_str() {
                LIST_POD_SANDBOX => {
                    Grpc::new(tonic_prost::ProstCodec::default())
                        .unary(List, req)
                        .await
                }
                POD_SANDBOX_STATUS => {
                    Grpc::new(tonic_prost::ProstCodec::default())
                        .unary(StatusOf, req)
                        .await
                }
                _ => Status::unimplemented(path).into_http(),
            })
        })
    }
}

#[test]
fn sandboxes_and_their_netns_come_from_the_runtime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("containerd.sock");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(async { tokio::net::UnixListener::bind(&sock) })
        .expect("bind");
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| {
                        tower::Service::call(&mut FakeCri, req.map(Body::new))
                    });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let listing = list_sandboxes(&sock).expect("list");
    let got: Vec<(String, String, String)> = listing
        .sandboxes
        .iter()
        .map(|s| {
            (
                s.namespace.clone(),
                s.name.clone(),
                s.netns.display().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "default".into(),
                "web-1".into(),
                "/var/run/netns/cni-1234".into()
            ),
            (
                "kube-system".into(),
                "coredns-1".into(),
                "/proc/777/ns/net".into()
            ),
        ]
    );
    assert_eq!(listing.skipped.len(), 1);
    assert!(
        listing.skipped[0].contains("default/broken")
            && listing.skipped[0].contains("sandbox gone"),
        "{:?}",
        listing.skipped
    );
    rt.shutdown_background();
}
