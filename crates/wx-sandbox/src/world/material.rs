//! Permanent materials (`cgi-bin/material/*`), with WeChat's count limits (100 000 images,
//! 1 000 of each other type; a test lowers them with [`Sandbox::limit_materials`]) and the
//! news materials of old accounts ([`Sandbox::add_news_material`]).

use serde_json::Value;

use super::media::{E_MEDIA_ID, FileAnswer, MediaState, file_response, media_type, uploaded};
use super::*;
use crate::paths::{
    MATERIAL_ADD, MATERIAL_BATCHGET, MATERIAL_COUNT, MATERIAL_DELETE, MATERIAL_GET,
};
use crate::{Sandbox, SandboxError};
use wx_core::Clock as _;

/// This group's routes.
pub(super) const ROUTES: &[Route] = &[
    Route::json(MATERIAL_ADD, |w, c| w.material_add(c)),
    Route::raw(MATERIAL_GET, |w, c| {
        let answer = w.material_get(&c.query, c.body, c.now);
        w.file_answer(answer, c.now)
    }),
    Route::json(MATERIAL_DELETE, |w, c| {
        w.material_delete(&c.query, c.body, c.now)
    }),
    Route::json(MATERIAL_COUNT, |w, c| w.material_count(&c.query, c.now)),
    Route::json(MATERIAL_BATCHGET, |w, c| {
        w.material_batchget(&c.query, c.body, c.now)
    }),
];

/// Most permanent images an account keeps.
pub(crate) const MAX_IMAGES: usize = 100_000;
/// Most permanent voices, videos or thumbs an account keeps.
pub(crate) const MAX_OTHERS: usize = 1_000;

/// The sandbox's answer to a full material library (WeChat's own code for it is not in the
/// documentation the sandbox follows).
const E_MATERIAL_LIMIT: WxError = err(ErrCode(45001), "material count out of limit");

/// The JSON body of a POST, or `invalid args`.
pub(super) fn json_body(body: &[u8]) -> Result<Value, WxError> {
    serde_json::from_slice(body).map_err(|_| E_INVALID_ARGS)
}

/// A string field of a JSON body, or `e`.
pub(super) fn str_field<'a>(v: &'a Value, name: &str, e: WxError) -> Result<&'a str, WxError> {
    v.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(e)
}

/// `offset` and `count` (1 to 20) of a batchget body.
pub(super) fn window(v: &Value) -> Result<(usize, usize), WxError> {
    let offset = v.get("offset").and_then(Value::as_u64).unwrap_or(0);
    let count = v.get("count").and_then(Value::as_u64).unwrap_or(0);
    if !(1..=20).contains(&count) {
        return Err(E_INVALID_ARGS);
    }
    Ok((
        usize::try_from(offset).unwrap_or(usize::MAX),
        usize::try_from(count).unwrap_or(20),
    ))
}

impl World {
    fn material_add(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let kind = media_type(&c.query)?;
        let (mut stored, parts) = uploaded(c, kind, true)?;
        if kind == "video" {
            let description = parts
                .iter()
                .find(|p| p.name == "description")
                .and_then(|p| serde_json::from_slice::<Value>(&p.bytes).ok())
                .ok_or(E_INVALID_ARGS)?;
            let title = str_field(&description, "title", E_INVALID_ARGS)?.to_owned();
            let intro = str_field(&description, "introduction", E_INVALID_ARGS)?.to_owned();
            stored.video = Some((title, intro));
        }
        let media_id = self.random_string(43);
        if kind == "image" {
            stored.url = format!("http://mmbiz.qpic.cn/sandbox/{media_id}/0");
        }
        let url = stored.url.clone();
        let state = self.apps[i].ext.get_mut::<MediaState>();
        let same = state
            .permanent
            .iter()
            .filter(|(_, m)| m.kind == kind)
            .count();
        let (max_images, max_others) = state.limits.unwrap_or((MAX_IMAGES, MAX_OTHERS));
        if same
            >= if kind == "image" {
                max_images
            } else {
                max_others
            }
        {
            return Err(E_MATERIAL_LIMIT);
        }
        state.permanent.push((media_id.clone(), stored));
        Ok(if kind == "image" {
            json!({ "media_id": media_id, "url": url })
        } else {
            json!({ "media_id": media_id })
        })
    }

    fn material_get(
        &mut self,
        q: &Query,
        body: &[u8],
        now: SystemTime,
    ) -> Result<FileAnswer, WxError> {
        let i = self.check_base_token(q, now)?;
        let v = json_body(body)?;
        let media_id = str_field(&v, "media_id", E_MEDIA_ID)?;
        let state = self.apps[i].ext.get_mut::<MediaState>();
        if let Some((_, articles, _)) = state.news.iter().find(|(id, _, _)| id == media_id) {
            return Ok(FileAnswer::Json(json!({ "news_item": articles })));
        }
        let (_, m) = state
            .permanent
            .iter()
            .find(|(id, _)| id == media_id)
            .ok_or(E_MEDIA_ID)?;
        Ok(match &m.video {
            Some((title, intro)) => FileAnswer::Json(json!({
                "title": title,
                "description": intro,
                "down_url": format!("http://sandbox.invalid/video/{media_id}"),
            })),
            None => FileAnswer::File(file_response(media_id, m)),
        })
    }

    fn material_delete(&mut self, q: &Query, body: &[u8], now: SystemTime) -> Answer {
        let i = self.check_base_token(q, now)?;
        let v = json_body(body)?;
        let media_id = str_field(&v, "media_id", E_MEDIA_ID)?;
        let state = self.apps[i].ext.get_mut::<MediaState>();
        let before = state.permanent.len() + state.news.len();
        state.permanent.retain(|(id, _)| id != media_id);
        state.news.retain(|(id, _, _)| id != media_id);
        if state.permanent.len() + state.news.len() == before {
            return Err(E_MEDIA_ID);
        }
        Ok(json!({ "errcode": 0, "errmsg": "ok" }))
    }

    fn material_count(&mut self, q: &Query, now: SystemTime) -> Answer {
        let i = self.check_base_token(q, now)?;
        let state = self.apps[i].ext.get_mut::<MediaState>();
        let n = |k: &str| state.permanent.iter().filter(|(_, m)| m.kind == k).count();
        Ok(json!({
            "voice_count": n("voice"),
            "video_count": n("video"),
            "image_count": n("image"),
            "news_count": state.news.len(),
        }))
    }

    fn material_batchget(&mut self, q: &Query, body: &[u8], now: SystemTime) -> Answer {
        let i = self.check_base_token(q, now)?;
        let v = json_body(body)?;
        let kind = match v.get("type").and_then(Value::as_str) {
            Some(k @ ("image" | "voice" | "video" | "news")) => k.to_owned(),
            _ => return Err(super::media::E_MEDIA_TYPE),
        };
        let (offset, count) = window(&v)?;
        let state = self.apps[i].ext.get_mut::<MediaState>();
        // News materials can no longer be created: only those set up are listed.
        let all: Vec<Value> = if kind == "news" {
            state
                .news
                .iter()
                .map(|(id, articles, at)| {
                    json!({ "media_id": id, "content": { "news_item": articles }, "update_time": unix_secs(*at) })
                })
                .collect()
        } else {
            state
                .permanent
                .iter()
                .filter(|(_, m)| m.kind == kind)
                .map(|(id, m)| {
                    json!({ "media_id": id, "name": m.filename, "url": m.url, "update_time": unix_secs(m.created_at) })
                })
                .collect()
        };
        let total = all.len();
        let items: Vec<Value> = all.into_iter().skip(offset).take(count).collect();
        Ok(json!({ "total_count": total, "item_count": items.len(), "item": items }))
    }

    /// Whether `media_id` is a permanent image or thumb of app `i` (a draft's cover).
    pub(super) fn is_cover(&mut self, i: usize, media_id: &str) -> bool {
        self.apps[i]
            .ext
            .get_mut::<MediaState>()
            .permanent
            .iter()
            .any(|(id, m)| id == media_id && matches!(m.kind, "image" | "thumb"))
    }
}

impl Sandbox {
    /// Sets the count limits of `appid`'s permanent materials (WeChat's: 100,000 images and
    /// 1,000 of each other type), so a test can fill the library with a few
    /// uploads: set-up for tests.
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`].
    pub fn limit_materials(
        &self,
        appid: &str,
        images: usize,
        others: usize,
    ) -> Result<(), SandboxError> {
        let mut world = self.world();
        let app = world.app_mut(appid).ok_or(SandboxError::UnknownApp)?;
        app.ext.get_mut::<MediaState>().limits = Some((images, others));
        Ok(())
    }

    /// Adds a news material to `appid`, as accounts kept them from before 2022-02-28 (the API
    /// that wrote them is switched off): `articles` are the `news_item` objects
    /// `get_material` answers. Returns its media id. Set-up for tests.
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`].
    pub fn add_news_material(
        &self,
        appid: &str,
        articles: Vec<Value>,
    ) -> Result<String, SandboxError> {
        let now = self.clock().now();
        let mut world = self.world();
        let media_id = world.random_string(43);
        let app = world.app_mut(appid).ok_or(SandboxError::UnknownApp)?;
        app.ext
            .get_mut::<MediaState>()
            .news
            .push((media_id.clone(), articles, now));
        Ok(media_id)
    }
}
