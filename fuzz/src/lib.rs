//! What the fuzz targets share: structure-aware mutators (a JSON document
//! mutated as a tree, a text mutated line by line and word by word), and the
//! packets and netns facts the evaluators are run with, taken from the input
//! itself so that rules and routes meet packets they name.

use std::net::Ipv4Addr;

use serde_json::{Map, Number, Value};
use skoop_netstack::netfilter::{NetnsFacts, ReverseRoute};
use skoop_netstack::packet::{Icmp, Packet, Protocol};

/// A small deterministic generator (xorshift), seeded by libFuzzer.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u32) -> Rng {
        Rng(u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Writes `out` into libFuzzer's buffer, or lets libFuzzer mutate when it
/// does not fit.
fn emit(data: &mut [u8], size: usize, max_size: usize, out: &[u8]) -> usize {
    if out.len() > max_size || out.len() > data.len() {
        return libfuzzer_sys::fuzzer_mutate(data, size, max_size);
    }
    data[..out.len()].copy_from_slice(out);
    out.len()
}

// ---------------------------------------------------------------------------
// JSON documents

/// A custom mutator for JSON inputs: most of the time the input is parsed
/// and one to three of its values are changed as values (a value of another
/// type, a value moved from elsewhere in the document, an element or key
/// removed or repeated, a string or number changed in place, the lines of an
/// embedded text reordered); otherwise, or when the input is not JSON,
/// libFuzzer mutates its bytes (with the target's dictionary).
pub fn mutate_json(data: &mut [u8], size: usize, max_size: usize, seed: u32) -> usize {
    let mut rng = Rng::new(seed);
    if rng.chance(4) {
        return libfuzzer_sys::fuzzer_mutate(data, size, max_size);
    }
    let Ok(mut doc) = serde_json::from_slice::<Value>(&data[..size]) else {
        return libfuzzer_sys::fuzzer_mutate(data, size, max_size);
    };
    for _ in 0..1 + rng.below(3) {
        mutate_value(&mut doc, &mut rng);
    }
    let out = if rng.chance(8) {
        serde_json::to_vec_pretty(&doc)
    } else {
        serde_json::to_vec(&doc)
    };
    match out {
        Ok(out) => emit(data, size, max_size, &out),
        Err(_) => libfuzzer_sys::fuzzer_mutate(data, size, max_size),
    }
}

/// The number of values in `v` (itself included).
fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(m) => m.values().map(count).sum(),
        _ => 0,
    }
}

/// The `k`th value of `v` in pre-order.
fn nth(v: &Value, k: &mut usize) -> Option<Value> {
    if *k == 0 {
        return Some(v.clone());
    }
    *k -= 1;
    match v {
        Value::Array(a) => a.iter().find_map(|c| nth(c, k)),
        Value::Object(m) => m.values().find_map(|c| nth(c, k)),
        _ => None,
    }
}

fn nth_mut<'a>(v: &'a mut Value, k: &mut usize) -> Option<&'a mut Value> {
    if *k == 0 {
        return Some(v);
    }
    *k -= 1;
    match v {
        Value::Array(a) => {
            for c in a.iter_mut() {
                if let Some(found) = nth_mut(c, k) {
                    return Some(found);
                }
            }
            None
        }
        Value::Object(m) => {
            for c in m.values_mut() {
                if let Some(found) = nth_mut(c, k) {
                    return Some(found);
                }
            }
            None
        }
        _ => None,
    }
}

/// Every key of the document's objects, and every string that is a line
/// of text, for renames and inserts.
fn keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(a) => a.iter().for_each(|c| keys(c, out)),
        Value::Object(m) => {
            for (k, c) in m {
                if out.len() < 256 && !out.contains(k) {
                    out.push(k.clone());
                }
                keys(c, out);
            }
        }
        _ => {}
    }
}

const NUMBERS: &[i128] = &[
    0,
    1,
    -1,
    2,
    8,
    24,
    32,
    33,
    53,
    80,
    127,
    128,
    255,
    256,
    4789,
    8472,
    30000,
    32767,
    32768,
    65535,
    65536,
    0x4000,
    0xffff_ffff,
    0x1_0000_0000,
    i32::MAX as i128,
    i32::MIN as i128,
    i64::MAX as i128,
    i64::MIN as i128,
    u64::MAX as i128,
];

const STRINGS: &[&str] = &[
    "",
    " ",
    "0",
    "-1",
    "x",
    "v1",
    "10.244.0.0/16",
    "10.244.1.5",
    "10.96.0.10",
    "0.0.0.0/0",
    "0.0.0.0",
    "255.255.255.255/32",
    "1.2.3.4/33",
    "300.1.1.1",
    "1.2.3",
    "::1",
    "fe80::1/64",
    "a/b",
    "a/b/c",
    "/",
    "-",
    ":",
    ",",
    "*",
    "TCP",
    "UDP",
    "SCTP",
    "tcp",
    "http",
    "Running",
    "True",
    "UP",
    "eth0",
    "cni0",
    "lo",
    "unicast",
    "local",
    "blackhole",
    "00:00:00:00:00:00",
    "%",
    "\\",
    "\"",
    "\u{0}",
    "é",
    "\n",
];

fn interesting_number(rng: &mut Rng) -> Value {
    match rng.below(8) {
        0 => Value::Number(Number::from_f64(0.5).expect("finite")),
        1 => Value::Number(Number::from_f64(-1e300).expect("finite")),
        _ => {
            let n = NUMBERS[rng.below(NUMBERS.len())];
            if let Ok(i) = i64::try_from(n) {
                Value::from(i)
            } else {
                Value::from(u64::try_from(n).unwrap_or(u64::MAX))
            }
        }
    }
}

fn interesting_scalar(rng: &mut Rng) -> Value {
    match rng.below(7) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(2)),
        2 | 3 => interesting_number(rng),
        4 => Value::Array(Vec::new()),
        5 => Value::Object(Map::new()),
        _ => Value::String(STRINGS[rng.below(STRINGS.len())].to_string()),
    }
}

/// Changes one value of `doc`.
fn mutate_value(doc: &mut Value, rng: &mut Rng) {
    let n = count(doc);
    let donor = match rng.below(4) {
        0 => nth(doc, &mut rng.below(n)),
        _ => None,
    };
    let mut names = Vec::new();
    if rng.chance(4) {
        keys(doc, &mut names);
    }
    let Some(target) = nth_mut(doc, &mut rng.below(n)) else {
        return;
    };
    if let Some(donor) = donor {
        // A value from elsewhere in the document, in place of this one or
        // beside it.
        match target {
            Value::Array(a) if rng.chance(2) => {
                let at = rng.below(a.len() + 1);
                a.insert(at, donor);
            }
            Value::Object(m) if rng.chance(2) && !names.is_empty() => {
                m.insert(names[rng.below(names.len())].clone(), donor);
            }
            _ => *target = donor,
        }
        return;
    }
    if rng.chance(4) {
        *target = interesting_scalar(rng);
        return;
    }
    match target {
        Value::Null => *target = interesting_scalar(rng),
        Value::Bool(b) => *b = !*b,
        Value::Number(num) => {
            *target = match (num.as_i64(), num.as_u64()) {
                (Some(i), _) if rng.chance(2) => match rng.below(4) {
                    0 => Value::from(i.wrapping_add(1)),
                    1 => Value::from(i.wrapping_sub(1)),
                    2 => Value::from(i.wrapping_neg()),
                    _ => Value::from(i.wrapping_mul(256)),
                },
                (_, Some(u)) if rng.chance(2) => Value::from(u.wrapping_add(1)),
                _ => interesting_number(rng),
            }
        }
        Value::String(s) => *s = mutate_string(s, rng),
        Value::Array(a) => match rng.below(5) {
            _ if a.is_empty() => *target = interesting_scalar(rng),
            0 => {
                a.remove(rng.below(a.len()));
            }
            1 => {
                let i = rng.below(a.len());
                let copy = a[i].clone();
                a.insert(i, copy);
            }
            2 => {
                let (i, j) = (rng.below(a.len()), rng.below(a.len()));
                a.swap(i, j);
            }
            3 => a.truncate(rng.below(a.len())),
            _ => {
                let i = rng.below(a.len());
                a[i] = interesting_scalar(rng);
            }
        },
        Value::Object(m) => {
            let ks: Vec<String> = m.keys().cloned().collect();
            match rng.below(4) {
                _ if ks.is_empty() => {
                    let key = names
                        .get(rng.below(names.len()))
                        .cloned()
                        .unwrap_or_else(|| "kind".to_string());
                    m.insert(key, interesting_scalar(rng));
                }
                0 | 1 => {
                    m.remove(&ks[rng.below(ks.len())]);
                }
                2 => {
                    let old = &ks[rng.below(ks.len())];
                    if let Some(v) = m.remove(old) {
                        let new = match names.get(rng.below(names.len())) {
                            Some(k) => k.clone(),
                            _ => mutate_string(old, rng),
                        };
                        m.insert(new, v);
                    }
                }
                _ => {
                    let k = &ks[rng.below(ks.len())];
                    m.insert(k.clone(), interesting_scalar(rng));
                }
            }
        }
    }
}

/// A string changed: its lines or words (a text embedded in JSON, like a
/// dump's iptables-save), a replacement, or its bytes as libFuzzer mutates
/// them.
fn mutate_string(s: &str, rng: &mut Rng) -> String {
    if s.contains('\n') && rng.chance(2) {
        return mutate_lines(s, rng);
    }
    match rng.below(4) {
        0 => STRINGS[rng.below(STRINGS.len())].to_string(),
        1 if s.contains(|c: char| c.is_whitespace() || c == '/' || c == '.') => {
            mutate_words(s, rng)
        }
        _ => {
            let mut buf = s.as_bytes().to_vec();
            let size = buf.len();
            let max = size * 2 + 16;
            buf.resize(max, 0);
            let n = libfuzzer_sys::fuzzer_mutate(&mut buf, size, max);
            buf.truncate(n);
            String::from_utf8_lossy(&buf).into_owned()
        }
    }
}

// ---------------------------------------------------------------------------
// Texts

/// A custom mutator for line-oriented texts (`iptables-save`, `ipset save`,
/// `nft list chains`): half the time a line is removed, repeated, moved or
/// copied over another, or a word of one is removed, repeated or replaced by
/// a word of another line; otherwise libFuzzer mutates the bytes (with the
/// target's dictionary).
pub fn mutate_text(data: &mut [u8], size: usize, max_size: usize, seed: u32) -> usize {
    let mut rng = Rng::new(seed);
    if rng.chance(2) {
        return libfuzzer_sys::fuzzer_mutate(data, size, max_size);
    }
    let text = String::from_utf8_lossy(&data[..size]).into_owned();
    let out = if rng.chance(2) {
        mutate_lines(&text, &mut rng)
    } else {
        mutate_words(&text, &mut rng)
    };
    emit(data, size, max_size, out.as_bytes())
}

/// One line operation on `text`.
pub fn mutate_lines(text: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<&str> = text.split('\n').collect();
    let n = lines.len();
    match rng.below(5) {
        0 if n > 1 => {
            lines.remove(rng.below(n));
        }
        1 => {
            let i = rng.below(n);
            lines.insert(rng.below(n + 1), lines[i]);
        }
        2 => {
            let (i, j) = (rng.below(n), rng.below(n));
            lines.swap(i, j);
        }
        3 => {
            let (i, j) = (rng.below(n), rng.below(n));
            lines[i] = lines[j];
        }
        _ => {
            let line = lines.remove(rng.below(n));
            let at = rng.below(lines.len() + 1);
            lines.insert(at, line);
        }
    }
    lines.join("\n")
}

/// One word operation: a word of a random line removed, repeated, or
/// replaced by (or preceded by) a word from anywhere in `text`.
pub fn mutate_words(text: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let all: Vec<&str> = text.split_whitespace().collect();
    if all.is_empty() {
        return text.to_string();
    }
    let donor = all[rng.below(all.len())].to_string();
    let i = rng.below(lines.len());
    let mut words: Vec<String> = lines[i].split(' ').map(str::to_string).collect();
    let w = rng.below(words.len());
    match rng.below(4) {
        0 if words.len() > 1 => {
            words.remove(w);
        }
        1 => {
            let copy = words[w].clone();
            words.insert(w, copy);
        }
        2 => words[w] = donor,
        _ => words.insert(w, donor),
    }
    lines[i] = words.join(" ");
    lines.join("\n")
}

// ---------------------------------------------------------------------------
// Packets and facts from the input

/// What an input names that a packet or a netns may use: IPv4 addresses,
/// ports and device names, at most a few of each.
#[derive(Debug, Default)]
pub struct Harvest {
    pub addrs: Vec<Ipv4Addr>,
    pub ports: Vec<u16>,
    pub devices: Vec<String>,
}

impl Harvest {
    pub fn of(text: &str) -> Harvest {
        let mut h = Harvest::default();
        let mut prev = "";
        for word in text.split(|c: char| {
            c.is_whitespace() || matches!(c, '"' | ',' | '{' | '}' | '[' | ']' | '=')
        }) {
            if word.is_empty() {
                continue;
            }
            let addr = word.split(['/', ':', '-']).next().unwrap_or_default();
            if h.addrs.len() < 6
                && let Ok(ip) = addr.parse::<Ipv4Addr>()
                && !h.addrs.contains(&ip)
            {
                h.addrs.push(ip);
            } else if h.ports.len() < 4
                && matches!(
                    prev,
                    "--dport" | "--sport" | "--to-ports" | "port" | "dport"
                )
                && let Ok(p) = word.trim_start_matches(':').parse::<u16>()
            {
                h.ports.push(p);
            } else if h.devices.len() < 3
                && matches!(
                    prev,
                    "-i" | "-o" | "iifname" | "oifname" | "device" | "dev" | "devices"
                )
                && word.len() <= 15
            {
                h.devices.push(word.trim_end_matches('+').to_string());
            }
            prev = word;
        }
        h
    }

    fn addr(&self, i: usize, default: [u8; 4]) -> Ipv4Addr {
        self.addrs.get(i).copied().unwrap_or(default.into())
    }

    /// A TCP request, a UDP reply, an ICMP error and a marked SCTP packet
    /// between the input's own addresses (or common cluster ones), to its
    /// own ports.
    pub fn packets(&self) -> Vec<Packet> {
        let port = |i: usize, d: u16| self.ports.get(i).copied().unwrap_or(d);
        let base = Packet {
            src: self.addr(0, [10, 244, 1, 5]),
            sport: 40000,
            dst: self.addr(1, [10, 96, 0, 10]),
            dport: port(0, 80),
            protocol: Protocol::Tcp,
            mark: 0,
            encap: None,
            reply: false,
            tos: 0,
            size: 1500,
            icmp: None,
        };
        vec![
            base,
            Packet {
                src: self.addr(2, [10, 244, 2, 7]),
                sport: port(1, 53),
                dst: base.src,
                dport: 40000,
                protocol: Protocol::Udp,
                reply: true,
                ..base
            },
            Packet {
                src: base.dst,
                dst: self.addr(3, [192, 168, 1, 10]),
                protocol: Protocol::Icmp,
                icmp: Some(Icmp::FRAG_NEEDED),
                ..base
            },
            Packet {
                protocol: Protocol::Sctp,
                mark: 0x4000,
                tos: 0x10,
                dport: port(2, 30000),
                ..base
            },
        ]
    }

    /// Input and output devices to traverse hooks with.
    pub fn device(&self, i: usize) -> Option<&str> {
        match self.devices.get(i) {
            Some(d) => Some(d.as_str()),
            None => ["eth0", "cni0", "lo"].get(i).copied(),
        }
    }
}

/// Netns facts that answer every question (three-valued matches decide).
pub struct Facts<'a>(pub &'a Harvest);

impl NetnsFacts for Facts<'_> {
    fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.0.addrs.iter().skip(1).step_by(2).any(|a| *a == ip) || ip.is_loopback()
    }

    fn primary_address(&self, ifname: &str) -> Option<Ipv4Addr> {
        (!ifname.is_empty()).then(|| self.0.addr(3, [192, 168, 1, 10]))
    }

    fn interface_addresses(&self, ifname: &str) -> Option<Vec<Ipv4Addr>> {
        (ifname != "lo").then(|| self.0.addrs.clone())
    }

    fn socket_listening(
        &self,
        _protocol: Protocol,
        _ip: Ipv4Addr,
        port: u16,
        exact: bool,
    ) -> Option<bool> {
        (!exact).then_some(port.is_multiple_of(2))
    }

    fn reverse_route(&self, to: Ipv4Addr, _from: Ipv4Addr, _mark: u32) -> Option<ReverseRoute> {
        Some(ReverseRoute {
            unicast: !to.is_broadcast(),
            local: self.is_local(to),
            devs: vec!["eth0".to_string()],
        })
    }
}
