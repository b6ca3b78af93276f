//! The simulated WeChat: apps, users, tokens, codes, tickets, and each endpoint's rules.
//!
//! Everything here is synchronous and takes the current time as an argument; the caller holds
//! the lock and reads the sandbox clock.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, StatusCode, header};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use wx_core::{ErrCode, HttpRequest, HttpResponse, Scope, Sex};

use crate::builder::{Consent, UserProfile, unix_secs};
use crate::paths::{
    API_DOMAIN_IP, AUTHORIZE, CODE_EXCHANGE, REFRESH, SNS_AUTH, STABLE_TOKEN, TICKET, TOKEN,
    USERINFO,
};

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
    msg: &'static str,
}

const fn err(code: ErrCode, msg: &'static str) -> WxError {
    WxError { code, msg }
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

type Answer = Result<Value, WxError>;

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

    /// Answers one request as WeChat would (no faults here).
    pub(crate) fn handle(&mut self, req: &HttpRequest, now: SystemTime) -> HttpResponse {
        let path = req.path();
        let q = Query(req.query_pairs());
        let family = Family::of(path);
        let answer = match path {
            TOKEN => self.token(&q, now),
            STABLE_TOKEN => self.stable_token(req.body.as_deref().unwrap_or_default(), now),
            TICKET => self.ticket(&q, now),
            API_DOMAIN_IP => self.api_domain_ip(&q, now),
            CODE_EXCHANGE => self.exchange_code(&q, now),
            REFRESH => self.refresh(&q, now),
            USERINFO => self.userinfo(&q, now),
            SNS_AUTH => self.sns_auth(&q, now),
            AUTHORIZE => return self.authorize(&q, now),
            _ => {
                let mut r = HttpResponse::new(StatusCode::NOT_FOUND, "404 Not Found");
                set_content_type(&mut r, "text/plain");
                return r;
            }
        };
        let body = match answer {
            Ok(v) => v,
            Err(e) => self.error_body(&e, now),
        };
        json_response(family, body.to_string().into_bytes())
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

    // ---- cgi-bin/token -------------------------------------------------------------------

    fn token(&mut self, q: &Query, now: SystemTime) -> Answer {
        let appid = q.get("appid").ok_or(E_APPID_MISSING)?;
        let secret = q.get("secret").ok_or(E_SECRET_MISSING)?;
        if q.get("grant_type") != Some("client_credential") {
            return Err(E_GRANT_TYPE);
        }
        let i = self.app_index(appid).ok_or(E_APPID)?;
        let quota = self.token_daily_quota;
        let app = &mut self.apps[i];
        // Every call naming a registered app counts against its quota, failing ones included:
        // a fleet with a wrong secret burns the quota just as it does on WeChat.
        if app.token_calls.hit(now) > quota {
            return Err(E_QUOTA);
        }
        if app.secret != secret {
            return Err(E_APPSECRET);
        }
        let appid = app.appid.clone();
        let previous = app.latest_token.take();
        let token = self.new_base_token(&appid, now);
        if let Some(old) = previous.and_then(|p| self.base_tokens.get_mut(&p)) {
            old.replace(now);
        }
        self.apps[i].latest_token = Some(token.clone());
        Ok(json!({ "access_token": token, "expires_in": ACCESS_TOKEN_TTL.as_secs() }))
    }

    // ---- cgi-bin/stable_token ------------------------------------------------------------

    fn stable_token(&mut self, body: &[u8], now: SystemTime) -> Answer {
        // JSON body only: a form or query call reads as "appid missing", as on WeChat.
        let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
            return Err(E_APPID_MISSING);
        };
        let field = |name: &str| {
            req.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let appid = field("appid").ok_or(E_APPID_MISSING)?;
        let secret = field("secret").ok_or(E_SECRET_MISSING)?;
        if field("grant_type") != Some("client_credential") {
            return Err(E_GRANT_TYPE);
        }
        let force = req
            .get("force_refresh")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let i = self.app_index(appid).ok_or(E_APPID)?;
        if self.apps[i].secret != secret {
            return Err(E_APPSECRET);
        }
        let current = self.apps[i]
            .stable_current
            .clone()
            .filter(|t| self.token_status(t, now) == TokenStatus::Valid);
        let token = if force {
            let app = &mut self.apps[i];
            // Every force call counts against the 20 a day, refreshing or not.
            if app.force_calls.hit(now) > FORCE_REFRESH_DAILY {
                return Err(E_QUOTA);
            }
            let too_soon = app
                .last_force_refresh
                .is_some_and(|last| now < last + FORCE_REFRESH_GAP);
            match current {
                // "否则不会刷新": a force call within 30 s of the last refresh changes nothing.
                Some(cur) if too_soon => cur,
                _ => self.force_rotate_stable(i, now),
            }
        } else {
            match current {
                Some(cur) if self.base_tokens[&cur].expires_at > now + GRACE => cur,
                // In its last 5 minutes (or gone): rotate; the old one lives out its lifetime.
                _ => self.rotate_stable(i, now),
            }
        };
        let remaining = self.base_tokens[&token]
            .expires_at
            .duration_since(now)
            .unwrap_or(Duration::ZERO);
        Ok(json!({ "access_token": token, "expires_in": remaining.as_secs() }))
    }

    fn rotate_stable(&mut self, i: usize, now: SystemTime) -> String {
        let appid = self.apps[i].appid.clone();
        let token = self.new_base_token(&appid, now);
        let app = &mut self.apps[i];
        app.stable_previous = app.stable_current.replace(token.clone());
        token
    }

    /// Force refresh: the token that was already in its grace period dies now, the current one
    /// gets 5 minutes of grace, a new one is issued. Two force calls 30 s apart therefore kill
    /// a leaked token at once, as WeChat's doc describes.
    fn force_rotate_stable(&mut self, i: usize, now: SystemTime) -> String {
        if let Some(prev) = self.apps[i].stable_previous.take()
            && let Some(rec) = self.base_tokens.get_mut(&prev)
        {
            rec.replaced_until = Some(now);
        }
        if let Some(cur) = self.apps[i].stable_current.clone()
            && let Some(rec) = self.base_tokens.get_mut(&cur)
        {
            rec.replace(now);
        }
        self.apps[i].last_force_refresh = Some(now);
        self.rotate_stable(i, now)
    }

    // ---- base-token APIs -----------------------------------------------------------------

    fn ticket(&mut self, q: &Query, now: SystemTime) -> Answer {
        let i = self.check_base_token(q, now)?;
        let kind = q.get("type").ok_or(E_INVALID_ARGS)?;
        if kind != "jsapi" && kind != "wx_card" {
            return Err(E_INVALID_ARGS);
        }
        let existing = self.apps[i]
            .tickets
            .get(kind)
            .filter(|(_, expires_at)| now < *expires_at)
            .map(|(t, _)| t.clone());
        let ticket = match existing {
            Some(t) => t,
            None => {
                let t = self.random_string(86);
                self.apps[i]
                    .tickets
                    .insert(kind.to_owned(), (t.clone(), now + TICKET_TTL));
                t
            }
        };
        // WeChat reports 7200 on every fetch, not the remaining lifetime.
        Ok(json!({
            "errcode": 0,
            "errmsg": "ok",
            "ticket": ticket,
            "expires_in": TICKET_TTL.as_secs(),
        }))
    }

    fn api_domain_ip(&mut self, q: &Query, now: SystemTime) -> Answer {
        self.check_base_token(q, now)?;
        Ok(json!({ "ip_list": ["101.226.62.77", "101.226.62.78", "101.226.62.79"] }))
    }

    // ---- OAuth ---------------------------------------------------------------------------

    /// Issues a code for `openid` of app `i`, as the authorize page does on consent.
    pub(crate) fn issue_code(
        &mut self,
        appid: &str,
        openid: &str,
        scope: Scope,
        now: SystemTime,
    ) -> String {
        self.prune(now);
        let code = self.random_string(32);
        self.codes.insert(
            code.clone(),
            Code {
                appid: appid.to_owned(),
                openid: openid.to_owned(),
                scope,
                expires_at: now + CODE_TTL,
                used: false,
            },
        );
        code
    }

    /// Whether `appid` has a user `openid`.
    pub(crate) fn has_user(&self, appid: &str, openid: &str) -> Option<bool> {
        let app = self.apps.iter().find(|a| a.appid == appid)?;
        Some(app.user(openid).is_some())
    }

    fn authorize(&mut self, q: &Query, now: SystemTime) -> HttpResponse {
        let Some(appid) = q.get("appid") else {
            return error_page(Some(10012), "appid 参数错误 (appid is empty)");
        };
        let Some(redirect_uri) = q.get("redirect_uri") else {
            return error_page(Some(10011), "redirect_uri 参数错误 (redirect_uri is empty)");
        };
        let Some(scope) = q.get("scope") else {
            return error_page(Some(10010), "scope 参数错误 (scope is empty)");
        };
        if q.get("response_type") != Some("code") {
            return error_page(None, "response_type 参数错误 (response_type must be code)");
        }
        let Some(i) = self.app_index(appid) else {
            return error_page(None, "appid 参数错误 (unknown appid)");
        };
        let Some(scope) = Scope::parse(scope) else {
            return error_page(Some(10005), "此公众号并没有这些scope的权限");
        };
        let app = &self.apps[i];
        if let Some(domain) = &app.oauth_domain
            && host_of(redirect_uri) != Some(domain.as_str())
        {
            return error_page(Some(10003), "redirect_uri域名与后台配置不一致");
        }
        let state = q.get("state").unwrap_or_default();
        let openid = match &app.consent {
            Consent::Deny => {
                return redirect(redirect_uri, &[("state", state)]);
            }
            Consent::FirstUser => app.users.first().map(|u| u.openid.clone()),
            Consent::User(openid) => app.user(openid).map(|u| u.openid.clone()),
        };
        let Some(openid) = openid else {
            return error_page(None, "sandbox: no registered user to consent for this app");
        };
        let appid = app.appid.clone();
        let code = self.issue_code(&appid, &openid, scope, now);
        redirect(redirect_uri, &[("code", &code), ("state", state)])
    }

    fn exchange_code(&mut self, q: &Query, now: SystemTime) -> Answer {
        let appid = q.get("appid").ok_or(E_APPID_MISSING)?;
        let secret = q.get("secret").ok_or(E_SECRET_MISSING)?;
        let code = q.get("code").ok_or(E_CODE_MISSING)?;
        if q.get("grant_type") != Some("authorization_code") {
            return Err(E_GRANT_TYPE);
        }
        let i = self.app_index(appid).ok_or(E_APPID)?;
        if self.apps[i].secret != secret {
            return Err(E_APPSECRET);
        }
        let rec = self.codes.get_mut(code).ok_or(E_CODE)?;
        if rec.appid != appid {
            return Err(E_CODE);
        }
        if rec.used {
            return Err(E_CODE_USED);
        }
        if now >= rec.expires_at {
            return Err(E_CODE);
        }
        rec.used = true;
        let (openid, scope) = (rec.openid.clone(), rec.scope);
        let user = self.apps[i].user(&openid).cloned().ok_or(E_CODE)?;
        let web_token = self.new_web_token(appid, &openid, scope, now);
        let refresh_token = self.random_string(136);
        self.refresh_tokens.insert(
            refresh_token.clone(),
            Refresh {
                appid: appid.to_owned(),
                openid: openid.clone(),
                scope,
                expires_at: now + REFRESH_TOKEN_TTL,
                web_token: web_token.clone(),
            },
        );
        let mut body = json!({
            "access_token": web_token,
            "expires_in": WEB_TOKEN_TTL.as_secs(),
            "refresh_token": refresh_token,
            "openid": openid,
            "scope": scope.as_str(),
        });
        if user.snapshot {
            body["is_snapshotuser"] = json!(1);
        }
        if let (Some(unionid), Scope::UserInfo) = (&user.unionid, scope) {
            body["unionid"] = json!(unionid);
        }
        Ok(body)
    }

    fn new_web_token(
        &mut self,
        appid: &str,
        openid: &str,
        scope: Scope,
        now: SystemTime,
    ) -> String {
        self.prune(now);
        let token = self.random_string(136);
        self.web_tokens.insert(
            token.clone(),
            WebToken {
                appid: appid.to_owned(),
                openid: openid.to_owned(),
                scope,
                expires_at: now + WEB_TOKEN_TTL,
            },
        );
        token
    }

    fn refresh(&mut self, q: &Query, now: SystemTime) -> Answer {
        let appid = q.get("appid").ok_or(E_APPID_MISSING)?;
        if q.get("grant_type") != Some("refresh_token") {
            return Err(E_GRANT_TYPE);
        }
        let refresh_token = q.get("refresh_token").ok_or(E_REFRESH_MISSING)?;
        self.app_index(appid).ok_or(E_APPID)?;
        let rec = self
            .refresh_tokens
            .get(refresh_token)
            .filter(|r| r.appid == appid)
            .ok_or(E_REFRESH_INVALID)?;
        if now >= rec.expires_at {
            return Err(E_REFRESH_EXPIRED);
        }
        let (openid, scope, old) = (rec.openid.clone(), rec.scope, rec.web_token.clone());
        // As the open-platform doc describes: an unexpired web token is extended, an expired
        // one replaced. The refresh token itself is unchanged and keeps its 30-day end.
        let web_token = match self.web_tokens.get_mut(&old) {
            Some(t) if now < t.expires_at => {
                t.expires_at = now + WEB_TOKEN_TTL;
                old
            }
            _ => {
                let t = self.new_web_token(appid, &openid, scope, now);
                if let Some(r) = self.refresh_tokens.get_mut(refresh_token) {
                    r.web_token = t.clone();
                }
                t
            }
        };
        Ok(json!({
            "access_token": web_token,
            "expires_in": WEB_TOKEN_TTL.as_secs(),
            "refresh_token": refresh_token,
            "openid": openid,
            "scope": scope.as_str(),
        }))
    }

    /// Checks a web token against `openid`; returns (app index, openid, scope).
    fn check_web_token(&self, q: &Query, now: SystemTime) -> Result<(usize, Scope), WxError> {
        let token = q.get("access_token").ok_or(E_TOKEN_MISSING)?;
        let openid = q.get("openid").ok_or(E_OPENID_MISSING)?;
        let rec = self.web_tokens.get(token).ok_or(E_INVALID_CREDENTIAL)?;
        if now >= rec.expires_at {
            return Err(E_TOKEN_EXPIRED);
        }
        if rec.openid != openid {
            return Err(E_OPENID);
        }
        let i = self.app_index(&rec.appid).ok_or(E_INVALID_CREDENTIAL)?;
        Ok((i, rec.scope))
    }

    fn userinfo(&mut self, q: &Query, now: SystemTime) -> Answer {
        let (i, scope) = self.check_web_token(q, now)?;
        if scope != Scope::UserInfo {
            return Err(E_UNAUTHORIZED);
        }
        let openid = q.get("openid").unwrap_or_default();
        let user = self.apps[i].user(openid).ok_or(E_OPENID)?;
        let sex = match user.sex {
            Sex::Male => 1,
            Sex::Female => 2,
            _ => 0,
        };
        let mut body = json!({
            "openid": user.openid,
            "nickname": user.nickname,
            "sex": sex,
            "province": user.province,
            "city": user.city,
            "country": user.country,
            "headimgurl": user.headimgurl,
            "privilege": user.privilege,
        });
        if let Some(unionid) = &user.unionid {
            body["unionid"] = json!(unionid);
        }
        Ok(body)
    }

    fn sns_auth(&mut self, q: &Query, now: SystemTime) -> Answer {
        self.check_web_token(q, now)?;
        Ok(json!({ "errcode": 0, "errmsg": "ok" }))
    }
}

/// Query parameters; an empty value counts as missing, as on WeChat.
struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, name: &str) -> Option<&str> {
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

/// WeChat's authorize error page: HTML with HTTP 200, shown to the user, never JSON.
fn error_page(code: Option<u32>, message: &str) -> HttpResponse {
    let code = code.map(|c| format!("{c} ")).unwrap_or_default();
    let body = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>微信网页授权</title></head>\
         <body><div class=\"weui-msg\"><h2 class=\"weui-msg__title\">Oops! Something went wrong:(</h2>\
         <p class=\"weui-msg__desc\">{code}{message}</p></div></body></html>"
    );
    let mut r = HttpResponse::new(StatusCode::OK, body);
    set_content_type(&mut r, HTML_CONTENT_TYPE);
    r
}

/// A 302 to `uri` with `params` appended to its query (before any fragment).
fn redirect(uri: &str, params: &[(&str, &str)]) -> HttpResponse {
    let (base, fragment) = uri
        .split_once('#')
        .map_or((uri, None), |(b, f)| (b, Some(f)));
    let mut location = base.to_owned();
    for (k, v) in params {
        location.push(if location.contains('?') { '&' } else { '?' });
        location.push_str(k);
        location.push('=');
        location.push_str(&wx_core::urlenc::encode_component(v));
    }
    if let Some(f) = fragment {
        location.push('#');
        location.push_str(f);
    }
    let mut r = HttpResponse::new(StatusCode::FOUND, "");
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            r.headers.insert(header::LOCATION, v);
            r
        }
        Err(_) => error_page(None, "redirect_uri 参数错误 (not a valid URL)"),
    }
}

/// The host of an absolute URL (without port, lowercased is not needed: WeChat compares as is).
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(host.split(':').next().unwrap_or(host))
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
    fn host_of_ignores_port_userinfo_and_path() {
        assert_eq!(
            host_of("https://a.example.com/cb?x=1"),
            Some("a.example.com")
        );
        assert_eq!(
            host_of("http://u:p@a.example.com:8080#f"),
            Some("a.example.com")
        );
        assert_eq!(host_of("a.example.com/cb"), None);
    }

    #[test]
    fn redirect_appends_before_the_fragment() {
        let r = redirect(
            "https://a.com/cb?x=1#top",
            &[("code", "C"), ("state", "s t")],
        );
        assert_eq!(r.status, StatusCode::FOUND);
        assert_eq!(
            r.headers.get(header::LOCATION).map(HeaderValue::as_bytes),
            Some(&b"https://a.com/cb?x=1&code=C&state=s%20t#top"[..])
        );
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
