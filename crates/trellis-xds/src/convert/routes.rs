//! Routes and their match conditions (`routes.proto`).

use trellis_model as m;

use super::{DecodeError, Wire, field, list, list_to_pb, opt_to_pb, optional, required};
use crate::pb::mesh as pb;

impl Wire for m::HttpRoute {
    type Pb = pb::HttpRoute;

    fn to_pb(&self) -> pb::HttpRoute {
        pb::HttpRoute {
            name: self.name.clone(),
            matches: list_to_pb(&self.matches),
            action: Some(self.action.to_pb()),
            timeout_ms: opt_to_pb(&self.timeout),
            retry: opt_to_pb(&self.retry),
            fault: opt_to_pb(&self.fault),
            mirrors: list_to_pb(&self.mirrors),
            request_headers: Some(self.request_headers.to_pb()),
            response_headers: Some(self.response_headers.to_pb()),
            rewrite: opt_to_pb(&self.rewrite),
            cors: opt_to_pb(&self.cors),
            origin: Some(self.origin.to_pb()),
            response_classes: list_to_pb(&self.response_classes),
        }
    }

    fn from_pb(pb: pb::HttpRoute) -> Result<Self, DecodeError> {
        Ok(m::HttpRoute {
            name: pb.name,
            matches: list(pb.matches, "matches")?,
            action: required(pb.action, "action")?,
            timeout: optional(pb.timeout_ms, "timeout_ms")?,
            retry: optional(pb.retry, "retry")?,
            fault: optional(pb.fault, "fault")?,
            mirrors: list(pb.mirrors, "mirrors")?,
            request_headers: required(pb.request_headers, "request_headers")?,
            response_headers: required(pb.response_headers, "response_headers")?,
            rewrite: optional(pb.rewrite, "rewrite")?,
            cors: optional(pb.cors, "cors")?,
            origin: required(pb.origin, "origin")?,
            response_classes: list(pb.response_classes, "response_classes")?,
        })
    }
}

impl Wire for m::RouteAction {
    type Pb = pb::RouteAction;

    fn to_pb(&self) -> pb::RouteAction {
        use pb::route_action::{DirectResponse, Forward, Kind};
        let kind = match self {
            m::RouteAction::Forward(destinations) => Kind::Forward(Forward {
                destinations: list_to_pb(destinations),
            }),
            m::RouteAction::Redirect(r) => Kind::Redirect(r.to_pb()),
            m::RouteAction::DirectResponse { status, body } => {
                Kind::DirectResponse(DirectResponse {
                    status: status.to_pb(),
                    body: body.clone(),
                })
            }
        };
        pb::RouteAction { kind: Some(kind) }
    }

    fn from_pb(pb: pb::RouteAction) -> Result<Self, DecodeError> {
        use pb::route_action::Kind;
        match pb.kind {
            Some(Kind::Forward(f)) => Ok(m::RouteAction::Forward(
                list(f.destinations, "destinations").map_err(|e| e.under("forward"))?,
            )),
            Some(Kind::Redirect(r)) => Ok(m::RouteAction::Redirect(field(r, "redirect")?)),
            Some(Kind::DirectResponse(d)) => Ok(m::RouteAction::DirectResponse {
                status: field(d.status, "status").map_err(|e| e.under("direct_response"))?,
                body: d.body,
            }),
            None => Err(DecodeError::here("no RouteAction kind is set")),
        }
    }
}

impl Wire for m::Redirect {
    type Pb = pb::Redirect;

    fn to_pb(&self) -> pb::Redirect {
        pb::Redirect {
            scheme: self.scheme.clone(),
            authority: self.authority.clone(),
            port: opt_to_pb(&self.port),
            path: opt_to_pb(&self.path),
            code: self.code.to_pb(),
        }
    }

    fn from_pb(pb: pb::Redirect) -> Result<Self, DecodeError> {
        Ok(m::Redirect {
            scheme: pb.scheme,
            authority: pb.authority,
            port: optional(pb.port, "port")?,
            path: optional(pb.path, "path")?,
            code: field(pb.code, "code")?,
        })
    }
}

impl Wire for m::WeightedDestination {
    type Pb = pb::WeightedDestination;

    fn to_pb(&self) -> pb::WeightedDestination {
        pb::WeightedDestination {
            destination: Some(self.destination.to_pb()),
            weight: self.weight,
            request_headers: Some(self.request_headers.to_pb()),
            response_headers: Some(self.response_headers.to_pb()),
        }
    }

    fn from_pb(pb: pb::WeightedDestination) -> Result<Self, DecodeError> {
        Ok(m::WeightedDestination {
            destination: required(pb.destination, "destination")?,
            weight: pb.weight,
            request_headers: required(pb.request_headers, "request_headers")?,
            response_headers: required(pb.response_headers, "response_headers")?,
        })
    }
}

impl Wire for m::ResponseClass {
    type Pb = pb::ResponseClass;

    fn to_pb(&self) -> pb::ResponseClass {
        pb::ResponseClass {
            status_min: self.status_min.to_pb(),
            status_max: self.status_max.to_pb(),
            is_failure: self.is_failure,
        }
    }

    fn from_pb(pb: pb::ResponseClass) -> Result<Self, DecodeError> {
        Ok(m::ResponseClass {
            status_min: field(pb.status_min, "status_min")?,
            status_max: field(pb.status_max, "status_max")?,
            is_failure: pb.is_failure,
        })
    }
}

impl Wire for m::TcpRoute {
    type Pb = pb::TcpRoute;

    fn to_pb(&self) -> pb::TcpRoute {
        pb::TcpRoute {
            matches: list_to_pb(&self.matches),
            destinations: list_to_pb(&self.destinations),
            origin: Some(self.origin.to_pb()),
        }
    }

    fn from_pb(pb: pb::TcpRoute) -> Result<Self, DecodeError> {
        Ok(m::TcpRoute {
            matches: list(pb.matches, "matches")?,
            destinations: list(pb.destinations, "destinations")?,
            origin: required(pb.origin, "origin")?,
        })
    }
}

impl Wire for m::TlsRoute {
    type Pb = pb::TlsRoute;

    fn to_pb(&self) -> pb::TlsRoute {
        pb::TlsRoute {
            matches: list_to_pb(&self.matches),
            destinations: list_to_pb(&self.destinations),
            origin: Some(self.origin.to_pb()),
        }
    }

    fn from_pb(pb: pb::TlsRoute) -> Result<Self, DecodeError> {
        Ok(m::TlsRoute {
            matches: list(pb.matches, "matches")?,
            destinations: list(pb.destinations, "destinations")?,
            origin: required(pb.origin, "origin")?,
        })
    }
}

impl Wire for m::HttpMatch {
    type Pb = pb::HttpMatch;

    fn to_pb(&self) -> pb::HttpMatch {
        pb::HttpMatch {
            uri: opt_to_pb(&self.uri),
            method: opt_to_pb(&self.method),
            authority: opt_to_pb(&self.authority),
            scheme: opt_to_pb(&self.scheme),
            headers: list_to_pb(&self.headers),
            query_params: list_to_pb(&self.query_params),
            port: opt_to_pb(&self.port),
            source_labels: self.source_labels.clone(),
            source_namespace: self.source_namespace.clone(),
            gateways: self.gateways.clone(),
            ignore_uri_case: self.ignore_uri_case,
        }
    }

    fn from_pb(pb: pb::HttpMatch) -> Result<Self, DecodeError> {
        Ok(m::HttpMatch {
            uri: optional(pb.uri, "uri")?,
            method: optional(pb.method, "method")?,
            authority: optional(pb.authority, "authority")?,
            scheme: optional(pb.scheme, "scheme")?,
            headers: list(pb.headers, "headers")?,
            query_params: list(pb.query_params, "query_params")?,
            port: optional(pb.port, "port")?,
            source_labels: pb.source_labels,
            source_namespace: pb.source_namespace,
            gateways: pb.gateways,
            ignore_uri_case: pb.ignore_uri_case,
        })
    }
}

impl Wire for m::HeaderMatch {
    type Pb = pb::HeaderMatch;

    fn to_pb(&self) -> pb::HeaderMatch {
        pb::HeaderMatch {
            name: self.name.clone(),
            value: opt_to_pb(&self.value),
            invert: self.invert,
        }
    }

    fn from_pb(pb: pb::HeaderMatch) -> Result<Self, DecodeError> {
        Ok(m::HeaderMatch {
            name: pb.name,
            value: optional(pb.value, "value")?,
            invert: pb.invert,
        })
    }
}

impl Wire for m::QueryMatch {
    type Pb = pb::QueryMatch;

    fn to_pb(&self) -> pb::QueryMatch {
        pb::QueryMatch {
            name: self.name.clone(),
            value: Some(self.value.to_pb()),
        }
    }

    fn from_pb(pb: pb::QueryMatch) -> Result<Self, DecodeError> {
        Ok(m::QueryMatch {
            name: pb.name,
            value: required(pb.value, "value")?,
        })
    }
}

impl Wire for m::L4Match {
    type Pb = pb::L4Match;

    fn to_pb(&self) -> pb::L4Match {
        pb::L4Match {
            port: opt_to_pb(&self.port),
            destination_subnets: self.destination_subnets.clone(),
            source_labels: self.source_labels.clone(),
            gateways: self.gateways.clone(),
            source_namespace: self.source_namespace.clone(),
        }
    }

    fn from_pb(pb: pb::L4Match) -> Result<Self, DecodeError> {
        Ok(m::L4Match {
            port: optional(pb.port, "port")?,
            destination_subnets: pb.destination_subnets,
            source_labels: pb.source_labels,
            gateways: pb.gateways,
            source_namespace: pb.source_namespace,
        })
    }
}

impl Wire for m::TlsMatch {
    type Pb = pb::TlsMatch;

    fn to_pb(&self) -> pb::TlsMatch {
        pb::TlsMatch {
            sni_hosts: self.sni_hosts.clone(),
            port: opt_to_pb(&self.port),
            destination_subnets: self.destination_subnets.clone(),
            source_labels: self.source_labels.clone(),
            gateways: self.gateways.clone(),
            source_namespace: self.source_namespace.clone(),
        }
    }

    fn from_pb(pb: pb::TlsMatch) -> Result<Self, DecodeError> {
        Ok(m::TlsMatch {
            sni_hosts: pb.sni_hosts,
            port: optional(pb.port, "port")?,
            destination_subnets: pb.destination_subnets,
            source_labels: pb.source_labels,
            gateways: pb.gateways,
            source_namespace: pb.source_namespace,
        })
    }
}
