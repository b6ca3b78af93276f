//! Drafts (`cgi-bin/draft/*`): articles are written as drafts, then published with
//! [`freepublish`](crate::freepublish) (the permanent-news API was switched off on 2022-02-28).

use serde::{Deserialize, Serialize};
use wx_core::{Ack, Error, InvalidInput, Result, check_arg};

use crate::batch::{BatchPage, Window};
use crate::endpoint::Endpoint;
use crate::media::MAX_MEDIA_ID_LEN;
use crate::paging::{Cursor, Page, Paged};
use crate::request::Request;

/// Most articles in one draft.
pub const MAX_ARTICLES: usize = 8;
/// An article's `content` must be shorter than this many characters...
pub const MAX_CONTENT_CHARS: usize = 20_000;
/// ...and smaller than this many bytes.
pub const MAX_CONTENT_BYTES: usize = 1024 * 1024;

/// One article to write into a draft.
///
/// ```
/// use wx_official::draft::Article;
/// let a = Article::new("Title", "<p>Hello</p>", "THUMB_MEDIA_ID")
///     .author("Ann")
///     .digest("A short summary")
///     .open_comments(true);
/// # let _ = a;
/// ```
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[must_use]
pub struct Article {
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_source_url: Option<String>,
    thumb_media_id: String,
    need_open_comment: u8,
    only_fans_can_comment: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pic_crop_235_1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pic_crop_1_1: Option<String>,
}

impl Article {
    /// An article with its title, HTML content (images in it must come from
    /// [`UploadImage`](crate::media::UploadImage)) and cover (a permanent image material id).
    pub fn new(
        title: impl Into<String>,
        content: impl Into<String>,
        thumb_media_id: impl Into<String>,
    ) -> Self {
        Article {
            title: title.into(),
            author: None,
            digest: None,
            content: content.into(),
            content_source_url: None,
            thumb_media_id: thumb_media_id.into(),
            need_open_comment: 0,
            only_fans_can_comment: 0,
            pic_crop_235_1: None,
            pic_crop_1_1: None,
        }
    }

    /// The author.
    pub fn author(mut self, author: impl Into<String>) -> Self {
        self.author = Some(author.into());
        self
    }

    /// The summary shown in lists (single-article drafts only).
    pub fn digest(mut self, digest: impl Into<String>) -> Self {
        self.digest = Some(digest.into());
        self
    }

    /// The "read more" URL.
    pub fn content_source_url(mut self, url: impl Into<String>) -> Self {
        self.content_source_url = Some(url.into());
        self
    }

    /// Whether readers may comment.
    pub fn open_comments(mut self, open: bool) -> Self {
        self.need_open_comment = u8::from(open);
        self
    }

    /// Whether only followers may comment.
    pub fn only_fans_can_comment(mut self, only: bool) -> Self {
        self.only_fans_can_comment = u8::from(only);
        self
    }

    /// The cover crops (`X1_Y1_X2_Y2` fractions) for the 2.35:1 and 1:1 frames.
    pub fn cover_crops(
        mut self,
        crop_235_1: impl Into<String>,
        crop_1_1: impl Into<String>,
    ) -> Self {
        self.pic_crop_235_1 = Some(crop_235_1.into());
        self.pic_crop_1_1 = Some(crop_1_1.into());
        self
    }

    fn check(&self) -> Result<()> {
        let invalid = |arg, reason| Error::InvalidInput(InvalidInput::new(arg, reason));
        if self.title.trim().is_empty() {
            return Err(invalid("title", "must not be empty"));
        }
        if self.content.trim().is_empty() {
            return Err(invalid("content", "must not be empty"));
        }
        if self.content.len() >= MAX_CONTENT_BYTES
            || self.content.chars().count() >= MAX_CONTENT_CHARS
        {
            return Err(invalid(
                "content",
                "must be under 20 000 characters and 1 MiB",
            ));
        }
        check_arg("thumb_media_id", &self.thumb_media_id, MAX_MEDIA_ID_LEN)?;
        Ok(())
    }
}

/// One article as WeChat returns it (drafts, published articles, news materials).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
#[non_exhaustive]
pub struct NewsArticle {
    /// The title.
    pub title: String,
    /// The author.
    pub author: String,
    /// The summary.
    pub digest: String,
    /// The HTML content (empty when asked with `no_content`).
    pub content: String,
    /// The "read more" URL.
    pub content_source_url: String,
    /// The cover's media id.
    pub thumb_media_id: String,
    /// The cover's URL.
    pub thumb_url: String,
    /// 1 when comments are open.
    pub need_open_comment: u8,
    /// 1 when only followers may comment.
    pub only_fans_can_comment: u8,
    /// The article's URL (a preview URL for a draft).
    pub url: String,
    /// Whether a published article was deleted (`freepublish/getarticle`).
    pub is_deleted: bool,
}

/// The articles of a draft, a published article or a news material.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
#[non_exhaustive]
pub struct NewsContent {
    /// The articles, in order.
    pub news_item: Vec<NewsArticle>,
}

/// An answer carrying a `media_id`.
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct MediaId {
    /// The media id.
    pub media_id: String,
}

#[derive(Serialize)]
struct MediaIdBody<'a> {
    media_id: &'a str,
}

/// Checks `media_id` and makes the `{"media_id": ...}` POST most of these endpoints take.
pub(crate) fn media_id_post(path: &'static str, media_id: &str) -> Result<Endpoint> {
    check_arg("media_id", media_id, MAX_MEDIA_ID_LEN)?;
    Ok(Endpoint::post_json(path, &MediaIdBody { media_id })?.with_base_token())
}

/// `POST /cgi-bin/draft/add`: writes a draft of 1 to 8 articles; answers its `media_id`.
#[derive(Clone, Debug)]
#[must_use]
pub struct AddDraft {
    articles: Vec<Article>,
}

impl AddDraft {
    /// A draft of `articles`.
    pub fn new(articles: Vec<Article>) -> Self {
        AddDraft { articles }
    }
}

impl Request for AddDraft {
    type Response = MediaId;
    fn endpoint(&self) -> Result<Endpoint> {
        if self.articles.is_empty() || self.articles.len() > MAX_ARTICLES {
            return Err(Error::InvalidInput(InvalidInput::new(
                "articles",
                "must hold 1 to 8 articles",
            )));
        }
        self.articles.iter().try_for_each(Article::check)?;
        #[derive(Serialize)]
        struct Body<'a> {
            articles: &'a [Article],
        }
        Ok(Endpoint::post_json(
            "/cgi-bin/draft/add",
            &Body {
                articles: &self.articles,
            },
        )?
        .with_base_token())
    }
}

/// `POST /cgi-bin/draft/get`: the articles of a draft.
#[derive(Clone, Debug)]
#[must_use]
pub struct GetDraft {
    media_id: String,
}

impl GetDraft {
    /// The draft `media_id`.
    pub fn new(media_id: impl Into<String>) -> Self {
        GetDraft {
            media_id: media_id.into(),
        }
    }
}

impl Request for GetDraft {
    type Response = NewsContent;
    fn endpoint(&self) -> Result<Endpoint> {
        Ok(media_id_post("/cgi-bin/draft/get", &self.media_id)?.idempotent(true))
    }
}

/// `POST /cgi-bin/draft/delete`: deletes a draft.
#[derive(Clone, Debug)]
#[must_use]
pub struct DeleteDraft {
    media_id: String,
}

impl DeleteDraft {
    /// Deletes the draft `media_id`.
    pub fn new(media_id: impl Into<String>) -> Self {
        DeleteDraft {
            media_id: media_id.into(),
        }
    }
}

impl Request for DeleteDraft {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        media_id_post("/cgi-bin/draft/delete", &self.media_id)
    }
}

/// `POST /cgi-bin/draft/update`: replaces the article at `index` (0-based) of a draft.
#[derive(Clone, Debug)]
#[must_use]
pub struct UpdateDraft {
    media_id: String,
    index: u32,
    article: Article,
}

impl UpdateDraft {
    /// Replaces article `index` (0 is the first) of draft `media_id` with `article`.
    pub fn new(media_id: impl Into<String>, index: u32, article: Article) -> Self {
        UpdateDraft {
            media_id: media_id.into(),
            index,
            article,
        }
    }
}

impl Request for UpdateDraft {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        check_arg("media_id", &self.media_id, MAX_MEDIA_ID_LEN)?;
        if self.index as usize >= MAX_ARTICLES {
            return Err(Error::InvalidInput(InvalidInput::new(
                "index",
                "must be 0 to 7",
            )));
        }
        self.article.check()?;
        #[derive(Serialize)]
        struct Body<'a> {
            media_id: &'a str,
            index: u32,
            articles: &'a Article,
        }
        let body = Body {
            media_id: &self.media_id,
            index: self.index,
            articles: &self.article,
        };
        Ok(Endpoint::post_json("/cgi-bin/draft/update", &body)?.with_base_token())
    }
}

/// `GET /cgi-bin/draft/count`: how many drafts the account holds.
#[derive(Clone, Copy, Debug, Default)]
pub struct DraftCount;

/// The answer of [`DraftCount`].
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct TotalCount {
    /// The number of drafts.
    #[serde(default)]
    pub total_count: u64,
}

impl Request for DraftCount {
    type Response = TotalCount;
    fn endpoint(&self) -> Result<Endpoint> {
        Ok(Endpoint::get("/cgi-bin/draft/count").with_base_token())
    }
}

/// One draft of a [`BatchGetDrafts`] page.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct DraftItem {
    /// The draft's media id.
    pub media_id: String,
    /// Its articles.
    pub content: NewsContent,
    /// Last change (Unix seconds).
    pub update_time: i64,
}

/// `POST /cgi-bin/draft/batchget`: a page of drafts (at most 20); as a stream with
/// [`OfficialAccount::items`](crate::OfficialAccount::items).
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct BatchGetDrafts {
    window: Window,
    no_content: bool,
}

impl BatchGetDrafts {
    /// The first page of 20 drafts, with their content.
    pub fn new() -> Self {
        BatchGetDrafts {
            window: Window::first(),
            no_content: false,
        }
    }

    /// Starts at `offset` and asks for `count` drafts (1 to 20).
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

impl Default for BatchGetDrafts {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Serialize)]
pub(crate) struct BatchBody {
    offset: u64,
    count: u32,
    no_content: u8,
}

/// The body of the draft and freepublish batchget requests, after checking the window.
pub(crate) fn batch_body(window: Window, no_content: bool) -> Result<BatchBody> {
    window.check()?;
    Ok(BatchBody {
        offset: window.offset,
        count: window.count,
        no_content: u8::from(no_content),
    })
}

impl Request for BatchGetDrafts {
    type Response = BatchPage<DraftItem>;
    fn endpoint(&self) -> Result<Endpoint> {
        let body = batch_body(self.window, self.no_content)?;
        Ok(Endpoint::post_json("/cgi-bin/draft/batchget", &body)?
            .with_base_token()
            .idempotent(true))
    }
}

impl Paged for BatchGetDrafts {
    type Item = DraftItem;
    fn page_of(&self, answer: Self::Response) -> Page<DraftItem> {
        self.window.page(answer)
    }
    fn at(&self, cursor: &Cursor) -> Self {
        BatchGetDrafts {
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
    fn add_encodes_typed_articles() {
        let a = Article::new("T", "<p>x</p>", "THUMB")
            .author("A")
            .open_comments(true);
        let ep = AddDraft::new(vec![a]).endpoint().expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/draft/add");
        assert_eq!(
            body(&ep),
            json!({"articles":[{"title":"T","author":"A","content":"<p>x</p>","thumb_media_id":"THUMB","need_open_comment":1,"only_fans_can_comment":0}]})
        );
        assert!(AddDraft::new(vec![]).endpoint().is_err());
        let nine = vec![Article::new("T", "c", "M"); 9];
        assert!(AddDraft::new(nine).endpoint().is_err());
        for bad in [
            Article::new("", "c", "M"),
            Article::new("T", " ", "M"),
            Article::new("T", "c", ""),
            Article::new("T", "字".repeat(MAX_CONTENT_CHARS), "M"),
        ] {
            assert!(AddDraft::new(vec![bad]).endpoint().is_err());
        }
    }

    #[test]
    fn other_requests_encode() {
        let ep = GetDraft::new("M1").endpoint().expect("valid");
        assert_eq!(
            (ep.path(), body(&ep)),
            ("/cgi-bin/draft/get", json!({"media_id":"M1"}))
        );
        assert!(ep.is_idempotent());
        let ep = DeleteDraft::new("M1").endpoint().expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/draft/delete");
        assert!(DeleteDraft::new("").endpoint().is_err());
        let ep = UpdateDraft::new("M1", 1, Article::new("T", "c", "TH"))
            .endpoint()
            .expect("valid");
        assert_eq!(body(&ep)["index"], 1);
        assert_eq!(body(&ep)["articles"]["title"], "T");
        assert!(
            UpdateDraft::new("M1", 8, Article::new("T", "c", "TH"))
                .endpoint()
                .is_err()
        );
        assert_eq!(
            DraftCount.endpoint().expect("valid").path(),
            "/cgi-bin/draft/count"
        );
        let ep = BatchGetDrafts::new()
            .window(20, 5)
            .no_content(true)
            .endpoint()
            .expect("valid");
        assert_eq!(body(&ep), json!({"offset":20,"count":5,"no_content":1}));
        assert!(BatchGetDrafts::new().window(0, 21).endpoint().is_err());
        let next = BatchGetDrafts::new().at(&Cursor::Offset(40));
        assert_eq!(body(&next.endpoint().expect("valid"))["offset"], 40);
    }
}
