//! A spec's variables, resolved once before its first step.
//!
//! Owns precedence (directory, spec, environment, command line) and marking
//! secret values for redaction: variables marked secret, and variables
//! whose templates read a secret. It never runs a step and never reports: a
//! variable that does not render is returned as an error for the caller to
//! place on a step.

use planrun_spec::plan::Plan;
use serde_json::Value as Json;

use super::RunOptions;
use crate::executor::StepError;
use crate::redact::Redactor;
use crate::render::{Renderer, Scope};

/// Variables in precedence order: directory, spec, environment override,
/// command line. Values may be templates over `env` and earlier variables.
pub(super) fn resolve_vars(
    plan: &Plan,
    options: &RunOptions,
    renderer: &Renderer,
    redactor: &mut Redactor,
) -> Result<Scope, StepError> {
    let mut scope = Scope::default();
    let secret_names = |name: &str| {
        options.overrides.secret_vars.iter().any(|s| s == name)
            || plan
                .spec
                .vars
                .iter()
                .chain(&plan.dir.vars)
                .any(|d| d.secret && d.name.name == name)
    };
    // every secret name is known before any template renders, so that a
    // variable built from one is secret whatever the order
    for var in plan.dir.vars.iter().chain(&plan.spec.vars) {
        if secret_names(&var.name.name) {
            scope.mark_secret(var.name.name.clone());
            if let Some(env) = &var.env {
                scope.mark_secret(format!("env.{}", env.name));
            }
        }
    }
    for name in &options.overrides.secret_vars {
        scope.mark_secret(name.clone());
    }
    scope.note_secrets();
    scope.set(
        "env",
        &serde_json::to_value(&options.env).unwrap_or(Json::Null),
    );
    // `{{ planrun }}` is this program, so a spec can start `planrun demo`
    if let Ok(exe) = std::env::current_exe() {
        scope.set("planrun", &Json::String(exe.display().to_string()));
    }
    // command-line values come first so that other variables can build on them
    for (k, v) in &options.overrides.vars {
        if secret_names(k) {
            redactor.add(v);
        }
        scope.set(k.clone(), &Json::String(v.clone()));
    }
    for var in plan.dir.vars.iter().chain(&plan.spec.vars) {
        if options.overrides.vars.contains_key(&var.name.name) {
            continue;
        }
        let from_env = var
            .env
            .as_ref()
            .and_then(|name| options.env.get(&name.name).cloned());
        let noted = scope.noted_len();
        let value = match (from_env, &var.value) {
            (Some(v), _) => Json::String(v),
            (None, Some(v)) => renderer.render_value(v, &scope)?.to_json(),
            (None, None) => {
                return Err(StepError::new(format!(
                    "variable `{}` reads the environment variable `{}`, which is not set",
                    var.name.name,
                    var.env.as_ref().map_or("?", |name| name.name.as_str())
                ))
                .at(var.name.span.clone())
                .help("set it, pass `--var NAME=VALUE`, or give the variable a `value` to fall back on"));
            }
        };
        if secret_names(&var.name.name) {
            redactor.add_json(&value);
        } else if scope.noted_len() > noted {
            // built from a secret: secret itself
            redactor.add_derived_json([&value], false);
            scope.mark_secret(var.name.name.clone());
        }
        scope.set(var.name.name.clone(), &value);
    }
    // and what the filters of those templates made
    redactor.add_derived_json(&scope.noted().derived, false);
    Ok(scope)
}
