//! The JSON Schema of spec files, for editors and CI.
//!
//! Step configurations come from their types (schemars); the layout around
//! them (metadata, vars, steps, expectations) is declared here to match the
//! lowering in [`crate::lower`].

use schemars::SchemaGenerator;
use serde_json::{Value as Json, json};

use crate::model::{Op, Retry, StepKind};

/// The schema of a spec file (TOML or YAML read as JSON).
pub fn spec_schema() -> Json {
    let mut generator = SchemaGenerator::default();
    let kinds: Vec<(&str, Json)> = StepKind::ALL
        .iter()
        .map(|k| (k.key(), k.schema(&mut generator)))
        .collect();
    let mut defs = serde_json::Map::new();
    for (name, schema) in generator.definitions() {
        defs.insert(name.clone(), schema.clone());
    }
    let ops: serde_json::Map<String, Json> = Op::ALL
        .iter()
        .map(|(k, _)| ((*k).to_string(), json!({})))
        .collect();
    defs.insert(
        "Matcher".into(),
        json!({
            "description": "A literal (equality; a table matches the keys it names, and a key starting with `$` is a JSONPath into the value), or a table of operators: eq, ne, lt, le, gt, ge, contains, matches, starts_with, ends_with, exists, len, type, one_of, all, any, not; over streams of events or messages: first_within, max_gap, incremental, in_order, includes.",
            "anyOf": [
                {"type": ["string", "number", "integer", "boolean", "null", "array"]},
                {"type": "object", "properties": ops},
                {"type": "object"}
            ]
        }),
    );
    defs.insert(
        "Expectations".into(),
        json!({
            "description": "Checks on the step's result document: `status = 200`, `header.content-type = { starts_with = \"text/\" }`, `json.user.id = 7`, `duration = { lt = \"500ms\" }`, `that = \"{{ result.status == 200 }}\"`.",
            "type": "object",
            "properties": {
                "that": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                "header": {"type": "object", "additionalProperties": {"$ref": "#/$defs/Matcher"}},
                "headers": {"type": "object", "additionalProperties": {"$ref": "#/$defs/Matcher"}},
                "json": {"anyOf": [{"type": "object", "additionalProperties": {"$ref": "#/$defs/Matcher"}}, {"$ref": "#/$defs/Matcher"}]}
            },
            "additionalProperties": {"$ref": "#/$defs/Matcher"}
        }),
    );
    defs.insert(
        "Duration".into(),
        json!({"type": "string", "description": "A duration with a unit: `250ms`, `2s`, `1m30s`.", "examples": ["500ms", "2s"]}),
    );
    defs.insert(
        "Var".into(),
        json!({
            "description": "A literal value, or `{ value, env, secret }`.",
            "anyOf": [
                {"type": ["string", "number", "integer", "boolean", "array"]},
                {"type": "object", "properties": {
                    "value": {}, "env": {"type": "string"}, "secret": {"type": "boolean"}, "description": {"type": "string"}
                }},
                {"type": "object"}
            ]
        }),
    );
    defs.insert(
        "Defaults".into(),
        json!({"type": "object", "additionalProperties": false, "properties": {
            "timeout": {"$ref": "#/$defs/Duration"},
            "spec_timeout": {"$ref": "#/$defs/Duration"},
            "max_body": {"type": ["string", "integer"]}
        }}),
    );
    let one_of: Vec<Json> = StepKind::keys().map(|k| json!({"required": [k]})).collect();
    let mut step = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]*$"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "needs": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "expect": {"$ref": "#/$defs/Expectations"},
            "should": {"$ref": "#/$defs/Expectations"},
            "capture": {"type": "object", "additionalProperties": {"anyOf": [
                {"type": "string"},
                {"type": "object", "additionalProperties": false, "required": ["from"], "properties": {
                    "from": {"type": "string"}, "regex": {"type": "string"}, "secret": {"type": "boolean"}
                }}
            ]}},
            "retry": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": Retry::MAX_ATTEMPTS}, {"type": "object", "additionalProperties": false, "properties": {
                "attempts": {"type": "integer", "minimum": 1, "maximum": Retry::MAX_ATTEMPTS},
                "interval": {"$ref": "#/$defs/Duration"},
                "backoff": {"type": "number", "minimum": 1, "maximum": Retry::MAX_BACKOFF},
                "max_interval": {"$ref": "#/$defs/Duration"},
                "timeout": {"$ref": "#/$defs/Duration"}
            }}]},
            "timeout": {"$ref": "#/$defs/Duration"},
            "if": {"type": ["string", "boolean"]},
            "always": {"type": "boolean"}
        },
        "oneOf": one_of
    });
    if let Some(properties) = step["properties"].as_object_mut() {
        for (key, schema) in kinds {
            properties.insert(key.to_string(), schema);
        }
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://planrun.dev/schema/planrun.schema.json",
        "title": "planrun spec",
        "description": "A test plan that planrun runs: metadata, variables and steps.",
        "type": "object",
        "additionalProperties": false,
        "required": ["steps"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "objective": {"type": "string"},
            "description": {"type": "string"},
            "priority": {"enum": ["high", "medium", "low", "HIGH", "MEDIUM", "LOW"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "phase": {"type": "string"},
            "vars": {"type": "object", "additionalProperties": {"$ref": "#/$defs/Var"}},
            "defaults": {"$ref": "#/$defs/Defaults"},
            "steps": {"type": "array", "minItems": 1, "items": step}
        },
        "$defs": defs
    })
}
