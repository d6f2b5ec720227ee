#!/usr/bin/env python3
"""Write the Kubernetes objects and kube-proxy/flannel iptables text for the
kernel bench, using tests/fixtures/generate.py's builders so the emulated
cluster has exactly the fixtures' shapes.

    cluster.py BACKEND VARIANT OUTDIR

BACKEND: vxlan | host-gw.  VARIANT: healthy | no-endpoints (both web backends
not ready: kube-proxy's REJECT rules for the web service) | nftables (below).
Writes OUTDIR/cluster.json, OUTDIR/iptables-<node>.txt and OUTDIR/topology.json
(nodes, pods, MACs the bench must give the kernel's devices).

VARIANT nftables (any backend, Calico's too): kube-proxy runs in nftables
mode. Its ConfigMap says `mode: "nftables"` (the cluster at NFT_KUBE_VERSION),
the iptables text keeps the kubelet's and the CNI's rules only, and
OUTDIR/nft-<node>.nft holds `table ip kube-proxy` as kube-proxy's nftables
proxier writes it (v1.34/v1.35 layout: pkg/proxy/nftables/proxier.go and the
`baseRules` of its proxier_test.go), loaded with `nft -f` in the node's netns.
"""

import base64
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import generate as g  # noqa: E402


# ---------------------------------------------------- kube-proxy, nftables mode

# The nftables proxier's layout (filter chains at priority `filter`,
# `filter-*-pre-dnat` at dstnat - 10, the ClusterIP masquerade rule without
# protocol and port, `mark-for-masquerade` still a chain) is that of v1.34 and
# v1.35; the cluster runs that version in this variant.
NFT_KUBE_VERSION = "v1.34.2"
# kube-proxy's own iptables chains: gone in nftables mode (the proxier cleans
# up iptables mode's rules when it starts); the kubelet's stay.
KUBELET_CHAINS = ("KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT")
MASQ_MARK = "0x00004000"

NFT_BASE = """\
	chain filter-prerouting-pre-dnat {
		type filter hook prerouting priority dstnat - 10; policy accept;
		ct state new jump firewall-check
	}
	chain filter-output-pre-dnat {
		type filter hook output priority -110; policy accept;
		ct state new jump firewall-check
	}
	chain filter-forward {
		type filter hook forward priority filter; policy accept;
		ct state new jump service-endpoints-check
		ct state new jump cluster-ips-check
	}
	chain filter-input {
		type filter hook input priority filter; policy accept;
		ct state new jump nodeport-endpoints-check
		ct state new jump service-endpoints-check
	}
	chain filter-output {
		type filter hook output priority filter; policy accept;
		ct state new jump service-endpoints-check
		ct state new jump cluster-ips-check
	}
	chain nat-output {
		type nat hook output priority -100; policy accept;
		jump services
	}
	chain nat-postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		jump masquerading
	}
	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}
	chain services {
		ip daddr . meta l4proto . th dport vmap @service-ips
		ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
	}
	chain firewall-check {
		ip daddr . meta l4proto . th dport vmap @firewall-ips
	}
	chain service-endpoints-check {
		ip daddr . meta l4proto . th dport vmap @no-endpoint-services
	}
	chain nodeport-endpoints-check {
		ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
	}
	chain cluster-ips-check {
		ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
		ip daddr %(service_cidr)s drop comment "Drop traffic to unallocated ClusterIPs"
	}
	chain reject-chain {
		comment "helper for @no-endpoint-services / @no-endpoint-nodeports"
		reject
	}
	chain mark-for-masquerade {
		meta mark set meta mark | %(mark)s
	}
	chain masquerading {
		meta mark & %(mark)s == 0x00000000 return
		meta mark set meta mark ^ %(mark)s
		masquerade fully-random
	}
"""


def nft_chain(prefix: str, base: str) -> str:
    """proxier.go hashAndTruncate: base32(sha256(base))[:8] + "-" + base."""
    digest = base64.b32encode(hashlib.sha256(base.encode()).digest()).decode()
    return f"{prefix}{digest[:8]}-{base}"


def service_base(sp) -> str:
    """servicePortChainNameBase: namespace/name/protocol/portName."""
    svc, port = sp.name.split(":")
    return f"{svc}/{sp.protocol}/{port}"


def endpoint_base(sp, ep: str) -> str:
    """servicePortEndpointChainNameBase: ...__endpointIP/endpointPort."""
    ip, port = ep.rsplit(":", 1)
    return f"{service_base(sp)}__{ip.replace(':', '.')}/{port}"


def nft_set(kind: str, name: str, typ: str, comment: str, elements: list) -> str:
    lines = [f"\t{kind} {name} {{", f"\t\ttype {typ}", f'\t\tcomment "{comment}"']
    if elements:
        lines.append("\t\telements = { " + ", ".join(elements) + " }")
    return "\n".join(lines + ["\t}"]) + "\n"


def kube_proxy_nft(items: list, node_ip: str) -> str:
    """`table ip kube-proxy` on a node (nodePortAddresses unset: nftables
    mode's default `primary`, the node's IP)."""
    cluster_ips, service_ips, nodeports, no_ep, no_ep_np = set(), [], [], [], []
    chains = []
    for sp in g.service_ports(items):
        if sp.local:
            raise SystemExit(f"{sp.name}: externalTrafficPolicy Local is not written here")
        cluster_ips.add(sp.cluster_ip)
        svc_name = sp.name
        if not sp.endpoints:
            no_ep.append(f'{sp.cluster_ip} . {sp.protocol} . {sp.port} comment "{svc_name}" '
                         ": goto reject-chain")
            if sp.node_port:
                no_ep_np.append(f'{sp.protocol} . {sp.node_port} comment "{svc_name}" '
                                ": goto reject-chain")
            continue
        svc_chain = nft_chain("service-", service_base(sp))
        service_ips.append(f"{sp.cluster_ip} . {sp.protocol} . {sp.port} : goto {svc_chain}")
        eps = [nft_chain("endpoint-", endpoint_base(sp, ep)) for ep in sp.endpoints]
        vmap = ", ".join(f"{i} : goto {c}" for i, c in enumerate(eps))
        chains.append((svc_chain, [
            f"ip daddr {sp.cluster_ip} ip saddr != {g.CLUSTER_CIDR} jump mark-for-masquerade",
            f"numgen random mod {len(eps)} vmap {{ {vmap} }}"]))
        for ep, chain in zip(sp.endpoints, eps):
            ip = ep.rsplit(":", 1)[0]
            chains.append((chain, [f"ip saddr {ip} jump mark-for-masquerade",
                                   f"meta l4proto {sp.protocol} dnat to {ep}"]))
        if sp.node_port:
            ext = nft_chain("external-", service_base(sp))
            nodeports.append(f"{sp.protocol} . {sp.node_port} : goto {ext}")
            chains.append((ext, ["jump mark-for-masquerade", f"goto {svc_chain}"]))
    addr_port = "ipv4_addr . inet_proto . inet_service : verdict"
    text = 'table ip kube-proxy {\n\tcomment "rules for kube-proxy"\n'
    text += nft_set("set", "cluster-ips", "ipv4_addr", "Active ClusterIPs", sorted(cluster_ips))
    text += nft_set("set", "nodeport-ips", "ipv4_addr", "IPs that accept NodePort traffic",
                    [node_ip])
    text += nft_set("map", "firewall-ips", addr_port,
                    "destinations that are subject to LoadBalancerSourceRanges", [])
    text += nft_set("map", "no-endpoint-nodeports", "inet_proto . inet_service : verdict",
                    "vmap to drop or reject packets to service nodeports with no endpoints",
                    no_ep_np)
    text += nft_set("map", "no-endpoint-services", addr_port,
                    "vmap to drop or reject packets to services with no endpoints", no_ep)
    text += nft_set("map", "service-ips", addr_port,
                    "ClusterIP, ExternalIP and LoadBalancer IP traffic", service_ips)
    text += nft_set("map", "service-nodeports", "inet_proto . inet_service : verdict",
                    "NodePort traffic", nodeports)
    text += NFT_BASE % {"service_cidr": g.SERVICE_CIDR, "mark": MASQ_MARK}
    for name, rules in chains:
        text += f"\tchain {name} {{\n" + "".join(f"\t\t{r}\n" for r in rules) + "\t}\n"
    return text + "}\n"


def without_kube_proxy(text: str) -> str:
    """iptables-save text without kube-proxy's chains and the jumps to them."""
    def theirs(chain: str) -> bool:
        return chain.startswith("KUBE-") and chain not in KUBELET_CHAINS

    out = []
    for line in text.splitlines():
        if line.startswith(":") and theirs(line[1:].split()[0]):
            continue
        if line.startswith("-A "):
            words = line.split()
            targets = [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-j", "-g")]
            if theirs(words[1]) or any(theirs(t) for t in targets):
                continue
        out.append(line)
    return "\n".join(out) + "\n"


def nftables_mode(items: list) -> None:
    """kube-proxy's ConfigMap: mode nftables, with the nftables section a
    v1.34 kubeadm writes."""
    cm = next(i for i in items if i["kind"] == "ConfigMap"
              and i["metadata"]["name"] == "kube-proxy")
    conf = cm["data"]["config.conf"]
    assert 'mode: "iptables"\n' in conf and "\nnodePortAddresses:" in conf
    conf = conf.replace('mode: "iptables"\n', 'mode: "nftables"\n')
    conf = conf.replace("\nnodePortAddresses:", "\nnftables:\n  masqueradeAll: false\n"
                        "  masqueradeBit: null\n  minSyncPeriod: 0s\n  syncPeriod: 0s\n"
                        "nodePortAddresses:")
    cm["data"]["config.conf"] = conf


def write_nftables(b, iptables: dict, out: Path) -> None:
    """The nftables variant's files (b: a generate.py or calico.py Bundle):
    cluster.json at NFT_KUBE_VERSION, the iptables text without kube-proxy,
    and each node's kube-proxy table."""
    items = b.items
    nftables_mode(items)
    text = json.dumps(b.cluster(), indent=1) + "\n"
    (out / "cluster.json").write_text(text.replace(g.KUBE_VERSION, NFT_KUBE_VERSION))
    for n in g.NODES:
        (out / f"iptables-{n.name}.txt").write_text(without_kube_proxy(iptables[n.name]))
        (out / f"nft-{n.name}.nft").write_text(kube_proxy_nft(items, n.ip))


def calico_main(mode: str, variant: str, out: Path) -> None:
    """Calico: BACKEND calico-bgp | calico-vxlan; VARIANT healthy |
    policy-9090 (web-2 admits only port 9090) | policy-8080 (admits 8080) |
    no-nat-rule (the pool says natOutgoing, felix's rule is missing) |
    nftables (kube-proxy in nftables mode, felix in iptables mode)."""
    import calico as c
    b = c.build(mode)
    kw = {}
    if variant.startswith("policy-"):
        port = variant.removeprefix("policy-")
        kw["policy"] = {c.cali_name(c.WEB2): (c.DENY_CHAIN, [
            f"-p tcp -m comment --comment \"cali:p1\" -m multiport --dports {port} "
            "-j MARK --set-xmark 0x10000/0x10000",
            "-m comment --comment \"cali:p2\" -m mark --mark 0x10000/0x10000 -j RETURN"])}
    elif variant == "no-nat-rule":
        kw["nat_outgoing"] = False
    elif variant not in ("healthy", "nftables"):
        raise SystemExit(f"unknown variant {variant}")
    out.mkdir(parents=True, exist_ok=True)
    iptables = {n.name: c.host_iptables(b.items, n, [c.cali_name(p.key) for p in g.PODS
                                                      if p.node == n.name], **kw)
                for n in g.NODES}
    if variant == "nftables":
        write_nftables(b, iptables, out)
    else:
        (out / "cluster.json").write_text(json.dumps(b.cluster(), indent=1) + "\n")
        for n in g.NODES:
            (out / f"iptables-{n.name}.txt").write_text(iptables[n.name])
    topo = {
        "gateway": g.GATEWAY,
        "pod_mtu": c.pod_mtu(mode),
        "vni": c.VNI,
        "vxlan_port": c.VXLAN_PORT,
        "nodes": [{"name": n.name, "ip": n.ip, "pod_cidr": c.block(n),
                   "cni0_ip": "", "vtep_ip": c.tunnel_ip(n),
                   "vtep_mac": c.vtep_mac(n.name)} for n in g.NODES],
        "pods": [{"namespace": p.namespace, "name": p.name, "node": p.node, "ip": p.ip,
                  "tcp": [port for _, port, proto in p.ports if proto == "TCP"],
                  "udp": [port for _, port, proto in p.ports if proto == "UDP"],
                  "veth": c.cali_name(p.key)} for p in g.PODS],
    }
    (out / "topology.json").write_text(json.dumps(topo, indent=1) + "\n")


def main() -> None:
    backend, variant, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    if backend.startswith("calico-"):
        calico_main(backend.removeprefix("calico-"), variant, out)
        return
    b = g.build_base(backend)
    if variant == "no-endpoints":
        g.svc_no_endpoints(b)
    elif variant not in ("healthy", "nftables"):
        raise SystemExit(f"unknown variant {variant}")
    out.mkdir(parents=True, exist_ok=True)
    if variant == "nftables":
        write_nftables(b, {n.name: b.host(n.name)["iptables"] for n in g.NODES}, out)
    else:
        (out / "cluster.json").write_text(json.dumps(b.cluster(), indent=1) + "\n")
        for n in g.NODES:
            (out / f"iptables-{n.name}.txt").write_text(b.host(n.name)["iptables"])
    topo = {
        "gateway": g.GATEWAY,
        "pod_mtu": g.POD_MTU[backend],
        "vni": g.VNI,
        "vxlan_port": g.VXLAN_PORT,
        "nodes": [{"name": n.name, "ip": n.ip, "pod_cidr": n.pod_cidr,
                   "cni0_ip": n.cni0_ip, "vtep_ip": n.vtep_ip,
                   "vtep_mac": g.vtep_mac(n.name)} for n in g.NODES],
        "pods": [{"namespace": p.namespace, "name": p.name, "node": p.node, "ip": p.ip,
                  "tcp": [port for _, port, proto in p.ports if proto == "TCP"],
                  "udp": [port for _, port, proto in p.ports if proto == "UDP"],
                  "veth": g.veth_name(p.key)} for p in g.PODS],
    }
    (out / "topology.json").write_text(json.dumps(topo, indent=1) + "\n")


if __name__ == "__main__":
    main()
