//! Bench 4, throughput and memory.
//!
//! - Calls per second with 64 concurrent tasks, each calling `user_info` through
//!   `OfficialAccount<ReqwestTransport, MemoryTokenStore>` against the sandbox server on
//!   loopback, versus the same 64 tasks sending the same GET with a bare `reqwest::Client`.
//!   Criterion times one batch (64 tasks x 16 calls) and prints elements per second; the printed
//!   ratio comes from interleaved batches in the same run. A third line splits the cost: the
//!   same batches sending through `ReqwestTransport` and decoding with `decode_response`, without
//!   the client's layers (request building, retries, deadline), against the bare client.
//! - For instruction counts: `WX_BENCH_ONLY=wx|bare|transport WX_BENCH_BATCHES=N valgrind
//!   --tool=callgrind target/release/deps/throughput-*` runs N batches of 64 x 16 calls of one
//!   variant after the set-up and exits; two runs with different N give one call's
//!   instructions (valgrind runs the threads one at a time: contention does not show).
//! - Memory per in-flight call: a fresh child process (this binary, re-run as a probe) starts
//!   1,000 calls that the sandbox holds open with its `Delay` fault, and reads its own
//!   `VmRSS`/`VmHWM` from `/proc/self/status` while all of them are in flight, against its
//!   baseline before it started them (runtime, client and pooled connection already warm). The
//!   sandbox server runs in this (the parent) process, so its memory is not counted. The same
//!   probe with the bare reqwest client is the baseline.

mod common;

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Interleaved, Served, report, verdict};
use criterion::{Criterion, Throughput};
use tokio::task::JoinSet;
use wx_core::{OAuthToken, OpenId, RefreshToken, WebAccessToken};
use wx_sandbox::{Fault, paths};

const TASKS: usize = 64;
/// Interleaved batches per comparison in one measuring process: a batch's ratio moves by
/// several percent on a shared two-core machine, and the median's 95% interval (printed)
/// narrows with their square root.
const BATCHES: usize = 41;
/// Fresh measuring processes, one after the other: a process's ratio also depends on its
/// address-space layout, so the figure is the median of the processes' medians.
const PROCESSES: usize = 5;
const CALLS_PER_TASK: u32 = 16;

/// Environment of a memory probe (the child process).
const PROBE_ENV: &str = "WX_BENCH_MEMORY_PROBE";
const BASE_ENV: &str = "WX_BENCH_BASE";
const TOKEN_ENV: &str = "WX_BENCH_WEB_TOKEN";
const OPENID_ENV: &str = "WX_BENCH_OPENID";
const IN_FLIGHT_ENV: &str = "WX_BENCH_IN_FLIGHT";
/// Instruction-count mode (see the module docs).
const ONLY_ENV: &str = "WX_BENCH_ONLY";
const BATCHES_ENV: &str = "WX_BENCH_BATCHES";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Wx,
    Bare,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Wx => "wx",
            Variant::Bare => "bare_reqwest",
        }
    }

    fn from_name(name: &str) -> Variant {
        match name {
            "wx" => Variant::Wx,
            "bare_reqwest" => Variant::Bare,
            other => panic!("unknown probe variant {other:?}"),
        }
    }
}

/// What one variant needs to make calls; cheap to clone into tasks.
#[derive(Clone)]
struct Caller {
    variant: Variant,
    client: common::Client,
    http: reqwest::Client,
    login: Arc<OAuthToken>,
    url: Arc<str>,
}

impl Caller {
    fn new(variant: Variant, base: &str, login: OAuthToken) -> Caller {
        Caller {
            variant,
            client: common::client(base),
            http: common::bare_client(),
            url: common::userinfo_url(base, &login).into(),
            login: Arc::new(login),
        }
    }

    /// One call; returns the openid of the profile, so that both variants do the same work.
    async fn call(&self) -> OpenId {
        match self.variant {
            Variant::Wx => {
                common::sdk_user_info(&self.client, &self.login)
                    .await
                    .openid
            }
            Variant::Bare => common::bare_get_decoded(&self.http, &self.url).await.openid,
        }
    }

    /// Spawns one call as its own task. The task holds only its variant's future, so that the
    /// memory of an in-flight call is that variant's own (see `future_sizes`).
    fn spawn_call(&self, tasks: &mut JoinSet<OpenId>, rt: &tokio::runtime::Handle) {
        let caller = self.clone();
        match self.variant {
            Variant::Wx => tasks.spawn_on(
                async move {
                    common::sdk_user_info(&caller.client, &caller.login)
                        .await
                        .openid
                },
                rt,
            ),
            Variant::Bare => tasks.spawn_on(
                async move {
                    common::bare_get_decoded(&caller.http, &caller.url)
                        .await
                        .openid
                },
                rt,
            ),
        };
    }

    /// The size of one call's future (what a spawned task stores inline), in bytes.
    fn future_size(&self) -> usize {
        match self.variant {
            Variant::Wx => std::mem::size_of_val(&common::sdk_user_info(&self.client, &self.login)),
            Variant::Bare => {
                std::mem::size_of_val(&common::bare_get_decoded(&self.http, &self.url))
            }
        }
    }
}

/// Like [`batch`], with wx's transport and decoder but not its client: what the client's
/// layers add is the difference.
async fn transport_batch(transport: &wx_reqwest::ReqwestTransport, url: &Arc<str>, per_task: u32) {
    let mut tasks = JoinSet::new();
    for _ in 0..TASKS {
        let transport = transport.clone();
        let url = url.clone();
        tasks.spawn(async move {
            for _ in 0..per_task {
                black_box(common::transport_get_decoded(&transport, &url).await.openid);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a calling task");
    }
}

/// `TASKS` tasks, each making `per_task` calls one after another.
async fn batch(caller: &Caller, per_task: u32) {
    let mut tasks = JoinSet::new();
    for _ in 0..TASKS {
        let caller = caller.clone();
        tasks.spawn(async move {
            for _ in 0..per_task {
                black_box(caller.call().await);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a calling task");
    }
}

fn main() {
    if let Ok(variant) = std::env::var(PROBE_ENV) {
        memory_probe(Variant::from_name(&variant));
        return;
    }
    let full = common::full_run();
    let served = Served::start();
    // A server-style runtime for the callers; the sandbox server has its own thread.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the client runtime");
    let login = rt.block_on(async {
        let client = common::client(&served.base);
        common::web_login(&served.sandbox, &client).await
    });
    let wx = Caller::new(Variant::Wx, &served.base, login.clone());
    let bare = Caller::new(Variant::Bare, &served.base, login.clone());
    rt.block_on(async {
        assert_eq!(wx.call().await.as_str(), common::OPENID);
        assert_eq!(bare.call().await.as_str(), common::OPENID);
    });

    let transport = common::transport();
    let url: Arc<str> = common::userinfo_url(&served.base, &login).into();
    if let Ok(variant) = std::env::var(ONLY_ENV) {
        let batches: u32 = std::env::var(BATCHES_ENV).map_or(10, |n| n.parse().expect("a count"));
        rt.block_on(async {
            for _ in 0..batches {
                match variant.as_str() {
                    "wx" => batch(&wx, CALLS_PER_TASK).await,
                    "bare" => batch(&bare, CALLS_PER_TASK).await,
                    "transport" => transport_batch(&transport, &url, CALLS_PER_TASK).await,
                    other => panic!("{ONLY_ENV}={other:?}: wx, bare or transport"),
                }
            }
        });
        return;
    }

    if common::is_measuring_child() {
        // Interleaved batches: one "call" of the timer is one batch of TASKS x per_task calls.
        let (rounds, per_task) = if full { (BATCHES, 64) } else { (1, 2) };
        let before = served.sandbox.count(paths::USERINFO);
        let r = rt.block_on(Interleaved::measure(
            rounds,
            1,
            async || batch(&wx, per_task).await,
            async || batch(&bare, per_task).await,
        ));
        let split = rt.block_on(Interleaved::measure(
            rounds,
            1,
            async || transport_batch(&transport, &url, per_task).await,
            async || batch(&bare, per_task).await,
        ));
        let calls = TASKS as u64 * u64::from(per_task);
        assert_eq!(
            served.sandbox.count(paths::USERINFO) - before,
            4 * calls * rounds as u64,
            "every call reached the server"
        );
        // A batch is one timed "call": per call, the figures are per batch of `calls`.
        let per_batch = |i: Interleaved| Interleaved {
            calls_per_round: calls as u32,
            ..i
        };
        report(&format!(
            "{} {} {}",
            common::CHILD_LINE,
            per_batch(r).words(),
            per_batch(split).words()
        ));
        return;
    }

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(10)
        .configure_from_args();
    {
        let mut group = c.benchmark_group("throughput/user_info_64_tasks");
        group.throughput(Throughput::Elements(
            (TASKS as u64) * u64::from(CALLS_PER_TASK),
        ));
        for caller in [&wx, &bare] {
            group.bench_function(caller.variant.name(), |b| {
                b.to_async(&rt).iter(|| batch(caller, CALLS_PER_TASK));
            });
        }
        group.finish();
    }

    let processes: Vec<(Interleaved, Interleaved)> = (0..if full { PROCESSES } else { 1 })
        .map(|_| {
            let line = common::measure_in_child();
            let mut words = line.split_whitespace();
            let mut next =
                || Interleaved::from_words(&mut words).expect("a measuring process's line");
            (next(), next())
        })
        .collect();
    // Throughput is the inverse of the time per batch.
    let (wx_per_bare, each) =
        common::median_and_each(processes.iter().map(|(r, _)| 1.0 / r.ratio).collect());
    let (split_per_bare, split_each) = common::median_and_each(
        processes
            .iter()
            .map(|(_, split)| 1.0 / split.ratio)
            .collect(),
    );
    let (r, split) = &processes[0];
    let calls = r.calls_per_round as u64;
    let per_sec = |d: Duration| calls as f64 / d.as_secs_f64();
    report(&format!(
        "throughput: {TASKS} tasks, user_info via wx {:.0} calls/s vs bare reqwest (+serde_json) {:.0} calls/s \
         (first process): wx/bare {:.3} (goal >= 1.0: {}; processes: {each}; in the first, 95% interval \
         of the median {:.3}-{:.3}) [median of {} fresh processes, each the median of {} interleaved \
         batches of {} calls]",
        per_sec(r.a),
        per_sec(r.b),
        wx_per_bare,
        verdict(wx_per_bare >= 1.0),
        1.0 / r.median_ci.1,
        1.0 / r.median_ci.0,
        processes.len(),
        r.rounds,
        calls,
    ));
    report(&format!(
        "throughput: the same batches through ReqwestTransport + decode_response, without the client's \
         layers, {:.0} calls/s vs bare {:.0} calls/s (first process): {:.3} (processes: {split_each})",
        per_sec(split.a),
        per_sec(split.b),
        split_per_bare,
    ));

    // Memory: fresh probe processes, alternating variants; the median of the rounds.
    let (in_flight, hold, mem_rounds) = if full {
        (1_000, Duration::from_secs(4), 3)
    } else {
        (50, Duration::from_secs(2), 1)
    };
    let mut runs: Vec<Memory> = Vec::new();
    for round in 0..mem_rounds {
        let order = if round % 2 == 0 {
            [Variant::Wx, Variant::Bare]
        } else {
            [Variant::Bare, Variant::Wx]
        };
        for variant in order {
            runs.push(measure_memory(&served, &login, variant, in_flight, hold));
        }
    }
    let mut per_call = [0.0f64; 2];
    for (i, caller) in [&wx, &bare].into_iter().enumerate() {
        let mut mine: Vec<&Memory> = runs
            .iter()
            .filter(|m| m.variant == caller.variant)
            .collect();
        mine.sort_by_key(|m| m.rss_delta());
        let m = mine[mine.len() / 2];
        per_call[i] = m.rss_per_call();
        let all: Vec<String> = mine
            .iter()
            .map(|m| format!("{:.1}", m.rss_per_call()))
            .collect();
        report(&format!(
            "memory: {} with {} calls in flight: VmRSS +{} KiB over the warm baseline ({} KiB), \
             VmHWM +{} KiB: {:.1} KiB per in-flight call ({:.1} MiB per thousand) [median of {} probes: {} KiB]; \
             one call's future {} bytes",
            m.variant.name(),
            m.in_flight,
            m.rss_delta(),
            m.rss_before,
            m.hwm_delta(),
            m.rss_per_call(),
            m.rss_per_call() * 1000.0 / 1024.0,
            mine.len(),
            all.join(", "),
            caller.future_size(),
        ));
    }
    report(&format!(
        "memory: wx/bare per in-flight call {:.2} (wx adds {:.1} KiB per call over bare reqwest)",
        per_call[0] / per_call[1],
        per_call[0] - per_call[1],
    ));
    drop(served);
    c.final_summary();
}

/// What a probe saw, in KiB.
#[derive(Debug)]
struct Memory {
    variant: Variant,
    in_flight: u64,
    rss_before: u64,
    hwm_before: u64,
    rss_during: u64,
    hwm_during: u64,
}

impl Memory {
    fn rss_delta(&self) -> u64 {
        self.rss_during.saturating_sub(self.rss_before)
    }
    /// The peak above the baseline; 0 when the process had peaked higher before (start-up).
    fn hwm_delta(&self) -> u64 {
        if self.hwm_during > self.hwm_before {
            self.hwm_during.saturating_sub(self.rss_before)
        } else {
            0
        }
    }
    fn rss_per_call(&self) -> f64 {
        self.rss_delta() as f64 / self.in_flight as f64
    }
}

/// Runs one probe: a fresh process, so that neither variant inherits the other's heap.
fn measure_memory(
    served: &Served,
    login: &OAuthToken,
    variant: Variant,
    in_flight: u64,
    hold: Duration,
) -> Memory {
    let exe = std::env::current_exe().expect("the bench executable");
    let mut child = Command::new(exe)
        .env(PROBE_ENV, variant.name())
        .env(BASE_ENV, &served.base)
        .env(TOKEN_ENV, login.access_token.secret())
        .env(OPENID_ENV, login.openid.as_str())
        .env(IN_FLIGHT_ENV, in_flight.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the memory probe");
    let mut to_child = child.stdin.take().expect("probe stdin");
    let mut from_child = BufReader::new(child.stdout.take().expect("probe stdout"));
    let mut line = String::new();
    let mut read_line = |expect: &str| -> String {
        line.clear();
        from_child
            .read_line(&mut line)
            .expect("read from the probe");
        assert!(
            line.starts_with(expect),
            "the probe said {line:?}, expected {expect:?}"
        );
        line.trim_end().to_owned()
    };

    read_line("ready");
    // Hold the next `in_flight` profile requests open; the warm-up call already went through.
    let sandbox = &served.sandbox;
    sandbox
        .faults()
        .script_for(paths::USERINFO, (0..in_flight).map(|_| Fault::Delay(hold)));
    let received = sandbox.count(paths::USERINFO);
    writeln!(to_child, "go").expect("signal the probe");
    let started = Instant::now();
    while sandbox.count(paths::USERINFO) < received + in_flight {
        assert!(
            started.elapsed() < hold / 2,
            "only {} of {in_flight} calls reached the sandbox within {:?}: the hold is too short",
            sandbox.count(paths::USERINFO) - received,
            hold / 2
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    writeln!(to_child, "measure").expect("signal the probe");
    let result = read_line("result");
    let status = child.wait().expect("the probe exits");
    assert!(status.success(), "the memory probe failed: {status}");
    assert_eq!(sandbox.faults().pending(), 0, "every held call was served");

    let numbers: Vec<u64> = result
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse().expect("a number from the probe"))
        .collect();
    let [rss_before, hwm_before, rss_during, hwm_during, ok] = numbers[..] else {
        panic!("malformed probe result {result:?}");
    };
    assert_eq!(ok, in_flight, "every held call succeeded");
    Memory {
        variant,
        in_flight,
        rss_before,
        hwm_before,
        rss_during,
        hwm_during,
    }
}

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn rss_and_hwm() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The child: warm up, report "ready"; on "go" start the calls; on "measure" read the memory
/// figures while they are held open; then wait for all of them and print "result ...".
#[allow(clippy::print_stdout)] // The protocol with the parent is stdout lines.
fn memory_probe(variant: Variant) {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let base = var(BASE_ENV);
    // Only the web token and the openid are sent; the rest is not used by `user_info`.
    let login = OAuthToken {
        access_token: WebAccessToken::new(var(TOKEN_ENV)),
        expires_in: 7200,
        refresh_token: RefreshToken::new("unused"),
        openid: OpenId::from(var(OPENID_ENV)),
        scope: "snsapi_userinfo".to_owned(),
        is_snapshotuser: false,
        unionid: None,
    };
    let in_flight: u64 = var(IN_FLIGHT_ENV).parse().expect("a count");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the probe runtime");
    let caller = Caller::new(variant, &base, login);
    rt.block_on(async {
        // Warm: runtime threads, the client, one pooled connection, lazy statics.
        assert_eq!(caller.call().await.as_str(), common::OPENID);
    });
    let stdin = std::io::stdin();
    let mut commands = stdin.lock().lines();
    let mut next = |expect: &str| {
        let line = commands
            .next()
            .expect("the parent closed the pipe")
            .expect("read from the parent");
        assert_eq!(line, expect);
    };
    println!("ready");
    next("go");
    let (rss_before, hwm_before) = rss_and_hwm();
    let mut tasks = JoinSet::new();
    for _ in 0..in_flight {
        caller.spawn_call(&mut tasks, rt.handle());
    }
    next("measure");
    let (rss_during, hwm_during) = rss_and_hwm();
    let ok = rt.block_on(async {
        let mut ok = 0u64;
        while let Some(done) = tasks.join_next().await {
            assert_eq!(done.expect("a calling task").as_str(), common::OPENID);
            ok += 1;
        }
        ok
    });
    println!("result {rss_before} {hwm_before} {rss_during} {hwm_during} {ok}");
}
