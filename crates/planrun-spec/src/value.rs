//! The spanned value tree that both TOML and YAML are read into.
//!
//! Every node keeps the byte range it came from, so any later check — an unknown
//! key, a bad duration, a failed expectation — can point at the exact place in
//! the file. This module owns the tree and its conversions; it does not know
//! what a step or an expectation is.

use std::fmt;
use std::ops::Range;

/// A byte range in a spec file.
pub type Span = Range<usize>;

/// A key of a mapping, with the span of the key itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key text.
    pub name: String,
    /// Where the key stands.
    pub span: Span,
}

/// A value read from a spec file, with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// What the value is.
    pub kind: ValueKind,
    /// Where it stands in the file.
    pub span: Span,
}

/// The shape of a [`Value`].
#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    /// YAML `null` / `~`; TOML has none.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A floating point number.
    Float(f64),
    /// A string (TOML datetimes are read as strings too).
    Str(String),
    /// A sequence.
    Seq(Vec<Value>),
    /// A mapping, in file order.
    Map(Vec<(Key, Value)>),
}

impl Value {
    /// A value with the given kind and span.
    pub fn new(kind: ValueKind, span: Span) -> Self {
        Self { kind, span }
    }

    /// A string value.
    pub fn str(s: impl Into<String>, span: Span) -> Self {
        Self::new(ValueKind::Str(s.into()), span)
    }

    /// The string, when this is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The entries, when this is a mapping.
    pub fn as_map(&self) -> Option<&[(Key, Value)]> {
        match &self.kind {
            ValueKind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items, when this is a sequence.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match &self.kind {
            ValueKind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value under `key`, when this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    /// A word for the value's type, for messages ("a string", "a table").
    pub fn type_name(&self) -> &'static str {
        self.kind.type_name()
    }

    /// Converts to JSON, dropping spans.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.kind {
            ValueKind::Null => J::Null,
            ValueKind::Bool(b) => J::Bool(*b),
            ValueKind::Int(i) => J::from(*i),
            ValueKind::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            ValueKind::Str(s) => J::String(s.clone()),
            ValueKind::Seq(items) => J::Array(items.iter().map(Value::to_json).collect()),
            ValueKind::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Builds a tree from JSON, giving every node the same span.
    pub fn from_json(json: &serde_json::Value, span: &Span) -> Self {
        use serde_json::Value as J;
        let kind = match json {
            J::Null => ValueKind::Null,
            J::Bool(b) => ValueKind::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => ValueKind::Int(i),
                None => ValueKind::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => ValueKind::Str(s.clone()),
            J::Array(items) => {
                ValueKind::Seq(items.iter().map(|v| Value::from_json(v, span)).collect())
            }
            J::Object(map) => ValueKind::Map(
                map.iter()
                    .map(|(k, v)| {
                        (
                            Key {
                                name: k.clone(),
                                span: span.clone(),
                            },
                            Value::from_json(v, span),
                        )
                    })
                    .collect(),
            ),
        };
        Value::new(kind, span.clone())
    }

    /// Calls `f` on every string in the tree, depth first, keys excluded.
    pub fn visit_strings<'a>(&'a self, f: &mut impl FnMut(&'a str, &'a Span)) {
        match &self.kind {
            ValueKind::Str(s) => f(s, &self.span),
            ValueKind::Seq(items) => items.iter().for_each(|v| v.visit_strings(f)),
            ValueKind::Map(entries) => entries.iter().for_each(|(_, v)| v.visit_strings(f)),
            _ => {}
        }
    }
}

impl ValueKind {
    /// A word for the type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            ValueKind::Null => "null",
            ValueKind::Bool(_) => "a boolean",
            ValueKind::Int(_) => "an integer",
            ValueKind::Float(_) => "a number",
            ValueKind::Str(_) => "a string",
            ValueKind::Seq(_) => "a list",
            ValueKind::Map(_) => "a table",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_order_and_types() {
        let json = serde_json::json!({"b": 1, "a": [true, null, 1.5, "x"]});
        let value = Value::from_json(&json, &(0..3));
        assert_eq!(value.to_json(), json);
        assert_eq!(value.get("a").map(Value::type_name), Some("a list"));
        assert_eq!(value.span, 0..3);
    }
}
