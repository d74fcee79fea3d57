//! Gateways and workloads: what a proxy serves and what it runs as (`Gateway` and
//! `Workload` in `mesh.proto`, the parts of a gateway in `gateway.proto`).

use trellis_model as m;

use super::{DecodeError, Wire, field, list, list_to_pb, opt_to_pb, optional, required, wire_enum};
use crate::pb::mesh as pb;

impl Wire for m::Gateway {
    type Pb = pb::Gateway;

    fn to_pb(&self) -> pb::Gateway {
        pb::Gateway {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            origin: Some(self.origin.to_pb()),
            selector: self.selector.clone(),
            class: self.class.clone(),
            servers: list_to_pb(&self.servers),
            virtual_hosts: list_to_pb(&self.virtual_hosts),
        }
    }

    fn from_pb(pb: pb::Gateway) -> Result<Self, DecodeError> {
        Ok(m::Gateway {
            name: pb.name,
            namespace: pb.namespace,
            origin: required(pb.origin, "origin")?,
            selector: pb.selector,
            class: pb.class,
            servers: list(pb.servers, "servers")?,
            virtual_hosts: list(pb.virtual_hosts, "virtual_hosts")?,
        })
    }
}

impl Wire for m::GatewayServer {
    type Pb = pb::GatewayServer;

    fn to_pb(&self) -> pb::GatewayServer {
        pb::GatewayServer {
            name: self.name.clone(),
            port: self.port.to_pb(),
            protocol: self.protocol.to_pb(),
            hosts: list_to_pb(&self.hosts),
            tls: opt_to_pb(&self.tls),
        }
    }

    fn from_pb(pb: pb::GatewayServer) -> Result<Self, DecodeError> {
        Ok(m::GatewayServer {
            name: pb.name,
            port: field(pb.port, "port")?,
            protocol: field(pb.protocol, "protocol")?,
            hosts: list(pb.hosts, "hosts")?,
            tls: optional(pb.tls, "tls")?,
        })
    }
}

impl Wire for m::GatewayHost {
    type Pb = pb::GatewayHost;

    fn to_pb(&self) -> pb::GatewayHost {
        pb::GatewayHost {
            namespace: self.namespace.clone(),
            host: self.host.clone(),
        }
    }

    fn from_pb(pb: pb::GatewayHost) -> Result<Self, DecodeError> {
        Ok(m::GatewayHost {
            namespace: pb.namespace,
            host: pb.host,
        })
    }
}

impl Wire for m::ServerTls {
    type Pb = pb::ServerTls;

    fn to_pb(&self) -> pb::ServerTls {
        pb::ServerTls {
            mode: self.mode.to_pb(),
            credential_names: self.credential_names.clone(),
            server_certificate: self.server_certificate.clone(),
            private_key: self.private_key.clone(),
            ca_certificates: self.ca_certificates.clone(),
            https_redirect: self.https_redirect,
        }
    }

    fn from_pb(pb: pb::ServerTls) -> Result<Self, DecodeError> {
        Ok(m::ServerTls {
            mode: field(pb.mode, "mode")?,
            credential_names: pb.credential_names,
            server_certificate: pb.server_certificate,
            private_key: pb.private_key,
            ca_certificates: pb.ca_certificates,
            https_redirect: pb.https_redirect,
        })
    }
}

wire_enum!(ServerTlsMode => ServerTlsMode {
    Passthrough <=> Passthrough,
    Simple <=> Simple,
    Mutual <=> Mutual,
    AutoPassthrough <=> AutoPassthrough,
    IstioMutual <=> IstioMutual,
    OptionalMutual <=> OptionalMutual,
});

impl Wire for m::VirtualHost {
    type Pb = pb::VirtualHost;

    fn to_pb(&self) -> pb::VirtualHost {
        pb::VirtualHost {
            port: self.port.to_pb(),
            hosts: self.hosts.clone(),
            http_routes: list_to_pb(&self.http_routes),
            tcp_routes: list_to_pb(&self.tcp_routes),
            tls_routes: list_to_pb(&self.tls_routes),
        }
    }

    fn from_pb(pb: pb::VirtualHost) -> Result<Self, DecodeError> {
        Ok(m::VirtualHost {
            port: field(pb.port, "port")?,
            hosts: pb.hosts,
            http_routes: list(pb.http_routes, "http_routes")?,
            tcp_routes: list(pb.tcp_routes, "tcp_routes")?,
            tls_routes: list(pb.tls_routes, "tls_routes")?,
        })
    }
}

impl Wire for m::Workload {
    type Pb = pb::Workload;

    fn to_pb(&self) -> pb::Workload {
        pb::Workload {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            kind: self.kind.to_pb(),
            service_account: self.service_account.clone(),
            labels: self.labels.clone(),
            addresses: self.addresses.clone(),
            ports: list_to_pb(&self.ports),
            locality: self.locality.clone(),
            network: self.network.clone(),
            inject: self.inject,
        }
    }

    fn from_pb(pb: pb::Workload) -> Result<Self, DecodeError> {
        Ok(m::Workload {
            name: pb.name,
            namespace: pb.namespace,
            kind: field(pb.kind, "kind")?,
            service_account: pb.service_account,
            labels: pb.labels,
            addresses: pb.addresses,
            ports: list(pb.ports, "ports")?,
            locality: pb.locality,
            network: pb.network,
            inject: pb.inject,
        })
    }
}

wire_enum!(WorkloadKind => WorkloadKind {
    Pod <=> Pod,
    WorkloadEntry <=> WorkloadEntry,
    Deployment <=> Deployment,
    StatefulSet <=> StatefulSet,
    Local <=> Local,
});
