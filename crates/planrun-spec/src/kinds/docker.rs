//! `docker`: images, containers and what runs in them, through the Docker
//! Engine API. A step does one thing, named by its one action key: `build`,
//! `image`, `run`, `exec`, `inspect`, `logs`, `stats`, `stop`, `kill`,
//! `remove` or `compose`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{ConfigPlace, ConfigProblem, EvidenceField, Kind, Problems, Readiness};
use crate::duration::Dur;

/// The `docker` kind.
pub struct Docker;

/// Every action key, in documentation order.
pub const DOCKER_ACTIONS: &[&str] = &[
    "build", "image", "run", "exec", "inspect", "logs", "stats", "stop", "kill", "remove",
    "compose",
];

impl Kind for Docker {
    const KEY: &'static str = "docker";
    const SUMMARY: &'static str = "Build an image, run a container, exec in it, read its state or logs, through the Docker engine: `docker = { exec = { container = \"asgi\", cmd = [\"wget\", \"-qO-\", \"http://localhost:8000/health/\"] } }`.";
    const RESULT_FIELDS: &'static [&'static str] = &[
        "action",
        "id",
        "name",
        "image",
        "tags",
        "size",
        "labels",
        "exists",
        "status",
        "running",
        "health",
        "exit_code",
        "oom_killed",
        "restart_count",
        "ports",
        "stdout",
        "stderr",
        "json",
        "log",
        "logs",
        "lines",
        "removed",
        "ready_after",
        "ready_line",
        "ready_match",
        "samples",
        "cpu_percent",
        "cpu_max",
        "cpu_mean",
        "memory_usage",
        "memory_max",
        "memory_limit",
        "memory_percent",
        "net_rx_bytes",
        "net_tx_bytes",
        "block_read_bytes",
        "block_write_bytes",
        "pids",
        "project",
        "services",
        "containers",
        "up",
        "duration",
    ];
    const EVIDENCE: &'static [EvidenceField] = &[
        EvidenceField::last("log"),
        EvidenceField::last("logs"),
        EvidenceField::last("stderr"),
        EvidenceField::last("stdout"),
    ];
    const PRIVILEGE: Option<&'static str> =
        Some("talks to the Docker engine, which starts containers and reads files on this machine");
    const PATHS: &'static [&'static str] = &["build.context", "run.mounts.*", "compose.file"];
    type Config = DockerConfig;

    fn check(config: &DockerConfig, problems: &mut Problems) {
        let set: Vec<&str> = [
            config.build.is_some(),
            config.image.is_some(),
            config.run.is_some(),
            config.exec.is_some(),
            config.inspect.is_some(),
            config.logs.is_some(),
            config.stats.is_some(),
            config.stop.is_some(),
            config.kill.is_some(),
            config.remove.is_some(),
            config.compose.is_some(),
        ]
        .into_iter()
        .zip(DOCKER_ACTIONS)
        .filter_map(|(set, key)| set.then_some(*key))
        .collect();
        match set.as_slice() {
            [] => problems.push(ConfigProblem::whole(format!(
                "a docker step needs one action: {}",
                list(DOCKER_ACTIONS)
            ))),
            [_] => {}
            [first, rest @ ..] => {
                for other in rest {
                    problems.push(ConfigProblem::key(
                        other,
                        format!("a docker step does one thing: `{first}` and `{other}` are both set"),
                    ));
                }
            }
        }
        // each action's own rules, for every action set
        if let Some(build) = &config.build
            && build.tag.trim().is_empty()
        {
            problems.push(ConfigProblem::key("build.tag", "`tag` is empty"));
        }
        if let Some(build) = &config.build
            && build.tags.iter().any(|t| t.trim().is_empty())
        {
            problems.push(ConfigProblem::key("build.tags", "a tag in `tags` is empty"));
        }
        if let Some(run) = &config.run {
            if run.cmd.as_ref().is_some_and(Vec::is_empty) {
                problems.push(ConfigProblem::key("run.cmd", "`cmd` is empty"));
            }
            if let Some(health) = &run.healthcheck
                && health.cmd.is_empty()
            {
                problems.push(ConfigProblem::key("run.healthcheck.cmd", "`cmd` is empty"));
            }
            if let Some(ready) = &run.ready {
                if let Err(mut problem) = ready.check() {
                    problem.at = ConfigPlace::Key("run.ready");
                    problems.push(problem);
                }
                if matches!(run.wait, Some(DockerWait::Exited | DockerWait::None)) {
                    problems.push(ConfigProblem::key(
                        "run.ready",
                        "`ready` goes with `wait = \"running\"` or `\"healthy\"`",
                    ));
                }
            }
        }
        if let Some(compose) = &config.compose {
            let command = compose.command.unwrap_or(ComposeCommand::Status);
            if compose.file.is_none() && command != ComposeCommand::Status {
                problems.push(ConfigProblem::key(
                    "compose",
                    "`up` and `down` need the Compose `file`",
                ));
            }
            if compose.project.trim().is_empty() {
                problems.push(ConfigProblem::key("compose.project", "`project` is empty"));
            }
        }
        if let Some(exec) = &config.exec
            && exec.cmd.is_empty()
        {
            problems.push(ConfigProblem::key("exec.cmd", "`cmd` is empty"));
        }
    }
}

fn list(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The configuration of a `docker` step: exactly one action.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["build"]}, {"required": ["image"]}, {"required": ["run"]},
    {"required": ["exec"]}, {"required": ["inspect"]}, {"required": ["logs"]},
    {"required": ["stats"]}, {"required": ["stop"]}, {"required": ["kill"]},
    {"required": ["remove"]},
    {"required": ["compose"]}
]))]
pub struct DockerConfig {
    /// Build an image from a directory (removed at the end of the run).
    pub build: Option<DockerBuild>,
    /// Look an image up by reference: `exists`, `id`, `tags`, `size`, `labels`.
    #[schemars(extend("examples" = ["planrun-demo:latest"]))]
    pub image: Option<String>,
    /// Create and start a container (removed at the end of the run).
    pub run: Option<DockerRun>,
    /// Run a command in a running container.
    pub exec: Option<DockerExec>,
    /// A container's state, by name or id: `exists`, `status`, `running`,
    /// `health`, `exit_code`, `oom_killed`, `restart_count`, `ports`.
    #[schemars(extend("examples" = ["asgi"]))]
    pub inspect: Option<String>,
    /// A container's output.
    pub logs: Option<DockerLogs>,
    /// A container's CPU, memory, network and disk use: one sample, or a
    /// series over `duration` with its maximum and mean.
    pub stats: Option<DockerStats>,
    /// Stop a container (SIGTERM, then SIGKILL after `timeout`).
    pub stop: Option<DockerStop>,
    /// Send a container a signal (default `SIGKILL`).
    pub kill: Option<DockerKill>,
    /// Remove a container, stopping it first.
    #[schemars(extend("examples" = ["asgi"]))]
    pub remove: Option<String>,
    /// A Compose project: bring it up, take it down, or read its services'
    /// state.
    pub compose: Option<DockerCompose>,
}

/// `compose`: a Compose project, through the `docker compose` or
/// `docker-compose` command for `up` and `down`, and the engine for the
/// rest.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerCompose {
    /// The Compose file, relative to the spec file (`up` and `down` need
    /// it).
    #[schemars(extend("examples" = ["stack/docker-compose.yml"]))]
    pub file: Option<String>,
    /// The project's name: its containers carry it (the label
    /// `com.docker.compose.project`).
    pub project: String,
    /// `up` (start it detached, then wait), `down` (stop it and remove its
    /// containers, networks and volumes) or `status` (default: each
    /// service's state, read from the engine).
    pub command: Option<ComposeCommand>,
    /// With `up`: what to wait for, `running` (default: every container
    /// running) or `healthy` (and every one with a health check healthy),
    /// or `none`.
    pub wait: Option<DockerWait>,
    /// With `up`: only these services (default: all).
    #[serde(default)]
    pub services: Vec<String>,
    /// With `up`: build the images the file builds first (`--build`).
    #[serde(default)]
    pub build: bool,
    /// Variables for the Compose file's `${NAME}`s.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// What a `compose` step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComposeCommand {
    /// `up -d`, then wait.
    Up,
    /// `down -v`.
    Down,
    /// The services' state.
    Status,
}

/// `build`: an image from a directory.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerBuild {
    /// The build context: a directory, relative to the spec file. Its
    /// `.dockerignore` is honoured.
    #[schemars(extend("examples" = ["docker/app"]))]
    pub context: String,
    /// The Dockerfile, relative to the context (default `Dockerfile`).
    pub dockerfile: Option<String>,
    /// The image's name and tag.
    #[schemars(extend("examples" = ["planrun-demo:test"]))]
    pub tag: String,
    /// More names for the image (`planrun-demo:latest`), removed with it.
    #[serde(default)]
    #[schemars(extend("examples" = [["planrun-demo:latest"]]))]
    pub tags: Vec<String>,
    /// Build arguments (`ARG`).
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    /// The stage to build, in a multi-stage Dockerfile.
    pub target: Option<String>,
    /// Labels for the image.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `run`: a container, created and started.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerRun {
    /// The image.
    pub image: String,
    /// The container's name (other steps use it; it must be free).
    pub name: Option<String>,
    /// The command, instead of the image's.
    pub cmd: Option<Vec<String>>,
    /// The entrypoint, instead of the image's.
    pub entrypoint: Option<Vec<String>>,
    /// Environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Ports to publish: container port (`8000`, `8000/tcp`, `53/udp`) to a
    /// host address (`127.0.0.1:8080`; port `0` or none picks a free one).
    /// The result's `ports` says where each was published.
    #[serde(default)]
    #[schemars(extend("examples" = [{"8000/tcp": "127.0.0.1:0"}]))]
    pub ports: BTreeMap<String, String>,
    /// Host directories or files to mount: the path in the container to the
    /// path on this machine (relative to the spec file); `:ro` after the
    /// host path mounts it read-only.
    #[serde(default)]
    #[schemars(extend("examples" = [{"/data": "./fixtures:ro"}]))]
    pub mounts: BTreeMap<String, String>,
    /// Named volumes to mount: the path in the container to the volume's
    /// name (created if missing, removed at the end of the run if it was).
    #[serde(default)]
    pub volumes: BTreeMap<String, String>,
    /// A network to join (created if missing, removed at the end of the run
    /// if it was), where other containers reach this one by its name.
    pub network: Option<String>,
    /// Labels for the container.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The user to run as.
    pub user: Option<String>,
    /// The working directory in the container.
    pub workdir: Option<String>,
    /// A health check, instead of the image's.
    pub healthcheck: Option<DockerHealthcheck>,
    /// What to wait for before the step ends: `running` (default), `healthy`
    /// (the engine's health check passes: the image's, or `healthcheck`;
    /// for a container without one, `ready` passes, or else every
    /// published TCP port accepts connections), `exited` (the container
    /// ends; `exit_code` says how), or `none`.
    pub wait: Option<DockerWait>,
    /// A readiness probe, checked once the container is running (or
    /// healthy): `{ tcp = "8000" }` (a published container port accepts
    /// connections), `{ http = "http://localhost:8000/health/" }` (answers
    /// 2xx or 3xx) or `{ log = "regex" }` (a line of its output matches).
    /// An address on `localhost` whose port the container publishes is
    /// asked where it was published.
    pub ready: Option<Readiness>,
}

/// What a `run` step waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DockerWait {
    /// The container is running.
    Running,
    /// Its health check passes.
    Healthy,
    /// It has exited.
    Exited,
    /// Nothing: the step ends once it is started.
    None,
}

/// A container's health check.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerHealthcheck {
    /// The command, run in the container; exit code 0 is healthy.
    #[schemars(extend("examples" = [["wget", "-qO-", "http://127.0.0.1:8000/health/"]]))]
    pub cmd: Vec<String>,
    /// Pause between checks (default 1s).
    pub interval: Option<Dur>,
    /// Time limit of one check (default 5s).
    pub timeout: Option<Dur>,
    /// Failed checks in a row that make the container unhealthy (default 3).
    pub retries: Option<u32>,
    /// Time after start during which failed checks do not count (default 0s).
    pub start_period: Option<Dur>,
}

/// `exec`: a command in a running container.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerExec {
    /// The container, by name or id.
    pub container: String,
    /// The program and its arguments.
    #[schemars(length(min = 1))]
    pub cmd: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The user to run as.
    pub user: Option<String>,
    /// The working directory.
    pub workdir: Option<String>,
}

/// `logs`: what a container wrote.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerLogs {
    /// The container, by name or id.
    pub container: String,
    /// Only the last lines (default: all, up to the step's `max_body`).
    pub tail: Option<u64>,
    /// Only what was written in this last stretch of time (`30s`).
    pub since: Option<Dur>,
    /// Only what was written before this long ago (`5s`): with `since`, a
    /// window of the past.
    pub until: Option<Dur>,
}

/// `kill`: a signal to a container.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerKill {
    /// The container, by name or id.
    pub container: String,
    /// The signal (`SIGKILL`, `SIGTERM`, `SIGHUP`, …; default `SIGKILL`).
    pub signal: Option<String>,
}

/// `stats`: what a container uses.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerStats {
    /// The container, by name or id.
    pub container: String,
    /// Sample for this long (the engine gives a sample a second); without
    /// it, one sample. The step's `timeout` must be longer.
    pub duration: Option<Dur>,
}

/// `stop`: a container stopped.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerStop {
    /// The container, by name or id.
    pub container: String,
    /// Grace period between SIGTERM and SIGKILL (default 10s).
    pub timeout: Option<Dur>,
}
