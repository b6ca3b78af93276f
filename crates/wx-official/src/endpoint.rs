//! Endpoints as data: what to call, never how. The client runs every endpoint through one
//! execute path (see [`OfficialAccount::call`](crate::OfficialAccount::call)).

use std::fmt;

use bytes::Bytes;
use http::{HeaderValue, Method};
use serde::Serialize;
use wx_core::{Error, InvalidInput, MultipartForm, Result, urlenc};

/// How an endpoint authenticates. A fact about the endpoint, not a choice of the caller: the
/// client adds the credential and, for the base token, recovers a rejected one once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Auth {
    /// No credential from the client: the endpoint carries its own (the AppSecret of
    /// `cgi-bin/token`, a user's web token on `sns/userinfo`) in its query or body.
    #[default]
    None,
    /// The base access token, added as the `access_token` query parameter.
    BaseToken,
}

/// One WeChat API call described as data: method, path, query parameters, an optional body
/// (JSON, or a multipart form encoded once, up front) and the largest answer it accepts. The client adds the host, the base access token (for
/// [`call_with_token`](crate::OfficialAccount::call_with_token)), sends it, decodes the answer
/// and retries where that is safe.
///
/// `Debug` shows the query parameter names and the body length, never their values: they may
/// carry the AppSecret or a token.
///
/// ```
/// use wx_official::Endpoint;
/// let ep = Endpoint::get("/cgi-bin/user/info")
///     .query("openid", "o6_bmjrPTlm6_2sgVt7hMZOPfL2M")
///     .query("lang", "zh_CN");
/// assert_eq!(ep.name(), "cgi-bin/user/info");
/// assert!(ep.is_idempotent());
/// ```
#[derive(Clone)]
#[must_use]
pub struct Endpoint {
    method: Method,
    path: &'static str,
    /// The query, percent-encoded as it is sent (`name=value&...`, no leading `?`): built once
    /// when the endpoint is described, copied once into the request's URL.
    query: String,
    body: Option<Body>,
    idempotent: bool,
    auth: Auth,
    response_limit: Option<usize>,
}

/// A request body and its `Content-Type`.
#[derive(Clone)]
struct Body {
    content_type: HeaderValue,
    bytes: Bytes,
}

impl Endpoint {
    /// A GET of `path` (starting with `/`, e.g. `/sns/userinfo`). GETs are idempotent: they are
    /// retried after timeouts and 5xx answers.
    pub fn get(path: &'static str) -> Self {
        Endpoint {
            method: Method::GET,
            path,
            query: String::new(),
            body: None,
            idempotent: true,
            auth: Auth::None,
            response_limit: None,
        }
    }

    /// A POST of `body` serialised as JSON to `path`. POSTs are not idempotent by default: they
    /// are retried only when the request certainly had no effect (a connect failure, or WeChat
    /// answering `-1` busy or `45011` rate limited), never after a timeout.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (argument `body`) when `body` cannot be serialised as JSON.
    pub fn post_json<B: Serialize + ?Sized>(path: &'static str, body: &B) -> Result<Self> {
        let json = serde_json::to_vec(body)
            .map_err(|_| InvalidInput::new("body", "could not be serialised as JSON"))?;
        Ok(Self::post(
            path,
            HeaderValue::from_static("application/json"),
            Bytes::from(json),
        ))
    }

    /// A POST of a `multipart/form-data` upload to `path`: the form is encoded here, once, into
    /// plain bytes and a `Content-Type`, so any transport sends it and a retry resends the same
    /// bytes. Not idempotent by default (see [`post_json`](Self::post_json)).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (argument `multipart form`) when the form cannot be encoded (see
    /// [`MultipartForm::encode`]).
    pub fn post_form(path: &'static str, form: &MultipartForm) -> Result<Self> {
        let encoded = form.encode()?;
        Ok(Self::post(path, encoded.content_type, encoded.body))
    }

    fn post(path: &'static str, content_type: HeaderValue, bytes: Bytes) -> Self {
        Endpoint {
            method: Method::POST,
            path,
            query: String::new(),
            body: Some(Body {
                content_type,
                bytes,
            }),
            idempotent: false,
            auth: Auth::None,
            response_limit: None,
        }
    }

    /// The largest answer body accepted, in bytes, for an endpoint whose answer may be a file
    /// (WeChat's documented file size); without it the transport's own cap applies, which suits
    /// JSON answers. A JSON or text answer on the same path still keeps the transport's cap when
    /// that is tighter ([`wx_core::response_cap`]).
    pub fn response_limit(mut self, bytes: usize) -> Self {
        self.response_limit = Some(bytes);
        self
    }

    /// The answer-size limit set with [`response_limit`](Self::response_limit).
    #[must_use]
    pub fn response_limit_bytes(&self) -> Option<usize> {
        self.response_limit
    }

    /// The body's `Content-Type` (`application/json`, `multipart/form-data; boundary=...`).
    #[must_use]
    pub fn content_type(&self) -> Option<&HeaderValue> {
        self.body.as_ref().map(|b| &b.content_type)
    }

    /// The body bytes, as they will be sent (for checking an encoding in a test).
    #[must_use]
    pub fn body_bytes(&self) -> Option<&Bytes> {
        self.body.as_ref().map(|b| &b.bytes)
    }

    /// Appends a query parameter, percent-encoded (everything but RFC 3986's unreserved
    /// characters) as it will be sent.
    pub fn query(mut self, name: &'static str, value: impl AsRef<str>) -> Self {
        urlenc::append_pair(&mut self.query, name, value.as_ref());
        self
    }

    /// Declares whether sending the request twice is harmless. Only idempotent requests are
    /// retried after a timeout, a broken connection or a 5xx answer.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Declares how the endpoint authenticates (default [`Auth::None`]).
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Shorthand for `.auth(Auth::BaseToken)`: the client adds the base access token.
    pub fn with_base_token(self) -> Self {
        self.auth(Auth::BaseToken)
    }

    /// How the endpoint authenticates.
    #[must_use]
    pub fn auth_kind(&self) -> Auth {
        self.auth
    }

    /// The endpoint's name: its path without the leading `/` (`sns/userinfo`). Errors and
    /// tracing spans carry it.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.path.strip_prefix('/').unwrap_or(self.path)
    }

    /// The method.
    #[must_use]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path (`/sns/userinfo`).
    #[must_use]
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// Whether the request may be sent twice (see [`idempotent`](Self::idempotent)).
    #[must_use]
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// The query parameter names, in order (not their values: they may be secret).
    pub fn query_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.query_parts().map(|(name, _)| name)
    }

    /// The query as it is sent: percent-encoded `name=value` pairs joined by `&`, without a
    /// leading `?` (empty when there is none).
    pub(crate) fn encoded_query(&self) -> &str {
        &self.query
    }

    /// The query's names and decoded values (for tests).
    #[cfg(test)]
    pub(crate) fn query_pairs(&self) -> Vec<(&str, String)> {
        self.query_parts()
            .map(|(name, value)| (name, urlenc::decode_component(value)))
            .collect()
    }

    fn query_parts(&self) -> impl Iterator<Item = (&str, &str)> {
        self.query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
    }

    pub(crate) fn body(&self) -> Option<&Bytes> {
        self.body_bytes()
    }

    /// Rejects a path that would produce a malformed URL.
    pub(crate) fn check(&self) -> Result<()> {
        // A fold without early exit: branch-free, as this runs on every call.
        let bad = self.path.bytes().fold(false, |bad, b| {
            bad | (b == b'?') | (b == b'#') | (b == b' ') | (b < 0x20) | (b == 0x7f)
        });
        let ok = self.path.starts_with('/') && self.path.len() > 1 && !bad;
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidInput(InvalidInput::new(
                "endpoint path",
                "must start with `/` and hold no query, fragment, space or control character",
            )))
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query_names().collect::<Vec<_>>())
            .field("body_len", &self.body.as_ref().map(|b| b.bytes.len()))
            .field("idempotent", &self.idempotent)
            .field("auth", &self.auth)
            .field("response_limit", &self.response_limit)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_values() {
        let ep = Endpoint::get("/cgi-bin/token")
            .query("secret", "TOPSECRET")
            .query("appid", "wx1");
        let d = format!("{ep:?}");
        assert!(!d.contains("TOPSECRET"), "{d}");
        assert!(d.contains("secret"), "{d}");
        let post = Endpoint::post_json(
            "/cgi-bin/stable_token",
            &serde_json::json!({"secret": "S3"}),
        )
        .expect("serialisable");
        assert!(!format!("{post:?}").contains("S3"));
        assert!(!post.is_idempotent());
        assert_eq!(post.name(), "cgi-bin/stable_token");
    }

    #[test]
    fn malformed_paths_are_rejected() {
        for p in ["cgi-bin/token", "/", "/a?b=1", "/a#x", "/a b", "/a\nb"] {
            let e = Endpoint::get(p).check().expect_err(p);
            assert!(matches!(e, Error::InvalidInput(ref i) if i.argument == "endpoint path"));
        }
        Endpoint::get("/sns/auth").check().expect("valid path");
    }
}
