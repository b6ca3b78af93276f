//! No AppSecret, access token, web token or refresh token in any error text or log line, even
//! at TRACE level, across successes and every kind of failure.

use wx_core::test_util::{CapturedLogs, assert_no_secret, response};
use wx_core::{
    HttpResponse, Lang, OpenId, RefreshToken, TokenStore, TransportErrorKind, WebAccessToken,
};
use wx_official::{Endpoint, TokenMode};

use crate::common::*;

const WEB_TOKEN: &str = "WEB-SECRET-token-777";
const REFRESH: &str = "RT-SECRET-refresh-888";

#[tokio::test(flavor = "current_thread")]
async fn no_secret_in_errors_or_trace_logs() {
    // The process-wide capture: a scoped subscriber misses events whose callsite interest
    // another test's thread cached first (a flaky failure with many tests in parallel). Every
    // test's lines land here, and none may hold a secret either.
    let logs = CapturedLogs::global();

    let secrets = [SECRET, TOKEN_1, TOKEN_2, WEB_TOKEN, REFRESH];
    let mut errors = Vec::new();

    // Base token: success, a rejected token refreshed, retries, a cooldown.
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_2, 7200)));
    s.mock.push_for(
        "/cgi-bin/x",
        HttpResponse::json(err_body(40001, "invalid credential")),
    );
    s.mock
        .push_error_for("/cgi-bin/x", TransportErrorKind::Timeout);
    s.mock.push_for("/cgi-bin/x", response(502, "bad gateway"));
    s.mock.always(
        "/cgi-bin/x",
        HttpResponse::json(err_body(-1, "system error")),
    );
    errors.push(
        s.client
            .call_with_token::<serde_json::Value>(Endpoint::get("/cgi-bin/x"))
            .await
            .expect_err("busy"),
    );
    let s = setup();
    s.mock.push_for(
        TOKEN_PATH,
        HttpResponse::json(err_body(40125, "invalid appsecret")),
    );
    errors.push(s.client.access_token().await.expect_err("40125"));
    errors.push(s.client.access_token().await.expect_err("cooldown"));
    let s = setup_with(|b| b.token_mode(TokenMode::Stable));
    s.mock
        .push_error_for(STABLE_PATH, TransportErrorKind::Timeout);
    errors.push(s.client.access_token().await.expect_err("timeout"));

    // OAuth: every function, failing.
    let s = setup();
    s.mock.push_for(
        "/sns/oauth2/access_token",
        HttpResponse::json(err_body(40029, "invalid code")),
    );
    errors.push(s.client.exchange_code("CODE").await.expect_err("40029"));
    s.mock
        .push_for("/sns/oauth2/refresh_token", response(200, "<html>"));
    errors.push(
        s.client
            .refresh_oauth_token(&RefreshToken::new(REFRESH))
            .await
            .expect_err("html"),
    );
    s.mock.push_for(
        "/sns/userinfo",
        HttpResponse::json(err_body(48001, "api unauthorized")),
    );
    errors.push(
        s.client
            .user_info(
                &WebAccessToken::new(WEB_TOKEN),
                &OpenId::new("o1"),
                Lang::ZhCn,
            )
            .await
            .expect_err("48001"),
    );
    s.mock
        .push_error_for("/sns/auth", TransportErrorKind::BodyTooLarge);
    errors.push(
        s.client
            .check_oauth_token(&WebAccessToken::new(WEB_TOKEN), &OpenId::new("o1"))
            .await
            .expect_err("too large"),
    );
    errors.push(
        s.client
            .user_info(
                &WebAccessToken::new(format!("{WEB_TOKEN}\n")),
                &OpenId::new("o1"),
                Lang::En,
            )
            .await
            .expect_err("invalid input"),
    );

    assert_eq!(errors.len(), 9);
    for e in &errors {
        assert_no_secrets(e, &secrets);
    }
    let text = logs.text();
    assert!(
        text.contains("/cgi-bin/token"),
        "spans record the path:\n{text}"
    );
    assert!(
        text.contains("sns/userinfo"),
        "spans record the endpoint:\n{text}"
    );
    assert!(text.contains("retrying"), "retries are logged:\n{text}");
    assert_no_secret([&text], &secrets);
    assert!(
        !text.contains("secret="),
        "a query string reached the logs:\n{text}"
    );
    assert!(
        !text.contains("access_token="),
        "a query string reached the logs:\n{text}"
    );
}

/// The JS-SDK ticket and the idempotent code exchange (whose store entry holds the web token
/// and the refresh token): nothing secret in errors or TRACE logs, and no code either.
#[tokio::test(flavor = "current_thread")]
async fn no_ticket_code_or_kept_login_in_errors_or_trace_logs() {
    const TICKET: &str = "TK-SECRET-ticket-999";
    const CODE: &str = "CODE-0a1b2c3d4e5f6a7b8c9d";
    // The process-wide capture: a scoped subscriber misses events whose callsite interest
    // another test's thread cached first (a flaky failure with many tests in parallel). Every
    // test's lines land here, and none may hold a secret either.
    let logs = CapturedLogs::global();
    let secrets = [SECRET, TOKEN_1, TOKEN_2, WEB_TOKEN, REFRESH, TICKET, CODE];
    let mut errors = Vec::new();

    let s = setup_with(|b| b.idempotent_code_exchange(std::time::Duration::from_secs(60)));
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_2, 7200)));
    s.mock.push_for(
        "/cgi-bin/ticket/getticket",
        HttpResponse::json(err_body(40001, "invalid credential")),
    );
    s.mock.push_for(
        "/cgi-bin/ticket/getticket",
        HttpResponse::json(format!(
            r#"{{"errcode":0,"errmsg":"ok","ticket":"{TICKET}","expires_in":7200}}"#
        )),
    );
    let ticket = s.client.jsapi_ticket().await.expect("ticket after a retry");
    let config = s
        .client
        .js_sdk_config("https://app.example.com/")
        .await
        .expect("config");
    // A page's report is checked with WeChat, which has no quota left today.
    s.mock.push_for(
        "/cgi-bin/ticket/getticket",
        HttpResponse::json(err_body(45009, "reach max api daily quota limit")),
    );
    errors.push(
        s.client
            .invalidate_jsapi_ticket_for(&config)
            .await
            .expect_err("quota"),
    );
    // Once the kept ticket is gone (from the store, and from the client's local copy at its
    // age bound, well inside the 60 s cooldown), the cooldown refuses to fetch.
    s.store
        .delete(&s.client.token_key(&wx_core::TokenKind::JsapiTicket))
        .await
        .expect("delete");
    s.clock.advance(wx_official::DEFAULT_LOCAL_TOKEN_AGE);
    errors.push(
        s.client
            .js_sdk_config("https://app.example.com/")
            .await
            .expect_err("cooldown"),
    );
    errors.push(
        s.client
            .js_sdk_config("bad url")
            .await
            .expect_err("bad url"),
    );
    assert_eq!(format!("{ticket:?}"), "Ticket([redacted])");

    s.mock.push_for(
        "/sns/oauth2/access_token",
        HttpResponse::json(format!(
            r#"{{"access_token":"{WEB_TOKEN}","expires_in":7200,"refresh_token":"{REFRESH}",
                "openid":"o1","scope":"snsapi_base"}}"#
        )),
    );
    s.mock.push_for(
        "/sns/oauth2/access_token",
        HttpResponse::json(err_body(40163, "code been used")),
    );
    let signer = wx_official::StateSigner::new(&[42u8; 32], std::sync::Arc::new(s.clock.clone()))
        .expect("signer");
    let state = signer
        .issue_bound(b"cookie", None, std::time::Duration::from_secs(600))
        .expect("state");
    let verified = signer.verify_bound(&state, b"cookie").expect("authentic");
    let login = s
        .client
        .exchange_code_for(&verified, CODE)
        .await
        .expect("exchanged");
    let again = s
        .client
        .exchange_code_for(&verified, CODE)
        .await
        .expect("kept");
    assert!(login.access_token.ct_eq(&again.access_token));
    s.clock.advance(std::time::Duration::from_secs(61));
    errors.push(
        s.client
            .exchange_code_for(&verified, CODE)
            .await
            .expect_err("40163"),
    );

    assert_eq!(errors.len(), 4);
    for e in &errors {
        assert_no_secrets(e, &secrets);
    }
    let text = logs.text();
    assert!(text.contains("getticket"), "spans record the path:\n{text}");
    assert!(
        text.contains("oauth code exchange") || text.contains("oauth_code:"),
        "{text}"
    );
    assert_no_secret([&text], &secrets);
    for q in ["secret=", "access_token=", "code="] {
        assert!(
            !text.contains(q),
            "a query string reached the logs:\n{text}"
        );
    }
}

/// Uploads and downloads, on the mock and on the sandbox: no AppSecret or access token in any
/// error text, in the Debug of the requests, endpoints, recorded HTTP requests, upload bodies
/// and answers (files included), or in a TRACE log line, across successes and failures.
#[tokio::test(flavor = "current_thread")]
async fn no_secret_in_uploads_downloads_or_their_trace_logs() {
    use wx_core::test_util::error_texts;
    use wx_official::Request as _;
    use wx_official::material::{AddMaterial, GetMaterial};
    use wx_official::media::{GetMedia, MediaFile, MediaType, UploadFile, UploadMedia};

    use crate::media::{JPEG, file_answer};

    let (logs, _guard) = CapturedLogs::start();
    let mut errors = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    let upload = || UploadMedia::new(MediaType::Image, UploadFile::new("a.jpg", JPEG));
    let upload_path = "/cgi-bin/media/upload";
    let get_path = "/cgi-bin/media/get";

    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)))
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_2, 7200)));
    let uploaded = r#"{"type":"image","media_id":"M1","created_at":1}"#;
    // Success; a rejected token replaced once; WeChat's error; a timeout; a 502; a bad file.
    s.mock
        .push_for(upload_path, HttpResponse::json(uploaded))
        .push_for(
            upload_path,
            HttpResponse::json(err_body(40001, "invalid credential")),
        )
        .push_for(upload_path, HttpResponse::json(uploaded))
        .push_for(
            upload_path,
            HttpResponse::json(err_body(41005, "media data missing")),
        )
        .push_error_for(upload_path, TransportErrorKind::Timeout)
        .push_for(upload_path, response(502, "<html>bad gateway</html>"));
    texts.push(format!(
        "{:?}",
        s.client.send(&upload()).await.expect("uploaded")
    ));
    texts.push(format!(
        "{:?}",
        s.client.send(&upload()).await.expect("after 40001")
    ));
    for what in ["41005", "timeout", "502"] {
        errors.push(s.client.send(&upload()).await.expect_err(what));
    }
    let bad = UploadMedia::new(MediaType::Thumb, UploadFile::new("t.png", JPEG));
    errors.push(s.client.send(&bad).await.expect_err("invalid input"));
    let video = AddMaterial::video(UploadFile::new("v.mp4", JPEG), "Title", "Intro");
    s.mock.push_for(
        "/cgi-bin/material/add_material",
        HttpResponse::json(err_body(45001, "material count out of limit")),
    );
    errors.push(s.client.send(&video).await.expect_err("45001"));

    // Downloads: a file; WeChat's error; too large; an HTML page; JSON where a file was due.
    s.mock
        .push_for(get_path, file_answer("image/jpeg", "M1.jpg", JPEG))
        .push_for(
            get_path,
            HttpResponse::json(err_body(40007, "invalid media_id")),
        )
        .push_error_for(get_path, TransportErrorKind::BodyTooLarge)
        .push_for(
            get_path,
            HttpResponse::json(r#"{"video_url":"http://x/v"}"#),
        );
    texts.push(format!(
        "{:?}",
        s.client.send(&GetMedia::new("M1")).await.expect("file")
    ));
    for what in ["40007", "too large"] {
        errors.push(s.client.send(&GetMedia::new("M1")).await.expect_err(what));
    }
    let as_file = Endpoint::get(get_path)
        .query("media_id", "M1")
        .with_base_token();
    errors.push(
        s.client
            .call::<MediaFile>(as_file)
            .await
            .expect_err("not a file"),
    );
    s.mock.push_for(
        "/cgi-bin/material/get_material",
        file_answer("image/png", "M2.png", b"\x89PNG"),
    );
    texts.push(format!(
        "{:?}",
        s.client.send(&GetMaterial::new("M2")).await.expect("file")
    ));

    // A 502 every time: retried (a download is idempotent), then the status.
    s.mock.always(
        "/cgi-bin/material/get_material",
        response(502, "<html>bad gateway</html>"),
    );
    errors.push(
        s.client
            .send(&GetMaterial::new("M2"))
            .await
            .expect_err("502"),
    );

    // What a user may print: the requests, their endpoints, what was sent.
    for r in [
        format!("{:?}", upload()),
        format!("{video:?}"),
        format!("{bad:?}"),
    ] {
        texts.push(r);
    }
    for ep in [
        upload().endpoint(),
        video.endpoint(),
        GetMedia::new("M1").endpoint(),
    ] {
        texts.push(format!("{:?}", ep.expect("valid")));
    }
    let sent = s.mock.requests();
    assert!(
        sent.iter()
            .any(|r| r.query("access_token").as_deref() == Some(TOKEN_2))
    );
    for r in &sent {
        texts.push(format!("{r:?}"));
        texts.push(String::from_utf8_lossy(r.body.as_deref().unwrap_or_default()).into_owned());
    }

    // The same over the sandbox, whose tokens are its own.
    let sb = sandbox_setup_with(|b| b);
    let up = sb.client.send(&upload()).await.expect("uploaded");
    texts.push(format!(
        "{:?}",
        sb.client
            .send(&GetMedia::new(up.media_id))
            .await
            .expect("file")
    ));
    errors.push(
        sb.client
            .send(&GetMedia::new("gone"))
            .await
            .expect_err("40007"),
    );
    let sandbox_token = sb.sandbox.current_token(APPID).expect("issued");

    let secrets = [SECRET, TOKEN_1, TOKEN_2, sandbox_token.secret()];
    assert_eq!(errors.len(), 10);
    for e in &errors {
        assert_no_secret(error_texts(e), &secrets);
    }
    assert_no_secret(&texts, &secrets);
    drop(_guard);
    let text = logs.text();
    for path in [
        "cgi-bin/media/upload",
        "cgi-bin/media/get",
        "cgi-bin/material/get_material",
    ] {
        assert!(text.contains(path), "spans record {path}:\n{text}");
    }
    assert_no_secret([&text], &secrets);
    assert!(
        !text.contains("access_token="),
        "a query string reached the logs:\n{text}"
    );
}
