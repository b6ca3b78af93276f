//! The JS-SDK `jsapi_ticket`, managed like the base token, and the `wx.config` values signed
//! with it.

use std::time::Duration;

use tracing::Instrument as _;
use wx_core::{
    DecodeError, DecodeReason, HttpTransport, JsapiTicketResponse, Result, StoredToken, Ticket,
    TokenKind, TokenStore,
};

use crate::client::{MAX_TOKEN_LEN, OfficialAccount};
use crate::endpoint::Endpoint;
use crate::jssdk::{JsSdkConfig, check_page_url, jsapi_signature};
use crate::request::Request;
use crate::token::{FetchFuture, Fetched, owner_id};

/// A report of a rejected JS-SDK ticket is acted on at most once in this long, by one client
/// and, with a store that grants exclusive leases (Redis), by the whole fleet. Between two, a
/// report is ignored: a page that fails for another reason (most often a signed URL that differs
/// from the page's), or anyone posting back a configuration they were served, must not make
/// every page load fetch a ticket, whose quota is small.
pub const JSAPI_TICKET_INVALIDATION_SPACING: Duration = Duration::from_secs(300);

/// How often, at most, a fetching client looks for a ticket a consumer marked suspect.
const SUSPECT_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// The store kind of the mark a consumer leaves for the fetching process.
const SUSPECT_KIND: &str = "jsapi_ticket:suspect";

const TICKET_ENDPOINT: &str = "cgi-bin/ticket/getticket";

/// `GET /cgi-bin/ticket/getticket?type=jsapi` with the base token. Sent only by the ticket
/// manager (one fetch per fleet), so it stays private.
struct JsapiTicketRequest;

impl Request for JsapiTicketRequest {
    type Response = JsapiTicketResponse;
    fn endpoint(&self) -> Result<Endpoint> {
        Ok(Endpoint::get("/cgi-bin/ticket/getticket")
            .query("type", "jsapi")
            .with_base_token())
    }
}

/// The ticket fetch: `GET /cgi-bin/ticket/getticket?type=jsapi` with the base token, through
/// `call_with_token`, so a rejected base token is replaced and the fetch retried once there.
fn fetch_ticket<T, S>(client: OfficialAccount<T, S>) -> FetchFuture
where
    T: HttpTransport + 'static,
    S: TokenStore + 'static,
{
    Box::pin(async move {
        let r = client.send(&JsapiTicketRequest).await?;
        if r.ticket.is_empty() || r.ticket.secret().len() > MAX_TOKEN_LEN {
            return Err(DecodeError {
                endpoint: TICKET_ENDPOINT,
                path: ".ticket".to_owned(),
                reason: DecodeReason::Data,
            }
            .into());
        }
        Ok(Fetched {
            value: r.ticket.into_secret(),
            expires_in: r.expires_in,
        })
    })
}

impl<T, S> OfficialAccount<T, S>
where
    T: HttpTransport + 'static,
    S: TokenStore + 'static,
{
    /// The JS-SDK `jsapi_ticket` (`GET /cgi-bin/ticket/getticket?type=jsapi`), managed exactly
    /// like the base access token: cached in the store (key `{prefix}:{appid}:jsapi_ticket`)
    /// and refreshed once it expires within the margin, one request for any number of
    /// concurrent callers, one process of a fleet fetching under the store's lease, a cooldown
    /// after a failure for good, and the refresh-ahead and consumer-only modes.
    ///
    /// The fetch carries the base token: when WeChat rejects that (`40001`, `40014`, `42001`),
    /// the base token is replaced and the ticket fetch retried once. WeChat never reports a
    /// rejected *ticket* to the server (the browser checks the signature); see
    /// [`invalidate_jsapi_ticket_for`](Self::invalidate_jsapi_ticket_for).
    ///
    /// A consumer-only client reads the ticket from the store and never fetches it: the
    /// fetching process keeps it there (call `jsapi_ticket()` on it, on a timer or per page).
    ///
    /// # Errors
    /// As [`access_token`](Self::access_token) (the ticket endpoint's errors, such as `45009`
    /// for the daily quota, start a cooldown of the ticket), plus [`Error::Decode`] for an
    /// answer without a usable ticket; [`Refused::ConsumerStoreEmpty`] (kind `"jsapi ticket"`)
    /// for a consumer when the store holds none.
    ///
    /// [`Error::Decode`]: wx_core::Error::Decode
    /// [`Refused::ConsumerStoreEmpty`]: wx_core::Refused::ConsumerStoreEmpty
    pub async fn jsapi_ticket(&self) -> Result<Ticket> {
        let fut = async {
            self.check_suspect_ticket().await?;
            let stored = self
                .managed_value(TokenKind::JsapiTicket, fetch_ticket)
                .await?;
            Ok(Ticket::new(stored.secret()))
        };
        let span = tracing::info_span!("wx.jsapi_ticket");
        self.with_deadline("jsapi_ticket", fut)
            .instrument(span)
            .await
    }

    /// The `wx.config` values for the page at `url` (its `#fragment` is dropped): the AppID, the
    /// client clock's time, a fresh random nonce and the signature made with the cached
    /// [`jsapi_ticket`](Self::jsapi_ticket). Serialise it to JSON for the page.
    ///
    /// ```no_run
    /// # async fn demo(client: wx_official::DynOfficialAccount) -> wx_core::Result<()> {
    /// let config = client.js_sdk_config("https://app.example.com/page?id=1#top").await?;
    /// assert_eq!(config.url, "https://app.example.com/page?id=1");
    /// let json = serde_json::to_string(&config).expect("plain values");
    /// # let _ = json; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (argument `url`) for a URL that is empty, too long, not absolute
    /// `http(s)://` with a host, or holds whitespace or control characters, **before** any
    /// request; otherwise the errors of [`jsapi_ticket`](Self::jsapi_ticket).
    ///
    /// [`Error::InvalidInput`]: wx_core::Error::InvalidInput
    pub async fn js_sdk_config(&self, url: &str) -> Result<JsSdkConfig> {
        check_page_url(url)?;
        let ticket = self.jsapi_ticket().await?;
        Ok(JsSdkConfig::generate(
            self.appid(),
            &ticket,
            url,
            self.clock().now(),
        )?)
    }

    /// Reports that the page's `wx.config` failed with `invalid signature` (call it from the
    /// page's `wx.error` handler, passing the configuration the page used: it deserialises from
    /// the JSON the page was given). If `config` was signed with the stored ticket, the ticket
    /// is checked with WeChat, never simply dropped (see
    /// [`invalidate_jsapi_ticket`](Self::invalidate_jsapi_ticket)).
    ///
    /// This is how "WeChat rejected the ticket" reaches the server: WeChat checks tickets only
    /// in the browser. It matters because WeChat does not report a ticket's true remaining
    /// lifetime (a ticket fetched again while valid comes back unchanged with `expires_in`
    /// 7200), so a cached ticket may die before its recorded expiry.
    ///
    /// Returns `Ok(false)` when `config` was not signed with the stored ticket (a stale page, a
    /// ticket already replaced, another AppID, a forged report) or when a report was acted on
    /// less than [`JSAPI_TICKET_INVALIDATION_SPACING`] ago; otherwise as
    /// [`invalidate_jsapi_ticket`](Self::invalidate_jsapi_ticket).
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails; the errors of [`jsapi_ticket`](Self::jsapi_ticket)
    /// when the check with WeChat fails.
    ///
    /// [`Error::Store`]: wx_core::Error::Store
    pub async fn invalidate_jsapi_ticket_for(&self, config: &JsSdkConfig) -> Result<bool> {
        if &config.app_id != self.appid() {
            return Ok(false);
        }
        let key = self.token_key(&TokenKind::JsapiTicket);
        let Some(stored) = self.bounded_store().get(&key).await? else {
            return Ok(false);
        };
        let ticket = Ticket::new(stored.secret());
        let expected = jsapi_signature(&ticket, &config.nonce_str, config.timestamp, &config.url);
        if !wx_core::ct_eq(expected.as_bytes(), config.signature.as_bytes()) {
            return Ok(false);
        }
        self.invalidate_jsapi_ticket(&ticket).await
    }

    /// Reports that `rejected` failed in a browser. A report is not proof: any visitor can post
    /// back the genuine configuration they were served. So the stored ticket is never deleted
    /// on a report (which would empty the store of a consumer-only fleet until the fetching
    /// process refreshes):
    /// - a fetching client asks WeChat for the ticket at once and stores the answer over the
    ///   old one (one request, under the store's lease): WeChat returns the same ticket while it
    ///   is valid, so a false report changes nothing but that request;
    /// - a consumer-only client marks the ticket suspect in the store; the fetching process
    ///   checks it the same way on a later [`jsapi_ticket`](Self::jsapi_ticket) (it looks for a
    ///   mark at most every 30 s).
    ///
    /// Only a report about the stored ticket counts, at most once per
    /// [`JSAPI_TICKET_INVALIDATION_SPACING`] for the fleet (with a store whose leases are
    /// exclusive): at most one ticket request per spacing, however many reports.
    ///
    /// Returns `Ok(true)` when a different ticket is now stored (fetching client) or the mark
    /// was left (consumer).
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails; the errors of [`jsapi_ticket`](Self::jsapi_ticket)
    /// when the check with WeChat fails.
    ///
    /// [`Error::Store`]: wx_core::Error::Store
    pub async fn invalidate_jsapi_ticket(&self, rejected: &Ticket) -> Result<bool> {
        let kind = TokenKind::JsapiTicket;
        let now = self.clock().now();
        let recently = |at: std::time::SystemTime| {
            now.duration_since(at).unwrap_or_default() < JSAPI_TICKET_INVALIDATION_SPACING
        };
        if self.ticket_dropped_at().is_some_and(recently) {
            return Ok(false);
        }
        // Only a report about the stored ticket may use up the spacing.
        let key = self.token_key(&kind);
        match self.bounded_store().get(&key).await? {
            Some(current)
                if wx_core::ct_eq(current.secret().as_bytes(), rejected.secret().as_bytes()) => {}
            _ => return Ok(false),
        }
        let spacing_key = self.token_key(&TokenKind::Custom("jsapi_ticket:invalidated".into()));
        if !self
            .store()
            .try_acquire_lease(&spacing_key, &owner_id(), JSAPI_TICKET_INVALIDATION_SPACING)
            .await?
        {
            return Ok(false);
        }
        {
            let mut at = self.ticket_dropped_at();
            if at.is_some_and(recently) {
                return Ok(false);
            }
            *at = Some(now);
        }
        if self.tokens().refuse_if_consumer().is_err() {
            let mark = StoredToken::new(rejected.secret(), now + JSAPI_TICKET_INVALIDATION_SPACING);
            self.bounded_store()
                .set(
                    &self.token_key(&TokenKind::Custom(SUSPECT_KIND.into())),
                    mark,
                )
                .await?;
            tracing::warn!(
                "a page reported the jsapi ticket rejected; marked it for the fetching process to check"
            );
            return Ok(true);
        }
        self.recheck_ticket(rejected).await
    }

    /// Asks WeChat for the ticket again and stores the answer over `suspect`: the same ticket
    /// while it is valid, a new one otherwise. Returns whether it changed.
    async fn recheck_ticket(&self, suspect: &Ticket) -> Result<bool> {
        let this = self.clone();
        let fresh = self
            .tokens()
            .refresh(&TokenKind::JsapiTicket, move || fetch_ticket(this))
            .await?;
        let replaced = !wx_core::ct_eq(fresh.secret().as_bytes(), suspect.secret().as_bytes());
        if replaced {
            tracing::warn!("the reported jsapi ticket was replaced by WeChat's new one");
        } else {
            tracing::info!("WeChat still answers the reported jsapi ticket; kept it");
        }
        Ok(replaced)
    }

    /// On a fetching client, at most every [`SUSPECT_CHECK_INTERVAL`]: checks with WeChat a
    /// stored ticket that a consumer marked suspect, and removes the mark.
    async fn check_suspect_ticket(&self) -> Result<()> {
        if self.tokens().refuse_if_consumer().is_err() {
            return Ok(());
        }
        let now = self.clock().now();
        {
            let mut at = self.ticket_suspect_checked_at();
            if at
                .is_some_and(|t| now.duration_since(t).unwrap_or_default() < SUSPECT_CHECK_INTERVAL)
            {
                return Ok(());
            }
            *at = Some(now);
        }
        let mark_key = self.token_key(&TokenKind::Custom(SUSPECT_KIND.into()));
        let Some(mark) = self.bounded_store().get(&mark_key).await? else {
            return Ok(());
        };
        if !self
            .bounded_store()
            .compare_and_delete(&mark_key, mark.secret())
            .await?
        {
            return Ok(()); // another fetching process took it
        }
        let stored = self
            .bounded_store()
            .get(&self.token_key(&TokenKind::JsapiTicket))
            .await?;
        if stored.is_some_and(|t| wx_core::ct_eq(t.secret().as_bytes(), mark.secret().as_bytes())) {
            self.recheck_ticket(&Ticket::new(mark.secret())).await?;
        }
        Ok(())
    }
}
