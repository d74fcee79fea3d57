//! The order of Gateway API HTTP rules once several routes merge on one host.
//!
//! The Gateway API ranks matches, not routes: exact path first, then the longest path prefix,
//! then (as Istio orders them) regular expressions; ties go to the match with a method, then
//! more header matches, then more query parameter matches; remaining ties to the oldest route
//! (creation timestamp, then `namespace/name`), then rule order, then match order. Rules are
//! split into one model route per match so that this order can be expressed as a list.

use crate::resources::{Kind, Resource};
use std::cmp::Reverse;
use trellis_model::{HttpRoute, StringMatch};

/// Sort key of a single-match model route; smaller sorts first. The route-age part of the
/// precedence is not in the key: routes are compiled oldest first and sorted stably.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct RouteKey {
    /// Consumer routes (from the client's namespace) before the Service owner's routes, as
    /// GAMMA gives consumer routes precedence for their namespace.
    producer: bool,
    path_rank: Reverse<u8>,
    path_len: Reverse<usize>,
    no_method: bool,
    headers: Reverse<usize>,
    query_params: Reverse<usize>,
}

impl RouteKey {
    /// The key of `route`'s first (only) match; `consumer` marks a GAMMA consumer route.
    pub(super) fn of(route: &HttpRoute, consumer: bool) -> RouteKey {
        let m = route.matches.first();
        let uri = m.and_then(|m| m.uri.as_ref());
        let rank = match uri {
            Some(StringMatch::Exact(_)) => 3,
            Some(StringMatch::PathPrefix(_) | StringMatch::Prefix(_)) => 2,
            Some(StringMatch::Regex(_)) => 1,
            None => 0,
        };
        RouteKey {
            producer: !consumer,
            path_rank: Reverse(rank),
            path_len: Reverse(uri.map_or(0, |u| u.value().len())),
            no_method: m.is_none_or(|m| m.method.is_none()),
            headers: Reverse(m.map_or(0, |m| m.headers.len())),
            query_params: Reverse(m.map_or(0, |m| m.query_params.len())),
        }
    }
}

/// Age order of route resources: by creation timestamp (RFC 3339 in UTC sorts as text;
/// resources read from files have none and come after those that have one), then
/// `namespace/name`, then kind so HTTPRoute and GRPCRoute of one name keep a fixed order.
pub(super) fn age_key(r: &Resource) -> (bool, &str, &str, &str, Kind) {
    let ts = r.meta.creation_timestamp.as_ref().and_then(|v| v.as_str());
    (
        ts.is_none(),
        ts.unwrap_or(""),
        &r.namespace,
        &r.name,
        r.kind(),
    )
}
