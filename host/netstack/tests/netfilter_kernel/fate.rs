//! What happened to one probe, as the kernel or the simulator tells it.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Host {
    Server,
    Router,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fate {
    /// Reached a socket: the (translated) destination it arrived at and the
    /// source address the receiver saw.
    Delivered {
        host: Host,
        dst: SocketAddrV4,
        src: Ipv4Addr,
    },
    Dropped,
    Rejected,
}

impl fmt::Display for Fate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fate::Delivered { host, dst, src } => {
                let h = match host {
                    Host::Server => "server",
                    Host::Router => "router",
                };
                write!(f, "delivered to {h} at {dst} from {src}")
            }
            Fate::Dropped => f.write_str("dropped"),
            Fate::Rejected => f.write_str("rejected"),
        }
    }
}
