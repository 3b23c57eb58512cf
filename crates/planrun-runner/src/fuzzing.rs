//! Entry points for fuzzing and property tests, not part of the API: the
//! expectation language from text to a verdict. The cargo-fuzz targets in
//! `fuzz/` and the property tests below call the same function.
//!
//! Built for this crate's tests and with the `fuzzing` feature.

use std::sync::Arc;

use planrun_spec::error::Diagnostics;
use planrun_spec::fuzzing::check_diagnostics;
use planrun_spec::model::Target;
use planrun_spec::source::{Format, SourceFile};
use planrun_spec::{lower_matcher, parse_json_path, parse_source, parse_target};
use serde_json::Value as Json;

use crate::expect::test_matcher;

/// Splits the parts of an input: [`matcher`] reads up to three.
pub const SEPARATOR: u8 = 0xFF;

/// Runs one input through the expectation language. The first byte picks
/// the format (odd: YAML); the rest holds up to three parts split by
/// [`SEPARATOR`], a byte no UTF-8 text holds:
///
/// 1. a document whose `m` (or the whole document) is a matcher: lowered
///    with [`lower_matcher`], then tested against the value;
/// 2. the value: JSON, or the text as a JSON string when it is not JSON;
/// 3. a target (`json.a[0]`, `$..x`, `{{ expr }}`): parsed with
///    [`parse_target`] and as a JSONPath with [`parse_json_path`], and a
///    path that parses is queried on the value.
pub fn matcher(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let format = if first & 1 == 1 {
        Format::Yaml
    } else {
        Format::Toml
    };
    let mut parts = rest.splitn(3, |b| *b == SEPARATOR);
    let matcher_text = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let value_text = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let target_text = String::from_utf8_lossy(parts.next().unwrap_or_default());

    let value = serde_json::from_str::<Json>(&value_text)
        .unwrap_or_else(|_| Json::String(value_text.clone().into_owned()));

    let source = Arc::new(SourceFile::new(
        match format {
            Format::Toml => "matcher.toml",
            Format::Yaml => "matcher.yaml",
        },
        matcher_text.as_ref(),
        format,
    ));
    match parse_source(&source) {
        Ok(doc) => {
            let m = doc.get("m").unwrap_or(&doc);
            let mut diags = Diagnostics::default();
            let lowered = lower_matcher(m, &mut diags);
            diags.attach(&source);
            check_diagnostics(&diags, &source);
            if let Some(lowered) = lowered {
                let verdict = test_matcher(&lowered, &value);
                assert_eq!(
                    verdict,
                    test_matcher(&lowered, &value),
                    "a matcher gives one verdict"
                );
            }
        }
        Err(d) => check_diagnostics(&Diagnostics(vec![d.with_source(&source)]), &source),
    }

    let span = 0..target_text.len();
    if let Ok(Target::Path { path, .. }) = parse_target(&target_text, &span) {
        let _ = path.query(&value).all();
    }
    if let Ok(path) = parse_json_path(&target_text) {
        let _ = path.query(&value).all();
    }
}

#[cfg(test)]
mod tests {
    //! The fuzz target as property tests, for a bounded number of cases:
    //! matchers and values built from the words of the language, targets
    //! built from the pieces of paths, and the inputs that once broke the
    //! target (`fuzz/regressions/matcher/`).

    use std::fmt::Write as _;
    use std::path::Path;

    use proptest::prelude::*;
    use serde_json::{Map, Number};

    use super::*;

    const KEYS: &[&str] = &[
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "contains",
        "matches",
        "starts_with",
        "ends_with",
        "exists",
        "len",
        "type",
        "one_of",
        "all",
        "any",
        "not",
        "first_within",
        "max_gap",
        "incremental",
        "in_order",
        "includes",
        "a",
        "id",
        "items",
        "json",
        "data",
        "$.a",
        "$..id",
        "$[0]",
        "$[?@.a]",
        "exsts",
        "conatins",
    ];

    const WORDS: &[&str] = &[
        "", "a", "string", "number", "integer", "boolean", "array", "object", "null", "1s",
        "250ms", "10x", "^a+$", "(a|b)*c", "[", "{{ x }}", "é", "\u{0}", "-1", "1e999", "NaN",
    ];

    /// A JSON tree of the words above: as a matcher, and as a value.
    fn json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<i64>().prop_map(Json::from),
            (-3i64..40).prop_map(Json::from),
            any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Json::Null, Json::Number)),
            prop::sample::select(WORDS).prop_map(Json::from),
        ];
        leaf.prop_recursive(6, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
                proptest::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(
                    |entries| {
                        Json::Object(
                            entries
                                .into_iter()
                                .map(|(k, v)| (k.to_string(), v))
                                .collect::<Map<_, _>>(),
                        )
                    }
                ),
            ]
        })
    }

    /// A target: pieces of dotted paths, JSONPaths and expressions.
    fn target() -> impl Strategy<Value = String> {
        const PIECES: &[&str] = &[
            "json",
            ".",
            "a",
            "[0]",
            "[-1]",
            "[*]",
            "$",
            "..",
            "['x']",
            "[?@.a == 1]",
            "[?@[?@]]",
            "(",
            ")",
            "length(@)",
            "{{ ",
            " }}",
            "status",
            "header.",
            "x-id",
            "[1:3:2]",
            " ",
        ];
        proptest::collection::vec(prop::sample::select(PIECES), 0..12).prop_map(|p| p.concat())
    }

    fn input(yaml: bool, matcher: &Json, value: &Json, target: &str) -> Vec<u8> {
        let mut data = vec![u8::from(yaml)];
        if yaml {
            data.extend(format!("m: {matcher}").bytes());
        } else {
            // a JSON object is not a TOML inline table: each key of the
            // value becomes a dotted key of `m`
            let mut text = String::new();
            match matcher {
                Json::Object(map) => {
                    for (k, v) in map {
                        let _ = writeln!(text, "m.{} = {}", Json::from(k.as_str()), toml_like(v));
                    }
                }
                other => {
                    let _ = writeln!(text, "m = {}", toml_like(other));
                }
            }
            data.extend(text.bytes());
        }
        data.push(SEPARATOR);
        data.extend(value.to_string().bytes());
        data.push(SEPARATOR);
        data.extend(target.bytes());
        data
    }

    /// JSON written as TOML: inline tables take `=`, and TOML has no null.
    fn toml_like(v: &Json) -> String {
        match v {
            Json::Null => String::from("\"null\""),
            Json::Array(items) => format!(
                "[{}]",
                items.iter().map(toml_like).collect::<Vec<_>>().join(", ")
            ),
            Json::Object(map) => format!(
                "{{ {} }}",
                map.iter()
                    .map(|(k, v)| format!("{} = {}", Json::from(k.as_str()), toml_like(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => other.to_string(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 1024,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn matchers_give_a_verdict_and_targets_parse_or_say_why(
            yaml in any::<bool>(), m in json(), value in json(), t in target(),
        ) {
            matcher(&input(yaml, &m, &value, &t));
        }

        #[test]
        fn any_bytes_are_a_matcher_or_a_diagnostic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            matcher(&data);
        }
    }

    #[test]
    fn the_inputs_that_once_broke_the_matcher_target() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/matcher");
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .expect("fuzz/regressions/matcher")
            .filter_map(|e| Some(e.ok()?.path()))
            .collect();
        paths.sort();
        assert!(!paths.is_empty(), "inputs in {}", dir.display());
        for path in paths {
            eprintln!("{}", path.display());
            matcher(&std::fs::read(&path).expect("readable"));
        }
    }
}
