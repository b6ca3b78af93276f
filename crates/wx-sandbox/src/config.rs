//! Apps and users described as data (a config file of the `wx-sandbox` binary, the admin
//! API's JSON), adding them to a running sandbox, and resetting it to its set-up.

use std::fmt;
use std::time::SystemTime;

use serde::Deserialize;
use wx_core::{Clock as _, Sex};

use crate::world::App;
use crate::{Consent, PushTarget, Sandbox, SandboxError, ServerConfig, UserProfile};

/// One app: an entry of the binary's config file (`"apps": [...]`) or the body of
/// `POST /__sandbox/apps`. Unknown fields are refused, so a typo does not pass silently.
///
/// ```
/// let app: wx_sandbox::AppConfig = serde_json::from_str(r#"{
///     "appid": "wx1234567890abcdef", "secret": "the-app-secret", "name": "Demo shop",
///     "consent": "ask", "users": [{"openid": "o-alice", "nickname": "Alice"}]
/// }"#).unwrap();
/// assert_eq!(app.users.len(), 1);
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AppConfig {
    /// The AppID.
    pub appid: String,
    /// The AppSecret.
    pub secret: String,
    /// The account's name, shown on the consent page (default: the appid).
    #[serde(default)]
    pub name: Option<String>,
    /// Who answers the authorize page (default [`Consent::FirstUser`]).
    #[serde(default)]
    pub consent: Consent,
    /// The web-authorization domain (default: any host).
    #[serde(default)]
    pub oauth_domain: Option<String>,
    /// The app's server URL (服务器配置), where WeChat pushes; registered without the URL check,
    /// as [`SandboxBuilder::server`](crate::SandboxBuilder::server) does.
    #[serde(default)]
    pub server: Option<ServerSpec>,
    /// The app's users (they follow it from the start), as JSON objects with the fields of
    /// [`UserProfile`] (`openid` required, the others optional, `sex` as a number).
    #[serde(default)]
    pub users: Vec<UserProfile>,
}

impl fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppConfig")
            .field("appid", &self.appid)
            .field("secret", &"[redacted]")
            .field("name", &self.name)
            .field("consent", &self.consent)
            .field("oauth_domain", &self.oauth_domain)
            .field("server", &self.server)
            .field("users", &self.users)
            .finish()
    }
}

impl AppConfig {
    /// An app with no users and the defaults.
    #[must_use]
    pub fn new(appid: impl Into<String>, secret: impl Into<String>) -> Self {
        AppConfig {
            appid: appid.into(),
            secret: secret.into(),
            name: None,
            consent: Consent::default(),
            oauth_domain: None,
            server: None,
            users: Vec::new(),
        }
    }

    /// The app, its users following since `start`.
    pub(crate) fn app(&self, start: SystemTime) -> Result<App, SandboxError> {
        let mut app = App::new(self.appid.clone(), self.secret.clone());
        for user in &self.users {
            app.add_user(user.clone(), start)?;
        }
        if let Consent::User(openid) = &self.consent
            && !app.users.iter().any(|u| &u.openid == openid)
        {
            return Err(SandboxError::UnknownUser);
        }
        app.consent = self.consent.clone();
        app.oauth_domain.clone_from(&self.oauth_domain);
        if let Some(name) = &self.name {
            app.set_name(name.clone());
        }
        if let Some(server) = &self.server {
            app.push_state().server = Some(server.config().checked()?);
        }
        Ok(app)
    }
}

/// An app's server configuration as data: `{"url", "token", "mode": "plain" | "compatible" |
/// "safe", "encoding_aes_key" (the encrypted modes), "original_id"}`. `Debug` shows no secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerSpec {
    /// The server URL (`http://...`, on loopback).
    pub url: String,
    /// The server Token.
    pub token: String,
    /// `"plain"`, `"compatible"` or `"safe"`.
    pub mode: ModeSpec,
    /// The 43-character EncodingAESKey (compatible and safe modes).
    #[serde(default)]
    pub encoding_aes_key: Option<String>,
    /// The account's original id (`gh_...`).
    pub original_id: String,
}

/// [`ServerSpec::mode`] in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ModeSpec {
    /// [`PushMode::Plain`](crate::PushMode::Plain).
    Plain,
    /// [`PushMode::Compatible`](crate::PushMode::Compatible).
    Compatible,
    /// [`PushMode::Safe`](crate::PushMode::Safe).
    Safe,
}

impl fmt::Debug for ServerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSpec")
            .field("mode", &self.mode)
            .field("original_id", &self.original_id)
            .finish_non_exhaustive()
    }
}

impl ServerSpec {
    /// The configuration (checked when registered: an encrypted mode without a key fails then).
    #[must_use]
    pub fn config(&self) -> ServerConfig {
        let target = PushTarget::url(&self.url);
        let key = self.encoding_aes_key.as_deref().unwrap_or_default();
        match self.mode {
            ModeSpec::Plain => ServerConfig::plain(target, &self.token, &self.original_id),
            ModeSpec::Compatible => {
                ServerConfig::compatible(target, &self.token, &self.original_id, key)
            }
            ModeSpec::Safe => ServerConfig::safe(target, &self.token, &self.original_id, key),
        }
    }
}

/// A sex as WeChat numbers it (1 male, 2 female, anything else unknown), for
/// [`UserProfile`]'s `sex` in JSON.
pub(crate) fn sex_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Sex, D::Error> {
    Ok(match u8::deserialize(d)? {
        1 => Sex::Male,
        2 => Sex::Female,
        _ => Sex::Unknown,
    })
}

impl Sandbox {
    /// Registers an app (and its users) while the sandbox runs.
    ///
    /// # Errors
    /// [`SandboxError::DuplicateApp`] for a registered appid, [`SandboxError::DuplicateUser`]
    /// for an openid listed twice, [`SandboxError::MissingOpenid`] for a user without one, [`SandboxError::UnknownUser`] for a consenting user not in
    /// the list.
    pub fn add_app(&self, config: &AppConfig) -> Result<(), SandboxError> {
        let app = config.app(self.clock().now())?;
        self.world().add_app(app)
    }

    /// Registers a user with `appid` while the sandbox runs; the user follows the app.
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`], [`SandboxError::DuplicateUser`],
    /// [`SandboxError::MissingOpenid`].
    pub fn add_user(&self, appid: &str, user: UserProfile) -> Result<(), SandboxError> {
        let now = self.clock().now();
        let mut world = self.world();
        let app = world.app_mut(appid).ok_or(SandboxError::UnknownApp)?;
        app.add_user(user, now)
    }

    /// Back to the set-up the sandbox was built with: apps and users added later are gone, and
    /// with them every token, code, ticket, consent and inbox; request counts and fault scripts
    /// are cleared. The clock stays where it is (clients sharing it never see time go back);
    /// new tokens differ from the ones issued before.
    pub fn reset(&self) {
        let n = self
            .inner
            .resets
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let recipe = &self.inner.recipe;
        let seed = recipe.seed_value().wrapping_add(n);
        // The recipe built a world once, so it builds one again.
        if let Ok(world) = recipe.world(seed, self.clock().now()) {
            *self.world() = world;
        }
        self.faults().clear();
        self.reset_counts();
    }
}
