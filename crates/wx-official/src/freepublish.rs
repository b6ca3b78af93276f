//! Publishing (`cgi-bin/freepublish/*`): a draft is submitted, published after WeChat's
//! checks (the result is pushed as `PUBLISHJOBFINISH`, see
//! [`push::PublishJobFinish`](crate::push::PublishJobFinish)), and can be read or deleted.

use serde::{Deserialize, Deserializer, Serialize};
use wx_core::{Ack, Error, InvalidInput, Result, check_arg};

use crate::batch::{BatchPage, Window};
use crate::draft::{NewsContent, batch_body, media_id_post};
use crate::endpoint::Endpoint;
use crate::media::MAX_MEDIA_ID_LEN;
use crate::paging::{Cursor, Page, Paged};
use crate::request::Request;

/// `POST /cgi-bin/freepublish/submit`: publishes the draft `media_id`; answers a `publish_id`
/// to follow with [`GetPublishStatus`] (or wait for the `PUBLISHJOBFINISH` push).
#[derive(Clone, Debug)]
#[must_use]
pub struct SubmitPublish {
    media_id: String,
}

impl SubmitPublish {
    /// Publishes the draft `media_id`.
    pub fn new(media_id: impl Into<String>) -> Self {
        SubmitPublish {
            media_id: media_id.into(),
        }
    }
}

/// The answer of [`SubmitPublish`].
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct Submitted {
    /// The publish job's id (WeChat sends it as a string or a number).
    #[serde(deserialize_with = "wx_core::lenient::string")]
    pub publish_id: String,
    /// The message data id, when WeChat sends one.
    #[serde(default, deserialize_with = "wx_core::lenient::opt_string")]
    pub msg_data_id: Option<String>,
}

impl Request for SubmitPublish {
    type Response = Submitted;
    fn endpoint(&self) -> Result<Endpoint> {
        media_id_post("/cgi-bin/freepublish/submit", &self.media_id)
    }
}

/// `POST /cgi-bin/freepublish/get`: the state of a publish job.
#[derive(Clone, Debug)]
#[must_use]
pub struct GetPublishStatus {
    publish_id: String,
}

impl GetPublishStatus {
    /// The job `publish_id`.
    pub fn new(publish_id: impl Into<String>) -> Self {
        GetPublishStatus {
            publish_id: publish_id.into(),
        }
    }
}

/// A publish job's state (`publish_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PublishState {
    /// `0`: published.
    Published,
    /// `1`: still publishing.
    Publishing,
    /// `2`: refused by the originality check.
    OriginalityFailed,
    /// `3`: failed.
    Failed,
    /// `4`: refused by the platform's review.
    ReviewFailed,
    /// `5`: published, then deleted.
    DeletedAfterPublishing,
    /// `6`: published, then banned.
    BannedAfterPublishing,
    /// Any other value.
    Other(i64),
}

impl PublishState {
    /// The state of a `publish_status` value.
    #[must_use]
    pub fn from_code(code: i64) -> Self {
        match code {
            0 => PublishState::Published,
            1 => PublishState::Publishing,
            2 => PublishState::OriginalityFailed,
            3 => PublishState::Failed,
            4 => PublishState::ReviewFailed,
            5 => PublishState::DeletedAfterPublishing,
            6 => PublishState::BannedAfterPublishing,
            other => PublishState::Other(other),
        }
    }
}

/// The answer of [`GetPublishStatus`].
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct PublishStatus {
    /// The job's id.
    #[serde(deserialize_with = "wx_core::lenient::string")]
    pub publish_id: String,
    /// The raw `publish_status` (see [`state`](Self::state)).
    pub publish_status: i64,
    /// The article id, once published.
    #[serde(default, deserialize_with = "wx_core::lenient::opt_string")]
    pub article_id: Option<String>,
    /// The published articles' URLs.
    #[serde(default, rename = "article_detail", deserialize_with = "detail")]
    pub articles: Vec<PublishedUrl>,
    /// The 1-based positions of articles that failed.
    #[serde(default)]
    pub fail_idx: Vec<u32>,
}

impl PublishStatus {
    /// The job's state.
    #[must_use]
    pub fn state(&self) -> PublishState {
        PublishState::from_code(self.publish_status)
    }
}

/// One published article's URL.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
#[non_exhaustive]
pub struct PublishedUrl {
    /// Its 1-based position.
    pub idx: u32,
    /// Its URL.
    pub article_url: String,
}

/// `article_detail: {count, item: [...]}` (absent or null while publishing).
fn detail<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<PublishedUrl>, D::Error> {
    #[derive(Deserialize, Default)]
    struct Detail {
        #[serde(default)]
        item: Vec<PublishedUrl>,
    }
    Ok(Option::<Detail>::deserialize(d)?.unwrap_or_default().item)
}

#[derive(Serialize)]
struct PublishIdBody<'a> {
    publish_id: &'a str,
}

impl Request for GetPublishStatus {
    type Response = PublishStatus;
    fn endpoint(&self) -> Result<Endpoint> {
        check_arg("publish_id", &self.publish_id, MAX_MEDIA_ID_LEN)?;
        Ok(Endpoint::post_json(
            "/cgi-bin/freepublish/get",
            &PublishIdBody {
                publish_id: &self.publish_id,
            },
        )?
        .with_base_token()
        .idempotent(true))
    }
}

#[derive(Serialize)]
struct ArticleIdBody<'a> {
    article_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u32>,
}

fn article_post(path: &'static str, article_id: &str, index: Option<u32>) -> Result<Endpoint> {
    check_arg("article_id", article_id, MAX_MEDIA_ID_LEN)?;
    Ok(Endpoint::post_json(path, &ArticleIdBody { article_id, index })?.with_base_token())
}

/// `POST /cgi-bin/freepublish/delete`: deletes a published article (all of it, or the
/// article at a 1-based position).
#[derive(Clone, Debug)]
#[must_use]
pub struct DeletePublished {
    article_id: String,
    index: Option<u32>,
}

impl DeletePublished {
    /// Deletes every article of `article_id`.
    pub fn new(article_id: impl Into<String>) -> Self {
        DeletePublished {
            article_id: article_id.into(),
            index: None,
        }
    }

    /// Deletes only the article at `index` (1 is the first).
    pub fn only(mut self, index: u32) -> Self {
        self.index = Some(index);
        self
    }
}

impl Request for DeletePublished {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        if self.index == Some(0) {
            return Err(Error::InvalidInput(InvalidInput::new(
                "index",
                "is 1-based",
            )));
        }
        article_post("/cgi-bin/freepublish/delete", &self.article_id, self.index)
    }
}

/// `POST /cgi-bin/freepublish/getarticle`: the articles of a published article id.
#[derive(Clone, Debug)]
#[must_use]
pub struct GetPublishedArticle {
    article_id: String,
}

impl GetPublishedArticle {
    /// The published `article_id`.
    pub fn new(article_id: impl Into<String>) -> Self {
        GetPublishedArticle {
            article_id: article_id.into(),
        }
    }
}

impl Request for GetPublishedArticle {
    type Response = NewsContent;
    fn endpoint(&self) -> Result<Endpoint> {
        Ok(
            article_post("/cgi-bin/freepublish/getarticle", &self.article_id, None)?
                .idempotent(true),
        )
    }
}

/// One entry of a [`BatchGetPublished`] page.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PublishedItem {
    /// The article id.
    pub article_id: String,
    /// Its articles.
    pub content: NewsContent,
    /// Last change (Unix seconds).
    pub update_time: i64,
}

/// `POST /cgi-bin/freepublish/batchget`: a page (at most 20) of published articles; as a
/// stream with [`OfficialAccount::items`](crate::OfficialAccount::items).
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct BatchGetPublished {
    window: Window,
    no_content: bool,
}

impl BatchGetPublished {
    /// The first page of 20, with content.
    pub fn new() -> Self {
        BatchGetPublished {
            window: Window::first(),
            no_content: false,
        }
    }

    /// Starts at `offset` and asks for `count` items (1 to 20).
    pub fn window(mut self, offset: u64, count: u32) -> Self {
        self.window = Window { offset, count };
        self
    }

    /// Leaves the articles' `content` out of the answer.
    pub fn no_content(mut self, no_content: bool) -> Self {
        self.no_content = no_content;
        self
    }
}

impl Default for BatchGetPublished {
    fn default() -> Self {
        Self::new()
    }
}

impl Request for BatchGetPublished {
    type Response = BatchPage<PublishedItem>;
    fn endpoint(&self) -> Result<Endpoint> {
        let body = batch_body(self.window, self.no_content)?;
        Ok(Endpoint::post_json("/cgi-bin/freepublish/batchget", &body)?
            .with_base_token()
            .idempotent(true))
    }
}

impl Paged for BatchGetPublished {
    type Item = PublishedItem;
    fn page_of(&self, answer: Self::Response) -> Page<PublishedItem> {
        self.window.page(answer)
    }
    fn at(&self, cursor: &Cursor) -> Self {
        BatchGetPublished {
            window: self.window.at(cursor),
            ..*self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn body(ep: &Endpoint) -> Value {
        serde_json::from_slice(ep.body_bytes().expect("body")).expect("json")
    }

    #[test]
    fn requests_encode() {
        let ep = SubmitPublish::new("M").endpoint().expect("valid");
        assert_eq!(
            (ep.path(), body(&ep)),
            ("/cgi-bin/freepublish/submit", json!({"media_id":"M"}))
        );
        assert!(!ep.is_idempotent());
        let ep = GetPublishStatus::new("100000001")
            .endpoint()
            .expect("valid");
        assert_eq!(body(&ep), json!({"publish_id":"100000001"}));
        let ep = DeletePublished::new("A").only(2).endpoint().expect("valid");
        assert_eq!(body(&ep), json!({"article_id":"A","index":2}));
        assert_eq!(
            body(&DeletePublished::new("A").endpoint().expect("valid")),
            json!({"article_id":"A"})
        );
        assert!(DeletePublished::new("A").only(0).endpoint().is_err());
        let ep = GetPublishedArticle::new("A").endpoint().expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/freepublish/getarticle");
        let ep = BatchGetPublished::new()
            .no_content(true)
            .endpoint()
            .expect("valid");
        assert_eq!(body(&ep), json!({"offset":0,"count":20,"no_content":1}));
    }

    #[test]
    fn answers_decode() {
        let s: Submitted = wx_core::decode_response(
            "x",
            br#"{"errcode":0,"errmsg":"ok","publish_id":100000001,"msg_data_id":2247483661}"#,
        )
        .expect("submit");
        assert_eq!(s.publish_id, "100000001");
        let st: PublishStatus = wx_core::decode_response(
            "x",
            br#"{"publish_id":"100000001","publish_status":0,"article_id":"A1","article_detail":{"count":1,"item":[{"idx":1,"article_url":"http://mp/a"}]},"fail_idx":[]}"#,
        )
        .expect("status");
        assert_eq!(st.state(), PublishState::Published);
        assert_eq!(st.articles[0].article_url, "http://mp/a");
        let st: PublishStatus =
            wx_core::decode_response("x", br#"{"publish_id":"1","publish_status":1}"#)
                .expect("publishing");
        assert_eq!(
            (st.state(), st.article_id, st.articles.len()),
            (PublishState::Publishing, None, 0)
        );
    }
}
