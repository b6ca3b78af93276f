//! Bench 1, overhead: `user_info` through `OfficialAccount<ReqwestTransport, MemoryTokenStore>`
//! against the sandbox server on loopback, versus the same GET (same URL, web token and
//! openid) with a bare `reqwest::Client` to the same server. Goal: ratio at most 1.05.
//!
//! Criterion times each variant; the ratio comes from interleaved rounds (wx, bare, bare, wx,
//! ...) in the same process, so drift of a shared machine hits both alike.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{Interleaved, Served, fmt_duration, report, verdict};
use criterion::Criterion;

const GOAL: f64 = 1.05;

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

    let (rounds, calls) = if full { (21, 400) } else { (3, 10) };
    let (vs_bare, vs_decoded) = rt.block_on(async {
        let vs_bare = Interleaved::measure(
            rounds,
            calls,
            async || {
                black_box(common::sdk_user_info(&client, &login).await);
            },
            async || {
                black_box(common::bare_get(&http, &url).await);
            },
        )
        .await;
        let vs_decoded = Interleaved::measure(
            rounds,
            calls,
            async || {
                black_box(common::sdk_user_info(&client, &login).await);
            },
            async || {
                black_box(common::bare_get_decoded(&http, &url).await);
            },
        )
        .await;
        (vs_bare, vs_decoded)
    });
    // Every measured call reached the server: nothing was served from elsewhere.
    assert!(served.sandbox.count(wx_sandbox::paths::USERINFO) > before);

    report(&format!(
        "overhead: user_info via wx {} vs bare reqwest GET {} per call: ratio {:.3} (goal <= {GOAL}: {}); \
         vs bare GET + serde_json decode {}: ratio {:.3} ({}) [median of {} interleaved rounds of {} calls]",
        fmt_duration(vs_bare.a),
        fmt_duration(vs_bare.b),
        vs_bare.ratio,
        verdict(vs_bare.ratio <= GOAL),
        fmt_duration(vs_decoded.b),
        vs_decoded.ratio,
        verdict(vs_decoded.ratio <= GOAL),
        vs_bare.rounds,
        vs_bare.calls_per_round,
    ));
    c.final_summary();
}
