//! The operators over the items of a stream (events or messages, each with
//! its `offset` in ms): timing (`first_within`, `max_gap`, `incremental`)
//! and sequences (`in_order`, `includes`).
//!
//! An item without an `offset` is a failed check, not a panic: these
//! operators may meet any list. They must not wait or measure time
//! themselves: the executor recorded when each item arrived.

use std::time::Duration;

use planrun_spec::model::{Arg, ArgValue, Matcher};
use serde_json::Value as Json;

use super::diff::{Field, ms_text, show};
use super::operators::as_text;
use super::{Checker, Mismatch, check_matcher, mismatch};

/// Two items of a stream less than this far apart belong to one burst.
pub(crate) const BURST_GAP_MS: f64 = 5.0;

/// When each item of a stream arrived (`offset`, in ms).
fn offsets(items: &[Json]) -> Result<Vec<f64>, Mismatch> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.get("offset").and_then(Json::as_f64).ok_or_else(|| {
                mismatch(
                    format!("item {i} has no `offset`: it is not an event or message of a stream"),
                    "a stream of events",
                )
            })
        })
        .collect()
}

/// How many bursts a stream's arrival times make.
fn bursts(offsets: &[f64]) -> usize {
    if offsets.is_empty() {
        return 0;
    }
    1 + offsets
        .windows(2)
        .filter(|w| w[1] - w[0] >= BURST_GAP_MS)
        .count()
}

/// A duration argument in ms. The outer `Err` is a template that does not
/// render; the inner one a rendered text that is not a duration, reported
/// only once the target is known to be a stream.
pub(super) fn limit_ms(
    limit: &Arg<Duration>,
    cx: &Checker<'_>,
) -> Result<Result<f64, Mismatch>, Mismatch> {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(match limit {
        Arg::Known(d) => Ok(ms(*d)),
        Arg::Template(v) => {
            let text = as_text(&cx.value(v)?);
            Duration::from_text(&text)
                .map(ms)
                .map_err(|e| mismatch(e, "a duration"))
        }
    })
}

/// The items of a stream and when each arrived.
fn arrivals(actual: Option<&Json>) -> Result<(&[Json], Vec<f64>), Mismatch> {
    let Some(Json::Array(items)) = actual else {
        return Err(mismatch(
            format!("expected a list of events, got {}", show(actual)),
            "a list of events",
        ));
    };
    Ok((items, offsets(items)?))
}

/// `first_within`: the first item arrived within `limit` ms.
pub(super) fn first_within(
    limit: Result<f64, Mismatch>,
    actual: Option<&Json>,
) -> Result<String, Mismatch> {
    let (_, at) = arrivals(actual)?;
    let limit = limit?;
    let words = format!("the first within {}", ms_text(limit));
    match at.first() {
        None => Err(mismatch("expected a first item, but none arrived", words)),
        Some(first) if *first <= limit => Ok(words),
        Some(first) => Err(mismatch(
            format!(
                "expected the first within {}, it arrived after {}",
                ms_text(limit),
                ms_text(*first)
            ),
            words,
        )),
    }
}

/// `max_gap`: no two consecutive items arrived more than `limit` ms apart.
pub(super) fn max_gap(
    limit: Result<f64, Mismatch>,
    actual: Option<&Json>,
) -> Result<String, Mismatch> {
    let (_, at) = arrivals(actual)?;
    let limit = limit?;
    let words = format!("gaps of at most {}", ms_text(limit));
    let worst = at
        .windows(2)
        .enumerate()
        .map(|(i, w)| (i + 1, w[1] - w[0]))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    match worst {
        Some((i, gap)) if gap > limit => Err(mismatch(
            format!(
                "expected gaps of at most {}, item {i} came {} after the one before",
                ms_text(limit),
                ms_text(gap)
            ),
            words,
        )),
        _ => Ok(words),
    }
}

/// `incremental`: the items arrived in more than one burst (`want`), or in one.
pub(super) fn incremental(want: bool, actual: Option<&Json>) -> Result<String, Mismatch> {
    let (items, at) = arrivals(actual)?;
    let n = bursts(&at);
    let spread = match (at.first(), at.last()) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    let words = if want {
        "incremental"
    } else {
        "not incremental"
    };
    let holds = n >= 2;
    if holds == want {
        return Ok(String::from(words));
    }
    let seen = match items.len() {
        0 => String::from("no item arrived"),
        1 => String::from("one item arrived"),
        len if holds => {
            format!("{len} items arrived in {n} bursts over {}", ms_text(spread))
        }
        len => format!(
            "all {len} items arrived in one burst (within {})",
            ms_text(spread)
        ),
    };
    Err(mismatch(format!("expected {words}: {seen}"), words))
}

/// A one-line description of a matcher from a list, for messages.
fn describe_wanted(m: &Matcher, cx: &Checker<'_>) -> String {
    match m {
        Matcher::Literal(v) => show(cx.render(v).ok().as_ref()),
        Matcher::Object(entries) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|(k, inner)| format!("{} = {}", k.name, describe_wanted(inner, cx)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
        Matcher::Array(..) | Matcher::Ops(..) => String::from("the matcher"),
    }
}

/// Items matching each matcher appear in that order; others may come between.
pub(super) fn in_order(
    wanted: &[Matcher],
    items: &[Json],
    field: Field,
    cx: &Checker<'_>,
) -> Result<String, Mismatch> {
    let mut next = 0;
    for (k, m) in wanted.iter().enumerate() {
        let found = items[next..]
            .iter()
            .position(|item| check_matcher(m, Some(item), field, cx).is_ok());
        if let Some(pos) = found {
            next += pos + 1;
            continue;
        }
        let place = if next == 0 {
            format!("among the {} items", items.len())
        } else {
            format!("after item {} (of {})", next - 1, items.len())
        };
        let earlier = items[..next]
            .iter()
            .position(|item| check_matcher(m, Some(item), field, cx).is_ok());
        let hint = earlier.map_or_else(String::new, |i| {
            format!("; item {i} matches it, but too early")
        });
        return Err(mismatch(
            format!(
                "in_order: no item matches #{k} {} {place}{hint}",
                describe_wanted(m, cx)
            ),
            format!("{} items in order", wanted.len()),
        ));
    }
    Ok(format!("{} items in order", wanted.len()))
}

/// Each matcher is matched by a different item, in any order (a bipartite
/// matching, so an item that fits two matchers goes where it is needed).
pub(super) fn includes(
    wanted: &[Matcher],
    items: &[Json],
    field: Field,
    cx: &Checker<'_>,
) -> Result<String, Mismatch> {
    let fits: Vec<Vec<usize>> = wanted
        .iter()
        .map(|m| {
            items
                .iter()
                .enumerate()
                .filter(|(_, item)| check_matcher(m, Some(item), field, cx).is_ok())
                .map(|(i, _)| i)
                .collect()
        })
        .collect();
    if let Some(k) = fits.iter().position(Vec::is_empty) {
        return Err(mismatch(
            format!(
                "includes: no item of {} matches #{k} {}",
                items.len(),
                describe_wanted(&wanted[k], cx)
            ),
            format!("{} matching items", wanted.len()),
        ));
    }
    fn augment(
        k: usize,
        fits: &[Vec<usize>],
        owner: &mut [Option<usize>],
        seen: &mut [bool],
    ) -> bool {
        for &i in &fits[k] {
            if seen[i] {
                continue;
            }
            seen[i] = true;
            if owner[i].is_none_or(|other| augment(other, fits, owner, seen)) {
                owner[i] = Some(k);
                return true;
            }
        }
        false
    }
    let mut owner = vec![None; items.len()];
    for k in 0..wanted.len() {
        let mut seen = vec![false; items.len()];
        if !augment(k, &fits, &mut owner, &mut seen) {
            return Err(mismatch(
                format!(
                    "includes: #{k} {} has no item of its own: the items that match it are taken by other matchers",
                    describe_wanted(&wanted[k], cx)
                ),
                format!("{} matching items", wanted.len()),
            ));
        }
    }
    Ok(format!("{} matching items", wanted.len()))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{message, passes, stream};
    use serde_json::json;

    #[test]
    fn stream_timing_operators() {
        let spread = stream(&[12.0, 60.0, 111.0, 112.0]);
        assert!(passes("events", "{ first_within = \"50ms\" }", &spread));
        assert_eq!(
            message("events", "{ first_within = \"10ms\" }", &spread),
            "events: expected the first within 10 ms, it arrived after 12 ms"
        );
        assert!(passes("events", "{ max_gap = \"60ms\" }", &spread));
        assert_eq!(
            message("events", "{ max_gap = \"50ms\" }", &spread),
            "events: expected gaps of at most 50 ms, item 2 came 51 ms after the one before"
        );
        assert!(passes("events", "{ incremental = true }", &spread));
        assert!(!passes("events", "{ incremental = false }", &spread));
        let burst = stream(&[300.0, 300.5, 301.0, 304.9]);
        assert_eq!(
            message("events", "{ incremental = true }", &burst),
            "events: expected incremental: all 4 items arrived in one burst (within 4.9 ms)"
        );
        assert!(passes("events", "{ incremental = false }", &burst));
        assert_eq!(
            message("events", "{ incremental = true }", &stream(&[5.0])),
            "events: expected incremental: one item arrived"
        );
        assert_eq!(
            message("events", "{ first_within = \"1s\" }", &stream(&[])),
            "events: expected a first item, but none arrived"
        );
        assert!(passes("events", "{ max_gap = \"1ms\" }", &stream(&[7.0])));
        assert_eq!(
            message("status", "{ max_gap = \"1s\" }", &json!({"status": [1, 2]})),
            "status: item 0 has no `offset`: it is not an event or message of a stream"
        );
    }

    #[test]
    fn sequences_in_order_and_in_any_order() {
        let doc = stream(&[1.0, 2.0, 3.0, 4.0]);
        assert!(passes(
            "events",
            "{ in_order = [{ type = \"message\" }, { data = \"d2\" }, { type = \"done\" }] }",
            &doc
        ));
        assert_eq!(
            message(
                "events",
                "{ in_order = [{ type = \"done\" }, { data = \"d1\" }] }",
                &doc
            ),
            "events: in_order: no item matches #1 { data = `\"d1\"` } after item 3 (of 4); item 1 matches it, but too early"
        );
        assert!(passes(
            "events",
            "{ includes = [{ type = \"done\" }, { data = \"d0\" }, { type = \"message\" }] }",
            &doc
        ));
        // d0 is a message too: the matching gives each matcher its own item
        assert!(passes(
            "events",
            "{ includes = [{ type = \"message\" }, { type = \"message\" }, { data = \"d0\" }] }",
            &doc
        ));
        assert_eq!(
            message(
                "events",
                "{ includes = [{ type = \"message\" }, { type = \"message\" }, { type = \"message\" }, { type = \"message\" }] }",
                &doc
            ),
            "events: includes: #3 { type = `\"message\"` } has no item of its own: the items that match it are taken by other matchers"
        );
        assert_eq!(
            message("events", "{ includes = [{ type = \"error\" }] }", &doc),
            "events: includes: no item of 4 matches #0 { type = `\"error\"` }"
        );
    }
}
