//! A small client of the AWS Query APIs (EC2 `2016-11-15`, ELBv2
//! `2015-12-01`): form-encoded POSTs signed with SigV4, `NextToken`/`Marker`
//! pagination, and a cache of every answer (errors too) for the life of the
//! component, so each Describe call is made once per diagnosis.
//!
//! [`Ec2`] turns the answers into typed resources for the checks.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::SystemTime;

use ipnet::Ipv4Net;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::checks::{Fetch, FetchError, PrefixLists};
use crate::ec2::{
    self, Instance, InternetGateway, NatGateway, NetworkAcl, NetworkInterface, Page, RouteTable,
    SecurityGroup,
};
use crate::elb::{self, Listener, LoadBalancer, TargetHealth};
use crate::path::Cloud;
use crate::sign::{Credentials, Scope, sign_request};
use crate::xml;

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

/// One Query API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Api {
    /// The signing name, also the first label of the endpoint host.
    pub service: &'static str,
    pub version: &'static str,
    /// The request parameter carrying the pagination token.
    pub token_param: &'static str,
    /// The answer's element carrying the next token.
    pub token_element: &'static str,
}

pub const EC2: Api = Api {
    service: "ec2",
    version: "2016-11-15",
    token_param: "NextToken",
    token_element: "nextToken",
};

pub const ELBV2: Api = Api {
    service: "elasticloadbalancing",
    version: "2015-12-01",
    token_param: "Marker",
    token_element: "NextMarker",
};

/// At most this many pages are read for one call.
const MAX_PAGES: usize = 100;

/// Where and as whom to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub region: String,
    /// Overrides `https://<service>.<region>.amazonaws.com` for every API.
    pub endpoint: Option<String>,
    pub credentials: Option<Credentials>,
}

/// The unreserved characters of RFC 3986 stay as they are; everything else is escaped.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `Action=…&Version=…&k=v…`, form encoded.
pub fn form_body(api: Api, action: &str, params: &[(String, String)]) -> String {
    let mut out = format!("Action={action}&Version={}", api.version);
    for (k, v) in params {
        out.push('&');
        out.extend(utf8_percent_encode(k, FORM));
        out.push('=');
        out.extend(utf8_percent_encode(v, FORM));
    }
    out
}

/// `Name.1=a&Name.2=b`.
pub fn numbered(name: &str, values: &[String]) -> Vec<(String, String)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("{name}.{}", i + 1), v.clone()))
        .collect()
}

/// `Filter.N.Name=name&Filter.N.Value.1=value`.
pub fn filter(n: usize, name: &str, value: &str) -> Vec<(String, String)> {
    vec![
        (format!("Filter.{n}.Name"), name.to_string()),
        (format!("Filter.{n}.Value.1"), value.to_string()),
    ]
}

/// Error codes that mean the request was not (correctly) signed.
fn is_auth_error(code: &str) -> bool {
    matches!(
        code,
        "AuthFailure"
            | "MissingAuthenticationToken"
            | "MissingAuthenticationTokenException"
            | "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "UnrecognizedClientException"
            | "InvalidSecurity"
    )
}

type Pages = Rc<Vec<String>>;

/// The Query client.
pub struct Client<T> {
    settings: Settings,
    transport: T,
    clock: fn() -> SystemTime,
    cache: RefCell<HashMap<String, Fetch<Pages>>>,
    sent: RefCell<Vec<HttpRequest>>,
}

impl<T: Transport> Client<T> {
    pub fn new(settings: Settings, transport: T) -> Self {
        Client {
            settings,
            transport,
            clock: SystemTime::now,
            cache: RefCell::new(HashMap::new()),
            sent: RefCell::new(vec![]),
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

    /// The endpoint of `api`, ending in `/`.
    pub fn url(&self, api: Api) -> String {
        match &self.settings.endpoint {
            Some(e) => {
                let e = e.trim().trim_end_matches('/');
                if e.contains("://") {
                    format!("{e}/")
                } else {
                    format!("https://{e}/")
                }
            }
            None => format!(
                "https://{}.{}.amazonaws.com/",
                api.service, self.settings.region
            ),
        }
    }

    fn redact(&self, text: &str) -> String {
        match &self.settings.credentials {
            Some(c) => c.redact(text),
            None => text.to_string(),
        }
    }

    /// Every page of `action` with `params`, from the cache when asked before.
    pub fn call(&self, api: Api, action: &str, params: &[(String, String)]) -> Fetch<Pages> {
        let url = self.url(api);
        let key = format!("{url} {}", form_body(api, action, params));
        if let Some(hit) = self.cache.borrow().get(&key) {
            return hit.clone();
        }
        let answer = self.fetch_pages(api, action, params, &url).map(Rc::new);
        self.cache.borrow_mut().insert(key, answer.clone());
        answer
    }

    fn fetch_pages(
        &self,
        api: Api,
        action: &str,
        params: &[(String, String)],
        url: &str,
    ) -> Fetch<Vec<String>> {
        let mut pages = vec![];
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut p = params.to_vec();
            if let Some(t) = &token {
                p.push((api.token_param.to_string(), t.clone()));
            }
            let body = self.send(api, url, form_body(api, action, &p))?;
            let next = xml::parse(&body).ok().and_then(|d| {
                xml::descendant(d.root_element(), api.token_element)
                    .and_then(|n| n.text())
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
            });
            pages.push(body);
            match next {
                Some(n) if token.as_ref() != Some(&n) => token = Some(n),
                _ => break,
            }
        }
        Ok(pages)
    }

    /// One signed POST; the answer's body when it is a Query API response.
    fn send(&self, api: Api, url: &str, body: String) -> Fetch<String> {
        let mut headers = vec![(
            "content-type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        )];
        let credentials = self.settings.credentials.as_ref();
        if let Some(c) = credentials {
            let scope = Scope {
                region: &self.settings.region,
                service: api.service,
            };
            let signed = sign_request(
                "POST",
                url,
                &headers,
                body.as_bytes(),
                c,
                scope,
                (self.clock)(),
            )
            .map_err(|e| FetchError::Other(self.redact(&e)))?;
            headers.extend(signed);
        }
        let request = HttpRequest {
            method: "POST".into(),
            url: url.to_string(),
            headers,
            body: body.into_bytes(),
        };
        self.sent.borrow_mut().push(request.clone());
        let response = match self.transport.send(&request) {
            Ok(r) => r,
            Err(TransportError::NotRecorded) => return Err(FetchError::NotRecorded),
            Err(TransportError::Failed(m)) => return Err(FetchError::Other(self.redact(&m))),
        };
        let text = String::from_utf8_lossy(&response.body).into_owned();
        if !(200..300).contains(&response.status) {
            return Err(match xml::api_error(&text) {
                Some((code, _)) if credentials.is_none() && is_auth_error(&code) => {
                    FetchError::NoCredentials
                }
                Some((code, message)) => FetchError::Api {
                    code: self.redact(&code),
                    message: self.redact(&message),
                },
                None if credentials.is_none() => FetchError::NoCredentials,
                None => FetchError::Other(format!(
                    "HTTP {} from {}",
                    response.status,
                    crate::sign::host_of(url)
                )),
            });
        }
        let root = xml::parse(&text).map(|d| d.root_element().tag_name().name().to_string());
        match root {
            Ok(r) if r.ends_with("Response") => Ok(text),
            // An unsigned request may be answered by something else entirely.
            _ if credentials.is_none() => Err(FetchError::NoCredentials),
            Ok(r) => Err(FetchError::Other(format!(
                "unexpected answer <{r}> from {}",
                crate::sign::host_of(url)
            ))),
            Err(e) => Err(FetchError::Other(format!(
                "{e} from {}",
                crate::sign::host_of(url)
            ))),
        }
    }
}

/// Parse every page with `parse`.
fn collect<T>(
    pages: &[String],
    action: &str,
    parse: fn(&str) -> Result<Page<T>, String>,
) -> Fetch<Vec<T>> {
    let mut out = vec![];
    for p in pages {
        out.extend(
            parse(p)
                .map_err(|e| FetchError::Other(format!("{action}: {e}")))?
                .items,
        );
    }
    Ok(out)
}

/// The EC2 facts the checks need, fetched on demand and kept.
pub struct Ec2<T> {
    client: Client<T>,
}

impl<T: Transport> Ec2<T> {
    pub fn new(client: Client<T>) -> Self {
        Ec2 { client }
    }

    pub fn client(&self) -> &Client<T> {
        &self.client
    }

    fn describe<R>(
        &self,
        action: &str,
        params: &[(String, String)],
        parse: fn(&str) -> Result<Page<R>, String>,
    ) -> Fetch<Vec<R>> {
        let pages = self.client.call(EC2, action, params)?;
        collect(&pages, action, parse)
    }
}

fn not_found(e: &FetchError) -> bool {
    matches!(e, FetchError::Api { code, .. } if code.ends_with(".NotFound") || code.ends_with("NotFound") || code.ends_with(".Malformed"))
}

impl<T: Transport> PrefixLists for Ec2<T> {
    fn prefix_list(&self, id: &str) -> Fetch<Vec<Ipv4Net>> {
        self.describe(
            "GetManagedPrefixListEntries",
            &[("PrefixListId".to_string(), id.to_string())],
            ec2::parse_prefix_list_entries,
        )
    }
}

impl<T: Transport> Cloud for Ec2<T> {
    fn instance_by_id(&self, id: &str) -> Fetch<Option<Instance>> {
        match self.describe(
            "DescribeInstances",
            &numbered("InstanceId", &[id.to_string()]),
            ec2::parse_instances,
        ) {
            Ok(v) => Ok(v.into_iter().find(|i| i.id == id)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn instance_by_ip(&self, ip: Ipv4Addr) -> Fetch<Option<Instance>> {
        let v = self.describe(
            "DescribeInstances",
            &filter(1, "private-ip-address", &ip.to_string()),
            ec2::parse_instances,
        )?;
        // Prefer a running instance over a terminated one that had the address.
        Ok(v.iter()
            .find(|i| i.state == "running")
            .or(v.first())
            .cloned())
    }

    fn security_group(&self, id: &str) -> Fetch<Option<SecurityGroup>> {
        // One request per group: the same request whichever check asks first,
        // so a recording made by prefetch answers every check.
        match self.describe(
            "DescribeSecurityGroups",
            &numbered("GroupId", &[id.to_string()]),
            ec2::parse_security_groups,
        ) {
            Ok(v) => Ok(v.into_iter().find(|g| g.id == id)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn network_acls(&self, vpc: &str) -> Fetch<Vec<NetworkAcl>> {
        self.describe(
            "DescribeNetworkAcls",
            &filter(1, "vpc-id", vpc),
            ec2::parse_network_acls,
        )
    }

    fn route_tables(&self, vpc: &str) -> Fetch<Vec<RouteTable>> {
        self.describe(
            "DescribeRouteTables",
            &filter(1, "vpc-id", vpc),
            ec2::parse_route_tables,
        )
    }

    fn nat_gateway(&self, id: &str) -> Fetch<Option<NatGateway>> {
        match self.describe(
            "DescribeNatGateways",
            &numbered("NatGatewayId", &[id.to_string()]),
            ec2::parse_nat_gateways,
        ) {
            Ok(v) => Ok(v.into_iter().find(|g| g.id == id)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn internet_gateways(&self, vpc: &str) -> Fetch<Vec<InternetGateway>> {
        self.describe(
            "DescribeInternetGateways",
            &filter(1, "attachment.vpc-id", vpc),
            ec2::parse_internet_gateways,
        )
    }

    fn load_balancer_interfaces(&self) -> Fetch<Vec<NetworkInterface>> {
        // Every ENI, kept when its description is `ELB …` (the caller looks):
        // a filter value with `*` or a space is form-encoded in ways not all
        // SigV4 verifiers agree on (moto re-encodes the body and refuses it).
        let all = self.describe(
            "DescribeNetworkInterfaces",
            &[],
            ec2::parse_network_interfaces,
        )?;
        Ok(all
            .into_iter()
            .filter(|e| e.description.starts_with("ELB "))
            .collect())
    }

    fn load_balancers(&self) -> Fetch<Vec<LoadBalancer>> {
        let pages = self.client.call(ELBV2, "DescribeLoadBalancers", &[])?;
        collect(&pages, "DescribeLoadBalancers", elb::parse_load_balancers)
    }

    fn listeners(&self, load_balancer_arn: &str) -> Fetch<Vec<Listener>> {
        let pages = self.client.call(
            ELBV2,
            "DescribeListeners",
            &[("LoadBalancerArn".into(), load_balancer_arn.into())],
        )?;
        collect(&pages, "DescribeListeners", elb::parse_listeners)
    }

    fn target_health(&self, target_group_arn: &str) -> Fetch<Vec<TargetHealth>> {
        let pages = self.client.call(
            ELBV2,
            "DescribeTargetHealth",
            &[("TargetGroupArn".into(), target_group_arn.into())],
        )?;
        collect(&pages, "DescribeTargetHealth", elb::parse_target_health)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;
    use std::time::{Duration, UNIX_EPOCH};

    /// Answers by the request's `Action` (and `NextToken`) from a table.
    pub struct Fake {
        pub answers: Vec<(&'static str, Option<&'static str>, u16, String)>,
        pub calls: Cell<usize>,
    }

    impl Fake {
        pub fn new() -> Self {
            Fake {
                answers: vec![],
                calls: Cell::new(0),
            }
        }

        pub fn answer(mut self, action: &'static str, status: u16, body: &str) -> Self {
            self.answers.push((action, None, status, body.to_string()));
            self
        }

        pub fn page(mut self, action: &'static str, token: &'static str, body: &str) -> Self {
            self.answers
                .push((action, Some(token), 200, body.to_string()));
            self
        }
    }

    impl Transport for Fake {
        fn send(&self, r: &HttpRequest) -> Result<HttpResponse, TransportError> {
            self.calls.set(self.calls.get() + 1);
            let body = String::from_utf8_lossy(&r.body).into_owned();
            let param = |name: &str| {
                body.split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    .map(str::to_string)
            };
            let action = param("Action").unwrap_or_default();
            let token = param("NextToken").or_else(|| param("Marker"));
            for (a, t, status, answer) in &self.answers {
                if *a == action && t.map(str::to_string) == token {
                    return Ok(HttpResponse {
                        status: *status,
                        body: answer.clone().into_bytes(),
                    });
                }
            }
            Err(TransportError::NotRecorded)
        }
    }

    pub fn settings() -> Settings {
        Settings {
            region: "us-east-1".into(),
            endpoint: Some("http://127.0.0.1:5155".into()),
            credentials: Some(Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
                session_token: Some("SESSIONTOKEN".into()),
            }),
        }
    }

    fn fixed() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    const SUBNETS_1: &str = r#"<DescribeSubnetsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15"><subnetSet><item><subnetId>subnet-1</subnetId><vpcId>vpc-1</vpcId><cidrBlock>10.0.1.0/24</cidrBlock></item></subnetSet><nextToken>tok/2+=</nextToken></DescribeSubnetsResponse>"#;
    const SUBNETS_2: &str = r#"<DescribeSubnetsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15"><subnetSet><item><subnetId>subnet-2</subnetId><vpcId>vpc-1</vpcId><cidrBlock>10.0.2.0/24</cidrBlock></item></subnetSet><nextToken>tok3</nextToken></DescribeSubnetsResponse>"#;
    const SUBNETS_3: &str = r#"<DescribeSubnetsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15"><subnetSet><item><subnetId>subnet-3</subnetId><vpcId>vpc-1</vpcId><cidrBlock>10.0.3.0/24</cidrBlock></item></subnetSet></DescribeSubnetsResponse>"#;

    #[test]
    fn form_bodies() {
        let mut p = numbered("GroupId", &["sg-1".into(), "sg-2".into()]);
        p.extend(filter(1, "private-ip-address", "10.0.1.10"));
        assert_eq!(
            form_body(EC2, "DescribeSecurityGroups", &p),
            "Action=DescribeSecurityGroups&Version=2016-11-15&GroupId.1=sg-1&GroupId.2=sg-2&Filter.1.Name=private-ip-address&Filter.1.Value.1=10.0.1.10"
        );
        assert_eq!(
            form_body(
                ELBV2,
                "DescribeListeners",
                &[("Marker".into(), "a/b+c= d".into())]
            ),
            "Action=DescribeListeners&Version=2015-12-01&Marker=a%2Fb%2Bc%3D%20d"
        );
    }

    #[test]
    fn endpoints() {
        let c = Client::new(settings(), Fake::new());
        assert_eq!(c.url(EC2), "http://127.0.0.1:5155/");
        let mut s = settings();
        s.endpoint = None;
        s.region = "eu-west-1".into();
        let c = Client::new(s.clone(), Fake::new());
        assert_eq!(c.url(EC2), "https://ec2.eu-west-1.amazonaws.com/");
        assert_eq!(
            c.url(ELBV2),
            "https://elasticloadbalancing.eu-west-1.amazonaws.com/"
        );
        s.endpoint = Some("vpce-1.ec2.eu-west-1.vpce.amazonaws.com/".into());
        let c = Client::new(s, Fake::new());
        assert_eq!(
            c.url(EC2),
            "https://vpce-1.ec2.eu-west-1.vpce.amazonaws.com/"
        );
    }

    #[test]
    fn pagination_follows_next_token_and_caches() {
        let fake = Fake::new()
            .answer("DescribeSubnets", 200, SUBNETS_1)
            .page("DescribeSubnets", "tok%2F2%2B%3D", SUBNETS_2)
            .page("DescribeSubnets", "tok3", SUBNETS_3);
        let c = Client::new(settings(), fake).with_clock(fixed);
        let pages = c.call(EC2, "DescribeSubnets", &[]).unwrap();
        assert_eq!(pages.len(), 3);
        let subnets = collect(&pages, "DescribeSubnets", ec2::parse_subnets).unwrap();
        let ids: Vec<&str> = subnets.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, vec!["subnet-1", "subnet-2", "subnet-3"]);
        let sent = c.sent();
        assert_eq!(sent.len(), 3);
        assert_eq!(
            String::from_utf8_lossy(&sent[1].body),
            "Action=DescribeSubnets&Version=2016-11-15&NextToken=tok%2F2%2B%3D"
        );
        // Asked again: from the cache.
        c.call(EC2, "DescribeSubnets", &[]).unwrap();
        assert_eq!(c.sent().len(), 3);
    }

    #[test]
    fn requests_are_signed_posts() {
        let fake = Fake::new().answer(
            "DescribeVpcs",
            200,
            include_str!("testdata/DescribeVpcs.xml"),
        );
        let c = Client::new(settings(), fake).with_clock(fixed);
        c.call(EC2, "DescribeVpcs", &[]).unwrap();
        let r = &c.sent()[0];
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "http://127.0.0.1:5155/");
        let h = |n: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            h("content-type").as_deref(),
            Some("application/x-www-form-urlencoded; charset=utf-8")
        );
        assert_eq!(h("x-amz-date").as_deref(), Some("20150830T123600Z"));
        assert_eq!(h("x-amz-security-token").as_deref(), Some("SESSIONTOKEN"));
        let auth = h("authorization").unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="), "{auth}");
        assert!(h("host").is_none());
    }

    #[test]
    fn api_errors_not_recorded_and_missing_credentials() {
        let err = include_str!("testdata/ErrorInstanceNotFound.xml");
        let auth = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to validate the provided access credentials</Message></Error></Errors><RequestID>x</RequestID></Response>"#;
        let fake =
            Fake::new()
                .answer("DescribeInstances", 400, err)
                .answer("DescribeVpcs", 401, auth);
        let ec2 = Ec2::new(Client::new(settings(), fake));
        // Not found: no instance, no error.
        assert_eq!(ec2.instance_by_id("i-00000000000000000"), Ok(None));
        assert_eq!(
            ec2.client().call(EC2, "DescribeVpcs", &[]).err(),
            Some(FetchError::Api {
                code: "AuthFailure".into(),
                message: "AWS was not able to validate the provided access credentials".into()
            })
        );
        assert_eq!(
            ec2.network_acls("vpc-1").err(),
            Some(FetchError::NotRecorded)
        );
        // Errors are cached too.
        ec2.client().call(EC2, "DescribeVpcs", &[]).ok();
        assert_eq!(ec2.client().sent().len(), 3);

        // Without credentials: unsigned, and an auth error (or a foreign answer) says so.
        let mut s = settings();
        s.credentials = None;
        let fake = Fake::new()
            .answer("DescribeVpcs", 401, auth)
            .answer("DescribeSubnets", 200, "<ListAllMyBucketsResult/>")
            .answer(
                "DescribeRouteTables",
                200,
                include_str!("testdata/DescribeRouteTables.xml"),
            );
        let c = Client::new(s, fake);
        assert_eq!(
            c.call(EC2, "DescribeVpcs", &[]).err(),
            Some(FetchError::NoCredentials)
        );
        assert_eq!(
            c.call(EC2, "DescribeSubnets", &[]).err(),
            Some(FetchError::NoCredentials)
        );
        // A recording answers unsigned requests.
        assert!(c.call(EC2, "DescribeRouteTables", &[]).is_ok());
        assert!(
            c.sent()
                .iter()
                .all(|r| r.headers.iter().all(|(k, _)| k != "authorization"))
        );
    }

    #[test]
    fn error_text_never_carries_credentials() {
        let leak = r#"<Response><Errors><Error><Code>InvalidClientTokenId</Code><Message>key AKIDEXAMPLE, token SESSIONTOKEN</Message></Error></Errors></Response>"#;
        let fake = Fake::new().answer("DescribeVpcs", 403, leak);
        let c = Client::new(settings(), fake);
        assert_eq!(
            c.call(EC2, "DescribeVpcs", &[]).err(),
            Some(FetchError::Api {
                code: "InvalidClientTokenId".into(),
                message: "key ***, token ***".into()
            })
        );
    }

    #[test]
    fn security_groups_are_fetched_once_each() {
        let fake = Fake::new()
            .answer(
                "DescribeSecurityGroups",
                200,
                include_str!("testdata/DescribeSecurityGroups.xml"),
            )
            .answer("DescribeNatGateways", 400, r#"<Response><Errors><Error><Code>NatGatewayNotFound</Code><Message>no</Message></Error></Errors></Response>"#);
        let ec2 = Ec2::new(Client::new(settings(), fake));
        let a = "sg-ea315b7a0675f309a";
        let b = "sg-9be3d32d5b9639a7d";
        assert_eq!(ec2.security_group(a).unwrap().unwrap().name, "nodes");
        assert_eq!(ec2.security_group(a).unwrap().unwrap().id, a);
        assert_eq!(ec2.client().sent().len(), 1);
        assert_eq!(
            String::from_utf8_lossy(&ec2.client().sent()[0].body),
            "Action=DescribeSecurityGroups&Version=2016-11-15&GroupId.1=sg-ea315b7a0675f309a"
        );
        assert_eq!(ec2.security_group(b).unwrap().unwrap().name, "lb");
        assert_eq!(ec2.client().sent().len(), 2);
        assert_eq!(ec2.nat_gateway("nat-0"), Ok(None));
    }
}
