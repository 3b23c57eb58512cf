//! `sql`: statements against PostgreSQL, MySQL/MariaDB or SQLite through
//! sqlx, one connection type per backend (sqlx's `Any` driver cannot decode
//! numerics, uuids or zoned timestamps).
//!
//! This module owns connecting (by the URL's scheme), binding parameters,
//! reading results into the result document within the step's caps, the
//! server-side time limit, the transaction of a step, and the connections a
//! spec keeps between its steps. How a column's value becomes JSON is
//! `sql/values.rs`'s.
//!
//! What is data and what is an error: rows, counts and columns are data for
//! expectations. A statement the database refuses, a connection that cannot
//! be made, a type with no JSON form, a result past the caps, two columns of
//! one name: each is an error of the step, with the database's own message.
//! It must never paste a value into SQL text (parameters are bound), never
//! leave a statement running past the step's time limit (the server's own
//! limit is set a little below it: `statement_timeout` on PostgreSQL,
//! `max_statement_time` on MariaDB, `max_execution_time` on MySQL, a
//! progress handler on SQLite), and never keep a connection whose state it
//! does not know.

mod values;

use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt as _;
use planrun_runner::executor::{BoxFuture, SpecContext, StepError, StepExecutor, StepInput};
use planrun_spec::duration::{ByteSize, human};
use planrun_spec::kinds::{
    Sql, SqlBackend, SqlConfig, SqlTransaction, hide_password, scheme_of,
};
use planrun_spec::model::StepKind;
use serde_json::{Map, Value as Json, json};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{AssertSqlSafe, ConnectOptions as _, Connection as _, Either, Row as _};

use crate::util::{count, human_size, millis, span_of};

/// Rows a step keeps when `max_rows` does not say.
pub const DEFAULT_MAX_ROWS: u64 = 10_000;

/// The largest SQL file `file` may name.
const MAX_SCRIPT: u64 = 8 * 1024 * 1024;

/// Idle connections a spec keeps per URL.
const IDLE_PER_URL: usize = 4;

/// How long closing a spec's connections may take.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Runs `sql` steps.
///
/// Result document: `{"rows": [{column: value}], "columns": [{"name",
/// "type"}], "rows_affected": n, "duration": ms}` for the last statement,
/// and `"results": [{"rows", "columns", "rows_affected"}]` with each
/// statement's when there are several.
#[derive(Debug, Default, Clone, Copy)]
pub struct SqlExecutor;

impl SqlExecutor {
    /// The executor.
    pub fn new() -> Self {
        Self
    }
}

impl StepExecutor for SqlExecutor {
    fn kind(&self) -> StepKind {
        StepKind::Sql
    }

    fn execute<'a>(&'a self, input: StepInput<'a>) -> BoxFuture<'a, Result<Json, StepError>> {
        Box::pin(run(input))
    }
}

/// A connection of one of the backends.
enum Conn {
    Pg(PgConnection),
    /// With whether the server is MariaDB (its time limit is set otherwise).
    My(MySqlConnection, bool),
    Lite(SqliteConnection),
}

impl Conn {
    async fn close(self) {
        let _ = match self {
            Self::Pg(c) => c.close().await,
            Self::My(c, _) => c.close().await,
            Self::Lite(c) => c.close().await,
        };
    }
}

/// The connections a spec keeps between its steps, by URL; closed when the
/// spec ends.
#[derive(Default)]
struct Idle {
    /// Each with its URL and the time limit last set on its server.
    conns: tokio::sync::Mutex<Vec<(String, Conn, Duration)>>,
    cleanup_registered: AtomicBool,
}

impl Idle {
    async fn take(&self, url: &str) -> Option<(Conn, Duration)> {
        let mut conns = self.conns.lock().await;
        let at = conns.iter().position(|(u, _, _)| u == url)?;
        let (_, conn, limit) = conns.swap_remove(at);
        Some((conn, limit))
    }

    async fn put(&self, url: &str, conn: Conn, limit: Duration) {
        let mut conns = self.conns.lock().await;
        if conns.iter().filter(|(u, _, _)| u == url).count() < IDLE_PER_URL {
            conns.push((url.to_string(), conn, limit));
        }
    }

    async fn close_all(&self) {
        let conns = std::mem::take(&mut *self.conns.lock().await);
        let closing = futures_util::future::join_all(conns.into_iter().map(|(_, c, _)| c.close()));
        let _ = tokio::time::timeout(CLOSE_GRACE, closing).await;
    }
}

/// The spec's idle connections, closed at its end.
fn idle(ctx: &SpecContext) -> Result<Arc<Idle>, StepError> {
    let idle = ctx.resource(|| Ok(Idle::default()))?;
    if !idle.cleanup_registered.swap(true, Ordering::SeqCst) {
        let closing = Arc::clone(&idle);
        ctx.on_cleanup("close the sql connections", move || {
            Box::pin(async move { closing.close_all().await })
        });
    }
    Ok(idle)
}

/// One statement to run.
struct Statement {
    sql: String,
    /// Bound values; `None` runs the text as a script (several statements,
    /// no parameters).
    params: Option<Vec<Json>>,
}

/// What a step may keep.
#[derive(Clone, Copy)]
struct Caps {
    rows: u64,
    bytes: u64,
}

/// The rows of one statement, as they are read.
#[derive(Default)]
struct ResultSet {
    rows: Vec<Json>,
    columns: Vec<(String, String)>,
    rows_affected: u64,
}

impl ResultSet {
    fn into_json(self) -> Json {
        json!({
            "rows": self.rows,
            "columns": self
                .columns
                .into_iter()
                .map(|(name, ty)| json!({ "name": name, "type": ty }))
                .collect::<Vec<_>>(),
            "rows_affected": self.rows_affected,
        })
    }
}

/// The result sets of a step, and what they hold against the caps.
struct Results {
    caps: Caps,
    sets: Vec<ResultSet>,
    current: ResultSet,
    /// Rows across every set.
    rows: u64,
    /// Estimated memory held by the rows.
    held: u64,
}

impl Results {
    fn new(caps: Caps) -> Self {
        Self {
            caps,
            sets: Vec::new(),
            current: ResultSet::default(),
            rows: 0,
            held: 0,
        }
    }

    /// Adds a row read under `columns` (name and type of each).
    fn push(&mut self, columns: Vec<(String, String)>, row: Json) -> Result<(), StepError> {
        if self.current.columns.is_empty() {
            if let Some(name) = duplicate(&columns) {
                return Err(StepError::new(format!(
                    "two columns of the result are named `{name}`: rows are tables keyed by column name"
                ))
                .help(format!(
                    "give them aliases: `SELECT a.{name} AS a_{name}, b.{name} AS b_{name} …`"
                )));
            }
            self.current.columns = columns;
        }
        self.rows += 1;
        self.held += crate::kept::held(&row) as u64;
        if self.rows > self.caps.rows {
            return Err(StepError::new(format!(
                "the result passed the cap on rows a step keeps, {}",
                count(usize::try_from(self.caps.rows).unwrap_or(usize::MAX), "row")
            ))
            .help("select fewer rows (`LIMIT`, an aggregate), or raise `max_rows`"));
        }
        if self.held > self.caps.bytes {
            return Err(StepError::new(format!(
                "the result passed the cap on memory a step keeps, {}, after {}",
                human_size(self.caps.bytes),
                count(usize::try_from(self.rows).unwrap_or(usize::MAX), "row")
            ))
            .help("select fewer rows or columns, or raise `max_size`"));
        }
        self.current.rows.push(row);
        Ok(())
    }

    /// Ends the current statement's set.
    fn done(&mut self, rows_affected: u64) {
        self.current.rows_affected = rows_affected;
        self.sets.push(std::mem::take(&mut self.current));
    }

    /// The result document.
    fn into_json(mut self, duration: Duration) -> Json {
        if !self.current.rows.is_empty() || self.sets.is_empty() {
            let current = std::mem::take(&mut self.current);
            self.sets.push(current);
        }
        let many = self.sets.len() > 1;
        let last = self.sets.pop().unwrap_or_default();
        let mut doc = match last.into_json() {
            Json::Object(map) => map,
            _ => Map::new(),
        };
        if many {
            let mut results: Vec<Json> = self.sets.into_iter().map(ResultSet::into_json).collect();
            results.push(Json::Object(doc.clone()));
            doc.insert(String::from("results"), Json::Array(results));
        }
        doc.insert(String::from("duration"), json!(millis(duration)));
        Json::Object(doc)
    }
}

/// The first name that two columns share.
fn duplicate(columns: &[(String, String)]) -> Option<&str> {
    columns
        .iter()
        .enumerate()
        .find(|(i, (name, _))| columns[..*i].iter().any(|(n, _)| n == name))
        .map(|(_, (name, _))| name.as_str())
}

async fn run(input: StepInput<'_>) -> Result<Json, StepError> {
    let started = Instant::now();
    let config = crate::util::config::<Sql>(input.config)?;
    let Some(backend) = scheme_of(&config.url) else {
        return Err(StepError::new(format!(
            "`{}` is not a database URL",
            hide_password(&config.url)
        ))
        .at(span_of(input.config, "url"))
        .help("it starts with `postgres://`, `mysql://`, `mariadb://` or `sqlite:`"));
    };
    let statements = statements(&config, input.ctx.base_dir(), input.config)?;
    let caps = Caps {
        rows: config.max_rows.unwrap_or(DEFAULT_MAX_ROWS),
        bytes: config.max_size.map_or(input.max_body, |ByteSize(b)| b),
    };
    // the server stops a statement a little before the step would be
    // dropped, so that its own message says why
    let limit = server_limit(input.timeout);
    let idle = idle(input.ctx)?;
    let (mut conn, set) = match idle.take(&config.url).await {
        Some((conn, set)) => (conn, Some(set)),
        None => (
            connect(backend, &config.url, input.ctx.base_dir(), input.timeout).await?,
            None,
        ),
    };
    let limits = Limits { set, wanted: limit };
    let outcome = on(&mut conn, backend, &statements, config.transaction, caps, limits).await;
    match outcome {
        Ok(results) => {
            idle.put(&config.url, conn, limit).await;
            Ok(results.into_json(started.elapsed()))
        }
        // a connection in a state not known is closed, not kept
        Err(e) => {
            let _ = tokio::time::timeout(CLOSE_GRACE, conn.close()).await;
            Err(e)
        }
    }
}

/// The statements the configuration asks for.
fn statements(
    config: &SqlConfig,
    base: &Path,
    raw: &planrun_spec::value::Value,
) -> Result<Vec<Statement>, StepError> {
    if let Some(query) = &config.query {
        return Ok(vec![Statement {
            sql: query.clone(),
            params: Some(config.params.clone().unwrap_or_default()),
        }]);
    }
    if let Some(list) = &config.statements {
        return Ok(list
            .iter()
            .map(|s| Statement {
                sql: s.query.clone(),
                params: Some(s.params.clone().unwrap_or_default()),
            })
            .collect());
    }
    if let Some(script) = &config.script {
        return Ok(vec![Statement {
            sql: script.clone(),
            params: None,
        }]);
    }
    let Some(file) = &config.file else {
        return Err(StepError::internal(
            "an `sql` config passed plan-time checks without a statement",
        ));
    };
    let path = base.join(file);
    let size = std::fs::metadata(&path)
        .map_err(|e| {
            StepError::new(format!("cannot read `{}`: {e}", path.display()))
                .at(span_of(raw, "file"))
        })?
        .len();
    if size > MAX_SCRIPT {
        return Err(StepError::new(format!(
            "`{}` is {}, more than the {} an SQL file may be",
            path.display(),
            human_size(size),
            human_size(MAX_SCRIPT)
        ))
        .at(span_of(raw, "file")));
    }
    let sql = std::fs::read_to_string(&path).map_err(|e| {
        StepError::new(format!("cannot read `{}`: {e}", path.display())).at(span_of(raw, "file"))
    })?;
    Ok(vec![Statement { sql, params: None }])
}

/// The time limit the server gets: nine tenths of the step's, at least 1 ms.
fn server_limit(step: Duration) -> Duration {
    (step * 9 / 10).max(Duration::from_millis(1))
}

/// Opens a connection; errors say where to, with the password hidden.
async fn connect(
    backend: SqlBackend,
    url: &str,
    base: &Path,
    timeout: Duration,
) -> Result<Conn, StepError> {
    let shown = hide_password(url);
    let invalid = |e: sqlx::Error| {
        StepError::new(format!("the database URL `{shown}` is not valid: {e}"))
            .help(url_help(backend))
    };
    let connecting = async {
        match backend {
            SqlBackend::Postgres => {
                let mut options = PgConnectOptions::from_str(url).map_err(invalid)?;
                // a certificate file is the spec's neighbour, as every path is
                if let Some(ca) = relative_param(url, "sslrootcert") {
                    options = options.ssl_root_cert(base.join(ca));
                }
                Ok(Conn::Pg(options.connect().await.map_err(|e| {
                    connect_error(backend, &shown, &e)
                })?))
            }
            SqlBackend::MySql => {
                // `mariadb://` is MySQL's protocol
                let url = match url.split_once("://") {
                    Some((scheme, rest)) if scheme.eq_ignore_ascii_case("mariadb") => {
                        format!("mysql://{rest}")
                    }
                    _ => url.to_string(),
                };
                let mut options = MySqlConnectOptions::from_str(&url).map_err(invalid)?;
                if let Some(ca) = relative_param(&url, "ssl-ca") {
                    options = options.ssl_ca(base.join(ca));
                }
                let mut conn = options
                    .connect()
                    .await
                    .map_err(|e| connect_error(backend, &shown, &e))?;
                let version: String = sqlx::query_scalar("SELECT VERSION()")
                    .fetch_one(&mut conn)
                    .await
                    .map_err(|e| connect_error(backend, &shown, &e))?;
                let mariadb = version.to_ascii_lowercase().contains("mariadb");
                Ok(Conn::My(conn, mariadb))
            }
            SqlBackend::Sqlite => {
                let mut options = SqliteConnectOptions::from_str(url).map_err(invalid)?;
                // a relative file is the spec's neighbour, as every path is
                let file = options.get_filename().to_path_buf();
                let in_memory = url.contains(":memory:") || url.contains("mode=memory");
                if !in_memory && file.is_relative() {
                    options = options.filename(base.join(file));
                }
                Ok(Conn::Lite(options.connect().await.map_err(|e| {
                    connect_error(backend, &shown, &e)
                })?))
            }
        }
    };
    tokio::time::timeout(timeout, connecting)
        .await
        .unwrap_or_else(|_| {
            Err(StepError::new(format!(
                "no connection to {} at `{shown}` within the step's time limit of {}",
                backend.name(),
                human(timeout)
            ))
            .help("is the server up, and is the address right?"))
        })
}

/// The value of the URL's query parameter `name` when it is a relative
/// path.
fn relative_param<'u>(url: &'u str, name: &str) -> Option<&'u str> {
    let (_, query) = url.split_once('?')?;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty() && Path::new(value).is_relative())
}

fn url_help(backend: SqlBackend) -> &'static str {
    match backend {
        SqlBackend::Postgres => "write it as `postgres://user:password@host:5432/database`",
        SqlBackend::MySql => "write it as `mysql://user:password@host:3306/database`",
        SqlBackend::Sqlite => {
            "write it as `sqlite:path/to/file.db` (`?mode=rwc` creates it) or `sqlite::memory:`"
        }
    }
}

/// The message of a failed connection.
fn connect_error(backend: SqlBackend, shown: &str, e: &sqlx::Error) -> StepError {
    let name = backend.name();
    let tls_help = match backend {
        SqlBackend::Postgres => {
            "trust the server's certificate authority with `sslrootcert=ca.pem` in the URL (relative to the spec), or lower `sslmode`"
        }
        _ => {
            "trust the server's certificate authority with `ssl-ca=ca.pem` in the URL (relative to the spec), or lower `ssl-mode`"
        }
    };
    match e {
        // rustls' refusals come back as I/O errors
        sqlx::Error::Io(io) if is_tls(&io.to_string()) => {
            StepError::new(format!("TLS with {name} at `{shown}` failed: {io}")).help(tls_help)
        }
        sqlx::Error::Io(io) => StepError::new(format!("cannot reach {name} at `{shown}`: {io}"))
            .help("is the server up, and is the address right?"),
        sqlx::Error::Tls(tls) => {
            StepError::new(format!("TLS with {name} at `{shown}` failed: {tls}")).help(tls_help)
        }
        sqlx::Error::Database(db) => StepError::new(format!(
            "{name} at `{shown}` refused the connection: {}",
            database_message(db.as_ref())
        )),
        other => StepError::new(format!("cannot connect to {name} at `{shown}`: {other}")),
    }
}

/// Whether an error's text is a TLS refusal (a certificate not trusted, a
/// failed handshake).
fn is_tls(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    ["certificate", "handshake", "tls", "ssl"]
        .iter()
        .any(|word| text.contains(word))
}

/// The database's own message, with its code and, from PostgreSQL, its
/// detail and hint.
fn database_message(db: &dyn sqlx::error::DatabaseError) -> String {
    let mut text = db.message().to_string();
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        if let Some(detail) = pg.detail() {
            let _ = write!(text, " ({detail})");
        }
        if let Some(hint) = pg.hint() {
            let _ = write!(text, "; hint: {hint}");
        }
    }
    if let Some(code) = db.code() {
        let _ = write!(text, " [{code}]");
    }
    text
}

/// The error of statement `n` (of `of`).
fn statement_error(backend: SqlBackend, n: usize, of: usize, e: &sqlx::Error) -> StepError {
    let which = if of > 1 {
        format!("statement {} of {of}", n + 1)
    } else {
        String::from("the statement")
    };
    let name = backend.name();
    match e {
        sqlx::Error::Database(db) => {
            let message = database_message(db.as_ref());
            let timed_out = matches!(db.code().as_deref(), Some("57014" | "70100" | "3024"))
                || db.message().contains("max_statement_time")
                || db.message().contains("interrupted");
            let error = StepError::new(format!("{name} refused {which}: {message}"));
            if timed_out {
                error.help("it ran past the step's time limit and the database stopped it; raise `timeout` or make it faster")
            } else {
                error
            }
        }
        sqlx::Error::ColumnDecode { index, source } => StepError::new(format!(
            "a value of column {index} of {which} could not be read: {source}"
        ))
        .help("cast the column to text in the query"),
        sqlx::Error::Io(io) => StepError::new(format!(
            "the connection to {name} broke during {which}: {io}"
        )),
        other => StepError::new(format!("{which} failed on {name}: {other}")),
    }
}

/// Runs the statements on `conn`: the server's time limit first, then the
/// transaction around them when asked.
async fn on(
    conn: &mut Conn,
    backend: SqlBackend,
    statements: &[Statement],
    transaction: Option<SqlTransaction>,
    caps: Caps,
    limits: Limits,
) -> Result<Results, StepError> {
    let limit = limits.wanted;
    // a server keeps a session's setting: set it again only when it changes
    if limits.set != Some(limit) || matches!(conn, Conn::Lite(_)) {
        conn.limit(limit)
            .await
            .map_err(|e| refused(backend, "its time limit", &e))?;
    }
    if transaction.is_some() {
        conn.raw("BEGIN")
            .await
            .map_err(|e| refused(backend, "`BEGIN`", &e))?;
    }
    let mut results = Results::new(caps);
    let of = statements.len();
    let mut outcome = Ok(());
    for (n, statement) in statements.iter().enumerate() {
        let started = Instant::now();
        outcome = conn
            .statement(statement, &mut results)
            .await
            .map_err(|e| e.into_step(backend, n, of));
        // MariaDB ends some statements stopped at `max_statement_time`
        // (`BENCHMARK`, …) with a cut result and only a warning
        if outcome.is_ok() && matches!(conn, Conn::My(..)) && started.elapsed() >= limit {
            outcome = Err(StepError::new(format!(
                "{} stopped {} at the step's time limit ({} for the database): its result may be cut short",
                backend.name(),
                if of > 1 {
                    format!("statement {} of {of}", n + 1)
                } else {
                    String::from("the statement")
                },
                human(limit)
            ))
            .help("raise `timeout`, or make the statement faster"));
        }
        if outcome.is_err() {
            break;
        }
    }
    if let Some(transaction) = transaction {
        // rolled back after a failure, whatever was asked
        let last = if outcome.is_ok() && transaction == SqlTransaction::Commit {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        let ended = conn
            .raw(last)
            .await
            .map_err(|e| refused(backend, &format!("`{last}`"), &e));
        outcome = outcome.and(ended);
    }
    conn.unlimit().await;
    outcome.map(|()| results)
}

/// The server's time limit of a step, and the one its connection's session
/// already has (none for a new connection).
#[derive(Clone, Copy)]
struct Limits {
    set: Option<Duration>,
    wanted: Duration,
}

/// The error of a statement the step runs for itself.
fn refused(backend: SqlBackend, what: &str, e: &sqlx::Error) -> StepError {
    StepError::new(format!(
        "{} refused {what}: {}",
        backend.name(),
        match e {
            sqlx::Error::Database(db) => database_message(db.as_ref()),
            other => other.to_string(),
        }
    ))
}

impl Conn {
    /// Runs SQL the step needs for itself (`BEGIN`, a time limit).
    async fn raw(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        let sql = AssertSqlSafe(sql.to_string());
        match self {
            Self::Pg(c) => sqlx::raw_sql(sql).execute(&mut *c).await.map(drop),
            Self::My(c, _) => sqlx::raw_sql(sql).execute(&mut *c).await.map(drop),
            Self::Lite(c) => sqlx::raw_sql(sql).execute(&mut *c).await.map(drop),
        }
    }

    /// Sets the server's time limit on what follows: a session setting on
    /// the servers, a progress handler that stops SQLite past it.
    async fn limit(&mut self, limit: Duration) -> Result<(), sqlx::Error> {
        match self {
            Self::Pg(_) => {
                self.raw(&format!("SET statement_timeout = {}", limit.as_millis()))
                    .await
            }
            Self::My(_, true) => {
                self.raw(&format!(
                    "SET SESSION max_statement_time = {}",
                    limit.as_secs_f64()
                ))
                .await
            }
            Self::My(_, false) => {
                self.raw(&format!(
                    "SET SESSION max_execution_time = {}",
                    limit.as_millis()
                ))
                .await
            }
            Self::Lite(c) => {
                let deadline = Instant::now() + limit;
                c.lock_handle()
                    .await?
                    .set_progress_handler(1_000, move || Instant::now() < deadline);
                Ok(())
            }
        }
    }

    /// Takes SQLite's progress handler off again (the servers' settings
    /// are set anew by each step).
    async fn unlimit(&mut self) {
        if let Self::Lite(c) = self
            && let Ok(mut handle) = c.lock_handle().await
        {
            handle.remove_progress_handler();
        }
    }

    /// Runs one statement, its rows and counts read into `results`.
    async fn statement(&mut self, statement: &Statement, results: &mut Results) -> Result<(), Stop> {
        match self {
            Self::Pg(c) => pg_statement(c, statement, results).await,
            Self::My(c, _) => my_statement(c, statement, results).await,
            Self::Lite(c) => lite_statement(c, statement, results).await,
        }
    }
}

/// Why reading a statement stopped: the database's error, or the step's own
/// (a cap, a value with no JSON form).
enum Stop {
    Sql(sqlx::Error),
    Step(StepError),
}

impl Stop {
    fn into_step(self, backend: SqlBackend, n: usize, of: usize) -> StepError {
        match self {
            Self::Sql(e) => statement_error(backend, n, of, &e),
            Self::Step(e) => e,
        }
    }
}

impl From<sqlx::Error> for Stop {
    fn from(e: sqlx::Error) -> Self {
        Self::Sql(e)
    }
}

impl From<StepError> for Stop {
    fn from(e: StepError) -> Self {
        Self::Step(e)
    }
}

/// Reads one statement's stream of rows and completions into `results`.
macro_rules! read_statement {
    ($conn:expr, $statement:expr, $results:expr, $db:ty, $bind:path, $value:path) => {{
        let statement: &Statement = $statement;
        let results: &mut Results = $results;
        let mut stream = match &statement.params {
            Some(params) => {
                let mut query = sqlx::query::<$db>(AssertSqlSafe(statement.sql.clone()));
                for param in params {
                    query = $bind(query, param);
                }
                sqlx::Executor::fetch_many(&mut *$conn, query)
            }
            None => sqlx::raw_sql(AssertSqlSafe(statement.sql.clone())).fetch_many(&mut *$conn),
        };
        while let Some(item) = stream.try_next().await? {
            match item {
                Either::Left(done) => results.done(done.rows_affected()),
                Either::Right(row) => {
                    let columns: Vec<(String, String)> =
                        row.columns().iter().map(column).collect();
                    let mut object = Map::with_capacity(columns.len());
                    for (i, (name, ty)) in columns.iter().enumerate() {
                        let raw = row.try_get_raw(i)?;
                        object.insert(name.clone(), $value(raw, name, ty)?);
                    }
                    results.push(columns, Json::Object(object))?;
                }
            }
        }
        drop(stream);
        // a query that returned no row still says what its columns are
        if statement.params.is_some() && returns_rows(&statement.sql) {
            if let Some(set) = results.sets.last_mut()
                && set.rows.is_empty()
                && set.columns.is_empty()
            {
                // the statement was just prepared: sqlx has it in its cache
                let prepared = sqlx::Executor::prepare(
                    &mut *$conn,
                    sqlx::SqlSafeStr::into_sql_str(AssertSqlSafe(statement.sql.clone())),
                )
                .await?;
                set.columns = sqlx::Statement::columns(&prepared)
                    .iter()
                    .map(column)
                    .collect();
            }
        }
        Ok::<(), Stop>(())
    }};
}

async fn pg_statement(
    conn: &mut PgConnection,
    statement: &Statement,
    results: &mut Results,
) -> Result<(), Stop> {
    read_statement!(
        conn,
        statement,
        results,
        sqlx::Postgres,
        values::pg_bind,
        values::pg_value
    )
}

async fn my_statement(
    conn: &mut MySqlConnection,
    statement: &Statement,
    results: &mut Results,
) -> Result<(), Stop> {
    read_statement!(
        conn,
        statement,
        results,
        sqlx::MySql,
        values::my_bind,
        values::my_value
    )
}

/// A column's name and its database's name for its type.
fn column(c: &impl sqlx::Column) -> (String, String) {
    (
        c.name().to_string(),
        sqlx::TypeInfo::name(c.type_info()).to_string(),
    )
}

/// Whether a statement is one that returns rows (a query, or a change with
/// `RETURNING`): only those are described when no row came back.
fn returns_rows(sql: &str) -> bool {
    let text = sql.trim_start().to_ascii_uppercase();
    ["SELECT", "WITH", "VALUES", "TABLE", "SHOW", "PRAGMA"]
        .iter()
        .any(|word| text.starts_with(word))
        || text.contains("RETURNING")
}

/// SQLite reports, for a statement that changes nothing, the count of the
/// last one that did: a prepared statement's count is taken from
/// `total_changes()` instead, as the other databases count.
async fn lite_statement(
    conn: &mut SqliteConnection,
    statement: &Statement,
    results: &mut Results,
) -> Result<(), Stop> {
    let total = "SELECT total_changes()";
    let before: i64 = if statement.params.is_some() {
        sqlx::query_scalar(total).fetch_one(&mut *conn).await?
    } else {
        0
    };
    read_statement!(
        conn,
        statement,
        results,
        sqlx::Sqlite,
        values::lite_bind,
        values::lite_value
    )?;
    if statement.params.is_some() {
        let after: i64 = sqlx::query_scalar(total).fetch_one(&mut *conn).await?;
        if let Some(set) = results.sets.last_mut() {
            set.rows_affected = u64::try_from(after - before).unwrap_or(0);
        }
    }
    Ok(())
}
