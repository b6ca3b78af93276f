//! How transient failures are retried: a bounded number of times, with exponential backoff and
//! jitter.

use std::time::Duration;

/// How the client retries transient failures (WeChat's `-1` busy and `45011` rate limit,
/// connect failures, and for idempotent requests also timeouts, broken connections and 5xx
/// answers).
///
/// The delay before retry `n` (0-based) is drawn uniformly from `[d/2, d]` where
/// `d = min(initial_backoff * 2^n, max_backoff)`, so a fleet that failed together does not
/// retry in lockstep. The default is 2 retries, starting at 200 ms, capped at 2 s.
///
/// ```
/// use std::time::Duration;
/// use wx_official::RetryPolicy;
/// let p = RetryPolicy::default().with_max_retries(3).with_backoff(Duration::from_millis(50), Duration::from_secs(1));
/// assert_eq!(p.max_retries(), 3);
/// assert_eq!(RetryPolicy::disabled().max_retries(), 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    #[must_use]
    pub fn disabled() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// Retries at most `max_retries` times (so at most `max_retries + 1` requests per call).
    #[must_use]
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Sets the first delay and the cap on delays (`max` is raised to `initial` if lower).
    #[must_use]
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// The maximum number of retries.
    #[must_use]
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The first delay.
    #[must_use]
    pub fn initial_backoff(&self) -> Duration {
        self.initial_backoff
    }

    /// The cap on delays.
    #[must_use]
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// The delay before retry number `retry` (0-based), with jitter.
    pub(crate) fn delay(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(16));
        let full = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        jitter(full)
    }
}

/// A duration drawn uniformly from `[d/2, d]`.
pub(crate) fn jitter(d: Duration) -> Duration {
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    if nanos < 2 {
        return d;
    }
    Duration::from_nanos(rand::random_range(nanos / 2..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_are_jittered_and_capped() {
        let p = RetryPolicy::default()
            .with_backoff(Duration::from_millis(100), Duration::from_millis(300));
        for _ in 0..200 {
            let d0 = p.delay(0);
            assert!(
                d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100),
                "{d0:?}"
            );
            let d1 = p.delay(1);
            assert!(
                d1 >= Duration::from_millis(100) && d1 <= Duration::from_millis(200),
                "{d1:?}"
            );
            let d9 = p.delay(40);
            assert!(
                d9 >= Duration::from_millis(150) && d9 <= Duration::from_millis(300),
                "{d9:?}"
            );
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| p.delay(0)).collect();
        assert!(spread.len() > 1, "no jitter");
    }
}
