//! The one execute path: every request, typed or not, is checked, authenticated as its endpoint
//! declares, sent, decoded, and retried where that is safe.

use std::future::Future;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::Either;
use tracing::Instrument as _;
use wx_core::{
    AccessToken, Delivery, Error, HttpRequest, HttpTransport, Result, RetryHint, TokenStore,
    TransportError, urlenc,
};

use crate::client::OfficialAccount;
use crate::endpoint::{Auth, Endpoint};
use crate::request::{FromResponse, Request};

/// When a call must end, and what to say when it does not.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    at: tokio::time::Instant,
    length: Duration,
    operation: &'static str,
}

impl Deadline {
    /// [`Error::Deadline`] for this call.
    #[cold]
    fn error(&self) -> Error {
        Error::Deadline {
            operation: self.operation,
            deadline: self.length,
        }
    }

    fn remaining(&self) -> Duration {
        self.at
            .saturating_duration_since(tokio::time::Instant::now())
    }

    /// `fut`, failed with [`Error::Deadline`] if it is still pending at the deadline. A future
    /// that is ready when first polled never arms the timer.
    fn bound<R>(self, fut: impl Future<Output = Result<R>>) -> impl Future<Output = Result<R>> {
        tokio::time::timeout_at(self.at, fut).map(move |r| r.unwrap_or_else(|_| Err(self.error())))
    }
}

/// Whether `e`, a transient failure, may be retried for `ep`. A request that is not idempotent
/// is repeated only when it certainly had no effect.
fn may_retry(ep: &Endpoint, e: &Error) -> bool {
    if e.retry_hint() != RetryHint::Backoff {
        return false;
    }
    // A request that is not idempotent is repeated only when it certainly had no effect: it
    // never left, or WeChat answered that it did nothing (busy, rate limited).
    ep.is_idempotent() || e.delivery() == Delivery::NotSent || matches!(e, Error::Api(_))
}

/// `api_base` + the endpoint's path + `?access_token=...` when a token is given + the
/// endpoint's encoded query, in one buffer of the right size.
fn request_url(api_base: &str, ep: &Endpoint, token: Option<&AccessToken>) -> String {
    const TOKEN_NAME: &str = "access_token=";
    let query = ep.encoded_query();
    // A token is unreserved characters in practice; an escape only makes the buffer grow.
    let token_len = token.map_or(0, |t| TOKEN_NAME.len() + t.secret().len() + 1);
    let mut url =
        String::with_capacity(api_base.len() + ep.path().len() + 1 + token_len + query.len());
    url.push_str(api_base);
    url.push_str(ep.path());
    let mut sep = '?';
    if let Some(token) = token {
        url.push(sep);
        url.push_str(TOKEN_NAME);
        urlenc::encode_into(&mut url, token.secret());
        sep = '&';
    }
    if !query.is_empty() {
        url.push(sep);
        url.push_str(query);
    }
    url
}

impl<T, S> OfficialAccount<T, S>
where
    T: HttpTransport + 'static,
    S: TokenStore + 'static,
{
    /// Sends a typed [`Request`] through the one execute path and decodes its answer: the
    /// request's arguments are checked first (nothing is sent when they are bad), the
    /// credential its endpoint declares is added, transient failures are retried where that is
    /// safe, and a rejected base token is recovered once.
    ///
    /// ```no_run
    /// # async fn demo(client: wx_official::DynOfficialAccount) -> wx_core::Result<()> {
    /// use wx_official::{Endpoint, Request};
    /// struct ApiDomainIp;
    /// #[derive(serde::Deserialize)]
    /// struct IpList { ip_list: Vec<String> }
    /// impl Request for ApiDomainIp {
    ///     type Response = IpList;
    ///     fn endpoint(&self) -> wx_core::Result<Endpoint> {
    ///         Ok(Endpoint::get("/cgi-bin/get_api_domain_ip").with_base_token())
    ///     }
    /// }
    /// let ips = client.send(&ApiDomainIp).await?;
    /// # let _ = ips.ip_list; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The request's own [`Error::InvalidInput`](wx_core::Error::InvalidInput), then as [`call`](Self::call).
    pub fn send<R: Request + ?Sized>(
        &self,
        request: &R,
    ) -> impl Future<Output = Result<R::Response>> + use<'_, R, T, S> {
        self.call_built(request.endpoint())
    }

    /// [`call`](Self::call) on an endpoint built by a [`Request`], or its argument error. The
    /// endpoint is built before the future is made: the future borrows neither the request
    /// nor its arguments.
    // Not an `async fn` (clippy's suggestion): that would keep a second copy of `endpoint` in
    // the future beside the argument; the block only borrows the one it owns.
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn call_built<R: FromResponse>(
        &self,
        endpoint: Result<Endpoint>,
    ) -> impl Future<Output = Result<R>> + use<'_, R, T, S> {
        // One future for both outcomes, not a choice of two: every layer of futures between
        // the caller and the transport is a stack frame and state that each call touches.
        async move {
            // Borrowed, not moved out: a moved-out endpoint would be a second copy in the state.
            let endpoint = match endpoint {
                Ok(ref endpoint) => endpoint,
                Err(e) => return Err(e),
            };
            endpoint.check()?;
            let deadline = self.deadline(endpoint.name());
            let call = self.authenticated(endpoint, &deadline);
            // `traced`, written out: two awaits of this one future rather than an `Either`,
            // whose poll would be one more frame (a large one) on every call's stack.
            if tracing::level_enabled!(tracing::Level::INFO) {
                return in_span(endpoint, call).await;
            }
            call.await
        }
    }

    /// The untyped escape hatch for what wx does not cover yet: calls `endpoint` through the
    /// one execute path, adding the credential it declares ([`Endpoint::auth`]): send, reject a
    /// non-2xx status, decode the `errcode` envelope whatever the Content-Type, and retry
    /// transient failures with backoff (GETs and idempotent requests; others only when they
    /// certainly had no effect).
    ///
    /// With [`Auth::BaseToken`], when WeChat rejects the token (`40001`, `40014`, `42001`), the
    /// cached token is dropped only if it still is the one that failed (compare-and-delete), a
    /// token is obtained again (someone else's newer one, or a new fetch) and the call is
    /// retried exactly once; a second rejection is returned. With [`Auth::None`] (the OAuth
    /// endpoints carry their own credentials) a token error is returned, not retried.
    ///
    /// ```no_run
    /// # async fn demo(client: wx_official::DynOfficialAccount) -> wx_core::Result<()> {
    /// use wx_official::Endpoint;
    /// #[derive(serde::Deserialize)]
    /// struct Ip { ip_list: Vec<String> }
    /// let ep = Endpoint::get("/cgi-bin/get_api_domain_ip").with_base_token();
    /// let ips: Ip = client.call(ep).await?;
    /// # let _ = ips.ip_list; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Api`](wx_core::Error::Api) for a WeChat error, [`Error::Transport`](wx_core::Error::Transport), [`Error::HttpStatus`](wx_core::Error::HttpStatus),
    /// [`Error::Decode`](wx_core::Error::Decode), [`Error::InvalidInput`](wx_core::Error::InvalidInput) for a malformed path, [`Error::Deadline`](wx_core::Error::Deadline);
    /// with the base token, the errors of [`access_token`](Self::access_token) too.
    pub fn call<R: FromResponse>(
        &self,
        endpoint: Endpoint,
    ) -> impl Future<Output = Result<R>> + use<'_, R, T, S> {
        self.call_built(Ok(endpoint))
    }

    /// `ep` with the credential it declares: with the base token, a rejected token is
    /// recovered once (see [`call`](Self::call)). One future for both kinds, not a choice of
    /// two: each alternative is state and stack that every call carries.
    async fn authenticated<R: FromResponse>(
        &self,
        ep: &Endpoint,
        deadline: &Deadline,
    ) -> Result<R> {
        let token = match ep.auth_kind() {
            Auth::None => None,
            // A warm token is ready at once, and a timer is armed only for a future that waits.
            Auth::BaseToken => Some(deadline.bound(self.base_token()).await?),
        };
        match (
            self.send_with_retries(ep, token.as_ref(), deadline).await,
            token,
        ) {
            (Err(rejected), Some(token)) if rejected.retry_hint() == RetryHint::RefreshToken => {
                // The rare path is boxed, so that it adds nothing to every call's future.
                let deadline = *deadline;
                Box::pin(deadline.bound(self.retry_with_new_token(ep, token, rejected, deadline)))
                    .await
            }
            (other, _) => other,
        }
    }

    /// After WeChat rejected `token`: drops it if it is still the cached one, gets a token
    /// again and sends `ep` once more.
    async fn retry_with_new_token<R: FromResponse>(
        &self,
        ep: &Endpoint,
        token: AccessToken,
        rejected: Error,
        deadline: Deadline,
    ) -> Result<R> {
        let dropped = self.invalidate_access_token(&token).await?;
        tracing::info!(error = %rejected, dropped, "access token rejected; retrying once with a new one");
        let token = self.base_token().await?;
        self.send_with_retries(ep, Some(&token), &deadline).await
    }

    /// [`call`](Self::call) with the base access token, whatever `endpoint` declares: shorthand
    /// for `call(endpoint.with_base_token())`.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn call_with_token<R: FromResponse>(&self, endpoint: Endpoint) -> Result<R> {
        self.call(endpoint.with_base_token()).await
    }

    /// Runs `fut` inside a span naming the endpoint (its path, never the query), when a subscriber
    /// listens at INFO. (The deadline is kept by [`send_with_retries`](Self::send_with_retries).)
    ///
    /// Plain functions returning future types, not `async fn`s: an `async fn` keeps the future
    /// it is given in its own state besides the one it awaits, so each layer would add the whole
    /// call's size again to every in-flight call.
    pub(crate) fn traced<R>(
        &self,
        ep: &Endpoint,
        fut: impl Future<Output = Result<R>>,
    ) -> impl Future<Output = Result<R>> {
        // Without a subscriber that listens at INFO there is no span to make and `fut` is
        // returned as it is (a disabled span still does its bookkeeping, and a wrapper is one
        // more layer for every call); a traced call is boxed, so that it adds nothing to the
        // size of an untraced one.
        if tracing::level_enabled!(tracing::Level::INFO) {
            Either::Left(in_span(ep, fut))
        } else {
            Either::Right(fut)
        }
    }

    /// The deadline of a call to `operation` starting now.
    pub(crate) fn deadline(&self, operation: &'static str) -> Deadline {
        let length = self.inner.config.deadline;
        Deadline {
            at: tokio::time::Instant::now() + length,
            length,
            operation,
        }
    }

    /// Fails `fut` with [`Error::Deadline`] naming `operation` when it outlives the request
    /// deadline.
    pub(crate) fn with_deadline<R>(
        &self,
        operation: &'static str,
        fut: impl Future<Output = Result<R>>,
    ) -> impl Future<Output = Result<R>> {
        self.deadline(operation).bound(fut)
    }

    /// The one execute path: one request, retried with backoff while the failure is transient
    /// and repeating is safe.
    ///
    /// The whole of it, retries and backoff included, ends by `deadline` ([`Error::Deadline`]).
    /// An attempt is bounded by a timer of its own only when the transport does not promise
    /// to end it in time by itself ([`HttpTransport::send_timeout`]): with the default
    /// `ReqwestTransport` (15 s) and deadline (30 s), a first attempt arms no second timer.
    pub(crate) async fn send_with_retries<R: FromResponse>(
        &self,
        ep: &Endpoint,
        token: Option<&AccessToken>,
        deadline: &Deadline,
    ) -> Result<R> {
        let transport_ends_within = self.inner.transport.send_timeout();
        let mut retry = 0;
        loop {
            let remaining = deadline.remaining();
            if remaining.is_zero() {
                return Err(deadline.error());
            }
            let sent = self.inner.transport.send(self.request(ep, token));
            let sent = if transport_ends_within.is_some_and(|t| t <= remaining) {
                sent.await
            } else {
                match tokio::time::timeout_at(deadline.at, sent).await {
                    Ok(sent) => sent,
                    Err(_) => return Err(deadline.error()),
                }
            };
            // Only the answer's error is kept across the backoff's sleep, and only until
            // `after_failure` has looked at it.
            let delay = match answer(ep, sent) {
                Ok(value) => return Ok(value),
                Err(e) => self.after_failure(ep, e, retry, deadline)?,
            };
            retry += 1;
            // A backoff that would pass the deadline ends at it (the next turn says so).
            tokio::time::sleep_until(deadline.at.min(tokio::time::Instant::now() + delay)).await;
        }
    }

    /// After attempt `retry` at `ep` failed with `e`: the error to return, or how long to wait
    /// before the next attempt. Out of line and cold, so that the code every successful call
    /// runs stays compact (a call's code is cold in the CPU's caches each time it runs).
    #[cold]
    #[inline(never)]
    fn after_failure(
        &self,
        ep: &Endpoint,
        e: Error,
        retry: u32,
        deadline: &Deadline,
    ) -> Result<Duration> {
        // The transport's own timeout ended it, at the deadline or past it.
        if e.transport().is_some_and(TransportError::is_timeout) && deadline.remaining().is_zero() {
            return Err(deadline.error());
        }
        if retry >= self.inner.config.retry.max_retries() || !may_retry(ep, &e) {
            tracing::debug!(error = %e, "call failed");
            return Err(e);
        }
        let delay = self.inner.config.retry.delay(retry);
        tracing::debug!(retry = retry + 1, ?delay, error = %e, "transient failure; retrying");
        Ok(delay)
    }

    /// The HTTP request of one attempt at `ep`.
    fn request(&self, ep: &Endpoint, token: Option<&AccessToken>) -> HttpRequest {
        let url = request_url(&self.inner.config.api_base, ep, token);
        match (ep.content_type(), ep.body()) {
            (Some(content_type), Some(body)) => {
                HttpRequest::post(url, content_type.clone(), body.clone())
            }
            _ => HttpRequest::new(ep.method().clone(), url),
        }
        .with_response_limit(ep.response_limit_bytes())
    }
}

/// `fut` in a span naming `ep` (its path, never the query), boxed: out of line and cold, so that
/// an untraced call carries neither the span's code nor its state.
#[cold]
#[inline(never)]
fn in_span<F: Future>(
    ep: &Endpoint,
    fut: F,
) -> std::pin::Pin<Box<tracing::instrument::Instrumented<F>>> {
    let span = tracing::info_span!(
        "wx.call",
        endpoint = ep.name(),
        method = %ep.method(),
        path = ep.path()
    );
    Box::pin(fut.instrument(span))
}

/// What one attempt at `ep` came to: the transport's error, a non-2xx status, or the decoded
/// answer. (Plain code, not a future of its own: each layer of futures is a stack frame and
/// state that every call touches.)
fn answer<R: FromResponse>(
    ep: &Endpoint,
    sent: std::result::Result<wx_core::HttpResponse, TransportError>,
) -> Result<R> {
    match sent {
        Ok(response) if response.status.is_success() => R::from_response(ep.name(), &response),
        failed => Err(failed_attempt(ep, failed)),
    }
}

/// The error of an attempt that brought no 2xx answer (out of line: see
/// [`OfficialAccount::after_failure`]).
#[cold]
#[inline(never)]
fn failed_attempt(
    ep: &Endpoint,
    sent: std::result::Result<wx_core::HttpResponse, TransportError>,
) -> Error {
    match sent {
        Ok(response) => Error::HttpStatus {
            endpoint: ep.name(),
            status: response.status,
        },
        Err(e) => Error::transport_at(ep.name(), e),
    }
}
