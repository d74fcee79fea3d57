//! Settings of one demo process. Each comes from its flag, else its environment variable,
//! else a default; an invalid value is reported naming the flag or the variable it came
//! from, so a typo in a generated environment (`trellis up`) is easy to find.

mod parse;

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderName, StatusCode, Uri};

use crate::proxy_env::Outbound;

/// Headers Istio asks applications to copy from each inbound request to the outbound
/// requests it causes, so a trace spans every hop: the request id, W3C Trace Context and
/// Zipkin B3 (multi- and single-header). Always propagated.
pub const TRACE_HEADERS: &[&str] = &[
    "x-request-id",
    "traceparent",
    "tracestate",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
];

/// Routing headers the example's VirtualServices match on (`canary: "true"`, `end-user`,
/// `x-user`), propagated unless `--propagate` names others: a header-based canary only
/// works end to end if every hop passes the header on.
pub const DEFAULT_PROPAGATE: &[&str] = &["canary", "end-user", "x-user"];

/// Raw values as given on the command line, before validation. `None` (or an empty list)
/// means the flag was not given, so the environment variable or the default applies.
#[derive(Debug, Clone, Default)]
pub struct DemoFlags {
    /// `--listen ADDR`
    pub listen: Option<String>,
    /// `--service NAME` (`TRELLIS_DEMO_SERVICE`)
    pub service: Option<String>,
    /// `--version V` (`TRELLIS_DEMO_VERSION`)
    pub version: Option<String>,
    /// `--pod NAME` (`TRELLIS_DEMO_POD`)
    pub pod: Option<String>,
    /// `--call URL`, repeatable (`TRELLIS_DEMO_CALLS`, comma-separated)
    pub calls: Vec<String>,
    /// `--call-timeout DUR` (`TRELLIS_DEMO_CALL_TIMEOUT`)
    pub call_timeout: Option<String>,
    /// `--propagate HEADER`, repeatable (`TRELLIS_DEMO_PROPAGATE`, comma-separated)
    pub propagate: Vec<String>,
    /// `--fail-rate F` (`TRELLIS_DEMO_FAIL_RATE`)
    pub fail_rate: Option<String>,
    /// `--fail-status CODE` (`TRELLIS_DEMO_FAIL_STATUS`)
    pub fail_status: Option<String>,
    /// `--latency DUR` (`TRELLIS_DEMO_LATENCY`)
    pub latency: Option<String>,
    /// `--latency-jitter DUR` (`TRELLIS_DEMO_LATENCY_JITTER`)
    pub latency_jitter: Option<String>,
}

/// Validated settings of one demo process.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Where to listen (port 0 picks a free port; see [`crate::DemoServer::local_addr`]).
    pub listen: SocketAddr,
    pub service: String,
    pub version: String,
    pub pod: String,
    /// Upstreams called (GET, concurrently) for every request, in this order.
    pub calls: Vec<Uri>,
    /// Limit on each upstream call, connection and whole body included.
    pub call_timeout: Duration,
    /// Inbound headers copied onto every upstream call: [`TRACE_HEADERS`] and the extra ones.
    pub propagate: Vec<HeaderName>,
    /// Fraction of requests (0.0–1.0) answered with `fail_status` instead of being served.
    pub fail_rate: f64,
    pub fail_status: StatusCode,
    /// Added to every answer (except `/healthz`).
    pub latency: Duration,
    /// Upper bound of a uniformly random extra delay added to `latency`.
    pub latency_jitter: Duration,
    /// Where upstream calls are sent: directly or through the sidecar's HTTP proxy port.
    pub outbound: Outbound,
    /// After shutdown is requested, how long requests in flight may take to finish.
    pub drain_timeout: Duration,
}

/// A flag or environment variable with an invalid value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {setting} {value:?}: {reason}")]
pub struct ConfigError {
    /// The flag (`--fail-rate`) or environment variable (`TRELLIS_DEMO_FAIL_RATE`).
    pub setting: String,
    pub value: String,
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(setting: &str, value: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            setting: setting.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A raw value and the flag or variable it came from.
pub(crate) struct Raw {
    pub(crate) setting: String,
    pub(crate) value: String,
}

impl Raw {
    /// Runs `f` on the trimmed value; its error becomes the reason in a [`ConfigError`]
    /// that names this value's flag or variable.
    pub(crate) fn parse<T>(
        &self,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        f(self.value.trim()).map_err(|reason| ConfigError::new(&self.setting, &self.value, reason))
    }
}

/// Environment lookups where an empty value counts as unset, as shells and templates
/// commonly write `VAR=` to mean "not set".
pub(crate) fn lookup(env: &impl Fn(&str) -> Option<String>, var: &str) -> Option<Raw> {
    env(var).filter(|v| !v.trim().is_empty()).map(|value| Raw {
        setting: var.to_owned(),
        value,
    })
}

/// The flag's value if it was given, else the variable's.
fn pick(
    flag: &Option<String>,
    flag_name: &str,
    env: &impl Fn(&str) -> Option<String>,
    var: &str,
) -> Option<Raw> {
    match flag {
        Some(value) => Some(Raw {
            setting: flag_name.to_owned(),
            value: value.clone(),
        }),
        None => lookup(env, var),
    }
}

/// Repeated flag values, else the variable's comma-separated list; `None` when neither
/// was given.
fn pick_list(
    flags: &[String],
    flag_name: &str,
    env: &impl Fn(&str) -> Option<String>,
    var: &str,
) -> Option<Vec<Raw>> {
    if !flags.is_empty() {
        let raws = flags.iter().map(|value| Raw {
            setting: flag_name.to_owned(),
            value: value.clone(),
        });
        return Some(raws.collect());
    }
    let all = lookup(env, var)?;
    let items = all
        .value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty());
    Some(
        items
            .map(|value| Raw {
                setting: var.to_owned(),
                value: value.to_owned(),
            })
            .collect(),
    )
}

/// Validates `flags`, filling what they leave out from `env` (a variable lookup such as
/// `|name| std::env::var(name).ok()`; tests pass a map) and the defaults.
pub fn config_from(
    flags: &DemoFlags,
    env: impl Fn(&str) -> Option<String>,
) -> Result<DemoConfig, ConfigError> {
    let env = &env;
    let listen = match (&flags.listen, lookup(env, "PORT")) {
        (Some(value), _) => Raw {
            setting: "--listen".into(),
            value: value.clone(),
        }
        .parse(parse::listen_addr)?,
        (None, Some(port)) => SocketAddr::from(([0, 0, 0, 0], port.parse(parse::port)?)),
        (None, None) => SocketAddr::from(([0, 0, 0, 0], 8080)),
    };
    let name = |flag: &Option<String>, flag_name: &str, var: &str| {
        pick(flag, flag_name, env, var)
            .map(|raw| raw.parse(parse::name))
            .transpose()
    };
    let service =
        name(&flags.service, "--service", "TRELLIS_DEMO_SERVICE")?.unwrap_or_else(|| hostname(env));
    let version =
        name(&flags.version, "--version", "TRELLIS_DEMO_VERSION")?.unwrap_or_else(|| "v1".into());
    let pod = name(&flags.pod, "--pod", "TRELLIS_DEMO_POD")?
        .unwrap_or_else(|| format!("{}-{}", hostname(env), std::process::id()));

    let calls = pick_list(&flags.calls, "--call", env, "TRELLIS_DEMO_CALLS")
        .unwrap_or_default()
        .iter()
        .map(|raw| raw.parse(parse::call_url))
        .collect::<Result<Vec<_>, _>>()?;
    let call_timeout = pick(
        &flags.call_timeout,
        "--call-timeout",
        env,
        "TRELLIS_DEMO_CALL_TIMEOUT",
    )
    .map(|raw| raw.parse(parse::positive_duration))
    .transpose()?
    .unwrap_or(Duration::from_secs(5));
    let propagate = propagate_list(flags, env)?;

    let fail_rate = pick(
        &flags.fail_rate,
        "--fail-rate",
        env,
        "TRELLIS_DEMO_FAIL_RATE",
    )
    .map(|raw| raw.parse(parse::fraction))
    .transpose()?
    .unwrap_or(0.0);
    let fail_status = pick(
        &flags.fail_status,
        "--fail-status",
        env,
        "TRELLIS_DEMO_FAIL_STATUS",
    )
    .map(|raw| raw.parse(parse::failure_status))
    .transpose()?
    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let duration = |flag: &Option<String>, flag_name: &str, var: &str| {
        pick(flag, flag_name, env, var)
            .map(|raw| raw.parse(parse::duration))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let latency = duration(&flags.latency, "--latency", "TRELLIS_DEMO_LATENCY")?;
    let latency_jitter = duration(
        &flags.latency_jitter,
        "--latency-jitter",
        "TRELLIS_DEMO_LATENCY_JITTER",
    )?;

    Ok(DemoConfig {
        listen,
        service,
        version,
        pod,
        calls,
        call_timeout,
        propagate,
        fail_rate,
        fail_status,
        latency,
        latency_jitter,
        outbound: Outbound::from_env(env)?,
        // Long enough for an answer delayed by the injected latency and waiting on its
        // upstreams; a process manager that wants it faster sends SIGKILL anyway.
        drain_timeout: Duration::from_secs(30),
    })
}

/// The trace headers, then the extra ones (given or default), without duplicates.
fn propagate_list(
    flags: &DemoFlags,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<HeaderName>, ConfigError> {
    let extra = match pick_list(
        &flags.propagate,
        "--propagate",
        env,
        "TRELLIS_DEMO_PROPAGATE",
    ) {
        Some(raws) => raws
            .iter()
            .map(|raw| raw.parse(parse::header_name))
            .collect::<Result<Vec<_>, _>>()?,
        None => DEFAULT_PROPAGATE
            .iter()
            .map(|h| HeaderName::from_static(h))
            .collect(),
    };
    let mut all: Vec<HeaderName> = TRACE_HEADERS
        .iter()
        .map(|h| HeaderName::from_static(h))
        .collect();
    for name in extra {
        if !all.contains(&name) {
            all.push(name);
        }
    }
    Ok(all)
}

/// This machine's (or container's, or pod's) host name, for the default service and pod.
/// `HOSTNAME` first: Kubernetes sets it to the pod name.
fn hostname(env: &impl Fn(&str) -> Option<String>) -> String {
    let from_file = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    lookup(env, "HOSTNAME")
        .map(|raw| raw.value.trim().to_owned())
        .or_else(|| from_file("/proc/sys/kernel/hostname"))
        .or_else(|| from_file("/etc/hostname"))
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests;
