//! Where the demo keeps its messages: in memory (the default, one table per
//! server), or in PostgreSQL through a pool of connections
//! (`planrun demo --database URL --pool N`), as the deployment the seed plan
//! tests keeps them, so that a plan can watch the database's connections.
//!
//! Owns the message table in both forms and the pool. The pool holds its N
//! connections from the start, as a server whose N workers each keep one
//! does. A database that fails answers 503 with its message; it never takes
//! the server down.

use std::collections::BTreeMap;
use std::str::FromStr as _;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions as _, Row as _};

use crate::error::ApiError;

/// One stored chat message, serialized as the API returns it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Message {
    pub(crate) id: u64,
    pub(crate) session_id: String,
    pub(crate) content: String,
    pub(crate) author: Option<String>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// The table the PostgreSQL store keeps messages in.
const TABLE: &str = "planrun_demo_messages";

/// How long a request waits for a connection of the pool.
const ACQUIRE: Duration = Duration::from_secs(5);

/// A PostgreSQL database for the demo's messages: a pool of connections.
#[derive(Clone, Debug)]
pub struct Database {
    pool: PgPool,
    size: u32,
}

impl Database {
    /// Connects to `url` with a pool of `size` connections, all opened now,
    /// and makes the message table when it is missing.
    ///
    /// # Errors
    ///
    /// The URL is not valid, the server cannot be reached or refuses, or
    /// the table cannot be made: the message says which.
    pub async fn connect(url: &str, size: u32) -> Result<Database, String> {
        let size = size.max(1);
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| format!("the database URL is not valid: {e}"))?
            .disable_statement_logging();
        let pool = PgPoolOptions::new()
            .max_connections(size)
            .min_connections(size)
            .acquire_timeout(ACQUIRE)
            // a pool of a fixed size: connections are kept, not retired
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
        // two servers starting at once (WSGI and ASGI) would race on
        // `IF NOT EXISTS` and one would fail: they take turns
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock(hashtext('{TABLE}'));
             CREATE TABLE IF NOT EXISTS {TABLE} (
               id BIGSERIAL PRIMARY KEY,
               session_id TEXT NOT NULL,
               content TEXT NOT NULL,
               author TEXT,
               created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
               updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
             COMMIT;"
        )))
        .execute(&pool)
        .await
        .map_err(|e| format!("cannot make the table `{TABLE}`: {e}"))?;
        // every connection open before the first request: take them all at once
        let mut held = Vec::with_capacity(size as usize);
        for _ in 0..size {
            held.push(
                pool.acquire()
                    .await
                    .map_err(|e| format!("cannot open {size} connections to PostgreSQL: {e}"))?,
            );
        }
        drop(held);
        Ok(Database { pool, size })
    }

    /// How many connections the pool keeps.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The rows of one server kept in memory, keyed by id (ids start at 1 and
/// are never reused).
#[derive(Debug, Default)]
pub(crate) struct Memory {
    rows: BTreeMap<u64, Message>,
    last_id: u64,
}

/// The message table of a server.
#[derive(Debug)]
pub(crate) enum Store {
    Memory(Mutex<Memory>),
    Postgres(Database),
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn unavailable(e: &sqlx::Error) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the database is unavailable: {e}"),
    )
}

fn message(row: &PgRow) -> Result<Message, ApiError> {
    let read = |e: sqlx::Error| unavailable(&e);
    let id: i64 = row.try_get("id").map_err(read)?;
    let at = |name: &str| -> Result<String, ApiError> {
        let t: DateTime<Utc> = row.try_get(name).map_err(read)?;
        Ok(t.to_rfc3339_opts(SecondsFormat::Millis, true))
    };
    Ok(Message {
        id: u64::try_from(id).unwrap_or_default(),
        session_id: row.try_get("session_id").map_err(read)?,
        content: row.try_get("content").map_err(read)?,
        author: row.try_get("author").map_err(read)?,
        created_at: at("created_at")?,
        updated_at: at("updated_at")?,
    })
}

const COLUMNS: &str = "id, session_id, content, author, created_at, updated_at";

impl Store {
    pub(crate) fn memory() -> Self {
        Self::Memory(Mutex::new(Memory::default()))
    }

    fn rows(memory: &Mutex<Memory>) -> MutexGuard<'_, Memory> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        memory.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the store answers: always for memory, a round trip for the
    /// database.
    pub(crate) async fn check(&self) -> Result<(), String> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Postgres(db) => sqlx::query("SELECT 1")
                .execute(&db.pool)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }

    /// The messages, of one session when `session` says which, by id.
    pub(crate) async fn list(&self, session: Option<&str>) -> Result<Vec<Message>, ApiError> {
        match self {
            Self::Memory(memory) => Ok(Self::rows(memory)
                .rows
                .values()
                .filter(|m| session.is_none_or(|s| m.session_id == s))
                .cloned()
                .collect()),
            Self::Postgres(db) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM {TABLE} WHERE $1::text IS NULL OR session_id = $1 ORDER BY id"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(session)
                    .fetch_all(&db.pool)
                    .await
                    .map_err(|e| unavailable(&e))?;
                rows.iter().map(message).collect()
            }
        }
    }

    /// Stores a new message.
    pub(crate) async fn create(
        &self,
        session_id: String,
        content: String,
        author: Option<String>,
    ) -> Result<Message, ApiError> {
        match self {
            Self::Memory(memory) => {
                let mut store = Self::rows(memory);
                store.last_id += 1;
                let created_at = now();
                let message = Message {
                    id: store.last_id,
                    session_id,
                    content,
                    author,
                    updated_at: created_at.clone(),
                    created_at,
                };
                store.rows.insert(message.id, message.clone());
                Ok(message)
            }
            Self::Postgres(db) => {
                let sql = format!(
                    "INSERT INTO {TABLE} (session_id, content, author) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(session_id)
                    .bind(content)
                    .bind(author)
                    .fetch_one(&db.pool)
                    .await
                    .map_err(|e| unavailable(&e))?;
                message(&row)
            }
        }
    }

    /// The message `id`, when there is one.
    pub(crate) async fn get(&self, id: u64) -> Result<Option<Message>, ApiError> {
        match self {
            Self::Memory(memory) => Ok(Self::rows(memory).rows.get(&id).cloned()),
            Self::Postgres(db) => {
                let Ok(id) = i64::try_from(id) else {
                    return Ok(None);
                };
                let sql = format!("SELECT {COLUMNS} FROM {TABLE} WHERE id = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(&db.pool)
                    .await
                    .map_err(|e| unavailable(&e))?;
                row.as_ref().map(message).transpose()
            }
        }
    }

    /// Changes the fields given of message `id`; `None` when there is none.
    pub(crate) async fn change(
        &self,
        id: u64,
        session_id: Option<String>,
        content: Option<String>,
    ) -> Result<Option<Message>, ApiError> {
        match self {
            Self::Memory(memory) => {
                let mut store = Self::rows(memory);
                let Some(message) = store.rows.get_mut(&id) else {
                    return Ok(None);
                };
                if let Some(session_id) = session_id {
                    message.session_id = session_id;
                }
                if let Some(content) = content {
                    message.content = content;
                }
                message.updated_at = now();
                Ok(Some(message.clone()))
            }
            Self::Postgres(db) => {
                let Ok(id) = i64::try_from(id) else {
                    return Ok(None);
                };
                let sql = format!(
                    "UPDATE {TABLE} SET session_id = COALESCE($2, session_id), content = COALESCE($3, content), updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .bind(session_id)
                    .bind(content)
                    .fetch_optional(&db.pool)
                    .await
                    .map_err(|e| unavailable(&e))?;
                row.as_ref().map(message).transpose()
            }
        }
    }

    /// Deletes message `id`; whether there was one.
    pub(crate) async fn delete(&self, id: u64) -> Result<bool, ApiError> {
        match self {
            Self::Memory(memory) => Ok(Self::rows(memory).rows.remove(&id).is_some()),
            Self::Postgres(db) => {
                let Ok(id) = i64::try_from(id) else {
                    return Ok(false);
                };
                let sql = format!("DELETE FROM {TABLE} WHERE id = $1");
                let done = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .execute(&db.pool)
                    .await
                    .map_err(|e| unavailable(&e))?;
                Ok(done.rows_affected() > 0)
            }
        }
    }
}
