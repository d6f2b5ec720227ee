#!/usr/bin/env python3
"""Write the Kubernetes objects and kube-proxy/flannel iptables text for the
kernel bench, using tests/fixtures/generate.py's builders so the emulated
cluster has exactly the fixtures' shapes.

    cluster.py BACKEND VARIANT OUTDIR

BACKEND: vxlan | host-gw.  VARIANT: healthy | no-endpoints (both web backends
not ready: kube-proxy's REJECT rules for the web service).
Writes OUTDIR/cluster.json, OUTDIR/iptables-<node>.txt and OUTDIR/topology.json
(nodes, pods, MACs the bench must give the kernel's devices).
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import generate as g  # noqa: E402


def calico_main(mode: str, variant: str, out: Path) -> None:
    """Calico: BACKEND calico-bgp | calico-vxlan; VARIANT healthy |
    policy-9090 (web-2 admits only port 9090) | policy-8080 (admits 8080) |
    no-nat-rule (the pool says natOutgoing, felix's rule is missing)."""
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
    elif variant != "healthy":
        raise SystemExit(f"unknown variant {variant}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "cluster.json").write_text(json.dumps(b.cluster(), indent=1) + "\n")
    for n in g.NODES:
        veths = [c.cali_name(p.key) for p in g.PODS if p.node == n.name]
        (out / f"iptables-{n.name}.txt").write_text(c.host_iptables(b.items, n, veths, **kw))
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
    elif variant != "healthy":
        raise SystemExit(f"unknown variant {variant}")
    out.mkdir(parents=True, exist_ok=True)
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
