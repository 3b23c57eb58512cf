//! Secret redaction: every value marked secret is replaced by `***` before
//! anything leaves the runner.

use serde_json::Value as Json;

use crate::events::StepReport;

/// `text` percent-encoded as a query value (`form`: space as `+`, as HTML
/// forms and `url`'s query builder write it) or as a path segment.
fn percent_encoded(text: &str, form: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => out.push(byte as char),
            b'*' if form => out.push('*'),
            b'~' if !form => out.push('~'),
            b' ' if form => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

/// The secret strings of one spec run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Adds a secret (too-short values are still hidden, but only whole),
    /// with the forms it takes in a URL query, a URL path and JSON text.
    pub(crate) fn add(&mut self, secret: &str) {
        if secret.is_empty() || self.secrets.iter().any(|s| s == secret) {
            return;
        }
        let json = serde_json::to_string(secret).unwrap_or_default();
        let json = json
            .strip_prefix('"')
            .and_then(|j| j.strip_suffix('"'))
            .unwrap_or(secret)
            .to_string();
        for form in [
            secret.to_string(),
            percent_encoded(secret, true),
            percent_encoded(secret, false),
            json,
        ] {
            if !self.secrets.contains(&form) {
                self.secrets.push(form);
            }
        }
        // longest first, so a secret that contains another is hidden whole
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// Adds every string (and number) inside a JSON value.
    pub(crate) fn add_json(&mut self, value: &Json) {
        match value {
            Json::String(s) => self.add(s),
            Json::Number(n) => self.add(&n.to_string()),
            Json::Array(items) => items.iter().for_each(|v| self.add_json(v)),
            Json::Object(map) => map.values().for_each(|v| self.add_json(v)),
            _ => {}
        }
    }

    /// Text with secrets hidden.
    pub(crate) fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }

    /// A JSON value with secrets hidden in every string.
    pub(crate) fn json(&self, value: &mut Json) {
        if self.secrets.is_empty() {
            return;
        }
        match value {
            Json::String(s) => {
                let r = self.text(s);
                *s = r;
            }
            Json::Number(n) if self.secrets.iter().any(|s| *s == n.to_string()) => {
                *value = Json::String(String::from("***"));
            }
            Json::Array(items) => items.iter_mut().for_each(|v| self.json(v)),
            Json::Object(map) => map.values_mut().for_each(|v| self.json(v)),
            _ => {}
        }
    }

    /// A step report with secrets hidden everywhere.
    pub(crate) fn report(&self, report: &mut StepReport) {
        if self.secrets.is_empty() {
            return;
        }
        if let Some(r) = &mut report.result {
            self.json(r);
        }
        for (_, v) in &mut report.captures {
            self.json(v);
        }
        for e in &mut report.expectations {
            e.message = self.text(&e.message);
            e.expected = self.text(&e.expected);
            if let Some(a) = &mut e.actual {
                self.json(a);
            }
            e.diff = e.diff.as_deref().map(|d| self.text(d));
        }
        if let Some(err) = &mut report.error {
            err.message = self.text(&err.message);
        }
        // hidden once already, before it was cut; this catches secrets
        // captured since by steps running beside it
        for e in &mut report.evidence {
            e.text = self.text(&e.text);
        }
        if let Some(iterations) = &mut report.iterations {
            let warned = iterations.first_warning.as_deref_mut();
            for failure in iterations.failures.iter_mut().chain(warned) {
                if let Some(item) = &mut failure.item {
                    self.json(&mut item.value);
                }
                self.report(&mut failure.report);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hides_secrets_everywhere() {
        let mut r = Redactor::default();
        r.add("hunter2");
        let mut v = json!({"body": "password=hunter2", "list": ["hunter2"]});
        r.json(&mut v);
        assert_eq!(v, json!({"body": "password=***", "list": ["***"]}));
    }

    #[test]
    fn hides_the_encoded_forms_too() {
        let mut r = Redactor::default();
        r.add("a+b/c= d\"e");
        assert_eq!(
            r.text("ws://h/s?token=a%2Bb%2Fc%3D+d%22e&x=1"),
            "ws://h/s?token=***&x=1"
        );
        assert_eq!(r.text("/t/a%2Bb%2Fc%3D%20d%22e/"), "/t/***/");
        assert_eq!(r.text(r#"{"t":"a+b/c= d\"e"}"#), r#"{"t":"***"}"#);
        assert_eq!(r.text("a+b/c= d\"e"), "***");
    }
}
