//! Answering within WeChat's 5 seconds: a handler that has not replied within its budget is
//! answered with `success`, keeps running to completion, and its late reply goes to a hook.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Incoming, Reply};

/// The default budget: WeChat waits 5 s; a second is left for decryption, the network and the
/// reply's own encryption.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(4);

/// A reply that came after its push was answered with `success`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LateReply {
    /// The push it answers.
    pub incoming: Incoming,
    /// What the handler returned (send it another way, e.g. a customer-service message).
    pub reply: Reply,
    /// How long the handler took.
    pub elapsed: Duration,
}

/// Receives late replies; called on the runtime, once per late reply.
pub type LateHook = Arc<dyn Fn(LateReply) + Send + Sync>;

/// What [`run_with_budget`] answered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The handler replied within the budget.
    InTime(Reply),
    /// The budget ran out: answered `success`; the handler keeps running and its reply goes
    /// to the hook.
    Late,
    /// The handler panicked: answered `success` (WeChat would otherwise show the user an
    /// error and retry into the same panic).
    Failed,
}

impl Outcome {
    /// The reply to render: the handler's, or [`Reply::Success`].
    #[must_use]
    pub fn into_reply(self) -> Reply {
        match self {
            Outcome::InTime(reply) => reply,
            Outcome::Late | Outcome::Failed => Reply::Success,
        }
    }
}

/// Runs `handler` for `incoming` on its own task and waits at most `budget` for its reply.
/// When the budget runs out the answer is [`Outcome::Late`] (render `success`); the handler
/// still runs to completion, and its reply is logged as late (`tracing` warning) and handed to
/// `on_late`. Needs a tokio runtime.
pub async fn run_with_budget<F>(
    budget: Duration,
    incoming: &Incoming,
    handler: F,
    on_late: Option<LateHook>,
) -> Outcome
where
    F: Future<Output = Reply> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let started = Instant::now();
    let late_incoming = incoming.clone();
    tokio::spawn(async move {
        let reply = handler.await;
        // The receiver is gone when the budget ran out (or the request was dropped): nobody
        // got this reply in the HTTP answer.
        if let Err(reply) = tx.send(reply) {
            let elapsed = started.elapsed();
            tracing::warn!(
                elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                msg_type = %late_incoming.msg_type,
                "push handler replied after its budget; answered `success` instead"
            );
            if let Some(hook) = on_late {
                hook(LateReply {
                    incoming: late_incoming,
                    reply,
                    elapsed,
                });
            }
        }
    });
    match tokio::time::timeout(budget, rx).await {
        Ok(Ok(reply)) => Outcome::InTime(reply),
        Ok(Err(_)) => {
            tracing::error!("push handler panicked; answered `success`");
            Outcome::Failed
        }
        Err(_) => Outcome::Late,
    }
}
