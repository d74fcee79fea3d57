//! HTTP/1.1 protocol upgrades (WebSocket and any other `Upgrade:` protocol) through the
//! proxy. `Connection` and `Upgrade` are hop-by-hop headers, so the forwarding path
//! strips them; for a request that asks for an upgrade they are put back on the request
//! sent upstream and on the upstream's `101 Switching Protocols` answer. When the upstream
//! switches, both connections are taken over: the downstream one from hyper
//! (`hyper::upgrade::on` on the request), the upstream one from its response body (our
//! HTTP/1.1 client, [`Upgraded`]), and bytes are copied both ways until either side
//! closes.
//!
//! Only HTTP/1.1 on both sides: an HTTP/2 client cannot send `Upgrade` (RFC 9113 §8.2.2)
//! and an upgrade to an HTTP/2-only upstream is forwarded as a plain request.

use ::http::header::{self, HeaderMap, HeaderValue};
use ::http::{Request, Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::body::ClientBody;
use crate::upstream::UpstreamBody;
use crate::upstream::h1::Upgraded;

/// `Connection: upgrade`, put back on both the request and the `101` response.
const UPGRADE_TOKEN: HeaderValue = HeaderValue::from_static("upgrade");

/// A downstream upgrade request on its way upstream.
#[derive(Debug)]
pub(super) struct Pending {
    /// The protocol(s) the client asked for (`Upgrade` value).
    protocol: HeaderValue,
    /// Resolves to the downstream connection once the `101` has been written to it.
    downstream: OnUpgrade,
}

impl Pending {
    /// Takes the upgrade out of `req` when it asks for one: HTTP/1.1, `Connection`
    /// listing `upgrade` and an `Upgrade` header. Call before the hop-by-hop headers are
    /// stripped; `None` (nothing taken) for every other request.
    pub(super) fn take(req: &mut Request<ClientBody>) -> Option<Pending> {
        // The HTTP/1.1 server hands upgrade requests to hyper (`h1::head`).
        if let ClientBody::Wire(_) = req.body() {
            return None;
        }
        if req.version() != Version::HTTP_11 || !connection_upgrade(req.headers()) {
            return None;
        }
        let protocol = req.headers().get(header::UPGRADE)?.clone();
        Some(Pending {
            protocol,
            downstream: hyper::upgrade::on(req),
        })
    }

    /// Puts `Connection: upgrade` and the client's `Upgrade` back on the request sent
    /// upstream (after the hop-by-hop headers were stripped).
    pub(super) fn restore(&self, headers: &mut HeaderMap) {
        headers.insert(header::CONNECTION, UPGRADE_TOKEN);
        headers.insert(header::UPGRADE, self.protocol.clone());
    }

    /// Completes the upgrade when the upstream answered `101 Switching Protocols`:
    /// spawns the tunnel between the two connections and returns the `Upgrade` value to
    /// put back on the `101` sent downstream (see [`restore_response`]). For any other
    /// answer the upgrade is abandoned and `None` returned: the response is forwarded as
    /// usual.
    pub(super) fn complete(self, resp: &mut Response<UpstreamBody>) -> Option<HeaderValue> {
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return None;
        }
        let protocol = resp
            .headers()
            .get(header::UPGRADE)
            .cloned()
            .unwrap_or(self.protocol);
        let upstream = resp.body_mut().take_upgrade()?;
        tokio::spawn(tunnel(self.downstream, upstream));
        Some(protocol)
    }
}

/// Puts `Connection: upgrade` and `Upgrade: protocol` on the `101` sent downstream.
pub(super) fn restore_response(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::CONNECTION, UPGRADE_TOKEN);
    headers.insert(header::UPGRADE, protocol);
}

/// Whether any `Connection` header lists the `upgrade` token (case-insensitively).
fn connection_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Waits for the client's side to be handed over (once the `101` is written to it), then
/// copies bytes both ways until one side closes (half-closes are propagated) or fails.
async fn tunnel(downstream: OnUpgrade, upstream: Upgraded) {
    let down = match downstream.await {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade did not complete");
            return;
        }
    };
    let mut down = TokioIo::new(down);
    match upstream.tunnel(&mut down).await {
        Ok((sent, received)) => {
            tracing::debug!(sent, received, "upgraded connection closed");
        }
        Err(e) => tracing::debug!(error = %e, "upgraded connection ended with error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_tokens() {
        let mut h = HeaderMap::new();
        assert!(!connection_upgrade(&h));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(connection_upgrade(&h));
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        assert!(!connection_upgrade(&h));
        h.append(header::CONNECTION, HeaderValue::from_static("UPGRADE"));
        assert!(connection_upgrade(&h));
    }
}
