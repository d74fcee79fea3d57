//! Request hashing: Envoy-compatible values for each key kind, cookie parsing and
//! generated affinity cookies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Uri};
use trellis_model::{ConsistentHash, HashKey, LoadBalancer};
use xxhash_rust::xxh64::xxh64;

use super::super::{Balancer, EndpointState, Pick, PickContext};
use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn addr(s: &str) -> Result<SocketAddr, std::net::AddrParseError> {
    s.parse()
}

/// The hash `key` gives a request with these headers, URI and client address.
fn decide(
    key: &HashKey,
    headers: &HeaderMap,
    uri: &str,
    peer: &str,
) -> Result<Option<u64>, Box<dyn std::error::Error>> {
    let hasher = RequestHasher::new(key)?;
    let uri: Uri = uri.parse()?;
    let input = HashInput {
        headers,
        uri: &uri,
        peer: addr(peer)?,
        local: addr("10.0.0.1:15001")?,
    };
    Ok(hasher.hash(&input).hash())
}

#[test]
fn xxhash_matches_reference_vector() {
    // XXH64 of the empty input with seed 0, from the xxHash specification.
    assert_eq!(xxh64(b"", 0), 0xEF46_DB37_51D8_E999);
}

#[test]
fn header_values() -> TestResult {
    let key = HashKey::Header("X-User".into());
    let mut headers = HeaderMap::new();
    assert_eq!(decide(&key, &headers, "/", "1.1.1.1:1")?, None);
    headers.insert("x-user", HeaderValue::from_static("alice"));
    assert_eq!(
        decide(&key, &headers, "/", "1.1.1.1:1")?,
        Some(xxh64(b"alice", 0))
    );
    // Several values: sorted, then chained, so their order does not matter.
    headers.append("x-user", HeaderValue::from_static("bob"));
    let chained = xxh64(b"bob", xxh64(b"alice", 0));
    assert_eq!(decide(&key, &headers, "/", "1.1.1.1:1")?, Some(chained));
    let mut reversed = HeaderMap::new();
    reversed.append("x-user", HeaderValue::from_static("bob"));
    reversed.append("x-user", HeaderValue::from_static("alice"));
    assert_eq!(decide(&key, &reversed, "/", "1.1.1.1:1")?, Some(chained));
    // More values than fit inline still hash all of them, in sorted order.
    let mut many = HeaderMap::new();
    let values: Vec<String> = (0..12).rev().map(|i| format!("v{i:02}")).collect();
    for v in &values {
        many.append("x-user", HeaderValue::from_str(v)?);
    }
    let mut sorted = values.clone();
    sorted.sort();
    let want = sorted.iter().fold(0, |seed, v| xxh64(v.as_bytes(), seed));
    assert_eq!(decide(&key, &many, "/", "1.1.1.1:1")?, Some(want));
    assert!(RequestHasher::new(&HashKey::Header("bad name".into())).is_err());
    Ok(())
}

#[test]
fn source_ip_hashes_the_address_text() -> TestResult {
    let none = HeaderMap::new();
    let v4 = decide(&HashKey::SourceIp, &none, "/", "192.168.1.7:40000")?;
    assert_eq!(v4, Some(xxh64(b"192.168.1.7", 0)));
    // The port is not part of the key: the same client on another connection sticks.
    assert_eq!(
        v4,
        decide(&HashKey::SourceIp, &none, "/", "192.168.1.7:40001")?
    );
    let v6 = decide(&HashKey::SourceIp, &none, "/", "[fd00::1:2]:80")?;
    assert_eq!(v6, Some(xxh64(b"fd00::1:2", 0)));
    Ok(())
}

#[test]
fn query_parameter_first_raw_value() -> TestResult {
    let key = HashKey::QueryParameter("user".into());
    let none = HeaderMap::new();
    let peer = "1.1.1.1:1";
    assert_eq!(
        decide(&key, &none, "/a?x=1&user=al%20ice&user=bob", peer)?,
        Some(xxh64(b"al%20ice", 0))
    );
    assert_eq!(
        decide(&key, &none, "/a?user&x=1", peer)?,
        Some(xxh64(b"", 0))
    );
    assert_eq!(decide(&key, &none, "/a?username=x", peer)?, None);
    assert_eq!(decide(&key, &none, "/a", peer)?, None);
    Ok(())
}

#[test]
fn cookie_parsing() -> TestResult {
    let key = HashKey::Cookie {
        name: "session".into(),
        path: None,
        ttl: None,
    };
    let mut headers = HeaderMap::new();
    headers.append("cookie", HeaderValue::from_static("a=1; sessionx=no"));
    headers.append(
        "cookie",
        HeaderValue::from_static("b=2;  session=\"abc\"; session=later"),
    );
    assert_eq!(
        decide(&key, &headers, "/", "1.1.1.1:1")?,
        Some(xxh64(b"abc", 0))
    );
    let mut empty = HeaderMap::new();
    empty.insert("cookie", HeaderValue::from_static("session=; other=1"));
    // Absent (or empty) without a ttl: no hash, and no cookie is generated.
    assert_eq!(decide(&key, &empty, "/", "1.1.1.1:1")?, None);
    Ok(())
}

#[test]
fn missing_cookie_with_ttl_is_generated_and_sticks() -> TestResult {
    let key = HashKey::Cookie {
        name: "session".into(),
        path: Some("/shop".into()),
        ttl: Some(Duration::from_secs(3600)),
    };
    let hasher = RequestHasher::new(&key)?;
    let uri: Uri = "/shop/cart".parse()?;
    let headers = HeaderMap::new();
    let input = HashInput {
        headers: &headers,
        uri: &uri,
        peer: addr("192.168.1.7:40000")?,
        local: addr("10.0.0.1:15001")?,
    };
    let decision = hasher.hash(&input);
    let HashDecision::SetCookie {
        name,
        value,
        path,
        ttl,
        hash,
    } = decision.clone()
    else {
        return Err(format!("expected SetCookie, got {decision:?}").into());
    };
    // Envoy's value: hex of xxHash64("<peer><local>"); the request hashes that value.
    let expect = format!("{:016x}", xxh64(b"192.168.1.7:4000010.0.0.1:15001", 0));
    assert_eq!(value.as_str(), expect);
    assert_eq!(
        (name, path, ttl),
        ("session", Some("/shop"), Duration::from_secs(3600))
    );
    assert_eq!(hash, xxh64(expect.as_bytes(), 0));
    let header = decision.set_cookie_header().ok_or("no header")?;
    assert_eq!(
        header.to_str()?,
        format!("session=\"{expect}\"; Max-Age=3600; Path=/shop; HttpOnly")
    );
    assert_eq!(HashDecision::Hash(1).set_cookie_header(), None);

    // The client's next request carries the cookie and lands on the same endpoint.
    let eps: Arc<[EndpointState]> = (0..8)
        .map(|i| EndpointState::new(format!("10.1.0.{i}:8080"), 1))
        .collect();
    let lb = LoadBalancer::ConsistentHash(ConsistentHash {
        key: key.clone(),
        ..ConsistentHash::default()
    });
    let balancer = Balancer::new(&lb, eps)?;
    let pick = |hash: Option<u64>, random: u64| {
        balancer.pick(&PickContext {
            random,
            hash,
            now: Instant::now(),
        })
    };
    let first = pick(decision.hash(), 1);
    assert!(matches!(first, Some(Pick::Endpoint(_))));
    let mut next = HeaderMap::new();
    next.insert(
        "cookie",
        HeaderValue::from_str(&format!("session=\"{expect}\""))?,
    );
    let again = hasher.hash(&HashInput {
        headers: &next,
        ..input
    });
    assert_eq!(again, HashDecision::Hash(hash));
    for random in 0..100 {
        assert_eq!(pick(again.hash(), random), first);
    }
    Ok(())
}
