//! Checking a server URL's answer as WeChat does: `success` or empty is no reply; anything else
//! must be a well-formed reply to this user from this account (encrypted and correctly signed
//! in safe mode), else the user sees WeChat's "cannot serve you" notice.

use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::{Map, Value};
use wx_core::crypto::CryptoError;

use super::ReplyError;
use super::config::{PushMode, ServerConfig};

/// What the app answered.
#[derive(Debug)]
pub(crate) enum Checked {
    /// `success` or an empty body.
    NoReply,
    /// `transfer_customer_service`: the conversation goes to the customer-service agents.
    Transfer,
    /// A message for the user: its type and its fields as JSON.
    Message(String, Value),
}

/// The element tree of a small XML document: a leaf's text, or the children in order.
#[derive(Clone, Debug)]
enum Node {
    Text(String),
    Children(Vec<(String, Node)>),
}

/// Deepest nesting a reply may have (news: xml / Articles / item / field).
const MAX_DEPTH: usize = 8;

/// An element being read: name, leaf text, children.
type Open = (String, String, Vec<(String, Node)>);

/// Parses `<xml>...</xml>` into its children. Refuses a DTD (entities included), a document
/// with another root, and anything malformed.
fn parse(body: &[u8]) -> Result<Vec<(String, Node)>, ReplyError> {
    let text = std::str::from_utf8(body).map_err(|_| ReplyError::Malformed)?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut root = None;
    loop {
        let event = reader.read_event().map_err(|_| ReplyError::Malformed)?;
        match event {
            Event::Start(e) => {
                if root.is_some() || stack.len() >= MAX_DEPTH {
                    return Err(ReplyError::Malformed);
                }
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                stack.push((name, String::new(), Vec::new()));
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                match stack.last_mut() {
                    Some(parent) => parent.2.push((name, Node::Text(String::new()))),
                    None => return Err(ReplyError::Malformed),
                }
            }
            Event::End(_) => {
                let (name, text, children) = stack.pop().ok_or(ReplyError::Malformed)?;
                let node = if children.is_empty() {
                    Node::Text(text)
                } else {
                    Node::Children(children)
                };
                match stack.last_mut() {
                    Some(parent) => parent.2.push((name, node)),
                    None => root = Some((name, node)),
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|_| ReplyError::Malformed)?;
                match stack.last_mut() {
                    Some(open) if !s.trim().is_empty() => open.1.push_str(&s),
                    Some(_) => {}
                    None if s.trim().is_empty() => {}
                    None => return Err(ReplyError::Malformed),
                }
            }
            Event::CData(t) => {
                let s = t.decode().map_err(|_| ReplyError::Malformed)?;
                stack
                    .last_mut()
                    .ok_or(ReplyError::Malformed)?
                    .1
                    .push_str(&s);
            }
            Event::GeneralRef(r) => {
                let raw = r.decode().map_err(|_| ReplyError::Malformed)?;
                let entity = format!("&{raw};");
                let s = quick_xml::escape::unescape(&entity).map_err(|_| ReplyError::Malformed)?;
                stack
                    .last_mut()
                    .ok_or(ReplyError::Malformed)?
                    .1
                    .push_str(&s);
            }
            Event::DocType(_) => return Err(ReplyError::Malformed),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    match root {
        Some((name, Node::Children(children))) if name == "xml" && stack.is_empty() => Ok(children),
        _ => Err(ReplyError::Malformed),
    }
}

fn text<'a>(fields: &'a [(String, Node)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| match v {
            Node::Text(s) => Some(s.as_str()),
            Node::Children(_) => None,
        })
}

fn has(fields: &[(String, Node)], name: &str) -> bool {
    fields.iter().any(|(n, _)| n == name)
}

/// Children as a JSON object; a repeated name becomes an array.
fn to_json(fields: &[(String, Node)]) -> Value {
    let mut map = Map::new();
    for (name, node) in fields {
        let value = match node {
            Node::Text(s) => Value::String(s.clone()),
            Node::Children(c) => to_json(c),
        };
        match map.get_mut(name) {
            Some(Value::Array(list)) => list.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
            None => {
                map.insert(name.clone(), value);
            }
        }
    }
    Value::Object(map)
}

/// Checks the answer `body` to a push about `openid`, sent to `appid`'s server `server`.
pub(crate) fn check(
    server: &ServerConfig,
    appid: &str,
    openid: &str,
    body: &[u8],
) -> Result<Checked, ReplyError> {
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() || trimmed == b"success" {
        return Ok(Checked::NoReply);
    }
    let outer = parse(body)?;
    let inner;
    let fields = match text(&outer, "Encrypt") {
        Some(encrypt) => {
            let key = server.key.as_ref().ok_or(ReplyError::NotDecryptable)?;
            let field = |n| text(&outer, n).ok_or(ReplyError::Malformed);
            let opened = key
                .open(
                    &server.token,
                    appid,
                    encrypt,
                    field("TimeStamp")?,
                    field("Nonce")?,
                    field("MsgSignature")?,
                )
                .map_err(|e| match e {
                    CryptoError::SignatureMismatch => ReplyError::Signature,
                    _ => ReplyError::NotDecryptable,
                })?;
            inner = parse(&opened)?;
            &inner
        }
        None if server.mode == PushMode::Safe => return Err(ReplyError::NotEncrypted),
        None => &outer,
    };
    if text(fields, "ToUserName") != Some(openid) {
        return Err(ReplyError::WrongToUser);
    }
    if text(fields, "FromUserName") != Some(server.original_id.as_str()) {
        return Err(ReplyError::WrongFromUser);
    }
    if !text(fields, "CreateTime")
        .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ReplyError::MissingField("CreateTime"));
    }
    let msg_type = text(fields, "MsgType").ok_or(ReplyError::MissingField("MsgType"))?;
    let required = match msg_type {
        "transfer_customer_service" => return Ok(Checked::Transfer),
        "text" => "Content",
        "image" => "Image",
        "voice" => "Voice",
        "video" => "Video",
        "music" => "Music",
        "news" => "Articles",
        other => return Err(ReplyError::UnknownType(other.to_owned())),
    };
    if !has(fields, required) {
        return Err(ReplyError::MissingField(required));
    }
    let content: Vec<(String, Node)> = fields
        .iter()
        .filter(|(n, _)| {
            !matches!(
                n.as_str(),
                "ToUserName" | "FromUserName" | "CreateTime" | "MsgType"
            )
        })
        .cloned()
        .collect();
    Ok(Checked::Message(msg_type.to_owned(), to_json(&content)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::PushTarget;

    fn plain() -> ServerConfig {
        ServerConfig::plain(PushTarget::url("http://127.0.0.1:1/wx"), "tok", "gh_1")
    }

    #[test]
    fn text_and_news_replies_become_json() {
        let body = b"<xml><ToUserName><![CDATA[o1]]></ToUserName><FromUserName><![CDATA[gh_1]]>\
            </FromUserName><CreateTime>12345678</CreateTime><MsgType><![CDATA[text]]></MsgType>\
            <Content><![CDATA[a]]]]><![CDATA[>b &amp; c]]></Content></xml>";
        match check(&plain(), "wx1", "o1", body) {
            Ok(Checked::Message(t, v)) => {
                assert_eq!(t, "text");
                assert_eq!(v, serde_json::json!({"Content": "a]]>b &amp; c"}));
            }
            other => panic!("{other:?}"),
        }
        let news = b"<xml><ToUserName>o1</ToUserName><FromUserName>gh_1</FromUserName>\
            <CreateTime>1</CreateTime><MsgType>news</MsgType><ArticleCount>2</ArticleCount>\
            <Articles><item><Title>a &lt;1&gt;</Title></item><item><Title>b</Title></item></Articles></xml>";
        match check(&plain(), "wx1", "o1", news) {
            Ok(Checked::Message(t, v)) => {
                assert_eq!(t, "news");
                assert_eq!(v["Articles"]["item"][0]["Title"], "a <1>");
                assert_eq!(v["Articles"]["item"][1]["Title"], "b");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wechat_refuses_what_is_not_a_reply() {
        let ok = "<xml><ToUserName>o1</ToUserName><FromUserName>gh_1</FromUserName>\
            <CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content></xml>";
        let cases: &[(&str, ReplyError)] = &[
            ("{\"errcode\":0}", ReplyError::Malformed),
            ("<xml><a>1</a>", ReplyError::Malformed),
            (
                "<!DOCTYPE xml [<!ENTITY e \"x\">]><xml><a>&e;</a></xml>",
                ReplyError::Malformed,
            ),
            ("<html><body>502</body></html>", ReplyError::Malformed),
            (&ok.replace(">o1<", ">o2<"), ReplyError::WrongToUser),
            (&ok.replace(">gh_1<", ">gh_2<"), ReplyError::WrongFromUser),
            (
                &ok.replace("<CreateTime>1</CreateTime>", ""),
                ReplyError::MissingField("CreateTime"),
            ),
            (
                &ok.replace("<Content>x</Content>", ""),
                ReplyError::MissingField("Content"),
            ),
            (
                &ok.replace(">text<", ">json<"),
                ReplyError::UnknownType("json".into()),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(
                check(&plain(), "wx1", "o1", body.as_bytes()).err().as_ref(),
                Some(want),
                "{body}"
            );
        }
        for none in ["", "success", "  success\n"] {
            assert!(matches!(
                check(&plain(), "wx1", "o1", none.as_bytes()),
                Ok(Checked::NoReply)
            ));
        }
    }
}
