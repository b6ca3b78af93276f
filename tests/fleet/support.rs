//! What the fleet tests share: the token endpoint, the client every member builds, and the
//! plumbing between the parent test and its member processes.

use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};
use wx_core::{AppId, AppSecret, TokenKey, TokenKind};
use wx_official::{Builder, OfficialAccount};
use wx_redis::RedisTokenStore;
use wx_reqwest::ReqwestTransport;

/// The AppSecret of every fleet test app; the endpoint answers only requests carrying it.
pub(crate) const SECRET: &str = "fleet-app-secret";
pub(crate) const TOKEN_PATH: &str = "/cgi-bin/token";

/// How long a member process may take to start and connect. Only a guard against a hang: eight
/// cold test binaries on a loaded two-core machine take a few seconds.
pub(crate) const STARTUP: Duration = Duration::from_secs(60);

const ENV_REDIS_URL: &str = "WX_FLEET_REDIS_URL";
const ENV_API_BASE: &str = "WX_FLEET_API_BASE";
const ENV_APPID: &str = "WX_FLEET_APPID";
const ENV_INDEX: &str = "WX_FLEET_INDEX";

/// The tests of this binary run one at a time: each starts up to eight processes, and on a
/// two-core machine running them side by side would only blur the timings they assert.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The OfficialAccount every member of the fleet runs: the production transport and store.
pub(crate) type Client = OfficialAccount<ReqwestTransport, RedisTokenStore>;

/// A fresh AppID, so that no two runs (or a shared `WX_TEST_REDIS_URL`) see each other's keys.
pub(crate) fn unique_appid(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("wxfleet{tag}{:x}{nanos:x}", std::process::id())
}

/// The store key of the base access token of `appid` (the client's default prefix `wx`).
pub(crate) fn token_key(appid: &str) -> TokenKey {
    TokenKey::new("wx", AppId::new(appid), TokenKind::AccessToken)
}

/// The token the endpoint issues on its `n`th request (1-based): each request gets a new one,
/// so two fetches can never pass for one.
pub(crate) fn issued_token(n: usize) -> String {
    format!("FLEET-TOKEN-{n}")
}

/// Milliseconds since the Unix epoch: the one clock every process of the machine shares.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// A client for `appid` with its own Redis connection and its own HTTP connection pool, as
/// each instance of a fleet has.
pub(crate) async fn client(
    redis_url: &str,
    api_base: &str,
    appid: &str,
    lease_ttl: Duration,
) -> Client {
    client_with(redis_url, api_base, appid, |b| b.lease_ttl(lease_ttl)).await
}

/// [`client`] with the options `options` sets.
pub(crate) async fn client_with(
    redis_url: &str,
    api_base: &str,
    appid: &str,
    options: impl FnOnce(Builder) -> Builder,
) -> Client {
    let store = RedisTokenStore::connect(redis_url)
        .await
        .expect("connect to the test redis-server");
    let transport = ReqwestTransport::new().expect("a reqwest client");
    options(OfficialAccount::builder(appid, AppSecret::new(SECRET)).api_base(api_base))
        .build(transport, store)
        .expect("valid client options")
}

/// `GET /cgi-bin/token` on loopback: answers the fleet app's requests with a new token each
/// time, after `delay(n)` for the `n`th request.
pub(crate) struct TokenEndpoint {
    /// Always `Some` until dropped (see the `Drop` impl).
    server: Option<MockServer>,
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        // wiremock verifies its mocks when a `MockServer` is dropped, with a blocking executor on
        // the dropping thread. On a Tokio worker that can wait forever for a lock that one of
        // the server's own tasks (scheduled on that same worker) holds: seen as a fleet binary
        // spinning after its last assertion. Drop it on a thread of its own; the runtime keeps
        // going, and a thread still waiting at exit does not keep the process alive.
        if let Some(server) = self.server.take() {
            std::thread::spawn(move || drop(server));
        }
    }
}

impl TokenEndpoint {
    fn server(&self) -> &MockServer {
        self.server.as_ref().expect("present until dropped")
    }
}

struct IssueTokens<D> {
    issued: Arc<AtomicUsize>,
    delay: D,
}

impl<D: Fn(usize) -> Duration + Send + Sync + 'static> Respond for IssueTokens<D> {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200)
            .set_body_raw(
                format!(
                    r#"{{"access_token":"{}","expires_in":7200}}"#,
                    issued_token(n)
                ),
                "application/json",
            )
            .set_delay((self.delay)(n))
    }
}

impl TokenEndpoint {
    pub(crate) async fn start(
        appid: &str,
        delay: impl Fn(usize) -> Duration + Send + Sync + 'static,
    ) -> Self {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(TOKEN_PATH))
            .and(query_param("grant_type", "client_credential"))
            .and(query_param("appid", appid))
            .and(query_param("secret", SECRET))
            .respond_with(IssueTokens {
                issued: Arc::new(AtomicUsize::new(0)),
                delay,
            })
            .mount(&server)
            .await;
        TokenEndpoint {
            server: Some(server),
        }
    }

    /// The base URL (`http://127.0.0.1:PORT`): the members' `api_base`.
    pub(crate) fn url(&self) -> String {
        self.server().uri()
    }

    /// Every request the server received, on any path, matched or not, in arrival order.
    pub(crate) async fn requests(&self) -> Vec<Request> {
        self.server()
            .received_requests()
            .await
            .expect("request recording is on")
    }

    /// Asserts that every request received was a token request of `appid` with its secret.
    pub(crate) async fn assert_all_token_requests(&self, appid: &str) {
        for r in self.requests().await {
            assert_eq!(r.method.as_str(), "GET");
            assert_eq!(r.url.path(), TOKEN_PATH);
            let query: Vec<(String, String)> = r.url.query_pairs().into_owned().collect();
            assert_eq!(
                query,
                [
                    ("grant_type", "client_credential"),
                    ("appid", appid),
                    ("secret", SECRET)
                ]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
            );
        }
    }
}

/// What a member process is told by the parent, through its environment.
pub(crate) struct ChildConfig {
    pub(crate) redis_url: String,
    pub(crate) api_base: String,
    pub(crate) appid: String,
    pub(crate) index: usize,
}

impl ChildConfig {
    /// The configuration of a member process; `None` (with a note) when the function was run
    /// directly, e.g. by `cargo test -- --include-ignored`, rather than by its parent test.
    pub(crate) fn from_env() -> Option<Self> {
        let var = |name| std::env::var(name).ok();
        let Some(redis_url) = var(ENV_REDIS_URL) else {
            eprintln!("not a test: a fleet member process, started by the test named in #[ignore]");
            return None;
        };
        Some(ChildConfig {
            redis_url,
            api_base: var(ENV_API_BASE).expect("WX_FLEET_API_BASE set by the parent test"),
            appid: var(ENV_APPID).expect("WX_FLEET_APPID set by the parent test"),
            index: var(ENV_INDEX)
                .and_then(|i| i.parse().ok())
                .expect("WX_FLEET_INDEX set by the parent test"),
        })
    }

    pub(crate) async fn client(&self, lease_ttl: Duration) -> Client {
        client(&self.redis_url, &self.api_base, &self.appid, lease_ttl).await
    }

    pub(crate) async fn client_with(&self, options: impl FnOnce(Builder) -> Builder) -> Client {
        client_with(&self.redis_url, &self.api_base, &self.appid, options).await
    }
}

/// A line for the parent (members print nothing else starting with `FLEET `).
pub(crate) fn say(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    writeln!(out, "FLEET {line}").expect("stdout");
    out.flush().expect("stdout");
}

/// The lines the parent writes to a member's stdin, in order; the channel closes at end of
/// input. (Read by a thread: the workspace's tokio has no `io-std` feature.)
pub(crate) fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for the parent's `go`, which it sends to every member at once.
pub(crate) async fn wait_for_go(lines: &mut mpsc::UnboundedReceiver<String>) {
    let line = lines.recv().await;
    assert_eq!(line.as_deref(), Some("go"), "the parent sends `go`");
}

/// A member process seen from the parent: this test binary running one `child` function.
pub(crate) struct Member {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Member {
    /// Starts the test binary again, running only `child_test` (an `#[ignore]`d function), with
    /// the fleet's Redis, token endpoint and AppID in its environment. The process is killed if
    /// the parent drops it (e.g. when an assertion fails first).
    pub(crate) fn spawn(
        child_test: &str,
        index: usize,
        redis_url: &str,
        api_base: &str,
        appid: &str,
    ) -> Member {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new(exe)
            .args([
                child_test,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV_REDIS_URL, redis_url)
            .env(ENV_API_BASE, api_base)
            .env(ENV_APPID, appid)
            .env(ENV_INDEX, index.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn a member process");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                // libtest writes `test <name> ... ` without a newline before the test runs,
                // so the first of our lines may come after it.
                if let Some((_, ours)) = line.split_once("FLEET ")
                    && tx.send(ours.to_owned()).is_err()
                {
                    return;
                }
            }
        });
        Member {
            name: format!("member {index} ({child_test})"),
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    /// The next line of the member, which must start with `word`; returns the rest.
    pub(crate) async fn expect(&mut self, word: &str, within: Duration) -> String {
        let line = match tokio::time::timeout(within, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!(
                "{} exited before saying {word}; its stderr is above",
                self.name
            ),
            Err(_) => panic!("{} did not say {word} within {within:?}", self.name),
        };
        match line.strip_prefix(word) {
            Some(rest) => rest.trim_start().to_owned(),
            None => panic!("{} said {line:?}, expected {word}", self.name),
        }
    }

    /// Writes one line to the member's stdin.
    pub(crate) async fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to a member");
        stdin.flush().await.expect("flush to a member");
    }

    /// Waits for the member to exit, which it must do successfully within `within`.
    pub(crate) async fn wait_success(&mut self, within: Duration) {
        drop(self.stdin.take());
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit within {within:?}", self.name))
            .expect("wait for a member");
        assert!(status.success(), "{} failed: {status}", self.name);
    }

    /// Kills the member with SIGKILL, like a crash or the OOM killer: no destructor runs, no
    /// lease is released.
    pub(crate) async fn kill(&mut self) -> ExitStatus {
        self.child.start_kill().expect("kill a member");
        self.child.wait().await.expect("reap a member")
    }
}

/// How many times Redis ran `command` since it started (`INFO commandstats`).
pub(crate) async fn redis_calls(redis_url: &str, command: &str) -> u64 {
    use wx_redis::redis;
    let client = redis::Client::open(redis_url).expect("a redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test redis-server");
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .expect("INFO commandstats");
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

/// Polls `done` every 5 ms until it holds; panics after `within`.
pub(crate) async fn wait_until<F, Fut>(what: &str, within: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
