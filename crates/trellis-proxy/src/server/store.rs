//! The active configuration as the admin pages show it: which mesh is serving, since
//! when, from which version, and why the last rejected change was refused.

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use trellis_model::Mesh;

/// A refused configuration change: the last good one keeps serving.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejection {
    /// When the change was seen.
    #[serde(with = "unix_seconds")]
    pub at: SystemTime,
    /// The analyzer's findings (errors first), one line each, or the runtime's error.
    pub diagnostics: Vec<String>,
}

/// The configuration currently serving.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Active {
    /// Increases by one with every accepted change (1 = the startup config).
    pub version: u64,
    /// When this version was applied.
    #[serde(with = "unix_seconds")]
    pub applied_at: SystemTime,
    /// Resources read for it.
    pub resources: usize,
    /// The mesh model the proxy runs.
    pub mesh: Arc<Mesh>,
}

#[derive(Debug)]
struct Inner {
    active: Active,
    last_rejection: Option<Rejection>,
    accepted: u64,
    rejected: u64,
}

/// Shared between the reloader (writer) and the admin server (reader); never touched by
/// the request path, which reads its `Runtime` from a `watch` channel.
#[derive(Debug)]
pub struct ConfigStore {
    inner: RwLock<Inner>,
}

/// A consistent copy of the store for one admin response.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreView {
    /// The serving configuration.
    pub active: Active,
    /// The most recent refused change, if any since startup.
    pub last_rejection: Option<Rejection>,
    /// Changes applied since startup (the startup config not counted).
    pub reloads_accepted: u64,
    /// Changes refused since startup.
    pub reloads_rejected: u64,
}

impl ConfigStore {
    /// A store serving `mesh` as version 1.
    pub fn new(mesh: Arc<Mesh>, resources: usize) -> ConfigStore {
        ConfigStore {
            inner: RwLock::new(Inner {
                active: Active {
                    version: 1,
                    applied_at: SystemTime::now(),
                    resources,
                    mesh,
                },
                last_rejection: None,
                accepted: 0,
                rejected: 0,
            }),
        }
    }

    /// Records an applied change; returns its version.
    pub fn accept(&self, mesh: Arc<Mesh>, resources: usize) -> u64 {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.accepted += 1;
        inner.active = Active {
            version: inner.active.version + 1,
            applied_at: SystemTime::now(),
            resources,
            mesh,
        };
        inner.active.version
    }

    /// Records a refused change.
    pub fn reject(&self, diagnostics: Vec<String>) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.rejected += 1;
        inner.last_rejection = Some(Rejection {
            at: SystemTime::now(),
            diagnostics,
        });
    }

    /// A copy of everything, for one admin response.
    pub fn view(&self) -> StoreView {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        StoreView {
            active: inner.active.clone(),
            last_rejection: inner.last_rejection.clone(),
            reloads_accepted: inner.accepted,
            reloads_rejected: inner.rejected,
        }
    }
}

/// Timestamps as seconds since the Unix epoch (with fractions), as JSON tools expect.
mod unix_seconds {
    use std::time::{SystemTime, UNIX_EPOCH};

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        s.serialize_f64(secs)
    }
}
