//! The `docker` executor against the real engine: an image built from
//! Debian's busybox-static, a container started and found healthy, a
//! command run in it, its logs, state, stop and removal; the failures a
//! user meets (a build error, an image that is not here, a container that
//! exits at once, a health check that never passes); and nothing labelled
//! with the run left behind once it ends.
//!
//! The engine must be reachable (the test command checks it) and
//! `/bin/busybox` must be Debian's static build (busybox-static).

mod common;

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{ListContainersOptions, ListImagesOptions};
use common::{MAX_BODY, config, context, run, run_step, write};
use planrun_runner::executor::StepExecutor as _;
use planrun_steps::docker::{DockerExecutor, RUN_LABEL};

/// A build context holding busybox and a Dockerfile installing it, its
/// first layer the test's own (`unique`): tests running at once share no
/// layer that one's removal could take from under the other's build.
fn busybox_context(dir: &std::path::Path, unique: &str) {
    let image = dir.join("image");
    std::fs::create_dir_all(&image).expect("mkdir");
    write(&image, "unique", unique);
    std::fs::copy("/bin/busybox", image.join("busybox"))
        .expect("Debian's busybox-static is installed (the test command installs it)");
    write(
        &image,
        "Dockerfile",
        "FROM scratch\nCOPY unique /unique\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nLABEL planrun.test=busybox\n",
    );
    write(&image, ".dockerignore", "*.log\n");
    write(&image, "noise.log", "left out of the context\n");
}

/// Builds the image of [`busybox_context`] as `tag`.
async fn build_busybox(
    executor: &DockerExecutor,
    ctx: &planrun_runner::executor::SpecContext,
    tag: &str,
) {
    run(
        executor,
        ctx,
        &format!("build = {{ context = \"image\", tag = \"{tag}\" }}"),
    )
    .await
    .unwrap_or_else(|e| panic!("the build passes: {}", e.message));
}

/// Whatever a test that fails half-way created is removed when it unwinds
/// (its run's sweep, as an interrupted planrun does).
struct SweepOnPanic(String);

impl Drop for SweepOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = planrun_steps::docker::sweep_blocking(Some(&self.0));
        }
    }
}

async fn engine() -> Docker {
    Docker::connect_with_defaults()
        .expect("the Docker engine is configured")
        .negotiate_version()
        .await
        .expect("the Docker engine is reachable (the test command checks it)")
}

/// The objects labelled with run `id` still in the engine.
async fn labelled(docker: &Docker, id: &str) -> (usize, usize) {
    let filters = Some(HashMap::from([(
        String::from("label"),
        vec![format!("{RUN_LABEL}={id}")],
    )]));
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: filters.clone(),
            ..Default::default()
        }))
        .await
        .expect("list containers");
    let images = docker
        .list_images(Some(ListImagesOptions {
            filters,
            ..Default::default()
        }))
        .await
        .expect("list images");
    (containers.len(), images.len())
}

/// GET `path` from `address` (`127.0.0.1:port`), the body.
fn http_get(address: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).expect("the published port answers");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").expect("write");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_is_built_started_checked_and_removed_with_its_run() {
    let docker = engine().await;
    let executor = DockerExecutor::new();
    let run_id = executor.run_id().to_string();
    let _sweep = SweepOnPanic(run_id.clone());
    let tag = format!("planrun-test/busybox:{run_id}");
    let name = format!("planrun-test-web-{run_id}");
    let (ctx, dir) = context();
    busybox_context(dir.path(), &run_id);

    // build, with a second name
    let more = format!("planrun-test/busybox-more:{run_id}");
    let doc = run(
        &executor,
        &ctx,
        &format!("build = {{ context = \"image\", tag = \"{tag}\", tags = [\"{more}\"] }}"),
    )
    .await
    .unwrap_or_else(|e| panic!("the build passes: {}", e.message));
    assert_eq!(doc["action"], "build");
    assert!(doc["id"].as_str().unwrap().starts_with("sha256:"), "{doc}");
    let tags = doc["tags"].as_array().unwrap();
    assert!(tags.contains(&tag.clone().into()), "{doc}");
    assert!(tags.contains(&more.clone().into()), "{doc}");
    assert!(doc["log"].as_str().unwrap().contains("Step 1/"), "{doc}");
    assert!(!doc["log"].as_str().unwrap().contains("noise.log"), "{doc}");
    assert!(doc["size"].as_i64().unwrap() > 1_000_000, "{doc}");

    // the image, and one that is not here
    let doc = run(&executor, &ctx, &format!("image = \"{tag}\""))
        .await
        .unwrap();
    assert_eq!(doc["exists"], true);
    assert_eq!(doc["labels"]["planrun.test"], "busybox");
    assert_eq!(doc["labels"][RUN_LABEL], run_id.as_str());
    let doc = run(&executor, &ctx, "image = \"planrun-test/nothing:here\"")
        .await
        .unwrap();
    assert_eq!(doc["exists"], false);

    // a web server, healthy, on a published port
    let doc = run_step(
        &executor,
        &ctx,
        &config(&format!(
            r#"run = {{ image = "{tag}", name = "{name}", cmd = ["sh", "-c", "mkdir -p /www && echo ok > /www/health && echo started && exec httpd -f -v -p 8080 -h /www"], ports = {{ "8080" = "127.0.0.1:0" }}, env = {{ GREETING = "hello" }}, healthcheck = {{ cmd = ["wget", "-q", "-O-", "http://127.0.0.1:8080/health"], interval = "200ms" }}, wait = "healthy" }}"#
        )),
        Duration::from_secs(30),
        MAX_BODY,
    )
    .await
    .unwrap_or_else(|e| panic!("the container becomes healthy: {}", e.message));
    assert_eq!(doc["health"], "healthy", "{doc}");
    assert_eq!(doc["running"], true);
    assert_eq!(doc["name"], name.as_str());
    let address = doc["ports"]["8080/tcp"].as_str().expect("a published port");
    assert!(address.starts_with("127.0.0.1:"), "{doc}");
    assert!(http_get(address, "/health").ends_with("ok\n"));

    // a command in it: exit code, both streams, JSON on stdout, env
    let doc = run(
        &executor,
        &ctx,
        &format!(
            r#"exec = {{ container = "{name}", cmd = ["sh", "-c", "echo \"{{\\\"greeting\\\": \\\"$GREETING $WHO\\\"}}\"; echo oops >&2; exit 3"], env = {{ WHO = "you" }} }}"#
        ),
    )
    .await
    .unwrap();
    assert_eq!(doc["exit_code"], 3, "{doc}");
    assert_eq!(doc["json"]["greeting"], "hello you", "{doc}");
    assert_eq!(doc["stderr"], "oops\n");

    // its logs and state
    let doc = run(
        &executor,
        &ctx,
        &format!("logs = {{ container = \"{name}\" }}"),
    )
    .await
    .unwrap();
    assert!(
        doc["stdout"].as_str().unwrap().starts_with("started\n"),
        "{doc}"
    );
    assert!(doc["lines"].as_u64().unwrap() >= 1);
    let doc = run(&executor, &ctx, &format!("inspect = \"{name}\""))
        .await
        .unwrap();
    assert_eq!(doc["exists"], true);
    assert_eq!(doc["status"], "running");
    assert_eq!(doc["restart_count"], 0);
    assert_eq!(doc["oom_killed"], false);
    assert_eq!(doc["labels"][RUN_LABEL], run_id.as_str());

    // stopped, then removed (once)
    let doc = run(
        &executor,
        &ctx,
        &format!("stop = {{ container = \"{name}\", timeout = \"1s\" }}"),
    )
    .await
    .unwrap();
    assert_eq!(doc["status"], "exited", "{doc}");
    let doc = run(&executor, &ctx, &format!("remove = \"{name}\""))
        .await
        .unwrap();
    assert_eq!(doc["removed"], true);
    let doc = run(&executor, &ctx, &format!("remove = \"{name}\""))
        .await
        .unwrap();
    assert_eq!(doc["removed"], false);
    let doc = run(&executor, &ctx, &format!("inspect = \"{name}\""))
        .await
        .unwrap();
    assert_eq!(doc["exists"], false);

    // a container left running goes with the run, and so does the image;
    // it burns a CPU, as the stats say (computed as `docker stats` does)
    let busy = run(
        &executor,
        &ctx,
        &format!(r#"run = {{ image = "{tag}", cmd = ["sh", "-c", "while :; do :; done"] }}"#),
    )
    .await
    .unwrap();
    let doc = run_step(
        &executor,
        &ctx,
        &config(&format!(
            "stats = {{ container = \"{}\", duration = \"2s\" }}",
            busy["id"].as_str().unwrap()
        )),
        Duration::from_secs(20),
        MAX_BODY,
    )
    .await
    .unwrap();
    assert!(doc["samples"].as_u64().unwrap() >= 2, "{doc}");
    // a busy loop is a whole CPU: 100 %, less what a loaded machine takes
    assert!(doc["cpu_max"].as_f64().unwrap() > 30.0, "{doc}");
    assert!(doc["cpu_mean"].as_f64().unwrap() <= doc["cpu_max"].as_f64().unwrap());
    assert!(doc["memory_usage"].as_u64().unwrap() > 0, "{doc}");
    assert!(doc["memory_limit"].as_u64().unwrap() > doc["memory_usage"].as_u64().unwrap());
    assert!(doc["pids"].as_u64().unwrap() >= 1, "{doc}");
    // one sample without a duration
    let doc = run(
        &executor,
        &ctx,
        &format!(
            "stats = {{ container = \"{}\" }}",
            busy["id"].as_str().unwrap()
        ),
    )
    .await
    .unwrap();
    assert_eq!(doc["samples"], 1, "{doc}");
    assert!(doc["cpu_percent"].as_f64().is_some(), "{doc}");
    assert_eq!(labelled(&docker, &run_id).await, (1, 1));
    executor.end_of_run().await;
    assert_eq!(labelled(&docker, &run_id).await, (0, 0));
    assert!(
        docker.inspect_image(&more).await.is_err(),
        "the image's second name went with it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_without_a_health_check_is_ready_when_its_probe_passes() {
    let docker = engine().await;
    let executor = DockerExecutor::new();
    let run_id = executor.run_id().to_string();
    let _sweep = SweepOnPanic(run_id.clone());
    let tag = format!("planrun-test/busybox-ready:{run_id}");
    let (ctx, dir) = context();
    busybox_context(dir.path(), &run_id);
    build_busybox(&executor, &ctx, &tag).await;
    let limit = Duration::from_secs(30);
    // the server listens only after a second: each probe waits for it, and
    // the published port answers as soon as the step ends
    let late_server = "sleep 1; mkdir -p /www; echo ok > /www/health; echo serving on port 8080; exec httpd -f -p 8080 -h /www";

    // `wait = "healthy"` without a health check: the exposed TCP ports
    let doc = run_step(
        &executor,
        &ctx,
        &config(&format!(
            r#"run = {{ image = "{tag}", cmd = ["sh", "-c", "{late_server}"], ports = {{ "8080" = "127.0.0.1:0" }}, wait = "healthy" }}"#
        )),
        limit,
        MAX_BODY,
    )
    .await
    .unwrap_or_else(|e| panic!("the container is ready: {}", e.message));
    assert_eq!(doc["running"], true, "{doc}");
    assert!(doc["health"].is_null(), "{doc}");
    assert!(doc["ready_after"].as_f64().unwrap() >= 1000.0, "{doc}");
    let address = doc["ports"]["8080/tcp"].as_str().expect("a published port");
    assert!(http_get(address, "/health").ends_with("ok\n"));

    // a line of its output, and its groups
    let doc = run_step(
        &executor,
        &ctx,
        &config(&format!(
            r#"run = {{ image = "{tag}", cmd = ["sh", "-c", "echo warming up >&2; {late_server}"], ports = {{ "8080" = "127.0.0.1:0" }}, ready = {{ log = 'serving on port (?P<port>\d+)' }} }}"#
        )),
        limit,
        MAX_BODY,
    )
    .await
    .unwrap_or_else(|e| panic!("the container is ready: {}", e.message));
    assert_eq!(doc["ready_line"], "serving on port 8080", "{doc}");
    assert_eq!(doc["ready_match"]["port"], "8080", "{doc}");
    assert_eq!(doc["ready_match"]["0"], "serving on port 8080", "{doc}");

    // an HTTP URL on the container's localhost: 404 until the file exists
    let doc = run_step(
        &executor,
        &ctx,
        &config(&format!(
            r#"run = {{ image = "{tag}", cmd = ["sh", "-c", "mkdir -p /www; (sleep 1; echo ok > /www/health) & exec httpd -f -p 8080 -h /www"], ports = {{ "8080" = "127.0.0.1:0" }}, ready = {{ http = "http://localhost:8080/health", interval = "50ms" }} }}"#
        )),
        limit,
        MAX_BODY,
    )
    .await
    .unwrap_or_else(|e| panic!("the container is ready: {}", e.message));
    assert!(doc["ready_after"].as_f64().unwrap() >= 1000.0, "{doc}");
    assert!(doc["ready_line"].is_null(), "{doc}");
    let address = doc["ports"]["8080/tcp"].as_str().expect("a published port");
    assert!(http_get(address, "/health").ends_with("ok\n"));

    // a container that stops while its probe waits, and one never ready:
    // errors quoting its last lines
    let e = run_step(
        &executor,
        &ctx,
        &config(&format!(
            r#"run = {{ image = "{tag}", cmd = ["sh", "-c", "echo no server today; sleep 1; exit 4"], ready = {{ tcp = "8080" }} }}"#
        )),
        limit,
        MAX_BODY,
    )
    .await
    .expect_err("it stops first");
    assert!(
        e.message.contains("stopped before it was ready"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains(":8080` accepting connections"),
        "{}",
        e.message
    );
    assert!(e.message.contains("no server today"), "{}", e.message);
    let e = run_step(
        &executor,
        &ctx,
        &config(&format!(
            r#"run = {{ image = "{tag}", cmd = ["sh", "-c", "echo still thinking; sleep 60"], ready = {{ log = "^ready$" }} }}"#
        )),
        Duration::from_secs(3),
        MAX_BODY,
    )
    .await
    .expect_err("never ready");
    assert!(
        e.message.contains(
            "was not ready (a line of its output matching `^ready$`) within the step's time limit"
        ),
        "{}",
        e.message
    );
    assert!(e.message.contains("still thinking"), "{}", e.message);
    // no health check, nothing exposed: nothing to wait for
    let e = run(
        &executor,
        &ctx,
        &format!(r#"run = {{ image = "{tag}", cmd = ["sleep", "60"], wait = "healthy" }}"#),
    )
    .await
    .expect_err("nothing to wait for");
    assert!(
        e.message
            .contains("has no health check to wait for, and exposes no TCP port"),
        "{}",
        e.message
    );
    assert!(
        e.help.as_deref().unwrap_or_default().contains("`ready`"),
        "{e:?}"
    );
    executor.end_of_run().await;
    assert_eq!(labelled(&docker, &run_id).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_goes_wrong_is_said_with_the_engine_s_words_and_the_container_s_last_lines() {
    let docker = engine().await;
    let executor = DockerExecutor::new();
    let run_id = executor.run_id().to_string();
    let _sweep = SweepOnPanic(run_id.clone());
    let tag = format!("planrun-test/busybox-fail:{run_id}");
    let (ctx, dir) = context();
    busybox_context(dir.path(), &run_id);

    // a build that fails quotes the failing instruction's output
    std::fs::create_dir_all(dir.path().join("broken")).unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("broken/busybox")).unwrap();
    write(
        &dir.path().join("broken"),
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo about to fail; exit 9\"]\n",
    );
    let e = run(
        &executor,
        &ctx,
        "build = { context = \"broken\", tag = \"planrun-test/broken:x\" }",
    )
    .await
    .expect_err("the build fails");
    assert!(
        e.message
            .contains("the build of `planrun-test/broken:x` failed"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("returned a non-zero code: 9"),
        "{}",
        e.message
    );
    assert!(e.message.contains("about to fail"), "{}", e.message);
    // a context that is not there
    let e = run(
        &executor,
        &ctx,
        "build = { context = \"nowhere\", tag = \"x:y\" }",
    )
    .await
    .expect_err("no context");
    assert!(e.message.contains("is not a directory"), "{}", e.message);

    build_busybox(&executor, &ctx, &tag).await;

    // an image that is not here is never pulled
    let e = run(
        &executor,
        &ctx,
        "run = { image = \"planrun-test/absent:1\" }",
    )
    .await
    .expect_err("no such image");
    assert!(
        e.message
            .contains("the image `planrun-test/absent:1` is not here"),
        "{}",
        e.message
    );
    assert!(e.help.as_deref().unwrap_or("").contains("never pulls"));

    // a container that exits at once
    let e = run(
        &executor,
        &ctx,
        &format!(
            r#"run = {{ image = "{tag}", cmd = ["sh", "-c", "echo cannot open config; exit 7"] }}"#
        ),
    )
    .await
    .expect_err("it exits");
    assert!(
        e.message
            .contains("exited with code 7 before it was running"),
        "{}",
        e.message
    );
    assert!(e.message.contains("cannot open config"), "{}", e.message);

    // a health check that never passes
    let e = run_step(
        &executor,
        &ctx,
        &config(&format!(
            r#"run = {{ image = "{tag}", cmd = ["sh", "-c", "echo waiting; exec sleep 600"], healthcheck = {{ cmd = ["sh", "-c", "echo not yet; exit 1"], interval = "100ms", retries = 2 }}, wait = "healthy" }}"#
        )),
        Duration::from_secs(30),
        MAX_BODY,
    )
    .await
    .expect_err("never healthy");
    assert!(e.message.contains("turned unhealthy"), "{}", e.message);
    assert!(e.message.contains("not yet"), "{}", e.message);
    assert!(e.message.contains("waiting"), "{}", e.message);

    // a step's time limit binds while it waits
    let e = run_step(
        &executor,
        &ctx,
        &config(&format!(
            r#"run = {{ image = "{tag}", cmd = ["sleep", "600"], healthcheck = {{ cmd = ["false"], interval = "10s" }}, wait = "healthy" }}"#
        )),
        Duration::from_secs(2),
        MAX_BODY,
    )
    .await
    .expect_err("the time limit passes");
    assert!(e.message.contains("time limit"), "{}", e.message);

    // a port another holds: the engine's words
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = held.local_addr().expect("addr").port();
    let e = run(
        &executor,
        &ctx,
        &format!(r#"run = {{ image = "{tag}", cmd = ["sleep", "600"], ports = {{ "8080" = "127.0.0.1:{port}" }} }}"#),
    )
    .await
    .expect_err("the port is taken");
    assert!(e.message.contains("did not start"), "{}", e.message);
    assert!(
        e.message.contains("address already in use") || e.message.contains("already allocated"),
        "{}",
        e.message
    );
    drop(held);

    // a container killed: its exit code says by which signal
    let doc = run(
        &executor,
        &ctx,
        &format!(r#"run = {{ image = "{tag}", cmd = ["sleep", "600"] }}"#),
    )
    .await
    .unwrap();
    let id = doc["id"].as_str().unwrap().to_string();
    let doc = run(
        &executor,
        &ctx,
        &format!("kill = {{ container = \"{id}\" }}"),
    )
    .await
    .unwrap();
    assert_eq!(doc["exit_code"], 137, "{doc}");
    assert_eq!(doc["status"], "exited", "{doc}");

    // a command in a container that is not there
    let e = run(
        &executor,
        &ctx,
        "exec = { container = \"planrun-test-nobody\", cmd = [\"true\"] }",
    )
    .await
    .expect_err("no such container");
    assert!(
        e.message
            .contains("there is no container `planrun-test-nobody`"),
        "{}",
        e.message
    );

    executor.end_of_run().await;
    assert_eq!(labelled(&docker, &run_id).await, (0, 0));
}

#[tokio::test]
async fn a_step_does_one_thing() {
    let (ctx, _dir) = context();
    let e = run(
        &DockerExecutor::new(),
        &ctx,
        "inspect = \"a\"\nremove = \"a\"",
    )
    .await
    .expect_err("two actions");
    assert!(
        e.message.contains("a docker step does one thing"),
        "{}",
        e.message
    );
    let e = run(&DockerExecutor::new(), &ctx, "")
        .await
        .expect_err("none");
    assert!(e.message.contains("needs one action"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compose_project_comes_up_healthy_and_goes_with_the_run() {
    let docker = engine().await;
    let executor = DockerExecutor::new();
    let run_id = executor.run_id().to_string();
    let _sweep = SweepOnPanic(run_id.clone());
    let tag = format!("planrun-test/busybox-compose:{run_id}");
    let project = format!("planruntest{}", run_id.replace('-', ""));
    let (ctx, dir) = context();
    busybox_context(dir.path(), &run_id);
    write(
        dir.path(),
        "stack.yml",
        r#"version: "2.4"
services:
  web:
    image: ${IMAGE}
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/health && echo serving && exec httpd -f -p 8080 -h /www"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"]
      interval: 1s
      retries: 30
  worker:
    image: ${IMAGE}
    command: ["sh", "-c", "echo working > /data/state && exec sleep 600"]
    volumes: ["data:/data"]
volumes:
  data: {}
"#,
    );
    build_busybox(&executor, &ctx, &tag).await;

    let doc = run_step(
        &executor,
        &ctx,
        &config(&format!(
            "compose = {{ file = \"stack.yml\", project = \"{project}\", command = \"up\", wait = \"healthy\", env = {{ IMAGE = \"{tag}\" }} }}"
        )),
        Duration::from_mins(1),
        MAX_BODY,
    )
    .await
    .unwrap_or_else(|e| panic!("the project comes up: {}", e.message));
    assert_eq!(doc["containers"], 2, "{doc}");
    assert_eq!(doc["up"], 2, "{doc}");
    assert_eq!(doc["services"]["web"]["health"], "healthy", "{doc}");
    assert_eq!(doc["services"]["worker"]["state"], "running", "{doc}");
    assert_eq!(doc["services"]["worker"]["restart_count"], 0, "{doc}");

    // the same, read from the engine alone
    let doc = run(
        &executor,
        &ctx,
        &format!("compose = {{ project = \"{project}\" }}"),
    )
    .await
    .unwrap();
    assert_eq!(doc["up"], 2, "{doc}");
    assert!(doc["log"].is_null());

    // gone with the run: containers, network and volume
    executor.end_of_run().await;
    let doc = run(
        &executor,
        &ctx,
        &format!("compose = {{ project = \"{project}\" }}"),
    )
    .await
    .unwrap();
    assert_eq!(doc["containers"], 0, "{doc}");
    let volumes = std::process::Command::new("docker")
        .args([
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("name={project}_data"),
        ])
        .output()
        .expect("docker volume ls");
    assert!(String::from_utf8_lossy(&volumes.stdout).trim().is_empty());
    assert_eq!(labelled(&docker, &run_id).await, (0, 0));
}

#[tokio::test]
async fn a_compose_service_that_exits_is_a_failure_quoting_it() {
    let executor = DockerExecutor::new();
    let run_id = executor.run_id().to_string();
    let _sweep = SweepOnPanic(run_id.clone());
    let project = format!("planruntestexit{}", run_id.replace('-', ""));
    let (ctx, dir) = context();
    busybox_context(dir.path(), &run_id);
    let tag = format!("planrun-test/busybox-compose-exit:{run_id}");
    write(
        dir.path(),
        "stack.yml",
        "version: \"2.4\"\nservices:\n  broken:\n    image: ${IMAGE}\n    command: [\"sh\", \"-c\", \"echo missing setting DATABASE_URL; exit 4\"]\n",
    );
    build_busybox(&executor, &ctx, &tag).await;
    let e = run_step(
        &executor,
        &ctx,
        &config(&format!(
            "compose = {{ file = \"stack.yml\", project = \"{project}\", command = \"up\", env = {{ IMAGE = \"{tag}\" }} }}"
        )),
        Duration::from_mins(1),
        MAX_BODY,
    )
    .await
    .expect_err("the service exits");
    assert!(e.message.contains("the service `broken`"), "{}", e.message);
    assert!(e.message.contains("exited with code 4"), "{}", e.message);
    assert!(
        e.message.contains("missing setting DATABASE_URL"),
        "{}",
        e.message
    );
    let e = run(
        &executor,
        &ctx,
        "compose = { file = \"none.yml\", project = \"x\", command = \"up\" }",
    )
    .await
    .expect_err("no file");
    assert!(e.message.contains("does not exist"), "{}", e.message);
    executor.end_of_run().await;
}
