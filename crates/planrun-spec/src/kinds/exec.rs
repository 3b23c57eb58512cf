//! `exec`: run a process, in the foreground or in the background.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{ConfigProblem, EvidenceField, Kind, Problems};
use crate::duration::Dur;

/// The `exec` kind.
pub struct Exec;

impl Kind for Exec {
    const KEY: &'static str = "exec";
    const SUMMARY: &'static str = "Run a process, in the foreground or in the background: `exec = { cmd = [\"psql\", \"-c\", \"select 1\"] }`.";
    const RESULT_FIELDS: &'static [&'static str] = &[
        "exit_code",
        "signal",
        "stdout",
        "stderr",
        "json",
        "duration",
        "pid",
        "ready",
        "ready_after",
        "ready_line",
        "ready_match",
    ];
    const EVIDENCE: &'static [EvidenceField] = &[EvidenceField::last("stderr"), EvidenceField::last("stdout")];
    const PRIVILEGE: Option<&'static str> = Some("starts processes on this machine");
    const PATHS: &'static [&'static str] = &["cwd"];
    type Config = ExecConfig;

    fn check(config: &ExecConfig, problems: &mut Problems) {
        match (&config.cmd, &config.shell) {
            (Some(cmd), None) if cmd.is_empty() => {
                problems.push(ConfigProblem::key("cmd", "`cmd` is empty"));
            }
            (Some(_), None) | (None, Some(_)) => {}
            (None, None) => problems.push(ConfigProblem::whole(
                "an exec step needs `cmd = [\"program\", \"arg\"]` or `shell = \"command line\"`",
            )),
            (Some(_), Some(_)) => {
                problems.push(ConfigProblem::whole("set `cmd` or `shell`, not both"));
            }
        }
        match &config.ready {
            Some(_) if !config.background => problems.push(ConfigProblem::key(
                "ready",
                "`ready` only applies with `background = true`",
            )),
            Some(ready) => problems.note(ready.check()),
            None => {}
        }
    }
}

/// The configuration of an `exec` step.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend(
    "oneOf" = [{"required": ["cmd"]}, {"required": ["shell"]}],
    "dependentSchemas" = {"ready": {
        "required": ["background"],
        "properties": {"background": {"const": true}}
    }}
))]
pub struct ExecConfig {
    /// The program and its arguments, run without a shell.
    #[schemars(length(min = 1), extend("examples" = [["psql", "-c", "select 1"]]))]
    pub cmd: Option<Vec<String>>,
    /// A command line run by `/bin/sh -c`.
    #[schemars(extend("examples" = ["echo hello | tr a-z A-Z"]))]
    pub shell: Option<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory (relative paths are relative to the spec file).
    pub cwd: Option<String>,
    /// Text written to standard input.
    pub stdin: Option<String>,
    /// Keep it running for the rest of the spec; stopped when the spec ends.
    #[serde(default)]
    pub background: bool,
    /// When a background process counts as ready (with `background = true`).
    #[schemars(extend("examples" = [{"tcp": "127.0.0.1:8080"}, {"log": "listening on"}]))]
    pub ready: Option<Readiness>,
    /// How long to wait for readiness (default 30s).
    pub ready_timeout: Option<Dur>,
    /// Grace period between SIGTERM and SIGKILL when stopping (default 5s).
    pub stop_timeout: Option<Dur>,
}

impl ExecConfig {
    /// What is wrong with the command, if anything.
    pub fn check(&self) -> Result<(), ConfigProblem> {
        let mut problems = Problems::default();
        Exec::check(self, &mut problems);
        problems.first()
    }
}

/// When something counts as ready. Exactly one of `tcp`, `http`, `log`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{"required": ["tcp"]}, {"required": ["http"]}, {"required": ["log"]}]))]
pub struct Readiness {
    /// A TCP address that accepts connections (`127.0.0.1:8080`).
    pub tcp: Option<String>,
    /// An HTTP URL that answers with a 2xx or 3xx status.
    pub http: Option<String>,
    /// A regular expression that a line of the process's (or the
    /// container's) output matches.
    pub log: Option<String>,
    /// Pause between checks (default 100ms).
    pub interval: Option<Dur>,
}

impl Readiness {
    /// What is wrong, if anything.
    pub fn check(&self) -> Result<(), ConfigProblem> {
        let n = [self.tcp.is_some(), self.http.is_some(), self.log.is_some()]
            .into_iter()
            .filter(|b| *b)
            .count();
        if n == 1 {
            Ok(())
        } else {
            Err(ConfigProblem::key(
                "ready",
                "set exactly one of `tcp`, `http` or `log`",
            ))
        }
    }
}
