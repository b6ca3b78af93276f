//! Each function over real HTTP against wiremock on loopback, with WeChat's `text/plain`
//! content type. Expectations (`expect(n)`) are verified when each server drops.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};
use wx_core::{
    AppSecret, Error, Lang, ManualClock, MemoryTokenStore, OpenId, RefreshToken, Scope,
    WebAccessToken,
};
use wx_official::{Endpoint, OfficialAccount, TokenMode};

use crate::common::*;
use crate::http::TcpTransport;

type HttpClient = OfficialAccount<TcpTransport, MemoryTokenStore>;

fn client_for(server: &MockServer, mode: TokenMode) -> HttpClient {
    OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .api_base(&server.uri())
        .token_mode(mode)
        .retry_policy(fast_retry())
        .clock(Arc::new(ManualClock::starting_now()))
        .build(TcpTransport::default(), MemoryTokenStore::new())
        .expect("client")
}

fn wechat(body: impl AsRef<[u8]>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.as_ref().to_vec(), "text/plain")
}

fn query_of(r: &wiremock::Request) -> Vec<(String, String)> {
    r.url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_token_over_http_single_flight() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/cgi-bin/token"))
        .and(query_param("grant_type", "client_credential"))
        .and(query_param("appid", APPID))
        .and(query_param("secret", SECRET))
        .respond_with(
            wechat(fixture("cgi_bin_token.success.wechatpy.json"))
                .set_delay(Duration::from_millis(50)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(&server, TokenMode::Normal);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let c = client.clone();
        tasks.spawn(async move { c.access_token().await });
    }
    for r in tasks.join_all().await {
        assert_eq!(r.expect("token").secret(), "1234567890");
    }
    let received = server.received_requests().await.expect("recording");
    assert_eq!(
        query_of(&received[0]),
        pairs(&[
            ("grant_type", "client_credential"),
            ("appid", APPID),
            ("secret", SECRET)
        ])
    );
}

#[tokio::test]
async fn stable_token_over_http_posts_json() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/cgi-bin/stable_token"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "grant_type": "client_credential", "appid": APPID, "secret": SECRET, "force_refresh": false
        })))
        .respond_with(wechat(token_body(TOKEN_1, 7200)))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(&server, TokenMode::Stable);
    assert_eq!(
        client.access_token().await.expect("stable").secret(),
        TOKEN_1
    );
    assert_eq!(
        client.access_token().await.expect("cached").secret(),
        TOKEN_1
    );
}

#[tokio::test]
async fn a_rejected_token_is_refreshed_once_over_http() {
    let server = MockServer::start().await;
    Mock::given(path("/cgi-bin/token"))
        .respond_with(wechat(token_body(TOKEN_1, 7200)))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/cgi-bin/token"))
        .respond_with(wechat(token_body(TOKEN_2, 7200)))
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/cgi-bin/get_api_domain_ip"))
        .and(query_param("access_token", TOKEN_1))
        .respond_with(wechat(err_body(42001, "access_token expired")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/cgi-bin/get_api_domain_ip"))
        .and(query_param("access_token", TOKEN_2))
        .respond_with(wechat(r#"{"ip_list":["1.2.3.4"]}"#))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(&server, TokenMode::Normal);
    let v: serde_json::Value = client
        .call_with_token(Endpoint::get("/cgi-bin/get_api_domain_ip"))
        .await
        .expect("retried once");
    assert_eq!(v["ip_list"][0], "1.2.3.4");
}

#[tokio::test]
async fn oauth_functions_over_http() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/sns/oauth2/access_token"))
        .and(query_param("appid", APPID))
        .and(query_param("secret", SECRET))
        .and(query_param("code", "CODE1"))
        .and(query_param("grant_type", "authorization_code"))
        .respond_with(wechat(fixture(
            "sns_oauth2_access_token.success.wechatpy.json",
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/sns/oauth2/access_token"))
        .and(query_param("code", "USED"))
        .respond_with(wechat(err_body(40163, "code been used")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/sns/oauth2/refresh_token"))
        .and(query_param("appid", APPID))
        .and(query_param("grant_type", "refresh_token"))
        .and(query_param("refresh_token", "RT1"))
        .respond_with(wechat(fixture(
            "sns_oauth2_refresh_token.success.wechatpy.json",
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/sns/userinfo"))
        .and(query_param("access_token", "WEB1"))
        .and(query_param("openid", "OPENID"))
        .and(query_param("lang", "en"))
        .respond_with(wechat(fixture(
            "user_info.quirk_raw_control_char_in_nickname.lanrion_weixin_authorize_pr52.json.raw",
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/sns/auth"))
        .and(query_param("access_token", "WEB1"))
        .respond_with(wechat(fixture("sns_auth.success.wechatpy.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/sns/auth"))
        .and(query_param("access_token", "WEB-OLD"))
        .respond_with(wechat(err_body(42001, "access_token expired")))
        .expect(1)
        .mount(&server)
        .await;

    let client = client_for(&server, TokenMode::Normal);
    let login = client.exchange_code("CODE1").await.expect("exchange");
    assert_eq!(login.openid.as_str(), "OPENID");
    let e = client.exchange_code("USED").await.expect_err("used");
    assert!(e.is_login_restart_required());
    let refreshed = client
        .refresh_oauth_token(&RefreshToken::new("RT1"))
        .await
        .expect("refresh");
    assert_eq!(refreshed.refresh_token.secret(), "REFRESH_TOKEN");
    let user = client
        .user_info(
            &WebAccessToken::new("WEB1"),
            &OpenId::new("OPENID"),
            Lang::En,
        )
        .await
        .expect("user");
    assert_eq!(user.nickname, "\u{14}琦娅🍭");
    assert!(
        client
            .check_oauth_token(&WebAccessToken::new("WEB1"), &OpenId::new("OPENID"))
            .await
            .expect("valid")
    );
    assert!(
        !client
            .check_oauth_token(&WebAccessToken::new("WEB-OLD"), &OpenId::new("OPENID"))
            .await
            .expect("expired")
    );
    // The authorize URL needs no server at all.
    let url = client
        .authorize_url("https://example.com/cb", Scope::UserInfo, "st")
        .expect("url");
    assert!(url.starts_with("https://open.weixin.qq.com/connect/oauth2/authorize?appid="));
}

#[tokio::test]
async fn timeouts_are_retried_for_gets_and_reported_typed() {
    let server = MockServer::start().await;
    Mock::given(path("/cgi-bin/token"))
        .respond_with(wechat(token_body(TOKEN_1, 7200)).set_delay(Duration::from_secs(3)))
        .expect(3)
        .mount(&server)
        .await;
    let client = OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .api_base(&server.uri())
        .retry_policy(fast_retry())
        .build(
            TcpTransport {
                timeout: Duration::from_millis(150),
            },
            MemoryTokenStore::new(),
        )
        .expect("client");
    let e = client.access_token().await.expect_err("timeouts");
    assert!(e.transport().is_some_and(|t| t.is_timeout()), "{e:?}");
    assert_no_secrets(&e, &[]);
}

#[tokio::test]
async fn a_refused_connection_is_a_typed_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let client = OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .api_base(&format!("http://127.0.0.1:{port}"))
        .retry_policy(fast_retry())
        .build(TcpTransport::default(), MemoryTokenStore::new())
        .expect("client");
    let e = client.exchange_code("CODE").await.expect_err("refused");
    assert!(
        matches!(e, Error::Transport { endpoint: "sns/oauth2/access_token", ref source } if source.is_connect()),
        "{e:?}"
    );
    assert_no_secrets(&e, &[]);
}
