//! The JSON Schema of spec files, for editors and CI.
//!
//! Step configurations come from their types (schemars; doc comments become
//! descriptions); the layout around them (metadata, vars, steps,
//! expectations, matchers) is declared here to match the lowering in
//! [`crate::lower`]. The schema rejects mistakes of shape: an unknown key, a
//! value of the wrong type, no kind or two kinds in a step, an expectation on
//! a field the kind's result lacks. Rules that need the whole plan (cycles,
//! unknown needs, undefined variables) are left to planning; the schema never
//! rejects a spec that planrun accepts.

use schemars::SchemaGenerator;
use serde_json::{Map, Value as Json, json};

use crate::duration::{ByteSize, Dur};
use crate::model::{Op, Repeat, Retry, StepKind};

/// The schema of a spec file (TOML or YAML read as JSON).
pub fn spec_schema() -> Json {
    let mut generator = SchemaGenerator::default();
    let duration = to_json(generator.subschema_for::<Dur>());
    let size = to_json(generator.subschema_for::<ByteSize>());
    let kinds: Vec<(StepKind, Json)> = StepKind::ALL
        .iter()
        .map(|k| (*k, k.schema(&mut generator)))
        .collect();
    let mut defs = Map::new();
    for (name, schema) in generator.definitions() {
        let mut schema = schema.clone();
        if schema.get("type") == Some(&json!("object")) {
            lenient_scalars(&mut schema);
        }
        unwrap_descriptions(&mut schema);
        defs.insert(name.clone(), schema);
    }
    defs.insert("Template".into(), template());
    defs.insert("Matcher".into(), matcher());
    defs.insert("Expectations".into(), expectations());
    defs.insert("Capture".into(), capture());
    defs.insert("Retry".into(), retry(&duration));
    defs.insert("Repeat".into(), repeat());
    defs.insert("Var".into(), var());
    defs.insert("Defaults".into(), defaults(&duration, &size));
    defs.insert("Step".into(), step(kinds, &duration));
    defs.insert("DirConfig".into(), dir_config());
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://planrun.dev/schema/planrun.schema.json",
        "title": "planrun spec",
        "description": "A test plan that planrun runs: metadata, variables and steps.",
        "type": "object",
        "additionalProperties": false,
        "anyOf": [{"required": ["steps"]}, {"required": ["include"]}],
        "properties": {
            "include": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string"}}
                ],
                "description": "Files of shared steps (and `vars`), relative to this file: their steps run before this file's own, their captures can be read here. An included file holds `steps`, and may hold `vars` and `include`; name it or its directory with a leading `_` so that a directory run does not take it for a spec.",
                "examples": [["_shared/login.toml"]]
            },
            "id": {
                "type": ["string", "number"],
                "description": "The test case id, shown in reports (default: the file name).",
                "examples": ["TC-003"]
            },
            "name": {
                "type": ["string", "number"],
                "description": "A human title for reports.",
                "examples": ["WSGI health check"]
            },
            "objective": {
                "type": ["string", "number"],
                "description": "What the test case shows, for reports."
            },
            "description": {
                "type": ["string", "number"],
                "description": "Another name for `objective`."
            },
            "priority": {
                "type": "string",
                "pattern": "^([Hh][Ii][Gg][Hh]|[Mm][Ee][Dd][Ii][Uu][Mm]|[Ll][Oo][Ww])$",
                "description": "`high`, `medium` or `low`, in any case (default `medium`).",
                "examples": ["high", "medium", "low"]
            },
            "phase": {
                "type": ["string", "number"],
                "description": "Free text, shown in reports.",
                "examples": ["infrastructure"]
            },
            "tags": {
                "anyOf": [
                    {"type": ["string", "number"]},
                    {"type": "array", "items": {"type": ["string", "number"]}}
                ],
                "description": "Tags for `--tag` filters.",
                "examples": [["smoke", "health"]]
            },
            "vars": vars("Variables, read by templates as `{{ name }}`; they override those of `planrun.toml` and are overridden by `--var NAME=VALUE`."),
            "defaults": {"$ref": "#/$defs/Defaults"},
            "steps": {
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/$defs/Step"},
                "description": "The steps. Each waits for the one before it unless `needs` says otherwise; steps whose needs are met run concurrently."
            }
        },
        "$defs": defs
    })
}

/// The schema of a directory's `planrun.toml`: the spec schema's
/// definitions, with `DirConfig` at the root.
pub fn dir_config_schema() -> Json {
    let spec = spec_schema();
    json!({
        "$schema": spec["$schema"],
        "title": "planrun directory settings",
        "$ref": "#/$defs/DirConfig",
        "$defs": spec["$defs"]
    })
}

fn dir_config() -> Json {
    json!({
        "type": "object",
        "description": "A directory's `planrun.toml`: variables, defaults, setup and teardown for every spec in the directory and below (the nearest one wins).",
        "additionalProperties": false,
        "properties": {
            "vars": vars("Variables for every spec below; a spec's own `vars` override them."),
            "defaults": {"$ref": "#/$defs/Defaults"},
            "setup": dir_spec("A spec that runs before every other spec of the directory and below (those this `planrun.toml` applies to); when it does not pass, they are skipped. Relative to this file; start its name with `_` so that a directory run does not take it for a spec.", "_setup.toml"),
            "teardown": dir_spec("A spec that runs after every other spec of the directory and below, however they ended (after a failed setup and after Ctrl-C too). Relative to this file; start its name with `_` so that a directory run does not take it for a spec.", "_teardown.toml")
        }
    })
}

/// `setup` or `teardown` in `planrun.toml`: the path of a spec file.
fn dir_spec(description: &str, example: &str) -> Json {
    json!({
        "type": "string",
        "pattern": "\\.(toml|yaml|yml)$",
        "description": description,
        "examples": [example]
    })
}

fn vars(description: &str) -> Json {
    json!({
        "type": "object",
        "propertyNames": name_pattern(),
        "additionalProperties": {"$ref": "#/$defs/Var"},
        "description": description,
        "examples": [{"base_url": "http://127.0.0.1:8080"}]
    })
}

fn to_json(schema: schemars::Schema) -> Json {
    serde_json::to_value(schema).unwrap_or(Json::Bool(true))
}

/// The names of variables, captures and step ids.
fn name_pattern() -> Json {
    json!({"pattern": "^[A-Za-z_][A-Za-z0-9_-]*$"})
}

/// A step: its kind, and the keys around it.
fn step(kinds: Vec<(StepKind, Json)>, duration: &Json) -> Json {
    let mut properties = json!({
        "id": {
            "type": "string",
            "pattern": "^[A-Za-z_][A-Za-z0-9_-]*$",
            "description": "The step's name, used by `needs` and read as `{{ id.capture }}` (default `step-N`).",
            "examples": ["login"]
        },
        "name": {
            "type": ["string", "number"],
            "description": "A human title for reports."
        },
        "description": {
            "type": ["string", "number"],
            "description": "Another name for `name`."
        },
        "needs": {
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
            "description": "Steps to wait for (default: the previous step); `needs = []` starts at once. A step whose need failed is skipped.",
            "examples": [["login"], []]
        },
        "expect": {
            "$ref": "#/$defs/Expectations",
            "description": "Blocking checks on the result: a failure fails the step and the spec.",
            "examples": [{"status": 200, "json": {"status": "healthy"}}]
        },
        "should": {
            "$ref": "#/$defs/Expectations",
            "description": "Non-blocking checks on the result: a failure is a warning, the exit code stays 0.",
            "examples": [{"duration": {"lt": "300ms"}}]
        },
        "capture": {
            "type": "object",
            "propertyNames": name_pattern(),
            "additionalProperties": {"$ref": "#/$defs/Capture"},
            "description": "Values kept for later steps, which read them as `{{ step_id.name }}`.",
            "examples": [{"token": "json.token"}]
        },
        "retry": {"$ref": "#/$defs/Retry"},
        "repeat": {"$ref": "#/$defs/Repeat"},
        "timeout": with_description(duration, "Time limit of one attempt (default `defaults.timeout`, else 30s)."),
        "if": {
            "type": ["string", "boolean"],
            "description": "An expression; when false the step is skipped.",
            "examples": ["env.CI == 'true'"]
        },
        "always": {
            "type": "boolean",
            "description": "Teardown: run even after failures and after Ctrl-C.",
            "default": false
        }
    });
    let mut one_kind = Vec::new();
    let mut results = Vec::new();
    for (kind, schema) in kinds {
        properties[kind.key()] = schema;
        one_kind.push(json!({"required": [kind.key()]}));
        let names = json!({"propertyNames": result_keys(kind)});
        results.push(json!({
            "if": {"required": [kind.key()]},
            "then": {"properties": {"expect": names, "should": names}}
        }));
    }
    let keys: Vec<&str> = StepKind::keys().collect();
    json!({
        "type": "object",
        "description": format!("A step: exactly one kind key ({}) and the keys around it.", keys.join(", ")),
        "additionalProperties": false,
        "properties": properties,
        "oneOf": one_kind,
        "allOf": results
    })
}

/// The keys an expectation of `kind` may have: `that`, `header`, a JSONPath,
/// or a path starting with a field of the kind's result.
fn result_keys(kind: StepKind) -> Json {
    let fields: Vec<&str> = kind
        .result_fields()
        .iter()
        .copied()
        .chain(["header"])
        .collect();
    json!({
        "pattern": format!("^(\\$.*|that|headers|json|({})([.\\[].*)?)$", fields.join("|")),
        "description": format!(
            "A field of the `{}` result: {}.",
            kind.key(),
            fields.join(", ")
        )
    })
}

fn with_description(schema: &Json, description: &str) -> Json {
    let mut schema = schema.clone();
    schema["description"] = json!(description);
    schema
}

/// A template string: rendered before the step runs.
fn template() -> Json {
    json!({
        "type": "string",
        "pattern": "\\{\\{|\\{%",
        "description": "A template, rendered before the step runs: `{{ count + 1 }}`.",
        "examples": ["{{ count }}"]
    })
}

fn expectations() -> Json {
    json!({
        "type": "object",
        "description": "Checks on the step's result document, key = matcher: `status = 200`, `header.content-type = { starts_with = \"text/\" }`, `json.user.id = 7`, `duration = { lt = \"500ms\" }`.",
        "properties": {
            "that": {
                "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                "description": "Expressions that must be true: `that = \"result.status in [200, 201]\"`.",
                "examples": ["{{ result.json.count == result.json.items | length }}"]
            },
            "header": {
                "type": "object",
                "additionalProperties": {"$ref": "#/$defs/Matcher"},
                "description": "Response headers, name (any case) = matcher."
            },
            "headers": {
                "type": "object",
                "additionalProperties": {"$ref": "#/$defs/Matcher"},
                "description": "Response headers, name (any case) = matcher."
            },
            "json": {
                "$ref": "#/$defs/Matcher",
                "description": "The parsed JSON body: a matcher, or a table of paths (`\"a.b\" = …`) to matchers."
            }
        },
        "additionalProperties": {"$ref": "#/$defs/Matcher"}
    })
}

fn matcher() -> Json {
    let mut operators = Map::new();
    for (key, op) in Op::ALL {
        operators.insert(key.to_string(), operator(op));
    }
    json!({
        "description": "A literal (equality; a table matches the keys it names, a list item by item, and a key starting with `$` is a JSONPath into the value), or a table of operators.",
        "anyOf": [
            {"type": ["string", "number", "boolean", "null"]},
            {"type": "array", "items": {"$ref": "#/$defs/Matcher"}},
            {
                "type": "object",
                "properties": operators,
                "additionalProperties": {"$ref": "#/$defs/Matcher"}
            }
        ]
    })
}

/// The value an operator takes, and what it means.
fn operator(op: Op) -> Json {
    let matcher = json!({"$ref": "#/$defs/Matcher"});
    let text = json!({"type": ["string", "number"]});
    let list = json!({"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/Matcher"}});
    let within = json!({"anyOf": [{"$ref": "#/$defs/Duration"}, {"$ref": "#/$defs/Template"}]});
    let (mut schema, description) = match op {
        Op::Eq => (json!({}), "Equals (deep; `\"42\"` equals `42`)."),
        Op::Ne => (json!({}), "Does not equal."),
        Op::Lt => (
            json!({}),
            "Less than; `duration = { lt = \"500ms\" }` compares with a duration.",
        ),
        Op::Le => (json!({}), "Less than or equal."),
        Op::Gt => (json!({}), "Greater than."),
        Op::Ge => (json!({}), "Greater than or equal."),
        Op::Contains => (
            json!({}),
            "A string has the substring, a list the item, a table the key.",
        ),
        Op::Matches => (text, "Matches a regular expression."),
        Op::StartsWith => (text, "A string starts with this."),
        Op::EndsWith => (text, "A string ends with this."),
        Op::Exists => (
            json!({"type": "boolean"}),
            "`true`: is present; `false`: is absent.",
        ),
        Op::Len => (
            matcher,
            "The length of a string, list or table matches: `len = { ge = 3 }`.",
        ),
        // a field called `type` is matched when the value names no JSON type
        Op::Type => (
            json!({}),
            "The JSON type: string, number, integer, boolean, array, object or null (any other value matches a field called `type`).",
        ),
        Op::OneOf => (json!({"type": "array"}), "Equals one item of the list."),
        Op::All => (matcher, "Every item of the list matches."),
        Op::Any => (matcher, "Some item of the list matches."),
        Op::Not => (matcher, "The inner matcher does not hold."),
        Op::FirstWithin => (
            within,
            "The first item of a stream arrived within this duration.",
        ),
        Op::MaxGap => (
            within,
            "No two consecutive items of a stream are further apart than this duration.",
        ),
        Op::Incremental => (
            json!({"type": "boolean"}),
            "The items of a stream arrived in at least two bursts (`false`: in one).",
        ),
        Op::InOrder => (
            list,
            "Items matching these matchers appear in this order; other items may come between.",
        ),
        Op::Includes => (
            list,
            "Each matcher is matched by a different item, in any order.",
        ),
    };
    schema["description"] = json!(description);
    schema
}

fn capture() -> Json {
    json!({
        "description": "Where the value comes from: a target such as `json.token` or `header.location`, or an expression `{{ … }}`; or a table with `from`.",
        "examples": ["json.token", {"from": "header.set-cookie", "regex": "sessionid=([^;]+)", "secret": true}],
        "anyOf": [
            {"type": ["string", "number"]},
            {
                "type": "object",
                "additionalProperties": false,
                "required": ["from"],
                "properties": {
                    "from": {
                        "type": ["string", "number"],
                        "description": "A target (`json.token`, `header.location`) or an expression (`{{ result.json.items | length }}`)."
                    },
                    "regex": {
                        "type": ["string", "number"],
                        "description": "Keep the first group (or the whole match) of this regular expression."
                    },
                    "secret": {
                        "type": "boolean",
                        "description": "Never show the value: `***` in every output.",
                        "default": false
                    }
                }
            }
        ]
    })
}

fn retry(duration: &Json) -> Json {
    json!({
        "description": "Run the step again until its expectations pass: a number of attempts, or a table.",
        "examples": [5, {"attempts": 10, "interval": "500ms", "backoff": 2, "max_interval": "5s"}],
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": Retry::MAX_ATTEMPTS},
            {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "attempts": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": Retry::MAX_ATTEMPTS,
                        "description": "Attempts at most (default 3; unlimited with `timeout` alone)."
                    },
                    "interval": with_description(duration, "Pause between attempts (default 1s)."),
                    "backoff": {
                        "type": "number",
                        "minimum": 1,
                        "maximum": Retry::MAX_BACKOFF,
                        "description": "Factor the pause grows by after each attempt (default 1).",
                        "examples": [2]
                    },
                    "max_interval": with_description(duration, "Longest pause between attempts (default 30s)."),
                    "timeout": with_description(duration, "Stop retrying after this long.")
                }
            }
        ]
    })
}

fn repeat() -> Json {
    let count = json!({"type": "integer", "minimum": 1, "maximum": Repeat::MAX_COUNT});
    let concurrency = json!({
        "type": "integer",
        "minimum": 1,
        "maximum": Repeat::MAX_CONCURRENCY,
        "default": 1,
        "description": "Iterations that run at once (default 1: one after another)."
    });
    json!({
        "description": "Run the step once per iteration, each checked on its own: a count, or a table with `count` or `over` (a list, or a template that renders to one). Templates of the step read `repeat.index` (from 0), `repeat.count` and, with `over`, the item (named by `as`, default `item`). Captures become lists, in iteration order.",
        "examples": [100, {"count": 100, "concurrency": 10}, {"over": ["alice", "bob"], "as": "user"}],
        "anyOf": [
            with_description(&count, "Iterations, one after another."),
            {
                "type": "object",
                "additionalProperties": false,
                "required": ["count"],
                "properties": {
                    "count": with_description(&count, "Iterations in all."),
                    "concurrency": concurrency
                }
            },
            {
                "type": "object",
                "additionalProperties": false,
                "required": ["over"],
                "properties": {
                    "over": {
                        "anyOf": [
                            {"type": "array", "minItems": 1},
                            {"$ref": "#/$defs/Template"}
                        ],
                        "description": "The items: a list, or one `{{ … }}` that renders to a list.",
                        "examples": [["alice", "bob"], "{{ users }}"]
                    },
                    "as": {
                        "type": "string",
                        "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                        "default": Repeat::DEFAULT_ITEM,
                        "description": "The name templates read the item under."
                    },
                    "concurrency": concurrency
                }
            }
        ]
    })
}

fn var() -> Json {
    let definition_keys = ["value", "env", "secret", "description"];
    json!({
        "description": "A literal value, or a table of `value`, `env`, `secret` and `description`.",
        "examples": ["http://127.0.0.1:8080", {"env": "BASE_URL", "value": "http://127.0.0.1:8080"}],
        "anyOf": [
            {"type": ["string", "number", "boolean", "null", "array"]},
            {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": false,
                "anyOf": [{"required": ["value"]}, {"required": ["env"]}],
                "properties": {
                    "value": {"description": "The value, unless `env` names a variable that is set."},
                    "env": {
                        "type": ["string", "number"],
                        "description": "An environment variable whose value wins when it is set.",
                        "examples": ["BASE_URL"]
                    },
                    "secret": {
                        "type": "boolean",
                        "description": "Never show the value: `***` in every output.",
                        "default": false
                    },
                    "description": {"description": "What the variable is for."}
                }
            },
            {
                "description": "A table value (one with other keys than the definition keys).",
                "type": "object",
                "not": {"minProperties": 1, "propertyNames": {"enum": definition_keys}}
            }
        ]
    })
}

fn defaults(duration: &Json, size: &Json) -> Json {
    json!({
        "type": "object",
        "description": "Defaults for every step of the spec.",
        "additionalProperties": false,
        "properties": {
            "timeout": with_description(duration, "Time limit of one step attempt (default 30s)."),
            "spec_timeout": with_description(duration, "Time limit of the whole spec (default 10m)."),
            "max_body": with_description(size, "Cap on a body read into memory (default 16 MiB)."),
            "needs": {
                "type": "array",
                "maxItems": 0,
                "description": "What a step without `needs` waits for: `[]` starts every such step at once (default: the step before it)."
            }
        }
    })
}

/// Doc comments wrap their lines; a description is one paragraph.
fn unwrap_descriptions(schema: &mut Json) {
    match schema {
        Json::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Json::String(text) if key == "description" => {
                        let paragraphs: Vec<String> =
                            text.split("\n\n").map(|p| p.replace('\n', " ")).collect();
                        *text = paragraphs.join("\n\n");
                    }
                    _ => unwrap_descriptions(value),
                }
            }
        }
        Json::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// Where a configuration expects a number or a boolean, a template string
/// is accepted too, and where it expects text, a number or a boolean is
/// taken as its text: `from_value_lenient` reads configurations so, and the
/// types alone say neither. Durations and sizes have patterns of their own
/// and are left alone.
fn lenient_scalars(schema: &mut Json) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    if let Some(Json::Object(properties)) = map.get_mut("properties") {
        properties.values_mut().for_each(lenient_scalars);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(inner) = map.get_mut(key) {
            lenient_scalars(inner);
        }
    }
    let types: Vec<Json> = match map.get("type") {
        Some(Json::Array(types)) => types.clone(),
        Some(t @ Json::String(_)) => vec![t.clone()],
        _ => return,
    };
    let has = |name: &str| types.iter().any(|t| t == name);
    if has("string") {
        if !(map.contains_key("pattern") || map.contains_key("enum")) {
            let mut types = types.clone();
            for extra in ["number", "boolean"] {
                if !has(extra) {
                    types.push(json!(extra));
                }
            }
            map.insert("type".into(), Json::Array(types));
        }
    } else if has("integer") || has("number") || has("boolean") {
        // what describes the value stays outside; what constrains it goes
        // into the branch beside the template
        let mut outer = Map::new();
        for key in ["description", "default", "examples"] {
            if let Some(value) = map.remove(key) {
                outer.insert(key.into(), value);
            }
        }
        let constraints = std::mem::take(map);
        outer.insert(
            "anyOf".into(),
            json!([constraints, {"$ref": "#/$defs/Template"}]),
        );
        *map = outer;
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn validator() -> jsonschema::Validator {
        jsonschema::validator_for(&spec_schema()).expect("the schema compiles")
    }

    fn toml(text: &str) -> Json {
        toml::from_str(text).expect("test spec is TOML")
    }

    fn errors(validator: &jsonschema::Validator, spec: &Json) -> Vec<String> {
        validator
            .iter_errors(spec)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    }

    /// What planrun accepts besides the obvious: templates for numbers,
    /// numbers as text, one tag as a string, a priority in any case.
    #[test]
    fn accepts_a_small_spec() {
        let spec = toml(
            r#"
            id = "TC-1"
            priority = "High"
            tags = "smoke"
            [vars]
            base_url = "http://127.0.0.1:8080"
            token = { env = "TOKEN", secret = true }
            n = 3
            [defaults]
            timeout = "10s"
            [[steps]]
            id = "login"
            http = { post = "{{ base_url }}/login", json = { user = "qa" }, max_redirects = "{{ n }}" }
            expect.status = { one_of = [200, 201] }
            expect.header.content-type = { starts_with = "application/json" }
            capture.token = { from = "json.token", secret = true }
            retry = { attempts = 3, interval = "500ms" }
            [[steps]]
            needs = ["login"]
            wait = "1s"
            always = true
            [[steps]]
            exec = { cmd = ["sleep", 1], env = { PORT = 8080 }, background = true, ready = { tcp = "127.0.0.1:8080" } }
            expect.pid = { exists = true }
            "#,
        );
        assert_eq!(errors(&validator(), &spec), Vec::<String>::new());
    }

    #[test]
    fn rejects_mistakes_of_shape() {
        let validator = validator();
        for (mistake, text) in [
            (
                "unknown step key",
                "[[steps]]\nwait = \"1s\"\nexpcet.status = 200",
            ),
            (
                "unknown top-level key",
                "step = []\n[[steps]]\nwait = \"1s\"",
            ),
            ("no steps", "id = \"x\""),
            ("empty steps", "steps = []"),
            ("no kind", "[[steps]]\nid = \"a\""),
            (
                "two kinds",
                "[[steps]]\nwait = \"1s\"\nexec = { cmd = [\"true\"] }",
            ),
            ("unknown kind", "[[steps]]\nhtp = { get = \"http://x/\" }"),
            ("wrong type", "[[steps]]\nwait = \"1s\"\nalways = \"yes\""),
            (
                "duration without unit",
                "[[steps]]\nwait = \"1s\"\ntimeout = 30",
            ),
            ("no method", "[[steps]]\nhttp = { headers = { A = \"b\" } }"),
            (
                "two methods",
                "[[steps]]\nhttp = { get = \"http://x/\", post = \"http://x/\" }",
            ),
            (
                "not in the result",
                "[[steps]]\nhttp = { get = \"http://x/\" }\nexpect.statsu = 200",
            ),
            (
                "operator value",
                "[[steps]]\nwait = \"1s\"\nexpect.duration = { exists = \"yes\" }",
            ),
            (
                "template for a duration",
                "[[steps]]\nhttp = { get = \"http://x/\", timeout = \"{{ t }}\" }",
            ),
        ] {
            assert!(
                !validator.is_valid(&toml(text)),
                "the schema accepts a spec with this mistake: {mistake}"
            );
        }
        let dir = jsonschema::validator_for(&dir_config_schema()).expect("the schema compiles");
        assert!(dir.is_valid(&toml("[defaults]\ntimeout = \"5s\"")));
        assert!(!dir.is_valid(&toml("[[steps]]\nwait = \"1s\"")));
    }

    #[test]
    fn every_key_is_described() {
        fn walk(node: &Json, path: &str, missing: &mut Vec<String>) {
            match node {
                Json::Object(map) => {
                    // `then` and `dependentSchemas` narrow keys described
                    // where they are declared
                    if let Some(Json::Object(properties)) = map.get("properties")
                        && !path.ends_with("/then")
                        && !path.contains("/dependentSchemas/")
                    {
                        for (key, value) in properties {
                            let described =
                                value.get("description").is_some() || value.get("$ref").is_some();
                            if !described {
                                missing.push(format!("{path}.{key}"));
                            }
                        }
                    }
                    for (key, value) in map {
                        walk(value, &format!("{path}/{key}"), missing);
                    }
                }
                Json::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        walk(item, &format!("{path}/{i}"), missing);
                    }
                }
                _ => {}
            }
        }
        let mut missing = Vec::new();
        walk(&spec_schema(), "#", &mut missing);
        assert_eq!(missing, Vec::<String>::new(), "keys without a description");
    }

    fn spec_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                spec_files(&path, out);
            } else if path.file_name().is_some_and(|n| {
                // directory settings, and a stack's Compose file, are no specs
                n != "planrun.toml" && !n.to_string_lossy().starts_with("docker-compose")
            }) && path
                .extension()
                .is_some_and(|e| e == "toml" || e == "yaml" || e == "yml")
            {
                out.push(path);
            }
        }
    }

    /// What editors see: the specs and examples read as plain TOML or YAML
    /// pass the schema, and `specs/planrun.toml` the directory settings'
    /// (`scripts/check-schema` checks them with another validator too).
    #[test]
    fn specs_and_examples_pass() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        for dir in ["specs", "examples", "crates/planrun/tests/plans/ok"] {
            spec_files(&root.join(dir), &mut files);
        }
        assert!(!files.is_empty(), "no specs found under {}", root.display());
        let validator = validator();
        let dir_validator =
            jsonschema::validator_for(&dir_config_schema()).expect("the schema compiles");
        let settings =
            toml(&std::fs::read_to_string(root.join("specs/planrun.toml")).expect("readable"));
        assert_eq!(
            errors(&dir_validator, &settings),
            Vec::<String>::new(),
            "specs/planrun.toml"
        );
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable spec");
            let spec: Json = if file.extension().is_some_and(|e| e == "toml") {
                toml::from_str(&text).expect("spec is TOML")
            } else {
                serde_saphyr::from_str(&text).expect("spec is YAML")
            };
            assert_eq!(
                errors(&validator, &spec),
                Vec::<String>::new(),
                "{}",
                file.display()
            );
        }
    }
}
