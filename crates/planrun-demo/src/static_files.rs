//! `/static/{path}`: a few files compiled into the binary, served the way a
//! collectstatic + nginx setup serves them (TC-010): long-lived caching headers,
//! an `ETag`, `Last-Modified` and 304 answers to conditional requests.
//!
//! Owns the embedded files only; it never touches the file system.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "admin/css/base.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../static/admin/css/base.css"),
    },
    Asset {
        path: "js/app.js",
        content_type: "application/javascript",
        body: include_str!("../static/js/app.js"),
    },
    Asset {
        path: "img/logo.svg",
        content_type: "image/svg+xml",
        body: include_str!("../static/img/logo.svg"),
    },
];

/// When the embedded files "changed": the seed plan's date, 2026-02-05T00:00:00Z.
const LAST_MODIFIED_UNIX: u64 = 1_770_249_600;

/// FNV-1a: stable across builds and platforms, which is all an `ETag` needs.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn etag(asset: &Asset) -> String {
    format!("\"{:016x}\"", fnv1a(asset.body.as_bytes()))
}

fn last_modified() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(LAST_MODIFIED_UNIX)
}

/// Whether the client's cached copy is current: `If-None-Match` wins over
/// `If-Modified-Since` (RFC 9110, 13.2.2).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    if let Some(value) = headers.get(header::IF_NONE_MATCH) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        return value.split(',').map(str::trim).any(|candidate| {
            candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
        });
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| httpdate::parse_http_date(value).ok())
        .is_some_and(|since| since >= last_modified())
}

/// `GET /static/{path}`
pub(crate) async fn serve(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.path == path) else {
        return ApiError::new(StatusCode::NOT_FOUND, "static file not found")
            .with("path", format!("/static/{path}"))
            .into_response();
    };
    let etag = etag(asset);
    let cache_headers = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ),
        (
            header::ETAG,
            HeaderValue::from_str(&etag).expect("invariant: hex in quotes is a valid header"),
        ),
        (
            header::LAST_MODIFIED,
            HeaderValue::from_str(&httpdate::fmt_http_date(last_modified()))
                .expect("invariant: an HTTP date is a valid header"),
        ),
    ];
    if not_modified(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, cache_headers).into_response();
    }
    (
        cache_headers,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let tag = "\"abc\"";
        assert!(not_modified(
            &with(header::IF_NONE_MATCH, "\"x\", W/\"abc\""),
            tag
        ));
        assert!(not_modified(&with(header::IF_NONE_MATCH, "*"), tag));
        assert!(!not_modified(&with(header::IF_NONE_MATCH, "\"x\""), tag));
        assert!(!not_modified(&HeaderMap::new(), tag));
    }

    #[test]
    fn if_modified_since_compares_with_the_fixed_date() {
        let tag = "\"abc\"";
        assert!(not_modified(
            &with(header::IF_MODIFIED_SINCE, "Thu, 05 Feb 2026 00:00:00 GMT"),
            tag
        ));
        assert!(!not_modified(
            &with(header::IF_MODIFIED_SINCE, "Wed, 04 Feb 2026 23:59:59 GMT"),
            tag
        ));
    }

    #[test]
    fn every_asset_has_a_distinct_etag() {
        let mut tags: Vec<String> = ASSETS.iter().map(etag).collect();
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), ASSETS.len());
    }
}
