//! What a run creates in the Docker engine is gone when it ends: after a
//! run that passes, one that fails, and one interrupted with SIGINT; and
//! `--keep` leaves it in place. Each run builds an image from Debian's
//! busybox-static, starts a container on a network of its own with a
//! volume, and execs in it, all named uniquely; the engine is asked by
//! those names afterwards (the docker CLI). The seed plan's Docker cases
//! (specs/docker/) run in a CI step of their own: scripts/docker-specs.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;

/// Names unique to one test.
struct Names {
    image: String,
    container: String,
    network: String,
    volume: String,
}

impl Names {
    fn new(test: &str) -> Self {
        let unique = format!(
            "{test}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        Self {
            image: format!("planrun-test/{unique}:1"),
            container: format!("planrun-test-{unique}"),
            network: format!("planrun-test-net-{unique}"),
            volume: format!("planrun-test-vol-{unique}"),
        }
    }

    /// A spec that creates all four, then runs `last` (a step).
    fn spec(&self, last: &str) -> String {
        let Names {
            image,
            container,
            network,
            volume,
        } = self;
        format!(
            r#"id = "DOCKER"
[[steps]]
id = "build"
docker = {{ build = {{ context = "image", tag = "{image}" }} }}

[[steps]]
id = "start"
docker = {{ run = {{ image = "{image}", name = "{container}", cmd = ["sleep", "600"], network = "{network}", volumes = {{ "/data" = "{volume}" }} }} }}
expect.running = true

[[steps]]
id = "write"
docker = {{ exec = {{ container = "{container}", cmd = ["sh", "-c", "echo kept > /data/file && cat /data/file"] }} }}
expect.exit_code = 0
expect.stdout = "kept\n"

{last}
"#
        )
    }

    /// Which of the four the engine still has.
    fn left(&self) -> Vec<String> {
        let mut left = Vec::new();
        let found = |args: &[&str]| {
            let out = docker(args);
            !String::from_utf8_lossy(&out.stdout).trim().is_empty()
        };
        if found(&["images", "-q", &self.image]) {
            left.push(format!("image {}", self.image));
        }
        let name_filter = format!("name=^/{}$", self.container);
        if found(&["ps", "-aq", "--filter", &name_filter]) {
            left.push(format!("container {}", self.container));
        }
        let net_filter = format!("name=^{}$", self.network);
        if found(&["network", "ls", "-q", "--filter", &net_filter]) {
            left.push(format!("network {}", self.network));
        }
        let vol_filter = format!("name=^{}$", self.volume);
        if found(&["volume", "ls", "-q", "--filter", &vol_filter]) {
            left.push(format!("volume {}", self.volume));
        }
        left
    }

    /// Removes the four by name (after `--keep`).
    fn remove(&self) {
        docker(&["rm", "-f", "-v", &self.container]);
        docker(&["network", "rm", &self.network]);
        docker(&["volume", "rm", "-f", &self.volume]);
        docker(&["rmi", "-f", &self.image]);
    }
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs (the test command checks the engine is reachable)")
}

/// A directory with the busybox build context and `spec` as `spec.toml`.
/// The image's first layer is the test's own (`unique`): tests running at
/// once share no layer, so one run's removal of its image cannot take a
/// cached layer from under another's build.
fn workdir(spec: &str, unique: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("image");
    std::fs::create_dir(&image).expect("mkdir");
    std::fs::copy("/bin/busybox", image.join("busybox"))
        .expect("Debian's busybox-static is installed (the test command installs it)");
    std::fs::write(image.join("unique"), unique).expect("unique");
    std::fs::write(
        image.join("Dockerfile"),
        "FROM scratch\nCOPY unique /unique\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
    )
    .expect("Dockerfile");
    std::fs::write(dir.path().join("spec.toml"), spec).expect("spec");
    dir
}

fn planrun(dir: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_planrun"))
        .args(["run", "spec.toml", "--no-color"])
        .args(extra)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("planrun starts")
}

/// Waits for planrun to end, up to three minutes (a guard against a hang,
/// not a measure of speed).
fn wait_for_exit(mut child: Child) -> Output {
    let started = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if started.elapsed() > Duration::from_mins(3) {
            let _ = child.kill();
            panic!("planrun did not end");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn a_run_that_passes_leaves_nothing_in_the_engine() {
    let names = Names::new("pass");
    let dir = workdir(&names.spec(""), &names.image);
    let out = wait_for_exit(planrun(dir.path(), &[]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(names.left(), Vec::<String>::new(), "{stderr}");
}

#[test]
fn a_run_that_fails_leaves_nothing_in_the_engine() {
    let names = Names::new("fail");
    let dir = workdir(&names.spec(&format!(
        "[[steps]]\nid = \"check\"\ndocker = {{ exec = {{ container = \"{}\", cmd = [\"cat\", \"/data/none\"] }} }}\nexpect.exit_code = 0\n",
        names.container
    )), &names.image);
    let out = wait_for_exit(planrun(dir.path(), &[]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No such file or directory"), "{stderr}");
    assert_eq!(names.left(), Vec::<String>::new(), "{stderr}");
}

#[test]
fn an_interrupted_run_leaves_nothing_in_the_engine() {
    let names = Names::new("interrupt");
    let dir = workdir(
        &names.spec("[[steps]]\nid = \"long\"\nwait = \"120s\"\n"),
        &names.image,
    );
    let mut child = planrun(dir.path(), &[]);
    // the container runs: interrupt the long pause after it
    until_running(&mut child, &format!("name=^/{}$", names.container));
    std::thread::sleep(Duration::from_millis(500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = wait_for_exit(child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(names.left(), Vec::<String>::new(), "{stderr}");
}

/// Polls `docker ps` until `filter` finds a running container, while
/// `child` runs.
fn until_running(child: &mut Child, filter: &str) {
    let started = Instant::now();
    while String::from_utf8_lossy(&docker(&["ps", "-q", "--filter", filter]).stdout)
        .trim()
        .is_empty()
    {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "planrun ended before `{filter}` ran"
        );
        assert!(
            started.elapsed() < Duration::from_mins(2),
            "`{filter}` never ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn what_a_killed_run_left_carries_its_label_and_planrun_clean_removes_it() {
    let names = Names::new("killed");
    let project = names
        .container
        .replace("planrun-test-", "planrun-test-project-");
    let compose = format!(
        "[[steps]]\nid = \"stack\"\ndocker = {{ compose = {{ file = \"compose.yml\", project = \"{project}\", command = \"up\", env = {{ IMAGE = \"{}\" }} }} }}\n\n[[steps]]\nid = \"long\"\nwait = \"120s\"\n",
        names.image
    );
    let dir = workdir(&names.spec(&compose), &names.image);
    std::fs::write(
        dir.path().join("compose.yml"),
        "version: \"2.4\"\nservices:\n  sleeper:\n    image: ${IMAGE}\n    command: [\"sleep\", \"600\"]\n    volumes: [\"scratch:/scratch\"]\nvolumes:\n  scratch: {}\n",
    )
    .expect("compose.yml");
    let mut child = planrun(dir.path(), &[]);
    let project_filter = format!("label=com.docker.compose.project={project}");
    until_running(&mut child, &project_filter);
    // killed outright: no teardown runs
    child.kill().expect("kill");
    let _ = child.wait();
    assert_eq!(names.left().len(), 4, "{:?}", names.left());
    // the project's container carries the run's label, as the rest do
    let ids = docker(&["ps", "-q", "--filter", &project_filter]);
    let id = String::from_utf8_lossy(&ids.stdout).trim().to_string();
    let label = docker(&[
        "inspect",
        "-f",
        "{{ index .Config.Labels \"planrun.run\" }}",
        &id,
    ]);
    let run = String::from_utf8_lossy(&label.stdout).trim().to_string();
    assert!(
        !run.is_empty(),
        "the project's container has no planrun.run label"
    );
    let own = docker(&[
        "inspect",
        "-f",
        "{{ index .Config.Labels \"planrun.run\" }}",
        &names.container,
    ]);
    assert_eq!(String::from_utf8_lossy(&own.stdout).trim(), run);

    let out = Command::new(env!("CARGO_BIN_EXE_planrun"))
        .args(["clean", "--run", &run])
        .output()
        .expect("planrun clean runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        format!("removed 2 containers, 2 networks, 2 volumes and 1 image that run {run} left")
    );
    assert_eq!(names.left(), Vec::<String>::new());
    for kind in [
        &["ps", "-aq"][..],
        &["network", "ls", "-q"],
        &["volume", "ls", "-q"],
    ] {
        let mut args = kind.to_vec();
        args.extend(["--filter", &project_filter]);
        let out = docker(&args);
        assert!(
            String::from_utf8_lossy(&out.stdout).trim().is_empty(),
            "{args:?}"
        );
    }
}

#[test]
fn keep_leaves_what_the_run_created() {
    let names = Names::new("keep");
    let dir = workdir(&names.spec(""), &names.image);
    let out = wait_for_exit(planrun(dir.path(), &["--keep"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let left = names.left();
    names.remove();
    assert_eq!(left.len(), 4, "{left:?}\n{stderr}");
    assert_eq!(names.left(), Vec::<String>::new());
}

#[test]
fn an_engine_that_does_not_answer_is_said_so_located_and_nothing_hangs() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("spec.toml"),
        "[[steps]]\nid = \"look\"\ndocker = { inspect = \"anything\" }\n",
    )
    .expect("spec");
    let out = Command::new(env!("CARGO_BIN_EXE_planrun"))
        .args(["run", "spec.toml", "--no-color"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .current_dir(dir.path())
        .output()
        .expect("planrun runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot reach the Docker engine at `unix:///nonexistent/docker.sock`"),
        "{stderr}"
    );
    assert!(stderr.contains("spec.toml:3:"), "located: {stderr}");
    assert!(stderr.contains("DOCKER_HOST"), "{stderr}");
}
