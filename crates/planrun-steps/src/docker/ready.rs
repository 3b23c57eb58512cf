//! When a container started by a `run` step is ready: its `ready` probe (a
//! TCP address, an HTTP URL, a line of its output), or, for `wait =
//! "healthy"` and a container without a health check, every TCP port it
//! exposes accepting connections.
//!
//! An address on `localhost`, or a bare port, is the container's own view:
//! the probe asks the container at its address on its network, not through
//! a published port, where the engine's proxy accepts connections whether
//! or not anything in the container listens. A container that stops while
//! its probe waits is an error quoting its last lines, as is the step's time
//! limit passing.

use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt as _;
use planrun_runner::executor::StepError;
use planrun_spec::kinds::Readiness;
use regex::Regex;

use super::{engine_message, with_logs};
use crate::probe::{LastFailure, ReadyMatch, Target};

/// Pause between attempts when `ready` gives none.
const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

/// The longest line of output a `log` probe reads whole; the rest of a
/// longer one is not matched.
const MAX_LINE: usize = 64 * 1024;

/// What a container is waited for once it runs.
#[derive(Debug)]
pub(super) enum Probe {
    /// Addresses that must all accept connections or answer.
    Targets(Vec<Target>),
    /// A line of its output that matches.
    Log(Regex),
}

impl Probe {
    /// The probe `ready` describes, for the container as `state` shows it
    /// running (its address).
    pub(super) fn of(ready: &Readiness, state: &ContainerInspectResponse) -> Result<Self, StepError> {
        let host = address(state);
        match (&ready.tcp, &ready.http, &ready.log) {
            (Some(addr), None, None) => Ok(Self::Targets(vec![Target::Tcp(tcp_address(addr, &host))])),
            (None, Some(url), None) => Ok(Self::Targets(vec![Target::Http(http_url(url, &host))])),
            (None, None, Some(pattern)) => Regex::new(pattern).map(Self::Log).map_err(|e| {
                StepError::new(format!("`{pattern}` is not a valid regular expression: {e}"))
            }),
            _ => Err(StepError::new("set exactly one of `tcp`, `http` or `log` in `ready`")),
        }
    }

    /// Every TCP port the container exposes (its image's and those it
    /// publishes), or `None` when it exposes none.
    pub(super) fn exposed_ports(state: &ContainerInspectResponse) -> Option<Self> {
        let host = address(state);
        let mut ports: Vec<&str> = state
            .config
            .as_ref()
            .and_then(|c| c.exposed_ports.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|port| port.strip_suffix("/tcp"))
            .collect();
        ports.sort_unstable();
        let targets: Vec<Target> = ports
            .into_iter()
            .map(|port| Target::Tcp(format!("{host}:{port}")))
            .collect();
        (!targets.is_empty()).then_some(Self::Targets(targets))
    }

    /// How the probe reads in messages.
    fn describe(&self) -> String {
        match self {
            Self::Targets(targets) => targets
                .iter()
                .map(Target::describe)
                .collect::<Vec<_>>()
                .join(" and "),
            Self::Log(pattern) => format!("a line of its output matching `{pattern}`"),
        }
    }
}

/// Whether the container has a health check, its own or its image's.
pub(super) fn has_healthcheck(state: &ContainerInspectResponse) -> bool {
    state
        .config
        .as_ref()
        .and_then(|c| c.healthcheck.as_ref())
        .and_then(|h| h.test.as_ref())
        .and_then(|test| test.first())
        .is_some_and(|first| first != "NONE")
}

/// The container's address on its network, as this machine reaches it: the
/// first network's, in name order; `127.0.0.1` for a container on the
/// host's network, which has none.
fn address(state: &ContainerInspectResponse) -> String {
    let networks = state
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref());
    let mut found: Vec<(&String, &str)> = networks
        .into_iter()
        .flatten()
        .filter_map(|(name, endpoint)| {
            let ip = endpoint.ip_address.as_deref().filter(|ip| !ip.is_empty())?;
            Some((name, ip))
        })
        .collect();
    found.sort_unstable();
    found
        .first()
        .map_or_else(|| String::from("127.0.0.1"), |(_, ip)| (*ip).to_string())
}

fn is_local(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "0.0.0.0" | "[::1]")
}

/// `ready.tcp`: a bare port (`8000`, `8000/tcp`) or a `localhost` address is
/// the container's; any other address is asked as written.
fn tcp_address(addr: &str, host: &str) -> String {
    let bare = addr.strip_suffix("/tcp").unwrap_or(addr);
    if !bare.is_empty() && bare.bytes().all(|b| b.is_ascii_digit()) {
        return format!("{host}:{bare}");
    }
    match addr.rsplit_once(':') {
        Some((local, port)) if is_local(local) => format!("{host}:{port}"),
        _ => addr.to_string(),
    }
}

/// `ready.http`: a URL on `localhost` is the container's.
fn http_url(url: &str, host: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (name, port) = match authority.rsplit_once(':') {
        Some((name, port)) if !port.contains(']') => (name, Some(port)),
        _ => (authority, None),
    };
    if !is_local(name) {
        return url.to_string();
    }
    match port {
        Some(port) => format!("{scheme}://{host}:{port}{tail}"),
        None => format!("{scheme}://{host}{tail}"),
    }
}

/// Waits until `probe` passes for container `id`, or the container stops,
/// or `deadline` passes; a `log` probe gives the line that matched.
pub(super) async fn until_ready(
    docker: &Docker,
    id: &str,
    name: &str,
    probe: &Probe,
    interval: Option<Duration>,
    deadline: Instant,
) -> Result<Option<ReadyMatch>, StepError> {
    let outcome = match probe {
        Probe::Log(pattern) => {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, first_match(docker, id, pattern)).await {
                Ok(Ok(Some(found))) => return Ok(Some(found)),
                Ok(Ok(None)) => Outcome::Stopped,
                Ok(Err(e)) => return Err(e),
                Err(_) => Outcome::TimedOut(None),
            }
        }
        Probe::Targets(targets) => {
            poll(docker, id, targets, interval.unwrap_or(DEFAULT_INTERVAL), deadline).await?
        }
    };
    let what = probe.describe();
    let message = match outcome {
        Outcome::Ready => return Ok(None),
        Outcome::Stopped => format!("the container `{name}` stopped before it was ready ({what})"),
        Outcome::TimedOut(reason) => {
            let reason = reason.map(|r| format!("; the last attempt: {r}")).unwrap_or_default();
            format!("the container `{name}` was not ready ({what}) within the step's time limit{reason}")
        }
    };
    Err(with_logs(docker, id, message).await)
}

enum Outcome {
    Ready,
    Stopped,
    TimedOut(Option<String>),
}

/// Tries every target each round until all pass in one round; between
/// rounds, makes sure the container still runs.
async fn poll(
    docker: &Docker,
    id: &str,
    targets: &[Target],
    interval: Duration,
    deadline: Instant,
) -> Result<Outcome, StepError> {
    let mut last = LastFailure::default();
    loop {
        let mut all = true;
        for target in targets {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if let Err(failure) = target.check(remaining).await {
                last.record(failure);
                all = false;
                break;
            }
        }
        if all {
            return Ok(Outcome::Ready);
        }
        let state = docker
            .inspect_container(id, None)
            .await
            .map_err(|e| StepError::new(format!("cannot look at the container: {}", engine_message(&e))))?;
        if !state.state.as_ref().and_then(|s| s.running).unwrap_or(false) {
            return Ok(Outcome::Stopped);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(Outcome::TimedOut(last.reason().map(str::to_string)));
        }
        tokio::time::sleep(interval.min(remaining)).await;
    }
}

/// The first line of the container's output, from its start on, that
/// `pattern` matches; `None` when its output ends (it stopped) first.
async fn first_match(docker: &Docker, id: &str, pattern: &Regex) -> Result<Option<ReadyMatch>, StepError> {
    let mut stream = docker.logs(
        id,
        Some(LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            tail: String::from("all"),
            ..Default::default()
        }),
    );
    // stdout and stderr arrive interleaved, each in pieces of lines
    let mut partial: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| StepError::new(format!("cannot read the container's output: {}", engine_message(&e))))?;
        let (index, bytes) = match chunk {
            bollard::container::LogOutput::StdErr { message } => (1, message),
            bollard::container::LogOutput::StdOut { message }
            | bollard::container::LogOutput::Console { message } => (0, message),
            bollard::container::LogOutput::StdIn { .. } => continue,
        };
        let line = &mut partial[index];
        for &byte in &bytes {
            if byte == b'\n' {
                let text = String::from_utf8_lossy(line);
                if let Some(found) = ReadyMatch::find(pattern, text.trim_end_matches('\r')) {
                    return Ok(Some(found));
                }
                line.clear();
            } else if line.len() < MAX_LINE {
                line.push(byte);
            }
        }
    }
    // a last line without its line ending
    for line in &partial {
        if let Some(found) = ReadyMatch::find(pattern, &String::from_utf8_lossy(line)) {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bollard::models::{ContainerConfig, EndpointSettings, NetworkSettings};

    use super::*;

    fn on_network(ip: &str, exposed: &[&str]) -> ContainerInspectResponse {
        ContainerInspectResponse {
            config: Some(ContainerConfig {
                exposed_ports: Some(exposed.iter().map(|p| (*p).to_string()).collect()),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                networks: Some(HashMap::from([(
                    String::from("bridge"),
                    EndpointSettings {
                        ip_address: Some(ip.to_string()),
                        ..Default::default()
                    },
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_container_s_own_addresses_are_asked_at_its_address() {
        let host = address(&on_network("172.17.0.2", &[]));
        assert_eq!(host, "172.17.0.2");
        assert_eq!(tcp_address("8000", &host), "172.17.0.2:8000");
        assert_eq!(tcp_address("8000/tcp", &host), "172.17.0.2:8000");
        assert_eq!(tcp_address("localhost:8000", &host), "172.17.0.2:8000");
        assert_eq!(tcp_address("10.0.0.5:8000", &host), "10.0.0.5:8000");
        assert_eq!(
            http_url("http://localhost:8000/health/?x=1", &host),
            "http://172.17.0.2:8000/health/?x=1"
        );
        assert_eq!(http_url("http://127.0.0.1/health", &host), "http://172.17.0.2/health");
        assert_eq!(http_url("http://example.test:8000/", &host), "http://example.test:8000/");
        // the host's network: no address of its own
        assert_eq!(address(&ContainerInspectResponse::default()), "127.0.0.1");
    }

    #[test]
    fn only_exposed_tcp_ports_are_probed() {
        assert!(Probe::exposed_ports(&on_network("172.17.0.3", &["53/udp"])).is_none());
        let Some(Probe::Targets(targets)) =
            Probe::exposed_ports(&on_network("172.17.0.3", &["8000/tcp", "53/udp", "5432/tcp"]))
        else {
            panic!("exposed TCP ports are probed");
        };
        let described: Vec<String> = targets.iter().map(Target::describe).collect();
        assert_eq!(
            described,
            ["`172.17.0.3:5432` accepting connections", "`172.17.0.3:8000` accepting connections"]
        );
    }
}
