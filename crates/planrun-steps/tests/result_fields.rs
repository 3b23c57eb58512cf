//! Every executor's result document against its kind's declared
//! `result_fields`: planning refuses `expect.x` for a field a kind does not
//! declare, so a field an executor returns but the kind does not list could
//! not be checked. Each kind runs against a real peer, in the forms that add
//! fields (a redirect and a cookie for http, background processes for exec,
//! ready on a log line with a named group and on a port).
#![cfg(all(
    feature = "http",
    feature = "sse",
    feature = "ws",
    feature = "exec",
    feature = "wait",
    feature = "sql",
    feature = "docker"
))]

mod common;

use common::{context, run};
use planrun_runner::executor::StepExecutor;
use planrun_spec::model::StepKind;
use planrun_steps::docker::DockerExecutor;
use planrun_steps::exec::ExecExecutor;
use planrun_steps::http::HttpExecutor;
use planrun_steps::sql::SqlExecutor;
use planrun_steps::sse::SseExecutor;
use planrun_steps::wait::WaitExecutor;
use planrun_steps::ws::WsExecutor;
use planrun_testkit::{FixtureServer, WsServer};

/// The keys of `doc` that `kind` does not declare.
fn undeclared(kind: StepKind, doc: &serde_json::Value) -> Vec<String> {
    let declared = kind.result_fields();
    doc.as_object()
        .unwrap_or_else(|| panic!("a `{kind}` result is a table: {doc}"))
        .keys()
        .filter(|k| !declared.contains(&k.as_str()))
        .cloned()
        .collect()
}

async fn check(executor: &dyn StepExecutor, toml: &str) {
    let (ctx, _dir) = context();
    let doc = match run(executor, &ctx, toml).await {
        Ok(doc) => doc,
        Err(err) => panic!("`{toml}` failed: {err}"),
    };
    let kind = executor.kind();
    assert_eq!(
        undeclared(kind, &doc),
        Vec::<String>::new(),
        "`{kind}` returns fields its kind does not declare: {doc}"
    );
    ctx.cleanup().await;
}

#[tokio::test]
async fn every_result_field_is_declared_by_its_kind() {
    planrun_steps::install_crypto_provider();
    let server = FixtureServer::start().await;
    let ws = WsServer::start().await;

    check(
        &HttpExecutor::new(),
        &format!("get = \"{}\"", server.url("/redirect/1")),
    )
    .await;
    check(
        &HttpExecutor::new(),
        &format!("get = \"{}\"", server.url("/set-cookie")),
    )
    .await;
    check(
        &SseExecutor::new(),
        &format!("get = \"{}\"", server.url("/sse/basic")),
    )
    .await;
    check(
        &WsExecutor::new(),
        &format!(
            "url = \"{}\"\nconversation = [{{ send = \"hi\" }}, {{ expect = \"hi\", name = \"echo\" }}, {{ close = true }}]",
            ws.url("/echo")
        ),
    )
    .await;
    check(&ExecExecutor::new(), "shell = \"echo '{\\\"a\\\": 1}'\"").await;
    check(
        &ExecExecutor::new(),
        "shell = \"echo started; sleep 30\"\nbackground = true\nready = { log = \"started\" }",
    )
    .await;
    check(
        &ExecExecutor::new(),
        "shell = \"echo 'started on 127.0.0.1:4321'; sleep 30\"\nbackground = true\nready = { log = 'started on (?P<addr>\\S+)' }",
    )
    .await;
    check(
        &ExecExecutor::new(),
        &format!(
            "shell = \"sleep 30\"\nbackground = true\nready = {{ tcp = \"{}\" }}",
            server.addr
        ),
    )
    .await;
    check(&WaitExecutor::new(), "duration = \"1ms\"").await;
    check(&WaitExecutor::new(), &format!("tcp = \"{}\"", server.addr)).await;
    // one statement, and several (which adds `results`)
    check(
        &SqlExecutor::new(),
        "url = \"sqlite::memory:\"\nquery = \"SELECT 1 AS one\"",
    )
    .await;
    check(
        &SqlExecutor::new(),
        "url = \"sqlite::memory:\"\nscript = \"CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1); SELECT a FROM t\"",
    )
    .await;
}

/// Every action of a docker step, against the real engine, on an image
/// built from Debian's busybox-static.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_docker_result_field_is_declared() {
    /// What a failing check created goes when it unwinds.
    struct SweepOnPanic(String);
    impl Drop for SweepOnPanic {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let _ = planrun_steps::docker::sweep_blocking(Some(&self.0));
            }
        }
    }
    let docker = DockerExecutor::new();
    let _sweep = SweepOnPanic(docker.run_id().to_string());
    let (ctx, dir) = context();
    let image = dir.path().join("image");
    std::fs::create_dir(&image).unwrap();
    std::fs::copy("/bin/busybox", image.join("busybox"))
        .expect("Debian's busybox-static is installed (the test command installs it)");
    std::fs::write(
        image.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
    )
    .unwrap();
    let tag = format!("planrun-test/fields:{}", docker.run_id());
    let name = format!("planrun-test-fields-{}", docker.run_id());
    let actions = [
        format!("build = {{ context = \"image\", tag = \"{tag}\" }}"),
        format!("image = \"{tag}\""),
        String::from("image = \"planrun-test/absent:1\""),
        format!(
            "run = {{ image = \"{tag}\", name = \"{name}\", cmd = [\"sleep\", \"600\"], ports = {{ \"8080\" = \"127.0.0.1:0\" }} }}"
        ),
        format!("exec = {{ container = \"{name}\", cmd = [\"echo\", \"{{}}\"] }}"),
        format!("inspect = \"{name}\""),
        String::from("inspect = \"planrun-test-absent\""),
        format!("logs = {{ container = \"{name}\", tail = 5 }}"),
        format!("stats = {{ container = \"{name}\" }}"),
        format!("logs = {{ container = \"{name}\", since = \"1h\", until = \"0s\" }}"),
        format!("stop = {{ container = \"{name}\", timeout = \"1s\" }}"),
        format!("run = {{ image = \"{tag}\", name = \"{name}-2\", cmd = [\"sleep\", \"600\"] }}"),
        format!("kill = {{ container = \"{name}-2\", signal = \"SIGKILL\" }}"),
        format!("remove = \"{name}\""),
    ];
    for toml in &actions {
        let doc = match run(&docker, &ctx, toml).await {
            Ok(doc) => doc,
            Err(err) => panic!("`{toml}` failed: {err}"),
        };
        assert_eq!(
            undeclared(StepKind::Docker, &doc),
            Vec::<String>::new(),
            "`docker` returns fields its kind does not declare: {doc}"
        );
    }
    docker.end_of_run().await;
}

#[test]
fn every_kind_runs_in_this_build() {
    let registry = planrun_steps::registry();
    for kind in StepKind::ALL {
        assert!(registry.has(*kind), "no executor for `{kind}`");
    }
}
