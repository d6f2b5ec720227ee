//! A small client of Alibaba Cloud's RPC-style APIs (ECS `2014-05-26`, VPC
//! `2016-04-28`, SLB `2014-05-15`): `POST /?<sorted query>` with an empty
//! body, the action and version in `x-acs-*` headers, signed with
//! ACS3-HMAC-SHA256, and a cache of every answer (errors too) for the life of
//! the component, so each request is made once per diagnosis.
//!
//! A recording made by `skoop snapshot` is matched on method, URL and body
//! only, so every parameter is deterministic (the nonce and date are headers)
//! and no two actions this provider calls send the same URL and body.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::SystemTime;

use serde_json::Value;

use crate::model;
use crate::sign::{self, Credentials, Unsigned};

/// An HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// Replaying a recording that lacks the request.
    NotRecorded,
    /// The host refused the request, or the transport failed.
    Failed(String),
}

/// Sends requests: wasi:http in the component, a fake in tests.
pub trait Transport {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError>;
}

/// Why a fact could not be fetched from the cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The API answered an error.
    Api {
        api: String,
        code: String,
        message: String,
    },
    /// Replaying a recording that lacks the request.
    NotRecorded,
    /// No credentials were configured and the endpoint wants them.
    NoCredentials,
    /// No region was configured or found on the nodes.
    NoRegion,
    /// Anything else (transport, unexpected answer).
    Other(String),
}

/// The fetch result of one cloud fact.
pub type Fetch<T> = Result<T, FetchError>;

/// One RPC product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Api {
    /// The first label of the regional endpoint, and the name in messages.
    pub product: &'static str,
    pub version: &'static str,
}

pub const ECS: Api = Api {
    product: "ecs",
    version: "2014-05-26",
};
pub const VPC: Api = Api {
    product: "vpc",
    version: "2016-04-28",
};
pub const SLB: Api = Api {
    product: "slb",
    version: "2014-05-15",
};

/// Where and as whom to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub region: String,
    /// One endpoint for every product (`--aliyun-endpoint-url`).
    pub endpoint: Option<String>,
    pub credentials: Option<Credentials>,
}

/// Error codes that mean the request was not (correctly) signed.
fn is_auth_error(code: &str) -> bool {
    matches!(
        code,
        "MissingAccessKeyId"
            | "MissingAuthorization"
            | "IncompleteSignature"
            | "SignatureDoesNotMatch"
            | "InvalidAccessKeyId.NotFound"
            | "InvalidAccessKeyId"
            | "InvalidAccessKeyId.Inactive"
            | "InvalidSecurityToken.Expired"
            | "InvalidSecurityToken.Malformed"
            | "InvalidSecurityToken.MismatchWithAccessKey"
    )
}

/// The RPC client.
pub struct Client<T> {
    settings: Settings,
    transport: T,
    clock: fn() -> SystemTime,
    cache: RefCell<HashMap<String, Fetch<Rc<Value>>>>,
    /// Which action each distinct request (URL and body) was made for.
    actions: RefCell<HashMap<String, String>>,
    sent: RefCell<Vec<HttpRequest>>,
    counter: Cell<u64>,
}

impl<T: Transport> Client<T> {
    pub fn new(settings: Settings, transport: T) -> Self {
        Client {
            settings,
            transport,
            clock: SystemTime::now,
            cache: RefCell::new(HashMap::new()),
            actions: RefCell::new(HashMap::new()),
            sent: RefCell::new(vec![]),
            counter: Cell::new(0),
        }
    }

    /// Sign with this clock (tests).
    pub fn with_clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.clock = clock;
        self
    }

    /// The requests sent so far (tests count them).
    pub fn sent(&self) -> Vec<HttpRequest> {
        self.sent.borrow().clone()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The endpoint of `api`, without a trailing `/`.
    pub fn endpoint(&self, api: Api) -> String {
        match &self.settings.endpoint {
            Some(e) => {
                let e = e.trim().trim_end_matches('/');
                if e.contains("://") {
                    e.to_string()
                } else {
                    format!("https://{e}")
                }
            }
            None => format!(
                "https://{}.{}.aliyuncs.com",
                api.product, self.settings.region
            ),
        }
    }

    /// `text` without credentials.
    pub fn redact(&self, text: &str) -> String {
        match &self.settings.credentials {
            Some(c) => c.redact(text),
            None => text.to_string(),
        }
    }

    /// One call of `action` with `params` (plus `RegionId`), from the cache
    /// when asked before.
    pub fn call(&self, api: Api, action: &str, params: &[(&str, String)]) -> Fetch<Rc<Value>> {
        if self.settings.region.is_empty() {
            return Err(FetchError::NoRegion);
        }
        let mut all: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        all.push(("RegionId".into(), self.settings.region.clone()));
        let query = sign::canonical_query(&all);
        let url = format!("{}/?{query}", self.endpoint(api));
        let key = format!("POST {url}");
        let tagged = format!("{}:{action}", api.product);
        {
            let mut actions = self.actions.borrow_mut();
            match actions.get(&key) {
                Some(other) if *other != tagged => {
                    return Err(FetchError::Other(format!(
                        "{action} would send the very request {other} sent, which a recording cannot tell apart"
                    )));
                }
                Some(_) => {}
                None => {
                    actions.insert(key.clone(), tagged);
                }
            }
        }
        if let Some(hit) = self.cache.borrow().get(&key) {
            return hit.clone();
        }
        let answer = self.send(api, action, &url, &query).map(Rc::new);
        self.cache.borrow_mut().insert(key, answer.clone());
        answer
    }

    /// A nonce unique to this component's requests; it is a header only, so
    /// recordings still match.
    fn nonce(&self, date: &str, url: &str) -> String {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        let t = (self.clock)()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        sign::sha256_hex(format!("{t}/{n}/{date}/{url}").as_bytes())[..32].to_string()
    }

    fn send(&self, api: Api, action: &str, url: &str, query: &str) -> Fetch<Value> {
        let host = url
            .split_once("://")
            .map(|(_, r)| r.split(['/', '?']).next().unwrap_or(""))
            .unwrap_or("")
            .to_string();
        let date = sign::iso8601((self.clock)());
        let nonce = self.nonce(&date, url);
        let credentials = self.settings.credentials.as_ref();
        let unsigned = Unsigned {
            method: "POST",
            host: &host,
            query,
            action,
            version: api.version,
            date: &date,
            nonce: &nonce,
            body: b"",
        };
        let headers = sign::sign(&unsigned, credentials);
        let request = HttpRequest {
            method: "POST".into(),
            url: url.to_string(),
            headers,
            body: vec![],
        };
        self.sent.borrow_mut().push(request.clone());
        let response = match self.transport.send(&request) {
            Ok(r) => r,
            Err(TransportError::NotRecorded) => return Err(FetchError::NotRecorded),
            Err(TransportError::Failed(m)) => return Err(FetchError::Other(self.redact(&m))),
        };
        let text = String::from_utf8_lossy(&response.body).into_owned();
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        let what = format!("{} {action}", api.product.to_ascii_uppercase());
        if !(200..300).contains(&response.status) {
            let code = parsed
                .as_ref()
                .map(|v| model::text(v, "Code"))
                .unwrap_or_default();
            let message = parsed
                .as_ref()
                .map(|v| model::text(v, "Message"))
                .unwrap_or_default();
            if credentials.is_none() && (code.is_empty() || is_auth_error(&code)) {
                return Err(FetchError::NoCredentials);
            }
            if code.is_empty() {
                return Err(FetchError::Other(format!(
                    "{what}: HTTP {} from {host}",
                    response.status
                )));
            }
            return Err(FetchError::Api {
                api: what,
                code: self.redact(&code),
                message: self.redact(&message),
            });
        }
        match parsed {
            Some(v @ Value::Object(_)) => Ok(v),
            _ if credentials.is_none() => Err(FetchError::NoCredentials),
            _ => Err(FetchError::Other(format!(
                "{what}: the answer from {host} is not JSON"
            ))),
        }
    }

    /// Every page of a `PageNumber`/`PageSize` API, parsed with `parse`.
    pub fn paged<R>(
        &self,
        api: Api,
        action: &str,
        params: &[(&str, String)],
        page_size: usize,
        parse: fn(&Value) -> Vec<R>,
    ) -> Fetch<Vec<R>> {
        let mut out = vec![];
        for page in 1..=MAX_PAGES {
            let mut p = params.to_vec();
            p.push(("PageNumber", page.to_string()));
            p.push(("PageSize", page_size.to_string()));
            let v = self.call(api, action, &p)?;
            let items = parse(&v);
            let n = items.len();
            out.extend(items);
            let total = model::total_count(&v).unwrap_or(0);
            if n == 0 || n < page_size || out.len() >= total {
                break;
            }
        }
        Ok(out)
    }

    /// Every page of a `NextToken` API (with `size_param` = `page_size`).
    pub fn tokened<R>(
        &self,
        api: Api,
        action: &str,
        params: &[(&str, String)],
        size_param: &'static str,
        page_size: usize,
        parse: fn(&Value) -> Vec<R>,
    ) -> Fetch<Vec<R>> {
        let mut out = vec![];
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut p = params.to_vec();
            p.push((size_param, page_size.to_string()));
            if let Some(t) = &token {
                p.push(("NextToken", t.clone()));
            }
            let v = self.call(api, action, &p)?;
            out.extend(parse(&v));
            match model::text(&v, "NextToken") {
                t if t.is_empty() || token.as_ref() == Some(&t) => break,
                t => token = Some(t),
            }
        }
        Ok(out)
    }
}

/// At most this many pages are read for one call.
const MAX_PAGES: usize = 100;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// Answers by `x-acs-action` and a query fragment from a table.
    #[derive(Default)]
    pub struct Fake {
        pub answers: Vec<(String, String, u16, String)>,
    }

    impl Fake {
        pub fn new() -> Self {
            Fake::default()
        }

        /// Answer `action` requests whose query contains `fragment`.
        pub fn answer(mut self, action: &str, fragment: &str, status: u16, body: &str) -> Self {
            self.answers
                .push((action.into(), fragment.into(), status, body.into()));
            self
        }
    }

    impl Transport for Fake {
        fn send(&self, r: &HttpRequest) -> Result<HttpResponse, TransportError> {
            let action = r
                .headers
                .iter()
                .find(|(k, _)| k == "x-acs-action")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            for (a, f, status, body) in &self.answers {
                if *a == action && r.url.contains(f.as_str()) {
                    return Ok(HttpResponse {
                        status: *status,
                        body: body.clone().into_bytes(),
                    });
                }
            }
            Err(TransportError::NotRecorded)
        }
    }

    pub fn settings() -> Settings {
        Settings {
            region: "cn-hangzhou".into(),
            endpoint: Some("http://127.0.0.1:5060".into()),
            credentials: Some(Credentials {
                access_key_id: "LTAI5tSkoopTestKey0001".into(),
                access_key_secret: "SkoopTestSecret0000000000000001".into(),
                security_token: None,
            }),
        }
    }

    fn fixed() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_796_040_000)
    }

    #[test]
    fn endpoints() {
        let c = Client::new(settings(), Fake::new());
        assert_eq!(c.endpoint(ECS), "http://127.0.0.1:5060");
        let mut s = settings();
        s.endpoint = None;
        let c = Client::new(s.clone(), Fake::new());
        assert_eq!(c.endpoint(ECS), "https://ecs.cn-hangzhou.aliyuncs.com");
        assert_eq!(c.endpoint(VPC), "https://vpc.cn-hangzhou.aliyuncs.com");
        assert_eq!(c.endpoint(SLB), "https://slb.cn-hangzhou.aliyuncs.com");
        s.endpoint = Some("ecs-vpc.cn-hangzhou.aliyuncs.com/".into());
        let c = Client::new(s, Fake::new());
        assert_eq!(c.endpoint(ECS), "https://ecs-vpc.cn-hangzhou.aliyuncs.com");
    }

    #[test]
    fn requests_are_deterministic_signed_posts_and_cached() {
        let fake = Fake::new().answer("DescribeVpcs", "VpcId=vpc-1", 200, r#"{"Vpcs":{"Vpc":[]}}"#);
        let c = Client::new(settings(), fake).with_clock(fixed);
        c.call(VPC, "DescribeVpcs", &[("VpcId", "vpc-1".into())])
            .unwrap();
        c.call(VPC, "DescribeVpcs", &[("VpcId", "vpc-1".into())])
            .unwrap();
        let sent = c.sent();
        assert_eq!(sent.len(), 1, "the second call is answered from the cache");
        let r = &sent[0];
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.url,
            "http://127.0.0.1:5060/?RegionId=cn-hangzhou&VpcId=vpc-1"
        );
        assert!(r.body.is_empty());
        let h = |n: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(h("x-acs-action").as_deref(), Some("DescribeVpcs"));
        assert_eq!(h("x-acs-version").as_deref(), Some("2016-04-28"));
        assert_eq!(h("x-acs-date").as_deref(), Some("2026-11-30T12:00:00Z"));
        assert_eq!(h("x-acs-signature-nonce").map(|n| n.len()), Some(32));
        assert!(h("authorization").unwrap().starts_with(
            "ACS3-HMAC-SHA256 Credential=LTAI5tSkoopTestKey0001,SignedHeaders=host;x-acs-action;"
        ));
    }

    #[test]
    fn two_actions_may_not_send_the_same_request() {
        let fake = Fake::new()
            .answer("DescribeVSwitches", "", 200, "{}")
            .answer("DescribeNatGateways", "", 200, "{}");
        let c = Client::new(settings(), fake);
        c.call(VPC, "DescribeVSwitches", &[("VpcId", "vpc-1".into())])
            .unwrap();
        let e = c.call(VPC, "DescribeNatGateways", &[("VpcId", "vpc-1".into())]);
        assert!(matches!(e, Err(FetchError::Other(m)) if m.contains("cannot tell apart")));
    }

    #[test]
    fn api_errors_not_recorded_and_missing_credentials() {
        let fake = Fake::new()
            .answer(
                "DescribeVpcs",
                "",
                403,
                r#"{"RequestId":"r","Code":"Forbidden.RAM","Message":"User not authorized to operate on the specified resource, key LTAI5tSkoopTestKey0001."}"#,
            );
        let c = Client::new(settings(), fake);
        assert_eq!(
            c.call(VPC, "DescribeVpcs", &[]).err(),
            Some(FetchError::Api {
                api: "VPC DescribeVpcs".into(),
                code: "Forbidden.RAM".into(),
                message: "User not authorized to operate on the specified resource, key ***."
                    .into()
            })
        );
        assert_eq!(
            c.call(ECS, "DescribeInstances", &[("InstanceIds", "[]".into())])
                .err(),
            Some(FetchError::NotRecorded)
        );

        let mut s = settings();
        s.credentials = None;
        let fake = Fake::new()
            .answer("DescribeVpcs", "", 400, r#"{"Code":"MissingAccessKeyId","Message":"AccessKeyId is mandatory for this action."}"#)
            .answer("DescribeVSwitches", "", 200, r#"{"VSwitches":{"VSwitch":[]}}"#);
        let c = Client::new(s, fake);
        assert_eq!(
            c.call(VPC, "DescribeVpcs", &[]).err(),
            Some(FetchError::NoCredentials)
        );
        // A recording answers unsigned requests.
        assert!(
            c.call(VPC, "DescribeVSwitches", &[("VpcId", "vpc-1".into())])
                .is_ok()
        );
        assert!(
            c.sent()
                .iter()
                .all(|r| r.headers.iter().all(|(k, _)| k != "authorization"))
        );

        let mut s = settings();
        s.region = String::new();
        let c = Client::new(s, Fake::new());
        assert_eq!(
            c.call(VPC, "DescribeVpcs", &[]).err(),
            Some(FetchError::NoRegion)
        );
    }

    #[test]
    fn paging_by_number_and_by_token() {
        let fake = Fake::new()
            .answer("DescribeSnatTableEntries", "PageNumber=1&", 200, r#"{"TotalCount":3,"SnatTableEntries":{"SnatTableEntry":[{"SnatEntryId":"a"},{"SnatEntryId":"b"}]}}"#)
            .answer("DescribeSnatTableEntries", "PageNumber=2&", 200, r#"{"TotalCount":3,"SnatTableEntries":{"SnatTableEntry":[{"SnatEntryId":"c"}]}}"#)
            .answer("DescribeRouteEntryList", "NextToken=t2", 200, r#"{"NextToken":"","RouteEntrys":{"RouteEntry":[{"DestinationCidrBlock":"10.0.0.0/8"}]}}"#)
            .answer("DescribeRouteEntryList", "RouteTableId", 200, r#"{"NextToken":"t2","RouteEntrys":{"RouteEntry":[{"DestinationCidrBlock":"0.0.0.0/0"}]}}"#);
        let c = Client::new(settings(), fake);
        let e = c
            .paged(
                VPC,
                "DescribeSnatTableEntries",
                &[("SnatTableId", "stb-1".into())],
                2,
                model::parse_snat_entries,
            )
            .unwrap();
        assert_eq!(
            e.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
            vec!["a", "b", "c"]
        );
        let r = c
            .tokened(
                VPC,
                "DescribeRouteEntryList",
                &[("RouteTableId", "vtb-1".into())],
                "MaxResult",
                100,
                model::parse_route_entries,
            )
            .unwrap();
        assert_eq!(r.len(), 2);
        assert!(
            c.sent()[3]
                .url
                .contains("MaxResult=100&NextToken=t2&RegionId=cn-hangzhou&RouteTableId=vtb-1")
        );
    }
}
