//! The consent page a person sees for `snsapi_userinfo` when the app's consent is
//! [`Consent::Ask`]: the account's name, what it asks for, allow and deny. The answer is posted
//! to [`AUTHORIZE_REPLY`]; allow redirects with a code (and is remembered, as WeChat remembers
//! a user's consent), deny redirects with `state` only.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use wx_core::urlenc::parse_query;

use super::oauth::{error_page, redirect};
use super::*;
use crate::paths::AUTHORIZE_REPLY;

/// This group's routes.
pub(super) const ROUTES: &[Route] = &[Route::raw(AUTHORIZE_REPLY, |w, c| {
    w.authorize_reply(c.body, c.now)
})];

/// How long a shown consent page can be answered.
const PAGE_TTL: Duration = Duration::from_secs(600);

/// An authorization waiting for the user's answer.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) openid: String,
    pub(super) redirect_uri: String,
    pub(super) state: String,
    pub(super) scope: Scope,
}

/// Per-app state: the account's name, who allowed already, the pages waiting for an answer.
#[derive(Default)]
struct ConsentState {
    name: Option<String>,
    allowed: HashSet<String>,
    pending: HashMap<String, (Pending, SystemTime)>,
}

impl App {
    /// Sets the account's name shown on the consent page.
    pub(crate) fn set_name(&mut self, name: String) {
        self.ext.get_mut::<ConsentState>().name = Some(name);
    }

    /// The account's name (the appid when none was set).
    pub(crate) fn name(&self) -> &str {
        self.ext
            .get::<ConsentState>()
            .and_then(|c| c.name.as_deref())
            .unwrap_or(&self.appid)
    }

    /// Whether `openid` allowed `snsapi_userinfo` on the consent page before.
    pub(super) fn has_allowed(&self, openid: &str) -> bool {
        self.ext
            .get::<ConsentState>()
            .is_some_and(|c| c.allowed.contains(openid))
    }

    /// Forgets every remembered consent (a changed consent setting asks again).
    pub(crate) fn forget_consents(&mut self) {
        self.ext.get_mut::<ConsentState>().allowed.clear();
    }
}

impl World {
    /// Shows the consent page of app `i` for `ask`.
    pub(super) fn consent_page(&mut self, i: usize, ask: Pending, now: SystemTime) -> HttpResponse {
        let ticket = self.random_string(32);
        let app = &mut self.apps[i];
        let nickname = app
            .user(&ask.openid)
            .map(|u| u.nickname.clone())
            .unwrap_or_default();
        let body = render(app.name(), &app.appid, &nickname, &ticket);
        let state = app.ext.get_mut::<ConsentState>();
        state.pending.retain(|_, (_, end)| *end > now);
        state.pending.insert(ticket, (ask, now + PAGE_TTL));
        let mut r = HttpResponse::new(StatusCode::OK, body);
        set_content_type(&mut r, HTML_CONTENT_TYPE);
        r
    }

    /// The consent page's form: `appid`, `ticket`, `answer=allow|deny`.
    fn authorize_reply(&mut self, body: &[u8], now: SystemTime) -> HttpResponse {
        let form = parse_query(&String::from_utf8_lossy(body));
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.as_str())
        };
        let Some(i) = self.app_index(field("appid")) else {
            return error_page(None, "appid 参数错误 (unknown appid)");
        };
        let app = &mut self.apps[i];
        let Some((ask, end)) = app
            .ext
            .get_mut::<ConsentState>()
            .pending
            .remove(field("ticket"))
        else {
            return error_page(
                None,
                "授权已失效，请重新进入 (this page was answered already)",
            );
        };
        if now >= end {
            return error_page(None, "授权已失效，请重新进入 (this page has expired)");
        }
        match field("answer") {
            "allow" => {
                app.ext
                    .get_mut::<ConsentState>()
                    .allowed
                    .insert(ask.openid.clone());
                let appid = app.appid.clone();
                self.grant(
                    &appid,
                    &ask.openid,
                    &ask.redirect_uri,
                    ask.scope,
                    &ask.state,
                    now,
                )
            }
            "deny" => redirect(&ask.redirect_uri, &[("state", &ask.state)]),
            _ => error_page(None, "answer must be allow or deny"),
        }
    }
}

/// The page: WeChat's layout (account, the permission asked, the user, two buttons).
fn render(name: &str, appid: &str, nickname: &str, ticket: &str) -> String {
    let initial: String = name.chars().next().map(String::from).unwrap_or_default();
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>微信授权</title><style>\
         body{{margin:0;font-family:-apple-system,'PingFang SC',sans-serif;background:#ededed;color:#111}}\
         .card{{max-width:420px;margin:0 auto;padding:40px 24px;background:#fff;min-height:100vh;box-sizing:border-box}}\
         .logo{{width:56px;height:56px;border-radius:8px;background:#07c160;color:#fff;font-size:28px;\
         line-height:56px;text-align:center;margin:0 auto}}\
         h1{{font-size:18px;text-align:center;margin:12px 0 32px}}\
         .ask{{font-size:15px;color:#666;margin:0 0 8px}}\
         ul{{padding:0 0 0 18px;margin:0 0 24px;font-size:16px}}\
         .who{{font-size:14px;color:#666;border-top:1px solid #eee;padding-top:16px}}\
         button{{display:block;width:100%;font-size:17px;padding:11px;margin:12px 0;border:0;\
         border-radius:8px;background:#f2f2f2;color:#07c160}}\
         button.primary{{background:#07c160;color:#fff}}\
         .note{{font-size:12px;color:#aaa;text-align:center;margin-top:32px}}\
         </style></head><body><div class=\"card\">\
         <div class=\"logo\">{initial}</div><h1 id=\"account\">{name}</h1>\
         <p class=\"ask\">申请获取以下权限 (asks for)</p>\
         <ul><li id=\"permission\">获得你的公开信息（昵称、头像等）<br>\
         <small>your public profile: nickname and avatar</small></li></ul>\
         <p class=\"who\">微信用户 (as) <b id=\"nickname\">{nickname}</b></p>\
         <form method=\"post\" action=\"{AUTHORIZE_REPLY}\">\
         <input type=\"hidden\" name=\"appid\" value=\"{appid}\">\
         <input type=\"hidden\" name=\"ticket\" value=\"{ticket}\">\
         <button id=\"allow\" class=\"primary\" type=\"submit\" name=\"answer\" value=\"allow\">允许 Allow</button>\
         <button id=\"deny\" type=\"submit\" name=\"answer\" value=\"deny\">拒绝 Deny</button>\
         </form><p class=\"note\">wx-sandbox: a simulated WeChat</p></div></body></html>",
        initial = escape(&initial),
        name = escape(name),
        appid = escape(appid),
        nickname = escape(nickname),
        ticket = escape(ticket),
    )
}

/// Escapes text for HTML content and quoted attribute values (names are user input).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_on_the_page() {
        let page = render("<b>Shop</b>", "wx1", "Eve \"&\" co", "T");
        assert!(page.contains("&lt;b&gt;Shop&lt;/b&gt;"), "{page}");
        assert!(page.contains("Eve &quot;&amp;&quot; co"), "{page}");
        assert!(!page.contains("<b>Shop"));
    }
}
