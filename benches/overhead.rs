//! Bench 1, overhead: `user_info` through `OfficialAccount<ReqwestTransport, MemoryTokenStore>`
//! against the sandbox server on loopback, versus the same GET (same URL, web token and
//! openid) with a bare `reqwest::Client` to the same server. Goal: ratio at most 1.02.
//!
//! Criterion times each variant; the ratio comes from interleaved rounds (wx, bare, bare, wx,
//! ...) in the same process, so drift of a shared machine hits both alike, repeated in several
//! fresh processes (each with its own address-space layout) whose medians are reported.
//!
//! To show where wx's time goes without the network, `overhead/in_process` runs the same
//! `user_info` on a transport that answers at once with the body the sandbox sent (and, like
//! `ReqwestTransport`, declares its timeout, so that the call takes reqwest's path), beside
//! decoding that body with wx's `decode_response` and with a plain `serde_json::from_slice`.
//! Those figures are hot (the same call over and over); the cold counts (see [`POLLUTE_ENV`])
//! show what a call costs when its code and data have left the caches, as on the network.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{APPID, Interleaved, SECRET, Served, fmt_duration, report, verdict};
use criterion::Criterion;
use wx_core::reexports::{Bytes, async_trait};
use wx_core::{
    AppSecret, HttpRequest, HttpResponse, HttpTransport, MemoryTokenStore, TransportError,
    UserInfo, decode_response,
};
use wx_official::OfficialAccount;
use wx_reqwest::DEFAULT_TIMEOUT;

const GOAL: f64 = 1.02;

/// Interleaved rounds per comparison in one process. A round's ratio moves by several percent
/// on a shared two-core machine (the quartiles are printed); the 95% interval of a process's
/// median is printed too.
const ROUNDS: usize = 81;

/// Fresh processes, one after the other, each measuring every comparison. The ratio of one
/// process also depends on where its code, heap and stacks landed (ASLR): on one core, three
/// processes of one binary read 1.032, 1.048 and 1.064, each with an interval of +-0.2%, and
/// 1.041-1.048 with ASLR off. The figure is the median of the processes' medians, and every
/// process's own median is printed.
const PROCESSES: usize = 5;

/// For instruction counts (`valgrind --tool=callgrind`, where wall time is too noisy):
/// `WX_BENCH_ONLY=wx|bare` makes `WX_BENCH_CALLS` calls of that variant after the set-up and
/// exits, measuring nothing; two runs with different counts give one call's instructions,
/// client and server together.
const ONLY_ENV: &str = "WX_BENCH_ONLY";
const CALLS_ENV: &str = "WX_BENCH_CALLS";
/// For counts of the cache lines a call touches cold (`valgrind --tool=cachegrind
/// --cache-sim=yes --I1=4096,2,64 --D1=4096,2,64 --LL=4194304,16,64`): `WX_BENCH_ONLY=wx_cold`
/// or `transport_cold` makes `WX_BENCH_CALLS` calls on the canned transport (no network), each
/// after writing `WX_BENCH_POLLUTE_KIB` KiB (default 8 MiB, twice that simulated last level)
/// of unrelated memory, which evicts the call's code and data as a loopback round trip's
/// kernel, server and wake-ups do. Two counts give one call's misses: the last-level misses
/// of instructions (`ILmr`) are the code lines a call touches cold, of data (`DLmr`, `DLmw`,
/// less the pollution's) the data lines; `wx_cold` less `transport_cold` is the client's
/// layers. (The tiny first levels make every line a call touches count once.)
const POLLUTE_ENV: &str = "WX_BENCH_POLLUTE_KIB";

fn main() {
    let full = common::full_run();
    let served = Served::start();
    // The client side runs on this thread; the server has a thread of its own.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the client runtime");
    let client = common::client(&served.base);
    let login = rt.block_on(common::web_login(&served.sandbox, &client));
    let url = common::userinfo_url(&served.base, &login);
    let http = common::bare_client();

    // Both variants get the same profile from the same server.
    rt.block_on(async {
        let wx = common::sdk_user_info(&client, &login).await;
        let bare = common::bare_get_decoded(&http, &url).await;
        assert_eq!(wx.nickname, common::NICKNAME);
        assert_eq!(bare.openid.as_str(), wx.openid.as_str());
    });
    let before = served.sandbox.count(wx_sandbox::paths::USERINFO);

    // The same call with the network taken out: a transport that answers with the sandbox's
    // body at once.
    let body = rt.block_on(async {
        let response = http.get(&url).send().await.expect("the bare GET");
        response.bytes().await.expect("the body")
    });
    let canned = Canned(body.clone());
    let in_process = OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .build(canned.clone(), MemoryTokenStore::new())
        .expect("valid options");

    if let Ok(variant) = std::env::var(ONLY_ENV) {
        let calls: u32 = std::env::var(CALLS_ENV).map_or(1_000, |n| n.parse().expect("a count"));
        let pollute_kib: usize =
            std::env::var(POLLUTE_ENV).map_or(8 * 1024, |n| n.parse().expect("a size in KiB"));
        // Only the cold variants write it.
        let mut junk = if variant.ends_with("_cold") {
            vec![0u8; pollute_kib * 1024]
        } else {
            Vec::new()
        };
        rt.block_on(async {
            for call in 0..calls {
                match variant.as_str() {
                    "wx" => drop(black_box(common::sdk_user_info(&client, &login).await)),
                    "bare" => drop(black_box(common::bare_get_decoded(&http, &url).await)),
                    "wx_cold" => {
                        pollute(&mut junk, call);
                        let profile = in_process
                            .user_info(&login.access_token, &login.openid, common::LANG)
                            .await;
                        drop(black_box(profile.expect("user_info")));
                    }
                    "transport_cold" => {
                        pollute(&mut junk, call);
                        drop(black_box(
                            common::transport_get_decoded(&canned, &url).await,
                        ));
                    }
                    other => panic!("{ONLY_ENV}={other:?}: wx, bare, wx_cold or transport_cold"),
                }
            }
        });
        return;
    }

    if common::is_measuring_child() {
        let (rounds, calls) = if full { (ROUNDS, 200) } else { (3, 10) };
        let c = rt.block_on(Comparisons::measure(
            &client, &login, &http, &url, rounds, calls,
        ));
        assert!(served.sandbox.count(wx_sandbox::paths::USERINFO) > before);
        report(&c.line());
        return;
    }

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();
    {
        let mut group = c.benchmark_group("overhead/user_info");
        group.bench_function("wx", |b| {
            b.to_async(&rt)
                .iter(|| common::sdk_user_info(&client, &login));
        });
        group.bench_function("bare_reqwest", |b| {
            b.to_async(&rt).iter(|| common::bare_get(&http, &url));
        });
        group.bench_function("bare_reqwest+serde_json", |b| {
            b.to_async(&rt)
                .iter(|| common::bare_get_decoded(&http, &url));
        });
        group.finish();
    }
    {
        let mut group = c.benchmark_group("overhead/in_process");
        group.bench_function("wx_user_info_canned_transport", |b| {
            b.to_async(&rt).iter(|| async {
                in_process
                    .user_info(&login.access_token, &login.openid, common::LANG)
                    .await
                    .expect("user_info")
            });
        });
        group.bench_function("wx_decode_response", |b| {
            b.iter(|| decode_response::<UserInfo>("sns/userinfo", &body).expect("a profile"));
        });
        group.bench_function("serde_json_from_slice", |b| {
            b.iter(|| serde_json::from_slice::<UserInfo>(&body).expect("a profile"));
        });
        group.finish();
    }

    let (cpu_rounds, cpu_calls) = if full { (11, 20_000) } else { (3, 100) };
    let layers = rt.block_on(Interleaved::measure(
        cpu_rounds,
        cpu_calls,
        async || {
            black_box(
                in_process
                    .user_info(&login.access_token, &login.openid, common::LANG)
                    .await
                    .expect("user_info"),
            );
        },
        async || {
            black_box(serde_json::from_slice::<UserInfo>(&body).expect("a profile"));
        },
    ));
    // Every measured call reached the server: nothing was served from elsewhere.
    assert!(served.sandbox.count(wx_sandbox::paths::USERINFO) > before);
    let processes: Vec<Comparisons> = (0..if full { PROCESSES } else { 1 })
        .map(|_| Comparisons::in_fresh_process())
        .collect();
    let of = |pick: fn(&Comparisons) -> &Interleaved| {
        common::median_and_each(processes.iter().map(|c| pick(c).ratio).collect())
    };
    let (vs_bare_ratio, _) = of(|c| &c.vs_bare);
    let (vs_decoded_ratio, vs_decoded_each) = of(|c| &c.vs_decoded);
    let (same_ratio, same_each) = of(|c| &c.same);
    let (transport_ratio, transport_each) = of(|c| &c.transport);
    let first = &processes[0];
    let (vs_bare, vs_decoded, same) = (&first.vs_bare, &first.vs_decoded, &first.same);

    report(&format!(
        "overhead: user_info via wx {} vs bare reqwest GET {} per call: ratio {:.3}; vs bare GET + \
         serde_json decode {}: ratio {:.3} (goal <= {GOAL}: {}; processes: {}) [median of {} fresh \
         processes, each the median of {} interleaved rounds of {} calls]",
        fmt_duration(vs_bare.a),
        fmt_duration(vs_bare.b),
        vs_bare_ratio,
        fmt_duration(vs_decoded.b),
        vs_decoded_ratio,
        verdict(vs_decoded_ratio <= GOAL),
        vs_decoded_each,
        processes.len(),
        vs_decoded.rounds,
        vs_decoded.calls_per_round,
    ));
    report(&format!(
        "overhead: within the first process, wx vs bare GET + serde_json: 95% interval of the median \
         {:.3}-{:.3}, rounds' quartiles {:.3}-{:.3}",
        vs_decoded.median_ci.0,
        vs_decoded.median_ci.1,
        vs_decoded.quartiles.0,
        vs_decoded.quartiles.1,
    ));
    report(&format!(
        "overhead: the method's own noise, a bare client (GET + serde_json) against a second bare \
         client: ratio {:.3} (processes: {}; in the first, 95% interval of the median {:.3}-{:.3}, \
         rounds' quartiles {:.3}-{:.3})",
        same_ratio,
        same_each,
        same.median_ci.0,
        same.median_ci.1,
        same.quartiles.0,
        same.quartiles.1,
    ));
    report(&format!(
        "overhead: wx without the client's layers, ReqwestTransport + decode_response against the \
         bare GET + serde_json: ratio {transport_ratio:.3} (processes: {transport_each}); the \
         client's layers (endpoint, URL, execute loop) are the rest",
    ));
    report(&format!(
        "overhead: without the network, user_info via wx on a canned transport {} vs serde_json decode \
         of the same body {}: wx's own layers cost {} per call [median of {} interleaved rounds of {} calls]",
        fmt_duration(layers.a),
        fmt_duration(layers.b),
        fmt_duration(layers.a.saturating_sub(layers.b)),
        layers.rounds,
        layers.calls_per_round,
    ));
    c.final_summary();
}

/// A transport that answers every request at once with the body the sandbox sent, and, like
/// `ReqwestTransport`, promises to end a request within reqwest's default timeout: a call on it
/// takes the path a call through reqwest takes (no timer of wx's own), without the network.
#[derive(Clone)]
struct Canned(Bytes);

#[async_trait]
impl HttpTransport for Canned {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        drop(black_box(request));
        Ok(HttpResponse::json(self.0.clone()))
    }

    fn send_timeout(&self) -> Option<Duration> {
        Some(DEFAULT_TIMEOUT)
    }
}

/// Writes one byte in every cache line of `junk`: what a loopback round trip does to the
/// caches of the calling core, for the cold counts (see [`POLLUTE_ENV`]).
fn pollute(junk: &mut [u8], call: u32) {
    for byte in junk.iter_mut().step_by(64) {
        *byte = byte.wrapping_add(call as u8);
    }
    black_box(junk);
}

/// The interleaved comparisons of one process: wx against the bare GET, against the bare GET +
/// decode (the goal's), a bare client against a second one (A/A), and wx's transport and
/// decoder alone against the bare GET + decode.
struct Comparisons {
    vs_bare: Interleaved,
    vs_decoded: Interleaved,
    same: Interleaved,
    /// `ReqwestTransport` + `decode_response` alone against the bare GET + decode: what is
    /// left of wx without the client's layers.
    transport: Interleaved,
}

impl Comparisons {
    async fn measure(
        client: &common::Client,
        login: &wx_core::OAuthToken,
        http: &reqwest::Client,
        url: &str,
        rounds: usize,
        calls: u32,
    ) -> Comparisons {
        // A second bare client, for the A/A measurement: what the method reads when both sides
        // do the same work.
        let http2 = common::bare_client();
        let transport = common::transport();
        let wx = async || {
            black_box(common::sdk_user_info(client, login).await);
        };
        // The goal's baseline, in three of the comparisons.
        let bare_decoded = async || {
            black_box(common::bare_get_decoded(http, url).await);
        };
        let vs_bare = Interleaved::measure(rounds, calls, wx, async || {
            black_box(common::bare_get(http, url).await);
        })
        .await;
        let vs_decoded = Interleaved::measure(rounds, calls, wx, bare_decoded).await;
        let second_bare = async || {
            black_box(common::bare_get_decoded(&http2, url).await);
        };
        let same = Interleaved::measure(rounds, calls, second_bare, bare_decoded).await;
        let transport_alone = async || {
            black_box(common::transport_get_decoded(&transport, url).await);
        };
        let transport = Interleaved::measure(rounds, calls, transport_alone, bare_decoded).await;
        Comparisons {
            vs_bare,
            vs_decoded,
            same,
            transport,
        }
    }

    /// The comparisons measured by a fresh process.
    fn in_fresh_process() -> Comparisons {
        let line = common::measure_in_child();
        let mut words = line.split_whitespace();
        let mut next = || Interleaved::from_words(&mut words).expect("a measuring process's line");
        Comparisons {
            vs_bare: next(),
            vs_decoded: next(),
            same: next(),
            transport: next(),
        }
    }

    /// The line a measuring process prints.
    fn line(&self) -> String {
        format!(
            "{} {} {} {} {}",
            common::CHILD_LINE,
            self.vs_bare.words(),
            self.vs_decoded.words(),
            self.same.words(),
            self.transport.words()
        )
    }
}
