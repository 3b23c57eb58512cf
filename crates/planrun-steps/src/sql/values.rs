//! Values in and out of the databases: a parameter bound by its JSON type,
//! a column's value read by its type into JSON.
//!
//! The JSON form of each type is documented in docs/sql.md and is the same
//! across backends where the types are: integers and floats are numbers,
//! exact numerics (`numeric`, `DECIMAL`) strings that keep every digit,
//! booleans booleans, bytes base64, json and jsonb JSON, uuids, dates, times
//! and timestamps strings (ISO 8601, zoned ones in UTC with `Z`),
//! PostgreSQL arrays lists, NULL null. A type with no form here is an error
//! that names the column and asks for a cast to text; it is never guessed.

use std::fmt::Write as _;

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use planrun_runner::executor::StepError;
use serde_json::{Value as Json, json};
use sqlx::mysql::{MySql, MySqlArguments, MySqlValueRef};
use sqlx::postgres::types::PgInterval;
use sqlx::postgres::{PgArguments, PgValueRef, Postgres};
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteValueRef};
use sqlx::{Decode, TypeInfo as _, ValueRef as _};

type BoxError = sqlx::error::BoxDynError;

/// Binds a JSON value by its type: null, a boolean, an integer (64-bit), a
/// float, text; a list or table as its JSON text.
macro_rules! binder {
    ($name:ident, $db:ty, $args:ty) => {
        pub(super) fn $name<'q>(query: Query<'q, $db, $args>, value: &Json) -> Query<'q, $db, $args> {
            match value {
                Json::Null => query.bind(None::<String>),
                Json::Bool(b) => query.bind(*b),
                Json::Number(n) => match (n.as_i64(), n.as_f64()) {
                    (Some(i), _) => query.bind(i),
                    (None, Some(f)) => query.bind(f),
                    (None, None) => query.bind(n.to_string()),
                },
                Json::String(s) => query.bind(s.clone()),
                other => query.bind(other.to_string()),
            }
        }
    };
}

binder!(pg_bind, Postgres, PgArguments);
binder!(my_bind, MySql, MySqlArguments);
binder!(lite_bind, Sqlite, SqliteArguments);

/// A value that cannot be read as its type says.
fn unreadable(column: &str, ty: &str, e: &BoxError) -> StepError {
    StepError::new(format!(
        "the value of column `{column}` ({ty}) could not be read: {e}"
    ))
    .help(format!("cast it to text in the query: `{column}::text`, `CAST({column} AS CHAR)`"))
}

/// A type with no JSON form here.
fn unconvertible(column: &str, ty: &str) -> StepError {
    StepError::new(format!(
        "column `{column}` is of type {ty}, which the sql step does not convert to JSON"
    ))
    .help(format!(
        "cast it in the query: `{column}::text` (PostgreSQL), `CAST({column} AS CHAR)` (MySQL)"
    ))
}

/// A float as JSON: a number, or a string for NaN and the infinities.
fn float(f: f64) -> Json {
    serde_json::Number::from_f64(f).map_or_else(|| Json::String(f.to_string()), Json::Number)
}

fn base64(bytes: &[u8]) -> Json {
    Json::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn date(d: NaiveDate) -> Json {
    Json::String(d.format("%Y-%m-%d").to_string())
}

fn time(t: NaiveTime) -> Json {
    Json::String(t.format("%H:%M:%S%.f").to_string())
}

fn datetime(t: NaiveDateTime) -> Json {
    Json::String(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string())
}

fn zoned(t: DateTime<Utc>) -> Json {
    Json::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// A column's PostgreSQL value as JSON.
#[expect(
    clippy::needless_pass_by_value,
    reason = "the three readers share one call site, and SQLite's consumes its value"
)]
pub(super) fn pg_value(raw: PgValueRef<'_>, column: &str, ty: &str) -> Result<Json, StepError> {
    if raw.is_null() {
        return Ok(Json::Null);
    }
    let read = |e: BoxError| unreadable(column, ty, &e);
    macro_rules! decode {
        ($t:ty) => {
            <$t as Decode<'_, Postgres>>::decode(raw.clone()).map_err(read)?
        };
    }
    macro_rules! array {
        ($t:ty, $f:expr) => {
            Json::Array(
                decode!(Vec<Option<$t>>)
                    .into_iter()
                    .map(|v| v.map_or(Json::Null, $f))
                    .collect(),
            )
        };
    }
    Ok(match ty {
        "BOOL" => json!(decode!(bool)),
        "INT2" => json!(decode!(i16)),
        "INT4" => json!(decode!(i32)),
        "INT8" => json!(decode!(i64)),
        "OID" => json!(decode!(sqlx::postgres::types::Oid).0),
        "FLOAT4" => float(f64::from(decode!(f32))),
        "FLOAT8" => float(decode!(f64)),
        "NUMERIC" => Json::String(numeric(raw.as_bytes().map_err(read)?).map_err(read)?),
        "TEXT" | "VARCHAR" | "CHAR" | "NAME" | "UNKNOWN" | "\"CHAR\"" | "JSONPATH" => {
            Json::String(decode!(String))
        }
        "BYTEA" => base64(&decode!(Vec<u8>)),
        "JSON" | "JSONB" => decode!(sqlx::types::Json<Json>).0,
        "UUID" => Json::String(uuid(raw.as_bytes().map_err(read)?).map_err(read)?),
        "DATE" => date(decode!(NaiveDate)),
        "TIME" => time(decode!(NaiveTime)),
        "TIMESTAMP" => datetime(decode!(NaiveDateTime)),
        "TIMESTAMPTZ" => zoned(decode!(DateTime<Utc>)),
        "INTERVAL" => Json::String(interval(&decode!(PgInterval))),
        "BOOL[]" => array!(bool, Json::Bool),
        "INT2[]" => array!(i16, |v| json!(v)),
        "INT4[]" => array!(i32, |v| json!(v)),
        "INT8[]" => array!(i64, |v| json!(v)),
        "FLOAT4[]" => array!(f32, |v| float(f64::from(v))),
        "FLOAT8[]" => array!(f64, float),
        "TEXT[]" | "VARCHAR[]" | "CHAR[]" | "NAME[]" => array!(String, Json::String),
        "JSON[]" | "JSONB[]" => array!(sqlx::types::Json<Json>, |v| v.0),
        // the names PostgreSQL itself gives are upper case here; a type of
        // the database's own (an enum, citext) is sent as its text
        other if other.chars().any(|c| c.is_ascii_lowercase()) => {
            match raw.as_str() {
                Ok(text) if !text.contains('\0') => Json::String(text.to_string()),
                _ => return Err(unconvertible(column, ty)),
            }
        }
        _ => return Err(unconvertible(column, ty)),
    })
}

/// PostgreSQL's binary `numeric` as its exact decimal text.
fn numeric(bytes: &[u8]) -> Result<String, BoxError> {
    let word = |i: usize| -> Result<u16, BoxError> {
        let b = bytes
            .get(2 * i..2 * i + 2)
            .ok_or("a numeric value is cut short")?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    };
    let ndigits = usize::from(word(0)?);
    #[expect(clippy::cast_possible_wrap, reason = "the weight is a signed 16-bit word")]
    let weight = i32::from(word(1)? as i16);
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok(String::from("NaN")),
        0xD000 => return Ok(String::from("Infinity")),
        0xF000 => return Ok(String::from("-Infinity")),
        other => return Err(format!("a numeric value has an unknown sign {other:#x}").into()),
    }
    let digits: Vec<u16> = (0..ndigits).map(|i| word(4 + i)).collect::<Result<_, _>>()?;
    let group = |g: i32| -> u16 {
        usize::try_from(g)
            .ok()
            .and_then(|g| digits.get(g).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for g in 0..=weight {
            if g == 0 {
                out.push_str(&group(g).to_string());
            } else {
                let _ = write!(out, "{:04}", group(g));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::with_capacity(dscale + 4);
        let mut g = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", group(g));
            g += 1;
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    Ok(out)
}

/// A binary uuid as its hyphenated text.
fn uuid(bytes: &[u8]) -> Result<String, BoxError> {
    if bytes.len() != 16 {
        return Err(format!("a uuid has 16 bytes, not {}", bytes.len()).into());
    }
    let hex = bytes.iter().fold(String::with_capacity(32), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    });
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// An interval as an ISO 8601 duration: `P1Y2M3DT4H5M6.5S`.
fn interval(i: &PgInterval) -> String {
    let mut out = String::from("P");
    let (years, months) = (i.months / 12, i.months % 12);
    for (n, unit) in [(years, 'Y'), (months, 'M'), (i.days, 'D')] {
        if n != 0 {
            let _ = write!(out, "{n}{unit}");
        }
    }
    let micros = i.microseconds;
    if micros != 0 || out.len() == 1 {
        out.push('T');
        let (hours, rest) = (micros / 3_600_000_000, micros % 3_600_000_000);
        let (minutes, rest) = (rest / 60_000_000, rest % 60_000_000);
        if hours != 0 {
            let _ = write!(out, "{hours}H");
        }
        if minutes != 0 {
            let _ = write!(out, "{minutes}M");
        }
        if rest != 0 || (hours == 0 && minutes == 0) {
            let (secs, frac) = (rest / 1_000_000, (rest % 1_000_000).abs());
            let sign = if rest < 0 && secs == 0 { "-" } else { "" };
            if frac == 0 {
                let _ = write!(out, "{sign}{secs}S");
            } else {
                let frac = format!("{frac:06}");
                let _ = write!(out, "{sign}{secs}.{}S", frac.trim_end_matches('0'));
            }
        }
    }
    out
}

/// A column's MySQL or MariaDB value as JSON.
#[expect(
    clippy::needless_pass_by_value,
    reason = "the three readers share one call site, and SQLite's consumes its value"
)]
pub(super) fn my_value(raw: MySqlValueRef<'_>, column: &str, ty: &str) -> Result<Json, StepError> {
    if raw.is_null() {
        return Ok(Json::Null);
    }
    let read = |e: BoxError| unreadable(column, ty, &e);
    macro_rules! decode {
        ($t:ty) => {
            <$t as Decode<'_, MySql>>::decode(raw.clone()).map_err(read)?
        };
    }
    Ok(match ty {
        "BOOLEAN" => json!(decode!(bool)),
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" => json!(decode!(i64)),
        "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED"
        | "BIGINT UNSIGNED" | "BIT" => json!(decode!(u64)),
        "FLOAT" => float(f64::from(decode!(f32))),
        "DOUBLE" => float(decode!(f64)),
        // sent as text, in both protocols: every digit kept
        "DECIMAL" | "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT"
        | "ENUM" | "SET" => Json::String(decode!(String)),
        "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" => {
            base64(&decode!(Vec<u8>))
        }
        "JSON" => decode!(sqlx::types::Json<Json>).0,
        "DATE" => date(decode!(NaiveDate)),
        "TIME" => time(decode!(NaiveTime)),
        "DATETIME" => datetime(decode!(NaiveDateTime)),
        "TIMESTAMP" => zoned(decode!(DateTime<Utc>)),
        "NULL" => Json::Null,
        _ => return Err(unconvertible(column, ty)),
    })
}

/// A column's SQLite value as JSON, by the value's own storage class (a
/// column's declared type is only a hint in SQLite).
pub(super) fn lite_value(
    raw: SqliteValueRef<'_>,
    column: &str,
    ty: &str,
) -> Result<Json, StepError> {
    if raw.is_null() {
        return Ok(Json::Null);
    }
    let read = |e: BoxError| unreadable(column, ty, &e);
    macro_rules! decode {
        ($t:ty) => {
            <$t as Decode<'_, Sqlite>>::decode(raw).map_err(read)?
        };
    }
    let storage = raw.type_info().name().to_string();
    Ok(match storage.as_str() {
        "INTEGER" | "BOOLEAN" | "INT8" => json!(decode!(i64)),
        "REAL" => float(decode!(f64)),
        "BLOB" => base64(&decode!(Vec<u8>)),
        "NULL" => Json::Null,
        _ => Json::String(decode!(String)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        let ndigits = u16::try_from(digits.len()).expect("few digits");
        for w in [ndigits, weight.cast_unsigned(), sign, dscale] {
            out.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_keep_every_digit() {
        // 12345678.9012 = [1234, 5678, 9012] with weight 1
        let n = numeric_bytes(1, 0, 4, &[1234, 5678, 9012]);
        assert_eq!(numeric(&n).expect("reads"), "12345678.9012");
        // -0.0042 = [42] with weight -1, dscale 4
        let n = numeric_bytes(-1, 0x4000, 4, &[42]);
        assert_eq!(numeric(&n).expect("reads"), "-0.0042");
        // 0.00000001 = [1] with weight -2, dscale 8
        let n = numeric_bytes(-2, 0, 8, &[1]);
        assert_eq!(numeric(&n).expect("reads"), "0.00000001");
        // 1e20 = [1] with weight 5, dscale 0
        let n = numeric_bytes(5, 0, 0, &[1]);
        assert_eq!(numeric(&n).expect("reads"), "100000000000000000000");
        // 0.50 keeps its scale
        let n = numeric_bytes(-1, 0, 2, &[5000]);
        assert_eq!(numeric(&n).expect("reads"), "0.50");
        assert_eq!(numeric(&numeric_bytes(0, 0, 0, &[])).expect("zero"), "0");
        assert_eq!(numeric(&numeric_bytes(0, 0xC000, 0, &[])).expect("nan"), "NaN");
        assert!(numeric(&[0, 1, 0]).is_err(), "cut short is an error, not a panic");
    }

    #[test]
    fn uuids_and_intervals_read_as_text() {
        let bytes: Vec<u8> = (0..16).collect();
        assert_eq!(
            uuid(&bytes).expect("16 bytes"),
            "00010203-0405-0607-0809-0a0b0c0d0e0f"
        );
        assert!(uuid(&bytes[..3]).is_err());
        let i = PgInterval {
            months: 14,
            days: 3,
            microseconds: 4 * 3_600_000_000 + 5 * 60_000_000 + 6_500_000,
        };
        assert_eq!(interval(&i), "P1Y2M3DT4H5M6.5S");
        let zero = PgInterval {
            months: 0,
            days: 0,
            microseconds: 0,
        };
        assert_eq!(interval(&zero), "PT0S");
        let negative = PgInterval {
            months: 0,
            days: -1,
            microseconds: -500_000,
        };
        assert_eq!(interval(&negative), "P-1DT-0.5S");
    }
}
