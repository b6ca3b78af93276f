//! WeChat's `errcode`: an open newtype with named constants, and the one table that classifies
//! every code.

use std::fmt;

/// A WeChat `errcode`. Open: any integer is representable, the known ones have names
/// (like `http::StatusCode`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrCode(pub i64);

macro_rules! codes {
    ($($(#[$m:meta])* $name:ident = $value:expr, $kind:ident;)*) => {
        impl ErrCode {
            $($(#[$m])* pub const $name: ErrCode = ErrCode($value);)*

            /// The constant's name for a known code (`"ACCESS_TOKEN_EXPIRED"`), `None` otherwise.
            #[must_use]
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// What the code means for the caller. This is the one place codes are classified.
            #[must_use]
            pub fn kind(self) -> ApiErrorKind {
                match self.0 {
                    $($value => ApiErrorKind::$kind,)*
                    _ => ApiErrorKind::Other,
                }
            }
        }
    };
}

codes! {
    /// `-1`: system busy, try again later.
    BUSY = -1, Busy;
    /// `0`: success.
    OK = 0, Other;
    /// `40001`: access token invalid or not the latest (on the token endpoint itself: wrong secret).
    INVALID_CREDENTIAL = 40001, TokenInvalid;
    /// `40002`: invalid grant_type.
    INVALID_GRANT_TYPE = 40002, Config;
    /// `40003`: invalid openid: not a user of this account (an openid of another app, or
    /// mistyped). Retrying cannot help.
    INVALID_OPENID = 40003, InvalidOpenId;
    /// `40013`: invalid appid.
    INVALID_APPID = 40013, Credentials;
    /// `40014`: invalid access token.
    INVALID_ACCESS_TOKEN = 40014, TokenInvalid;
    /// `40029`: invalid OAuth code (wrong, expired, reused or of another app).
    INVALID_CODE = 40029, LoginRestartRequired;
    /// `40030`: invalid refresh token.
    INVALID_REFRESH_TOKEN = 40030, ReauthorizationRequired;
    /// `40037`: invalid template_id: no template with this id in the account (deleted, or of
    /// another account); fix the id, retrying cannot help.
    INVALID_TEMPLATE_ID = 40037, Config;
    /// `40125`: invalid appsecret.
    INVALID_APPSECRET = 40125, Credentials;
    /// `40163`: OAuth code already used.
    CODE_BEEN_USED = 40163, LoginRestartRequired;
    /// `40164`: caller IP not in the whitelist (the errmsg names the IP WeChat saw).
    IP_NOT_WHITELISTED = 40164, IpNotAllowed;
    /// `40243`: AppSecret frozen.
    APPSECRET_FROZEN = 40243, Credentials;
    /// `41001`: access_token missing.
    ACCESS_TOKEN_MISSING = 41001, Config;
    /// `41002`: appid missing (also: stable_token called without a JSON body).
    APPID_MISSING = 41002, Config;
    /// `41004`: secret missing.
    SECRET_MISSING = 41004, Config;
    /// `40016`: invalid number of top-level menu buttons (more than 3).
    MENU_BUTTON_COUNT = 40016, Config;
    /// `40017`: invalid menu button type.
    MENU_BUTTON_TYPE = 40017, Config;
    /// `40018`: menu button name too long.
    MENU_BUTTON_NAME_SIZE = 40018, Config;
    /// `40019`: menu button key too long.
    MENU_BUTTON_KEY_SIZE = 40019, Config;
    /// `40023`: invalid number of sub-buttons (more than 5).
    MENU_SUB_BUTTON_COUNT = 40023, Config;
    /// `40025`: sub-button name too long.
    MENU_SUB_BUTTON_NAME_SIZE = 40025, Config;
    /// `40027`: menu button url too long.
    MENU_BUTTON_URL_SIZE = 40027, Config;
    /// `40032`: too many openids in one call (50 for tagging, 20 for the blacklist).
    OPENID_LIST_TOO_LONG = 40032, Config;
    /// `42001`: access token expired.
    ACCESS_TOKEN_EXPIRED = 42001, TokenInvalid;
    /// `42002`: refresh token expired.
    REFRESH_TOKEN_EXPIRED = 42002, ReauthorizationRequired;
    /// `42003`: OAuth code expired.
    CODE_EXPIRED = 42003, LoginRestartRequired;
    /// `43004`: the recipient does not follow the account ("require subscribe"): template
    /// messages reach followers only. Retrying cannot help until the user follows again.
    REQUIRE_SUBSCRIBE = 43004, RecipientNotFollowing;
    /// `43101`: the user has not accepted (or has used up, or cancelled) the subscription to this
    /// notice ("user refuse to accept the msg"): each accepted one-time subscription allows one
    /// notice. Retrying cannot help until the user subscribes again.
    USER_REFUSED_MESSAGE = 43101, SubscriptionMissing;
    /// `45009`: daily API quota reached.
    DAILY_QUOTA_EXCEEDED = 45009, QuotaExhausted;
    /// `45011`: per-minute quota reached, slow down.
    MINUTE_QUOTA_EXCEEDED = 45011, RateLimited;
    /// `45015`: outside the customer-service window ("response out of time limit or subscription
    /// is canceled"): a customer-service message may be sent only within 48 hours of the user's
    /// last message or interaction, and only while the user follows. Wait for the user to write,
    /// or send a template message instead.
    RESPONSE_OUT_OF_TIME_LIMIT = 45015, ServiceWindowClosed;
    /// `45047`: too many customer-service messages since the user's last message ("out of
    /// response count limit"). Wait for the user to write again, or send a template message.
    OUT_OF_RESPONSE_COUNT_LIMIT = 45047, ServiceWindowClosed;
    /// `45056`: the account already has the most tags allowed (100).
    TOO_MANY_TAGS = 45056, Other;
    /// `45057`: a tag with more than 100,000 followers cannot be deleted.
    TAG_HAS_TOO_MANY_FOLLOWERS = 45057, Other;
    /// `45058`: the reserved tags 0, 1 and 2 cannot be changed.
    TAG_RESERVED = 45058, Config;
    /// `45059`: a follower already carries the most tags allowed (20).
    FOLLOWER_HAS_TOO_MANY_TAGS = 45059, Other;
    /// `45157`: a tag with this name exists (or the name is invalid).
    TAG_NAME_EXISTS = 45157, Other;
    /// `45158`: tag name too long (more than 30).
    TAG_NAME_TOO_LONG = 45158, Config;
    /// `45159`: invalid tag id.
    INVALID_TAG_ID = 45159, Config;
    /// `46003`: no menu is set.
    MENU_NOT_FOUND = 46003, Other;
    /// `47001`: the body is not the JSON WeChat expects ("data format error").
    DATA_FORMAT_ERROR = 47001, Config;
    /// `47003`: an argument's value is invalid ("argument invalid! data.thing1.value invalid"):
    /// [`ApiError::invalid_argument`](crate::ApiError::invalid_argument) names the field WeChat
    /// named. Fix the value (for subscription notices: the rule of the keyword's type).
    ARGUMENT_INVALID = 47003, InvalidArgument;
    /// `48001`: API not authorised (e.g. sns/userinfo with an snsapi_base token).
    API_UNAUTHORIZED = 48001, ScopeMissing;
    /// `49003`: an openid is not a user of this app.
    OPENID_NOT_OF_APP = 49003, InvalidOpenId;
    /// `50001`: the user has not authorised this API.
    USER_UNAUTHORIZED = 50001, ScopeMissing;
    /// `61004`: caller IP not registered in the whitelist (newer token-endpoint code).
    IP_NOT_REGISTERED = 61004, IpNotAllowed;
    /// `65301`: no conditional menu with this menuid.
    CONDITIONAL_MENU_NOT_FOUND = 65301, Other;
    /// `65302`: no such user (menu trymatch).
    MENU_NO_SUCH_USER = 65302, Other;
    /// `65303`: a conditional menu needs a default menu first.
    MENU_DEFAULT_MISSING = 65303, Config;
    /// `65304`: the match rule is empty.
    MENU_MATCHRULE_EMPTY = 65304, Config;
    /// `89501`: this IP is waiting for the administrator's confirmation.
    IP_AWAITING_CONFIRMATION = 89501, IpNotAllowed;
    /// `89503`: this IP needs the administrator's confirmation.
    IP_NEEDS_CONFIRMATION = 89503, IpNotAllowed;
    /// `89506`: this IP was refused twice within 24 h: blocked for 24 h.
    IP_BLOCKED_24H = 89506, IpNotAllowed;
    /// `89507`: this IP was refused within the hour: blocked for 1 h.
    IP_BLOCKED_1H = 89507, IpNotAllowed;
}

/// What an `errcode` means for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// `-1`: WeChat is busy; back off and retry.
    Busy,
    /// Per-minute rate limit; back off.
    RateLimited,
    /// Daily quota exhausted; do not retry until the quota resets.
    QuotaExhausted,
    /// The access token was rejected (invalid, expired or overwritten): refresh it once.
    TokenInvalid,
    /// AppID or AppSecret wrong or frozen.
    Credentials,
    /// The caller's IP is not whitelisted or needs an administrator's confirmation.
    IpNotAllowed,
    /// A request parameter WeChat requires is wrong or missing (a bug or misconfiguration).
    Config,
    /// The OAuth code is used, expired or invalid: the user must go through login again.
    LoginRestartRequired,
    /// The refresh token is invalid or expired: the user must authorize again.
    ReauthorizationRequired,
    /// The token lacks the scope (e.g. `snsapi_base` used for user info).
    ScopeMissing,
    /// The openid is invalid for this app or token.
    InvalidOpenId,
    /// The recipient does not follow the account (`43004`).
    RecipientNotFollowing,
    /// The user has no accepted subscription to this notice (`43101`).
    SubscriptionMissing,
    /// A customer-service message is not allowed now: outside the 48 hours after the user's
    /// last message (`45015`) or over the count allowed since it (`45047`).
    ServiceWindowClosed,
    /// A field's value broke WeChat's rule (`47003`; the error names the field).
    InvalidArgument,
    /// Any other code.
    Other,
}

/// What a client should do about a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryHint {
    /// Drop the access token used (compare-and-delete), fetch a new one and retry once.
    RefreshToken,
    /// Transient: back off (with jitter) and retry a bounded number of times.
    Backoff,
    /// Retrying cannot help.
    Never,
}

impl ApiErrorKind {
    /// The retry hint of this kind.
    #[must_use]
    pub fn retry_hint(self) -> RetryHint {
        match self {
            ApiErrorKind::TokenInvalid => RetryHint::RefreshToken,
            ApiErrorKind::Busy | ApiErrorKind::RateLimited => RetryHint::Backoff,
            _ => RetryHint::Never,
        }
    }
}

impl ErrCode {
    /// The retry hint of this code.
    #[must_use]
    pub fn retry_hint(self) -> RetryHint {
        self.kind().retry_hint()
    }

    /// Whether this is success (`0`).
    #[must_use]
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for ErrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for ErrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "ErrCode({} {name})", self.0),
            None => write!(f, "ErrCode({})", self.0),
        }
    }
}

impl From<i64> for ErrCode {
    fn from(value: i64) -> Self {
        ErrCode(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_hint_table() {
        for code in [40001, 40014, 42001] {
            assert_eq!(
                ErrCode(code).retry_hint(),
                RetryHint::RefreshToken,
                "{code}"
            );
        }
        for code in [-1, 45011] {
            assert_eq!(ErrCode(code).retry_hint(), RetryHint::Backoff, "{code}");
        }
        for code in [
            45009, 40013, 40125, 40164, 40029, 40163, 42003, 40030, 42002, 48001, 40003, 61004,
            89503, 12345, 40037, 43004, 43101, 45015, 45047, 47001, 47003,
        ] {
            assert_eq!(ErrCode(code).retry_hint(), RetryHint::Never, "{code}");
        }
    }

    #[test]
    fn kinds_and_names() {
        assert_eq!(
            ErrCode::CODE_BEEN_USED.kind(),
            ApiErrorKind::LoginRestartRequired
        );
        assert_eq!(ErrCode(42003).kind(), ApiErrorKind::LoginRestartRequired);
        assert_eq!(ErrCode(42002).kind(), ApiErrorKind::ReauthorizationRequired);
        assert_eq!(ErrCode(48001).kind(), ApiErrorKind::ScopeMissing);
        assert_eq!(ErrCode(99999).kind(), ApiErrorKind::Other);
        assert_eq!(ErrCode(40037).kind(), ApiErrorKind::Config);
        assert_eq!(ErrCode(43004).kind(), ApiErrorKind::RecipientNotFollowing);
        assert_eq!(ErrCode(43101).kind(), ApiErrorKind::SubscriptionMissing);
        assert_eq!(ErrCode(45015).kind(), ApiErrorKind::ServiceWindowClosed);
        assert_eq!(ErrCode(45047).kind(), ApiErrorKind::ServiceWindowClosed);
        assert_eq!(ErrCode(47003).kind(), ApiErrorKind::InvalidArgument);
        assert_eq!(ErrCode(40003).kind(), ApiErrorKind::InvalidOpenId);
        assert_eq!(ErrCode(45015).name(), Some("RESPONSE_OUT_OF_TIME_LIMIT"));
        assert_eq!(
            format!("{:?}", ErrCode(42001)),
            "ErrCode(42001 ACCESS_TOKEN_EXPIRED)"
        );
        assert_eq!(format!("{:?}", ErrCode(7)), "ErrCode(7)");
        assert_eq!(ErrCode::BUSY.to_string(), "-1");
    }
}
