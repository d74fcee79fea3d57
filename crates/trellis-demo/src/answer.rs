//! The JSON documents the demo answers with. They are serialized from structs rather than
//! built as `serde_json::Value` maps because a `Value` map sorts its keys: a person reading
//! `curl` output should see `service` and `version` first, and an upstream's answer is
//! nested verbatim (as a `RawValue`), so every level of a chain reads the same way.

use serde::Serialize;
use serde_json::value::RawValue;

/// A served request: `{"service", "version", "pod", "path", "upstream": [...]}`.
#[derive(Debug, Serialize)]
pub(crate) struct Served<'a> {
    pub(crate) service: &'a str,
    pub(crate) version: &'a str,
    pub(crate) pod: &'a str,
    pub(crate) path: &'a str,
    pub(crate) upstream: &'a [Entry],
}

/// A request failed on purpose (`--fail-rate`): `{"service", "version", "pod", "error"}`.
#[derive(Debug, Serialize)]
pub(crate) struct Injected<'a> {
    pub(crate) service: &'a str,
    pub(crate) version: &'a str,
    pub(crate) pod: &'a str,
    pub(crate) error: &'a str,
}

/// One element of `upstream`: what the upstream answered, or why there is no answer.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Entry {
    /// A 2xx JSON answer, exactly as the upstream sent it.
    Answer(Box<RawValue>),
    Failure(Failure),
}

impl Entry {
    pub(crate) fn is_failure(&self) -> bool {
        matches!(self, Entry::Failure(_))
    }
}

/// `{"url", "status", "error"}`, with `flags` and `body` when there are some.
#[derive(Debug, Serialize)]
pub(crate) struct Failure {
    pub(crate) url: String,
    /// `null` when no answer arrived (connect failure, timeout).
    pub(crate) status: Option<u16>,
    pub(crate) error: String,
    /// The trellis proxy's response flags (`UF`, `NR`, `UT`, …) when it made the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) flags: Option<String>,
    /// What the upstream said: its JSON when it sent JSON, else the start of its text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) body: Option<Body>,
}

impl Failure {
    pub(crate) fn new(url: String, status: Option<u16>, error: String) -> Failure {
        Failure {
            url,
            status,
            error,
            flags: None,
            body: None,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Body {
    Json(Box<RawValue>),
    Text(String),
}

/// The serialized document. These shapes hold only strings, numbers and already valid
/// JSON, so serializing cannot fail; the fallback keeps the answer valid JSON regardless.
pub(crate) fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|e| format!("{{\"error\":{:?}}}", format!("cannot serialize: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_order_and_upstream_answers_nest_verbatim() {
        let nested = RawValue::from_string(r#"{"service":"inventory","version":"v1"}"#.into())
            .expect("valid JSON");
        let mut failure = Failure::new("http://payments/".into(), Some(503), "down".into());
        failure.flags = Some("UH".into());
        let entries = [Entry::Answer(nested), Entry::Failure(failure)];
        let served = Served {
            service: "orders",
            version: "v2",
            pod: "orders-1",
            path: "/orders",
            upstream: &entries,
        };
        assert_eq!(
            to_json(&served),
            concat!(
                r#"{"service":"orders","version":"v2","pod":"orders-1","path":"/orders","#,
                r#""upstream":[{"service":"inventory","version":"v1"},"#,
                r#"{"url":"http://payments/","status":503,"error":"down","flags":"UH"}]}"#
            )
        );
        let timeout = Failure::new("http://x/".into(), None, "timed out after 5s".into());
        assert_eq!(
            to_json(&timeout),
            r#"{"url":"http://x/","status":null,"error":"timed out after 5s"}"#
        );
    }
}
