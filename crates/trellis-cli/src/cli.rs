//! The command line: subcommands and their flags.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Trellis: a service mesh that runs the Istio, Gateway API, Linkerd and SMI configuration you
/// already have.
#[derive(Debug, Parser)]
#[command(name = "trellis", version, about, long_about = None)]
pub struct Cli {
    /// Log level (error, warn, info, debug, trace); `TRELLIS_LOG` overrides it.
    #[arg(long, global = true)]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check configuration files for errors, like `istioctl analyze`.
    ///
    /// Exit status: 0 when no error was found, 1 when errors were found, 2 when the analysis could
    /// not run (for example a path that does not exist).
    Analyze(AnalyzeArgs),
    /// Run a proxy serving a configuration directory, with live reload and an admin endpoint.
    ///
    /// Apps send their outbound HTTP to the outbound address (as `HTTP_PROXY`, or with a
    /// `Host` header naming the service). Saved changes apply within a second; a change the
    /// analyzer refuses is logged and the previous configuration keeps serving. SIGTERM
    /// drains; `POST /quitquitquit` on the admin address exits.
    Proxy(ProxyArgs),
    /// Run the control plane: compile a configuration directory and stream each proxy its
    /// view over xDS (Delta ADS on 15010), with metrics and debug pages on 15014.
    ///
    /// Saved changes are pushed to every affected proxy within a second; a change the
    /// analyzer refuses is logged, shown on /debug/config, and proxies keep what they have.
    Control(ControlArgs),
    /// List the proxies connected to a control plane with their sync state, like
    /// `istioctl proxy-status`.
    Status(StatusArgs),
    /// Run the demo application: an HTTP service answering JSON that names itself and
    /// nests what its upstreams answered.
    ///
    /// Every path but `/healthz` answers `{"service", "version", "pod", "path", "upstream"}`;
    /// each `--call` is made for every request (through `HTTP_PROXY` or `TRELLIS_OUTBOUND`
    /// when set) with trace and routing headers copied on. Any failed call makes the answer
    /// 502. Each flag falls back to the environment variable shown. SIGTERM drains.
    Demo(DemoArgs),
    /// Run a whole mesh on this machine: the control plane, a gateway proxy per gateway,
    /// and every LocalWorkload replica with its sidecar; follow the directory live.
    ///
    /// Transparent mode (root, with iptables) runs each replica in its own network namespace
    /// with iptables capture, so unmodified apps are meshed; explicit mode (anyone) points
    /// apps at their sidecar with HTTP_PROXY. Prints what runs where once everything is
    /// ready; Ctrl-C stops everything and removes every namespace, interface and rule.
    Up(UpArgs),
    /// Stop a `trellis up` (detached or not) and clean up what a killed one left behind.
    Down(DownArgs),
    /// Print the version.
    Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UpMode {
    /// Transparent when available (root, ip, iptables), else explicit.
    Auto,
    /// Apps reach their sidecars through HTTP_PROXY; no privileges needed.
    Explicit,
    /// Network namespaces with iptables capture; needs root.
    Transparent,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Configuration files or directories (LocalWorkloads, Services, Istio, Gateway API, …).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// How apps' traffic reaches their sidecars.
    #[arg(long, value_enum, default_value_t = UpMode::Auto)]
    pub mode: UpMode,
    /// Start in the background: print the table once ready and return; `trellis down` stops it.
    #[arg(long)]
    pub detach: bool,
    /// Do not follow configuration changes.
    #[arg(long)]
    pub no_follow: bool,
    /// Namespace for resources that do not name one.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// The control plane's xDS address (default 127.0.0.1:15010; in transparent mode the
    /// bridge address, 10.77.0.1:15010).
    #[arg(long)]
    pub xds_addr: Option<std::net::SocketAddr>,
    /// The control plane's monitoring address (`trellis status`).
    #[arg(long, default_value = "127.0.0.1:15014")]
    pub monitoring_addr: std::net::SocketAddr,
    /// Where gateways listen.
    #[arg(long, default_value = "127.0.0.1")]
    pub gateway_bind: std::net::IpAddr,
    /// State file and logs (default: $TMPDIR/trellis-up-<uid>).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Replica addresses in explicit mode, as an IPv4 /16 or smaller network.
    #[arg(long, default_value = "127.77.0.0/16", value_parser = parse_net)]
    pub explicit_range: (std::net::Ipv4Addr, u8),
    /// The namespaces' network in transparent mode (the host takes its first address).
    #[arg(long, default_value = "10.77.0.0/16", value_parser = parse_net)]
    pub pod_range: (std::net::Ipv4Addr, u8),
    /// Prefix of namespace names and of the bridge (`<prefix>0`) in transparent mode.
    #[arg(long, default_value = "trellis")]
    pub net_prefix: String,
    /// How long starting may take.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub ready_timeout: std::time::Duration,
    /// Metric names of every sidecar and gateway (`trellis proxy --metrics-names`); unset, the
    /// proxies' default: `istio`, or `TRELLIS_METRICS_NAMES`, which they inherit.
    #[arg(long, value_enum)]
    pub metrics_names: Option<MetricsNamesArg>,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// The state directory of the run (default: $TMPDIR/trellis-up-<uid>).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Prefix of namespaces and bridge to clean when no state file is left.
    #[arg(long, default_value = "trellis")]
    pub net_prefix: String,
}

/// `a.b.c.d/len`.
fn parse_net(s: &str) -> Result<(std::net::Ipv4Addr, u8), String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not a network such as 10.77.0.0/16"))?;
    let ip: std::net::Ipv4Addr = ip.parse().map_err(|e| format!("{s:?}: {e}"))?;
    let len: u8 = len.parse().map_err(|e| format!("{s:?}: {e}"))?;
    if !(8..=30).contains(&len) {
        return Err(format!("{s:?}: the prefix length must be between 8 and 30"));
    }
    Ok((ip, len))
}

#[derive(Debug, Args)]
pub struct ControlArgs {
    /// Configuration files or directories (read recursively and followed for changes).
    #[arg(long = "config", short = 'c', required = true, value_name = "PATH")]
    pub config: Vec<PathBuf>,
    /// The xDS server (Delta ADS, plaintext).
    #[arg(long, default_value = "127.0.0.1:15010")]
    pub xds_addr: std::net::SocketAddr,
    /// Metrics (/metrics) and debug pages (/debug/syncz, /debug/config, /debug/mesh).
    #[arg(long, default_value = "127.0.0.1:15014")]
    pub monitoring_addr: std::net::SocketAddr,
    /// Namespace for resources that do not name one.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Serve the configuration as loaded at startup; do not follow changes.
    #[arg(long)]
    pub no_watch: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The control plane's monitoring address.
    #[arg(long, default_value = "127.0.0.1:15014")]
    pub control_plane: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Configuration files or directories (Istio, Gateway API, Linkerd, SMI YAML; read
    /// recursively and followed for changes).
    #[arg(
        long = "config",
        short = 'c',
        required_unless_present = "xds",
        conflicts_with = "xds",
        value_name = "PATH"
    )]
    pub config: Vec<PathBuf>,
    /// Take the configuration from a control plane (`trellis control`) at this xDS address
    /// instead of from files; the proxy identifies itself with --workload, --namespace,
    /// --service-account and --label.
    #[arg(long, value_name = "HOST:PORT")]
    pub xds: Option<String>,
    /// Run as a gateway: serve the gateways whose selector matches this proxy's labels
    /// (Istio Gateway `selector`, or `gateway.networking.k8s.io/gateway-name=<name>`).
    #[arg(long)]
    pub gateway: bool,
    /// Address the gateway ports are bound on.
    #[arg(long, default_value = "127.0.0.1", requires = "gateway")]
    pub gateway_bind: std::net::IpAddr,
    /// The inbound listener of a sidecar (Istio's 15006): captured connections go to their
    /// original destination, others to --inbound-app.
    #[arg(long)]
    pub inbound_addr: Option<std::net::SocketAddr>,
    /// The application the inbound listener forwards to when connections were not
    /// captured (explicit mode).
    #[arg(long, requires = "inbound_addr")]
    pub inbound_app: Option<std::net::SocketAddr>,
    /// This workload's IP address, reported to the control plane.
    #[arg(long = "instance-ip")]
    pub instance_ip: Option<std::net::IpAddr>,
    /// The outbound listener: apps use it as their HTTP proxy.
    #[arg(long, default_value = "127.0.0.1:15001")]
    pub outbound_addr: std::net::SocketAddr,
    /// The admin endpoint (/ready, /stats/prometheus, /config_dump, /clusters, /quitquitquit).
    #[arg(long, default_value = "127.0.0.1:15000")]
    pub admin_addr: std::net::SocketAddr,
    /// The health endpoint for probes (`/healthz/ready`, Istio's port 15021); `off` disables it.
    #[arg(long, default_value = "127.0.0.1:15021", value_parser = parse_optional_addr)]
    pub health_addr: OptionalAddr,
    /// Namespace of this proxy's workload: resources without a namespace are read into it,
    /// and a bare `Host: name` means `name.<namespace>`.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Worker threads (default: one per CPU, as Envoy's `--concurrency`).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: Option<u16>,
    /// On SIGTERM, how long in-flight requests may take before the proxy exits (e.g. 5s).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub drain_timeout: std::time::Duration,
    /// Serve the configuration as loaded at startup; do not follow changes.
    #[arg(long)]
    pub no_watch: bool,
    /// Access log: one line per request in JSON, Envoy's text format, or off.
    #[arg(long, value_enum, default_value_t = AccessLogArg::Json)]
    pub access_log: AccessLogArg,
    /// Append the access log to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub access_log_path: Option<PathBuf>,
    /// Metric names on /stats/prometheus: Istio's (`istio_requests_total`, …), Linkerd's
    /// (`request_total`, `response_total`, `response_latency_ms`, …) or both.
    #[arg(long, value_enum, env = "TRELLIS_METRICS_NAMES", default_value_t = MetricsNamesArg::Istio)]
    pub metrics_names: MetricsNamesArg,
    /// This workload's name (`source_workload` in metrics).
    #[arg(long, default_value = "unknown")]
    pub workload: String,
    /// This workload's service account (its identity: `source_principal`).
    #[arg(long, default_value = "default")]
    pub service_account: String,
    /// This workload's labels, `key=value` (repeatable; `app` and `version` become
    /// `source_app` and `source_version`).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
}

/// `trellis demo`. Values are kept as text and validated by `trellis_demo::config_from`,
/// which also reads the environment fallbacks: an error then names the flag or the
/// variable the bad value came from.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Listen address [default: 0.0.0.0:$PORT, PORT defaulting to 8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Service name in answers [env: TRELLIS_DEMO_SERVICE; default: the host name].
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Version in answers [env: TRELLIS_DEMO_VERSION; default: v1].
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
    /// Pod name in answers [env: TRELLIS_DEMO_POD; default: host name and process id].
    #[arg(long, value_name = "NAME")]
    pub pod: Option<String>,
    /// Upstream to call for every request, e.g. http://inventory:8080/stock (repeatable)
    /// [env: TRELLIS_DEMO_CALLS, comma-separated].
    #[arg(long = "call", value_name = "URL")]
    pub calls: Vec<String>,
    /// Limit on each upstream call [env: TRELLIS_DEMO_CALL_TIMEOUT; default: 5s].
    #[arg(long, value_name = "DUR")]
    pub call_timeout: Option<String>,
    /// Extra request header to copy onto upstream calls, besides x-request-id, traceparent,
    /// tracestate and the B3 headers (repeatable) [env: TRELLIS_DEMO_PROPAGATE,
    /// comma-separated; default: canary, end-user, x-user].
    #[arg(long, value_name = "HEADER")]
    pub propagate: Vec<String>,
    /// Fraction of requests to fail on purpose, 0.0 to 1.0 [env: TRELLIS_DEMO_FAIL_RATE;
    /// default: 0].
    #[arg(long, value_name = "F")]
    pub fail_rate: Option<String>,
    /// Status of injected failures, 400 to 599 [env: TRELLIS_DEMO_FAIL_STATUS; default: 500].
    #[arg(long, value_name = "CODE")]
    pub fail_status: Option<String>,
    /// Delay added to every answer, e.g. 200ms or 1.5s [env: TRELLIS_DEMO_LATENCY].
    #[arg(long, value_name = "DUR")]
    pub latency: Option<String>,
    /// Random extra delay, uniform up to this [env: TRELLIS_DEMO_LATENCY_JITTER].
    #[arg(long, value_name = "DUR")]
    pub latency_jitter: Option<String>,
}

impl DemoArgs {
    /// The raw values for `trellis_demo::config_from`.
    pub fn flags(&self) -> trellis_demo::DemoFlags {
        trellis_demo::DemoFlags {
            listen: self.listen.clone(),
            service: self.service.clone(),
            version: self.version.clone(),
            pod: self.pod.clone(),
            calls: self.calls.clone(),
            call_timeout: self.call_timeout.clone(),
            propagate: self.propagate.clone(),
            fail_rate: self.fail_rate.clone(),
            fail_status: self.fail_status.clone(),
            latency: self.latency.clone(),
            latency_jitter: self.latency_jitter.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricsNamesArg {
    Istio,
    Linkerd,
    Both,
}

impl MetricsNamesArg {
    /// The value as typed on the command line (what `trellis up` passes to its proxies).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricsNamesArg::Istio => "istio",
            MetricsNamesArg::Linkerd => "linkerd",
            MetricsNamesArg::Both => "both",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccessLogArg {
    Json,
    Text,
    Off,
}

/// `key=value`.
fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not a label such as app=reviews")),
    }
}

/// A listener address that can be turned `off`.
#[derive(Debug, Clone, Copy)]
pub struct OptionalAddr(pub Option<std::net::SocketAddr>);

/// An address, or `off`.
fn parse_optional_addr(s: &str) -> Result<OptionalAddr, String> {
    if s == "off" {
        return Ok(OptionalAddr(None));
    }
    s.parse()
        .map(|a| OptionalAddr(Some(a)))
        .map_err(|e| format!("{s:?} is not an address such as 127.0.0.1:15021 or `off`: {e}"))
}

/// `250ms`, `5s`, `1m` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 5s or 250ms"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: unit must be ms, s or m")),
    };
    std::time::Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Files or directories (read recursively: *.yaml, *.yml, *.json). `-` reads standard input.
    #[arg(required_unless_present = "list_codes")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Namespace for resources that do not name one.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Lowest severity to print (info, warning, error).
    #[arg(long, default_value = "info")]
    pub output_threshold: String,
    /// Print every diagnostic code with its meaning and exit.
    #[arg(long)]
    pub list_codes: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn proxy_flags_parse() {
        let cli = Cli::try_parse_from([
            "trellis",
            "proxy",
            "--config",
            "dir",
            "--health-addr",
            "off",
            "--drain-timeout",
            "250ms",
            "--concurrency",
            "2",
        ])
        .expect("parses");
        let Command::Proxy(p) = cli.command else {
            panic!("proxy")
        };
        assert!(p.health_addr.0.is_none());
        assert_eq!(p.drain_timeout, std::time::Duration::from_millis(250));
        assert_eq!(p.concurrency, Some(2));
        assert_eq!(p.outbound_addr.port(), 15001);
        assert!(
            Cli::try_parse_from(["trellis", "proxy", "--config", "d", "--drain-timeout", "5h"])
                .is_err()
        );
        assert!(
            Cli::try_parse_from(["trellis", "proxy", "--config", "d", "--concurrency", "0"])
                .is_err()
        );
    }

    #[test]
    fn metrics_names_parse_for_proxy_and_up() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        let Ok(Cli {
            command: Command::Up(u),
            ..
        }) = parse(&["trellis", "up", "dir", "--metrics-names", "both"])
        else {
            panic!("up parses")
        };
        assert_eq!(u.metrics_names.map(MetricsNamesArg::as_str), Some("both"));
        let Ok(Cli {
            command: Command::Up(u),
            ..
        }) = parse(&["trellis", "up", "dir"])
        else {
            panic!("up parses")
        };
        assert_eq!(u.metrics_names, None, "unset: the proxies decide");
        let Ok(Cli {
            command: Command::Proxy(p),
            ..
        }) = parse(&[
            "trellis",
            "proxy",
            "--config",
            "d",
            "--metrics-names",
            "linkerd",
        ])
        else {
            panic!("proxy parses")
        };
        assert_eq!(p.metrics_names, MetricsNamesArg::Linkerd);
        assert!(parse(&["trellis", "up", "dir", "--metrics-names", "envoy"]).is_err());
    }

    #[test]
    fn demo_flags_parse() {
        let cli = Cli::try_parse_from([
            "trellis",
            "demo",
            "--service",
            "orders",
            "--version",
            "v2",
            "--call",
            "http://inventory:8080/stock",
            "--call",
            "http://payments:8080/pay",
            "--fail-rate",
            "0.1",
            "--log-level",
            "debug",
        ])
        .expect("parses");
        assert_eq!(cli.log_level.as_deref(), Some("debug"));
        let Command::Demo(d) = cli.command else {
            panic!("demo")
        };
        let flags = d.flags();
        assert_eq!(flags.version.as_deref(), Some("v2"));
        assert_eq!(flags.calls.len(), 2);
        assert_eq!(flags.fail_rate.as_deref(), Some("0.1"));
        assert!(flags.listen.is_none());
    }
}
