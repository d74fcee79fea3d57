//! Tools shared by the listener tests: line echo and banner servers, YAML builders for
//! services with loopback VIPs, and a harness holding a listener context.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use trellis_proxy::detect::DetectOptions;
use trellis_proxy::http::{HttpProxy, ServeOptions};
use trellis_proxy::listener::{Connections, ListenerContext, VipListeners};
use trellis_proxy::runtime::Runtime;

/// A TCP echo server that answers each line with `name:line`; counts connections.
pub struct Echo {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Echo {
    pub async fn start(name: &'static str) -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let (r, mut w) = s.into_split();
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if w.write_all(format!("{name}:{line}\n").as_bytes())
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Echo { port, accepted }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A server-first backend: writes a banner as soon as a connection opens.
pub async fn banner_server(banner: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(banner.as_bytes()).await;
                let mut sink = [0u8; 64];
                let _ = s.read(&mut sink).await;
            });
        }
    });
    port
}

/// A port free on `ip` right now (VIP tests use their own 127.x address each).
pub fn free_port(ip: &str) -> u16 {
    let l = std::net::TcpListener::bind((ip, 0)).expect("bind free port");
    l.local_addr().expect("addr").port()
}

/// A ServiceEntry `name.shop.svc.cluster.local` at VIP `vip:port` with one port of
/// `protocol` named `port_name`, and endpoints 127.0.0.1 `(port, version)`.
pub fn service(
    name: &str,
    vip: &str,
    port: u16,
    port_name: &str,
    protocol: &str,
    eps: &[(u16, &str)],
) -> String {
    let eps: String = eps
        .iter()
        .map(|(p, v)| format!("  - address: 127.0.0.1\n    ports: {{{port_name}: {p}}}\n    labels: {{version: {v}}}\n"))
        .collect();
    let protocol = if protocol.is_empty() {
        String::new()
    } else {
        format!(", protocol: {protocol}")
    };
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  hosts: [{name}.shop.svc.cluster.local]\n  addresses: [{vip}]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports:\n  - {{number: {port}, name: {port_name}{protocol}}}\n  endpoints:\n{eps}---\n"
    )
}

/// Subsets `a` and `b` (by label `version`) of `name`, plus `extra` traffic policy YAML.
pub fn subsets(name: &str, policy: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  host: {name}.shop.svc.cluster.local\n{policy}  subsets:\n  - {{name: a, labels: {{version: a}}}}\n  - {{name: b, labels: {{version: b}}}}\n---\n"
    )
}

/// Listeners sharing one context, with handles to change configuration and stop.
pub struct Harness {
    pub ctx: Arc<ListenerContext>,
    pub config: watch::Sender<Arc<Runtime>>,
    pub stop: watch::Sender<bool>,
}

impl Harness {
    pub fn new(rt: Runtime) -> Harness {
        let (config, rx) = watch::channel(Arc::new(rt));
        let (stop, shutdown) = watch::channel(false);
        let http = HttpProxy::new(rx.clone(), &ServeOptions::default());
        let ctx = Arc::new(ListenerContext {
            runtime: rx,
            http,
            detect: DetectOptions::default(),
            connections: Connections::new(),
            shutdown,
        });
        Harness { ctx, config, stop }
    }

    /// Starts the VIP reconciler.
    pub fn vips(&self) {
        tokio::spawn(VipListeners::new(Arc::clone(&self.ctx)).run());
    }
}

/// Connects, retrying while the VIP listener is not bound yet.
pub async fn connect(addr: SocketAddr) -> TcpStream {
    loop {
        match TcpStream::connect(addr).await {
            Ok(s) => return s,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Sends one line on a fresh connection and returns the echoed answer.
pub async fn ping(addr: SocketAddr) -> String {
    let s = connect(addr).await;
    let (r, mut w) = s.into_split();
    w.write_all(b"ping\n").await.expect("write");
    let mut line = String::new();
    BufReader::new(r).read_line(&mut line).await.expect("read");
    line
}

/// `n` pings, 25 at a time; returns how many answers came from `a` and from `b`.
pub async fn split(addr: SocketAddr, n: usize) -> (usize, usize) {
    let (mut a, mut b) = (0, 0);
    for _ in 0..n / 25 {
        let batch: Vec<_> = (0..25).map(|_| tokio::spawn(ping(addr))).collect();
        for h in batch {
            match h.await.expect("ping task").as_str() {
                "a:ping\n" => a += 1,
                "b:ping\n" => b += 1,
                other => panic!("unexpected answer {other:?}"),
            }
        }
    }
    (a, b)
}

/// An `orders` HTTP service at `vip:port` with subsets a/b and a route sending `/b/*` to
/// subset b and everything else to a.
pub fn orders(vip: &str, port: u16, a: u16, b: u16) -> String {
    let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: orders, namespace: shop}\nspec:\n  hosts: [orders.shop.svc.cluster.local]\n  http:\n  - match: [{uri: {prefix: /b/}}]\n    route: [{destination: {host: orders.shop.svc.cluster.local, subset: b}}]\n  - route: [{destination: {host: orders.shop.svc.cluster.local, subset: a}}]\n---\n";
    format!(
        "{}{}{vs}",
        service("orders", vip, port, "http", "HTTP", &[(a, "a"), (b, "b")]),
        subsets("orders", "")
    )
}

/// One open connection to a line-echo service, kept across configuration changes.
pub struct Session {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl Session {
    pub async fn open(addr: SocketAddr) -> Session {
        let (r, w) = connect(addr).await.into_split();
        Session {
            r: BufReader::new(r),
            w,
        }
    }

    /// Sends `msg` as a line and returns the answer line.
    pub async fn say(&mut self, msg: &str) -> String {
        self.w
            .write_all(format!("{msg}\n").as_bytes())
            .await
            .expect("write");
        let mut line = String::new();
        self.r.read_line(&mut line).await.expect("read");
        line
    }
}

/// A line-echo service `db` (answering `a:<line>`) on `vip` at a free port, served by a
/// harness with its VIP listeners running; `build` turns YAML into a runtime.
pub struct DbOnVip {
    pub echo: Echo,
    pub h: Harness,
    pub addr: SocketAddr,
    pub yaml: String,
}

impl DbOnVip {
    pub async fn start(vip: &str, build: impl Fn(&str) -> Runtime) -> DbOnVip {
        let echo = Echo::start("a").await;
        let port = free_port(vip);
        let yaml = service("db", vip, port, "tcp", "TCP", &[(echo.port, "a")]);
        let h = Harness::new(build(&yaml));
        h.vips();
        let addr = SocketAddr::new(vip.parse().expect("ip"), port);
        DbOnVip {
            echo,
            h,
            addr,
            yaml,
        }
    }
}
