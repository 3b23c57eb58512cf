//! The spec run's cookies on the wire, for every executor that speaks HTTP
//! (`http`, `sse`, the `ws` handshake): the `Cookie` line a request sends
//! (the jar's cookies, a `Cookie` header of the step, the step's `cookies`)
//! and the cookies a response sets, stored in the jar.
//!
//! This module must not own the jar (the spec run's clients do) nor decide
//! when a request sends it: reqwest adds the jar itself to a request without
//! a `Cookie` header, a WebSocket handshake has no client to do that.

use std::collections::BTreeMap;

use planrun_runner::executor::StepError;
use planrun_spec::value::Span;
use reqwest::Url;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, HeaderValue, SET_COOKIE};

/// The jar's cookies for `url` as a `Cookie` line, when it has any.
pub(crate) fn jar_line(jar: &Jar, url: &Url) -> Option<String> {
    jar.cookies(url)
        .and_then(|v| v.to_str().ok().map(str::to_string))
        .filter(|line| !line.is_empty())
}

/// The `Cookie` header of a step's request: the `jar` line, then the step's
/// own `Cookie` header, then its `cookies`. A later value of a name replaces
/// the earlier one in its place. `None` when there is no cookie at all; an
/// invalid name or value is an error at `span` (the step's `cookies`).
pub(crate) fn cookie_header(
    jar: Option<&str>,
    own: Option<&str>,
    cookies: &BTreeMap<String, String>,
    span: &Span,
) -> Result<Option<HeaderValue>, StepError> {
    let mut merged: Vec<(&str, &str)> = Vec::new();
    for pair in jar
        .unwrap_or_default()
        .split(';')
        .chain(own.unwrap_or_default().split(';'))
    {
        if let Some((name, value)) = pair.trim().split_once('=') {
            put(&mut merged, name.trim(), value.trim());
        }
    }
    for (name, value) in cookies {
        put(&mut merged, name, value);
    }
    if merged.is_empty() {
        return Ok(None);
    }
    let line = merged
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    HeaderValue::from_str(&line)
        .map(Some)
        .map_err(|_| StepError::new("a cookie name or value is not valid in HTTP").at(span.clone()))
}

fn put<'a>(cookies: &mut Vec<(&'a str, &'a str)>, name: &'a str, value: &'a str) {
    match cookies.iter_mut().find(|(n, _)| *n == name) {
        Some(existing) => existing.1 = value,
        None => cookies.push((name, value)),
    }
}

/// Stores the cookies `headers` set (`Set-Cookie`) in the jar, as answered
/// by `url` (an `http://` or `https://` URL: the jar knows no other).
/// reqwest does this for `http` and `sse` responses; a handshake needs it.
#[cfg_attr(not(feature = "ws"), allow(dead_code))]
pub(crate) fn store(jar: &Jar, headers: &HeaderMap, url: &Url) {
    jar.set_cookies(&mut headers.get_all(SET_COOKIE).iter(), url);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jar_then_the_header_then_cookies_and_later_values_win_in_place() {
        let cookies = BTreeMap::from([(String::from("session"), String::from("mine"))]);
        let header = cookie_header(
            Some("session=jar; theme=dark"),
            Some("extra=1; theme=light"),
            &cookies,
            &(0..0),
        )
        .unwrap()
        .unwrap();
        assert_eq!(header, "session=mine; theme=light; extra=1");
        assert_eq!(
            cookie_header(None, None, &BTreeMap::new(), &(0..0)).unwrap(),
            None
        );
        let bad = BTreeMap::from([(String::from("a"), String::from("line\nbreak"))]);
        let err = cookie_header(None, None, &bad, &(3..9)).unwrap_err();
        assert_eq!(err.span, Some(3..9));
    }

    #[test]
    fn set_cookie_headers_reach_the_jar() {
        let jar = Jar::default();
        let url = Url::parse("http://127.0.0.1:9/ws/chat/").unwrap();
        let mut headers = HeaderMap::new();
        headers.append(SET_COOKIE, HeaderValue::from_static("a=1; Path=/"));
        headers.append(SET_COOKIE, HeaderValue::from_static("b=2; Path=/"));
        store(&jar, &headers, &url);
        let other = Url::parse("http://127.0.0.1:8000/api/").unwrap();
        let line = jar_line(&jar, &other).unwrap();
        let mut sent: Vec<&str> = line.split("; ").collect();
        sent.sort_unstable();
        assert_eq!(sent, ["a=1", "b=2"]);
    }
}
