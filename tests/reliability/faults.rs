//! 10,000 mixed calls from 64 tasks through `ReqwestTransport` to the sandbox's HTTP server while
//! it injects faults from a seeded mix: `-1` busy, 5xx, delays past the transport timeout,
//! dropped connections (before and in the middle of the body), HTML, empty, cut, padded past
//! the body cap and non-UTF-8 bodies.
//!
//! Every call's result is checked against what its own requests met (recorded by the
//! [`Observer`]): the right typed error with the right retry hint, retries exactly where the
//! policy allows them, no call past its deadline. The token refresh is checked per token
//! lifetime: one successful fetch each, at most `1 + max_retries` requests per refresh. The
//! observer's totals are checked against the sandbox's count of injected faults, and every
//! secret the sandbox handed out is searched for in every error and the TRACE logs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use wx_core::{
    AppSecret, DecodeReason, Error, JsapiTicketResponse, Lang, ManualClock, MemoryTokenStore,
    OpenId, RefreshToken, RetryHint, Scope, Ticket, TokenKind, TokenStore, TransportErrorKind,
    WebAccessToken,
};
use wx_official::jssdk::jsapi_signature;
use wx_official::{Endpoint, OfficialAccount, RetryPolicy};
use wx_reqwest::ReqwestTransport;
use wx_sandbox::{Fault, FaultMix, Sandbox, UserProfile, paths};

use crate::common::{APPID, Rng, SECRET, capture_logs, error_texts, log_bytes, report};
use crate::observer::{Attempt, CALL, Observer, Seen};

const SEED: u64 = 20_240_917;
const CALLS: usize = 10_000;
const TASKS: usize = 64;
/// The run is cut into this many token lifetimes: between phases the clock moves past the
/// base token's 7,200 s, so each phase needs exactly one new token.
const PHASES: u32 = 5;
const USERS: usize = 16;
const TRANSPORT_TIMEOUT: Duration = Duration::from_millis(500);
/// Longer than the transport timeout: a delayed answer always times out.
const DELAY: Duration = Duration::from_millis(1000);
/// Two timeouts and their backoff fit, the third request does not.
const DEADLINE: Duration = Duration::from_millis(1200);
/// How far past its deadline a call may return on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(250);
const BODY_CAP: usize = 64 * 1024;
const MAX_RETRIES: usize = 2;
const TOKEN_ENDPOINT: &str = "cgi-bin/token";
const TICKET_ENDPOINT: &str = "cgi-bin/ticket/getticket";
/// The page the JS-SDK configurations are for.
const PAGE: &str = "https://app.example.com/pay?order=42#top";

type Client = OfficialAccount<Observer<ReqwestTransport>, MemoryTokenStore>;

fn fault_mix(seed: u64) -> FaultMix {
    FaultMix::new(seed)
        .with(Fault::Busy, 0.04)
        .with(Fault::Status(502), 0.015)
        .with(Fault::Status(503), 0.01)
        .with(Fault::Delay(DELAY), 0.015)
        .with(Fault::Drop, 0.015)
        .with(Fault::DropMidBody, 0.01)
        .with(Fault::Html, 0.02)
        .with(Fault::Empty, 0.015)
        .with(Fault::Truncated, 0.015)
        .with(Fault::Oversized(4 * BODY_CAP), 0.01)
        .with(Fault::Oversized(8 * 1024), 0.01)
        .with(Fault::NonUtf8, 0.015)
}

/// Every fault kind the mix holds, by `Fault::name`.
const FAULT_KINDS: [&str; 10] = [
    "busy",
    "status",
    "delay",
    "drop",
    "drop_mid_body",
    "html",
    "empty",
    "truncated",
    "oversized",
    "non_utf8",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Op {
    /// `call_with_token(GET /cgi-bin/get_api_domain_ip)`.
    DomainIp,
    /// `call_with_token(GET /cgi-bin/ticket/getticket?type=jsapi)`.
    Ticket,
    /// `js_sdk_config(url)`: the managed JS-SDK ticket (fetched by its own refresh, with the
    /// base token), then the signature.
    JsSdkConfig,
    ExchangeCode,
    RefreshOAuthToken,
    UserInfo,
    CheckOAuthToken,
}

impl Op {
    fn pick(rng: &mut Rng) -> Op {
        match rng.below(100) {
            0..20 => Op::DomainIp,
            20..30 => Op::Ticket,
            30..40 => Op::JsSdkConfig,
            40..55 => Op::ExchangeCode,
            55..70 => Op::RefreshOAuthToken,
            70..85 => Op::UserInfo,
            _ => Op::CheckOAuthToken,
        }
    }

    fn path(self) -> &'static str {
        match self {
            Op::DomainIp => paths::API_DOMAIN_IP,
            Op::Ticket | Op::JsSdkConfig => paths::TICKET,
            Op::ExchangeCode => paths::CODE_EXCHANGE,
            Op::RefreshOAuthToken => paths::REFRESH,
            Op::UserInfo => paths::USERINFO,
            Op::CheckOAuthToken => paths::SNS_AUTH,
        }
    }

    /// The endpoint name errors carry.
    fn endpoint(self) -> &'static str {
        &self.path()[1..]
    }

    /// The code exchange is not repeated after a timeout, a broken connection or a 5xx: the
    /// first try may have used the single-use code.
    fn idempotent(self) -> bool {
        self != Op::ExchangeCode
    }

    fn uses_base_token(self) -> bool {
        matches!(self, Op::DomainIp | Op::Ticket | Op::JsSdkConfig)
    }
}

/// A user's web login, renewed at each phase (web tokens live 7,200 s too).
struct Login {
    openid: OpenId,
    nickname: String,
    web_token: WebAccessToken,
    refresh_token: RefreshToken,
}

struct Ctx {
    client: Client,
    sandbox: Sandbox,
    logins: Vec<Login>,
    next_call: Arc<AtomicU64>,
}

struct CallRecord {
    id: u64,
    phase: u32,
    op: Op,
    elapsed: Duration,
    result: Result<(), Error>,
}

#[derive(Deserialize)]
struct IpList {
    ip_list: Vec<String>,
}

/// One call; a success is checked for the content the sandbox gives.
async fn run_op(ctx: &Ctx, op: Op, login: &Login) -> Result<(), Error> {
    let client = &ctx.client;
    match op {
        Op::DomainIp => {
            let r: IpList = client
                .call_with_token(Endpoint::get(paths::API_DOMAIN_IP))
                .await?;
            assert!(!r.ip_list.is_empty(), "an empty ip_list decoded as success");
        }
        Op::Ticket => {
            let r: JsapiTicketResponse = client
                .call_with_token(Endpoint::get(paths::TICKET).query("type", "jsapi"))
                .await?;
            assert_eq!(r.ticket.secret().len(), 86, "the sandbox's ticket");
            assert_eq!(r.expires_in, 7200);
        }
        Op::JsSdkConfig => {
            let config = client.js_sdk_config(PAGE).await?;
            assert_eq!(config.url, PAGE.split('#').next().unwrap_or_default());
            assert_eq!(config.app_id.as_str(), APPID);
            // Signed with the ticket the client keeps (the sandbox's, unchanged in a lifetime).
            let stored = client
                .store()
                .get(&client.token_key(&TokenKind::JsapiTicket))
                .await
                .expect("memory store")
                .expect("the ticket is cached");
            let ticket = Ticket::new(stored.secret());
            assert_eq!(ticket.secret().len(), 86, "the sandbox's ticket");
            assert_eq!(
                config.signature,
                jsapi_signature(&ticket, &config.nonce_str, config.timestamp, &config.url)
            );
        }
        Op::ExchangeCode => {
            let code = ctx
                .sandbox
                .issue_code(APPID, login.openid.as_str(), Scope::UserInfo)
                .expect("registered user");
            let t = client.exchange_code(&code).await?;
            assert_eq!(t.openid, login.openid);
            assert_eq!(t.scope, "snsapi_userinfo");
        }
        Op::RefreshOAuthToken => {
            let t = client.refresh_oauth_token(&login.refresh_token).await?;
            assert_eq!(t.openid, login.openid);
            assert!(
                t.refresh_token.ct_eq(&login.refresh_token),
                "the refresh token is returned unchanged"
            );
            assert!(
                t.access_token.ct_eq(&login.web_token),
                "a live web token is extended, not replaced"
            );
        }
        Op::UserInfo => {
            let u = client
                .user_info(&login.web_token, &login.openid, Lang::ZhCn)
                .await?;
            assert_eq!(u.openid, login.openid);
            assert_eq!(u.nickname, login.nickname);
        }
        Op::CheckOAuthToken => {
            let valid = client
                .check_oauth_token(&login.web_token, &login.openid)
                .await?;
            assert!(valid, "a live web token was reported invalid");
        }
    }
    Ok(())
}

async fn timed_call(ctx: &Ctx, phase: u32, op: Op, login: &Login) -> CallRecord {
    let id = ctx.next_call.fetch_add(1, Ordering::SeqCst);
    let started = Instant::now();
    let result = CALL.scope(id, run_op(ctx, op, login)).await;
    CallRecord {
        id,
        phase,
        op,
        elapsed: started.elapsed(),
        result,
    }
}

async fn run_task(ctx: Arc<Ctx>, phase: u32, task: usize, calls: usize) -> Vec<CallRecord> {
    let mut rng = Rng::new(SEED ^ (u64::from(phase) << 32) ^ task as u64);
    let mut records = Vec::with_capacity(calls);
    for _ in 0..calls {
        let op = Op::pick(&mut rng);
        let login = &ctx.logins[rng.below(USERS)];
        records.push(timed_call(&ctx, phase, op, login).await);
    }
    records
}

/// Logs every user in again, with no faults: each phase starts with live web tokens.
async fn log_in_all(client: &Client, sandbox: &Sandbox) -> Vec<Login> {
    let mut logins = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let openid = format!("o-reliability-user-{i:02}");
        let code = sandbox
            .issue_code(APPID, &openid, Scope::UserInfo)
            .expect("registered user");
        let t = client
            .exchange_code(&code)
            .await
            .expect("log-in without faults");
        logins.push(Login {
            openid: t.openid,
            nickname: format!("user {i}"),
            web_token: t.access_token,
            refresh_token: t.refresh_token,
        });
    }
    logins
}

/// The typed error a request's failure must have become, with its retry hint; `Err` says why
/// `e` is not it.
fn check_error(seen: Seen, endpoint: &str, e: &Error) -> Result<(), String> {
    let hint = match seen {
        Seen::Busy | Seen::Status(_) | Seen::Timeout | Seen::Broken | Seen::Cancelled => {
            RetryHint::Backoff
        }
        Seen::Html | Seen::Empty | Seen::Truncated | Seen::NonUtf8 | Seen::TooLarge => {
            RetryHint::Never
        }
        _ => return Err(format!("{seen:?} is no failure, but the call gave {e:?}")),
    };
    let transport = |kind| matches!(e, Error::Transport { endpoint: ep, source } if *ep == endpoint && source.kind() == kind);
    let decode = |ok: fn(&DecodeReason) -> bool| matches!(e, Error::Decode(d) if d.endpoint == endpoint && ok(&d.reason));
    let shape = match seen {
        Seen::Busy => e
            .api()
            .is_some_and(|a| a.code.0 == -1 && a.endpoint == endpoint),
        Seen::Status(code) => {
            matches!(e, Error::HttpStatus { endpoint: ep, status } if *ep == endpoint && status.as_u16() == code)
        }
        Seen::Timeout => transport(TransportErrorKind::Timeout),
        Seen::Broken => transport(TransportErrorKind::Io),
        Seen::TooLarge => transport(TransportErrorKind::BodyTooLarge),
        Seen::Html => decode(|r| matches!(r, DecodeReason::Syntax { .. })),
        Seen::Empty => decode(|r| matches!(r, DecodeReason::Empty)),
        Seen::Truncated => decode(|r| matches!(r, DecodeReason::Eof | DecodeReason::Syntax { .. })),
        Seen::NonUtf8 => decode(|r| matches!(r, DecodeReason::Data)),
        // A refresh cut by its own deadline (the request it had open was dropped).
        Seen::Cancelled => {
            matches!(e, Error::Deadline { operation, .. } if *operation == endpoint)
        }
        _ => false,
    };
    if !shape {
        return Err(format!("{seen:?} on {endpoint} became {e:?}"));
    }
    if e.retry_hint() != hint {
        return Err(format!(
            "{seen:?} on {endpoint}: hint {:?}, expected {hint:?}",
            e.retry_hint()
        ));
    }
    Ok(())
}

/// Whether an answer the request met is a success for `endpoint`. The non-UTF-8 body is
/// `{"errcode":0,"errmsg":"<bad bytes> ok"}`: decoded leniently it is `sns/auth`'s "valid".
fn ends_ok(seen: Seen, endpoint: &str) -> bool {
    match seen {
        Seen::Pass | Seen::Padded => true,
        Seen::NonUtf8 => endpoint == "sns/auth",
        _ => false,
    }
}

/// Whether the client retries after meeting `seen` (when retries are left).
fn retried(seen: Seen, endpoint: &str, idempotent: bool) -> bool {
    if ends_ok(seen, endpoint) {
        return false;
    }
    match seen {
        Seen::Busy => true,
        Seen::Status(_) | Seen::Timeout | Seen::Broken => idempotent,
        _ => false,
    }
}

fn label(e: &Error) -> String {
    match e {
        Error::Api(a) => format!("api {}", a.code.0),
        Error::Transport { source, .. } => format!("transport {:?}", source.kind()),
        Error::HttpStatus { status, .. } => format!("http_status {}", status.as_u16()),
        Error::Decode(d) => match d.reason {
            DecodeReason::Empty => "decode empty".into(),
            DecodeReason::Syntax { .. } => "decode syntax".into(),
            DecodeReason::Eof => "decode eof".into(),
            _ => "decode data".into(),
        },
        Error::Deadline { .. } => "deadline".into(),
        Error::Store(s) => format!("store {}", s.op()),
        Error::InvalidInput(i) => format!("invalid_input {}", i.argument),
        Error::Refused(r) => format!("refused {r}"),
        _ => "other".into(),
    }
}

/// One refresh of the base token, rebuilt from the token requests of a phase.
struct Flight {
    attempts: Vec<Seen>,
    /// The answer that ended a failed refresh.
    failure: Option<Seen>,
}

/// Splits a phase's token requests into refreshes. Refreshes of one kind never overlap in one
/// process (single flight), so each request continues the current refresh exactly when the
/// policy retries the previous answer.
fn flights(token_attempts: &[Seen]) -> Result<Vec<Flight>, String> {
    let mut flights = Vec::new();
    let mut current = Vec::new();
    for &seen in token_attempts {
        if matches!(seen, Seen::Unexpected(_)) {
            return Err(format!("a token request met {seen:?}"));
        }
        current.push(seen);
        if seen == Seen::Cancelled {
            // The refresh's own deadline dropped its open request.
            flights.push(Flight {
                attempts: std::mem::take(&mut current),
                failure: Some(seen),
            });
        } else if ends_ok(seen, TOKEN_ENDPOINT) {
            flights.push(Flight {
                attempts: std::mem::take(&mut current),
                failure: None,
            });
        } else if !(retried(seen, TOKEN_ENDPOINT, true) && current.len() <= MAX_RETRIES) {
            flights.push(Flight {
                attempts: std::mem::take(&mut current),
                failure: Some(seen),
            });
        }
    }
    if !current.is_empty() {
        return Err(format!("a refresh stopped after {current:?}"));
    }
    Ok(flights)
}

/// What went wrong in the refreshes of one phase (requests sent by refresh tasks, not calls).
struct PhaseFailures {
    /// The answers that ended failed base-token refreshes.
    token: Vec<Seen>,
    /// Every failed answer to a JS-SDK ticket refresh.
    ticket: Vec<Seen>,
}

impl PhaseFailures {
    /// Whether `e`, which a call got without sending a request, is the error of a refresh.
    fn explain(&self, e: &Error, with_ticket: bool) -> Result<(), String> {
        let token = self
            .token
            .iter()
            .any(|s| check_error(*s, TOKEN_ENDPOINT, e).is_ok());
        let ticket = with_ticket
            && self
                .ticket
                .iter()
                .any(|s| check_error(*s, TICKET_ENDPOINT, e).is_ok());
        if token || ticket {
            Ok(())
        } else {
            Err(format!(
                "{e:?} is not the error of a failed refresh (token {:?}, ticket {:?})",
                self.token, self.ticket
            ))
        }
    }
}

/// `js_sdk_config`: its requests are sent by the ticket's refresh task, never by the call, and
/// its errors are those of the ticket or base-token refresh, or its own deadline.
fn check_js_sdk(
    r: &CallRecord,
    attempts: &[&Attempt],
    failures: &PhaseFailures,
) -> Result<(), String> {
    if r.elapsed > DEADLINE + SLACK {
        return Err(format!("took {:?}, deadline {DEADLINE:?}", r.elapsed));
    }
    if !attempts.is_empty() {
        return Err("js_sdk_config sent requests from the caller's task".into());
    }
    match &r.result {
        Ok(()) => Ok(()),
        Err(Error::Deadline {
            operation: "jsapi_ticket",
            ..
        }) => {
            if r.elapsed + Duration::from_millis(5) < DEADLINE {
                return Err(format!("deadline error after {:?}", r.elapsed));
            }
            Ok(())
        }
        // The ticket fetch calls `call_with_token`, which has a deadline of its own: it may end
        // while waiting for the base token, without a request of its own to show for it.
        Err(Error::Deadline {
            operation: TICKET_ENDPOINT,
            ..
        }) => Ok(()),
        Err(e) => failures.explain(e, true),
    }
}

/// Checks one call against the requests it sent, and the refresh failures of its phase.
fn check_call(
    r: &CallRecord,
    attempts: &[&Attempt],
    failures: &PhaseFailures,
) -> Result<(), String> {
    if r.op == Op::JsSdkConfig {
        return check_js_sdk(r, attempts, failures);
    }
    let endpoint = r.op.endpoint();
    let idempotent = r.op.idempotent();
    if r.elapsed > DEADLINE + SLACK {
        return Err(format!("took {:?}, deadline {DEADLINE:?}", r.elapsed));
    }
    let seen: Vec<Seen> = attempts.iter().map(|a| a.seen).collect();
    if let Some(a) = attempts.iter().find(|a| a.path != r.op.path()) {
        return Err(format!("sent a request to {}", a.path));
    }
    let cancelled = seen.last() == Some(&Seen::Cancelled);
    let completed = if cancelled {
        &seen[..seen.len() - 1]
    } else {
        &seen[..]
    };
    if completed
        .iter()
        .any(|s| matches!(s, Seen::Cancelled | Seen::Unexpected(_)))
    {
        return Err(format!("requests met {seen:?}"));
    }
    if seen.len() > 1 + MAX_RETRIES {
        return Err(format!("{} requests: {seen:?}", seen.len()));
    }
    // Each request but the last was followed by another: the policy must retry its answer.
    let continued = if cancelled {
        completed
    } else {
        &completed[..completed.len().saturating_sub(1)]
    };
    if let Some(s) = continued
        .iter()
        .find(|s| !retried(**s, endpoint, idempotent))
    {
        return Err(format!("retried after {s:?}: {seen:?}"));
    }
    match &r.result {
        Ok(()) => match completed.last() {
            Some(last) if !cancelled && ends_ok(*last, endpoint) => Ok(()),
            _ => Err(format!("succeeded after {seen:?}")),
        },
        Err(Error::Deadline { operation, .. }) if *operation == endpoint => {
            if r.elapsed + Duration::from_millis(5) < DEADLINE {
                return Err(format!("deadline error after {:?}", r.elapsed));
            }
            // Cut short: every request so far must have been one the policy retries.
            let more_to_come = completed
                .last()
                .is_none_or(|s| retried(*s, endpoint, idempotent));
            if !cancelled && (completed.len() > MAX_RETRIES || !more_to_come) {
                return Err(format!("deadline after the call had ended: {seen:?}"));
            }
            Ok(())
        }
        Err(e) => {
            if cancelled {
                return Err(format!("{e:?} while a request was still open: {seen:?}"));
            }
            match completed.last() {
                None => {
                    // Failed before sending: only the base-token refresh can do that, and the
                    // caller gets that refresh's error.
                    if !r.op.uses_base_token() {
                        return Err(format!("{e:?} without a request"));
                    }
                    failures.explain(e, false)
                }
                Some(last) => {
                    check_error(*last, endpoint, e)?;
                    if retried(*last, endpoint, idempotent) && completed.len() <= MAX_RETRIES {
                        return Err(format!("gave up with retries left: {seen:?}"));
                    }
                    Ok(())
                }
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_calls_through_injected_faults() {
    capture_logs();
    let wall = Instant::now();
    let clock = ManualClock::starting_now();
    let mut builder = Sandbox::builder()
        .app(APPID, SECRET)
        .clock(clock.clone())
        .seed(SEED);
    for i in 0..USERS {
        builder = builder.user(
            APPID,
            UserProfile::new(format!("o-reliability-user-{i:02}")).nickname(format!("user {i}")),
        );
    }
    let sandbox = builder.build().expect("valid sandbox");
    let server = sandbox.serve().await.expect("bind the sandbox");
    let transport = ReqwestTransport::builder()
        .timeout(TRANSPORT_TIMEOUT)
        .connect_timeout(Duration::from_millis(300))
        .max_body_size(BODY_CAP)
        .build()
        .expect("reqwest client");
    let observer = Observer::new(transport);
    let client: Client = OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .api_base(&server.base_url())
        .open_base(&server.base_url())
        .clock(Arc::new(clock.clone()))
        .retry_policy(
            RetryPolicy::default()
                .with_max_retries(u32::try_from(MAX_RETRIES).expect("small"))
                .with_backoff(Duration::from_millis(40), Duration::from_millis(200)),
        )
        .request_deadline(DEADLINE)
        .build(
            observer.clone(),
            MemoryTokenStore::with_clock(Arc::new(clock.clone())),
        )
        .expect("valid client");

    let next_call = Arc::new(AtomicU64::new(0));
    let mut records: Vec<CallRecord> = Vec::with_capacity(CALLS + 8);
    let per_phase = CALLS / PHASES as usize;
    let mut phase_token_requests = Vec::new();
    for phase in 0..PHASES {
        // A new token lifetime: the previous phase's base and web tokens have expired.
        if phase > 0 {
            clock.advance(Duration::from_secs(7201));
        }
        observer.set_phase(phase);
        sandbox.faults().clear();
        let logins = log_in_all(&client, &sandbox).await;
        let tokens_before = sandbox.count(paths::TOKEN);
        sandbox
            .faults()
            .mix(fault_mix(SEED.wrapping_add(u64::from(phase))));
        let ctx = Arc::new(Ctx {
            client: client.clone(),
            sandbox: sandbox.clone(),
            logins,
            next_call: next_call.clone(),
        });
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..TASKS {
            let calls = per_phase / TASKS + usize::from(task < per_phase % TASKS);
            tasks.spawn(run_task(ctx.clone(), phase, task, calls));
        }
        while let Some(done) = tasks.join_next().await {
            records.extend(done.expect("no call panicked"));
        }
        phase_token_requests.push(sandbox.count(paths::TOKEN) - tokens_before);
    }

    // Deterministic cases at the end, one call at a time, with scripted faults.
    sandbox.faults().clear();
    observer.set_phase(PHASES);
    let ctx = Ctx {
        client: client.clone(),
        sandbox: sandbox.clone(),
        logins: log_in_all(&client, &sandbox).await,
        next_call: next_call.clone(),
    };
    let login = &ctx.logins[0];
    // Three delays: two timeouts and retries, then the deadline cuts the third request.
    sandbox
        .faults()
        .script_for(paths::USERINFO, vec![Fault::Delay(DELAY); 3]);
    let r = timed_call(&ctx, PHASES, Op::UserInfo, login).await;
    assert!(
        matches!(r.result, Err(Error::Deadline { operation: "sns/userinfo", deadline }) if deadline == DEADLINE),
        "{:?}",
        r.result
    );
    assert!(
        r.elapsed >= DEADLINE && r.elapsed <= DEADLINE + SLACK,
        "{:?}",
        r.elapsed
    );
    records.push(r);
    // A code exchange that timed out is not repeated (the code may be used).
    let exchanges = sandbox.count(paths::CODE_EXCHANGE);
    sandbox
        .faults()
        .script_for(paths::CODE_EXCHANGE, [Fault::Delay(DELAY)]);
    let r = timed_call(&ctx, PHASES, Op::ExchangeCode, login).await;
    assert!(
        r.result
            .as_ref()
            .is_err_and(|e| e.transport().is_some_and(|t| t.is_timeout())),
        "{:?}",
        r.result
    );
    assert_eq!(sandbox.count(paths::CODE_EXCHANGE), exchanges + 1);
    records.push(r);
    // ...but WeChat's -1 never consumed it: retried until it goes through.
    sandbox
        .faults()
        .script_for(paths::CODE_EXCHANGE, [Fault::Busy, Fault::Busy]);
    let r = timed_call(&ctx, PHASES, Op::ExchangeCode, login).await;
    assert!(r.result.is_ok(), "{:?}", r.result);
    assert_eq!(sandbox.count(paths::CODE_EXCHANGE), exchanges + 4);
    records.push(r);
    // A GET retried through a 502 and a dropped connection, then a cut body: a decode error,
    // which retrying cannot fix.
    sandbox.faults().script_for(
        paths::API_DOMAIN_IP,
        [Fault::Status(502), Fault::Drop, Fault::Truncated],
    );
    let r = timed_call(&ctx, PHASES, Op::DomainIp, login).await;
    assert!(
        matches!(&r.result, Err(Error::Decode(d)) if d.endpoint == "cgi-bin/get_api_domain_ip"),
        "{:?}",
        r.result
    );
    records.push(r);
    assert_eq!(
        sandbox.faults().pending(),
        0,
        "every scripted fault was met"
    );
    let late_token_requests =
        sandbox.count(paths::TOKEN) - phase_token_requests.iter().sum::<u64>();

    // ---- Each call against the requests it sent. -------------------------------------------
    let attempts = observer.attempts();
    let mut by_call: HashMap<u64, Vec<&Attempt>> = HashMap::new();
    for a in &attempts {
        if let Some(id) = a.call {
            by_call.entry(id).or_default().push(a);
        }
    }
    let mut phase_flights: Vec<Vec<Flight>> = Vec::new();
    for phase in 0..=PHASES {
        let token_attempts: Vec<Seen> = attempts
            .iter()
            .filter(|a| a.call.is_none() && a.path == paths::TOKEN && a.phase == phase)
            .map(|a| a.seen)
            .collect();
        phase_flights
            .push(flights(&token_attempts).unwrap_or_else(|e| panic!("phase {phase}: {e}")));
    }
    let mut violations = Vec::new();
    for r in &records {
        let failures = PhaseFailures {
            token: phase_flights[r.phase as usize]
                .iter()
                .filter_map(|f| f.failure)
                .collect(),
            ticket: attempts
                .iter()
                .filter(|a| a.call.is_none() && a.path == paths::TICKET && a.phase == r.phase)
                .map(|a| a.seen)
                .filter(|s| !ends_ok(*s, TICKET_ENDPOINT))
                .collect(),
        };
        let mine = by_call.get(&r.id).map_or(&[][..], Vec::as_slice);
        if let Err(why) = check_call(r, mine, &failures) {
            violations.push(format!(
                "call {} {:?} (phase {}): {why}",
                r.id, r.op, r.phase
            ));
        }
    }
    assert!(
        violations.is_empty(),
        "{} calls broke the model, e.g.:\n{}",
        violations.len(),
        violations[..violations.len().min(20)].join("\n")
    );

    // ---- Token requests: one successful fetch per token lifetime, bounded retries. ---------
    let mut failed_flights = 0;
    let mut successful_fetches = 0;
    for (phase, flights) in phase_flights.iter().enumerate() {
        let ok = flights.iter().filter(|f| f.failure.is_none()).count();
        let failed = flights.len() - ok;
        let expected_ok = usize::from(phase < PHASES as usize);
        assert_eq!(ok, expected_ok, "phase {phase}: successful token fetches");
        for f in flights {
            assert!(f.attempts.len() <= 1 + MAX_RETRIES, "{:?}", f.attempts);
        }
        // Each failed refresh was started by a caller who then got its error (or its own
        // deadline first): more failed refreshes than such callers means refreshes nobody asked for.
        let token_stage_errors = records
            .iter()
            .filter(|r| r.phase as usize == phase && r.op.uses_base_token())
            .filter(|r| match &r.result {
                Err(Error::Deadline { .. }) => true,
                Err(_) => by_call.get(&r.id).is_none_or(Vec::is_empty),
                Ok(()) => false,
            })
            .count();
        assert!(
            failed <= token_stage_errors,
            "phase {phase}: {failed} failed refreshes, {token_stage_errors} callers saw one"
        );
        failed_flights += failed;
        successful_fetches += ok;
    }
    let token_requests = sandbox.count(paths::TOKEN);
    let sent = attempts.iter().filter(|a| a.path == paths::TOKEN).count() as u64;
    let answered = attempts
        .iter()
        .filter(|a| a.path == paths::TOKEN && a.seen != Seen::Cancelled)
        .count() as u64;
    assert!(
        (answered..=sent).contains(&token_requests),
        "the sandbox got {token_requests} token requests, the refreshes sent {sent}"
    );
    assert_eq!(
        late_token_requests, 0,
        "no token request in the scripted cases"
    );
    assert!(
        token_requests <= ((successful_fetches + failed_flights) * (1 + MAX_RETRIES)) as u64,
        "{token_requests} token requests for {successful_fetches} lifetimes and {failed_flights} failed refreshes"
    );

    // ---- The JS-SDK ticket: fetched once per lifetime by its refresh. -----------------------
    let mut ticket_fetches = Vec::new();
    for phase in 0..=PHASES {
        let fetched = attempts
            .iter()
            .filter(|a| a.call.is_none() && a.path == paths::TICKET && a.phase == phase)
            .filter(|a| ends_ok(a.seen, TICKET_ENDPOINT))
            .count();
        let used = records
            .iter()
            .any(|r| r.phase == phase && r.op == Op::JsSdkConfig && r.result.is_ok());
        assert!(
            fetched <= 1 && (fetched == 1 || !used),
            "phase {phase}: {fetched} tickets fetched"
        );
        ticket_fetches.push(fetched);
    }
    let ticket_requests = attempts
        .iter()
        .filter(|a| a.call.is_none() && a.path == paths::TICKET)
        .count();

    // ---- The observer's view against the sandbox's count of injected faults. ---------------
    let injected = sandbox.faults().injected_by_kind();
    let mut expected_seen: BTreeMap<&str, u64> = BTreeMap::new();
    for (name, n) in &injected {
        let name = if *name == "drop_mid_body" {
            "drop"
        } else {
            name
        };
        *expected_seen.entry(name).or_default() += n;
    }
    let mut observed: BTreeMap<&str, u64> = BTreeMap::new();
    let mut seen_counts: BTreeMap<String, u64> = BTreeMap::new();
    for a in &attempts {
        *seen_counts.entry(format!("{:?}", a.seen)).or_default() += 1;
        if let Some(name) = a.seen.fault_name() {
            *observed.entry(name).or_default() += 1;
        }
        assert!(!matches!(a.seen, Seen::Unexpected(_)), "{a:?}");
    }
    let cancelled = attempts
        .iter()
        .filter(|a| a.seen == Seen::Cancelled)
        .count() as u64;
    let mut unseen = 0;
    for (name, n) in &expected_seen {
        let o = observed.get(name).copied().unwrap_or(0);
        assert!(o <= *n, "{name}: observed {o} > injected {n}");
        unseen += n - o;
    }
    for name in observed.keys() {
        assert!(
            expected_seen.contains_key(name),
            "observed {name} never injected"
        );
    }
    assert!(
        unseen <= cancelled,
        "{unseen} injected faults never reached the client, only {cancelled} requests were cut short"
    );
    for kind in FAULT_KINDS {
        assert!(
            injected.get(kind).is_some_and(|n| *n > 0),
            "no {kind} fault injected"
        );
    }
    let started = observer.started();
    let completed = started - cancelled;
    let received = sandbox.total_count();
    assert!(
        (completed..=started).contains(&received),
        "the sandbox received {received} requests; the client started {started}, {completed} answered"
    );

    // ---- No secret in any error or log line. -----------------------------------------------
    let mut secrets = observer.take_secrets();
    secrets.add("AppSecret", SECRET);
    if let Some(t) = sandbox.current_token(APPID) {
        secrets.add("access token", t.secret());
    }
    assert!(
        secrets.len() > 2 * USERS * PHASES as usize,
        "secrets were collected"
    );
    for r in &records {
        if let Err(e) = &r.result {
            secrets.assert_absent("an error", error_texts(e).as_bytes());
        }
    }
    drop(server);
    let logs = log_bytes();
    let text = String::from_utf8_lossy(&logs);
    for expected in [
        "sandbox request",
        "wx.call",
        "transient failure; retrying",
        "wx http request failed",
    ] {
        assert!(
            text.contains(expected),
            "the captured logs lack {expected:?}"
        );
    }
    for query in ["secret=", "access_token=", "refresh_token="] {
        assert!(
            !text.contains(query),
            "a query string ({query}) reached the logs"
        );
    }
    secrets.assert_absent("the TRACE logs", &logs);

    // ---- Figures. ----------------------------------------------------------------------------
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_op: BTreeMap<Op, (u64, u64)> = BTreeMap::new();
    for r in &records {
        let entry = per_op.entry(r.op).or_default();
        match &r.result {
            Ok(()) => entry.0 += 1,
            Err(e) => {
                entry.1 += 1;
                *errors
                    .entry(format!("{} ({:?})", label(e), e.retry_hint()))
                    .or_default() += 1;
            }
        }
    }
    let mut elapsed: Vec<Duration> = records.iter().map(|r| r.elapsed).collect();
    elapsed.sort();
    let ok = records.iter().filter(|r| r.result.is_ok()).count();
    let mut out = String::new();
    out += &format!(
        "calls: {} ({} ok, {} failed) from {TASKS} tasks in {PHASES} token lifetimes + 4 scripted; wall {:.1?}\n",
        records.len(),
        ok,
        records.len() - ok,
        wall.elapsed()
    );
    out += &format!("calls by op (ok, failed): {per_op:?}\n");
    out += &format!(
        "requests: {} received by the sandbox, {} started by the client, {cancelled} cut by deadlines\n",
        received, started
    );
    out += &format!(
        "faults injected: {} total, by kind {injected:?}\n",
        sandbox.faults().injected()
    );
    out += &format!("met by the client (per request): {seen_counts:?}\n");
    out += &format!("errors by kind (retry hint): {errors:?}\n");
    out += &format!(
        "token requests: {token_requests} for {successful_fetches} lifetimes ({phase_token_requests:?} per lifetime), {failed_flights} failed refreshes, bound {}\n",
        (successful_fetches + failed_flights) * (1 + MAX_RETRIES)
    );
    out += &format!(
        "JS-SDK ticket: {ticket_requests} requests by its refresh, {ticket_fetches:?} fetched per lifetime\n"
    );
    out += &format!(
        "call time: p50 {:?}, p99 {:?}, max {:?} (deadline {DEADLINE:?}, transport timeout {TRANSPORT_TIMEOUT:?})\n",
        percentile(&elapsed, 50),
        percentile(&elapsed, 99),
        elapsed.last().copied().unwrap_or_default()
    );
    out += &format!(
        "leak check: {} secrets searched in {} errors and {} bytes of TRACE logs: none found\n",
        secrets.len(),
        records.len() - ok,
        logs.len()
    );
    report("faults", &out);
}
