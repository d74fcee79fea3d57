//! Who a proxy is, as it tells the control plane when it connects.
//!
//! The identity travels in Envoy's `Node` message of the first request on the stream: `id`
//! in Istio's shape (`sidecar~10.77.0.3~orders-v1-0.shop~shop.svc.cluster.local`), so the
//! names in `trellis status` read like `istioctl proxy-status`, and the details (workload,
//! namespace, service account, labels, addresses) in `metadata`, as Istio's `ISTIO_META_*`
//! values are. The control plane cuts the proxy's view from these.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use trellis_model::Labels;

/// What the proxy runs as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyKind {
    /// Next to one workload: outbound for its calls, inbound for its callers.
    #[default]
    Sidecar,
    /// At the edge: serves the gateways whose selector matches its labels.
    Gateway,
}

impl ProxyKind {
    /// The word used in node ids and metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyKind::Sidecar => "sidecar",
            ProxyKind::Gateway => "router",
        }
    }

    fn parse(s: &str) -> Option<ProxyKind> {
        match s {
            "sidecar" => Some(ProxyKind::Sidecar),
            "router" | "gateway" => Some(ProxyKind::Gateway),
            _ => None,
        }
    }
}

/// A proxy's identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProxyIdentity {
    /// Sidecar or gateway.
    pub kind: ProxyKind,
    /// Workload (pod) name.
    pub workload: String,
    /// Namespace of the workload.
    pub namespace: String,
    /// Service account: with the namespace, the SPIFFE identity.
    pub service_account: String,
    /// Workload labels: what Sidecars, policies and gateways select on.
    pub labels: Labels,
    /// The workload's IP addresses.
    pub addresses: Vec<String>,
}

/// A `Node` that does not describe a proxy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid node identity: {0}")]
pub struct NodeError(pub String);

const WORKLOAD: &str = "WORKLOAD_NAME";
const NAMESPACE: &str = "NAMESPACE";
const SERVICE_ACCOUNT: &str = "SERVICE_ACCOUNT";
const LABELS: &str = "LABELS";
const KIND: &str = "PROXY_TYPE";
const IPS: &str = "INSTANCE_IPS";

impl ProxyIdentity {
    /// Istio's node id: `<type>~<ip>~<workload>.<namespace>~<namespace>.svc.<domain>`.
    pub fn node_id(&self) -> String {
        let ip = self.addresses.first().map_or("0.0.0.0", String::as_str);
        format!(
            "{}~{ip}~{}.{}~{}.svc.cluster.local",
            self.kind.as_str(),
            self.workload,
            self.namespace,
            self.namespace
        )
    }

    /// `workload.namespace`, the short name status tables show.
    pub fn name(&self) -> String {
        format!("{}.{}", self.workload, self.namespace)
    }

    /// The `Node` sent on the first request of a stream.
    pub fn to_node(&self) -> Node {
        let s = |v: &str| Value {
            kind: Some(Kind::StringValue(v.to_owned())),
        };
        let labels = Struct {
            fields: self.labels.iter().map(|(k, v)| (k.clone(), s(v))).collect(),
        };
        let mut fields = HashMap::new();
        fields.insert(WORKLOAD.to_owned(), s(&self.workload));
        fields.insert(NAMESPACE.to_owned(), s(&self.namespace));
        fields.insert(SERVICE_ACCOUNT.to_owned(), s(&self.service_account));
        fields.insert(KIND.to_owned(), s(self.kind.as_str()));
        fields.insert(IPS.to_owned(), s(&self.addresses.join(",")));
        fields.insert(
            LABELS.to_owned(),
            Value {
                kind: Some(Kind::StructValue(labels)),
            },
        );
        Node {
            id: self.node_id(),
            cluster: self.labels.get("app").cloned().unwrap_or_default(),
            metadata: Some(Struct { fields }),
            ..Node::default()
        }
    }

    /// Reads the identity back from a `Node`; workload and namespace are required.
    pub fn from_node(node: &Node) -> Result<ProxyIdentity, NodeError> {
        let empty = Struct::default();
        let meta = node.metadata.as_ref().unwrap_or(&empty);
        let text = |key: &str| -> Option<&str> {
            match meta.fields.get(key)?.kind.as_ref()? {
                Kind::StringValue(v) => Some(v.as_str()),
                _ => None,
            }
        };
        let required = |key: &str| {
            text(key)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| NodeError(format!("metadata.{key} is missing")))
        };
        let kind = match text(KIND) {
            None => ProxyKind::Sidecar,
            Some(k) => ProxyKind::parse(k).ok_or_else(|| {
                NodeError(format!("metadata.{KIND} {k:?} is not sidecar or router"))
            })?,
        };
        let labels = match meta.fields.get(LABELS).and_then(|v| v.kind.as_ref()) {
            Some(Kind::StructValue(st)) => st
                .fields
                .iter()
                .filter_map(|(k, v)| match v.kind.as_ref()? {
                    Kind::StringValue(s) => Some((k.clone(), s.clone())),
                    _ => None,
                })
                .collect(),
            _ => Labels::new(),
        };
        Ok(ProxyIdentity {
            kind,
            workload: required(WORKLOAD)?,
            namespace: required(NAMESPACE)?,
            service_account: text(SERVICE_ACCOUNT)
                .filter(|v| !v.is_empty())
                .unwrap_or("default")
                .to_owned(),
            labels,
            addresses: text(IPS)
                .unwrap_or_default()
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_through_the_node() {
        let id = ProxyIdentity {
            kind: ProxyKind::Gateway,
            workload: "ingress-0".into(),
            namespace: "istio-system".into(),
            service_account: "ingress".into(),
            labels: Labels::from([("istio".to_owned(), "ingressgateway".to_owned())]),
            addresses: vec!["127.0.0.1".into()],
        };
        let node = id.to_node();
        assert_eq!(
            node.id,
            "router~127.0.0.1~ingress-0.istio-system~istio-system.svc.cluster.local"
        );
        assert_eq!(ProxyIdentity::from_node(&node), Ok(id));
    }

    #[test]
    fn missing_fields_are_named() {
        let err = ProxyIdentity::from_node(&Node::default()).expect_err("no metadata");
        assert!(err.0.contains("WORKLOAD_NAME"), "{err}");
        let mut node = ProxyIdentity {
            workload: "w".into(),
            namespace: "n".into(),
            ..ProxyIdentity::default()
        }
        .to_node();
        let id = ProxyIdentity::from_node(&node).expect("valid");
        assert_eq!(id.service_account, "default");
        if let Some(m) = node.metadata.as_mut() {
            m.fields.insert(
                KIND.into(),
                Value {
                    kind: Some(Kind::StringValue("waypoint?".into())),
                },
            );
        }
        let err = ProxyIdentity::from_node(&node).expect_err("bad kind");
        assert!(err.0.contains("PROXY_TYPE"), "{err}");
    }
}
