//! Small value parsers shared by rules and ipsets: numbers, marks, addresses,
//! address masks, ranges and ports.

use std::net::Ipv4Addr;

/// A decimal or `0x` hexadecimal u32.
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// `VALUE[/MASK]`; the mask defaults to all ones.
pub(crate) fn parse_mark(s: &str) -> Option<(u32, u32)> {
    match s.split_once('/') {
        Some((v, m)) => Some((parse_u32(v)?, parse_u32(m)?)),
        None => Some((parse_u32(s)?, u32::MAX)),
    }
}

/// A dotted-quad IPv4 address.
pub(crate) fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}

/// Netmask with the top `prefix` bits set (`prefix` ≤ 32).
pub(crate) fn prefix_mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

/// An address with a (possibly non-contiguous) mask, as `-s`/`-d` take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AddrMask {
    pub addr: u32,
    pub mask: u32,
}

impl AddrMask {
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask == self.addr & self.mask
    }
}

/// `A.B.C.D`, `A.B.C.D/N` or `A.B.C.D/M.M.M.M`.
pub(crate) fn parse_addr_mask(s: &str) -> Option<AddrMask> {
    let (a, m) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    let addr = u32::from(parse_ipv4(a)?);
    let mask = match m {
        None => u32::MAX,
        Some(m) if m.contains('.') => u32::from(parse_ipv4(m)?),
        Some(m) => {
            let p: u8 = m.parse().ok()?;
            if p > 32 {
                return None;
            }
            prefix_mask(p)
        }
    };
    Some(AddrMask { addr, mask })
}

/// `A.B.C.D` or `A.B.C.D/N` as (network, prefix); the host bits are cleared.
pub(crate) fn parse_cidr(s: &str) -> Option<(u32, u8)> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, p.parse::<u8>().ok()?),
        None => (s, 32),
    };
    if p > 32 {
        return None;
    }
    let addr = u32::from(parse_ipv4(a)?);
    Some((addr & prefix_mask(p), p))
}

/// `A.B.C.D-E.F.G.H` as an inclusive range.
pub(crate) fn parse_ip_range(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-')?;
    let lo = u32::from(parse_ipv4(a)?);
    let hi = u32::from(parse_ipv4(b)?);
    (lo <= hi).then_some((lo, hi))
}

/// A port number (service names are not resolved).
pub(crate) fn parse_port(s: &str) -> Option<u16> {
    s.parse().ok()
}

/// `P`, `A:B`, `A:` (to 65535) or `:B` (from 0) with separator `sep`.
pub(crate) fn parse_port_range(s: &str, sep: char) -> Option<(u16, u16)> {
    match s.split_once(sep) {
        None => {
            let p = parse_port(s)?;
            Some((p, p))
        }
        Some((a, b)) => {
            let lo = if a.is_empty() { 0 } else { parse_port(a)? };
            let hi = if b.is_empty() {
                u16::MAX
            } else {
                parse_port(b)?
            };
            (lo <= hi).then_some((lo, hi))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_marks() {
        assert_eq!(parse_u32("0x4000"), Some(0x4000));
        assert_eq!(parse_u32("16"), Some(16));
        assert_eq!(parse_u32("0xzz"), None);
        assert_eq!(parse_mark("0x4000/0x4000"), Some((0x4000, 0x4000)));
        assert_eq!(parse_mark("1"), Some((1, u32::MAX)));
        assert_eq!(parse_mark("1/"), None);
    }

    #[test]
    fn addresses() {
        let m = parse_addr_mask("10.0.0.0/8").expect("cidr");
        assert!(m.contains(Ipv4Addr::new(10, 1, 2, 3)));
        assert!(!m.contains(Ipv4Addr::new(11, 1, 2, 3)));
        let m = parse_addr_mask("10.0.0.0/255.255.0.0").expect("dotted");
        assert_eq!(m.mask, 0xffff_0000);
        let m = parse_addr_mask("1.2.3.4").expect("host");
        assert!(m.contains(Ipv4Addr::new(1, 2, 3, 4)));
        assert!(parse_addr_mask("1.2.3.4/33").is_none());
        assert!(parse_addr_mask("host.example").is_none());
        assert_eq!(parse_addr_mask("0.0.0.0/0").map(|m| m.mask), Some(0));
        assert_eq!(parse_cidr("10.1.2.3/16"), Some((0x0a01_0000, 16)));
        assert_eq!(
            parse_ip_range("10.0.0.1-10.0.0.9"),
            Some((0x0a00_0001, 0x0a00_0009))
        );
        assert_eq!(parse_ip_range("10.0.0.9-10.0.0.1"), None);
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port_range("80", ':'), Some((80, 80)));
        assert_eq!(parse_port_range("80:90", ':'), Some((80, 90)));
        assert_eq!(parse_port_range("1024:", ':'), Some((1024, 65535)));
        assert_eq!(parse_port_range(":10", ':'), Some((0, 10)));
        assert_eq!(parse_port_range("90:80", ':'), None);
        assert_eq!(parse_port_range("http", ':'), None);
        assert_eq!(parse_port_range("70000", ':'), None);
    }
}
