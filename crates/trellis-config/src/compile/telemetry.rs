//! Istio Telemetry -> [`TelemetryPolicy`]: tracing (providers, sampling, custom tags, span
//! reporting), metrics switched off, and access logging (providers, on/off, filter).
//!
//! Policies are stored as written, oldest first; scoping (mesh-wide for a selector-less policy in
//! the root namespace, namespace-wide, per workload) and inheritance are the model's
//! `resolve_telemetry`. What the model cannot hold (span tags from format strings, direction
//! (`match.mode`), metric tag overrides, reporting intervals, custom metrics) is reported with
//! TRL2005 and not applied.

mod metrics;

use super::security::{selector, skip_targeted};
use super::{Ctx, source_ref};
use crate::diag::Code;
use crate::resources::istio_telemetry::{
    AccessLogging, CustomTag as ApiTag, ProviderRef, Telemetry, Tracing, WorkloadMode,
};
use crate::resources::{Kind, Resource, Spec};
use std::collections::BTreeMap;
use trellis_model::{AccessLogPolicy, CustomTag, TelemetryPolicy, TracingPolicy};

/// Append one [`TelemetryPolicy`] per Telemetry, in input order (the model lets the oldest of
/// equally scoped policies win). Policies attached with `targetRef(s)` are skipped (reported):
/// the model has no attachment point for them.
pub(crate) fn compile(cx: &mut Ctx<'_>) {
    let resources: Vec<&Resource> = cx.of_kind(Kind::Telemetry).collect();
    for r in resources {
        let Spec::Telemetry(t) = &r.spec else {
            continue;
        };
        if skip_targeted(cx, r, &t.target_ref, &t.target_refs) {
            continue;
        }
        let policy = policy(cx, r, t);
        cx.mesh.telemetry.push(policy);
    }
}

/// The policy. Only the first `tracing` entry is used, as validation already warns.
fn policy(cx: &mut Ctx<'_>, r: &Resource, t: &Telemetry) -> TelemetryPolicy {
    TelemetryPolicy {
        origin: source_ref(r),
        namespace: r.namespace.clone(),
        selector: selector(&t.selector),
        tracing: t.tracing.first().map(|tr| tracing(cx, r, tr)),
        metrics_disabled: metrics::disabled(cx, r, &t.metrics),
        access_logging: access_logging(cx, r, &t.access_logging),
    }
}

/// Report the field at `path` of `r` as accepted but not enforced (TRL2005, info).
fn ignored(cx: &mut Ctx<'_>, r: &Resource, path: &str, why: impl Into<String>) {
    cx.report.at(r, path, Code::IgnoredSetting, why);
}

/// The model applies settings to both directions; a `match.mode` of CLIENT or SERVER cannot be
/// honoured, so it is reported (the setting then applies to both directions).
fn check_mode(cx: &mut Ctx<'_>, r: &Resource, path: &str, mode: Option<WorkloadMode>) {
    if let Some(m @ (WorkloadMode::Client | WorkloadMode::Server)) = mode {
        let side = if m == WorkloadMode::Client {
            "CLIENT"
        } else {
            "SERVER"
        };
        ignored(
            cx,
            r,
            path,
            format!(
                "match.mode {side} is not supported: this setting applies to both client and server traffic"
            ),
        );
    }
}

fn provider_names(providers: &[ProviderRef]) -> Vec<String> {
    providers.iter().map(|p| p.name.clone()).collect()
}

/// Tracing settings. The switches the model has no place for are reported only when they ask
/// for something other than the behaviour Trellis has anyway (Istio's defaults: request-id based
/// sampling, Istio tags on spans, context propagated).
fn tracing(cx: &mut Ctx<'_>, r: &Resource, t: &Tracing) -> TracingPolicy {
    let path = "spec.tracing[0]";
    check_mode(
        cx,
        r,
        &format!("{path}.match.mode"),
        t.r#match.as_ref().map(|m| m.mode),
    );
    let switches = [
        (
            "useRequestIdForTraceSampling",
            t.use_request_id_for_trace_sampling == Some(false),
            "false",
        ),
        (
            "enableIstioTags",
            t.enable_istio_tags == Some(false),
            "false",
        ),
        (
            "disableContextPropagation",
            t.disable_context_propagation == Some(true),
            "true",
        ),
    ];
    for (field, unsupported, value) in switches {
        if unsupported {
            ignored(
                cx,
                r,
                &format!("{path}.{field}"),
                format!("{field}: {value} is not supported and has no effect"),
            );
        }
    }
    let mut custom_tags = BTreeMap::new();
    for (name, tag) in &t.custom_tags {
        if let Some(tag) = custom_tag(cx, r, &format!("{path}.customTags.{name}"), tag) {
            custom_tags.insert(name.clone(), tag);
        }
    }
    TracingPolicy {
        providers: provider_names(&t.providers),
        sampling_percent: t.random_sampling_percentage,
        custom_tags,
        disable_span_reporting: t.disable_span_reporting,
    }
}

/// A custom span tag. `formatter` (an access-log format string) has no model equivalent and is
/// reported; a tag naming no source at all was rejected by validation and is dropped.
fn custom_tag(cx: &mut Ctx<'_>, r: &Resource, path: &str, tag: &ApiTag) -> Option<CustomTag> {
    if let Some(l) = &tag.literal {
        Some(CustomTag::Literal(l.value.clone()))
    } else if let Some(e) = &tag.environment {
        Some(CustomTag::Environment {
            name: e.name.clone(),
            default: e.default_value.clone(),
        })
    } else if let Some(h) = &tag.header {
        Some(CustomTag::Header {
            name: h.name.clone(),
            default: h.default_value.clone(),
        })
    } else {
        if tag.formatter.is_some() {
            ignored(
                cx,
                r,
                &format!("{path}.formatter"),
                "custom tags from a `formatter` are not supported; the tag is not added",
            );
        }
        None
    }
}

/// Access logging. The model holds one setting per policy: entries that differ only in their
/// (named) providers are merged, their providers joined; an entry that also differs in `disabled`,
/// `filter` or `match` from the first, or names no provider where the first does (or the other
/// way round), is reported and not applied.
fn access_logging(
    cx: &mut Ctx<'_>,
    r: &Resource,
    entries: &[AccessLogging],
) -> Option<AccessLogPolicy> {
    let first = entries.first()?;
    // An entry without providers means "the default provider", which has no name to merge.
    let key = |a: &AccessLogging| {
        let filter = a.filter.as_ref().map(|f| f.expression.clone());
        (
            a.disabled,
            filter,
            a.r#match.as_ref().map(|m| m.mode),
            a.providers.is_empty(),
        )
    };
    check_mode(
        cx,
        r,
        "spec.accessLogging[0].match.mode",
        first.r#match.as_ref().map(|m| m.mode),
    );
    let mut out = AccessLogPolicy {
        providers: provider_names(&first.providers),
        disabled: first.disabled,
        filter: first.filter.as_ref().map(|f| f.expression.clone()),
    };
    for (i, entry) in entries.iter().enumerate().skip(1) {
        if key(entry) == key(first) {
            for name in provider_names(&entry.providers) {
                if !out.providers.contains(&name) {
                    out.providers.push(name);
                }
            }
        } else {
            ignored(
                cx,
                r,
                &format!("spec.accessLogging[{i}]"),
                "only one access-log setting per Telemetry is supported: this entry differs from the first in \
                 `disabled`, `filter`, `match` or in naming providers, and is not applied",
            );
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
