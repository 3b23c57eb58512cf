//! The process group of a child started by `exec`, and the signals sent to it.
//!
//! Every child is started as the leader of its own group, so stopping it also
//! stops whatever it started (a shell's children, a server's workers). The
//! workspace forbids `unsafe` and std cannot signal a group, so signals go
//! through the `kill` program. This module must not wait for or reap the
//! group's leader: the `tokio::process::Child` that owns it does that.

use std::path::Path;
use std::process::Stdio;

use planrun_runner::leftovers::{self, Leftover};

/// A signal sent to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Asks the processes to stop.
    Term,
    /// Stops them.
    Kill,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
        }
    }
}

/// A process group that is killed when this value is dropped while armed.
///
/// Dropping happens when the runner drops a timed-out step, when a spec is
/// cancelled, or when planrun unwinds: nothing started by a step may outlive it.
///
/// While armed, the group is also registered as a leftover of the run, so
/// that quitting planrun for good (a second Ctrl-C) kills it even when no
/// destructor gets to run.
#[derive(Debug)]
pub(crate) struct ProcessGroup {
    pgid: u32,
    armed: bool,
    leftover: Option<Leftover>,
}

impl ProcessGroup {
    /// The group led by the process `pgid`.
    pub(crate) fn new(pgid: u32) -> Self {
        let leftover = leftovers::register(format!("process group {pgid}"), move || {
            let _ = kill(&["-s", "KILL"], pgid).status();
        });
        Self {
            pgid,
            armed: true,
            leftover: Some(leftover),
        }
    }

    /// Sends `signal` to every process of the group; a group that is already
    /// gone is not an error.
    pub(crate) async fn signal(&self, signal: Signal) {
        let status = tokio::process::Command::from(kill(&["-s", signal.name()], self.pgid))
            .status()
            .await;
        // ESRCH (the group is empty) is the common case after a clean exit
        drop(status);
    }

    /// Whether a live (not zombie) process is left in the group.
    pub(crate) async fn alive(&self) -> bool {
        let pgid = self.pgid;
        let scanned = tokio::task::spawn_blocking(move || live_members(pgid)).await;
        match scanned {
            Ok(Some(count)) => count > 0,
            // no /proc: `kill -0` also counts zombies, which errs on the side
            // of waiting the whole grace period
            _ => tokio::process::Command::from(kill(&["-0"], pgid))
                .status()
                .await
                .is_ok_and(|s| s.success()),
        }
    }

    /// Leaves the group alone when dropped (it was stopped deliberately).
    pub(crate) fn disarm(&mut self) {
        self.armed = false;
        self.leftover = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Drop cannot await and may run outside a runtime: start `kill` with
        // std and reap it on a thread so it leaves no zombie behind.
        let spawned = kill(&["-s", "KILL"], self.pgid).spawn();
        if let Ok(mut child) = spawned {
            std::thread::spawn(move || child.wait());
        }
    }
}

/// `kill ARGS -- -PGID`, silent: what it says is of no use (an empty group
/// is the common case).
fn kill(args: &[&str], pgid: u32) -> std::process::Command {
    let mut command = std::process::Command::new(kill_program());
    command
        .args(args)
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn kill_program() -> &'static str {
    if Path::new("/bin/kill").exists() {
        "/bin/kill"
    } else {
        "kill"
    }
}

/// How many live processes belong to group `pgid`, from `/proc`; `None` when
/// `/proc` cannot be read.
fn live_members(pgid: u32) -> Option<usize> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let mut count = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((state, group)) = parse_stat(&stat)
            && group == pgid
            && !matches!(state, 'Z' | 'X' | 'x')
        {
            count += 1;
        }
    }
    Some(count)
}

/// The state and process group of a `/proc/PID/stat` line.
pub(crate) fn parse_stat(stat: &str) -> Option<(char, u32)> {
    // the command name is in parentheses and may itself contain `)` or spaces
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let line = "4242 (my (odd) name) S 1 4240 4240 0 -1 4194560";
        assert_eq!(parse_stat(line), Some(('S', 4240)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[tokio::test]
    async fn a_group_dies_when_dropped() {
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30"])
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let group = ProcessGroup::new(child.id().unwrap());
        // give the shell time to start its background sleep
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(group.alive().await);
        let probe = ProcessGroup {
            pgid: group.pgid,
            armed: false,
            leftover: None,
        };
        drop(group);
        let _ = child.wait().await;
        for _ in 0..50 {
            if !probe.alive().await {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the group outlived its guard");
    }
}
