//! The `wx-sandbox` binary, started as a process and driven over HTTP only, as a test suite in
//! another language would: config file, admin API, clean stop on SIGTERM.
#![cfg(unix)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::server::{Reply, send_http};
use crate::*;

struct Running {
    child: Child,
    addr: SocketAddr,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

/// Starts the binary with `args` and waits for its "listening on" line.
async fn start_binary(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wx-sandbox"))
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the wx-sandbox binary");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
        .await
        .expect("the binary says where it listens in time")
        .expect("read stdout")
        .expect("a first line");
    let url = first
        .strip_prefix("wx-sandbox listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    Running {
        child,
        addr: url.parse().expect("an address"),
        stdout,
    }
}

impl Running {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let body = body.map(|b| b.to_string());
        send_http(self.addr, method, path, body.as_deref())
            .await
            .expect("an answer")
    }

    async fn get_json(&self, path: &str) -> Value {
        let r = self.call(Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
        serde_json::from_slice(&r.body).expect("JSON")
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self.call(Method::POST, path, Some(body)).await;
        (r.status, serde_json::from_slice(&r.body).expect("JSON"))
    }

    async fn token(&self, appid: &str, secret: &str) -> Value {
        self.get_json(&url_with_query(
            "/cgi-bin/token",
            &[
                ("grant_type", "client_credential"),
                ("appid", appid),
                ("secret", secret),
            ],
        ))
        .await
    }
}

#[tokio::test]
async fn the_binary_runs_from_a_config_file_and_obeys_its_admin_api() {
    let config = std::env::temp_dir().join(format!("wx-sandbox-it-{}.json", std::process::id()));
    let file = json!({
        "seed": 7,
        "apps": [{
            "appid": APP, "secret": SECRET, "name": "Config Shop",
            "users": [{"openid": ALICE, "nickname": "Alice", "sex": 2}]
        }]
    });
    std::fs::write(&config, file.to_string()).expect("write the config");
    let mut sb = start_binary(&[
        "--config",
        config.to_str().expect("utf-8 path"),
        "--port",
        "0",
    ])
    .await;
    let _ = std::fs::remove_file(&config);
    assert_eq!(sb.get_json("/__sandbox/health").await, json!({"ok": true}));

    // The configured app answers as WeChat; the admin API adds another one.
    let first = sb.token(APP, SECRET).await;
    assert_eq!(first["expires_in"], 7200);
    let (status, _) = sb
        .post(
            "/__sandbox/apps",
            json!({"appid": OTHER_APP, "secret": OTHER_SECRET, "users": [{"openid": "o-x"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(sb.token(OTHER_APP, OTHER_SECRET).await["access_token"].is_string());
    let (status, e) = sb
        .post(
            "/__sandbox/apps",
            json!({"appid": OTHER_APP, "secret": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");

    // A user added over HTTP logs in with a code the admin API issued.
    let (status, e) = sb
        .post(
            "/__sandbox/users",
            json!({"appid": APP, "nickname": "No id"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    let (status, _) = sb
        .post(
            "/__sandbox/users",
            json!({"appid": APP, "openid": BOB, "nickname": "Bob"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, code) = sb
        .post(
            "/__sandbox/code",
            json!({"appid": APP, "openid": BOB, "scope": "snsapi_userinfo"}),
        )
        .await;
    let code = code["code"].as_str().expect("a code");
    let exchange = url_with_query(
        "/sns/oauth2/access_token",
        &[
            ("appid", APP),
            ("secret", SECRET),
            ("code", code),
            ("grant_type", "authorization_code"),
        ],
    );
    assert_eq!(sb.get_json(&exchange).await["openid"], BOB);
    assert_eq!(sb.get_json(&exchange).await["errcode"], 40163);

    // A scripted fault on one path, and what was injected.
    let (_, f) = sb
        .post(
            "/__sandbox/faults",
            json!({"path": "/cgi-bin/token", "faults": [{"kind": "busy"}]}),
        )
        .await;
    assert_eq!(f["pending"], 1);
    assert_eq!(sb.token(APP, SECRET).await["errcode"], -1);
    assert_eq!(
        sb.get_json("/__sandbox/faults").await["injected_by_kind"]["busy"],
        1
    );

    // Counters: WeChat paths only, the admin calls are not counted.
    let counts = sb.get_json("/__sandbox/counts").await;
    assert_eq!(counts["paths"]["/cgi-bin/token"], 3, "{counts}");
    assert_eq!(counts["paths"]["/sns/oauth2/access_token"], 2, "{counts}");
    assert_eq!(counts["total"], 5, "{counts}");
    let (_, zero) = sb.post("/__sandbox/counts/reset", json!({})).await;
    assert_eq!(zero["total"], 0);

    // The clock: a replaced token dies after the 5-minute grace period.
    let old = sb.token(APP, SECRET).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    sb.token(APP, SECRET).await;
    let api = url_with_query("/cgi-bin/get_api_domain_ip", &[("access_token", &old)]);
    assert!(
        sb.get_json(&api).await["ip_list"].is_array(),
        "still in its grace period"
    );
    let before = sb.get_json("/__sandbox/clock").await["now"]
        .as_u64()
        .unwrap();
    let (_, now) = sb
        .post("/__sandbox/clock", json!({"advance_secs": 301}))
        .await;
    assert_eq!(now["now"].as_u64(), Some(before + 301));
    assert_eq!(sb.get_json(&api).await["errcode"], 40001);

    // Consent set over HTTP: the authorize page becomes the consent page.
    let (status, _) = sb
        .post(
            "/__sandbox/consent",
            json!({"appid": APP, "consent": "ask"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let authorize = url_with_query(
        "/connect/oauth2/authorize",
        &[
            ("appid", APP),
            ("redirect_uri", "https://app.example.com/cb"),
            ("response_type", "code"),
            ("scope", "snsapi_userinfo"),
            ("state", "s"),
        ],
    );
    let page = sb.call(Method::GET, &authorize, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page.body).contains("Config Shop"));
    let state = sb.get_json("/__sandbox/state").await;
    assert_eq!(state["apps"][0]["consent"], "ask", "{state}");
    assert_eq!(state["apps"][0]["users"][0]["following"], true, "{state}");

    // Inboxes are readable; unknown users and bad requests are plain admin errors.
    let inbox = sb
        .get_json(&format!("/__sandbox/inbox?appid={APP}&openid={ALICE}"))
        .await;
    assert_eq!(inbox["messages"], json!([]));
    let nobody = sb
        .call(
            Method::GET,
            &format!("/__sandbox/inbox?appid={APP}&openid=o-nobody"),
            None,
        )
        .await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    let bad = sb
        .call(
            Method::POST,
            "/__sandbox/clock",
            Some(json!({"advance": 1})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let wrong = sb.call(Method::GET, "/__sandbox/reset", None).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    let unknown = sb.call(Method::GET, "/__sandbox/nope", None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // The push direction: without a server URL WeChat pushes nothing; a bad server is refused.
    let (status, report) = sb
        .post(
            "/__sandbox/act",
            json!({"appid": APP, "openid": ALICE, "action": {"kind": "text", "content": "hi"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["outcome"], "no_server", "{report}");
    assert_eq!(report["msg_type"], "text", "{report}");
    let (status, e) = sb
        .post(
            "/__sandbox/server",
            json!({"appid": APP, "url": "http://127.0.0.1:9/wx", "token": "t", "mode": "safe",
                   "encoding_aes_key": "too-short", "original_id": "gh_x"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    let (status, e) = sb
        .post(
            "/__sandbox/act",
            json!({"appid": APP, "openid": ALICE, "action": {"kind": "dance"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");

    // Reset: back to the config file's set-up.
    let (status, _) = sb.post("/__sandbox/reset", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sb.token(OTHER_APP, OTHER_SECRET).await["errcode"], 40013);
    let counts = sb.get_json("/__sandbox/counts").await;
    assert_eq!(
        counts["total"], 1,
        "only the call after the reset: {counts}"
    );
    let state = sb.get_json("/__sandbox/state").await;
    assert_eq!(state["apps"][0]["consent"], "first_user", "{state}");
    assert_eq!(state["apps"][0]["users"].as_array().map(Vec::len), Some(1));

    // SIGTERM: a clean stop.
    let pid = sb.child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), sb.child.wait())
        .await
        .expect("it stops on SIGTERM")
        .expect("wait");
    assert!(status.success(), "{status:?}");
    let mut rest = Vec::new();
    while let Ok(Some(line)) = sb.stdout.next_line().await {
        rest.push(line);
    }
    assert_eq!(
        rest.last().map(String::as_str),
        Some("wx-sandbox stopped"),
        "{rest:?}"
    );
    assert!(
        !rest.iter().any(|l| l.contains(SECRET)),
        "the secret is never printed"
    );
}
