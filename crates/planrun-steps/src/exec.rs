//! `exec`: runs a process, in the foreground (wait for it, capture its output)
//! or in the background (start it, wait until it is ready, stop it when the
//! spec ends).
//!
//! This module owns starting processes, their process groups and the result
//! document. It must not leave anything running: a foreground command's whole
//! group is killed when it exits, times out or its future is dropped; a
//! background process is stopped by a cleanup registered on the spec context,
//! and killed if that cleanup is dropped without running.

mod background;
mod group;
mod output;

use std::fmt::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Instant;

use planrun_runner::executor::{BoxFuture, StepError, StepExecutor, StepInput};
use planrun_spec::kinds::{Exec, ExecConfig};
use planrun_spec::model::StepKind;
use planrun_spec::value::Value;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::util::{millis, span_of};
use group::{ProcessGroup, Signal};
use output::Capture;

/// Runs `exec` steps.
///
/// Foreground result document: `{"exit_code": 0, "signal": null, "stdout": "…",
/// "stderr": "…", "json": <stdout as JSON or null>, "duration": ms, "pid": n}`.
/// `signal` is the number of the signal that ended the process. When the
/// step's timeout passes first, the group is killed and the step is an error
/// that quotes the last line of output.
///
/// Background result document: `{"pid": n, "ready": true, "duration": ms,
/// "ready_after": ms, "ready_line": "…", "ready_match": {…}}`. With
/// `ready = { log = "REGEX" }`, `ready_line` is the first line of output
/// (stdout or stderr, without its line ending) that matched, and
/// `ready_match` its groups as strings: `"0"` the whole match, `"1"`, `"2"`, …
/// by number and named groups by name (a group that took no part is `null`),
/// so `capture.addr = "ready_match.addr"` reads `(?P<addr>…)`. Both are `null`
/// with other kinds of readiness.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExecExecutor;

impl ExecExecutor {
    /// The executor.
    pub fn new() -> Self {
        Self
    }
}

impl StepExecutor for ExecExecutor {
    fn kind(&self) -> StepKind {
        StepKind::Exec
    }

    fn execute<'a>(
        &'a self,
        input: StepInput<'a>,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>> {
        Box::pin(run(input))
    }
}

async fn run(input: StepInput<'_>) -> Result<serde_json::Value, StepError> {
    let config: ExecConfig = crate::util::config::<Exec>(input.config)?;
    let launch = Launch::new(&config, input.ctx.base_dir(), input.config)?;
    if config.background {
        background::start(launch, &config, &input).await
    } else {
        foreground(launch, &config, &input).await
    }
}

/// A command ready to start, and how to name it in messages.
pub(crate) struct Launch {
    command: Command,
    /// The command line as the user wrote it.
    label: String,
    /// The program, for "cannot run" messages.
    program: String,
    span: planrun_spec::value::Span,
}

impl Launch {
    fn new(config: &ExecConfig, base_dir: &Path, value: &Value) -> Result<Self, StepError> {
        let (mut command, label, program) = match (&config.cmd, &config.shell) {
            (Some(argv), None) => {
                let (program, args) = argv
                    .split_first()
                    .ok_or_else(|| StepError::new("`cmd` is empty").at(span_of(value, "cmd")))?;
                let mut command = Command::new(program);
                command.args(args);
                (command, argv.join(" "), program.clone())
            }
            (None, Some(line)) => {
                let mut command = Command::new("/bin/sh");
                command.arg("-c").arg(line);
                (command, line.clone(), String::from("/bin/sh"))
            }
            _ => {
                return Err(StepError::internal(
                    "an `exec` config passed plan-time checks without exactly one command",
                ));
            }
        };
        command.envs(&config.env);
        // relative paths in a spec start at the spec's directory, a process's too
        let cwd = match &config.cwd {
            Some(dir) => Some(base_dir.join(dir)),
            None if base_dir.as_os_str().is_empty() => None,
            None => Some(base_dir.to_path_buf()),
        };
        if let Some(dir) = cwd {
            if !dir.is_dir() {
                return Err(StepError::new(format!(
                    "the working directory `{}` does not exist",
                    dir.display()
                ))
                .at(span_of(value, "cwd"))
                .help("a relative `cwd` starts at the spec file's directory"));
            }
            command.current_dir(dir);
        }
        command
            .stdin(if config.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // its own group, so that stopping it stops what it started
            .process_group(0)
            .kill_on_drop(true);
        Ok(Self {
            command,
            label,
            program,
            span: value.span.clone(),
        })
    }

    /// Starts the process.
    fn spawn(&mut self) -> Result<(tokio::process::Child, ProcessGroup, u32), StepError> {
        let child = self.command.spawn().map_err(|err| self.spawn_error(&err))?;
        let pid = child
            .id()
            .ok_or_else(|| StepError::internal("a process just started has no pid"))?;
        Ok((child, ProcessGroup::new(pid), pid))
    }

    fn spawn_error(&self, err: &std::io::Error) -> StepError {
        let program = &self.program;
        let error = match err.kind() {
            std::io::ErrorKind::NotFound => StepError::new(format!("cannot run `{program}`: program not found")).help(
                "check the name or give a path; `cmd` runs without a shell (use `shell = \"…\"` for pipes, globs and variables)",
            ),
            std::io::ErrorKind::PermissionDenied => {
                StepError::new(format!("cannot run `{program}`: permission denied"))
                    .help("is the file executable? (`chmod +x`)")
            }
            _ => StepError::new(format!("cannot run `{program}`: {err}")),
        };
        error.at(self.span.clone())
    }
}

async fn foreground(
    mut launch: Launch,
    config: &ExecConfig,
    input: &StepInput<'_>,
) -> Result<serde_json::Value, StepError> {
    let started = Instant::now();
    let (mut child, mut group, pid) = launch.spawn()?;
    let cap = usize::try_from(input.max_body).unwrap_or(usize::MAX);
    let mut stdout = Capture::new(cap);
    let mut stderr = Capture::new(cap);
    let stdin_pipe = child.stdin.take();
    let stdout_pipe = child.stdout.take();
    let stderr_pipe = child.stderr.take();
    let stdin_text = config.stdin.as_deref().unwrap_or_default();

    let finished = tokio::time::timeout(input.timeout, async {
        let feed = async {
            if let Some(mut pipe) = stdin_pipe {
                // a program may exit without reading its input; that is its business
                let _ = pipe.write_all(stdin_text.as_bytes()).await;
            }
        };
        let wait = async {
            let status = child.wait().await;
            // leftovers (`server &` in a shell) would hold the pipes open and
            // outlive the step; `background = true` is the way to keep one
            group.signal(Signal::Kill).await;
            status
        };
        let ((), (), (), status) = tokio::join!(
            feed,
            stdout.read_all(stdout_pipe),
            stderr.read_all(stderr_pipe),
            wait
        );
        status
    })
    .await;

    let Ok(status) = finished else {
        group.signal(Signal::Kill).await;
        // reaped so that nothing is left behind; the step failed either way
        let _ = child.wait().await;
        group.disarm();
        return Err(timed_out(&launch, input.timeout, &stdout, &stderr));
    };
    group.disarm();
    let status = status.map_err(|err| {
        StepError::new(format!("cannot wait for `{}`: {err}", launch.label)).at(launch.span.clone())
    })?;

    let stdout_text = stdout.text();
    let json = if stdout.truncated() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(stdout_text.trim()).unwrap_or(serde_json::Value::Null)
    };
    Ok(json!({
        "exit_code": status.code(),
        "signal": status.signal(),
        "stdout": stdout_text,
        "stderr": stderr.text(),
        "json": json,
        "duration": millis(started.elapsed()),
        "pid": pid,
    }))
}

/// The error of a process stopped at the step's time limit, with the last
/// line it wrote (what it was doing is the first question).
fn timed_out(
    launch: &Launch,
    limit: std::time::Duration,
    stdout: &Capture,
    stderr: &Capture,
) -> StepError {
    let mut message = format!(
        "`{}` did not finish within {}: its process group was killed",
        launch.label,
        planrun_spec::duration::Dur(limit)
    );
    for (name, capture) in [("stdout", stdout), ("stderr", stderr)] {
        let text = capture.text();
        if let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) {
            let line: String = line.trim().chars().take(200).collect();
            let _ = write!(message, "; last line on {name}: `{line}`");
        }
    }
    StepError::new(message)
        .at(launch.span.clone())
        .help("raise `timeout` on the step if it needs longer, or run it with `background = true`")
}

/// How a process ended, for messages: `exit code 3`, `signal 9 (SIGKILL)`.
pub(crate) fn describe_status(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    match status.signal() {
        Some(signal) => {
            let name = match signal {
                1 => " (SIGHUP)",
                2 => " (SIGINT)",
                6 => " (SIGABRT)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                13 => " (SIGPIPE)",
                15 => " (SIGTERM)",
                _ => "",
            };
            format!("signal {signal}{name}")
        }
        None => String::from("an unknown status"),
    }
}
