//! `RedisTokenStore`: the `TokenStore` on Redis (standalone or Cluster).

use std::fmt;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError, RedisFuture, Script, Value,
};
use wx_core::{StoreError, StoreOp, StoredToken, TokenKey, TokenStore};

use crate::error::{Redactor, RedisFailure, RedisFailureKind, store_error};

/// Default [`RedisTokenStoreBuilder::operation_timeout`]: 1 s.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(1);
/// Default [`RedisTokenStoreBuilder::connection_timeout`]: 2 s.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

// Reconnect policy of the standalone `ConnectionManager`: a short burst of attempts, then the
// pending commands fail with the connect error and the next command starts a new burst. So
// while Redis is down each call fails within about 150 ms (or the operation timeout), there
// is at most one connect attempt in flight per store, and the first call after Redis is back
// succeeds or finds a fresh connection.
const RECONNECT_ATTEMPTS: usize = 2;
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

/// Deletes KEYS[1] if its value (`<expires_at_ms>:<value>`) holds ARGV[1] and has not expired
/// at ARGV[2] (unix ms). Returns 1 when it deleted.
static COMPARE_AND_DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local sep = string.find(v, ':', 1, true)
if not sep then return 0 end
local exp = tonumber(string.sub(v, 1, sep - 1))
if exp and exp > tonumber(ARGV[2]) and string.sub(v, sep + 1) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
",
    )
});

/// Deletes the lease KEYS[1] if ARGV[1] owns it.
static RELEASE_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// How [`TokenKey`]s become Redis keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyLayout {
    /// `{prefix}:{appid}:{kind}`, exactly `TokenKey`'s `Display`.
    Plain,
    /// `{prefix}:{{appid}}:{kind}`: the AppID is a Redis Cluster hash tag, so every key of one
    /// AppID (its values and their leases) lives in one slot.
    HashTagged,
}

impl KeyLayout {
    fn value_key(self, key: &TokenKey) -> String {
        match self {
            KeyLayout::Plain => key.to_string(),
            KeyLayout::HashTagged => {
                format!("{}:{{{}}}:{}", key.prefix(), key.appid(), key.kind())
            }
        }
    }

    fn lease_key(self, key: &TokenKey) -> String {
        let mut k = self.value_key(key);
        k.push_str(":lease");
        k
    }
}

/// The connection: a reconnecting manager for one server, or a cluster connection (which
/// reconnects to nodes and follows slot moves by itself). Both are cheap handles to a shared
/// multiplexed connection.
#[derive(Clone)]
enum Conn {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Standalone(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Standalone(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// What `Debug` shows of the connection: addresses and database, never credentials.
#[derive(Clone)]
enum Endpoint {
    Standalone { addr: String, db: i64, tls: bool },
    Cluster { nodes: Vec<String>, tls: bool },
    Provided { mode: &'static str },
}

impl Endpoint {
    fn of(info: &ConnectionInfo) -> (String, bool) {
        let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        (info.addr().to_string(), tls)
    }
}

struct Inner {
    conn: Conn,
    layout: KeyLayout,
    operation_timeout: Duration,
    redactor: Redactor,
    endpoint: Endpoint,
}

/// A [`TokenStore`] on Redis, shared by every process of a fleet: one access token for all of
/// them, and one refresher at a time (see the crate docs for the key layout and the failure
/// behaviour). Cloning is cheap and clones share the connection.
#[derive(Clone)]
pub struct RedisTokenStore {
    inner: Arc<Inner>,
}

impl RedisTokenStore {
    /// Connects to one Redis server with the default options (see [`Self::builder`]).
    ///
    /// `url`: `redis://[[user]:password@]host[:port][/db]`, `rediss://...` for TLS (needs the
    /// `rustls` or `native-tls` feature), or `unix:///path/to/redis.sock`.
    ///
    /// # Errors
    /// [`StoreError`] with [`StoreOp::Connect`] when the URL is invalid, Redis cannot be
    /// reached or rejects the credentials. Its source is a [`RedisFailure`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder().connect(url).await
    }

    /// Connects to a Redis Cluster through one or more of its nodes with the default options.
    ///
    /// # Errors
    /// [`StoreError`] with [`StoreOp::Connect`] when a URL is invalid or no node can be
    /// reached.
    pub async fn connect_cluster<I, S>(urls: I) -> Result<Self, StoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::builder().connect_cluster(urls).await
    }

    /// A store on a [`ConnectionManager`] you configured yourself (default options).
    #[must_use]
    pub fn from_connection_manager(manager: ConnectionManager) -> Self {
        Self::builder().build_with_connection_manager(manager)
    }

    /// A store on a cluster connection you configured yourself (default options).
    #[must_use]
    pub fn from_cluster_connection(connection: ClusterConnection) -> Self {
        Self::builder().build_with_cluster_connection(connection)
    }

    /// Options: timeouts and a private TLS root certificate.
    pub fn builder() -> RedisTokenStoreBuilder {
        RedisTokenStoreBuilder::new()
    }

    /// The Redis key holding the value of `key` (`{prefix}:{appid}:{kind}`, or
    /// `{prefix}:{{appid}}:{kind}` on a cluster).
    #[must_use]
    pub fn redis_key(&self, key: &TokenKey) -> String {
        self.inner.layout.value_key(key)
    }

    /// The Redis key holding the refresh lease of `key` (`<redis_key>:lease`).
    #[must_use]
    pub fn lease_redis_key(&self, key: &TokenKey) -> String {
        self.inner.layout.lease_key(key)
    }

    /// Runs `fut` within the operation timeout and maps its failure to a [`StoreError`].
    async fn bounded<T>(
        &self,
        op: StoreOp,
        fut: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.inner.operation_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(store_error(
                op,
                RedisFailure::from_redis(&e, &self.inner.redactor),
            )),
            Err(_) => Err(store_error(
                op,
                RedisFailure::timeout(self.inner.operation_timeout),
            )),
        }
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        op: StoreOp,
        cmd: &Cmd,
    ) -> Result<T, StoreError> {
        let mut conn = self.inner.conn.clone();
        self.bounded(op, cmd.query_async::<T>(&mut conn)).await
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Splits a stored `<expires_at_ms>:<value>`.
fn decode_value(raw: &str) -> Option<(u64, &str)> {
    let (ms, value) = raw.split_once(':')?;
    Some((ms.parse().ok()?, value))
}

#[async_trait]
impl TokenStore for RedisTokenStore {
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>, StoreError> {
        let raw: Option<String> = self
            .query(StoreOp::Get, redis::cmd("GET").arg(self.redis_key(key)))
            .await?;
        let Some(raw) = raw else { return Ok(None) };
        let (expires_ms, value) = decode_value(&raw).ok_or_else(|| {
            store_error(
                StoreOp::Get,
                RedisFailure::new(
                    RedisFailureKind::Protocol,
                    "the stored value is not in wx-redis's `<expires_at_ms>:<value>` format",
                ),
            )
        })?;
        // Redis expires the key on its own clock; the absolute expiry is checked here too, so
        // that a value is never returned past `expires_at` on this machine's clock.
        if expires_ms <= unix_ms(SystemTime::now()) {
            return Ok(None);
        }
        Ok(Some(StoredToken::new(
            value,
            UNIX_EPOCH + Duration::from_millis(expires_ms),
        )))
    }

    async fn set(&self, key: &TokenKey, token: StoredToken) -> Result<(), StoreError> {
        let k = self.redis_key(key);
        let expires_ms = unix_ms(token.expires_at);
        let now_ms = unix_ms(SystemTime::now());
        if expires_ms <= now_ms {
            // Already expired: nothing to keep, and no stale value may stay behind.
            return self
                .query::<()>(StoreOp::Set, redis::cmd("DEL").arg(k))
                .await;
        }
        // Value and absolute expiry in one command; the TTL makes Redis drop it on time.
        let stored = format!("{expires_ms}:{}", token.secret());
        self.query::<()>(
            StoreOp::Set,
            redis::cmd("SET")
                .arg(k)
                .arg(stored)
                .arg("PX")
                .arg(expires_ms - now_ms),
        )
        .await
    }

    async fn delete(&self, key: &TokenKey) -> Result<(), StoreError> {
        self.query::<()>(StoreOp::Delete, redis::cmd("DEL").arg(self.redis_key(key)))
            .await
    }

    async fn compare_and_delete(&self, key: &TokenKey, expected: &str) -> Result<bool, StoreError> {
        let mut invocation = COMPARE_AND_DELETE.key(self.redis_key(key));
        invocation.arg(expected).arg(unix_ms(SystemTime::now()));
        let mut conn = self.inner.conn.clone();
        let deleted: i64 = self
            .bounded(
                StoreOp::CompareAndDelete,
                invocation.invoke_async(&mut conn),
            )
            .await?;
        Ok(deleted == 1)
    }

    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let reply: Option<String> = self
            .query(
                StoreOp::AcquireLease,
                redis::cmd("SET")
                    .arg(self.lease_redis_key(key))
                    .arg(owner)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms),
            )
            .await?;
        Ok(reply.is_some())
    }

    async fn release_lease(&self, key: &TokenKey, owner: &str) -> Result<(), StoreError> {
        let mut invocation = RELEASE_LEASE.key(self.lease_redis_key(key));
        invocation.arg(owner);
        let mut conn = self.inner.conn.clone();
        self.bounded::<i64>(StoreOp::ReleaseLease, invocation.invoke_async(&mut conn))
            .await
            .map(|_| ())
    }
}

impl fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RedisTokenStore");
        match &self.inner.endpoint {
            Endpoint::Standalone { addr, db, tls } => d
                .field("mode", &"standalone")
                .field("addr", addr)
                .field("db", db)
                .field("tls", tls),
            Endpoint::Cluster { nodes, tls } => d
                .field("mode", &"cluster")
                .field("nodes", nodes)
                .field("tls", tls),
            Endpoint::Provided { mode } => d.field("mode", mode),
        };
        d.field("operation_timeout", &self.inner.operation_timeout)
            .finish()
    }
}

/// Options of a [`RedisTokenStore`]; finish with [`connect`](Self::connect),
/// [`connect_cluster`](Self::connect_cluster) or one of the `build_with_*` methods.
#[derive(Clone)]
#[must_use]
pub struct RedisTokenStoreBuilder {
    operation_timeout: Duration,
    connection_timeout: Duration,
    root_certificate: Option<Vec<u8>>,
}

impl fmt::Debug for RedisTokenStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTokenStoreBuilder")
            .field("operation_timeout", &self.operation_timeout)
            .field("connection_timeout", &self.connection_timeout)
            .field("root_certificate", &self.root_certificate.is_some())
            .finish()
    }
}

impl Default for RedisTokenStoreBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RedisTokenStoreBuilder {
    /// The defaults: [`DEFAULT_OPERATION_TIMEOUT`], [`DEFAULT_CONNECTION_TIMEOUT`], the
    /// system's root certificates.
    pub fn new() -> Self {
        RedisTokenStoreBuilder {
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            root_certificate: None,
        }
    }

    /// The longest one store operation may take, waiting for a reconnect included; past it
    /// the operation fails with a [`StoreError`] whose [`RedisFailure`] is a timeout, so a
    /// hung Redis never hangs the caller. At least 1 ms.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The longest one connection attempt may take, and the bound on the initial connect of
    /// [`connect`](Self::connect) / [`connect_cluster`](Self::connect_cluster). At least 1 ms.
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Trusts this PEM root certificate (a private CA) for `rediss://`, instead of the
    /// system's roots. For a cluster it needs the `rustls` feature.
    #[cfg(any(feature = "rustls", feature = "native-tls"))]
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificate = Some(pem.into());
        self
    }

    /// Connects to one Redis server (URL forms in [`RedisTokenStore::connect`]) through a
    /// reconnecting [`ConnectionManager`].
    ///
    /// # Errors
    /// [`StoreError`] with [`StoreOp::Connect`] when the URL is invalid, Redis cannot be
    /// reached within the connection timeout or rejects the credentials.
    pub async fn connect(self, url: &str) -> Result<RedisTokenStore, StoreError> {
        let info = parse_url(url)?;
        let redactor = Redactor::new(info.redis_settings().password().map(str::to_owned));
        let (addr, tls) = Endpoint::of(&info);
        let db = info.redis_settings().db();
        let fail = |e: &RedisError| {
            store_error(
                StoreOp::Connect,
                RedisFailure::from_redis(e, &redactor).while_connecting(),
            )
        };
        let client = self.client(info).map_err(|e| fail(&e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connection_timeout))
            .set_response_timeout(Some(self.operation_timeout))
            .set_number_of_retries(RECONNECT_ATTEMPTS)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let manager = self
            .within_connection_timeout(ConnectionManager::new_with_config(client, config))
            .await?
            .map_err(|e| fail(&e))?;
        Ok(self.finish(
            Conn::Standalone(manager),
            KeyLayout::Plain,
            redactor.clone(),
            Endpoint::Standalone { addr, db, tls },
        ))
    }

    /// Runs a connection attempt, failing as a `Connect` store error when it takes longer than
    /// the connection timeout.
    async fn within_connection_timeout<T>(
        &self,
        attempt: impl std::future::Future<Output = T>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.connection_timeout, attempt)
            .await
            .map_err(|_| {
                store_error(
                    StoreOp::Connect,
                    RedisFailure::timeout(self.connection_timeout),
                )
            })
    }

    /// Connects to a Redis Cluster through one or more of its nodes (the others are found
    /// from the cluster's slot map). Keys use hash tags (see the crate docs).
    ///
    /// # Errors
    /// [`StoreError`] with [`StoreOp::Connect`] when a URL is invalid, no node can be reached
    /// within the connection timeout, or a root certificate is given without the `rustls`
    /// feature.
    pub async fn connect_cluster<I, S>(self, urls: I) -> Result<RedisTokenStore, StoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let infos = urls
            .into_iter()
            .map(|u| parse_url(u.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let redactor = Redactor::new(
            infos
                .iter()
                .filter_map(|i| i.redis_settings().password().map(str::to_owned)),
        );
        let fail = |e: &RedisError| {
            store_error(
                StoreOp::Connect,
                RedisFailure::from_redis(e, &redactor).while_connecting(),
            )
        };
        let tls = infos.iter().any(|i| Endpoint::of(i).1);
        let nodes = infos.iter().map(|i| Endpoint::of(i).0).collect();
        if tls {
            install_crypto_provider();
        }
        let builder = ClusterClientBuilder::new(infos)
            .connection_timeout(self.connection_timeout)
            .response_timeout(self.operation_timeout);
        let builder = self.cluster_certs(builder, tls)?;
        let client = builder.build().map_err(|e| fail(&e))?;
        let connection = self
            .within_connection_timeout(client.get_async_connection())
            .await?
            .map_err(|e| fail(&e))?;
        Ok(self.finish(
            Conn::Cluster(connection),
            KeyLayout::HashTagged,
            redactor.clone(),
            Endpoint::Cluster { nodes, tls },
        ))
    }

    /// A store on a [`ConnectionManager`] you configured yourself; only the operation timeout
    /// applies. Keys use the plain layout.
    pub fn build_with_connection_manager(self, manager: ConnectionManager) -> RedisTokenStore {
        self.finish(
            Conn::Standalone(manager),
            KeyLayout::Plain,
            Redactor::default(),
            Endpoint::Provided {
                mode: "standalone (provided ConnectionManager)",
            },
        )
    }

    /// A store on a cluster connection you configured yourself; only the operation timeout
    /// applies. Keys use hash tags.
    pub fn build_with_cluster_connection(self, connection: ClusterConnection) -> RedisTokenStore {
        self.finish(
            Conn::Cluster(connection),
            KeyLayout::HashTagged,
            Redactor::default(),
            Endpoint::Provided {
                mode: "cluster (provided ClusterConnection)",
            },
        )
    }

    fn finish(
        self,
        conn: Conn,
        layout: KeyLayout,
        redactor: Redactor,
        endpoint: Endpoint,
    ) -> RedisTokenStore {
        RedisTokenStore {
            inner: Arc::new(Inner {
                conn,
                layout,
                operation_timeout: self.operation_timeout,
                redactor,
                endpoint,
            }),
        }
    }

    fn client(&self, info: ConnectionInfo) -> Result<redis::Client, RedisError> {
        let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        if tls {
            install_crypto_provider();
        }
        match &self.root_certificate {
            None => redis::Client::open(info),
            Some(_) if !tls => Err(RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "a TLS root certificate was given for a URL without TLS (use rediss://)",
            ))),
            #[cfg(any(feature = "rustls", feature = "native-tls"))]
            Some(pem) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            // Unreachable: without a TLS feature there is no way to set a root certificate.
            #[cfg(not(any(feature = "rustls", feature = "native-tls")))]
            Some(_) => redis::Client::open(info),
        }
    }

    fn cluster_certs(
        &self,
        builder: ClusterClientBuilder,
        tls: bool,
    ) -> Result<ClusterClientBuilder, StoreError> {
        let Some(_pem) = &self.root_certificate else {
            return Ok(builder);
        };
        if !tls {
            return Err(store_error(
                StoreOp::Connect,
                RedisFailure::new(
                    RedisFailureKind::Config,
                    "a TLS root certificate was given for URLs without TLS (use rediss://)",
                ),
            ));
        }
        #[cfg(feature = "rustls")]
        {
            Ok(builder.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(_pem.clone()),
            }))
        }
        #[cfg(not(feature = "rustls"))]
        {
            let _ = builder;
            Err(store_error(
                StoreOp::Connect,
                RedisFailure::new(
                    RedisFailureKind::Config,
                    "a TLS root certificate for Redis Cluster needs the `rustls` feature",
                ),
            ))
        }
    }
}

fn parse_url(url: &str) -> Result<ConnectionInfo, StoreError> {
    // The redis crate's parse errors are fixed texts: they never repeat the URL.
    url.into_connection_info().map_err(|e| {
        store_error(
            StoreOp::Connect,
            RedisFailure::from_redis(&e, &Redactor::default()),
        )
    })
}

/// rustls needs a process-wide crypto provider; the redis crate asks for the default one.
/// Install aws-lc-rs (the provider reqwest uses too) unless the application installed one.
fn install_crypto_provider() {
    #[cfg(feature = "rustls")]
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // An error means another thread installed one first: that one is used.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wx_core::{AppId, TokenKind};

    #[test]
    fn key_layouts() {
        let k = TokenKey::new("wx", AppId::new("wxapp"), TokenKind::AccessToken);
        assert_eq!(KeyLayout::Plain.value_key(&k), "wx:wxapp:access_token");
        assert_eq!(
            KeyLayout::Plain.lease_key(&k),
            "wx:wxapp:access_token:lease"
        );
        assert_eq!(
            KeyLayout::HashTagged.value_key(&k),
            "wx:{wxapp}:access_token"
        );
        assert_eq!(
            KeyLayout::HashTagged.lease_key(&k),
            "wx:{wxapp}:access_token:lease"
        );
    }

    #[test]
    fn stored_values_decode() {
        assert_eq!(
            decode_value("1700000000123:a:b"),
            Some((1_700_000_000_123, "a:b"))
        );
        assert_eq!(decode_value("1:"), Some((1, "")));
        assert_eq!(decode_value("no-expiry"), None);
        assert_eq!(decode_value("x:value"), None);
    }
}
