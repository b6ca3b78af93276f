//! The simulated WeChat: apps, users, tokens, codes, tickets, and each endpoint's rules.
//!
//! Everything here is synchronous and takes the current time as an argument; the caller holds
//! the lock and reads the sandbox clock.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, StatusCode, header};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use wx_core::{ErrCode, HttpRequest, HttpResponse, Scope, Sex};

use crate::builder::{Consent, UserProfile, unix_secs};

mod blacklist;
mod consent;
mod draft;
mod ext;
mod followers;
mod inbox;
mod material;
mod media;
mod menu;
mod message;
mod oauth;
mod push;
mod qrcode;
mod routes;
mod tag;
mod token;
mod user;

pub use draft::{PUBLISH_DELAY, PUBLISHER_OPENID};
pub(crate) use ext::Extensions;
pub(crate) use followers::{FollowScene, Follower};
pub use inbox::{InboxMessage, Via};
pub(crate) use message::paths as message_paths;
pub use push::PushFields;
pub(crate) use push::{QueuedPush, write_cdata};
pub(crate) use routes::{Call, Handler, Route};

/// Lifetime of a base or stable access token.
pub(crate) const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(7200);
/// How long a replaced token stays valid, and how early a stable token rotates.
pub(crate) const GRACE: Duration = Duration::from_secs(300);
/// Lifetime of an OAuth code.
pub(crate) const CODE_TTL: Duration = Duration::from_secs(300);
/// Lifetime of a web-auth access token.
pub(crate) const WEB_TOKEN_TTL: Duration = Duration::from_secs(7200);
/// Lifetime of a refresh token.
pub(crate) const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Lifetime of a JS-SDK ticket.
pub(crate) const TICKET_TTL: Duration = Duration::from_secs(7200);
/// Minimum spacing of two force refreshes of the stable token.
pub(crate) const FORCE_REFRESH_GAP: Duration = Duration::from_secs(30);
/// Force refreshes of the stable token per app and day.
pub(crate) const FORCE_REFRESH_DAILY: u32 = 20;
/// Records are kept this long after they stop being valid, so an old token still reads as
/// expired (42001) rather than unknown (40001); then they are forgotten.
const KEEP_AFTER_END: Duration = Duration::from_secs(24 * 3600);

/// `Content-Type` of `cgi-bin` answers, as WeChat sends it (non-standard `encoding=`).
pub(crate) const CGI_CONTENT_TYPE: &str = "application/json; encoding=utf-8";
/// `Content-Type` of `sns` answers, as WeChat sends it (no charset).
pub(crate) const SNS_CONTENT_TYPE: &str = "text/plain";
/// `Content-Type` of the HTML pages.
pub(crate) const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// The state of one base-token-like credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenStatus {
    /// Accepted by the APIs.
    Valid,
    /// Past its lifetime: APIs answer 42001.
    Expired,
    /// Replaced by a newer token and past its grace period: APIs answer 40001 ("not latest").
    Replaced,
    /// Never issued (or forgotten a day after it ended): APIs answer 40001.
    Unknown,
}

/// A WeChat error answer, before the request id is attached.
#[derive(Debug)]
pub(crate) struct WxError {
    code: ErrCode,
    msg: Cow<'static, str>,
}

const fn err(code: ErrCode, msg: &'static str) -> WxError {
    WxError {
        code,
        msg: Cow::Borrowed(msg),
    }
}

impl WxError {
    /// An error whose message names a value (`argument invalid! data.thing1.value invalid`).
    pub(crate) fn new(code: ErrCode, msg: String) -> Self {
        WxError {
            code,
            msg: Cow::Owned(msg),
        }
    }
}

const E_INVALID_CREDENTIAL: WxError = err(
    ErrCode::INVALID_CREDENTIAL,
    "invalid credential, access_token is invalid or not latest",
);
const E_TOKEN_EXPIRED: WxError = err(ErrCode::ACCESS_TOKEN_EXPIRED, "access_token expired");
const E_TOKEN_MISSING: WxError = err(ErrCode::ACCESS_TOKEN_MISSING, "access_token missing");
const E_APPID_MISSING: WxError = err(ErrCode::APPID_MISSING, "appid missing");
const E_SECRET_MISSING: WxError = err(ErrCode::SECRET_MISSING, "appsecret missing");
const E_GRANT_TYPE: WxError = err(ErrCode::INVALID_GRANT_TYPE, "invalid grant_type");
const E_APPID: WxError = err(ErrCode::INVALID_APPID, "invalid appid");
const E_APPSECRET: WxError = err(ErrCode::INVALID_APPSECRET, "invalid appsecret");
const E_QUOTA: WxError = err(
    ErrCode::DAILY_QUOTA_EXCEEDED,
    "reach max api daily quota limit",
);
const E_CODE: WxError = err(ErrCode::INVALID_CODE, "invalid code");
const E_CODE_USED: WxError = err(ErrCode::CODE_BEEN_USED, "code been used");
const E_CODE_MISSING: WxError = err(ErrCode(41008), "missing code");
const E_REFRESH_INVALID: WxError = err(ErrCode::INVALID_REFRESH_TOKEN, "invalid refresh_token");
const E_REFRESH_EXPIRED: WxError = err(ErrCode::REFRESH_TOKEN_EXPIRED, "refresh_token expired");
const E_REFRESH_MISSING: WxError = err(ErrCode(41003), "refresh_token missing");
const E_OPENID: WxError = err(ErrCode::INVALID_OPENID, "invalid openid");
const E_OPENID_MISSING: WxError = err(ErrCode(41009), "missing openid");
const E_UNAUTHORIZED: WxError = err(ErrCode::API_UNAUTHORIZED, "api unauthorized");
const E_INVALID_ARGS: WxError = err(ErrCode(40097), "invalid args");

/// Where a request belongs: decides the `Content-Type` of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    CgiBin,
    Sns,
    Page,
}

impl Family {
    pub(crate) fn of(path: &str) -> Family {
        if path.starts_with("/sns/") {
            Family::Sns
        } else if path.starts_with("/connect/") {
            Family::Page
        } else {
            Family::CgiBin
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Family::CgiBin => CGI_CONTENT_TYPE,
            Family::Sns => SNS_CONTENT_TYPE,
            Family::Page => HTML_CONTENT_TYPE,
        }
    }
}

/// Counts events per day of Beijing time (UTC+8), the day WeChat's quotas reset on.
#[derive(Clone, Copy, Debug, Default)]
struct DayCounter {
    day: u64,
    count: u32,
}

impl DayCounter {
    /// Counts one event at `now` and returns the count of its day, this one included.
    fn hit(&mut self, now: SystemTime) -> u32 {
        let day = beijing_day(now);
        if day != self.day {
            self.day = day;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count
    }
}

fn beijing_day(now: SystemTime) -> u64 {
    (unix_secs(now) + 8 * 3600) / 86_400
}

/// A registered app and its per-app state.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) appid: String,
    secret: String,
    pub(crate) users: Vec<UserProfile>,
    pub(crate) consent: Consent,
    pub(crate) oauth_domain: Option<String>,
    token_calls: DayCounter,
    latest_token: Option<String>,
    stable_current: Option<String>,
    stable_previous: Option<String>,
    last_force_refresh: Option<SystemTime>,
    force_calls: DayCounter,
    tickets: HashMap<String, (String, SystemTime)>,
    /// Follow state of the app's users, by openid (see `followers`).
    pub(crate) followers: HashMap<String, Follower>,
    /// Per-app state of the endpoint groups (one typed value per group; see `ext`).
    pub(crate) ext: Extensions,
}

impl App {
    pub(crate) fn new(appid: String, secret: String) -> Self {
        App {
            appid,
            secret,
            users: Vec::new(),
            consent: Consent::default(),
            oauth_domain: None,
            token_calls: DayCounter::default(),
            latest_token: None,
            stable_current: None,
            stable_previous: None,
            last_force_refresh: None,
            force_calls: DayCounter::default(),
            tickets: HashMap::new(),
            followers: HashMap::new(),
            ext: Extensions::default(),
        }
    }

    fn user(&self, openid: &str) -> Option<&UserProfile> {
        self.users.iter().find(|u| u.openid == openid)
    }
}

/// A base access token (`cgi-bin/token`) or a stable one (`cgi-bin/stable_token`).
#[derive(Debug)]
struct BaseToken {
    appid: String,
    expires_at: SystemTime,
    /// Set when a newer token replaced this one: the end of its grace period.
    replaced_until: Option<SystemTime>,
}

impl BaseToken {
    fn status(&self, now: SystemTime) -> TokenStatus {
        match self.replaced_until {
            Some(cut) if cut < self.expires_at && now >= cut => TokenStatus::Replaced,
            _ if now >= self.expires_at => TokenStatus::Expired,
            _ => TokenStatus::Valid,
        }
    }

    fn end(&self) -> SystemTime {
        self.replaced_until
            .map_or(self.expires_at, |cut| cut.min(self.expires_at))
    }

    /// Starts the grace period: valid `GRACE` from `now` at most.
    fn replace(&mut self, now: SystemTime) {
        let cut = now + GRACE;
        self.replaced_until = Some(self.replaced_until.map_or(cut, |c| c.min(cut)));
    }
}

#[derive(Debug)]
struct Code {
    appid: String,
    openid: String,
    scope: Scope,
    expires_at: SystemTime,
    used: bool,
}

#[derive(Debug)]
struct WebToken {
    appid: String,
    openid: String,
    scope: Scope,
    expires_at: SystemTime,
}

#[derive(Debug)]
struct Refresh {
    appid: String,
    openid: String,
    scope: Scope,
    expires_at: SystemTime,
    web_token: String,
}

/// The whole simulated platform.
#[derive(Debug)]
pub(crate) struct World {
    apps: Vec<App>,
    base_tokens: HashMap<String, BaseToken>,
    codes: HashMap<String, Code>,
    web_tokens: HashMap<String, WebToken>,
    refresh_tokens: HashMap<String, Refresh>,
    rng: StdRng,
    token_daily_quota: u32,
}

/// A JSON answer or a WeChat error.
pub(crate) type Answer = Result<Value, WxError>;

impl World {
    pub(crate) fn new(apps: Vec<App>, seed: u64, token_daily_quota: u32) -> Self {
        World {
            apps,
            base_tokens: HashMap::new(),
            codes: HashMap::new(),
            web_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
            token_daily_quota,
        }
    }

    /// Answers one request as WeChat would (no faults here), through the route table.
    pub(crate) fn handle(&mut self, req: &HttpRequest, now: SystemTime) -> HttpResponse {
        let path = req.path();
        let Some(route) = routes::find(path) else {
            let mut r = HttpResponse::new(StatusCode::NOT_FOUND, "404 Not Found");
            set_content_type(&mut r, "text/plain");
            return r;
        };
        let call = Call {
            query: Query(req.query_pairs()),
            body: req.body.as_deref().unwrap_or_default(),
            now,
            request: req,
        };
        match route.handler {
            Handler::Json(f) => {
                let body = match f(self, &call) {
                    Ok(v) => v,
                    Err(e) => self.error_body(&e, now),
                };
                json_response(Family::of(path), body.to_string().into_bytes())
            }
            Handler::Raw(f) => f(self, &call),
        }
    }

    /// The errcode body with the ` rid: ...` suffix WeChat appends.
    fn error_body(&mut self, e: &WxError, now: SystemTime) -> Value {
        let rid = self.rid(now);
        json!({ "errcode": e.code.0, "errmsg": format!("{} rid: {rid}", e.msg) })
    }

    /// A request id shaped like WeChat's: `61250a39-612fed42-36740516`.
    pub(crate) fn rid(&mut self, now: SystemTime) -> String {
        // The first group of a real rid is the time in hex; the cast keeps its low 32 bits.
        #[allow(clippy::cast_possible_truncation)]
        let t = unix_secs(now) as u32;
        format!(
            "{t:08x}-{:08x}-{:08x}",
            self.rng.random::<u32>(),
            self.rng.random::<u32>()
        )
    }

    /// A `-1` busy body for fault injection.
    pub(crate) fn busy_body(&mut self, now: SystemTime) -> Vec<u8> {
        self.error_body(&err(ErrCode::BUSY, "system error"), now)
            .to_string()
            .into_bytes()
    }

    /// A random string over WeChat's token alphabet (`A-Z a-z 0-9 - _`).
    fn random_string(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..len)
            .map(|_| char::from(ALPHABET[self.rng.random_range(0..ALPHABET.len())]))
            .collect()
    }

    fn app_index(&self, appid: &str) -> Option<usize> {
        self.apps.iter().position(|a| a.appid == appid)
    }

    pub(crate) fn app_mut(&mut self, appid: &str) -> Option<&mut App> {
        self.apps.iter_mut().find(|a| a.appid == appid)
    }

    /// Registers `app` (a running sandbox's admin or set-up call).
    pub(crate) fn add_app(&mut self, app: App) -> Result<(), crate::SandboxError> {
        if self.app_index(&app.appid).is_some() {
            return Err(crate::SandboxError::DuplicateApp);
        }
        self.apps.push(app);
        Ok(())
    }

    /// The registered apps.
    pub(crate) fn apps(&self) -> &[App] {
        &self.apps
    }

    /// Forgets records that ended more than a day ago.
    fn prune(&mut self, now: SystemTime) {
        let keep = |end: SystemTime| end + KEEP_AFTER_END > now;
        self.base_tokens.retain(|_, t| keep(t.end()));
        self.codes.retain(|_, c| keep(c.expires_at));
        self.web_tokens.retain(|_, t| keep(t.expires_at));
        self.refresh_tokens.retain(|_, t| keep(t.expires_at));
    }

    fn new_base_token(&mut self, appid: &str, now: SystemTime) -> String {
        self.prune(now);
        let token = self.random_string(136);
        self.base_tokens.insert(
            token.clone(),
            BaseToken {
                appid: appid.to_owned(),
                expires_at: now + ACCESS_TOKEN_TTL,
                replaced_until: None,
            },
        );
        token
    }

    /// The state of a base or stable access token at `now`.
    pub(crate) fn token_status(&self, token: &str, now: SystemTime) -> TokenStatus {
        self.base_tokens
            .get(token)
            .map_or(TokenStatus::Unknown, |t| t.status(now))
    }

    /// The newest `cgi-bin/token` token of `appid`, if still valid.
    pub(crate) fn current_token(&self, appid: &str, now: SystemTime) -> Option<String> {
        let app = self.apps.iter().find(|a| a.appid == appid)?;
        let t = app.latest_token.as_ref()?;
        (self.token_status(t, now) == TokenStatus::Valid).then(|| t.clone())
    }

    /// The current stable token of `appid`, if still valid.
    pub(crate) fn current_stable_token(&self, appid: &str, now: SystemTime) -> Option<String> {
        let app = self.apps.iter().find(|a| a.appid == appid)?;
        let t = app.stable_current.as_ref()?;
        (self.token_status(t, now) == TokenStatus::Valid).then(|| t.clone())
    }

    /// Checks a base/stable token for an API call and returns its app's index.
    fn check_base_token(&self, q: &Query, now: SystemTime) -> Result<usize, WxError> {
        let token = q.get("access_token").ok_or(E_TOKEN_MISSING)?;
        let rec = self.base_tokens.get(token).ok_or(E_INVALID_CREDENTIAL)?;
        match rec.status(now) {
            TokenStatus::Valid => self.app_index(&rec.appid).ok_or(E_INVALID_CREDENTIAL),
            TokenStatus::Expired => Err(E_TOKEN_EXPIRED),
            TokenStatus::Replaced | TokenStatus::Unknown => Err(E_INVALID_CREDENTIAL),
        }
    }
}

/// Query parameters; an empty value counts as missing, as on WeChat.
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

fn set_content_type(r: &mut HttpResponse, value: &'static str) {
    r.headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
}

/// A 200 JSON answer with the content type WeChat uses for the family.
pub(crate) fn json_response(family: Family, body: Vec<u8>) -> HttpResponse {
    let mut r = HttpResponse::new(StatusCode::OK, body);
    set_content_type(&mut r, family.content_type());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn day_counter_resets_at_beijing_midnight() {
        // 1_700_000_000 is 2023-11-15 06:13:20 Beijing time.
        let mut c = DayCounter::default();
        assert_eq!(c.hit(now()), 1);
        assert_eq!(c.hit(now() + Duration::from_secs(3600)), 2);
        let to_midnight = 86_400 - (1_700_000_000 + 8 * 3600) % 86_400;
        assert_eq!(c.hit(now() + Duration::from_secs(to_midnight - 1)), 3);
        assert_eq!(c.hit(now() + Duration::from_secs(to_midnight)), 1);
    }

    #[test]
    fn replaced_token_keeps_the_earlier_of_its_ends() {
        let mut t = BaseToken {
            appid: "wx".into(),
            expires_at: now() + Duration::from_secs(100),
            replaced_until: None,
        };
        t.replace(now());
        // Grace would reach +300 but the token expires at +100: it reads as expired.
        assert_eq!(
            t.status(now() + Duration::from_secs(99)),
            TokenStatus::Valid
        );
        assert_eq!(
            t.status(now() + Duration::from_secs(100)),
            TokenStatus::Expired
        );
        let mut t2 = BaseToken {
            appid: "wx".into(),
            expires_at: now() + ACCESS_TOKEN_TTL,
            replaced_until: None,
        };
        t2.replace(now());
        assert_eq!(
            t2.status(now() + Duration::from_secs(299)),
            TokenStatus::Valid
        );
        assert_eq!(t2.status(now() + GRACE), TokenStatus::Replaced);
    }

    #[test]
    fn tokens_look_like_wechat_tokens() {
        let mut w = World::new(Vec::new(), 7, 2000);
        let t = w.random_string(136);
        assert_eq!(t.len(), 136);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{t}"
        );
        let rid = w.rid(now());
        let parts: Vec<&str> = rid.split('-').collect();
        assert_eq!(parts.len(), 3, "{rid}");
        assert!(
            parts
                .iter()
                .all(|p| p.len() == 8 && p.bytes().all(|b| b.is_ascii_hexdigit()))
        );
        assert_eq!(parts[0], format!("{:08x}", 1_700_000_000u32));
    }
}
