//! Where upstream calls go: straight to the upstream, or through an HTTP proxy named by the
//! environment. Explicit-mode sidecars capture an app's traffic exactly this way: the app
//! sees `HTTP_PROXY=http://127.0.0.1:15001` and sends absolute-form requests there.
//!
//! `TRELLIS_OUTBOUND` wins over `http_proxy`/`HTTP_PROXY` so `trellis up` can point the
//! demo at its sidecar without disturbing a proxy the user's shell exports for other
//! tools; `NO_PROXY`/`no_proxy` lists hosts reached directly either way.

use http::Uri;
use http::uri::Authority;

use crate::config::{ConfigError, lookup};

/// The outbound route of upstream calls.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    proxy: Option<Authority>,
    no_proxy: NoProxy,
}

impl Outbound {
    /// Every call connects to its upstream directly.
    pub fn direct() -> Outbound {
        Outbound::default()
    }

    /// Calls go through the HTTP proxy at `authority` (`host:port`), except to hosts that
    /// `no_proxy` matches.
    pub fn via(authority: Authority, no_proxy: NoProxy) -> Outbound {
        Outbound {
            proxy: Some(authority),
            no_proxy,
        }
    }

    /// Reads `TRELLIS_OUTBOUND` (`host:port`, `http://host:port`, or `direct`/`off` to
    /// ignore the HTTP proxy variables), else `http_proxy`, else `HTTP_PROXY`, and
    /// `no_proxy`/`NO_PROXY`.
    pub fn from_env(env: &impl Fn(&str) -> Option<String>) -> Result<Outbound, ConfigError> {
        let no_proxy = lookup(env, "no_proxy")
            .or_else(|| lookup(env, "NO_PROXY"))
            .map(|raw| NoProxy::parse(&raw.value))
            .unwrap_or_default();
        let raw = match lookup(env, "TRELLIS_OUTBOUND") {
            Some(raw) if matches!(raw.value.trim(), "direct" | "off" | "none") => {
                return Ok(Outbound::direct());
            }
            Some(raw) => raw,
            // Lower case first, as curl reads it (the upper-case form can be set by a CGI
            // request's `Proxy:` header, which is why some tools ignore it entirely).
            None => match lookup(env, "http_proxy").or_else(|| lookup(env, "HTTP_PROXY")) {
                Some(raw) => raw,
                None => return Ok(Outbound::direct()),
            },
        };
        let authority = raw.parse(proxy_authority)?;
        Ok(Outbound::via(authority, no_proxy))
    }

    /// The proxy, if any is configured at all.
    pub fn proxy(&self) -> Option<&Authority> {
        self.proxy.as_ref()
    }

    /// The proxy a call to `uri` goes through, or `None` to connect directly.
    pub fn proxy_for(&self, uri: &Uri) -> Option<&Authority> {
        let proxy = self.proxy.as_ref()?;
        let host = uri.host()?;
        let port = uri.port_u16().unwrap_or(80);
        if self.no_proxy.matches(host, port) {
            None
        } else {
            Some(proxy)
        }
    }
}

/// `host:port` or `http://host:port/` to the proxy's `host:port` (port 80 when left out).
fn proxy_authority(s: &str) -> Result<Authority, String> {
    let rest = match s.split_once("://") {
        Some(("http" | "HTTP", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "{scheme}:// proxies are not supported; expected host:port or http://host:port"
            ));
        }
        None => s,
    };
    let authority_text = rest.split('/').next().unwrap_or_default();
    let authority: Authority = authority_text
        .parse()
        .map_err(|_| "expected host:port or http://host:port".to_owned())?;
    if authority_text.contains('@') {
        return Err("proxy credentials are not supported".into());
    }
    if authority.host().is_empty() {
        return Err("the proxy address names no host".into());
    }
    match authority.port_u16() {
        Some(_) => Ok(authority),
        None => format!("{}:80", authority.host())
            .parse()
            .map_err(|_| "expected host:port or http://host:port".to_owned()),
    }
}

/// The hosts `NO_PROXY` exempts from the proxy: a comma-separated list of host names,
/// domain suffixes (`example.com` also matches `api.example.com`; a leading `.` or `*.` is
/// the same), IP addresses, each optionally with `:port`, or `*` for every host. CIDR
/// ranges are not understood (they match nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    all: bool,
    entries: Vec<NoProxyEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct NoProxyEntry {
    /// Lower case, without a leading `.`/`*.` or IPv6 brackets.
    host: String,
    port: Option<u16>,
}

impl NoProxy {
    /// Parses a `NO_PROXY` value; entries that cannot match anything are dropped rather
    /// than refused, as other tools sharing the variable may accept forms this one does not.
    pub fn parse(list: &str) -> NoProxy {
        let mut no_proxy = NoProxy::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                no_proxy.all = true;
                continue;
            }
            let (host, port) = split_host_port(entry);
            let host = host.trim_start_matches("*.").trim_start_matches('.');
            let host = host.trim_end_matches('.').to_ascii_lowercase();
            if !host.is_empty() {
                no_proxy.entries.push(NoProxyEntry { host, port });
            }
        }
        no_proxy
    }

    /// Whether a call to `host:port` bypasses the proxy.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.all {
            return true;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.entries.iter().any(|e| {
            let host_matches = host == e.host
                || (host.len() > e.host.len()
                    && host.ends_with(&e.host)
                    && host.as_bytes()[host.len() - e.host.len() - 1] == b'.');
            host_matches && e.port.is_none_or(|p| p == port)
        })
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address (no port).
fn split_host_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (rest, None),
        };
    }
    match entry.split_once(':') {
        Some((host, port)) if !port.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

#[cfg(test)]
mod tests;
