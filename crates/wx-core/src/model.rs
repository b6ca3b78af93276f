//! Typed models of the WeChat Official Account responses, decoded leniently where WeChat is
//! sloppy: numbers as strings, absent or `null` optional fields, unknown fields.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::id::{OpenId, UnionId};
use crate::secret::{AccessToken, RefreshToken, Ticket, WebAccessToken};

/// The base access token (`cgi-bin/token`) or stable access token (`cgi-bin/stable_token`).
#[derive(Clone, Debug, Deserialize)]
pub struct AccessTokenResponse {
    /// The token.
    pub access_token: AccessToken,
    /// Lifetime in seconds from now (7200, or less for a stable token near its rotation).
    #[serde(deserialize_with = "lenient_u64")]
    pub expires_in: u64,
}

/// The web-auth token of `sns/oauth2/access_token` and `sns/oauth2/refresh_token`.
#[derive(Clone, Debug, Deserialize)]
pub struct OAuthToken {
    /// The web-auth access token (only for `sns/userinfo` and `sns/auth`).
    pub access_token: WebAccessToken,
    /// Lifetime of `access_token` in seconds.
    #[serde(deserialize_with = "lenient_u64")]
    pub expires_in: u64,
    /// The 30-day refresh token.
    pub refresh_token: RefreshToken,
    /// The user's id in this app.
    pub openid: OpenId,
    /// The granted scopes, comma separated (`snsapi_userinfo`).
    #[serde(default, deserialize_with = "lenient_string")]
    pub scope: String,
    /// Whether the user is a virtual snapshot-page user (`is_snapshotuser: 1`): do not bind
    /// accounts to this identity.
    #[serde(default, deserialize_with = "lenient_flag")]
    pub is_snapshotuser: bool,
    /// The user's UnionID, when the app is bound to an open-platform account.
    #[serde(default, deserialize_with = "lenient_opt_id")]
    pub unionid: Option<UnionId>,
}

impl OAuthToken {
    /// Whether `scope` was granted.
    #[must_use]
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scope.split(',').any(|s| s.trim() == scope.as_str())
    }
}

/// A user's sex as WeChat reports it (always `Unknown` since late 2021).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum Sex {
    /// 0, or any value WeChat has not documented.
    #[default]
    Unknown,
    /// 1.
    Male,
    /// 2.
    Female,
}

impl<'de> Deserialize<'de> for Sex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(
            match Option::<Lenient>::deserialize(d)?.and_then(|l| l.as_i64()) {
                Some(1) => Sex::Male,
                Some(2) => Sex::Female,
                _ => Sex::Unknown,
            },
        )
    }
}

/// The profile of `sns/userinfo`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct UserInfo {
    /// The user's id in this app.
    pub openid: OpenId,
    /// The nickname (may hold emoji and control characters).
    #[serde(default, deserialize_with = "lenient_string")]
    pub nickname: String,
    /// Sex.
    #[serde(default)]
    pub sex: Sex,
    /// Province (empty since late 2021).
    #[serde(default, deserialize_with = "lenient_string")]
    pub province: String,
    /// City (empty since late 2021).
    #[serde(default, deserialize_with = "lenient_string")]
    pub city: String,
    /// Country (empty since late 2021).
    #[serde(default, deserialize_with = "lenient_string")]
    pub country: String,
    /// Avatar URL; its last path segment is the size. Empty when none.
    #[serde(default, deserialize_with = "lenient_string")]
    pub headimgurl: String,
    /// Privileges such as `chinaunicom`.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub privilege: Vec<String>,
    /// The UnionID, when bound to an open-platform account.
    #[serde(default, deserialize_with = "lenient_opt_id")]
    pub unionid: Option<UnionId>,
    /// The undocumented `language` field, when present and non-empty.
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub language: Option<String>,
}

/// The JS-SDK ticket of `cgi-bin/ticket/getticket`.
#[derive(Clone, Debug, Deserialize)]
pub struct JsapiTicketResponse {
    /// The ticket.
    pub ticket: Ticket,
    /// Lifetime in seconds (WeChat reports 7200 even when re-fetched later).
    #[serde(deserialize_with = "lenient_u64")]
    pub expires_in: u64,
}

/// OAuth scope of the authorize page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `snsapi_base`: silent, openid only.
    Base,
    /// `snsapi_userinfo`: asks consent, allows `sns/userinfo`.
    UserInfo,
}

impl Scope {
    /// WeChat's name for the scope.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Base => "snsapi_base",
            Scope::UserInfo => "snsapi_userinfo",
        }
    }

    /// Parses WeChat's name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "snsapi_base" => Some(Scope::Base),
            "snsapi_userinfo" => Some(Scope::UserInfo),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Language of `sns/userinfo` answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Simplified Chinese (`zh_CN`), WeChat's default.
    #[default]
    ZhCn,
    /// Traditional Chinese (`zh_TW`).
    ZhTw,
    /// English (`en`).
    En,
}

impl Lang {
    /// WeChat's name for the language.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh_CN",
            Lang::ZhTw => "zh_TW",
            Lang::En => "en",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A JSON scalar as WeChat may send it: a number, a numeric string, a bool or null.
#[derive(Debug)]
pub(crate) enum Lenient {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
}

impl Lenient {
    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Lenient::Int(i) => Some(*i),
            #[allow(clippy::cast_possible_truncation)]
            Lenient::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
            Lenient::Str(s) => s.trim().parse().ok(),
            Lenient::Bool(b) => Some(i64::from(*b)),
            Lenient::Float(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lenient;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, a numeric string or a bool")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Lenient, E> {
                Ok(Lenient::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Lenient, E> {
                i64::try_from(v)
                    .map(Lenient::Int)
                    .map_err(|_| E::custom("number out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Lenient, E> {
                Ok(Lenient::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Lenient, E> {
                Ok(Lenient::Str(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Lenient, E> {
                Ok(Lenient::Bool(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A non-negative integer sent as a number or a numeric string.
///
/// # Errors
/// Anything else (a negative number, a fraction, a non-numeric string, null).
pub fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Lenient::deserialize(d)?
        .as_i64()
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| de::Error::custom("expected a non-negative integer"))
}

/// An optional non-negative integer sent as a number or a numeric string; absent or null is
/// `None`.
///
/// # Errors
/// A value that is not a non-negative integer.
pub fn lenient_opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match lenient_opt_i64(d)? {
        None => Ok(None),
        Some(v) => u64::try_from(v)
            .map(Some)
            .map_err(|_| de::Error::custom("expected a non-negative integer")),
    }
}

/// An optional integer sent as a number or a numeric string (`errcode`).
///
/// # Errors
/// A value that is not an integer.
pub fn lenient_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Lenient>::deserialize(d)? {
        None => Ok(None),
        Some(l) => l
            .as_i64()
            .map(Some)
            .ok_or_else(|| de::Error::custom("expected an integer")),
    }
}

/// A 0/1 flag sent as a number, a string or a bool; absent or null is false.
///
/// # Errors
/// A value that is not a scalar.
pub fn lenient_flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<Lenient>::deserialize(d)?
        .and_then(|l| l.as_i64())
        .is_some_and(|v| v != 0))
}

/// A string that may be null or a number (null reads as `""`).
///
/// # Errors
/// A value that is not a scalar.
pub fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(lenient_opt_string(d)?.unwrap_or_default())
}

/// An optional string: absent, null and empty are `None`; numbers are stringified.
///
/// # Errors
/// A value that is not a scalar.
pub fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Lenient>::deserialize(d)? {
        Some(Lenient::Str(s)) if !s.is_empty() => Some(s),
        Some(Lenient::Int(i)) => Some(i.to_string()),
        Some(Lenient::Float(f)) => Some(f.to_string()),
        _ => None,
    })
}

/// An optional UnionID: absent, null and empty are `None`.
///
/// # Errors
/// A value that is not a scalar.
pub fn lenient_opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<UnionId>, D::Error> {
    Ok(lenient_opt_string(d)?.map(UnionId::new))
}

/// A list of strings; absent or null is empty.
///
/// # Errors
/// A value that is not a list of strings.
pub fn lenient_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use crate::lenient;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "lenient::opt_u64")]
        n: Option<u64>,
        #[serde(default, deserialize_with = "lenient::uint")]
        u: u64,
    }

    #[test]
    fn opt_u64_reads_numbers_strings_and_null_and_refuses_negatives() {
        let p = |s: &str| serde_json::from_str::<Probe>(s);
        assert_eq!(p(r#"{"n":7,"u":"3"}"#).expect("ok").n, Some(7));
        assert_eq!(p(r#"{"n":"8"}"#).expect("ok").n, Some(8));
        assert_eq!(p(r#"{"n":null}"#).expect("ok").n, None);
        assert_eq!(p("{}").expect("ok").n, None);
        assert_eq!(p(r#"{"u":"3"}"#).expect("ok").u, 3);
        assert!(p(r#"{"n":-1}"#).is_err());
    }
}
