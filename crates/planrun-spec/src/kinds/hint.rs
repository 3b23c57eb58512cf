//! The hint for a value of the wrong type in a step's configuration: the
//! form the key takes, read from the kind's JSON Schema (its example, else
//! its shape), written as a spec writes it (`ports = { "8000/tcp" =
//! "127.0.0.1:0" }`).

use schemars::SchemaGenerator;
use serde_json::Value as Json;

use super::Kind;
use crate::value::{Span, Value, ValueKind};

/// The keys from `config` down to the value at `at` (`["run", "ports"]`);
/// empty when `at` is the configuration itself.
pub(super) fn path_to(config: &Value, at: &Span) -> Vec<String> {
    let holds = |span: &Span| span.start <= at.start && at.end <= span.end;
    let mut path = Vec::new();
    let mut node = config;
    loop {
        let ValueKind::Map(entries) = &node.kind else {
            return path;
        };
        let Some((key, inner)) = entries.iter().find(|(_, v)| holds(&v.span)) else {
            return path;
        };
        path.push(key.name.clone());
        node = inner;
    }
}

/// How the key at `path` is written, for a value of the wrong type there.
pub(super) fn form_of<K: Kind>(path: &[String]) -> Option<String> {
    let key = path.last()?;
    let root =
        serde_json::to_value(SchemaGenerator::default().root_schema_for::<K::Config>()).ok()?;
    let mut node = &root;
    for step in path {
        node = resolve(&root, node)?.get("properties")?.get(step)?;
    }
    if let Some(example) = node.get("examples").and_then(|e| e.get(0)) {
        return Some(format!("for example `{key} = {}`", inline(example)));
    }
    let node = resolve(&root, node)?;
    let types = types_of(node);
    if types.contains(&"object") {
        if let Some(Json::Object(properties)) = node.get("properties") {
            let keys: Vec<String> = properties.keys().map(|k| format!("`{k}`")).collect();
            return Some(format!(
                "`{key}` is a table of {}: `{key} = {{ … }}`",
                keys.join(", ")
            ));
        }
        return Some(format!(
            "`{key}` is a table: `{key} = {{ name = \"value\" }}`"
        ));
    }
    if types.contains(&"array") {
        return Some(format!("`{key}` is a list: `{key} = [\"…\", \"…\"]`"));
    }
    None
}

/// The schema `node` stands for: its `$ref` followed, the first branch of
/// an `anyOf` that is not `null` (an optional value) taken.
fn resolve<'a>(root: &'a Json, node: &'a Json) -> Option<&'a Json> {
    let mut node = node;
    for _ in 0..8 {
        if let Some(reference) = node.get("$ref").and_then(Json::as_str) {
            let name = reference.strip_prefix("#/$defs/")?;
            node = root.get("$defs")?.get(name)?;
        } else if let Some(Json::Array(branches)) = node.get("anyOf") {
            node = branches
                .iter()
                .find(|b| b.get("type").and_then(Json::as_str) != Some("null"))?;
        } else {
            return Some(node);
        }
    }
    None
}

fn types_of(node: &Json) -> Vec<&str> {
    match node.get("type") {
        Some(Json::String(t)) => vec![t.as_str()],
        Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    }
}

/// A JSON value as a TOML inline value.
fn inline(value: &Json) -> String {
    match value {
        Json::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{} = {}", key_text(k), inline(v)))
                .collect();
            format!("{{ {} }}", entries.join(", "))
        }
        Json::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

fn key_text(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        key.to_string()
    } else {
        Json::from(key).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Docker;

    fn path(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| (*k).to_string()).collect()
    }

    #[test]
    fn a_key_s_form_comes_from_its_example_else_its_shape() {
        assert_eq!(
            form_of::<Docker>(&path(&["run", "ports"])).as_deref(),
            Some("for example `ports = { \"8000/tcp\" = \"127.0.0.1:0\" }`")
        );
        assert_eq!(
            form_of::<Docker>(&path(&["run", "env"])).as_deref(),
            Some("`env` is a table: `env = { name = \"value\" }`")
        );
        let healthcheck = form_of::<Docker>(&path(&["run", "healthcheck"])).unwrap();
        assert!(
            healthcheck.starts_with("`healthcheck` is a table of `cmd`, "),
            "{healthcheck}"
        );
        assert_eq!(
            form_of::<Docker>(&path(&["run", "cmd"])).as_deref(),
            Some("`cmd` is a list: `cmd = [\"…\", \"…\"]`")
        );
        assert_eq!(form_of::<Docker>(&path(&["run", "image"])), None);
        assert_eq!(form_of::<Docker>(&path(&["nothing"])), None);
    }
}
