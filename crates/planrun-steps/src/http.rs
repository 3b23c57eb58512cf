//! `http`: one HTTP request and its response as a result document.
//!
//! This module owns turning an [`HttpConfig`] into a request (method, URL,
//! query, headers, cookies, body, redirects, timeout), reading the response
//! under the `max_body` cap, and the shape of the result document. It must not
//! judge the response (a 500 is data for expectations, not an error) and must
//! not keep anything but the spec run's clients and cookie jar between steps.

mod client;
pub(crate) mod cookies;
pub(crate) mod error;
pub(crate) mod text;
pub(crate) mod trust;
pub(crate) mod untrusted;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use planrun_runner::executor::{BoxFuture, SpecContext, StepError, StepExecutor, StepInput};
use planrun_spec::kinds::{Http, HttpConfig, MultipartField};
use planrun_spec::model::StepKind;
use planrun_spec::value::{Span, Value};
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap, HeaderName, HeaderValue, SET_COOKIE};
use reqwest::{Method, Url};
use serde_json::{Map, Value as Json};

use crate::util::{human_size, millis, span_of};
pub(crate) use client::HttpClients;
#[cfg(feature = "ws")]
pub(crate) use client::read_roots;
use client::{Redirects, TlsSettings};

/// Redirects followed when the config does not say.
const DEFAULT_MAX_REDIRECTS: usize = 10;

/// Runs `http` steps.
///
/// Result document:
///
/// ```json
/// {"status": 200, "version": "HTTP/1.1", "url": "<final URL>",
///  "headers": {"content-type": "…"}, "cookies": {"name": "value"},
///  "body": "<text>", "json": <parsed body or null>, "size": <bytes>,
///  "body_error": "<why body is null>" (only then),
///  "redirects": 0, "duration": <ms>, "timings": {"ttfb": <ms>, "total": <ms>},
///  "request": {"method": "GET", "url": "…", "headers": {…}, "body": "<text>"}}
/// ```
///
/// `request.body`, present when the request has one, is its first 16 KiB
/// (a note for binary data or a multipart form); the headers are those the
/// step set (with `authorization` for `basic_auth`), not the cookies the
/// spec run's jar adds as the request goes out. The runner hides a header
/// that holds a secret whole.
///
/// Header names are lowercase; a repeated header is joined with `, `, except
/// `set-cookie`, joined with a newline. `cookies` are those set by the final
/// response. All cookies go to the spec run's jar and are sent by later steps.
#[derive(Debug, Default, Clone, Copy)]
pub struct HttpExecutor;

impl HttpExecutor {
    /// The executor.
    pub fn new() -> Self {
        Self
    }
}

impl StepExecutor for HttpExecutor {
    fn kind(&self) -> StepKind {
        StepKind::Http
    }

    fn execute<'a>(
        &'a self,
        input: StepInput<'a>,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>> {
        Box::pin(run(input))
    }
}

async fn run(input: StepInput<'_>) -> Result<serde_json::Value, StepError> {
    let value = input.config;
    let config: HttpConfig = crate::util::config::<Http>(value)?;
    let timeout = config
        .timeout
        .map_or(input.timeout, |t| t.0.min(input.timeout));
    let BuiltRequest {
        client,
        request,
        doc: request_doc,
        url,
        url_span,
    } = build_request(&config, value, input.ctx, Some(timeout), &[]).await?;

    let max_body = config.max_body.map_or(input.max_body, |b| b.0);
    let redirects = Redirects::new(
        config.follow_redirects.unwrap_or(true),
        config.max_redirects.unwrap_or(DEFAULT_MAX_REDIRECTS),
    );
    let started = Instant::now();
    let (outcome, redirects) = redirects
        .scope(async {
            let response = client.execute(request).await?;
            let ttfb = started.elapsed();
            Ok::<_, reqwest::Error>((response, ttfb))
        })
        .await;
    let url_str = url.as_str();
    let (mut response, ttfb) = outcome.map_err(|err| {
        let origin = error::url_origin(input.written(&url_span));
        error::request_error(&err, url_str, &origin, timeout).at(url_span.clone())
    })?;

    let status = response.status().as_u16();
    let version = format!("{:?}", response.version());
    let final_url = response.url().to_string();
    let headers = headers_doc(response.headers());
    let cookies: Map<String, Json> = response
        .cookies()
        .map(|c| (c.name().to_string(), Json::from(c.value())))
        .collect();

    let body = read_body(
        &mut response,
        &BodyRead {
            url: &final_url,
            max_body,
            limit: timeout,
            headers_after: ttfb,
            deadline: None,
        },
    )
    .await
    .map_err(|e| e.at(url_span.clone()))?;
    let total = started.elapsed();
    let size = body.len();
    let content_type = headers.get("content-type").and_then(Json::as_str);
    let body = text::BodyFields::of(body, content_type);
    // built in place: `json!` would serialize every nested document again
    let mut timings = Map::with_capacity(2);
    timings.insert("ttfb".into(), Json::from(millis(ttfb)));
    timings.insert("total".into(), Json::from(millis(total)));
    let mut doc = Map::with_capacity(12);
    doc.insert("status".into(), Json::from(status));
    doc.insert("version".into(), Json::String(version));
    doc.insert("url".into(), Json::String(final_url));
    doc.insert("headers".into(), Json::Object(headers));
    doc.insert("cookies".into(), Json::Object(cookies));
    doc.insert("body".into(), body.body);
    doc.insert("json".into(), body.json);
    if let Some(reason) = body.error {
        doc.insert("body_error".into(), Json::String(reason));
    }
    doc.insert("size".into(), Json::from(size));
    doc.insert("redirects".into(), Json::from(redirects));
    doc.insert("duration".into(), Json::from(millis(total)));
    doc.insert("timings".into(), Json::Object(timings));
    doc.insert("request".into(), request_doc);
    Ok(Json::Object(doc))
}

/// A request built from an `http`-style configuration, ready to send.
pub(crate) struct BuiltRequest {
    /// The spec run's client for the request's TLS settings (it holds the jar).
    pub(crate) client: reqwest::Client,
    /// The request.
    pub(crate) request: reqwest::Request,
    /// `{"method", "url", "headers"}` as the request goes out.
    pub(crate) doc: serde_json::Value,
    /// The URL with the query added, for messages.
    pub(crate) url: Url,
    /// Where the URL was written.
    pub(crate) url_span: Span,
}

/// Builds the request of an `http`-style configuration: method and URL,
/// query, headers (cookies merged with the spec run's jar), body and the
/// client for its TLS settings. `defaults` are headers added unless the
/// configuration sets them; `timeout` limits the whole exchange when given.
///
/// Shared by the executors that start with an HTTP request (`http`, `sse`).
pub(crate) async fn build_request(
    config: &HttpConfig,
    value: &Value,
    ctx: &SpecContext,
    timeout: Option<Duration>,
    defaults: &[(HeaderName, &'static str)],
) -> Result<BuiltRequest, StepError> {
    let (method, url_text) = config
        .method_url()
        .map_err(|problem| StepError::new(problem.message).at(value.span.clone()))?;
    // one body at most: the kind's check said so when the config was read
    let url_span = url_span(value, url_text);
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| {
        StepError::new(format!("`{method}` is not an HTTP method")).at(span_of(value, "method"))
    })?;
    let mut url = parse_url(url_text, &url_span)?;
    append_query(&mut url, &config.query);

    let clients = HttpClients::of(ctx)?;
    let settings = TlsSettings {
        insecure: config.insecure,
        ca_cert: config.ca_cert.as_ref().map(|p| ctx.base_dir().join(p)),
    };
    let client = clients
        .client(&settings)
        .await
        .map_err(|e| e.at(span_of(value, "ca_cert")))?;

    let mut headers = request_headers(config, value, clients.jar(), &url)?;
    for (name, default) in defaults {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), HeaderValue::from_static(default));
        }
    }
    let mut builder = client.request(method, url.clone()).headers(headers);
    if let Some(auth) = &config.basic_auth {
        // the kind's check refused an `Authorization` header beside it
        builder = builder.basic_auth(&auth.user, Some(&auth.password));
    }
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    builder = attach_body(builder, config, value, ctx.base_dir()).await?;
    let request = builder.build().map_err(|err| {
        StepError::new(format!("cannot build the request: {}", error::chain(&err)))
            .at(value.span.clone())
    })?;
    let mut doc = Map::with_capacity(4);
    doc.insert("method".into(), Json::from(request.method().as_str()));
    doc.insert("url".into(), Json::from(request.url().as_str()));
    doc.insert(
        "headers".into(),
        Json::Object(headers_doc(request.headers())),
    );
    if let Some(body) = request.body() {
        doc.insert("body".into(), Json::String(body_text(body.as_bytes())));
    }
    let doc = Json::Object(doc);
    Ok(BuiltRequest {
        client,
        request,
        doc,
        url,
        url_span,
    })
}

/// A request body as text for the result document, or a note for bytes that
/// are no text and for a body only known as it is sent (multipart). It is
/// kept whole: the runner hides secrets in it first and cuts it after, so
/// that a cut never leaves part of a secret.
fn body_text(bytes: Option<&[u8]>) -> String {
    let Some(bytes) = bytes else {
        return String::from("<streamed body (multipart)>");
    };
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => format!("<{} of binary data>", human_size(bytes.len() as u64)),
    }
}

/// The span of the URL's value (`get = "…"` or `url = "…"`).
fn url_span(config: &Value, url: &str) -> Span {
    [
        "get", "post", "put", "patch", "delete", "head", "options", "url",
    ]
    .iter()
    .filter_map(|key| config.get(key))
    .find(|v| v.as_str() == Some(url))
    .map_or_else(|| config.span.clone(), |v| v.span.clone())
}

fn parse_url(text: &str, span: &Span) -> Result<Url, StepError> {
    // steps often repeat the URL of the step before: reuse its parse (a URL
    // parse runs the host through IDNA, which costs more than the clone)
    thread_local! {
        static LAST: RefCell<Option<(String, Url)>> = const { RefCell::new(None) };
    }
    if let Some(url) = LAST.with_borrow(|last| {
        last.as_ref()
            .filter(|(t, _)| t == text)
            .map(|(_, u)| u.clone())
    }) {
        return Ok(url);
    }
    let url = parse_new_url(text, span)?;
    LAST.set(Some((text.to_string(), url.clone())));
    Ok(url)
}

fn parse_new_url(text: &str, span: &Span) -> Result<Url, StepError> {
    if !text.contains("://") {
        return Err(StepError::new(format!(
            "`{text}` is not a valid URL: it does not start with `http://` or `https://`"
        ))
        .at(span.clone())
        .help("a URL needs a scheme and a host, e.g. `http://127.0.0.1:8000/health/` or `{{ base_url }}/health/`"));
    }
    let url = Url::parse(text).map_err(|err| {
        StepError::new(format!("`{text}` is not a valid URL: {err}"))
            .at(span.clone())
            .help("check the URL's syntax")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(
            StepError::new(format!("`{text}` is not an http:// or https:// URL")).at(span.clone()),
        );
    }
    Ok(url)
}

/// A query or form value as text: strings as they are, numbers and booleans
/// as written, null as empty, lists and tables as JSON.
fn field_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Pairs for a query or form; a list repeats its key (`tag=a&tag=b`).
fn pairs(fields: &BTreeMap<String, serde_json::Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, value) in fields {
        match value {
            serde_json::Value::Array(items) => {
                out.extend(items.iter().map(|item| (key.clone(), field_text(item))));
            }
            other => out.push((key.clone(), field_text(other))),
        }
    }
    out
}

fn append_query(url: &mut Url, query: &BTreeMap<String, serde_json::Value>) {
    if query.is_empty() {
        return;
    }
    let pairs = pairs(query);
    let mut serializer = url.query_pairs_mut();
    for (key, value) in &pairs {
        serializer.append_pair(key, value);
    }
}

/// The configured headers, with the cookie header merged when the step adds
/// cookies of its own.
fn request_headers(
    config: &HttpConfig,
    value: &Value,
    jar: &reqwest::cookie::Jar,
    url: &Url,
) -> Result<HeaderMap, StepError> {
    let (mut headers, own_cookie) = step_headers(&config.headers, &span_of(value, "headers"))?;
    if own_cookie.is_some() || !config.cookies.is_empty() {
        // reqwest leaves the jar out when a request has a cookie header of its
        // own, so merge it in
        let jar_line = cookies::jar_line(jar, url);
        let merged = cookies::cookie_header(
            jar_line.as_deref(),
            own_cookie.as_deref(),
            &config.cookies,
            &span_of(value, "cookies"),
        )?;
        if let Some(merged) = merged {
            headers.insert(COOKIE, merged);
        }
    }
    Ok(headers)
}

/// A step's `headers` as a header map, with its `Cookie` header set apart
/// for [`cookies::cookie_header`]; a bad name or value is an error at `span`.
pub(crate) fn step_headers(
    configured: &BTreeMap<String, String>,
    span: &Span,
) -> Result<(HeaderMap, Option<String>), StepError> {
    let mut headers = HeaderMap::new();
    let mut own_cookie = None;
    for (name, text) in configured {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            StepError::new(format!("`{name}` is not a valid header name")).at(span.clone())
        })?;
        if header == COOKIE {
            own_cookie = Some(text.clone());
            continue;
        }
        let header_value = HeaderValue::from_str(text).map_err(|_| {
            StepError::new(format!("the value of header `{name}` is not valid in HTTP (control characters or non-ASCII text)"))
                .at(span.clone())
        })?;
        headers.append(header, header_value);
    }
    Ok((headers, own_cookie))
}

async fn attach_body(
    builder: reqwest::RequestBuilder,
    config: &HttpConfig,
    value: &Value,
    base_dir: &std::path::Path,
) -> Result<reqwest::RequestBuilder, StepError> {
    let has_content_type = config
        .headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case(CONTENT_TYPE.as_str()));
    if let Some(json) = &config.json {
        let bytes = serde_json::to_vec(json).map_err(|err| {
            StepError::new(format!("cannot encode `json`: {err}")).at(span_of(value, "json"))
        })?;
        let builder = if has_content_type {
            builder
        } else {
            builder.header(CONTENT_TYPE, "application/json")
        };
        return Ok(builder.body(bytes));
    }
    if let Some(form) = &config.form {
        return Ok(builder.form(&pairs(form)));
    }
    if let Some(fields) = &config.multipart {
        let span = span_of(value, "multipart");
        let mut form = reqwest::multipart::Form::new();
        for (name, field) in fields {
            form = form.part(
                name.clone(),
                multipart_part(name, field, base_dir, &span).await?,
            );
        }
        return Ok(builder.multipart(form));
    }
    if let Some(body) = &config.body {
        return Ok(builder.body(body.clone()));
    }
    Ok(builder)
}

async fn multipart_part(
    name: &str,
    field: &MultipartField,
    base_dir: &std::path::Path,
    span: &Span,
) -> Result<reqwest::multipart::Part, StepError> {
    let part = match (&field.text, &field.file) {
        (Some(text), None) => reqwest::multipart::Part::text(text.clone()),
        (None, Some(file)) => {
            let path = base_dir.join(file);
            let bytes = tokio::fs::read(&path).await.map_err(|err| {
                StepError::new(format!(
                    "cannot read `{}` for multipart field `{name}`: {err}",
                    path.display()
                ))
                .at(span.clone())
                .help("a relative `file` starts at the spec file's directory")
            })?;
            let file_name = field.filename.clone().unwrap_or_else(|| {
                path.file_name()
                    .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned())
            });
            reqwest::multipart::Part::bytes(bytes).file_name(file_name)
        }
        _ => {
            return Err(StepError::new(format!(
                "multipart field `{name}` needs exactly one of `text` or `file`"
            ))
            .at(span.clone()));
        }
    };
    let part = match (&field.filename, &field.file) {
        (Some(file_name), None) => part.file_name(file_name.clone()),
        _ => part,
    };
    match &field.content_type {
        Some(content_type) => part.mime_str(content_type).map_err(|_| {
            StepError::new(format!(
                "`{content_type}` is not a content type (multipart field `{name}`)"
            ))
            .at(span.clone())
        }),
        None => Ok(part),
    }
}

/// What reading a response body needs to know to say what went wrong.
pub(crate) struct BodyRead<'a> {
    /// The response's URL, for messages.
    pub(crate) url: &'a str,
    /// The cap on the bytes read.
    pub(crate) max_body: u64,
    /// The time limit of the exchange, for messages.
    pub(crate) limit: Duration,
    /// When the headers came, counted from the request.
    pub(crate) headers_after: Duration,
    /// When reading must stop, when the client does not stop it itself
    /// (a request without reqwest's timeout).
    pub(crate) deadline: Option<tokio::time::Instant>,
}

/// Reads the body, stopping as soon as it passes `max_body`. A body that
/// fails says how far it came: the bytes received of those declared, and
/// whether it stalled (the time limit ran out) or was cut (the connection
/// closed).
pub(crate) async fn read_body(
    response: &mut reqwest::Response,
    read: &BodyRead<'_>,
) -> Result<Vec<u8>, StepError> {
    let url = read.url;
    let max_body = read.max_body;
    let too_big = || {
        StepError::new(format!(
            "the response body of `{url}` exceeds the {} cap",
            human_size(max_body)
        ))
        .help("set `max_body` on the step to raise it, e.g. `max_body = \"64MiB\"`")
    };
    let declared = response.content_length();
    if declared.is_some_and(|n| n > max_body) {
        return Err(too_big());
    }
    let chunked = response
        .headers()
        .get(reqwest::header::TRANSFER_ENCODING)
        .is_some_and(|v| v.as_bytes().ends_with(b"chunked"));
    let so_far = |body: &Vec<u8>| error::BodySoFar {
        received: body.len() as u64,
        declared,
        chunked,
    };
    let mut body = Vec::new();
    loop {
        let next = match read.deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, response.chunk()).await {
                Ok(next) => next,
                Err(_) => return Err(error::body_stalled(read, &so_far(&body))),
            },
            None => response.chunk().await,
        };
        let chunk = match next {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(body),
            Err(err) => return Err(error::body_failed(&err, read, &so_far(&body))),
        };
        if (body.len() + chunk.len()) as u64 > max_body {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
}

/// Headers as a document: lowercase names, repeats joined.
pub(crate) fn headers_doc(headers: &HeaderMap) -> Map<String, Json> {
    let mut doc = Map::with_capacity(headers.keys_len());
    // `iter` yields every value of a name before the next name, names in order
    let mut current: Option<(&HeaderName, String)> = None;
    for (name, value) in headers {
        let text = String::from_utf8_lossy(value.as_bytes());
        match &mut current {
            Some((last, joined)) if *last == name => {
                joined.push_str(if *name == SET_COOKIE { "\n" } else { ", " });
                joined.push_str(&text);
            }
            _ => {
                if let Some((last, joined)) = current.replace((name, text.into_owned())) {
                    doc.insert(last.as_str().to_owned(), Json::String(joined));
                }
            }
        }
    }
    if let Some((last, joined)) = current {
        doc.insert(last.as_str().to_owned(), Json::String(joined));
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_values_become_text() {
        let mut url = Url::parse("http://h/p?keep=1").unwrap();
        let query: BTreeMap<String, serde_json::Value> = serde_json::from_value(json!({
            "n": 3, "b": true, "s": "a b", "tags": ["x", "y"], "none": null
        }))
        .unwrap();
        append_query(&mut url, &query);
        assert_eq!(
            url.query(),
            Some("keep=1&b=true&n=3&none=&s=a+b&tags=x&tags=y")
        );
    }

    #[test]
    fn request_bodies_are_text_or_a_note() {
        assert_eq!(body_text(Some(b"a=1")), "a=1");
        assert_eq!(body_text(Some(&[0xff, 0xfe])), "<2 bytes of binary data>");
        assert_eq!(body_text(None), "<streamed body (multipart)>");
    }

    #[test]
    fn repeated_headers_are_joined() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2"));
        headers.append(SET_COOKIE, HeaderValue::from_static("a=1"));
        headers.append(SET_COOKIE, HeaderValue::from_static("b=2"));
        let doc = headers_doc(&headers);
        assert_eq!(doc["x-a"], "1, 2");
        assert_eq!(doc["set-cookie"], "a=1\nb=2");
    }

    #[test]
    fn cookies_merge_with_the_jar_and_step_cookies_win() {
        let jar = reqwest::cookie::Jar::default();
        let url = Url::parse("http://h/").unwrap();
        jar.add_cookie_str("session=jar", &url);
        jar.add_cookie_str("theme=dark", &url);
        let config = HttpConfig {
            get: Some(String::from("http://h/")),
            headers: BTreeMap::from([(String::from("Cookie"), String::from("extra=1"))]),
            cookies: BTreeMap::from([(String::from("session"), String::from("mine"))]),
            ..HttpConfig::default()
        };
        let value = Value::from_json(&json!({}), &(0..0));
        let headers = request_headers(&config, &value, &jar, &url).unwrap();
        let cookie = headers[COOKIE].to_str().unwrap();
        let mut parts: Vec<&str> = cookie.split("; ").collect();
        parts.sort_unstable();
        assert_eq!(parts, ["extra=1", "session=mine", "theme=dark"]);
    }
}
