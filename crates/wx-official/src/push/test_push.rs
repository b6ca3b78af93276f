//! Pushes signed and encrypted exactly as WeChat sends them, for testing handlers (the shape of
//! stripe's `generate_test_header`).

use super::xml::{cdata, number};
use super::{PushConfig, random_nonce};

/// A push as WeChat would send it to the server URL: the query string and the body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignedPush {
    /// The query string, without `?` (`signature=..&timestamp=..&nonce=..&openid=..`, plus
    /// `encrypt_type=aes&msg_signature=..` when encrypted).
    pub query: String,
    /// The POST body (empty for the GET handshake).
    pub body: String,
}

/// Builds pushes for a receiver's configuration: signed with its Token, and in safe mode
/// (the default when it has an EncodingAESKey) encrypted for its AppID with a fresh random
/// prefix, exactly as WeChat does.
#[derive(Clone, Debug)]
pub struct TestPush {
    config: PushConfig,
    timestamp: Option<u64>,
    nonce: Option<String>,
    compatible: bool,
}

impl TestPush {
    /// Pushes for `config` (its Token, AppID, key and clock).
    #[must_use]
    pub fn new(config: &PushConfig) -> Self {
        TestPush {
            config: config.clone(),
            timestamp: None,
            nonce: None,
            compatible: false,
        }
    }

    /// Sign with this `timestamp` instead of the clock's time.
    #[must_use]
    pub fn timestamp(mut self, timestamp: u64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Sign with this `nonce` instead of a random one.
    #[must_use]
    pub fn nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// Compatible mode: the encrypted body also carries the plaintext fields.
    #[must_use]
    pub fn compatible(mut self, on: bool) -> Self {
        self.compatible = on;
        self
    }

    /// Signs (and, with a key, encrypts) a message given as its `<xml>...</xml>` text.
    #[must_use]
    pub fn xml(&self, message_xml: &str) -> SignedPush {
        let (timestamp, nonce) = self.stamp();
        let fields = super::xml::parse(message_xml.as_bytes()).ok();
        let text = |name: &str| {
            fields
                .as_ref()
                .and_then(|f| f.string(name))
                .unwrap_or_default()
        };
        let openid = text("FromUserName");
        let token = &self.config.token;
        let signature = wx_core::crypto::server_signature(token, &timestamp, &nonce);
        let mut query = format!(
            "signature={signature}&timestamp={timestamp}&nonce={nonce}&openid={}",
            wx_core::urlenc::encode_component(&openid)
        );
        let Some(key) = &self.config.key else {
            return SignedPush {
                query,
                body: message_xml.to_owned(),
            };
        };
        let sealed = key.seal(
            token,
            self.config.appid.as_str(),
            message_xml.as_bytes(),
            &timestamp,
            &nonce,
        );
        query.push_str("&encrypt_type=aes&msg_signature=");
        query.push_str(&sealed.msg_signature);
        let body = if self.compatible {
            let inner = message_xml.trim_end();
            let inner = inner.strip_suffix("</xml>").unwrap_or(inner);
            let mut body = inner.to_owned();
            cdata(&mut body, "Encrypt", &sealed.encrypt);
            body.push_str("</xml>");
            body
        } else {
            let mut body = String::from("<xml>");
            cdata(&mut body, "ToUserName", &text("ToUserName"));
            cdata(&mut body, "Encrypt", &sealed.encrypt);
            body.push_str("</xml>");
            body
        };
        SignedPush { query, body }
    }

    /// A `text` message from `user` to `account` (`gh_...`).
    #[must_use]
    pub fn text(&self, user: &str, account: &str, content: &str, msg_id: u64) -> SignedPush {
        let mut xml = self.head(user, account, "text");
        cdata(&mut xml, "Content", content);
        number(&mut xml, "MsgId", msg_id);
        xml.push_str("</xml>");
        self.xml(&xml)
    }

    /// An event from `user` to `account`, with an `EventKey` when given.
    #[must_use]
    pub fn event(
        &self,
        user: &str,
        account: &str,
        event: &str,
        event_key: Option<&str>,
    ) -> SignedPush {
        let mut xml = self.head(user, account, "event");
        cdata(&mut xml, "Event", event);
        if let Some(key) = event_key {
            cdata(&mut xml, "EventKey", key);
        }
        xml.push_str("</xml>");
        self.xml(&xml)
    }

    /// The GET handshake of the server URL check with a plaintext `echostr`.
    #[must_use]
    pub fn handshake(&self, echostr: &str) -> SignedPush {
        let (timestamp, nonce) = self.stamp();
        let signature = wx_core::crypto::server_signature(&self.config.token, &timestamp, &nonce);
        SignedPush {
            query: format!(
                "signature={signature}&echostr={}&timestamp={timestamp}&nonce={nonce}",
                wx_core::urlenc::encode_component(echostr)
            ),
            body: String::new(),
        }
    }

    fn stamp(&self) -> (String, String) {
        let timestamp = self.timestamp.unwrap_or_else(|| self.config.unix_now());
        let nonce = self.nonce.clone().unwrap_or_else(random_nonce);
        (timestamp.to_string(), nonce)
    }

    fn head(&self, user: &str, account: &str, msg_type: &str) -> String {
        let mut xml = String::from("<xml>");
        cdata(&mut xml, "ToUserName", account);
        cdata(&mut xml, "FromUserName", user);
        let now = self.timestamp.unwrap_or_else(|| self.config.unix_now());
        number(&mut xml, "CreateTime", now);
        cdata(&mut xml, "MsgType", msg_type);
        xml
    }
}
