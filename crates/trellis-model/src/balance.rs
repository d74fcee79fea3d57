//! Load balancing: which endpoint of a backend gets the next request.
//!
//! Istio's `loadBalancer` (simple algorithms, consistent hashing, locality settings) and
//! Linkerd's latency-aware default both compile into [`LoadBalancer`] and [`LocalityLb`].

use std::collections::BTreeMap;
use std::time::Duration;

/// The algorithm that picks an endpoint for each request (HTTP) or connection (TCP).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancer {
    /// Cycle through endpoints in order.
    RoundRobin,
    /// Power of two choices by outstanding requests (Istio `LEAST_REQUEST`).
    LeastRequest,
    /// Uniformly random endpoint.
    Random,
    /// Connect to the original destination address the client asked for, without
    /// balancing (Istio `PASSTHROUGH`, ServiceEntry `resolution: NONE`).
    Passthrough,
    /// Power of two choices by peak exponentially weighted moving average of latency,
    /// Linkerd's latency-aware default. Used when nothing is configured: it degrades to
    /// least-request under uniform latency and steers away from slow endpoints otherwise.
    #[default]
    PeakEwma,
    /// Session affinity: requests with the same key go to the same endpoint while the
    /// endpoint set is stable.
    ConsistentHash(ConsistentHash),
}

/// Consistent-hash load balancing.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ConsistentHash {
    /// What identifies a session.
    pub key: HashKey,
    /// How keys are mapped onto endpoints.
    pub algorithm: HashAlgorithm,
}

/// The request attribute hashed for session affinity.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashKey {
    /// Value of this request header (case-insensitive name).
    Header(String),
    /// Value of this cookie. With a `ttl`, the proxy sets the cookie when the request
    /// does not carry it, so new clients get affinity from their second request on.
    Cookie {
        /// Cookie name.
        name: String,
        /// Path attribute of a generated cookie.
        path: Option<String>,
        /// Lifetime of a generated cookie; unset means the cookie is never generated.
        #[serde(with = "crate::serde_millis::option", default)]
        ttl: Option<Duration>,
    },
    /// The downstream client's IP address; the default, as the only key every request
    /// has.
    #[default]
    SourceIp,
    /// Value of this URL query parameter.
    QueryParameter(String),
}

/// How hashed keys map onto endpoints.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashAlgorithm {
    /// Ketama ring; larger rings spread load more evenly at more memory.
    RingHash {
        /// Minimum number of ring entries (Envoy default 1024).
        minimum_ring_size: u64,
    },
    /// Maglev table: faster lookups and less disruption when endpoints change.
    Maglev {
        /// Table size, a prime (Envoy default 65537).
        table_size: u64,
    },
}

impl Default for HashAlgorithm {
    /// Envoy's default: a ring of at least 1024 entries.
    fn default() -> Self {
        HashAlgorithm::RingHash {
            minimum_ring_size: 1024,
        }
    }
}

/// Locality-aware balancing: keep traffic in the client's region/zone and fail over to
/// other localities only when local endpoints are unhealthy.
///
/// Localities are written `region/zone/subzone`; a trailing `*` matches every zone or
/// subzone below a prefix, as in Istio.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LocalityLb {
    /// Whether locality awareness is on. Istio enables it by default, but it only takes
    /// effect together with outlier detection (without health information the proxy
    /// cannot know when to fail over).
    pub enabled: bool,
    /// Explicit traffic shares per client locality; mutually exclusive with `failover`.
    pub distribute: Vec<LocalityDistribute>,
    /// Where traffic from a region goes when its own region has no healthy endpoints.
    pub failover: Vec<LocalityFailover>,
    /// Endpoint labels (e.g. `topology.kubernetes.io/region`, `topology.istio.io/network`)
    /// ordered by priority: endpoints agreeing with the client on more of them, in order,
    /// are preferred.
    pub failover_priority: Vec<String>,
}

impl Default for LocalityLb {
    fn default() -> Self {
        LocalityLb {
            enabled: true,
            distribute: Vec::new(),
            failover: Vec::new(),
            failover_priority: Vec::new(),
        }
    }
}

/// Traffic shares for clients in locality `from`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LocalityDistribute {
    /// Client locality, possibly ending in `*`.
    pub from: String,
    /// Destination locality → percentage of traffic; percentages add up to 100.
    pub to: BTreeMap<String, u32>,
}

/// Failover from one region to another.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LocalityFailover {
    /// Client region.
    pub from: String,
    /// Region tried when `from` has no healthy endpoints.
    pub to: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        assert_eq!(LoadBalancer::default(), LoadBalancer::PeakEwma);
        assert_eq!(
            ConsistentHash::default().algorithm,
            HashAlgorithm::RingHash {
                minimum_ring_size: 1024
            }
        );
        assert!(LocalityLb::default().enabled);
    }

    #[test]
    fn serde_shape() -> Result<(), serde_json::Error> {
        let lb = LoadBalancer::ConsistentHash(ConsistentHash {
            key: HashKey::Cookie {
                name: "session".into(),
                path: None,
                ttl: Some(Duration::from_secs(60)),
            },
            algorithm: HashAlgorithm::Maglev { table_size: 65537 },
        });
        let json = serde_json::to_string(&lb)?;
        assert!(json.contains(r#""ttl":60000"#), "{json}");
        assert_eq!(serde_json::from_str::<LoadBalancer>(&json)?, lb);
        assert_eq!(
            serde_json::to_string(&LoadBalancer::PeakEwma)?,
            r#""peak_ewma""#
        );
        Ok(())
    }
}
