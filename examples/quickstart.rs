//! The whole wx flow on your machine, no WeChat account and no setup needed:
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! It starts the wx sandbox (a local WeChat simulator) on a loopback port, registers an app and
//! a user there, and walks the seed flow through the production stack,
//! `OfficialAccount<ReqwestTransport, MemoryTokenStore>`, over real HTTP: the base access token
//! (twice: the second one comes from the cache, proven by the sandbox's request counter), the
//! authorize URL, the user's consent, the code exchange, the user's profile, the web-token
//! check, a refresh once the web token has expired, and the check again. Each step prints one
//! line; any failure exits non-zero and says which step failed and why.
//!
//! With `WX_APPID` and `WX_APPSECRET` set, it runs the base-token part against the real WeChat
//! API (`https://api.weixin.qq.com`) instead. That needs a network route to WeChat and this
//! machine's IP in the account's IP whitelist (otherwise WeChat answers 40164).
//!
//! No secret is printed: of tokens and codes, only their length.

#![allow(clippy::print_stdout)] // printing the report is this program's job

use std::error::Error as StdError;
use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wx_core::reexports::async_trait;
use wx_core::reexports::http::{StatusCode, header};
use wx_core::{
    AccessToken, AppSecret, Error, HttpRequest, HttpResponse, HttpTransport, Lang,
    MemoryTokenStore, Scope, TransportError,
};
use wx_official::{DEFAULT_API_BASE, Endpoint, OfficialAccount};
use wx_reqwest::ReqwestTransport;
use wx_sandbox::{Sandbox, UserProfile, paths};

/// The app registered with the sandbox (an AppID in WeChat's format; any secret will do).
pub(crate) const APPID: &str = "wx5a1d0c0ffee0c0de";
const SECRET: &str = "sandbox-appsecret-not-a-real-one";
/// The user who consents on the sandbox's authorize page.
pub(crate) const OPENID: &str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";
const UNIONID: &str = "o6_bmasdasdsad6_2sgVt7hMZOPfL";
pub(crate) const NICKNAME: &str = "Alice";
/// Where the authorize page sends the browser back: your site's OAuth callback. The quickstart
/// plays the browser and does not follow the redirect, so nothing needs to listen there.
const REDIRECT_URI: &str = "https://app.example.com/wechat/callback";

#[tokio::main]
async fn main() -> ExitCode {
    let mut report = Report::new(true);
    let outcome = match real_credentials() {
        Ok(Some((appid, secret))) => run_real(&appid, secret, &mut report).await,
        Ok(None) => run_sandbox(&mut report).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("quickstart FAILED: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// The lines of the report, printed as they come so a failure shows how far it got.
pub(crate) struct Report {
    print: bool,
    pub(crate) lines: Vec<String>,
}

impl Report {
    /// A report that prints its lines (`print`) or only collects them (for a test).
    pub(crate) fn new(print: bool) -> Self {
        Report {
            print,
            lines: Vec::new(),
        }
    }

    fn say(&mut self, line: impl Into<String>) {
        let line = line.into();
        if self.print {
            println!("{line}");
        }
        self.lines.push(line);
    }

    fn step(&mut self, step: &str, what: impl fmt::Display) {
        self.say(format!("  ok  {step:<13} {what}"));
    }
}

/// Which step failed, and why (the SDK's error with its `source()` chain, or a broken
/// expectation).
#[derive(Debug)]
pub(crate) struct Failure {
    step: &'static str,
    error: Box<dyn StdError + Send + Sync>,
    hint: Option<&'static str>,
}

impl Failure {
    fn new(step: &'static str, error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Failure {
            step,
            error: error.into(),
            hint: None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step '{}': {}", self.step, self.error)?;
        let mut source = self.error.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        if let Some(hint) = self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// `result.at("step")?` tags an error with the step it happened in.
trait At<T> {
    fn at(self, step: &'static str) -> Result<T, Failure>;
}

impl<T, E: Into<Box<dyn StdError + Send + Sync>>> At<T> for Result<T, E> {
    fn at(self, step: &'static str) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(step, e))
    }
}

fn ensure(ok: bool, step: &'static str, what: impl FnOnce() -> String) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err(Failure::new(step, what()))
    }
}

/// `WX_APPID` and `WX_APPSECRET`: both set means "use the real API", neither means "sandbox".
fn real_credentials() -> Result<Option<(String, AppSecret)>, Failure> {
    let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    match (var("WX_APPID"), var("WX_APPSECRET")) {
        (Some(appid), Some(secret)) => Ok(Some((
            appid.trim().to_owned(),
            AppSecret::new(secret.trim()),
        ))),
        (None, None) => Ok(None),
        _ => Err(Failure::new(
            "setup",
            "set both WX_APPID and WX_APPSECRET to use the real WeChat API, or neither to use the sandbox",
        )),
    }
}

/// The base token twice: the first call fetches (one request to `/cgi-bin/token`), the second
/// is served from the cache, which `token_requests` (a request counter outside the client)
/// proves.
async fn base_token_steps<T: HttpTransport + 'static>(
    client: &OfficialAccount<T, MemoryTokenStore>,
    token_requests: impl Fn() -> u64,
    counter: &str,
    report: &mut Report,
) -> Result<AccessToken, Failure> {
    let first = client
        .access_token()
        .await
        .map_err(|e| with_hint(Failure::new("base token", e)))?;
    let fetched = token_requests();
    ensure(fetched == 1, "base token", || {
        format!("expected 1 request to /cgi-bin/token, {counter} counted {fetched}")
    })?;
    report.step(
        "base token",
        format_args!(
            "fetched: an access token of {} chars; {counter} counted 1 request to /cgi-bin/token",
            first.secret().len()
        ),
    );

    let second = client.access_token().await.at("base token")?;
    let after = token_requests();
    ensure(second.ct_eq(&first), "base token", || {
        "the second call returned another token instead of the cached one".to_owned()
    })?;
    ensure(after == 1, "base token", || {
        format!(
            "the second call was not served from cache: {counter} counted {after} requests to /cgi-bin/token"
        )
    })?;
    report.step(
        "base token",
        format_args!(
            "second call served from cache: the same token, still 1 request to /cgi-bin/token ({counter} counted)"
        ),
    );
    Ok(first)
}

/// Adds what to do about the usual base-token failures.
fn with_hint(mut failure: Failure) -> Failure {
    let Some(e) = failure.error.downcast_ref::<Error>() else {
        return failure;
    };
    failure.hint = match e.api().map(|a| a.code.0) {
        Some(40164 | 61004) => Some(
            "this machine's IP is not in the account's IP whitelist (mp.weixin.qq.com: Settings and \
             Development > Basic Configuration > IP whitelist); WeChat's message names the IP it saw",
        ),
        Some(40125 | 40001) => Some("WeChat rejected the AppSecret: check WX_APPSECRET"),
        Some(40013) => Some("WeChat does not know this AppID: check WX_APPID"),
        Some(40243) => Some("the AppSecret is frozen; unfreeze it on mp.weixin.qq.com"),
        Some(45009) => Some("the daily token quota is used up; it resets at midnight Beijing time"),
        _ if e.transport().is_some_and(TransportError::is_connect) => Some(
            "could not connect to api.weixin.qq.com: this machine has no route to WeChat \
             (unset WX_APPID/WX_APPSECRET to run the whole flow on the local sandbox)",
        ),
        _ => None,
    };
    failure
}

/// Counts the requests sent through a transport, for the real-API run (where there is no
/// sandbox counter to ask).
#[derive(Clone)]
struct Counted<T> {
    inner: T,
    sent: Arc<AtomicU64>,
}

#[async_trait]
impl<T: HttpTransport> HttpTransport for Counted<T> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        self.inner.send(request).await
    }
}

/// The base-token part against the real WeChat API.
async fn run_real(appid: &str, secret: AppSecret, report: &mut Report) -> Result<(), Failure> {
    report.say(format!(
        "wx quickstart against the REAL WeChat API at {DEFAULT_API_BASE} (WX_APPID={appid}): base token only"
    ));
    let transport = Counted {
        inner: ReqwestTransport::new().at("setup")?,
        sent: Arc::new(AtomicU64::new(0)),
    };
    let client = OfficialAccount::builder(appid, secret)
        .request_deadline(Duration::from_secs(20))
        .build(transport.clone(), MemoryTokenStore::new())
        .at("setup")?;
    let sent = || transport.sent.load(Ordering::SeqCst);
    base_token_steps(&client, sent, "this process's transport", report).await?;
    report.say(
        "The OAuth steps need a user in the WeChat app and your registered callback domain: \
         see examples/oauth_login.rs. Unset WX_APPID/WX_APPSECRET to run them on the sandbox.",
    );
    Ok(())
}

/// What `GET /cgi-bin/get_api_domain_ip` answers: a cheap API that needs the base token.
#[derive(serde::Deserialize)]
struct ApiDomainIps {
    ip_list: Vec<String>,
}

/// The whole seed flow against the sandbox server on loopback.
pub(crate) async fn run_sandbox(report: &mut Report) -> Result<(), Failure> {
    let sandbox = Sandbox::builder()
        .app(APPID, SECRET)
        .user(
            APPID,
            UserProfile::new(OPENID).nickname(NICKNAME).unionid(UNIONID),
        )
        .build()
        .at("setup")?;
    let server = sandbox.serve().await.at("setup")?;
    let base = server.base_url();
    report.say(format!(
        "wx quickstart: WeChat simulated by the wx sandbox at {base} (app {APPID}, user {OPENID} \"{NICKNAME}\")"
    ));

    // The production stack; only the two base URLs point at the sandbox.
    let transport = ReqwestTransport::new().at("setup")?;
    let client = OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .api_base(&base)
        .open_base(&base)
        .build(transport.clone(), MemoryTokenStore::new())
        .at("setup")?;

    base_token_steps(
        &client,
        || sandbox.count(paths::TOKEN),
        "the sandbox",
        report,
    )
    .await?;
    let ips: ApiDomainIps = client
        .call_with_token(Endpoint::get("/cgi-bin/get_api_domain_ip"))
        .await
        .at("api call")?;
    report.step(
        "api call",
        format_args!(
            "cgi-bin/get_api_domain_ip with the cached base token: {} addresses",
            ips.ip_list.len()
        ),
    );

    // Web login. 1: send the browser to the authorize page, with a state to check on return.
    let state = wx_official::jssdk::random_nonce();
    let url = client
        .authorize_url(REDIRECT_URI, Scope::UserInfo, &state)
        .at("authorize URL")?;
    report.step("authorize URL", &url);

    // 2: the user consents. Here the quickstart plays the browser: the transport does not
    // follow redirects, so the sandbox's 302 to the callback comes back as it is.
    let response = transport.send(HttpRequest::get(url)).await.at("consent")?;
    let (code, returned_state) = callback_params(&response).at("consent")?;
    ensure(returned_state == state, "consent", || {
        "the state came back changed: this callback is not the answer to our request".to_owned()
    })?;
    report.step(
        "consent",
        format_args!(
            "{NICKNAME} consented: 302 to {REDIRECT_URI} with a code ({} chars) and our state back",
            code.len()
        ),
    );

    // 3: the callback exchanges the code for the user's web token.
    let login = client.exchange_code(&code).await.at("code exchange")?;
    ensure(login.openid.as_str() == OPENID, "code exchange", || {
        format!("expected openid {OPENID}, got {}", login.openid)
    })?;
    ensure(login.has_scope(Scope::UserInfo), "code exchange", || {
        format!("expected scope snsapi_userinfo, got {}", login.scope)
    })?;
    report.step(
        "code exchange",
        format_args!(
            "openid {}, unionid {}, scope {}: web token {} chars (valid {} s), refresh token {} chars",
            login.openid,
            login.unionid.as_ref().map_or("(none)", |u| u.as_str()),
            login.scope,
            login.access_token.secret().len(),
            login.expires_in,
            login.refresh_token.secret().len(),
        ),
    );

    let user = client
        .user_info(&login.access_token, &login.openid, Lang::ZhCn)
        .await
        .at("user info")?;
    ensure(user.nickname == NICKNAME, "user info", || {
        format!("expected nickname {NICKNAME:?}, got {:?}", user.nickname)
    })?;
    report.step(
        "user info",
        format_args!("nickname {:?}, openid {}", user.nickname, user.openid),
    );

    let valid = client
        .check_oauth_token(&login.access_token, &login.openid)
        .await
        .at("token check")?;
    ensure(valid, "token check", || {
        "WeChat says the new web token is not valid".to_owned()
    })?;
    report.step("token check", "sns/auth says the web token is valid");

    // Time passes (on the sandbox's clock, which only moves when told): the web token expires.
    let later = Duration::from_secs(login.expires_in + 60);
    sandbox.clock().advance(later);
    let valid = client
        .check_oauth_token(&login.access_token, &login.openid)
        .await
        .at("token check")?;
    ensure(!valid, "token check", || {
        format!(
            "the web token should have expired after {} s",
            later.as_secs()
        )
    })?;
    report.step(
        "token check",
        format_args!(
            "{} s later the web token has expired (sns/auth says so): time to refresh",
            later.as_secs()
        ),
    );

    let renewed = client
        .refresh_oauth_token(&login.refresh_token)
        .await
        .at("refresh")?;
    ensure(renewed.openid == login.openid, "refresh", || {
        "the refreshed token belongs to another openid".to_owned()
    })?;
    report.step(
        "refresh",
        format_args!(
            "sns/oauth2/refresh_token gave {} web token ({} chars, valid {} s)",
            if renewed.access_token.ct_eq(&login.access_token) {
                "the same, extended,"
            } else {
                "a new"
            },
            renewed.access_token.secret().len(),
            renewed.expires_in
        ),
    );

    let valid = client
        .check_oauth_token(&renewed.access_token, &renewed.openid)
        .await
        .at("check again")?;
    ensure(valid, "check again", || {
        "the refreshed web token is not valid".to_owned()
    })?;
    report.step(
        "check again",
        "sns/auth says the refreshed web token is valid",
    );

    let counts = sandbox
        .counts()
        .into_iter()
        .map(|(path, n)| format!("{path} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    report.say(format!(
        "All steps passed. Requests the sandbox received: {counts}."
    ));
    server.shutdown().await;
    Ok(())
}

/// The `code` and `state` of the authorize page's redirect to the callback.
fn callback_params(response: &HttpResponse) -> Result<(String, String), String> {
    if response.status != StatusCode::FOUND {
        return Err(format!(
            "expected a 302 redirect to the callback, got HTTP {}",
            response.status
        ));
    }
    let location = response
        .headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or("the 302 has no readable Location header")?;
    let callback = reqwest::Url::parse(location).map_err(|e| format!("bad Location URL: {e}"))?;
    if !callback.as_str().starts_with(REDIRECT_URI) {
        return Err("the redirect goes somewhere other than our redirect_uri".to_owned());
    }
    let param = |name: &str| {
        callback
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let code = param("code").ok_or("no code in the redirect: the user did not consent")?;
    let state = param("state").unwrap_or_default();
    Ok((code, state))
}
