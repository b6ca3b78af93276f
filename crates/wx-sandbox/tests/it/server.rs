//! The loopback HTTP server: same answers as in process, keep-alive, shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wx_core::ErrCode;
use wx_core::urlenc::url_with_query;

use crate::*;

/// One response read by a real HTTP client.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn to_response(&self) -> HttpResponse {
        let mut r = HttpResponse::new(self.status, self.body.clone());
        r.headers = self.headers.clone();
        r
    }
}

/// Where a hyper client failed.
#[derive(Debug)]
pub(crate) enum ClientFailure {
    /// No response head: the connection closed first.
    NoResponse(hyper::Error),
    /// A head came but the body broke off.
    Body(StatusCode, hyper::Error),
}

/// Sends one request on its own connection with hyper's client.
pub(crate) async fn send_http(
    addr: SocketAddr,
    method: Method,
    path_and_query: &str,
    body: Option<&str>,
) -> Result<Reply, ClientFailure> {
    let stream = TcpStream::connect(addr)
        .await
        .expect("connect to the sandbox");
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut builder = Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", addr.to_string());
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let req = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default().to_owned())))
        .unwrap();
    let resp = sender
        .send_request(req)
        .await
        .map_err(ClientFailure::NoResponse)?;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| ClientFailure::Body(parts.status, e))?
        .to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

pub(crate) async fn http_get(
    addr: SocketAddr,
    path: &str,
    query: &[(&str, &str)],
) -> Result<Reply, ClientFailure> {
    send_http(addr, Method::GET, &url_with_query(path, query), None).await
}

pub(crate) fn token_query() -> [(&'static str, &'static str); 3] {
    [
        ("grant_type", "client_credential"),
        ("appid", APP),
        ("secret", SECRET),
    ]
}

#[tokio::test]
async fn serves_the_same_rules_over_http() {
    let sb = sandbox();
    let server = sb.serve().await.unwrap();
    let addr = server.addr();
    assert_eq!(
        server.base_url(),
        format!("http://127.0.0.1:{}", addr.port())
    );
    assert!(addr.ip().is_loopback());

    let r = http_get(addr, "/cgi-bin/token", &token_query())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get("content-type").unwrap(),
        "application/json; encoding=utf-8"
    );
    let token = json(&r.to_response())["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(sb.current_token(APP).unwrap().secret(), token);

    let bad = http_get(
        addr,
        "/cgi-bin/token",
        &[
            ("grant_type", "client_credential"),
            ("appid", APP),
            ("secret", "x"),
        ],
    )
    .await
    .unwrap();
    assert_error(&bad.to_response(), ErrCode::INVALID_APPSECRET);

    // The stable token takes a JSON body over HTTP; a form body is 41002.
    let body =
        json!({"grant_type": "client_credential", "appid": APP, "secret": SECRET}).to_string();
    let r = send_http(addr, Method::POST, "/cgi-bin/stable_token", Some(&body))
        .await
        .unwrap();
    assert_eq!(json(&r.to_response())["expires_in"], 7200);
    let form = format!("grant_type=client_credential&appid={APP}&secret={SECRET}");
    let r = send_http(addr, Method::POST, "/cgi-bin/stable_token", Some(&form))
        .await
        .unwrap();
    assert_error(&r.to_response(), ErrCode::APPID_MISSING);

    // open.weixin.qq.com paths on the same base URL: the authorize page redirects.
    let r = http_get(
        addr,
        "/connect/oauth2/authorize",
        &[
            ("appid", APP),
            ("redirect_uri", "http://localhost:8080/callback"),
            ("response_type", "code"),
            ("scope", "snsapi_userinfo"),
            ("state", "abc"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::FOUND);
    let location = r
        .headers
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        location.starts_with("http://localhost:8080/callback?code="),
        "{location}"
    );
    assert!(location.ends_with("&state=abc"), "{location}");
    let code = &location
        ["http://localhost:8080/callback?code=".len()..location.len() - "&state=abc".len()];
    let r = http_get(
        addr,
        "/sns/oauth2/access_token",
        &[
            ("appid", APP),
            ("secret", SECRET),
            ("code", code),
            ("grant_type", "authorization_code"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.headers.get("content-type").unwrap(), "text/plain");
    assert_eq!(json(&r.to_response())["openid"], ALICE);

    assert_eq!(sb.count("/cgi-bin/token"), 2);
    assert_eq!(sb.count("/cgi-bin/stable_token"), 2);
    assert_eq!(sb.count("/connect/oauth2/authorize"), 1);
    assert_eq!(sb.count("/sns/oauth2/access_token"), 1);
}

#[tokio::test]
async fn keeps_connections_alive() {
    let sb = sandbox();
    let server = sb.serve().await.unwrap();
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    for _ in 0..3 {
        let req = Request::get(url_with_query("/cgi-bin/token", &token_query()))
            .header("host", "sandbox")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = sender.send_request(req).await.expect("same connection");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("access_token"));
    }
    assert_eq!(sb.count("/cgi-bin/token"), 3);
}

async fn refused_within(addr: SocketAddr, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn shutdown_closes_the_port_and_open_connections() {
    let sb = sandbox();
    let server = sb.serve().await.unwrap();
    let addr = server.addr();
    // An idle keep-alive connection is closed by the shutdown too.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    http_get(addr, "/cgi-bin/token", &token_query())
        .await
        .unwrap();
    server.shutdown().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "port closed after shutdown"
    );
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(2), idle.read(&mut buf))
        .await
        .expect("the idle connection is closed, not left hanging");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
}

#[tokio::test]
async fn dropping_the_server_stops_it() {
    let sb = sandbox();
    let server = sb.serve().await.unwrap();
    let addr = server.addr();
    drop(server);
    assert!(refused_within(addr, Duration::from_secs(2)).await);
    // The sandbox itself lives on: a new server on another port answers.
    let again = sb.serve().await.unwrap();
    assert!(
        http_get(again.addr(), "/cgi-bin/token", &token_query())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn raw_http_1_0_style_request_gets_a_full_answer() {
    let sb = sandbox();
    let server = sb.serve().await.unwrap();
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    let path = url_with_query("/cgi-bin/token", &token_query());
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\"expires_in\":7200"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_clients_get_distinct_tokens_and_exact_counts() {
    let sb = Sandbox::builder()
        .app(APP, SECRET)
        .clock(ManualClock::new(start()))
        .build()
        .unwrap();
    let server = sb.serve().await.unwrap();
    let addr = server.addr();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        tasks.spawn(async move {
            let mut tokens = Vec::new();
            for _ in 0..20 {
                let r = http_get(addr, "/cgi-bin/token", &token_query())
                    .await
                    .unwrap();
                tokens.push(
                    json(&r.to_response())["access_token"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
            tokens
        });
    }
    let mut all = std::collections::HashSet::new();
    while let Some(tokens) = tasks.join_next().await {
        all.extend(tokens.unwrap());
    }
    assert_eq!(all.len(), 640, "every call issued its own token");
    assert_eq!(sb.count("/cgi-bin/token"), 640);
    // Only the newest token is "current"; the others are in their grace period.
    let current = sb.current_token(APP).unwrap();
    assert!(all.contains(current.secret()));
}

/// A `MakeWriter` that appends every log line to a shared buffer.
#[tokio::test]
async fn logs_carry_paths_never_secrets_or_tokens() {
    // Global, not a scoped default: a scoped subscriber loses events whose callsite interest
    // another test's thread cached first (seen as a flaky failure with tests in parallel).
    let captured = wx_core::test_util::CapturedLogs::global();

    let sb = sandbox();
    let server = sb.serve().await.unwrap();
    let addr = server.addr();
    let r = http_get(addr, "/cgi-bin/token", &token_query())
        .await
        .unwrap();
    let token = json(&r.to_response())["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let body =
        json!({"grant_type": "client_credential", "appid": APP, "secret": SECRET}).to_string();
    send_http(addr, Method::POST, "/cgi-bin/stable_token", Some(&body))
        .await
        .unwrap();
    http_get(
        addr,
        "/cgi-bin/ticket/getticket",
        &[("access_token", &token), ("type", "jsapi")],
    )
    .await
    .unwrap();
    let code = sb.issue_code(APP, ALICE, wx_core::Scope::UserInfo).unwrap();
    let r = http_get(
        addr,
        "/sns/oauth2/access_token",
        &[
            ("appid", APP),
            ("secret", SECRET),
            ("code", &code),
            ("grant_type", "authorization_code"),
        ],
    )
    .await
    .unwrap();
    let web = json(&r.to_response());
    let web_token = web["access_token"].as_str().unwrap().to_owned();
    let refresh_token = web["refresh_token"].as_str().unwrap().to_owned();
    http_get(
        addr,
        "/sns/userinfo",
        &[("access_token", &web_token), ("openid", ALICE)],
    )
    .await
    .unwrap();
    http_get(
        addr,
        "/sns/oauth2/refresh_token",
        &[
            ("appid", APP),
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ],
    )
    .await
    .unwrap();
    // In process too.
    get(&sb, "/cgi-bin/token", &token_query()).await;
    server.shutdown().await;

    let log = captured.text();
    assert!(log.contains("/cgi-bin/token"), "{log}");
    assert!(log.contains("/sns/oauth2/refresh_token"), "{log}");
    for secret in [SECRET, &token, &code, &web_token, &refresh_token] {
        assert!(
            !log.contains(secret),
            "a secret leaked into the log:\n{log}"
        );
    }
    assert!(!log.contains("secret="), "{log}");
    assert!(!log.contains("access_token="), "{log}");
}
