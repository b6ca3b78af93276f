//! Web-page OAuth: code exchange, refresh, user info and the token check.
//!
//! These endpoints carry their own credentials (the AppSecret, or the user's web-auth token),
//! not the base access token: a `40001`/`40014`/`42001` here is about the *web* token and is
//! returned to the caller (refresh it with [`OfficialAccount::refresh_oauth_token`]), never
//! answered by refetching the base token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::Instrument as _;
use wx_core::{
    ApiErrorKind, AppId, AppSecret, AuthCode, DecodeError, DecodeReason, Error, HttpTransport,
    InvalidInput, Lang, OAuthToken, OpenId, RefreshToken, Result, TokenKind, TokenStore, UserInfo,
    WebAccessToken, check_arg,
};

use crate::client::{MAX_TOKEN_LEN, OfficialAccount};
use crate::endpoint::Endpoint;
use crate::jssdk::hex_lower;
use crate::request::Request;
use crate::state::VerifiedState;
use crate::token::{FetchFuture, Fetched, OAUTH_CODE_KIND_PREFIX};

/// Longest OAuth `code` accepted (WeChat's are 32 characters).
pub(crate) const MAX_CODE_LEN: usize = 512;
/// Longest openid accepted (WeChat's are 28 characters).
pub(crate) const MAX_OPENID_LEN: usize = 128;

/// The answer of `sns/auth`: `{"errcode":0,"errmsg":"ok"}`. The `errcode` must be there, so an
/// empty object from a misbehaving proxy is not taken for a valid token.
#[derive(Debug, Deserialize)]
#[non_exhaustive]
pub struct WebTokenValid {
    #[allow(dead_code)]
    #[serde(rename = "errcode")]
    errcode: IgnoredAny,
}

/// `GET /sns/oauth2/access_token`: exchanges the callback's `code` for the user's web-auth
/// token. Not idempotent: a code is single-use, so a timed-out exchange is never repeated.
/// Most callers use [`OfficialAccount::exchange_code_for`], which builds this request.
#[derive(Debug)]
pub struct ExchangeCode<'a> {
    /// The app's id.
    pub appid: &'a AppId,
    /// The AppSecret.
    pub secret: &'a AppSecret,
    /// The callback's code.
    pub code: &'a AuthCode,
}

impl Request for ExchangeCode<'_> {
    type Response = OAuthToken;
    fn endpoint(&self) -> Result<Endpoint> {
        check_arg("code", self.code.secret(), MAX_CODE_LEN)?;
        Ok(Endpoint::get("/sns/oauth2/access_token")
            .query("appid", self.appid.as_str())
            .query("secret", self.secret.secret())
            .query("code", self.code.secret())
            .query("grant_type", "authorization_code")
            .idempotent(false))
    }
}

/// `GET /sns/oauth2/refresh_token`: renews a web-auth token with its refresh token.
#[derive(Debug)]
pub struct RefreshWebToken<'a> {
    /// The app's id.
    pub appid: &'a AppId,
    /// The 30-day refresh token.
    pub refresh_token: &'a RefreshToken,
}

impl Request for RefreshWebToken<'_> {
    type Response = OAuthToken;
    fn endpoint(&self) -> Result<Endpoint> {
        check_arg("refresh_token", self.refresh_token.secret(), MAX_TOKEN_LEN)?;
        Ok(Endpoint::get("/sns/oauth2/refresh_token")
            .query("appid", self.appid.as_str())
            .query("grant_type", "refresh_token")
            .query("refresh_token", self.refresh_token.secret()))
    }
}

/// `GET /sns/userinfo`: the profile of the user a web-auth token (scope `snsapi_userinfo`)
/// belongs to.
#[derive(Debug)]
pub struct WebUserInfo<'a> {
    /// The user's web-auth token.
    pub web_token: &'a WebAccessToken,
    /// The user's openid.
    pub openid: &'a OpenId,
    /// The language of the region names.
    pub lang: Lang,
}

impl Request for WebUserInfo<'_> {
    type Response = UserInfo;
    fn endpoint(&self) -> Result<Endpoint> {
        check_arg("web_token", self.web_token.secret(), MAX_TOKEN_LEN)?;
        check_arg("openid", self.openid.as_str(), MAX_OPENID_LEN)?;
        Ok(Endpoint::get("/sns/userinfo")
            .query("access_token", self.web_token.secret())
            .query("openid", self.openid.as_str())
            .query("lang", self.lang.as_str()))
    }
}

/// `GET /sns/auth`: whether a web-auth token is valid for an openid.
#[derive(Debug)]
pub struct CheckWebToken<'a> {
    /// The user's web-auth token.
    pub web_token: &'a WebAccessToken,
    /// The user's openid.
    pub openid: &'a OpenId,
}

impl Request for CheckWebToken<'_> {
    type Response = WebTokenValid;
    fn endpoint(&self) -> Result<Endpoint> {
        check_arg("web_token", self.web_token.secret(), MAX_TOKEN_LEN)?;
        check_arg("openid", self.openid.as_str(), MAX_OPENID_LEN)?;
        Ok(Endpoint::get("/sns/auth")
            .query("access_token", self.web_token.secret())
            .query("openid", self.openid.as_str()))
    }
}

const CODE_ENDPOINT: &str = "sns/oauth2/access_token";

/// The store kind of a kept exchange: `oauth_code:` and the SHA-256, in lowercase hex, of the
/// code and the callback it was made for ([`VerifiedState`]'s callback identity). Another
/// callback (another state, or the same state in another browser) names another key, so it
/// never finds the answer; hashing keeps keys short, of one alphabet, and codes out of key
/// listings (a code in its 5 minutes is a credential).
pub(crate) fn code_kind(code: &str, callback: &[u8]) -> TokenKind {
    let mut digest = Sha256::new();
    digest.update((code.len() as u64).to_be_bytes());
    digest.update(code.as_bytes());
    digest.update(callback);
    TokenKind::Custom(format!("{OAUTH_CODE_KIND_PREFIX}{}", hex_lower(&digest.finalize())).into())
}

/// An exchange result as kept in the store: WeChat's own answer shape (so the crate's one
/// `OAuthToken` decoder reads it back) plus the time it was received, to report the web
/// token's remaining lifetime on a repeat. Private, so that the secret types themselves never
/// become serialisable.
#[derive(Serialize)]
struct ExchangeRecord<'a> {
    access_token: &'a str,
    expires_in: u64,
    refresh_token: &'a str,
    openid: &'a str,
    scope: &'a str,
    is_snapshotuser: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    unionid: Option<&'a str>,
    received_at: u64,
}

#[derive(Deserialize)]
struct StoredExchange {
    #[serde(flatten)]
    token: OAuthToken,
    received_at: u64,
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Domain separation of the key that authenticates kept exchanges, derived from the AppSecret.
const RECORD_KEY_LABEL: &[u8] = b"wx-official/oauth-code-record/v1";
/// The version prefix of a kept exchange: `v1.<HMAC-SHA256 hex>.<JSON>`.
const RECORD_VERSION: &str = "v1.";

/// The MAC of a kept exchange, in lowercase hex: HMAC-SHA256 with a key derived from the
/// AppSecret (which the store never sees), over the store key and the JSON. Covering the key
/// means a record cannot be moved to another code or callback.
fn record_tag(secret: &AppSecret, key: &str, json: &str) -> Result<String> {
    // HMAC takes a key of any length: these errors cannot happen.
    let mut derive = Hmac::<Sha256>::new_from_slice(secret.secret().as_bytes())
        .map_err(|_| stored_exchange_error())?;
    derive.update(RECORD_KEY_LABEL);
    let derived = derive.finalize().into_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(&derived).map_err(|_| stored_exchange_error())?;
    mac.update(&(key.len() as u64).to_be_bytes());
    mac.update(key.as_bytes());
    mac.update(json.as_bytes());
    Ok(hex_lower(&mac.finalize().into_bytes()))
}

/// The JSON of a kept exchange whose tag is ours; `None` for anything else (written by someone
/// else with access to the store, or moved from another key): such a record is absent to us.
fn open_record<'a>(secret: &AppSecret, key: &str, value: &'a str) -> Option<&'a str> {
    let (tag, json) = value.strip_prefix(RECORD_VERSION)?.split_once('.')?;
    let expected = record_tag(secret, key, json).ok()?;
    bool::from(expected.as_bytes().ct_eq(tag.as_bytes())).then_some(json)
}

fn encode_exchange(token: &OAuthToken, received_at: SystemTime) -> Result<String> {
    let record = ExchangeRecord {
        access_token: token.access_token.secret(),
        expires_in: token.expires_in,
        refresh_token: token.refresh_token.secret(),
        openid: token.openid.as_str(),
        scope: &token.scope,
        is_snapshotuser: u8::from(token.is_snapshotuser),
        unionid: token.unionid.as_ref().map(|u| u.as_str()),
        received_at: unix_secs(received_at),
    };
    // Serialising strings and numbers cannot fail; map it anyway, without the value.
    serde_json::to_string(&record).map_err(|_| stored_exchange_error())
}

fn stored_exchange_error() -> Error {
    DecodeError {
        endpoint: CODE_ENDPOINT,
        path: "(stored exchange)".to_owned(),
        reason: DecodeReason::Data,
    }
    .into()
}

/// Reads an authenticated stored exchange back, with `expires_in` counted from `now`.
fn decode_exchange(json: &str, now: SystemTime) -> Result<OAuthToken> {
    let record: StoredExchange = serde_json::from_str(json).map_err(|_| stored_exchange_error())?;
    let mut token = record.token;
    let elapsed = unix_secs(now).saturating_sub(record.received_at);
    token.expires_in = token.expires_in.saturating_sub(elapsed);
    Ok(token)
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
    /// This is the plain exchange, for a client without
    /// [`Builder::idempotent_code_exchange`](crate::Builder::idempotent_code_exchange); a web
    /// callback should prefer [`exchange_code_for`](Self::exchange_code_for), which works with
    /// the option on or off.
    ///
    /// # Errors
    /// - [`Error::InvalidInput`] (argument `code`) for an empty, oversized or control-character
    ///   code, before any request; (argument `idempotent_code_exchange`) when the option is on:
    ///   a kept answer is served only to the callback that produced it, so use
    ///   [`exchange_code_for`](Self::exchange_code_for).
    /// - [`Error::Api`] with `40029` invalid, `40163` already used or `42003` expired code:
    ///   [`Error::is_login_restart_required`] is true; send the user through login again.
    /// - [`Error::Api`] for credential errors (`40013`, `40125`...), transport, status, decode
    ///   and deadline errors as [`call`](Self::call).
    pub async fn exchange_code(&self, code: impl Into<AuthCode>) -> Result<OAuthToken> {
        let code = code.into();
        check_arg("code", code.secret(), MAX_CODE_LEN)?;
        if self.code_window().is_some() {
            return Err(InvalidInput::new(
                "idempotent_code_exchange",
                "with the idempotent code exchange on, exchange with exchange_code_for and the verified state",
            )
            .into());
        }
        self.exchange_code_upstream(&code).await
    }

    /// Exchanges the `code` of the callback whose `state` was verified (see
    /// [`StateSigner::verify_bound`](crate::StateSigner::verify_bound)), as
    /// [`exchange_code`](Self::exchange_code) does.
    ///
    /// With [`Builder::idempotent_code_exchange`](crate::Builder::idempotent_code_exchange) the
    /// answer is kept in the store for this callback only: the same code **with the same state,
    /// verified with the same browser binding**, within the window, is answered from the store
    /// (with `expires_in` counted down); concurrent exchanges of it send one request (one per
    /// fleet with a store that grants exclusive leases), and the exchange runs as its own task,
    /// so a callback request that is dropped midway still leaves the answer for the browser's
    /// reload. The code with any other state (an attacker's own, valid one) or another binding
    /// is sent to WeChat, which answers `40163` for a used code. The answer is kept for at most
    /// the window, the web token's lifetime and the state's remaining lifetime. Failures are
    /// not kept. Works in consumer-only mode too: a code exchange is not a token fetch.
    ///
    /// # Errors
    /// As [`exchange_code`](Self::exchange_code), and with the option on:
    /// - [`Error::InvalidInput`] (argument `state`) for a state verified without a browser
    ///   binding ([`VerifiedState::is_bound`] is false): anyone holding the callback link could
    ///   present it, so no answer may be kept for it.
    /// - [`Error::Store`] when the store fails before the exchange; [`Error::Decode`] when a
    ///   kept answer cannot be read back.
    pub async fn exchange_code_for(
        &self,
        state: &VerifiedState,
        code: impl Into<AuthCode>,
    ) -> Result<OAuthToken> {
        let code = code.into();
        check_arg("code", code.secret(), MAX_CODE_LEN)?;
        let Some(window) = self.code_window() else {
            return self.exchange_code_upstream(&code).await;
        };
        let Some(callback) = state.callback_id() else {
            return Err(InvalidInput::new(
                "state",
                "the idempotent code exchange needs a state verified with a browser binding",
            )
            .into());
        };
        // Kept no longer than the state is accepted: past that, its callback cannot come back.
        let state_left = state
            .expires_at
            .duration_since(self.clock().now())
            .unwrap_or_default();
        let kind = code_kind(code.secret(), callback);
        let fut = self.exchange_code_once(&code, kind, window.min(state_left));
        let span = tracing::info_span!("wx.exchange_code", idempotent = true);
        self.with_deadline("exchange_code", fut)
            .instrument(span)
            .await
    }

    /// The exchange request itself.
    async fn exchange_code_upstream(&self, code: &AuthCode) -> Result<OAuthToken> {
        self.send(&ExchangeCode {
            appid: self.appid(),
            secret: self.secret(),
            code,
        })
        .await
    }

    /// The idempotent exchange: a one-off value of the token manager under `kind`, kept for
    /// `min(window, expires_in)`, authenticated with [`record_tag`]. A record that fails its
    /// tag is dropped (compare-and-delete) and the exchange runs as if it were absent, once.
    async fn exchange_code_once(
        &self,
        code: &AuthCode,
        kind: TokenKind,
        window: Duration,
    ) -> Result<OAuthToken> {
        let key = self.token_key(&kind).to_string();
        let fetch = || {
            let (this, code, key) = (self.clone(), code.clone(), key.clone());
            move || -> FetchFuture {
                Box::pin(async move {
                    let token = this.exchange_code_upstream(&code).await?;
                    let json = encode_exchange(&token, this.clock().now())?;
                    let tag = record_tag(this.secret(), &key, &json)?;
                    Ok(Fetched {
                        value: format!("{RECORD_VERSION}{tag}.{json}"),
                        expires_in: window.as_secs().min(token.expires_in),
                    })
                })
            }
        };
        let mut stored = self.tokens().get_one_off(&kind, fetch()).await?;
        if open_record(self.secret(), &key, stored.secret()).is_none() {
            tracing::warn!("a kept code exchange failed its authentication; ignoring it");
            self.tokens().invalidate(&kind, stored.secret()).await?;
            stored = self.tokens().get_one_off(&kind, fetch()).await?;
        }
        let json =
            open_record(self.secret(), &key, stored.secret()).ok_or_else(stored_exchange_error)?;
        decode_exchange(json, self.clock().now())
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
        self.send(&RefreshWebToken {
            appid: self.appid(),
            refresh_token,
        })
        .await
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
    pub fn user_info(
        &self,
        web_token: &WebAccessToken,
        openid: &OpenId,
        lang: Lang,
    ) -> impl Future<Output = Result<UserInfo>> + use<'_, T, S> {
        // The request is built now, so the future holds neither it nor the arguments.
        let request = WebUserInfo {
            web_token,
            openid,
            lang,
        };
        self.call_built(request.endpoint())
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
        web_token: &WebAccessToken,
        openid: &OpenId,
    ) -> Result<bool> {
        match self.send(&CheckWebToken { web_token, openid }).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Auth;

    #[test]
    fn requests_encode_as_wechat_documents_them() {
        let (appid, secret) = (AppId::new("wx1"), AppSecret::new("S"));
        let code = AuthCode::from("C0DE");
        let ep = ExchangeCode {
            appid: &appid,
            secret: &secret,
            code: &code,
        }
        .endpoint()
        .expect("valid");
        assert_eq!(ep.path(), "/sns/oauth2/access_token");
        assert!(!ep.is_idempotent(), "a code is single-use");
        assert_eq!(ep.auth_kind(), Auth::None);
        assert_eq!(
            ep.query_pairs(),
            [
                ("appid", "wx1".to_owned()),
                ("secret", "S".to_owned()),
                ("code", "C0DE".to_owned()),
                ("grant_type", "authorization_code".to_owned())
            ]
        );

        let rt = RefreshToken::new("RT");
        let ep = RefreshWebToken {
            appid: &appid,
            refresh_token: &rt,
        }
        .endpoint()
        .expect("valid");
        assert_eq!(ep.path(), "/sns/oauth2/refresh_token");
        assert_eq!(
            ep.query_pairs(),
            [
                ("appid", "wx1".to_owned()),
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", "RT".to_owned())
            ]
        );

        let (web, openid) = (WebAccessToken::new("W"), OpenId::new("o1"));
        let ep = WebUserInfo {
            web_token: &web,
            openid: &openid,
            lang: Lang::En,
        }
        .endpoint()
        .expect("valid");
        assert_eq!(ep.path(), "/sns/userinfo");
        assert_eq!(
            ep.query_pairs(),
            [
                ("access_token", "W".to_owned()),
                ("openid", "o1".to_owned()),
                ("lang", "en".to_owned())
            ]
        );
        let ep = CheckWebToken {
            web_token: &web,
            openid: &openid,
        }
        .endpoint()
        .expect("valid");
        assert_eq!(ep.path(), "/sns/auth");
        assert!(ep.is_idempotent());
    }

    #[test]
    fn bad_arguments_fail_before_an_endpoint_exists() {
        let (appid, secret) = (AppId::new("wx1"), AppSecret::new("S"));
        let code = AuthCode::from("a\nb");
        let e = ExchangeCode {
            appid: &appid,
            secret: &secret,
            code: &code,
        }
        .endpoint()
        .expect_err("control character");
        assert!(matches!(e, Error::InvalidInput(ref i) if i.argument == "code"));
        assert_eq!(format!("{code:?}"), "AuthCode([redacted])");
    }
}
