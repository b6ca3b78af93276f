//! The three modes, the handshake, every refusal, key rotation, the replay window, replies
//! end to end, dedup through the store and the deadline budget.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wx_core::crypto::{CryptoError, EncodingAesKey};
use wx_core::{ManualClock, MemoryTokenStore, ServerToken};
use wx_official::push::*;

use crate::push_messages::push_fixture;

fn json(name: &str) -> serde_json::Value {
    serde_json::from_str(&push_fixture(name)).expect("JSON fixture")
}

fn s<'a>(v: &'a serde_json::Value, path: &[&str]) -> &'a str {
    path.iter()
        .fold(v, |v, p| &v[*p])
        .as_str()
        .unwrap_or_else(|| panic!("{path:?}"))
}

fn key(text: &str) -> EncodingAesKey {
    EncodingAesKey::new(text).expect("valid key")
}

fn query(pairs: &[(&str, &str)]) -> PushQuery {
    let raw: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", wx_core::urlenc::encode_component(v)))
        .collect();
    PushQuery::from_query(&raw.join("&"))
}

const OFFICIAL: &str = "crypto.decrypt_compat_mode.official_sample_spamtest.json";
const WECHATPY: &str = "crypto.decrypt_encrypt_echostr.wechatpy_test.json";

fn official_config(v: &serde_json::Value) -> PushConfig {
    PushConfig::new(s(v, &["appid"]), ServerToken::new(s(v, &["token"])))
        .aes_key(key(s(v, &["encoding_aes_key"])))
}

#[test]
fn official_compat_mode_sample_opens_and_prefers_the_decrypted_copy() {
    let v = json(OFFICIAL);
    let config = official_config(&v);
    let (ts, nonce) = (s(&v, &["timestamp"]), s(&v, &["nonce"]));
    let q = query(&[
        (
            "signature",
            s(&v, &["derived_by_this_research", "signature_plain_mode"]),
        ),
        ("timestamp", ts),
        ("nonce", nonce),
        ("encrypt_type", "aes"),
        ("msg_signature", s(&v, &["msg_signature"])),
    ]);
    let m = config
        .open(&q, s(&v, &["request_body"]).as_bytes())
        .expect("opens");
    assert!(m.is_encrypted());
    assert_eq!(m.to_account, "gh_10f6c3c3ac5a");
    assert_eq!(m.from_user.as_str(), "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
    assert_eq!(m.create_time, 1_409_735_668);
    let Message::Text(t) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        (t.msg_id, t.content.as_str()),
        (6_054_768_590_064_713_728, "abcdteT")
    );

    // Without a key, compatible mode still opens from the plaintext copy (plain `signature`).
    let plain = PushConfig::new(s(&v, &["appid"]), ServerToken::new("spamtest"));
    let q_plain = query(&[
        (
            "signature",
            s(&v, &["derived_by_this_research", "signature_plain_mode"]),
        ),
        ("timestamp", ts),
        ("nonce", nonce),
    ]);
    let m2 = plain
        .open(&q_plain, s(&v, &["request_body"]).as_bytes())
        .expect("plaintext copy");
    assert_eq!(m2.message, m.message);
    assert!(!m2.is_encrypted());
    // With encrypt_type=aes but no key: a configuration error of ours.
    assert_eq!(
        plain.open(&q, s(&v, &["request_body"]).as_bytes()),
        Err(PushError::NoAesKey)
    );

    // Every refusal has its own variant.
    let body = s(&v, &["request_body"]).as_bytes();
    let mut bad = q.clone();
    bad.msg_signature = Some("0".repeat(40));
    assert_eq!(config.open(&bad, body), Err(PushError::SignatureMismatch));
    bad.msg_signature = None;
    assert_eq!(
        config.open(&bad, body),
        Err(PushError::MissingParameter("msg_signature"))
    );
    let other_app = PushConfig::new("wx0000000000000000", ServerToken::new("spamtest"))
        .aes_key(key(s(&v, &["encoding_aes_key"])));
    let err = other_app.open(&q, body).expect_err("another AppID");
    assert_eq!(err, PushError::Decrypt(CryptoError::AppIdMismatch));
    assert_eq!(err.status(), http::StatusCode::FORBIDDEN);
}

#[test]
fn wechatpy_safe_mode_push_and_encrypted_echostr() {
    let v = json(WECHATPY);
    let config = PushConfig::new(s(&v, &["receive_id"]), ServerToken::new(s(&v, &["token"])))
        .aes_key(key(s(&v, &["encoding_aes_key"])))
        .require_encryption(true);
    let d = &v["decrypt"];
    let q = query(&[
        ("timestamp", s(d, &["timestamp"])),
        ("nonce", s(d, &["nonce"])),
        ("encrypt_type", "aes"),
        ("msg_signature", s(d, &["msg_signature"])),
    ]);
    let m = config
        .open(&q, s(d, &["request_body"]).as_bytes())
        .expect("opens");
    assert_eq!(
        m.from_user.as_str(),
        s(d, &["expected_fields", "FromUserName"])
    );
    let Message::Text(t) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(t.content, s(d, &["expected_fields", "Content"]));
    assert_eq!(t.msg_id, 4_363_689_963_896_700_987);
    assert_eq!(m.fields().text_of("AgentID"), Some("1"));

    let e = &v["echostr_verify"];
    let mut hq = query(&[
        ("msg_signature", s(e, &["msg_signature"])),
        ("timestamp", s(e, &["timestamp"])),
        ("nonce", s(e, &["nonce"])),
        ("echostr", s(e, &["echostr"])),
    ]);
    assert_eq!(
        config.handshake(&hq).as_deref(),
        Ok(s(e, &["derived_decrypted_echostr"]))
    );
    hq.nonce = Some(s(e, &["bad_nonce_must_fail"]).to_owned());
    assert_eq!(config.handshake(&hq), Err(PushError::SignatureMismatch));

    // Safe mode refuses plaintext, and a tampered ciphertext (re-signed) is a decrypt error.
    let plain = "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>\
                 <MsgType>text</MsgType><Content>x</Content><MsgId>1</MsgId></xml>";
    assert_eq!(
        config.open(&q, plain.as_bytes()),
        Err(PushError::EncryptionRequired)
    );
}

#[test]
fn plaintext_handshake_and_query_checks() {
    let v = json(OFFICIAL);
    let config = PushConfig::new(s(&v, &["appid"]), ServerToken::new("spamtest"));
    let sig = s(&v, &["derived_by_this_research", "signature_plain_mode"]);
    let (ts, nonce) = (s(&v, &["timestamp"]), s(&v, &["nonce"]));
    let q = query(&[
        ("signature", sig),
        ("timestamp", ts),
        ("nonce", nonce),
        ("echostr", "5927782489442352469"),
    ]);
    assert_eq!(config.handshake(&q).as_deref(), Ok("5927782489442352469"));
    let mut reflected = q.clone();
    reflected.echostr = Some("<script>".into());
    assert_eq!(config.handshake(&reflected), Err(PushError::InvalidEchostr));
    let mut forged = q.clone();
    forged.signature = Some("0".repeat(40));
    assert_eq!(config.handshake(&forged), Err(PushError::SignatureMismatch));
    assert_eq!(
        PushError::SignatureMismatch.status(),
        http::StatusCode::UNAUTHORIZED
    );
    let mut missing = q.clone();
    missing.echostr = None;
    assert_eq!(
        config.handshake(&missing),
        Err(PushError::MissingParameter("echostr"))
    );
    // Digits moved between timestamp and nonce keep the signature; the shape check refuses
    // a nonce that is not alphanumeric and a timestamp that is not digits.
    let mut odd = q;
    odd.timestamp = Some("14097356x9".into());
    assert_eq!(config.handshake(&odd), Err(PushError::MalformedQuery));
    // The test helper's handshake passes.
    let hs = TestPush::new(&config).handshake("12345");
    assert_eq!(
        config
            .handshake(&PushQuery::from_query(&hs.query))
            .as_deref(),
        Ok("12345")
    );
}

#[test]
fn refusals_before_and_during_parsing() {
    let config = PushConfig::new("wxapp", ServerToken::new("token"));
    let helper = TestPush::new(&config);
    let push = helper.text("o-1", "gh_1", "hi", 1);
    let q = PushQuery::from_query(&push.query);
    assert!(config.open(&q, push.body.as_bytes()).is_ok());
    let big = vec![b' '; MAX_BODY_LEN + 1];
    assert_eq!(config.open(&q, &big), Err(PushError::BodyTooLarge));
    assert_eq!(
        PushError::BodyTooLarge.status(),
        http::StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        config.open(&q, b"<xml><a></xml>"),
        Err(PushError::MalformedXml)
    );
    let xxe = "<!DOCTYPE xml [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml><Content>&e;</Content></xml>";
    assert_eq!(config.open(&q, xxe.as_bytes()), Err(PushError::DtdOrEntity));
    let no_from =
        "<xml><ToUserName>gh</ToUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>";
    assert_eq!(
        config.open(&q, no_from.as_bytes()),
        Err(PushError::MissingField("FromUserName"))
    );
    let wrong_token = PushConfig::new("wxapp", ServerToken::new("other"));
    assert_eq!(
        wrong_token.open(&q, push.body.as_bytes()),
        Err(PushError::SignatureMismatch)
    );
    let empty_token = PushConfig::new("wxapp", ServerToken::new(""));
    let empty_push = TestPush::new(&empty_token).text("o", "gh", "x", 1);
    assert_eq!(
        empty_token.open(
            &PushQuery::from_query(&empty_push.query),
            empty_push.body.as_bytes()
        ),
        Err(PushError::SignatureMismatch)
    );
    let mut no_sig = q;
    no_sig.signature = None;
    assert_eq!(
        config.open(&no_sig, push.body.as_bytes()),
        Err(PushError::MissingParameter("signature"))
    );
}

#[test]
fn replay_window_and_key_rotation_follow_the_clock() {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let old = key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG");
    let new = key("kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR");
    let token = ServerToken::new("token");
    let before = PushConfig::new("wxapp", token.clone())
        .aes_key(old.clone())
        .clock(Arc::new(clock.clone()));
    let in_flight = TestPush::new(&before).text("o", "gh", "old key", 7);

    let until: SystemTime = wx_core::Clock::now(&clock) + Duration::from_secs(300);
    let after = PushConfig::new("wxapp", token.clone())
        .aes_key(new)
        .previous_aes_key(old, until)
        .replay_window(Duration::from_secs(60))
        .clock(Arc::new(clock.clone()));
    let q = PushQuery::from_query(&in_flight.query);
    let m = after
        .open(&q, in_flight.body.as_bytes())
        .expect("old key within grace");
    // The reply goes back under the key the push came with.
    let reply = after.reply(&m, &Reply::text("ok"));
    let enc = wx_core::crypto::EncodingAesKey::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
        .expect("key");
    let inner = open_reply(&enc, &token, "wxapp", &reply.body);
    assert!(
        inner.contains("<Content><![CDATA[ok]]></Content>"),
        "{inner}"
    );

    // 61 s later: outside the replay window.
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        after.open(&q, in_flight.body.as_bytes()),
        Err(PushError::Stale)
    );
    // After the grace, the old key no longer opens anything.
    clock.advance(Duration::from_secs(300));
    let late = TestPush::new(&before).text("o", "gh", "too late", 8);
    let err = after
        .open(&PushQuery::from_query(&late.query), late.body.as_bytes())
        .expect_err("old key after grace");
    assert!(matches!(err, PushError::Decrypt(_)), "{err:?}");
}

/// Opens an encrypted reply envelope as WeChat would: checks its signature, decrypts.
fn open_reply(key: &EncodingAesKey, token: &ServerToken, appid: &str, body: &str) -> String {
    let field = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open).expect(name) + open.len();
        let end = body[start..].find(&format!("</{name}>")).expect(name) + start;
        body[start..end]
            .trim_start_matches("<![CDATA[")
            .trim_end_matches("]]>")
            .to_owned()
    };
    let plain = key
        .open(
            token,
            appid,
            &field("Encrypt"),
            &field("TimeStamp"),
            &field("Nonce"),
            &field("MsgSignature"),
        )
        .expect("the reply opens");
    String::from_utf8(plain).expect("utf-8")
}

#[test]
fn replies_swap_names_stamp_the_clock_and_encrypt_like_the_push() {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_123));
    let token = ServerToken::new("token");
    let aes = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    let config = PushConfig::new("wxapp", token.clone())
        .aes_key(key(aes))
        .clock(Arc::new(clock.clone()));
    let push = TestPush::new(&config).text("o-user", "gh_acct", "hello", 42);
    let m = config
        .open(&PushQuery::from_query(&push.query), push.body.as_bytes())
        .expect("opens");
    assert!(m.is_encrypted());
    let a = config.reply(&m, &Reply::text("a]]>b"));
    let b = config.reply(&m, &Reply::text("a]]>b"));
    assert_eq!(a.content_type, "application/xml; charset=utf-8");
    assert_ne!(a.body, b.body, "fresh prefix and nonce per reply");
    let inner = open_reply(&key(aes), &token, "wxapp", &a.body);
    assert!(
        inner.contains("<ToUserName><![CDATA[o-user]]></ToUserName>"),
        "{inner}"
    );
    assert!(
        inner.contains("<FromUserName><![CDATA[gh_acct]]></FromUserName>"),
        "{inner}"
    );
    assert!(
        inner.contains("<CreateTime>1700000123</CreateTime>"),
        "{inner}"
    );
    assert!(inner.contains("<![CDATA[a]]]]><![CDATA[>b]]>"), "{inner}");
    assert!(a.body.contains("<TimeStamp>1700000123</TimeStamp>"));
    // `success` is never encrypted.
    let ok = config.reply(&m, &Reply::Success);
    assert!(ok.is_success());
    assert_eq!(ok.content_type, "text/plain; charset=utf-8");

    // Compatible mode: encrypted too. Plaintext mode: plain XML.
    let compat = TestPush::new(&config)
        .compatible(true)
        .text("o-user", "gh_acct", "c", 43);
    assert!(
        compat.body.contains("<Content><![CDATA[c]]></Content>")
            && compat.body.contains("<Encrypt>")
    );
    let m = config
        .open(
            &PushQuery::from_query(&compat.query),
            compat.body.as_bytes(),
        )
        .expect("opens");
    assert!(
        config
            .reply(&m, &Reply::text("x"))
            .body
            .contains("<Encrypt>")
    );
    let plain = PushConfig::new("wxapp", token).clock(Arc::new(clock));
    let push = TestPush::new(&plain).text("o-user", "gh_acct", "p", 44);
    let m = plain
        .open(&PushQuery::from_query(&push.query), push.body.as_bytes())
        .expect("opens");
    let body = plain.reply(&m, &Reply::text("plain")).body;
    assert!(
        body.starts_with("<xml><ToUserName><![CDATA[o-user]]>")
            && body.contains("<Content><![CDATA[plain]]>")
    );
}

#[tokio::test]
async fn dedup_lets_each_push_through_once() {
    let store = MemoryTokenStore::new();
    let config = PushConfig::new("wxapp", ServerToken::new("token"));
    let dedup = Dedup::new(store.clone(), "wxapp");
    let other_instance = Dedup::new(store, "wxapp");
    let push = TestPush::new(&config).text("o", "gh", "hi", 99);
    let m = config
        .open(&PushQuery::from_query(&push.query), push.body.as_bytes())
        .expect("opens");
    // A retry (new timestamp and nonce, same message) is the same push.
    let retry = TestPush::new(&config)
        .nonce("123")
        .text("o", "gh", "hi", 99);
    let m2 = config
        .open(&PushQuery::from_query(&retry.query), retry.body.as_bytes())
        .expect("opens");
    assert!(dedup.first_seen(&m).await.expect("store"));
    assert!(!other_instance.first_seen(&m2).await.expect("store"));
    assert!(!dedup.first_seen(&m).await.expect("store"));
    let next = TestPush::new(&config).text("o", "gh", "hi", 100);
    let m3 = config
        .open(&PushQuery::from_query(&next.query), next.body.as_bytes())
        .expect("opens");
    assert!(dedup.first_seen(&m3).await.expect("store"));
}

#[tokio::test]
async fn a_slow_handler_is_answered_success_within_the_budget() {
    let config = PushConfig::new("wxapp", ServerToken::new("token"));
    let push = TestPush::new(&config).text("o", "gh", "slow", 1);
    let m = config
        .open(&PushQuery::from_query(&push.query), push.body.as_bytes())
        .expect("opens");
    let late: Arc<Mutex<Vec<LateReply>>> = Arc::default();
    let sink = late.clone();
    let hook: LateHook = Arc::new(move |r| sink.lock().expect("lock").push(r));

    let started = std::time::Instant::now();
    let outcome = run_with_budget(
        Duration::from_millis(200),
        &m,
        async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            Reply::text("finally")
        },
        Some(hook.clone()),
    )
    .await;
    let answered = started.elapsed();
    assert_eq!(outcome, Outcome::Late);
    assert!(
        answered >= Duration::from_millis(200) && answered < Duration::from_millis(500),
        "{answered:?}"
    );
    assert_eq!(outcome.into_reply(), Reply::Success);
    assert!(
        late.lock().expect("lock").is_empty(),
        "the handler is still running"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    {
        let got = late.lock().expect("lock");
        assert_eq!(got.len(), 1, "the handler ran to completion");
        assert_eq!(got[0].reply, Reply::text("finally"));
        assert!(got[0].elapsed >= Duration::from_millis(600));
        assert_eq!(got[0].incoming, m);
    }

    // A fast handler's reply is used, and nothing reaches the hook.
    let fast = run_with_budget(
        DEFAULT_BUDGET,
        &m,
        async { Reply::text("quick") },
        Some(hook),
    )
    .await;
    assert_eq!(fast, Outcome::InTime(Reply::text("quick")));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(late.lock().expect("lock").len(), 1);
    let panicked = run_with_budget(
        DEFAULT_BUDGET,
        &m,
        async move {
            if std::hint::black_box(true) {
                panic!("handler bug");
            }
            Reply::Success
        },
        None,
    )
    .await;
    assert_eq!(panicked, Outcome::Failed);
}

#[test]
fn padding_edge_pushes_open_whatever_the_pad_length() {
    let v = json("crypto.padding_edge.derived_this_research.json");
    let config = official_config(&v);
    for case in v["cases"].as_array().expect("cases") {
        let body = format!(
            "<xml><ToUserName><![CDATA[toUser]]></ToUserName><Encrypt><![CDATA[{}]]></Encrypt></xml>",
            s(case, &["encrypt"])
        );
        let q = query(&[
            ("timestamp", s(&v, &["timestamp"])),
            ("nonce", s(&v, &["nonce"])),
            ("encrypt_type", "aes"),
            ("msg_signature", s(case, &["msg_signature"])),
        ]);
        let m = config.open(&q, body.as_bytes()).expect("opens");
        // No MsgId in these bodies: a text without its id is kept as Unknown, every field there.
        let Message::Unknown(u) = &m.message else {
            panic!("{m:?}")
        };
        assert_eq!(u.msg_type, "text");
        let content = m.fields().text_of("Content").expect("Content");
        assert!(s(case, &["plaintext"]).contains(&format!("<Content><![CDATA[{content}]]>")));
        assert_eq!(m.create_time, 1_348_831_860);
    }
}

/// Issue 19: the push path goes through the checked entry point, so digits moved from the
/// timestamp into the nonce under the same signature are refused (the bare sorted-SHA-1 check
/// accepted both), and a push older than the replay window is refused.
#[test]
fn shifted_digits_and_stale_timestamps_are_refused() {
    let token = ServerToken::new("AAAAA");
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_714_036_510));
    let config = PushConfig::new("wxapp", token.clone())
        .clock(Arc::new(clock.clone()))
        .replay_window(Duration::from_secs(300));
    let body = "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName>\
                <CreateTime>1714036504</CreateTime><MsgType>text</MsgType>\
                <Content>hi</Content><MsgId>1</MsgId></xml>";
    let signature = wx_core::crypto::server_signature(&token, "1714036504", "1514711492");
    let signed = |ts: &str, nonce: &str| {
        query(&[
            ("signature", &signature),
            ("timestamp", ts),
            ("nonce", nonce),
        ])
    };
    assert!(
        config
            .open(&signed("1714036504", "1514711492"), body.as_bytes())
            .is_ok()
    );
    assert_eq!(
        wx_core::crypto::server_signature(&token, "4", "1514711492171403650"),
        signature,
        "the same signature covers the shifted pair"
    );
    assert_eq!(
        config.open(&signed("4", "1514711492171403650"), body.as_bytes()),
        Err(PushError::MalformedQuery)
    );
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        config.open(&signed("1714036504", "1514711492"), body.as_bytes()),
        Err(PushError::Stale)
    );
}
