//! Backend policy and load balancing (`policy.proto`).

use trellis_model as m;

use super::{DecodeError, Wire, field, list, list_to_pb, opt_to_pb, optional, required, wire_enum};
use crate::pb::mesh as pb;

impl Wire for m::BackendPolicy {
    type Pb = pb::BackendPolicy;

    fn to_pb(&self) -> pb::BackendPolicy {
        pb::BackendPolicy {
            load_balancer: opt_to_pb(&self.load_balancer),
            locality: opt_to_pb(&self.locality),
            connection_pool: Some(self.connection_pool.to_pb()),
            outlier_detection: opt_to_pb(&self.outlier_detection),
            tls: opt_to_pb(&self.tls),
        }
    }

    fn from_pb(pb: pb::BackendPolicy) -> Result<Self, DecodeError> {
        Ok(m::BackendPolicy {
            load_balancer: optional(pb.load_balancer, "load_balancer")?,
            locality: optional(pb.locality, "locality")?,
            connection_pool: required(pb.connection_pool, "connection_pool")?,
            outlier_detection: optional(pb.outlier_detection, "outlier_detection")?,
            tls: optional(pb.tls, "tls")?,
        })
    }
}

impl Wire for m::PortPolicy {
    type Pb = pb::PortPolicy;

    fn to_pb(&self) -> pb::PortPolicy {
        pb::PortPolicy {
            port: self.port.to_pb(),
            policy: Some(self.policy.to_pb()),
        }
    }

    fn from_pb(pb: pb::PortPolicy) -> Result<Self, DecodeError> {
        Ok(m::PortPolicy {
            port: field(pb.port, "port")?,
            policy: required(pb.policy, "policy")?,
        })
    }
}

impl Wire for m::ConnectionPool {
    type Pb = pb::ConnectionPool;

    fn to_pb(&self) -> pb::ConnectionPool {
        pb::ConnectionPool {
            max_connections: self.max_connections,
            connect_timeout_ms: opt_to_pb(&self.connect_timeout),
            tcp_keepalive: opt_to_pb(&self.tcp_keepalive),
            max_connection_duration_ms: opt_to_pb(&self.max_connection_duration),
            http1_max_pending_requests: self.http1_max_pending_requests,
            http2_max_requests: self.http2_max_requests,
            max_requests_per_connection: self.max_requests_per_connection,
            max_retries: self.max_retries,
            idle_timeout_ms: opt_to_pb(&self.idle_timeout),
            h2_upgrade: self.h2_upgrade,
            use_client_protocol: self.use_client_protocol,
            max_concurrent_streams: self.max_concurrent_streams,
        }
    }

    fn from_pb(pb: pb::ConnectionPool) -> Result<Self, DecodeError> {
        Ok(m::ConnectionPool {
            max_connections: pb.max_connections,
            connect_timeout: optional(pb.connect_timeout_ms, "connect_timeout_ms")?,
            tcp_keepalive: optional(pb.tcp_keepalive, "tcp_keepalive")?,
            max_connection_duration: optional(
                pb.max_connection_duration_ms,
                "max_connection_duration_ms",
            )?,
            http1_max_pending_requests: pb.http1_max_pending_requests,
            http2_max_requests: pb.http2_max_requests,
            max_requests_per_connection: pb.max_requests_per_connection,
            max_retries: pb.max_retries,
            idle_timeout: optional(pb.idle_timeout_ms, "idle_timeout_ms")?,
            h2_upgrade: pb.h2_upgrade,
            use_client_protocol: pb.use_client_protocol,
            max_concurrent_streams: pb.max_concurrent_streams,
        })
    }
}

impl Wire for m::TcpKeepalive {
    type Pb = pb::TcpKeepalive;

    fn to_pb(&self) -> pb::TcpKeepalive {
        pb::TcpKeepalive {
            probes: self.probes,
            time_ms: opt_to_pb(&self.time),
            interval_ms: opt_to_pb(&self.interval),
        }
    }

    fn from_pb(pb: pb::TcpKeepalive) -> Result<Self, DecodeError> {
        Ok(m::TcpKeepalive {
            probes: pb.probes,
            time: optional(pb.time_ms, "time_ms")?,
            interval: optional(pb.interval_ms, "interval_ms")?,
        })
    }
}

impl Wire for m::OutlierDetection {
    type Pb = pb::OutlierDetection;

    fn to_pb(&self) -> pb::OutlierDetection {
        pb::OutlierDetection {
            consecutive_5xx_errors: self.consecutive_5xx_errors,
            consecutive_gateway_errors: self.consecutive_gateway_errors,
            consecutive_local_origin_failures: self.consecutive_local_origin_failures,
            split_external_local_origin_errors: self.split_external_local_origin_errors,
            interval_ms: self.interval.to_pb(),
            base_ejection_time_ms: self.base_ejection_time.to_pb(),
            max_ejection_percent: self.max_ejection_percent,
            min_health_percent: self.min_health_percent,
        }
    }

    fn from_pb(pb: pb::OutlierDetection) -> Result<Self, DecodeError> {
        Ok(m::OutlierDetection {
            consecutive_5xx_errors: pb.consecutive_5xx_errors,
            consecutive_gateway_errors: pb.consecutive_gateway_errors,
            consecutive_local_origin_failures: pb.consecutive_local_origin_failures,
            split_external_local_origin_errors: pb.split_external_local_origin_errors,
            interval: field(pb.interval_ms, "interval_ms")?,
            base_ejection_time: field(pb.base_ejection_time_ms, "base_ejection_time_ms")?,
            max_ejection_percent: pb.max_ejection_percent,
            min_health_percent: pb.min_health_percent,
        })
    }
}

impl Wire for m::UpstreamTls {
    type Pb = pb::UpstreamTls;

    fn to_pb(&self) -> pb::UpstreamTls {
        pb::UpstreamTls {
            mode: self.mode.to_pb(),
            sni: self.sni.clone(),
            subject_alt_names: self.subject_alt_names.clone(),
            ca_certificates: self.ca_certificates.clone(),
            client_certificate: self.client_certificate.clone(),
            private_key: self.private_key.clone(),
            credential_name: self.credential_name.clone(),
            insecure_skip_verify: self.insecure_skip_verify,
        }
    }

    fn from_pb(pb: pb::UpstreamTls) -> Result<Self, DecodeError> {
        Ok(m::UpstreamTls {
            mode: field(pb.mode, "mode")?,
            sni: pb.sni,
            subject_alt_names: pb.subject_alt_names,
            ca_certificates: pb.ca_certificates,
            client_certificate: pb.client_certificate,
            private_key: pb.private_key,
            credential_name: pb.credential_name,
            insecure_skip_verify: pb.insecure_skip_verify,
        })
    }
}

wire_enum!(TlsMode => TlsMode {
    Disable <=> Disable,
    Simple <=> Simple,
    Mutual <=> Mutual,
    IstioMutual <=> IstioMutual,
});

impl Wire for m::LoadBalancer {
    type Pb = pb::LoadBalancer;

    fn to_pb(&self) -> pb::LoadBalancer {
        use pb::load_balancer::Kind;
        let kind = match self {
            m::LoadBalancer::RoundRobin => Kind::RoundRobin(()),
            m::LoadBalancer::LeastRequest => Kind::LeastRequest(()),
            m::LoadBalancer::Random => Kind::Random(()),
            m::LoadBalancer::Passthrough => Kind::Passthrough(()),
            m::LoadBalancer::PeakEwma => Kind::PeakEwma(()),
            m::LoadBalancer::ConsistentHash(h) => Kind::ConsistentHash(h.to_pb()),
        };
        pb::LoadBalancer { kind: Some(kind) }
    }

    fn from_pb(pb: pb::LoadBalancer) -> Result<Self, DecodeError> {
        use pb::load_balancer::Kind;
        match pb.kind {
            Some(Kind::RoundRobin(())) => Ok(m::LoadBalancer::RoundRobin),
            Some(Kind::LeastRequest(())) => Ok(m::LoadBalancer::LeastRequest),
            Some(Kind::Random(())) => Ok(m::LoadBalancer::Random),
            Some(Kind::Passthrough(())) => Ok(m::LoadBalancer::Passthrough),
            Some(Kind::PeakEwma(())) => Ok(m::LoadBalancer::PeakEwma),
            Some(Kind::ConsistentHash(h)) => Ok(m::LoadBalancer::ConsistentHash(field(
                h,
                "consistent_hash",
            )?)),
            None => Err(DecodeError::here("no LoadBalancer kind is set")),
        }
    }
}

impl Wire for m::ConsistentHash {
    type Pb = pb::ConsistentHash;

    fn to_pb(&self) -> pb::ConsistentHash {
        pb::ConsistentHash {
            key: Some(self.key.to_pb()),
            algorithm: Some(self.algorithm.to_pb()),
        }
    }

    fn from_pb(pb: pb::ConsistentHash) -> Result<Self, DecodeError> {
        Ok(m::ConsistentHash {
            key: required(pb.key, "key")?,
            algorithm: required(pb.algorithm, "algorithm")?,
        })
    }
}

impl Wire for m::HashKey {
    type Pb = pb::HashKey;

    fn to_pb(&self) -> pb::HashKey {
        use pb::hash_key::{Cookie, Kind};
        let kind = match self {
            m::HashKey::Header(h) => Kind::Header(h.clone()),
            m::HashKey::Cookie { name, path, ttl } => Kind::Cookie(Cookie {
                name: name.clone(),
                path: path.clone(),
                ttl_ms: opt_to_pb(ttl),
            }),
            m::HashKey::SourceIp => Kind::SourceIp(()),
            m::HashKey::QueryParameter(q) => Kind::QueryParameter(q.clone()),
        };
        pb::HashKey { kind: Some(kind) }
    }

    fn from_pb(pb: pb::HashKey) -> Result<Self, DecodeError> {
        use pb::hash_key::Kind;
        match pb.kind {
            Some(Kind::Header(h)) => Ok(m::HashKey::Header(h)),
            Some(Kind::Cookie(c)) => Ok(m::HashKey::Cookie {
                name: c.name,
                path: c.path,
                ttl: optional(c.ttl_ms, "ttl_ms").map_err(|e| e.under("cookie"))?,
            }),
            Some(Kind::SourceIp(())) => Ok(m::HashKey::SourceIp),
            Some(Kind::QueryParameter(q)) => Ok(m::HashKey::QueryParameter(q)),
            None => Err(DecodeError::here("no HashKey kind is set")),
        }
    }
}

impl Wire for m::HashAlgorithm {
    type Pb = pb::HashAlgorithm;

    fn to_pb(&self) -> pb::HashAlgorithm {
        use pb::hash_algorithm::{Kind, Maglev, RingHash};
        let kind = match self {
            m::HashAlgorithm::RingHash { minimum_ring_size } => Kind::RingHash(RingHash {
                minimum_ring_size: *minimum_ring_size,
            }),
            m::HashAlgorithm::Maglev { table_size } => Kind::Maglev(Maglev {
                table_size: *table_size,
            }),
        };
        pb::HashAlgorithm { kind: Some(kind) }
    }

    fn from_pb(pb: pb::HashAlgorithm) -> Result<Self, DecodeError> {
        use pb::hash_algorithm::Kind;
        match pb.kind {
            Some(Kind::RingHash(r)) => Ok(m::HashAlgorithm::RingHash {
                minimum_ring_size: r.minimum_ring_size,
            }),
            Some(Kind::Maglev(g)) => Ok(m::HashAlgorithm::Maglev {
                table_size: g.table_size,
            }),
            None => Err(DecodeError::here("no HashAlgorithm kind is set")),
        }
    }
}

impl Wire for m::LocalityLb {
    type Pb = pb::LocalityLb;

    fn to_pb(&self) -> pb::LocalityLb {
        pb::LocalityLb {
            enabled: self.enabled,
            distribute: list_to_pb(&self.distribute),
            failover: list_to_pb(&self.failover),
            failover_priority: self.failover_priority.clone(),
        }
    }

    fn from_pb(pb: pb::LocalityLb) -> Result<Self, DecodeError> {
        Ok(m::LocalityLb {
            enabled: pb.enabled,
            distribute: list(pb.distribute, "distribute")?,
            failover: list(pb.failover, "failover")?,
            failover_priority: pb.failover_priority,
        })
    }
}

impl Wire for m::LocalityDistribute {
    type Pb = pb::LocalityDistribute;

    fn to_pb(&self) -> pb::LocalityDistribute {
        pb::LocalityDistribute {
            from: self.from.clone(),
            to: self.to.clone(),
        }
    }

    fn from_pb(pb: pb::LocalityDistribute) -> Result<Self, DecodeError> {
        Ok(m::LocalityDistribute {
            from: pb.from,
            to: pb.to,
        })
    }
}

impl Wire for m::LocalityFailover {
    type Pb = pb::LocalityFailover;

    fn to_pb(&self) -> pb::LocalityFailover {
        pb::LocalityFailover {
            from: self.from.clone(),
            to: self.to.clone(),
        }
    }

    fn from_pb(pb: pb::LocalityFailover) -> Result<Self, DecodeError> {
        Ok(m::LocalityFailover {
            from: pb.from,
            to: pb.to,
        })
    }
}
