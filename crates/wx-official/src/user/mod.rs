//! Followers (`cgi-bin/user/*`): a follower's record, up to 100 records at a time, every
//! follower's openid as a stream, and remarks; [`tag`] holds tags, [`blacklist`] the blacklist.
//!
//! Every request here takes the base access token and checks its arguments before anything is
//! sent: an openid list longer than one call allows is refused with
//! [`wx_core::Error::InvalidInput`], never split silently (the caller decides how to batch).
//!
//! ```
//! use wx_official::Request as _;
//! use wx_official::user;
//!
//! let ep = user::Info::new("o6_bmjrPTlm6_2sgVt7hMZOPfL2M").endpoint()?;
//! assert_eq!(ep.name(), "cgi-bin/user/info");
//! // 101 openids are more than one `batchget` takes: refused, nothing sent.
//! let too_many = user::BatchInfo::new((0..101).map(|i| format!("o{i}")));
//! assert!(too_many.endpoint().is_err());
//! # Ok::<(), wx_core::Error>(())
//! ```
//!
//! Walk every follower page by page (10,000 openids a request) with
//! [`OfficialAccount::items`](crate::OfficialAccount::items):
//!
//! ```no_run
//! # async fn run(client: wx_official::DynOfficialAccount) -> wx_core::Result<()> {
//! use futures::TryStreamExt as _;
//! let openids: Vec<_> = client.items(wx_official::user::List::new()).try_collect().await?;
//! # let _ = openids; Ok(()) }
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use wx_core::{Ack, InvalidInput, Lang, OpenId, Result, UnionId, check_arg, lenient};

use crate::endpoint::Endpoint;
use crate::oauth::MAX_OPENID_LEN;
use crate::paging::{Cursor, Page, Paged};
use crate::request::Request;

pub mod blacklist;
pub mod tag;

/// Openids `user/get` returns per page at most.
pub const FOLLOWERS_PER_PAGE: usize = 10_000;
/// Records `user/info/batchget` returns per call at most.
pub const MAX_BATCH_INFO: usize = 100;
/// Longest remark WeChat accepts, in characters.
pub const MAX_REMARK_CHARS: usize = 30;

/// A follower's record (`user/info`, and each element of `user/info/batchget`).
///
/// Since 2021-12-27 WeChat returns no nickname and no avatar here (and no sex or region): a
/// profile with those needs the user's consent through web login
/// ([`OfficialAccount::user_info`](crate::OfficialAccount::user_info)). A user who does not
/// follow comes back with `subscribe` false and only `openid` (and `unionid` when bound).
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct Follower {
    /// Whether the user follows the account now.
    #[serde(default, deserialize_with = "lenient::flag")]
    pub subscribe: bool,
    /// The user's id in this app.
    pub openid: OpenId,
    /// The UnionID, when the app is bound to an open-platform account.
    #[serde(default, deserialize_with = "lenient::opt_union_id")]
    pub unionid: Option<UnionId>,
    /// The user's language (`zh_CN`...), `""` when not following.
    #[serde(default, deserialize_with = "lenient::string")]
    pub language: String,
    /// When the user last followed, in Unix seconds (`None` when not following).
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub subscribe_time: Option<u64>,
    /// The account's remark for the user (`""` for none).
    #[serde(default, deserialize_with = "lenient::string")]
    pub remark: String,
    /// The ids of the user's tags.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub tagid_list: Vec<u64>,
    /// How the user followed: `ADD_SCENE_SEARCH`, `ADD_SCENE_QR_CODE`,
    /// `ADD_SCENE_PROFILE_CARD`, `ADD_SCENE_OTHERS`... (`""` when not following).
    #[serde(default, deserialize_with = "lenient::string")]
    pub subscribe_scene: String,
    /// The numeric scene of the QR code the user followed through (`0` or absent for none).
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub qr_scene: Option<u64>,
    /// The string scene of the QR code the user followed through (`""` for none).
    #[serde(default, deserialize_with = "lenient::string")]
    pub qr_scene_str: String,
}

/// `GET /cgi-bin/user/info`: one follower's record (see [`Follower`]: no nickname or avatar
/// since 2021-12-27).
#[derive(Clone, Debug)]
#[must_use]
pub struct Info {
    openid: OpenId,
    lang: Lang,
}

impl Info {
    /// The record of `openid`, in Simplified Chinese.
    pub fn new(openid: impl Into<OpenId>) -> Self {
        Info {
            openid: openid.into(),
            lang: Lang::ZhCn,
        }
    }

    /// The language of the answer's texts.
    pub fn lang(mut self, lang: Lang) -> Self {
        self.lang = lang;
        self
    }
}

impl Request for Info {
    type Response = Follower;
    fn endpoint(&self) -> Result<Endpoint> {
        check_openid("openid", &self.openid)?;
        Ok(Endpoint::get("/cgi-bin/user/info")
            .with_base_token()
            .query("openid", self.openid.as_str())
            .query("lang", self.lang.as_str()))
    }
}

/// `POST /cgi-bin/user/info/batchget`: up to [`MAX_BATCH_INFO`] records at once. Users who do
/// not follow come back with only `openid` and `unionid`.
#[derive(Clone, Debug)]
#[must_use]
pub struct BatchInfo {
    openids: Vec<OpenId>,
    lang: Lang,
}

impl BatchInfo {
    /// The records of `openids` (1 to 100), in Simplified Chinese.
    pub fn new(openids: impl IntoIterator<Item = impl Into<OpenId>>) -> Self {
        BatchInfo {
            openids: openids.into_iter().map(Into::into).collect(),
            lang: Lang::ZhCn,
        }
    }

    /// The language of the answer's texts.
    pub fn lang(mut self, lang: Lang) -> Self {
        self.lang = lang;
        self
    }
}

/// The answer of `user/info/batchget`.
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct Followers {
    /// One record per openid asked for.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub user_info_list: Vec<Follower>,
}

#[derive(Serialize)]
struct BatchInfoBody<'a> {
    user_list: Vec<BatchInfoItem<'a>>,
}

#[derive(Serialize)]
struct BatchInfoItem<'a> {
    openid: &'a str,
    lang: &'static str,
}

impl Request for BatchInfo {
    type Response = Followers;
    fn endpoint(&self) -> Result<Endpoint> {
        check_openid_list(
            &self.openids,
            MAX_BATCH_INFO,
            "more than 100 openids: user/info/batchget takes at most 100 a call",
        )?;
        let body = BatchInfoBody {
            user_list: self
                .openids
                .iter()
                .map(|o| BatchInfoItem {
                    openid: o.as_str(),
                    lang: self.lang.as_str(),
                })
                .collect(),
        };
        // A read: safe to repeat after a timeout.
        Ok(Endpoint::post_json("/cgi-bin/user/info/batchget", &body)?
            .with_base_token()
            .idempotent(true))
    }
}

/// One page of openids: the answer of `user/get`, of a tag's members (`user/tag/get`, no
/// `total`) and of the blacklist (`tags/members/getblacklist`).
///
/// WeChat's last page still carries a non-empty `next_openid` (the last openid); asking from
/// there answers an empty page. The streams of [`OfficialAccount::items`](crate::OfficialAccount::items)
/// stop at the reported `total` or at the empty page.
#[derive(Clone, Debug, Deserialize)]
#[serde(from = "RawOpenIdPage")]
#[non_exhaustive]
pub struct OpenIdPage {
    /// How many openids the whole list holds (`user/get`, blacklist), when reported.
    pub total: Option<u64>,
    /// The openids of this page.
    pub openids: Vec<OpenId>,
    /// Where the next page starts (`""`: no more; see above for the last page).
    pub next_openid: String,
}

#[derive(Deserialize)]
struct RawOpenIdPage {
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    total: Option<u64>,
    #[serde(default)]
    data: Option<RawOpenIds>,
    #[serde(default, deserialize_with = "lenient::string")]
    next_openid: String,
}

#[derive(Deserialize)]
struct RawOpenIds {
    #[serde(default, deserialize_with = "null_as_empty")]
    openid: Vec<OpenId>,
}

impl From<RawOpenIdPage> for OpenIdPage {
    fn from(raw: RawOpenIdPage) -> Self {
        OpenIdPage {
            total: raw.total,
            openids: raw.data.map(|d| d.openid).unwrap_or_default(),
            next_openid: raw.next_openid,
        }
    }
}

impl OpenIdPage {
    /// This answer as a page of the paging adapter.
    pub(crate) fn into_page(self) -> Page<OpenId> {
        Page::new(
            self.openids,
            Some(Cursor::Openid(self.next_openid)),
            self.total,
        )
    }
}

/// The openid cursor of `cursor`, for the `at` of a paged request.
pub(crate) fn openid_cursor(cursor: &Cursor) -> Option<OpenId> {
    match cursor {
        Cursor::Openid(c) => Some(OpenId::new(c.clone())),
        _ => None,
    }
}

/// `GET /cgi-bin/user/get`: the openids of every follower, [`FOLLOWERS_PER_PAGE`] a page.
/// Paged: `client.items(user::List::new())` streams every openid.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct List {
    next_openid: Option<OpenId>,
}

impl List {
    /// The first page.
    pub fn new() -> Self {
        List::default()
    }

    /// The page after `openid` (a `next_openid` WeChat returned).
    pub fn after(openid: impl Into<OpenId>) -> Self {
        List {
            next_openid: Some(openid.into()),
        }
    }
}

impl Request for List {
    type Response = OpenIdPage;
    fn endpoint(&self) -> Result<Endpoint> {
        let ep = Endpoint::get("/cgi-bin/user/get").with_base_token();
        Ok(match &self.next_openid {
            Some(o) => {
                check_openid("next_openid", o)?;
                ep.query("next_openid", o.as_str())
            }
            None => ep,
        })
    }
}

impl Paged for List {
    type Item = OpenId;
    fn page_of(&self, answer: OpenIdPage) -> Page<OpenId> {
        answer.into_page()
    }
    fn at(&self, cursor: &Cursor) -> Self {
        List {
            next_openid: openid_cursor(cursor),
        }
    }
}

/// `POST /cgi-bin/user/info/updateremark`: sets the account's remark for a follower (at most
/// [`MAX_REMARK_CHARS`] characters; `""` clears it).
#[derive(Clone, Debug)]
#[must_use]
pub struct UpdateRemark {
    openid: OpenId,
    remark: String,
}

impl UpdateRemark {
    /// Sets `remark` on `openid`.
    pub fn new(openid: impl Into<OpenId>, remark: impl Into<String>) -> Self {
        UpdateRemark {
            openid: openid.into(),
            remark: remark.into(),
        }
    }
}

#[derive(Serialize)]
struct RemarkBody<'a> {
    openid: &'a str,
    remark: &'a str,
}

impl Request for UpdateRemark {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        check_openid("openid", &self.openid)?;
        if self.remark.chars().count() > MAX_REMARK_CHARS {
            return Err(InvalidInput::new("remark", "longer than 30 characters").into());
        }
        if self.remark.chars().any(char::is_control) {
            return Err(InvalidInput::new("remark", "must not contain control characters").into());
        }
        let body = RemarkBody {
            openid: self.openid.as_str(),
            remark: &self.remark,
        };
        // Setting the same remark twice is harmless.
        Ok(
            Endpoint::post_json("/cgi-bin/user/info/updateremark", &body)?
                .with_base_token()
                .idempotent(true),
        )
    }
}

/// Checks one openid argument.
pub(crate) fn check_openid(argument: &'static str, openid: &OpenId) -> Result<()> {
    Ok(check_arg(argument, openid.as_str(), MAX_OPENID_LEN)?)
}

/// Checks an openid list: 1 to `max` valid openids. A longer list is refused with
/// `too_many` (never split: the caller decides how to batch).
pub(crate) fn check_openid_list(
    openids: &[OpenId],
    max: usize,
    too_many: &'static str,
) -> Result<()> {
    if openids.is_empty() {
        return Err(InvalidInput::new("openids", "must not be empty").into());
    }
    if openids.len() > max {
        return Err(InvalidInput::new("openids", too_many).into());
    }
    openids.iter().try_for_each(|o| check_openid("openids", o))
}

/// A list that may be absent or `null`.
pub(crate) fn null_as_empty<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::{Value, json};
    use wx_core::Error;

    use super::*;
    use crate::Auth;

    /// The JSON body of `ep`.
    pub(crate) fn body(ep: &Endpoint) -> Value {
        serde_json::from_slice(ep.body().expect("a body")).expect("JSON body")
    }

    /// The rejected argument and reason of a request refused before sending.
    pub(crate) fn refused<R: Request>(r: &R) -> (&'static str, &'static str) {
        match r.endpoint() {
            Err(Error::InvalidInput(i)) => (i.argument, i.reason),
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn info_is_a_get_with_openid_and_lang() {
        let ep = Info::new("o1").lang(Lang::En).endpoint().expect("valid");
        assert_eq!(ep.method(), http::Method::GET);
        assert_eq!(ep.path(), "/cgi-bin/user/info");
        assert_eq!(ep.auth_kind(), Auth::BaseToken);
        assert_eq!(
            ep.query_pairs(),
            vec![("openid", "o1".to_owned()), ("lang", "en".to_owned())]
        );
        assert_eq!(refused(&Info::new("")).0, "openid");
        assert_eq!(refused(&Info::new("o\n1")).0, "openid");
    }

    #[test]
    fn batch_info_lists_each_openid_with_the_lang_and_caps_at_100() {
        let ep = BatchInfo::new(["o1", "o2"]).endpoint().expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/user/info/batchget");
        assert!(ep.is_idempotent(), "a read");
        assert_eq!(
            body(&ep),
            json!({"user_list": [{"openid": "o1", "lang": "zh_CN"}, {"openid": "o2", "lang": "zh_CN"}]})
        );
        let hundred = BatchInfo::new((0..100).map(|i| format!("o{i}")));
        assert_eq!(
            body(&hundred.endpoint().expect("100 ok"))["user_list"]
                .as_array()
                .map(Vec::len),
            Some(100)
        );
        let (arg, reason) = refused(&BatchInfo::new((0..101).map(|i| format!("o{i}"))));
        assert_eq!(arg, "openids");
        assert!(reason.contains("at most 100"), "{reason}");
        assert_eq!(refused(&BatchInfo::new(Vec::<String>::new())).0, "openids");
        assert_eq!(refused(&BatchInfo::new(["o1", ""])).0, "openids");
    }

    #[test]
    fn list_starts_without_a_cursor_and_pages_with_next_openid() {
        let first = List::new().endpoint().expect("valid");
        assert_eq!(first.path(), "/cgi-bin/user/get");
        assert!(first.query_pairs().is_empty());
        let next = List::new().at(&Cursor::Openid("o9".into()));
        assert_eq!(
            next.endpoint().expect("valid").query_pairs(),
            vec![("next_openid", "o9".to_owned())]
        );
        assert_eq!(
            List::after("o7").endpoint().expect("valid").query_pairs(),
            vec![("next_openid", "o7".to_owned())]
        );
    }

    #[test]
    fn the_page_decodes_the_fixture_shape_and_an_empty_last_answer() {
        let p: OpenIdPage = serde_json::from_value(json!({
            "total": 2, "count": 2, "data": {"openid": ["OPENID1", "OPENID2"]},
            "next_openid": "OPENID2"
        }))
        .expect("decodes");
        assert_eq!(p.total, Some(2));
        assert_eq!(
            p.openids,
            vec![OpenId::new("OPENID1"), OpenId::new("OPENID2")]
        );
        let page = List::new().page_of(p);
        assert_eq!(page.next, Some(Cursor::Openid("OPENID2".into())));
        let empty: OpenIdPage =
            serde_json::from_value(json!({"total": 2, "count": 0, "next_openid": ""}))
                .expect("decodes");
        assert!(empty.openids.is_empty());
    }

    #[test]
    fn remark_is_capped_at_30_characters_not_bytes() {
        let ep = UpdateRemark::new("o1", "三十".repeat(15))
            .endpoint()
            .expect("30 chars");
        assert_eq!(ep.path(), "/cgi-bin/user/info/updateremark");
        assert_eq!(
            body(&ep),
            json!({"openid": "o1", "remark": "三十".repeat(15)})
        );
        let _ = UpdateRemark::new("o1", "")
            .endpoint()
            .expect("clearing is allowed");
        assert_eq!(
            refused(&UpdateRemark::new("o1", "x".repeat(31))).0,
            "remark"
        );
        assert_eq!(refused(&UpdateRemark::new("o1", "a\u{7}")).0, "remark");
        assert_eq!(refused(&UpdateRemark::new("", "a")).0, "openid");
    }

    #[test]
    fn a_follower_decodes_without_nickname_and_an_unfollowed_user_with_openid_only() {
        let f: Follower = serde_json::from_value(json!({
            "subscribe": 1, "openid": "o1", "language": "zh_CN", "subscribe_time": 1382694957,
            "unionid": "u1", "remark": "", "groupid": 0, "tagid_list": [128, 2],
            "subscribe_scene": "ADD_SCENE_QR_CODE", "qr_scene": 98765, "qr_scene_str": ""
        }))
        .expect("decodes");
        assert!(f.subscribe);
        assert_eq!(f.tagid_list, vec![128, 2]);
        assert_eq!(f.qr_scene, Some(98765));
        assert_eq!(f.subscribe_time, Some(1382694957));
        let gone: Follower = serde_json::from_value(
            json!({"subscribe": 0, "openid": "o2", "unionid": "u2", "tagid_list": null}),
        )
        .expect("decodes");
        assert!(!gone.subscribe);
        assert_eq!(gone.unionid.as_ref().map(UnionId::as_str), Some("u2"));
        assert_eq!(gone.subscribe_time, None);
    }
}
