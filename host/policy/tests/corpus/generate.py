#!/usr/bin/env python3
"""Writes the policy corpus: one object-only bundle per case (DIR/cluster.json) and its
expected reachability (DIR/expected.json).

The scenarios and their expected reachability are transcribed from public suites, in their
own vocabulary (a truth table that starts all-allowed, then ExpectPeer / ExpectAllIngress /
ExpectAllEgress / Expect edits), never produced by skoop:
  * upstream Kubernetes e2e, test/e2e/network/netpol/network_policy.go ("e2e-…" cases);
    the model is namespaces x, y, z with pods a, b, c labelled pod=<name>, each serving
    ports 80 and 81 over TCP, UDP and SCTP with container ports named serve-<port>-<proto>;
  * sigs.k8s.io/network-policy-api conformance (AdminNetworkPolicy and
    BaselineAdminNetworkPolicy, "anp-…" / "banp-…" cases; the namespaces gryffindor,
    slytherin, hufflepuff, ravenclaw and their pods);
  * the Kubernetes NetworkPolicy documentation for semantics the suites leave to a CNI
    ("doc-…" cases), and KubeSkoop's known bugs NP1–NP9 ("np…-" cases), each a scenario
    whose documented answer KubeSkoop gets wrong.
Upstream ignores loopback; the Kubernetes documentation says a pod cannot block access to
itself, so every self pair is expected allowed.

Run: python3 host/policy/tests/corpus/generate.py (rewrites the case directories).
"""

import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOS = ["TCP", "UDP", "SCTP"]


# ---------------------------------------------------------------- objects

def namespace(name, labels=None):
    l = {"kubernetes.io/metadata.name": name}
    l.update(labels or {})
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": l}}


def node(name, ip, labels=None):
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels or {"kubernetes.io/hostname": name}},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(ns, name, ip, labels, node_name, ports=(80, 81), host_network=False):
    containers = []
    for port in ports:
        for proto in PROTOS:
            containers.append({"name": "cont-%d-%s" % (port, proto.lower()), "image": "agnhost",
                               "ports": [{"containerPort": port, "protocol": proto,
                                          "name": "serve-%d-%s" % (port, proto.lower())}]})
    spec = {"nodeName": node_name, "containers": containers}
    if host_network:
        spec["hostNetwork"] = True
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"namespace": ns, "name": name, "labels": labels},
            "spec": spec,
            "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": "True"}], "hostIP": "192.168.0.%d" % (1 if node_name == "node-1" else 2)}}


def netpol(ns, name, pod_selector, ingress=None, egress=None, types=None):
    spec = {"podSelector": pod_selector}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    # Like upstream's SetSpecIngressRules / SetSpecEgressRules, policyTypes name the
    # directions given; types="omit" leaves them to the API's defaulting.
    if types is None:
        types = (["Ingress"] if ingress is not None else []) + (["Egress"] if egress is not None else [])
    if types != "omit":
        spec["policyTypes"] = types
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"namespace": ns, "name": name}, "spec": spec}


def ml(**kv):
    return {"matchLabels": dict(kv)}


def nsname(n):
    return {"matchLabels": {"kubernetes.io/metadata.name": n}}


def expr(key, op, values=None):
    e = {"key": key, "operator": op}
    if values is not None:
        e["values"] = values
    return {"matchExpressions": [e]}


def port(p, proto=None, end=None):
    d = {"port": p}
    if proto:
        d["protocol"] = proto
    if end is not None:
        d["endPort"] = end
    return d


# ---------------------------------------------------------------- the e2e model

XYZ_IPS = {}


def e2e_pods(names):
    """names like ["x/a", "y/b"]; x/* on node-1, y/* and z/* on node-2."""
    out = []
    base = {"x": 1, "y": 2, "z": 3}
    for n in names:
        ns, p = n.split("/")
        ip = "10.0.%d.%d" % (base[ns], 10 + "abc".index(p))
        XYZ_IPS[n] = ip
        out.append(pod(ns, p, ip, {"pod": p}, "node-1" if ns == "x" else "node-2"))
    return out


class Reach:
    """A truth table over pod ids, all-allowed to start (NewReachability(pods, true))."""

    def __init__(self, pods):
        self.pods = pods
        self.m = {(f, t): True for f in pods for t in pods}

    def expect(self, f, t, v):
        self.m[(f, t)] = v

    def expect_peer(self, fns, fpod, tns, tpod, v):
        for (f, t) in self.m:
            if (fns is None or f.split("/")[0] == fns) and (fpod is None or f.split("/")[1] == fpod) \
                    and (tns is None or t.split("/")[0] == tns) and (tpod is None or t.split("/")[1] == tpod):
                self.m[(f, t)] = v

    def all_ingress(self, t, v):
        for f in self.pods:
            self.m[(f, t)] = v

    def all_egress(self, f, v):
        for t in self.pods:
            self.m[(f, t)] = v

    def table(self):
        for p in self.pods:
            self.m[(p, p)] = True  # a pod cannot block access to itself
        return {f: {t: self.m[(f, t)] for t in self.pods} for f in self.pods}


CASES = []


def case(name, source, objects, checks):
    CASES.append((name, source, objects, checks))


def e2e(name, pods, policies, checks, extra=None):
    """checks: list of (port, proto, fn(Reach))."""
    objs = [namespace("x"), namespace("y"), namespace("z"),
            node("node-1", "192.168.0.1"), node("node-2", "192.168.0.2")]
    objs += e2e_pods(pods) + (extra or []) + policies
    out = []
    for (p, proto, fn) in checks:
        r = Reach(pods)
        fn(r)
        out.append({"port": p, "protocol": proto, "reachability": r.table()})
    case(name, "kubernetes e2e network_policy.go: " + name.replace("e2e-", ""), objs, out)


def nothing(r):
    pass


# ---- upstream e2e: "NetworkPolicy between server and client"

e2e("e2e-default-deny-ingress", ["x/a", "x/b", "y/a", "y/b"],
    [netpol("x", "deny-ingress", {}, ingress=[])],
    [(80, "TCP", lambda r: r.expect_peer(None, None, "x", None, False))])

e2e("e2e-default-deny-all", ["x/a", "x/b", "y/a"],
    [netpol("x", "deny-all", {}, ingress=[], egress=[], types=["Ingress", "Egress"])],
    [(80, "TCP", lambda r: (r.expect_peer(None, None, "x", None, False), r.expect_peer("x", None, None, None, False)))])

e2e("e2e-podselector-same-namespace", ["x/a", "x/b", "x/c", "y/a"],
    [netpol("x", "x-a-allows-x-b", ml(pod="a"), ingress=[{"from": [{"podSelector": ml(pod="b")}]}])],
    [(80, "TCP", lambda r: (r.all_ingress("x/a", False), r.expect("x/b", "x/a", True)))])

e2e("e2e-allow-ingress-for-a-target", ["x/a", "x/b", "y/a"],
    [netpol("x", "deny-all", {}, ingress=[]),
     netpol("x", "allow-all-to-a", ml(pod="a"), ingress=[{"from": [{"podSelector": {}, "namespaceSelector": {}}]}])],
    [(80, "TCP", lambda r: (r.all_ingress("x/a", True), r.all_ingress("x/b", False)))])

e2e("e2e-ingress-from-all-namespaces", ["x/a", "x/b", "y/a", "z/a"],
    [netpol("x", "allow-from-another-ns", ml(pod="a"), ingress=[{"from": [{"namespaceSelector": {"matchLabels": {}}}]}])],
    [(80, "TCP", nothing)])

e2e("e2e-namespaceselector-other-namespace", ["x/a", "x/b", "y/a", "z/a"],
    [netpol("x", "allow-client-a-via-ns-selector", ml(pod="a"), ingress=[{"from": [{"namespaceSelector": nsname("y")}]}])],
    [(80, "TCP", lambda r: (r.expect_peer("x", None, "x", "a", False), r.expect_peer("z", None, "x", "a", False)))])

e2e("e2e-podselector-matchexpressions", ["x/a", "x/b", "y/a"],
    [netpol("x", "x-a-allows-x-b", ml(pod="a"), ingress=[{"from": [{"podSelector": expr("pod", "In", ["b"])}]}])],
    [(80, "TCP", lambda r: (r.all_ingress("x/a", False), r.expect("x/b", "x/a", True)))])

e2e("e2e-namespaceselector-matchexpressions", ["x/a", "x/b", "y/a", "z/a"],
    [netpol("x", "allow-ns-y-match-selector", ml(pod="a"),
            ingress=[{"from": [{"namespaceSelector": expr("kubernetes.io/metadata.name", "In", ["y"])}]}])],
    [(80, "TCP", lambda r: (r.expect_peer("x", None, "x", "a", False), r.expect_peer("z", None, "x", "a", False)))])

e2e("e2e-podselector-or-namespaceselector", ["x/a", "x/b", "x/c", "y/a"],
    [netpol("x", "allow-ns-y-match-selector", ml(pod="a"),
            ingress=[{"from": [{"namespaceSelector": expr("kubernetes.io/metadata.name", "NotIn", ["x"])},
                               {"podSelector": ml(pod="b")}]}])],
    [(80, "TCP", lambda r: (r.expect("x/a", "x/a", False), r.expect("x/c", "x/a", False)))])

e2e("e2e-podselector-and-namespaceselector", ["x/a", "x/b", "y/a", "y/b", "z/b"],
    [netpol("x", "allow-ns-y-podselector-and-nsselector", ml(pod="a"),
            ingress=[{"from": [{"namespaceSelector": expr("kubernetes.io/metadata.name", "NotIn", ["x"]),
                                "podSelector": ml(pod="b")}]}])],
    [(80, "TCP", lambda r: (r.all_ingress("x/a", False), r.expect("y/b", "x/a", True), r.expect("z/b", "x/a", True)))])

e2e("e2e-multiple-podselectors-and-namespaceselectors", ["x/a", "x/b", "y/a", "y/b", "y/c"],
    [netpol("x", "allow-ns-y-z-pod-b-c", ml(pod="a"),
            ingress=[{"from": [{"namespaceSelector": expr("kubernetes.io/metadata.name", "NotIn", ["x"]),
                                "podSelector": expr("pod", "In", ["b", "c"])}]}])],
    [(80, "TCP", lambda r: (r.expect_peer("x", None, "x", "a", False), r.expect("y/a", "x/a", False)))])

e2e("e2e-any-podselectors", ["x/a", "x/b", "x/c"],
    [netpol("x", "allow-ns-x-pod-b-c", ml(pod="a"),
            ingress=[{"from": [{"podSelector": ml(pod="b")}, {"podSelector": ml(pod="c")}]}])],
    [(80, "TCP", lambda r: (r.all_ingress("x/a", False), r.expect("x/b", "x/a", True), r.expect("x/c", "x/a", True)))])

e2e("e2e-pod-in-other-namespace-by-pod-and-ns-selector", ["x/a", "x/b", "y/a", "y/b", "z/a"],
    [netpol("x", "allow-ns-y-pod-a-via-namespace-pod-selector", ml(pod="a"),
            ingress=[{"from": [{"namespaceSelector": nsname("y"), "podSelector": ml(pod="a")}]}])],
    [(80, "TCP", lambda r: (r.all_ingress("x/a", False), r.expect("y/a", "x/a", True)))])

e2e("e2e-ports", ["x/a", "x/b", "y/a", "y/b", "z/a"],
    [netpol("x", "allow-client-a-via-ns-selector", ml(pod="a"),
            ingress=[{"from": [{"namespaceSelector": nsname("y")}], "ports": [port(81, "TCP")]}])],
    [(81, "TCP", lambda r: (r.expect_peer("x", None, "x", "a", False), r.expect_peer("y", None, "x", "a", True),
                            r.expect_peer("z", None, "x", "a", False)))])

ALLOW81 = netpol("x", "allow-client-a-via-ns-selector", ml(pod="a"),
                 ingress=[{"from": [{"namespaceSelector": nsname("y")}], "ports": [port(81, "TCP")]}])
ALLOW80 = netpol("x", "allow-client-a-via-ns-selector-80", ml(pod="a"),
                 ingress=[{"from": [{"namespaceSelector": nsname("y")}], "ports": [port(80, "TCP")]}])


def allow_y(r):
    r.expect_peer("x", None, "x", "a", False)
    r.expect_peer("y", None, "x", "a", True)
    r.expect_peer("z", None, "x", "a", False)


e2e("e2e-stacked-policies-step1", ["x/a", "x/b", "y/a", "y/b", "z/a"], [ALLOW81],
    [(81, "TCP", allow_y), (80, "TCP", lambda r: r.all_ingress("x/a", False))])
e2e("e2e-stacked-policies-step2", ["x/a", "x/b", "y/a", "y/b", "z/a"], [ALLOW81, ALLOW80],
    [(80, "TCP", allow_y), (81, "TCP", allow_y)])

e2e("e2e-allow-all", ["x/a", "x/b", "y/a"],
    [netpol("x", "allow-all", {}, ingress=[{}])],
    [(80, "TCP", nothing), (81, "TCP", nothing)])

e2e("e2e-ingress-one-named-port", ["x/a", "x/b", "y/a"],
    [netpol("x", "allow-all", {}, ingress=[{"ports": [{"port": "serve-81-tcp"}]}])],
    [(81, "TCP", nothing), (80, "TCP", lambda r: r.expect_peer(None, None, "x", None, False))])

e2e("e2e-ingress-from-namespace-on-named-port", ["x/a", "x/b", "y/a", "z/a"],
    [netpol("x", "allow-client-a-via-ns-selector-80", ml(pod="a"),
            ingress=[{"from": [{"namespaceSelector": nsname("y")}], "ports": [{"port": "serve-80-tcp", "protocol": "TCP"}]}])],
    [(80, "TCP", lambda r: (r.expect_peer("x", None, "x", "a", False), r.expect_peer("z", None, "x", "a", False))),
     (81, "TCP", lambda r: r.all_ingress("x/a", False))])

e2e("e2e-egress-one-named-port", ["x/a", "y/a"],
    [netpol("x", "allow-egress", {}, egress=[{"ports": [{"port": "serve-80-tcp"}]}])],
    [(80, "TCP", nothing), (81, "TCP", lambda r: r.expect_peer("x", None, None, None, False))])

e2e("e2e-updated-policy-allow-all", ["x/a", "y/a"],
    [netpol("x", "allow-all-mutate-to-deny-all", {}, ingress=[{}])], [(81, "TCP", nothing)])
e2e("e2e-updated-policy-deny-all", ["x/a", "y/a"],
    [netpol("x", "allow-all-mutate-to-deny-all", {}, ingress=[])],
    [(81, "TCP", lambda r: r.expect_peer(None, None, "x", None, False))])

e2e("e2e-updated-namespace-before", ["x/a", "y/a"],
    [netpol("x", "allow-client-a-via-ns-selector", ml(pod="a"), ingress=[{"from": [{"namespaceSelector": ml(ns2="updated")}]}])],
    [(80, "TCP", lambda r: r.all_ingress("x/a", False))])


def _updated_ns():
    objs = [namespace("x"), namespace("y", {"ns2": "updated"}), namespace("z"),
            node("node-1", "192.168.0.1"), node("node-2", "192.168.0.2")]
    objs += e2e_pods(["x/a", "y/a"])
    objs.append(netpol("x", "allow-client-a-via-ns-selector", ml(pod="a"),
                       ingress=[{"from": [{"namespaceSelector": ml(ns2="updated")}]}]))
    r = Reach(["x/a", "y/a"])
    r.all_ingress("x/a", False)
    r.expect_peer("y", None, None, None, True)
    case("e2e-updated-namespace-after", "kubernetes e2e network_policy.go: should allow ingress access from updated namespace",
         objs, [{"port": 80, "protocol": "TCP", "reachability": r.table()}])


_updated_ns()

e2e("e2e-updated-pod-before", ["x/a", "x/b"],
    [netpol("x", "allow-client-a-via-pod-selector", ml(pod="a"), ingress=[{"from": [{"podSelector": ml(pod="b", pod2="updated")}]}])],
    [(80, "TCP", lambda r: r.all_ingress("x/a", False))])


def _updated_pod():
    objs = [namespace("x"), namespace("y"), namespace("z"), node("node-1", "192.168.0.1"), node("node-2", "192.168.0.2")]
    pods = e2e_pods(["x/a", "x/b"])
    pods[1]["metadata"]["labels"] = {"pod": "b", "pod2": "updated"}
    objs += pods
    objs.append(netpol("x", "allow-client-a-via-pod-selector", ml(pod="a"),
                       ingress=[{"from": [{"podSelector": ml(pod="b", pod2="updated")}]}]))
    r = Reach(["x/a", "x/b"])
    r.all_ingress("x/a", False)
    r.expect("x/b", "x/a", True)
    case("e2e-updated-pod-after", "kubernetes e2e network_policy.go: should allow ingress access from updated pod",
         objs, [{"port": 80, "protocol": "TCP", "reachability": r.table()}])


_updated_pod()

e2e("e2e-deny-ingress-from-other-namespaces", ["x/a", "x/b", "y/a", "z/a"],
    [netpol("x", "deny-empty-policy", {}, ingress=[{"from": [{"podSelector": {"matchLabels": {}}}]}])],
    [(80, "TCP", lambda r: (r.expect_peer("y", None, "x", None, False), r.expect_peer("z", None, "x", None, False)))])

e2e("e2e-deny-ingress-to-updated-pod-before", ["x/a", "y/a"],
    [netpol("x", "deny-ingress-via-label-selector", ml(target="isolated"), ingress=[])], [(80, "TCP", nothing)])


def _isolated_pod():
    objs = [namespace("x"), namespace("y"), namespace("z"), node("node-1", "192.168.0.1"), node("node-2", "192.168.0.2")]
    pods = e2e_pods(["x/a", "y/a"])
    pods[0]["metadata"]["labels"] = {"pod": "a", "target": "isolated"}
    objs += pods + [netpol("x", "deny-ingress-via-label-selector", ml(target="isolated"), ingress=[])]
    r = Reach(["x/a", "y/a"])
    r.all_ingress("x/a", False)
    case("e2e-deny-ingress-to-updated-pod-after", "kubernetes e2e network_policy.go: should deny ingress access to updated pod",
         objs, [{"port": 80, "protocol": "TCP", "reachability": r.table()}])


_isolated_pod()

e2e("e2e-deny-egress-podselector", ["x/a", "x/b", "y/a"],
    [netpol("x", "deny-egress-pod-a", ml(pod="a"), egress=[], types=["Egress"])],
    [(80, "TCP", lambda r: r.all_egress("x/a", False))])

e2e("e2e-deny-egress-namespace", ["x/a", "x/b", "y/a"],
    [netpol("x", "deny-egress-ns-x", {}, egress=[], types=["Egress"])],
    [(80, "TCP", lambda r: r.expect_peer("x", None, None, None, False))])


def _in_eg_81(r):
    r.all_ingress("x/a", False)
    r.all_egress("x/a", False)
    r.expect("x/b", "x/a", True)


e2e("e2e-ingress-and-egress-together", ["x/a", "x/b", "x/c", "y/a"],
    [netpol("x", "allow-client-a-via-pod-selector", ml(pod="a"),
            ingress=[{"from": [{"podSelector": ml(pod="b")}]}], egress=[{"ports": [{"port": 80}]}],
            types=["Egress", "Ingress"])],
    [(80, "TCP", lambda r: (r.all_ingress("x/a", False), r.expect("x/b", "x/a", True))), (81, "TCP", _in_eg_81)])


def _client_side(r):
    r.expect_peer("x", "a", None, None, False)
    r.expect_peer(None, None, "y", "a", False)
    r.expect_peer("x", "a", "y", "a", True)
    r.expect_peer(None, None, "y", "b", False)


XA_PEER = {"from": [{"namespaceSelector": nsname("x"), "podSelector": ml(pod="a")}]}
e2e("e2e-egress-denied-on-client-side", ["x/a", "y/a", "y/b"],
    [netpol("x", "allow-to-ns-y-pod-a", ml(pod="a"), egress=[{"to": [{"namespaceSelector": nsname("y"), "podSelector": ml(pod="a")}]}]),
     netpol("y", "allow-from-xa-on-ya-match-selector", ml(pod="a"), ingress=[XA_PEER]),
     netpol("y", "allow-from-xa-on-yb-match-selector", ml(pod="b"), ingress=[XA_PEER])],
    [(80, "TCP", _client_side)])

e2e("e2e-egress-to-other-namespace-pod", ["x/a", "y/a", "y/b"],
    [netpol("x", "allow-to-ns-y-pod-a", ml(pod="a"), egress=[{"to": [{"namespaceSelector": nsname("y"), "podSelector": ml(pod="a")}]}])],
    [(80, "TCP", lambda r: (r.all_egress("x/a", False), r.expect("x/a", "y/a", True)))])

e2e("e2e-ingress-any-port-on-protocol", ["x/a", "y/a"],
    [netpol("x", "allow-ingress-by-proto", ml(pod="a"), ingress=[{"ports": [{"protocol": "TCP"}]}])],
    [(80, "TCP", nothing), (80, "UDP", lambda r: r.expect_peer(None, None, "x", "a", False))])

e2e("e2e-ingress-allow-all-precedence-step1", ["x/a", "y/a"],
    [netpol("x", "allow-ingress-port-80", {}, ingress=[{"ports": [{"port": 80}]}])],
    [(81, "TCP", lambda r: r.expect_peer(None, None, "x", None, False))])
e2e("e2e-ingress-allow-all-precedence-step2", ["x/a", "y/a"],
    [netpol("x", "allow-ingress-port-80", {}, ingress=[{"ports": [{"port": 80}]}]),
     netpol("x", "allow-ingress", {}, ingress=[{}])],
    [(81, "TCP", nothing)])

e2e("e2e-egress-allow-all-precedence-step1", ["x/a", "y/a"],
    [netpol("x", "allow-egress-port-80", {}, egress=[{"ports": [{"port": 80}]}])],
    [(81, "TCP", lambda r: r.expect_peer("x", None, None, None, False))])
e2e("e2e-egress-allow-all-precedence-step2", ["x/a", "y/a"],
    [netpol("x", "allow-egress-port-80", {}, egress=[{"ports": [{"port": 80}]}]),
     netpol("x", "allow-egress", {}, egress=[{}])],
    [(81, "TCP", nothing)])

e2e("e2e-policies-deleted-before", ["x/a", "y/a"],
    [netpol("x", "deny-all", {}, ingress=[], egress=[], types=["Ingress", "Egress"])],
    [(80, "TCP", lambda r: (r.expect_peer("x", None, None, None, False), r.expect_peer(None, None, "x", None, False)))])
e2e("e2e-policies-deleted-after", ["x/a", "y/a"], [], [(80, "TCP", nothing)])


def _cidr_cases():
    e2e("e2e-egress-to-cidr", ["x/a", "y/a", "y/b"],
        [netpol("x", "allow-client-a-via-cidr-egress-rule", ml(pod="a"), egress=[{"to": [{"ipBlock": {"cidr": "10.0.2.11/32"}}]}])],
        [(80, "TCP", lambda r: (r.all_egress("x/a", False), r.expect("x/a", "y/b", True)))])
    # makeLargeCIDRForIP: the /4 around the pod address, except the pod itself.
    big = {"ipBlock": {"cidr": "0.0.0.0/4", "except": ["10.0.1.11/32"]}}
    e2e("e2e-egress-cidr-except", ["x/a", "x/b", "x/c"],
        [netpol("x", "allow-client-a-via-cidr-egress-rule", ml(pod="a"), egress=[{"to": [big]}])],
        [(80, "TCP", lambda r: r.expect("x/a", "x/b", False))])
    e2e("e2e-cidr-and-except-overlap-updated", ["x/a", "x/b", "x/c"],
        [netpol("x", "allow-client-a-via-cidr-egress-rule", ml(pod="a"), egress=[{"to": [{"ipBlock": {"cidr": "10.0.1.11/32"}}]}])],
        [(80, "TCP", lambda r: (r.all_egress("x/a", False), r.expect("x/a", "x/b", True)))])


_cidr_cases()

e2e("e2e-ingress-egress-independent-step1", ["x/a", "x/b", "y/a"],
    [netpol("x", "allow-egress-for-target", ml(pod="a"), egress=[{}], types=["Egress"])], [(80, "TCP", nothing)])
e2e("e2e-ingress-egress-independent-step2", ["x/a", "x/b", "y/a"],
    [netpol("x", "allow-egress-for-target", ml(pod="a"), egress=[{}], types=["Egress"]),
     netpol("x", "deny-ingress-via-label-selector", ml(pod="a"), ingress=[])],
    [(80, "TCP", lambda r: r.all_ingress("x/a", False))])

e2e("e2e-sctp-is-not-tcp", ["x/a", "y/a"],
    [netpol("x", "deny-ingress", {}, ingress=[]),
     netpol("x", "allow-only-sctp-ingress-on-port-81", ml(pod="a"), ingress=[{"ports": [port(81, "SCTP")]}])],
    [(81, "TCP", lambda r: r.expect_peer(None, None, "x", None, False)), (81, "SCTP", nothing)])

e2e("e2e-sctp-policy-isolates", ["x/a", "y/a"],
    [netpol("x", "allow-only-sctp-ingress-on-port-80", ml(pod="a"), ingress=[{"ports": [port(80, "SCTP")]}])],
    [(81, "TCP", lambda r: r.all_ingress("x/a", False))])

e2e("e2e-udp-only-policy-blocks-tcp", ["x/a", "y/a"],
    [netpol("x", "allow-only-udp-ingress-on-port-81", ml(pod="a"), ingress=[{"ports": [port(81, "UDP")]}])],
    [(81, "TCP", lambda r: r.all_ingress("x/a", False)), (81, "UDP", nothing)])

e2e("e2e-default-ns-label-matchlabels", ["x/a", "x/b", "y/a", "z/a"],
    [netpol("x", "allow-client-a-via-ns-selector-for-immutable-ns-label", ml(pod="a"), ingress=[{"from": [{"namespaceSelector": nsname("y")}]}])],
    [(80, "TCP", lambda r: (r.expect_peer("x", None, "x", "a", False), r.expect_peer("z", None, "x", "a", False)))])

e2e("e2e-default-ns-label-matchexpressions-egress", ["x/a", "x/b", "y/a", "z/a"],
    [netpol("x", "allow-ns-y-match-selector-for-immutable-ns-label", ml(pod="a"),
            egress=[{"to": [{"namespaceSelector": expr("kubernetes.io/metadata.name", "NotIn", ["y"])}]}])],
    [(80, "TCP", lambda r: r.expect_peer("x", "a", "y", None, False))])

# ---- upstream e2e: the UDP and SCTP contexts
for proto in ["UDP", "SCTP"]:
    p = proto.lower()
    e2e("e2e-%s-default-deny-ingress" % p, ["x/a", "x/b", "y/a", "y/b"],
        [netpol("x", "deny-all", {}, ingress=[])],
        [(80, proto, lambda r: r.expect_peer(None, None, "x", None, False))])
    e2e("e2e-%s-ports" % p, ["x/a", "x/b", "y/a", "z/a"],
        [netpol("x", "allow-ingress-on-port-81-ns-x", ml(pod="a"),
                ingress=[{"from": [{"namespaceSelector": nsname("y")}], "ports": [port(81, proto)]}])],
        [(81, proto, lambda r: (r.expect_peer("x", None, "x", "a", False), r.expect_peer("z", None, "x", "a", False)))])
    e2e("e2e-%s-pod-and-namespace-selector" % p, ["x/a", "x/b", "y/a"],
        [netpol("x", "allow-ns-y-pod-a-via-namespace-pod-selector", ml(pod="a"),
                ingress=[{"from": [{"namespaceSelector": nsname("y"), "podSelector": ml(pod="a")}]}])],
        [(80, proto, lambda r: (r.all_ingress("x/a", False), r.expect("y/a", "x/a", True)))])

# ---- Kubernetes documentation (semantics the e2e suite leaves to a CNI or does not probe)

e2e("doc-endport-range", ["x/a", "y/a"],
    [netpol("x", "multi-port-egress", ml(pod="a"), egress=[{"ports": [port(32000, "TCP", 32768)]}], types=["Egress"])],
    [(32000, "TCP", nothing), (32768, "TCP", nothing),
     (32769, "TCP", lambda r: r.all_egress("x/a", False)), (80, "TCP", lambda r: r.all_egress("x/a", False))])

# A hostNetwork pod is not selected by a policy selecting its labels.
# x/a uses the host network of node-1 (fixed up in main): x/b, on the same node, may talk to
# it both ways (traffic between a pod and its node is always allowed); y/a may not reach x/b.
def _hostnet(r):
    r.expect_peer("x", "b", None, None, False)
    r.expect_peer(None, None, "x", "b", False)
    r.expect("x/a", "x/b", True)
    r.expect("x/b", "x/a", True)


e2e("doc-hostnetwork-pod-not-selected", ["x/a", "x/b", "y/a"],
    [netpol("x", "deny-all", {}, ingress=[], egress=[], types=["Ingress", "Egress"])],
    [(80, "TCP", _hostnet)])

# Egress policy type only: ingress stays open even though the policy has no ingress rules.
e2e("doc-policytypes-egress-only", ["x/a", "y/a"],
    [netpol("x", "egress-only", ml(pod="a"), egress=[{"to": [{"podSelector": {}}]}], types=["Egress"])],
    [(80, "TCP", lambda r: r.expect("x/a", "y/a", False))])

# policyTypes omitted with egress rules present: both directions apply.
e2e("doc-policytypes-defaulted-with-egress", ["x/a", "x/b", "y/a"],
    [netpol("x", "defaulted", ml(pod="a"), egress=[{"to": [{"podSelector": ml(pod="b")}]}], types="omit")],
    [(80, "TCP", lambda r: (r.all_ingress("x/a", False), r.all_egress("x/a", False), r.expect("x/a", "x/b", True)))])

# policyTypes omitted without egress rules: Ingress only.
e2e("doc-policytypes-defaulted-ingress-only", ["x/a", "y/a"],
    [netpol("x", "defaulted", ml(pod="a"), ingress=[], egress=[], types="omit")],
    [(80, "TCP", lambda r: r.all_ingress("x/a", False))])

# Named egress port resolved against the destination pod: y/a serves 8080 as "http", y/b as 9090.
def _named_egress():
    objs = [namespace("x"), namespace("y"), namespace("z"), node("node-1", "192.168.0.1"), node("node-2", "192.168.0.2")]
    pods = e2e_pods(["x/a", "y/a", "y/b"])
    pods[1]["spec"]["containers"].append({"name": "web", "image": "x", "ports": [{"containerPort": 8080, "name": "http"}]})
    pods[2]["spec"]["containers"].append({"name": "web", "image": "x", "ports": [{"containerPort": 9090, "name": "http"}]})
    objs += pods + [netpol("x", "egress-http", ml(pod="a"), egress=[{"ports": [{"port": "http"}]}], types=["Egress"])]
    checks = []
    for p, deny in [(8080, ["y/b"]), (9090, ["y/a"])]:
        r = Reach(["x/a", "y/a", "y/b"])
        r.all_egress("x/a", False)
        for t in ["y/a", "y/b"]:
            if t not in deny:
                r.expect("x/a", t, True)
        checks.append({"port": p, "protocol": "TCP", "reachability": r.table()})
    case("doc-named-egress-port-resolved-at-destination",
         "Kubernetes docs: a named port is resolved against the pod the traffic goes to", objs, checks)


_named_egress()

# ---- KubeSkoop NP1–NP9 (kubeskoop-facts §3.4): documented answers KubeSkoop gets wrong.

# NP1: the ingress port must be the destination port, not the source port.
e2e("np1-ingress-port-is-destination-port", ["x/a", "y/a"],
    [netpol("x", "allow-80", ml(pod="a"), ingress=[{"ports": [port(80, "TCP")]}])],
    [(80, "TCP", nothing), (81, "TCP", lambda r: r.all_ingress("x/a", False))])

# NP2: ingress namespaceSelector must read the source pod's namespace labels.
def _np2():
    objs = [namespace("x"), namespace("y", {"team": "blue"}), namespace("z", {"team": "red"}),
            node("node-1", "192.168.0.1"), node("node-2", "192.168.0.2")]
    objs += e2e_pods(["x/a", "y/a", "z/a"])
    objs.append(netpol("x", "from-blue", ml(pod="a"), ingress=[{"from": [{"namespaceSelector": ml(team="blue")}]}]))
    r = Reach(["x/a", "y/a", "z/a"])
    r.all_ingress("x/a", False)
    r.expect("y/a", "x/a", True)
    case("np2-ingress-namespace-selector-uses-namespace-labels", "KubeSkoop NP2", objs,
         [{"port": 80, "protocol": "TCP", "reachability": r.table()}])


_np2()

# NP3: policies are OR-ed: default-deny plus allow-from-b allows b.
e2e("np3-policies-are-ored", ["x/a", "x/b", "x/c"],
    [netpol("x", "default-deny", {}, ingress=[]),
     netpol("x", "allow-b", ml(pod="a"), ingress=[{"from": [{"podSelector": ml(pod="b")}]}])],
    [(80, "TCP", lambda r: (r.expect_peer(None, None, "x", None, False), r.expect("x/b", "x/a", True)))])

# NP4: an empty from allows every source; a port-less entry allows every port of its protocol.
e2e("np4-empty-from-allows-all", ["x/a", "y/a"],
    [netpol("x", "empty-from", ml(pod="a"), ingress=[{"from": [], "ports": [port(80, "TCP")]}])],
    [(80, "TCP", nothing), (81, "TCP", lambda r: r.all_ingress("x/a", False))])
e2e("np4-portless-entry-allows-every-port", ["x/a", "y/a"],
    [netpol("x", "udp-any-port", ml(pod="a"), ingress=[{"ports": [{"protocol": "UDP"}]}])],
    [(81, "UDP", nothing), (80, "UDP", nothing), (80, "TCP", lambda r: r.all_ingress("x/a", False))])

# NP5: pod+namespace selectors in one peer reach other namespaces.
e2e("np5-combined-selector-other-namespace", ["x/a", "y/a", "y/b", "z/b"],
    [netpol("x", "combined", ml(pod="a"), ingress=[{"from": [{"namespaceSelector": nsname("y"), "podSelector": ml(pod="b")}]}])],
    [(80, "TCP", lambda r: (r.all_ingress("x/a", False), r.expect("y/b", "x/a", True)))])

# NP6: named ports are resolved (ingress, against the destination pod).
e2e("np6-named-ingress-port", ["x/a", "y/a"],
    [netpol("x", "named", ml(pod="a"), ingress=[{"ports": [{"port": "serve-80-udp", "protocol": "UDP"}]}])],
    [(80, "UDP", nothing), (81, "UDP", lambda r: r.all_ingress("x/a", False)), (80, "TCP", lambda r: r.all_ingress("x/a", False))])

# NP7: the source the destination sees after masquerade is the node address (tested with ipBlock).
def _np7():
    objs = [namespace("x"), namespace("y"), namespace("z"), node("node-1", "192.168.0.1"), node("node-2", "192.168.0.2"),
            node("node-3", "192.168.0.3")]
    objs += e2e_pods(["x/a", "y/a"])
    objs.append(netpol("x", "from-pods-only", ml(pod="a"), ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/16"}}]}]))
    case("np7-masqueraded-source-is-node-address", "KubeSkoop NP7 (Kubernetes docs: ipBlock sees the address after SNAT)", objs,
         [{"port": 80, "protocol": "TCP",
           "ip_flows": [{"from": "192.168.0.3", "to": "x/a", "allowed": False},
                        {"from": "10.0.2.10", "to": "x/a", "allowed": True},
                        # a pod's own node is always allowed in
                        {"from": "192.168.0.1", "to": "x/a", "allowed": True}]}])


_np7()

# NP8 is about enforcement (flannel): covered end to end; NP9: AdminNetworkPolicy is seen.

# ---- network-policy-api conformance: AdminNetworkPolicy and BaselineAdminNetworkPolicy

HOUSES = {"gryffindor": "harry-potter", "slytherin": "draco-malfoy", "hufflepuff": "cedric-diggory", "ravenclaw": "luna-lovegood"}


def hogwarts(extra_pods=()):
    objs = [node("node-1", "192.168.0.1"), node("node-2", "192.168.0.2")]
    pods = []
    for i, (house, who) in enumerate(sorted(HOUSES.items())):
        ns = "network-policy-conformance-" + house
        objs.append(namespace(ns, {"conformance-house": house}))
        for r in range(2):
            name = "%s-%d" % (who, r)
            ip = "10.1.%d.%d" % (i + 1, 10 + r)
            pods.append(ns + "/" + name)
            objs.append(pod(ns, name, ip, {"conformance-house": house}, "node-%d" % (1 + r), ports=(80, 8080, 5353, 53, 9003, 9005)))
    for (ns, name, ip, labels) in extra_pods:
        objs.append(namespace(ns))
        objs.append(pod(ns, name, ip, labels, "node-1", ports=(80, 8080)))
        pods.append(ns + "/" + name)
    return objs, pods


def anp(name, priority, subject, ingress=None, egress=None):
    spec = {"priority": priority, "subject": subject}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy",
            "metadata": {"name": name}, "spec": spec}


def banp(subject, ingress=None, egress=None):
    spec = {"subject": subject}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy",
            "metadata": {"name": "default"}, "spec": spec}


def house_ns(h):
    return {"namespaces": {"namespaceSelector": {"matchLabels": {"conformance-house": h}}}}


def flows(port, proto, items):
    return {"port": port, "protocol": proto,
            "pod_flows": [{"from": f, "to": t, "allowed": a} for (f, t, a) in items]}


G = "network-policy-conformance-gryffindor/harry-potter-0"
G1 = "network-policy-conformance-gryffindor/harry-potter-1"
S = "network-policy-conformance-slytherin/draco-malfoy-0"
S1 = "network-policy-conformance-slytherin/draco-malfoy-1"
H = "network-policy-conformance-hufflepuff/cedric-diggory-0"
R = "network-policy-conformance-ravenclaw/luna-lovegood-0"

GRYF_SUBJECT = {"namespaces": {"matchLabels": {"conformance-house": "gryffindor"}}}


def integration(ingress_action, egress_action, with_np):
    objs, _ = hogwarts()
    objs.append(anp("pass-example", 10, GRYF_SUBJECT,
                    ingress=[dict(name="deny-all-ingress-from-slytherin", action=ingress_action, **{"from": [house_ns("slytherin")]})],
                    egress=[dict(name="deny-all-egress-to-slytherin", action=egress_action, to=[house_ns("slytherin")])]))
    if with_np:
        objs.append(netpol("network-policy-conformance-gryffindor", "allow-gress-from-to-slytherin-to-gryffindor", {},
                           ingress=[{"from": [{"namespaceSelector": ml(**{"conformance-house": "slytherin"})}]}],
                           egress=[{"to": [{"namespaceSelector": ml(**{"conformance-house": "slytherin"})}]}],
                           types=["Ingress", "Egress"]))
    objs.append(banp(GRYF_SUBJECT,
                     ingress=[dict(name="deny-all-ingress-from-slytherin", action="Deny", **{"from": [house_ns("slytherin")]})],
                     egress=[dict(name="deny-all-egress-to-slytherin", action="Deny", to=[house_ns("slytherin")])]))
    return objs


SRC = "network-policy-api conformance AdminNetworkPolicyIntegration: "
case("anp-integration-deny-ingress", SRC + "Should Deny traffic from slytherin to gryffindor respecting ANP",
     integration("Deny", "Deny", True), [flows(80, "TCP", [(S, G, False)]), flows(8080, "TCP", [(S1, G, False)])])
case("anp-integration-deny-egress", SRC + "Should Deny traffic to slytherin from gryffindor respecting ANP",
     integration("Deny", "Deny", True), [flows(80, "TCP", [(G, S, False)]), flows(8080, "TCP", [(G1, S, False)])])
case("anp-integration-pass-ingress-to-np", SRC + "pass-ingress respects the NetworkPolicy",
     integration("Pass", "Deny", True), [flows(80, "TCP", [(S, G, True)]), flows(8080, "TCP", [(S1, G, True)])])
case("anp-integration-pass-egress-to-np", SRC + "pass-egress respects the NetworkPolicy",
     integration("Deny", "Pass", True), [flows(80, "TCP", [(G, S, True)]), flows(8080, "TCP", [(G1, S, True)])])
case("anp-integration-pass-ingress-to-banp", SRC + "pass-ingress with the NetworkPolicy deleted: BANP denies",
     integration("Pass", "Pass", False), [flows(80, "TCP", [(S, G, False)]), flows(8080, "TCP", [(S1, G, False)])])
case("anp-integration-pass-egress-to-banp", SRC + "pass-egress with the NetworkPolicy deleted: BANP denies",
     integration("Pass", "Pass", False), [flows(80, "TCP", [(G, S, False)]), flows(8080, "TCP", [(G1, S, False)])])

# Priority: the lower number wins (core-priority-field.yaml).
GRYF_PODS = {"pods": {"namespaceSelector": {"matchLabels": {"conformance-house": "gryffindor"}},
                      "podSelector": {"matchLabels": {"conformance-house": "gryffindor"}}}}


def slyth_pods():
    return [{"pods": {"namespaces": {"namespaceSelector": {"matchLabels": {"conformance-house": "slytherin"}}},
                      "podSelector": {"matchLabels": {"conformance-house": "slytherin"}}}}]


def priority_objs(pass_priority):
    objs, _ = hogwarts()
    objs.append(anp("priority-50-example", 50, GRYF_PODS,
                    ingress=[dict(name="deny-all-ingress-from-slytherin", action="Deny", **{"from": slyth_pods()})],
                    egress=[dict(name="deny-all-egress-to-slytherin", action="Deny", to=slyth_pods())]))
    objs.append(anp("old-priority-60-new-priority-40-example", pass_priority, GRYF_PODS,
                    ingress=[dict(name="pass-all-ingress-from-slytherin", action="Pass", **{"from": slyth_pods()})],
                    egress=[dict(name="pass-all-egress-to-slytherin", action="Pass", to=slyth_pods())]))
    objs.append(banp(GRYF_PODS,
                     ingress=[dict(name="allow-all-ingress-from-slytherin", action="Allow", **{"from": slyth_pods()})],
                     egress=[dict(name="allow-all-egress-to-slytherin", action="Allow", to=slyth_pods())]))
    return objs


SRC = "network-policy-api conformance AdminNetworkPolicyPriorityField: "
case("anp-priority-50-denies", SRC + "priority 50 Deny wins over priority 60 Pass",
     priority_objs(60), [flows(80, "TCP", [(S, G, False), (G, S, False)])])
case("anp-priority-40-passes-to-banp", SRC + "priority 40 Pass wins, BANP allows",
     priority_objs(40), [flows(80, "TCP", [(S, G, True), (G, S, True)]), flows(8080, "TCP", [(S1, G1, True)])])

# Ingress TCP rules, first matching rule of one ANP (core-ingress-tcp-rules.yaml).
def ingress_tcp():
    staff = [("network-policy-conformance-hogwarts-staff", "professor-dumbledore-0", "10.1.9.10",
              {"statefulset.kubernetes.io/pod-name": "professor-dumbledore-0"}),
             ("network-policy-conformance-hogwarts-staff", "professor-quirrell-0", "10.1.9.11",
              {"statefulset.kubernetes.io/pod-name": "professor-quirrell-0"})]
    objs, _ = hogwarts(staff)
    # hogwarts() adds the staff namespace once per pod: keep one.
    seen, uniq = set(), []
    for o in objs:
        key = (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
        if key not in seen:
            seen.add(key)
            uniq.append(o)

    def nsn(h):
        return {"namespaces": {"namespaceSelector": nsname("network-policy-conformance-" + h)}}

    def staff_pod(n):
        return {"pods": {"namespaces": {"namespaceSelector": nsname("network-policy-conformance-hogwarts-staff")},
                         "podSelector": {"matchLabels": {"statefulset.kubernetes.io/pod-name": n}}}}
    p80 = [{"portNumber": {"protocol": "TCP", "port": 80}}]
    p8080 = [{"portNumber": {"protocol": "TCP", "port": 8080}}]
    rules = [
        {"name": "allow-from-ravenclaw-everything", "action": "Allow", "from": [nsn("ravenclaw")]},
        {"name": "deny-from-ravenclaw-everything", "action": "Deny", "from": [nsn("ravenclaw")]},
        {"name": "pass-from-ravenclaw-everything", "action": "Pass", "from": [nsn("ravenclaw")]},
        {"name": "deny-from-slytherin-at-port-80", "action": "Deny", "from": [nsn("slytherin")], "ports": p80},
        {"name": "pass-from-slytherin-at-port-80", "action": "Pass", "from": [nsn("slytherin")], "ports": p80},
        {"name": "allow-from-hufflepuff-at-port-80", "action": "Allow", "from": [nsn("hufflepuff")], "ports": p80},
        {"name": "deny-from-hufflepuff-everything-else", "action": "Deny", "from": [nsn("hufflepuff")]},
        {"name": "deny-from-professor-quirrell-at-port-8080", "action": "Deny", "from": [staff_pod("professor-quirrell-0")], "ports": p8080},
        {"name": "allow-from-professor-dumbledore-at-port-8080", "action": "Allow", "from": [staff_pod("professor-dumbledore-0")], "ports": p8080},
        {"name": "deny-from-dumbledore-everything-else", "action": "Deny", "from": [staff_pod("professor-dumbledore-0")]},
    ]
    uniq.append(anp("ingress-tcp", 3, {"namespaces": nsname("network-policy-conformance-gryffindor")}, ingress=rules))
    return uniq


D = "network-policy-conformance-hogwarts-staff/professor-dumbledore-0"
Q = "network-policy-conformance-hogwarts-staff/professor-quirrell-0"
SRC = "network-policy-api conformance AdminNetworkPolicyIngressTCP: "
case("anp-ingress-tcp-first-rule-wins", SRC + "ravenclaw allowed by the first of Allow/Deny/Pass",
     ingress_tcp(), [flows(80, "TCP", [(R, G, True)]), flows(8080, "TCP", [(R, G1, True)])])
case("anp-ingress-tcp-port-scoped-deny", SRC + "slytherin denied at 80, allowed at 8080 (no later rule)",
     ingress_tcp(), [flows(80, "TCP", [(S, G, False)]), flows(8080, "TCP", [(S, G, True)])])
case("anp-ingress-tcp-allow-then-deny-rest", SRC + "hufflepuff allowed at 80, denied otherwise",
     ingress_tcp(), [flows(80, "TCP", [(H, G, True)]), flows(8080, "TCP", [(H, G, False)]), flows(5353, "UDP", [(H, G, False)])])
case("anp-ingress-tcp-pod-peers", SRC + "quirrell denied at 8080, dumbledore allowed at 8080 and denied at 80",
     ingress_tcp(), [flows(8080, "TCP", [(Q, G, False), (D, G, True)]), flows(80, "TCP", [(D, G, False), (Q, G, True)])])

# BANP alone: denies unless a NetworkPolicy selects the pod (api_integration, BANP tier).
def banp_only(with_np):
    objs, _ = hogwarts()
    objs.append(banp(GRYF_SUBJECT, ingress=[dict(name="deny-from-slytherin", action="Deny", **{"from": [house_ns("slytherin")]})]))
    if with_np:
        objs.append(netpol("network-policy-conformance-gryffindor", "allow-80", {}, ingress=[{"ports": [port(80, "TCP")]}]))
    return objs


case("banp-deny-without-networkpolicy", "network-policy-api conformance BaselineAdminNetworkPolicyIngress: Deny applies",
     banp_only(False), [flows(80, "TCP", [(S, G, False), (H, G, True)])])
case("banp-overridden-by-networkpolicy", "network-policy-api: a NetworkPolicy selecting the pod takes precedence over BANP",
     banp_only(True), [flows(80, "TCP", [(S, G, True), (H, G, True)]), flows(8080, "TCP", [(S, G, False), (H, G, False)])])

# ANP egress to networks (CIDR peer) and named port (standard egress inline cidr / named port).
# hogwarts() numbers the houses alphabetically: slytherin pods are 10.1.4.0/24.
def anp_networks():
    objs, _ = hogwarts()
    objs.append(anp("egress-to-cidr", 5, GRYF_SUBJECT,
                    egress=[{"name": "deny-to-slytherin-subnet", "action": "Deny", "to": [{"networks": ["10.1.4.0/24"]}]},
                            {"name": "allow-named-dns", "action": "Allow", "to": [house_ns("hufflepuff")], "ports": [{"namedPort": "serve-53-udp"}]},
                            {"name": "deny-hufflepuff", "action": "Deny", "to": [house_ns("hufflepuff")]}]))
    return objs


case("anp-egress-networks-and-named-port", "network-policy-api conformance AdminNetworkPolicyEgressInlineCIDR / named ports",
     anp_networks(), [flows(80, "TCP", [(G, S, False), (G, H, False), (G, R, True)]), flows(53, "UDP", [(G, H, True)])])


# ---------------------------------------------------------------- hostNetwork fix-up and output

def main():
    for d in os.listdir(HERE):
        if os.path.isdir(os.path.join(HERE, d)):
            shutil.rmtree(os.path.join(HERE, d))
    for (name, source, objects, checks) in CASES:
        if name == "doc-hostnetwork-pod-not-selected":
            for o in objects:
                if o["kind"] == "Pod" and o["metadata"]["name"] == "a" and o["metadata"]["namespace"] == "x":
                    o["spec"]["hostNetwork"] = True
                    o["status"]["podIP"] = "192.168.0.1"
        d = os.path.join(HERE, name)
        os.makedirs(d)
        with open(os.path.join(d, "cluster.json"), "w") as f:
            json.dump({"apiVersion": "v1", "kind": "List", "items": objects}, f, indent=1, sort_keys=True)
            f.write("\n")
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump({"source": source, "checks": checks}, f, indent=1, sort_keys=True)
            f.write("\n")
    print("%d cases" % len(CASES))


if __name__ == "__main__":
    main()
