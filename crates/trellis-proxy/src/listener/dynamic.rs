//! Listeners that follow the configuration: a reconciler binds every address the current
//! runtime asks for and stops accepting on those it no longer does (new connections are
//! refused; open ones continue). Loopback VIPs ([`VipListeners`]) and gateway ports
//! ([`GatewayListeners`]) are both kept this way.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::{ListenerContext, Unknown, accept_loop};
use crate::runtime::Runtime;

type Wanted = Box<dyn Fn(&Runtime) -> BTreeSet<SocketAddr> + Send + Sync>;
type Served = Pin<Box<dyn Future<Output = ()> + Send>>;
/// Serves one connection: context, stream, peer, and the bound address it arrived on.
type ServeFn =
    Arc<dyn Fn(Arc<ListenerContext>, TcpStream, SocketAddr, SocketAddr) -> Served + Send + Sync>;

/// Keeps one listener per address the current runtime wants.
pub struct DynamicListeners {
    what: &'static str,
    ctx: Arc<ListenerContext>,
    wanted: Wanted,
    serve: ServeFn,
    bound: BTreeMap<SocketAddr, JoinHandle<()>>,
}

/// Every loopback `VIP:port` of the runtime's services: running without traffic capture
/// (a laptop, a CI job), clients can still dial a service's virtual IP when that IP is a
/// loopback address (all of 127.0.0.0/8 is bindable on Linux). Each accepted connection is
/// served as headed for that address, exactly like a captured one.
pub struct VipListeners;

impl VipListeners {
    /// A reconciler for the VIPs; [`DynamicListeners::run`] binds.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(ctx: Arc<ListenerContext>) -> DynamicListeners {
        DynamicListeners {
            what: "VIP",
            ctx,
            wanted: Box::new(|rt| rt.tcp_targets().loopback_vips().iter().copied().collect()),
            serve: Arc::new(|ctx, stream, peer, addr| {
                Box::pin(ctx.serve_target(stream, peer, addr, Unknown::Close))
            }),
            bound: BTreeMap::new(),
        }
    }
}

/// Every HTTP port of the gateways the runtime serves, on `ip`: requests are routed by the
/// gateway's virtual hosts for the port they arrived on.
pub struct GatewayListeners;

impl GatewayListeners {
    /// A reconciler for the gateway ports on `ip`; [`DynamicListeners::run`] binds.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(ctx: Arc<ListenerContext>, ip: IpAddr) -> DynamicListeners {
        DynamicListeners {
            what: "gateway",
            ctx,
            wanted: Box::new(move |rt| {
                rt.gateways()
                    .ports()
                    .iter()
                    .map(|p| SocketAddr::new(ip, p.port))
                    .collect()
            }),
            serve: Arc::new(|ctx, stream, peer, addr| {
                let http = Arc::clone(&ctx.http);
                Box::pin(async move {
                    http.serve_gateway_connection(stream, peer, addr.port())
                        .await;
                })
            }),
            bound: BTreeMap::new(),
        }
    }
}

impl DynamicListeners {
    /// Binds what the current runtime wants, then rebinds on every runtime change until
    /// shutdown, when every listener stops accepting. An address that cannot be bound (in
    /// use, not a local address) is logged and tried again at the next change.
    pub async fn run(mut self) {
        let mut runtime = self.ctx.runtime.clone();
        let mut shutdown = self.ctx.shutdown.clone();
        loop {
            let wanted = (self.wanted)(&runtime.borrow_and_update());
            self.reconcile(&wanted).await;
            tokio::select! {
                changed = runtime.changed() => if changed.is_err() { break },
                stop = shutdown.wait_for(|s| *s) => { let _ = stop; break }
            }
        }
        for (_, task) in std::mem::take(&mut self.bound) {
            task.abort();
        }
    }

    async fn reconcile(&mut self, wanted: &BTreeSet<SocketAddr>) {
        let what = self.what;
        self.bound.retain(|addr, task| {
            let keep = wanted.contains(addr) && !task.is_finished();
            if !keep {
                // Dropping the accept task drops its socket: new connections are refused.
                task.abort();
                tracing::info!(%addr, "{what} listener removed");
            }
            keep
        });
        for &addr in wanted {
            if self.bound.contains_key(&addr) {
                continue;
            }
            let listener = match TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(error) => {
                    tracing::warn!(%addr, %error, "cannot bind {what} listener");
                    continue;
                }
            };
            tracing::info!(%addr, "{what} listener bound");
            let ctx = Arc::clone(&self.ctx);
            let serve = Arc::clone(&self.serve);
            let task = tokio::spawn(async move {
                let conn_ctx = Arc::clone(&ctx);
                let served = accept_loop(listener, ctx, move |stream, peer| {
                    serve(Arc::clone(&conn_ctx), stream, peer, addr)
                })
                .await;
                if let Err(error) = served {
                    tracing::warn!(%addr, %error, "{what} listener failed");
                }
            });
            self.bound.insert(addr, task);
        }
    }
}
