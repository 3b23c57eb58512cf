//! Lowering the matcher language: a literal, a table or list matched part by
//! part, or a table of operators, each lowered to an [`Operator`] carrying
//! its typed argument (a duration, a compiled pattern or a JSON type read
//! now, or kept as a template to be read once rendered).
//!
//! Every check that needs no result happens here, so that the runner's
//! checking has no invariants of its own to rest on. It must not render a
//! template: `{{ }}` is parsed (to report syntax errors) and kept.

use super::target::parse_json_path;
use super::{boolean, invalid, string, wrong_type};
use crate::de::is_template;
use crate::error::{Diagnostic, DiagnosticKind, Diagnostics, did_you_mean};
use crate::model::{Arg, ArgValue, JsonType, Matcher, Op, OpMatcher, Operator};
use crate::template::Template;
use crate::value::{Key, Value, ValueKind};

/// What is known of the value a matcher is matched against: nothing, a
/// document with known fields (an sse event), or a list of such documents
/// (an sse step's `events`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) enum Doc {
    /// Any value: a response body, a header.
    #[default]
    Unknown,
    /// A document: what one is called in messages, and its fields.
    Fields(&'static str, &'static [&'static str]),
    /// A list of such documents.
    List(&'static str, &'static [&'static str]),
}

impl Doc {
    /// What the matcher of an item of this value is matched against.
    fn item(self) -> Doc {
        match self {
            Doc::List(name, fields) => Doc::Fields(name, fields),
            Doc::Unknown | Doc::Fields(..) => Doc::Unknown,
        }
    }
}

/// Lowers a matcher: a literal, a table of operators, or a nested table/list.
pub fn lower_matcher(value: &Value, diags: &mut Diagnostics) -> Option<Matcher> {
    lower_matcher_of(value, Doc::Unknown, diags)
}

/// Lowers a matcher of a value of which `doc` is known: a key of a table
/// that is a near miss of one of its fields is then an error too.
pub(crate) fn lower_matcher_of(
    value: &Value,
    doc: Doc,
    diags: &mut Diagnostics,
) -> Option<Matcher> {
    match &value.kind {
        ValueKind::Map(entries) if entries.is_empty() => Some(Matcher::Object(Vec::new())),
        ValueKind::Map(entries) => {
            // a document known to have a `type` field (an sse event) is
            // matched on it unless the value is exactly a JSON type's name
            let has_type = matches!(doc, Doc::Fields(_, fields) if fields.contains(&"type"));
            let is_op_key = |k: &Key, v: &Value| {
                is_op_key(k, v)
                    && !(has_type
                        && k.name == "type"
                        && v.as_str()
                            .is_some_and(|s| JsonType::from_name(s).is_none() && !is_template(s)))
            };
            let ops = entries.iter().filter(|(k, v)| is_op_key(k, v)).count();
            if ops == entries.len() {
                let mut out = Vec::new();
                for (k, v) in entries {
                    let op = Op::from_key(&k.name).expect("invariant: counted as operator");
                    if let Some(m) = lower_op(op, k, v, doc, diags) {
                        out.push(m);
                    }
                }
                Some(Matcher::Ops(out, value.span.clone()))
            } else if ops == 0 {
                let mut out = Vec::new();
                let mut misspelt = false;
                for (k, v) in entries {
                    if let Some(d) = misspelt_key(k, doc).or_else(|| bad_path_key(k)) {
                        diags.push(d);
                        misspelt = true;
                        continue;
                    }
                    if let Some(m) = lower_matcher(v, diags) {
                        out.push((k.clone(), m));
                    }
                }
                (!misspelt).then_some(Matcher::Object(out))
            } else {
                let (op_key, _) = entries
                    .iter()
                    .find(|(k, v)| is_op_key(k, v))
                    .expect("invariant: some operator");
                let (field, _) = entries
                    .iter()
                    .find(|(k, v)| !is_op_key(k, v))
                    .expect("invariant: some field");
                let help = did_you_mean(&field.name, Op::ALL.iter().map(|(k, _)| *k))
                    .unwrap_or_else(|| {
                        format!(
                            "to match a field named `{}`, write it as a JSONPath: `\"$.{}\"`; to compare with a table that has such keys, write `{{ eq = {{ … }} }}`",
                            op_key.name, op_key.name
                        )
                    });
                diags.push(
                    invalid(
                        &field.span,
                        format!(
                            "`{}` is not an operator, but `{}` is",
                            field.name, op_key.name
                        ),
                    )
                    .label("not an operator")
                    .related(op_key.span.clone(), "operator")
                    .help(help),
                );
                None
            }
        }
        ValueKind::Seq(items) => {
            let inner: Vec<_> = items
                .iter()
                .filter_map(|i| lower_matcher_of(i, doc.item(), diags))
                .collect();
            Some(Matcher::Array(inner, value.span.clone()))
        }
        _ => {
            check_templates(value, diags);
            Some(Matcher::Literal(value.clone()))
        }
    }
}

/// Whether a key of a matcher table is an operator. `type` is one only when
/// its value names a JSON type: `{ type = "chat_message" }` matches a field
/// called `type`, as chat and event messages have.
pub(super) fn is_op_key(key: &Key, value: &Value) -> bool {
    match Op::from_key(&key.name) {
        Some(Op::Type) => match &value.kind {
            ValueKind::Str(s) => {
                // names of types in other languages, and near misses, are
                // kept as the operator so that they get a helpful error
                const OTHER_NAMES: &[&str] = &[
                    "list", "dict", "map", "table", "int", "float", "bool", "str",
                ];
                JsonType::from_name(s).is_some()
                    || is_template(s)
                    || did_you_mean(s, JsonType::names().chain(OTHER_NAMES.iter().copied()))
                        .is_some()
            }
            _ => false,
        },
        Some(_) => true,
        None => false,
    }
}

/// A key of a table matched part by part that is surely a typo: a near
/// miss of an operator, or of a field of the known document. A key written
/// as a JSONPath (`"$.starts_wth"`) is taken as written.
fn misspelt_key(key: &Key, doc: Doc) -> Option<Diagnostic> {
    if key.name.starts_with('$') {
        return None;
    }
    let escape = format!(
        "a field really spelt so is matched with the JSONPath key `\"$.{}\"`",
        key.name
    );
    if let Doc::Fields(_, fields) = doc
        && fields.contains(&key.name.as_str())
    {
        return None;
    }
    if let Some(op) = misspelt_operator(&key.name) {
        return Some(
            Diagnostic::new(
                DiagnosticKind::UnknownKey,
                key.span.clone(),
                format!("`{}` is not an operator", key.name),
            )
            .label("not an operator")
            .help(format!("did you mean `{op}`? {escape}")),
        );
    }
    if let Doc::Fields(name, fields) = doc
        && let Some(hint) = did_you_mean(&key.name, fields.iter().copied())
    {
        return Some(
            Diagnostic::new(
                DiagnosticKind::UnknownKey,
                key.span.clone(),
                format!("{name} has no field `{}`", key.name),
            )
            .label("not a field")
            .help(format!(
                "{hint} {name} has {}",
                crate::error::code_list(fields)
            )),
        );
    }
    None
}

/// A key written as a JSONPath (`"$.a[0]"`) that does not parse: found
/// now rather than when the matcher is first checked.
fn bad_path_key(key: &Key) -> Option<Diagnostic> {
    if !key.name.starts_with('$') {
        return None;
    }
    let e = parse_json_path(&key.name).err()?;
    Some(
        invalid(&key.span, format!("invalid path `{}`: {e}", key.name))
            .label("not a JSONPath")
            .help(
                "a key starting with `$` is a JSONPath into the value, such as `\"$.items[0].id\"`",
            ),
    )
}

/// The operator `key` is a near miss of: the same but for case, a letter
/// left out, doubled or swapped (two for long operators), or a comparison
/// spelt as in other tools. A letter replaced by another is not counted:
/// `included` or `matched` are as likely fields as typos.
pub(super) fn misspelt_operator(key: &str) -> Option<&'static str> {
    const BORROWED: &[(&str, &str)] = &[("lte", "le"), ("gte", "ge"), ("neq", "ne")];
    if let Some((_, op)) = BORROWED.iter().find(|(k, _)| *k == key) {
        return Some(op);
    }
    let lower = key.to_ascii_lowercase();
    Op::ALL
        .iter()
        .map(|(op, _)| *op)
        // short operators are one letter away from common field names
        // (`note`, `lat`, `types`); `type` is a field of many documents
        .filter(|op| op.len() >= 4 && *op != "type")
        .find(|op| {
            if lower == *op {
                return true;
            }
            // every key of every matcher comes here: the lengths rule out
            // most operators before an edit distance is computed
            let limit = if op.len() >= 10 { 2 } else { 1 };
            let apart = lower.len().abs_diff(op.len());
            if apart > limit {
                return false;
            }
            let edits = strsim::levenshtein(&lower, op);
            (edits == apart && edits <= limit)
                // two letters swapped (the length kept): one edit for
                // Damerau, two for Levenshtein
                || (apart == 0 && edits == 2 && strsim::damerau_levenshtein(&lower, op) == 1)
        })
}

fn check_templates(value: &Value, diags: &mut Diagnostics) {
    value.visit_strings(&mut |s, span| {
        if is_template(s)
            && let Err(d) = Template::parse(s, span.clone())
        {
            diags.push(d);
        }
    });
}

fn lower_op(
    op: Op,
    key: &Key,
    arg: &Value,
    doc: Doc,
    diags: &mut Diagnostics,
) -> Option<OpMatcher> {
    let operator = match op {
        Op::Len => Operator::Len(Box::new(lower_matcher(arg, diags)?)),
        Op::All => Operator::All(Box::new(lower_matcher_of(arg, doc.item(), diags)?)),
        Op::Any => Operator::Any(Box::new(lower_matcher_of(arg, doc.item(), diags)?)),
        Op::Not => Operator::Not(Box::new(lower_matcher_of(arg, doc, diags)?)),
        Op::InOrder | Op::Includes => {
            let Some(items) = arg.as_seq().filter(|items| !items.is_empty()) else {
                diags.push(wrong_type(
                    arg,
                    &format!(
                        "`{}` must be a list of matchers, one per item looked for",
                        op.key()
                    ),
                ));
                return None;
            };
            let wanted = items
                .iter()
                .filter_map(|i| lower_matcher_of(i, doc.item(), diags))
                .collect();
            if op == Op::InOrder {
                Operator::InOrder(wanted)
            } else {
                Operator::Includes(wanted)
            }
        }
        Op::FirstWithin | Op::MaxGap => {
            let s = string(arg, &format!("`{}`", op.key()), diags)?;
            let limit = typed_arg(arg, &s).map_err(|e| {
                diags.push(invalid(&arg.span, e).help(format!(
                    "write a duration with a unit, e.g. `{} = \"1s\"`",
                    op.key()
                )));
            });
            if op == Op::FirstWithin {
                Operator::FirstWithin(limit.ok()?)
            } else {
                Operator::MaxGap(limit.ok()?)
            }
        }
        Op::Incremental => Operator::Incremental(boolean(arg, "`incremental`", diags)?),
        Op::Matches => {
            let s = string(arg, "`matches`", diags)?;
            let pattern = typed_arg(arg, &s).map_err(|e| diags.push(invalid(&arg.span, e)));
            Operator::Matches(pattern.ok()?)
        }
        Op::StartsWith | Op::EndsWith => {
            string(arg, &format!("`{}`", op.key()), diags)?;
            if op == Op::StartsWith {
                Operator::StartsWith(arg.clone())
            } else {
                Operator::EndsWith(arg.clone())
            }
        }
        Op::Exists => Operator::Exists(boolean(arg, "`exists`", diags)?),
        Op::Type => {
            let s = string(arg, "`type`", diags)?;
            let ty = typed_arg(arg, &s).map_err(|e| {
                diags.push(invalid(&arg.span, e).help(
                    did_you_mean(&s, JsonType::names()).unwrap_or_else(|| {
                        String::from("use string, number, integer, boolean, array, object or null")
                    }),
                ));
            });
            Operator::Type(ty.ok()?)
        }
        Op::OneOf => {
            if arg.as_seq().is_none() {
                diags.push(wrong_type(arg, "`one_of` must be a list"));
                return None;
            }
            Operator::OneOf(arg.clone())
        }
        Op::Eq => Operator::Eq(arg.clone()),
        Op::Ne => Operator::Ne(arg.clone()),
        Op::Lt => Operator::Lt(arg.clone()),
        Op::Le => Operator::Le(arg.clone()),
        Op::Gt => Operator::Gt(arg.clone()),
        Op::Ge => Operator::Ge(arg.clone()),
        Op::Contains => Operator::Contains(arg.clone()),
    };
    // the whole argument, nested matchers included, as lowering always has
    check_templates(arg, diags);
    Some(OpMatcher {
        op: operator,
        span: key.span.start..arg.span.end.max(key.span.end),
    })
}

/// An argument written as `text`: read now, or kept whole when it holds a
/// template. `Err` says why the text is not a `T`.
fn typed_arg<T: ArgValue>(arg: &Value, text: &str) -> Result<Arg<T>, String> {
    if is_template(text) {
        Ok(Arg::Template(arg.clone()))
    } else {
        T::from_text(text).map(Arg::Known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn operators_carry_typed_arguments() {
        let v = crate::parse::parse_toml(
            "m = { type = \"string\", matches = \"^a\", first_within = \"1s\", max_gap = \"{{ gap }}\", exists = true, in_order = [1, 2] }",
        )
        .expect("toml");
        let mut diags = Diagnostics::default();
        let m = lower_matcher(v.get("m").expect("m"), &mut diags).expect("matcher");
        assert!(diags.is_empty(), "{diags:?}");
        let Matcher::Ops(ops, _) = &m else {
            panic!("an operator table: {m:?}")
        };
        assert!(matches!(
            ops[0].op,
            Operator::Type(Arg::Known(JsonType::String))
        ));
        assert!(matches!(&ops[1].op, Operator::Matches(Arg::Known(re)) if re.as_str() == "^a"));
        assert!(
            matches!(ops[2].op, Operator::FirstWithin(Arg::Known(d)) if d == Duration::from_secs(1))
        );
        assert!(matches!(ops[3].op, Operator::MaxGap(Arg::Template(_))));
        assert!(matches!(ops[4].op, Operator::Exists(true)));
        assert!(matches!(&ops[5].op, Operator::InOrder(items) if items.len() == 2));
    }

    fn problems(text: &str, doc: Doc) -> Vec<String> {
        let v = crate::parse::parse_toml(&format!("m = {text}")).expect("toml");
        let mut diags = Diagnostics::default();
        lower_matcher_of(v.get("m").expect("m"), doc, &mut diags);
        diags
            .iter()
            .map(|d| format!("{} ({})", d.message, d.help.as_deref().unwrap_or("")))
            .collect()
    }

    #[test]
    fn near_misses_of_operators_and_fields_are_errors() {
        let event = Doc::Fields("an sse event", crate::kinds::EVENT_FIELDS);
        for (text, doc, message) in [
            (
                "{ starts_wth = \"a\" }",
                Doc::Unknown,
                "`starts_wth` is not an operator (did you mean `starts_with`?",
            ),
            (
                "{ Contains = \"a\" }",
                Doc::Unknown,
                "`Contains` is not an operator (did you mean `contains`?",
            ),
            (
                "{ contians = \"a\" }",
                Doc::Unknown,
                "`contians` is not an operator (did you mean `contains`?",
            ),
            (
                "{ startwith = \"a\" }",
                Doc::Unknown,
                "`startwith` is not an operator (did you mean `starts_with`?",
            ),
            (
                "{ lte = 3 }",
                Doc::Unknown,
                "`lte` is not an operator (did you mean `le`?",
            ),
            (
                "{ typ = \"done\" }",
                event,
                "an sse event has no field `typ` (did you mean `type`?",
            ),
            (
                "{ not = { dat = \"x\" } }",
                event,
                "an sse event has no field `dat` (did you mean `data`?",
            ),
        ] {
            let found = problems(text, doc);
            assert!(
                found.len() == 1 && found[0].starts_with(message),
                "{text}: {found:?}"
            );
        }
        // fields one letter from an operator, a JSONPath key, a field of
        // the document, any key of a document not known: as written
        for (text, doc) in [
            (
                "{ included = [], matched = 1, note = \"\", lat = 1.5, types = [] }",
                Doc::Unknown,
            ),
            ("{ \"$.starts_wth\" = \"a\", \"$.typ\" = 1 }", event),
            ("{ type = \"done\", data = \"x\", id = \"1\" }", event),
            ("{ type = \"start\" }", event),
            (
                "{ typ = \"done\", container = 1, status = 2 }",
                Doc::Unknown,
            ),
        ] {
            assert_eq!(problems(text, doc), Vec::<String>::new(), "{text}");
        }
    }

    #[test]
    fn operator_arguments_of_the_wrong_kind_are_diagnostics() {
        for (text, message) in [
            ("{ matches = \"(\" }", "invalid regular expression"),
            ("{ first_within = \"5\" }", "has no unit"),
            ("{ type = \"strin\" }", "unknown type `strin`"),
            ("{ in_order = [] }", "`in_order` must be a list of matchers"),
            ("{ exists = \"yes\" }", "`exists` must be `true` or `false`"),
        ] {
            let v = crate::parse::parse_toml(&format!("m = {text}")).expect("toml");
            let mut diags = Diagnostics::default();
            assert!(
                lower_matcher(v.get("m").expect("m"), &mut diags)
                    .is_some_and(|m| matches!(m, Matcher::Ops(ops, _) if ops.is_empty()))
            );
            let found: Vec<_> = diags.iter().map(|d| d.message.clone()).collect();
            assert!(
                found.len() == 1 && found[0].contains(message),
                "{text}: {found:?}"
            );
        }
    }

    #[test]
    fn a_json_path_key_is_checked_when_lowered() {
        let found = problems("{ \"$.a[\" = 1, b = 2 }", Doc::Unknown);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("invalid path `$.a[`"), "{found:?}");
        let deep = format!("{{ \"$[?{}@{}]\" = 1 }}", "@[?".repeat(30), "]".repeat(30));
        let found = problems(&deep, Doc::Unknown);
        assert!(found[0].contains("nest more than 10 deep"), "{found:?}");
        assert!(problems("{ \"$.a[0]\" = 1 }", Doc::Unknown).is_empty());
    }
}
