//! Peer metadata exchange over plaintext HTTP: how the server-side proxy learns who called
//! it, so its `reporter="destination"` metrics carry the caller's `source_*` labels (Istio
//! sends `x-envoy-peer-metadata` for the same purpose; Istio's dashboards and Kiali's graph
//! read the destination side).
//!
//! The client-side proxy puts `x-trellis-peer: workload=…;namespace=…;app=…;version=…` on
//! every request it forwards to a service inside the mesh (never to a `MESH_EXTERNAL`
//! ServiceEntry, where it would leak workload names), replacing whatever the application
//! sent. The server-side proxy takes it off before the request reaches the application.
//!
//! Without mutual TLS the header is only as trustworthy as the network: it feeds metric
//! labels and nothing else (never authorization), and `source_principal` stays `unknown`.
//! Values are checked (Kubernetes name characters, bounded length) and a header that fails
//! the check counts as absent; the metric families' cardinality bound caps what a hostile
//! client can add.

use http::HeaderValue;
use http::header::HeaderName;

use super::peers::{SourceIdentity, UNKNOWN};

/// The request header carrying the caller's workload identity between proxies.
pub static HEADER: HeaderName = HeaderName::from_static("x-trellis-peer");

/// Longest header value accepted (four values of a Kubernetes label's 63 characters and
/// a name's 253 fit with room to spare).
const MAX_LEN: usize = 1024;

/// The caller as the peer header names it; fields it leaves out are `unknown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `source_workload`.
    pub workload: String,
    /// `source_workload_namespace`.
    pub namespace: String,
    /// `source_app`.
    pub app: String,
    /// `source_version`.
    pub version: String,
}

impl Caller {
    /// A caller the destination knows nothing about.
    pub fn unknown() -> Caller {
        let u = || UNKNOWN.to_owned();
        Caller {
            workload: u(),
            namespace: u(),
            app: u(),
            version: u(),
        }
    }

    /// Reads a peer header value; `None` when it is malformed (too long, a value with
    /// characters outside `[A-Za-z0-9._-]`, a pair without `=`), so a bad header is
    /// treated as no header at all.
    pub fn parse(value: &HeaderValue) -> Option<Caller> {
        let bytes = value.as_bytes();
        if bytes.len() > MAX_LEN {
            return None;
        }
        let text = std::str::from_utf8(bytes).ok()?;
        let mut caller = Caller::unknown();
        for pair in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, val) = pair.split_once('=')?;
            if val.is_empty()
                || !val
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return None;
            }
            let slot = match key.trim() {
                "workload" => &mut caller.workload,
                "namespace" => &mut caller.namespace,
                "app" => &mut caller.app,
                "version" => &mut caller.version,
                // Newer peers may send more; what this proxy does not know it ignores.
                _ => continue,
            };
            val.clone_into(slot);
        }
        Some(caller)
    }
}

/// The header value this proxy sends for `identity`; `None` when the identity has nothing
/// worth sending (every field unknown) or a field cannot be sent as it is.
pub fn encode(identity: &SourceIdentity) -> Option<HeaderValue> {
    let fields = [
        ("workload", &identity.workload),
        ("namespace", &identity.namespace),
        ("app", &identity.app),
        ("version", &identity.version),
    ];
    let known: Vec<String> = fields
        .iter()
        .filter(|(_, v)| !v.is_empty() && v.as_str() != UNKNOWN)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if known.is_empty() {
        return None;
    }
    let value = HeaderValue::from_str(&known.join(";")).ok()?;
    // Send only what the receiving side would accept.
    Caller::parse(&value).map(|_| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> SourceIdentity {
        SourceIdentity {
            workload: "frontend-v1".into(),
            namespace: "shop".into(),
            app: "frontend".into(),
            version: "v1".into(),
            principal: "spiffe://cluster.local/ns/shop/sa/frontend".into(),
        }
    }

    #[test]
    fn an_encoded_identity_parses_back_without_its_principal() {
        let value = encode(&identity()).expect("encodable");
        assert_eq!(
            value,
            "workload=frontend-v1;namespace=shop;app=frontend;version=v1"
        );
        let caller = Caller::parse(&value).expect("valid");
        assert_eq!(
            caller,
            Caller {
                workload: "frontend-v1".into(),
                namespace: "shop".into(),
                app: "frontend".into(),
                version: "v1".into(),
            }
        );
    }

    #[test]
    fn unknown_fields_are_not_sent_and_missing_ones_read_as_unknown() {
        assert_eq!(encode(&SourceIdentity::default()), None);
        let partial = SourceIdentity {
            app: "frontend".into(),
            ..SourceIdentity::default()
        };
        let value = encode(&partial).expect("encodable");
        assert_eq!(value, "app=frontend");
        let caller = Caller::parse(&value).expect("valid");
        assert_eq!(caller.app, "frontend");
        assert_eq!(caller.workload, UNKNOWN);
    }

    #[test]
    fn malformed_values_count_as_no_header() {
        for bad in [
            "workload=a b",
            "workload",
            "workload=",
            "app=x\"y",
            "app=x,version=y",
        ] {
            let value = HeaderValue::from_str(bad).expect("header value");
            assert_eq!(Caller::parse(&value), None, "{bad}");
        }
        let long = format!("app={}", "a".repeat(MAX_LEN));
        let value = HeaderValue::from_str(&long).expect("header value");
        assert_eq!(Caller::parse(&value), None);
        // Unknown keys are skipped, spaces around pairs tolerated.
        let value = HeaderValue::from_static(" app=a ; zone=eu-1 ;version=v2");
        let caller = Caller::parse(&value).expect("valid");
        assert_eq!((caller.app.as_str(), caller.version.as_str()), ("a", "v2"));
    }
}
