//! Bench 2, cached token: `access_token()` when the store already holds a fresh token.
//!
//! - On a warm `MemoryTokenStore`. Goal: under 100 ns. `MemoryTokenStore::get` alone is
//!   measured beside it.
//! - On a warm `RedisTokenStore` (a private `redis-server` on loopback, started here), versus a
//!   bare redis `GET` of the same key through a `ConnectionManager` of its own. Goal: at most
//!   1 µs, and at least 50 times faster than the bare `GET` (ratio at most 0.02): a warm read is
//!   served by the client's local copy and reads no store.
//!
//! No request reaches the token endpoint during the measurements: the bench checks the
//! sandbox's count before and after.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{APPID, Interleaved, SECRET, fmt_duration, report, verdict};
use criterion::Criterion;
use wx_core::{AppSecret, MemoryTokenStore, TokenKind, TokenStore};
use wx_official::OfficialAccount;
use wx_redis::RedisTokenStore;
use wx_redis::redis::{self, aio::ConnectionManager};
use wx_redis::test_util::RedisServer;
use wx_sandbox::paths;

const MEMORY_GOAL: Duration = Duration::from_nanos(100);
const REDIS_GOAL: Duration = Duration::from_micros(1);
const REDIS_RATIO_GOAL: f64 = 0.02;

async fn bare_redis_get(conn: &mut ConnectionManager, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query_async(conn)
        .await
        .expect("the bare GET")
}

/// The `GET`s the server has run (`INFO commandstats`).
async fn redis_gets(conn: &mut ConnectionManager) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

fn main() {
    let full = common::full_run();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the runtime");
    // The in-process sandbox answers the one token fetch of each client; the calls measured
    // never reach it.
    let sandbox = common::sandbox();
    let builder = OfficialAccount::builder(APPID, AppSecret::new(SECRET));

    let memory_store = MemoryTokenStore::new();
    let memory = builder
        .clone()
        .build(sandbox.clone(), memory_store.clone())
        .expect("valid options");
    let key = memory.token_key(&TokenKind::AccessToken);

    let redis_server = RedisServer::start();
    let (redis_client, mut bare_conn, redis_key) = rt.block_on(async {
        let store = RedisTokenStore::connect(&redis_server.url())
            .await
            .expect("connect the store");
        let redis_key = store.redis_key(&key);
        let client = builder
            .build(sandbox.clone(), store)
            .expect("valid options");
        let conn = redis::Client::open(redis_server.url())
            .expect("a redis URL")
            .get_connection_manager()
            .await
            .expect("a connection manager");
        (client, conn, redis_key)
    });

    // Warm both stores and check that the measured paths return the cached token.
    rt.block_on(async {
        let m = memory.access_token().await.expect("first memory fetch");
        let r = redis_client
            .access_token()
            .await
            .expect("first redis fetch");
        assert_eq!(sandbox.count(paths::TOKEN), 2);
        assert_eq!(
            memory.access_token().await.expect("cached").secret(),
            m.secret()
        );
        let raw = bare_redis_get(&mut bare_conn, &redis_key)
            .await
            .expect("the store wrote the key the bare GET reads");
        assert!(raw.ends_with(r.secret()), "stored as <expires_ms>:<token>");
        let stored = memory_store.get(&key).await.expect("get").expect("warm");
        assert_eq!(stored.secret(), m.secret());
        // A warm read is the local copy's: it reaches no store.
        let gets = redis_gets(&mut bare_conn).await;
        for _ in 0..1_000 {
            black_box(redis_client.access_token().await.expect("cached"));
        }
        let warm_gets = redis_gets(&mut bare_conn).await - gets;
        assert_eq!(warm_gets, 0, "warm access_token() calls sent GETs to Redis");
        report("cached_token/redis: 1,000 warm access_token() calls sent 0 GETs to Redis (INFO commandstats)");
    });

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();
    {
        let mut group = c.benchmark_group("cached_token/memory");
        group.bench_function("access_token", |b| {
            b.to_async(&rt).iter(|| memory.access_token());
        });
        group.bench_function("MemoryTokenStore::get", |b| {
            b.to_async(&rt).iter(|| memory_store.get(&key));
        });
        group.finish();
    }
    {
        let mut group = c.benchmark_group("cached_token/redis");
        group.bench_function("access_token", |b| {
            b.to_async(&rt).iter(|| redis_client.access_token());
        });
        group.bench_function("bare_GET", |b| {
            b.to_async(&rt).iter(|| {
                let mut conn = bare_conn.clone();
                let key = redis_key.as_str();
                async move { bare_redis_get(&mut conn, key).await }
            });
        });
        group.finish();
    }

    // Our own figures: medians of interleaved rounds in this run.
    let (mem_rounds, mem_calls, redis_rounds, redis_calls) = if full {
        (11, 200_000, 21, 1_000)
    } else {
        (3, 1_000, 3, 10)
    };
    let (mem, red) = rt.block_on(async {
        let mem = Interleaved::measure(
            mem_rounds,
            mem_calls,
            async || {
                black_box(memory.access_token().await.expect("cached"));
            },
            async || {
                black_box(memory_store.get(&key).await.expect("get"));
            },
        )
        .await;
        let red = Interleaved::measure(
            redis_rounds,
            redis_calls,
            async || {
                black_box(redis_client.access_token().await.expect("cached"));
            },
            async || {
                black_box(bare_redis_get(&mut bare_conn, &redis_key).await);
            },
        )
        .await;
        (mem, red)
    });
    assert_eq!(
        sandbox.count(paths::TOKEN),
        2,
        "a measured call fetched a token: the store was not warm"
    );

    report(&format!(
        "cached_token/memory: access_token {} per call (goal < {}: {}); MemoryTokenStore::get alone {} \
         [median of {} interleaved rounds of {} calls]",
        fmt_duration(mem.a),
        fmt_duration(MEMORY_GOAL),
        verdict(mem.a < MEMORY_GOAL),
        fmt_duration(mem.b),
        mem.rounds,
        mem.calls_per_round,
    ));
    report(&format!(
        "cached_token/redis: access_token {} (goal <= {}: {}) vs bare GET {} per call: ratio {:.4}, \
         {:.0} times faster (goal ratio <= {REDIS_RATIO_GOAL}: {}) [median of {} interleaved rounds of {} calls]",
        fmt_duration(red.a),
        fmt_duration(REDIS_GOAL),
        verdict(red.a <= REDIS_GOAL),
        fmt_duration(red.b),
        red.ratio,
        1.0 / red.ratio,
        verdict(red.ratio <= REDIS_RATIO_GOAL),
        red.rounds,
        red.calls_per_round,
    ));
    c.final_summary();
}
