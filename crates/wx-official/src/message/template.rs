//! Template messages (模板消息): `message/template/send` and the template management calls
//! under `cgi-bin/template/`.

use serde::{Deserialize, Serialize};
use wx_core::{Ack, InvalidInput, OpenId, Result, check_arg, lenient};

use super::{
    KeywordType, MAX_ID_LEN, MAX_URL_LEN, MiniProgram, check_data_key, data_map, set_data,
};
use crate::endpoint::Endpoint;
use crate::oauth::MAX_OPENID_LEN;
use crate::request::Request;
use crate::url_check::check_http_url;

/// Longest `client_msg_id` accepted (the client's bound; WeChat documents none).
const MAX_CLIENT_MSG_ID_LEN: usize = 64;

/// `POST /cgi-bin/message/template/send`: a template message to one follower.
///
/// Each value carries a `client_msg_id`: [`new`](Self::new) generates one (32 random hex
/// digits) and [`with_client_msg_id`](Self::with_client_msg_id) replaces it with yours (an order number,
/// say). WeChat sends one message per openid + `client_msg_id` within 10 minutes, so this send
/// is idempotent: the client retries it after a timeout, and sending the same value again
/// within 10 minutes delivers nothing more. Build a new value for a new message.
///
/// Since 2023-05 WeChat shows neither `first` / `remark` lines nor colours, and about 20
/// characters of each value; values of category templates' typed keys (`thing1`,
/// `character_string2`, `phone_number3`, `car_number4`, `const5`) are checked against their
/// caps (20, 32, 17, 8, 20 characters) before sending.
///
/// ```
/// use wx_official::Request;
/// use wx_official::message::TemplateSend;
/// let send = TemplateSend::new("o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY")
///     .url("https://shop.example.com/orders/1001")
///     .data("thing1", "Coffee beans")
///     .with_client_msg_id("order-1001-shipped");
/// let ep = send.endpoint()?;
/// assert_eq!(ep.name(), "cgi-bin/message/template/send");
/// assert!(ep.is_idempotent(), "deduplicated by client_msg_id");
/// # Ok::<(), wx_core::Error>(())
/// ```
#[derive(Clone, Debug, Serialize)]
#[must_use]
pub struct TemplateSend {
    touser: OpenId,
    template_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    miniprogram: Option<MiniProgram>,
    #[serde(serialize_with = "data_map")]
    data: Vec<(String, String)>,
    client_msg_id: String,
}

impl TemplateSend {
    /// A message of template `template_id` to `touser`, with a fresh `client_msg_id`.
    pub fn new(touser: impl Into<OpenId>, template_id: impl Into<String>) -> Self {
        TemplateSend {
            touser: touser.into(),
            template_id: template_id.into(),
            url: None,
            miniprogram: None,
            data: Vec::new(),
            client_msg_id: format!("{:032x}", rand::random::<u128>()),
        }
    }

    /// The page the message opens (when no mini-program is set, or the client cannot open it).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The mini-program page the message opens (preferred over `url`).
    pub fn miniprogram(mut self, appid: impl Into<String>, pagepath: impl Into<String>) -> Self {
        self.miniprogram = Some(MiniProgram::new(appid, pagepath));
        self
    }

    /// Sets the value of the template's keyword `key` (`thing1`, `keyword1`...); a second
    /// value for the same key replaces the first.
    pub fn data(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        set_data(&mut self.data, key.into(), value.into());
        self
    }

    /// Replaces the generated `client_msg_id` (your dedup key: the same id to the same user
    /// within 10 minutes is sent once).
    pub fn with_client_msg_id(mut self, id: impl Into<String>) -> Self {
        self.client_msg_id = id.into();
        self
    }

    /// The `client_msg_id` this message is sent with.
    #[must_use]
    pub fn client_msg_id(&self) -> &str {
        &self.client_msg_id
    }

    /// The recipient.
    #[must_use]
    pub fn touser(&self) -> &OpenId {
        &self.touser
    }
}

/// The cap of a category template's typed key (`thing1` → 20), from the 2023 rules.
fn template_value_cap(key: &str) -> Option<(usize, &'static str)> {
    if let Some(n) = key.strip_prefix("const")
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
    {
        return Some((20, "a `const` value is at most 20 characters"));
    }
    match KeywordType::of_key(key)? {
        KeywordType::Thing => Some((20, "a `thing` value is at most 20 characters")),
        KeywordType::CharacterString => {
            Some((32, "a `character_string` value is at most 32 characters"))
        }
        KeywordType::PhoneNumber => Some((17, "a `phone_number` value is at most 17 characters")),
        KeywordType::CarNumber => Some((8, "a `car_number` value is at most 8 characters")),
        _ => None,
    }
}

impl Request for TemplateSend {
    type Response = TemplateSent;

    fn endpoint(&self) -> Result<Endpoint> {
        check_arg("touser", self.touser.as_str(), MAX_OPENID_LEN)?;
        check_arg("template_id", &self.template_id, MAX_ID_LEN)?;
        check_arg("client_msg_id", &self.client_msg_id, MAX_CLIENT_MSG_ID_LEN)?;
        if let Some(url) = &self.url {
            check_http_url("url", url, MAX_URL_LEN)?;
        }
        if let Some(mp) = &self.miniprogram {
            mp.check()?;
        }
        if self.data.is_empty() {
            return Err(InvalidInput::new("data", "must hold at least one keyword").into());
        }
        for (key, value) in &self.data {
            check_data_key(key)?;
            if let Some((cap, reason)) = template_value_cap(key)
                && value.chars().count() > cap
            {
                return Err(InvalidInput::new("data", reason).into());
            }
        }
        Ok(Endpoint::post_json("/cgi-bin/message/template/send", self)?
            .with_base_token()
            // WeChat drops a repeat of openid + client_msg_id within 10 minutes.
            .idempotent(true))
    }
}

/// The answer of [`TemplateSend`].
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct TemplateSent {
    /// The message's id (64-bit), as the `TEMPLATESENDJOBFINISH` push names it (`MsgID`).
    #[serde(deserialize_with = "lenient::uint")]
    pub msgid: u64,
}

/// `GET /cgi-bin/template/get_all_private_template`: the account's templates.
#[derive(Clone, Copy, Debug, Default)]
pub struct GetPrivateTemplates;

impl Request for GetPrivateTemplates {
    type Response = PrivateTemplateList;
    fn endpoint(&self) -> Result<Endpoint> {
        Ok(Endpoint::get("/cgi-bin/template/get_all_private_template").with_base_token())
    }
}

/// The answer of [`GetPrivateTemplates`].
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct PrivateTemplateList {
    /// The templates.
    #[serde(default)]
    pub template_list: Vec<PrivateTemplate>,
}

/// One of the account's templates.
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct PrivateTemplate {
    /// Its id (what [`TemplateSend`] takes).
    #[serde(default)]
    pub template_id: String,
    /// Its title.
    #[serde(default)]
    pub title: String,
    /// The primary industry it belongs to.
    #[serde(default)]
    pub primary_industry: String,
    /// The secondary industry it belongs to.
    #[serde(default)]
    pub deputy_industry: String,
    /// Its content with the keyword slots (`{{thing1.DATA}}`).
    #[serde(default)]
    pub content: String,
    /// An example.
    #[serde(default)]
    pub example: String,
}

/// `POST /cgi-bin/template/del_private_template`: deletes one of the account's templates.
#[derive(Clone, Debug)]
pub struct DeletePrivateTemplate {
    /// The template's id.
    pub template_id: String,
}

impl DeletePrivateTemplate {
    /// Deletes `template_id`.
    #[must_use]
    pub fn new(template_id: impl Into<String>) -> Self {
        DeletePrivateTemplate {
            template_id: template_id.into(),
        }
    }
}

impl Request for DeletePrivateTemplate {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        check_arg("template_id", &self.template_id, MAX_ID_LEN)?;
        let body = serde_json::json!({ "template_id": self.template_id });
        Ok(Endpoint::post_json("/cgi-bin/template/del_private_template", &body)?.with_base_token())
    }
}

/// `POST /cgi-bin/template/api_add_template`: adds a library template to the account by its
/// short id (`TM00015`, `OPENTM207498902`), for category templates with the keyword names to
/// use.
#[derive(Clone, Debug, Serialize)]
#[must_use]
pub struct AddTemplate {
    template_id_short: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    keyword_name_list: Vec<String>,
}

impl AddTemplate {
    /// Adds the library template `template_id_short`.
    pub fn new(template_id_short: impl Into<String>) -> Self {
        AddTemplate {
            template_id_short: template_id_short.into(),
            keyword_name_list: Vec::new(),
        }
    }

    /// The keyword names to use, in order (category templates).
    pub fn keywords(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.keyword_name_list = names.into_iter().map(Into::into).collect();
        self
    }
}

impl Request for AddTemplate {
    type Response = AddedTemplate;
    fn endpoint(&self) -> Result<Endpoint> {
        check_arg("template_id_short", &self.template_id_short, MAX_ID_LEN)?;
        for name in &self.keyword_name_list {
            check_arg("keyword_name_list", name, MAX_ID_LEN)?;
        }
        Ok(Endpoint::post_json("/cgi-bin/template/api_add_template", self)?.with_base_token())
    }
}

/// The answer of [`AddTemplate`].
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct AddedTemplate {
    /// The new template's id.
    pub template_id: String,
}

/// `GET /cgi-bin/template/get_industry`: the account's two industries.
#[derive(Clone, Copy, Debug, Default)]
pub struct GetIndustry;

impl Request for GetIndustry {
    type Response = Industries;
    fn endpoint(&self) -> Result<Endpoint> {
        Ok(Endpoint::get("/cgi-bin/template/get_industry").with_base_token())
    }
}

/// The answer of [`GetIndustry`].
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct Industries {
    /// The primary industry.
    #[serde(default)]
    pub primary_industry: Industry,
    /// The secondary industry.
    #[serde(default)]
    pub secondary_industry: Industry,
}

/// An industry: its class and sub-class (`IT科技` / `互联网|电子商务`).
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct Industry {
    /// The class.
    #[serde(default)]
    pub first_class: String,
    /// The sub-class.
    #[serde(default)]
    pub second_class: String,
}

/// `POST /cgi-bin/template/api_set_industry`: sets the account's two industries by their
/// numbers in WeChat's industry table (`1` is IT科技 / 互联网|电子商务). WeChat allows a change
/// once a month, so this is never retried after a timeout.
#[derive(Clone, Copy, Debug)]
pub struct SetIndustry {
    /// The primary industry's number.
    pub industry_id1: u32,
    /// The secondary industry's number.
    pub industry_id2: u32,
}

impl Request for SetIndustry {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        if self.industry_id1 == 0 || self.industry_id2 == 0 {
            return Err(InvalidInput::new("industry_id", "industry numbers start at 1").into());
        }
        let body = serde_json::json!({
            "industry_id1": self.industry_id1.to_string(),
            "industry_id2": self.industry_id2.to_string(),
        });
        Ok(Endpoint::post_json("/cgi-bin/template/api_set_industry", &body)?.with_base_token())
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

    #[test]
    fn template_send_encodes_the_documented_body() {
        let send = TemplateSend::new("OPENID", "ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY")
            .url("http://weixin.qq.com/download")
            .miniprogram("xiaochengxuappid12345", "index?foo=bar")
            .data("first", "恭喜你购买成功!")
            .data("keyword1", "巧克力")
            .data("keyword2", "39.8元")
            .data("keyword3", "2014年9月22日")
            .data("remark", "欢迎再次购买!")
            .with_client_msg_id("order-1001");
        let ep = send.endpoint().expect("valid");
        assert_eq!(ep.method(), Method::POST);
        assert_eq!(ep.path(), "/cgi-bin/message/template/send");
        assert_eq!(ep.auth_kind(), Auth::BaseToken);
        assert!(ep.is_idempotent());
        assert_eq!(
            body(&ep),
            json!({
                "touser": "OPENID",
                "template_id": "ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY",
                "url": "http://weixin.qq.com/download",
                "miniprogram": {"appid": "xiaochengxuappid12345", "pagepath": "index?foo=bar"},
                "data": {
                    "first": {"value": "恭喜你购买成功!"},
                    "keyword1": {"value": "巧克力"},
                    "keyword2": {"value": "39.8元"},
                    "keyword3": {"value": "2014年9月22日"},
                    "remark": {"value": "欢迎再次购买!"}
                },
                "client_msg_id": "order-1001"
            })
        );
        let raw = String::from_utf8(ep.body().expect("body").to_vec()).expect("utf8");
        assert!(
            raw.find("\"first\"") < raw.find("\"remark\""),
            "caller's order kept"
        );
    }

    #[test]
    fn every_template_send_carries_its_own_client_msg_id() {
        let a = TemplateSend::new("o1", "T").data("thing1", "x");
        let b = TemplateSend::new("o1", "T").data("thing1", "x");
        assert_eq!(a.client_msg_id().len(), 32);
        assert_ne!(a.client_msg_id(), b.client_msg_id());
        let body_a = body(&a.endpoint().expect("valid"));
        assert_eq!(body_a["client_msg_id"], a.client_msg_id());
        assert!(body_a.get("url").is_none() && body_a.get("miniprogram").is_none());
        // The same value sends the same id every time (a manual resend is deduplicated too).
        assert_eq!(body(&a.endpoint().expect("valid")), body_a);
    }

    #[test]
    fn template_send_arguments_are_checked() {
        let arg = |send: TemplateSend| match send.endpoint() {
            Err(Error::InvalidInput(i)) => i.argument,
            other => panic!("expected InvalidInput, got {other:?}"),
        };
        let ok = || TemplateSend::new("o1", "T").data("thing1", "x");
        assert_eq!(arg(TemplateSend::new("", "T").data("k", "v")), "touser");
        assert_eq!(
            arg(TemplateSend::new("o1", "").data("k", "v")),
            "template_id"
        );
        assert_eq!(arg(TemplateSend::new("o1", "T")), "data");
        assert_eq!(arg(ok().data("bad key", "v")), "data key");
        assert_eq!(arg(ok().url("/relative")), "url");
        assert_eq!(arg(ok().miniprogram("", "p")), "miniprogram.appid");
        assert_eq!(arg(ok().with_client_msg_id("")), "client_msg_id");
        assert_eq!(
            arg(ok().with_client_msg_id("x".repeat(65))),
            "client_msg_id"
        );
        assert_eq!(arg(ok().data("thing2", "一".repeat(21))), "data");
        assert_eq!(arg(ok().data("character_string3", "1".repeat(33))), "data");
        assert_eq!(arg(ok().data("const4", "c".repeat(21))), "data");
        let _ = ok()
            .data("thing2", "一".repeat(20))
            .endpoint()
            .expect("at the cap");
        let _ = ok()
            .data("keyword1", "x".repeat(200))
            .endpoint()
            .expect("untyped keys are not capped");
    }

    #[test]
    fn management_requests_encode_as_documented() {
        let ep = GetPrivateTemplates.endpoint().expect("ok");
        assert_eq!(
            (ep.method(), ep.path()),
            (&Method::GET, "/cgi-bin/template/get_all_private_template")
        );
        assert_eq!(ep.auth_kind(), Auth::BaseToken);

        let ep = DeletePrivateTemplate::new("T-1").endpoint().expect("ok");
        assert_eq!(ep.path(), "/cgi-bin/template/del_private_template");
        assert!(!ep.is_idempotent());
        assert_eq!(body(&ep), json!({"template_id": "T-1"}));

        let ep = AddTemplate::new("TM00015").endpoint().expect("ok");
        assert_eq!(ep.path(), "/cgi-bin/template/api_add_template");
        assert_eq!(body(&ep), json!({"template_id_short": "TM00015"}));
        let ep = AddTemplate::new("OPENTM1")
            .keywords(["商品名称", "快递单号"])
            .endpoint()
            .expect("ok");
        assert_eq!(
            body(&ep),
            json!({"template_id_short": "OPENTM1", "keyword_name_list": ["商品名称", "快递单号"]})
        );
        assert!(AddTemplate::new("").endpoint().is_err());

        let ep = GetIndustry.endpoint().expect("ok");
        assert_eq!(
            (ep.method(), ep.path()),
            (&Method::GET, "/cgi-bin/template/get_industry")
        );

        let ep = SetIndustry {
            industry_id1: 1,
            industry_id2: 4,
        }
        .endpoint()
        .expect("ok");
        assert_eq!(ep.path(), "/cgi-bin/template/api_set_industry");
        assert!(!ep.is_idempotent());
        assert_eq!(body(&ep), json!({"industry_id1": "1", "industry_id2": "4"}));
        assert!(
            SetIndustry {
                industry_id1: 0,
                industry_id2: 4
            }
            .endpoint()
            .is_err()
        );
    }

    #[test]
    fn answers_decode() {
        let sent: TemplateSent =
            serde_json::from_str(r#"{"errcode":0,"errmsg":"ok","msgid":200228332}"#).expect("ok");
        assert_eq!(sent.msgid, 200_228_332);
        let big: TemplateSent =
            serde_json::from_str(r#"{"msgid":1700827132819554304}"#).expect("64-bit");
        assert_eq!(big.msgid, 1_700_827_132_819_554_304);
        let text: TemplateSent = serde_json::from_str(r#"{"msgid":"200228332"}"#).expect("string");
        assert_eq!(text.msgid, 200_228_332);
        let list: PrivateTemplateList = serde_json::from_str(
            r#"{"template_list":[{"template_id":"T","title":"订单发货","primary_industry":"IT科技","deputy_industry":"互联网|电子商务","content":"{{thing1.DATA}}","example":"x"}]}"#,
        )
        .expect("list");
        assert_eq!(list.template_list[0].title, "订单发货");
        let ind: Industries = serde_json::from_str(
            r#"{"primary_industry":{"first_class":"运输与仓储","second_class":"快递"},"secondary_industry":{"first_class":"IT科技","second_class":"互联网|电子商务"}}"#,
        )
        .expect("industries");
        assert_eq!(ind.primary_industry.second_class, "快递");
    }
}
