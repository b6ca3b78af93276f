//! Followers: `cgi-bin/user/info`, `user/info/batchget`, `user/get` (10,000 openids a page,
//! with WeChat's last-page `next_openid`) and `user/info/updateremark`; plus the set-up call
//! that adds many followers at once.
//!
//! The sandbox's paged lists are in openid order (WeChat does not document its order).

use std::collections::HashSet;
use std::time::SystemTime;

use serde_json::{Value, json};
use wx_core::Clock as _;

use super::*;
use crate::builder::unix_secs;
use crate::paths::{USER_GET, USER_INFO, USER_INFO_BATCHGET, USER_UPDATE_REMARK};
use crate::{Sandbox, SandboxError};

/// This group's routes.
pub(super) const ROUTES: &[Route] = &[
    Route::json(USER_INFO, |w, c| w.user_info(&c.query, c.now)),
    Route::json(USER_INFO_BATCHGET, |w, c| w.user_batchget(c)),
    Route::json(USER_GET, |w, c| w.user_get(&c.query, c.now)),
    Route::json(USER_UPDATE_REMARK, |w, c| w.update_remark(c)),
];

/// Openids per page of `user/get`, a tag's members and the blacklist.
pub(super) const PAGE_SIZE: usize = 10_000;
/// Records per `user/info/batchget` at most.
const MAX_BATCHGET: usize = 100;
/// Longest remark, in characters.
const MAX_REMARK_CHARS: usize = 30;

pub(super) const E_DATA_FORMAT: WxError = err(ErrCode(47001), "data format error");
pub(super) const E_OPENID_LIST_TOO_LONG: WxError =
    err(ErrCode::OPENID_LIST_TOO_LONG, "invalid openid list size");

/// The success answer of the calls that return nothing.
pub(super) fn ok() -> Value {
    json!({ "errcode": 0, "errmsg": "ok" })
}

/// The JSON object of a POST body (`47001` otherwise, as WeChat answers a body it cannot read).
pub(super) fn json_body(body: &[u8]) -> Result<serde_json::Map<String, Value>, WxError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(E_DATA_FORMAT),
    }
}

/// A string field of a body (`None` when absent, not a string, or empty).
pub(super) fn str_field<'a>(
    body: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Option<&'a str> {
    body.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The `openid_list` of a tagging or blacklist body: 1 to `max` strings (`40032` when longer).
pub(super) fn openid_list(
    body: &serde_json::Map<String, Value>,
    max: usize,
) -> Result<Vec<String>, WxError> {
    let list = body
        .get("openid_list")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or(E_INVALID_ARGS)?;
    if list.len() > max {
        return Err(E_OPENID_LIST_TOO_LONG);
    }
    list.iter()
        .map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .ok_or(E_OPENID)
}

/// One page of a sorted openid list after `after` (from the start for `None`), as WeChat pages
/// them: up to 10,000 openids and `next_openid` = the page's last openid, even on the last page
/// (the page after it is empty with `next_openid: ""`). `data` is left out of an empty page.
pub(super) fn openid_page(sorted: &[&str], after: Option<&str>) -> serde_json::Map<String, Value> {
    let start = after.map_or(0, |a| sorted.partition_point(|o| *o <= a));
    let page = &sorted[start..sorted.len().min(start + PAGE_SIZE)];
    let mut out = serde_json::Map::new();
    out.insert("count".into(), json!(page.len()));
    if !page.is_empty() {
        out.insert("data".into(), json!({ "openid": page }));
    }
    out.insert(
        "next_openid".into(),
        json!(page.last().copied().unwrap_or("")),
    );
    out
}

impl World {
    /// The record `user/info` and `batchget` give for `openid` (`None` for an unknown user).
    fn follower_json(&self, i: usize, openid: &str, lang: &str) -> Option<Value> {
        let app = &self.apps[i];
        let profile = app.user(openid)?;
        let mut v = json!({ "subscribe": 0, "openid": openid });
        if let Some(u) = &profile.unionid {
            v["unionid"] = json!(u);
        }
        if let Some(f) = app.followers.get(openid).filter(|f| f.subscribed) {
            v["subscribe"] = json!(1);
            v["language"] = json!(lang);
            v["subscribe_time"] = json!(unix_secs(f.subscribe_time));
            v["remark"] = json!(f.remark);
            v["groupid"] = json!(0);
            v["tagid_list"] = json!(f.tag_ids);
            v["subscribe_scene"] = json!(f.subscribe_scene);
            v["qr_scene"] = json!(f.qr_scene);
            v["qr_scene_str"] = json!(f.qr_scene_str);
        }
        Some(v)
    }

    fn user_info(&mut self, q: &Query, now: SystemTime) -> Answer {
        let i = self.check_base_token(q, now)?;
        let openid = q.get("openid").ok_or(E_OPENID_MISSING)?;
        let lang = q.get("lang").unwrap_or("zh_CN");
        self.follower_json(i, openid, lang).ok_or(E_OPENID)
    }

    fn user_batchget(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let body = json_body(c.body)?;
        let list = body
            .get("user_list")
            .and_then(Value::as_array)
            .filter(|l| !l.is_empty())
            .ok_or(E_INVALID_ARGS)?;
        if list.len() > MAX_BATCHGET {
            return Err(E_OPENID_LIST_TOO_LONG);
        }
        let records = list
            .iter()
            .map(|item| {
                let openid = item.get("openid").and_then(Value::as_str).ok_or(E_OPENID)?;
                let lang = item.get("lang").and_then(Value::as_str).unwrap_or("zh_CN");
                self.follower_json(i, openid, lang).ok_or(E_OPENID)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({ "user_info_list": records }))
    }

    fn user_get(&mut self, q: &Query, now: SystemTime) -> Answer {
        let i = self.check_base_token(q, now)?;
        let sorted = self.apps[i].sorted_followers(|_| true);
        let mut page = openid_page(&sorted, q.get("next_openid"));
        page.insert("total".into(), json!(sorted.len()));
        Ok(Value::Object(page))
    }

    fn update_remark(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let body = json_body(c.body)?;
        let openid = str_field(&body, "openid").ok_or(E_OPENID_MISSING)?;
        let remark = body.get("remark").and_then(Value::as_str).unwrap_or("");
        if remark.chars().count() > MAX_REMARK_CHARS {
            return Err(E_INVALID_ARGS);
        }
        let f = self.apps[i].follower_mut(openid).ok_or(E_OPENID)?;
        f.remark = remark.to_owned();
        Ok(ok())
    }
}

impl Sandbox {
    /// Registers `openids` as users of `appid` who follow it from now (scene
    /// `ADD_SCENE_OTHERS`): set-up for lists of any size (25,000 followers take a few
    /// milliseconds). Openids already registered just follow. Returns how many now follow who
    /// did not before.
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`].
    pub fn add_followers<I, S>(&self, appid: &str, openids: I) -> Result<usize, SandboxError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let now = self.clock().now();
        let mut world = self.world();
        let app = world.app_mut(appid).ok_or(SandboxError::UnknownApp)?;
        let mut known: HashSet<String> = app.users.iter().map(|u| u.openid.clone()).collect();
        let mut added = 0;
        for openid in openids {
            let openid = openid.into();
            if known.insert(openid.clone()) {
                app.users.push(crate::UserProfile::new(openid.clone()));
            }
            if app.follow(&openid, now, FollowScene::other()) {
                added += 1;
            }
        }
        Ok(added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_end_with_the_last_openid_then_an_empty_page() {
        let ids: Vec<String> = (0..25_000).map(|i| format!("o{i:05}")).collect();
        let sorted: Vec<&str> = ids.iter().map(String::as_str).collect();
        let first = openid_page(&sorted, None);
        assert_eq!(first["count"], 10_000);
        assert_eq!(first["next_openid"], "o09999");
        let third = openid_page(&sorted, Some("o19999"));
        assert_eq!(third["count"], 5_000);
        assert_eq!(
            third["next_openid"], "o24999",
            "the last page still names a cursor"
        );
        let after = openid_page(&sorted, Some("o24999"));
        assert_eq!(after["count"], 0);
        assert_eq!(after["next_openid"], "");
        assert!(after.get("data").is_none());
    }

    #[test]
    fn openid_lists_are_1_to_max_strings() {
        let body = |v: Value| json_body(v.to_string().as_bytes()).expect("object");
        assert_eq!(
            openid_list(&body(json!({"openid_list": ["a", "b"]})), 2).ok(),
            Some(vec!["a".into(), "b".into()])
        );
        assert!(openid_list(&body(json!({"openid_list": ["a", "b", "c"]})), 2).is_err());
        assert!(openid_list(&body(json!({"openid_list": []})), 2).is_err());
        assert!(openid_list(&body(json!({"openid_list": [1]})), 2).is_err());
        assert!(json_body(b"[1]").is_err());
    }
}
