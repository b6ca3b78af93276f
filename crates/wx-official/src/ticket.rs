//! The JS-SDK `jsapi_ticket`, managed like the base token, and the `wx.config` values signed
//! with it.

use std::time::Duration;

use tracing::Instrument as _;
use wx_core::{
    DecodeError, DecodeReason, HttpTransport, JsapiTicketResponse, Result, Ticket, TokenKind,
    TokenStore,
};

use crate::client::{MAX_TOKEN_LEN, OfficialAccount};
use crate::endpoint::Endpoint;
use crate::jssdk::{JsSdkConfig, check_page_url, jsapi_signature};
use crate::token::{FetchFuture, Fetched, owner_id};

/// A rejected JS-SDK ticket is dropped at most once in this long, by one client and, with a
/// store that grants exclusive leases (Redis), by the whole fleet. Between two drops a report
/// of rejection is ignored: a page that fails for another reason (most often a signed URL that
/// differs from the page's) must not make every page load fetch a ticket, whose quota is small.
pub const JSAPI_TICKET_INVALIDATION_SPACING: Duration = Duration::from_secs(300);

const TICKET_ENDPOINT: &str = "cgi-bin/ticket/getticket";

/// The ticket fetch: `GET /cgi-bin/ticket/getticket?type=jsapi` with the base token, through
/// `call_with_token`, so a rejected base token is replaced and the fetch retried once there.
fn fetch_ticket<T, S>(client: OfficialAccount<T, S>) -> FetchFuture
where
    T: HttpTransport + 'static,
    S: TokenStore + 'static,
{
    Box::pin(async move {
        let ep = Endpoint::get("/cgi-bin/ticket/getticket").query("type", "jsapi");
        let r: JsapiTicketResponse = client.call_with_token(ep).await?;
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

    /// Drops the stored ticket if it is the one `config` was signed with, so that the next
    /// [`jsapi_ticket`](Self::jsapi_ticket) fetches a new one. Call it when the page reports
    /// that `wx.config` failed with `invalid signature` (its `wx.error` handler), passing the
    /// configuration the page used (it deserialises from the JSON the page was given).
    ///
    /// This is how "WeChat rejected the ticket" reaches the server: WeChat checks tickets only
    /// in the browser. It matters because WeChat does not report a ticket's true remaining
    /// lifetime (a ticket fetched again while valid comes back unchanged with `expires_in`
    /// 7200), so a cached ticket may die before its recorded expiry.
    ///
    /// Returns `Ok(true)` when the ticket was dropped. `Ok(false)` when `config` was not
    /// signed with the stored ticket (a stale page, a ticket already replaced, another AppID, a
    /// forged report), or when a ticket was dropped less than
    /// [`JSAPI_TICKET_INVALIDATION_SPACING`] ago, by this client or (with a store whose leases
    /// are exclusive) by any client of the fleet. So a failure with another cause, such as a
    /// signed URL that is not the page's, costs at most one ticket fetch per spacing. A
    /// consumer-only client may call it too: it drops, the fetching process fetches.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails.
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
        let signed_with_stored =
            jsapi_signature(&ticket, &config.nonce_str, config.timestamp, &config.url)
                == config.signature;
        if !signed_with_stored {
            return Ok(false);
        }
        self.invalidate_jsapi_ticket(&ticket).await
    }

    /// Drops the stored ticket if it still is `rejected` (compare-and-delete: a ticket someone
    /// already replaced stays), at most once per [`JSAPI_TICKET_INVALIDATION_SPACING`], so the
    /// next [`jsapi_ticket`](Self::jsapi_ticket) fetches a new one: exactly one fetch however
    /// many callers report the same ticket. For servers that keep the ticket they signed with;
    /// otherwise use [`invalidate_jsapi_ticket_for`](Self::invalidate_jsapi_ticket_for), which
    /// documents when to call this.
    ///
    /// Returns whether the ticket was dropped.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails.
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
        let dropped = self
            .invalidate_managed_value(&kind, rejected.secret())
            .await?;
        if dropped {
            tracing::warn!(
                "the jsapi ticket was reported rejected; dropped it, the next use fetches a new one"
            );
        }
        Ok(dropped)
    }
}
