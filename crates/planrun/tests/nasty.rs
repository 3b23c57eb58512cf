//! Hostile inputs through the real binary: `planrun validate FILE` under a
//! memory limit (`prlimit`, util-linux) must answer, valid or exit code 2
//! with a diagnostic, and never panic (101) or die of a signal (a stack
//! overflow, an allocation the limit refuses, a CPU limit reached).
//!
//! Small inputs are checked in under `tests/nasty/`; large ones (deep
//! nesting, huge files, long cycles) are written by the tests.

use std::fmt::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The address space the binary gets: some 15 times what validating the
/// largest input here needs, far below what an input that grows without
/// bound would take.
const MEMORY: u64 = 512 * 1024 * 1024;

/// CPU seconds the binary gets: only a guard that turns a hang into a
/// failure instead of a stuck run, a hundred times what any case needs.
const CPU_SECONDS: u64 = 300;

fn nasty() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nasty")
}

/// Runs `planrun validate` on `file` under the limits.
fn validate(file: &Path) -> Output {
    let out = Command::new("prlimit")
        .arg(format!("--as={MEMORY}"))
        .arg(format!("--cpu={CPU_SECONDS}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_planrun"))
        .args(["validate", "--no-color"])
        .arg(file)
        .env("NO_COLOR", "1")
        .output()
        .expect("prlimit runs (util-linux; scripts/test installs it)");
    if let Some(signal) = out.status.signal() {
        panic!(
            "`planrun validate {}` was killed by signal {signal}\nstderr (first 2000 bytes):\n{}",
            file.display(),
            head(&out.stderr)
        );
    }
    assert_ne!(
        out.status.code(),
        Some(101),
        "`planrun validate {}` panicked:\n{}",
        file.display(),
        head(&out.stderr)
    );
    out
}

fn head(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(2000)]).into_owned()
}

/// The input is refused with exit code 2, a located diagnostic that says
/// `needle`, and output of a size in proportion to the input.
fn invalid(file: &Path, needle: &str) -> String {
    let out = validate(file);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}: exit code 2 expected\n{}",
        file.display(),
        head(&out.stderr)
    );
    assert!(
        stderr.contains("planrun::") && stderr.contains("nothing ran"),
        "{}: a diagnostic expected\n{}",
        file.display(),
        head(&out.stderr)
    );
    // the message wraps at the terminal's width, with `│` at each new line
    let flat = stderr
        .split(|c: char| c.is_whitespace() || c == '│')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains(needle),
        "{}: `{needle}` expected in\n{}",
        file.display(),
        head(&out.stderr)
    );
    let size = std::fs::metadata(file).map_or(0, |m| m.len());
    assert!(
        (stderr.len() as u64) < 16 * size + 64 * 1024,
        "{}: {} bytes of diagnostics for {size} bytes of input",
        file.display(),
        stderr.len()
    );
    stderr
}

/// The input is valid: exit code 0 and `needle` on stdout.
fn valid(file: &Path, needle: &str) {
    let out = validate(file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}: valid expected\n{}",
        file.display(),
        head(&out.stderr)
    );
    assert!(stdout.contains(needle), "{}: {stdout}", file.display());
}

/// Writes `text` to `name` in a fresh directory.
fn write(name: &str, text: impl AsRef<[u8]>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write");
    (dir, path)
}

fn nest(open: &str, inner: &str, close: &str, depth: usize) -> String {
    let mut s = String::with_capacity((open.len() + close.len()) * depth + inner.len());
    for _ in 0..depth {
        s.push_str(open);
    }
    s.push_str(inner);
    for _ in 0..depth {
        s.push_str(close);
    }
    s
}

const DEEP: usize = 100_000;

// ---- the checked-in inputs

/// Every checked-in input, with what `validate` must say of it.
const CHECKED_IN: &[(&str, Option<&str>)] = &[
    ("alias-bomb.yaml", Some("YAML too large")),
    ("alias-merge.yaml", Some("YAML too large")),
    ("bom.toml", None),
    ("bom.yaml", None),
    ("cr-only.toml", Some("carriage return")),
    ("crlf-invalid.toml", Some("crlf-invalid.toml:5:1")),
    ("crlf.toml", None),
    ("crlf.yaml", None),
    ("duplicate-keys.toml", Some("duplicate key")),
    ("duplicate-keys.yaml", Some("duplicate mapping key")),
    ("huge-numbers.toml", Some("at most 7 days")),
    ("huge-numbers.yaml", Some("at most 7 days")),
    ("invalid-utf8.toml", Some("not UTF-8 text")),
    ("invalid-utf8.yaml", Some("not UTF-8 text")),
    ("nul-escaped.yaml", Some("unknown unit")),
    ("nul.toml", Some("invalid TOML")),
    ("nul.yaml", Some("invalid YAML")),
    ("regex-bomb.toml", Some("exceeds size limit")),
    ("repeat-huge.toml", Some("from 1 to 1000000")),
];

#[test]
fn every_checked_in_input_gets_an_answer() {
    let mut listed: Vec<&str> = CHECKED_IN.iter().map(|(name, _)| *name).collect();
    listed.sort_unstable();
    let mut present: Vec<String> = std::fs::read_dir(nasty())
        .expect("tests/nasty")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    present.sort_unstable();
    assert_eq!(listed, present, "each file of tests/nasty is listed here");
    let mut failures = String::new();
    for (name, needle) in CHECKED_IN {
        let path = nasty().join(name);
        let result = std::panic::catch_unwind(|| match needle {
            Some(needle) => {
                invalid(&path, needle);
            }
            None => valid(&path, "1 spec valid"),
        });
        if let Err(e) = result {
            let message = e
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| String::from("(no message)"));
            let _ = writeln!(failures, "{name}: {message}");
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn alias_bombs_stop_at_the_limit_of_the_yaml_reader() {
    let stderr = invalid(&nasty().join("alias-bomb.yaml"), "YAML too large");
    assert!(stderr.contains("aliases expanded"), "{stderr}");
}

#[test]
fn regex_bombs_are_refused_with_the_regex_crates_limits() {
    let stderr = invalid(&nasty().join("regex-bomb.toml"), "exceeds size limit");
    // the capture's pattern, the body's, and the one nested 250 deep
    assert_eq!(
        stderr.matches("invalid regular expression").count(),
        3,
        "{stderr}"
    );
    assert!(
        stderr.contains("maximum number of nested parentheses"),
        "{stderr}"
    );
}

// ---- deep nesting

#[test]
fn deeply_nested_toml_arrays_and_tables() {
    for (name, value) in [
        ("arrays.toml", nest("[", "", "]", DEEP)),
        ("tables.toml", nest("{ a = ", "1", " }", DEEP)),
    ] {
        let (_dir, path) = write(
            name,
            format!("[[steps]]\nwait = \"1ms\"\nexpect.that = {value}\n"),
        );
        invalid(&path, "invalid TOML");
    }
}

#[test]
fn deeply_nested_toml_keys() {
    let dotted = vec!["a"; DEEP].join(".");
    let (_dir, path) = write(
        "dotted.toml",
        format!("{dotted} = 1\n[[steps]]\nwait = \"1ms\"\n"),
    );
    invalid(&path, "planrun::");
    let (_dir, path) = write("header.toml", format!("[{dotted}]\nb = 1\n"));
    invalid(&path, "planrun::");
}

#[test]
fn deeply_nested_yaml_flow_and_blocks() {
    let flow_seq = format!(
        "steps:\n  - wait: 1ms\n    expect: {{ that: {} }}\n",
        nest("[", "", "]", DEEP)
    );
    let flow_map = format!(
        "steps:\n  - wait: 1ms\n    expect: {}\n",
        nest("{ a: ", "1", " }", DEEP)
    );
    let mut block = String::from("steps:\n  - wait: 1ms\n    expect:\n");
    for depth in 0..2_000 {
        let _ = writeln!(block, "{}a:", " ".repeat(6 + depth));
    }
    for (name, text) in [
        ("seq.yaml", flow_seq),
        ("map.yaml", flow_map),
        ("block.yaml", block),
    ] {
        let (_dir, path) = write(name, text);
        invalid(&path, "YAML too large");
    }
}

#[test]
fn deeply_nested_inline_json_bodies() {
    let body = nest("[", "1", "]", DEEP);
    let (_dir, path) = write(
        "body.toml",
        format!("[[steps]]\nhttp = {{ post = \"http://127.0.0.1:1/\", json = {body} }}\n"),
    );
    invalid(&path, "invalid TOML");
    let (_dir, path) = write(
        "body.yaml",
        format!("steps:\n  - http: {{ post: \"http://127.0.0.1:1/\", json: {body} }}\n"),
    );
    invalid(&path, "YAML too large");
    // within the readers' limits a nested body is a body
    let body = nest("{ \"a\": [", "1", "] }", 15);
    let (_dir, path) = write(
        "ok.yaml",
        format!("steps:\n  - http: {{ post: \"http://127.0.0.1:1/\", json: {body} }}\n"),
    );
    valid(&path, "1 spec valid");
}

#[test]
fn deeply_nested_templates() {
    for (name, template) in [
        (
            "parens.toml",
            format!("{{{{ {} }}}}", nest("(", "1", ")", DEEP)),
        ),
        (
            "lists.toml",
            format!("{{{{ {} }}}}", nest("[", "", "]", DEEP)),
        ),
        (
            "blocks.toml",
            nest("{% if true %}", "x", "{% endif %}", 10_000),
        ),
    ] {
        let (_dir, path) = write(
            name,
            format!("[[steps]]\nhttp = {{ get = \"http://127.0.0.1:1/{template}\" }}\n"),
        );
        invalid(&path, "invalid template");
    }
}

#[test]
fn deeply_nested_json_paths() {
    for (name, key, needle) in [
        (
            "parens.toml",
            format!("\"$[?{}]\"", nest("(", "@", ")", DEEP)),
            "invalid path",
        ),
        (
            "filters.toml",
            format!("\"$[?{}]\"", nest("@[?", "@", "]", 30)),
            "invalid path",
        ),
        // long, not deep: a path, but not into a `wait` step's result
        (
            "index.toml",
            format!("\"json.a{}\"", "[0]".repeat(DEEP)),
            "has no `json`",
        ),
    ] {
        let (_dir, path) = write(
            name,
            format!("[[steps]]\nwait = \"1ms\"\nexpect.{key} = 1\n"),
        );
        invalid(&path, needle);
    }
    // a path as the key of a table matcher is checked before anything runs
    let (_dir, path) = write(
        "matcher.toml",
        format!(
            "[[steps]]\nhttp = {{ get = \"http://127.0.0.1:1/\" }}\nexpect.json = {{ \"$[?{}]\" = 1 }}\n",
            nest("@[?", "@", "]", 30)
        ),
    );
    invalid(&path, "invalid path");
}

// ---- size

#[test]
fn a_file_over_the_size_limit_is_refused_unread() {
    let mut text = String::from("[[steps]]\nwait = \"1ms\"\n");
    let line = format!("# {}\n", "x".repeat(1000));
    while text.len() <= 9 * 1024 * 1024 {
        text.push_str(&line);
    }
    let (_dir, path) = write("huge.toml", text);
    invalid(&path, "larger than 8 MiB");
}

#[test]
fn a_large_file_of_many_steps_is_planned_within_the_limit() {
    let mut text = String::from("id = \"large\"\nvars.base = \"http://127.0.0.1:1\"\n");
    for i in 0..12_000 {
        let _ = write!(
            text,
            "[[steps]]\nid = \"s{i}\"\nhttp = {{ post = \"{{{{ base }}}}/x/{i}\", json = {{ a = [1, 2, 3] }} }}\nexpect.status = 200\nexpect.json.a = {{ len = 3 }}\n"
        );
    }
    assert!(text.len() > 1024 * 1024);
    let (_dir, path) = write("large.toml", text);
    valid(&path, "1 spec valid (12000 steps)");
}

#[test]
fn very_long_lines() {
    let long = "x".repeat(4 * 1024 * 1024);
    let (_dir, path) = write(
        "long.toml",
        format!("objective = \"{long}\"\n[[steps]]\nwait = \"1ms\"\n"),
    );
    valid(&path, "1 spec valid");
    let long = "x".repeat(1024 * 1024);
    let (_dir, path) = write(
        "long-bad.toml",
        format!("[[steps]]\nwait = \"1ms\"\nexpect.nothing = \"{long}\"\n"),
    );
    invalid(&path, "has no `nothing`");
}

#[test]
fn many_problems_in_one_file() {
    let mut text = String::new();
    for i in 0..5_000 {
        let _ = write!(text, "[[steps]]\nid = \"s{i}\"\nwiat = \"1ms\"\n");
    }
    let (_dir, path) = write("many.toml", text);
    let stderr = invalid(&path, "unknown step kind `wiat`");
    assert!(
        stderr.contains("5000 problems in 1 file"),
        "{}",
        &stderr[stderr.len().saturating_sub(300)..]
    );
}

// ---- the planner

#[test]
fn a_long_needs_cycle_is_named() {
    let n = 10_000;
    let mut text = String::new();
    for i in 0..n {
        let _ = write!(
            text,
            "[[steps]]\nid = \"s{i}\"\nneeds = [\"s{}\"]\nwait = \"1ms\"\n",
            (i + 1) % n
        );
    }
    let (_dir, path) = write("cycle.toml", text);
    let stderr = invalid(&path, "form a cycle");
    assert!(
        stderr.contains("`s9999` -> `s0`"),
        "the whole cycle is named"
    );
}

#[test]
fn a_long_chain_reading_its_first_step() {
    let mut text =
        String::from("[[steps]]\nid = \"s0\"\nwait = \"1ms\"\ncapture.x = \"duration\"\n");
    for i in 1..10_000 {
        let _ = write!(
            text,
            "[[steps]]\nid = \"s{i}\"\nwait = \"1ms\"\nexpect.that = \"{{{{ s0.x >= 0 }}}}\"\n"
        );
    }
    let (_dir, path) = write("chain.toml", text);
    valid(&path, "1 spec valid (10000 steps)");
}

#[test]
fn huge_repeat_and_retry_counts_are_refused() {
    invalid(
        &nasty().join("repeat-huge.toml"),
        "`concurrency` must be a whole number",
    );
}

#[test]
fn include_chains_and_cycles() {
    let dir = tempfile::tempdir().expect("temp dir");
    // a chain of 200 files, each including the next
    for i in 0..200 {
        let next = if i < 199 {
            format!("include = [\"chain{}.toml\"]\n", i + 1)
        } else {
            String::new()
        };
        std::fs::write(
            dir.path().join(format!("chain{i}.toml")),
            format!("{next}[[steps]]\nid = \"c{i}\"\nwait = \"1ms\"\n"),
        )
        .expect("write");
    }
    invalid(
        &dir.path().join("chain0.toml"),
        "nest more than 32 files deep",
    );
    // a cycle through 30 files
    for i in 0..30 {
        std::fs::write(
            dir.path().join(format!("cycle{i}.toml")),
            format!(
                "include = [\"cycle{}.toml\"]\n[[steps]]\nid = \"y{i}\"\nwait = \"1ms\"\n",
                (i + 1) % 30
            ),
        )
        .expect("write");
    }
    invalid(&dir.path().join("cycle0.toml"), "the includes form a cycle");
    // one spec including 500 files
    let mut spec = String::from("include = [");
    for i in 0..500 {
        std::fs::write(
            dir.path().join(format!("part{i}.yaml")),
            format!("steps:\n  - id: p{i}\n    wait: 1ms\n"),
        )
        .expect("write");
        let _ = write!(spec, "\"part{i}.yaml\", ");
    }
    spec.push_str("]\n[[steps]]\nwait = \"1ms\"\n");
    std::fs::write(dir.path().join("wide.toml"), spec).expect("write");
    valid(&dir.path().join("wide.toml"), "1 spec valid (501 steps)");
}

/// A spec's terminal control sequences never reach the terminal: in the
/// snippet, a control character stands as `?` or `¿` (spans still fit); in the
/// message, as an escape. A spec from someone else cannot move the cursor,
/// colour the screen or retitle the window of whoever validates it.
#[test]
fn control_sequences_in_a_spec_are_shown_not_obeyed() {
    // raw control characters in the text: the snippet shows them as `?`
    let (_dir, path) = write(
        "raw.toml",
        "id = \"ESC\"\n[[steps]]\nwait = \"1ms\"\n\"\u{1b}[31mred\u{7}\u{9b}2J\" = 1\n",
    );
    let stderr = invalid(&path, "invalid TOML");
    assert!(
        !stderr.contains(['\u{1b}', '\u{7}', '\u{9b}']),
        "a control character reached the terminal:\n{stderr:?}"
    );
    assert!(
        stderr.contains("\"?[31mred?¿2J\""),
        "the snippet shows them as `?` and `¿`:\n{stderr}"
    );
    // written as escapes, they are in the key's name: the message quotes
    // it escaped
    let (_dir, path) = write(
        "escaped.toml",
        "id = \"ESC\"\n[[steps]]\nwait = \"1ms\"\n\"\\u001b]0;pwned\\u0007\" = 1\n",
    );
    let stderr = invalid(&path, "pwned");
    assert!(
        !stderr.contains(['\u{1b}', '\u{7}']),
        "a control character reached the terminal:\n{stderr:?}"
    );
    assert!(
        stderr.contains("\\u{1b}]0;pwned\\u{7}"),
        "the message shows it escaped:\n{stderr}"
    );
}
