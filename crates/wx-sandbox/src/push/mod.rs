//! The push direction, async side: delivers what the world queued (`World::queue_push`) to each
//! app's server URL after the world lock is released, and reports what happened.

use std::sync::{Mutex, PoisonError};

use tokio::task::JoinHandle;

use crate::Sandbox;
use crate::world::{PushFields, QueuedPush};

/// What became of one push.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PushOutcome {
    /// The app has no server URL: WeChat pushes nothing.
    NoServer,
}

/// One push WeChat sent (or would have sent) to an app's server URL, and its outcome.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PushReport {
    /// The app pushed to.
    pub appid: String,
    /// The user the push is about (its `FromUserName`).
    pub openid: String,
    /// `CreateTime` of the push (seconds from the epoch, sandbox clock).
    pub create_time: u64,
    /// Its fields after the header (`MsgType`, `Event`, ...).
    pub fields: PushFields,
    /// What happened.
    pub outcome: PushOutcome,
}

/// Deliveries started by API calls and not yet awaited by `settle_pushes`.
#[derive(Default)]
pub(crate) struct InFlight(Mutex<Vec<JoinHandle<PushReport>>>);

impl InFlight {
    fn take(&self) -> Vec<JoinHandle<PushReport>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn add(&self, handle: JoinHandle<PushReport>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(handle);
    }
}

impl Sandbox {
    /// Starts delivering what the world queued during the last request (called with the world
    /// lock released). Outside a tokio runtime the pushes stay queued for
    /// [`settle_pushes`](Self::settle_pushes).
    pub(crate) fn dispatch_queued(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for push in self.world().take_pushes() {
            let sandbox = self.clone();
            self.inner
                .pushes
                .add(runtime.spawn(async move { sandbox.deliver(push).await }));
        }
    }

    /// Delivers every push still queued and waits for every delivery in flight (those that API
    /// calls started, such as a template send's `TEMPLATESENDJOBFINISH`); returns their
    /// reports, in the order the pushes were queued.
    pub async fn settle_pushes(&self) -> Vec<PushReport> {
        let mut reports = Vec::new();
        loop {
            let handles = self.inner.pushes.take();
            let queued = self.world().take_pushes();
            if handles.is_empty() && queued.is_empty() {
                return reports;
            }
            for handle in handles {
                // A delivery task only ends by returning (it has no panicking path); a
                // cancelled one (runtime shutting down) has no report to give.
                if let Ok(report) = handle.await {
                    reports.push(report);
                }
            }
            for push in queued {
                reports.push(self.deliver(push).await);
            }
        }
    }

    async fn deliver(&self, push: QueuedPush) -> PushReport {
        let QueuedPush {
            appid,
            openid,
            create_time,
            fields,
        } = push;
        PushReport {
            appid,
            openid,
            create_time,
            fields,
            outcome: PushOutcome::NoServer,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::UserProfile;

    #[tokio::test]
    async fn queued_pushes_are_settled_with_their_fields() {
        let sandbox = Sandbox::builder()
            .app("wx1", "s")
            .user("wx1", UserProfile::new("o1"))
            .build()
            .expect("valid");
        let fields = PushFields::event("TEMPLATESENDJOBFINISH")
            .number("MsgID", 200_163_836u64)
            .text("Status", "success");
        sandbox
            .world()
            .queue_push("wx1", "o1", fields.clone(), SystemTime::UNIX_EPOCH);
        let reports = sandbox.settle_pushes().await;
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].openid, "o1");
        assert_eq!(reports[0].fields, fields);
        assert_eq!(reports[0].outcome, PushOutcome::NoServer);
        assert!(sandbox.settle_pushes().await.is_empty());
    }
}
