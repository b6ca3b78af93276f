//! Drafts (`cgi-bin/draft/*`) and publishing (`cgi-bin/freepublish/*`): a submitted draft is
//! published [`PUBLISH_DELAY`] later by the sandbox clock (seen by the next draft or
//! freepublish request), and WeChat then pushes `PUBLISHJOBFINISH` to the app's server URL.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::material::{json_body, str_field, window};
use super::media::E_MEDIA_ID;
use super::*;
use crate::paths::{
    DRAFT_ADD, DRAFT_BATCHGET, DRAFT_COUNT, DRAFT_DELETE, DRAFT_GET, DRAFT_UPDATE,
    PUBLISH_BATCHGET, PUBLISH_DELETE, PUBLISH_GET, PUBLISH_GETARTICLE, PUBLISH_SUBMIT,
};

type Handler = fn(&mut World, usize, &Value, SystemTime) -> Answer;

/// Every route of the group: check the token, finish due publish jobs, then the handler.
fn route(w: &mut World, c: &Call<'_>, f: Handler) -> Answer {
    let i = w.check_base_token(&c.query, c.now)?;
    w.finish_publishing(i, c.now);
    let body = if c.body.is_empty() {
        json!({})
    } else {
        json_body(c.body)?
    };
    f(w, i, &body, c.now)
}

/// This group's routes.
pub(super) const ROUTES: &[Route] = &[
    Route::json(DRAFT_ADD, |w, c| route(w, c, World::draft_add)),
    Route::json(DRAFT_GET, |w, c| route(w, c, World::draft_get)),
    Route::json(DRAFT_UPDATE, |w, c| route(w, c, World::draft_update)),
    Route::json(DRAFT_DELETE, |w, c| route(w, c, World::draft_delete)),
    Route::json(DRAFT_COUNT, |w, c| route(w, c, World::draft_count)),
    Route::json(DRAFT_BATCHGET, |w, c| route(w, c, World::draft_batchget)),
    Route::json(PUBLISH_SUBMIT, |w, c| route(w, c, World::publish_submit)),
    Route::json(PUBLISH_GET, |w, c| route(w, c, World::publish_get)),
    Route::json(PUBLISH_DELETE, |w, c| route(w, c, World::publish_delete)),
    Route::json(PUBLISH_GETARTICLE, |w, c| {
        route(w, c, World::publish_getarticle)
    }),
    Route::json(PUBLISH_BATCHGET, |w, c| {
        route(w, c, World::publish_batchget)
    }),
];

/// How long publishing takes by the sandbox clock.
pub const PUBLISH_DELAY: Duration = Duration::from_secs(10);
/// `FromUserName` of `PUBLISHJOBFINISH` pushes (the account's operator).
pub const PUBLISHER_OPENID: &str = "o-sandbox-publisher";

const E_PUBLISH_ID: WxError = err(ErrCode(48006), "invalid publish_id");
const E_ARTICLE_ID: WxError = err(ErrCode(53600), "invalid article_id");

struct Draft {
    media_id: String,
    articles: Vec<Value>,
    updated: SystemTime,
}

struct Job {
    publish_id: String,
    articles: Vec<Value>,
    done_at: SystemTime,
    article_id: Option<String>,
}

struct Published {
    article_id: String,
    articles: Vec<Value>,
    updated: SystemTime,
}

#[derive(Default)]
struct DraftState {
    drafts: Vec<Draft>,
    jobs: Vec<Job>,
    published: Vec<Published>,
    next_publish_id: u64,
}

fn state(w: &mut World, i: usize) -> &mut DraftState {
    w.apps[i].ext.get_mut::<DraftState>()
}

fn page(items: Vec<Value>, v: &Value) -> Answer {
    let (offset, count) = window(v)?;
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(count).collect();
    Ok(json!({ "total_count": total, "item_count": page.len(), "item": page }))
}

fn news(articles: &[Value], v: &Value) -> Value {
    let no_content = v.get("no_content").and_then(Value::as_u64) == Some(1);
    let items: Vec<Value> = articles
        .iter()
        .map(|a| {
            let mut a = a.clone();
            if no_content {
                a["content"] = json!("");
            }
            a
        })
        .collect();
    json!({ "news_item": items })
}

impl World {
    /// Checks the articles of a draft: 1 to 8, each with a title, content and a cover that is
    /// a permanent image or thumb of the app.
    fn articles(&mut self, i: usize, list: &[Value]) -> Result<Vec<Value>, WxError> {
        if list.is_empty() || list.len() > 8 {
            return Err(E_INVALID_ARGS);
        }
        let mut out = Vec::new();
        for a in list {
            str_field(a, "title", E_INVALID_ARGS)?;
            str_field(a, "content", E_INVALID_ARGS)?;
            let thumb = str_field(a, "thumb_media_id", E_MEDIA_ID)?;
            if !self.is_cover(i, thumb) {
                return Err(E_MEDIA_ID);
            }
            let mut a = a.clone();
            a["url"] = json!(format!(
                "https://mp.weixin.qq.com/s/preview-{}",
                self.random_string(22)
            ));
            out.push(a);
        }
        Ok(out)
    }

    fn draft_add(&mut self, i: usize, v: &Value, now: SystemTime) -> Answer {
        let list = v
            .get("articles")
            .and_then(Value::as_array)
            .ok_or(E_INVALID_ARGS)?
            .clone();
        let articles = self.articles(i, &list)?;
        let media_id = self.random_string(43);
        state(self, i).drafts.push(Draft {
            media_id: media_id.clone(),
            articles,
            updated: now,
        });
        Ok(json!({ "media_id": media_id }))
    }

    fn draft_index(&mut self, i: usize, v: &Value) -> Result<usize, WxError> {
        let media_id = str_field(v, "media_id", E_MEDIA_ID)?.to_owned();
        state(self, i)
            .drafts
            .iter()
            .position(|d| d.media_id == media_id)
            .ok_or(E_MEDIA_ID)
    }

    fn draft_get(&mut self, i: usize, v: &Value, _: SystemTime) -> Answer {
        let d = self.draft_index(i, v)?;
        Ok(news(&state(self, i).drafts[d].articles, v))
    }

    fn draft_update(&mut self, i: usize, v: &Value, now: SystemTime) -> Answer {
        let d = self.draft_index(i, v)?;
        let index = v
            .get("index")
            .and_then(Value::as_u64)
            .ok_or(E_INVALID_ARGS)?;
        let article = v.get("articles").cloned().ok_or(E_INVALID_ARGS)?;
        let mut checked = self.articles(i, &[article])?;
        let draft = &mut state(self, i).drafts[d];
        let slot = usize::try_from(index)
            .ok()
            .and_then(|x| draft.articles.get_mut(x))
            .ok_or(E_INVALID_ARGS)?;
        *slot = checked.remove(0);
        draft.updated = now;
        Ok(json!({ "errcode": 0, "errmsg": "ok" }))
    }

    fn draft_delete(&mut self, i: usize, v: &Value, _: SystemTime) -> Answer {
        let d = self.draft_index(i, v)?;
        state(self, i).drafts.remove(d);
        Ok(json!({ "errcode": 0, "errmsg": "ok" }))
    }

    fn draft_count(&mut self, i: usize, _: &Value, _: SystemTime) -> Answer {
        Ok(json!({ "total_count": state(self, i).drafts.len() }))
    }

    fn draft_batchget(&mut self, i: usize, v: &Value, _: SystemTime) -> Answer {
        let items = state(self, i)
            .drafts
            .iter()
            .rev()
            .map(|d| json!({ "media_id": d.media_id, "content": news(&d.articles, v), "update_time": unix_secs(d.updated) }))
            .collect();
        page(items, v)
    }

    fn publish_submit(&mut self, i: usize, v: &Value, now: SystemTime) -> Answer {
        let d = self.draft_index(i, v)?;
        let s = state(self, i);
        let draft = s.drafts.remove(d);
        s.next_publish_id += 1;
        let publish_id = format!("{}", 2_247_500_000 + s.next_publish_id);
        s.jobs.push(Job {
            publish_id: publish_id.clone(),
            articles: draft.articles,
            done_at: now + PUBLISH_DELAY,
            article_id: None,
        });
        Ok(
            json!({ "errcode": 0, "errmsg": "ok", "publish_id": publish_id, "msg_data_id": 2_247_483_000 + s.next_publish_id }),
        )
    }

    /// Publishes the jobs of app `i` that are due and queues their `PUBLISHJOBFINISH` pushes.
    fn finish_publishing(&mut self, i: usize, now: SystemTime) {
        let due: Vec<usize> = state(self, i)
            .jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| j.article_id.is_none() && j.done_at <= now)
            .map(|(n, _)| n)
            .collect();
        for n in due {
            let article_id = self.random_string(43);
            let mut articles = std::mem::take(&mut state(self, i).jobs[n].articles);
            let mut detail = PushFields::new().number("count", articles.len());
            for (idx, a) in articles.iter_mut().enumerate() {
                let url = format!("https://mp.weixin.qq.com/s/{}", self.random_string(22));
                a["url"] = json!(url);
                a["is_deleted"] = json!(false);
                detail = detail.node(
                    "item",
                    PushFields::new()
                        .number("idx", idx + 1)
                        .text("article_url", url),
                );
            }
            let s = state(self, i);
            let job = &mut s.jobs[n];
            job.article_id = Some(article_id.clone());
            job.articles.clone_from(&articles);
            let publish_id = job.publish_id.clone();
            s.published.push(Published {
                article_id: article_id.clone(),
                articles,
                updated: now,
            });
            let info = PushFields::new()
                .number("publish_id", &publish_id)
                .number("publish_status", 0)
                .text("article_id", article_id)
                .node("article_detail", detail);
            let appid = self.apps[i].appid.clone();
            self.queue_push(
                &appid,
                PUBLISHER_OPENID,
                PushFields::event("PUBLISHJOBFINISH").node("PublishEventInfo", info),
                now,
            );
        }
    }

    fn publish_get(&mut self, i: usize, v: &Value, _: SystemTime) -> Answer {
        let publish_id = str_field(v, "publish_id", E_PUBLISH_ID)?;
        let job = state(self, i)
            .jobs
            .iter()
            .find(|j| j.publish_id == publish_id)
            .ok_or(E_PUBLISH_ID)?;
        Ok(match &job.article_id {
            None => json!({ "publish_id": job.publish_id, "publish_status": 1, "fail_idx": [] }),
            Some(article_id) => {
                let items: Vec<Value> = job
                    .articles
                    .iter()
                    .enumerate()
                    .map(|(n, a)| json!({ "idx": n + 1, "article_url": a["url"] }))
                    .collect();
                json!({
                    "publish_id": job.publish_id,
                    "publish_status": 0,
                    "article_id": article_id,
                    "article_detail": { "count": items.len(), "item": items },
                    "fail_idx": [],
                })
            }
        })
    }

    fn published_index(&mut self, i: usize, v: &Value) -> Result<usize, WxError> {
        let article_id = str_field(v, "article_id", E_ARTICLE_ID)?.to_owned();
        state(self, i)
            .published
            .iter()
            .position(|p| p.article_id == article_id)
            .ok_or(E_ARTICLE_ID)
    }

    fn publish_delete(&mut self, i: usize, v: &Value, _: SystemTime) -> Answer {
        let p = self.published_index(i, v)?;
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        let published = &mut state(self, i).published[p];
        for (n, a) in published.articles.iter_mut().enumerate() {
            if index == 0 || index == n as u64 + 1 {
                a["is_deleted"] = json!(true);
            }
        }
        Ok(json!({ "errcode": 0, "errmsg": "ok" }))
    }

    fn publish_getarticle(&mut self, i: usize, v: &Value, _: SystemTime) -> Answer {
        let p = self.published_index(i, v)?;
        Ok(news(&state(self, i).published[p].articles, v))
    }

    fn publish_batchget(&mut self, i: usize, v: &Value, _: SystemTime) -> Answer {
        let items = state(self, i)
            .published
            .iter()
            .rev()
            .map(|p| json!({ "article_id": p.article_id, "content": news(&p.articles, v), "update_time": unix_secs(p.updated) }))
            .collect();
        page(items, v)
    }
}
