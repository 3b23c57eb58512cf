//! The demo's plain HTTP endpoints over real TCP: health (TC-003/004), the index,
//! JSON 404/405, login and sessions (TC-009), message CRUD and static files (TC-010).

mod common;

use common::{call, raw, start};
use planrun_demo::Flavor;
use serde_json::json;

#[tokio::test]
async fn wsgi_health_matches_tc_003() {
    let server = start(Flavor::Wsgi).await;
    let reply = call(server.addr, "GET", "/health/").send().await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("x-served-by"), Some("wsgi"));
    assert_eq!(
        reply.json(),
        json!({
            "status": "healthy",
            "container_type": "wsgi",
            "async_enabled": false,
            "checks": {"database": "ok", "cache": "ok"},
        })
    );
    server.shutdown().await;
}

#[tokio::test]
async fn asgi_health_matches_tc_004() {
    let server = start(Flavor::Asgi).await;
    let reply = call(server.addr, "GET", "/health/").send().await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-served-by"), Some("asgi"));
    assert_eq!(
        reply.json(),
        json!({
            "status": "healthy",
            "container_type": "asgi",
            "async_enabled": true,
            "checks": {"database": "ok", "cache": "ok", "channels": "configured"},
        })
    );
    server.shutdown().await;
}

#[tokio::test]
async fn urls_point_at_the_bound_port() {
    let server = start(Flavor::Wsgi).await;
    let port = server.addr.port();
    assert_ne!(port, 0);
    assert_eq!(server.base_url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(server.ws_url(), format!("ws://127.0.0.1:{port}"));
    assert_eq!(server.flavor(), Flavor::Wsgi);
    server.shutdown().await;
}

#[tokio::test]
async fn index_lists_the_endpoints() {
    let server = start(Flavor::Asgi).await;
    let reply = call(server.addr, "GET", "/").send().await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["container_type"], "asgi");
    let paths: Vec<&str> = body["endpoints"]
        .as_array()
        .expect("endpoints array")
        .iter()
        .map(|endpoint| endpoint["path"].as_str().expect("path"))
        .collect();
    assert!(paths.contains(&"/health/"));
    assert!(paths.contains(&"/ws/chat/session/{id}/"));
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_answer_json() {
    let server = start(Flavor::Wsgi).await;
    let reply = call(server.addr, "GET", "/nope/here?x=1").send().await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.header("x-served-by"), Some("wsgi"));
    assert_eq!(
        reply.json(),
        json!({"error": "not found", "status": 404, "path": "/nope/here"})
    );

    let reply = call(server.addr, "DELETE", "/health/").send().await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("x-served-by"), Some("wsgi"));
    let allow = reply.header("allow").expect("allow header");
    assert!(allow.contains("GET"), "{allow}");
    assert_eq!(reply.json()["status"], 405);
    assert_eq!(reply.json()["method"], "DELETE");

    let reply = call(server.addr, "GET", "/api/auth/login/").send().await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.json()["error"], "method `GET` not allowed");
    server.shutdown().await;
}

#[tokio::test]
async fn login_sets_a_session_cookie_that_me_accepts() {
    let server = start(Flavor::Wsgi).await;
    let reply = call(server.addr, "GET", "/api/auth/me/").send().await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.json(),
        json!({"error": "authentication required", "status": 401})
    );

    let reply = call(server.addr, "POST", "/api/auth/login/")
        .json(&json!({"username": "alice", "password": "secret"}))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    let cookie = reply.header("set-cookie").expect("cookie").to_owned();
    let session_id = reply.json()["session_id"]
        .as_str()
        .expect("session id")
        .to_owned();
    assert_eq!(
        cookie,
        format!("sessionid={session_id}; Path=/; HttpOnly; SameSite=Lax")
    );
    assert_eq!(reply.json()["user"], json!({"username": "alice"}));

    let reply = call(server.addr, "GET", "/api/auth/me/")
        .header("cookie", &format!("theme=dark; {}", reply.cookie_pair()))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"username": "alice", "authenticated": true, "served_by": "wsgi"})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn login_accepts_a_form_body() {
    let server = start(Flavor::Asgi).await;
    let reply = call(server.addr, "POST", "/api/auth/login/")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=bob+smith&password=secret")
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["user"]["username"], "bob smith");
    server.shutdown().await;
}

#[tokio::test]
async fn login_rejects_bad_credentials_and_missing_fields() {
    let server = start(Flavor::Wsgi).await;
    let reply = call(server.addr, "POST", "/api/auth/login/")
        .json(&json!({"username": "alice", "password": "wrong"}))
        .send()
        .await;
    assert_eq!(reply.status, 401);
    assert!(reply.header("set-cookie").is_none());
    assert_eq!(
        reply.json(),
        json!({"error": "invalid username or password", "status": 401})
    );

    let reply = call(server.addr, "POST", "/api/auth/login/")
        .json(&json!({"username": " "}))
        .send()
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json(),
        json!({
            "error": "invalid request",
            "status": 400,
            "fields": {
                "username": "this field may not be blank",
                "password": "this field is required",
            },
        })
    );

    let reply = call(server.addr, "POST", "/api/auth/login/")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["error"]
            .as_str()
            .expect("message")
            .starts_with("invalid JSON body")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_wsgi_session_is_recognised_by_asgi_tc_009() {
    let wsgi = start(Flavor::Wsgi).await;
    let asgi = start(Flavor::Asgi).await;
    let login = call(wsgi.addr, "POST", "/api/auth/login/")
        .json(&json!({"username": "carol", "password": "secret"}))
        .send()
        .await;
    assert_eq!(login.header("x-served-by"), Some("wsgi"));
    let reply = call(asgi.addr, "GET", "/api/auth/me/")
        .header("cookie", &login.cookie_pair())
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-served-by"), Some("asgi"));
    assert_eq!(
        reply.json(),
        json!({"username": "carol", "authenticated": true, "served_by": "asgi"})
    );
    wsgi.shutdown().await;
    asgi.shutdown().await;
}

#[tokio::test]
async fn logout_ends_the_session_everywhere() {
    let wsgi = start(Flavor::Wsgi).await;
    let asgi = start(Flavor::Asgi).await;
    let login = call(wsgi.addr, "POST", "/api/auth/login/")
        .json(&json!({"username": "dave", "password": "secret"}))
        .send()
        .await;
    let cookie = login.cookie_pair();
    let reply = call(asgi.addr, "POST", "/api/auth/logout/")
        .header("cookie", &cookie)
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"logged_out": true, "username": "dave"})
    );
    let expired = reply.header("set-cookie").expect("expiring cookie");
    assert!(expired.starts_with("sessionid=;"), "{expired}");
    assert!(expired.contains("Max-Age=0"), "{expired}");
    for server in [&wsgi, &asgi] {
        let reply = call(server.addr, "GET", "/api/auth/me/")
            .header("cookie", &cookie)
            .send()
            .await;
        assert_eq!(reply.status, 401);
    }
    let reply = call(wsgi.addr, "POST", "/api/auth/logout/").send().await;
    assert_eq!(reply.json()["logged_out"], false);
    wsgi.shutdown().await;
    asgi.shutdown().await;
}

#[tokio::test]
async fn message_crud_round_trip() {
    let server = start(Flavor::Wsgi).await;
    let addr = server.addr;

    let reply = call(addr, "GET", "/api/messages/").send().await;
    assert_eq!(reply.json(), json!({"count": 0, "results": []}));

    let reply = call(addr, "POST", "/api/messages/")
        .json(&json!({"session_id": "s1", "content": "hello"}))
        .send()
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.header("location"), Some("/api/messages/1/"));
    let created = reply.json();
    assert_eq!(created["id"], 1);
    assert_eq!(created["session_id"], "s1");
    assert_eq!(created["content"], "hello");
    assert_eq!(created["author"], json!(null));
    let created_at = created["created_at"].as_str().expect("timestamp");
    assert!(
        created_at.ends_with('Z') && created_at.contains('T'),
        "{created_at}"
    );

    call(addr, "POST", "/api/messages/")
        .json(&json!({"session_id": "s2", "content": "other"}))
        .send()
        .await;

    let reply = call(addr, "GET", "/api/messages/").send().await;
    assert_eq!(reply.json()["count"], 2);
    let reply = call(addr, "GET", "/api/messages/?session_id=s2")
        .send()
        .await;
    assert_eq!(reply.json()["count"], 1);
    assert_eq!(reply.json()["results"][0]["content"], "other");

    let reply = call(addr, "GET", "/api/messages/1/").send().await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), created);

    let reply = call(addr, "PUT", "/api/messages/1/")
        .json(&json!({"session_id": "s9", "content": "replaced"}))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["session_id"], "s9");
    assert_eq!(reply.json()["content"], "replaced");
    assert_eq!(reply.json()["created_at"], created["created_at"]);

    let reply = call(addr, "PATCH", "/api/messages/1/")
        .json(&json!({"content": "patched"}))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["session_id"], "s9");
    assert_eq!(reply.json()["content"], "patched");

    let reply = call(addr, "DELETE", "/api/messages/1/").send().await;
    assert_eq!(reply.status, 204);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("x-served-by"), Some("wsgi"));

    for method in ["GET", "DELETE"] {
        let reply = call(addr, method, "/api/messages/1/").send().await;
        assert_eq!(reply.status, 404, "{method}");
        assert_eq!(
            reply.json(),
            json!({"error": "message `1` not found", "status": 404})
        );
    }
    let reply = call(addr, "PATCH", "/api/messages/1/")
        .json(&json!({"content": "x"}))
        .send()
        .await;
    assert_eq!(reply.status, 404);
    let reply = call(addr, "GET", "/api/messages/abc/").send().await;
    assert_eq!(reply.status, 404);

    // Ids are never reused.
    let reply = call(addr, "POST", "/api/messages/")
        .json(&json!({"session_id": "s1", "content": "again"}))
        .send()
        .await;
    assert_eq!(reply.json()["id"], 3);
    server.shutdown().await;
}

#[tokio::test]
async fn message_validation_names_each_field() {
    let server = start(Flavor::Asgi).await;
    let addr = server.addr;
    let reply = call(addr, "POST", "/api/messages/")
        .json(&json!({"session_id": "s1"}))
        .send()
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json(),
        json!({
            "error": "invalid request",
            "status": 400,
            "fields": {"content": "this field is required"},
        })
    );
    let reply = call(addr, "POST", "/api/messages/")
        .json(&json!({"session_id": 7, "content": "   "}))
        .send()
        .await;
    assert_eq!(
        reply.json()["fields"],
        json!({"session_id": "must be a string", "content": "this field may not be blank"})
    );
    let reply = call(addr, "POST", "/api/messages/")
        .json(&json!(["not", "an", "object"]))
        .send()
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"], "request body must be a JSON object");

    call(addr, "POST", "/api/messages/")
        .json(&json!({"session_id": "s1", "content": "x"}))
        .send()
        .await;
    let reply = call(addr, "PUT", "/api/messages/1/")
        .json(&json!({"content": "only content"}))
        .send()
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json()["fields"],
        json!({"session_id": "this field is required"})
    );
    let reply = call(addr, "PATCH", "/api/messages/1/")
        .json(&json!({"content": ""}))
        .send()
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json()["fields"],
        json!({"content": "this field may not be blank"})
    );

    server.shutdown().await;
}

#[tokio::test]
async fn oversize_bodies_are_refused_before_reading_them() {
    let server = start(Flavor::Wsgi).await;
    // Declares 2 MiB but sends a few bytes: the answer must not wait for the rest.
    let response = raw(
        server.addr,
        b"POST /api/messages/ HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
          content-length: 2097152\r\n\r\n{\"content\": \"",
    )
    .await;
    assert!(
        response.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{response}"
    );
    assert!(
        response.ends_with(r#"{"error":"request body is larger than 1048576 bytes","status":413}"#),
        "{response}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn messages_record_the_logged_in_author() {
    let server = start(Flavor::Wsgi).await;
    let login = call(server.addr, "POST", "/api/auth/login/")
        .json(&json!({"username": "erin", "password": "secret"}))
        .send()
        .await;
    let reply = call(server.addr, "POST", "/api/messages/")
        .header("cookie", &login.cookie_pair())
        .json(&json!({"session_id": "s1", "content": "signed"}))
        .send()
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.json()["author"], "erin");
    server.shutdown().await;
}

#[tokio::test]
async fn messages_belong_to_one_server() {
    let first = start(Flavor::Wsgi).await;
    let second = start(Flavor::Wsgi).await;
    call(first.addr, "POST", "/api/messages/")
        .json(&json!({"session_id": "s", "content": "x"}))
        .send()
        .await;
    let reply = call(second.addr, "GET", "/api/messages/").send().await;
    assert_eq!(reply.json()["count"], 0);
    first.shutdown().await;
    second.shutdown().await;
}

#[tokio::test]
async fn static_css_is_served_with_caching_headers_tc_010() {
    let server = start(Flavor::Wsgi).await;
    let reply = call(server.addr, "GET", "/static/admin/css/base.css")
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(
        reply.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        reply.header("last-modified"),
        Some("Thu, 05 Feb 2026 00:00:00 GMT")
    );
    assert!(reply.text().contains("body {"));
    let etag = reply.header("etag").expect("etag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let reply = call(server.addr, "GET", "/static/admin/css/base.css")
        .header("if-none-match", &etag)
        .send()
        .await;
    assert_eq!(reply.status, 304);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("etag"), Some(etag.as_str()));
    assert_eq!(reply.header("x-served-by"), Some("wsgi"));

    let reply = call(server.addr, "GET", "/static/admin/css/base.css")
        .header("if-none-match", "\"stale\"")
        .send()
        .await;
    assert_eq!(reply.status, 200);

    let reply = call(server.addr, "GET", "/static/admin/css/base.css")
        .header("if-modified-since", "Fri, 06 Feb 2026 00:00:00 GMT")
        .send()
        .await;
    assert_eq!(reply.status, 304);

    let reply = call(server.addr, "HEAD", "/static/admin/css/base.css")
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
    assert_eq!(
        reply.header("content-type"),
        Some("text/css; charset=utf-8")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn other_static_files_have_their_content_types() {
    let server = start(Flavor::Asgi).await;
    for (path, content_type, needle) in [
        ("/static/js/app.js", "application/javascript", "connectChat"),
        ("/static/img/logo.svg", "image/svg+xml", "<svg"),
    ] {
        let reply = call(server.addr, "GET", path).send().await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
        assert!(reply.text().contains(needle), "{path}");
    }
    for path in ["/static/admin/css/missing.css", "/static/../Cargo.toml"] {
        let reply = call(server.addr, "GET", path).send().await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.json()["status"], 404, "{path}");
    }
    server.shutdown().await;
}
