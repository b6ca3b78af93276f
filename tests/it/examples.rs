//! The top-level examples, compiled into this test binary so their logic is tested by
//! `cargo test`: the quickstart's sandbox flow, the oauth_login web app walked over loopback
//! HTTP like a browser would, and mock_testing's `#[cfg(test)]` module (its tests run here).

use std::sync::Arc;
use std::time::Duration;

use wx_core::reexports::http::{StatusCode, header};
use wx_core::{AppSecret, ManualClock, MemoryTokenStore, SharedClock};
use wx_official::OfficialAccount;
use wx_reqwest::ReqwestTransport;
use wx_sandbox::{Consent, Sandbox, SandboxServer, UserProfile, paths};

#[path = "../../examples/quickstart.rs"]
#[allow(dead_code)] // its `main` and real-API mode are not called here
mod quickstart;

#[path = "../../examples/oauth_login.rs"]
#[allow(dead_code)]
pub(crate) mod oauth_login;

#[path = "../../examples/custom_store.rs"]
#[allow(dead_code)]
mod custom_store;

#[path = "../../examples/notify.rs"]
#[allow(dead_code)] // its `main` is not called here
mod notify;

#[path = "../../examples/mock_testing.rs"]
#[allow(dead_code)]
mod mock_testing;

#[tokio::test]
async fn quickstart_walks_every_step_on_the_sandbox() {
    let mut report = quickstart::Report::new(false);
    if let Err(failure) = quickstart::run_sandbox(&mut report).await {
        panic!("quickstart failed: {failure}\n{}", report.lines.join("\n"));
    }
    let text = report.lines.join("\n").to_lowercase();
    for step in [
        "base token",
        "from cache",
        "authorize url",
        "consent",
        "code exchange",
        "user info",
        "token check",
        "refresh",
        "check again",
    ] {
        assert!(text.contains(step), "no {step:?} in:\n{text}");
    }
    assert!(text.contains("still 1 request to /cgi-bin/token"), "{text}");
}

#[tokio::test]
async fn notify_delivers_the_template_message_and_the_follow_up() {
    let mut lines = Vec::new();
    let outcome = notify::run(&mut |line| lines.push(line)).await;
    let text = lines.join("\n");
    if let Err(e) = outcome {
        panic!("notify failed: {e}\n{text}");
    }
    for step in [
        "template message sent: msgid",
        "TEMPLATESENDJOBFINISH msgid",
        "status success",
        "customer-service message sent",
        "the user's inbox (2 messages)",
        "[template message] 订单发货通知 (character_string2=SF1234567890, thing1=咖啡豆 1 kg",
        "[Custom text] Your parcel SF1234567890 left our warehouse",
    ] {
        assert!(text.contains(step), "no {step:?} in:\n{text}");
    }
}

const APPID: &str = "wx00000000000000a1";
const SECRET: &str = "S3CR3T-oauth-login-test";
/// A nickname is user input: the profile page must show it as text.
const NICKNAME: &str = "<b>Eve</b> & \"co\"";

/// The oauth_login app on a loopback port, with WeChat simulated by the sandbox.
struct Site {
    sandbox: Sandbox,
    _sandbox_server: SandboxServer,
    base: String,
    clock: ManualClock,
    /// A browser that does not follow redirects, so each hop is checked.
    browser: reqwest::Client,
}

async fn site() -> Site {
    site_with(|b| b).await
}

/// [`site`] with client options (the one-line opt-ins a user might add).
async fn site_with(options: impl FnOnce(wx_official::Builder) -> wx_official::Builder) -> Site {
    let sandbox = Sandbox::builder()
        .app(APPID, SECRET)
        .user(
            APPID,
            UserProfile::new("o-eve")
                .nickname(NICKNAME)
                .unionid("u-eve")
                .headimgurl("https://thirdwx.qlogo.cn/mmopen/x\"onerror=\"alert(1)/132"),
        )
        .build()
        .expect("valid set-up");
    // The state's clock, to make a state expire.
    let clock = ManualClock::starting_now();
    let (sandbox_server, base) =
        serve_login(&sandbox, APPID, SECRET, Arc::new(clock.clone()), options).await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a reqwest client");
    Site {
        sandbox,
        _sandbox_server: sandbox_server,
        base,
        clock,
        browser,
    }
}

/// The oauth_login app on a loopback port, its WeChat being `sandbox` served over HTTP; the
/// state is signed on `clock`. Returns the sandbox server (keep it) and the app's base URL.
pub(crate) async fn serve_login(
    sandbox: &Sandbox,
    appid: &str,
    secret: &str,
    clock: SharedClock,
    options: impl FnOnce(wx_official::Builder) -> wx_official::Builder,
) -> (SandboxServer, String) {
    let sandbox_server = sandbox.serve().await.expect("bind loopback");
    let client = options(
        OfficialAccount::builder(appid, AppSecret::new(secret))
            .api_base(&sandbox_server.base_url())
            .open_base(&sandbox_server.base_url()),
    )
    .build(
        ReqwestTransport::new().expect("reqwest"),
        MemoryTokenStore::new(),
    )
    .expect("valid options");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("bound address"));
    let login = oauth_login::Login::new(client, &[42; 32], clock, &base).expect("a valid key");
    let app = oauth_login::app(Arc::new(login));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (sandbox_server, base)
}

struct Hop {
    status: StatusCode,
    location: Option<String>,
    set_cookie: Option<String>,
    headers: wx_core::reexports::http::HeaderMap,
    body: String,
}

impl Hop {
    /// The `name=value` of the cookie `name` this answer sets, if any.
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|c| c.split(';').next())
            .find(|pair| pair.split_once('=').is_some_and(|(k, _)| k == name))
            .map(str::to_owned)
    }

    fn header(&self, name: wx_core::reexports::http::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Site {
    async fn get(&self, url: &str, cookie: Option<&str>) -> Hop {
        let mut request = self.browser.get(url);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = request.send().await.expect("the server answers");
        let header_text = |name| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().expect("ASCII header").to_owned())
        };
        let location = header_text(header::LOCATION);
        let set_cookie = header_text(header::SET_COOKIE);
        let mut headers = wx_core::reexports::http::HeaderMap::new();
        for (name, value) in response.headers() {
            headers.append(
                name.as_str()
                    .parse::<wx_core::reexports::http::HeaderName>()
                    .expect("a header name"),
                value
                    .to_str()
                    .expect("ASCII header")
                    .parse()
                    .expect("a value"),
            );
        }
        Hop {
            status: response.status(),
            location,
            set_cookie,
            headers,
            body: response.text().await.expect("a text body"),
        }
    }

    /// The callback, then (it redirects away from the URL holding the code) `/me` with the
    /// session cookie it set: the callback's answer and the profile page.
    async fn finish_login(&self, callback: &str, cookie: &str) -> (Hop, Hop) {
        let hop = self.get(callback, Some(cookie)).await;
        assert_eq!(hop.status, StatusCode::SEE_OTHER, "{}", hop.body);
        assert_eq!(hop.location.as_deref(), Some("/me"));
        let session = hop.cookie("wx_session").expect("a session cookie");
        let me = self.get(&format!("{}/me", self.base), Some(&session)).await;
        (hop, me)
    }

    /// `/login`, then the authorize page: the cookie `name=value` and the callback URL.
    async fn start_login(&self, next: &str) -> (String, String) {
        let login = self
            .get(&format!("{}/login?next={next}", self.base), None)
            .await;
        assert_eq!(login.status, StatusCode::SEE_OTHER);
        let authorize = login.location.expect("a redirect to the authorize page");
        let authorize_url = reqwest::Url::parse(&authorize).expect("a URL");
        assert_eq!(authorize_url.path(), paths::AUTHORIZE);
        let q = |name| crate::support::param(&authorize_url, name);
        assert_eq!(q("appid").as_deref(), Some(APPID));
        assert_eq!(q("scope").as_deref(), Some("snsapi_userinfo"));
        let callback_uri = format!("{}/callback", self.base);
        assert_eq!(q("redirect_uri").as_deref(), Some(callback_uri.as_str()));
        let state = q("state").expect("a state");
        assert!(state.len() <= 128 && state.bytes().all(|b| b.is_ascii_alphanumeric()));

        let set_cookie = login.set_cookie.expect("the binding cookie");
        assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
        let cookie = set_cookie.split(';').next().expect("name=value").to_owned();

        let page = self.get(&authorize, None).await;
        assert_eq!(
            page.status,
            StatusCode::FOUND,
            "the sandbox's consent redirect"
        );
        let callback = page.location.expect("a redirect to the callback");
        assert!(callback.starts_with(&callback_uri), "{callback}");
        assert_eq!(
            crate::support::param(&reqwest::Url::parse(&callback).expect("a URL"), "state"),
            Some(state)
        );
        (cookie, callback)
    }
}

#[tokio::test]
async fn oauth_login_walks_login_authorize_callback_over_http() {
    let site = site().await;
    let home = site.get(&format!("{}/", site.base), None).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.body.contains("href=\"/login?next=/orders/42\""),
        "{}",
        home.body
    );

    let (cookie, callback) = site.start_login("/orders/42").await;
    let (hop, profile) = site.finish_login(&callback, &cookie).await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.body);
    assert_eq!(profile.header(header::CACHE_CONTROL), Some("no-store"));
    assert!(
        profile
            .body
            .contains("<h2 id=\"nickname\">&lt;b&gt;Eve&lt;/b&gt; &amp; &quot;co&quot;</h2>"),
        "{}",
        profile.body
    );
    assert!(!profile.body.contains("<b>Eve"), "unescaped nickname");
    assert!(!profile.body.contains("\"onerror"), "unescaped attribute");
    assert!(profile.body.contains("<dd id=\"openid\">o-eve</dd>"));
    assert!(
        profile.body.contains("<a href=\"/orders/42\">"),
        "the return path"
    );
    assert_eq!(
        hop.cookie("wx_login").as_deref(),
        Some("wx_login="),
        "the binding cookie is cleared"
    );
    // Issue 19 (Info): the URL that holds the code is kept out of caches and `Referer`.
    assert_eq!(hop.header(header::CACHE_CONTROL), Some("no-store"));
    assert_eq!(hop.header(header::REFERRER_POLICY), Some("no-referrer"));
    assert_eq!(site.sandbox.count(paths::CODE_EXCHANGE), 1);
    assert_eq!(site.sandbox.count(paths::USERINFO), 1);
    assert_eq!(
        site.sandbox.count(paths::TOKEN),
        0,
        "login needs no base token"
    );

    // The same callback again (a reload): the code is used up.
    let reload = site.get(&callback, Some(&cookie)).await;
    assert_eq!(reload.status, StatusCode::BAD_REQUEST);
    assert!(
        reload.body.contains("already used or has expired"),
        "{}",
        reload.body
    );
    assert_eq!(site.sandbox.count(paths::CODE_EXCHANGE), 2);
}

/// Issue 19, end to end: `oauth_login` with the one-line opt-in. The victim logs in; the
/// victim's callback URL leaks (a proxy log, history, `Referer`); the attacker opens `/login` in
/// their own browser, gets their own valid state and cookie, and calls the callback with the
/// victim's code and their own state. They must not see the victim's profile.
#[tokio::test]
async fn oauth_login_with_idempotent_exchange_does_not_log_a_leaked_code_in_elsewhere() {
    let site = site_with(|b| b.idempotent_code_exchange(Duration::from_secs(60))).await;
    let (victim_cookie, victim_callback) = site.start_login("/orders/42").await;
    let (_, profile) = site.finish_login(&victim_callback, &victim_cookie).await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.body);
    assert!(profile.body.contains("<dd id=\"openid\">o-eve</dd>"));
    // The victim's reload (the double redirect) is answered from the store.
    let (_, reload) = site.finish_login(&victim_callback, &victim_cookie).await;
    assert_eq!(reload.status, StatusCode::OK, "{}", reload.body);
    assert_eq!(site.sandbox.count(paths::CODE_EXCHANGE), 1);

    let leaked = reqwest::Url::parse(&victim_callback).expect("a URL");
    let code = crate::support::param(&leaked, "code").expect("a code");
    // The attacker's own login start: their cookie and their state.
    let start = site.get(&format!("{}/login?next=/", site.base), None).await;
    let attacker_cookie = start
        .set_cookie
        .expect("a cookie")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned();
    let authorize = reqwest::Url::parse(&start.location.expect("a redirect")).expect("a URL");
    let attacker_state = crate::support::param(&authorize, "state").expect("a state");
    let replay = site
        .get(
            &format!("{}/callback?code={code}&state={attacker_state}", site.base),
            Some(&attacker_cookie),
        )
        .await;
    assert!(!replay.body.contains("o-eve"), "{}", replay.body);
    assert!(replay.cookie("wx_session").is_none(), "no session");
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.body);
    assert!(replay.body.contains("already used"), "{}", replay.body);
    assert_eq!(
        site.sandbox.count(paths::USERINFO),
        2,
        "only the victim's two loads read the profile"
    );
}

#[tokio::test]
async fn oauth_login_refuses_bad_states_before_using_the_code() {
    let site = site().await;
    let (cookie, callback) = site.start_login("/").await;

    // The callback link opened in another browser (no cookie, an empty one, or another one):
    // forged.
    for other in [
        None,
        Some("wx_login="),
        Some("wx_login=00112233445566778899aabbccddeeff"),
    ] {
        let hop = site.get(&callback, other).await;
        assert_eq!(hop.status, StatusCode::BAD_REQUEST);
        assert!(hop.body.contains("forged"), "{}", hop.body);
    }
    // A state cut short or made up: malformed; none at all: malformed too.
    let url = reqwest::Url::parse(&callback).expect("a URL");
    let state = crate::support::param(&url, "state").expect("a state");
    let code = crate::support::param(&url, "code").expect("a code");
    for bad in [&state[..10], "x-y", ""] {
        let hop = site
            .get(
                &format!("{}/callback?code={code}&state={bad}", site.base),
                Some(&cookie),
            )
            .await;
        assert_eq!(hop.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(hop.body.contains("malformed"), "{bad}: {}", hop.body);
    }
    // Eleven minutes later the state has expired.
    site.clock.advance(Duration::from_secs(660));
    let hop = site.get(&callback, Some(&cookie)).await;
    assert_eq!(hop.status, StatusCode::BAD_REQUEST);
    assert!(hop.body.contains("expired"), "{}", hop.body);
    // None of these reached WeChat: the code is still unused.
    assert_eq!(site.sandbox.count(paths::CODE_EXCHANGE), 0);
}

#[tokio::test]
async fn oauth_login_handles_a_user_who_declines() {
    let site = site().await;
    site.sandbox
        .set_consent(APPID, Consent::Deny)
        .expect("a known app");
    let (cookie, callback) = site.start_login("/orders/7").await;
    assert!(!callback.contains("code="), "{callback}");
    let hop = site.get(&callback, Some(&cookie)).await;
    assert_eq!(hop.status, StatusCode::OK);
    assert!(
        hop.body.contains("You did not allow the login"),
        "{}",
        hop.body
    );
    assert!(
        hop.body.contains("href=\"/login?next=%2Forders%2F7\""),
        "{}",
        hop.body
    );
    assert_eq!(site.sandbox.count(paths::CODE_EXCHANGE), 0);
}

#[test]
fn oauth_login_escapes_every_html_special_character() {
    assert_eq!(
        oauth_login::escape("<a href='x'>\"&\"</a>"),
        "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;"
    );
}

/// Issue 19 (Info): the file store example wrote tokens world-readable under a predictable
/// temporary name. Each version is now created new, readable by its owner only.
#[cfg(unix)]
#[tokio::test]
async fn custom_store_writes_tokens_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    use wx_core::{StoredToken, TokenKey, TokenKind, TokenStore};

    let dir = std::env::temp_dir().join(format!("wx-store-test-{:016x}", rand::random::<u64>()));
    std::fs::create_dir(&dir).expect("a fresh directory");
    let path = dir.join("tokens.json");
    let store = custom_store::FileTokenStore::new(&path);
    let key = TokenKey::new("wx", wx_core::AppId::new("wxapp"), TokenKind::AccessToken);
    let expires = std::time::SystemTime::now() + Duration::from_secs(600);
    store
        .set(&key, StoredToken::new("SECRET-token", expires))
        .await
        .expect("set");
    let mode = std::fs::metadata(&path)
        .expect("written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    // Rewritten, still private; no temporary file is left behind.
    store.delete(&key).await.expect("delete");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("tokens.json")]);
    let mode = std::fs::metadata(&path)
        .expect("written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// Issue 19 (Info): an unbound state (an empty binding is no binding) is refused without the
/// cookie; `/me` without a session goes home; a failure page shows no upstream text.
#[tokio::test]
async fn oauth_login_needs_its_cookie_and_hides_upstream_errors() {
    let site = site().await;
    // A state issued without a binding (as a missing cookie used to verify it).
    let signer = wx_official::StateSigner::new(&[42; 32], Arc::new(site.clock.clone()))
        .expect("the app's key");
    let unbound = signer
        .issue(Some("/"), Duration::from_secs(600))
        .expect("state");
    let hop = site
        .get(
            &format!("{}/callback?code=CODE&state={unbound}", site.base),
            None,
        )
        .await;
    assert_eq!(hop.status, StatusCode::BAD_REQUEST);
    assert_eq!(hop.header(header::REFERRER_POLICY), Some("no-referrer"));
    assert_eq!(site.sandbox.count(paths::CODE_EXCHANGE), 0);

    let me = site
        .get(&format!("{}/me", site.base), Some("wx_session=nope"))
        .await;
    assert_eq!(me.status, StatusCode::SEE_OTHER);
    assert_eq!(me.location.as_deref(), Some("/"));

    // A gateway error upstream: the page says the login failed, not what the gateway said.
    site.sandbox
        .faults()
        .script_for(paths::CODE_EXCHANGE, [wx_sandbox::Fault::Status(502)]);
    let (cookie, callback) = site.start_login("/").await;
    let hop = site.get(&callback, Some(&cookie)).await;
    assert_eq!(hop.status, StatusCode::BAD_GATEWAY, "{}", hop.body);
    assert!(hop.body.contains("WeChat login failed"), "{}", hop.body);
    for upstream in ["502", "oauth2", "status"] {
        assert!(!hop.body.contains(upstream), "{upstream}: {}", hop.body);
    }
}

#[path = "../../examples/campaign.rs"]
#[allow(dead_code)] // its `main` is not called here
mod campaign;

#[tokio::test]
async fn campaign_tags_and_welcomes_the_user_who_scans_the_code() {
    let outcome = campaign::run(false).await.expect("the campaign runs");
    assert_eq!(outcome.reply.as_deref(), Some(campaign::WELCOME));
    assert_eq!(
        outcome.members,
        vec![wx_core::OpenId::new(campaign::OPENID)]
    );
    campaign::check(&outcome).expect("every promise kept");
}
