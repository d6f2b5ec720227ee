//! Which objects the view keeps as JSON beside its typed facts, and how a
//! kept object holds its text: a copy of its own, or its place in the text
//! it was read from.

use std::collections::HashSet;

use serde_json::value::RawValue;

use super::model::{ClusterView, RawJson};

/// Kinds (`apiVersion`, `kind`) whose objects are kept as JSON: what the host
/// itself reads from objects (DaemonSets and ConfigMaps for detection,
/// policy objects) plus what loaded extensions declare they read. The rest
/// is interpreted into the view and dropped, so a large cluster costs what
/// its Pods, Services and EndpointSlices need, not their whole JSON.
#[derive(Debug, Clone)]
pub struct Retain {
    kinds: HashSet<(String, String)>,
    /// Every kind (but Secrets): for reading a bundle before the loaded
    /// extensions are known; [`ClusterView::retain_only`] drops the rest.
    all: bool,
}

/// Kinds the host reads as objects.
pub const HOST_READS: &[(&str, &str)] = &[
    ("v1", "ConfigMap"),
    ("apps/v1", "DaemonSet"),
    ("v1", "Namespace"),
    // Node labels, for AdminNetworkPolicy `nodes` peers.
    ("v1", "Node"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy"),
    (
        "policy.networking.k8s.io/v1alpha1",
        "BaselineAdminNetworkPolicy",
    ),
];

impl Default for Retain {
    fn default() -> Retain {
        Retain::host()
    }
}

impl Retain {
    /// The host's own kinds.
    pub fn host() -> Retain {
        Retain {
            kinds: HOST_READS
                .iter()
                .map(|(a, k)| (a.to_string(), k.to_string()))
                .collect(),
            all: false,
        }
    }

    /// Every kind but Secrets, to be narrowed later with
    /// [`ClusterView::retain_only`].
    pub fn all() -> Retain {
        Retain {
            all: true,
            ..Retain::host()
        }
    }

    /// The host's kinds and `reads`, each `apiVersion/Kind` (e.g. `v1/ConfigMap`,
    /// `crd.projectcalico.org/v1/IPPool`) as extensions declare them.
    pub fn with_reads<'a>(reads: impl IntoIterator<Item = &'a str>) -> Retain {
        let mut r = Retain::host();
        for read in reads {
            if let Some((api, kind)) = read.rsplit_once('/') {
                r.kinds.insert((api.to_string(), kind.to_string()));
            }
        }
        r
    }

    /// Whether objects of this kind are kept (never Secrets).
    pub fn keeps(&self, api_version: &str, kind: &str) -> bool {
        kind != "Secret"
            && (self.all
                || self
                    .kinds
                    .iter()
                    .any(|(a, k)| a == api_version && k == kind))
    }

    /// Every kind kept, as `apiVersion/Kind`.
    pub fn kinds(&self) -> impl Iterator<Item = String> + '_ {
        self.kinds.iter().map(|(a, k)| format!("{a}/{k}"))
    }
}

impl ClusterView {
    /// Drops the objects kept as JSON of the kinds `retain` does not keep
    /// (after a read with [`Retain::all`]).
    pub fn retain_only(&mut self, retain: &Retain) {
        self.objects.retain(|(a, k), _| retain.keeps(a, k));
        self.settle_shared();
    }

    /// Objects that share the text they were read from keep all of it: worth
    /// it while they are most of it; otherwise each gets its own copy and
    /// the text can go.
    pub(super) fn settle_shared(&mut self) {
        let (mut text_len, mut kept) = (0, 0);
        for o in self.objects.values().flatten() {
            if let RawJson::Shared { text, start, end } = &o.json {
                text_len = text.len();
                kept += end - start;
            }
        }
        if kept == 0 || kept * 2 >= text_len {
            return;
        }
        for o in self.objects.values_mut().flatten() {
            if matches!(o.json, RawJson::Shared { .. })
                && let Ok(copy) = RawValue::from_string(o.json.get().to_string())
            {
                o.json = RawJson::Owned(copy);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn kept_objects_share_the_text_only_while_they_are_most_of_it() {
        let list = Arc::new(
            json!({"apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": "example.com/v1", "kind": "Blob", "metadata": {"name": "b"},
                 "data": {"big": "x".repeat(400)}},
                {"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool", "metadata": {"name": "p"}}
            ]})
            .to_string(),
        );
        let shared = |v: &ClusterView| {
            v.objects
                .values()
                .flatten()
                .filter(|o| matches!(o.json, RawJson::Shared { .. }))
                .count()
        };
        let mut view = ClusterView::parse_shared(&list, "list", Retain::all()).expect("view");
        assert_eq!(shared(&view), 2);
        view.retain_only(&Retain::with_reads(["crd.projectcalico.org/v1/IPPool"]));
        // The small IPPool is left: a copy of its own, not the whole text.
        assert_eq!(shared(&view), 0);
        let pool = &view.objects("crd.projectcalico.org/v1", "IPPool", "")[0];
        let v: Value = pool.typed().expect("json");
        assert_eq!(v["metadata"]["name"], "p");
        assert_eq!(Arc::strong_count(&list), 1);
    }

    #[test]
    fn read_keeping_all_then_narrowed_to_the_extensions_reads() {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}},
            {"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool", "metadata": {"name": "p"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"}}
        ]})
        .to_string();
        let mut view = ClusterView::parse(&list, "list", Retain::all()).expect("view");
        assert_eq!(
            view.objects("crd.projectcalico.org/v1", "IPPool", "").len(),
            1
        );
        assert!(view.objects("v1", "Secret", "n").is_empty());
        view.retain_only(&Retain::with_reads(["v1/ConfigMap"]));
        assert!(
            view.objects("crd.projectcalico.org/v1", "IPPool", "")
                .is_empty()
        );
        assert_eq!(view.objects("v1", "ConfigMap", "n").len(), 1);
        assert!(
            view.has_kind("crd.projectcalico.org/v1", "IPPool"),
            "still counted"
        );
    }
}
