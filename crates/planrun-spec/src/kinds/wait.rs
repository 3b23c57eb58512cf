//! `wait`: a pause (`wait = "2s"`), or a wait until something is ready.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::{ConfigProblem, EvidenceField, Kind, Problems};
use crate::de::is_template;
use crate::duration::{Dur, parse_duration};
use crate::error::{Diagnostic, DiagnosticKind, Diagnostics};
use crate::value::{Key, Value, ValueKind};

/// The `wait` kind.
pub struct Wait;

impl Kind for Wait {
    const KEY: &'static str = "wait";
    const SUMMARY: &'static str = "A pause (`wait = \"2s\"`), or a wait until a TCP address accepts connections or a URL answers: `wait = { tcp = \"127.0.0.1:5432\" }`.";
    const RESULT_FIELDS: &'static [&'static str] = &["duration", "waited", "attempts", "ready"];
    const EVIDENCE: &'static [EvidenceField] = &[];
    type Config = WaitConfig;

    /// `wait = "2s"` is `wait = { duration = "2s" }`.
    fn expand(value: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let ValueKind::Str(text) = &value.kind else {
            return None;
        };
        if !is_template(text)
            && let Err(e) = parse_duration(text)
        {
            diags.push(
                Diagnostic::new(DiagnosticKind::InvalidValue, value.span.clone(), e)
                    .label("this value")
                    .help("write `wait = \"2s\"`"),
            );
        }
        let key = Key {
            name: String::from("duration"),
            span: value.span.clone(),
        };
        Some(Value::new(
            ValueKind::Map(vec![(key, value.clone())]),
            value.span.clone(),
        ))
    }

    fn short_form_schema() -> Option<Json> {
        Some(json!({
            "$ref": "#/$defs/Duration",
            "description": "Pause this long: `wait = \"2s\"`."
        }))
    }

    fn check(config: &WaitConfig, problems: &mut Problems) {
        let n = [
            config.duration.is_some(),
            config.tcp.is_some(),
            config.http.is_some(),
        ]
        .into_iter()
        .filter(|b| *b)
        .count();
        if n != 1 {
            problems.push(ConfigProblem::whole(
                "set exactly one of `duration`, `tcp` or `http` (or write `wait = \"2s\"`)",
            ));
        }
    }
}

/// The configuration of a `wait` step (the table form).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{"required": ["duration"]}, {"required": ["tcp"]}, {"required": ["http"]}]))]
pub struct WaitConfig {
    /// Pause this long.
    pub duration: Option<Dur>,
    /// Wait until a TCP address accepts connections.
    #[schemars(extend("examples" = ["127.0.0.1:5432"]))]
    pub tcp: Option<String>,
    /// Wait until an HTTP URL answers 2xx/3xx.
    #[schemars(extend("examples" = ["{{ base_url }}/health/"]))]
    pub http: Option<String>,
    /// Pause between checks (default 100ms).
    pub interval: Option<Dur>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::StepKind;
    use crate::parse::parse_toml;

    fn lowered(text: &str) -> (Value, Diagnostics) {
        let doc = parse_toml(text).expect("toml");
        let mut diags = Diagnostics::default();
        let config = StepKind::Wait.lower_config(doc.get("wait").expect("wait key"), &mut diags);
        (config.value, diags)
    }

    #[test]
    fn short_form_is_a_duration() {
        let (value, diags) = lowered("wait = \"250ms\"");
        assert!(diags.is_empty());
        let config: WaitConfig = crate::de::from_value(&value).expect("typed");
        assert_eq!(
            config.duration,
            Some(Dur(std::time::Duration::from_millis(250)))
        );
    }

    #[test]
    fn short_form_rejects_nonsense_at_its_span() {
        let text = "wait = \"soon\"";
        let (_, diags) = lowered(text);
        let d = diags.iter().next().expect("a problem");
        assert_eq!(&text[d.span.clone()], "\"soon\"");
        assert_eq!(diags.len(), 1);
        assert!(d.help.is_some());
    }
}
