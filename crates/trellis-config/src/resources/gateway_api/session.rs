//! Session persistence (experimental, GEP-1619) for HTTPRoute and GRPCRoute rules.

use crate::resources::common::Duration;
use crate::resources::gateway_api::{check_duration, check_header_name, check_max_len};
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// Session affinity for a route rule (experimental, GEP-1619). Holds both the v1.1–v1.5 fields
/// (`sessionName`, `idleTimeout`, `cookieConfig`) and the later `cookie`/`header` union.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SessionPersistence {
    pub session_name: Option<String>,
    pub absolute_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    #[serde(rename = "type")]
    pub r#type: Option<SessionPersistenceType>,
    pub cookie_config: Option<CookieConfig>,
    pub cookie: Option<CookieConfig>,
    pub header: Option<HeaderConfig>,
}

/// How the session is carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum SessionPersistenceType {
    #[default]
    #[serde(rename = "Cookie")]
    Cookie,
    #[serde(rename = "Header")]
    Header,
}

/// The session cookie (`cookieConfig` in older releases, `cookie` later, which adds name and path).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CookieConfig {
    pub name: Option<String>,
    pub path: Option<String>,
    pub lifetime_type: Option<CookieLifetimeType>,
}

/// Whether the cookie outlives the browser session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum CookieLifetimeType {
    #[serde(rename = "Permanent")]
    Permanent,
    #[default]
    #[serde(rename = "Session")]
    Session,
}

/// The session header.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HeaderConfig {
    pub name: String,
}

impl SessionPersistence {
    /// The cookie settings, whichever spelling was used.
    pub fn cookie_settings(&self) -> Option<&CookieConfig> {
        self.cookie.as_ref().or(self.cookie_config.as_ref())
    }
}

impl Validate for SessionPersistence {
    fn validate(&self, cx: &mut Cx) {
        let ty = self.r#type.unwrap_or_default();
        if let Some(n) = &self.session_name {
            check_max_len(cx, "sessionName", n, 128);
        }
        check_duration(cx, "absoluteTimeout", self.absolute_timeout.as_ref());
        check_duration(cx, "idleTimeout", self.idle_timeout.as_ref());
        if self.cookie.is_some() && self.cookie_config.is_some() {
            cx.error("only one of cookie, cookieConfig may be set (cookie replaces cookieConfig)");
        }
        let cookie_field = if self.cookie.is_some() {
            "cookie"
        } else {
            "cookieConfig"
        };
        if let Some(c) = self.cookie_settings() {
            if ty != SessionPersistenceType::Cookie {
                cx.error_at(
                    cookie_field,
                    format!("`{cookie_field}` can only be set with type Cookie"),
                );
            }
            if c.lifetime_type == Some(CookieLifetimeType::Permanent)
                && self.absolute_timeout.is_none()
            {
                cx.error_at(cookie_field, "a Permanent cookie needs `absoluteTimeout`");
            }
            cx.field(cookie_field, |cx| {
                if let Some(n) = &c.name {
                    check_header_name(cx, "name", n);
                }
                if let Some(p) = &c.path {
                    check_max_len(cx, "path", p, 1024);
                }
            });
        }
        match (&self.header, ty) {
            (Some(_), SessionPersistenceType::Cookie) => {
                cx.error_at("header", "`header` can only be set with type Header")
            }
            (Some(h), SessionPersistenceType::Header) => cx.field("header", |cx| {
                cx.require("name", !h.name.is_empty());
                check_header_name(cx, "name", &h.name);
            }),
            (None, SessionPersistenceType::Header) if self.session_name.is_none() => {
                cx.error("type Header needs `header.name` (or `sessionName`) to name the header")
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_persistence_rules() {
        let run = |sp: SessionPersistence| {
            let mut cx = Cx::new("sp");
            sp.validate(&mut cx);
            cx.into_diags()
                .into_iter()
                .map(|d| d.message)
                .collect::<Vec<_>>()
        };
        let permanent = CookieConfig {
            lifetime_type: Some(CookieLifetimeType::Permanent),
            ..Default::default()
        };
        let msgs = run(SessionPersistence {
            cookie_config: Some(permanent.clone()),
            ..Default::default()
        });
        assert!(msgs[0].contains("absoluteTimeout"), "{msgs:?}");
        let ok = SessionPersistence {
            cookie_config: Some(permanent),
            absolute_timeout: Some(Duration::from_millis(60_000)),
            ..Default::default()
        };
        assert!(run(ok).is_empty());
        let msgs = run(SessionPersistence {
            r#type: Some(SessionPersistenceType::Header),
            cookie: Some(CookieConfig::default()),
            ..Default::default()
        });
        assert_eq!(msgs.len(), 2, "{msgs:?}");
    }
}
