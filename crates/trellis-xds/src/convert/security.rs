//! mTLS, authorization and request authentication (`SecurityPolicies` in `mesh.proto`, its
//! parts in `security.proto`).

use std::collections::BTreeMap;

use trellis_model as m;

use super::{DecodeError, Wire, field, list, list_to_pb, opt_to_pb, optional, required, wire_enum};
use crate::pb::mesh as pb;

impl Wire for m::SecurityPolicies {
    type Pb = pb::SecurityPolicies;

    fn to_pb(&self) -> pb::SecurityPolicies {
        pb::SecurityPolicies {
            peer_authentication: list_to_pb(&self.peer_authentication),
            authorization: list_to_pb(&self.authorization),
            request_authentication: list_to_pb(&self.request_authentication),
        }
    }

    fn from_pb(pb: pb::SecurityPolicies) -> Result<Self, DecodeError> {
        Ok(m::SecurityPolicies {
            peer_authentication: list(pb.peer_authentication, "peer_authentication")?,
            authorization: list(pb.authorization, "authorization")?,
            request_authentication: list(pb.request_authentication, "request_authentication")?,
        })
    }
}

impl Wire for m::PeerAuthn {
    type Pb = pb::PeerAuthn;

    fn to_pb(&self) -> pb::PeerAuthn {
        pb::PeerAuthn {
            origin: Some(self.origin.to_pb()),
            namespace: self.namespace.clone(),
            selector: opt_to_pb(&self.selector),
            mode: self.mode.to_pb(),
            port_modes: self
                .port_modes
                .iter()
                .map(|(port, mode)| (port.to_pb(), mode.to_pb()))
                .collect(),
        }
    }

    fn from_pb(pb: pb::PeerAuthn) -> Result<Self, DecodeError> {
        Ok(m::PeerAuthn {
            origin: required(pb.origin, "origin")?,
            namespace: pb.namespace,
            selector: optional(pb.selector, "selector")?,
            mode: field(pb.mode, "mode")?,
            port_modes: port_modes(pb.port_modes)?,
        })
    }
}

/// Both the key (a port) and the value (an enum number) of each entry can be invalid.
fn port_modes(pb: BTreeMap<u32, i32>) -> Result<BTreeMap<u16, m::MtlsMode>, DecodeError> {
    pb.into_iter()
        .map(|(port, mode)| {
            let entry = u16::from_pb(port).and_then(|p| Ok((p, m::MtlsMode::from_pb(mode)?)));
            entry.map_err(|e| e.under(format_args!("port_modes[{port}]")))
        })
        .collect()
}

wire_enum!(MtlsMode => MtlsMode {
    Unset <=> Unset,
    Disable <=> Disable,
    Permissive <=> Permissive,
    Strict <=> Strict,
});

impl Wire for m::AuthzPolicy {
    type Pb = pb::AuthzPolicy;

    fn to_pb(&self) -> pb::AuthzPolicy {
        pb::AuthzPolicy {
            origin: Some(self.origin.to_pb()),
            namespace: self.namespace.clone(),
            selector: opt_to_pb(&self.selector),
            target: opt_to_pb(&self.target),
            action: Some(self.action.to_pb()),
            rules: list_to_pb(&self.rules),
        }
    }

    fn from_pb(pb: pb::AuthzPolicy) -> Result<Self, DecodeError> {
        Ok(m::AuthzPolicy {
            origin: required(pb.origin, "origin")?,
            namespace: pb.namespace,
            selector: optional(pb.selector, "selector")?,
            target: optional(pb.target, "target")?,
            action: required(pb.action, "action")?,
            rules: list(pb.rules, "rules")?,
        })
    }
}

impl Wire for m::AuthzAction {
    type Pb = pb::AuthzAction;

    fn to_pb(&self) -> pb::AuthzAction {
        use pb::authz_action::{Custom, Kind};
        let kind = match self {
            m::AuthzAction::Allow => Kind::Allow(()),
            m::AuthzAction::Deny => Kind::Deny(()),
            m::AuthzAction::Audit => Kind::Audit(()),
            m::AuthzAction::Custom { provider } => Kind::Custom(Custom {
                provider: provider.clone(),
            }),
        };
        pb::AuthzAction { kind: Some(kind) }
    }

    fn from_pb(pb: pb::AuthzAction) -> Result<Self, DecodeError> {
        use pb::authz_action::Kind;
        match pb.kind {
            Some(Kind::Allow(())) => Ok(m::AuthzAction::Allow),
            Some(Kind::Deny(())) => Ok(m::AuthzAction::Deny),
            Some(Kind::Audit(())) => Ok(m::AuthzAction::Audit),
            Some(Kind::Custom(c)) => Ok(m::AuthzAction::Custom {
                provider: c.provider,
            }),
            None => Err(DecodeError::here("no AuthzAction kind is set")),
        }
    }
}

impl Wire for m::AuthzRule {
    type Pb = pb::AuthzRule;

    fn to_pb(&self) -> pb::AuthzRule {
        pb::AuthzRule {
            from: list_to_pb(&self.from),
            to: list_to_pb(&self.to),
            when: list_to_pb(&self.when),
        }
    }

    fn from_pb(pb: pb::AuthzRule) -> Result<Self, DecodeError> {
        Ok(m::AuthzRule {
            from: list(pb.from, "from")?,
            to: list(pb.to, "to")?,
            when: list(pb.when, "when")?,
        })
    }
}

impl Wire for m::AuthzSource {
    type Pb = pb::AuthzSource;

    fn to_pb(&self) -> pb::AuthzSource {
        pb::AuthzSource {
            principals: self.principals.clone(),
            not_principals: self.not_principals.clone(),
            request_principals: self.request_principals.clone(),
            not_request_principals: self.not_request_principals.clone(),
            namespaces: self.namespaces.clone(),
            not_namespaces: self.not_namespaces.clone(),
            ip_blocks: self.ip_blocks.clone(),
            not_ip_blocks: self.not_ip_blocks.clone(),
            remote_ip_blocks: self.remote_ip_blocks.clone(),
            not_remote_ip_blocks: self.not_remote_ip_blocks.clone(),
        }
    }

    fn from_pb(pb: pb::AuthzSource) -> Result<Self, DecodeError> {
        Ok(m::AuthzSource {
            principals: pb.principals,
            not_principals: pb.not_principals,
            request_principals: pb.request_principals,
            not_request_principals: pb.not_request_principals,
            namespaces: pb.namespaces,
            not_namespaces: pb.not_namespaces,
            ip_blocks: pb.ip_blocks,
            not_ip_blocks: pb.not_ip_blocks,
            remote_ip_blocks: pb.remote_ip_blocks,
            not_remote_ip_blocks: pb.not_remote_ip_blocks,
        })
    }
}

impl Wire for m::AuthzOperation {
    type Pb = pb::AuthzOperation;

    fn to_pb(&self) -> pb::AuthzOperation {
        pb::AuthzOperation {
            hosts: self.hosts.clone(),
            not_hosts: self.not_hosts.clone(),
            ports: list_to_pb(&self.ports),
            not_ports: list_to_pb(&self.not_ports),
            methods: self.methods.clone(),
            not_methods: self.not_methods.clone(),
            paths: self.paths.clone(),
            not_paths: self.not_paths.clone(),
        }
    }

    fn from_pb(pb: pb::AuthzOperation) -> Result<Self, DecodeError> {
        Ok(m::AuthzOperation {
            hosts: pb.hosts,
            not_hosts: pb.not_hosts,
            ports: list(pb.ports, "ports")?,
            not_ports: list(pb.not_ports, "not_ports")?,
            methods: pb.methods,
            not_methods: pb.not_methods,
            paths: pb.paths,
            not_paths: pb.not_paths,
        })
    }
}

impl Wire for m::AuthzCondition {
    type Pb = pb::AuthzCondition;

    fn to_pb(&self) -> pb::AuthzCondition {
        pb::AuthzCondition {
            key: self.key.clone(),
            values: self.values.clone(),
            not_values: self.not_values.clone(),
        }
    }

    fn from_pb(pb: pb::AuthzCondition) -> Result<Self, DecodeError> {
        Ok(m::AuthzCondition {
            key: pb.key,
            values: pb.values,
            not_values: pb.not_values,
        })
    }
}

impl Wire for m::JwtPolicy {
    type Pb = pb::JwtPolicy;

    fn to_pb(&self) -> pb::JwtPolicy {
        pb::JwtPolicy {
            origin: Some(self.origin.to_pb()),
            namespace: self.namespace.clone(),
            selector: opt_to_pb(&self.selector),
            rules: list_to_pb(&self.rules),
        }
    }

    fn from_pb(pb: pb::JwtPolicy) -> Result<Self, DecodeError> {
        Ok(m::JwtPolicy {
            origin: required(pb.origin, "origin")?,
            namespace: pb.namespace,
            selector: optional(pb.selector, "selector")?,
            rules: list(pb.rules, "rules")?,
        })
    }
}

impl Wire for m::JwtRule {
    type Pb = pb::JwtRule;

    fn to_pb(&self) -> pb::JwtRule {
        pb::JwtRule {
            issuer: self.issuer.clone(),
            audiences: self.audiences.clone(),
            jwks_uri: self.jwks_uri.clone(),
            jwks: self.jwks.clone(),
            from_headers: list_to_pb(&self.from_headers),
            from_params: self.from_params.clone(),
            from_cookies: self.from_cookies.clone(),
            forward_original_token: self.forward_original_token,
            output_payload_to_header: self.output_payload_to_header.clone(),
            output_claim_to_headers: list_to_pb(&self.output_claim_to_headers),
            timeout_ms: opt_to_pb(&self.timeout),
        }
    }

    fn from_pb(pb: pb::JwtRule) -> Result<Self, DecodeError> {
        Ok(m::JwtRule {
            issuer: pb.issuer,
            audiences: pb.audiences,
            jwks_uri: pb.jwks_uri,
            jwks: pb.jwks,
            from_headers: list(pb.from_headers, "from_headers")?,
            from_params: pb.from_params,
            from_cookies: pb.from_cookies,
            forward_original_token: pb.forward_original_token,
            output_payload_to_header: pb.output_payload_to_header,
            output_claim_to_headers: list(pb.output_claim_to_headers, "output_claim_to_headers")?,
            timeout: optional(pb.timeout_ms, "timeout_ms")?,
        })
    }
}

impl Wire for m::JwtHeader {
    type Pb = pb::JwtHeader;

    fn to_pb(&self) -> pb::JwtHeader {
        pb::JwtHeader {
            name: self.name.clone(),
            prefix: self.prefix.clone(),
        }
    }

    fn from_pb(pb: pb::JwtHeader) -> Result<Self, DecodeError> {
        Ok(m::JwtHeader {
            name: pb.name,
            prefix: pb.prefix,
        })
    }
}

impl Wire for m::ClaimToHeader {
    type Pb = pb::ClaimToHeader;

    fn to_pb(&self) -> pb::ClaimToHeader {
        pb::ClaimToHeader {
            header: self.header.clone(),
            claim: self.claim.clone(),
        }
    }

    fn from_pb(pb: pb::ClaimToHeader) -> Result<Self, DecodeError> {
        Ok(m::ClaimToHeader {
            header: pb.header,
            claim: pb.claim,
        })
    }
}
