//! The `sql` executor against real databases: SQLite in a temporary file,
//! and the PostgreSQL and MariaDB servers that `scripts/test` starts (their
//! URLs in `PLANRUN_TEST_POSTGRES` and `PLANRUN_TEST_MARIADB`). A test whose
//! server is not there fails, saying how to start it.

mod common;

use std::time::Duration;

use common::{config, context, run, run_spec, run_step, write};
use planrun_runner::events::{RunEvent, StepStatus};
use planrun_runner::executor::{SpecContext, StepError};
use planrun_steps::sql::SqlExecutor;
use serde_json::{Value, json};

fn server(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run the tests with scripts/test, which starts PostgreSQL and \
             MariaDB (or `eval \"$(scripts/services start)\"` in this shell)"
        )
    })
}

fn postgres() -> String {
    server("PLANRUN_TEST_POSTGRES")
}

fn mariadb() -> String {
    server("PLANRUN_TEST_MARIADB")
}

/// A table name no other test (or run) uses.
fn table(name: &str) -> String {
    format!("t_{name}_{}", std::process::id())
}

/// The TOML of a step on `url` with `rest` (more keys).
fn step(url: &str, rest: &str) -> String {
    format!("url = {}\n{rest}", toml_string(url))
}

fn toml_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

async fn sql(url: &str, rest: &str) -> Result<Value, StepError> {
    let (ctx, _dir) = context();
    run(&SqlExecutor::new(), &ctx, &step(url, rest)).await
}

async fn sql_err(url: &str, rest: &str) -> String {
    match sql(url, rest).await {
        Ok(result) => panic!("expected an error, got {result:#}"),
        Err(e) => {
            let mut text = e.message.clone();
            if let Some(help) = &e.help {
                text.push_str(" | help: ");
                text.push_str(help);
            }
            text
        }
    }
}

/// The same spec, with the SQL text in variables, on each backend: a table
/// made, rows inserted with bound parameters (a value from a capture among
/// them), a read-your-writes check in a transaction rolled back, a poll with
/// `retry` until a row another step writes appears, and the table dropped.
#[tokio::test]
async fn one_spec_runs_on_every_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lite = format!("sqlite:{}?mode=rwc", dir.path().join("app.db").display());
    for (url, placeholder) in [(lite, "?"), (postgres(), "$"), (mariadb(), "?")] {
        let t = table("shape");
        let p = |n: u32| {
            if placeholder == "$" {
                format!("${n}")
            } else {
                String::from("?")
            }
        };
        let text = format!(
            r#"id = "SQL-SHAPE"
[vars]
db = {url}
create_sql = "CREATE TABLE {t} (id INTEGER PRIMARY KEY, name VARCHAR(50), price DECIMAL(10,2))"
insert_sql = "INSERT INTO {t} (id, name, price) VALUES ({p1}, {p2}, {p3})"
by_name_sql = "SELECT id, name, price FROM {t} WHERE name = {p1}"
count_sql = "SELECT COUNT(*) AS n FROM {t}"
drop_sql = "DROP TABLE {t}"

[[steps]]
id = "create"
sql = {{ url = "{{{{ db }}}}", script = "{{{{ create_sql }}}}" }}

[[steps]]
id = "first"
sql = {{ url = "{{{{ db }}}}", query = "{{{{ insert_sql }}}}", params = [1, "apple", 1.25] }}
expect.rows_affected = 1

[[steps]]
id = "read"
sql = {{ url = "{{{{ db }}}}", query = "{{{{ by_name_sql }}}}", params = ["apple"] }}
expect."rows.len" = 1
expect."rows[0].name" = "apple"
capture.id = "rows[0].id"

[[steps]]
id = "rolled-back"
sql = {{ url = "{{{{ db }}}}", transaction = "rollback", statements = [
  {{ query = "{{{{ insert_sql }}}}", params = ["{{{{ read.id + 1 }}}}", "pear", 2] }},
  {{ query = "{{{{ count_sql }}}}" }},
] }}
expect."rows[0].n" = 2
expect."results.len" = 2
expect."results[0].rows_affected" = 1

[[steps]]
id = "late-writer"
needs = ["rolled-back"]
wait = "300ms"

[[steps]]
id = "late-row"
needs = ["late-writer"]
sql = {{ url = "{{{{ db }}}}", query = "{{{{ insert_sql }}}}", params = [3, "plum", 3] }}

[[steps]]
id = "poll"
needs = ["rolled-back"]
sql = {{ url = "{{{{ db }}}}", query = "{{{{ count_sql }}}}" }}
retry = {{ attempts = 50, interval = "50ms" }}
expect."rows[0].n" = 2

[[steps]]
id = "drop"
always = true
needs = ["poll", "late-row"]
sql = {{ url = "{{{{ db }}}}", script = "{{{{ drop_sql }}}}" }}
"#,
            url = toml_string(&url),
            p1 = p(1),
            p2 = p(2),
            p3 = p(3),
        );
        let (summary, events) = run_spec(dir.path(), &text).await;
        let reports: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                RunEvent::StepFinished { report, result, .. } => {
                    Some((report.clone(), result.clone()))
                }
                _ => None,
            })
            .collect();
        let failed: Vec<String> = reports
            .iter()
            .filter(|(r, _)| r.status != StepStatus::Passed)
            .map(|(r, _)| format!("{}: {:?} {:?}", r.id, r.error, r.expectations))
            .collect();
        assert_eq!(summary.passed, 1, "on {url}: {failed:#?}");
        let (poll, _) = reports
            .iter()
            .find(|(r, _)| r.id == "poll")
            .expect("the poll ran");
        assert!(poll.attempts > 1, "the poll waited for the row: {poll:?}");
        let (_, read) = reports
            .iter()
            .find(|(r, _)| r.id == "read")
            .expect("the read ran");
        let read = read.as_ref().expect("a result");
        // an exact numeric keeps its digits; the id is a number everywhere
        assert_eq!(read["rows"][0]["id"], json!(1), "{url}: {read}");
        let price = &read["rows"][0]["price"];
        assert!(
            price == &json!("1.25") || price == &json!(1.25),
            "{url}: {price}"
        );
    }
}

#[tokio::test]
async fn postgres_types_read_as_documented() {
    let result = sql(
        &postgres(),
        r#"query = '''SELECT 1::int2 AS small, 2::int4 AS int, 9007199254740993::int8 AS big,
            1.5::float4 AS f4, 'NaN'::float8 AS nan, 12345678901234567890.123456789::numeric AS num,
            true AS yes, 'héllo'::text AS txt, 'ab'::char(3) AS ch, '\x00ff'::bytea AS bytes,
            '{"a": [1, 2]}'::jsonb AS doc, '{"b": null}'::json AS plain,
            'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id, '2024-02-29'::date AS day,
            '13:45:10.5'::time AS at, '2024-02-29 13:45:10'::timestamp AS local,
            '2024-02-29 13:45:10+02'::timestamptz AS zoned, '1 year 2 days 3 hours'::interval AS span,
            ARRAY[1, NULL, 3]::int4[] AS ints, ARRAY['x', 'y']::text[] AS words,
            NULL::text AS nothing'''"#,
    )
    .await
    .expect("the query runs");
    let row = &result["rows"][0];
    assert_eq!(
        *row,
        json!({
            "small": 1, "int": 2, "big": 9_007_199_254_740_993_i64, "f4": 1.5, "nan": "NaN",
            "num": "12345678901234567890.123456789", "yes": true, "txt": "héllo", "ch": "ab ",
            "bytes": "AP8=", "doc": { "a": [1, 2] }, "plain": { "b": null },
            "id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "day": "2024-02-29",
            "at": "13:45:10.500", "local": "2024-02-29T13:45:10", "zoned": "2024-02-29T11:45:10Z",
            "span": "P1Y2DT3H", "ints": [1, null, 3], "words": ["x", "y"], "nothing": null
        })
    );
    assert_eq!(
        result["columns"][5],
        json!({ "name": "num", "type": "NUMERIC" })
    );
    assert_eq!(result["rows_affected"], json!(1));
}

#[tokio::test]
async fn mariadb_types_read_as_documented() {
    let result = sql(
        &mariadb(),
        r#"query = """SELECT CAST(1 AS SIGNED) AS i, CAST(18446744073709551615 AS UNSIGNED) AS u,
            CAST(12345678901234567890.123456789 AS DECIMAL(40,9)) AS num, 1.5e0 AS d,
            'héllo' AS txt, BINARY 'ab' AS bytes, DATE '2024-02-29' AS day,
            TIME '13:45:10' AS at, TIMESTAMP '2024-02-29 13:45:10' AS local, NULL AS nothing""""#,
    )
    .await
    .expect("the query runs");
    let row = &result["rows"][0];
    assert_eq!(
        *row,
        json!({
            "i": 1, "u": 18_446_744_073_709_551_615_u64,
            "num": "12345678901234567890.123456789", "d": 1.5, "txt": "héllo",
            "bytes": "YWI=", "day": "2024-02-29", "at": "13:45:10",
            "local": "2024-02-29T13:45:10", "nothing": null
        })
    );
}

#[tokio::test]
async fn sqlite_values_read_by_their_storage_class() {
    let (ctx, dir) = context();
    write(
        dir.path(),
        "seed.sql",
        "CREATE TABLE t (a INTEGER, b REAL, c TEXT, d BLOB, e BOOLEAN);\nINSERT INTO t VALUES (7, 2.5, 'x', X'00FF', 1), (NULL, NULL, NULL, NULL, NULL);\n",
    );
    let executor = SqlExecutor::new();
    // a relative file is the spec's neighbour; `mode=rwc` creates it
    run(
        &executor,
        &ctx,
        "url = \"sqlite:local.db?mode=rwc\"\nfile = \"seed.sql\"",
    )
    .await
    .expect("the script runs");
    assert!(dir.path().join("local.db").is_file());
    let result = run(
        &executor,
        &ctx,
        "url = \"sqlite:local.db\"\nquery = \"SELECT * FROM t ORDER BY a DESC\"",
    )
    .await
    .expect("the query runs");
    assert_eq!(
        result["rows"],
        json!([
            { "a": 7, "b": 2.5, "c": "x", "d": "AP8=", "e": 1 },
            { "a": null, "b": null, "c": null, "d": null, "e": null }
        ])
    );
    assert_eq!(
        result["rows_affected"],
        json!(0),
        "a select changes nothing"
    );
}

#[tokio::test]
async fn connection_failures_say_what_happened_and_hide_the_password() {
    let pg = postgres();
    let password = planrun_spec::kinds::password_of(&pg)
        .expect("a password in the URL")
        .to_string();
    // a port nothing listens on
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let unreachable = format!("postgres://planrun:{password}@127.0.0.1:{closed}/planrun");
    let e = sql_err(&unreachable, "query = \"SELECT 1\"").await;
    assert!(
        e.contains("cannot reach PostgreSQL at `postgres://planrun:***@127.0.0.1:"),
        "{e}"
    );
    assert!(e.contains("refused"), "{e}");
    assert!(!e.contains(&password), "{e}");

    let wrong = pg.replace(&password, "not-the-password");
    let e = sql_err(&wrong, "query = \"SELECT 1\"").await;
    assert!(e.contains("password authentication failed"), "{e}");
    assert!(e.contains("[28P01]"), "{e}");

    let nodb = match pg.rsplit_once('/') {
        Some((server, _)) => format!("{server}/no_such_database"),
        None => panic!("a database in {pg}"),
    };
    let e = sql_err(&nodb, "query = \"SELECT 1\"").await;
    assert!(e.contains("\"no_such_database\" does not exist"), "{e}");

    let my = mariadb();
    let e = sql_err(
        &my.replace(&password, "not-the-password"),
        "query = \"SELECT 1\"",
    )
    .await;
    assert!(e.contains("Access denied"), "{e}");
    assert!(!e.contains("not-the-password"), "{e}");

    let e = sql_err("sqlite:no/such/dir/app.db", "query = \"SELECT 1\"").await;
    assert!(
        e.contains("cannot connect to SQLite") || e.contains("SQLite"),
        "{e}"
    );

    let e = sql_err("redis://127.0.0.1/0", "query = \"SELECT 1\"").await;
    assert!(e.contains("is not a database URL"), "{e}");
}

#[tokio::test]
async fn statement_errors_carry_the_database_message() {
    let e = sql_err(&postgres(), "query = \"SELEC 1\"").await;
    assert!(
        e.contains("PostgreSQL refused the statement: syntax error at or near \"SELEC\""),
        "{e}"
    );
    assert!(e.contains("[42601]"), "{e}");
    let e = sql_err(
        &mariadb(),
        "statements = [{ query = \"SELECT 1\" }, { query = \"SELEC 1\" }]",
    )
    .await;
    assert!(e.contains("MySQL/MariaDB refused statement 2 of 2"), "{e}");
    assert!(e.contains("SQL syntax"), "{e}");
    let e = sql_err("sqlite::memory:", "query = \"SELECT * FROM nowhere\"").await;
    assert!(e.contains("no such table: nowhere"), "{e}");
    // a type with no JSON form names the column and the cast
    let e = sql_err(&postgres(), "query = \"SELECT '127.0.0.1'::inet AS addr\"").await;
    assert!(e.contains("column `addr` is of type INET"), "{e}");
    assert!(e.contains("addr::text"), "{e}");
    // two columns of one name
    let e = sql_err("sqlite::memory:", "query = \"SELECT 1 AS id, 2 AS id\"").await;
    assert!(
        e.contains("two columns of the result are named `id`"),
        "{e}"
    );
    assert!(e.contains("aliases"), "{e}");
    // a wrong count of parameters
    let e = sql_err(&postgres(), "query = \"SELECT $1::int\"\nparams = []").await;
    assert!(e.contains("refused") || e.contains("failed"), "{e}");
}

#[tokio::test]
async fn a_result_past_the_caps_fails_naming_them() {
    let e = sql_err(
        &postgres(),
        "query = \"SELECT generate_series(1, 50) AS n\"\nmax_rows = 10",
    )
    .await;
    assert!(
        e.contains("passed the cap on rows a step keeps, 10 rows"),
        "{e}"
    );
    let e = sql_err(
        "sqlite::memory:",
        "query = \"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c LIMIT 100000) SELECT n, 'a fairly long text value to make rows big' AS t FROM c\"\nmax_rows = 1000000\nmax_size = \"1MiB\"",
    )
    .await;
    assert!(
        e.contains("passed the cap on memory a step keeps, 1 MiB"),
        "{e}"
    );
}

/// The error of a step on `url` with `rest` run under a 1 s limit.
async fn past_limit(executor: &SqlExecutor, ctx: &SpecContext, url: &str, rest: &str) -> StepError {
    run_step(
        executor,
        ctx,
        &config(&step(url, rest)),
        Duration::from_secs(1),
        1 << 24,
    )
    .await
    .expect_err("it runs past its limit")
}

#[tokio::test]
async fn a_statement_past_the_time_limit_is_stopped_on_the_server() {
    let (ctx, _dir) = context();
    let executor = SqlExecutor::new();
    let pg = postgres();
    let e = past_limit(
        &executor,
        &ctx,
        &pg,
        "query = \"SELECT pg_sleep(30), 'planrun-slow-marker'\"",
    )
    .await;
    assert!(
        e.message
            .contains("canceling statement due to statement timeout"),
        "{e:?}"
    );
    assert!(
        e.help.as_deref().unwrap_or("").contains("time limit"),
        "{e:?}"
    );
    // nothing of it runs on any more
    let left = run(
        &executor,
        &ctx,
        &step(
            &pg,
            "query = \"SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE '%planrun-slow-marker%' AND pid <> pg_backend_pid()\"",
        ),
    )
    .await
    .expect("the check runs");
    assert_eq!(left["rows"][0]["n"], json!(0));

    let my = mariadb();
    let e = past_limit(&executor, &ctx, &my, "query = \"SELECT SLEEP(30) AS s\"").await;
    assert!(e.message.contains("max_statement_time exceeded"), "{e:?}");
    // a statement MariaDB cuts short with a warning only is an error too
    let e = past_limit(
        &executor,
        &ctx,
        &my,
        "query = \"SELECT BENCHMARK(100000000000, SHA2('x', 256)) AS b\"",
    )
    .await;
    assert!(
        e.message
            .contains("stopped the statement at the step's time limit"),
        "{e:?}"
    );

    let e = past_limit(
        &executor,
        &ctx,
        "sqlite::memory:",
        "query = \"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) FROM c\"",
    )
    .await;
    assert!(e.message.contains("interrupted"), "{e:?}");
}

#[tokio::test]
async fn a_connection_is_kept_for_the_next_step_of_the_spec() {
    let (ctx, _dir) = context();
    let executor = SqlExecutor::new();
    let pg = postgres();
    let pid = |result: Value| result["rows"][0]["pid"].clone();
    let first = run(
        &executor,
        &ctx,
        &step(&pg, "query = \"SELECT pg_backend_pid() AS pid\""),
    )
    .await
    .expect("runs");
    let second = run(
        &executor,
        &ctx,
        &step(&pg, "query = \"SELECT pg_backend_pid() AS pid\""),
    )
    .await
    .expect("runs");
    assert_eq!(pid(first.clone()), pid(second), "the same session");
    // the session keeps the server's time limit; a step with another limit
    // sets its own
    let show = |result: Value| result["rows"][0]["statement_timeout"].clone();
    let same = run(
        &executor,
        &ctx,
        &step(&pg, "query = \"SHOW statement_timeout\""),
    )
    .await
    .expect("runs");
    assert_eq!(show(same), json!("9s"));
    let other = run_step(
        &executor,
        &ctx,
        &config(&step(&pg, "query = \"SHOW statement_timeout\"")),
        Duration::from_secs(2),
        1 << 24,
    )
    .await
    .expect("runs");
    assert_eq!(show(other), json!("1800ms"));
    // the spec's end closes it
    ctx.cleanup().await;
    let (other, _dir2) = context();
    let gone = run(
        &executor,
        &other,
        &step(
            &pg,
            &format!(
                "query = \"SELECT count(*) AS n FROM pg_stat_activity WHERE pid = {}\"",
                pid(first)
            ),
        ),
    )
    .await
    .expect("runs");
    assert_eq!(gone["rows"][0]["n"], json!(0));
}

#[tokio::test]
async fn a_query_with_no_rows_still_names_its_columns() {
    for url in [postgres(), mariadb(), String::from("sqlite::memory:")] {
        let result = sql(&url, "query = \"SELECT 1 AS one, 'x' AS two WHERE 1 = 0\"")
            .await
            .unwrap_or_else(|e| panic!("{url}: {e:?}"));
        assert_eq!(result["rows"], json!([]), "{url}");
        let names: Vec<&str> = result["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["one", "two"], "{url}: {result}");
    }
}

fn ca() -> String {
    server("PLANRUN_TEST_DB_CA")
}

/// `url` with `params` added to its query.
fn with(url: &str, params: &str) -> String {
    let join = if url.contains('?') { '&' } else { '?' };
    format!("{url}{join}{params}")
}

/// TLS by the URL's options: verified against the authority that signed
/// the test servers' certificates (a path relative to the spec is its
/// neighbour), and refused, saying why, against the system's authorities.
#[tokio::test]
async fn tls_is_verified_by_the_url_options() {
    let (ctx, dir) = context();
    let executor = SqlExecutor::new();
    std::fs::copy(ca(), dir.path().join("ca.crt")).expect("copy the CA");
    let pg = with(&postgres(), "sslmode=verify-full&sslrootcert=ca.crt");
    let result = run(
        &executor,
        &ctx,
        &step(
            &pg,
            "query = \"SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()\"",
        ),
    )
    .await
    .expect("a verified TLS connection");
    assert_eq!(result["rows"][0]["ssl"], json!(true));
    let e = sql_err(
        &with(&postgres(), "sslmode=verify-full"),
        "query = \"SELECT 1\"",
    )
    .await;
    assert!(
        e.contains("TLS with PostgreSQL at `postgres://planrun:***@"),
        "{e}"
    );
    assert!(e.contains("sslrootcert"), "the help names the option: {e}");

    let my = with(
        &mariadb(),
        &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={}", ca()),
    );
    let result = run(
        &executor,
        &ctx,
        &step(&my, "query = \"SHOW SESSION STATUS LIKE 'Ssl_cipher'\""),
    )
    .await
    .expect("a verified TLS connection");
    let cipher = result["rows"][0]["Value"].as_str().unwrap_or_default();
    assert!(!cipher.is_empty(), "{result}");
    let e = sql_err(
        &with(&mariadb(), "ssl-mode=VERIFY_IDENTITY"),
        "query = \"SELECT 1\"",
    )
    .await;
    assert!(e.contains("TLS with MySQL/MariaDB"), "{e}");
}
