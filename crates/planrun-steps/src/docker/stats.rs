//! A container's CPU, memory, network and disk figures, as `docker stats`
//! shows them: a [`Sampler`] reads the engine's stream (a sample a second)
//! and a [`Series`] folds the samples into the result, in constant memory
//! whatever the duration. A `stats` step samples for its `duration`; a
//! step that runs beside another (a load) can drive the same two until
//! that one ends.

use std::time::Instant;

use bollard::Docker;
use bollard::errors::Error as EngineError;
use bollard::models::ContainerStatsResponse;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use planrun_runner::executor::StepError;
use serde_json::{Value as Json, json};

use super::no_such_container;

/// One stats sample's figures.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Sample {
    cpu: Option<f64>,
    memory: u64,
    limit: u64,
    rx: u64,
    tx: u64,
    read: u64,
    write: u64,
    pids: u64,
}

impl Sample {
    /// The figures `docker stats` shows, from one answer of the engine:
    /// CPU percent from the change since the engine's previous reading
    /// (`None` on the first, which has none), memory without the page
    /// cache (cgroup v1's `cache`, v2's `inactive_file`).
    fn of(stats: &ContainerStatsResponse) -> Self {
        let cpu = (|| {
            let now = stats.cpu_stats.as_ref()?;
            let before = stats.precpu_stats.as_ref()?;
            let used = now.cpu_usage.as_ref()?.total_usage?;
            let used_before = before.cpu_usage.as_ref()?.total_usage?;
            let system = now.system_cpu_usage?;
            let system_before = before.system_cpu_usage?;
            let cpus = now.online_cpus.map(f64::from).or_else(|| {
                now.cpu_usage
                    .as_ref()?
                    .percpu_usage
                    .as_ref()
                    .map(|p| p.len() as f64)
            })?;
            let (used, system) = (
                used.checked_sub(used_before)?,
                system.checked_sub(system_before)?,
            );
            (system > 0).then(|| used as f64 / system as f64 * cpus * 100.0)
        })();
        let memory = stats.memory_stats.as_ref();
        let cache = memory
            .and_then(|m| m.stats.as_ref())
            .and_then(|s| s.get("total_inactive_file").or(s.get("inactive_file")).or(s.get("cache")))
            .copied()
            .unwrap_or(0);
        let usage = memory.and_then(|m| m.usage).unwrap_or(0);
        let (mut rx, mut tx) = (0, 0);
        for network in stats.networks.iter().flat_map(|n| n.values()) {
            rx += network.rx_bytes.unwrap_or(0);
            tx += network.tx_bytes.unwrap_or(0);
        }
        let (mut read, mut write) = (0, 0);
        for entry in stats
            .blkio_stats
            .as_ref()
            .and_then(|b| b.io_service_bytes_recursive.as_ref())
            .into_iter()
            .flatten()
        {
            match entry.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("read") => read += entry.value.unwrap_or(0),
                Some("write") => write += entry.value.unwrap_or(0),
                _ => {}
            }
        }
        Self {
            cpu,
            memory: usage.saturating_sub(cache),
            limit: memory.and_then(|m| m.limit).unwrap_or(0),
            rx,
            tx,
            read,
            write,
            pids: stats.pids_stats.as_ref().and_then(|p| p.current).unwrap_or(0),
        }
    }
}

/// The engine's stream of a container's figures.
pub(super) struct Sampler<'a> {
    name: String,
    stream: BoxStream<'a, Result<ContainerStatsResponse, EngineError>>,
}

impl<'a> Sampler<'a> {
    /// Starts reading the figures of container `name`.
    pub(super) fn new(docker: &'a Docker, name: &str) -> Self {
        let stream = docker.stats(
            name,
            Some(bollard::query_parameters::StatsOptions {
                stream: true,
                one_shot: false,
            }),
        );
        Self {
            name: name.to_string(),
            stream: stream.boxed(),
        }
    }

    /// The next sample, a second after the last; `None` once the engine
    /// ends the stream (the container is gone).
    pub(super) async fn next(&mut self) -> Result<Option<Sample>, StepError> {
        match self.stream.next().await {
            Some(answer) => Ok(Some(Sample::of(
                &answer.map_err(|e| no_such_container(&self.name, &e))?,
            ))),
            None => Ok(None),
        }
    }
}

/// Samples folded into their last, maximum and mean figures.
#[derive(Debug, Default)]
pub(super) struct Series {
    /// Samples counted (each with a CPU figure but perhaps the only one).
    samples: u64,
    cpu_sum: f64,
    cpu_count: u64,
    cpu_max: Option<f64>,
    memory_max: u64,
    last: Option<Sample>,
    /// The stream's first answer, which has no previous reading to take
    /// CPU use from: counted only if nothing follows it.
    first: Option<Sample>,
}

impl Series {
    /// Adds a sample.
    pub(super) fn push(&mut self, sample: Sample) {
        if sample.cpu.is_none() && self.samples == 0 && self.first.is_none() {
            self.first = Some(sample);
            return;
        }
        self.count(sample);
    }

    fn count(&mut self, sample: Sample) {
        self.samples += 1;
        if let Some(cpu) = sample.cpu {
            self.cpu_sum += cpu;
            self.cpu_count += 1;
            self.cpu_max = Some(self.cpu_max.map_or(cpu, |max| max.max(cpu)));
        }
        self.memory_max = self.memory_max.max(sample.memory);
        self.last = Some(sample);
    }

    /// Samples counted so far.
    pub(super) fn samples(&self) -> u64 {
        self.samples
    }

    /// The result document; `None` when the engine gave no figures.
    pub(super) fn doc(mut self) -> Option<Json> {
        if self.samples == 0
            && let Some(first) = self.first.take()
        {
            self.count(first);
        }
        let last = self.last?;
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let cpu_mean = (self.cpu_count > 0).then(|| self.cpu_sum / self.cpu_count as f64);
        let percent =
            (last.limit > 0).then(|| round(last.memory as f64 / last.limit as f64 * 100.0));
        Some(json!({
            "action": "stats",
            "samples": self.samples,
            "cpu_percent": last.cpu.map(round),
            "cpu_max": self.cpu_max.map(round),
            "cpu_mean": cpu_mean.map(round),
            "memory_usage": last.memory,
            "memory_max": self.memory_max,
            "memory_limit": last.limit,
            "memory_percent": percent,
            "net_rx_bytes": last.rx,
            "net_tx_bytes": last.tx,
            "block_read_bytes": last.read,
            "block_write_bytes": last.write,
            "pids": last.pids,
        }))
    }
}

/// A `stats` step: one sample, or samples for its `duration`.
pub(super) async fn container_stats(
    docker: &Docker,
    stats: &planrun_spec::kinds::DockerStats,
) -> Result<Json, StepError> {
    let name = &stats.container;
    let until = stats.duration.map(|d| Instant::now() + d.0);
    let mut sampler = Sampler::new(docker, name);
    let mut series = Series::default();
    while let Some(sample) = sampler.next().await? {
        series.push(sample);
        if series.samples() > 0 && until.is_none_or(|until| Instant::now() >= until) {
            break;
        }
    }
    series.doc().ok_or_else(|| {
        StepError::new(format!(
            "the engine gave no figures for `{name}`; is it running?"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cpu: Option<f64>, memory: u64) -> Sample {
        Sample {
            cpu,
            memory,
            limit: 1000,
            ..Sample::default()
        }
    }

    #[test]
    fn a_series_keeps_its_last_maximum_and_mean_figures() {
        let mut series = Series::default();
        series.push(sample(None, 100));
        assert_eq!(series.samples(), 0, "the first answer has no CPU figure");
        for (cpu, memory) in [(10.0, 300), (50.0, 200), (30.0, 250)] {
            series.push(sample(Some(cpu), memory));
        }
        let doc = series.doc().expect("figures");
        assert_eq!(doc["samples"], 3);
        assert_eq!(doc["cpu_percent"], 30.0);
        assert_eq!(doc["cpu_max"], 50.0);
        assert_eq!(doc["cpu_mean"], 30.0);
        assert_eq!(doc["memory_usage"], 250);
        assert_eq!(doc["memory_max"], 300);
        assert_eq!(doc["memory_percent"], 25.0);
    }

    #[test]
    fn a_lone_first_answer_is_the_one_sample() {
        let mut series = Series::default();
        series.push(sample(None, 100));
        let doc = series.doc().expect("figures");
        assert_eq!(doc["samples"], 1);
        assert!(doc["cpu_percent"].is_null());
        assert!(Series::default().doc().is_none());
    }
}
