//! `trellis proxy`: builds the async runtime with `--concurrency` workers, starts the proxy
//! and stops it on SIGTERM (drain) or SIGINT/Ctrl-C (drain too) or `/quitquitquit`.

use std::process::ExitCode;

use anyhow::Context as _;
use trellis_proxy::server::{
    InboundSettings, LoadError, ProxyServer, ProxySettings, ServerError, Stop, XdsSettings,
};
use trellis_xds::node::{ProxyIdentity, ProxyKind};

use trellis_proxy::telemetry::AccessLogFormat;
use trellis_proxy::telemetry::access_log::{AccessLogConfig, AccessLogDestination};
use trellis_proxy::telemetry::metrics::MetricsNames;
use trellis_proxy::telemetry::peers::SourceIdentity;

use crate::cli::{AccessLogArg, MetricsNamesArg, ProxyArgs};

pub fn run(args: &ProxyArgs) -> anyhow::Result<ExitCode> {
    let workers = args.concurrency.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    // One worker: a current-thread runtime. It polls every connection on the main thread
    // with no work-stealing queues, cross-thread wakeups or atomics in the scheduler, which
    // is measurably cheaper per request than a multi-thread runtime of one worker (see
    // docs/performance.md). Loading configuration still runs on the blocking pool.
    let rt = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    }
    .thread_name("trellis-worker")
    .enable_all()
    .build()
    .context("cannot start the async runtime")?;
    rt.block_on(serve(args))
}

async fn serve(args: &ProxyArgs) -> anyhow::Result<ExitCode> {
    let mut settings = ProxySettings::new(args.config.clone());
    settings.outbound_addr = args.outbound_addr;
    settings.admin_addr = args.admin_addr;
    settings.health_addr = args.health_addr.0;
    settings.load.default_namespace = args.namespace.clone();
    settings.runtime.client_namespace = args.namespace.clone();
    settings.runtime.client_labels = args.labels.iter().cloned().collect();
    settings.drain_timeout = args.drain_timeout;
    settings.watch = !args.no_watch;
    settings.access_log = access_log(args);
    settings.metrics.names = match args.metrics_names {
        MetricsNamesArg::Istio => MetricsNames::Istio,
        MetricsNamesArg::Linkerd => MetricsNames::Linkerd,
        MetricsNamesArg::Both => MetricsNames::Both,
    };
    settings.source = source_identity(args);
    if args.gateway {
        settings.runtime.gateway_labels = Some(settings.runtime.client_labels.clone());
        settings.gateway_bind = Some(args.gateway_bind);
    }
    if let Some(addr) = args.inbound_addr {
        settings.inbound = Some(InboundSettings {
            addr,
            app: args.inbound_app,
        });
    }
    if let Some(address) = &args.xds {
        settings.xds = Some(XdsSettings {
            address: address.clone(),
            identity: ProxyIdentity {
                kind: if args.gateway {
                    ProxyKind::Gateway
                } else {
                    ProxyKind::Sidecar
                },
                workload: args.workload.clone(),
                namespace: args.namespace.clone(),
                service_account: args.service_account.clone(),
                labels: settings.runtime.client_labels.clone(),
                addresses: args.instance_ip.iter().map(ToString::to_string).collect(),
            },
        });
    }
    let server = match ProxyServer::start(settings).await {
        Ok(s) => s,
        Err(ServerError::Config(e)) => {
            report_refused(&e);
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    match server.inbound_addr() {
        Some(inbound) => eprintln!(
            "trellis proxy: outbound {} inbound {inbound} admin {}",
            server.outbound_addr(),
            server.admin_addr()
        ),
        None => eprintln!(
            "trellis proxy: outbound {} admin {}",
            server.outbound_addr(),
            server.admin_addr()
        ),
    }
    let stopper = &server;
    tokio::select! {
        r = crate::signals::terminated() => {
            r.context("cannot listen for signals")?;
            stopper.stop(Stop::Drain);
        }
        () = wait_quit(stopper) => {}
    }
    server.wait().await;
    Ok(ExitCode::SUCCESS)
}

/// Resolves when the proxy stopped on its own (`/quitquitquit`).
async fn wait_quit(server: &ProxyServer) {
    server.stopped().await;
}

fn access_log(args: &ProxyArgs) -> AccessLogConfig {
    let destination = match (&args.access_log, &args.access_log_path) {
        (AccessLogArg::Off, _) => AccessLogDestination::Off,
        (_, Some(path)) => AccessLogDestination::File(path.clone()),
        (_, None) => AccessLogDestination::Stdout,
    };
    let format = match args.access_log {
        AccessLogArg::Text => AccessLogFormat::Text,
        _ => AccessLogFormat::Json,
    };
    AccessLogConfig {
        format,
        destination,
    }
}

/// The `source_*` labels, derived from the flags as Istio derives them from the pod.
fn source_identity(args: &ProxyArgs) -> SourceIdentity {
    let workload = trellis_model::Workload {
        name: args.workload.clone(),
        namespace: args.namespace.clone(),
        service_account: Some(args.service_account.clone()),
        labels: args.labels.iter().cloned().collect(),
        ..Default::default()
    };
    SourceIdentity::from_workload(&workload, "cluster.local")
}

/// Prints why the startup configuration was refused, as `trellis analyze` would.
fn report_refused(e: &LoadError) {
    eprintln!("error: configuration refused: {e}");
    for line in e.lines() {
        eprintln!("  {line}");
    }
}
