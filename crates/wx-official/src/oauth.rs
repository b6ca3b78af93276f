//! Web-page OAuth: code exchange, refresh, user info and the token check.
//!
//! These endpoints carry their own credentials (the AppSecret, or the user's web-auth token),
//! not the base access token: a `40001`/`40014`/`42001` here is about the *web* token and is
//! returned to the caller (refresh it with [`OfficialAccount::refresh_oauth_token`]), never
//! answered by refetching the base token.

use serde::Deserialize;
use serde::de::IgnoredAny;
use wx_core::{
    AccessToken, ApiErrorKind, Error, HttpTransport, Lang, OAuthToken, OpenId, RefreshToken,
    Result, TokenStore, UserInfo, check_arg,
};

use crate::client::{MAX_TOKEN_LEN, OfficialAccount};
use crate::endpoint::Endpoint;

/// Longest OAuth `code` accepted (WeChat's are 32 characters).
pub(crate) const MAX_CODE_LEN: usize = 512;
/// Longest openid accepted (WeChat's are 28 characters).
pub(crate) const MAX_OPENID_LEN: usize = 128;

/// `sns/auth` answers `{"errcode":0,"errmsg":"ok"}`: require the `errcode` to be there, so an
/// empty object from a misbehaving proxy is not taken for a valid token.
#[derive(Deserialize)]
struct AuthAnswer {
    #[allow(dead_code)]
    errcode: IgnoredAny,
}

impl<T, S> OfficialAccount<T, S>
where
    T: HttpTransport + 'static,
    S: TokenStore + 'static,
{
    /// Exchanges the `code` of the OAuth callback for the user's web-auth token
    /// (`GET /sns/oauth2/access_token`): openid, unionid, granted scope, `is_snapshotuser`.
    ///
    /// A code is single-use and lives 5 minutes, so this request is not repeated after a
    /// timeout or a 5xx (the first try may have used the code and a repeat would only report
    /// `40163`); it is retried only on a connect failure or WeChat's `-1` busy.
    ///
    /// # Errors
    /// - [`Error::InvalidInput`] (argument `code`) for an empty, oversized or control-character
    ///   code, before any request.
    /// - [`Error::Api`] with `40029` invalid, `40163` already used or `42003` expired code:
    ///   [`Error::is_login_restart_required`] is true; send the user through login again.
    /// - [`Error::Api`] for credential errors (`40013`, `40125`...), transport, status, decode
    ///   and deadline errors as [`call`](Self::call).
    pub async fn exchange_code(&self, code: &str) -> Result<OAuthToken> {
        check_arg("code", code, MAX_CODE_LEN)?;
        let ep = Endpoint::get("/sns/oauth2/access_token")
            .query("appid", self.appid().as_str())
            .query("secret", self.secret().secret())
            .query("code", code)
            .query("grant_type", "authorization_code")
            .idempotent(false);
        self.call(ep).await
    }

    /// Renews a web-auth token with its 30-day refresh token (`GET /sns/oauth2/refresh_token`).
    /// Keep the `refresh_token` of the answer: it may differ from the one sent.
    ///
    /// # Errors
    /// - [`Error::InvalidInput`] (argument `refresh_token`) before any request.
    /// - [`Error::Api`] with `40030` invalid or `42002` expired refresh token:
    ///   [`Error::is_reauthorization_required`] is true; the user must authorize again.
    /// - Otherwise as [`call`](Self::call).
    pub async fn refresh_oauth_token(&self, refresh_token: &RefreshToken) -> Result<OAuthToken> {
        check_arg("refresh_token", refresh_token.secret(), MAX_TOKEN_LEN)?;
        let ep = Endpoint::get("/sns/oauth2/refresh_token")
            .query("appid", self.appid().as_str())
            .query("grant_type", "refresh_token")
            .query("refresh_token", refresh_token.secret());
        self.call(ep).await
    }

    /// The user's profile (`GET /sns/userinfo`) with a web-auth token of scope
    /// `snsapi_userinfo`. Since late 2021 WeChat blanks sex and region; nickname and avatar
    /// remain.
    ///
    /// # Errors
    /// - [`Error::InvalidInput`] (argument `web_token` or `openid`) before any request.
    /// - [`Error::Api`] `48001` when the token has only `snsapi_base`:
    ///   [`Error::is_scope_missing`] is true.
    /// - [`Error::Api`] `40001`/`42001`/`40014` when the web token is invalid or expired
    ///   (refresh it), `40003` for an openid that does not match.
    /// - Otherwise as [`call`](Self::call).
    pub async fn user_info(
        &self,
        web_token: &AccessToken,
        openid: &OpenId,
        lang: Lang,
    ) -> Result<UserInfo> {
        check_arg("web_token", web_token.secret(), MAX_TOKEN_LEN)?;
        check_arg("openid", openid.as_str(), MAX_OPENID_LEN)?;
        let ep = Endpoint::get("/sns/userinfo")
            .query("access_token", web_token.secret())
            .query("openid", openid.as_str())
            .query("lang", lang.as_str());
        self.call(ep).await
    }

    /// Whether a web-auth token is still valid for `openid` (`GET /sns/auth`).
    ///
    /// `Ok(true)` when WeChat answers `errcode: 0`; `Ok(false)` when it says the token or the
    /// pair is invalid or expired (`40001`, `40014`, `42001`, `40003`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (argument `web_token` or `openid`) before any request; any other
    /// WeChat error, transport, status, decode (an answer without `errcode`) or deadline error,
    /// after retries: these say nothing about the token.
    pub async fn check_oauth_token(
        &self,
        web_token: &AccessToken,
        openid: &OpenId,
    ) -> Result<bool> {
        check_arg("web_token", web_token.secret(), MAX_TOKEN_LEN)?;
        check_arg("openid", openid.as_str(), MAX_OPENID_LEN)?;
        let ep = Endpoint::get("/sns/auth")
            .query("access_token", web_token.secret())
            .query("openid", openid.as_str());
        match self.call::<AuthAnswer>(ep).await {
            Ok(_) => Ok(true),
            Err(Error::Api(e))
                if matches!(
                    e.kind(),
                    ApiErrorKind::TokenInvalid | ApiErrorKind::InvalidOpenId
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}
