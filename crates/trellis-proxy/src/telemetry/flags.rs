//! Response flags: why a request ended the way it did, in Envoy's vocabulary, so dashboards,
//! alerts and runbooks written for Istio keep working (`response_flags` metric label, `%RESPONSE_FLAGS%`
//! in access logs). Every locally generated error carries one.

use std::fmt;

/// Why the proxy, not the upstream, shaped the response (or the connection's end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResponseFlag {
    /// `NR`: no route matched, or no service has the requested host.
    NoRoute,
    /// `UH`: the service has no healthy endpoint.
    NoHealthyUpstream,
    /// `UF`: connecting to the upstream failed.
    UpstreamConnectionFailure,
    /// `UT`: the route's timeout (or a per-try timeout on the last try) expired.
    UpstreamRequestTimeout,
    /// `UO`: a connection-pool limit or circuit breaker refused the request.
    UpstreamOverflow,
    /// `URX`: retries were exhausted (attempts or budget) and the last attempt failed.
    UpstreamRetryLimitExceeded,
    /// `UC`: the upstream connection was reset or closed before a full response.
    UpstreamConnectionTermination,
    /// `DC`: the downstream client went away before the response was complete.
    DownstreamConnectionTermination,
    /// `FI`: fault injection aborted the request.
    FaultInjected,
    /// `DI`: fault injection delayed the request.
    DelayInjected,
    /// `RBAC`: an authorization policy denied the request.
    Unauthorized,
    /// `UPE`: the upstream's response was not valid HTTP.
    UpstreamProtocolError,
}

impl ResponseFlag {
    /// All flags, in documentation order.
    pub const ALL: [ResponseFlag; 12] = [
        ResponseFlag::NoRoute,
        ResponseFlag::NoHealthyUpstream,
        ResponseFlag::UpstreamConnectionFailure,
        ResponseFlag::UpstreamRequestTimeout,
        ResponseFlag::UpstreamOverflow,
        ResponseFlag::UpstreamRetryLimitExceeded,
        ResponseFlag::UpstreamConnectionTermination,
        ResponseFlag::DownstreamConnectionTermination,
        ResponseFlag::FaultInjected,
        ResponseFlag::DelayInjected,
        ResponseFlag::Unauthorized,
        ResponseFlag::UpstreamProtocolError,
    ];

    /// Envoy's short code (`UH`, `URX`, …).
    pub fn code(self) -> &'static str {
        match self {
            ResponseFlag::NoRoute => "NR",
            ResponseFlag::NoHealthyUpstream => "UH",
            ResponseFlag::UpstreamConnectionFailure => "UF",
            ResponseFlag::UpstreamRequestTimeout => "UT",
            ResponseFlag::UpstreamOverflow => "UO",
            ResponseFlag::UpstreamRetryLimitExceeded => "URX",
            ResponseFlag::UpstreamConnectionTermination => "UC",
            ResponseFlag::DownstreamConnectionTermination => "DC",
            ResponseFlag::FaultInjected => "FI",
            ResponseFlag::DelayInjected => "DI",
            ResponseFlag::Unauthorized => "RBAC",
            ResponseFlag::UpstreamProtocolError => "UPE",
        }
    }

    /// A sentence for humans, used in access logs and in the body of local error responses.
    pub fn reason(self) -> &'static str {
        match self {
            ResponseFlag::NoRoute => "no route matched the request",
            ResponseFlag::NoHealthyUpstream => "no healthy upstream endpoint",
            ResponseFlag::UpstreamConnectionFailure => "could not connect to the upstream",
            ResponseFlag::UpstreamRequestTimeout => {
                "the upstream did not answer within the route timeout"
            }
            ResponseFlag::UpstreamOverflow => {
                "a connection-pool limit or circuit breaker refused the request"
            }
            ResponseFlag::UpstreamRetryLimitExceeded => "retries exhausted",
            ResponseFlag::UpstreamConnectionTermination => "the upstream connection was reset",
            ResponseFlag::DownstreamConnectionTermination => "the client disconnected",
            ResponseFlag::FaultInjected => "fault injection aborted the request",
            ResponseFlag::DelayInjected => "fault injection delayed the request",
            ResponseFlag::Unauthorized => "denied by authorization policy",
            ResponseFlag::UpstreamProtocolError => "the upstream's response was not valid HTTP",
        }
    }

    /// The status a locally generated response for this flag carries (Envoy's choices), when the
    /// flag produces a response at all (`DC`, `DI` do not).
    pub fn local_status(self) -> Option<u16> {
        match self {
            ResponseFlag::NoRoute => Some(404),
            ResponseFlag::NoHealthyUpstream
            | ResponseFlag::UpstreamConnectionFailure
            | ResponseFlag::UpstreamOverflow
            | ResponseFlag::UpstreamRetryLimitExceeded
            | ResponseFlag::UpstreamConnectionTermination => Some(503),
            ResponseFlag::UpstreamRequestTimeout => Some(504),
            ResponseFlag::UpstreamProtocolError => Some(502),
            ResponseFlag::Unauthorized => Some(403),
            ResponseFlag::FaultInjected
            | ResponseFlag::DownstreamConnectionTermination
            | ResponseFlag::DelayInjected => None,
        }
    }
}

impl fmt::Display for ResponseFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The flags of one request, written as Envoy does: comma-separated codes, or `-` when none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseFlags(u16);

impl ResponseFlags {
    pub fn insert(&mut self, flag: ResponseFlag) {
        self.0 |= 1 << (flag as u16);
    }

    pub fn contains(self, flag: ResponseFlag) -> bool {
        self.0 & (1 << (flag as u16)) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags set, in documentation order.
    pub fn iter(self) -> impl Iterator<Item = ResponseFlag> {
        ResponseFlag::ALL
            .into_iter()
            .filter(move |f| self.contains(*f))
    }
}

impl From<ResponseFlag> for ResponseFlags {
    fn from(f: ResponseFlag) -> Self {
        let mut s = ResponseFlags::default();
        s.insert(f);
        s
    }
}

impl fmt::Display for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (i, flag) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(flag.code())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_envoys() {
        let codes: Vec<&str> = ResponseFlag::ALL.iter().map(|f| f.code()).collect();
        assert_eq!(
            codes,
            [
                "NR", "UH", "UF", "UT", "UO", "URX", "UC", "DC", "FI", "DI", "RBAC", "UPE"
            ]
        );
    }

    #[test]
    fn flag_sets_print_like_envoy() {
        let mut f = ResponseFlags::default();
        assert_eq!(f.to_string(), "-");
        f.insert(ResponseFlag::UpstreamRetryLimitExceeded);
        f.insert(ResponseFlag::UpstreamConnectionFailure);
        assert_eq!(f.to_string(), "UF,URX");
        assert!(f.contains(ResponseFlag::UpstreamConnectionFailure));
        assert!(!f.contains(ResponseFlag::NoRoute));
    }

    #[test]
    fn local_statuses() {
        assert_eq!(ResponseFlag::NoRoute.local_status(), Some(404));
        assert_eq!(
            ResponseFlag::UpstreamRequestTimeout.local_status(),
            Some(504)
        );
        assert_eq!(ResponseFlag::UpstreamOverflow.local_status(), Some(503));
        assert_eq!(
            ResponseFlag::UpstreamProtocolError.local_status(),
            Some(502)
        );
        assert_eq!(ResponseFlag::Unauthorized.local_status(), Some(403));
        assert_eq!(
            ResponseFlag::DownstreamConnectionTermination.local_status(),
            None
        );
    }
}
