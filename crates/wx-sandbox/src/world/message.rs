//! Sending messages: template messages (and their management), subscription notices (and the
//! `wxaapi/newtmpl` template library), customer-service messages and typing.
//!
//! WeChat's rules: an unknown openid is `40003`; an unknown template `40037`; a template
//! message reaches followers only (`43004`), is delivered once per openid + `client_msg_id`
//! within 10 minutes (a repeat answers the first `msgid` and delivers nothing), and is followed
//! by its `TEMPLATESENDJOBFINISH` push when the app has a server URL; a customer-service message
//! (and typing) needs a follower whose last interaction is at most 48 hours old by the sandbox
//! clock (`45015`); a subscription notice needs an accepted subscription, one per notice
//! (`43101`), and every keyword of its template filled within the keyword type's length
//! (`47003` naming the field). What is delivered lands in the user's inbox.
//!
//! Set-up for tests: [`Sandbox::add_template`], [`Sandbox::add_subscribe_template`],
//! [`Sandbox::accept_subscription`]; a user's last interaction is its last action
//! (`Sandbox::act`).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};

use super::*;
use crate::{Sandbox, SandboxError};

/// The paths of the message group (re-exported in [`crate::paths`]).
pub(crate) mod paths {
    /// `POST /cgi-bin/message/template/send`: a template message.
    pub const TEMPLATE_SEND: &str = "/cgi-bin/message/template/send";
    /// `GET /cgi-bin/template/get_all_private_template`: the app's templates.
    pub const TEMPLATE_LIST: &str = "/cgi-bin/template/get_all_private_template";
    /// `POST /cgi-bin/template/del_private_template`: deletes a template.
    pub const TEMPLATE_DELETE: &str = "/cgi-bin/template/del_private_template";
    /// `POST /cgi-bin/template/api_add_template`: adds a library template by short id.
    pub const TEMPLATE_ADD: &str = "/cgi-bin/template/api_add_template";
    /// `GET /cgi-bin/template/get_industry`: the app's industries.
    pub const INDUSTRY_GET: &str = "/cgi-bin/template/get_industry";
    /// `POST /cgi-bin/template/api_set_industry`: sets the app's industries.
    pub const INDUSTRY_SET: &str = "/cgi-bin/template/api_set_industry";
    /// `POST /cgi-bin/message/subscribe/bizsend`: a subscription notice.
    pub const SUBSCRIBE_SEND: &str = "/cgi-bin/message/subscribe/bizsend";
    /// `GET /wxaapi/newtmpl/getcategory`: the library's categories.
    pub const SUBSCRIBE_CATEGORIES: &str = "/wxaapi/newtmpl/getcategory";
    /// `GET /wxaapi/newtmpl/getpubtemplatetitles`: the library's titles of some categories.
    pub const SUBSCRIBE_TITLES: &str = "/wxaapi/newtmpl/getpubtemplatetitles";
    /// `GET /wxaapi/newtmpl/getpubtemplatekeywords`: the keywords of a title.
    pub const SUBSCRIBE_KEYWORDS: &str = "/wxaapi/newtmpl/getpubtemplatekeywords";
    /// `POST /wxaapi/newtmpl/addtemplate`: adds a subscription template from a title.
    pub const SUBSCRIBE_ADD: &str = "/wxaapi/newtmpl/addtemplate";
    /// `GET /wxaapi/newtmpl/gettemplate`: the app's subscription templates.
    pub const SUBSCRIBE_LIST: &str = "/wxaapi/newtmpl/gettemplate";
    /// `POST /wxaapi/newtmpl/deltemplate`: deletes a subscription template.
    pub const SUBSCRIBE_DELETE: &str = "/wxaapi/newtmpl/deltemplate";
    /// `POST /cgi-bin/message/custom/send`: a customer-service message.
    pub const CUSTOM_SEND: &str = "/cgi-bin/message/custom/send";
    /// `POST /cgi-bin/message/custom/typing`: "typing…".
    pub const CUSTOM_TYPING: &str = "/cgi-bin/message/custom/typing";
}

use paths::*;

/// This group's routes.
pub(super) const ROUTES: &[Route] = &[
    Route::json(TEMPLATE_SEND, |w, c| w.template_send(c)),
    Route::json(TEMPLATE_LIST, |w, c| w.template_list(c)),
    Route::json(TEMPLATE_DELETE, |w, c| w.template_delete(c)),
    Route::json(TEMPLATE_ADD, |w, c| w.template_add(c)),
    Route::json(INDUSTRY_GET, |w, c| w.industry_get(c)),
    Route::json(INDUSTRY_SET, |w, c| w.industry_set(c)),
    Route::json(SUBSCRIBE_SEND, |w, c| w.subscribe_send(c)),
    Route::json(SUBSCRIBE_CATEGORIES, |w, c| w.subscribe_categories(c)),
    Route::json(SUBSCRIBE_TITLES, |w, c| w.subscribe_titles(c)),
    Route::json(SUBSCRIBE_KEYWORDS, |w, c| w.subscribe_keywords(c)),
    Route::json(SUBSCRIBE_ADD, |w, c| w.subscribe_add(c)),
    Route::json(SUBSCRIBE_LIST, |w, c| w.subscribe_list(c)),
    Route::json(SUBSCRIBE_DELETE, |w, c| w.subscribe_delete(c)),
    Route::json(CUSTOM_SEND, |w, c| w.custom_send(c)),
    Route::json(CUSTOM_TYPING, |w, c| w.custom_typing(c)),
];

/// WeChat sends one template message per openid + `client_msg_id` within this window.
const DEDUP_WINDOW: Duration = Duration::from_secs(600);
/// Customer-service messages are allowed this long after the user's last interaction.
const SERVICE_WINDOW: Duration = Duration::from_secs(48 * 3600);

const E_TEMPLATE: WxError = err(ErrCode::INVALID_TEMPLATE_ID, "invalid template_id");
const E_NOT_FOLLOWING: WxError = err(ErrCode::REQUIRE_SUBSCRIBE, "require subscribe");
const E_OUT_OF_TIME: WxError = err(
    ErrCode::RESPONSE_OUT_OF_TIME_LIMIT,
    "response out of time limit or subscription is canceled",
);
const E_REFUSED: WxError = err(
    ErrCode::USER_REFUSED_MESSAGE,
    "user refuse to accept the msg",
);
const E_DATA_FORMAT: WxError = err(ErrCode::DATA_FORMAT_ERROR, "data format error");
const E_MSGTYPE: WxError = err(ErrCode(40008), "invalid message type");

/// The `msgtype`s of customer-service messages.
const CUSTOM_TYPES: [&str; 11] = [
    "text",
    "image",
    "voice",
    "video",
    "music",
    "news",
    "mpnews",
    "mpnewsarticle",
    "msgmenu",
    "wxcard",
    "miniprogrampage",
];

/// The industries the sandbox knows (`api_set_industry` numbers), after WeChat's table.
const INDUSTRIES: [(&str, &str); 5] = [
    ("IT科技", "互联网|电子商务"),
    ("IT科技", "IT软件与服务"),
    ("IT科技", "IT硬件与设备"),
    ("IT科技", "电子技术"),
    ("IT科技", "通信与运营商"),
];

/// The public subscription-template library: categories, and titles with their keywords
/// (kid, name, rule, example).
const CATEGORIES: [(u64, &str); 2] = [(307, "快递、物流"), (616, "公交")];

struct LibraryTitle {
    tid: u64,
    title: &'static str,
    kind: u32,
    category: u64,
    keywords: &'static [(u32, &'static str, &'static str, &'static str)],
}

const LIBRARY: &[LibraryTitle] = &[
    LibraryTitle {
        tid: 501,
        title: "订单发货通知",
        kind: 2,
        category: 307,
        keywords: &[
            (1, "商品名称", "thing", "咖啡豆 1 kg"),
            (2, "快递单号", "character_string", "SF1234567890"),
            (3, "发货时间", "time", "2024年5月1日 15:01"),
            (4, "收货人", "name", "张三"),
        ],
    },
    LibraryTitle {
        tid: 502,
        title: "包裹签收提醒",
        kind: 2,
        category: 307,
        keywords: &[
            (1, "快递单号", "character_string", "SF1234567890"),
            (2, "签收时间", "time", "2024年5月2日 10:30"),
        ],
    },
    LibraryTitle {
        tid: 99,
        title: "到站提醒",
        kind: 3,
        category: 616,
        keywords: &[
            (1, "线路", "thing", "10路"),
            (2, "到站时间", "time", "08:15"),
            (3, "站点", "thing", "人民广场"),
        ],
    },
];

/// The most characters a keyword of `rule` holds (WeChat's documented caps; `47003` above).
fn rule_cap(rule: &str) -> usize {
    match rule {
        "thing" | "name" => 20,
        "number" | "letter" | "character_string" => 32,
        "symbol" | "phrase" => 5,
        "phone_number" => 17,
        "car_number" => 8,
        "amount" => 13,
        _ => 64,
    }
}

#[derive(Clone, Debug)]
struct Template {
    id: String,
    title: String,
    content: String,
}

#[derive(Clone, Debug)]
struct SubscribeTemplate {
    id: String,
    title: String,
    kind: u32,
    /// (name, data key such as `thing1`).
    keywords: Vec<(String, String)>,
}

impl SubscribeTemplate {
    fn content(&self) -> String {
        self.keywords
            .iter()
            .map(|(name, key)| format!("{name}:{{{{{key}.DATA}}}}\n"))
            .collect()
    }
}

/// The message group's state of one app.
#[derive(Default)]
struct Messages {
    templates: Vec<Template>,
    industries: Option<(usize, usize)>,
    subscribe_templates: Vec<SubscribeTemplate>,
    /// Accepted, unused subscriptions by (openid, template id).
    accepted: HashMap<(String, String), u32>,
    /// Template sends by (openid, client_msg_id): when, and the msgid answered.
    recent: HashMap<(String, String), (SystemTime, u64)>,
}

fn object(body: &[u8]) -> Result<Map<String, Value>, WxError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(E_DATA_FORMAT),
    }
}

fn field<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    m.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn ok() -> Value {
    json!({ "errcode": 0, "errmsg": "ok" })
}

impl World {
    /// Checks the token and returns the app's index and the JSON body.
    fn message_call(&self, c: &Call<'_>) -> Result<(usize, Map<String, Value>), WxError> {
        let i = self.check_base_token(&c.query, c.now)?;
        Ok((i, object(c.body)?))
    }

    /// The recipient of a send: a user of the app (`40003` otherwise).
    fn recipient(&self, i: usize, body: &Map<String, Value>) -> Result<String, WxError> {
        let openid = field(body, "touser").ok_or(E_OPENID)?;
        self.apps[i].user(openid).ok_or(E_OPENID)?;
        Ok(openid.to_owned())
    }

    // ---- template messages ---------------------------------------------------------------

    fn template_send(&mut self, c: &Call<'_>) -> Answer {
        let (i, body) = self.message_call(c)?;
        let openid = self.recipient(i, &body)?;
        let template_id = field(&body, "template_id").ok_or(E_TEMPLATE)?;
        let data = body
            .get("data")
            .and_then(Value::as_object)
            .ok_or(E_DATA_FORMAT)?;
        let msgid = self.msg_id();
        let app = &mut self.apps[i];
        let state = app.ext.get_mut::<Messages>();
        let template = state
            .templates
            .iter()
            .find(|t| t.id == template_id)
            .cloned()
            .ok_or(E_TEMPLATE)?;
        if !app.is_following(&openid) {
            return Err(E_NOT_FOLLOWING);
        }
        let state = app.ext.get_mut::<Messages>();
        state.recent.retain(|_, (at, _)| *at + DEDUP_WINDOW > c.now);
        let dedup = field(&body, "client_msg_id").map(|id| (openid.clone(), id.to_owned()));
        if let Some((_, first)) = dedup.as_ref().and_then(|k| state.recent.get(k)) {
            return Ok(json!({ "errcode": 0, "errmsg": "ok", "msgid": first }));
        }
        if let Some(key) = dedup {
            state.recent.insert(key, (c.now, msgid));
        }
        let mut content = json!({
            "template_id": template.id,
            "title": template.title,
            "data": data,
            "msgid": msgid,
        });
        for extra in ["url", "miniprogram"] {
            if let Some(v) = body.get(extra) {
                content[extra] = v.clone();
            }
        }
        app.deliver(
            &openid,
            InboxMessage::new(c.now, Via::Template, "template", content),
        );
        let appid = app.appid.clone();
        let done = PushFields::event("TEMPLATESENDJOBFINISH")
            .number("MsgID", msgid)
            .text("Status", "success");
        self.queue_push(&appid, &openid, done, c.now);
        Ok(json!({ "errcode": 0, "errmsg": "ok", "msgid": msgid }))
    }

    fn template_list(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let state = self.apps[i].ext.get_mut::<Messages>();
        let (first, second) = state
            .industries
            .map_or(("", ""), |(p, s)| (INDUSTRIES[p].0, INDUSTRIES[s].0));
        let list: Vec<Value> = state
            .templates
            .iter()
            .map(|t| {
                json!({
                    "template_id": t.id, "title": t.title, "primary_industry": first,
                    "deputy_industry": second, "content": t.content, "example": "",
                })
            })
            .collect();
        Ok(json!({ "template_list": list }))
    }

    fn template_delete(&mut self, c: &Call<'_>) -> Answer {
        let (i, body) = self.message_call(c)?;
        let id = field(&body, "template_id").ok_or(E_TEMPLATE)?;
        let templates = &mut self.apps[i].ext.get_mut::<Messages>().templates;
        let before = templates.len();
        templates.retain(|t| t.id != id);
        if templates.len() == before {
            return Err(E_TEMPLATE);
        }
        Ok(ok())
    }

    /// Any short id shaped like WeChat's (`TM00015`, `OPENTM207498902`) is in the sandbox's
    /// library; its keywords are the names given, or one `keyword1`.
    fn template_add(&mut self, c: &Call<'_>) -> Answer {
        let (i, body) = self.message_call(c)?;
        let short = field(&body, "template_id_short").ok_or(E_INVALID_ARGS)?;
        let digits = short
            .strip_prefix("OPENTM")
            .or_else(|| short.strip_prefix("TM"));
        if !digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())) {
            return Err(E_TEMPLATE);
        }
        let names: Vec<&str> = body
            .get("keyword_name_list")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let content = if names.is_empty() {
            "{{keyword1.DATA}}".to_owned()
        } else {
            names
                .iter()
                .enumerate()
                .map(|(n, name)| format!("{name}:{{{{keyword{}.DATA}}}}\n", n + 1))
                .collect()
        };
        let id = self.random_string(43);
        let template = Template {
            id: id.clone(),
            title: short.to_owned(),
            content,
        };
        self.apps[i]
            .ext
            .get_mut::<Messages>()
            .templates
            .push(template);
        Ok(json!({ "errcode": 0, "errmsg": "ok", "template_id": id }))
    }

    fn industry_get(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let class = |n: Option<usize>| {
            let (first, second) = n.map_or(("", ""), |n| INDUSTRIES[n]);
            json!({ "first_class": first, "second_class": second })
        };
        let set = self.apps[i].ext.get_mut::<Messages>().industries;
        Ok(json!({
            "primary_industry": class(set.map(|s| s.0)),
            "secondary_industry": class(set.map(|s| s.1)),
        }))
    }

    fn industry_set(&mut self, c: &Call<'_>) -> Answer {
        let (i, body) = self.message_call(c)?;
        let index = |name| {
            let n: usize = body.get(name).and_then(|v| match v {
                Value::String(s) => s.parse().ok(),
                Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
                _ => None,
            })?;
            (1..=INDUSTRIES.len()).contains(&n).then(|| n - 1)
        };
        let (Some(p), Some(s)) = (index("industry_id1"), index("industry_id2")) else {
            return Err(E_INVALID_ARGS);
        };
        self.apps[i].ext.get_mut::<Messages>().industries = Some((p, s));
        Ok(ok())
    }

    // ---- subscription notices ------------------------------------------------------------

    fn subscribe_send(&mut self, c: &Call<'_>) -> Answer {
        let (i, body) = self.message_call(c)?;
        let openid = self.recipient(i, &body)?;
        let id = field(&body, "template_id").ok_or(E_TEMPLATE)?;
        let data = body
            .get("data")
            .and_then(Value::as_object)
            .ok_or(E_DATA_FORMAT)?;
        let app = &mut self.apps[i];
        let state = app.ext.get_mut::<Messages>();
        let template = state
            .subscribe_templates
            .iter()
            .find(|t| t.id == id)
            .cloned()
            .ok_or(E_TEMPLATE)?;
        for (_, key) in &template.keywords {
            let value = data
                .get(key)
                .and_then(|v| v.get("value"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let rule = key.trim_end_matches(|c: char| c.is_ascii_digit());
            if value.is_empty() || value.chars().count() > rule_cap(rule) {
                return Err(WxError::new(
                    ErrCode::ARGUMENT_INVALID,
                    format!("argument invalid! data.{key}.value invalid"),
                ));
            }
        }
        let key = (openid.clone(), id.to_owned());
        match state.accepted.get_mut(&key) {
            Some(n) if *n > 0 => *n -= 1,
            _ => return Err(E_REFUSED),
        }
        let mut content = json!({ "template_id": id, "title": template.title, "data": data });
        for extra in ["page", "miniprogram"] {
            if let Some(v) = body.get(extra) {
                content[extra] = v.clone();
            }
        }
        app.deliver(
            &openid,
            InboxMessage::new(c.now, Via::Subscribe, "subscribe", content),
        );
        Ok(ok())
    }

    fn subscribe_categories(&mut self, c: &Call<'_>) -> Answer {
        self.check_base_token(&c.query, c.now)?;
        let data: Vec<Value> = CATEGORIES
            .iter()
            .map(|(id, name)| json!({ "id": id, "name": name }))
            .collect();
        Ok(json!({ "errcode": 0, "errmsg": "ok", "data": data }))
    }

    fn subscribe_titles(&mut self, c: &Call<'_>) -> Answer {
        self.check_base_token(&c.query, c.now)?;
        let number = |name| c.query.get(name).and_then(|v| v.parse::<usize>().ok());
        let ids: Vec<u64> = c
            .query
            .get("ids")
            .ok_or(E_INVALID_ARGS)?
            .split(',')
            .map(|s| s.trim().parse().map_err(|_| E_INVALID_ARGS))
            .collect::<Result<_, _>>()?;
        let (Some(start), Some(limit)) = (number("start"), number("limit")) else {
            return Err(E_INVALID_ARGS);
        };
        if !(1..=30).contains(&limit) {
            return Err(E_INVALID_ARGS);
        }
        let titles: Vec<&LibraryTitle> = LIBRARY
            .iter()
            .filter(|t| ids.contains(&t.category))
            .collect();
        let data: Vec<Value> = titles
            .iter()
            .skip(start)
            .take(limit)
            .map(|t| {
                json!({ "tid": t.tid, "title": t.title, "type": t.kind,
                        "categoryId": t.category.to_string() })
            })
            .collect();
        Ok(json!({ "errcode": 0, "errmsg": "ok", "count": titles.len(), "data": data }))
    }

    fn subscribe_keywords(&mut self, c: &Call<'_>) -> Answer {
        self.check_base_token(&c.query, c.now)?;
        let title = library_title(c.query.get("tid"))?;
        let data: Vec<Value> = title
            .keywords
            .iter()
            .map(|(kid, name, rule, example)| {
                json!({ "kid": kid, "name": name, "example": example, "rule": rule })
            })
            .collect();
        Ok(json!({ "errcode": 0, "errmsg": "ok", "count": data.len(), "data": data }))
    }

    fn subscribe_add(&mut self, c: &Call<'_>) -> Answer {
        let (i, body) = self.message_call(c)?;
        let tid = match body.get("tid") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let title = library_title(tid.as_deref())?;
        let kids: Vec<u64> = body
            .get("kidList")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        if !(2..=5).contains(&kids.len()) {
            return Err(E_INVALID_ARGS);
        }
        let keywords = kids
            .iter()
            .map(|kid| {
                let (k, name, rule, _) = title
                    .keywords
                    .iter()
                    .find(|(k, ..)| u64::from(*k) == *kid)
                    .ok_or(E_INVALID_ARGS)?;
                Ok(((*name).to_owned(), format!("{rule}{k}")))
            })
            .collect::<Result<Vec<_>, WxError>>()?;
        let id = self.random_string(43);
        let template = SubscribeTemplate {
            id: id.clone(),
            title: title.title.to_owned(),
            kind: title.kind,
            keywords,
        };
        self.apps[i]
            .ext
            .get_mut::<Messages>()
            .subscribe_templates
            .push(template);
        Ok(json!({ "errcode": 0, "errmsg": "ok", "priTmplId": id }))
    }

    fn subscribe_list(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let data: Vec<Value> = self.apps[i]
            .ext
            .get_mut::<Messages>()
            .subscribe_templates
            .iter()
            .map(|t| {
                json!({ "priTmplId": t.id, "title": t.title, "content": t.content(),
                        "example": "", "type": t.kind })
            })
            .collect();
        Ok(json!({ "errcode": 0, "errmsg": "ok", "data": data }))
    }

    fn subscribe_delete(&mut self, c: &Call<'_>) -> Answer {
        let (i, body) = self.message_call(c)?;
        let id = field(&body, "priTmplId").ok_or(E_TEMPLATE)?;
        let list = &mut self.apps[i].ext.get_mut::<Messages>().subscribe_templates;
        let before = list.len();
        list.retain(|t| t.id != id);
        if list.len() == before {
            return Err(E_TEMPLATE);
        }
        Ok(ok())
    }

    // ---- customer-service messages -------------------------------------------------------

    /// The recipient of a customer-service call: a follower who interacted within 48 hours.
    fn in_service_window(
        &self,
        i: usize,
        body: &Map<String, Value>,
        now: SystemTime,
    ) -> Result<String, WxError> {
        let openid = self.recipient(i, body)?;
        let follower = self.apps[i].followers.get(&openid).filter(|f| f.subscribed);
        let last = follower.and_then(|f| f.last_active).ok_or(E_OUT_OF_TIME)?;
        if now.duration_since(last).unwrap_or_default() > SERVICE_WINDOW {
            return Err(E_OUT_OF_TIME);
        }
        Ok(openid)
    }

    fn custom_send(&mut self, c: &Call<'_>) -> Answer {
        let (i, body) = self.message_call(c)?;
        let openid = self.in_service_window(i, &body, c.now)?;
        let msg_type = field(&body, "msgtype")
            .filter(|t| CUSTOM_TYPES.contains(t))
            .ok_or(E_MSGTYPE)?;
        let content = body
            .get(msg_type)
            .filter(|v| v.is_object())
            .cloned()
            .ok_or(E_DATA_FORMAT)?;
        let message = InboxMessage::new(c.now, Via::Custom, msg_type, content);
        self.apps[i].deliver(&openid, message);
        Ok(ok())
    }

    fn custom_typing(&mut self, c: &Call<'_>) -> Answer {
        let (i, body) = self.message_call(c)?;
        self.in_service_window(i, &body, c.now)?;
        match field(&body, "command") {
            Some("Typing" | "CancelTyping") => Ok(ok()),
            _ => Err(E_INVALID_ARGS),
        }
    }
}

fn library_title(tid: Option<&str>) -> Result<&'static LibraryTitle, WxError> {
    let tid: u64 = tid.and_then(|t| t.parse().ok()).ok_or(E_INVALID_ARGS)?;
    LIBRARY.iter().find(|t| t.tid == tid).ok_or(E_INVALID_ARGS)
}

impl Sandbox {
    /// Adds a template message template to `appid` (what `get_all_private_template` lists and
    /// `message/template/send` accepts): set-up for tests.
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`].
    pub fn add_template(
        &self,
        appid: &str,
        template_id: &str,
        title: &str,
        content: &str,
    ) -> Result<(), SandboxError> {
        let mut world = self.world();
        let app = world.app_mut(appid).ok_or(SandboxError::UnknownApp)?;
        let templates = &mut app.ext.get_mut::<Messages>().templates;
        templates.retain(|t| t.id != template_id);
        templates.push(Template {
            id: template_id.to_owned(),
            title: title.to_owned(),
            content: content.to_owned(),
        });
        Ok(())
    }

    /// Adds a one-time subscription template to `appid` with its keywords as (name, data key)
    /// pairs (`("商品名称", "thing1")`; the key's prefix is the keyword type): set-up for tests.
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`].
    pub fn add_subscribe_template(
        &self,
        appid: &str,
        template_id: &str,
        title: &str,
        keywords: &[(&str, &str)],
    ) -> Result<(), SandboxError> {
        let mut world = self.world();
        let app = world.app_mut(appid).ok_or(SandboxError::UnknownApp)?;
        let list = &mut app.ext.get_mut::<Messages>().subscribe_templates;
        list.retain(|t| t.id != template_id);
        list.push(SubscribeTemplate {
            id: template_id.to_owned(),
            title: title.to_owned(),
            kind: 2,
            keywords: keywords
                .iter()
                .map(|(n, k)| ((*n).to_owned(), (*k).to_owned()))
                .collect(),
        });
        Ok(())
    }

    /// `openid` accepts one notice of subscription template `template_id` (as when the user
    /// taps "allow" once): one `bizsend` may reach it for each acceptance.
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`], [`SandboxError::UnknownUser`],
    /// [`SandboxError::UnknownTemplate`].
    pub fn accept_subscription(
        &self,
        appid: &str,
        openid: &str,
        template_id: &str,
    ) -> Result<(), SandboxError> {
        let mut world = self.world();
        let app = world.app_mut(appid).ok_or(SandboxError::UnknownApp)?;
        app.user(openid).ok_or(SandboxError::UnknownUser)?;
        let state = app.ext.get_mut::<Messages>();
        if !state
            .subscribe_templates
            .iter()
            .any(|t| t.id == template_id)
        {
            return Err(SandboxError::UnknownTemplate);
        }
        *state
            .accepted
            .entry((openid.to_owned(), template_id.to_owned()))
            .or_default() += 1;
        Ok(())
    }
}
