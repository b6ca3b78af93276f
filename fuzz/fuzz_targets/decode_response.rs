//! Any body WeChat (or a proxy in front of it) can send: decoding never panics, a non-zero
//! errcode is always an API error, and decode errors never echo the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wx_core::{
    AccessTokenResponse, Ack, Error, JsapiTicketResponse, OAuthToken, UserInfo, decode_response,
    sanitize,
};

fn check<T: serde::de::DeserializeOwned>(data: &[u8]) {
    if let Err(e) = decode_response::<T>("fuzz/endpoint", data) {
        let shown = format!("{e} {e:?}");
        if let Error::Decode(_) = e {
            // A decode error names the endpoint and a path, never a slice of the body.
            if data.len() >= 12 {
                if let Ok(s) = std::str::from_utf8(data) {
                    let probe = s.trim();
                    if probe.len() >= 12 && !probe.contains("fuzz/endpoint") {
                        assert!(!shown.contains(probe), "decode error echoed the body");
                    }
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Sanitizing yields valid UTF-8 and is the identity on already-clean input.
    let clean = sanitize(data);
    assert!(std::str::from_utf8(&clean).is_ok());
    if serde_json::from_slice::<serde_json::Value>(data).is_ok() {
        assert_eq!(&*clean, data, "sanitize changed a body strict JSON accepts");
    }
    check::<AccessTokenResponse>(data);
    check::<OAuthToken>(data);
    check::<UserInfo>(data);
    check::<JsapiTicketResponse>(data);
    check::<Ack>(data);
});
