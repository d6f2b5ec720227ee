//! What the cloud underlay carries for a packet, for cloud providers: the
//! outer packet of a tunnel (VXLAN is UDP to the device's port, IP-in-IP is
//! IP protocol 4 between the node addresses), else the packet itself, with
//! IANA protocol numbers and ports as firewall rules see them.
//!
//! ```
//! use skoop_sdk::underlay::{Flow, Port, UDP};
//! use skoop_sdk::{Encap, EncapKind, Packet, Protocol};
//!
//! let inner = Packet {
//!     src: "10.244.0.5".parse().unwrap(),
//!     sport: skoop_sdk::EPHEMERAL_PORT,
//!     dst: "10.244.1.7".parse().unwrap(),
//!     dport: 8080,
//!     protocol: Protocol::Tcp,
//!     mark: 0,
//!     encap: None,
//!     reply: false,
//!     tos: 0,
//!     size: 0,
//!     icmp: None,
//! };
//! assert_eq!(Flow::of(&inner).sport, Port::Ephemeral);
//! let outer = Packet {
//!     encap: Some(Encap {
//!         kind: EncapKind::Vxlan,
//!         src: "192.168.0.11".parse().unwrap(),
//!         dst: "192.168.0.12".parse().unwrap(),
//!         vni: Some(1),
//!         port: Some(8472),
//!     }),
//!     ..inner
//! };
//! let f = Flow::of(&outer);
//! assert_eq!((f.protocol, f.dport), (UDP, Port::One(8472)));
//! assert_eq!(f.describe(), "the VXLAN request udp 192.168.0.11 -> 192.168.0.12:8472");
//! ```

use std::net::Ipv4Addr;

use crate::{EPHEMERAL_PORT, EncapKind, Packet, Protocol};

pub const ICMP: u8 = 1;
pub const IPIP: u8 = 4;
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const GRE: u8 = 47;
pub const ICMPV6: u8 = 58;
pub const SCTP: u8 = 132;

/// The ports a client may pick: what a stateless filter must admit for replies.
pub const EPHEMERAL: (u16, u16) = (1024, 65535);

/// The IANA VXLAN port, when the encapsulation does not say.
pub const VXLAN_PORT: u16 = 4789;

/// `tcp`, `udp`, `icmp`, `ipip`, `gre`, `sctp`, `icmpv6`, or `protocol N`.
pub fn protocol_name(p: u8) -> String {
    match p {
        TCP => "tcp".into(),
        UDP => "udp".into(),
        ICMP => "icmp".into(),
        IPIP => "ipip".into(),
        GRE => "gre".into(),
        SCTP => "sctp".into(),
        ICMPV6 => "icmpv6".into(),
        n => format!("protocol {n}"),
    }
}

/// Whether a protocol has ports.
pub fn has_ports(p: u8) -> bool {
    matches!(p, TCP | UDP | SCTP)
}

/// The IANA number of a flow's protocol.
pub fn protocol_number(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => TCP,
        Protocol::Udp => UDP,
        Protocol::Icmp => ICMP,
        Protocol::Sctp => SCTP,
        Protocol::Icmpv6 => ICMPV6,
    }
}

/// A port of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The protocol has no ports (ICMP, IP-in-IP, GRE).
    None,
    /// This port.
    One(u16),
    /// A client's port, unknown: any of the [`EPHEMERAL`] ports.
    Ephemeral,
}

impl Port {
    /// The range of ports it stands for; None for a protocol without ports.
    pub fn range(self) -> Option<(u16, u16)> {
        match self {
            Port::None => None,
            Port::One(p) => Some((p, p)),
            Port::Ephemeral => Some(EPHEMERAL),
        }
    }
}

/// The tunnel a flow is the outer packet of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tunnel {
    Vxlan,
    Ipip,
}

/// What the underlay carries: addresses, IP protocol and ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// IANA protocol number.
    pub protocol: u8,
    pub sport: Port,
    pub dport: Port,
    pub tunnel: Option<Tunnel>,
    pub reply: bool,
}

/// skoop's simulated client port stands for any ephemeral port.
fn client_port(p: u16) -> Port {
    if p == EPHEMERAL_PORT {
        Port::Ephemeral
    } else {
        Port::One(p)
    }
}

impl Flow {
    /// The packet the underlay carries: the outer one of a tunnel, else the packet itself.
    pub fn of(packet: &Packet) -> Flow {
        match packet.encap {
            Some(e) if e.kind == EncapKind::Vxlan => Flow {
                src: e.src,
                dst: e.dst,
                protocol: UDP,
                sport: Port::Ephemeral,
                dport: Port::One(e.port.unwrap_or(VXLAN_PORT)),
                tunnel: Some(Tunnel::Vxlan),
                reply: packet.reply,
            },
            Some(e) => Flow {
                src: e.src,
                dst: e.dst,
                protocol: IPIP,
                sport: Port::None,
                dport: Port::None,
                tunnel: Some(Tunnel::Ipip),
                reply: packet.reply,
            },
            None => {
                let protocol = protocol_number(packet.protocol);
                let (sport, dport) = if !has_ports(protocol) {
                    (Port::None, Port::None)
                } else if packet.reply {
                    (Port::One(packet.sport), client_port(packet.dport))
                } else {
                    (client_port(packet.sport), Port::One(packet.dport))
                };
                Flow {
                    src: packet.src,
                    dst: packet.dst,
                    protocol,
                    sport,
                    dport,
                    tunnel: None,
                    reply: packet.reply,
                }
            }
        }
    }

    /// The traffic the other way: the reply of a request (or the request of a
    /// reply); for a tunnel, the tunnel's packets from the other end.
    pub fn reversed(&self) -> Flow {
        match self.tunnel {
            Some(_) => Flow {
                src: self.dst,
                dst: self.src,
                sport: if self.sport == Port::None {
                    Port::None
                } else {
                    Port::Ephemeral
                },
                reply: !self.reply,
                ..*self
            },
            None => Flow {
                src: self.dst,
                dst: self.src,
                sport: self.dport,
                dport: self.sport,
                reply: !self.reply,
                ..*self
            },
        }
    }

    /// Stateful filters (security groups) pass the reply of an admitted
    /// connection; a tunnel's packets from the other end are a flow of their own.
    pub fn needs_stateful_check(&self) -> bool {
        self.tunnel.is_some() || !self.reply
    }

    /// `the request tcp 10.0.1.10 -> 10.0.2.20:80`,
    /// `the reply tcp 10.0.2.20:80 -> 10.0.1.10 on ephemeral ports 1024-65535`,
    /// `the VXLAN request udp 10.0.1.10 -> 10.0.2.20:8472`.
    pub fn describe(&self) -> String {
        let tunnel = match self.tunnel {
            Some(Tunnel::Vxlan) => "VXLAN ",
            Some(Tunnel::Ipip) => "IP-in-IP ",
            None => "",
        };
        let direction = if self.reply { "reply" } else { "request" };
        let port = |p: Port| match p {
            Port::One(p) => format!(":{p}"),
            _ => String::new(),
        };
        let ephemeral = if self.dport == Port::Ephemeral {
            format!(" on ephemeral ports {}-{}", EPHEMERAL.0, EPHEMERAL.1)
        } else {
            String::new()
        };
        format!(
            "the {tunnel}{direction} {} {}{} -> {}{}{ephemeral}",
            protocol_name(self.protocol),
            self.src,
            port(self.sport),
            self.dst,
            port(self.dport),
        )
    }
}

/// The UTC calendar time of `t` (seconds resolution) as
/// `(year, month, day, hour, minute, second)`, for request signatures
/// (a time before the epoch counts as the epoch).
pub fn utc(t: std::time::SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 { y + 1 } else { y },
        m,
        d,
        (rem / 3600) as u32,
        ((rem / 60) % 60) as u32,
        (rem % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn utc_calendar() {
        assert_eq!(utc(UNIX_EPOCH), (1970, 1, 1, 0, 0, 0));
        // 2015-08-30T12:36:00Z (AWS's SigV4 test suite).
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_secs(1_440_938_160)),
            (2015, 8, 30, 12, 36, 0)
        );
        // 2024-02-29T23:59:59Z, a leap day.
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_secs(1_709_251_199)),
            (2024, 2, 29, 23, 59, 59)
        );
    }
}
