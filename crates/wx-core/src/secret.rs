//! Secret newtypes: values that must never reach a log line, an error or `Debug` output.

use std::sync::Arc;

use serde::{Deserialize, Deserializer};

/// How a secret type holds its value: a `String`, or an `Arc<str>` for a value that is handed
/// out many times (the base access token: one copy per call would be an allocation per call).
trait Repr: Clone + std::ops::Deref<Target = str> + From<String> {
    /// The value as an owned `String` (a copy for `Arc<str>`).
    fn into_string(self) -> String;
}

impl Repr for String {
    fn into_string(self) -> String {
        self
    }
}

impl Repr for Arc<str> {
    fn into_string(self) -> String {
        String::from(&*self)
    }
}

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        secret_type!($(#[$meta])* $name, String);
    };
    ($(#[$meta:meta])* $name:ident, $repr:ty) => {
        $(#[$meta])*
        ///
        /// `Debug` prints `Name([redacted])`; there is no `Display` and no `PartialEq`. The only
        /// way to read the value is [`secret`](Self::secret), which is easy to grep for.
        #[derive(Clone)]
        pub struct $name($repr);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(<$repr>::from(value.into()))
            }

            /// The secret value. Every call site is a place where the secret leaves its wrapper.
            #[must_use]
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// Consumes the wrapper and returns the secret value (without a copy, except for
            /// a value held shared, such as [`AccessToken`]'s).
            #[must_use]
            pub fn into_secret(self) -> String {
                Repr::into_string(self.0)
            }

            /// Whether the secret is the empty string (never a valid value).
            #[must_use]
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }

            /// Compares two secrets in time independent of where they differ.
            #[must_use]
            pub fn ct_eq(&self, other: &Self) -> bool {
                crate::secret::ct_eq(self.0.as_bytes(), other.0.as_bytes())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(|value| Self(<$repr>::from(value)))
            }
        }
    };
}

secret_type!(
    /// The AppSecret of an Official Account, sent to the token and code-exchange endpoints.
    AppSecret
);
secret_type!(
    /// The base access token of `cgi-bin/token` / `cgi-bin/stable_token`, for the server APIs.
    /// A user's web-auth token is a [`WebAccessToken`]: the types keep the two from being
    /// passed for each other.
    ///
    /// The value is shared, not copied: a clone, or a token handed out by the client's local
    /// copy ([`from_shared`](Self::from_shared)), costs a reference count, not an allocation.
    AccessToken,
    Arc<str>
);

impl AccessToken {
    /// Wraps a value held in an `Arc`, without a copy.
    #[must_use]
    pub fn from_shared(value: Arc<str>) -> Self {
        AccessToken(value)
    }
}
secret_type!(
    /// A user's web-auth access token from the OAuth code exchange or refresh, only for
    /// `sns/userinfo` and `sns/auth`; never the base [`AccessToken`]:
    ///
    /// ```compile_fail
    /// fn user_info(_web_token: &wx_core::WebAccessToken) {}
    /// user_info(&wx_core::AccessToken::new("a base token")); // a type error
    /// ```
    WebAccessToken
);
secret_type!(
    /// The one-off OAuth `code` of the login callback: a credential for its 5 minutes (whoever
    /// exchanges it first logs in as the user), so it is kept out of logs and `Debug` like the
    /// tokens. Built from the callback's query value with `AuthCode::from` or `new`.
    AuthCode
);

impl From<&str> for AuthCode {
    fn from(code: &str) -> Self {
        AuthCode::new(code)
    }
}

impl From<String> for AuthCode {
    fn from(code: String) -> Self {
        AuthCode::new(code)
    }
}

impl From<&String> for AuthCode {
    fn from(code: &String) -> Self {
        AuthCode::new(code.as_str())
    }
}

impl From<&AuthCode> for AuthCode {
    fn from(code: &AuthCode) -> Self {
        code.clone()
    }
}
secret_type!(
    /// The 30-day OAuth refresh token of `sns/oauth2/*`.
    RefreshToken
);
secret_type!(
    /// A JS-SDK `jsapi_ticket`.
    Ticket
);
secret_type!(
    /// The server Token typed into the console next to the server URL (服务器配置 → Token): the
    /// key of every push signature. Unrelated to the access token.
    ServerToken
);

/// Constant-time byte comparison (length is not hidden).
#[must_use]
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_for_every_secret_type() {
        let raw = "s3cr3t-VALUE-123";
        let shown = [
            format!("{:?}", AppSecret::new(raw)),
            format!("{:?}", AccessToken::new(raw)),
            format!("{:?}", RefreshToken::new(raw)),
            format!("{:?}", Ticket::new(raw)),
            format!("{:#?}", Some(AccessToken::new(raw))),
            format!("{:?}", ServerToken::new(raw)),
        ];
        assert_eq!(shown[0], "AppSecret([redacted])");
        assert_eq!(shown[1], "AccessToken([redacted])");
        assert_eq!(shown[2], "RefreshToken([redacted])");
        assert_eq!(shown[3], "Ticket([redacted])");
        assert_eq!(shown[5], "ServerToken([redacted])");
        for s in shown {
            assert!(!s.contains(raw), "{s}");
        }
        assert_eq!(AccessToken::new(raw).secret(), raw);
    }

    #[test]
    fn an_access_token_is_shared_not_copied() {
        let shared: Arc<str> = Arc::from("T1");
        let token = AccessToken::from_shared(shared.clone());
        let clone = token.clone();
        assert!(std::ptr::eq(token.secret(), &*shared), "no copy on wrap");
        assert!(std::ptr::eq(clone.secret(), &*shared), "no copy on clone");
        assert_eq!(token.into_secret(), "T1");
        assert_eq!(AccessToken::new(String::from("T2")).into_secret(), "T2");
    }

    #[test]
    fn deserializes_from_a_json_string() {
        let t: AccessToken = serde_json::from_str("\"abc\"").expect("decode");
        assert_eq!(t.secret(), "abc");
        assert!(t.ct_eq(&AccessToken::new("abc")));
        assert!(!t.ct_eq(&AccessToken::new("abd")));
        assert!(!t.ct_eq(&AccessToken::new("ab")));
    }
}
