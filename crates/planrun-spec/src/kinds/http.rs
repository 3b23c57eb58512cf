//! `http`: one HTTP request. Also the request keys every request step
//! shares ([`request_config!`], used by `sse`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{ConfigProblem, EvidenceField, Kind, Problems, method_and_url};
use crate::de::is_template;
use crate::value::{Span, Value};

/// The `http` kind.
pub struct Http;

impl Kind for Http {
    const KEY: &'static str = "http";
    const SUMMARY: &'static str = "One HTTP request; its response is the result: `http = { get = \"{{ base_url }}/health/\" }`.";
    const RESULT_FIELDS: &'static [&'static str] = &[
        "status",
        "version",
        "url",
        "headers",
        "cookies",
        "body",
        "body_error",
        "json",
        "size",
        "redirects",
        "duration",
        "timings",
        "request",
    ];
    const EVIDENCE: &'static [EvidenceField] = &[
        EvidenceField::first("body"),
        EvidenceField::first("body_error"),
    ];
    const PATHS: &'static [&'static str] = &["ca_cert", "multipart.*.file"];
    const INSECURE: Option<&'static str> = Some("insecure");
    type Config = HttpConfig;

    fn check(config: &HttpConfig, problems: &mut Problems) {
        problems.note(config.method_url().map(drop));
        if config.body_count() > 1 {
            problems.push(ConfigProblem::whole(
                "set at most one of `json`, `form`, `multipart`, `body`",
            ));
        }
        problems.note(check_basic_auth(config.basic_auth.as_ref(), &config.headers));
    }

    fn secrets(config: &Value, out: &mut Vec<(String, Span)>) {
        basic_auth_secrets(config, out);
    }
}

/// The keys of a request that every request step (`http`, `sse`) has.
pub const REQUEST_KEYS: [&str; 18] = [
    "get",
    "post",
    "put",
    "patch",
    "delete",
    "method",
    "url",
    "headers",
    "query",
    "json",
    "form",
    "body",
    "cookies",
    "basic_auth",
    "insecure",
    "ca_cert",
    "timeout",
    "max_body",
];

/// HTTP Basic authentication: the request is sent with
/// `Authorization: Basic base64(user:password)`. The password is secret
/// however it is written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name (no `:`).
    pub user: String,
    /// The password: secret, shown as `***` everywhere, even when written
    /// here literally.
    pub password: String,
}

/// The rules of `basic_auth` the types cannot say: a user name without a
/// colon (RFC 7617), and no `Authorization` header beside it.
pub(crate) fn check_basic_auth(
    auth: Option<&BasicAuth>,
    headers: &BTreeMap<String, String>,
) -> Result<(), ConfigProblem> {
    let Some(auth) = auth else {
        return Ok(());
    };
    if auth.user.contains(':') && !is_template(&auth.user) {
        return Err(ConfigProblem::key(
            "basic_auth",
            format!(
                "the `basic_auth` user `{}` holds a `:`, which Basic authentication cannot send",
                auth.user
            ),
        ));
    }
    if headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case("authorization"))
    {
        return Err(ConfigProblem::key(
            "basic_auth",
            "set either `basic_auth` or an `Authorization` header, not both",
        ));
    }
    Ok(())
}

/// The secrets of a request's `basic_auth`: the password, and `user:password`
/// as the `Authorization` header encodes it, each with the password's span.
pub(crate) fn basic_auth_secrets(config: &Value, out: &mut Vec<(String, Span)>) {
    let Some(auth) = config.get("basic_auth") else {
        return;
    };
    let Some(password) = auth.get("password") else {
        return;
    };
    let text = match password.as_str() {
        Some(s) => s.to_string(),
        // a template read as its type (`{{ pin }}` gives a number)
        None => match password.to_json() {
            serde_json::Value::Null => return,
            other => other.to_string(),
        },
    };
    if text.is_empty() {
        return;
    }
    if let Some(user) = auth.get("user").and_then(Value::as_str) {
        out.push((format!("{user}:{text}"), password.span.clone()));
    }
    out.push((text, password.span.clone()));
}

/// Declares a request step's configuration: the keys of [`REQUEST_KEYS`],
/// written once here, then the kind's own. `serde(flatten)` would lose the
/// spans of the shared keys, so they are pasted in instead.
macro_rules! request_config {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        #[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        $(#[$meta])*
        pub struct $name {
            /// GET this URL.
            #[schemars(extend("examples" = ["{{ base_url }}/health/"]))]
            pub get: Option<String>,
            /// POST to this URL.
            pub post: Option<String>,
            /// PUT to this URL.
            pub put: Option<String>,
            /// PATCH this URL.
            pub patch: Option<String>,
            /// DELETE this URL.
            pub delete: Option<String>,
            /// Any method (with `url`).
            pub method: Option<String>,
            /// The URL (with `method`, or alone for GET).
            pub url: Option<String>,
            /// Request headers.
            #[serde(default)]
            #[schemars(extend("examples" = [{"Authorization": "Bearer {{ login.token }}"}]))]
            pub headers: std::collections::BTreeMap<String, String>,
            /// Query parameters added to the URL.
            #[serde(default)]
            pub query: std::collections::BTreeMap<String, serde_json::Value>,
            /// A JSON body (sets `Content-Type: application/json`).
            #[schemars(with = "Option<serde_json::Value>")]
            pub json: Option<serde_json::Value>,
            /// A form body (`application/x-www-form-urlencoded`).
            pub form: Option<std::collections::BTreeMap<String, serde_json::Value>>,
            /// A raw body.
            pub body: Option<String>,
            /// Extra cookies for this request (the spec's cookie jar is sent anyway).
            #[serde(default)]
            pub cookies: std::collections::BTreeMap<String, String>,
            /// HTTP Basic authentication (`Authorization: Basic …`); the
            /// password is secret, however it is written.
            #[schemars(extend("examples" = [{"user": "qa", "password": "{{ password }}"}]))]
            pub basic_auth: Option<$crate::kinds::BasicAuth>,
            /// Accept any TLS certificate. Only for test systems.
            #[serde(default)]
            pub insecure: bool,
            /// A PEM file of extra CA certificates to trust.
            pub ca_cert: Option<String>,
            /// Time limit of the request (default: the step's timeout).
            pub timeout: Option<$crate::duration::Dur>,
            /// Cap on the body read into memory (default: `defaults.max_body`,
            /// else 16 MiB).
            pub max_body: Option<$crate::duration::ByteSize>,
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $name {
            /// The request keys, as an `http` configuration.
            #[must_use]
            pub fn request(&self) -> $crate::kinds::HttpConfig {
                $crate::kinds::HttpConfig {
                    get: self.get.clone(),
                    post: self.post.clone(),
                    put: self.put.clone(),
                    patch: self.patch.clone(),
                    delete: self.delete.clone(),
                    method: self.method.clone(),
                    url: self.url.clone(),
                    headers: self.headers.clone(),
                    query: self.query.clone(),
                    json: self.json.clone(),
                    form: self.form.clone(),
                    body: self.body.clone(),
                    cookies: self.cookies.clone(),
                    basic_auth: self.basic_auth.clone(),
                    insecure: self.insecure,
                    ca_cert: self.ca_cert.clone(),
                    timeout: self.timeout,
                    max_body: self.max_body,
                    ..$crate::kinds::HttpConfig::default()
                }
            }
        }
    };
}
pub(crate) use request_config;

request_config! {
    /// The configuration of an `http` step.
    ///
    /// The method is a key whose value is the URL (`get = "{{ base_url }}/health/"`),
    /// or `method` plus `url` for any other method.
    #[schemars(extend(
        "oneOf" = [
            {"required": ["get"]}, {"required": ["post"]}, {"required": ["put"]},
            {"required": ["patch"]}, {"required": ["delete"]}, {"required": ["head"]},
            {"required": ["options"]}, {"required": ["url"]}
        ],
        "dependentRequired" = {"method": ["url"]}
    ))]
    pub struct HttpConfig {
        /// HEAD this URL.
        pub head: Option<String>,
        /// OPTIONS on this URL.
        pub options: Option<String>,
        /// A multipart body: text fields, or `{ file = "path", content_type = "…" }`.
        pub multipart: Option<BTreeMap<String, MultipartField>>,
        /// Follow redirects (default `true`).
        pub follow_redirects: Option<bool>,
        /// Most redirects followed (default 10).
        pub max_redirects: Option<usize>,
    }
}

/// A multipart field: text, or a file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MultipartField {
    /// Text content.
    pub text: Option<String>,
    /// A file to upload.
    pub file: Option<String>,
    /// The part's content type.
    pub content_type: Option<String>,
    /// The file name sent (default: the file's name).
    pub filename: Option<String>,
}

impl HttpConfig {
    /// The method and URL, or what is wrong with them.
    pub fn method_url(&self) -> Result<(String, &str), ConfigProblem> {
        method_and_url(
            "http",
            "`get = \"{{ base_url }}/health/\"`",
            &[
                ("GET", &self.get),
                ("POST", &self.post),
                ("PUT", &self.put),
                ("PATCH", &self.patch),
                ("DELETE", &self.delete),
                ("HEAD", &self.head),
                ("OPTIONS", &self.options),
            ],
            self.method.as_deref(),
            self.url.as_deref(),
        )
    }

    /// How many body kinds are set (at most one is allowed).
    pub fn body_count(&self) -> usize {
        [
            self.json.is_some(),
            self.form.is_some(),
            self.multipart.is_some(),
            self.body.is_some(),
        ]
        .into_iter()
        .filter(|b| *b)
        .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::SseConfig;

    fn keys<T: JsonSchema>() -> Vec<String> {
        let schema = serde_json::to_value(schemars::schema_for!(T)).expect("schema");
        schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect()
    }

    fn problems(kind: super::super::StepKind, text: &str) -> Vec<String> {
        let doc = crate::parse::parse_toml(text).expect("toml");
        let mut diags = crate::error::Diagnostics::default();
        kind.lower_config(doc.get(kind.key()).expect("the kind"), &mut diags);
        diags.iter().map(|d| d.message.clone()).collect()
    }

    #[test]
    fn basic_auth_is_checked_at_plan_time() {
        use super::super::StepKind;
        for kind in [StepKind::Http, StepKind::Sse] {
            let key = kind.key();
            let ok = format!(
                "{key} = {{ get = \"http://h/\", basic_auth = {{ user = \"qa\", password = \"{{{{ pw }}}}\" }} }}"
            );
            assert!(problems(kind, &ok).is_empty(), "{ok}");
            let colon = format!(
                "{key} = {{ get = \"http://h/\", basic_auth = {{ user = \"q:a\", password = \"x\" }} }}"
            );
            assert_eq!(
                problems(kind, &colon),
                ["the `basic_auth` user `q:a` holds a `:`, which Basic authentication cannot send"]
            );
            let both = format!(
                "{key} = {{ get = \"http://h/\", headers = {{ authorization = \"Bearer t\" }}, basic_auth = {{ user = \"qa\", password = \"x\" }} }}"
            );
            assert_eq!(
                problems(kind, &both),
                ["set either `basic_auth` or an `Authorization` header, not both"]
            );
            let typo = format!(
                "{key} = {{ get = \"http://h/\", basic_auth = {{ user = \"qa\", pasword = \"x\" }} }}"
            );
            let found = problems(kind, &typo);
            assert!(
                found.iter().any(|m| m.contains("`pasword`")),
                "{found:?}"
            );
        }
    }

    #[test]
    fn a_basic_auth_password_is_always_secret() {
        use super::super::StepKind;
        let doc = crate::parse::parse_toml(
            "http = { get = \"http://h/\", basic_auth = { user = \"qa\", password = \"pw\" } }",
        )
        .expect("toml");
        let secrets: Vec<String> = StepKind::Http
            .secrets(doc.get("http").expect("http"))
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(secrets, ["qa:pw", "pw"]);
    }

    #[test]
    fn request_steps_share_the_request_keys() {
        for (kind, keys) in [("http", keys::<HttpConfig>()), ("sse", keys::<SseConfig>())] {
            for key in REQUEST_KEYS {
                assert!(keys.iter().any(|k| k == key), "`{kind}` lacks `{key}`");
            }
        }
    }
}
