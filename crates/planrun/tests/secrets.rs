//! Secrets stay out of every output: one spec that uses a canary secret in
//! every way a spec can (a `--secret` variable, a secret variable read from
//! the environment, a secret capture, template filters, `basic_auth`
//! written literally) against a fixture server that echoes it back in
//! bodies and headers, in several encodings, failing on purpose so that
//! evidence, diffs and errors are shown. The real binary runs it with every
//! reporter; neither the canary nor any form derived from it may appear,
//! and `***` must stand where it was.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use planrun_testkit::FixtureServer;

/// Non-ASCII (for the re-encodings), with characters that URLs, JSON and
/// HTML escape.
const CANARY: &str = "Kañ@ry/Zq7+s3cr3t \"x\"";

/// The spec; `CANARY_TOML` is the canary as a TOML string's content.
const SPEC: &str = r#"
id = "SECRETS-1"
name = "secrets stay hidden"
defaults.needs = []

[vars]
base_url = "http://unset"
canary = "unset"
from_env = { env = "PLANRUN_CANARY", secret = true }
user = "qa"

# the server hands the secret back; the capture is secret
[[steps]]
id = "login"
http = { post = "{{ base_url }}/echo/login", json = { token = "{{ from_env }}" } }
capture.token = { from = "json.json.token", secret = true }
expect.status = 200

# every filter, in the URL, the headers and the body, echoed back
[[steps]]
id = "forms"
retry = { attempts = 2, interval = "10ms" }
http = { post = "{{ base_url }}/echo/forms?t={{ canary | urlencode }}", headers = { Authorization = "Basic {{ (user ~ ':' ~ canary) | b64encode }}", X-Hex = "{{ canary | hex }}", X-Json = "{{ canary | tojson | b64encode }}" }, json = { raw = "{{ canary }}", quoted = "{{ canary | tojson }}" } }
expect.status = 299
expect.json.json.raw = "{{ canary }}-not"

# the captured secret, through filters
[[steps]]
id = "captured"
needs = ["login"]
http = { post = "{{ base_url }}/echo/captured", headers = { X-Token = "{{ login.token | b64encode }}" }, body = "token={{ login.token | urlencode }}" }
expect.body = { contains = "{{ login.token }}!" }

# basic authentication, the password written as it is
[[steps]]
id = "basic"
http = { get = "{{ base_url }}/reflect/utf8", basic_auth = { user = "qa", password = "CANARY_TOML" } }
expect.status = 299

# a server that echoes the secret in other encodings
[[steps]]
id = "latin1"
http = { post = "{{ base_url }}/reflect/latin1", body = "{{ canary }}" }
expect.body = "nothing"

[[steps]]
id = "mojibake"
http = { post = "{{ base_url }}/reflect/mojibake", body = "{{ canary }}" }
expect.body = "nothing"

[[steps]]
id = "json-ascii"
http = { post = "{{ base_url }}/reflect/json-ascii", body = "{{ canary }}" }
expect.json.echo = "nothing"

[[steps]]
id = "percent"
http = { post = "{{ base_url }}/reflect/percent", body = "{{ canary }}" }
expect.body = "nothing"

[[steps]]
id = "html"
http = { post = "{{ base_url }}/reflect/html", body = "{{ canary }}" }
expect.body = "nothing"

# an error whose message holds the URL
[[steps]]
id = "broken"
http = { get = "{{ base_url }}:{{ canary | urlencode }}/x" }
"#;

/// The canary and every form derived from it that the spec makes or the
/// server echoes.
fn forms() -> Vec<(String, String)> {
    let mut forms = vec![(String::from("as written"), CANARY.to_string())];
    let json = serde_json::to_string(CANARY).expect("a string");
    forms.push((String::from("JSON"), json[1..json.len() - 1].to_string()));
    let ascii_json: String = json[1..json.len() - 1]
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\u{:04x}", u32::from(c))
            }
        })
        .collect();
    forms.push((String::from("JSON, ASCII only"), ascii_json));
    let percent = |form: bool| -> String {
        CANARY
            .bytes()
            .map(|b| match b {
                b if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => char::from(b).to_string(),
                b' ' if form => String::from("+"),
                b => format!("%{b:02X}"),
            })
            .collect()
    };
    forms.push((String::from("percent-encoded"), percent(false)));
    forms.push((String::from("form-encoded"), percent(true)));
    forms.push((
        String::from("Latin-1, percent-encoded"),
        CANARY
            .chars()
            .map(|c| match u8::try_from(u32::from(c)) {
                Ok(b) if b.is_ascii_alphanumeric() => char::from(b).to_string(),
                Ok(b) => format!("%{b:02X}"),
                Err(_) => String::from("?"),
            })
            .collect(),
    ));
    forms.push((
        String::from("Latin-1 read as UTF-8"),
        CANARY
            .chars()
            .map(|c| if c.is_ascii() { c } else { '\u{fffd}' })
            .collect(),
    ));
    forms.push((
        String::from("UTF-8 read as Latin-1"),
        CANARY.bytes().map(char::from).collect(),
    ));
    forms.push((
        String::from("HTML"),
        CANARY
            .chars()
            .map(|c| match c {
                '"' => String::from("&quot;"),
                c if c.is_ascii() => c.to_string(),
                c => format!("&#{};", u32::from(c)),
            })
            .collect(),
    ));
    let hex = CANARY.bytes().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    });
    forms.push((String::from("hex"), hex.to_uppercase()));
    forms.push((String::from("hex"), hex));
    for data in [CANARY.to_string(), format!("qa:{CANARY}"), json.clone()] {
        for (name, engine) in [
            ("base64", &STANDARD),
            ("base64, no padding", &STANDARD_NO_PAD),
            ("URL-safe base64", &URL_SAFE),
            ("URL-safe base64, no padding", &URL_SAFE_NO_PAD),
        ] {
            forms.push((
                format!("{name} of `{data}`"),
                engine.encode(data.as_bytes()),
            ));
        }
    }
    // what comes from the canary alone in `base64(prefix ~ canary)`, at each
    // alignment: the part a partial masking would leave
    for prefix in ["", "q", "qa"] {
        let data = format!("{prefix}{CANARY}");
        let encoded = STANDARD_NO_PAD.encode(data.as_bytes());
        let from = (8 * prefix.len()).div_ceil(6);
        forms.push((
            format!("base64 of the canary after {} bytes", prefix.len()),
            encoded[from..from + 16].to_string(),
        ));
    }
    forms
}

fn run(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_planrun"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("PLANRUN_CANARY", CANARY)
        .current_dir(dir)
        .output()
        .expect("planrun runs")
}

#[track_caller]
fn assert_hidden(what: &str, text: &str) {
    for (name, form) in forms() {
        assert!(
            !text.contains(&form),
            "{what} shows the canary ({name}: `{form}`):\n{text}"
        );
    }
    assert!(text.contains("***"), "{what} shows no `***`:\n{text}");
}

#[test]
fn a_canary_secret_is_hidden_in_every_output() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(FixtureServer::start());
    let dir = tempfile::tempdir().expect("a temporary directory");
    let canary_toml = serde_json::to_string(CANARY).expect("a string");
    let spec = SPEC.replace("CANARY_TOML", &canary_toml[1..canary_toml.len() - 1]);
    std::fs::write(dir.path().join("secrets.toml"), spec).expect("the spec is written");
    let base_url = format!("base_url=http://{}", server.addr);
    let secret = format!("canary={CANARY}");

    let out = run(
        &[
            "run",
            "secrets.toml",
            "--var",
            &base_url,
            "--secret",
            &secret,
            "-vv",
            "--report",
            "junit=report.xml",
            "--report",
            "json=report.json",
            "--report",
            "markdown=report.md",
        ],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the spec fails on purpose\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let terminal = format!("{stdout}{stderr}");
    assert_hidden("the terminal (-vv)", &terminal);
    // the run did show what it did: requests, responses, evidence
    for shown in [
        "> POST ",
        "< HTTP/1.1 200",
        "authorization: ***",
        "x-reflect: ***",
    ] {
        assert!(terminal.contains(shown), "`{shown}` in\n{terminal}");
    }
    for report in ["report.xml", "report.json", "report.md"] {
        let text = std::fs::read_to_string(dir.path().join(report)).expect("the report");
        assert_hidden(report, &text);
    }

    // the JSON report records no secret request header
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("report.json")).expect("the JSON report"),
    )
    .expect("JSON");
    let steps = json["specs"][0]["report"]["steps"]
        .as_array()
        .expect("the steps");
    let header = |id: &str, name: &str| {
        steps
            .iter()
            .find(|s| s["id"] == id)
            .and_then(|s| s["result"]["request"]["headers"].get(name))
            .cloned()
            .unwrap_or_else(|| panic!("step `{id}` sent `{name}`: {steps:?}"))
    };
    for (id, name) in [
        ("forms", "authorization"),
        ("forms", "x-hex"),
        ("forms", "x-json"),
        ("captured", "x-token"),
        ("basic", "authorization"),
    ] {
        assert_eq!(header(id, name), "***", "{id}: {name}");
    }
    // every step ran as meant: the server answered all but `broken`
    let status = |id: &str| {
        steps
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["status"].clone())
    };
    assert_eq!(status("login"), Some("passed".into()));
    assert_eq!(status("broken"), Some("errored".into()));
    for id in ["forms", "captured", "basic", "latin1", "json-ascii", "html"] {
        assert_eq!(status(id), Some("failed".into()), "{id}");
    }

    // `planrun curl` prints the step with the password hidden
    for (step, shown) in [
        ("basic", "-u 'qa:***'"),
        ("forms", "-H 'Authorization: ***'"),
    ] {
        let out = run(
            &[
                "curl",
                "secrets.toml",
                step,
                "--var",
                &base_url,
                "--secret",
                &secret,
            ],
            dir.path(),
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert_hidden("planrun curl", &text);
        assert!(text.contains(shown), "`{shown}` in\n{text}");
    }
}

#[test]
fn curl_prints_the_basic_auth_password_only_when_asked() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        dir.path().join("auth.toml"),
        "id = \"AUTH\"\nvars = { password = \"pw\" }\n[[steps]]\nid = \"me\"\nhttp = { get = \"http://127.0.0.1:9/me\", basic_auth = { user = \"qa\", password = \"{{ password }}-1\" } }\n",
    )
    .expect("the spec is written");
    let text = |out: Output| {
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // the variable is not marked secret: the password is anyway
    let hidden = text(run(&["curl", "auth.toml", "me"], dir.path()));
    assert!(hidden.contains("  -u 'qa:***'"), "{hidden}");
    assert!(!hidden.contains("pw-1"), "{hidden}");
    let shown = text(run(
        &["curl", "auth.toml", "me", "--show-secrets"],
        dir.path(),
    ));
    assert!(shown.contains("  -u qa:pw-1"), "{shown}");
}
