//! Subscription notices (订阅通知): `message/subscribe/bizsend` and the template library under
//! `wxaapi/newtmpl/`.

use serde::{Deserialize, Serialize};
use wx_core::{Ack, InvalidInput, OpenId, Result, check_arg, lenient};

use super::{
    KeywordType, MAX_ID_LEN, MAX_URL_LEN, MiniProgram, check_data_key, data_map, set_data,
};
use crate::endpoint::Endpoint;
use crate::oauth::MAX_OPENID_LEN;
use crate::paging::{Cursor, Page, Paged};
use crate::request::Request;
use crate::url_check::check_http_url;

/// Most titles per `getpubtemplatetitles` page.
pub(crate) const MAX_TITLES_PER_PAGE: u32 = 30;

/// `POST /cgi-bin/message/subscribe/bizsend`: a subscription notice to a user who accepted
/// one.
///
/// Every value is checked against the rule of its keyword's type (the key's prefix: `thing1`
/// is a [`KeywordType::Thing`]) before anything is sent. Each accepted one-time subscription
/// allows one notice and WeChat has no dedup key here, so this send is never retried after a
/// timeout.
///
/// ```
/// use wx_official::Request;
/// use wx_official::message::SubscribeSend;
/// let ok = SubscribeSend::new("o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc")
///     .data("thing1", "Coffee beans")
///     .data("time2", "2024年5月1日 15:01");
/// assert!(ok.endpoint().is_ok());
/// let too_long = ok.clone().data("thing1", "a value of more than twenty characters");
/// assert!(too_long.endpoint().is_err(), "refused before sending");
/// ```
#[derive(Clone, Debug, Serialize)]
#[must_use]
pub struct SubscribeSend {
    touser: OpenId,
    template_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    miniprogram: Option<MiniProgram>,
    #[serde(serialize_with = "data_map")]
    data: Vec<(String, String)>,
}

impl SubscribeSend {
    /// A notice of subscription template `template_id` (its `priTmplId`) to `touser`.
    pub fn new(touser: impl Into<OpenId>, template_id: impl Into<String>) -> Self {
        SubscribeSend {
            touser: touser.into(),
            template_id: template_id.into(),
            page: None,
            miniprogram: None,
            data: Vec::new(),
        }
    }

    /// The web page the notice opens.
    pub fn page(mut self, url: impl Into<String>) -> Self {
        self.page = Some(url.into());
        self
    }

    /// The mini-program page the notice opens.
    pub fn miniprogram(mut self, appid: impl Into<String>, pagepath: impl Into<String>) -> Self {
        self.miniprogram = Some(MiniProgram::new(appid, pagepath));
        self
    }

    /// Sets the value of keyword `key` (`thing1`, `time2`...); a second value for the same key
    /// replaces the first.
    pub fn data(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        set_data(&mut self.data, key.into(), value.into());
        self
    }
}

impl Request for SubscribeSend {
    type Response = Ack;

    fn endpoint(&self) -> Result<Endpoint> {
        check_arg("touser", self.touser.as_str(), MAX_OPENID_LEN)?;
        check_arg("template_id", &self.template_id, MAX_ID_LEN)?;
        if let Some(url) = &self.page {
            check_http_url("page", url, MAX_URL_LEN)?;
        }
        if let Some(mp) = &self.miniprogram {
            mp.check()?;
        }
        if self.data.is_empty() {
            return Err(InvalidInput::new("data", "must hold at least one keyword").into());
        }
        for (key, value) in &self.data {
            check_data_key(key)?;
            match KeywordType::of_key(key) {
                Some(kind) => kind
                    .check(value)
                    .map_err(|reason| InvalidInput::new("data", reason))?,
                // A type WeChat added after this release: its rule is WeChat's to check.
                None => check_arg("data", value, 256)?,
            }
        }
        Ok(Endpoint::post_json("/cgi-bin/message/subscribe/bizsend", self)?.with_base_token())
    }
}

/// `GET /wxaapi/newtmpl/getcategory`: the account's categories (for the public titles).
#[derive(Clone, Copy, Debug, Default)]
pub struct GetCategories;

impl Request for GetCategories {
    type Response = Categories;
    fn endpoint(&self) -> Result<Endpoint> {
        Ok(Endpoint::get("/wxaapi/newtmpl/getcategory").with_base_token())
    }
}

/// The answer of [`GetCategories`].
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct Categories {
    /// The categories.
    #[serde(default)]
    pub data: Vec<Category>,
}

/// A category.
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct Category {
    /// Its id (what [`GetPubTemplateTitles`] takes).
    #[serde(default, deserialize_with = "lenient::uint")]
    pub id: u64,
    /// Its name.
    #[serde(default)]
    pub name: String,
}

/// `GET /wxaapi/newtmpl/getpubtemplatetitles`: the public template titles of some categories,
/// a page at a time (at most 30). It is [`Paged`]: `client.items(first)` walks them all.
#[derive(Clone, Debug)]
#[must_use]
pub struct GetPubTemplateTitles {
    /// The category ids.
    pub ids: Vec<u64>,
    /// The offset of the first title.
    pub start: u64,
    /// How many titles per page (1 to 30).
    pub limit: u32,
}

impl GetPubTemplateTitles {
    /// The titles of categories `ids`, 30 per page from the first.
    pub fn new(ids: impl IntoIterator<Item = u64>) -> Self {
        GetPubTemplateTitles {
            ids: ids.into_iter().collect(),
            start: 0,
            limit: MAX_TITLES_PER_PAGE,
        }
    }
}

impl Request for GetPubTemplateTitles {
    type Response = PubTemplateTitles;
    fn endpoint(&self) -> Result<Endpoint> {
        if self.ids.is_empty() {
            return Err(InvalidInput::new("ids", "must name at least one category").into());
        }
        if !(1..=MAX_TITLES_PER_PAGE).contains(&self.limit) {
            return Err(InvalidInput::new("limit", "must be 1 to 30").into());
        }
        let ids = self
            .ids
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        Ok(Endpoint::get("/wxaapi/newtmpl/getpubtemplatetitles")
            .with_base_token()
            .query("ids", ids)
            .query("start", self.start.to_string())
            .query("limit", self.limit.to_string()))
    }
}

impl Paged for GetPubTemplateTitles {
    type Item = PubTemplateTitle;

    fn page_of(&self, answer: PubTemplateTitles) -> Page<PubTemplateTitle> {
        let next = self.start + answer.data.len() as u64;
        Page::new(answer.data, Some(Cursor::Offset(next)), Some(answer.count))
    }

    fn at(&self, cursor: &Cursor) -> Self {
        match cursor {
            Cursor::Offset(start) => GetPubTemplateTitles {
                start: *start,
                ..self.clone()
            },
            _ => self.clone(),
        }
    }
}

/// The answer of [`GetPubTemplateTitles`].
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct PubTemplateTitles {
    /// Titles in all (every page).
    #[serde(default, deserialize_with = "lenient::uint")]
    pub count: u64,
    /// This page's titles.
    #[serde(default)]
    pub data: Vec<PubTemplateTitle>,
}

/// A public template title.
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct PubTemplateTitle {
    /// The title's id (what [`GetPubTemplateKeywords`] and [`AddSubscribeTemplate`] take).
    #[serde(default, deserialize_with = "lenient::string")]
    pub tid: String,
    /// The title.
    #[serde(default)]
    pub title: String,
    /// `2` one-time, `3` long-term.
    #[serde(default, rename = "type")]
    pub kind: u32,
    /// The category id.
    #[serde(default, rename = "categoryId", deserialize_with = "lenient::string")]
    pub category_id: String,
}

/// `GET /wxaapi/newtmpl/getpubtemplatekeywords`: the keywords of a public title.
#[derive(Clone, Debug)]
pub struct GetPubTemplateKeywords {
    /// The title's id.
    pub tid: String,
}

impl GetPubTemplateKeywords {
    /// The keywords of title `tid`.
    #[must_use]
    pub fn new(tid: impl Into<String>) -> Self {
        GetPubTemplateKeywords { tid: tid.into() }
    }
}

impl Request for GetPubTemplateKeywords {
    type Response = PubTemplateKeywords;
    fn endpoint(&self) -> Result<Endpoint> {
        check_arg("tid", &self.tid, 32)?;
        Ok(Endpoint::get("/wxaapi/newtmpl/getpubtemplatekeywords")
            .with_base_token()
            .query("tid", self.tid.clone()))
    }
}

/// The answer of [`GetPubTemplateKeywords`].
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct PubTemplateKeywords {
    /// The keywords.
    #[serde(default)]
    pub data: Vec<PubTemplateKeyword>,
}

/// A keyword of a public title.
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct PubTemplateKeyword {
    /// Its id (what [`AddSubscribeTemplate`] takes).
    #[serde(default)]
    pub kid: u32,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// An example value.
    #[serde(default)]
    pub example: String,
    /// Its type as WeChat names it (`thing`); see [`keyword_type`](Self::keyword_type).
    #[serde(default)]
    pub rule: String,
}

impl PubTemplateKeyword {
    /// The type of the keyword (`None` for a type WeChat added after this release).
    #[must_use]
    pub fn keyword_type(&self) -> Option<KeywordType> {
        KeywordType::parse(&self.rule)
    }

    /// The data key a send fills for this keyword (`thing1`): its rule and its id.
    #[must_use]
    pub fn data_key(&self) -> String {
        format!("{}{}", self.rule, self.kid)
    }
}

/// `POST /wxaapi/newtmpl/addtemplate`: adds a template from a public title with 2 to 5 of its
/// keywords, in the order given.
#[derive(Clone, Debug, Serialize)]
#[must_use]
pub struct AddSubscribeTemplate {
    tid: String,
    #[serde(rename = "kidList")]
    kid_list: Vec<u32>,
    #[serde(rename = "sceneDesc", skip_serializing_if = "Option::is_none")]
    scene_desc: Option<String>,
}

impl AddSubscribeTemplate {
    /// Title `tid` with keywords `kids` in that order.
    pub fn new(tid: impl Into<String>, kids: impl IntoIterator<Item = u32>) -> Self {
        AddSubscribeTemplate {
            tid: tid.into(),
            kid_list: kids.into_iter().collect(),
            scene_desc: None,
        }
    }

    /// The scene the template serves (at most 15 characters).
    pub fn scene_desc(mut self, desc: impl Into<String>) -> Self {
        self.scene_desc = Some(desc.into());
        self
    }
}

impl Request for AddSubscribeTemplate {
    type Response = AddedSubscribeTemplate;
    fn endpoint(&self) -> Result<Endpoint> {
        check_arg("tid", &self.tid, 32)?;
        if !(2..=5).contains(&self.kid_list.len()) {
            return Err(InvalidInput::new("kidList", "must hold 2 to 5 keyword ids").into());
        }
        if let Some(desc) = &self.scene_desc {
            check_arg("sceneDesc", desc, 256)?;
            if desc.chars().count() > 15 {
                return Err(InvalidInput::new("sceneDesc", "at most 15 characters").into());
            }
        }
        Ok(Endpoint::post_json("/wxaapi/newtmpl/addtemplate", self)?.with_base_token())
    }
}

/// The answer of [`AddSubscribeTemplate`].
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct AddedSubscribeTemplate {
    /// The new template's id (what [`SubscribeSend`] takes).
    #[serde(rename = "priTmplId")]
    pub pri_tmpl_id: String,
}

/// `GET /wxaapi/newtmpl/gettemplate`: the account's subscription templates.
#[derive(Clone, Copy, Debug, Default)]
pub struct GetSubscribeTemplates;

impl Request for GetSubscribeTemplates {
    type Response = SubscribeTemplates;
    fn endpoint(&self) -> Result<Endpoint> {
        Ok(Endpoint::get("/wxaapi/newtmpl/gettemplate").with_base_token())
    }
}

/// The answer of [`GetSubscribeTemplates`].
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct SubscribeTemplates {
    /// The templates.
    #[serde(default)]
    pub data: Vec<SubscribeTemplate>,
}

/// One of the account's subscription templates.
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct SubscribeTemplate {
    /// Its id (what [`SubscribeSend`] takes).
    #[serde(default, rename = "priTmplId")]
    pub pri_tmpl_id: String,
    /// Its title.
    #[serde(default)]
    pub title: String,
    /// Its content with the keyword slots (`{{thing1.DATA}}`).
    #[serde(default)]
    pub content: String,
    /// An example.
    #[serde(default)]
    pub example: String,
    /// `2` one-time, `3` long-term.
    #[serde(default, rename = "type")]
    pub kind: u32,
}

/// `POST /wxaapi/newtmpl/deltemplate`: deletes one of the account's subscription templates.
#[derive(Clone, Debug)]
pub struct DeleteSubscribeTemplate {
    /// The template's id.
    pub pri_tmpl_id: String,
}

impl DeleteSubscribeTemplate {
    /// Deletes `pri_tmpl_id`.
    #[must_use]
    pub fn new(pri_tmpl_id: impl Into<String>) -> Self {
        DeleteSubscribeTemplate {
            pri_tmpl_id: pri_tmpl_id.into(),
        }
    }
}

impl Request for DeleteSubscribeTemplate {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        check_arg("priTmplId", &self.pri_tmpl_id, MAX_ID_LEN)?;
        let body = serde_json::json!({ "priTmplId": self.pri_tmpl_id });
        Ok(Endpoint::post_json("/wxaapi/newtmpl/deltemplate", &body)?.with_base_token())
    }
}

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::{Value, json};
    use wx_core::Error;

    use super::*;
    use crate::Auth;

    fn body(ep: &Endpoint) -> Value {
        serde_json::from_slice(ep.body().expect("a body")).expect("JSON")
    }

    fn refused(r: &impl Request) -> (&'static str, &'static str) {
        match r.endpoint() {
            Err(Error::InvalidInput(i)) => (i.argument, i.reason),
            other => panic!("expected InvalidInput, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn bizsend_encodes_the_documented_body() {
        let send = SubscribeSend::new("OPENID", "TEMPLATE_ID")
            .page("https://mp.weixin.qq.com")
            .miniprogram("wx-mini", "index?foo=bar")
            .data("name1", "广州腾讯科技有限公司")
            .data("thing8", "广州腾讯科技有限公司")
            .data("time7", "2019年8月8日");
        let ep = send.endpoint().expect("valid");
        assert_eq!(
            (ep.method(), ep.path()),
            (&Method::POST, "/cgi-bin/message/subscribe/bizsend")
        );
        assert_eq!(ep.auth_kind(), Auth::BaseToken);
        assert!(
            !ep.is_idempotent(),
            "no dedup key: never retried after a timeout"
        );
        assert_eq!(
            body(&ep),
            json!({
                "touser": "OPENID",
                "template_id": "TEMPLATE_ID",
                "page": "https://mp.weixin.qq.com",
                "miniprogram": {"appid": "wx-mini", "pagepath": "index?foo=bar"},
                "data": {
                    "name1": {"value": "广州腾讯科技有限公司"},
                    "thing8": {"value": "广州腾讯科技有限公司"},
                    "time7": {"value": "2019年8月8日"}
                }
            })
        );
    }

    #[test]
    fn bizsend_values_follow_their_keyword_rules() {
        let base = || SubscribeSend::new("o1", "T");
        let _ = base().data("thing1", "x").endpoint().expect("valid");
        assert_eq!(refused(&base()), ("data", "must hold at least one keyword"));
        assert_eq!(refused(&base().data("thing1", "一".repeat(21))).0, "data");
        assert_eq!(
            refused(&base().data("number2", "12a")).1,
            "a `number` value holds only digits and one decimal point"
        );
        assert_eq!(refused(&base().data("phrase3", "ok")).0, "data");
        assert_eq!(refused(&base().data("amount4", "12345678901")).0, "data");
        assert_eq!(refused(&base().data("date5", "15:01")).0, "data");
        assert_eq!(
            refused(&base().data("car_number6", "粤A8Z8888挂")).0,
            "data"
        );
        // An unknown type is WeChat's to check; only the basics here.
        let _ = base()
            .data("future_type1", "anything")
            .endpoint()
            .expect("passed on");
        assert_eq!(refused(&base().data("future_type1", "")).0, "data");
        assert_eq!(
            refused(&SubscribeSend::new("", "T").data("thing1", "x")).0,
            "touser"
        );
        assert_eq!(
            refused(&base().data("thing1", "x").page("ftp://x")).0,
            "page"
        );
    }

    #[test]
    fn library_requests_encode_as_documented() {
        let ep = GetCategories.endpoint().expect("ok");
        assert_eq!(
            (ep.method(), ep.path()),
            (&Method::GET, "/wxaapi/newtmpl/getcategory")
        );

        let ep = GetPubTemplateTitles::new([2, 616]).endpoint().expect("ok");
        assert_eq!(ep.path(), "/wxaapi/newtmpl/getpubtemplatetitles");
        assert_eq!(
            ep.query_names().collect::<Vec<_>>(),
            ["ids", "start", "limit"]
        );
        let pairs = ep.query_pairs();
        assert_eq!(
            pairs,
            [
                ("ids", "2,616".to_owned()),
                ("start", "0".to_owned()),
                ("limit", "30".to_owned())
            ]
        );
        assert_eq!(refused(&GetPubTemplateTitles::new([])).0, "ids");
        let mut big = GetPubTemplateTitles::new([2]);
        big.limit = 31;
        assert_eq!(refused(&big).0, "limit");

        let ep = GetPubTemplateKeywords::new("99").endpoint().expect("ok");
        assert_eq!(ep.path(), "/wxaapi/newtmpl/getpubtemplatekeywords");
        assert_eq!(ep.query_pairs(), [("tid", "99".to_owned())]);

        let ep = AddSubscribeTemplate::new("401", [1, 2])
            .scene_desc("测试数据")
            .endpoint()
            .expect("ok");
        assert_eq!(
            (ep.method(), ep.path()),
            (&Method::POST, "/wxaapi/newtmpl/addtemplate")
        );
        assert!(!ep.is_idempotent());
        assert_eq!(
            body(&ep),
            json!({"tid": "401", "kidList": [1, 2], "sceneDesc": "测试数据"})
        );
        assert_eq!(refused(&AddSubscribeTemplate::new("401", [1])).0, "kidList");
        assert_eq!(
            refused(&AddSubscribeTemplate::new("401", 1..=6)).0,
            "kidList"
        );
        assert_eq!(
            refused(&AddSubscribeTemplate::new("401", [1, 2]).scene_desc("一".repeat(16))).0,
            "sceneDesc"
        );

        let ep = GetSubscribeTemplates.endpoint().expect("ok");
        assert_eq!(
            (ep.method(), ep.path()),
            (&Method::GET, "/wxaapi/newtmpl/gettemplate")
        );

        let ep = DeleteSubscribeTemplate::new("P1").endpoint().expect("ok");
        assert_eq!(ep.path(), "/wxaapi/newtmpl/deltemplate");
        assert_eq!(body(&ep), json!({"priTmplId": "P1"}));
    }

    #[test]
    fn titles_page_by_offset() {
        let first = GetPubTemplateTitles::new([616]);
        let answer: PubTemplateTitles = serde_json::from_str(
            r#"{"errcode":0,"errmsg":"ok","count":55,"data":[{"tid":99,"title":"付款成功通知","type":2,"categoryId":"616"}]}"#,
        )
        .expect("decodes");
        let page = first.page_of(answer);
        assert_eq!(page.items[0].tid, "99");
        assert_eq!(page.items[0].category_id, "616");
        assert_eq!(page.total, Some(55));
        assert_eq!(page.next, Some(Cursor::Offset(1)));
        assert_eq!(first.at(&Cursor::Offset(30)).start, 30);
    }

    #[test]
    fn keywords_know_their_type_and_key() {
        let kws: PubTemplateKeywords = serde_json::from_str(
            r#"{"count":1,"data":[{"kid":1,"name":"物品名称","example":"名称","rule":"thing"}]}"#,
        )
        .expect("decodes");
        assert_eq!(kws.data[0].keyword_type(), Some(KeywordType::Thing));
        assert_eq!(kws.data[0].data_key(), "thing1");
    }
}
