//! Per-rule HTTP policies of a VirtualService in model form: header edits, rewrite, retries,
//! fault injection and CORS.

use super::matches::string_match;
use crate::compile::Ctx;
use crate::diag::Code;
use crate::resources::Resource;
use crate::resources::istio_networking::{
    CorsPolicy as IstioCors, HeaderOperations, Headers, HttpFaultInjection, HttpRetry, HttpRewrite,
    UnmatchedPreflights,
};
use trellis_model::{
    AbortKind, CorsPolicy, Fault, FaultAbort, FaultDelay, HeaderOps, PathRewrite, RetryOn,
    RetryPolicy, Rewrite, StringMatch,
};

/// Whether a header edit targets the authority, which Istio treats as a rewrite.
fn is_authority(name: &str) -> bool {
    name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case(":authority")
}

/// Istio's `set`/`add` maps and `remove` list as model header edits (maps are sorted by name).
fn ops(o: Option<&HeaderOperations>) -> HeaderOps {
    let Some(o) = o else {
        return HeaderOps::default();
    };
    let pairs = |m: &crate::resources::common::Labels| {
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    HeaderOps {
        set: pairs(&o.set),
        add: pairs(&o.add),
        remove: o.remove.clone(),
    }
}

/// Request and response header edits, plus the authority a request `set`/`add` of `host` or
/// `:authority` asks for (taken out of the edits: Istio rewrites the authority for it).
pub(super) fn headers(h: Option<&Headers>) -> (HeaderOps, HeaderOps, Option<String>) {
    let Some(h) = h else {
        return (HeaderOps::default(), HeaderOps::default(), None);
    };
    let mut request = ops(h.request.as_ref());
    let authority = h.authority_override().map(str::to_owned);
    if authority.is_some() {
        request.set.retain(|(k, _)| !is_authority(k));
        request.add.retain(|(k, _)| !is_authority(k));
    }
    (request, ops(h.response.as_ref()), authority)
}

/// `rewrite`: `uri` replaces the matched prefix (the whole path on exact matches),
/// `uriRegexRewrite` substitutes a regex, `authority` replaces the host.
pub(super) fn rewrite(rw: Option<&HttpRewrite>) -> Option<Rewrite> {
    let rw = rw?;
    let path = match (&rw.uri, &rw.uri_regex_rewrite) {
        (Some(uri), _) if !uri.is_empty() => Some(PathRewrite::ReplacePrefix(uri.clone())),
        (_, Some(rr)) => match (&rr.pattern, &rr.rewrite) {
            (Some(p), Some(s)) => Some(PathRewrite::Regex {
                pattern: p.0.clone(),
                substitution: s.clone(),
            }),
            _ => None,
        },
        _ => None,
    };
    let out = Rewrite {
        path,
        authority: rw.authority.clone().filter(|a| !a.is_empty()),
    };
    (out != Rewrite::default()).then_some(out)
}

/// `retries` at `path`. No `retries` means Istio's default policy (2 retries); `attempts: 0` (or
/// unset) disables retries. The backoff maximum is 10 × the base, as in Envoy.
pub(super) fn retry(
    cx: &mut Ctx<'_>,
    r: &Resource,
    path: &str,
    retries: Option<&HttpRetry>,
) -> Option<RetryPolicy> {
    let Some(rt) = retries else {
        return Some(RetryPolicy::default());
    };
    let attempts = rt
        .attempts
        .and_then(|a| u32::try_from(a).ok())
        .filter(|a| *a > 0)?;
    let mut p = RetryPolicy {
        attempts,
        ..RetryPolicy::default()
    };
    if let Some(on) = rt.retry_on.as_deref().filter(|s| !s.is_empty()) {
        match RetryOn::parse(on) {
            Ok(on) => p.retry_on = on,
            Err(e) => cx.report.at(
                r,
                &format!("{path}.retryOn"),
                Code::SchemaValidation,
                format!("{e}; Istio's default conditions are used instead"),
            ),
        }
    }
    p.per_try_timeout = rt
        .per_try_timeout
        .map(|t| t.as_std())
        .filter(|t| !t.is_zero());
    if let Some(b) = rt.backoff.map(|b| b.as_std()).filter(|b| !b.is_zero()) {
        p.backoff_base = b;
        p.backoff_max = b.saturating_mul(10);
    }
    if rt.retry_remote_localities == Some(true) {
        cx.report.at(
            r,
            &format!("{path}.retryRemoteLocalities"),
            Code::IgnoredSetting,
            "retryRemoteLocalities is not supported: retries pick endpoints as the first try does",
        );
    }
    if rt.retry_ignore_previous_hosts == Some(false) {
        cx.report.at(
            r,
            &format!("{path}.retryIgnorePreviousHosts"),
            Code::IgnoredSetting,
            "retryIgnorePreviousHosts: false is not supported: retries avoid endpoints already tried",
        );
    }
    Some(p)
}

/// `fault`: a fixed delay and/or an abort, each for a share of requests (none when the share is
/// not written, as in Istio; the deprecated integer `percent` counts for delays).
pub(super) fn fault(f: &HttpFaultInjection) -> Option<Fault> {
    let delay = f.delay.as_ref().and_then(|d| {
        let fixed = d.fixed_delay?.as_std();
        Some(FaultDelay {
            fixed,
            percent: d.fraction(),
        })
    });
    let abort = f.abort.as_ref().and_then(|a| {
        let kind = if let Some(s) = a.http_status.and_then(|s| u16::try_from(s).ok()) {
            AbortKind::HttpStatus(s)
        } else if let Some(g) = a.grpc_status.as_deref().filter(|g| !g.is_empty()) {
            AbortKind::GrpcStatus(g.to_owned())
        } else if a.http2_error.is_some() {
            AbortKind::Http2Error
        } else {
            return None;
        };
        Some(FaultAbort {
            kind,
            percent: a.fraction(),
        })
    });
    (delay.is_some() || abort.is_some()).then_some(Fault { delay, abort })
}

/// `corsPolicy`; the deprecated `allowOrigin` entries are exact origins.
pub(super) fn cors(cx: &mut Ctx<'_>, r: &Resource, path: &str, c: &IstioCors) -> CorsPolicy {
    if c.unmatched_preflights == Some(UnmatchedPreflights::Ignore) {
        cx.report.at(
            r,
            &format!("{path}.unmatchedPreflights"),
            Code::IgnoredSetting,
            "unmatchedPreflights: IGNORE is not supported: preflights from other origins are forwarded",
        );
    }
    CorsPolicy {
        allow_origins: c
            .allow_origins
            .iter()
            .filter_map(string_match)
            .chain(c.allow_origin.iter().map(|o| StringMatch::Exact(o.clone())))
            .collect(),
        allow_methods: c.allow_methods.clone(),
        allow_headers: c.allow_headers.clone(),
        expose_headers: c.expose_headers.clone(),
        max_age: c.max_age.map(|d| d.as_std()),
        allow_credentials: c.allow_credentials,
    }
}
