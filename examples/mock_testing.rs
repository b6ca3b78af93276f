//! How to unit-test your own code that calls WeChat: no network, no sandbox, no WeChat account.
//!
//! `wx_core::test_util::MockTransport` (feature `test-util` of `wx-core`, in your
//! `[dev-dependencies]`) answers each request with a canned response and records every request
//! it was sent, so a test can assert both what your code did with WeChat's answer and exactly
//! what it asked. Write your handlers generic over the transport and the store: production
//! passes `ReqwestTransport` and a shared store, tests pass `MockTransport` and
//! `MemoryTokenStore`.
//!
//! In your crate the checks below are `#[tokio::test]` functions (the `tests` module at the end
//! shows that form, and `cargo test` runs it as part of the workspace's `tests/it`); this
//! example also runs them from `main`:
//!
//! ```sh
//! cargo run --example mock_testing
//! ```

#![allow(clippy::print_stdout)] // printing the results is this program's job

use wx_core::test_util::{MockTransport, response};
use wx_core::{
    AppSecret, Error, HttpRequest, HttpResponse, HttpTransport, Lang, MemoryTokenStore, TokenStore,
    TransportErrorKind,
};
use wx_official::OfficialAccount;

// ---------------------------------------------------------------------------------------------
// The application code under test.

/// What the app shows after a WeChat login.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Greeting {
    pub(crate) openid: String,
    pub(crate) text: String,
}

/// Why the login callback failed, as the app's handler sees it.
#[derive(Debug)]
pub(crate) enum LoginError {
    /// The code was already used, has expired or is unknown (the user reloaded the callback
    /// page, or came back too late): send them through the login again.
    RestartLogin,
    /// Anything else: log it (wx errors never hold a secret) and show an error page.
    WeChat(Error),
}

impl From<Error> for LoginError {
    fn from(e: Error) -> Self {
        if e.is_login_restart_required() {
            LoginError::RestartLogin
        } else {
            LoginError::WeChat(e)
        }
    }
}

/// The app's OAuth callback: exchange the `code`, fetch the profile, greet the user.
pub(crate) async fn login_callback<T, S>(
    client: &OfficialAccount<T, S>,
    code: &str,
) -> Result<Greeting, LoginError>
where
    T: HttpTransport + 'static,
    S: TokenStore + 'static,
{
    let login = client.exchange_code(code).await?;
    let user = client
        .user_info(&login.access_token, &login.openid, Lang::ZhCn)
        .await?;
    let text = if user.nickname.is_empty() {
        "Welcome!".to_owned()
    } else {
        format!("Welcome, {}!", user.nickname)
    };
    Ok(Greeting {
        openid: user.openid.into_string(),
        text,
    })
}

// ---------------------------------------------------------------------------------------------
// Its tests.

const APPID: &str = "wx1234567890abcdef";
/// Distinctive, so a test can search every error text for it.
const SECRET: &str = "app-secret-under-test-5f1e9c";

/// Real-shaped answers (from the wechatpy test suite), kept in the repository's fixtures.
const CODE_EXCHANGE_OK: &str =
    include_str!("../tests/fixtures/sns_oauth2_access_token.success.wechatpy.json");
const USERINFO_OK: &str =
    include_str!("../tests/fixtures/sns_userinfo.success_sex_as_string.wechatpy.json");

fn client(mock: &MockTransport) -> OfficialAccount<MockTransport, MemoryTokenStore> {
    OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .build(mock.clone(), MemoryTokenStore::new())
        .expect("valid client options")
}

fn pairs(request: &HttpRequest) -> Vec<(String, String)> {
    request.query_pairs()
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The happy path: the greeting, and exactly the two requests WeChat should see.
pub(crate) async fn greets_the_user_and_sends_exactly_two_requests() {
    let mock = MockTransport::new();
    mock.push_for(
        "/sns/oauth2/access_token",
        HttpResponse::json(CODE_EXCHANGE_OK),
    );
    mock.push_for("/sns/userinfo", HttpResponse::json(USERINFO_OK));

    let greeting = login_callback(&client(&mock), "CODE-from-callback")
        .await
        .expect("login succeeds");
    assert_eq!(
        greeting,
        Greeting {
            openid: "OPENID".to_owned(),
            text: "Welcome, NICKNAME!".to_owned(),
        }
    );

    let sent = mock.requests();
    assert_eq!(sent.len(), 2, "one code exchange and one profile request");
    assert_eq!(sent[0].method, "GET");
    assert_eq!(
        sent[0].url_without_query(),
        "https://api.weixin.qq.com/sns/oauth2/access_token"
    );
    assert_eq!(
        pairs(&sent[0]),
        owned(&[
            ("appid", APPID),
            ("secret", SECRET),
            ("code", "CODE-from-callback"),
            ("grant_type", "authorization_code"),
        ])
    );
    assert_eq!(sent[1].method, "GET");
    assert_eq!(sent[1].path(), "/sns/userinfo");
    // The web token of the code exchange, not a base access token.
    assert_eq!(
        pairs(&sent[1]),
        owned(&[
            ("access_token", "ACCESS_TOKEN"),
            ("openid", "OPENID"),
            ("lang", "zh_CN"),
        ])
    );
    assert_eq!(mock.count("/cgi-bin/token"), 0, "OAuth needs no base token");
}

/// WeChat's "code used / invalid / expired" answers take the "restart login" branch, and the
/// code is not sent again (a code is single-use: a retry could only fail the same way).
pub(crate) async fn a_used_or_expired_code_restarts_the_login() {
    for (errcode, errmsg) in [
        (40163, "code been used"),
        (40029, "invalid code"),
        (42003, "code expired"),
    ] {
        let mock = MockTransport::new();
        mock.push_for(
            "/sns/oauth2/access_token",
            HttpResponse::json(format!(
                r#"{{"errcode":{errcode},"errmsg":"{errmsg}, rid: 6553f100-1a2b3c4d-5e6f7a8b"}}"#
            )),
        );
        let outcome = login_callback(&client(&mock), "CODE-reused").await;
        assert!(
            matches!(outcome, Err(LoginError::RestartLogin)),
            "{errcode}: {outcome:?}"
        );
        assert_eq!(
            mock.total(),
            1,
            "{errcode}: exactly one request, no retry, no profile"
        );
    }
}

/// Other failures reach the handler as typed errors that name the endpoint and never contain
/// the AppSecret or the code (both travel in the query string).
pub(crate) async fn failures_are_typed_and_never_show_the_secret() {
    let mock = MockTransport::new();
    let path = "/sns/oauth2/access_token";
    mock.push_for(
        path,
        HttpResponse::json(r#"{"errcode":40125,"errmsg":"invalid appsecret rid: 6553f100-0-0"}"#),
    );
    mock.push_for(
        path,
        response(502, "<html><body><h1>502 Bad Gateway</h1></body></html>"),
    );
    mock.push_for(
        path,
        response(
            200,
            "<!DOCTYPE html><html><body>请在微信客户端打开链接</body></html>",
        ),
    );
    mock.push_error_for(path, TransportErrorKind::Timeout);
    let client = client(&mock);

    let mut errors = Vec::new();
    for _ in 0..4 {
        match login_callback(&client, "CODE-secretish-77").await {
            Err(LoginError::WeChat(e)) => errors.push(e),
            other => panic!("expected a WeChat error, got {other:?}"),
        }
    }
    assert_eq!(errors[0].api().map(|a| a.code.0), Some(40125));
    assert!(matches!(
        &errors[1],
        Error::HttpStatus { endpoint: "sns/oauth2/access_token", status } if status.as_u16() == 502
    ));
    assert!(matches!(
        &errors[2],
        Error::Decode(d) if d.endpoint == "sns/oauth2/access_token"
    ));
    assert!(errors[3].transport().is_some_and(|t| t.is_timeout()));
    // Not even the 5xx or the timeout were retried: the first try may have used the code.
    assert_eq!(mock.count(path), 4);

    for e in &errors {
        let mut text = format!("{e} | {e:?}");
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            text.push_str(&format!(" | {cause} | {cause:?}"));
            source = cause.source();
        }
        assert!(!text.contains(SECRET), "the AppSecret leaked: {text}");
        assert!(
            !text.contains("CODE-secretish-77"),
            "the code leaked: {text}"
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    greets_the_user_and_sends_exactly_two_requests().await;
    println!("ok  greets the user and sends exactly two requests (path and query checked)");
    a_used_or_expired_code_restarts_the_login().await;
    println!("ok  a used, invalid or expired code (40163, 40029, 42003) restarts the login");
    failures_are_typed_and_never_show_the_secret().await;
    println!("ok  40125, HTTP 502, an HTML page and a timeout are typed errors without the secret");
    println!("All checks passed: this is how your own tests can use MockTransport.");
}

/// The same checks in the form they take in your crate.
#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn greets_the_user_and_sends_exactly_two_requests() {
        super::greets_the_user_and_sends_exactly_two_requests().await;
    }

    #[tokio::test]
    async fn a_used_or_expired_code_restarts_the_login() {
        super::a_used_or_expired_code_restarts_the_login().await;
    }

    #[tokio::test]
    async fn failures_are_typed_and_never_show_the_secret() {
        super::failures_are_typed_and_never_show_the_secret().await;
    }
}
