//! Set-up shared by the benches: the sandbox on loopback, a logged-in user, the bare reqwest
//! baseline, and an interleaved A/B timer so that ratios come from one run on a noisy machine.
#![allow(dead_code)] // Each bench uses a part of this module.

use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use wx_core::{AppSecret, Lang, MemoryTokenStore, OAuthToken, Scope, UserInfo, urlenc};
use wx_official::OfficialAccount;
use wx_reqwest::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, DEFAULT_USER_AGENT, ReqwestTransport};
use wx_sandbox::{Sandbox, SandboxServer, UserProfile, paths};

pub(crate) const APPID: &str = "wx1234567890abcdef";
pub(crate) const SECRET: &str = "bench-app-secret";
pub(crate) const OPENID: &str = "o-bench-user";
pub(crate) const NICKNAME: &str = "Bench";
pub(crate) const LANG: Lang = Lang::ZhCn;

/// The client measured in the overhead and throughput benches.
pub(crate) type Client = OfficialAccount<ReqwestTransport, MemoryTokenStore>;

/// Whether this is `cargo bench` (full measurements) rather than `cargo test --benches`, which
/// runs each bench binary once without `--bench`: then everything runs briefly, as a check.
pub(crate) fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The figures the benches print besides criterion's own lines.
#[allow(clippy::print_stdout)] // A bench with `harness = false` reports on stdout.
pub(crate) fn report(line: &str) {
    println!("{line}");
}

/// A sandbox with one app and one user.
pub(crate) fn sandbox() -> Sandbox {
    Sandbox::builder()
        .app(APPID, SECRET)
        .user(APPID, UserProfile::new(OPENID).nickname(NICKNAME))
        .seed(8)
        .build()
        .expect("a valid sandbox set-up")
}

/// The sandbox's HTTP server on `127.0.0.1`, on a runtime of its own (its own worker thread),
/// so that the client under measurement does not run the server's tasks on its thread.
pub(crate) struct Served {
    pub(crate) sandbox: Sandbox,
    pub(crate) base: String,
    server: Option<SandboxServer>,
    rt: Runtime,
}

impl Served {
    pub(crate) fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sandbox-server")
            .enable_all()
            .build()
            .expect("the server runtime");
        let sandbox = sandbox();
        let server = rt
            .block_on(sandbox.serve())
            .expect("bind the sandbox on 127.0.0.1");
        Served {
            base: server.base_url(),
            sandbox,
            server: Some(server),
            rt,
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.shutdown());
        }
    }
}

/// The reqwest transport with its defaults, as a user builds it.
pub(crate) fn transport() -> ReqwestTransport {
    ReqwestTransport::new().expect("a reqwest transport")
}

/// The baseline: a bare `reqwest::Client` with the settings `ReqwestTransport` gives its own
/// (timeouts, no redirects, the `User-Agent` header), so that both send the same bytes and a
/// ratio measures wx's layers and not a configuration choice. (Until issue 17's second round
/// the baseline sent no `User-Agent`: that one header cost about 1.2k instructions per call,
/// client and server together, under 1%.)
pub(crate) fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
        .timeout(DEFAULT_TIMEOUT)
        .user_agent(DEFAULT_USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a reqwest client")
}

/// The client under measurement, pointed at the sandbox server.
pub(crate) fn client(base: &str) -> Client {
    OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .api_base(base)
        .open_base(base)
        .build(transport(), MemoryTokenStore::new())
        .expect("valid client options")
}

/// Logs the user in through the sandbox (code, then exchange) and returns the web token.
pub(crate) async fn web_login(sandbox: &Sandbox, client: &Client) -> OAuthToken {
    let code = sandbox
        .issue_code(APPID, OPENID, Scope::UserInfo)
        .expect("a registered user");
    client
        .exchange_code(&code)
        .await
        .expect("the code exchange")
}

/// The exact URL `user_info` sends: the same parameters in the same order.
pub(crate) fn userinfo_url(base: &str, login: &OAuthToken) -> String {
    urlenc::url_with_query(
        &format!("{base}{}", paths::USERINFO),
        &[
            ("access_token", login.access_token.secret()),
            ("openid", login.openid.as_str()),
            ("lang", LANG.as_str()),
        ],
    )
}

/// One call through wx.
pub(crate) async fn sdk_user_info(client: &Client, login: &OAuthToken) -> UserInfo {
    client
        .user_info(&login.access_token, &login.openid, LANG)
        .await
        .expect("user_info through wx")
}

/// One bare GET of the same URL: status checked and the whole body read; returns its length.
pub(crate) async fn bare_get(http: &reqwest::Client, url: &str) -> usize {
    let response = http.get(url).send().await.expect("the bare GET");
    assert!(response.status().is_success(), "{}", response.status());
    response
        .bytes()
        .await
        .expect("the body of the bare GET")
        .len()
}

/// The bare GET plus the one thing any caller then does: decode the profile with serde_json.
pub(crate) async fn bare_get_decoded(http: &reqwest::Client, url: &str) -> UserInfo {
    let response = http.get(url).send().await.expect("the bare GET");
    assert!(response.status().is_success(), "{}", response.status());
    let body = response.bytes().await.expect("the body of the bare GET");
    serde_json::from_slice(&body).expect("a profile")
}

/// The same GET through a transport alone (`ReqwestTransport`, or the overhead bench's canned
/// one), decoded by wx's `decode_response`: wx without the client's layers (endpoint, URL,
/// execute loop).
pub(crate) async fn transport_get_decoded<T: wx_core::HttpTransport>(
    transport: &T,
    url: &str,
) -> UserInfo {
    let response = transport
        .send(wx_core::HttpRequest::get(url.to_owned()))
        .await
        .expect("sent through the transport");
    wx_core::decode_response("sns/userinfo", &response.body).expect("a profile")
}

/// Per-call times of two variants measured in alternating rounds (A then B, then B then A...),
/// so that drift of a shared machine hits both alike.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Interleaved {
    /// Median over rounds of A's mean time per call.
    pub(crate) a: Duration,
    /// Median over rounds of B's mean time per call.
    pub(crate) b: Duration,
    /// Median over rounds of the per-round ratio A / B.
    pub(crate) ratio: f64,
    /// The first and third quartiles of the per-round ratios: how much a round's ratio moves.
    pub(crate) quartiles: (f64, f64),
    /// A 95% confidence interval of the median ratio, from the order statistics of the rounds
    /// (distribution-free): how far the median itself may be from the true one.
    pub(crate) median_ci: (f64, f64),
    pub(crate) rounds: usize,
    pub(crate) calls_per_round: u32,
}

impl Interleaved {
    /// `rounds` rounds of `calls` sequential calls of each variant.
    pub(crate) async fn measure<FA, FB>(
        rounds: usize,
        calls: u32,
        mut a: FA,
        mut b: FB,
    ) -> Interleaved
    where
        FA: AsyncFnMut(),
        FB: AsyncFnMut(),
    {
        let mut ta = Vec::with_capacity(rounds);
        let mut tb = Vec::with_capacity(rounds);
        for round in 0..rounds {
            if round % 2 == 0 {
                ta.push(time(calls, &mut a).await);
                tb.push(time(calls, &mut b).await);
            } else {
                tb.push(time(calls, &mut b).await);
                ta.push(time(calls, &mut a).await);
            }
        }
        Interleaved::from_samples(&ta, &tb, calls)
    }

    /// From per-round times of A and B (each the time of `calls` calls).
    pub(crate) fn from_samples(ta: &[Duration], tb: &[Duration], calls: u32) -> Interleaved {
        let ratios: Vec<f64> = ta
            .iter()
            .zip(tb)
            .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
            .collect();
        let mut sorted = ratios.clone();
        sorted.sort_unstable_by(f64::total_cmp);
        let quartile = |q: usize| {
            sorted
                .get(sorted.len() * q / 4)
                .copied()
                .unwrap_or(f64::NAN)
        };
        // The median's rank is binomial(n, 1/2): n/2 +- 1.96 sqrt(n)/2 bounds it at 95%.
        let half_width = (1.96 * (sorted.len() as f64).sqrt() / 2.0).ceil() as usize;
        let middle = sorted.len() / 2;
        let at = |i: usize| sorted.get(i).copied().unwrap_or(f64::NAN);
        Interleaved {
            a: median_duration(ta) / calls,
            b: median_duration(tb) / calls,
            quartiles: (quartile(1), quartile(3)),
            median_ci: (
                at(middle.saturating_sub(half_width)),
                at((middle + half_width).min(sorted.len().saturating_sub(1))),
            ),
            ratio: median(ratios),
            rounds: ta.len(),
            calls_per_round: calls,
        }
    }
}

impl Interleaved {
    /// The figures as nine words, which [`from_words`](Self::from_words) reads back: how a
    /// measuring child process reports to the bench that started it.
    pub(crate) fn words(&self) -> String {
        format!(
            "{} {} {} {} {} {} {} {} {}",
            self.a.as_nanos(),
            self.b.as_nanos(),
            self.ratio,
            self.quartiles.0,
            self.quartiles.1,
            self.median_ci.0,
            self.median_ci.1,
            self.rounds,
            self.calls_per_round
        )
    }

    /// Reads nine words written by [`words`](Self::words).
    pub(crate) fn from_words<'a>(words: &mut impl Iterator<Item = &'a str>) -> Option<Self> {
        let mut n = || words.next()?.parse::<f64>().ok();
        let (a, b, ratio) = (n()?, n()?, n()?);
        let quartiles = (n()?, n()?);
        let median_ci = (n()?, n()?);
        Some(Interleaved {
            a: Duration::from_nanos(a as u64),
            b: Duration::from_nanos(b as u64),
            ratio,
            quartiles,
            median_ci,
            rounds: n()? as usize,
            calls_per_round: n()? as u32,
        })
    }
}

/// Set in a measuring child process: it measures its comparisons, prints one line starting
/// with [`CHILD_LINE`], and exits.
pub(crate) const CHILD_ENV: &str = "WX_BENCH_PROCESS";
/// The start of a measuring child process's report line.
pub(crate) const CHILD_LINE: &str = "wx-bench-process";

/// Whether this process is a measuring child (see [`measure_in_child`]).
pub(crate) fn is_measuring_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Runs this bench again as a fresh process (its own address-space layout: where code, heap
/// and stacks land moves a process's ratio by a percent or two) with [`CHILD_ENV`] set and the
/// same arguments (so `--bench` or not), and returns the words of its [`CHILD_LINE`].
pub(crate) fn measure_in_child() -> String {
    let exe = std::env::current_exe().expect("the bench executable");
    let out = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CHILD_ENV, "1")
        .output()
        .expect("start a measuring process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the measuring process failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(CHILD_LINE))
        .unwrap_or_else(|| panic!("no {CHILD_LINE} line in: {stdout}"))
        .to_owned()
}

/// The median of `ratios` and the list of them, as `1.021, 1.034`.
pub(crate) fn median_and_each(ratios: Vec<f64>) -> (f64, String) {
    let each: Vec<String> = ratios.iter().map(|r| format!("{r:.3}")).collect();
    (median(ratios), each.join(", "))
}

async fn time<F: AsyncFnMut()>(calls: u32, f: &mut F) -> Duration {
    let started = Instant::now();
    for _ in 0..calls {
        f().await;
    }
    started.elapsed()
}

pub(crate) fn median_duration(samples: &[Duration]) -> Duration {
    let mut v = samples.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `1.234 µs` style.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let ns = d.as_secs_f64() * 1e9;
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

/// "met" / "MISSED" for a goal.
pub(crate) fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}
