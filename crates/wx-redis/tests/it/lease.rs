//! The refresh lease of a process that dies is not lost: it expires after its TTL.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wx_core::{AppId, TokenKey, TokenKind, TokenStore};
use wx_redis::RedisTokenStore;
use wx_redis::test_util::RedisServer;

const URL_ENV: &str = "WX_REDIS_LEASE_HOLDER_URL";
const APP_ENV: &str = "WX_REDIS_LEASE_HOLDER_APPID";
const LEASE_TTL: Duration = Duration::from_secs(2);

/// Not a test of its own: the child process of
/// `lease_expires_when_its_holder_process_is_killed`, which runs it with `--ignored`. It takes
/// the lease, says so, and waits to be killed.
#[tokio::test]
#[ignore = "helper process, started by lease_expires_when_its_holder_process_is_killed"]
async fn lease_holder_process() {
    let url =
        std::env::var(URL_ENV).expect("run by lease_expires_when_its_holder_process_is_killed");
    let appid = std::env::var(APP_ENV).expect("appid");
    let store = RedisTokenStore::connect(&url).await.expect("connect");
    let key = TokenKey::new("wx", AppId::new(appid), TokenKind::AccessToken);
    assert!(
        store
            .try_acquire_lease(&key, "holder-process", LEASE_TTL)
            .await
            .expect("lease"),
        "the holder must get the free lease"
    );
    println!("LEASE-ACQUIRED");
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[tokio::test]
async fn lease_expires_when_its_holder_process_is_killed() {
    let server = RedisServer::from_env_or_start();
    let appid = format!("wxlease{:016x}", crate::support::rand_u64());
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "lease::lease_holder_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(URL_ENV, server.url())
        .env(APP_ENV, &appid)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the holder process");
    // Kills the holder even if an assertion below fails first.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().expect("stdout");
    let mut child = KillOnDrop(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("LEASE-ACQUIRED") {
                let _ = tx.send(());
                return;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the holder process did not take the lease");
    let acquired_seen = Instant::now();
    // The holder dies mid-refresh, without releasing.
    child.0.kill().expect("kill the holder");
    child.0.wait().expect("reap the holder");

    let store = RedisTokenStore::connect(&server.url())
        .await
        .expect("connect");
    let key = TokenKey::new("wx", AppId::new(appid), TokenKind::AccessToken);
    assert!(
        !store
            .try_acquire_lease(&key, "successor", LEASE_TTL)
            .await
            .expect("lease"),
        "the dead holder's lease is still held until its TTL"
    );
    store
        .release_lease(&key, "successor")
        .await
        .expect("release by a non-owner is a no-op");
    let granted_after = loop {
        if store
            .try_acquire_lease(&key, "successor", Duration::from_secs(30))
            .await
            .expect("lease")
        {
            break acquired_seen.elapsed();
        }
        assert!(
            acquired_seen.elapsed() < LEASE_TTL + Duration::from_secs(2),
            "the lease of the killed holder never expired"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    println!("lease of the killed holder taken over {granted_after:?} after it was acquired");
    assert!(
        granted_after >= LEASE_TTL - Duration::from_millis(300),
        "the lease was granted before its TTL passed ({granted_after:?})"
    );
    store
        .release_lease(&key, "successor")
        .await
        .expect("release");
}
