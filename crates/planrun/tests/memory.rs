//! What a long run holds: hundreds of specs, all three file reporters on,
//! and a peak resident size that does not grow with the number of specs;
//! what planning one spec of many steps holds, read a step at a time; and
//! what running it holds, its steps' reports passed on as they finish.
//!
//! The binary's peak is read from the kernel (the resource usage of a
//! waited-for child), so the check is on memory really held, not on what
//! was reserved. The steps
//! are pauses of no length: what is measured is what planning and reporting
//! keep per step, not what a protocol holds.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// The most a long run may hold, whatever its length.
const LIMIT_MIB: i64 = 64;

/// Writes `specs` spec files of `steps` steps each under `dir`.
fn write_specs(dir: &Path, specs: usize, steps: usize) {
    let mut body = String::new();
    for i in 0..steps {
        let _ = write!(
            body,
            "[[steps]]\nid = \"pause-{i}\"\nwait = \"0s\"\nexpect.ready = true\nexpect.attempts = 0\n"
        );
    }
    for k in 0..specs {
        std::fs::write(
            dir.join(format!("s{k:04}.toml")),
            format!("id = \"LONG-{k}\"\nname = \"Spec {k}\"\n{body}"),
        )
        .expect("write a spec");
    }
}

/// Runs planrun with `args`; returns its exit code and peak resident size
/// in MiB, as the kernel counts it for a waited-for child (python3's
/// `resource`, which the test command installs: the workspace has no
/// unsafe code to call `wait4` with).
fn peak_of(args: &[&str], cwd: &Path) -> (i32, i64) {
    const MEASURE: &str = "import resource, subprocess, sys\n\
        err = open('planrun.stderr', 'w')\n\
        code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=err).returncode\n\
        print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)";
    let out = Command::new("python3")
        .arg("-c")
        .arg(MEASURE)
        .arg(env!("CARGO_BIN_EXE_planrun"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("python3 runs planrun and reads its peak memory; is it installed?");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    let (Some(code), Some(kib)) = (words.next(), words.next()) else {
        panic!("no measure: {text}");
    };
    (
        code.parse().expect("an exit code"),
        kib.parse::<i64>().expect("KiB") / 1024,
    )
}

#[test]
fn a_long_run_of_many_specs_stays_small() {
    let dir = tempfile::tempdir().expect("tempdir");
    let specs = dir.path().join("specs");
    std::fs::create_dir(&specs).expect("mkdir");
    // 15,000 steps: held whole, plans and reports took about 120 MiB
    write_specs(&specs, 150, 100);
    let (code, mib) = peak_of(
        &[
            "run",
            "specs",
            // eight specs at a time
            "-j",
            "8",
            "--report",
            "json=out/r.json",
            "--report",
            "junit=out/r.xml",
            "--report",
            "markdown=out/r.md",
        ],
        dir.path(),
    );
    let stderr = std::fs::read_to_string(dir.path().join("planrun.stderr")).unwrap_or_default();
    assert_eq!(code, 0, "the run passes: {}", tail(&stderr));
    eprintln!("peak: {mib} MiB");
    // the reports are whole: every spec and every step is in each of them
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/r.json")).expect("the JSON report"),
    )
    .expect("JSON");
    let reported = json["specs"].as_array().expect("specs");
    assert_eq!(reported.len(), 150);
    assert!(reported.iter().all(
        |s| s["report"]["steps"].as_array().map(Vec::len) == Some(100)
            && s["report"]["status"] == "passed"
    ));
    let junit = std::fs::read_to_string(dir.path().join("out/r.xml")).expect("the JUnit report");
    assert_eq!(junit.matches("<testcase ").count(), 15_000);
    assert!(junit.contains("tests=\"15000\""), "{junit:.300}");
    let markdown = std::fs::read_to_string(dir.path().join("out/r.md")).expect("markdown");
    assert!(markdown.contains("| 100/100 |"), "{markdown:.400}");
    assert!(
        mib < LIMIT_MIB,
        "a run of 150 specs of 100 steps peaked at {mib} MiB (limit {LIMIT_MIB} MiB)"
    );
}

/// The last lines of `text`.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[test]
fn one_spec_of_many_steps_is_read_a_step_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 20,000 steps in one file: read whole, planning it took about 270 MiB
    write_specs(dir.path(), 1, 20_000);
    let (code, mib) = peak_of(&["validate", "s0000.toml"], dir.path());
    let stderr = std::fs::read_to_string(dir.path().join("planrun.stderr")).unwrap_or_default();
    assert_eq!(code, 0, "the spec is valid: {}", tail(&stderr));
    eprintln!("validate peak: {mib} MiB");
    assert!(
        mib < LIMIT_MIB,
        "planning one spec of 20,000 steps peaked at {mib} MiB (limit {LIMIT_MIB} MiB)"
    );

    // a shorter one runs: each step is read again from the file as it
    // starts, and a failure still points at its line
    let mut text =
        String::from("id = \"MANY\"\nvars.token = { value = \"s3cr3t-t0ken\", secret = true }\n");
    for i in 0..1_200 {
        let _ = write!(
            text,
            "[[steps]]\nid = \"pause-{i}\"\nwait = \"0s\"\n[steps.expect]\nready = true\n"
        );
    }
    text.push_str("[[steps]]\nid = \"last\"\nexec = { cmd = [\"echo\", \"{{ token }}\"] }\nexpect.stdout = { contains = \"no such thing\" }\n");
    std::fs::write(dir.path().join("many.toml"), &text).expect("write");
    let last_line = text.lines().count();
    let out = Command::new(env!("CARGO_BIN_EXE_planrun"))
        .args(["run", "many.toml", "--report", "json=r.json"])
        .current_dir(dir.path())
        .output()
        .expect("planrun runs");
    let shown = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the last step fails: {}",
        tail(&shown)
    );
    assert!(
        shown.contains(&format!("many.toml:{last_line}:")),
        "{}",
        tail(&shown)
    );
    assert!(
        !shown.contains("s3cr3t-t0ken"),
        "the secret is hidden: {}",
        tail(&shown)
    );
    let json = std::fs::read_to_string(dir.path().join("r.json")).expect("the JSON report");
    assert!(
        !json.contains("s3cr3t-t0ken"),
        "the secret is hidden in the JSON report"
    );
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let steps = json["specs"][0]["report"]["steps"]
        .as_array()
        .expect("steps");
    assert_eq!(steps.len(), 1_201);
    assert!(steps[..1_200].iter().all(|s| s["status"] == "passed"));
    assert_eq!(steps[1_200]["status"], "failed");
    assert_eq!(steps[1_200]["expectations"][0]["span"]["line"], last_line);
}

#[test]
fn one_spec_of_many_steps_runs_without_keeping_its_steps_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 20,000 steps that pass at once, then one that fails: the runner, the
    // terminal and the file reports each kept every step's report, and the
    // events of steps that finish at once piled up waiting for the reporters
    let mut text = String::from("id = \"LONG\"\n");
    for i in 0..20_000 {
        let _ = write!(
            text,
            "[[steps]]\nid = \"pause-{i}\"\nwait = \"0s\"\nexpect.ready = true\nexpect.attempts = 0\n"
        );
    }
    text.push_str("[[steps]]\nid = \"last\"\nexec = { cmd = [\"echo\", \"hello\"] }\nexpect.stdout = { contains = \"no such thing\" }\n");
    std::fs::write(dir.path().join("long.toml"), &text).expect("write");
    let (code, mib) = peak_of(
        &[
            "run",
            "long.toml",
            "--report",
            "json=out/r.json",
            "--report",
            "junit=out/r.xml",
            "--report",
            "markdown=out/r.md",
        ],
        dir.path(),
    );
    let stderr = std::fs::read_to_string(dir.path().join("planrun.stderr")).unwrap_or_default();
    assert_eq!(code, 1, "the last step fails: {}", tail(&stderr));
    eprintln!("run peak: {mib} MiB");

    // the terminal lists the first passed steps, counts the others where
    // they stand, and shows the failure with its evidence
    assert!(stderr.contains("  ✓ pause-199 "), "{}", tail(&stderr));
    assert!(!stderr.contains("pause-200 "), "{}", tail(&stderr));
    let unlisted = stderr
        .find("  ✓ and 19800 more steps that passed (`-v` lists every step)\n")
        .expect("the passed steps not listed are counted");
    let failed = stderr.find("  ✗ last").expect("the failed step is shown");
    assert!(unlisted < failed, "{}", tail(&stderr));
    assert!(stderr.contains("hello"), "{}", tail(&stderr));
    assert!(
        stderr.contains("✗ LONG failed  20001 steps: 20000 passed, 1 failed"),
        "{}",
        tail(&stderr)
    );

    // every file report has every step
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/r.json")).expect("the JSON report"),
    )
    .expect("JSON");
    let report = &json["specs"][0]["report"];
    let steps = report["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 20_001);
    assert!(steps[..20_000].iter().all(|s| s["status"] == "passed"));
    assert_eq!(steps[20_000]["status"], "failed");
    assert_eq!(report["counts"]["passed"], 20_000);
    assert_eq!(report["counts"]["failed"], 1);
    let junit = std::fs::read_to_string(dir.path().join("out/r.xml")).expect("the JUnit report");
    assert_eq!(junit.matches("<testcase ").count(), 20_001);
    assert!(
        junit.contains(
            "<testsuite name=\"LONG\" tests=\"20001\" skipped=\"0\" errors=\"0\" failures=\"1\""
        ),
        "{junit:.400}"
    );
    let markdown = std::fs::read_to_string(dir.path().join("out/r.md")).expect("markdown");
    assert!(markdown.contains("| 20000/20001 |"), "{markdown:.400}");
    assert!(
        markdown.contains("#### ✗ `last` (exec) failed"),
        "{markdown:.800}"
    );

    assert!(
        mib < LIMIT_MIB,
        "a run of one spec of 20,001 steps peaked at {mib} MiB (limit {LIMIT_MIB} MiB)"
    );
}
