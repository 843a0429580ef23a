//! Parameter decoding shared by the dialects: flattened `A.0.B=v` pairs into JSON, typed
//! decoding with precise errors, and lenient scalars (the Python SDKs send `True`, `"10"`).

use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Why a request's parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    /// A required parameter is absent.
    Missing(String),
    /// A parameter the action does not take.
    Unknown(String),
    /// A parameter of the wrong type or shape.
    Invalid {
        /// Wire path, e.g. `Filters.0.Name`.
        param: String,
        /// What is wrong.
        reason: String,
    },
}

enum Node {
    Leaf(String),
    Branch(BTreeMap<String, Node>),
}

/// Turn flattened pairs (`InstanceIds.0=a`, `Filters.0.Values.1=b`) into a JSON object.
/// Branches whose keys are all indexes become arrays; indexes must be `0..n` (or `1..=n` when
/// `one_based`) without gaps.
pub fn unflatten(pairs: &[(String, String)], one_based: bool) -> Result<Value, ParamError> {
    let mut root = BTreeMap::new();
    for (key, value) in pairs {
        let parts: Vec<&str> = key.split('.').collect();
        insert(&mut root, &parts, value, key)?;
    }
    to_value(Node::Branch(root), "", one_based)
}

fn insert(
    map: &mut BTreeMap<String, Node>,
    parts: &[&str],
    value: &str,
    full: &str,
) -> Result<(), ParamError> {
    let invalid = |reason: &str| ParamError::Invalid {
        param: full.to_string(),
        reason: reason.to_string(),
    };
    let (head, rest) = parts.split_first().ok_or_else(|| invalid("empty name"))?;
    if head.is_empty() {
        return Err(invalid("empty name segment"));
    }
    if rest.is_empty() {
        if map.contains_key(*head) {
            return Err(invalid("given more than once"));
        }
        map.insert(head.to_string(), Node::Leaf(value.to_string()));
        return Ok(());
    }
    let entry = map
        .entry(head.to_string())
        .or_insert_with(|| Node::Branch(BTreeMap::new()));
    match entry {
        Node::Branch(inner) => insert(inner, rest, value, full),
        Node::Leaf(_) => Err(invalid("given both as a value and as a list or structure")),
    }
}

fn to_value(node: Node, path: &str, one_based: bool) -> Result<Value, ParamError> {
    match node {
        Node::Leaf(s) => Ok(Value::String(s)),
        Node::Branch(map) => {
            let join = |k: &str| {
                if path.is_empty() {
                    k.to_string()
                } else {
                    format!("{path}.{k}")
                }
            };
            let all_indexes =
                !map.is_empty() && map.keys().all(|k| k.bytes().all(|b| b.is_ascii_digit()));
            if all_indexes && !path.is_empty() {
                let mut indexed: Vec<(usize, Node)> = Vec::with_capacity(map.len());
                for (k, v) in map {
                    let i: usize = k.parse().map_err(|_| ParamError::Invalid {
                        param: join(&k),
                        reason: "index out of range".into(),
                    })?;
                    indexed.push((i, v));
                }
                indexed.sort_by_key(|(i, _)| *i);
                let base = usize::from(one_based);
                let mut out = Vec::with_capacity(indexed.len());
                for (pos, (i, v)) in indexed.into_iter().enumerate() {
                    if i != pos + base {
                        return Err(ParamError::Invalid {
                            param: join(&i.to_string()),
                            reason: format!("list indexes must start at {base} and have no gaps"),
                        });
                    }
                    out.push(to_value(v, &join(&i.to_string()), one_based)?);
                }
                Ok(Value::Array(out))
            } else {
                let mut obj = Map::new();
                for (k, v) in map {
                    let child = to_value(v, &join(&k), one_based)?;
                    obj.insert(k, child);
                }
                Ok(Value::Object(obj))
            }
        }
    }
}

/// Decode `value` into `T`, classifying serde's complaints into [`ParamError`]s with the wire
/// path (`Filters.0.Name`).
pub fn decode<T: DeserializeOwned>(value: Value) -> Result<T, ParamError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = wire_path(&e.path().to_string());
        let msg = e.inner().to_string();
        if let Some(name) = between_backticks(&msg, "unknown field `") {
            // serde's path already ends with the unknown field itself.
            ParamError::Unknown(if path.is_empty() { name } else { path })
        } else if let Some(name) = between_backticks(&msg, "missing field `") {
            ParamError::Missing(join_path(&path, &name))
        } else {
            ParamError::Invalid {
                param: path,
                reason: msg,
            }
        }
    })
}

fn between_backticks(msg: &str, prefix: &str) -> Option<String> {
    let rest = msg.strip_prefix(prefix)?;
    Some(rest.split('`').next()?.to_string())
}

fn join_path(path: &str, name: &str) -> String {
    if path.is_empty() || path == "." {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// `Filters[0].Name` → `Filters.0.Name`; `.` → ``.
fn wire_path(p: &str) -> String {
    let s = p.replace('[', ".").replace(']', "");
    if s == "." {
        String::new()
    } else {
        s
    }
}

/// A boolean from JSON `true`/`false` or the strings `true`/`True`/`TRUE`/`false`/...
pub fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(D::Error::custom(format!("expected a boolean, got {other}"))),
    }
}

/// An integer from a JSON number or a decimal string.
pub fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected an integer, got {n}"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("expected an integer, got \"{s}\""))),
        Some(other) => Err(D::Error::custom(format!(
            "expected an integer, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn unflattens_lists_and_structures() {
        let v = unflatten(
            &pairs(&[
                ("InstanceIds.0", "ins-1"),
                ("InstanceIds.1", "ins-2"),
                ("Filters.0.Name", "key-name"),
                ("Filters.0.Values.0", "my key*"),
                ("Limit", "20"),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"InstanceIds": ["ins-1", "ins-2"], "Filters": [{"Name": "key-name", "Values": ["my key*"]}], "Limit": "20"})
        );
        let v = unflatten(&pairs(&[("Tag.1.Key", "env"), ("Tag.2.Key", "x")]), true).unwrap();
        assert_eq!(v, json!({"Tag": [{"Key": "env"}, {"Key": "x"}]}));
    }

    #[test]
    fn refuses_gaps_and_clashes() {
        assert!(unflatten(&pairs(&[("A.0", "x"), ("A.2", "y")]), false).is_err());
        assert!(unflatten(&pairs(&[("A", "x"), ("A.0", "y")]), false).is_err());
        assert!(unflatten(&pairs(&[("A", "x"), ("A", "y")]), false).is_err());
        assert!(unflatten(&pairs(&[("A..B", "x")]), false).is_err());
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(non_snake_case, dead_code)]
    struct R {
        Name: String,
        #[serde(default, deserialize_with = "lenient_i64")]
        Limit: Option<i64>,
        #[serde(default, deserialize_with = "lenient_bool")]
        Force: Option<bool>,
        #[serde(default)]
        Filters: Vec<F>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(non_snake_case, dead_code)]
    struct F {
        Name: String,
    }

    #[test]
    fn classifies_errors() {
        let ok: R = decode(json!({"Name": "a", "Limit": "5", "Force": "True"})).unwrap();
        assert_eq!((ok.Limit, ok.Force), (Some(5), Some(true)));
        assert_eq!(
            decode::<R>(json!({})).unwrap_err(),
            ParamError::Missing("Name".into())
        );
        assert_eq!(
            decode::<R>(json!({"Name": "a", "Bogus": 1})).unwrap_err(),
            ParamError::Unknown("Bogus".into())
        );
        assert_eq!(
            decode::<R>(json!({"Name": "a", "Filters": [{}]})).unwrap_err(),
            ParamError::Missing("Filters.0.Name".into())
        );
        match decode::<R>(json!({"Name": "a", "Limit": "x"})).unwrap_err() {
            ParamError::Invalid { param, .. } => assert_eq!(param, "Limit"),
            e => panic!("{e:?}"),
        }
        match decode::<R>(json!({"Name": 5})).unwrap_err() {
            ParamError::Invalid { param, .. } => assert_eq!(param, "Name"),
            e => panic!("{e:?}"),
        }
    }
}
