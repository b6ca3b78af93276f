//! Unit tests of what the public API cannot pin down: reply XML at a fixed time, the encrypted
//! envelope with a fixed prefix, and the XML reader's limits.

use wx_core::OpenId;

use super::reply::envelope;
use super::xml::parse;
use super::*;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../../tests/fixtures/push/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// The XML with the whitespace between tags removed (WxJava compares replies that way).
fn squash(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut pending = String::new();
    let mut after_tag = false;
    for c in xml.chars() {
        if c.is_whitespace() && (after_tag || out.is_empty()) {
            pending.push(c);
            continue;
        }
        if c != '<' {
            out.push_str(&pending);
        }
        pending.clear();
        after_tag = c == '>';
        out.push(c);
    }
    out
}

fn render(reply: &Reply, to: &str, from: &str, now: u64) -> String {
    reply
        .to_xml(&OpenId::new(to), from, now)
        .expect("an XML reply")
}

#[test]
fn replies_equal_the_wxjava_fixtures() {
    let cases: Vec<(&str, Reply, &str, &str, u64)> = vec![
        (
            "reply.text.wxjava_test.xml",
            Reply::text("content"),
            "to",
            "from",
            1122,
        ),
        (
            "reply.image.wxjava_test.xml",
            Reply::image("ddfefesfsdfef"),
            "to",
            "from",
            1122,
        ),
        (
            "reply.voice.wxjava_test.xml",
            Reply::voice("ddfefesfsdfef"),
            "to",
            "from",
            1122,
        ),
        (
            "reply.video.wxjava_test.xml",
            Reply::video("media_id", "title", "ddfff"),
            "toUser",
            "fromUser",
            1122,
        ),
        (
            "reply.music.wxjava_test.xml",
            Reply::Music(Music {
                title: "title".into(),
                description: "ddfff".into(),
                music_url: "musicUrl".into(),
                hq_music_url: "hQMusicUrl".into(),
                thumb_media_id: "thumbMediaId".into(),
            }),
            "toUser",
            "fromUser",
            1122,
        ),
        (
            "reply.news.wxjava_test.xml",
            Reply::News(vec![
                Article {
                    title: "title".into(),
                    description: "description".into(),
                    pic_url: "picUrl".into(),
                    url: "url".into(),
                };
                2
            ]),
            "toUser",
            "fromUser",
            1122,
        ),
        (
            "reply.transferkefu.wxjava_test.xml",
            Reply::transfer_customer_service(),
            "touser",
            "fromuser",
            1_399_197_672,
        ),
    ];
    for (file, reply, to, from, now) in cases {
        assert_eq!(
            render(&reply, to, from, now),
            squash(&fixture(file)),
            "{file}"
        );
    }
    assert_eq!(Reply::Success.to_xml(&OpenId::new("u"), "gh", 1), None);
    assert_eq!(
        ReplyBody::success().body,
        fixture("reply.success_literal.official_doc.txt")
    );
}

#[test]
fn text_is_cdata_safe() {
    let hostile = "a]]>b<c>&d]]]]>\u{0}\u{8}e\u{FFFF}f\u{1F600}";
    let xml = render(&Reply::text(hostile), "u", "gh", 1);
    let parsed = parse(xml.as_bytes()).expect("the reply is well-formed");
    // Characters XML 1.0 cannot carry are dropped; everything else survives.
    assert_eq!(
        parsed.text_of("Content"),
        Some("a]]>b<c>&d]]]]>ef\u{1F600}")
    );
    assert!(xml.contains("<![CDATA[a]]]]><![CDATA[>b"), "{xml}");
    let empty = render(&Reply::text(""), "u", "gh", 1);
    assert!(empty.contains("<Content><![CDATA[]]></Content>"), "{empty}");
    // A hostile OpenID cannot inject elements either.
    let xml = render(&Reply::text("x"), "o]]><MsgType>news</MsgType>", "gh", 1);
    let parsed = parse(xml.as_bytes()).expect("well-formed");
    assert_eq!(parsed.text_of("MsgType"), Some("text"));
    assert_eq!(
        parsed.text_of("ToUserName"),
        Some("o]]><MsgType>news</MsgType>")
    );
}

#[test]
fn encrypted_envelope_equals_the_wechatpy_vector() {
    let v: serde_json::Value = serde_json::from_str(&fixture(
        "crypto.decrypt_encrypt_echostr.wechatpy_test.json",
    ))
    .expect("JSON");
    let s = |a: &str, b: &str| v[a][b].as_str().expect("string").to_owned();
    let key = wx_core::crypto::EncodingAesKey::new(v["encoding_aes_key"].as_str().expect("key"))
        .expect("key");
    let token = ServerToken::new(v["token"].as_str().expect("token"));
    let random: [u8; 16] = s("encrypt_reply", "random16")
        .as_bytes()
        .try_into()
        .expect("16 bytes");
    let (ts, nonce) = (s("encrypt_reply", "timestamp"), s("encrypt_reply", "nonce"));
    let encrypt = key.encrypt_with_prefix(
        &random,
        s("encrypt_reply", "plaintext_reply").as_bytes(),
        v["receive_id"].as_str().expect("id"),
    );
    let signature = wx_core::crypto::msg_signature(&token, &ts, &nonce, &encrypt);
    assert_eq!(
        envelope(&encrypt, &signature, &ts, &nonce),
        squash(&s("encrypt_reply", "expected_envelope"))
    );
}

#[test]
fn reader_limits() {
    let deep = format!("<xml>{}{}</xml>", "<a>".repeat(40), "</a>".repeat(40));
    assert_eq!(parse(deep.as_bytes()), Err(PushError::MalformedXml));
    let ok = format!("<xml>{}x{}</xml>", "<a>".repeat(14), "</a>".repeat(14));
    assert!(parse(ok.as_bytes()).is_ok());
    for bad in [
        "",
        "<xml>",
        "<xml></xm>",
        "<notxml></notxml>",
        "<xml></xml><xml></xml>",
        "text<xml></xml>",
        "<xml><a></b></xml>",
        "<xml>&#0;</xml>",
    ] {
        assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
    }
    assert_eq!(
        parse(b"<xml><a>\xff</a></xml>"),
        Err(PushError::MalformedXml)
    );
    // DTDs and custom entities are refused, XML's own escapes are read.
    let xxe = "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\
               <xml><Content>&x;</Content></xml>";
    assert_eq!(parse(xxe.as_bytes()), Err(PushError::DtdOrEntity));
    assert_eq!(
        parse(b"<xml><Content>&x;</Content></xml>"),
        Err(PushError::DtdOrEntity)
    );
    let escaped = parse(b"<xml><C> a &lt;&amp;&#x4e2d;&#25991; b </C><E/></xml>").expect("ok");
    assert_eq!(escaped.text_of("C"), Some("a <&\u{4e2d}\u{6587} b"));
    assert_eq!(escaped.text_of("E"), Some(""));
    // CDATA keeps its whitespace; indentation around it is layout.
    let cdata = parse(b"<xml><C>\n  <![CDATA[ x ]]>\n</C></xml>").expect("ok");
    assert_eq!(cdata.text_of("C"), Some(" x "));
}
