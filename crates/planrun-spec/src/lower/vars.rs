//! Lowering `vars`: the variables of a spec or a `planrun.toml`, each a
//! literal value or a definition (`value`, `env`, `secret`).
//!
//! It reads the table only: environment variables are read, and values
//! rendered, when the plan is built, not here.

use super::{Table, boolean, check_name, invalid, string};
use crate::error::Diagnostics;
use crate::model::Var;
use crate::value::{Key, Value};

const VAR_DEF_KEYS: &[&str] = &["value", "env", "secret", "description"];

pub(super) fn lower_vars(value: &Value, diags: &mut Diagnostics) -> Vec<Var> {
    let Some(mut table) = Table::new(value, "`vars`", diags) else {
        return Vec::new();
    };
    let mut vars = Vec::new();
    for (key, v) in table.entries {
        check_name(key, "a variable", diags);
        // a table made only of definition keys is a definition; any other
        // value (a table included) is the variable's literal value
        let is_def = v.as_map().is_some_and(|m| {
            !m.is_empty()
                && m.iter()
                    .all(|(k, _)| VAR_DEF_KEYS.contains(&k.name.as_str()))
        });
        if is_def {
            let mut def = Table::new(v, "a variable", diags).expect("invariant: checked map");
            let env = def.get("env").and_then(|e| {
                string(e, "`env`", diags).map(|name| Key {
                    name,
                    span: e.span.clone(),
                })
            });
            let secret = def
                .get("secret")
                .and_then(|s| boolean(s, "`secret`", diags))
                .unwrap_or(false);
            let _ = def.get("description");
            let value = def.get("value").cloned();
            if value.is_none() && env.is_none() {
                diags.push(
                    invalid(
                        &v.span,
                        format!("variable `{}` has no `value` and no `env`", key.name),
                    )
                    .help("give it a `value`, an `env` variable to read, or both"),
                );
            }
            vars.push(Var {
                name: key.clone(),
                value,
                env,
                secret,
            });
        } else {
            vars.push(Var {
                name: key.clone(),
                value: Some(v.clone()),
                env: None,
                secret: false,
            });
        }
    }
    table.used.fill(true);
    vars
}
