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

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import generate as g  # noqa: E402
import nft_rules  # noqa: E402


# ---------------------------------------------------- kube-proxy, nftables mode

# kube-proxy's table as its nftables proxier (v1.34/v1.35) writes it, and the
# node's iptables without kube-proxy's chains: the fixtures' writer
# (tests/fixtures/nft_rules.py), loaded here into the kernel.
NFT_KUBE_VERSION = nft_rules.NFT_KUBE_VERSION


def kube_proxy_nft(items: list, node_ip: str) -> str:
    """`table ip kube-proxy` on a node (nodePortAddresses unset: nftables
    mode's default `primary`, the node's IP)."""
    return nft_rules.kube_proxy_table(g.service_ports(items), node_ip, g.CLUSTER_CIDR,
                                      g.SERVICE_CIDR)


def without_kube_proxy(text: str) -> str:
    return nft_rules.without_kube_proxy(text)


def nftables_mode(items: list) -> None:
    """kube-proxy's ConfigMap: mode nftables, as a v1.34 kubeadm writes it."""
    cm = next(i for i in items if i["kind"] == "ConfigMap"
              and i["metadata"]["name"] == "kube-proxy")
    cm["data"]["config.conf"] = nft_rules.nftables_config(cm["data"]["config.conf"])


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
