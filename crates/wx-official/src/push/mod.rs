//! Receiving what WeChat pushes to the server URL: messages, events, passive replies and safe
//! mode, as a pure synchronous function of the request's query and body bytes.
//!
//! - [`PushConfig`] holds the server Token, the AppID and, for compatible / safe mode, the
//!   EncodingAESKey (plus an optional previous key during a rotation).
//! - [`PushConfig::handshake`] answers the GET echostr check; [`PushConfig::open`] verifies and
//!   decrypts a POST and returns an [`Incoming`] with a typed [`Message`];
//!   [`PushConfig::reply`] renders a [`Reply`] (encrypted when the push was) or `success`.
//! - [`Dedup`] drops WeChat's retries across a fleet through the client's token store, and
//!   [`run_with_budget`] answers `success` in time when a handler is slow.
//! - [`TestPush`] signs and encrypts a push exactly as WeChat does, to test handlers.
//!
//! No web framework here: any server (axum through `wx-axum`, hyper, actix, a Lambda) calls it.
//!
//! ```
//! use wx_core::ServerToken;
//! use wx_core::crypto::EncodingAesKey;
//! use wx_official::push::{Message, PushConfig, PushQuery, Reply, TestPush};
//!
//! let config = PushConfig::new("wx2c2769f8efd9abc2", ServerToken::new("spamtest"))
//!     .aes_key(EncodingAesKey::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")?);
//!
//! // What WeChat would POST (in a test; in production: the request's query and body).
//! let push = TestPush::new(&config).text("o-user", "gh_account", "hello", 6054768590064713728);
//! let incoming = config.open(&PushQuery::from_query(&push.query), push.body.as_bytes())?;
//! let Message::Text(text) = &incoming.message else { panic!("a text message") };
//! assert_eq!(text.content, "hello");
//!
//! // The answer: encrypted because the push was, To/From swapped.
//! let answer = config.reply(&incoming, &Reply::text(format!("you said {}", text.content)));
//! assert!(answer.body.contains("<Encrypt>"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod dedup;
mod error;
mod message;
mod reply;
mod runner;
mod test_push;
mod xml;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use wx_core::crypto::EncodingAesKey;
use wx_core::{AppId, OpenId, ServerToken, SharedClock, SystemClock};

use crate::verify::SignatureCheck;

pub use dedup::{DEFAULT_DEDUP_TIMEOUT, DEFAULT_DEDUP_TTL, Dedup};
pub use error::PushError;
pub use message::{
    CopyrightResult, Image, KfSession, KfSwitchSession, Link, Location, LocationSelect,
    MassSendJobFinish, MenuEvent, Message, PublishJobFinish, PublishedArticle, ReportLocation,
    Scan, ScanCode, SendPics, Subscribe, SubscribeMsgChoice, SubscribeMsgSent,
    TemplateSendJobFinish, Text, Unknown, Video, Voice,
};
pub use reply::{Article, Music, Reply, ReplyBody};
pub use runner::{DEFAULT_BUDGET, LateHook, LateReply, Outcome, run_with_budget};
pub use test_push::{SignedPush, TestPush};
pub use xml::Element;

/// Largest body accepted, checked before any parsing. Real pushes are a few KiB (safe mode
/// roughly triples a message).
pub const MAX_BODY_LEN: usize = 64 * 1024;

/// The query parameters WeChat puts on the server URL. Derives `Deserialize`, so a framework's
/// query extractor can fill it; [`from_query`](Self::from_query) parses a raw query string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PushQuery {
    /// `signature`: SHA-1 over the Token, `timestamp` and `nonce`.
    pub signature: Option<String>,
    /// `timestamp` (Unix seconds).
    pub timestamp: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// `echostr` (the GET handshake only).
    pub echostr: Option<String>,
    /// `openid` of the sender (POSTs).
    pub openid: Option<String>,
    /// `encrypt_type`: `aes` in compatible and safe mode.
    pub encrypt_type: Option<String>,
    /// `msg_signature`: SHA-1 over the Token, `timestamp`, `nonce` and the `Encrypt` value.
    pub msg_signature: Option<String>,
}

impl PushQuery {
    /// Parses a raw query string (with or without the leading `?`; percent-escapes decoded;
    /// unknown parameters ignored; the first of a repeated parameter wins). Never fails:
    /// [`PushConfig::open`] names what is missing.
    #[must_use]
    pub fn from_query(query: &str) -> Self {
        let pairs = wx_core::urlenc::parse_query(query.strip_prefix('?').unwrap_or(query));
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        PushQuery {
            signature: get("signature"),
            timestamp: get("timestamp"),
            nonce: get("nonce"),
            echostr: get("echostr"),
            openid: get("openid"),
            encrypt_type: get("encrypt_type"),
            msg_signature: get("msg_signature"),
        }
    }

    fn required<'a>(value: Option<&'a String>, name: &'static str) -> Result<&'a str, PushError> {
        value
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or(PushError::MissingParameter(name))
    }
}

/// The receiver of one Official Account's server URL: its Token, AppID and keys.
///
/// `Debug` shows no secret (the Token and keys print `[redacted]`).
#[derive(Clone, Debug)]
pub struct PushConfig {
    appid: AppId,
    token: ServerToken,
    key: Option<EncodingAesKey>,
    previous_key: Option<(EncodingAesKey, SystemTime)>,
    require_encryption: bool,
    replay_window: Option<Duration>,
    clock: SharedClock,
}

/// Which key opened an encrypted push (its reply is sealed with the same one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sealing {
    Plain,
    Current,
    Previous,
}

impl PushConfig {
    /// A receiver for `appid` checking signatures with the server `token`; plaintext mode
    /// until [`aes_key`](Self::aes_key) is set.
    #[must_use]
    pub fn new(appid: impl Into<AppId>, token: ServerToken) -> Self {
        PushConfig {
            appid: appid.into(),
            token,
            key: None,
            previous_key: None,
            require_encryption: false,
            replay_window: None,
            clock: std::sync::Arc::new(SystemClock),
        }
    }

    /// The EncodingAESKey of compatible and safe mode (see [`EncodingAesKey::new`]).
    #[must_use]
    pub fn aes_key(mut self, key: EncodingAesKey) -> Self {
        self.key = Some(key);
        self
    }

    /// The key in use before a rotation, accepted for pushes that the current key cannot open
    /// until `until` (WeChat still delivers in-flight messages under the old key after an
    /// EncodingAESKey change). An absolute time, so a restart does not extend the grace.
    #[must_use]
    pub fn previous_aes_key(mut self, key: EncodingAesKey, until: SystemTime) -> Self {
        self.previous_key = Some((key, until));
        self
    }

    /// Refuses plaintext pushes ([`PushError::EncryptionRequired`]): safe mode, where a
    /// plaintext body can only be forged. Needs [`aes_key`](Self::aes_key).
    #[must_use]
    pub fn require_encryption(mut self, on: bool) -> Self {
        self.require_encryption = on;
        self
    }

    /// Refuses a request whose `timestamp` is further than `window` from the clock, in either
    /// direction ([`PushError::Stale`]): a captured request cannot be replayed later.
    /// WeChat's retries of one push (within about 15 s) carry their own fresh timestamps.
    #[must_use]
    pub fn replay_window(mut self, window: Duration) -> Self {
        self.replay_window = Some(window);
        self
    }

    /// The clock of the replay window, the key rotation and replies' `CreateTime`.
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The AppID (the receive id checked at the end of every decrypted message).
    #[must_use]
    pub fn appid(&self) -> &AppId {
        &self.appid
    }

    /// The server Token.
    #[must_use]
    pub fn token(&self) -> &ServerToken {
        &self.token
    }

    /// The current EncodingAESKey, if any.
    #[must_use]
    pub fn current_aes_key(&self) -> Option<&EncodingAesKey> {
        self.key.as_ref()
    }

    /// The clock.
    #[must_use]
    pub fn clock_ref(&self) -> &SharedClock {
        &self.clock
    }

    /// Checks WeChat's GET handshake and returns the body to answer with (as `text/plain`).
    ///
    /// The Official Account sends a plaintext `echostr` with `signature`: it is returned after
    /// the signature check (digits and base64 characters only, at most 256). With
    /// `msg_signature` and a configured key the `echostr` is encrypted (the WeCom style): it is
    /// verified and decrypted, and the plaintext is returned.
    ///
    /// # Errors
    /// [`PushError::MissingParameter`], [`PushError::MalformedQuery`], [`PushError::Stale`],
    /// [`PushError::SignatureMismatch`], [`PushError::InvalidEchostr`], or
    /// [`PushError::Decrypt`] for an encrypted echostr that does not open.
    pub fn handshake(&self, query: &PushQuery) -> Result<String, PushError> {
        let echostr = PushQuery::required(query.echostr.as_ref(), "echostr")?;
        if echostr.len() > crate::verify::MAX_ECHOSTR_LEN {
            return Err(PushError::InvalidEchostr);
        }
        if let (Some(msg_signature), Some(key)) = (
            query.msg_signature.as_ref().filter(|s| !s.is_empty()),
            &self.key,
        ) {
            let (timestamp, nonce) = self.check_time(query)?;
            let plain = self.open_with_keys(key, echostr, timestamp, nonce, msg_signature)?;
            return String::from_utf8(plain.0).map_err(|_| PushError::InvalidEchostr);
        }
        self.check_plain_signature(query)?;
        let safe = |b: u8| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'.' | b'-')
        };
        if !echostr.bytes().all(safe) {
            return Err(PushError::InvalidEchostr);
        }
        Ok(echostr.to_owned())
    }

    /// Verifies and opens a pushed POST: checks the body size, the signature (`signature` in
    /// plaintext mode, `msg_signature` over `Encrypt` in compatible and safe mode) and the
    /// replay window, decrypts (current key, then the previous one within its grace), parses
    /// the XML (DTDs and custom entities refused) and types the message.
    ///
    /// A compatible-mode body carries both copies; the decrypted one is used. Note that in
    /// plaintext mode `signature` covers only the timestamp and nonce, not the body: use safe
    /// mode where that matters.
    ///
    /// # Errors
    /// Each refusal is its own [`PushError`] variant with its HTTP status
    /// ([`PushError::status`]).
    pub fn open(&self, query: &PushQuery, body: &[u8]) -> Result<Incoming, PushError> {
        if body.len() > MAX_BODY_LEN {
            return Err(PushError::BodyTooLarge);
        }
        let outer = xml::parse(body)?;
        let encrypt = outer.text_of("Encrypt");
        let wants_aes = query.encrypt_type.as_deref() == Some("aes");
        let (inner, sealing) = match (encrypt, &self.key) {
            (Some(encrypt), Some(key)) => {
                let (timestamp, nonce) = self.check_time(query)?;
                let msg_signature =
                    PushQuery::required(query.msg_signature.as_ref(), "msg_signature")?;
                let (plain, sealing) =
                    self.open_with_keys(key, encrypt, timestamp, nonce, msg_signature)?;
                (xml::parse(&plain)?, sealing)
            }
            // Compatible mode without a key configured: the plaintext copy, if there is one.
            (Some(_), None) if outer.child("MsgType").is_some() && !wants_aes => {
                self.check_plain_signature(query)?;
                (outer, Sealing::Plain)
            }
            (Some(_), None) => return Err(PushError::NoAesKey),
            (None, _) if self.require_encryption || wants_aes => {
                return Err(PushError::EncryptionRequired);
            }
            (None, _) => {
                self.check_plain_signature(query)?;
                (outer, Sealing::Plain)
            }
        };
        Incoming::from_xml(inner, sealing)
    }

    /// Renders `reply` as the answer to `incoming`: `success` for [`Reply::Success`], else the
    /// reply XML with To/From swapped and `CreateTime` from the clock, encrypted with a fresh
    /// random prefix (and signed with a fresh timestamp and nonce) when the push was encrypted.
    #[must_use]
    pub fn reply(&self, incoming: &Incoming, reply: &Reply) -> ReplyBody {
        let now = self.unix_now();
        let Some(xml) = reply.to_xml(&incoming.from_user, &incoming.to_account, now) else {
            return ReplyBody::success();
        };
        let key = match incoming.sealing {
            Sealing::Plain => None,
            Sealing::Current => self.key.as_ref(),
            Sealing::Previous => self.previous_key.as_ref().map(|(k, _)| k),
        };
        match key {
            None => ReplyBody::xml(xml),
            Some(key) => {
                let timestamp = now.to_string();
                let nonce = random_nonce();
                let sealed = key.seal(
                    &self.token,
                    self.appid.as_str(),
                    xml.as_bytes(),
                    &timestamp,
                    &nonce,
                );
                ReplyBody::xml(reply::envelope(
                    &sealed.encrypt,
                    &sealed.msg_signature,
                    &timestamp,
                    &nonce,
                ))
            }
        }
    }

    fn open_with_keys(
        &self,
        key: &EncodingAesKey,
        encrypt: &str,
        timestamp: &str,
        nonce: &str,
        msg_signature: &str,
    ) -> Result<(Vec<u8>, Sealing), PushError> {
        let appid = self.appid.as_str();
        match key.open(&self.token, appid, encrypt, timestamp, nonce, msg_signature) {
            Ok(plain) => Ok((plain, Sealing::Current)),
            // The signature does not depend on the key: only a decryption failure is retried
            // with the previous key, and only within its grace.
            Err(e) if e != wx_core::crypto::CryptoError::SignatureMismatch => {
                match &self.previous_key {
                    Some((previous, until)) if self.clock.now() < *until => previous
                        .decrypt(encrypt, appid)
                        .map(|plain| (plain, Sealing::Previous))
                        .map_err(|_| PushError::from(e)),
                    _ => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The checked entry point of [`crate::verify`] for this server: WeChat's shape of
    /// `timestamp` (digits, no leading zero) and `nonce` (at most 10 digits), so digits cannot
    /// move between the two under one signature, and the timestamp within the replay window
    /// when one is set (none: any time, as before the window was configured).
    fn signature_check(&self) -> SignatureCheck {
        SignatureCheck::new(self.token.clone(), self.clock.clone())
            .with_max_skew(self.replay_window.unwrap_or(Duration::MAX))
    }

    /// The plaintext-mode check: `signature` over the Token, `timestamp` and `nonce`, through
    /// [`SignatureCheck::check`].
    fn check_plain_signature(&self, query: &PushQuery) -> Result<(), PushError> {
        let timestamp = PushQuery::required(query.timestamp.as_ref(), "timestamp")?;
        let nonce = PushQuery::required(query.nonce.as_ref(), "nonce")?;
        let signature = PushQuery::required(query.signature.as_ref(), "signature")?;
        self.signature_check()
            .check(timestamp, nonce, signature)
            .map_err(PushError::from_verify)
    }

    /// `timestamp` and `nonce` present, shaped as WeChat sends them and within the replay
    /// window ([`SignatureCheck::check_fresh`]), for the paths whose signature is checked while
    /// decrypting (`msg_signature`).
    fn check_time<'q>(&self, query: &'q PushQuery) -> Result<(&'q str, &'q str), PushError> {
        let timestamp = PushQuery::required(query.timestamp.as_ref(), "timestamp")?;
        let nonce = PushQuery::required(query.nonce.as_ref(), "nonce")?;
        self.signature_check()
            .check_fresh(timestamp, nonce)
            .map_err(PushError::from_verify)?;
        Ok((timestamp, nonce))
    }

    fn unix_now(&self) -> u64 {
        self.clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// Ten random digits, the shape of WeChat's own nonces.
fn random_nonce() -> String {
    use rand::Rng as _;
    let n: u64 = rand::rng().random_range(1_000_000_000..10_000_000_000);
    n.to_string()
}

/// A verified push: the fields every push has, the typed [`Message`], and every field as sent.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Incoming {
    /// `FromUserName`: the user's OpenID (for events about the account, e.g. `MASSSENDJOBFINISH`,
    /// whatever WeChat puts there).
    pub from_user: OpenId,
    /// `ToUserName`: the account's original id (`gh_...`).
    pub to_account: String,
    /// `CreateTime` (Unix seconds).
    pub create_time: u64,
    /// `MsgType` as sent (`text`, `event`, ...).
    pub msg_type: String,
    /// `Event` as sent, for `MsgType=event`.
    pub event: Option<String>,
    /// The typed message or event.
    pub message: Message,
    fields: Element,
    sealing: Sealing,
}

impl Incoming {
    fn from_xml(xml: Element, sealing: Sealing) -> Result<Self, PushError> {
        let required = |name: &'static str| {
            xml.string(name)
                .filter(|v| !v.is_empty())
                .ok_or(PushError::MissingField(name))
        };
        let from_user = OpenId::new(required("FromUserName")?);
        let to_account = required("ToUserName")?;
        let msg_type = required("MsgType")?;
        let create_time = xml
            .number("CreateTime")
            .ok_or(PushError::MissingField("CreateTime"))?;
        let event = (msg_type == "event").then(|| xml.string("Event")).flatten();
        let message = message::classify(&xml, &msg_type, event.as_deref());
        Ok(Incoming {
            from_user,
            to_account,
            create_time,
            msg_type,
            event,
            message,
            fields: xml,
            sealing,
        })
    }

    /// Every field of the push as sent (the decrypted `<xml>` in safe mode), including those
    /// the typed message does not model.
    #[must_use]
    pub fn fields(&self) -> &Element {
        &self.fields
    }

    /// Whether the push was encrypted (then [`PushConfig::reply`] encrypts the answer).
    #[must_use]
    pub fn is_encrypted(&self) -> bool {
        self.sealing != Sealing::Plain
    }

    /// `MsgId` of an ordinary message (`MsgID` is read too); `None` for events.
    #[must_use]
    pub fn msg_id(&self) -> Option<u64> {
        if self.event.is_some() {
            return None;
        }
        self.fields
            .number("MsgId")
            .or_else(|| self.fields.number("MsgID"))
    }

    /// `EventKey` as sent, if present.
    #[must_use]
    pub fn event_key(&self) -> Option<&str> {
        self.fields.text_of("EventKey")
    }

    /// What identifies this push across WeChat's retries: `MsgId` + `FromUserName` +
    /// `CreateTime` for a message (a `MsgId` alone has collided under load), `FromUserName` +
    /// `CreateTime` + `Event` + `EventKey` for an event (two events can share a second).
    /// A retry carries the same values; a new message does not.
    #[must_use]
    pub fn dedup_key(&self) -> String {
        match self.msg_id() {
            Some(id) => format!("msg\n{id}\n{}\n{}", self.from_user, self.create_time),
            None => format!(
                "event\n{}\n{}\n{}\n{}\n{}",
                self.from_user,
                self.create_time,
                self.msg_type,
                self.event.as_deref().unwrap_or_default(),
                self.event_key().unwrap_or_default()
            ),
        }
    }
}

#[cfg(test)]
mod tests;
