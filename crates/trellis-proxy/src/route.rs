//! The runtime route table: the model's ordered HTTP routes compiled once at config time
//! and matched per request.
//!
//! [`RouteTable::compile`] does all the work that does not depend on the request
//! (regexes, header names, case folding, cumulative weights) and rejects configuration
//! that cannot work with an error naming the route, so a bad push is refused instead of
//! crashing the proxy. [`RouteTable::find`] then returns the first route, in order, that
//! matches a borrowed [`RequestView`] — visiting only the routes its path and headers
//! leave possible ([`prefilter`]) — and [`RouteTable::pick_destination`]
//! chooses a backend by weight from a random number the caller supplies, so the table
//! holds no RNG or lock and can be shared by every worker.

mod condition;
mod matcher;
mod prefilter;
mod view;

#[cfg(test)]
mod match_tests;
#[cfg(test)]
mod request_tests;
#[cfg(test)]
mod table_tests;

use trellis_model::{HttpRoute, WeightedDestination};

use condition::{CompiledMatch, HeaderSlots, PathGuard, Probe};
use matcher::MatchError;
use prefilter::{Prefilter, RouteGuard};

pub use matcher::REGEX_SIZE_LIMIT;
pub use view::{MESH_GATEWAY, RequestView, raw_authority, split_authority};

/// Why a route list could not be compiled. Each variant names the route by position and
/// name so the operator can find it in the source configuration.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// A regex in a match is invalid RE2 syntax or compiles larger than
    /// [`REGEX_SIZE_LIMIT`].
    #[error(
        "route {index} ({}): invalid regex {pattern:?}: {source}",
        display_name(.name)
    )]
    InvalidRegex {
        /// Position of the route in the list.
        index: usize,
        /// The route's name, if it has one.
        name: Option<String>,
        /// The pattern as configured (before anchoring).
        pattern: String,
        /// What the regex engine reported.
        #[source]
        source: regex::Error,
    },
    /// A header condition names something that is not a valid HTTP header name, so it
    /// could never be evaluated as written.
    #[error(
        "route {index} ({}): invalid header name {header:?}",
        display_name(.name)
    )]
    InvalidHeaderName {
        /// Position of the route in the list.
        index: usize,
        /// The route's name, if it has one.
        name: Option<String>,
        /// The header name as configured.
        header: String,
    },
}

fn display_name(name: &Option<String>) -> &str {
    name.as_deref().unwrap_or("unnamed")
}

/// One route with its compiled conditions and weight table.
#[derive(Debug, Clone)]
struct CompiledRoute {
    route: HttpRoute,
    /// Empty matches every request, as the model specifies.
    matches: Box<[CompiledMatch]>,
    /// Running sums of the destinations' weights; the last entry is the total.
    cumulative: Box<[u64]>,
}

impl CompiledRoute {
    /// Whether the route matches a request its [`RouteGuard`] has admitted (so a single
    /// match's path guard is not checked twice).
    fn holds_past_guard(&self, probe: &mut Probe<'_, '_>) -> bool {
        match &*self.matches {
            [] => true,
            [only] => only.holds_past_guard(probe),
            several => several.iter().any(|m| m.holds(probe)),
        }
    }
}

/// An ordered list of HTTP routes, compiled for matching. Immutable once built: a config
/// change builds a new table and swaps it in whole.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Box<[CompiledRoute]>,
    /// The routes' necessary conditions, indexed so a lookup visits only the routes a
    /// request's path and headers leave possible.
    prefilter: Prefilter,
    /// The header names the routes' conditions cache per lookup.
    slots: HeaderSlots,
}

/// The necessary conditions of `route`, taken from its matches.
fn guard_of(route: &CompiledRoute) -> RouteGuard {
    match &*route.matches {
        [] => RouteGuard::default(),
        [only] => RouteGuard {
            path: *only.guard(),
            header: only.required_header(),
        },
        // Any of the matches may hold: their path literals together, no header.
        several => RouteGuard {
            path: PathGuard::any_of(several.iter().map(CompiledMatch::guard)),
            header: None,
        },
    }
}

impl RouteTable {
    /// Compiles `routes`, keeping their order (the first matching route wins).
    pub fn compile(routes: &[HttpRoute]) -> Result<RouteTable, RouteError> {
        let mut slots = HeaderSlots::default();
        let routes = routes
            .iter()
            .enumerate()
            .map(|(index, route)| compile_route(index, route, &mut slots))
            .collect::<Result<Box<[_]>, _>>()?;
        tracing::debug!(routes = routes.len(), "compiled route table");
        let guards: Vec<RouteGuard> = routes.iter().map(guard_of).collect();
        Ok(RouteTable {
            prefilter: Prefilter::new(&guards),
            routes,
            slots,
        })
    }

    /// The first route any of whose matches holds for `req`, with its index (for
    /// [`Self::pick_destination`]); `None` means no route (`NR`, 404).
    pub fn find(&self, req: &RequestView<'_>) -> Option<(usize, &HttpRoute)> {
        let mut probe = Probe::new(req);
        let routes = &self.routes;
        let index = self.prefilter.first(&mut probe, &self.slots, |i, probe| {
            routes.get(i).is_some_and(|r| r.holds_past_guard(probe))
        })?;
        routes.get(index).map(|r| (index, &r.route))
    }

    /// [`Self::find`] without the index: every route checked in full, in order. The
    /// reference the indexed lookup is tested against.
    #[cfg(test)]
    fn find_linear(&self, req: &RequestView<'_>) -> Option<usize> {
        let mut probe = Probe::new(req);
        self.routes.iter().position(|r| match &*r.matches {
            [] => true,
            several => several.iter().any(|m| m.holds(&mut probe)),
        })
    }

    /// Chooses a destination of route `route_index` in proportion to the weights, from a
    /// uniformly distributed `random` (e.g. `rand::random::<u32>()`). `None` when the
    /// index is out of range, the route does not forward, or every weight is 0 (`UH`,
    /// 503).
    pub fn pick_destination(
        &self,
        route_index: usize,
        random: u32,
    ) -> Option<&WeightedDestination> {
        let route = self.routes.get(route_index)?;
        let total = *route.cumulative.last()?;
        if total == 0 {
            return None;
        }
        // Scale `random` into [0, total) by multiply-and-shift: no division, and evenly
        // spread inputs give evenly spread targets.
        let target = ((u128::from(random) * u128::from(total)) >> 32) as u64;
        // The first destination whose running sum exceeds the target; zero-weight
        // destinations repeat the previous sum and so are never chosen.
        let index = route.cumulative.partition_point(|&c| c <= target);
        route.route.action.destinations().get(index)
    }

    /// The route at `index`, as compiled.
    pub fn route(&self, index: usize) -> Option<&HttpRoute> {
        self.routes.get(index).map(|r| &r.route)
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table has no routes (every request gets `NR`).
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

fn compile_route(
    index: usize,
    route: &HttpRoute,
    slots: &mut HeaderSlots,
) -> Result<CompiledRoute, RouteError> {
    let matches = route
        .matches
        .iter()
        .map(|m| CompiledMatch::compile(m, slots))
        .collect::<Result<Box<[_]>, _>>()
        .map_err(|e| {
            let name = route.name.clone();
            match e {
                MatchError::Regex { pattern, source } => RouteError::InvalidRegex {
                    index,
                    name,
                    pattern,
                    source,
                },
                MatchError::HeaderName { header } => RouteError::InvalidHeaderName {
                    index,
                    name,
                    header,
                },
            }
        })?;
    let cumulative = route
        .action
        .destinations()
        .iter()
        .scan(0u64, |sum, d| {
            *sum += u64::from(d.weight);
            Some(*sum)
        })
        .collect();
    Ok(CompiledRoute {
        route: route.clone(),
        matches,
        cumulative,
    })
}
