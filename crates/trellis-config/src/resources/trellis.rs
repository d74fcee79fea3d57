//! `trellis.dev`: Trellis' own kinds. `LocalWorkload` describes processes `trellis up` starts on
//! one machine, each replica with a sidecar; the mesh sees them as workloads with labels and an
//! identity, so Services, DestinationRule subsets and policies select them as they select pods.

use crate::resources::common::Labels;
use crate::resources::names::{is_dns1123_subdomain, is_label_key, is_label_value};
use crate::validate::{Cx, Validate};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;

/// Most replicas one LocalWorkload may ask for: each is a process plus a sidecar on one machine.
pub const MAX_REPLICAS: i64 = 64;

/// Service account of a LocalWorkload that names none, as in Kubernetes.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// LocalWorkload spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalWorkload {
    /// Identity of every replica; `default` when unset.
    pub service_account: Option<String>,
    /// What Services (`selector`), DestinationRule subsets and policies select.
    pub labels: Labels,
    /// The program to run (required).
    pub command: String,
    pub args: Vec<String>,
    /// Environment of the process, as a map or in the Kubernetes list form.
    pub env: Env,
    /// The port the process listens on (required, 1-65535).
    pub port: Option<i64>,
    /// How many processes to start; 1 when unset, 0 defines the workload without starting it.
    pub replicas: Option<i64>,
    /// Working directory; a relative path is relative to the directory of the file that
    /// defines the workload (resolved by the launcher, kept as written here).
    pub working_dir: Option<String>,
}

impl LocalWorkload {
    /// The service account in effect.
    pub fn service_account(&self) -> &str {
        self.service_account
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_SERVICE_ACCOUNT)
    }

    /// Replicas to start (validation keeps it in 0..=64; out-of-range values read as 0 here so
    /// an unchecked resource cannot ask for millions of processes).
    pub fn replicas(&self) -> u32 {
        match self.replicas {
            None => 1,
            Some(n) => u32::try_from(n)
                .ok()
                .filter(|n| i64::from(*n) <= MAX_REPLICAS)
                .unwrap_or(0),
        }
    }

    /// The listening port, when valid.
    pub fn port(&self) -> Option<u16> {
        self.port
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
    }
}

/// Environment variables. Written either as a map (`{LOG: debug}`) or as Kubernetes writes a
/// container's `env` (`[{name: LOG, value: debug}]`); the form is kept so findings point at the
/// right place.
#[derive(Debug, Clone, PartialEq)]
pub enum Env {
    Map(BTreeMap<String, String>),
    List(Vec<EnvVar>),
}

impl Default for Env {
    fn default() -> Self {
        Env::Map(BTreeMap::new())
    }
}

/// One entry of the list form. `valueFrom` (secrets, field references) has no meaning for a
/// local process and is an unknown field.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

impl Env {
    /// The variables in effect, by name. In the list form a later entry replaces an earlier one
    /// of the same name, as the kubelet does.
    pub fn vars(&self) -> BTreeMap<&str, &str> {
        match self {
            Env::Map(m) => m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            Env::List(l) => l
                .iter()
                .map(|e| (e.name.as_str(), e.value.as_str()))
                .collect(),
        }
    }
}

/// Either form, decided by the YAML node's shape; the list's entries go through the derived
/// struct decoder so their unknown fields are reported with positions.
impl<'de> Deserialize<'de> for Env {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Env;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of variable names to values, or a list of {name, value}")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Env, E> {
                Ok(Env::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Env, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    out.insert(k, v);
                }
                Ok(Env::Map(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Env, A::Error> {
                let mut out = Vec::new();
                while let Some(e) = seq.next_element::<EnvVar>()? {
                    out.push(e);
                }
                Ok(Env::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl Validate for LocalWorkload {
    fn validate(&self, cx: &mut Cx) {
        if let Some(sa) = self.service_account.as_deref().filter(|s| !s.is_empty())
            && !is_dns1123_subdomain(sa)
        {
            cx.error_at(
                "serviceAccount",
                format!(
                    "service account {sa:?} must be a lowercase DNS subdomain such as \"orders\""
                ),
            );
        }
        cx.field("labels", |cx| {
            for (k, v) in &self.labels {
                if !is_label_key(k) {
                    cx.error_at(k, format!("invalid label key {k:?}: expected [prefix/]name, the name at most 63 letters, digits, '-', '_' or '.', the prefix a lowercase DNS subdomain"));
                } else if !is_label_value(v) {
                    cx.error_at(k, format!("invalid value {v:?} for label {k:?}: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"));
                }
            }
        });
        if self.command.trim().is_empty() {
            cx.require("command", false);
        }
        if self.args.iter().any(|a| a.contains('\0')) {
            cx.error_at("args", "arguments must not contain NUL characters");
        }
        self.check_env(cx);
        match self.port {
            None => cx.require("port", false),
            Some(p) if !(1..=65535).contains(&p) => cx.error_at(
                "port",
                format!("port {p} is out of range; expected 1 to 65535"),
            ),
            Some(_) => {}
        }
        if let Some(r) = self.replicas
            && !(0..=MAX_REPLICAS).contains(&r)
        {
            cx.error_at(
                "replicas",
                format!("replicas must be 0 to {MAX_REPLICAS}, got {r}"),
            );
        }
        if self
            .working_dir
            .as_deref()
            .is_some_and(|d| d.contains('\0'))
        {
            cx.error_at("workingDir", "workingDir must not contain NUL characters");
        }
    }
}

impl LocalWorkload {
    /// Names the operating system accepts in an environment: non-empty, no `=` (it separates
    /// name from value) and no NUL in names or values.
    fn check_env(&self, cx: &mut Cx) {
        let bad_name = |n: &str| n.is_empty() || n.contains(['=', '\0']);
        let name_msg = |n: &str| {
            format!("environment variable name {n:?} must be non-empty, without '=' or NUL")
        };
        cx.field("env", |cx| match &self.env {
            Env::Map(m) => {
                for (k, v) in m {
                    if bad_name(k) {
                        cx.error_at(k, name_msg(k));
                    } else if v.contains('\0') {
                        cx.error_at(k, format!("value of {k:?} must not contain NUL"));
                    }
                }
            }
            Env::List(l) => {
                for (i, e) in l.iter().enumerate() {
                    cx.index(i, |cx| {
                        if e.name.is_empty() {
                            cx.require("name", false);
                        } else if bad_name(&e.name) {
                            cx.error_at("name", name_msg(&e.name));
                        }
                        if e.value.contains('\0') {
                            cx.error_at("value", "value must not contain NUL");
                        }
                    });
                }
            }
        });
    }
}

#[cfg(test)]
mod tests;
