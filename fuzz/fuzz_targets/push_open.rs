//! The whole open-the-request path of the server URL with any query and body: no panic, every
//! refusal typed; a body signed and encrypted as WeChat does (any bytes inside) opens or is
//! refused without panic, and opens whenever it is a well-formed push; replies of any text
//! stay well-formed and carry the text back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wx_core::ServerToken;
use wx_core::crypto::EncodingAesKey;
use wx_official::push::{PushConfig, PushQuery, Reply, TestPush};

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

fuzz_target!(|data: &[u8]| {
    let Ok(key) = EncodingAesKey::new(KEY) else { return };
    let plain = PushConfig::new("wxfuzz", ServerToken::new("token"));
    let safe = PushConfig::new("wxfuzz", ServerToken::new("token")).aes_key(key);

    // Raw: the first line is the query, the rest the body.
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let query = PushQuery::from_query(&String::from_utf8_lossy(&data[..split]));
    let body = data.get(split + 1..).unwrap_or_default();
    for config in [&plain, &safe] {
        if let Err(e) = config.open(&query, body) {
            let _ = e.status();
        }
        let _ = config.handshake(&query);
    }

    // Signed as WeChat signs: the signature never fails, so what is left is the XML.
    let text = String::from_utf8_lossy(data);
    for config in [&plain, &safe] {
        let push = TestPush::new(config).xml(&text);
        let opened = config.open(&PushQuery::from_query(&push.query), push.body.as_bytes());
        if let Ok(incoming) = &opened {
            assert_eq!(incoming.is_encrypted(), config.current_aes_key().is_some());
            let reply = config.reply(incoming, &Reply::text(text.clone()));
            assert!(!reply.body.is_empty());
        }
    }

    // Any text in a reply comes back out of the reply XML (minus what XML cannot carry, with
    // XML's line-end normalisation).
    let push = TestPush::new(&plain).text("o-user", "gh_account", "hi", 1);
    if let Ok(incoming) = plain.open(&PushQuery::from_query(&push.query), push.body.as_bytes()) {
        let reply = plain.reply(&incoming, &Reply::text(text.clone()));
        let echo = TestPush::new(&plain).xml(&reply.body.replacen("<xml>", "<xml><MsgId>1</MsgId>", 1));
        let back = plain
            .open(&PushQuery::from_query(&echo.query), echo.body.as_bytes())
            .expect("a rendered reply is well-formed XML");
        let kept: String = text
            .chars()
            .filter(|&c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
            .collect::<String>()
            .replace("\r\n", "\n")
            .replace('\r', "\n");
        assert_eq!(back.fields().text_of("Content"), Some(kept.as_str()));
    } else {
        panic!("the helper's own push must open");
    }
});
