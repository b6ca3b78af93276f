//! Setting up a sandbox: apps, users, consent, clock, seed.

use std::time::{Duration, SystemTime};

use wx_core::{Clock as _, ManualClock, Sex};

use crate::push::ServerConfig;
use crate::world::{App, FollowScene, World};
use crate::{AppConfig, Sandbox, SandboxError};

/// A user registered with an app: what `sns/userinfo` returns for them.
///
/// Fields are public; build one with [`UserProfile::new`] and the chained setters, or with a
/// struct literal and `..UserProfile::default()`. In JSON (config file, admin API) every field
/// but `openid` is optional and `sex` is WeChat's number (1 male, 2 female, 0 unknown).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserProfile {
    /// The user's id in this app.
    pub openid: String,
    /// The UnionID, if the app is bound to an open-platform account. Returned by the code
    /// exchange (for `snsapi_userinfo` only) and by `sns/userinfo`.
    pub unionid: Option<String>,
    /// Nickname.
    pub nickname: String,
    /// Sex (WeChat has reported `Unknown` for everyone since late 2021).
    #[serde(deserialize_with = "crate::config::sex_number")]
    pub sex: Sex,
    /// Province (WeChat returns `""` since late 2021).
    pub province: String,
    /// City (WeChat returns `""` since late 2021).
    pub city: String,
    /// Country (WeChat returns `""` since late 2021).
    pub country: String,
    /// Avatar URL, `""` for none.
    pub headimgurl: String,
    /// Privileges such as `chinaunicom`.
    pub privilege: Vec<String>,
    /// A virtual snapshot-page user: the code exchange returns `"is_snapshotuser": 1`.
    pub snapshot: bool,
}

impl UserProfile {
    /// A user with `openid` and an otherwise empty profile, as WeChat returns it today.
    #[must_use]
    pub fn new(openid: impl Into<String>) -> Self {
        UserProfile {
            openid: openid.into(),
            ..UserProfile::default()
        }
    }

    /// Sets the UnionID.
    #[must_use]
    pub fn unionid(mut self, unionid: impl Into<String>) -> Self {
        self.unionid = Some(unionid.into());
        self
    }

    /// Sets the nickname.
    #[must_use]
    pub fn nickname(mut self, nickname: impl Into<String>) -> Self {
        self.nickname = nickname.into();
        self
    }

    /// Sets the sex.
    #[must_use]
    pub fn sex(mut self, sex: Sex) -> Self {
        self.sex = sex;
        self
    }

    /// Sets province, city and country.
    #[must_use]
    pub fn location(
        mut self,
        province: impl Into<String>,
        city: impl Into<String>,
        country: impl Into<String>,
    ) -> Self {
        self.province = province.into();
        self.city = city.into();
        self.country = country.into();
        self
    }

    /// Sets the avatar URL.
    #[must_use]
    pub fn headimgurl(mut self, url: impl Into<String>) -> Self {
        self.headimgurl = url.into();
        self
    }

    /// Sets the privileges.
    #[must_use]
    pub fn privilege(mut self, privilege: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.privilege = privilege.into_iter().map(Into::into).collect();
        self
    }

    /// Marks the user as a virtual snapshot-page user.
    #[must_use]
    pub fn snapshot(mut self, snapshot: bool) -> Self {
        self.snapshot = snapshot;
        self
    }
}

/// Who answers the authorize page of an app.
///
/// In JSON (config file, admin API): `"first_user"`, `"ask"`, `"deny"` or `{"user": "OPENID"}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Consent {
    /// The first user registered with the app consents, silently (the default): consent set in
    /// code, for tests.
    #[default]
    FirstUser,
    /// The user with this openid consents, silently.
    User(String),
    /// The user refuses: the redirect carries `state` but no `code`, as WeChat's old doc says.
    Deny,
    /// A person answers: for `snsapi_userinfo` the authorize page is a consent page like
    /// WeChat's (the account's name, what it asks for, allow and deny) shown to the first
    /// registered user, until that user has allowed once; `snsapi_base` stays silent.
    Ask,
}

/// Builds a [`Sandbox`]; see [`Sandbox::builder`].
///
/// The sandbox keeps its builder: [`Sandbox::reset`] rebuilds the world from it.
#[derive(Clone, Debug)]
#[must_use]
pub struct SandboxBuilder {
    apps: Vec<AppConfig>,
    pending_users: Vec<(String, UserProfile)>,
    pending_consents: Vec<(String, Consent)>,
    pending_domains: Vec<(String, String)>,
    pending_servers: Vec<(String, ServerConfig)>,
    pending_names: Vec<(String, String)>,
    clock: Option<ManualClock>,
    seed: Option<u64>,
    token_daily_quota: u32,
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        SandboxBuilder {
            apps: Vec::new(),
            pending_users: Vec::new(),
            pending_consents: Vec::new(),
            pending_domains: Vec::new(),
            pending_servers: Vec::new(),
            pending_names: Vec::new(),
            clock: None,
            seed: None,
            token_daily_quota: 2000,
        }
    }
}

impl SandboxBuilder {
    /// Registers an app with its AppSecret.
    pub fn app(mut self, appid: impl Into<String>, secret: impl Into<String>) -> Self {
        self.apps.push(AppConfig::new(appid, secret));
        self
    }

    /// Registers an app described as data (as in the binary's config file), with its users,
    /// name, consent and domain.
    pub fn app_config(mut self, config: AppConfig) -> Self {
        self.apps.push(config);
        self
    }

    /// Sets the account's name (公众号名称), shown on the consent page (default: the appid).
    pub fn account_name(mut self, appid: impl Into<String>, name: impl Into<String>) -> Self {
        self.pending_names.push((appid.into(), name.into()));
        self
    }

    /// Registers a user with the app `appid` (registered with [`app`](Self::app)).
    pub fn user(mut self, appid: impl Into<String>, user: UserProfile) -> Self {
        self.pending_users.push((appid.into(), user));
        self
    }

    /// Chooses who answers the app's authorize page (default [`Consent::FirstUser`]).
    /// [`Sandbox::set_consent`] changes it later.
    pub fn consent(mut self, appid: impl Into<String>, consent: Consent) -> Self {
        self.pending_consents.push((appid.into(), consent));
        self
    }

    /// Sets the app's web-authorization domain (网页授权域名): the authorize page then answers
    /// error 10003 for a `redirect_uri` on another host. Without it any host is accepted.
    pub fn oauth_domain(mut self, appid: impl Into<String>, domain: impl Into<String>) -> Self {
        self.pending_domains.push((appid.into(), domain.into()));
        self
    }

    /// Gives the app a server URL (服务器配置): WeChat pushes there. Registered without the
    /// URL check (as if saved before the test began); [`Sandbox::set_server`] checks it.
    pub fn server(mut self, appid: impl Into<String>, config: ServerConfig) -> Self {
        self.pending_servers.push((appid.into(), config));
        self
    }

    /// Uses `clock` (share it with the client under test). Default: a [`ManualClock`] stopped
    /// at the current time.
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Seeds the generator of tokens, codes, tickets and request ids, for reproducible runs.
    /// Default: a random seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Daily quota of `cgi-bin/token` calls per app (WeChat: 2,000; 200 on a test account).
    pub fn token_daily_quota(mut self, quota: u32) -> Self {
        self.token_daily_quota = quota;
        self
    }

    /// Builds the sandbox.
    ///
    /// # Errors
    /// [`SandboxError::DuplicateApp`] for an appid registered twice,
    /// [`SandboxError::UnknownApp`] for a user, consent, name, server or domain naming an
    /// unregistered appid, [`SandboxError::DuplicateUser`] for an openid registered twice with one
    /// app, [`SandboxError::MissingOpenid`] for a user without an openid,
    /// [`SandboxError::InvalidServer`] for a bad server configuration.
    pub fn build(mut self) -> Result<Sandbox, SandboxError> {
        let clock = self.clock.take().unwrap_or_else(ManualClock::starting_now);
        let seed = *self.seed.get_or_insert_with(rand::random);
        let world = self.world(seed, clock.now())?;
        Ok(Sandbox::from_parts(world, clock, self))
    }

    /// The world this set-up describes, its users following since `start`.
    pub(crate) fn world(&self, seed: u64, start: SystemTime) -> Result<World, SandboxError> {
        let mut apps: Vec<App> = Vec::with_capacity(self.apps.len());
        for config in &self.apps {
            if apps.iter().any(|a| a.appid == config.appid) {
                return Err(SandboxError::DuplicateApp);
            }
            apps.push(config.app(start)?);
        }
        let find = |apps: &mut [App], appid: &str| -> Result<usize, SandboxError> {
            apps.iter()
                .position(|a| a.appid == appid)
                .ok_or(SandboxError::UnknownApp)
        };
        for (appid, user) in &self.pending_users {
            let i = find(&mut apps, appid)?;
            apps[i].add_user(user.clone(), start)?;
        }
        for (appid, consent) in &self.pending_consents {
            let i = find(&mut apps, appid)?;
            apps[i].consent = consent.clone();
        }
        for (appid, domain) in &self.pending_domains {
            let i = find(&mut apps, appid)?;
            apps[i].oauth_domain = Some(domain.clone());
        }
        for (appid, server) in &self.pending_servers {
            let i = find(&mut apps, appid)?;
            apps[i].push_state().server = Some(server.clone().checked()?);
        }
        for (appid, name) in &self.pending_names {
            let i = find(&mut apps, appid)?;
            apps[i].set_name(name.clone());
        }
        Ok(World::new(apps, seed, self.token_daily_quota))
    }

    /// The seed (set by [`build`](Self::build) when none was given).
    pub(crate) fn seed_value(&self) -> u64 {
        self.seed.unwrap_or_default()
    }
}

impl App {
    /// Registers `user`, following the app since `now`.
    pub(crate) fn add_user(
        &mut self,
        user: UserProfile,
        now: SystemTime,
    ) -> Result<(), SandboxError> {
        if user.openid.is_empty() {
            return Err(SandboxError::MissingOpenid);
        }
        if self.users.iter().any(|u| u.openid == user.openid) {
            return Err(SandboxError::DuplicateUser);
        }
        self.follow(&user.openid, now, FollowScene::other());
        self.users.push(user);
        Ok(())
    }
}

/// Seconds from the epoch, saturating (a clock before 1970 reads as 0).
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}
