//! `wx-sandbox`: the simulated WeChat as a standalone server, for tests in any language.
//!
//! ```sh
//! cargo run -p wx-sandbox -- --port 8642 --app wx1234567890abcdef:the-app-secret \
//!     --user wx1234567890abcdef:o-alice:Alice
//! cargo run -p wx-sandbox -- --config sandbox.json
//! ```
//!
//! It prints `wx-sandbox listening on http://HOST:PORT` once it accepts requests, serves the
//! WeChat paths and the admin API (`/__sandbox/`, see the crate README) there, and stops
//! cleanly on SIGTERM or Ctrl-C.

#![allow(clippy::print_stdout)] // Printing where it listens is this program's job.

mod options;

use std::io::Write as _;
use std::process::ExitCode;

use wx_sandbox::Sandbox;

#[tokio::main]
async fn main() -> ExitCode {
    let options = match options::parse(std::env::args_os()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("wx-sandbox: {e}");
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wx-sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: options::Options) -> Result<(), String> {
    let appids: Vec<String> = options.apps.iter().map(|a| a.appid.clone()).collect();
    let mut builder = Sandbox::builder().token_daily_quota(options.token_daily_quota);
    if let Some(seed) = options.seed {
        builder = builder.seed(seed);
    }
    for app in options.apps {
        builder = builder.app_config(app);
    }
    let sandbox = builder
        .build()
        .map_err(|e| format!("invalid set-up: {e}"))?;
    let server = sandbox
        .serve_on(options.listen)
        .await
        .map_err(|e| format!("cannot listen on {} ({e})", options.listen))?;
    let base = server.base_url();
    println!("wx-sandbox listening on {base}");
    if appids.is_empty() {
        println!(
            "no apps yet: add one with --app APPID:SECRET, a --config file, or POST {base}/__sandbox/apps"
        );
    } else {
        println!("apps: {}", appids.join(", "));
    }
    println!("admin API: {base}/__sandbox/ (SIGTERM or Ctrl-C stops)");
    // Whoever reads our stdout through a pipe must see the address now, not at exit.
    let _ = std::io::stdout().flush();

    stopped()
        .await
        .map_err(|e| format!("cannot wait for signals ({e})"))?;
    server.shutdown().await;
    println!("wx-sandbox stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn stopped() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
