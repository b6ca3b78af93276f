//! Throwaway Redis servers for tests (feature `test-util`).
//!
//! [`RedisServer::start`] runs a private `redis-server` on a free loopback port, with no
//! persistence, in a temporary directory, and kills it when dropped. [`RedisCluster::start`]
//! does the same for a three-master Redis Cluster. The fleet tests of wx use them, and so can
//! yours:
//!
//! ```no_run
//! use wx_redis::test_util::RedisServer;
//!
//! # async fn demo() -> Result<(), wx_core::StoreError> {
//! let mut server = RedisServer::start();
//! let store = wx_redis::RedisTokenStore::connect(&server.url()).await?;
//! server.stop(); // Redis is down: store calls fail with a StoreError
//! server.restart(); // same port: the store reconnects by itself
//! # Ok(()) }
//! ```
//!
//! They need the `redis-server` binary (and `redis-cli` for a cluster) on `PATH`: on Debian or
//! Ubuntu, `apt-get install redis-server`. When it is missing they panic with that advice: a
//! test that needs Redis fails, it never skips silently. The calls block for the few hundred
//! milliseconds a server takes to start; that is fine inside `#[tokio::test]`.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use std::{fmt, fs, io, thread};

/// The environment variable naming an existing Redis for [`RedisServer::from_env_or_start`].
pub const REDIS_URL_ENV: &str = "WX_TEST_REDIS_URL";

const INSTALL_HINT: &str = "install it (Debian/Ubuntu: `apt-get install redis-server`, macOS: \
                            `brew install redis`); tests that only need a running Redis also \
                            accept WX_TEST_REDIS_URL=redis://host:port";
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Certificate files for a TLS-only server (PEM): its certificate, its key, and the CA that
/// signed it (clients are not asked for certificates).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The server certificate.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
    /// The CA certificate.
    pub ca: PathBuf,
}

/// Options of a [`RedisServer`].
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct RedisServerBuilder {
    password: Option<String>,
    tls: Option<TlsFiles>,
    args: Vec<String>,
}

impl RedisServerBuilder {
    /// Requires this password (`--requirepass`); [`RedisServer::url`] includes it.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Serves TLS only, with these files; [`RedisServer::url`] is then `rediss://`.
    pub fn tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some(files);
        self
    }

    /// Adds a `redis-server` command-line argument (e.g. `"--maxmemory"`, `"10mb"`).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Starts the server and waits until it answers.
    ///
    /// # Panics
    /// When `redis-server` is missing (the message says how to install it) or does not start
    /// within 10 s (the message includes its log).
    pub fn start(self) -> RedisServer {
        let dir = temp_dir("redis");
        let mut last_log = String::new();
        // A free port can be taken between probing and binding: try a few.
        for _ in 0..5 {
            let mut server = RedisServer {
                options: self.clone(),
                port: free_port(),
                dir: dir.clone(),
                child: None,
                external_url: None,
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(log) => {
                    server.dir = PathBuf::new(); // keep the directory for the next try
                    last_log = log;
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
        panic!("redis-server did not start; its log:\n{last_log}");
    }
}

/// A `redis-server` process owned by a test, or an external Redis named by
/// `WX_TEST_REDIS_URL`. Dropping it kills the process and removes its directory.
pub struct RedisServer {
    options: RedisServerBuilder,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    external_url: Option<String>,
}

impl RedisServer {
    /// Starts a private server with default options.
    ///
    /// # Panics
    /// As [`RedisServerBuilder::start`].
    #[must_use]
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// Options: password, TLS, extra arguments.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// The Redis named by `WX_TEST_REDIS_URL` when it is set (such a server cannot be stopped
    /// or restarted), else a private one from [`start`](Self::start).
    ///
    /// # Panics
    /// As [`RedisServerBuilder::start`].
    #[must_use]
    pub fn from_env_or_start() -> Self {
        match std::env::var(REDIS_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => RedisServer {
                options: RedisServerBuilder::default(),
                port: 0,
                dir: PathBuf::new(),
                child: None,
                external_url: Some(url.trim().to_owned()),
            },
            _ => Self::start(),
        }
    }

    /// The URL to connect to: `redis://[:password@]127.0.0.1:<port>/` (`rediss://` with TLS),
    /// or the external URL.
    #[must_use]
    pub fn url(&self) -> String {
        if let Some(url) = &self.external_url {
            return url.clone();
        }
        let scheme = if self.options.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let auth = match &self.options.password {
            Some(p) => format!(":{}@", percent_encode(p)),
            None => String::new(),
        };
        format!("{scheme}://{auth}127.0.0.1:{}/", self.port)
    }

    /// The loopback port (0 for an external server).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether this is the external Redis of `WX_TEST_REDIS_URL`.
    #[must_use]
    pub fn is_external(&self) -> bool {
        self.external_url.is_some()
    }

    /// The process id while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL: like a crash; nothing is persisted). Idempotent.
    ///
    /// # Panics
    /// On an external server.
    pub fn stop(&mut self) {
        assert!(
            self.external_url.is_none(),
            "cannot stop the Redis of {REDIS_URL_ENV}; use RedisServer::start() for this test"
        );
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (stopping it first if it runs) and waits
    /// until it answers. Its data is gone, as after a crash without persistence.
    ///
    /// # Panics
    /// On an external server, or when it does not come back within 10 s.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(log) = self.spawn() {
            panic!(
                "redis-server did not restart on port {}; its log:\n{log}",
                self.port
            );
        }
    }

    fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["--bind".into(), "127.0.0.1".into()];
        match &self.options.tls {
            Some(tls) => args.extend([
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                self.port.to_string(),
                "--tls-cert-file".into(),
                path_arg(&tls.cert),
                "--tls-key-file".into(),
                path_arg(&tls.key),
                "--tls-ca-cert-file".into(),
                path_arg(&tls.ca),
                "--tls-auth-clients".into(),
                "no".into(),
            ]),
            None => args.extend(["--port".into(), self.port.to_string()]),
        }
        args.extend([
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
            "--daemonize".into(),
            "no".into(),
            "--dir".into(),
            path_arg(&self.dir),
            "--logfile".into(),
            path_arg(&self.dir.join("redis.log")),
        ]);
        if let Some(p) = &self.options.password {
            args.extend(["--requirepass".into(), p.clone()]);
        }
        args.extend(self.options.args.iter().cloned());
        args
    }

    /// Spawns the process and waits for it to answer; on failure returns its log.
    fn spawn(&mut self) -> Result<(), String> {
        fs::create_dir_all(&self.dir).map_err(|e| format!("cannot create {:?}: {e}", self.dir))?;
        let mut child = match Command::new("redis-server")
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                panic!("redis-server is not installed (not found on PATH): {INSTALL_HINT}")
            }
            Err(e) => panic!("cannot run redis-server: {e}"),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited with {status}\n{}", self.log()));
            }
            if self.answers() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no answer within {START_TIMEOUT:?}\n{}",
                    self.log()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server accepts connections (and, without TLS, answers a PING other than
    /// `-LOADING`).
    fn answers(&self) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        if self.options.tls.is_some() {
            return true;
        }
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut line = String::new();
        match BufReader::new(stream).read_line(&mut line) {
            Ok(n) if n > 0 => !line.starts_with("-LOADING"),
            _ => false,
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("running", &self.child.is_some())
            .field("external", &self.external_url.is_some())
            .finish()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A three-master Redis Cluster of private `redis-server` processes on loopback, created with
/// `redis-cli --cluster create`. Dropping it kills them.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers, joins them into one cluster (slots spread over
    /// the three, no replicas) and waits until every node reports `cluster_state:ok`.
    ///
    /// # Panics
    /// When `redis-server` or `redis-cli` is missing (the message says how to install them),
    /// or the cluster does not form within 30 s.
    #[must_use]
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::builder()
                    .arg("--cluster-enabled")
                    .arg("yes")
                    .arg("--cluster-config-file")
                    .arg("nodes.conf")
                    .arg("--cluster-port")
                    .arg(free_port().to_string())
                    .arg("--cluster-node-timeout")
                    .arg("5000")
                    .start()
            })
            .collect();
        let mut create = vec!["--cluster".to_owned(), "create".to_owned()];
        create.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        create.extend([
            "--cluster-replicas".to_owned(),
            "0".to_owned(),
            "--cluster-yes".to_owned(),
        ]);
        let out = redis_cli(&create);
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_until_ok();
        cluster
    }

    fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &self.nodes {
            loop {
                let out = redis_cli(&[
                    "-p".to_owned(),
                    node.port.to_string(),
                    "cluster".to_owned(),
                    "info".to_owned(),
                ]);
                let info = String::from_utf8_lossy(&out.stdout);
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the cluster did not reach cluster_state:ok within 30 s; node {}:\n{info}",
                    node.port
                );
                thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// The URLs of the three nodes.
    #[must_use]
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes, e.g. to [`stop`](RedisServer::stop) one.
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }
}

impl fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCluster")
            .field("nodes", &self.nodes)
            .finish()
    }
}

fn redis_cli(args: &[String]) -> std::process::Output {
    match Command::new("redis-cli")
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            panic!("redis-cli is not installed (not found on PATH): {INSTALL_HINT}")
        }
        Err(e) => panic!("cannot run redis-cli: {e}"),
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free loopback port: {e}"))
}

fn temp_dir(what: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    std::env::temp_dir().join(format!(
        "wx-{what}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

fn path_arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_percent_encoded_in_urls() {
        assert_eq!(percent_encode("a b@c:d/é"), "a%20b%40c%3Ad%2F%C3%A9");
        assert_eq!(percent_encode("Plain-1.2_3~"), "Plain-1.2_3~");
    }
}
