//! JS-SDK page configuration: the `wx.config({...})` values and their signature.
//!
//! WeChat's JS-SDK checks a SHA-1 signature over the page URL made with the account's
//! `jsapi_ticket`:
//!
//! ```text
//! signature = hex_lower(sha1("jsapi_ticket=" + ticket + "&noncestr=" + nonce
//!                            + "&timestamp=" + timestamp + "&url=" + url))
//! ```
//!
//! where `url` is the full page URL without its `#fragment`, raw (not percent-encoded). Everything
//! here is pure: the client fetches and caches the ticket, then calls [`JsSdkConfig::generate`].
//!
//! ```
//! use wx_core::{AppId, Ticket};
//! use wx_official::jssdk::js_sdk_config;
//!
//! let ticket = Ticket::new("mock-ticket");
//! let config = js_sdk_config(
//!     &AppId::new("mock-appid"),
//!     &ticket,
//!     "https://www.easywechat.com/",
//!     1_601_234_567,
//!     "mock-nonce",
//! )?;
//! assert_eq!(config.signature, "22772d2fb393ab9f7f6a5a54168a566fbf1ab767");
//! // Serialises with the names wx.config expects: appId, timestamp, nonceStr, signature, url.
//! let json = serde_json::to_value(&config)?;
//! assert_eq!(json["nonceStr"], "mock-nonce");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use wx_core::{AppId, InvalidInput, Ticket};

/// Longest page URL accepted, in bytes. Browsers cope with longer URLs, but a JS-SDK page URL
/// this long is almost certainly a mistake (a data URL, a runaway query string).
pub const MAX_PAGE_URL_LEN: usize = 4096;

/// Length of the nonces made by [`random_nonce`].
pub const NONCE_LEN: usize = 16;

/// Longest nonce accepted by [`js_sdk_config`].
pub const MAX_NONCE_LEN: usize = 64;

/// The values a page passes to `wx.config({...})`, with their signature.
///
/// Serialises (serde) with the camelCase names `wx.config` expects: `appId`, `timestamp`,
/// `nonceStr`, `signature`, plus `url` (the URL that was signed, for the page to check it is the
/// one it runs on). `jsApiList` and `debug` are the page's choice and are not included.
///
/// None of these values is secret: they are sent to the browser. It also deserialises from
/// that JSON, so a page can send back the configuration that failed
/// ([`OfficialAccount::invalidate_jsapi_ticket_for`](crate::OfficialAccount::invalidate_jsapi_ticket_for)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct JsSdkConfig {
    /// The Official Account's AppID.
    pub app_id: AppId,
    /// Unix time in seconds that was signed.
    pub timestamp: u64,
    /// The nonce that was signed (`nonceStr` in `wx.config`, `noncestr` in the signature).
    pub nonce_str: String,
    /// Lowercase hex SHA-1 signature.
    pub signature: String,
    /// The page URL that was signed: the given URL without its `#fragment`.
    pub url: String,
}

impl JsSdkConfig {
    /// Builds the configuration for `url` at time `now`, with a fresh [`random_nonce`].
    ///
    /// This is what a client calls once it holds the cached ticket; `now` comes from its clock.
    ///
    /// # Errors
    /// [`InvalidInput`] as for [`js_sdk_config`].
    pub fn generate(
        app_id: &AppId,
        ticket: &Ticket,
        url: &str,
        now: SystemTime,
    ) -> Result<Self, InvalidInput> {
        let timestamp = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        js_sdk_config(app_id, ticket, url, timestamp, &random_nonce())
    }
}

/// Builds the `wx.config` values for `url` from explicit inputs (deterministic, for tests and for
/// callers that choose their own nonce and timestamp).
///
/// The URL's `#fragment` is removed before signing, as WeChat requires.
///
/// # Errors
/// [`InvalidInput`] naming:
/// - `app_id`: empty or with control characters;
/// - `ticket`: empty;
/// - `url`: see [`check_page_url`];
/// - `nonce`: empty, longer than [`MAX_NONCE_LEN`], or with a character outside
///   `[A-Za-z0-9_-]` (`&`, `=` or `#` would make the signed string ambiguous).
pub fn js_sdk_config(
    app_id: &AppId,
    ticket: &Ticket,
    url: &str,
    timestamp: u64,
    nonce: &str,
) -> Result<JsSdkConfig, InvalidInput> {
    wx_core::check_arg("app_id", app_id.as_str(), crate::client::MAX_APPID_LEN)?;
    wx_core::check_arg("ticket", ticket.secret(), crate::client::MAX_TOKEN_LEN)?;
    let url = check_page_url(url)?;
    check_nonce(nonce)?;
    Ok(JsSdkConfig {
        app_id: app_id.clone(),
        timestamp,
        nonce_str: nonce.to_owned(),
        signature: jsapi_signature(ticket, nonce, timestamp, url),
        url: url.to_owned(),
    })
}

/// The JS-SDK signature: lowercase hex SHA-1 of
/// `jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}`, with `url`'s
/// `#fragment` removed and nothing percent-encoded.
///
/// This function does not validate its inputs; [`js_sdk_config`] does.
#[must_use]
pub fn jsapi_signature(ticket: &Ticket, noncestr: &str, timestamp: u64, url: &str) -> String {
    let url = strip_fragment(url);
    let mut hasher = Sha1::new();
    hasher.update(b"jsapi_ticket=");
    hasher.update(ticket.secret().as_bytes());
    hasher.update(b"&noncestr=");
    hasher.update(noncestr.as_bytes());
    hasher.update(b"&timestamp=");
    hasher.update(timestamp.to_string().as_bytes());
    hasher.update(b"&url=");
    hasher.update(url.as_bytes());
    hex_lower(&hasher.finalize())
}

/// A random nonce of [`NONCE_LEN`] characters from `[A-Za-z0-9]`, drawn from the thread-local
/// cryptographically secure generator.
#[must_use]
pub fn random_nonce() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), NONCE_LEN)
}

/// Checks a page URL for signing and returns it without its `#fragment`.
///
/// Call it before fetching a ticket so that a bad URL fails before any request is sent.
///
/// # Errors
/// [`InvalidInput`] naming `url` when it is empty, longer than [`MAX_PAGE_URL_LEN`], contains
/// whitespace, control characters or `"`, `<`, `>`, is not an absolute `http://` or `https://`
/// URL, or has no host. Browsers never produce such a `location.href` (they percent-encode
/// `"`, `<` and `>`), so a signature over it could not match; and the URL is echoed into the
/// page's configuration, where a `</script>` must not ride along.
pub fn check_page_url(url: &str) -> Result<&str, InvalidInput> {
    crate::url_check::check_http_url("url", url, MAX_PAGE_URL_LEN)?;
    if url.contains(['"', '<', '>']) {
        return Err(InvalidInput::new(
            "url",
            "must not contain '\"', '<' or '>' (browsers percent-encode them)",
        ));
    }
    Ok(strip_fragment(url))
}

/// The URL up to (not including) its first `#`.
fn strip_fragment(url: &str) -> &str {
    url.split_once('#').map_or(url, |(before, _)| before)
}

fn check_nonce(nonce: &str) -> Result<(), InvalidInput> {
    wx_core::check_arg("nonce", nonce, MAX_NONCE_LEN)?;
    if !nonce
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(InvalidInput::new(
            "nonce",
            "must contain only [A-Za-z0-9_-] characters",
        ));
    }
    Ok(())
}

/// Lowercase hex of a digest.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector from easywechat's test suite, kept in the repository's fixtures.
    const EASYWECHAT: &str =
        include_str!("../../../tests/fixtures/vector.jssdk_signature.easywechat_test.json");

    // wechat-api.md §8 (verified against the official JS-SDK signing tool's example).
    const DOC_TICKET: &str =
        "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";
    const DOC_NONCE: &str = "Wm3WZYTPz0wzccnW";
    const DOC_TIMESTAMP: u64 = 1_414_587_457;

    fn field<'a>(v: &'a serde_json::Value, name: &str) -> &'a str {
        v[name].as_str().expect("string field in fixture")
    }

    #[test]
    fn matches_the_easywechat_vector_and_config_shape() {
        let v: serde_json::Value = serde_json::from_str(EASYWECHAT).expect("fixture is JSON");
        let ticket = Ticket::new(field(&v, "jsapi_ticket"));
        let ts = v["timestamp"].as_u64().expect("timestamp");
        let sig = jsapi_signature(&ticket, field(&v, "noncestr"), ts, field(&v, "url"));
        assert_eq!(sig, field(&v, "expected_signature"));

        let shape = &v["returned_config_shape"];
        let config = js_sdk_config(
            &AppId::new(field(shape, "appId")),
            &ticket,
            field(&v, "url"),
            ts,
            field(&v, "noncestr"),
        )
        .expect("valid inputs");
        // Same keys and values as easywechat's returned config (wx.config names).
        assert_eq!(serde_json::to_value(&config).expect("serialise"), *shape);
    }

    #[test]
    fn matches_the_documented_vectors() {
        let ticket = Ticket::new(DOC_TICKET);
        assert_eq!(
            jsapi_signature(
                &ticket,
                DOC_NONCE,
                DOC_TIMESTAMP,
                "http://mp.weixin.qq.com?params=value"
            ),
            "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
        );
        assert_eq!(
            jsapi_signature(&ticket, DOC_NONCE, DOC_TIMESTAMP, "http://mp.weixin.qq.com"),
            "f4d90daf4b3bca3078ab155816175ba34c443a7b"
        );
    }

    #[test]
    fn the_fragment_is_not_signed() {
        let ticket = Ticket::new(DOC_TICKET);
        let base = "http://mp.weixin.qq.com?params=value";
        let expected = "0f9de62fce790f9a083d5c99e95740ceb90c27ed";
        for with_fragment in [
            format!("{base}#"),
            format!("{base}#frag"),
            format!("{base}#/route?x=1#again"),
        ] {
            assert_eq!(
                jsapi_signature(&ticket, DOC_NONCE, DOC_TIMESTAMP, &with_fragment),
                expected,
                "{with_fragment}"
            );
            let config = js_sdk_config(
                &AppId::new("wxappid"),
                &ticket,
                &with_fragment,
                DOC_TIMESTAMP,
                DOC_NONCE,
            )
            .expect("valid inputs");
            assert_eq!(config.signature, expected);
            assert_eq!(config.url, base, "the config reports the signed URL");
        }
    }

    #[test]
    fn every_input_takes_part_in_the_signature() {
        let t = Ticket::new(DOC_TICKET);
        let url = "http://mp.weixin.qq.com";
        let base = jsapi_signature(&t, DOC_NONCE, DOC_TIMESTAMP, url);
        assert_ne!(
            jsapi_signature(&Ticket::new("other"), DOC_NONCE, DOC_TIMESTAMP, url),
            base
        );
        assert_ne!(jsapi_signature(&t, "other", DOC_TIMESTAMP, url), base);
        assert_ne!(jsapi_signature(&t, DOC_NONCE, DOC_TIMESTAMP + 1, url), base);
        assert_ne!(
            jsapi_signature(&t, DOC_NONCE, DOC_TIMESTAMP, "http://mp.weixin.qq.com/"),
            base
        );
        // Raw, not percent-encoded: an encoded URL is a different string, so a different signature.
        assert_ne!(
            jsapi_signature(
                &t,
                DOC_NONCE,
                DOC_TIMESTAMP,
                "http%3A%2F%2Fmp.weixin.qq.com"
            ),
            base
        );
    }

    #[test]
    fn generate_uses_the_clock_and_a_fresh_nonce() {
        let ticket = Ticket::new(DOC_TICKET);
        let now = UNIX_EPOCH + std::time::Duration::from_secs(DOC_TIMESTAMP);
        let app_id = AppId::new("wxappid");
        let url = "https://example.com/page?x=1#top";
        let a = JsSdkConfig::generate(&app_id, &ticket, url, now).expect("valid");
        let b = JsSdkConfig::generate(&app_id, &ticket, url, now).expect("valid");
        assert_eq!(a.timestamp, DOC_TIMESTAMP);
        assert_eq!(a.url, "https://example.com/page?x=1");
        assert_ne!(a.nonce_str, b.nonce_str, "each config gets its own nonce");
        assert_eq!(
            a.signature,
            jsapi_signature(&ticket, &a.nonce_str, DOC_TIMESTAMP, &a.url)
        );
    }

    #[test]
    fn random_nonces_are_16_alphanumerics() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let n = random_nonce();
            assert_eq!(n.len(), NONCE_LEN);
            assert!(n.bytes().all(|b| b.is_ascii_alphanumeric()), "{n}");
            assert!(check_nonce(&n).is_ok());
            seen.insert(n);
        }
        assert_eq!(seen.len(), 1000, "no repeats among 1000 nonces");
    }

    #[test]
    fn bad_urls_are_rejected_before_signing() {
        let app_id = AppId::new("wxappid");
        let ticket = Ticket::new(DOC_TICKET);
        for (url, reason) in [
            ("", "must not be empty"),
            (
                "mp.weixin.qq.com/page",
                "must be an absolute http:// or https:// URL",
            ),
            ("/page", "must be an absolute http:// or https:// URL"),
            (
                "ftp://mp.weixin.qq.com/",
                "must be an absolute http:// or https:// URL",
            ),
            (
                "javascript://x",
                "must be an absolute http:// or https:// URL",
            ),
            (
                "://mp.weixin.qq.com",
                "must be an absolute http:// or https:// URL",
            ),
            ("https://", "must have a host"),
            ("https:///path", "must have a host"),
            ("https://user@/path", "must have a host"),
            ("https://:443/", "must have a host"),
            ("https://#frag", "must have a host"),
            (
                "https://a.com/\npath",
                "must not contain control characters",
            ),
            (
                "https://a.com/\u{7f}",
                "must not contain control characters",
            ),
            ("https://a.com/a b", "must not contain whitespace"),
            // Issue 19 (Info): echoed into the page's configuration.
            (
                "https://a.com/?q=</script><script>alert(1)</script>",
                "must not contain '\"', '<' or '>' (browsers percent-encode them)",
            ),
            (
                "https://a.com/\"onload=\"x",
                "must not contain '\"', '<' or '>' (browsers percent-encode them)",
            ),
        ] {
            let err =
                js_sdk_config(&app_id, &ticket, url, DOC_TIMESTAMP, DOC_NONCE).expect_err(url);
            assert_eq!(err, InvalidInput::new("url", reason), "{url:?}");
        }
        let long = format!("https://a.com/{}", "x".repeat(MAX_PAGE_URL_LEN));
        assert_eq!(
            check_page_url(&long).expect_err("too long"),
            InvalidInput::new("url", "too long")
        );
        for ok in [
            "http://mp.weixin.qq.com",
            "HTTPS://A.COM/x",
            "https://a.com:8443/p?q=1&r=%20",
            "https://u:p@a.com/",
            "https://[::1]:8080/",
        ] {
            assert_eq!(check_page_url(ok), Ok(ok), "{ok}");
        }
    }

    #[test]
    fn other_bad_inputs_are_typed_errors() {
        let url = "http://mp.weixin.qq.com";
        let ticket = Ticket::new(DOC_TICKET);
        let app_id = AppId::new("wxappid");
        let cases = [
            (AppId::new(""), Ticket::new("t"), "n", "app_id"),
            (app_id.clone(), Ticket::new(""), "n", "ticket"),
            (app_id.clone(), ticket.clone(), "", "nonce"),
            (app_id.clone(), ticket.clone(), "a&b=c", "nonce"),
            (app_id.clone(), ticket.clone(), "a#b", "nonce"),
            (app_id.clone(), ticket.clone(), "ä", "nonce"),
            (app_id, ticket, &"n".repeat(MAX_NONCE_LEN + 1), "nonce"),
        ];
        for (app_id, ticket, nonce, argument) in cases {
            let err =
                js_sdk_config(&app_id, &ticket, url, DOC_TIMESTAMP, nonce).expect_err(argument);
            assert_eq!(err.argument, argument, "{nonce:?}");
        }
    }

    #[test]
    fn errors_and_debug_never_show_the_ticket() {
        let secret = "TICKET-SECRET-VALUE";
        let ticket = Ticket::new(secret);
        let err = js_sdk_config(&AppId::new("wx"), &ticket, "bad", 1, "n").expect_err("bad url");
        assert!(!format!("{err} {err:?}").contains(secret));
        let config =
            js_sdk_config(&AppId::new("wx"), &ticket, "https://a.com/", 1, "n").expect("valid");
        let shown = format!(
            "{config:?} {}",
            serde_json::to_string(&config).expect("serialise")
        );
        assert!(!shown.contains(secret), "{shown}");
    }
}
