//! Header edits (`HeaderOps`) parsed into typed names and values at config time, so the
//! request path only copies prepared values into the header map.

use http::{HeaderMap, HeaderName, HeaderValue};
use trellis_model::HeaderOps;

/// A header name or value in a [`HeaderOps`] that is not valid HTTP; the edit could never
/// be applied as written, so the configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid header edit {0:?}")]
pub struct InvalidHeader(pub String);

/// [`HeaderOps`] with names and values parsed once. Empty edits cost one branch.
#[derive(Debug, Clone, Default)]
pub struct HeaderEdits {
    set: Box<[(HeaderName, HeaderValue)]>,
    add: Box<[(HeaderName, HeaderValue)]>,
    remove: Box<[HeaderName]>,
}

impl HeaderEdits {
    /// Parses `ops`; errors name the first invalid header name or value.
    pub fn compile(ops: &HeaderOps) -> Result<HeaderEdits, InvalidHeader> {
        let pairs = |list: &[(String, String)]| {
            list.iter()
                .map(|(n, v)| {
                    let name = HeaderName::from_bytes(n.as_bytes())
                        .map_err(|_| InvalidHeader(n.clone()))?;
                    let value =
                        HeaderValue::from_str(v).map_err(|_| InvalidHeader(format!("{n}: {v}")))?;
                    Ok((name, value))
                })
                .collect::<Result<Box<[_]>, InvalidHeader>>()
        };
        let remove = ops
            .remove
            .iter()
            .map(|n| HeaderName::from_bytes(n.as_bytes()).map_err(|_| InvalidHeader(n.clone())))
            .collect::<Result<Box<[_]>, _>>()?;
        Ok(HeaderEdits {
            set: pairs(&ops.set)?,
            add: pairs(&ops.add)?,
            remove,
        })
    }

    /// Whether applying the edits would change nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    /// Applies the edits in Istio's order: set (replacing), add (appending), remove.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
        for name in &self.remove {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_add_remove() {
        let ops = HeaderOps {
            set: vec![("x-a".into(), "1".into())],
            add: vec![("x-b".into(), "2".into())],
            remove: vec!["x-c".into()],
        };
        let edits = HeaderEdits::compile(&ops).expect("valid");
        let mut h = HeaderMap::new();
        h.insert("x-a", HeaderValue::from_static("0"));
        h.insert("x-b", HeaderValue::from_static("1"));
        h.insert("x-c", HeaderValue::from_static("gone"));
        edits.apply(&mut h);
        assert_eq!(h.get("x-a").map(HeaderValue::as_bytes), Some(&b"1"[..]));
        assert_eq!(h.get_all("x-b").iter().count(), 2);
        assert!(h.get("x-c").is_none());
        assert!(!edits.is_empty());
    }

    #[test]
    fn invalid_name_is_refused() {
        let ops = HeaderOps {
            set: vec![("bad name".into(), "1".into())],
            ..HeaderOps::default()
        };
        assert_eq!(
            HeaderEdits::compile(&ops).err(),
            Some(InvalidHeader("bad name".into()))
        );
    }
}
