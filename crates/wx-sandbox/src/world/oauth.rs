//! Web-page OAuth: the authorize page, code exchange, refresh, user info and the token check.

use std::time::SystemTime;

use serde_json::json;

use super::*;
use crate::paths::{AUTHORIZE, CODE_EXCHANGE, REFRESH, SNS_AUTH, USERINFO};

/// This group's routes.
pub(super) const ROUTES: &[Route] = &[
    Route::raw(AUTHORIZE, |w, c| w.authorize(&c.query, c.now)),
    Route::json(CODE_EXCHANGE, |w, c| w.exchange_code(&c.query, c.now)),
    Route::json(REFRESH, |w, c| w.refresh(&c.query, c.now)),
    Route::json(USERINFO, |w, c| w.userinfo(&c.query, c.now)),
    Route::json(SNS_AUTH, |w, c| w.sns_auth(&c.query, c.now)),
];

impl World {
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
            Consent::FirstUser | Consent::Ask => app.users.first().map(|u| u.openid.clone()),
            Consent::User(openid) => app.user(openid).map(|u| u.openid.clone()),
        };
        let Some(openid) = openid else {
            return error_page(None, "sandbox: no registered user to consent for this app");
        };
        if app.consent == Consent::Ask && scope == Scope::UserInfo && !app.has_allowed(&openid) {
            let ask = super::consent::Pending {
                openid,
                redirect_uri: redirect_uri.to_owned(),
                state: state.to_owned(),
                scope,
            };
            return self.consent_page(i, ask, now);
        }
        let appid = app.appid.clone();
        self.grant(&appid, &openid, redirect_uri, scope, state, now)
    }

    /// The user said yes: a code, and the browser back to `redirect_uri` with it.
    pub(super) fn grant(
        &mut self,
        appid: &str,
        openid: &str,
        redirect_uri: &str,
        scope: Scope,
        state: &str,
        now: SystemTime,
    ) -> HttpResponse {
        let code = self.issue_code(appid, openid, scope, now);
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

/// WeChat's authorize error page: HTML with HTTP 200, shown to the user, never JSON.
pub(super) fn error_page(code: Option<u32>, message: &str) -> HttpResponse {
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
pub(super) fn redirect(uri: &str, params: &[(&str, &str)]) -> HttpResponse {
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
}
