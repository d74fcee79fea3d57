//! VIP listeners: running without traffic capture (a laptop, a CI job), clients can
//! still dial a service's virtual IP when that IP is a loopback address (all of
//! 127.0.0.0/8 is bindable on Linux). The reconciler binds every `loopback VIP:port` of
//! the current runtime and serves each accepted connection as headed for that address,
//! exactly like a captured one. It follows configuration changes: new VIP ports are bound,
//! removed ones stop accepting (new connections are refused; open ones continue).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{ListenerContext, Unknown, accept_loop};

/// Keeps one listener per loopback VIP port of the current runtime.
pub struct VipListeners {
    ctx: Arc<ListenerContext>,
    bound: BTreeMap<SocketAddr, JoinHandle<()>>,
}

impl VipListeners {
    /// A reconciler with nothing bound yet; [`VipListeners::run`] binds.
    pub fn new(ctx: Arc<ListenerContext>) -> VipListeners {
        VipListeners {
            ctx,
            bound: BTreeMap::new(),
        }
    }

    /// Binds the VIPs of the current runtime, then rebinds on every runtime change until
    /// shutdown, when every VIP listener stops accepting. An address that cannot be bound
    /// (in use, not a local address) is logged and tried again at the next change.
    pub async fn run(mut self) {
        let mut runtime = self.ctx.runtime.clone();
        let mut shutdown = self.ctx.shutdown.clone();
        loop {
            let wanted: BTreeSet<SocketAddr> = runtime
                .borrow_and_update()
                .tcp_targets()
                .loopback_vips()
                .iter()
                .copied()
                .collect();
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
        self.bound.retain(|addr, task| {
            let keep = wanted.contains(addr) && !task.is_finished();
            if !keep {
                // Dropping the accept task drops its socket: new connections are refused.
                task.abort();
                tracing::info!(%addr, "VIP listener removed");
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
                    tracing::warn!(%addr, %error, "cannot bind VIP listener");
                    continue;
                }
            };
            tracing::info!(%addr, "VIP listener bound");
            let ctx = Arc::clone(&self.ctx);
            let task = tokio::spawn(async move {
                let conn_ctx = Arc::clone(&ctx);
                let served = accept_loop(listener, ctx, move |stream, peer| {
                    let ctx = Arc::clone(&conn_ctx);
                    ctx.serve_target(stream, peer, addr, Unknown::Close)
                })
                .await;
                if let Err(error) = served {
                    tracing::warn!(%addr, %error, "VIP listener failed");
                }
            });
            self.bound.insert(addr, task);
        }
    }
}
