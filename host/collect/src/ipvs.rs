//! IPVS virtual services from `/proc/net/ip_vs` (absent when the kernel has
//! no IPVS).

use std::net::Ipv4Addr;

use skoop_netstack::dump::{IpvsRealServer, IpvsService};

/// Parse `/proc/net/ip_vs` (numeric, hex addresses). IPv6 entries are skipped.
pub fn parse(text: &str) -> Vec<IpvsService> {
    let mut out: Vec<IpvsService> = Vec::new();
    let mut skipping = false;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["->", "RemoteAddress:Port", ..] | ["Prot", ..] | ["IP", ..] | [] => {}
            ["->", addr, forward, weight, ..] if !skipping => {
                let (Some((ip, port)), Ok(weight)) = (hex_endpoint(addr), weight.parse()) else {
                    continue;
                };
                if let Some(svc) = out.last_mut() {
                    svc.real_servers.push(IpvsRealServer {
                        address: ip,
                        port,
                        weight,
                        forward: (*forward).to_string(),
                    });
                }
            }
            ["->", ..] => {}
            ["FWM", mark, scheduler, ..] => {
                skipping = false;
                out.push(IpvsService {
                    protocol: None,
                    address: None,
                    port: None,
                    fwmark: u32::from_str_radix(mark, 16).ok(),
                    scheduler: (*scheduler).to_string(),
                    real_servers: Vec::new(),
                });
            }
            [proto, addr, scheduler, ..] => {
                skipping = true;
                if let Some((ip, port)) = hex_endpoint(addr) {
                    skipping = false;
                    out.push(IpvsService {
                        protocol: Some(proto.to_lowercase()),
                        address: Some(ip),
                        port: Some(port),
                        fwmark: None,
                        scheduler: (*scheduler).to_string(),
                        real_servers: Vec::new(),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// `0A600001:01BB` → 10.96.0.1:443.
fn hex_endpoint(s: &str) -> Option<(Ipv4Addr, u16)> {
    let (ip, port) = s.split_once(':')?;
    if ip.len() != 8 {
        return None;
    }
    Some((
        Ipv4Addr::from(u32::from_str_radix(ip, 16).ok()?),
        u16::from_str_radix(port, 16).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_and_real_servers_are_parsed() {
        let text = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  0A600001:01BB rr
  -> C0A8000B:192B      Masq    1      0          0
UDP  0A60000A:0035 rr
  -> 0AF40109:0035      Masq    1      0          0
  -> 0AF4020A:0035      Masq    2      0          0
FWM  00000001 wrr
";
        let got = parse(text);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].address, Some(Ipv4Addr::new(10, 96, 0, 1)));
        assert_eq!(got[0].port, Some(443));
        assert_eq!(
            got[0].real_servers[0].address,
            Ipv4Addr::new(192, 168, 0, 11)
        );
        assert_eq!(got[0].real_servers[0].port, 6443);
        assert_eq!(got[1].protocol.as_deref(), Some("udp"));
        assert_eq!(got[1].real_servers.len(), 2);
        assert_eq!(got[1].real_servers[1].weight, 2);
        assert_eq!(got[2].fwmark, Some(1));
    }
}
