//! `compose`: a Compose project. Only `up` and `down` go through the Compose
//! command (`docker compose`, the v2 plugin, or the standalone
//! `docker-compose` v1, whichever is here); what the project's services are
//! doing is read from the engine by the labels Compose puts on their
//! containers, so it reads the same with either, and waiting for health is
//! this module's own loop (v1 has no `--wait`). `up` adds a Compose file of
//! the run's own that labels every service's containers with the run, so
//! that a killed run's project is found by its label. A project brought up
//! is taken down (`down -v`) when the run ends, and at once on an interrupt
//! that gives up, unless the run keeps what it created.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions};
use planrun_runner::executor::{StepError, StepInput};
use planrun_runner::leftovers::{self, Leftover};
use planrun_spec::kinds::{ComposeCommand, DockerCompose, DockerWait};
use serde_json::{Value as Json, json};
use tokio::sync::OnceCell;

use super::{LAST_LINES, POLL, RunScope, engine_message, indent, read_logs};

/// The label Compose gives a project's containers.
pub(super) const PROJECT_LABEL: &str = "com.docker.compose.project";
/// The label naming a container's service.
const SERVICE_LABEL: &str = "com.docker.compose.service";

/// The most of the Compose command's output kept (its end).
const OUTPUT: usize = 64 * 1024;

/// How long `down` may take when the run ends.
const DOWN_LIMIT: Duration = Duration::from_mins(2);

/// The Compose command here: `["docker", "compose"]` or
/// `["docker-compose"]`.
static COMMAND: OnceCell<Option<Vec<&'static str>>> = OnceCell::const_new();

async fn command() -> Result<&'static [&'static str], StepError> {
    let found = COMMAND
        .get_or_init(|| async {
            for candidate in [vec!["docker", "compose"], vec!["docker-compose"]] {
                let ok = tokio::process::Command::new(candidate[0])
                    .args(&candidate[1..])
                    .arg("version")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .kill_on_drop(true)
                    .status()
                    .await
                    .is_ok_and(|s| s.success());
                if ok {
                    return Some(candidate);
                }
            }
            None
        })
        .await;
    found.as_deref().ok_or_else(|| {
        StepError::new("neither `docker compose` (the Compose plugin) nor `docker-compose` is installed")
            .help("install one of them; the other docker actions need neither")
    })
}

/// A project brought up by this run, and how to take it down.
pub(super) struct Project {
    name: String,
    file: PathBuf,
    env: BTreeMap<String, String>,
    /// Takes it down if the run is given up; dropped once it is down.
    _leftover: Option<Leftover>,
}

impl Project {
    /// `down -v --remove-orphans`, within [`DOWN_LIMIT`].
    pub(super) async fn down(self) {
        let Ok(command) = command().await else {
            return;
        };
        let _ = tokio::time::timeout(
            DOWN_LIMIT,
            run_compose(command, &self.file, &self.name, &self.env, &["down", "-v", "--remove-orphans"]),
        )
        .await;
    }
}

/// A Compose file of the run's own, beside the project's, that gives every
/// service the run's label; removed when dropped.
struct Labels(PathBuf);

impl Labels {
    /// Writes it for the services of `file` (as `config --services` lists
    /// them), in the same file format version.
    async fn write(
        command: &[&str],
        file: &Path,
        project: &str,
        env: &BTreeMap<String, String>,
        run: &str,
    ) -> Result<Self, StepError> {
        let services = run_compose(command, file, project, env, &["config", "--services"]).await?;
        let base = std::fs::read_to_string(file).unwrap_or_default();
        let mut text = String::new();
        // Compose v1 wants the files of one project at one version
        if let Some(version) = base.lines().find_map(|l| l.strip_prefix("version:")) {
            let _ = writeln!(text, "version: {}", version.trim());
        }
        text.push_str("services:\n");
        for service in services.lines().map(str::trim).filter(|s| is_service_name(s)) {
            let _ = write!(
                text,
                "  {}:\n    labels:\n      {}: {}\n",
                Json::from(service),
                Json::from(super::RUN_LABEL),
                Json::from(run)
            );
        }
        let path = std::env::temp_dir().join(format!("planrun-{run}-{project}.labels.yml"));
        std::fs::write(&path, text).map_err(|e| {
            StepError::new(format!("cannot write `{}`: {e}", path.display()))
        })?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Labels {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A line of `config --services` that is a service's name, not a warning.
fn is_service_name(line: &str) -> bool {
    !line.is_empty()
        && line
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Runs the Compose command; its combined output (the end of it), or an
/// error quoting it.
async fn run_compose(
    command: &[&str],
    file: &Path,
    project: &str,
    env: &BTreeMap<String, String>,
    args: &[&str],
) -> Result<String, StepError> {
    run_compose_with(command, &[file], project, env, args).await
}

/// [`run_compose`] with more than one Compose file, the first the
/// project's (the command runs in its directory).
async fn run_compose_with(
    command: &[&str],
    files: &[&Path],
    project: &str,
    env: &BTreeMap<String, String>,
    args: &[&str],
) -> Result<String, StepError> {
    let Some(file) = files.first() else {
        return Err(StepError::internal("a Compose command without a file"));
    };
    let mut cmd = tokio::process::Command::new(command[0]);
    cmd.args(&command[1..]);
    for f in files {
        cmd.arg("-f").arg(f);
    }
    cmd.arg("-p")
        .arg(project)
        .args(args)
        .envs(env)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(dir) = file.parent() {
        cmd.current_dir(dir);
    }
    let out = cmd.output().await.map_err(|e| {
        StepError::new(format!("cannot run `{}`: {e}", command.join(" ")))
    })?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if text.len() > OUTPUT {
        let mut from = text.len() - OUTPUT;
        while !text.is_char_boundary(from) {
            from += 1;
        }
        text.drain(..from);
    }
    if out.status.success() {
        return Ok(text);
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = lines[lines.len().saturating_sub(LAST_LINES)..].join("\n");
    Err(StepError::new(format!(
        "`{} {}` failed ({}):\n{}",
        command.join(" "),
        args.first().copied().unwrap_or(""),
        out.status,
        indent(&last)
    )))
}

/// `down -v` from any thread, without the runtime (an interrupt's last
/// resort).
fn down_blocking(command: &[&str], file: &Path, project: &str, env: &BTreeMap<String, String>) {
    let mut cmd = std::process::Command::new(command[0]);
    cmd.args(&command[1..])
        .arg("-f")
        .arg(file)
        .arg("-p")
        .arg(project)
        .args(["down", "-v", "--remove-orphans", "-t", "2"])
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(dir) = file.parent() {
        cmd.current_dir(dir);
    }
    let _ = cmd.status();
}

pub(super) async fn step(
    docker: &Docker,
    scope: &RunScope,
    spec: &DockerCompose,
    input: &StepInput<'_>,
    started: Instant,
) -> Result<Json, StepError> {
    let file = spec.file.as_ref().map(|f| super::absolute(input.ctx.base_dir(), f));
    if let Some(file) = &file
        && !file.is_file()
    {
        return Err(StepError::new(format!(
            "the Compose file `{}` does not exist",
            file.display()
        )));
    }
    // the command runs in the file's directory: the path must not be relative
    let file = file.map(|f| f.canonicalize().unwrap_or(f));
    let project = spec.project.as_str();
    let mut output = None;
    match spec.command.unwrap_or(ComposeCommand::Status) {
        ComposeCommand::Status => {}
        ComposeCommand::Up => {
            let file = file.as_deref().ok_or_else(|| StepError::internal("`up` without a file"))?;
            let command = command().await?;
            // taken down when the run ends, even if `up` fails half-way
            if !scope.keep {
                remember(scope, command, file, project, &spec.env);
            }
            let mut args = vec!["up", "-d"];
            if spec.build {
                args.push("--build");
            }
            args.extend(spec.services.iter().map(String::as_str));
            // the project's containers carry the run's label too, so that
            // what a crashed run left is found by it
            let labels = Labels::write(command, file, project, &spec.env, &scope.id).await?;
            let up = run_compose_with(command, &[file, labels.path()], project, &spec.env, &args).await;
            drop(labels);
            output = Some(up?);
            let wait = spec.wait.unwrap_or(DockerWait::Running);
            if wait != DockerWait::None {
                wait_for(docker, project, wait, input.timeout, started).await?;
            }
        }
        ComposeCommand::Down => {
            let file = file.as_deref().ok_or_else(|| StepError::internal("`down` without a file"))?;
            let command = command().await?;
            output = Some(
                run_compose(command, file, project, &spec.env, &["down", "-v", "--remove-orphans"])
                    .await?,
            );
            if let Ok(mut projects) = scope.projects.lock() {
                projects.retain(|p| p.name != project);
            }
        }
    }
    let services = services(docker, project).await?;
    let containers: usize = services.values().map(|s| s.containers).sum();
    let up: usize = services.values().map(|s| s.running).sum();
    Ok(json!({
        "action": "compose",
        "project": project,
        "services": services.iter().map(|(name, s)| (name.clone(), s.doc())).collect::<serde_json::Map<_, _>>(),
        "containers": containers,
        "up": up,
        "log": output,
    }))
}

/// Records a project brought up, and registers its `down` for an
/// interrupt.
fn remember(
    scope: &RunScope,
    command: &'static [&'static str],
    file: &Path,
    project: &str,
    env: &BTreeMap<String, String>,
) {
    let Ok(mut projects) = scope.projects.lock() else {
        return;
    };
    if projects.iter().any(|p| p.name == project) {
        return;
    }
    let (f, p, e) = (file.to_path_buf(), project.to_string(), env.clone());
    let leftover = leftovers::register(format!("the Compose project `{project}`"), move || {
        down_blocking(command, &f, &p, &e);
    });
    projects.push(Project {
        name: project.to_string(),
        file: file.to_path_buf(),
        env: env.clone(),
        _leftover: Some(leftover),
    });
}

/// What one service's containers are doing.
#[derive(Debug, Default)]
struct Service {
    containers: usize,
    running: usize,
    /// Containers with a health check, and those of them healthy.
    checked: usize,
    healthy: usize,
    unhealthy: usize,
    exited: Vec<(String, i64)>,
    restarts: i64,
    state: Option<String>,
    health: Option<String>,
    /// Its containers' names (Compose v1 and v2 name them differently).
    names: Vec<String>,
}

impl Service {
    fn doc(&self) -> Json {
        json!({
            "containers": self.containers,
            "running": self.running,
            "state": self.state,
            "health": self.health,
            "restart_count": self.restarts,
            "exit_code": self.exited.first().map(|(_, code)| code),
            "names": self.names,
        })
    }
}

/// Each service of `project` and what its containers are doing, read from
/// the engine.
async fn services(docker: &Docker, project: &str) -> Result<BTreeMap<String, Service>, StepError> {
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                String::from("label"),
                vec![format!("{PROJECT_LABEL}={project}")],
            )])),
            ..Default::default()
        }))
        .await
        .map_err(|e| StepError::new(format!("cannot list the containers of `{project}`: {}", engine_message(&e))))?;
    let mut services: BTreeMap<String, Service> = BTreeMap::new();
    for summary in containers {
        let Some(id) = summary.id else { continue };
        let service_name = summary
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_LABEL))
            .cloned()
            .unwrap_or_default();
        let Ok(state) = docker.inspect_container(&id, None::<InspectContainerOptions>).await else {
            continue;
        };
        let s = state.state.as_ref();
        let service = services.entry(service_name).or_default();
        service.containers += 1;
        service
            .names
            .push(super::display_name(&state));
        let running = s.and_then(|s| s.running).unwrap_or(false);
        if running {
            service.running += 1;
        }
        let status = s.and_then(|s| s.status).map(|v| v.to_string());
        let health = s.and_then(|s| s.health.as_ref()).and_then(|h| h.status).map(|h| h.to_string());
        if let Some(h) = health.as_deref().filter(|h| !matches!(*h, "" | "none")) {
            service.checked += 1;
            match h {
                "healthy" => service.healthy += 1,
                "unhealthy" => service.unhealthy += 1,
                _ => {}
            }
        }
        if !running && matches!(status.as_deref(), Some("exited" | "dead")) {
            service.exited.push((id.clone(), s.and_then(|s| s.exit_code).unwrap_or(-1)));
        }
        service.restarts += state.restart_count.unwrap_or(0);
        // the service's state is its worst container's
        if service.state.is_none() || !running {
            service.state = status;
        }
        if service.health.is_none() || health.as_deref() != Some("healthy") {
            service.health = health;
        }
    }
    Ok(services)
}

/// Waits until every container of `project` runs (and, for `healthy`, every
/// one with a health check is healthy); a container that exits or turns
/// unhealthy first is an error quoting its last lines.
async fn wait_for(
    docker: &Docker,
    project: &str,
    wait: DockerWait,
    limit: Duration,
    started: Instant,
) -> Result<(), StepError> {
    loop {
        let services = services(docker, project).await?;
        if services.is_empty() {
            return Err(StepError::new(format!("the project `{project}` has no containers")));
        }
        for (name, service) in &services {
            if let Some((id, code)) = service.exited.first() {
                return Err(failed(docker, id, format!("the service `{name}` of `{project}` exited with code {code}")).await);
            }
            if wait == DockerWait::Healthy && service.unhealthy > 0 {
                return Err(StepError::new(format!(
                    "the service `{name}` of `{project}` turned unhealthy"
                )));
            }
        }
        let ready = services.values().all(|s| {
            s.running == s.containers && (wait != DockerWait::Healthy || s.healthy == s.checked)
        });
        if ready {
            return Ok(());
        }
        if started.elapsed() + POLL >= limit {
            let waiting: Vec<String> = services
                .iter()
                .filter(|(_, s)| {
                    s.running < s.containers || (wait == DockerWait::Healthy && s.healthy < s.checked)
                })
                .map(|(name, s)| format!("`{name}` ({})", s.health.as_deref().or(s.state.as_deref()).unwrap_or("?")))
                .collect();
            return Err(StepError::new(format!(
                "`{project}` was not {} within the step's time limit ({}): {}",
                if wait == DockerWait::Healthy { "healthy" } else { "running" },
                planrun_spec::duration::human(limit),
                waiting.join(", ")
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn failed(docker: &Docker, id: &str, message: String) -> StepError {
    let text = read_logs(docker, id, Some(LAST_LINES as u64), (None, None), 64 * 1024)
        .await
        .map(|(all, _, _)| all)
        .unwrap_or_default();
    if text.trim().is_empty() {
        StepError::new(format!("{message} (it wrote no output)"))
    } else {
        StepError::new(format!("{message}\n  its last lines:\n{}", indent(text.trim_end())))
    }
}
