//! `OfficialAccount<ReqwestTransport, MemoryTokenStore>` against the wx sandbox server on
//! loopback: the seed flow with the sandbox's request counters, the branches a login handler
//! must take (code reused, scope missing, web token expired, refresh token unknown), base-token
//! expiry on a shared clock, and faults on the wire.

use std::sync::Arc;
use std::time::Duration;

use wx_core::{
    AppSecret, Error, HttpRequest, HttpTransport, Lang, MemoryTokenStore, RefreshToken, Scope,
    SharedClock,
};
use wx_official::OfficialAccount;
use wx_reqwest::ReqwestTransport;
use wx_sandbox::{Fault, Sandbox, SandboxServer, UserProfile, paths};

use crate::support::{error_text, fast_retry, param, redirect_location};

const APPID: &str = "wx00000000000000e2";
const SECRET: &str = "S3CR3T-sandbox-e2e-secret";
const REDIRECT_URI: &str = "https://app.example.com/cb";

type Client = OfficialAccount<ReqwestTransport, MemoryTokenStore>;

struct World {
    sandbox: Sandbox,
    server: SandboxServer,
    client: Client,
    transport: ReqwestTransport,
}

/// The sandbox with one app and two users, served on loopback, and a client pointed at it that
/// shares the sandbox's clock.
async fn world() -> World {
    let sandbox = Sandbox::builder()
        .app(APPID, SECRET)
        .user(
            APPID,
            UserProfile::new("o-ann").nickname("Ann").unionid("u-ann"),
        )
        .user(APPID, UserProfile::new("o-bob").nickname("Bob"))
        .seed(7)
        .build()
        .expect("valid set-up");
    let server = sandbox.serve().await.expect("bind loopback");
    let transport = ReqwestTransport::new().expect("a reqwest client");
    let clock: SharedClock = Arc::new(sandbox.clock().clone());
    let client = OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .api_base(&server.base_url())
        .open_base(&server.base_url())
        .clock(clock)
        .retry_policy(fast_retry())
        .build(transport.clone(), MemoryTokenStore::new())
        .expect("valid options");
    World {
        sandbox,
        server,
        client,
        transport,
    }
}

/// Authorize as the consenting user: the code of the sandbox page's redirect.
async fn consent(w: &World, scope: Scope) -> String {
    let url = w
        .client
        .authorize_url(REDIRECT_URI, scope, "st4te")
        .expect("a valid authorize URL");
    let response = w
        .transport
        .send(HttpRequest::get(url))
        .await
        .expect("the authorize page answers");
    let location = redirect_location(&response);
    assert!(location.as_str().starts_with(REDIRECT_URI), "{location}");
    assert_eq!(param(&location, "state").as_deref(), Some("st4te"));
    param(&location, "code").expect("a code")
}

#[tokio::test]
async fn the_seed_flow_with_the_sandbox_counting_requests() {
    let w = world().await;
    let token = w.client.access_token().await.expect("a base token");
    assert!(w.client.access_token().await.expect("cached").ct_eq(&token));
    assert_eq!(w.sandbox.count(paths::TOKEN), 1);
    assert!(
        w.sandbox
            .current_token(APPID)
            .is_some_and(|t| t.ct_eq(&token)),
        "the client holds the sandbox's newest token"
    );

    let code = consent(&w, Scope::UserInfo).await;
    let login = w.client.exchange_code(&code).await.expect("a web token");
    assert_eq!(login.openid.as_str(), "o-ann");
    assert_eq!(login.unionid.as_ref().map(|u| u.as_str()), Some("u-ann"));
    assert!(login.has_scope(Scope::UserInfo));
    let user = w
        .client
        .user_info(&login.access_token, &login.openid, Lang::ZhCn)
        .await
        .expect("a profile");
    assert_eq!(user.nickname, "Ann");
    assert!(
        w.client
            .check_oauth_token(&login.access_token, &login.openid)
            .await
            .expect("checked")
    );

    // The web token expires; the check says so (not an error), a refresh renews it.
    w.sandbox.clock().advance(Duration::from_secs(7201));
    assert!(
        !w.client
            .check_oauth_token(&login.access_token, &login.openid)
            .await
            .expect("checked")
    );
    let expired = w
        .client
        .user_info(&login.access_token, &login.openid, Lang::ZhCn)
        .await
        .expect_err("an expired web token");
    assert_eq!(expired.api().map(|a| a.code.0), Some(42001));
    let renewed = w
        .client
        .refresh_oauth_token(&login.refresh_token)
        .await
        .expect("a renewed web token");
    assert!(
        w.client
            .check_oauth_token(&renewed.access_token, &renewed.openid)
            .await
            .expect("checked")
    );

    let counts = w.sandbox.counts();
    let expected = [
        (paths::TOKEN, 1),
        (paths::AUTHORIZE, 1),
        (paths::CODE_EXCHANGE, 1),
        (paths::USERINFO, 2),
        (paths::SNS_AUTH, 3),
        (paths::REFRESH, 1),
    ];
    for (path, n) in expected {
        assert_eq!(counts.get(path).copied(), Some(n), "{path}: {counts:?}");
    }
    assert_eq!(w.sandbox.total_count(), 9, "{counts:?}");
    w.server.shutdown().await;
}

/// The errors a login handler branches on arrive typed, through real HTTP.
#[tokio::test]
async fn login_error_branches_are_typed() {
    let w = world().await;
    // A code is single-use: the second exchange is 40163, "restart the login", sent once.
    let code = consent(&w, Scope::Base).await;
    let login = w.client.exchange_code(&code).await.expect("a web token");
    let reused = w
        .client
        .exchange_code(&code)
        .await
        .expect_err("a used code");
    assert!(reused.is_login_restart_required(), "{reused:?}");
    assert_eq!(reused.api().map(|a| a.code.0), Some(40163));
    assert!(reused.api().is_some_and(|a| a.request_id.is_some()));
    assert_eq!(
        w.sandbox.count(paths::CODE_EXCHANGE),
        2,
        "no retry of a used code"
    );

    // snsapi_base gives no profile: 48001, "scope missing".
    assert!(!login.has_scope(Scope::UserInfo));
    let base_only = w
        .client
        .user_info(&login.access_token, &login.openid, Lang::ZhCn)
        .await
        .expect_err("an snsapi_base token");
    assert!(base_only.is_scope_missing(), "{base_only:?}");

    // An unknown refresh token: 40030, "authorize again".
    let unknown = w
        .client
        .refresh_oauth_token(&RefreshToken::new("REFRESH-SECRET-unknown"))
        .await
        .expect_err("an unknown refresh token");
    assert!(unknown.is_reauthorization_required(), "{unknown:?}");

    // A code that expired (5 minutes): 40029, "restart the login".
    let code = consent(&w, Scope::UserInfo).await;
    w.sandbox.clock().advance(Duration::from_secs(301));
    let late = w
        .client
        .exchange_code(&code)
        .await
        .expect_err("an expired code");
    assert!(late.is_login_restart_required(), "{late:?}");

    for e in [&reused, &base_only, &unknown, &late] {
        let text = error_text(e);
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains("REFRESH-SECRET"), "{text}");
        assert!(!text.contains(login.access_token.secret()), "{text}");
    }
}

/// On a clock shared with the sandbox, the cached base token is used until 300 s before it
/// expires, then fetched again, once, and the new token works.
#[tokio::test]
async fn the_base_token_is_fetched_again_near_its_expiry() {
    let w = world().await;
    let first = w.client.access_token().await.expect("a base token");
    w.sandbox
        .clock()
        .advance(Duration::from_secs(7200 - 300 - 1));
    assert!(
        w.client
            .access_token()
            .await
            .expect("still cached")
            .ct_eq(&first)
    );
    assert_eq!(w.sandbox.count(paths::TOKEN), 1);
    w.sandbox.clock().advance(Duration::from_secs(2));
    let second = w.client.access_token().await.expect("a new base token");
    assert!(!second.ct_eq(&first));
    assert_eq!(w.sandbox.count(paths::TOKEN), 2);
    #[derive(serde::Deserialize)]
    struct Ips {
        ip_list: Vec<String>,
    }
    let ips: Ips = w
        .client
        .call_with_token(wx_official::Endpoint::get(paths::API_DOMAIN_IP))
        .await
        .expect("the new token is accepted");
    assert!(!ips.ip_list.is_empty());
    let sent_with = w.sandbox.current_token(APPID).expect("a live token");
    assert!(sent_with.ct_eq(&second));
}

/// Faults on the wire, through reqwest: a dropped connection is retried; an HTML page and a
/// truncated body are decode errors naming the endpoint; the secret is in none of them.
#[tokio::test]
async fn faults_on_the_wire() {
    let w = world().await;
    w.sandbox.faults().script_for(paths::TOKEN, [Fault::Drop]);
    w.client
        .access_token()
        .await
        .expect("retried after the drop");
    assert_eq!(w.sandbox.count(paths::TOKEN), 2);

    let code = consent(&w, Scope::UserInfo).await;
    let login = w.client.exchange_code(&code).await.expect("a web token");
    for fault in [Fault::Html, Fault::Truncated, Fault::Empty] {
        w.sandbox
            .faults()
            .script_for(paths::USERINFO, [fault.clone()]);
        let e = w
            .client
            .user_info(&login.access_token, &login.openid, Lang::ZhCn)
            .await
            .expect_err("not a profile");
        assert!(
            matches!(&e, Error::Decode(d) if d.endpoint == "sns/userinfo"),
            "{fault:?}: {e:?}"
        );
        let text = error_text(&e);
        assert!(!text.contains(login.access_token.secret()), "{text}");
    }
    // The next answer is the profile again.
    let user = w
        .client
        .user_info(&login.access_token, &login.openid, Lang::ZhCn)
        .await
        .expect("a profile");
    assert_eq!(user.nickname, "Ann");
}
