//! Every TOML and YAML snippet of README.md and docs/ is a valid spec, so the
//! documentation cannot drift from the language.
//!
//! A snippet is a whole spec unless the line before its fence says otherwise:
//!
//! - `<!-- snippet: step KIND -->`: keys of one step of that kind (`expect`,
//!   `capture`, …), checked inside a step with a stand-in configuration;
//! - `<!-- snippet: top -->`: top-level keys (`vars`, `defaults`), checked
//!   with one step added;
//! - `<!-- snippet: steps -->`: a YAML list of steps, checked under `steps:`;
//! - `<!-- snippet: not a spec -->`: another kind of file (a CI workflow).
//!
//! The wrapped snippets are written to `target/doc-snippets/`, where
//! `scripts/check-schema` also checks them against the JSON Schema.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// One fenced block of a document.
struct Snippet {
    /// `docs/sse.md #2`.
    name: String,
    /// The file it is written to, with the fence's language as extension.
    file: String,
    /// `toml` or `yaml`.
    lang: String,
    /// The marker before the fence, without `<!-- snippet:` and `-->`.
    marker: Option<String>,
    text: String,
}

fn snippets(doc: &Path, relative: &str) -> Vec<Snippet> {
    let text = std::fs::read_to_string(doc).expect("the document reads");
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    let mut previous = "";
    while let Some(line) = lines.next() {
        let lang = line.trim_start_matches("```");
        if line.starts_with("```") && matches!(lang, "toml" | "yaml") {
            let mut body = String::new();
            for inner in lines.by_ref() {
                if inner.starts_with("```") {
                    break;
                }
                body.push_str(inner);
                body.push('\n');
            }
            let marker = previous
                .trim()
                .strip_prefix("<!-- snippet:")
                .and_then(|m| m.strip_suffix("-->"))
                .map(|m| m.trim().to_string());
            let n = out.len() + 1;
            out.push(Snippet {
                name: format!("{relative} #{n}"),
                file: format!(
                    "{}-{n}.{lang}",
                    relative.trim_end_matches(".md").replace('/', "-")
                ),
                lang: lang.to_string(),
                marker,
                text: body,
            });
        }
        previous = line;
    }
    out
}

/// A stand-in configuration for a step of `kind`, in TOML and in YAML.
fn stand_in(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "http" => (
            "http = { get = \"http://127.0.0.1:1/\" }",
            "http: { get: \"http://127.0.0.1:1/\" }",
        ),
        "sse" => (
            "sse = { get = \"http://127.0.0.1:1/\" }",
            "sse: { get: \"http://127.0.0.1:1/\" }",
        ),
        "ws" => (
            "ws = { url = \"ws://127.0.0.1:1/\" }",
            "ws: { url: \"ws://127.0.0.1:1/\" }",
        ),
        "exec" => ("exec = { cmd = [\"true\"] }", "exec: { cmd: [\"true\"] }"),
        "wait" => ("wait = \"1ms\"", "wait: 1ms"),
        other => panic!("no stand-in for a `{other}` step: use http, sse, ws, exec or wait"),
    }
}

fn indent(text: &str, by: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(by);
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The snippet as a whole spec, or `None` when it is not one.
fn wrapped(s: &Snippet) -> Option<String> {
    let toml = s.lang == "toml";
    let marker = s.marker.as_deref().unwrap_or("");
    Some(
        match marker.split_whitespace().collect::<Vec<_>>().as_slice() {
            [] => s.text.clone(),
            ["not", "a", "spec"] => return None,
            ["top"] if toml => format!("{}\n[[steps]]\nwait = \"1ms\"\n", s.text),
            ["top"] => format!("{}steps:\n  - wait: 1ms\n", s.text),
            ["steps"] if !toml => format!("steps:\n{}", indent(&s.text, "  ")),
            ["step", kind] => {
                let (t, y) = stand_in(kind);
                if toml {
                    format!("[[steps]]\n{t}\n{}", s.text)
                } else {
                    format!("steps:\n  - {y}\n{}", indent(&s.text, "    "))
                }
            }
            _ => panic!("{}: unknown snippet marker `{marker}`", s.name),
        },
    )
}

#[test]
fn every_snippet_of_the_docs_is_a_valid_spec() {
    let root = root();
    let mut docs = vec![(root.join("README.md"), String::from("README.md"))];
    let mut pages: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    for page in pages {
        let name = format!("docs/{}", page.file_name().unwrap().to_string_lossy());
        docs.push((page, name));
    }

    let out_dir = root.join("target/doc-snippets");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).expect("target/doc-snippets");
    let mut written = Vec::new();
    for (path, name) in &docs {
        for s in snippets(path, name) {
            if let Some(spec) = wrapped(&s) {
                std::fs::write(out_dir.join(&s.file), spec).expect("the snippet is written");
                written.push(s.name);
            }
        }
    }
    assert!(
        written.len() >= 20,
        "only {} snippets found: {written:?}",
        written.len()
    );

    let out = Command::new(env!("CARGO_BIN_EXE_planrun"))
        .args(["validate", "--var", "base_url=http://127.0.0.1:1"])
        .args(["--var", "qa_password=x"])
        .arg(&out_dir)
        .env("NO_COLOR", "1")
        .current_dir(&root)
        .output()
        .expect("planrun runs");
    assert!(
        out.status.success(),
        "a snippet of the docs is not a valid spec (the file names say which document and block):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
