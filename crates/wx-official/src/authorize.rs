//! The OAuth authorize page URL (`open.weixin.qq.com/connect/oauth2/authorize`).

use wx_core::{InvalidInput, Result, Scope, urlenc::encode_component};

use crate::client::OfficialAccount;

/// Longest `redirect_uri` accepted, in bytes.
pub const MAX_REDIRECT_URI_LEN: usize = 2048;
/// Longest `state` WeChat accepts, in bytes (of `[A-Za-z0-9]`).
pub const MAX_STATE_LEN: usize = 128;

/// Options of the authorize URL, for [`OfficialAccount::authorize_url_with`].
///
/// ```
/// use wx_core::{AppSecret, MemoryTokenStore, Scope, test_util::MockTransport};
/// use wx_official::{AuthorizeUrl, OfficialAccount};
/// let client = OfficialAccount::builder("wx1234567890abcdef", AppSecret::new("s"))
///     .build(MockTransport::new(), MemoryTokenStore::new())?;
/// let url = client.authorize_url_with(
///     &AuthorizeUrl::new("https://example.com/cb", Scope::UserInfo).state("xyz").force_popup(true),
/// )?;
/// assert_eq!(url, "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx1234567890abcdef\
///     &redirect_uri=https%3A%2F%2Fexample.com%2Fcb&response_type=code&scope=snsapi_userinfo\
///     &state=xyz&forcePopup=true#wechat_redirect");
/// # Ok::<(), wx_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct AuthorizeUrl<'a> {
    redirect_uri: &'a str,
    scope: Scope,
    state: &'a str,
    force_popup: bool,
}

impl<'a> AuthorizeUrl<'a> {
    /// Authorization redirecting to `redirect_uri` (absolute `http(s)://` URL on the domain
    /// configured as 网页授权域名) with `scope`; empty state, no forced popup.
    pub fn new(redirect_uri: &'a str, scope: Scope) -> Self {
        AuthorizeUrl {
            redirect_uri,
            scope,
            state: "",
            force_popup: false,
        }
    }

    /// The `state` echoed back to the callback: at most 128 bytes of `[A-Za-z0-9]`, may be
    /// empty (then sent as `state=`).
    pub fn state(mut self, state: &'a str) -> Self {
        self.state = state;
        self
    }

    /// Ask WeChat to show the consent popup even when it would authorize silently
    /// (`forcePopup=true`; WeChat ignores it in some silent-authorization cases).
    pub fn force_popup(mut self, force_popup: bool) -> Self {
        self.force_popup = force_popup;
        self
    }
}

impl<T, S> OfficialAccount<T, S> {
    /// The URL to send the user's browser to for web-page authorization, with `state`
    /// (possibly empty) and no forced popup. See [`authorize_url_with`](Self::authorize_url_with).
    ///
    /// # Errors
    /// As [`authorize_url_with`](Self::authorize_url_with).
    pub fn authorize_url(&self, redirect_uri: &str, scope: Scope, state: &str) -> Result<String> {
        self.authorize_url_with(&AuthorizeUrl::new(redirect_uri, scope).state(state))
    }

    /// The authorize URL: parameters in the order WeChat matches them (`appid`, `redirect_uri`
    /// fully percent-encoded, `response_type=code`, `scope`, `state`, then `forcePopup=true` if
    /// asked), ending in `#wechat_redirect`. No request is sent.
    ///
    /// # Errors
    /// [`wx_core::Error::InvalidInput`] for a `redirect_uri` that is empty, longer than 2048
    /// bytes, holds control characters or whitespace, or is not an absolute `http(s)://` URL;
    /// for a `state` longer than 128 bytes or with characters outside `[A-Za-z0-9]`.
    pub fn authorize_url_with(&self, options: &AuthorizeUrl<'_>) -> Result<String> {
        check_redirect_uri(options.redirect_uri)?;
        check_state(options.state)?;
        let mut url = format!(
            "{}/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope={}&state={}",
            self.open_base(),
            encode_component(self.appid().as_str()),
            encode_component(options.redirect_uri),
            options.scope.as_str(),
            options.state,
        );
        if options.force_popup {
            url.push_str("&forcePopup=true");
        }
        url.push_str("#wechat_redirect");
        Ok(url)
    }
}

fn check_redirect_uri(uri: &str) -> Result<(), InvalidInput> {
    crate::url_check::check_http_url("redirect_uri", uri, MAX_REDIRECT_URI_LEN)
}

fn check_state(state: &str) -> Result<(), InvalidInput> {
    if state.len() > MAX_STATE_LEN {
        return Err(InvalidInput::new("state", "longer than 128 bytes"));
    }
    if !state.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(InvalidInput::new("state", "may hold only A-Z, a-z and 0-9"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_rules() {
        check_state("").expect("empty is allowed");
        check_state(&"a".repeat(128)).expect("128 bytes");
        assert_eq!(
            check_state(&"a".repeat(129))
                .expect_err("too long")
                .argument,
            "state"
        );
        for bad in ["a-b", "a b", "é", "a=b&c", "x\n"] {
            assert_eq!(check_state(bad).expect_err(bad).argument, "state");
        }
    }

    #[test]
    fn redirect_uri_rules() {
        check_redirect_uri("http://diveintonode.org/").expect("valid");
        check_redirect_uri("HTTPS://a.example/cb?x=1#f").expect("valid");
        for bad in [
            "",
            "/cb",
            "a.example/cb",
            "javascript:alert(1)",
            "https://a b",
            "https://a\u{7}",
        ] {
            assert_eq!(
                check_redirect_uri(bad).expect_err(bad).argument,
                "redirect_uri",
                "{bad}"
            );
        }
        assert!(check_redirect_uri(&format!("https://a/{}", "x".repeat(2048))).is_err());
    }
}
