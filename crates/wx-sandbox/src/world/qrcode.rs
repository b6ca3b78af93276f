//! Parametric QR codes: `cgi-bin/qrcode/create` issues tickets a simulated user can scan
//! ([`Sandbox::scan_qr`]); temporary ones expire by the sandbox clock.
//!
//! As on WeChat, a numeric code whose body lacks `action_info.scene.scene_id` (a flat
//! `action_info.scene_id`, say) is silently created with scene 0, and its scans push
//! `qrscene_0`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use rand::Rng as _;
use serde_json::{Value, json};
use wx_core::Clock as _;

use super::user::json_body;
use super::*;
use crate::paths::QRCODE_CREATE;
use crate::push::{PushReport, UserAction};
use crate::{Sandbox, SandboxError};

/// This group's routes.
pub(super) const ROUTES: &[Route] = &[Route::json(QRCODE_CREATE, |w, c| w.qrcode_create(c))];

/// Lifetime of a temporary code without `expire_seconds`.
const DEFAULT_EXPIRE: u64 = 60;
const MAX_EXPIRE: u64 = 2_592_000;
const MAX_PERMANENT_SCENE: u64 = 100_000;
const MAX_SCENE_STR_CHARS: usize = 64;

/// An issued code: the scene its scans push, and the end of a temporary code's life.
struct QrTicket {
    scene: String,
    /// A `QR_SCENE` / `QR_LIMIT_SCENE` code (else a string scene, even one of digits).
    numeric: bool,
    expires_at: Option<SystemTime>,
}

/// An app's issued codes, by ticket.
#[derive(Default)]
struct QrCodes(HashMap<String, QrTicket>);

impl World {
    /// A ticket shaped like WeChat's: base64 (with `+`, `/` and `=` that need encoding in a URL).
    fn qr_ticket(&mut self) -> String {
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let body: String = (0..94)
            .map(|_| char::from(B64[self.rng.random_range(0..B64.len())]))
            .collect();
        format!("gQ{body}==")
    }

    fn qrcode_create(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let body = json_body(c.body)?;
        let action = body.get("action_name").and_then(Value::as_str);
        let scene = body.get("action_info").and_then(|a| a.get("scene"));
        let (permanent, numeric) = match action {
            Some("QR_SCENE") => (false, true),
            Some("QR_STR_SCENE") => (false, false),
            Some("QR_LIMIT_SCENE") => (true, true),
            Some("QR_LIMIT_STR_SCENE") => (true, false),
            _ => return Err(E_INVALID_ARGS),
        };
        let scene = if numeric {
            // A missing or misplaced scene_id reads as 0, silently.
            let id = scene
                .and_then(|s| s.get("scene_id"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if permanent && id > MAX_PERMANENT_SCENE || id > u64::from(u32::MAX) {
                return Err(E_INVALID_ARGS);
            }
            id.to_string()
        } else {
            let s = scene
                .and_then(|s| s.get("scene_str"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if s.is_empty() || s.chars().count() > MAX_SCENE_STR_CHARS {
                return Err(E_INVALID_ARGS);
            }
            s.to_owned()
        };
        let expire = if permanent {
            None
        } else {
            let e = body
                .get("expire_seconds")
                .map_or(Some(DEFAULT_EXPIRE), Value::as_u64)
                .filter(|e| (1..=MAX_EXPIRE).contains(e))
                .ok_or(E_INVALID_ARGS)?;
            Some(e)
        };
        let ticket = self.qr_ticket();
        let url = format!("http://weixin.qq.com/q/{}", self.random_string(22));
        self.apps[i].ext.get_mut::<QrCodes>().0.insert(
            ticket.clone(),
            QrTicket {
                scene,
                numeric,
                expires_at: expire.map(|e| c.now + Duration::from_secs(e)),
            },
        );
        let mut answer = json!({ "ticket": ticket, "url": url });
        if let Some(e) = expire {
            answer["expire_seconds"] = json!(e);
        }
        Ok(answer)
    }
}

impl Sandbox {
    /// `openid` scans the QR code `ticket` of `appid` in WeChat: a follower's scan pushes
    /// `SCAN` with the bare scene; anyone else follows through the code (scene
    /// `ADD_SCENE_QR_CODE` with its `qr_scene` / `qr_scene_str`) and the app gets `subscribe`
    /// with `EventKey` `qrscene_<scene>`; both carry the `Ticket`. The push is delivered and
    /// its report returned.
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`], [`SandboxError::UnknownUser`];
    /// [`SandboxError::UnknownTicket`] for a ticket `qrcode/create` did not issue to this app;
    /// [`SandboxError::TicketExpired`] for a temporary code past its `expire_seconds`.
    pub async fn scan_qr(
        &self,
        appid: &str,
        openid: &str,
        ticket: &str,
    ) -> Result<PushReport, SandboxError> {
        let now = self.clock().now();
        let (scene, numeric) = {
            let mut world = self.world();
            let app = world.app_mut(appid).ok_or(SandboxError::UnknownApp)?;
            let code = app
                .ext
                .get_mut::<QrCodes>()
                .0
                .get(ticket)
                .ok_or(SandboxError::UnknownTicket)?;
            if code.expires_at.is_some_and(|end| now >= end) {
                return Err(SandboxError::TicketExpired);
            }
            (code.scene.clone(), code.numeric)
        };
        let report = self
            .act(appid, openid, UserAction::scan(scene.clone(), ticket))
            .await?;
        // The follow records the scene by the code's kind: a string scene of digits is still
        // `qr_scene_str` (the scan hook reads digits as a numeric scene).
        if !numeric && report.fields.get("Event") == Some("subscribe") {
            let mut world = self.world();
            if let Some(f) = world.app_mut(appid).and_then(|a| a.follower_mut(openid)) {
                f.qr_scene = 0;
                f.qr_scene_str = scene;
            }
        }
        Ok(report)
    }
}
