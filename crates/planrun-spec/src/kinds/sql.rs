//! `sql`: statements against PostgreSQL, MySQL/MariaDB or SQLite, with
//! parameters bound, never pasted into the SQL text.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{ConfigProblem, EvidenceField, Kind, Problems};
use crate::duration::ByteSize;
use crate::value::{Span, Value};

/// The `sql` kind.
pub struct Sql;

impl Kind for Sql {
    const KEY: &'static str = "sql";
    const SUMMARY: &'static str = "Statements against PostgreSQL, MySQL/MariaDB or SQLite, parameters bound: `sql = { url = \"{{ db }}\", query = \"SELECT count(*) AS n FROM users WHERE team = $1\", params = [\"qa\"] }`.";
    const RESULT_FIELDS: &'static [&'static str] =
        &["rows", "columns", "rows_affected", "results", "duration"];
    /// A failed step shows the first rows it read.
    const EVIDENCE: &'static [EvidenceField] = &[EvidenceField::first("rows")];
    const PATHS: &'static [&'static str] = &["file"];
    const PRIVILEGE: Option<&'static str> =
        Some("may open and create files on this machine (an `sqlite:` URL, or a URL from a template)");
    type Config = SqlConfig;

    /// A server's URL written out only talks over the network; an `sqlite:`
    /// one opens a file here, and so may a URL a template makes.
    fn privileged(config: &Value) -> bool {
        match config.get("url").and_then(Value::as_str) {
            Some(url) if !crate::de::is_template(url) => scheme_of(url) == Some(SqlBackend::Sqlite),
            _ => true,
        }
    }

    fn check(config: &SqlConfig, problems: &mut Problems) {
        let set = [
            config.query.is_some(),
            config.statements.is_some(),
            config.script.is_some(),
            config.file.is_some(),
        ]
        .into_iter()
        .filter(|b| *b)
        .count();
        if set != 1 {
            problems.push(ConfigProblem::whole(
                "set exactly one of `query`, `statements`, `script` or `file`",
            ));
        }
        if config.params.is_some() && config.query.is_none() && set == 1 {
            problems.push(ConfigProblem::key(
                "params",
                "`params` goes with `query`; in `statements`, each statement has its own `params`",
            ));
        }
        if let Some(statements) = &config.statements
            && statements.is_empty()
        {
            problems.push(ConfigProblem::key(
                "statements",
                "`statements` is empty: list at least one `{ query = \"…\" }`",
            ));
        }
        if config.max_rows == Some(0) {
            problems.push(ConfigProblem::key(
                "max_rows",
                "`max_rows` must be at least 1",
            ));
        }
        if let Some(url) = url_literal(&config.url)
            && scheme_of(url).is_none()
        {
            problems.push(ConfigProblem::key(
                "url",
                format!(
                    "`{}` is not a database URL: it starts with `postgres://`, `mysql://`, `mariadb://` or `sqlite:`",
                    hide_password(url)
                ),
            ));
        }
    }

    /// The password of the connection URL: secret wherever it shows.
    fn secrets(config: &Value, out: &mut Vec<(String, Span)>) {
        let Some(url) = config.get("url") else {
            return;
        };
        if let Some(text) = url.as_str()
            && let Some(password) = password_of(text)
        {
            out.push((password.to_string(), url.span.clone()));
            // the form a URL carries it in (`p%40ss`), when it differs
            if let Some(decoded) = percent_decode(password)
                && decoded != password
            {
                out.push((decoded, url.span.clone()));
            }
        }
    }
}

/// The configuration of an `sql` step.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{"required": ["query"]}, {"required": ["statements"]}, {"required": ["script"]}, {"required": ["file"]}]))]
pub struct SqlConfig {
    /// The database: `postgres://user:password@host:5432/db`,
    /// `mysql://…` or `mariadb://…`, `sqlite:path/to/file.db` (relative to
    /// the spec) or `sqlite::memory:`. TLS options go in the URL
    /// (`?sslmode=require`, `?ssl-mode=REQUIRED`). Its password is secret
    /// wherever it shows; keep the URL in a variable read from the
    /// environment (`vars.db = { env = "DATABASE_URL", secret = true }`).
    #[schemars(extend("examples" = ["{{ db }}", "sqlite:fixtures/app.db"]))]
    pub url: String,
    /// One statement. Placeholders take `params`: `$1`, `$2` for PostgreSQL
    /// and SQLite, `?` for MySQL/MariaDB (and SQLite).
    #[schemars(extend("examples" = ["SELECT id, name FROM users WHERE id = $1"]))]
    pub query: Option<String>,
    /// The values bound to `query`'s placeholders, in order: strings,
    /// numbers, booleans, null, or tables and lists (bound as JSON text).
    /// A template goes in as a value, never into the SQL text.
    pub params: Option<Vec<serde_json::Value>>,
    /// Several statements run in order on one connection, each with its own
    /// `params`; the result's `rows` are the last one's, `results` holds
    /// each one's.
    pub statements: Option<Vec<SqlStatement>>,
    /// SQL text of one or more statements separated by `;`, run as written
    /// (no parameters).
    pub script: Option<String>,
    /// A file of SQL run as `script`, relative to the spec.
    pub file: Option<String>,
    /// Run every statement in one transaction: `"rollback"` undoes it at the
    /// end of the step (a check that leaves nothing behind), `"commit"` keeps
    /// it. Without it, each statement commits on its own.
    pub transaction: Option<SqlTransaction>,
    /// The most rows the step keeps (default 10,000); a result with more
    /// fails, naming the cap.
    pub max_rows: Option<u64>,
    /// The most memory the kept rows may hold (default: `defaults.max_body`,
    /// else 16 MiB).
    pub max_size: Option<ByteSize>,
}

/// One statement of `statements`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlStatement {
    /// The statement.
    pub query: String,
    /// The values bound to its placeholders.
    pub params: Option<Vec<serde_json::Value>>,
}

/// How `transaction` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SqlTransaction {
    /// Keep what the statements did.
    Commit,
    /// Undo it at the end of the step.
    Rollback,
}

/// A database an `sql` step talks to, by its URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlBackend {
    /// `postgres://`, `postgresql://`.
    Postgres,
    /// `mysql://`, `mariadb://`.
    MySql,
    /// `sqlite:`.
    Sqlite,
}

impl SqlBackend {
    /// The name messages use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "PostgreSQL",
            Self::MySql => "MySQL/MariaDB",
            Self::Sqlite => "SQLite",
        }
    }
}

/// The backend a URL names, from its scheme.
pub fn scheme_of(url: &str) -> Option<SqlBackend> {
    let scheme = url.split_once(':')?.0.to_ascii_lowercase();
    match scheme.as_str() {
        "postgres" | "postgresql" => Some(SqlBackend::Postgres),
        "mysql" | "mariadb" => Some(SqlBackend::MySql),
        "sqlite" => Some(SqlBackend::Sqlite),
        _ => None,
    }
}

/// The URL as written, when it is no template.
fn url_literal(url: &str) -> Option<&str> {
    (!crate::de::is_template(url)).then_some(url)
}

/// The password of `scheme://user:password@host…`, as written (percent
/// encoded).
pub fn password_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// The URL with its password as `***`, for messages.
pub fn hide_password(url: &str) -> String {
    match password_of(url) {
        Some(password) => url.replacen(&format!(":{password}@"), ":***@", 1),
        None => url.to_string(),
    }
}

/// `%XX` sequences decoded, when the text has any and they make UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_of_a_url_is_found_and_hidden() {
        let url = "postgres://qa:s3cr%40t@127.0.0.1:5432/app?sslmode=disable";
        assert_eq!(password_of(url), Some("s3cr%40t"));
        assert_eq!(percent_decode("s3cr%40t").as_deref(), Some("s3cr@t"));
        assert_eq!(
            hide_password(url),
            "postgres://qa:***@127.0.0.1:5432/app?sslmode=disable"
        );
        assert_eq!(password_of("postgres://qa@host/db"), None);
        assert_eq!(password_of("sqlite:app.db"), None);
        assert_eq!(password_of("mysql://u:@h/db"), None);
    }

    #[test]
    fn backends_come_from_the_scheme() {
        assert_eq!(scheme_of("postgresql://h/db"), Some(SqlBackend::Postgres));
        assert_eq!(scheme_of("MariaDB://h/db"), Some(SqlBackend::MySql));
        assert_eq!(scheme_of("sqlite::memory:"), Some(SqlBackend::Sqlite));
        assert_eq!(scheme_of("redis://h"), None);
        assert_eq!(scheme_of("no scheme"), None);
    }
}
