//! `OfficialAccount<ReqwestTransport, MemoryTokenStore>` against wiremock on loopback: every
//! seed function and the authorize-page round trip, with each request checked (method, path,
//! every query parameter), and WeChat answering with an HTML page instead of JSON.

use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};
use wx_core::{
    AppSecret, Error, HttpRequest, HttpTransport, Lang, MemoryTokenStore, OpenId, RefreshToken,
    Scope, WebAccessToken,
};
use wx_official::OfficialAccount;
use wx_reqwest::ReqwestTransport;

use crate::support::{error_text, fast_retry, owned, param, query_pairs, redirect_location};

const APPID: &str = "wx1234567890abcdef";
/// Distinctive, so a leak is found by a substring search.
const SECRET: &str = "S3CR3T-wiremock-app-secret";
const REDIRECT_URI: &str = "https://app.example.com/wechat/callback?from=menu";
const STATE: &str = "s7Kq2x";
const CODE: &str = "0a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P";

type Client = OfficialAccount<ReqwestTransport, MemoryTokenStore>;
/// A request as the server saw it: method, path, query pairs.
type Seen = (String, String, Vec<(String, String)>);

fn client(server: &MockServer) -> (Client, ReqwestTransport) {
    let transport = ReqwestTransport::new().expect("a reqwest client");
    let client = OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .api_base(&server.uri())
        .open_base(&server.uri())
        .retry_policy(fast_retry())
        .build(transport.clone(), MemoryTokenStore::new())
        .expect("valid options");
    (client, transport)
}

/// WeChat's answers: HTTP 200, `text/plain`, JSON body.
fn wechat(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), "text/plain")
}

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

#[tokio::test]
async fn every_seed_function_and_the_authorize_round_trip_over_reqwest() {
    let server = MockServer::start().await;
    let callback = format!("{REDIRECT_URI}&code={CODE}&state={STATE}");
    Mock::given(method("GET"))
        .and(path("/cgi-bin/token"))
        .and(query_param("appid", APPID))
        .respond_with(wechat(&fixture("cgi_bin_token.success.wechatpy.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/connect/oauth2/authorize"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", callback.as_str()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/sns/oauth2/access_token"))
        .respond_with(wechat(&fixture(
            "sns_oauth2_access_token.success.wechatpy.json",
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/sns/userinfo"))
        .respond_with(wechat(&fixture(
            "sns_userinfo.success_sex_as_string.wechatpy.json",
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/sns/oauth2/refresh_token"))
        .respond_with(wechat(
            r#"{"access_token":"WEB-2","expires_in":7200,"refresh_token":"REFRESH-2","openid":"OPENID","scope":"snsapi_userinfo"}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    // The first web token is checked before the refresh, the second after.
    Mock::given(method("GET"))
        .and(path("/sns/auth"))
        .and(query_param("access_token", "ACCESS_TOKEN"))
        .respond_with(wechat(&fixture("sns_auth.success.wechatpy.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/sns/auth"))
        .and(query_param("access_token", "WEB-2"))
        .respond_with(wechat(&fixture("sns_auth.success.wechatpy.json")))
        .expect(1)
        .mount(&server)
        .await;
    let (client, transport) = client(&server);

    // 1. The base token, twice: one request.
    let token = client.access_token().await.expect("a base token");
    assert_eq!(token.secret(), "1234567890");
    let again = client.access_token().await.expect("the cached token");
    assert!(again.ct_eq(&token));

    // 2. The authorize URL, and the page's redirect (a browser's part, played by the transport,
    // which returns the 302 as it came).
    let url = client
        .authorize_url(REDIRECT_URI, Scope::UserInfo, STATE)
        .expect("a valid authorize URL");
    let response = transport
        .send(HttpRequest::get(url.clone()))
        .await
        .expect("the authorize page answers");
    let location = redirect_location(&response);
    assert_eq!(param(&location, "state").as_deref(), Some(STATE));
    assert_eq!(param(&location, "from").as_deref(), Some("menu"));
    let code = param(&location, "code").expect("a code");

    // 3. The OAuth functions.
    let login = client.exchange_code(&code).await.expect("a web token");
    assert_eq!(login.openid.as_str(), "OPENID");
    let user = client
        .user_info(&login.access_token, &login.openid, Lang::En)
        .await
        .expect("a profile");
    assert_eq!(user.nickname, "NICKNAME");
    assert!(
        client
            .check_oauth_token(&login.access_token, &login.openid)
            .await
            .expect("checked")
    );
    let renewed = client
        .refresh_oauth_token(&login.refresh_token)
        .await
        .expect("a renewed web token");
    assert_eq!(renewed.refresh_token.secret(), "REFRESH-2");
    assert!(
        client
            .check_oauth_token(&renewed.access_token, &renewed.openid)
            .await
            .expect("checked")
    );

    // Exactly these requests, in this order, with exactly these parameters.
    let received = server.received_requests().await.expect("recording is on");
    let seen: Vec<Seen> = received
        .iter()
        .map(|r| {
            (
                r.method.to_string(),
                r.url.path().to_owned(),
                query_pairs(&r.url),
            )
        })
        .collect();
    let get = |p: &str, q: &[(&str, &str)]| ("GET".to_owned(), p.to_owned(), owned(q));
    assert_eq!(
        seen,
        vec![
            get(
                "/cgi-bin/token",
                &[
                    ("grant_type", "client_credential"),
                    ("appid", APPID),
                    ("secret", SECRET)
                ]
            ),
            get(
                "/connect/oauth2/authorize",
                &[
                    ("appid", APPID),
                    ("redirect_uri", REDIRECT_URI),
                    ("response_type", "code"),
                    ("scope", "snsapi_userinfo"),
                    ("state", STATE),
                ]
            ),
            get(
                "/sns/oauth2/access_token",
                &[
                    ("appid", APPID),
                    ("secret", SECRET),
                    ("code", CODE),
                    ("grant_type", "authorization_code"),
                ]
            ),
            get(
                "/sns/userinfo",
                &[
                    ("access_token", "ACCESS_TOKEN"),
                    ("openid", "OPENID"),
                    ("lang", "en")
                ]
            ),
            get(
                "/sns/auth",
                &[("access_token", "ACCESS_TOKEN"), ("openid", "OPENID")]
            ),
            get(
                "/sns/oauth2/refresh_token",
                &[
                    ("appid", APPID),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", "REFRESH_TOKEN"),
                ]
            ),
            get(
                "/sns/auth",
                &[("access_token", "WEB-2"), ("openid", "OPENID")]
            ),
        ]
    );
    // The authorize page matches parameters in order; the fragment never goes on the wire.
    assert!(url.ends_with("#wechat_redirect"));
    assert_eq!(
        received[1].url.query(),
        Some(
            "appid=wx1234567890abcdef&redirect_uri=https%3A%2F%2Fapp.example.com%2Fwechat%2Fcallback%3Ffrom%3Dmenu\
             &response_type=code&scope=snsapi_userinfo&state=s7Kq2x"
        )
    );
    server.verify().await;
}

/// A proxy or captive portal answering `200 text/html` instead of WeChat's JSON: a decode error
/// that names the endpoint, with no secret in it, and the request is not repeated.
#[tokio::test]
async fn an_html_body_with_status_200_is_a_decode_error_naming_the_endpoint() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "<!DOCTYPE html><html><head><title>微信</title></head><body>请在微信客户端打开链接</body></html>",
            "text/html; charset=utf-8",
        ))
        .mount(&server)
        .await;
    let (client, _) = client(&server);
    let web = WebAccessToken::new("WEB-TOKEN-SECRET-1");
    let openid = OpenId::new("OPENID");
    let refresh = RefreshToken::new("REFRESH-SECRET-1");

    let outcomes: Vec<(&str, Error)> = vec![
        (
            "cgi-bin/token",
            client.access_token().await.map(drop).expect_err("HTML"),
        ),
        (
            "sns/oauth2/access_token",
            client
                .exchange_code("CODE-SECRET-1")
                .await
                .map(drop)
                .expect_err("HTML"),
        ),
        (
            "sns/oauth2/refresh_token",
            client
                .refresh_oauth_token(&refresh)
                .await
                .map(drop)
                .expect_err("HTML"),
        ),
        (
            "sns/userinfo",
            client
                .user_info(&web, &openid, Lang::ZhCn)
                .await
                .map(drop)
                .expect_err("HTML"),
        ),
        (
            "sns/auth",
            client
                .check_oauth_token(&web, &openid)
                .await
                .map(drop)
                .expect_err("HTML"),
        ),
    ];
    for (endpoint, e) in &outcomes {
        match e {
            Error::Decode(d) => assert_eq!(d.endpoint, *endpoint),
            other => panic!("{endpoint}: expected a decode error, got {other:?}"),
        }
        let text = error_text(e);
        assert!(text.contains(endpoint), "{endpoint}: {text}");
        for secret in [
            SECRET,
            "WEB-TOKEN-SECRET-1",
            "REFRESH-SECRET-1",
            "CODE-SECRET-1",
            "请在",
        ] {
            assert!(!text.contains(secret), "{endpoint}: {secret:?} in {text}");
        }
    }
    // One request per call: a decode error is not retried.
    let received = server.received_requests().await.expect("recording is on");
    let paths: Vec<&str> = received.iter().map(|r| r.url.path()).collect();
    assert_eq!(
        paths,
        [
            "/cgi-bin/token",
            "/sns/oauth2/access_token",
            "/sns/oauth2/refresh_token",
            "/sns/userinfo",
            "/sns/auth"
        ]
    );
}
