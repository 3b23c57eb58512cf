//! Command-line parsing and the commands themselves.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use miette::{GraphicalReportHandler, GraphicalTheme};
use planrun_report::{FileFormat, FileReports, Reporter, TerminalOptions, TerminalReporter};
use planrun_runner::events::RunEvent;
use planrun_runner::executor::Registry;
use planrun_runner::leftovers;
use planrun_runner::run::{Cancel, RunOptions, Runner};
use planrun_spec::error::{Diagnostic, DiagnosticKind, Diagnostics};
use planrun_spec::model::{DirConfig, DirSpec, Overrides, Priority, StepKind};
use planrun_spec::plan::{Plan, find_dir_config_under, load_spec_under, plan, read_source};
use planrun_spec::policy::{Allowance, Policy, PolicyFile};

use crate::discover::spec_files;
use crate::exit;
use crate::planned::{HELD_STEPS, Later, Planned, RunSpecs};
use crate::select;

/// Runs test plans that are data: HTTP, processes and waits, checked as they happen.
#[derive(Debug, Parser)]
#[command(
    name = "planrun",
    version,
    about,
    after_help = "Run `planrun PATHS…` to run specs (same as `planrun run PATHS…`).\nDocs: docs/README.md"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run spec files or directories of them.
    Run(RunArgs),
    /// Check specs without running anything (no network).
    Validate(ValidateArgs),
    /// List the specs that would run (the CI matrix input).
    List {
        #[command(flatten)]
        select: SelectArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print an http step as a `curl` command (rendered from variables; nothing is sent).
    Curl(CurlArgs),
    /// Print the JSON Schema of spec files.
    Schema,
    /// Print the step graph of each spec.
    Graph {
        #[command(flatten)]
        select: SelectArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
    /// Remove what runs left in the Docker engine: every container,
    /// network, volume and image labelled `planrun.run` (a run killed
    /// outright, or kept with `--keep`).
    Clean {
        /// Only what this run left (the value of its `planrun.run` label).
        #[arg(long, value_name = "ID")]
        run: Option<String>,
    },
    /// Serve the demo target (a small chat backend) to run plans against.
    Demo {
        /// Port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Which side of the hybrid deployment to imitate: wsgi, asgi, or
        /// wsgi-only (streams buffered, WebSocket refused: a broken target).
        #[arg(long, default_value = "wsgi")]
        flavor: String,
        /// Keep messages in this PostgreSQL database (a table
        /// `planrun_demo_messages` is made if missing) instead of in memory.
        #[arg(
            long,
            value_name = "URL",
            env = "DEMO_DATABASE_URL",
            hide_env_values = true
        )]
        database: Option<String>,
        /// With `--database`: the connections the demo keeps open, as a
        /// deployment with that many workers does.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
        pool: u32,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum GraphFormat {
    Mermaid,
    Dot,
}

#[derive(Debug, Args, Clone)]
struct SelectArgs {
    /// Spec files or directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Set a variable (repeatable): `--var base_url=http://127.0.0.1:8080`.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// Set a secret variable, never shown in output (repeatable).
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    secrets: Vec<String>,
    /// Read environment variables from a file of NAME=VALUE lines.
    #[arg(long)]
    env_file: Option<PathBuf>,
    /// Only specs with this tag (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Only specs of this priority (repeatable).
    #[arg(long = "priority")]
    priorities: Vec<String>,
    /// Only specs with this id (repeatable).
    #[arg(long = "id")]
    ids: Vec<String>,
    #[command(flatten)]
    trust: TrustArgs,
}

/// The heading of [`TrustArgs`] in `--help`.
const TRUST: &str = "Specs you did not write (docs/cli.md)";

/// What specs may do: everything by default; with `--untrusted` (or
/// `--policy`) only what they need the network for, plus what is allowed.
#[derive(Debug, Args, Clone, Default)]
struct TrustArgs {
    /// Refuse, before anything runs, what goes beyond the network: steps that
    /// start processes, files outside the spec tree, the environment, TLS
    /// without verification.
    #[arg(help_heading = TRUST, long)]
    untrusted: bool,
    /// With --untrusted: allow a privileged step kind (`exec`) or `insecure`
    /// (repeatable; `exec,insecure` also works).
    #[arg(help_heading = TRUST, long = "allow", value_name = "WHAT", value_delimiter = ',')]
    allow: Vec<String>,
    /// With --untrusted: allow reading these environment variables
    /// (repeatable; `*` stands for any text: `QA_*`).
    #[arg(help_heading = TRUST, long = "allow-env", value_name = "NAME")]
    allow_env: Vec<String>,
    /// With --untrusted: allow reading this file, or the files under this
    /// directory, outside the spec tree (repeatable).
    #[arg(help_heading = TRUST, long = "allow-read", value_name = "PATH")]
    allow_read: Vec<PathBuf>,
    /// Read what is allowed from a TOML file (`allow`, `env`, `read`, as
    /// the flags above); implies --untrusted.
    #[arg(help_heading = TRUST, long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

impl TrustArgs {
    /// The policy the flags ask for over the spec tree `paths`; the names
    /// `--env-file` sets are the user's to hand over, and so are the
    /// variables `given` on the command line. An error has been
    /// printed when it returns `Err` (the exit code).
    fn policy<'a>(
        &self,
        paths: &[PathBuf],
        env_file: &BTreeMap<String, String>,
        given: impl IntoIterator<Item = &'a String>,
        color: bool,
    ) -> Result<Policy, u8> {
        let fail = |msg: String| {
            eprintln!("error: {msg}");
            exit::INVALID
        };
        if !self.untrusted && self.policy.is_none() {
            if !self.allow.is_empty() || !self.allow_env.is_empty() || !self.allow_read.is_empty() {
                return Err(fail(String::from(
                    "`--allow`, `--allow-env` and `--allow-read` take effect with `--untrusted` or `--policy`; without them a spec may do anything",
                )));
            }
            return Ok(Policy::trusted());
        }
        let mut policy = Policy::untrusted(paths).map_err(fail)?;
        if let Some(path) = &self.policy {
            match PolicyFile::read(path) {
                Ok(file) => policy.apply(file),
                Err(diags) => {
                    print_diagnostics(&diags, color);
                    return Err(fail(format!(
                        "{} in the policy file `{}`; nothing ran",
                        count(diags.len(), "problem", "problems"),
                        path.display()
                    )));
                }
            }
        }
        for word in &self.allow {
            policy.allow(Allowance::parse(word.trim()).map_err(|e| fail(format!("--allow: {e}")))?);
        }
        for pattern in &self.allow_env {
            policy.allow_env(pattern.clone());
        }
        for path in &self.allow_read {
            policy.allow_read(path);
        }
        for name in env_file.keys() {
            policy.allow_env_name(name.clone());
        }
        for name in given {
            policy.given_var(name.clone());
        }
        Ok(policy)
    }
}

#[derive(Debug, Args)]
struct CurlArgs {
    /// The spec file.
    spec: PathBuf,
    /// The id of an http step.
    step: String,
    /// Set a variable (repeatable): `--var base_url=http://127.0.0.1:8080`.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// Set a secret variable (repeatable); shown as `***` unless --show-secrets.
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    secrets: Vec<String>,
    /// Read environment variables from a file of NAME=VALUE lines.
    #[arg(long)]
    env_file: Option<PathBuf>,
    /// Print secret values instead of `***` (the command then works as it is).
    #[arg(long)]
    show_secrets: bool,
}

#[derive(Debug, Args)]
struct ValidateArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// No colors (also when NO_COLOR is set).
    #[arg(long)]
    no_color: bool,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// Specs to run at the same time.
    #[arg(short = 'j', long, default_value_t = 1)]
    jobs: usize,
    /// Stop at the first failing spec (teardown steps still run).
    #[arg(long)]
    fail_fast: bool,
    /// Leave the images, containers, networks and volumes that `docker`
    /// steps created in place when the run ends (they carry the label
    /// `planrun.run`).
    #[arg(long)]
    keep: bool,
    /// Do not run the `setup` and `teardown` specs that directories' `planrun.toml` name.
    #[arg(long)]
    no_setup: bool,
    /// Run only this step, the steps it needs and their teardown (repeatable).
    #[arg(long = "step", value_name = "ID")]
    steps: Vec<String>,
    /// Write a report: `junit=PATH`, `json=PATH`, `markdown=PATH` (repeatable).
    #[arg(long = "report", value_name = "KIND=PATH")]
    reports: Vec<String>,
    /// Show every step of passing specs too; twice (`-vv`): also what each
    /// http, sse and ws step sent and received (secrets hidden).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// No colors (also when NO_COLOR is set).
    #[arg(long)]
    no_color: bool,
}

/// Parses the command line and runs the command; returns the exit code.
pub(crate) fn main() -> u8 {
    let mut args: Vec<String> = std::env::args().collect();
    // `planrun specs/` means `planrun run specs/`
    const COMMANDS: &[&str] = &[
        "run", "validate", "list", "curl", "schema", "graph", "clean", "demo", "help",
    ];
    if let Some(first) = args.get(1)
        && !COMMANDS.contains(&first.as_str())
        && !matches!(first.as_str(), "-h" | "--help" | "-V" | "--version")
    {
        args.insert(1, String::from("run"));
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::INVALID
            } else {
                exit::PASSED
            };
        }
    };
    // one thread: steps are I/O bound, and a run is a chain of short waits
    // where handing work between threads costs more than it gains
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::INTERNAL;
        }
    };
    match cli.command {
        // as a task, not the `block_on` future: a woken `block_on` future
        // makes the runtime poll its driver before running it again (an
        // `epoll_wait` per wake-up, several per step), a woken task just runs
        Command::Run(args) => runtime.block_on(async {
            match tokio::spawn(run(args)).await {
                Ok(code) => code,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => exit::INTERNAL,
            }
        }),
        Command::Validate(args) => validate(&args),
        Command::Curl(args) => runtime.block_on(curl(args)),
        Command::List { select, json } => list(&select, json),
        Command::Schema => {
            let schema = planrun_spec::schema::spec_schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            exit::PASSED
        }
        Command::Graph { select, format } => graph(&select, format),
        Command::Clean { run } => clean(run.as_deref()),
        Command::Demo {
            port,
            host,
            flavor,
            database,
            pool,
        } => runtime.block_on(demo(&host, port, &flavor, database.as_deref(), pool)),
    }
}

/// `planrun clean`: says what it removed; an engine that does not answer
/// is a failure.
fn clean(run: Option<&str>) -> u8 {
    match planrun_steps::docker::sweep_blocking(run) {
        Ok(swept) => {
            let count =
                |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
            let whose = run.map_or_else(|| String::from("any run"), |id| format!("run {id}"));
            println!(
                "removed {}, {}, {} and {} that {whose} left",
                count(swept.containers, "container"),
                count(swept.networks, "network"),
                count(swept.volumes, "volume"),
                count(swept.images, "image"),
            );
            exit::PASSED
        }
        Err(e) => {
            eprintln!(
                "error: {e}\n  help: is the Docker daemon running? `DOCKER_HOST` names another engine"
            );
            exit::FAILED
        }
    }
}

fn color_enabled(no_color: bool) -> bool {
    !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// Prints diagnostics with their snippets to stderr.
fn print_diagnostics(diags: &Diagnostics, color: bool) {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    for d in diags {
        let _ = handler.render_report(&mut out, d);
        out.push('\n');
    }
    let _ = std::io::stderr().write_all(out.as_bytes());
}

fn parse_pairs(items: &[String], what: &str) -> Result<Vec<(String, String)>, String> {
    items
        .iter()
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| format!("`{item}` is not NAME=VALUE (in {what})"))
        })
        .collect()
}

fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("{}:{}: expected NAME=VALUE", path.display(), n + 1))?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        out.insert(k.trim().to_string(), v.to_string());
    }
    Ok(out)
}

struct Loaded {
    plans: Vec<Planned>,
    /// The setup and teardown of each `planrun.toml` that applies to a spec
    /// in `plans` (when asked for).
    dirs: Vec<DirSpecs>,
    overrides: Overrides,
    env: BTreeMap<String, String>,
    policy: Policy,
    unavailable: Vec<StepKind>,
}

/// The plans, every one held (loaded with `held = usize::MAX`).
fn held(plans: Vec<Planned>) -> Vec<Plan> {
    plans.into_iter().filter_map(Planned::into_held).collect()
}

/// The specs a `planrun.toml` names as its `setup` and `teardown`, planned.
struct DirSpecs {
    /// The `planrun.toml`.
    config: PathBuf,
    setup: Option<Plan>,
    teardown: Option<Plan>,
}

/// Finds, parses, filters and plans specs; prints diagnostics. With
/// `dir_specs`, also the setup and teardown specs of their directories.
/// Plans are held until they hold `held` steps in all; the later ones are
/// checked, then let go (see [`crate::planned`]).
fn load(
    select: &SelectArgs,
    registry: &Registry,
    color: bool,
    dir_specs: bool,
    held: usize,
) -> Result<Loaded, u8> {
    let fail = |msg: String| {
        eprintln!("error: {msg}");
        exit::INVALID
    };
    let mut overrides = Overrides::default();
    for (k, v) in parse_pairs(&select.vars, "--var").map_err(fail)? {
        overrides.vars.insert(k, v);
    }
    for (k, v) in parse_pairs(&select.secrets, "--secret").map_err(fail)? {
        overrides.secret_vars.push(k.clone());
        overrides.vars.insert(k, v);
    }
    let env_file = match &select.env_file {
        Some(path) => read_env_file(path).map_err(fail)?,
        None => BTreeMap::new(),
    };
    let policy = select
        .trust
        .policy(&select.paths, &env_file, overrides.vars.keys(), color)?;
    // under `--untrusted` templates see only the names allowed, so that a
    // name computed as a template renders finds nothing else
    let mut env: BTreeMap<String, String> = std::env::vars()
        .filter(|(name, _)| policy.env_allowed(name))
        .collect();
    env.extend(env_file);
    let mut priorities = Vec::new();
    for p in &select.priorities {
        priorities
            .push(Priority::parse(p).ok_or_else(|| {
                fail(format!("unknown priority `{p}` (use high, medium or low)"))
            })?);
    }
    let files = spec_files(&select.paths).map_err(fail)?;
    if files.is_empty() {
        return Err(fail(String::from(
            "no spec files found (looked for .toml, .yaml and .yml)",
        )));
    }
    let unavailable: Vec<StepKind> = StepKind::ALL
        .iter()
        .copied()
        .filter(|k| !registry.has(*k))
        .collect();
    let mut plans = Vec::new();
    let mut held_steps = 0;
    // one spec is planned for its run anyway: held, it is planned once
    let held = if files.len() <= 1 { usize::MAX } else { held };
    let mut all = Diagnostics::default();
    // `None`: the directory's `planrun.toml` has problems, reported once
    let mut dir_configs: BTreeMap<PathBuf, Option<Arc<DirConfig>>> = BTreeMap::new();
    // one configuration per `planrun.toml`, however its specs' paths are
    // spelled: the runner tells a directory's specs by its path
    let mut configs: BTreeMap<PathBuf, Arc<DirConfig>> = BTreeMap::new();
    for file in &files {
        // a file a directory walk found may be a link out of the tree; a
        // file named on the command line is the user's choice
        if !select.paths.contains(file)
            && let Some(refused) = policy.check_spec_file(file)
        {
            all.push(refused);
            continue;
        }
        let source = match read_source(file) {
            Ok(s) => s,
            Err(d) => {
                all.push(d);
                continue;
            }
        };
        let spec = match load_spec_under(&source, &policy) {
            Ok(s) => s,
            Err(d) => {
                all.extend(d);
                continue;
            }
        };
        let keep = (select.tags.is_empty() || select.tags.iter().any(|t| spec.tags.contains(t)))
            && (priorities.is_empty() || priorities.contains(&spec.priority))
            && (select.ids.is_empty()
                || select.ids.iter().any(|i| i.eq_ignore_ascii_case(&spec.id)));
        if !keep {
            continue;
        }
        let dir = spec.source.dir();
        let dir_config = match dir_configs.get(&dir) {
            Some(Some(c)) => Arc::clone(c),
            Some(None) => continue,
            None => match find_dir_config_under(&dir, &policy) {
                Ok(c) => {
                    let c = match c.path().map(canonical) {
                        Some(path) => Arc::clone(configs.entry(path).or_insert_with(|| {
                            // what the policy refuses in it, once
                            all.extend(policy.check_dir_config(&c));
                            Arc::new(c)
                        })),
                        None => Arc::new(c),
                    };
                    dir_configs.insert(dir, Some(Arc::clone(&c)));
                    c
                }
                Err(d) => {
                    all.extend(d);
                    dir_configs.insert(dir, None);
                    continue;
                }
            },
        };
        let id = spec.id.clone();
        match plan(spec, Arc::clone(&dir_config), &overrides, &unavailable) {
            Ok(p) if held_steps + p.spec.steps.len() <= held => {
                held_steps += p.spec.steps.len();
                plans.push(Planned::Held(Box::new(p)));
            }
            Ok(p) => plans.push(Planned::Later(Later {
                id,
                source: Arc::clone(&p.spec.source),
                dir: dir_config,
            })),
            Err(d) => all.extend(d),
        }
    }
    let mut dirs = Vec::new();
    if dir_specs {
        let mut seen = std::collections::BTreeSet::new();
        for plan in &plans {
            let dir = plan.dir();
            let Some(config) = dir.path() else { continue };
            if (dir.setup.is_none() && dir.teardown.is_none()) || !seen.insert(config) {
                continue;
            }
            let mut load = |spec: &Option<DirSpec>, key| {
                // one the policy does not let specs read was reported with
                // the `planrun.toml`
                spec.as_ref()
                    .filter(|s| policy.may_read(&s.path))
                    .and_then(|s| {
                        load_dir_spec(s, key, dir, &overrides, &unavailable, &policy)
                            .map_err(|d| all.extend(d))
                            .ok()
                    })
            };
            dirs.push(DirSpecs {
                config: config.to_path_buf(),
                setup: load(&dir.setup, "setup"),
                teardown: load(&dir.teardown, "teardown"),
            });
        }
    }
    if !all.is_empty() {
        print_diagnostics(&all, color);
        let files_with_errors: std::collections::BTreeSet<_> = all
            .iter()
            .filter_map(|d| d.source.as_ref().map(|s| s.path.clone()))
            .collect();
        eprintln!(
            "error: {} in {}; nothing ran",
            count(all.len(), "problem", "problems"),
            count(files_with_errors.len().max(1), "file", "files")
        );
        return Err(exit::INVALID);
    }
    Ok(Loaded {
        plans,
        dirs,
        overrides,
        env,
        policy,
        unavailable,
    })
}

/// The path with symbolic links and `..` resolved, or as it is when that
/// fails: for telling whether two paths name one file.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Plans the spec that `setup` or `teardown` (`key`) names, with the
/// configuration of the `planrun.toml` that names it. A file that does not
/// exist is a problem located in that `planrun.toml`.
fn load_dir_spec(
    spec: &DirSpec,
    key: &str,
    dir: &Arc<DirConfig>,
    overrides: &Overrides,
    unavailable: &[StepKind],
    policy: &Policy,
) -> Result<Plan, Diagnostics> {
    if !spec.path.is_file() {
        let mut problem = Diagnostic::new(
            DiagnosticKind::Io,
            spec.name.span.clone(),
            format!("the {key} `{}` does not exist", spec.path.display()),
        )
        .label("no such file")
        .help("the path is relative to the directory of `planrun.toml`");
        if let Some(source) = &dir.source {
            problem = problem.with_source(source);
        }
        return Err(Diagnostics(vec![problem]));
    }
    let source = read_source(&spec.path).map_err(|d| Diagnostics(vec![d]))?;
    plan(
        load_spec_under(&source, policy)?,
        Arc::clone(dir),
        overrides,
        unavailable,
    )
}

/// The specs in the order they run and are reported: each directory's setup
/// before the first of its specs, its teardown after the last. A setup or
/// teardown named among `plans` (on the command line) takes its place once.
fn with_dir_specs(plans: Vec<Planned>, mut dirs: Vec<DirSpecs>) -> Vec<Planned> {
    if dirs.is_empty() {
        return plans;
    }
    let dir_spec_files: std::collections::BTreeSet<PathBuf> = dirs
        .iter()
        .flat_map(|d| d.setup.iter().chain(&d.teardown))
        .map(|p| canonical(&p.spec.source.path))
        .collect();
    let group: Vec<Option<usize>> = plans
        .iter()
        .map(|p| {
            dirs.iter()
                .position(|d| Some(d.config.as_path()) == p.dir().path())
        })
        .collect();
    let mut out = Vec::with_capacity(plans.len() + 2 * dirs.len());
    for (n, plan) in plans.into_iter().enumerate() {
        let g = group[n];
        if let Some(g) = g {
            out.extend(dirs[g].setup.take().map(|p| Planned::Held(Box::new(p))));
        }
        if !dir_spec_files.contains(&canonical(plan.path())) {
            out.push(plan);
        }
        if let Some(g) = g
            && !group[n + 1..].contains(&Some(g))
        {
            out.extend(dirs[g].teardown.take().map(|p| Planned::Held(Box::new(p))));
        }
    }
    out
}

fn validate(args: &ValidateArgs) -> u8 {
    let color = color_enabled(args.no_color);
    match load(
        &args.select,
        &planrun_steps::registry(),
        color,
        true,
        usize::MAX,
    ) {
        Ok(loaded) => {
            let plans = held(with_dir_specs(loaded.plans, loaded.dirs));
            let specs = plans.len();
            let steps: usize = plans.iter().map(|p| p.spec.steps.len()).sum();
            // the verdict is the command's output; diagnostics go to stderr
            let _ = writeln!(
                std::io::stdout().lock(),
                "{} valid ({})",
                count(specs, "spec", "specs"),
                count(steps, "step", "steps")
            );
            exit::PASSED
        }
        Err(code) => code,
    }
}

/// `1 spec`, `3 specs`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn list(select: &SelectArgs, json: bool) -> u8 {
    let loaded = match load(
        select,
        &planrun_steps::registry(),
        color_enabled(false),
        false,
        usize::MAX,
    ) {
        Ok(l) => held(l.plans),
        Err(code) => return code,
    };
    let mut out = std::io::stdout().lock();
    if json {
        let items: Vec<_> = loaded
            .iter()
            .map(|p| {
                serde_json::json!({
                    "id": p.spec.id,
                    "name": p.spec.name,
                    "path": p.spec.source.path,
                    "priority": p.spec.priority,
                    "tags": p.spec.tags,
                    "phase": p.spec.phase,
                    "steps": p.spec.steps.len(),
                })
            })
            .collect();
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&items).unwrap_or_default()
        );
    } else {
        let _ = out.write_all(table(&loaded).as_bytes());
    }
    exit::PASSED
}

/// The `list` table: id, priority, name and path, each column as wide as
/// its widest cell (the path, last, is not padded).
fn table(plans: &[Plan]) -> String {
    let rows: Vec<[String; 4]> = plans
        .iter()
        .map(|p| {
            [
                p.spec.id.clone(),
                p.spec.priority.as_str().to_string(),
                p.spec.name.clone().unwrap_or_default(),
                p.spec.source.path.display().to_string(),
            ]
        })
        .collect();
    let mut widths = [0; 3];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for [id, priority, name, path] in &rows {
        let [w0, w1, w2] = widths;
        let _ = writeln!(out, "{id:<w0$}  {priority:<w1$}  {name:<w2$}  {path}");
    }
    out
}

fn graph(select: &SelectArgs, format: GraphFormat) -> u8 {
    let loaded = match load(
        select,
        &planrun_steps::registry(),
        color_enabled(false),
        false,
        usize::MAX,
    ) {
        Ok(l) => held(l.plans),
        Err(code) => return code,
    };
    if loaded.is_empty() {
        eprintln!("no spec matches the filters; nothing to draw");
        return exit::PASSED;
    }
    let out = match format {
        GraphFormat::Mermaid => mermaid(&loaded),
        GraphFormat::Dot => dot(&loaded),
    };
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    exit::PASSED
}

/// A node's label: the step id, its kind, and whether it is teardown.
fn step_label(plan: &Plan, i: usize) -> String {
    let step = &plan.spec.steps[i];
    let teardown = if step.always { " (always)" } else { "" };
    format!("{}: {}{teardown}", step.id, step.kind.key())
}

/// One `flowchart` per spec, each after a comment naming its file: Mermaid
/// draws one diagram per block, so several specs are several blocks.
fn mermaid(plans: &[Plan]) -> String {
    let mut out = String::new();
    for (n, plan) in plans.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "%% {}: {}",
            plan.spec.id,
            plan.spec.source.path.display()
        );
        out.push_str("flowchart TD\n");
        for i in 0..plan.spec.steps.len() {
            let label = step_label(plan, i).replace('"', "#quot;");
            let _ = writeln!(out, "    s{i}[\"{label}\"]");
        }
        for (i, deps) in plan.deps.iter().enumerate() {
            for d in deps {
                let _ = writeln!(out, "    s{d} --> s{i}");
            }
        }
    }
    out
}

/// One `digraph`; several specs are a `cluster` subgraph each, so that the
/// whole output is one graph every Graphviz tool draws (many draw only the
/// first graph of a file).
fn dot(plans: &[Plan]) -> String {
    let mut out = String::new();
    if let [plan] = plans {
        let _ = writeln!(out, "// {}", plan.spec.source.path.display());
        let _ = writeln!(out, "digraph {} {{", dot_quote(&plan.spec.id));
        out.push_str("    rankdir=TB;\n");
        dot_nodes(&mut out, plan, "s", "    ");
        out.push_str("}\n");
        return out;
    }
    out.push_str("digraph planrun {\n    rankdir=TB;\n");
    for (n, plan) in plans.iter().enumerate() {
        let label = format!("{} ({})", plan.spec.id, plan.spec.source.path.display());
        let _ = writeln!(out, "    subgraph cluster_{n} {{");
        let _ = writeln!(out, "        label={};", dot_quote(&label));
        dot_nodes(&mut out, plan, &format!("s{n}_"), "        ");
        out.push_str("    }\n");
    }
    out.push_str("}\n");
    out
}

/// The nodes and edges of one spec, node names starting with `prefix`.
fn dot_nodes(out: &mut String, plan: &Plan, prefix: &str, indent: &str) {
    for i in 0..plan.spec.steps.len() {
        let label = dot_quote(&step_label(plan, i));
        let _ = writeln!(out, "{indent}{prefix}{i} [label={label}];");
    }
    for (i, deps) in plan.deps.iter().enumerate() {
        for d in deps {
            let _ = writeln!(out, "{indent}{prefix}{d} -> {prefix}{i};");
        }
    }
}

/// A DOT string literal.
fn dot_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

async fn run(args: RunArgs) -> u8 {
    let color = color_enabled(args.no_color);
    let mut registry = planrun_steps::registry();
    if args.keep {
        registry.register(planrun_steps::docker::DockerExecutor::keeping());
    }
    // `--step` cuts plans down, so it holds them all
    let keep = if args.steps.is_empty() {
        HELD_STEPS
    } else {
        usize::MAX
    };
    let mut loaded = match load(&args.select, &registry, color, !args.no_setup, keep) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if !args.steps.is_empty() {
        let plans = held(std::mem::take(&mut loaded.plans));
        match select_steps(&plans, &args.steps) {
            Ok(plans) => {
                loaded.plans = plans
                    .into_iter()
                    .map(|p| Planned::Held(Box::new(p)))
                    .collect();
            }
            Err(message) => {
                eprintln!("error: {message}");
                return exit::INVALID;
            }
        }
    }
    if loaded.plans.is_empty() {
        eprintln!("no spec matches the filters; nothing ran");
        return exit::PASSED;
    }
    // after `--step`: a directory's setup and teardown run whole
    let plans = RunSpecs {
        specs: with_dir_specs(std::mem::take(&mut loaded.plans), loaded.dirs),
        policy: loaded.policy,
        overrides: loaded.overrides.clone(),
        unavailable: loaded.unavailable,
    };
    // a line redrawn in place shows what runs now, on a terminal only
    let live = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut reporters: Vec<Box<dyn Reporter>> = vec![Box::new(
        TerminalReporter::new(
            Box::new(std::io::stderr()),
            TerminalOptions {
                color,
                verbose: args.verbose > 0,
                live,
                ..TerminalOptions::default()
            },
        )
        .show_exchanges(args.verbose > 1),
    )];
    // the files share one record of the run: each step's report is kept once
    let mut files = FileReports::new();
    for spec in &args.reports {
        let Some((kind, path)) = spec.split_once('=') else {
            eprintln!("error: `--report {spec}` is not KIND=PATH (kinds: junit, json, markdown)");
            return exit::INVALID;
        };
        let path = PathBuf::from(path);
        match kind {
            "junit" => files.add(FileFormat::Junit, path),
            "json" => files.add(FileFormat::Json, path),
            // the CI job summary file is appended to, as GitHub expects
            "markdown" | "md"
                if std::env::var_os("GITHUB_STEP_SUMMARY").is_some_and(|p| path == p) =>
            {
                files.add_appending_markdown(path);
            }
            "markdown" | "md" => files.add(FileFormat::Markdown, path),
            other => {
                eprintln!("error: unknown report kind `{other}` (kinds: junit, json, markdown)");
                return exit::INVALID;
            }
        }
    }
    if !files.is_empty() {
        reporters.push(Box::new(files));
    }

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<RunEvent>();
    // reporters run on the runtime's own thread: a thread of their own would be
    // woken once per event, which costs more than the writes themselves
    let reporting = tokio::spawn(async move {
        let mut failed = false;
        while let Some(first) = rx.recv().await {
            // a turn of this task takes every event queued, not a share of
            // them: the runner's turns send several per step, and what is
            // queued must not grow with the run
            let mut next = Some(first);
            while let Some(event) = next {
                for r in &mut reporters {
                    if let Err(e) = r.on_event(&event)
                        && e.kind() != std::io::ErrorKind::BrokenPipe
                    {
                        eprintln!("error: a reporter failed: {e}");
                        failed = true;
                    }
                }
                next = rx.try_recv().ok();
            }
        }
        for r in &mut reporters {
            if let Err(e) = r.finish() {
                eprintln!("error: cannot write a report: {e}");
                failed = true;
            }
        }
        failed
    });

    let cancel = Cancel::default();
    let signals = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            wait_for_interrupt().await;
            eprintln!(
                "\ninterrupted: stopping; teardown steps still run (interrupt again to skip them)"
            );
            cancel.cancel();
            wait_for_interrupt().await;
            eprintln!(
                "interrupted again: skipping teardown steps, killing what the run started, writing reports (interrupt again to quit at once)"
            );
            cancel.abandon();
            let left = tokio::task::spawn_blocking(|| leftovers::remove_all(LEFTOVER_GRACE)).await;
            report_leftovers(&left.unwrap_or_default());
            wait_for_interrupt().await;
            eprintln!("interrupted a third time: quitting");
            report_leftovers(&leftovers::remove_all(LEFTOVER_GRACE));
            std::process::exit(i32::from(exit::INTERRUPTED));
        })
    };

    let options = RunOptions {
        jobs: args.jobs,
        fail_fast: args.fail_fast,
        overrides: loaded.overrides,
        env: loaded.env,
        // only the live line shows events as they arrive
        observe: live,
    };
    let runner = Runner::new(registry, options);
    let summary = runner.run(&plans, &tx, &cancel).await;
    // the reports are written from what they kept: the plans can go first
    drop(plans);
    drop(tx);
    signals.abort();
    // every step's own cleanup has run: anything still registered was missed
    report_leftovers(&leftovers::remove_all(LEFTOVER_GRACE));
    let report_failed = reporting.await.unwrap_or(true);
    exit::of_run(&summary, report_failed)
}

/// The plans cut down to the `--step` ids and what they need (see
/// [`crate::select`]); a spec with none of them is left out, and an id no
/// spec has is an error naming the closest step id.
fn select_steps(plans: &[Plan], ids: &[String]) -> Result<Vec<Plan>, String> {
    let mut out = Vec::new();
    let mut found = vec![false; ids.len()];
    for plan in plans {
        let selected: Vec<usize> = ids
            .iter()
            .zip(&mut found)
            .filter_map(|(id, found)| {
                let i = select::step_index(plan, id).ok()?;
                *found = true;
                Some(i)
            })
            .collect();
        if !selected.is_empty() {
            out.push(select::sub_plan(plan, &select::closure(plan, &selected)));
        }
    }
    if let Some((id, _)) = ids.iter().zip(&found).find(|(_, found)| !**found) {
        let mut message = format!("no selected spec has a step `{id}`");
        let closest = plans
            .iter()
            .filter_map(|p| select::step_index(p, id).err()?.suggestion);
        if let Some(s) = closest.into_iter().next() {
            let _ = write!(message, " (did you mean `{s}`?)");
        }
        return Err(message);
    }
    Ok(out)
}

async fn curl(args: CurlArgs) -> u8 {
    let select = SelectArgs {
        paths: vec![args.spec],
        vars: args.vars,
        secrets: args.secrets,
        env_file: args.env_file,
        tags: Vec::new(),
        priorities: Vec::new(),
        ids: Vec::new(),
        trust: TrustArgs::default(),
    };
    let loaded = match load(
        &select,
        &planrun_steps::registry(),
        color_enabled(false),
        false,
        usize::MAX,
    ) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let plans = held(loaded.plans);
    let [plan] = plans.as_slice() else {
        eprintln!("error: `planrun curl` takes one spec file");
        return exit::INVALID;
    };
    let rendered = match crate::curl::render(plan, &args.step, loaded.overrides, loaded.env).await {
        Ok(r) => r,
        Err(message) => {
            eprintln!("error: {message}");
            return exit::INVALID;
        }
    };
    let command = |config| crate::curl::command(config, &rendered.base_dir);
    let (plain, hidden) = match (command(&rendered.config), command(&rendered.redacted)) {
        (Ok(p), Ok(h)) => (p, h),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: step `{}`: {e}", args.step);
            return exit::INVALID;
        }
    };
    let mut out = format!(
        "# step `{}` of {} ({})\n\
         # not included: cookies the spec run's jar would hold by then (set by earlier steps)\n",
        args.step,
        plan.spec.id,
        plan.spec.source.path.display()
    );
    if args.show_secrets {
        out.push_str(&plain);
    } else {
        if plain != hidden {
            out.push_str("# secrets are shown as *** (--show-secrets prints them)\n");
        }
        out.push_str(&hidden);
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    exit::PASSED
}

/// How long removing what a run left behind may take.
const LEFTOVER_GRACE: Duration = Duration::from_secs(5);

/// Names what could not be removed in time, so the user can.
fn report_leftovers(left: &[String]) {
    for what in left {
        eprintln!("warning: could not remove {what} in time; it may still be running");
    }
}

async fn wait_for_interrupt() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn demo(host: &str, port: u16, flavor: &str, database: Option<&str>, pool: u32) -> u8 {
    let flavor: planrun_demo::Flavor = match flavor.parse() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let addr: SocketAddr = match format!("{host}:{port}").parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: `{host}:{port}` is not an address: {e}");
            return exit::INVALID;
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return exit::INTERNAL;
        }
    };
    let database = match database {
        Some(url) => match planrun_demo::Database::connect(url, pool).await {
            Ok(db) => Some(db),
            Err(e) => {
                eprintln!("error: --database: {e}");
                return exit::INVALID;
            }
        },
        None => None,
    };
    let local = listener.local_addr().map_or(addr, |a| a);
    let store = database.as_ref().map_or_else(String::new, |db| {
        format!(", messages in PostgreSQL over {} connections", db.size())
    });
    eprintln!("planrun demo ({flavor}{store}) listening on http://{local} — Ctrl-C to stop");
    match planrun_demo::serve_with(listener, flavor, database, wait_for_interrupt()).await {
        Ok(()) => exit::PASSED,
        Err(e) => {
            eprintln!("error: the demo server failed: {e}");
            exit::INTERNAL
        }
    }
}
