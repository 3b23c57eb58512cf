//! `docker`: images, containers and commands in them, through the Docker
//! Engine API (bollard, the version negotiated with the engine; the local
//! socket, or `DOCKER_HOST`).
//!
//! This module owns talking to the engine and the result documents, and
//! what a run creates there: every image built, container, network and
//! volume created, and every container of a Compose project brought up,
//! carries the run's label (`planrun.run=<id>`), and all of them are
//! removed when the run ends ([`DockerExecutor`]'s `end_of_run`),
//! after failures and interrupts too (the same sweep is registered with
//! `planrun_runner::leftovers`), unless the run keeps them (`--keep`).
//! What the engine says went wrong (a build error, a port in use, an image
//! that is not here) is a step error quoting it; what the step observed (an
//! exit code, a health status) is data for expectations. It must never
//! pull an image, leave what it created behind, or wait past the step's
//! time limit.

mod compose;
mod context;
mod ready;
mod stats;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::errors::Error as EngineError;
use bollard::exec::StartExecResults;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, ExecConfig,
    HealthConfig, HealthStatusEnum, HostConfig, NetworkCreateRequest, PortBinding, PortMap,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptions, ListContainersOptions, ListImagesOptions,
    ListNetworksOptions, ListVolumesOptions, LogsOptions, RemoveContainerOptions,
    RemoveImageOptions, RemoveVolumeOptions, StopContainerOptions,
};
use futures_util::StreamExt as _;
use planrun_runner::executor::{BoxFuture, StepError, StepExecutor, StepInput};
use planrun_runner::leftovers::{self, Leftover};
use planrun_spec::kinds::{Docker as DockerKind, DockerConfig, DockerWait};
use planrun_spec::model::StepKind;
use serde_json::{Value as Json, json};
use tokio::sync::OnceCell;

use crate::util::millis;

/// The label every object a run creates carries, its value the run's id.
pub const RUN_LABEL: &str = "planrun.run";

/// The most of a build's log a result keeps (its end).
const BUILD_LOG: usize = 64 * 1024;

/// Lines of a container's log quoted when it fails to start.
const LAST_LINES: usize = 20;

/// Pause between looks at a container that is starting.
const POLL: Duration = Duration::from_millis(100);

/// How long a container must have been running for `wait = "running"`: a
/// container that exits at once is caught, not reported running.
const SETTLE: Duration = Duration::from_millis(300);

/// What a probe leaves of the step's time limit to read a container's last
/// lines for its error.
const LAST_WORDS: Duration = Duration::from_millis(500);

/// What one run has to do with the engine: its id, the connection, and the
/// sweep registered for an interrupt.
struct RunScope {
    id: String,
    keep: bool,
    engine: OnceCell<Docker>,
    sweep: Mutex<Option<Leftover>>,
    /// The Compose projects brought up, taken down when the run ends.
    projects: Mutex<Vec<compose::Project>>,
}

/// Runs `docker` steps.
///
/// Result documents, by action (`action` names it):
/// - `build`: `{"action": "build", "id": "sha256:…", "image": "name:tag",
///   "tags": […], "size": bytes, "log": "the build's output", "duration": ms}`;
/// - `image`: `{"exists": true, "id", "tags", "size", "labels"}` (`exists`
///   false and the rest `null` when the engine has no such image);
/// - `run`: `{"id", "name", "image", "status", "running", "health",
///   "exit_code", "ports": {"8000/tcp": "127.0.0.1:49153"}, "ready_after": ms,
///   "ready_line", "ready_match", "duration": ms}` (the line and groups a
///   `ready.log` probe matched, else `null`);
/// - `exec`: `{"exit_code", "stdout", "stderr", "json", "duration"}`;
/// - `inspect`: `{"exists", "id", "name", "image", "status", "running",
///   "health", "exit_code", "oom_killed", "restart_count", "ports", "labels"}`;
/// - `logs`: `{"logs": "stdout and stderr as written", "stdout", "stderr",
///   "lines"}`;
/// - `stop`: `{"id", "name", "status", "exit_code"}`;
/// - `remove`: `{"name", "removed"}` (`false` when there was no such
///   container).
pub struct DockerExecutor {
    run: Arc<RunScope>,
}

impl Default for DockerExecutor {
    fn default() -> Self {
        Self::new()
    }
}

impl DockerExecutor {
    /// An executor that removes what the run created when it ends.
    pub fn new() -> Self {
        Self::with_keep(false)
    }

    /// An executor that leaves what the run created in place (`--keep`).
    pub fn keeping() -> Self {
        Self::with_keep(true)
    }

    fn with_keep(keep: bool) -> Self {
        // seconds since the epoch first, so that ids sort by time
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            run: Arc::new(RunScope {
                id: format!(
                    "{}-{}-{:08x}",
                    now.as_secs(),
                    std::process::id(),
                    now.subsec_nanos()
                ),
                keep,
                engine: OnceCell::new(),
                sweep: Mutex::new(None),
                projects: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The id this run's objects are labelled with.
    pub fn run_id(&self) -> &str {
        &self.run.id
    }
}

impl StepExecutor for DockerExecutor {
    fn kind(&self) -> StepKind {
        StepKind::Docker
    }

    fn execute<'a>(
        &'a self,
        input: StepInput<'a>,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>> {
        Box::pin(async move {
            let limit = input.timeout;
            match tokio::time::timeout(limit, run(&self.run, &input)).await {
                Ok(result) => result,
                Err(_) => Err(StepError::new(format!(
                    "the Docker engine did not finish within the step's time limit ({})",
                    planrun_spec::duration::human(limit)
                ))),
            }
        })
    }

    fn end_of_run(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let projects = self
                .run
                .projects
                .lock()
                .map(|mut p| std::mem::take(&mut *p))
                .unwrap_or_default();
            for project in projects.into_iter().rev() {
                project.down().await;
            }
            let registered = self
                .run
                .sweep
                .lock()
                .ok()
                .and_then(|mut sweep| sweep.take());
            let Some(registered) = registered else {
                return;
            };
            if let Some(docker) = self.run.engine.get() {
                sweep(docker, Some(&self.run.id)).await;
            }
            // removed the ordinary way: nothing left for an interrupt
            drop(registered);
        })
    }
}

/// The engine, connected and its API version negotiated on first use; the
/// run's sweep registered then.
async fn engine(scope: &RunScope) -> Result<&Docker, StepError> {
    scope
        .engine
        .get_or_try_init(|| async {
            let host = std::env::var("DOCKER_HOST")
                .unwrap_or_else(|_| String::from("unix:///var/run/docker.sock"));
            let unreachable = |e: EngineError| {
                StepError::new(format!("cannot reach the Docker engine at `{host}`: {e}")).help(
                    "is the Docker daemon running, and may this user use it? `DOCKER_HOST` names another engine",
                )
            };
            let docker = Docker::connect_with_defaults().map_err(unreachable)?;
            let docker = docker.negotiate_version().await.map_err(unreachable)?;
            if !scope.keep {
                let id = scope.id.clone();
                let leftover = leftovers::register(
                    format!("the Docker objects of run {id}"),
                    move || drop(sweep_blocking(Some(&id))),
                );
                if let Ok(mut sweep) = scope.sweep.lock() {
                    *sweep = Some(leftover);
                }
            }
            Ok(docker)
        })
        .await
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Containers, with their anonymous volumes.
    pub containers: usize,
    /// Networks.
    pub networks: usize,
    /// Named volumes.
    pub volumes: usize,
    /// Images.
    pub images: usize,
}

/// Removes every object labelled with run `id` (every run's, with `None`):
/// containers (with their anonymous volumes), then networks, volumes and
/// images, and the networks and volumes of the Compose projects those
/// containers belonged to (Compose labels them with the project only).
async fn sweep(docker: &Docker, id: Option<&str>) -> Swept {
    let label = |label: String| {
        Some(HashMap::from([(String::from("label"), vec![label])]))
    };
    let ours = || label(id.map_or_else(|| RUN_LABEL.to_string(), |id| format!("{RUN_LABEL}={id}")));
    let mut swept = Swept::default();
    let mut projects: Vec<String> = Vec::new();
    if let Ok(containers) = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: ours(),
            ..Default::default()
        }))
        .await
    {
        for container in containers {
            if let Some(project) = container
                .labels
                .as_ref()
                .and_then(|l| l.get(compose::PROJECT_LABEL))
                && !projects.contains(project)
            {
                projects.push(project.clone());
            }
            let Some(cid) = container.id else { continue };
            let options = RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            };
            if docker.remove_container(&cid, Some(options)).await.is_ok() {
                swept.containers += 1;
            }
        }
    }
    let mut filters = vec![ours()];
    filters.extend(projects.iter().map(|p| label(format!("{}={p}", compose::PROJECT_LABEL))));
    for filters in filters {
        if let Ok(networks) = docker
            .list_networks(Some(ListNetworksOptions { filters: filters.clone() }))
            .await
        {
            for network in networks {
                if let Some(nid) = network.id
                    && docker.remove_network(&nid).await.is_ok()
                {
                    swept.networks += 1;
                }
            }
        }
        if let Ok(volumes) = docker
            .list_volumes(Some(ListVolumesOptions { filters }))
            .await
        {
            for volume in volumes.volumes.unwrap_or_default() {
                let options = RemoveVolumeOptions { force: true };
                if docker.remove_volume(&volume.name, Some(options)).await.is_ok() {
                    swept.volumes += 1;
                }
            }
        }
    }
    if let Ok(images) = docker
        .list_images(Some(ListImagesOptions {
            filters: ours(),
            ..Default::default()
        }))
        .await
    {
        for image in images {
            let options = RemoveImageOptions {
                force: true,
                ..Default::default()
            };
            if docker.remove_image(&image.id, Some(options), None).await.is_ok() {
                swept.images += 1;
            }
        }
    }
    swept
}

/// Removes every image, container, network and volume labelled with run
/// `id` (every run's, with `None`), from any thread, without the run's
/// runtime: an interrupt's last resort, and what removes a crashed run's
/// leftovers (`planrun clean`). It runs on a thread of its own, so that a
/// thread driving a runtime may call it too. An engine that does not
/// answer is an error.
pub fn sweep_blocking(id: Option<&str>) -> Result<Swept, String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start a runtime: {e}"))?;
                runtime.block_on(async {
                    let docker = Docker::connect_with_defaults()
                        .map_err(|e| format!("cannot reach the Docker engine: {e}"))?
                        .negotiate_version()
                        .await
                        .map_err(|e| format!("the Docker engine does not answer: {e}"))?;
                    Ok(sweep(&docker, id).await)
                })
            })
            .join()
            .unwrap_or_else(|_| Err(String::from("the sweep failed")))
    })
}

/// Runs the step's action; an error not placed yet points at the action
/// (`run = { … }`), where the spec says what went wrong.
async fn run(scope: &RunScope, input: &StepInput<'_>) -> Result<Json, StepError> {
    let action = planrun_spec::kinds::DOCKER_ACTIONS
        .iter()
        .find_map(|key| input.config.get(key))
        .map(|value| value.span.clone());
    act(scope, input).await.map_err(|e| match (&e.span, action) {
        (None, Some(span)) => e.at(span),
        _ => e,
    })
}

async fn act(scope: &RunScope, input: &StepInput<'_>) -> Result<Json, StepError> {
    let config: DockerConfig = crate::util::config::<DockerKind>(input.config)?;
    let started = Instant::now();
    let docker = engine(scope).await?;
    let mut doc = if let Some(build) = &config.build {
        build_image(docker, scope, build, input).await?
    } else if let Some(reference) = &config.image {
        inspect_image(docker, reference).await?
    } else if let Some(run) = &config.run {
        run_container(docker, scope, run, input, started).await?
    } else if let Some(exec) = &config.exec {
        exec_in(docker, exec, input.max_body).await?
    } else if let Some(name) = &config.inspect {
        inspect_container(docker, name).await?
    } else if let Some(logs) = &config.logs {
        container_logs(docker, logs, input.max_body).await?
    } else if let Some(stats) = &config.stats {
        stats::container_stats(docker, stats).await?
    } else if let Some(stop) = &config.stop {
        stop_container(docker, stop).await?
    } else if let Some(kill) = &config.kill {
        kill_container(docker, kill).await?
    } else if let Some(name) = &config.remove {
        remove_container(docker, name).await?
    } else if let Some(spec) = &config.compose {
        compose::step(docker, scope, spec, input, started).await?
    } else {
        return Err(StepError::internal(
            "a docker step passed plan-time checks without an action",
        ));
    };
    if let Json::Object(map) = &mut doc {
        map.insert(String::from("duration"), json!(millis(started.elapsed())));
    }
    Ok(doc)
}

/// Whether the engine said there is no such thing.
fn not_found(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The engine's own message, without bollard's wrapping.
fn engine_message(e: &EngineError) -> String {
    match e {
        EngineError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        other => other.to_string(),
    }
}

/// The labels of an object this run creates: the user's and the run's.
fn labels(scope: &RunScope, own: &BTreeMap<String, String>) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = own.clone().into_iter().collect();
    labels.insert(RUN_LABEL.to_string(), scope.id.clone());
    labels
}

async fn build_image(
    docker: &Docker,
    scope: &RunScope,
    build: &planrun_spec::kinds::DockerBuild,
    input: &StepInput<'_>,
) -> Result<Json, StepError> {
    let dir = input.ctx.base_dir().join(&build.context);
    if !dir.is_dir() {
        return Err(StepError::new(format!(
            "the build context `{}` is not a directory",
            dir.display()
        )));
    }
    let dockerfile = build.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into());
    if !dir.join(&dockerfile).is_file() {
        return Err(StepError::new(format!(
            "there is no `{dockerfile}` in the build context `{}`",
            dir.display()
        )));
    }
    let packed = {
        let dir = dir.clone();
        let dockerfile = dockerfile.clone();
        tokio::task::spawn_blocking(move || context::pack(&dir, &dockerfile))
            .await
            .map_err(|e| StepError::internal(format!("packing the build context failed: {e}")))?
            .map_err(StepError::new)?
    };
    let options = BuildImageOptions {
        dockerfile: dockerfile.clone(),
        t: Some(build.tag.clone()),
        buildargs: (!build.args.is_empty())
            .then(|| build.args.clone().into_iter().collect::<HashMap<_, _>>()),
        target: build.target.clone().unwrap_or_default(),
        labels: Some(labels(scope, &build.labels)),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let mut log = Tail::new(BUILD_LOG);
    let mut built_id = None;
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(packed.into())));
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(e) => {
                return Err(build_failed(&build.tag, &engine_message(&e), &log));
            }
        };
        if let Some(text) = &info.stream {
            log.push(text);
        }
        if let Some(detail) = &info.error_detail {
            let message = detail.message.clone().unwrap_or_default();
            return Err(build_failed(&build.tag, &message, &log));
        }
        if let Some(aux) = &info.aux
            && let Some(id) = &aux.id
        {
            built_id = Some(id.clone());
        }
    }
    for more in &build.tags {
        let (repo, tag) = split_reference(more);
        let options = bollard::query_parameters::TagImageOptions {
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
        };
        docker.tag_image(&build.tag, Some(options)).await.map_err(|e| {
            StepError::new(format!("cannot tag the image `{more}`: {}", engine_message(&e)))
        })?;
    }
    let image = docker
        .inspect_image(&build.tag)
        .await
        .map_err(|e| build_failed(&build.tag, &engine_message(&e), &log))?;
    Ok(json!({
        "action": "build",
        "id": image.id.or(built_id),
        "image": build.tag,
        "tags": image.repo_tags.unwrap_or_default(),
        "size": image.size,
        "log": log.text(),
    }))
}

/// An image reference's repository and tag (`latest` when it has none);
/// a registry's port (`host:5000/app`) is part of the repository.
fn split_reference(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    }
}

fn build_failed(tag: &str, message: &str, log: &Tail) -> StepError {
    let mut text = format!("the build of `{tag}` failed: {}", message.trim());
    let last = log.last_lines(LAST_LINES);
    if !last.is_empty() {
        let _ = write!(text, "\n  the build's last lines:\n{}", indent(&last));
    }
    StepError::new(text)
}

async fn inspect_image(docker: &Docker, reference: &str) -> Result<Json, StepError> {
    match docker.inspect_image(reference).await {
        Ok(image) => Ok(json!({
            "action": "image",
            "exists": true,
            "id": image.id,
            "tags": image.repo_tags.unwrap_or_default(),
            "size": image.size,
            "labels": image.config.and_then(|c| c.labels).unwrap_or_default(),
        })),
        Err(e) if not_found(&e) => Ok(json!({
            "action": "image",
            "exists": false,
            "id": null,
            "tags": [],
            "size": null,
            "labels": {},
        })),
        Err(e) => Err(StepError::new(format!(
            "cannot look up the image `{reference}`: {}",
            engine_message(&e)
        ))),
    }
}

/// A port as the engine names it: `8000` is `8000/tcp`.
fn port_key(port: &str) -> String {
    if port.contains('/') {
        port.to_string()
    } else {
        format!("{port}/tcp")
    }
}

/// A host address to publish on: `127.0.0.1:8080`, `127.0.0.1` or `:0`.
fn binding(address: &str) -> PortBinding {
    let (ip, port) = match address.rsplit_once(':') {
        Some((ip, port)) => (ip, port),
        None if address.contains('.') => (address, ""),
        None => ("", address),
    };
    PortBinding {
        host_ip: (!ip.is_empty()).then(|| ip.to_string()),
        host_port: (!port.is_empty() && port != "0").then(|| port.to_string()),
    }
}

async fn run_container(
    docker: &Docker,
    scope: &RunScope,
    run: &planrun_spec::kinds::DockerRun,
    input: &StepInput<'_>,
    started: Instant,
) -> Result<Json, StepError> {
    if let Some(network) = &run.network {
        ensure_network(docker, scope, network).await?;
    }
    for volume in run.volumes.values() {
        ensure_volume(docker, scope, volume).await?;
    }
    let mut binds: Vec<String> = Vec::new();
    for (target, source) in &run.mounts {
        let (source, mode) = match source.rsplit_once(':') {
            Some((path, mode @ ("ro" | "rw"))) => (path, Some(mode)),
            _ => (source.as_str(), None),
        };
        let path = absolute(input.ctx.base_dir(), source);
        // the engine takes only absolute paths as host paths
        let Ok(path) = path.canonicalize() else {
            return Err(StepError::new(format!(
                "the mount `{target}` names `{}`, which does not exist",
                path.display()
            )));
        };
        let mut bind = format!("{}:{target}", path.display());
        if let Some(mode) = mode {
            let _ = write!(bind, ":{mode}");
        }
        binds.push(bind);
    }
    for (target, volume) in &run.volumes {
        binds.push(format!("{volume}:{target}"));
    }
    let mut port_bindings: PortMap = HashMap::new();
    for (port, address) in &run.ports {
        port_bindings.insert(port_key(port), Some(vec![binding(address)]));
    }
    let healthcheck = run.healthcheck.as_ref().map(|h| HealthConfig {
        test: Some(
            std::iter::once(String::from("CMD"))
                .chain(h.cmd.iter().cloned())
                .collect(),
        ),
        interval: Some(nanos(h.interval.map_or(Duration::from_secs(1), |d| d.0))),
        timeout: Some(nanos(h.timeout.map_or(Duration::from_secs(5), |d| d.0))),
        retries: Some(i64::from(h.retries.unwrap_or(3))),
        start_period: h.start_period.map(|d| nanos(d.0)),
        start_interval: None,
    });
    let body = ContainerCreateBody {
        image: Some(run.image.clone()),
        cmd: run.cmd.clone(),
        entrypoint: run.entrypoint.clone(),
        env: Some(run.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels(scope, &run.labels)),
        exposed_ports: Some(port_bindings.keys().cloned().collect()),
        user: run.user.clone(),
        working_dir: run.workdir.clone(),
        healthcheck,
        host_config: Some(HostConfig {
            port_bindings: Some(port_bindings),
            binds: Some(binds),
            network_mode: run.network.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(
            Some(CreateContainerOptions {
                name: run.name.clone(),
                ..Default::default()
            }),
            body,
        )
        .await
        .map_err(|e| {
            if not_found(&e) {
                StepError::new(format!(
                    "the image `{}` is not here: {}",
                    run.image,
                    engine_message(&e)
                ))
                .help("planrun never pulls: build it first (`docker = { build = … }`) or load it")
            } else {
                StepError::new(format!(
                    "cannot create a container of `{}`: {}",
                    run.image,
                    engine_message(&e)
                ))
            }
        })?;
    let id = created.id;
    if let Err(e) = docker.start_container(&id, None).await {
        return Err(StepError::new(format!(
            "the container of `{}` did not start: {}",
            run.image,
            engine_message(&e)
        )));
    }
    let wait = run.wait.unwrap_or(DockerWait::Running);
    // a container without a health check is healthy when its `ready` probe
    // passes, or else when every TCP port it publishes answers
    let fallback = wait == DockerWait::Healthy && {
        let state = docker.inspect_container(&id, None).await.map_err(|e| {
            StepError::new(format!("cannot look at the container: {}", engine_message(&e)))
        })?;
        !ready::has_healthcheck(&state)
    };
    let engine_wait = if fallback { DockerWait::Running } else { wait };
    // a probe that follows sees a container that exits at once itself
    let settle = if fallback || run.ready.is_some() {
        Duration::ZERO
    } else {
        SETTLE
    };
    let mut state = wait_for(docker, &id, engine_wait, settle, input.timeout, started).await?;
    let probe = match &run.ready {
        Some(given) => Some(ready::Probe::of(given, &state).map_err(|e| {
            let run = input.config.get("run").unwrap_or(input.config);
            e.at(crate::util::span_of(run, "ready"))
        })?),
        None if fallback => Some(ready::Probe::exposed_ports(&state).ok_or_else(|| {
            StepError::new(format!(
                "the container `{}` has no health check to wait for, and exposes no TCP port to try",
                display_name(&state)
            ))
            .help("give the step a `healthcheck` or a `ready` probe, or wait for `running`")
        })?),
        None => None,
    };
    let mut found = None;
    if let Some(probe) = &probe {
        let interval = run.ready.as_ref().and_then(|r| r.interval).map(|d| d.0);
        found = ready::until_ready(
            docker,
            &id,
            &display_name(&state),
            probe,
            interval,
            started + input.timeout.saturating_sub(LAST_WORDS),
        )
        .await?;
        if let Ok(now) = docker.inspect_container(&id, None).await {
            state = now;
        }
    }
    let mut doc = container_doc(&state);
    if let Json::Object(map) = &mut doc {
        map.insert("action".into(), json!("run"));
        map.insert("ready_after".into(), json!(millis(started.elapsed())));
        map.insert("ready_line".into(), json!(found.as_ref().map(|f| &f.line)));
        map.insert("ready_match".into(), json!(found.map(|f| f.groups)));
        map.remove("exists");
        map.remove("labels");
        map.remove("oom_killed");
        map.remove("restart_count");
    }
    Ok(doc)
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn absolute(base: &Path, path: &str) -> std::path::PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

async fn ensure_network(docker: &Docker, scope: &RunScope, name: &str) -> Result<(), StepError> {
    let look = async { docker.inspect_network(name, None).await.map(drop) };
    let create = async {
        let request = NetworkCreateRequest {
            name: name.to_string(),
            labels: Some(labels(scope, &BTreeMap::new())),
            ..Default::default()
        };
        docker.create_network(request).await.map(drop)
    };
    ensure("network", name, look, create).await
}

async fn ensure_volume(docker: &Docker, scope: &RunScope, name: &str) -> Result<(), StepError> {
    let look = async { docker.inspect_volume(name).await.map(drop) };
    let create = async {
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels(scope, &BTreeMap::new())),
            ..Default::default()
        };
        docker.create_volume(request).await.map(drop)
    };
    ensure("volume", name, look, create).await
}

/// The `what` named `name`, created (by `create`, awaited only then) when
/// `look` finds none.
async fn ensure(
    what: &str,
    name: &str,
    look: impl Future<Output = Result<(), EngineError>>,
    create: impl Future<Output = Result<(), EngineError>>,
) -> Result<(), StepError> {
    match look.await {
        Ok(()) => Ok(()),
        Err(e) if not_found(&e) => create.await.map_err(|e| {
            StepError::new(format!(
                "cannot create the {what} `{name}`: {}",
                engine_message(&e)
            ))
        }),
        Err(e) => Err(StepError::new(format!(
            "cannot look up the {what} `{name}`: {}",
            engine_message(&e)
        ))),
    }
}

/// Looks at container `id` until it is what `wait` asks for (`running`:
/// for `settle` in a row); a container that ends (or turns unhealthy)
/// first is an error quoting its last log lines, as is the time limit
/// passing.
async fn wait_for(
    docker: &Docker,
    id: &str,
    wait: DockerWait,
    settle: Duration,
    limit: Duration,
    started: Instant,
) -> Result<ContainerInspectResponse, StepError> {
    let mut running_since: Option<Instant> = None;
    loop {
        let state = docker
            .inspect_container(id, None)
            .await
            .map_err(|e| StepError::new(format!("cannot look at the container: {}", engine_message(&e))))?;
        let status = state.state.as_ref().and_then(|s| s.status);
        let running = state.state.as_ref().and_then(|s| s.running).unwrap_or(false);
        let health = state
            .state
            .as_ref()
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.status);
        let exited = matches!(
            status,
            Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD)
        );
        let name = display_name(&state);
        match wait {
            DockerWait::None => return Ok(state),
            DockerWait::Exited if exited => return Ok(state),
            DockerWait::Running if running => {
                let since = *running_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= settle {
                    return Ok(state);
                }
            }
            DockerWait::Healthy => match health {
                Some(HealthStatusEnum::HEALTHY) => return Ok(state),
                Some(HealthStatusEnum::UNHEALTHY) => {
                    let probe = last_probe(&state);
                    return Err(with_logs(
                        docker,
                        id,
                        format!("the container `{name}` turned unhealthy{probe}"),
                    )
                    .await);
                }
                None | Some(HealthStatusEnum::NONE | HealthStatusEnum::EMPTY) if running => {
                    return Err(StepError::new(format!(
                        "the container `{name}` has no health check to wait for"
                    ))
                    .help("give the step a `healthcheck`, or wait for `running`"));
                }
                _ => {}
            },
            _ => {}
        }
        if exited && wait != DockerWait::Exited {
            let code = state.state.as_ref().and_then(|s| s.exit_code).unwrap_or(-1);
            return Err(with_logs(
                docker,
                id,
                format!("the container `{name}` exited with code {code} before it was {}", wait_word(wait)),
            )
            .await);
        }
        if started.elapsed() + POLL >= limit {
            let probe = last_probe(&state);
            return Err(with_logs(
                docker,
                id,
                format!(
                    "the container `{name}` was not {} within the step's time limit ({}){probe}",
                    wait_word(wait),
                    planrun_spec::duration::human(limit)
                ),
            )
            .await);
        }
        tokio::time::sleep(POLL).await;
    }
}

fn wait_word(wait: DockerWait) -> &'static str {
    match wait {
        DockerWait::Running => "running",
        DockerWait::Healthy => "healthy",
        DockerWait::Exited => "exited",
        DockerWait::None => "started",
    }
}

/// `: the last check said "…"` from a container's health log, or nothing.
fn last_probe(state: &ContainerInspectResponse) -> String {
    state
        .state
        .as_ref()
        .and_then(|s| s.health.as_ref())
        .and_then(|h| h.log.as_ref())
        .and_then(|log| log.last())
        .map(|probe| {
            format!(
                "; its last health check exited with {}: {}",
                probe.exit_code.unwrap_or(-1),
                probe.output.as_deref().unwrap_or("").trim()
            )
        })
        .unwrap_or_default()
}

/// An error whose message ends with the container's last log lines.
async fn with_logs(docker: &Docker, id: &str, message: String) -> StepError {
    let (text, _, _) = read_logs(docker, id, Some(LAST_LINES as u64), (None, None), 64 * 1024)
        .await
        .unwrap_or_default();
    if text.trim().is_empty() {
        return StepError::new(format!("{message} (it wrote no output)"));
    }
    StepError::new(format!(
        "{message}\n  its last lines:\n{}",
        indent(text.trim_end())
    ))
}

fn display_name(state: &ContainerInspectResponse) -> String {
    state
        .name
        .as_deref()
        .map(|n| n.trim_start_matches('/').to_string())
        .or_else(|| state.id.as_deref().map(|id| id.chars().take(12).collect()))
        .unwrap_or_default()
}

/// The fields a container's state gives every action.
fn container_doc(state: &ContainerInspectResponse) -> Json {
    let s = state.state.as_ref();
    let ports: BTreeMap<String, Json> = state
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.as_ref())
        .map(|ports| {
            ports
                .iter()
                .map(|(port, bindings)| {
                    let first = bindings.as_ref().and_then(|b| b.first()).map(|b| {
                        let ip = b.host_ip.as_deref().unwrap_or("0.0.0.0");
                        let ip = if ip.is_empty() { "0.0.0.0" } else { ip };
                        format!("{ip}:{}", b.host_port.as_deref().unwrap_or(""))
                    });
                    (port.clone(), json!(first))
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "exists": true,
        "id": state.id,
        "name": display_name(state),
        "image": state.config.as_ref().and_then(|c| c.image.clone()),
        "status": s.and_then(|s| s.status).map(|s| s.to_string()),
        "running": s.and_then(|s| s.running).unwrap_or(false),
        "health": s.and_then(|s| s.health.as_ref()).and_then(|h| h.status).map(|h| h.to_string()),
        "exit_code": s.and_then(|s| s.exit_code),
        "oom_killed": s.and_then(|s| s.oom_killed).unwrap_or(false),
        "restart_count": state.restart_count.unwrap_or(0),
        "ports": ports,
        "labels": state.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default(),
    })
}

async fn inspect_container(docker: &Docker, name: &str) -> Result<Json, StepError> {
    match docker.inspect_container(name, None).await {
        Ok(state) => {
            let mut doc = container_doc(&state);
            doc["action"] = json!("inspect");
            Ok(doc)
        }
        Err(e) if not_found(&e) => Ok(json!({
            "action": "inspect",
            "exists": false,
            "id": null,
            "name": name,
            "image": null,
            "status": null,
            "running": false,
            "health": null,
            "exit_code": null,
            "oom_killed": false,
            "restart_count": 0,
            "ports": {},
            "labels": {},
        })),
        Err(e) => Err(StepError::new(format!(
            "cannot look at the container `{name}`: {}",
            engine_message(&e)
        ))),
    }
}

fn no_such_container(name: &str, e: &EngineError) -> StepError {
    if not_found(e) {
        StepError::new(format!("there is no container `{name}`"))
    } else {
        StepError::new(format!("the container `{name}`: {}", engine_message(e)))
    }
}

async fn exec_in(
    docker: &Docker,
    exec: &planrun_spec::kinds::DockerExec,
    max_body: u64,
) -> Result<Json, StepError> {
    let name = &exec.container;
    let created = docker
        .create_exec(
            name,
            ExecConfig {
                cmd: Some(exec.cmd.clone()),
                env: (!exec.env.is_empty())
                    .then(|| exec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                user: exec.user.clone(),
                working_dir: exec.workdir.clone(),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| no_such_container(name, &e))?;
    let mut stdout: Vec<u8> = Vec::new();
    let mut stderr: Vec<u8> = Vec::new();
    let mut total: u64 = 0;
    match docker
        .start_exec(&created.id, None)
        .await
        .map_err(|e| no_such_container(name, &e))?
    {
        StartExecResults::Attached { mut output, .. } => {
            while let Some(chunk) = output.next().await {
                let chunk = chunk.map_err(|e| {
                    StepError::new(format!(
                        "the command in `{name}` could not be read: {}",
                        engine_message(&e)
                    ))
                })?;
                let (into, bytes) = match chunk {
                    bollard::container::LogOutput::StdErr { message } => (&mut stderr, message),
                    bollard::container::LogOutput::StdOut { message }
                    | bollard::container::LogOutput::Console { message } => (&mut stdout, message),
                    bollard::container::LogOutput::StdIn { .. } => continue,
                };
                total += bytes.len() as u64;
                if total > max_body {
                    return Err(StepError::new(format!(
                        "the command in `{name}` wrote more than the step's `max_body` ({max_body} bytes)"
                    )));
                }
                into.extend_from_slice(&bytes);
            }
        }
        StartExecResults::Detached => {}
    }
    let inspected = docker.inspect_exec(&created.id).await.map_err(|e| {
        StepError::new(format!(
            "cannot read how the command in `{name}` ended: {}",
            engine_message(&e)
        ))
    })?;
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    let parsed = serde_json::from_str::<Json>(stdout.trim()).ok();
    Ok(json!({
        "action": "exec",
        "exit_code": inspected.exit_code,
        "stdout": stdout,
        "stderr": String::from_utf8_lossy(&stderr),
        "json": parsed,
    }))
}

/// A container's output, as written (both streams), and each stream: at
/// most `limit` bytes, or an error.
async fn read_logs(
    docker: &Docker,
    name: &str,
    tail: Option<u64>,
    (since, until): (Option<Duration>, Option<Duration>),
    limit: u64,
) -> Result<(String, String, String), StepError> {
    // seconds since the epoch of a moment `ago` before now; 0 for none
    let before_now = |ago: Option<Duration>| {
        ago.map_or(0, |d| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            i32::try_from(now.saturating_sub(d).as_secs()).unwrap_or(0)
        })
    };
    let (since, until) = (before_now(since), before_now(until));
    let mut stream = docker.logs(
        name,
        Some(LogsOptions {
            stdout: true,
            stderr: true,
            since,
            until,
            tail: tail.map_or_else(|| String::from("all"), |n| n.to_string()),
            ..Default::default()
        }),
    );
    let (mut all, mut out, mut err) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| no_such_container(name, &e))?;
        let (into, bytes) = match chunk {
            bollard::container::LogOutput::StdErr { message } => (&mut err, message),
            bollard::container::LogOutput::StdOut { message }
            | bollard::container::LogOutput::Console { message } => (&mut out, message),
            bollard::container::LogOutput::StdIn { .. } => continue,
        };
        if (all.len() + bytes.len()) as u64 > limit {
            return Err(StepError::new(format!(
                "the logs of `{name}` pass the step's `max_body` ({limit} bytes)"
            ))
            .help("read fewer with `tail` or `since`"));
        }
        all.extend_from_slice(&bytes);
        into.extend_from_slice(&bytes);
    }
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    Ok((text(all), text(out), text(err)))
}

async fn container_logs(
    docker: &Docker,
    logs: &planrun_spec::kinds::DockerLogs,
    max_body: u64,
) -> Result<Json, StepError> {
    let (all, out, err) = read_logs(
        docker,
        &logs.container,
        logs.tail,
        (logs.since.map(|d| d.0), logs.until.map(|d| d.0)),
        max_body,
    )
    .await?;
    Ok(json!({
        "action": "logs",
        "lines": all.lines().count(),
        "logs": all,
        "stdout": out,
        "stderr": err,
    }))
}

async fn stop_container(
    docker: &Docker,
    stop: &planrun_spec::kinds::DockerStop,
) -> Result<Json, StepError> {
    let name = &stop.container;
    let grace = stop.timeout.map_or(10, |d| i32::try_from(d.0.as_secs()).unwrap_or(i32::MAX));
    docker
        .stop_container(
            name,
            Some(StopContainerOptions {
                t: Some(grace),
                ..Default::default()
            }),
        )
        .await
        .map_err(|e| no_such_container(name, &e))?;
    state_after(docker, name, "stop").await
}

/// The state of container `name` after `action` (`stop`, `kill`): its
/// `id`, `name`, `status` and `exit_code`.
async fn state_after(docker: &Docker, name: &str, action: &str) -> Result<Json, StepError> {
    let state = docker
        .inspect_container(name, None)
        .await
        .map_err(|e| no_such_container(name, &e))?;
    let doc = container_doc(&state);
    Ok(json!({
        "action": action,
        "id": doc["id"],
        "name": doc["name"],
        "status": doc["status"],
        "exit_code": doc["exit_code"],
    }))
}

async fn kill_container(
    docker: &Docker,
    kill: &planrun_spec::kinds::DockerKill,
) -> Result<Json, StepError> {
    let name = &kill.container;
    let signal = kill.signal.clone().unwrap_or_else(|| String::from("SIGKILL"));
    docker
        .kill_container(
            name,
            Some(bollard::query_parameters::KillContainerOptions {
                signal: signal.clone(),
            }),
        )
        .await
        .map_err(|e| {
            if not_found(&e) {
                StepError::new(format!("there is no container `{name}`"))
            } else {
                StepError::new(format!(
                    "cannot send {signal} to `{name}`: {}",
                    engine_message(&e)
                ))
            }
        })?;
    state_after(docker, name, "kill").await
}

async fn remove_container(docker: &Docker, name: &str) -> Result<Json, StepError> {
    match docker
        .remove_container(
            name,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await
    {
        Ok(()) => Ok(json!({"action": "remove", "name": name, "removed": true})),
        Err(e) if not_found(&e) => Ok(json!({"action": "remove", "name": name, "removed": false})),
        Err(e) => Err(StepError::new(format!(
            "cannot remove the container `{name}`: {}",
            engine_message(&e)
        ))),
    }
}

/// The end of a text stream, at most a set number of bytes.
struct Tail {
    text: String,
    max: usize,
    cut: bool,
}

impl Tail {
    fn new(max: usize) -> Self {
        Self {
            text: String::new(),
            max,
            cut: false,
        }
    }

    fn push(&mut self, more: &str) {
        // the engine colours a failing command's output: keep the text
        let mut rest = more;
        while let Some(at) = rest.find('\u{1b}') {
            self.text.push_str(&rest[..at]);
            let tail = &rest[at..];
            // `ESC [ … m` and the like: up to the first letter after `[`
            let end = tail
                .char_indices()
                .skip(2)
                .find(|(_, c)| c.is_ascii_alphabetic())
                .map_or(tail.len(), |(i, c)| i + c.len_utf8());
            rest = &tail[end..];
        }
        self.text.push_str(rest);
        if self.text.len() > self.max * 2 {
            let mut from = self.text.len() - self.max;
            while !self.text.is_char_boundary(from) {
                from += 1;
            }
            self.text.drain(..from);
            self.cut = true;
        }
    }

    fn text(&self) -> String {
        let mut from = self.text.len().saturating_sub(self.max);
        while !self.text.is_char_boundary(from) {
            from += 1;
        }
        if self.cut || from > 0 {
            format!("… (the start was cut)\n{}", &self.text[from..])
        } else {
            self.text.clone()
        }
    }

    fn last_lines(&self, n: usize) -> String {
        let lines: Vec<&str> = self.text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
