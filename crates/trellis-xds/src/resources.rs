//! How a proxy's view of the mesh is cut into xDS resources, and put back together.
//!
//! Four resource types, each at the granularity its updates happen:
//!
//! | type URL (`type.googleapis.com/…`) | name | holds |
//! |---|---|---|
//! | `trellis.xds.v1.MeshSettings` | `mesh` | trust domain, DNS domain, namespaces, the security and telemetry policies that apply to the proxy, its own workload |
//! | `trellis.xds.v1.ServiceEndpoints` | service host | the endpoints of one service (they change far more often than the rest) |
//! | `trellis.xds.v1.ServiceConfig` | service host | one service: ports, routes, subsets, policies, without endpoints |
//! | `trellis.xds.v1.GatewayConfig` | `namespace/name` | a gateway the proxy serves (gateway proxies only) |
//!
//! A resource's version is a hash of its encoded bytes, so the control plane sends a resource
//! only when its content changed, and a reconnecting proxy that reports the versions it holds
//! (`initial_resource_versions`) receives only what it lacks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryResponse;
use envoy_types::pb::google::protobuf::Any;
use prost::Message as _;
use trellis_model::{
    Endpoint, Gateway, Mesh, SecurityPolicies, Service, TelemetryPolicy, Workload,
};

use crate::convert::DecodeError;
use crate::pb::{mesh as pbm, xds as pbx};

/// Type URL of [`pbx::MeshSettings`].
pub const MESH_TYPE: &str = "type.googleapis.com/trellis.xds.v1.MeshSettings";
/// Type URL of [`pbx::ServiceEndpoints`].
pub const ENDPOINTS_TYPE: &str = "type.googleapis.com/trellis.xds.v1.ServiceEndpoints";
/// Type URL of [`pbx::ServiceConfig`].
pub const SERVICE_TYPE: &str = "type.googleapis.com/trellis.xds.v1.ServiceConfig";
/// Type URL of [`pbx::GatewayConfig`].
pub const GATEWAY_TYPE: &str = "type.googleapis.com/trellis.xds.v1.GatewayConfig";

/// Every type, in the order a push sends them: settings first, then endpoints before the
/// services that use them (a service that arrives before its endpoints would briefly answer
/// 503), gateways last because they route to services.
pub const TYPE_URLS: [&str; 4] = [MESH_TYPE, ENDPOINTS_TYPE, SERVICE_TYPE, GATEWAY_TYPE];

/// The name of the single [`MESH_TYPE`] resource.
pub const MESH_RESOURCE: &str = "mesh";

/// The short word for a type URL, for logs, metrics and status tables.
pub fn type_short(type_url: &str) -> &'static str {
    match type_url {
        MESH_TYPE => "mesh",
        ENDPOINTS_TYPE => "endpoints",
        SERVICE_TYPE => "services",
        GATEWAY_TYPE => "gateways",
        _ => "unknown",
    }
}

/// One encoded resource, shared by every proxy that sees it. The name is shared too: a control
/// plane tracks, per proxy, the version of every resource it sent, and at two hundred proxies
/// with two thousand resources each those names would otherwise be copied 800,000 times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Resource name.
    pub name: Arc<str>,
    /// Content hash (xxHash64 of `bytes`), as the wire's version string.
    pub version: String,
    /// The same hash as a number, for cheap comparisons.
    pub hash: u64,
    /// The protobuf bytes (an `Any` value of the resource's type).
    pub bytes: Vec<u8>,
}

/// The hash a version string stands for (`None` for versions this control plane did not make).
pub fn version_hash(version: &str) -> Option<u64> {
    u64::from_str_radix(version, 16).ok()
}

impl Encoded {
    fn new(name: String, msg: &impl prost::Message) -> Encoded {
        let bytes = msg.encode_to_vec();
        let hash = xxhash_rust::xxh64::xxh64(&bytes, 0);
        Encoded {
            name: name.into(),
            version: format!("{hash:016x}"),
            hash,
            bytes,
        }
    }

    /// The resource as an `Any` of `type_url`.
    pub fn to_any(&self, type_url: &str) -> Any {
        Any {
            type_url: type_url.to_owned(),
            value: self.bytes.clone(),
        }
    }
}

/// Mesh-wide settings and the policies that concern one proxy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// SPIFFE trust domain.
    pub trust_domain: String,
    /// Cluster DNS domain.
    pub domain: String,
    /// Root namespace for mesh-wide policies.
    pub root_namespace: String,
    /// Known namespaces (for short host names).
    pub namespaces: Vec<String>,
    /// Security policies that may apply to the proxy's workload.
    pub security: SecurityPolicies,
    /// Telemetry policies that may apply to it.
    pub telemetry: Vec<TelemetryPolicy>,
    /// The proxy's own workload.
    pub workload: Option<Workload>,
}

/// Encodes a service's configuration (its endpoints travel separately).
pub fn encode_service(s: &Service) -> Encoded {
    let without_endpoints = Service {
        endpoints: Vec::new(),
        ..s.clone()
    };
    let msg = pbx::ServiceConfig {
        service: Some(pbm::Service::from(&without_endpoints)),
    };
    Encoded::new(s.host.clone(), &msg)
}

/// Encodes a service's endpoints.
pub fn encode_endpoints(s: &Service) -> Encoded {
    let msg = pbx::ServiceEndpoints {
        host: s.host.clone(),
        endpoints: s.endpoints.iter().map(pbm::Endpoint::from).collect(),
    };
    Encoded::new(s.host.clone(), &msg)
}

/// Encodes a gateway, named `namespace/name`.
pub fn encode_gateway(g: &Gateway) -> Encoded {
    let msg = pbx::GatewayConfig {
        gateway: Some(pbm::Gateway::from(g)),
    };
    Encoded::new(format!("{}/{}", g.namespace, g.name), &msg)
}

/// Encodes the settings resource.
pub fn encode_settings(s: &Settings) -> Encoded {
    let msg = pbx::MeshSettings {
        trust_domain: s.trust_domain.clone(),
        domain: s.domain.clone(),
        root_namespace: s.root_namespace.clone(),
        namespaces: s.namespaces.clone(),
        security: Some(pbm::SecurityPolicies::from(&s.security)),
        telemetry: s.telemetry.iter().map(pbm::TelemetryPolicy::from).collect(),
        workload: s.workload.as_ref().map(pbm::Workload::from),
    };
    Encoded::new(MESH_RESOURCE.to_owned(), &msg)
}

/// A resource the proxy cannot use, with the reason it reports in its NACK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// The response is of a type this proxy does not know.
    #[error("unknown resource type {0}")]
    UnknownType(String),
    /// A resource's bytes are not a valid message of its type.
    #[error("{type_short} {name}: cannot decode: {reason}")]
    Malformed {
        /// Type of the resource.
        type_short: &'static str,
        /// Resource name.
        name: String,
        /// What protobuf reported.
        reason: String,
    },
    /// A resource decodes but does not describe a valid model value.
    #[error("{type_short} {name}: {source}")]
    Invalid {
        /// Type of the resource.
        type_short: &'static str,
        /// Resource name.
        name: String,
        /// The field and what is wrong with it.
        #[source]
        source: DecodeError,
    },
    /// A resource arrived without a body.
    #[error("{type_short} {name}: the resource has no body")]
    Empty {
        /// Type of the resource.
        type_short: &'static str,
        /// Resource name.
        name: String,
    },
}

/// What a proxy holds, by type and name, each with its version. Values are shared, so a
/// staging copy for the next update is cheap.
#[derive(Debug, Clone, Default)]
pub struct Assembly {
    settings: Option<(String, Arc<Settings>)>,
    endpoints: BTreeMap<String, (String, Arc<Vec<Endpoint>>)>,
    services: BTreeMap<String, (String, Arc<Service>)>,
    gateways: BTreeMap<String, (String, Arc<Gateway>)>,
}

impl Assembly {
    /// Applies one response: every added resource is decoded before anything changes, so
    /// a response is taken whole or not at all.
    pub fn apply(&mut self, resp: &DeltaDiscoveryResponse) -> Result<(), ResourceError> {
        let type_short = type_short(&resp.type_url);
        let decode = |r| body(type_short, r);
        let malformed = |name: &str, e: prost::DecodeError| ResourceError::Malformed {
            type_short,
            name: name.to_owned(),
            reason: e.to_string(),
        };
        let invalid = |name: &str, e: DecodeError| ResourceError::Invalid {
            type_short,
            name: name.to_owned(),
            source: e,
        };
        match resp.type_url.as_str() {
            MESH_TYPE => {
                let mut next = None;
                for r in &resp.resources {
                    let (name, version, bytes) = decode(r)?;
                    let msg = pbx::MeshSettings::decode(bytes).map_err(|e| malformed(&name, e))?;
                    let s = decode_settings(msg).map_err(|e| invalid(&name, e))?;
                    next = Some((version, Arc::new(s)));
                }
                if let Some(n) = next {
                    self.settings = Some(n);
                } else if resp.removed_resources.iter().any(|n| n == MESH_RESOURCE) {
                    self.settings = None;
                }
            }
            ENDPOINTS_TYPE => {
                let mut added = Vec::with_capacity(resp.resources.len());
                for r in &resp.resources {
                    let (name, version, bytes) = decode(r)?;
                    let msg =
                        pbx::ServiceEndpoints::decode(bytes).map_err(|e| malformed(&name, e))?;
                    let eps = msg
                        .endpoints
                        .into_iter()
                        .enumerate()
                        .map(|(i, e)| {
                            Endpoint::try_from(e).map_err(|e| DecodeError {
                                path: format!("endpoints[{i}].{}", e.path),
                                reason: e.reason,
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| invalid(&name, e))?;
                    added.push((name, (version, Arc::new(eps))));
                }
                update(&mut self.endpoints, added, &resp.removed_resources);
            }
            SERVICE_TYPE => {
                let mut added = Vec::with_capacity(resp.resources.len());
                for r in &resp.resources {
                    let (name, version, bytes) = decode(r)?;
                    let msg = pbx::ServiceConfig::decode(bytes).map_err(|e| malformed(&name, e))?;
                    let pb = msg.service.ok_or_else(|| ResourceError::Empty {
                        type_short,
                        name: name.clone(),
                    })?;
                    let s = Service::try_from(pb).map_err(|e| invalid(&name, e))?;
                    added.push((name, (version, Arc::new(s))));
                }
                update(&mut self.services, added, &resp.removed_resources);
            }
            GATEWAY_TYPE => {
                let mut added = Vec::with_capacity(resp.resources.len());
                for r in &resp.resources {
                    let (name, version, bytes) = decode(r)?;
                    let msg = pbx::GatewayConfig::decode(bytes).map_err(|e| malformed(&name, e))?;
                    let pb = msg.gateway.ok_or_else(|| ResourceError::Empty {
                        type_short,
                        name: name.clone(),
                    })?;
                    let g = Gateway::try_from(pb).map_err(|e| invalid(&name, e))?;
                    added.push((name, (version, Arc::new(g))));
                }
                update(&mut self.gateways, added, &resp.removed_resources);
            }
            other => return Err(ResourceError::UnknownType(other.to_owned())),
        }
        Ok(())
    }

    /// The versions held of `type_url`, for `initial_resource_versions` on reconnect.
    pub fn versions(&self, type_url: &str) -> HashMap<String, String> {
        fn of<T>(m: &BTreeMap<String, (String, T)>) -> HashMap<String, String> {
            m.iter().map(|(n, (v, _))| (n.clone(), v.clone())).collect()
        }
        match type_url {
            MESH_TYPE => self
                .settings
                .iter()
                .map(|(v, _)| (MESH_RESOURCE.to_owned(), v.clone()))
                .collect(),
            ENDPOINTS_TYPE => of(&self.endpoints),
            SERVICE_TYPE => of(&self.services),
            GATEWAY_TYPE => of(&self.gateways),
            _ => HashMap::new(),
        }
    }

    /// Whether the settings resource has arrived (a proxy serves nothing meaningful before).
    pub fn has_settings(&self) -> bool {
        self.settings.is_some()
    }

    /// The mesh these resources describe: services joined with their endpoints.
    pub fn mesh(&self) -> Mesh {
        let mut mesh = Mesh::default();
        if let Some((_, s)) = &self.settings {
            mesh.trust_domain.clone_from(&s.trust_domain);
            mesh.domain.clone_from(&s.domain);
            mesh.root_namespace.clone_from(&s.root_namespace);
            mesh.namespaces = s.namespaces.iter().cloned().collect();
            mesh.security = s.security.clone();
            mesh.telemetry.clone_from(&s.telemetry);
            mesh.workloads = s.workload.iter().cloned().collect();
        }
        mesh.services = self
            .services
            .iter()
            .map(|(host, (_, s))| {
                let mut s = Service::clone(s);
                if let Some((_, eps)) = self.endpoints.get(host) {
                    s.endpoints = Vec::clone(eps);
                }
                s
            })
            .collect();
        mesh.gateways = self
            .gateways
            .values()
            .map(|(_, g)| Gateway::clone(g))
            .collect();
        mesh.normalize();
        mesh
    }
}

/// A resource's name, version and bytes, or why it has none.
fn body<'r>(
    type_short: &'static str,
    r: &'r envoy_types::pb::envoy::service::discovery::v3::Resource,
) -> Result<(String, String, &'r [u8]), ResourceError> {
    let any = r.resource.as_ref().ok_or_else(|| ResourceError::Empty {
        type_short,
        name: r.name.clone(),
    })?;
    Ok((r.name.clone(), r.version.clone(), any.value.as_slice()))
}

/// Prefixes a decode error's path with the field it was found under.
fn under(field: &'static str) -> impl Fn(DecodeError) -> DecodeError {
    move |e| DecodeError {
        path: format!("{field}.{}", e.path),
        reason: e.reason,
    }
}

fn update<T>(
    map: &mut BTreeMap<String, (String, T)>,
    added: Vec<(String, (String, T))>,
    removed: &[String],
) {
    for name in removed {
        map.remove(name);
    }
    map.extend(added);
}

fn decode_settings(msg: pbx::MeshSettings) -> Result<Settings, DecodeError> {
    Ok(Settings {
        trust_domain: msg.trust_domain,
        domain: msg.domain,
        root_namespace: msg.root_namespace,
        namespaces: msg.namespaces,
        security: msg
            .security
            .map(SecurityPolicies::try_from)
            .transpose()
            .map_err(under("security"))?
            .unwrap_or_default(),
        telemetry: msg
            .telemetry
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                TelemetryPolicy::try_from(t).map_err(|e| DecodeError {
                    path: format!("telemetry[{i}].{}", e.path),
                    reason: e.reason,
                })
            })
            .collect::<Result<_, _>>()?,
        workload: msg
            .workload
            .map(Workload::try_from)
            .transpose()
            .map_err(under("workload"))?,
    })
}

#[cfg(test)]
mod tests;
