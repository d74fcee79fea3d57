//! The shared test tools work: a backend behind the proxy answers and is counted.

mod support;

use support::{Backend, LIMIT, TestProxy, client, get, service_entry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_behind_proxy_is_counted() {
    tokio::time::timeout(LIMIT, async {
        let b = Backend::ok("v1").await;
        let proxy = TestProxy::start(&service_entry("a", "HTTP", &[(b.port(), "v1")])).await;
        let c = client();
        let a = get(&c, proxy.addr, "a.shop.svc.cluster.local", "/x?y=1").await;
        assert_eq!((a.status.as_u16(), a.body.as_str()), (200, "v1"));
        assert_eq!(b.count(), 1);
        assert_eq!(b.seen()[0].uri, "/x?y=1");
        assert!(!a.header("x-seen-request-id").is_empty());
    })
    .await
    .expect("finished in time");
}
