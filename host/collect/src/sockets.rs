//! Listening TCP and bound UDP sockets of the calling thread's netns, from
//! `/proc/thread-self/net/{tcp,udp,tcp6,udp6}`. A socket bound to `::` (not
//! v6only) also takes IPv4, so it is recorded as `0.0.0.0`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use skoop_netstack::dump::Socket;

const TCP_LISTEN: &str = "0A";
const UDP_UNCONNECTED: &str = "07";

/// Parse the four tables under `net_dir`; an unreadable one is an error
/// (the caller records it as absent).
pub fn collect(net_dir: &Path) -> Result<Vec<Socket>, String> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (file, proto, state) in [
        ("tcp", "tcp", TCP_LISTEN),
        ("tcp6", "tcp", TCP_LISTEN),
        ("udp", "udp", UDP_UNCONNECTED),
        ("udp6", "udp", UDP_UNCONNECTED),
    ] {
        match std::fs::read_to_string(net_dir.join(file)) {
            Ok(text) => out.extend(parse(&text, proto, state)),
            // No IPv6 in the kernel: the v6 tables are simply missing.
            Err(_) if file.ends_with('6') => {}
            Err(e) => errors.push(format!("{}: {e}", net_dir.join(file).display())),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    out.sort_by(|a, b| (&a.protocol, a.port, a.ip).cmp(&(&b.protocol, b.port, b.ip)));
    out.dedup_by(|a, b| a.protocol == b.protocol && a.port == b.port && a.ip == b.ip);
    Ok(out)
}

/// Sockets of one `/proc/net/{tcp,udp}[6]` table in `state` whose remote end is unset.
pub fn parse(text: &str, protocol: &str, state: &str) -> Vec<Socket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, st) = (f.get(1)?, f.get(2)?, f.get(3)?);
            if *st != state || !remote_unset(remote) {
                return None;
            }
            let (ip, port) = local.split_once(':')?;
            Some(Socket {
                protocol: protocol.to_string(),
                ip: ipv4_of(ip)?,
                port: u16::from_str_radix(port, 16).ok()?,
            })
        })
        .collect()
}

fn remote_unset(remote: &str) -> bool {
    remote
        .split_once(':')
        .is_some_and(|(ip, port)| port.chars().all(|c| c == '0') && ip.chars().all(|c| c == '0'))
}

/// The IPv4 address of a hex address field: 8 digits (v4, host byte order as
/// the kernel prints it), or 32 digits (v6: `::` → 0.0.0.0, `::ffff:a.b.c.d`
/// → a.b.c.d, anything else is not IPv4).
fn ipv4_of(hex: &str) -> Option<Ipv4Addr> {
    // The kernel prints each 32-bit word of the address as a native-endian
    // integer; on a little-endian host its bytes come out reversed.
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::to_le_bytes);
    match hex.len() {
        8 => Some(Ipv4Addr::from(word(hex)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(hex.get(i * 8..i * 8 + 8)?)?);
            }
            let v6 = Ipv6Addr::from(bytes);
            if v6.is_unspecified() {
                Some(Ipv4Addr::UNSPECIFIED)
            } else {
                v6.to_ipv4_mapped()
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:2818 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0500F40A:1F90 0600F40A:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 0A 00000000:00000000
   1: 0000000000000000FFFF00000500F40A:0050 00000000000000000000000000000000:0000 0A 00000000:00000000
   2: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000
";

    #[test]
    fn listening_v4_sockets_are_parsed() {
        let got = parse(TCP, "tcp", TCP_LISTEN);
        let got: Vec<_> = got.iter().map(|s| (s.ip.to_string(), s.port)).collect();
        assert_eq!(
            got,
            vec![
                ("0.0.0.0".to_string(), 8080),
                ("127.0.0.1".to_string(), 10264)
            ]
        );
    }

    #[test]
    fn v6_any_and_mapped_addresses_count_as_v4() {
        let got = parse(TCP6, "tcp", TCP_LISTEN);
        let got: Vec<_> = got.iter().map(|s| (s.ip.to_string(), s.port)).collect();
        assert_eq!(
            got,
            vec![("0.0.0.0".to_string(), 53), ("10.244.0.5".to_string(), 80)]
        );
    }

    #[test]
    fn udp_needs_an_unset_remote() {
        let udp = "  sl  local_address rem_address   st\n   0: 00000000:0035 00000000:0000 07 0\n   1: 00000000:0036 0100007F:0035 01 0\n";
        let got = parse(udp, "udp", UDP_UNCONNECTED);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].port, 53);
    }
}
