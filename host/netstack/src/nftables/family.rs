//! nftables address families and their named priorities.

use std::fmt;

/// An nftables address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Ip,
    Ip6,
    Inet,
    Arp,
    Bridge,
    Netdev,
}

impl Family {
    pub fn parse(s: &str) -> Option<Family> {
        Some(match s {
            "ip" => Family::Ip,
            "ip6" => Family::Ip6,
            "inet" => Family::Inet,
            "arp" => Family::Arp,
            "bridge" => Family::Bridge,
            "netdev" => Family::Netdev,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
            Family::Arp => "arp",
            Family::Bridge => "bridge",
            Family::Netdev => "netdev",
        }
    }

    /// The value of a named priority (`dstnat`, `filter`, ...) in this
    /// family, per nft(8) "Standard priority names".
    pub fn named_priority(self, name: &str) -> Option<i32> {
        match self {
            Family::Bridge => match name {
                "dstnat" => Some(-300),
                "filter" => Some(-200),
                "out" => Some(100),
                "srcnat" => Some(300),
                _ => None,
            },
            _ => match name {
                "raw" => Some(-300),
                "mangle" => Some(-150),
                "dstnat" => Some(-100),
                "filter" => Some(0),
                "security" => Some(50),
                "srcnat" => Some(100),
                _ => None,
            },
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
