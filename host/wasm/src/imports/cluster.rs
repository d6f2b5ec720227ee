//! `cluster`: the cluster's objects as the engine's view holds them, and
//! the extension's config values.

use crate::bindings::{cluster as wc, types as wt};
use crate::convert::{ip_from, node_to, owner_to, pod_to, protocol_from, settings_to};
use crate::state::HostState;

impl HostState {
    fn may_read(&self, api_version: &str, kind: &str) -> Result<(), wt::Error> {
        let want = format!("{api_version}/{kind}");
        if kind == "Secret" || !self.reads.iter().any(|r| r == &want) {
            return Err(wt::Error::Invalid(format!(
                "extension {} may not read {want}: declare it in its metadata `reads` (Secrets are never lent)",
                self.name
            )));
        }
        Ok(())
    }

    fn cluster_current_settings(&mut self) -> wc::Settings {
        settings_to(&self.facts().settings)
    }

    fn cluster_owner(&mut self, ip: wt::IpAddress, port: u16, protocol: wt::Protocol) -> wt::Owner {
        let facts = self.facts();
        match (ip_from(&ip), protocol_from(protocol)) {
            (Ok(ip), Ok(protocol)) => {
                let c = facts.view.classify(ip, port, protocol);
                owner_to(&c, |n| facts.view.nodes.get(n).map(|n| n.ip))
            }
            _ => wt::Owner::External(ip),
        }
    }

    fn cluster_pod(&mut self, id: String) -> Option<wt::PodInfo> {
        let facts = self.facts();
        let p = facts.view.pods.get(&id)?;
        Some(pod_to(p, facts.view.nodes.get(&p.node).map(|n| n.ip)))
    }

    fn cluster_pods_on(&mut self, name: String) -> Vec<wt::PodInfo> {
        let facts = self.facts();
        let node_ip = facts.view.nodes.get(&name).map(|n| n.ip);
        facts
            .view
            .pods
            .values()
            .filter(|p| p.node == name)
            .map(|p| pod_to(p, node_ip))
            .collect()
    }

    fn cluster_node(&mut self, name: String) -> Option<wt::NodeInfo> {
        self.facts().view.nodes.get(&name).map(node_to)
    }

    fn cluster_nodes(&mut self) -> Vec<wt::NodeInfo> {
        self.facts().view.nodes.values().map(node_to).collect()
    }

    fn cluster_get_object(
        &mut self,
        api_version: String,
        kind: String,
        namespace: String,
        name: String,
    ) -> Result<Option<String>, wt::Error> {
        self.may_read(&api_version, &kind)?;
        let facts = self.facts();
        Ok(facts
            .view
            .object(&api_version, &kind, &namespace, &name)
            .map(|o| o.json().to_string()))
    }

    fn cluster_list_objects(
        &mut self,
        api_version: String,
        kind: String,
        namespace: String,
    ) -> Result<Vec<String>, wt::Error> {
        self.may_read(&api_version, &kind)?;
        let facts = self.facts();
        Ok(facts
            .view
            .objects(&api_version, &kind, &namespace)
            .into_iter()
            .map(|o| o.json().to_string())
            .collect())
    }

    fn cluster_config(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }
}

lend!(wc {
    "cluster.current-settings" fn current_settings() -> wc::Settings = cluster_current_settings;
    "cluster.owner-of" fn owner_of(ip: wt::IpAddress, port: u16, protocol: wt::Protocol) -> wt::Owner = cluster_owner;
    "cluster.pod" fn pod(id: String) -> Option<wt::PodInfo> = cluster_pod;
    "cluster.pods-on" fn pods_on(name: String) -> Vec<wt::PodInfo> = cluster_pods_on;
    "cluster.node" fn node(name: String) -> Option<wt::NodeInfo> = cluster_node;
    "cluster.nodes" fn nodes() -> Vec<wt::NodeInfo> = cluster_nodes;
    "cluster.get-object" fn get_object(api_version: String, kind: String, namespace: String, name: String) -> Result<Option<String>, wt::Error> = cluster_get_object;
    "cluster.list-objects" fn list_objects(api_version: String, kind: String, namespace: String) -> Result<Vec<String>, wt::Error> = cluster_list_objects;
    "cluster.config" fn config(key: String) -> Option<String> = cluster_config;
});
