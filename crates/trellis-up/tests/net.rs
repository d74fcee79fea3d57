//! Transparent-mode networking for real: bridge, namespaces, veths, capture rules, hosts
//! files, teardown and `trellis down` cleanup, with real processes inside the namespaces.
//! Needs root and `ip`, `iptables`, `setpriv` and `/usr/bin/python3` (skipped, saying
//! why, otherwise). Everything uses its own prefix, bridge and subnet, so a real
//! `trellis up` on the same machine is not touched; the scenarios share them, so they run
//! one after the other in a single test.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

#[path = "net/support.rs"]
mod support;

use support::*;
use trellis_up::net::{
    Capture, HostNetwork, NetConfig, NetError, address, available, cleanup_leftovers, command_in,
    hosts_file, install_capture, write_hosts,
};

fn test_config() -> NetConfig {
    NetConfig {
        prefix: "trltest".to_owned(),
        veth_prefix: "trt".to_owned(),
        bridge: "trltest0".to_owned(),
        subnet: Ipv4Addr::new(10, 78, 0, 0),
        prefix_len: 16,
        host_ip: Ipv4Addr::new(10, 78, 0, 1),
    }
}

#[test]
fn namespaces_capture_hosts_teardown_and_leftovers() {
    let cfg = test_config();
    if let Err(why) = available(&cfg) {
        eprintln!("skipping the namespace tests: {why}");
        return;
    }
    if !Path::new(PYTHON).exists() {
        eprintln!("skipping the namespace tests: {PYTHON} is missing");
        return;
    }
    // Leftovers of an earlier run of this test that was killed; removed again at the end
    // even if a scenario panics.
    let stale = cleanup_leftovers(&cfg);
    assert!(stale.is_clean(), "{:?}", stale.errors);
    let _guard = Cleanup(cfg.clone());

    reachability_capture_and_hosts(&cfg);
    assert_clean(&cfg);
    a_second_network_is_refused(&cfg);
    assert_clean(&cfg);
    leftovers_of_a_killed_run_are_removed(&cfg);
    assert_clean(&cfg);
}

fn reachability_capture_and_hosts(cfg: &NetConfig) {
    let mut net = HostNetwork::create(cfg.clone()).expect("create the host network");
    let mut procs = Procs::default();
    assert!(sh("ip", &["link", "show", "trltest0"]).contains("UP"));
    let forward = sh("iptables", &["-S", "FORWARD"]);
    assert!(forward.contains("-i trltest0 -o trltest0"), "{forward}");

    let ip = |i| address(cfg, i).expect("address");
    let a = net
        .add_namespace("orders-v1-0", ip(0))
        .expect("namespace a");
    let b = net
        .add_namespace("Inventory_v1.0", ip(1))
        .expect("namespace b");
    let c = net.add_namespace("capture", ip(2)).expect("namespace c");
    assert_eq!(
        (a.name.as_str(), a.ip, a.host_veth.as_str()),
        ("trltest-orders-v1-0", Ipv4Addr::new(10, 78, 0, 2), "trt0h")
    );
    assert_eq!(b.name, "trltest-inventory-v1-0");
    assert_eq!(net.namespaces().len(), 3);
    let eth0 = sh("ip", &["-n", &a.name, "-o", "addr", "show", "dev", "eth0"]);
    assert!(eth0.contains("inet 10.78.0.2/16"), "{eth0}");
    let refused = [
        net.add_namespace("orders.v1.0", ip(5)),
        net.add_namespace("other", ip(0)),
        net.add_namespace("other", cfg.host_ip),
        net.add_namespace("other", Ipv4Addr::new(10, 79, 0, 2)),
    ];
    assert!(matches!(
        refused[0],
        Err(NetError::NamespaceExists {
            from_this_run: true,
            ..
        })
    ));
    for other in &refused[1..] {
        assert!(
            matches!(other, Err(NetError::InvalidAddress { .. })),
            "{other:?}"
        );
    }

    // Namespace to namespace (through the bridge and the host's FORWARD chain), host to
    // namespace, namespace to host.
    let a_server = start(&a, None, 7000, "a");
    // (Without nat rules in `a` there is no connection tracking there, so no original
    // destination either: only the banner is compared.)
    assert_eq!(first_word(&client(&b, None, a.ip, 7000)), "a");
    assert_eq!(first_word(&host_client(a.ip, 7000)), "a");
    let host_listener = TcpListener::bind((cfg.host_ip, 0)).expect("listen on the host");
    let host_port = host_listener.local_addr().expect("port").port();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = host_listener.accept() {
            let _ = stream.write_all(b"host\n");
        }
    });
    assert_eq!(client(&b, None, cfg.host_ip, host_port), "host");

    // The host rules come first in their chains: traffic on the bridge passes even when
    // later rules drop it (as a DROP policy would; the machine's policies stay as they
    // are, the drops below only match the test's bridge).
    let drops = [
        ["FORWARD", "-i", "trltest0", "-o", "trltest0", "-j", "DROP"].as_slice(),
        ["INPUT", "-i", "trltest0", "-j", "DROP"].as_slice(),
    ];
    for rule in drops {
        sh("iptables", &[&["-A"], rule].concat());
    }
    let listener = TcpListener::bind((cfg.host_ip, 0)).expect("listen on the host");
    let port = listener.local_addr().expect("port").port();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.write_all(b"host\n");
        }
    });
    let across = client(&b, None, a.ip, 7000);
    let to_host = client(&b, None, cfg.host_ip, port);
    for rule in drops {
        sh("iptables", &[&["-D"], rule].concat());
    }
    assert_eq!(
        first_word(&across),
        "a",
        "namespace to namespace behind a DROP"
    );
    assert_eq!(to_host, "host", "namespace to host behind a DROP");

    // Capture.
    install_capture(&c, &Capture::default()).expect("install capture");
    procs.push(start(&c, PROXY, 15001, "outbound"));
    procs.push(start(&c, None, 15006, "inbound"));
    procs.push(start(&c, None, 15000, "admin"));
    procs.push(start(&c, None, 8080, "app"));
    let c_app = format!("{}:8080", c.ip);
    assert_eq!(
        client(&c, None, "10.96.0.5".parse().expect("ip"), 8080),
        "outbound 10.96.0.5:8080"
    );
    let closed = closed_port(cfg.host_ip);
    assert_eq!(
        client(&c, None, cfg.host_ip, closed),
        format!("outbound {}:{closed}", cfg.host_ip),
        "the application's connections go to the outbound port"
    );
    assert_eq!(
        client(&c, PROXY, cfg.host_ip, closed),
        "ERR ConnectionRefusedError",
        "the proxy's own connections are not captured"
    );
    assert_eq!(
        client(&c, None, Ipv4Addr::LOCALHOST, 8080),
        "app 127.0.0.1:8080"
    );
    assert_eq!(
        client(&c, None, c.ip, 8080),
        format!("app {c_app}"),
        "own address: via lo, uncaptured"
    );
    assert_eq!(
        client(&c, PROXY, c.ip, 8080),
        format!("app {c_app}"),
        "the proxy reaches the app"
    );
    assert_eq!(host_client(c.ip, 8080), format!("inbound {c_app}"));
    assert_eq!(client(&b, None, c.ip, 8080), format!("inbound {c_app}"));
    assert_eq!(
        host_client(c.ip, 15000),
        format!("admin {}:15000", c.ip),
        "excluded port"
    );
    let nat = sh(
        "ip",
        &["netns", "exec", &c.name, "iptables", "-t", "nat", "-S"],
    );
    assert!(nat.contains("-A OUTPUT -p tcp -j TRELLIS_OUTPUT"), "{nat}");
    assert!(
        install_capture(&c, &Capture::default()).is_err(),
        "installed twice"
    );

    // Hosts file: a program started before the names were written sees every update.
    let mut resolver = Resolver::start(&b);
    assert_eq!(resolver.resolve("localhost"), "127.0.0.1");
    let names = |list: &[&str]| list.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    write_hosts(
        &b,
        &[(IpAddr::V4(a.ip), names(&["inventory", "inventory.default"]))],
    )
    .expect("write hosts");
    let started = Instant::now();
    let getent = command_in(
        &b,
        None,
        OsStr::new("getent"),
        &["hosts".into(), "inventory".into()],
    )
    .output()
    .expect("getent");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let line = String::from_utf8_lossy(&getent.stdout);
    assert!(line.starts_with("10.78.0.2 "), "{line:?}");
    // Names outside the mesh fail at once: the namespace's resolv.conf names no
    // unreachable server to wait for.
    let started = Instant::now();
    assert_eq!(resolver.resolve("nowhere.invalid"), "ERR gaierror");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(resolver.resolve("inventory.default"), "10.78.0.2");
    write_hosts(
        &b,
        &[
            (IpAddr::V4(c.ip), names(&["inventory"])),
            (IpAddr::V4(a.ip), names(&["orders"])),
        ],
    )
    .expect("rewrite hosts");
    assert_eq!(resolver.resolve("inventory"), c.ip.to_string());
    assert_eq!(resolver.resolve("orders"), "10.78.0.2");
    let text = std::fs::read_to_string(hosts_file(&b)).expect("hosts file");
    assert!(
        text.ends_with("10.78.0.4\tinventory\n10.78.0.2\torders\n"),
        "{text}"
    );
    procs.push(resolver.child);

    // Removing one namespace stops what still runs in it and takes its veth and hosts.
    net.remove_namespace(&a).expect("remove namespace a");
    assert!(exited_soon(a_server), "the server in a was not stopped");
    assert!(!sh("ip", &["netns", "list"]).contains(&a.name));
    assert!(!sh("ip", &["-o", "link", "show"]).contains("trt0h"));
    assert!(!Path::new("/etc/netns").join(&a.name).exists());
    assert_eq!(net.namespaces().len(), 2);

    drop(procs);
    let errors = net.teardown();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(net.teardown().is_empty(), "a second teardown does nothing");
}

fn a_second_network_is_refused(cfg: &NetConfig) {
    let mut net = HostNetwork::create(cfg.clone()).expect("create");
    let again = HostNetwork::create(cfg.clone());
    assert!(
        matches!(again, Err(NetError::BridgeExists { .. })),
        "{again:?}"
    );
    let overlapping = NetConfig {
        bridge: "trltest1".to_owned(),
        ..cfg.clone()
    };
    let overlap = HostNetwork::create(overlapping);
    assert!(
        matches!(overlap, Err(NetError::SubnetInUse { .. })),
        "{overlap:?}"
    );
    assert_eq!(net.config(), cfg);
    assert!(net.teardown().is_empty());
}

fn leftovers_of_a_killed_run_are_removed(cfg: &NetConfig) {
    let mut net = HostNetwork::create(cfg.clone()).expect("create");
    let ns = net
        .add_namespace("killed", address(cfg, 0).expect("ip"))
        .expect("namespace");
    install_capture(&ns, &Capture::default()).expect("capture");
    write_hosts(
        &ns,
        &[(IpAddr::V4(cfg.host_ip), vec!["control".to_owned()])],
    )
    .expect("hosts");
    let orphan = command_in(&ns, PROXY, OsStr::new("sleep"), &[OsString::from("60")])
        .spawn()
        .expect("spawn an orphan");
    std::mem::forget(net);
    assert!(sh("ip", &["netns", "list"]).contains("trltest-killed"));

    let report = cleanup_leftovers(cfg);
    assert!(report.is_clean(), "{:?}", report.errors);
    for expected in [
        "1 process(es) in namespace trltest-killed",
        "namespace trltest-killed",
        "firewall rule -A FORWARD -i trltest0 -o trltest0 -m comment --comment trellis:trltest -j ACCEPT",
        "firewall rule -A INPUT -i trltest0 -m comment --comment trellis:trltest -j ACCEPT",
        "bridge trltest0",
        "hosts directory /etc/netns/trltest-killed",
    ] {
        assert!(
            report.removed.iter().any(|r| r == expected),
            "{expected:?} not in {:?}",
            report.removed
        );
    }
    assert!(exited_soon(orphan), "the orphan was not stopped");
    let again = cleanup_leftovers(cfg);
    assert!(again.is_clean() && again.removed.is_empty(), "{again:?}");
}
