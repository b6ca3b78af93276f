use super::*;

const OFFICIAL: &str = include_str!(
    "../../../tests/fixtures/push/crypto.decrypt_compat_mode.official_sample_spamtest.json"
);
const WECHATPY: &str =
    include_str!("../../../tests/fixtures/push/crypto.decrypt_encrypt_echostr.wechatpy_test.json");
const PADDING: &str =
    include_str!("../../../tests/fixtures/push/crypto.padding_edge.derived_this_research.json");

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

fn s<'a>(v: &'a serde_json::Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str()
        .unwrap_or_else(|| panic!("string at {path:?} in fixture"))
}

/// The text of `<name><![CDATA[...]]></name>` in an XML fixture.
fn cdata<'a>(xml: &'a str, name: &str) -> &'a str {
    let open = format!("<{name}><![CDATA[");
    let start = xml.find(&open).expect("element present") + open.len();
    let len = xml[start..].find("]]>").expect("CDATA closed");
    &xml[start..start + len]
}

fn prefix(text: &str) -> [u8; 16] {
    text.as_bytes().try_into().expect("16-byte prefix")
}

/// Encrypts raw bytes (already a whole number of blocks) with the key, bypassing the payload
/// layout, to build malformed payloads.
fn raw_encrypt(key: &EncodingAesKey, plain: &[u8]) -> String {
    let mut buf = plain.to_vec();
    let len = buf.len();
    let cipher = cbc::Encryptor::<Aes256>::new(&key.key.into(), key.iv().into());
    let out = cipher
        .encrypt_padded_mut::<NoPadding>(&mut buf, len)
        .expect("whole blocks");
    STANDARD.encode(out)
}

fn pad_of(key: &EncodingAesKey, encrypt: &str) -> u8 {
    let mut buf = STANDARD.decode(encrypt).expect("base64");
    let cipher = cbc::Decryptor::<Aes256>::new(&key.key.into(), key.iv().into());
    let plain = cipher
        .decrypt_padded_mut::<NoPadding>(&mut buf)
        .expect("whole blocks");
    *plain.last().expect("non-empty")
}

#[test]
fn official_sample_compat_mode() {
    let v = json(OFFICIAL);
    let token = ServerToken::new(s(&v, &["token"]));
    let key = EncodingAesKey::new(s(&v, &["encoding_aes_key"])).expect("key with trailing bits");
    let (appid, ts, nonce) = (s(&v, &["appid"]), s(&v, &["timestamp"]), s(&v, &["nonce"]));
    let encrypt = s(&v, &["encrypt"]);
    assert_eq!(cdata(s(&v, &["request_body"]), "Encrypt"), encrypt);
    assert_eq!(
        msg_signature(&token, ts, nonce, encrypt),
        s(&v, &["msg_signature"])
    );
    assert_eq!(
        server_signature(&token, ts, nonce),
        s(&v, &["derived_by_this_research", "signature_plain_mode"])
    );
    let plain = key
        .open(&token, appid, encrypt, ts, nonce, s(&v, &["msg_signature"]))
        .expect("opens");
    let expected = s(&v, &["derived_by_this_research", "decrypted_plaintext"]);
    assert_eq!(String::from_utf8(plain).expect("utf-8"), expected);
    assert_eq!(
        v["derived_by_this_research"]["msg_len"].as_u64(),
        Some(expected.len() as u64)
    );
    assert_eq!(
        u64::from(pad_of(&key, encrypt)),
        v["derived_by_this_research"]["pkcs7_pad_byte"]
            .as_u64()
            .expect("pad")
    );
    // Re-encrypting with the sample's prefix gives WeChat's bytes exactly.
    let random = prefix(s(&v, &["derived_by_this_research", "random16"]));
    assert_eq!(
        key.encrypt_with_prefix(&random, expected.as_bytes(), appid),
        encrypt
    );
    // Another AppID is refused, and so is a wrong signature, before decrypting.
    assert_eq!(
        key.decrypt(encrypt, "wx0000000000000000"),
        Err(CryptoError::AppIdMismatch)
    );
    assert_eq!(
        key.open(
            &token,
            appid,
            encrypt,
            ts,
            "1320562133",
            s(&v, &["msg_signature"])
        ),
        Err(CryptoError::SignatureMismatch)
    );
}

#[test]
fn wechatpy_decrypt_encrypt_and_echostr() {
    let v = json(WECHATPY);
    let token = ServerToken::new(s(&v, &["token"]));
    let key = EncodingAesKey::new(s(&v, &["encoding_aes_key"])).expect("key");
    let appid = s(&v, &["receive_id"]);

    let e = &v["echostr_verify"];
    let (ts, nonce, sig) = (
        s(e, &["timestamp"]),
        s(e, &["nonce"]),
        s(e, &["msg_signature"]),
    );
    let echostr = key
        .open(&token, appid, s(e, &["echostr"]), ts, nonce, sig)
        .expect("echostr opens");
    assert_eq!(echostr, s(e, &["derived_decrypted_echostr"]).as_bytes());
    assert_eq!(
        key.open(
            &token,
            appid,
            s(e, &["echostr"]),
            ts,
            s(e, &["bad_nonce_must_fail"]),
            sig
        ),
        Err(CryptoError::SignatureMismatch)
    );

    let d = &v["decrypt"];
    let encrypt = cdata(s(d, &["request_body"]), "Encrypt");
    let plain = key
        .open(
            &token,
            appid,
            encrypt,
            s(d, &["timestamp"]),
            s(d, &["nonce"]),
            s(d, &["msg_signature"]),
        )
        .expect("message opens");
    let plain = String::from_utf8(plain).expect("utf-8");
    assert_eq!(plain, s(d, &["derived_decrypted_plaintext"]));
    assert!(plain.contains(&format!(
        "<Content><![CDATA[{}]]>",
        s(d, &["expected_fields", "Content"])
    )));
    assert!(plain.contains(&format!(
        "<FromUserName><![CDATA[{}]]>",
        s(d, &["expected_fields", "FromUserName"])
    )));
    assert_eq!(
        u64::from(pad_of(&key, encrypt)),
        d["derived_pkcs7_pad_byte"].as_u64().expect("pad")
    );

    let r = &v["encrypt_reply"];
    let envelope = s(r, &["expected_envelope"]);
    let encrypt = key.encrypt_with_prefix(
        &prefix(s(r, &["random16"])),
        s(r, &["plaintext_reply"]).as_bytes(),
        appid,
    );
    assert_eq!(encrypt, cdata(envelope, "Encrypt"));
    assert_eq!(
        msg_signature(&token, s(r, &["timestamp"]), s(r, &["nonce"]), &encrypt),
        cdata(envelope, "MsgSignature")
    );
    assert!(envelope.contains(&format!("<TimeStamp>{}</TimeStamp>", s(r, &["timestamp"]))));
    assert_eq!(cdata(envelope, "Nonce"), s(r, &["nonce"]));
}

#[test]
fn padding_edge_vectors() {
    let v = json(PADDING);
    let token = ServerToken::new(s(&v, &["token"]));
    let key = EncodingAesKey::new(s(&v, &["encoding_aes_key"])).expect("key");
    let (appid, ts, nonce) = (s(&v, &["appid"]), s(&v, &["timestamp"]), s(&v, &["nonce"]));
    let random = prefix(s(&v, &["random16"]));
    let cases = v["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 2);
    for case in cases {
        let (plain, encrypt) = (s(case, &["plaintext"]), s(case, &["encrypt"]));
        assert_eq!(
            key.encrypt_with_prefix(&random, plain.as_bytes(), appid),
            encrypt
        );
        assert_eq!(
            msg_signature(&token, ts, nonce, encrypt),
            s(case, &["msg_signature"])
        );
        assert_eq!(
            u64::from(pad_of(&key, encrypt)),
            case["pkcs7_pad_byte"].as_u64().expect("pad")
        );
        let opened = key
            .open(
                &token,
                appid,
                encrypt,
                ts,
                nonce,
                s(case, &["msg_signature"]),
            )
            .expect("opens");
        assert_eq!(opened, plain.as_bytes());
    }
}

#[test]
fn round_trips_every_pad_length_with_random_prefixes() {
    let key = EncodingAesKey::new("kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR").expect("key");
    let appid = "wx49f0ab532d5d035a";
    let mut pads = std::collections::BTreeSet::new();
    for len in 0..=96 {
        let message: Vec<u8> = (0..len).map(|i| b"<xml>\xe4\xbd\xa0 ]]>"[i % 11]).collect();
        let a = key.encrypt(&message, appid);
        let b = key.encrypt(&message, appid);
        assert_ne!(a, b, "a fresh prefix per encryption");
        pads.insert(pad_of(&key, &a));
        assert_eq!(
            STANDARD.decode(&a).expect("base64").len() % PAD_BLOCK,
            0,
            "whole 32-byte blocks"
        );
        assert_eq!(key.decrypt(&a, appid).expect("round trip"), message);
        assert_eq!(key.decrypt(&b, appid).expect("round trip"), message);
    }
    assert_eq!(pads, (1..=32).collect(), "every pad length 1..=32 occurs");
}

#[test]
fn seal_and_open_agree() {
    let key = EncodingAesKey::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").expect("key");
    let token = ServerToken::new("spamtest");
    let sealed = key.seal(&token, "wxapp", "你好".as_bytes(), "1", "2");
    assert_eq!(
        sealed.msg_signature,
        msg_signature(&token, "1", "2", &sealed.encrypt)
    );
    let opened = key
        .open(
            &token,
            "wxapp",
            &sealed.encrypt,
            "1",
            "2",
            &sealed.msg_signature.to_uppercase(),
        )
        .expect("opens, hex case ignored");
    assert_eq!(opened, "你好".as_bytes());
    let other = ServerToken::new("spamtesT");
    assert_eq!(
        key.open(
            &other,
            "wxapp",
            &sealed.encrypt,
            "1",
            "2",
            &sealed.msg_signature
        ),
        Err(CryptoError::SignatureMismatch)
    );
    // An empty Token never verifies, even with the signature computed for it.
    let empty = ServerToken::new("");
    let for_empty = key.seal(&empty, "wxapp", b"x", "1", "2");
    assert_eq!(
        key.open(
            &empty,
            "wxapp",
            &for_empty.encrypt,
            "1",
            "2",
            &for_empty.msg_signature
        ),
        Err(CryptoError::SignatureMismatch)
    );
    // Another key decrypts to garbage: refused with a typed error.
    let other_key =
        EncodingAesKey::new("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg").expect("key");
    assert!(other_key.decrypt(&sealed.encrypt, "wxapp").is_err());
}

#[test]
fn malformed_ciphertexts_get_their_own_errors() {
    let key = EncodingAesKey::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").expect("key");
    let appid = "wx2c2769f8efd9abc2";
    assert_eq!(key.decrypt("not base64!", appid), Err(CryptoError::Base64));
    assert_eq!(key.decrypt("", appid), Err(CryptoError::CiphertextLength));
    let fifteen = STANDARD.encode([0u8; 15]);
    assert_eq!(
        key.decrypt(&fifteen, appid),
        Err(CryptoError::CiphertextLength)
    );

    // Padding: a last byte of 0, of 33, and a pad value whose bytes differ.
    let mut plain = vec![7u8; 64];
    plain[63] = 0;
    assert_eq!(
        key.decrypt(&raw_encrypt(&key, &plain), appid),
        Err(CryptoError::Padding)
    );
    plain[63] = 33;
    assert_eq!(
        key.decrypt(&raw_encrypt(&key, &plain), appid),
        Err(CryptoError::Padding)
    );
    plain[63] = 3;
    plain[62] = 3;
    plain[61] = 4;
    assert_eq!(
        key.decrypt(&raw_encrypt(&key, &plain), appid),
        Err(CryptoError::Padding)
    );
    // A pad of 32 on a 16-byte payload is longer than the payload.
    let mut short = vec![32u8; 16];
    short[0] = 1;
    assert_eq!(
        key.decrypt(&raw_encrypt(&key, &short), appid),
        Err(CryptoError::Padding)
    );

    // Length field past the end, and a payload shorter than the header.
    let mut payload = vec![b'r'; 16];
    payload.extend_from_slice(&1000u32.to_be_bytes());
    payload.extend_from_slice(b"<xml/>");
    payload.extend_from_slice(appid.as_bytes());
    let pad = PAD_BLOCK - payload.len() % PAD_BLOCK;
    payload.resize(payload.len() + pad, u8::try_from(pad).expect("small"));
    assert_eq!(
        key.decrypt(&raw_encrypt(&key, &payload), appid),
        Err(CryptoError::MessageLength)
    );
    let tiny = [vec![b'r'; 12], vec![20u8; 20]].concat();
    assert_eq!(
        key.decrypt(&raw_encrypt(&key, &tiny), appid),
        Err(CryptoError::MessageLength)
    );
    let u32max = [vec![b'r'; 16], vec![0xff; 4], vec![12u8; 12]].concat();
    assert_eq!(
        key.decrypt(&raw_encrypt(&key, &u32max), appid),
        Err(CryptoError::MessageLength)
    );

    // A flipped ciphertext bit in the block before the padding breaks the padding.
    let good = key.encrypt_with_prefix(&[1; 16], b"<xml>hello</xml>", appid);
    let mut bytes = STANDARD.decode(&good).expect("base64");
    let n = bytes.len();
    let pad = pad_of(&key, &good);
    bytes[n - 17] ^= pad; // the last plaintext byte becomes 0
    assert_eq!(
        key.decrypt(&STANDARD.encode(&bytes), appid),
        Err(CryptoError::Padding)
    );
}

#[test]
fn random_input_never_panics() {
    let key = EncodingAesKey::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").expect("key");
    for len in 0..200 {
        let bytes: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
        let b64 = STANDARD.encode(&bytes);
        // Random ciphertext almost never has valid padding, length and AppID together.
        assert!(key.decrypt(&b64, "wx2c2769f8efd9abc2").is_err(), "{len}");
        let text = String::from_utf8_lossy(&bytes);
        assert!(key.decrypt(&text, "wx").is_err());
        assert!(EncodingAesKey::new(&text).is_err() || text.len() == ENCODING_AES_KEY_LEN);
    }
}

#[test]
fn keys_are_checked_and_redacted() {
    for bad in [
        "",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDE*G",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF=",
        "ａbcdefghijklmnopqrstuvwxyz0123456789ABCD",
    ] {
        assert_eq!(
            EncodingAesKey::new(bad).map(|_| ()),
            Err(CryptoError::InvalidKey),
            "{bad}"
        );
    }
    // Three of the four published keys have non-zero trailing bits.
    for good in [
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
    ] {
        let key = EncodingAesKey::new(good).expect("accepted");
        let shown = format!("{key:?}");
        assert_eq!(shown, "EncodingAesKey([redacted])");
        assert!(!shown.contains(good));
    }
    let token = ServerToken::new("spamtest");
    assert_eq!(format!("{token:?}"), "ServerToken([redacted])");
    let err = CryptoError::AppIdMismatch.to_string();
    assert!(!err.contains("wx"), "{err}");
}

#[test]
fn signature_is_bytewise_sorted_sha1() {
    // wechat-api.md §9: sorted ["1514711492", "1714036504", "AAAAA"].
    let token = ServerToken::new("AAAAA");
    assert_eq!(
        server_signature(&token, "1714036504", "1514711492"),
        "f464b24fc39322e44b38aa78f5edd27bd1441696"
    );
    assert_eq!(
        signature(&["1514711492", "AAAAA", "1714036504"]),
        "f464b24fc39322e44b38aa78f5edd27bd1441696"
    );
    let expected = server_signature(&token, "1714036504", "1514711492");
    assert!(signature_matches(
        &token,
        &expected,
        &expected.to_uppercase()
    ));
    assert!(!signature_matches(&token, &expected, &expected[..39]));
    assert!(!signature_matches(&token, &expected, ""));
}
