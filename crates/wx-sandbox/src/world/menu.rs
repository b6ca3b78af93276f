//! The custom menu: `cgi-bin/menu/{create,get,delete,addconditional,delconditional,trymatch}`
//! and `get_current_selfmenu_info`, with WeChat's limits (3 top-level buttons `40016`, 5
//! sub-buttons `40023`, names of 16 / 60 bytes `40018` / `40025`, keys of 128 bytes `40019`,
//! URLs of 1024 bytes `40027`, known types `40017`); a simulated user clicks a button by key or
//! name ([`Sandbox::click_menu`]), which pushes what WeChat pushes for its type.
//!
//! Conditional menus match on tags and language (`zh_CN` for every sandbox user); the sandbox's
//! users have no platform, sex or region, so rules on those never match. The newest matching
//! conditional menu wins over the default one.

use serde_json::{Map, Value, json};
use wx_core::Clock as _;

use super::user::{json_body, ok, str_field};
use super::*;
use crate::paths::{
    MENU_ADDCONDITIONAL, MENU_CREATE, MENU_DELCONDITIONAL, MENU_DELETE, MENU_GET, MENU_TRYMATCH,
    SELFMENU_INFO,
};
use crate::push::PushReport;
use crate::{InboxMessage, PushFields, Sandbox, SandboxError, Via};

/// This group's routes.
pub(super) const ROUTES: &[Route] = &[
    Route::json(MENU_CREATE, |w, c| w.menu_create(c)),
    Route::json(MENU_GET, |w, c| w.menu_get(&c.query, c.now)),
    Route::json(MENU_DELETE, |w, c| w.menu_delete(&c.query, c.now)),
    Route::json(MENU_ADDCONDITIONAL, |w, c| w.menu_add_conditional(c)),
    Route::json(MENU_DELCONDITIONAL, |w, c| w.menu_del_conditional(c)),
    Route::json(MENU_TRYMATCH, |w, c| w.menu_trymatch(c)),
    Route::json(SELFMENU_INFO, |w, c| w.selfmenu_info(&c.query, c.now)),
];

const MAX_BUTTONS: usize = 3;
const MAX_SUB_BUTTONS: usize = 5;
const MAX_NAME_BYTES: usize = 16;
const MAX_SUB_NAME_BYTES: usize = 60;
const MAX_KEY_BYTES: usize = 128;
const MAX_URL_BYTES: usize = 1024;
/// The language of every sandbox user (what `user/info` reports).
const USER_LANGUAGE: &str = "zh_CN";
const KEY_TYPES: &[&str] = &[
    "click",
    "scancode_push",
    "scancode_waitmsg",
    "pic_sysphoto",
    "pic_photo_or_album",
    "pic_weixin",
    "location_select",
];

const E_BUTTON_COUNT: WxError = err(ErrCode::MENU_BUTTON_COUNT, "invalid button size");
const E_BUTTON_TYPE: WxError = err(ErrCode::MENU_BUTTON_TYPE, "invalid button type");
const E_NAME_SIZE: WxError = err(ErrCode::MENU_BUTTON_NAME_SIZE, "invalid button name size");
const E_KEY_SIZE: WxError = err(ErrCode::MENU_BUTTON_KEY_SIZE, "invalid button key size");
const E_SUB_COUNT: WxError = err(ErrCode::MENU_SUB_BUTTON_COUNT, "invalid sub button size");
const E_SUB_NAME_SIZE: WxError = err(
    ErrCode::MENU_SUB_BUTTON_NAME_SIZE,
    "invalid sub button name size",
);
const E_URL_SIZE: WxError = err(ErrCode::MENU_BUTTON_URL_SIZE, "invalid button url size");
const E_NO_MENU: WxError = err(ErrCode::MENU_NOT_FOUND, "menu no exist");
const E_NO_CONDITIONAL: WxError = err(
    ErrCode::CONDITIONAL_MENU_NOT_FOUND,
    "this menuid does not exist",
);
const E_NO_USER: WxError = err(ErrCode::MENU_NO_SUCH_USER, "no such user");
const E_NO_DEFAULT: WxError = err(
    ErrCode::MENU_DEFAULT_MISSING,
    "a default menu is needed first",
);
const E_EMPTY_RULE: WxError = err(ErrCode::MENU_MATCHRULE_EMPTY, "matchrule is empty");

struct Menu {
    id: u64,
    buttons: Vec<Value>,
    /// `None` for the default menu.
    rule: Option<Map<String, Value>>,
}

/// An app's menus: the default one and the conditional ones, oldest first.
#[derive(Default)]
struct Menus {
    default: Option<Menu>,
    conditional: Vec<Menu>,
    last_id: u64,
}

impl Menus {
    fn next_id(&mut self) -> u64 {
        self.last_id = self.last_id.max(400_000_000) + 1;
        self.last_id
    }
}

/// Checks a leaf button (one with a type): its type, name, key, url or material.
fn check_leaf(b: &Map<String, Value>, top: bool) -> Result<(), WxError> {
    let field = |name| b.get(name).and_then(Value::as_str).unwrap_or("");
    let kind = field("type");
    let sized = |name, max: usize, e| {
        let v = field(name);
        if v.is_empty() || v.len() > max {
            Err(e)
        } else {
            Ok(())
        }
    };
    let name_error = if top { E_NAME_SIZE } else { E_SUB_NAME_SIZE };
    sized(
        "name",
        if top {
            MAX_NAME_BYTES
        } else {
            MAX_SUB_NAME_BYTES
        },
        name_error,
    )?;
    match kind {
        k if KEY_TYPES.contains(&k) => sized("key", MAX_KEY_BYTES, E_KEY_SIZE),
        "view" => sized("url", MAX_URL_BYTES, E_URL_SIZE),
        "miniprogram" => {
            sized("url", MAX_URL_BYTES, E_URL_SIZE)?;
            sized("appid", MAX_URL_BYTES, E_INVALID_ARGS)?;
            sized("pagepath", MAX_URL_BYTES, E_INVALID_ARGS)
        }
        "media_id" => sized("media_id", MAX_URL_BYTES, E_INVALID_ARGS),
        "article_id" | "article_view_limited" => sized("article_id", MAX_URL_BYTES, E_INVALID_ARGS),
        _ => Err(E_BUTTON_TYPE),
    }
}

/// The sub-buttons of a parent button (`None` for a leaf: no or an empty `sub_button`).
fn subs(b: &Map<String, Value>) -> Option<&Vec<Value>> {
    b.get("sub_button")
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty())
}

/// Checks a menu's `button` list and returns it.
fn checked_buttons(body: &Map<String, Value>) -> Result<Vec<Value>, WxError> {
    let buttons = body
        .get("button")
        .and_then(Value::as_array)
        .ok_or(E_BUTTON_COUNT)?;
    if buttons.is_empty() || buttons.len() > MAX_BUTTONS {
        return Err(E_BUTTON_COUNT);
    }
    for b in buttons {
        let b = b.as_object().ok_or(E_BUTTON_TYPE)?;
        match subs(b) {
            None => check_leaf(b, true)?,
            Some(subs) => {
                let name = b.get("name").and_then(Value::as_str).unwrap_or("");
                if name.is_empty() || name.len() > MAX_NAME_BYTES {
                    return Err(E_NAME_SIZE);
                }
                if subs.len() > MAX_SUB_BUTTONS {
                    return Err(E_SUB_COUNT);
                }
                for s in subs {
                    check_leaf(s.as_object().ok_or(E_BUTTON_TYPE)?, false)?;
                }
            }
        }
    }
    Ok(buttons.clone())
}

/// Whether `rule` selects a follower with `tags` (see the module docs for what never matches).
fn matches(rule: &Map<String, Value>, tags: &[u64]) -> bool {
    rule.iter()
        .filter(|(_, v)| !v.is_null() && v.as_str() != Some(""))
        .all(|(k, v)| match k.as_str() {
            "tag_id" => {
                let id = v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
                id.is_some_and(|id| tags.contains(&id))
            }
            "language" => v.as_str() == Some(USER_LANGUAGE),
            _ => false,
        })
}

impl App {
    /// The menu `openid` sees: the newest conditional menu whose rule matches, else the default.
    fn menu_of(&mut self, openid: &str) -> Option<&Menu> {
        let tags = self
            .followers
            .get(openid)
            .map(|f| f.tag_ids.clone())
            .unwrap_or_default();
        let menus = self.ext.get_mut::<Menus>();
        menus
            .conditional
            .iter()
            .rev()
            .find(|m| m.rule.as_ref().is_some_and(|r| matches(r, &tags)))
            .or(menus.default.as_ref())
    }
}

impl World {
    fn menu_create(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let buttons = checked_buttons(&json_body(c.body)?)?;
        let menus = self.apps[i].ext.get_mut::<Menus>();
        let id = menus.next_id();
        menus.default = Some(Menu {
            id,
            buttons,
            rule: None,
        });
        Ok(ok())
    }

    fn menu_get(&mut self, q: &Query, now: SystemTime) -> Answer {
        let i = self.check_base_token(q, now)?;
        let menus = self.apps[i].ext.get_mut::<Menus>();
        let default = menus.default.as_ref().ok_or(E_NO_MENU)?;
        let mut answer = json!({ "menu": { "button": default.buttons, "menuid": default.id } });
        if !menus.conditional.is_empty() {
            let conditional: Vec<Value> = menus
                .conditional
                .iter()
                .map(|m| json!({ "button": m.buttons, "matchrule": m.rule, "menuid": m.id }))
                .collect();
            answer["conditionalmenu"] = json!(conditional);
        }
        Ok(answer)
    }

    fn menu_delete(&mut self, q: &Query, now: SystemTime) -> Answer {
        let i = self.check_base_token(q, now)?;
        let menus = self.apps[i].ext.get_mut::<Menus>();
        menus.default = None;
        menus.conditional.clear();
        Ok(ok())
    }

    fn menu_add_conditional(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let body = json_body(c.body)?;
        let buttons = checked_buttons(&body)?;
        let rule = body
            .get("matchrule")
            .and_then(Value::as_object)
            .filter(|r| r.values().any(|v| !v.is_null() && v.as_str() != Some("")))
            .ok_or(E_EMPTY_RULE)?;
        let menus = self.apps[i].ext.get_mut::<Menus>();
        if menus.default.is_none() {
            return Err(E_NO_DEFAULT);
        }
        let id = menus.next_id();
        menus.conditional.push(Menu {
            id,
            buttons,
            rule: Some(rule.clone()),
        });
        Ok(json!({ "menuid": id.to_string() }))
    }

    fn menu_del_conditional(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let body = json_body(c.body)?;
        let id: u64 = body
            .get("menuid")
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .ok_or(E_NO_CONDITIONAL)?;
        let menus = self.apps[i].ext.get_mut::<Menus>();
        let before = menus.conditional.len();
        menus.conditional.retain(|m| m.id != id);
        if menus.conditional.len() == before {
            return Err(E_NO_CONDITIONAL);
        }
        Ok(ok())
    }

    fn menu_trymatch(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let body = json_body(c.body)?;
        let user = str_field(&body, "user_id").ok_or(E_NO_USER)?;
        let app = &mut self.apps[i];
        if app.user(user).is_none() {
            return Err(E_NO_USER);
        }
        let menu = app.menu_of(user).ok_or(E_NO_MENU)?;
        Ok(json!({ "button": menu.buttons }))
    }

    /// The live menu, with each `sub_button` as `{"list": [...]}` (this endpoint's shape).
    fn selfmenu_info(&mut self, q: &Query, now: SystemTime) -> Answer {
        let i = self.check_base_token(q, now)?;
        let Some(menu) = &self.apps[i].ext.get_mut::<Menus>().default else {
            return Ok(json!({ "is_menu_open": 0 }));
        };
        let buttons: Vec<Value> = menu
            .buttons
            .iter()
            .map(|b| {
                let mut b = b.clone();
                if let Some(subs) = b.get_mut("sub_button").map(Value::take) {
                    if subs.as_array().is_some_and(|s| !s.is_empty()) {
                        b["sub_button"] = json!({ "list": subs });
                    } else if let Some(o) = b.as_object_mut() {
                        o.remove("sub_button");
                    }
                }
                b
            })
            .collect();
        Ok(json!({ "is_menu_open": 1, "selfmenu_info": { "button": buttons } }))
    }
}

/// The push a click on `button` makes (`Err` with the material for the types that push
/// nothing but send the user something).
fn click_push(button: &Map<String, Value>, menu_id: u64) -> Result<PushFields, (String, Value)> {
    let field = |name| {
        button
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let kind = field("type");
    let with_key = || PushFields::event(&kind).text("EventKey", field("key"));
    Ok(match kind.as_str() {
        "click" => PushFields::event("CLICK").text("EventKey", field("key")),
        "view" => PushFields::event("VIEW")
            .text("EventKey", field("url"))
            .number("MenuId", menu_id),
        "miniprogram" => PushFields::event("view_miniprogram")
            .text("EventKey", field("pagepath"))
            .number("MenuId", menu_id),
        "scancode_push" | "scancode_waitmsg" => with_key().node(
            "ScanCodeInfo",
            PushFields::new()
                .text("ScanType", "qrcode")
                .text("ScanResult", SCAN_RESULT),
        ),
        "pic_sysphoto" | "pic_photo_or_album" | "pic_weixin" => with_key().node(
            "SendPicsInfo",
            PushFields::new().number("Count", 1).node(
                "PicList",
                PushFields::new().node("item", PushFields::new().text("PicMd5Sum", PIC_MD5)),
            ),
        ),
        "location_select" => with_key().node(
            "SendLocationInfo",
            PushFields::new()
                .text("Location_X", "23.137466")
                .text("Location_Y", "113.352425")
                .text("Scale", "15")
                .text("Label", "广州市海珠区客村艺苑路 106号")
                .text("Poiname", ""),
        ),
        other => {
            let material = if other == "media_id" {
                "media_id"
            } else {
                "article_id"
            };
            return Err((other.to_owned(), json!({ material: field(material) })));
        }
    })
}

/// What the simulated user's scanner reads (`scancode_*` buttons).
const SCAN_RESULT: &str = "https://sandbox.example/scanned";
/// The MD5 of the photo the simulated user sends (`pic_*` buttons).
const PIC_MD5: &str = "1b5f7c23b5bf75682a53e7b6d163e185";

impl Sandbox {
    /// `openid` clicks the button of `appid`'s menu (the one the user sees: a matching
    /// conditional menu, else the default) whose `key` or `name` is `target`. A `click` pushes
    /// `CLICK`; `view` pushes `VIEW` (the URL); `miniprogram` pushes `view_miniprogram`;
    /// `scancode_*` push a scan of `https://sandbox.example/scanned`; `pic_*` push one photo; `location_select`
    /// pushes a place. The push is delivered and its report returned. `media_id`, `article_id`
    /// and `article_view_limited` push nothing: WeChat sends the material to the user (it lands
    /// in the inbox, [`Via::Platform`]) and `Ok(None)` is returned.
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`], [`SandboxError::UnknownUser`],
    /// [`SandboxError::NotFollowing`] (a non-follower has no menu),
    /// [`SandboxError::NoSuchButton`] when the user's menu has no leaf button with that key or
    /// name (or there is no menu).
    pub async fn click_menu(
        &self,
        appid: &str,
        openid: &str,
        target: &str,
    ) -> Result<Option<PushReport>, SandboxError> {
        let now = self.clock().now();
        let fields = {
            let mut world = self.world();
            let app = world.app_mut(appid).ok_or(SandboxError::UnknownApp)?;
            if app.user(openid).is_none() {
                return Err(SandboxError::UnknownUser);
            }
            if !app.is_following(openid) {
                return Err(SandboxError::NotFollowing);
            }
            let menu = app.menu_of(openid).ok_or(SandboxError::NoSuchButton)?;
            let is_target = |b: &&Map<String, Value>| {
                ["key", "name"]
                    .iter()
                    .any(|f| b.get(*f).and_then(Value::as_str) == Some(target))
            };
            let leaves =
                menu.buttons
                    .iter()
                    .filter_map(Value::as_object)
                    .flat_map(|b| match subs(b) {
                        Some(s) => s.iter().filter_map(Value::as_object).collect::<Vec<_>>(),
                        None => vec![b],
                    });
            let button = leaves
                .into_iter()
                .find(is_target)
                .ok_or(SandboxError::NoSuchButton)?;
            let push = click_push(button, menu.id);
            app.touch(openid, now);
            match push {
                Ok(fields) => fields,
                Err((msg_type, content)) => {
                    app.deliver(
                        openid,
                        InboxMessage::new(now, Via::Platform, msg_type, content),
                    );
                    return Ok(None);
                }
            }
        };
        Ok(Some(self.push(appid, openid, fields).await))
    }
}
