//! The flow a diagnosis is asked about.

use std::net::Ipv4Addr;

use serde::Serialize;
use skoop_netstack::packet::Protocol;

/// The flow to diagnose: from `src` to `dst`, port `dport`, `protocol`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Flow {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub dport: u16,
    pub protocol: Protocol,
}
