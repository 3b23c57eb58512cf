//! Durations and byte sizes as users write them (`500ms`, `2s`, `1m30s`,
//! `10MiB`) and as planrun prints them (`1.5 s`, `2.1 KiB`).

use std::fmt;
use std::time::Duration;

/// Parses `250ms`, `2s`, `1.5s`, `1m30s`, `2h`, `100us`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(String::from("empty duration"));
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("`{text}` has no unit (write `{text}s` or `{text}ms`)"))?;
        if num_len == 0 {
            return Err(format!("`{text}` is not a duration"));
        }
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("`{}` is not a number", &rest[..num_len]))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            unit => {
                return Err(format!(
                    "unknown unit `{unit}` in `{text}` (use us, ms, s, m or h)"
                ));
            }
        };
        total += number * factor;
        rest = &rest[unit_len..];
    }
    if total > MAX_DURATION.as_secs_f64() {
        return Err(format!(
            "`{text}` is longer than planrun waits for anything (at most 7 days)"
        ));
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("`{text}` is out of range"))
}

/// The longest duration a spec may write: long waits are mistakes, and
/// deadlines computed from longer ones would overflow the clock.
pub const MAX_DURATION: Duration = Duration::from_hours(7 * 24);

/// Parses `512`, `64KiB`, `10MiB`, `1GB` into bytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let number: f64 = text[..split]
        .parse()
        .map_err(|_| format!("`{text}` is not a size"))?;
    let factor: f64 = match text[split..].trim() {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        unit => {
            return Err(format!(
                "unknown size unit `{unit}` (use B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    Ok((number * factor) as u64)
}

/// A duration as planrun prints it everywhere (messages, reports), rounded
/// to what a reader needs, a space before the unit:
///
/// - under 10 ms, tenths of a millisecond: `0 ms`, `0.4 ms`, `1.5 ms`, `3 ms`;
/// - under 1 s, whole milliseconds: `12 ms`, `250 ms`;
/// - under 1 min, tenths of a second: `1 s`, `1.5 s`, `12 s`, `59.9 s`;
/// - from 1 min, whole seconds in hours, minutes and seconds, leaving out
///   the parts that are zero: `1 min`, `2 min 5 s`, `1 h 30 s`, `168 h`.
///
/// A value is rounded before its unit is chosen, so `999.7 ms` is `1 s`,
/// never `1000 ms`.
///
/// ```
/// use std::time::Duration;
/// use planrun_spec::duration::human;
///
/// assert_eq!(human(Duration::from_millis(250)), "250 ms");
/// assert_eq!(human(Duration::from_millis(1500)), "1.5 s");
/// assert_eq!(human(Duration::from_secs(125)), "2 min 5 s");
/// ```
pub fn human(d: Duration) -> String {
    let nanos = d.as_nanos();
    let tenths_of_ms = (nanos + 50_000) / 100_000;
    if tenths_of_ms < 100 {
        return tenths(tenths_of_ms, "ms");
    }
    let ms = (nanos + 500_000) / 1_000_000;
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let tenths_of_s = (nanos + 50_000_000) / 100_000_000;
    if tenths_of_s < 600 {
        return tenths(tenths_of_s, "s");
    }
    let secs = (nanos + 500_000_000) / 1_000_000_000;
    let parts: Vec<String> = [
        (secs / 3600, "h"),
        (secs / 60 % 60, "min"),
        (secs % 60, "s"),
    ]
    .into_iter()
    .filter(|&(n, _)| n > 0)
    .map(|(n, unit)| format!("{n} {unit}"))
    .collect();
    parts.join(" ")
}

/// A byte count as planrun prints it in messages and reports: `16 MiB`,
/// `1.5 KiB`, `512 bytes`.
///
/// ```
/// use planrun_spec::duration::human_size;
///
/// assert_eq!(human_size(2150), "2.1 KiB");
/// ```
pub fn human_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{:.1} {unit}", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

/// `15` tenths of `ms` as `1.5 ms`, `30` as `3 ms`.
fn tenths(n: u128, unit: &str) -> String {
    if n.is_multiple_of(10) {
        format!("{} {unit}", n / 10)
    } else {
        format!("{}.{} {unit}", n / 10, n % 10)
    }
}

/// A duration in the form users write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

/// Shown as [`human`] shows it: `250 ms`, `1.5 s`, `2 min 5 s`.
impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&human(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `500ms`, `2s` or `1m30s`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map(Dur).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write `{v}s` or `{v}ms`"
                )))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dur, E> {
                self.visit_i64(v as i64)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write `{v}s` or `{v}ms`"
                )))
            }
        }
        d.deserialize_str(V)
    }
}

/// Written as milliseconds (`1500ms`, `0.25ms`): exact, and read back by
/// [`parse_duration`], which the rounded [`human`] form is not.
impl serde::Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}ms", self.0.as_secs_f64() * 1000.0))
    }
}

impl schemars::JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^\\s*([0-9.]+(us|µs|ms|s|m|h))+\\s*$",
            "description": "A duration with a unit (us, ms, s, m, h): `250ms`, `2s`, `1m30s`, `1h`.",
            "examples": ["500ms", "2s", "1m30s"]
        })
    }
}

/// A byte size in the form users write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as `10MiB` or a number of bytes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_bytes(v).map(ByteSize).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A size in bytes, or with a unit (B, KiB, MiB, GiB, KB, MB, GB): `64KiB`, `10MiB`, `1GB`.",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^\\s*[0-9.]+\\s*(B|KB|kB|MB|GB|KiB|MiB|GiB)?\\s*$"}
            ],
            "examples": ["16MiB", 65536]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(
            parse_duration("7d").unwrap_err(),
            "unknown unit `d` in `7d` (use us, ms, s, m or h)"
        );
        assert_eq!(parse_duration("168h"), Ok(MAX_DURATION));
        assert!(
            parse_duration("3000000000000000h")
                .unwrap_err()
                .contains("at most 7 days")
        );
    }

    #[test]
    fn human_durations() {
        let ms = Duration::from_millis;
        let us = Duration::from_micros;
        for (d, text) in [
            (Duration::ZERO, "0 ms"),
            (us(40), "0 ms"),
            (us(50), "0.1 ms"),
            (us(400), "0.4 ms"),
            (us(1500), "1.5 ms"),
            (ms(3), "3 ms"),
            (us(9940), "9.9 ms"),
            (us(9960), "10 ms"),
            (ms(12), "12 ms"),
            (ms(250), "250 ms"),
            (us(999_400), "999 ms"),
            (us(999_600), "1 s"),
            (ms(1000), "1 s"),
            (ms(1500), "1.5 s"),
            (ms(1234), "1.2 s"),
            (ms(9200), "9.2 s"),
            (ms(12_000), "12 s"),
            (ms(59_940), "59.9 s"),
            (ms(59_960), "1 min"),
            (ms(60_000), "1 min"),
            (ms(125_000), "2 min 5 s"),
            (ms(125_400), "2 min 5 s"),
            (Duration::from_hours(1), "1 h"),
            (Duration::from_secs(3630), "1 h 30 s"),
            (Duration::from_mins(90), "1 h 30 min"),
            (MAX_DURATION, "168 h"),
        ] {
            assert_eq!(human(d), text, "{d:?}");
            assert_eq!(Dur(d).to_string(), text, "{d:?}");
        }
    }

    #[test]
    fn a_serialized_duration_reads_back() {
        for d in [
            Duration::from_micros(250),
            Duration::from_millis(1500),
            MAX_DURATION,
        ] {
            let text = serde_json::to_value(Dur(d)).expect("serializes");
            let text = text.as_str().expect("a string");
            assert_eq!(parse_duration(text), Ok(d), "{text}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("10MiB"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_bytes("512"), Ok(512));
        assert!(parse_bytes("3 lightyears").is_err());
    }
}
