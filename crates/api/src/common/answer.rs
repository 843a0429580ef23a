//! An action's answer fields, serialized once: handlers serialize their typed answer straight
//! to JSON text, and the envelope is written around that text without building a tree of
//! values first.

use serde::Serialize;
use serde_json::Value;

/// The text of a JSON object: an action's answer fields.
#[derive(Debug, Clone)]
pub struct Answer(String);

impl Answer {
    /// The answer `fields` serialize to. They must serialize to a JSON object (a struct or a
    /// map); anything else is answered as no fields.
    pub fn of<T: Serialize + ?Sized>(fields: &T) -> Answer {
        match serde_json::to_string(fields) {
            Ok(text) if text.starts_with('{') && text.ends_with('}') => Answer(text),
            _ => Answer("{}".into()),
        }
    }

    /// The fields' JSON text, an object.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The object with one more string field `name: value` after the others, written into
    /// `out`.
    pub fn write_with(&self, name: &str, value: &str, out: &mut String) {
        let inner = &self.0[..self.0.len() - 1];
        out.push_str(inner);
        if inner.len() > 1 {
            out.push(',');
        }
        push_json_str(out, name);
        out.push(':');
        push_json_str(out, value);
        out.push('}');
    }
}

impl From<Value> for Answer {
    fn from(fields: Value) -> Answer {
        match fields {
            Value::Object(_) => Answer(fields.to_string()),
            _ => Answer("{}".into()),
        }
    }
}

/// `s` as a JSON string literal, appended to `out`.
fn push_json_str(out: &mut String, s: &str) {
    // Serializing a str into a String cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with_id(a: &Answer) -> Value {
        let mut out = String::new();
        a.write_with("RequestId", "r-\"1\"", &mut out);
        serde_json::from_str(&out).unwrap()
    }

    #[test]
    fn a_field_is_added_to_an_empty_and_to_a_full_object() {
        assert_eq!(
            with_id(&Answer::from(json!({}))),
            json!({"RequestId": "r-\"1\""})
        );
        assert_eq!(
            with_id(&Answer::from(json!({"A": [1, {"B": "}"}]}))),
            json!({"A": [1, {"B": "}"}], "RequestId": "r-\"1\""})
        );
    }

    #[test]
    fn a_typed_answer_is_its_serialization_and_a_non_object_is_no_fields() {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Out {
            total_count: usize,
        }
        assert_eq!(
            Answer::of(&Out { total_count: 3 }).as_str(),
            r#"{"TotalCount":3}"#
        );
        assert_eq!(Answer::of(&[1, 2]).as_str(), "{}");
        assert_eq!(Answer::from(json!("x")).as_str(), "{}");
    }
}
