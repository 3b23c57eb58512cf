//! `planrun curl`: an `http` step as a `curl` command line.
//!
//! The step's configuration is rendered by the runner itself, in a plan that
//! holds the step alone and an executor that keeps the rendered
//! configuration instead of sending it: templates see the same variables as
//! in a run, nothing touches the network, and the runner hides the secrets
//! in the copy it reports. This module turns a configuration into a command
//! line; it must not send anything.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use planrun_runner::events::{RunEvent, StepStatus};
use planrun_runner::executor::{BoxFuture, Registry, StepError, StepExecutor, StepInput};
use planrun_runner::run::{Cancel, RunOptions, Runner};
use planrun_spec::kinds::HttpConfig;
use planrun_spec::model::{Overrides, StepKind};
use planrun_spec::plan::Plan;
use planrun_spec::value::Value;

use crate::select;

/// What the rendering executor saw: the configuration and the spec's directory.
type Seen = Arc<Mutex<Option<(Value, PathBuf)>>>;

/// An `http` executor that keeps the rendered configuration and sends nothing.
struct Render {
    seen: Seen,
}

impl StepExecutor for Render {
    fn kind(&self) -> StepKind {
        StepKind::Http
    }

    fn execute<'a>(
        &'a self,
        input: StepInput<'a>,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some((input.config.clone(), input.ctx.base_dir().to_path_buf()));
        }
        // the runner hides secrets in the result it reports: a redacted copy
        let doc = serde_json::json!({ "config": input.config.to_json() });
        Box::pin(async move { Ok(doc) })
    }
}

/// The step rendered: its configuration with secrets as they are, the same
/// with secrets as `***`, and the spec's directory.
pub(crate) struct Rendered {
    pub(crate) config: HttpConfig,
    pub(crate) redacted: HttpConfig,
    pub(crate) base_dir: PathBuf,
}

/// Renders step `id` of `plan` with variables only.
pub(crate) async fn render(
    plan: &Plan,
    id: &str,
    overrides: Overrides,
    env: std::collections::BTreeMap<String, String>,
) -> Result<Rendered, String> {
    let index = select::step_index(plan, id).map_err(|e| e.to_string())?;
    let step = &plan.spec.steps[index];
    if step.kind != StepKind::Http {
        return Err(format!(
            "step `{id}` is of kind `{}`; `planrun curl` prints `http` steps",
            step.kind.key()
        ));
    }
    let mut keep = vec![false; plan.spec.steps.len()];
    keep[index] = true;
    let mut alone = select::sub_plan(plan, &keep);
    // rendered once, whatever its condition and retries say
    for step in &mut alone.spec.steps {
        step.retry = None;
        step.when = None;
    }
    let seen: Seen = Arc::default();
    let mut registry = Registry::new();
    registry.register(Render {
        seen: Arc::clone(&seen),
    });
    let options = RunOptions {
        jobs: 1,
        fail_fast: false,
        overrides,
        env,
        observe: false,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<RunEvent>();
    Runner::new(registry, options)
        .run(&[alone], &tx, &Cancel::default())
        .await;
    drop(tx);
    let mut redacted = None;
    let mut failure = None;
    while let Some(event) = rx.recv().await {
        match event {
            RunEvent::StepFinished { report, result, .. } => {
                // a step that passed keeps a brief of its result in its
                // report, without the configuration: the whole one comes
                // with the event
                redacted = result
                    .as_deref()
                    .or(report.result.as_ref())
                    .and_then(|r| r.get("config"))
                    .cloned();
                if report.status == StepStatus::Errored && redacted.is_none() {
                    failure = report.error.as_ref().map(|e| e.message.clone());
                }
            }
            RunEvent::SpecFinished { report, .. } => {
                failure = failure.or(report.error);
            }
            _ => {}
        }
    }
    let seen = seen.lock().ok().and_then(|mut s| s.take());
    let (Some((value, base_dir)), Some(redacted)) = (seen, redacted) else {
        let why = failure.unwrap_or_else(|| String::from("it did not render"));
        let mut message = format!("cannot render step `{id}`: {why}");
        // the steps before it whose captures a template may read
        let keep = select::needed(plan, &[index]);
        let capturing: Vec<String> = plan
            .spec
            .steps
            .iter()
            .filter(|s| s.index != index && keep[s.index] && !s.captures.is_empty())
            .map(|s| format!("`{}`", s.id))
            .collect();
        if !capturing.is_empty() {
            let _ = write!(
                message,
                "\n  help: captures of {} are known only after running; \
                 to see the request as sent, run `planrun run {} --step {id} -vv`",
                capturing.join(", "),
                plan.spec.source.path.display()
            );
        }
        return Err(message);
    };
    let read = |value: &Value| {
        planrun_spec::from_value::<HttpConfig>(value)
            .map_err(|e| format!("cannot read step `{id}`: {e}"))
    };
    let redacted = Value::from_json(&redacted, &value.span);
    Ok(Rendered {
        config: read(&value)?,
        redacted: read(&redacted)?,
        base_dir,
    })
}

/// The `curl` command of a rendered configuration, one option per line.
pub(crate) fn command(config: &HttpConfig, base_dir: &Path) -> Result<String, String> {
    let (method, url) = config.method_url().map_err(|p| p.message)?;
    let url = with_query(url, &config.query);
    let mut args: Vec<Vec<String>> = Vec::new();
    let has_body = config.json.is_some()
        || config.form.is_some()
        || config.body.is_some()
        || config.multipart.is_some();
    match method.as_str() {
        // `-X HEAD` would wait for a body that never comes
        "HEAD" => args.push(vec!["--head".into()]),
        "GET" if !has_body => {}
        other => args.push(vec!["-X".into(), other.into()]),
    }
    args.push(vec![url]);
    let has_header = |name: &str| config.headers.keys().any(|k| k.eq_ignore_ascii_case(name));
    for (name, value) in &config.headers {
        args.push(vec!["-H".into(), format!("{name}: {value}")]);
    }
    if let Some(auth) = &config.basic_auth {
        args.push(vec![
            "-u".into(),
            format!("{}:{}", auth.user, auth.password),
        ]);
    }
    if !config.cookies.is_empty() {
        let line: Vec<String> = config
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        args.push(vec!["-b".into(), line.join("; ")]);
    }
    if let Some(json) = &config.json {
        if !has_header("content-type") {
            args.push(vec!["-H".into(), "Content-Type: application/json".into()]);
        }
        args.push(vec!["--data-raw".into(), json.to_string()]);
    } else if let Some(form) = &config.form {
        args.push(vec!["--data-raw".into(), form_encoded(form)]);
    } else if let Some(body) = &config.body {
        // planrun sends a raw body without a content type; curl would add
        // one (`application/x-www-form-urlencoded`) unless told not to
        if !has_header("content-type") {
            args.push(vec!["-H".into(), "Content-Type:".into()]);
        }
        args.push(vec!["--data-raw".into(), body.clone()]);
    } else if let Some(fields) = &config.multipart {
        for (name, field) in fields {
            args.push(multipart_arg(name, field, base_dir));
        }
    }
    if config.insecure {
        args.push(vec!["--insecure".into()]);
    }
    if let Some(ca) = &config.ca_cert {
        args.push(vec![
            "--cacert".into(),
            base_dir.join(ca).display().to_string(),
        ]);
    }
    if config.follow_redirects.unwrap_or(true) {
        let max = config.max_redirects.unwrap_or(10);
        args.push(vec!["-L".into(), "--max-redirs".into(), max.to_string()]);
    }
    if let Some(timeout) = config.timeout {
        args.push(vec![
            "--max-time".into(),
            format!("{}", timeout.0.as_secs_f64()),
        ]);
    }
    let mut out = String::from("curl");
    for group in &args {
        out.push_str(" \\\n  ");
        let quoted: Vec<String> = group.iter().map(|a| shell_quote(a)).collect();
        out.push_str(&quoted.join(" "));
    }
    out.push('\n');
    Ok(out)
}

/// A multipart field as a curl option: text with `--form-string` (taken as
/// written, no `@file` or `<file` reading), a file with `-F name=@path`.
fn multipart_arg(
    name: &str,
    field: &planrun_spec::kinds::MultipartField,
    base_dir: &Path,
) -> Vec<String> {
    let mut extra = String::new();
    if let Some(t) = &field.content_type {
        let _ = write!(extra, ";type={t}");
    }
    if let Some(f) = &field.filename {
        let _ = write!(extra, ";filename={f}");
    }
    match (&field.text, &field.file) {
        (Some(text), _) if extra.is_empty() => {
            vec!["--form-string".into(), format!("{name}={text}")]
        }
        (Some(text), _) => vec![
            "-F".into(),
            format!("{name}=\"{}\"{extra}", text.replace('"', "\\\"")),
        ],
        (None, Some(file)) => {
            let path = base_dir.join(file);
            vec!["-F".into(), format!("{name}=@{}{extra}", path.display())]
        }
        (None, None) => vec!["--form-string".into(), format!("{name}=")],
    }
}

/// `url` with the query pairs added, as `http` steps add them.
fn with_query(url: &str, query: &std::collections::BTreeMap<String, serde_json::Value>) -> String {
    if query.is_empty() {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", form_encoded(query))
}

/// Fields as `application/x-www-form-urlencoded` text: a list repeats its
/// key, strings as they are, other values as JSON, null as empty.
fn form_encoded(fields: &std::collections::BTreeMap<String, serde_json::Value>) -> String {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut pairs = Vec::new();
    for (key, value) in fields {
        match value {
            serde_json::Value::Array(items) => {
                pairs.extend(
                    items
                        .iter()
                        .map(|i| format!("{}={}", encode(key), encode(&text(i)))),
                );
            }
            other => pairs.push(format!("{}={}", encode(key), encode(&text(other)))),
        }
    }
    pairs.join("&")
}

/// Form encoding of one key or value (space as `+`).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

/// One shell word: as it is when it holds only safe characters, else in
/// single quotes, a `'` inside written `'\''`.
pub(crate) fn shell_quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b));
    if safe {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &serde_json::Value) -> HttpConfig {
        let value = Value::from_json(json, &(0..0));
        planrun_spec::from_value(&value).expect("config")
    }

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote("http://h:1/a/b"), "http://h:1/a/b");
        assert_eq!(shell_quote("http://h/a?b=c"), "'http://h/a?b=c'");
        assert_eq!(shell_quote("-L"), "-L");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$HOME `x`"), "'$HOME `x`'");
    }

    #[test]
    fn a_post_with_headers_and_a_body() {
        let c = config(&serde_json::json!({
            "post": "http://h/api/",
            "headers": { "X-Note": "two words" },
            "body": "it's here",
            "insecure": true,
        }));
        let cmd = command(&c, Path::new("/s")).unwrap();
        assert_eq!(
            cmd,
            "curl \\\n  -X POST \\\n  http://h/api/ \\\n  -H 'X-Note: two words' \\\n  -H Content-Type: \\\n  --data-raw 'it'\\''s here' \\\n  --insecure \\\n  -L --max-redirs 10\n"
        );
    }

    #[test]
    fn basic_auth_is_a_user_option() {
        let c = config(&serde_json::json!({
            "get": "http://h/private",
            "basic_auth": { "user": "qa", "password": "***" },
            "follow_redirects": false,
        }));
        assert_eq!(
            command(&c, Path::new("/s")).unwrap(),
            "curl \\\n  http://h/private \\\n  -u 'qa:***'\n"
        );
    }

    #[test]
    fn query_and_json() {
        let c = config(&serde_json::json!({
            "get": "http://h/x",
            "query": { "q": "a b&c", "tag": ["1", "2"] },
            "follow_redirects": false,
        }));
        assert_eq!(
            command(&c, Path::new("/s")).unwrap(),
            "curl \\\n  'http://h/x?q=a+b%26c&tag=1&tag=2'\n"
        );
        let c = config(&serde_json::json!({ "put": "http://h/x", "json": { "a": 1 } }));
        let cmd = command(&c, Path::new("/s")).unwrap();
        assert!(cmd.contains("-H 'Content-Type: application/json'"), "{cmd}");
        assert!(cmd.contains(r#"--data-raw '{"a":1}'"#), "{cmd}");
    }
}
