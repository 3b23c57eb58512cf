//! A serde `Deserializer` over the spanned [`Value`] tree.
//!
//! Step configurations are typed structs with serde derives; reading them from
//! the tree (rather than from the text) means an error knows the exact node it
//! came from, and an unknown field knows its key. In *lenient* mode, used at
//! plan time before templates are rendered, a template string is accepted where
//! a number or boolean is expected.

use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use crate::error::{Diagnostic, DiagnosticKind, code_list, did_you_mean};
use crate::value::{Key, Span, Value, ValueKind};

/// An error from reading a typed value out of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    /// What is wrong.
    pub message: String,
    /// Where, once known.
    pub span: Option<Span>,
    /// A hint such as "did you mean …".
    pub help: Option<String>,
    /// Whether the error is an unknown key.
    pub unknown_key: bool,
}

impl DeError {
    fn at(mut self, span: &Span) -> Self {
        if self.span.is_none() {
            self.span = Some(span.clone());
        }
        self
    }

    /// The key found missing, when that is the error.
    pub fn missing_key(&self) -> Option<&str> {
        self.message
            .strip_prefix("missing key `")
            .and_then(|rest| rest.strip_suffix('`'))
    }

    /// Turns the error into a diagnostic, defaulting to `fallback` for the span.
    pub fn into_diagnostic(self, fallback: &Span) -> Diagnostic {
        let kind = if self.unknown_key {
            DiagnosticKind::UnknownKey
        } else if self.message.starts_with("missing key") {
            DiagnosticKind::MissingKey
        } else if self.message.starts_with("expected") {
            DiagnosticKind::WrongType
        } else {
            DiagnosticKind::InvalidValue
        };
        let label = if self.unknown_key {
            "unknown key"
        } else {
            "this value"
        };
        Diagnostic::new(
            kind,
            self.span.unwrap_or_else(|| fallback.clone()),
            self.message,
        )
        .label(label)
        .maybe_help(self.help)
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            span: None,
            help: None,
            unknown_key: false,
        }
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        let found = match unexp {
            de::Unexpected::Str(s) => format!("the string `{s}`"),
            de::Unexpected::Signed(i) => format!("the integer `{i}`"),
            de::Unexpected::Unsigned(i) => format!("the integer `{i}`"),
            de::Unexpected::Float(f) => format!("the number `{f}`"),
            de::Unexpected::Bool(b) => format!("`{b}`"),
            de::Unexpected::Map => String::from("a table"),
            de::Unexpected::Seq => String::from("a list"),
            de::Unexpected::Unit => String::from("null"),
            other => other.to_string(),
        };
        Self::custom(format!("expected {}, found {found}", expected_words(exp)))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut err = Self::custom(format!("unknown key `{field}`"));
        err.unknown_key = true;
        err.help = did_you_mean(field, expected.iter().copied())
            .or_else(|| Some(format!("known keys here: {}", code_list(expected))));
        err
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut err = Self::custom(format!("unknown value `{variant}`"));
        err.help = did_you_mean(variant, expected.iter().copied())
            .or_else(|| Some(format!("expected one of {}", code_list(expected))));
        err
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format!("missing key `{field}`"))
    }
}

/// serde names Rust types (`usize`, `bool`); users wrote TOML or YAML.
fn expected_words(exp: &dyn de::Expected) -> String {
    let text = exp.to_string();
    match text.as_str() {
        "u8" | "u16" | "u32" | "u64" | "usize" => String::from("a whole number, 0 or more"),
        "i8" | "i16" | "i32" | "i64" | "isize" => String::from("a whole number"),
        "f32" | "f64" => String::from("a number"),
        "a boolean" | "bool" => String::from("`true` or `false`"),
        // serde's words for a table and a list
        "a map" => String::from("a table"),
        "a sequence" => String::from("a list"),
        _ if text.starts_with("struct ") => String::from("a table"),
        _ => text,
    }
}

/// Reads a typed value from the tree.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, DeError> {
    T::deserialize(ValueDeserializer {
        value,
        lenient: false,
    })
    .map_err(|e| e.at(&value.span))
}

/// Reads a typed value, accepting template strings where scalars are expected.
pub(crate) fn from_value_lenient<T: DeserializeOwned>(value: &Value) -> Result<T, DeError> {
    T::deserialize(ValueDeserializer {
        value,
        lenient: true,
    })
    .map_err(|e| e.at(&value.span))
}

/// Whether a string holds template syntax.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// A deserializer for one node.
#[derive(Clone, Copy)]
pub(crate) struct ValueDeserializer<'a> {
    value: &'a Value,
    lenient: bool,
}

impl<'a> ValueDeserializer<'a> {
    fn template(&self) -> bool {
        self.lenient && matches!(&self.value.kind, ValueKind::Str(s) if is_template(s))
    }

    fn child(&self, value: &'a Value) -> Self {
        Self {
            value,
            lenient: self.lenient,
        }
    }
}

macro_rules! scalar {
    ($method:ident, $visit:ident, $dummy:expr) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            if self.template() {
                return visitor
                    .$visit::<DeError>($dummy)
                    .map_err(|e| e.at(&self.value.span));
            }
            self.deserialize_any(visitor)
        }
    };
}

impl<'de> de::Deserializer<'de> for ValueDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = &self.value.span;
        let result = match &self.value.kind {
            ValueKind::Null => visitor.visit_unit(),
            ValueKind::Bool(b) => visitor.visit_bool(*b),
            ValueKind::Int(i) => visitor.visit_i64(*i),
            ValueKind::Float(f) => visitor.visit_f64(*f),
            ValueKind::Str(s) => visitor.visit_str(s),
            ValueKind::Seq(items) => visitor.visit_seq(SeqAccess {
                items: items.iter(),
                parent: self,
            }),
            ValueKind::Map(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                value: None,
                parent: self,
            }),
        };
        result.map_err(|e| e.at(span))
    }

    scalar!(deserialize_bool, visit_bool, false);
    scalar!(deserialize_i8, visit_i64, 0);
    scalar!(deserialize_i16, visit_i64, 0);
    scalar!(deserialize_i32, visit_i64, 0);
    scalar!(deserialize_i64, visit_i64, 0);
    scalar!(deserialize_u8, visit_u64, 0);
    scalar!(deserialize_u16, visit_u64, 0);
    scalar!(deserialize_u32, visit_u64, 0);
    scalar!(deserialize_u64, visit_u64, 0);
    scalar!(deserialize_f32, visit_f64, 0.0);
    scalar!(deserialize_f64, visit_f64, 0.0);

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value.kind {
            ValueKind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let span = &self.value.span;
        match &self.value.kind {
            ValueKind::Str(s) => visitor
                .visit_enum(s.as_str().into_deserializer())
                .map_err(|e: DeError| e.at(span)),
            ValueKind::Map(entries) if entries.len() == 1 => visitor
                .visit_enum(EnumAccess {
                    key: &entries[0].0,
                    value: &entries[0].1,
                    parent: self,
                })
                .map_err(|e| e.at(span)),
            _ => Err(de::Error::invalid_type(
                unexpected(self.value),
                &"a string or a table with one key",
            ))
            .map_err(|e: DeError| e.at(span)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // a number or boolean where text is expected is taken as its text
        // (`env = { PORT = 8080 }`, or a template that rendered to a number)
        let text = match &self.value.kind {
            ValueKind::Int(i) => i.to_string(),
            ValueKind::Float(f) => f.to_string(),
            ValueKind::Bool(b) => b.to_string(),
            _ => return self.deserialize_any(visitor),
        };
        visitor
            .visit_string::<DeError>(text)
            .map_err(|e| e.at(&self.value.span))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    serde::forward_to_deserialize_any! {
        char bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any i128 u128
    }
}

fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match &value.kind {
        ValueKind::Null => de::Unexpected::Unit,
        ValueKind::Bool(b) => de::Unexpected::Bool(*b),
        ValueKind::Int(i) => de::Unexpected::Signed(*i),
        ValueKind::Float(f) => de::Unexpected::Float(*f),
        ValueKind::Str(s) => de::Unexpected::Str(s),
        ValueKind::Seq(_) => de::Unexpected::Seq,
        ValueKind::Map(_) => de::Unexpected::Map,
    }
}

struct SeqAccess<'a> {
    items: std::slice::Iter<'a, Value>,
    parent: ValueDeserializer<'a>,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'de> {
    type Error = DeError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(item) => seed
                .deserialize(self.parent.child(item))
                .map(Some)
                .map_err(|e| e.at(&item.span)),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAccess<'a> {
    entries: std::slice::Iter<'a, (Key, Value)>,
    value: Option<&'a Value>,
    parent: ValueDeserializer<'a>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'de> {
    type Error = DeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                let de: de::value::StrDeserializer<'_, DeError> =
                    key.name.as_str().into_deserializer();
                seed.deserialize(de).map(Some).map_err(|e| e.at(&key.span))
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DeError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("value without a key"))?;
        seed.deserialize(self.parent.child(value))
            .map_err(|e| e.at(&value.span))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct EnumAccess<'a> {
    key: &'a Key,
    value: &'a Value,
    parent: ValueDeserializer<'a>,
}

impl<'de> de::EnumAccess<'de> for EnumAccess<'de> {
    type Error = DeError;
    type Variant = ValueDeserializer<'de>;

    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), DeError> {
        let de: de::value::StrDeserializer<'_, DeError> =
            self.key.name.as_str().into_deserializer();
        let variant = seed.deserialize(de).map_err(|e| e.at(&self.key.span))?;
        Ok((variant, self.parent.child(self.value)))
    }
}

impl<'de> de::VariantAccess<'de> for ValueDeserializer<'de> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_any(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_toml;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Conf {
        url: String,
        #[serde(default)]
        retries: u32,
        #[serde(default)]
        flag: Option<bool>,
    }

    #[test]
    fn unknown_field_points_at_key_with_suggestion() {
        let text = "url = \"x\"\nretires = 3\n";
        let v = parse_toml(text).expect("toml");
        let err = from_value::<Conf>(&v).expect_err("unknown");
        assert_eq!(&text[err.span.clone().expect("span")], "retires");
        assert_eq!(err.help.as_deref(), Some("did you mean `retries`?"));
    }

    #[test]
    fn wrong_type_points_at_value() {
        let text = "url = \"x\"\nretries = \"three\"\n";
        let v = parse_toml(text).expect("toml");
        let err = from_value::<Conf>(&v).expect_err("type");
        assert_eq!(&text[err.span.clone().expect("span")], "\"three\"");
        assert!(
            err.message
                .starts_with("expected a whole number, 0 or more"),
            "{}",
            err.message
        );
    }

    #[test]
    fn lenient_accepts_templates_for_scalars() {
        let text = "url = \"x\"\nretries = \"{{ n }}\"\nflag = \"{{ f }}\"\n";
        let v = parse_toml(text).expect("toml");
        assert!(from_value::<Conf>(&v).is_err());
        let conf = from_value_lenient::<Conf>(&v).expect("lenient");
        assert_eq!(
            (conf.url.as_str(), conf.retries, conf.flag),
            ("x", 0, Some(false))
        );
    }

    #[test]
    fn missing_field_points_at_table() {
        let v = parse_toml("retries = 1\n").expect("toml");
        let err = from_value::<Conf>(&v).expect_err("missing");
        assert_eq!(err.message, "missing key `url`");
        assert!(err.span.is_some());
    }
}
