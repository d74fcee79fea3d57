//! Services and their endpoints (`Service` and `Endpoint` in `mesh.proto`).

use trellis_model as m;

use super::{
    DecodeError, Wire, field, list, list_to_pb, map_to_pb, map_values, opt_to_pb, optional,
    required, wire_enum,
};
use crate::pb::mesh as pb;

impl Wire for m::Service {
    type Pb = pb::Service;

    fn to_pb(&self) -> pb::Service {
        pb::Service {
            host: self.host.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            ports: list_to_pb(&self.ports),
            addresses: self.addresses.clone(),
            location: self.location.to_pb(),
            resolution: self.resolution.to_pb(),
            endpoints: list_to_pb(&self.endpoints),
            subsets: list_to_pb(&self.subsets),
            policy: Some(self.policy.to_pb()),
            port_policies: list_to_pb(&self.port_policies),
            http_routes: list_to_pb(&self.http_routes),
            tcp_routes: list_to_pb(&self.tcp_routes),
            tls_routes: list_to_pb(&self.tls_routes),
            export_to: self.export_to.clone(),
            origins: list_to_pb(&self.origins),
        }
    }

    fn from_pb(pb: pb::Service) -> Result<Self, DecodeError> {
        Ok(m::Service {
            host: pb.host,
            name: pb.name,
            namespace: pb.namespace,
            ports: list(pb.ports, "ports")?,
            addresses: pb.addresses,
            location: field(pb.location, "location")?,
            resolution: field(pb.resolution, "resolution")?,
            endpoints: list(pb.endpoints, "endpoints")?,
            subsets: list(pb.subsets, "subsets")?,
            policy: required(pb.policy, "policy")?,
            port_policies: list(pb.port_policies, "port_policies")?,
            http_routes: list(pb.http_routes, "http_routes")?,
            tcp_routes: list(pb.tcp_routes, "tcp_routes")?,
            tls_routes: list(pb.tls_routes, "tls_routes")?,
            export_to: pb.export_to,
            origins: list(pb.origins, "origins")?,
        })
    }
}

impl Wire for m::ServicePort {
    type Pb = pb::ServicePort;

    fn to_pb(&self) -> pb::ServicePort {
        pb::ServicePort {
            number: self.number.to_pb(),
            name: self.name.clone(),
            protocol: self.protocol.to_pb(),
            target_port: opt_to_pb(&self.target_port),
        }
    }

    fn from_pb(pb: pb::ServicePort) -> Result<Self, DecodeError> {
        Ok(m::ServicePort {
            number: field(pb.number, "number")?,
            name: pb.name,
            protocol: field(pb.protocol, "protocol")?,
            target_port: optional(pb.target_port, "target_port")?,
        })
    }
}

wire_enum!(ServiceLocation => ServiceLocation {
    MeshInternal <=> MeshInternal,
    MeshExternal <=> MeshExternal,
});

wire_enum!(Resolution => Resolution {
    Static <=> Static,
    Dns <=> Dns,
    DnsRoundRobin <=> DnsRoundRobin,
    Passthrough <=> Passthrough,
});

impl Wire for m::Subset {
    type Pb = pb::Subset;

    fn to_pb(&self) -> pb::Subset {
        pb::Subset {
            name: self.name.clone(),
            labels: self.labels.clone(),
            policy: opt_to_pb(&self.policy),
            port_policies: list_to_pb(&self.port_policies),
        }
    }

    fn from_pb(pb: pb::Subset) -> Result<Self, DecodeError> {
        Ok(m::Subset {
            name: pb.name,
            labels: pb.labels,
            policy: optional(pb.policy, "policy")?,
            port_policies: list(pb.port_policies, "port_policies")?,
        })
    }
}

impl Wire for m::Endpoint {
    type Pb = pb::Endpoint;

    fn to_pb(&self) -> pb::Endpoint {
        pb::Endpoint {
            address: self.address.clone(),
            ports: map_to_pb(&self.ports),
            port: opt_to_pb(&self.port),
            labels: self.labels.clone(),
            locality: self.locality.clone(),
            weight: self.weight,
            service_account: self.service_account.clone(),
            workload: self.workload.clone(),
            namespace: self.namespace.clone(),
            network: self.network.clone(),
            ready: self.ready,
        }
    }

    fn from_pb(pb: pb::Endpoint) -> Result<Self, DecodeError> {
        Ok(m::Endpoint {
            address: pb.address,
            ports: map_values(pb.ports, "ports")?,
            port: optional(pb.port, "port")?,
            labels: pb.labels,
            locality: pb.locality,
            weight: pb.weight,
            service_account: pb.service_account,
            workload: pb.workload,
            namespace: pb.namespace,
            network: pb.network,
            ready: pb.ready,
        })
    }
}
