//! The credential endpoints: `cgi-bin/token`, `cgi-bin/stable_token`, the JS-SDK ticket, and
//! `get_api_domain_ip` (a cheap call with a base token).

use std::time::SystemTime;

use serde_json::json;

use super::*;
use crate::paths::{API_DOMAIN_IP, STABLE_TOKEN, TICKET, TOKEN};

/// This group's routes.
pub(super) const ROUTES: &[Route] = &[
    Route::json(TOKEN, |w, c| w.token(&c.query, c.now)),
    Route::json(STABLE_TOKEN, |w, c| w.stable_token(c.body, c.now)),
    Route::json(TICKET, |w, c| w.ticket(&c.query, c.now)),
    Route::json(API_DOMAIN_IP, |w, c| w.api_domain_ip(&c.query, c.now)),
];

impl World {
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
}
