//! Fault injection: what can go wrong between a client and WeChat, scripted or at random.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One fault, applied to one request.
///
/// Some faults stop the request before the simulated WeChat sees it (`Busy`, `Status`, `Drop`,
/// `Html`, `Empty`, `NonUtf8`): nothing changes there, no token is issued, no code is used.
/// The others damage an answer WeChat did produce (`Delay`, `Truncated`, `DropMidBody`,
/// `Oversized`): its effects happened (a token was issued, a code was used) even if the client
/// never reads them, as when a response is lost in transit.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// No fault: answer normally. Useful in scripts (`[Pass, Busy]` = the second request fails).
    Pass,
    /// `{"errcode":-1,"errmsg":"system error rid: ..."}` with HTTP 200.
    Busy,
    /// This HTTP status (e.g. 502) with a small HTML body, like a gateway's error page. A number
    /// that is not a valid status code (outside 100..=999) is sent as 502.
    Status(u16),
    /// Waits this long, then answers normally.
    Delay(Duration),
    /// Closes the connection without answering. In process: a `TransportError` of kind `Io`.
    Drop,
    /// Sends the headers and half the body (with the full `Content-Length`), then closes the
    /// connection. In process: a `TransportError` of kind `Io`.
    DropMidBody,
    /// HTTP 200 with an HTML page instead of JSON.
    Html,
    /// HTTP 200 with an empty body.
    Empty,
    /// HTTP 200 with the JSON answer cut in half (correct framing: the client gets the whole,
    /// short body and fails to decode it).
    Truncated,
    /// The JSON answer padded with trailing spaces to this many bytes (still valid JSON, for
    /// testing a client's body cap).
    Oversized(usize),
    /// HTTP 200 with a body that is not UTF-8.
    NonUtf8,
}

impl Fault {
    /// A short name for reports (`"busy"`, `"status"`, `"drop"`, ...).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Pass => "pass",
            Fault::Busy => "busy",
            Fault::Status(_) => "status",
            Fault::Delay(_) => "delay",
            Fault::Drop => "drop",
            Fault::DropMidBody => "drop_mid_body",
            Fault::Html => "html",
            Fault::Empty => "empty",
            Fault::Truncated => "truncated",
            Fault::Oversized(_) => "oversized",
            Fault::NonUtf8 => "non_utf8",
        }
    }
}

/// A seeded random mix of faults: each request draws one fault with the given probabilities
/// (or none). The same seed and the same order of requests give the same faults.
///
/// ```
/// use std::time::Duration;
/// use wx_sandbox::{Fault, FaultMix};
/// let mix = FaultMix::new(42)
///     .with(Fault::Busy, 0.05)
///     .with(Fault::Status(502), 0.02)
///     .with(Fault::Delay(Duration::from_millis(50)), 0.01)
///     .on_paths(["/cgi-bin/token"]);
/// # let _ = mix;
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct FaultMix {
    seed: u64,
    entries: Vec<(Fault, f64)>,
    paths: Option<Vec<String>>,
}

impl FaultMix {
    /// An empty mix (no faults) with this seed.
    pub fn new(seed: u64) -> Self {
        FaultMix {
            seed,
            entries: Vec::new(),
            paths: None,
        }
    }

    /// Adds `fault` with `probability` per request (clamped to 0..=1). Probabilities add up;
    /// past a total of 1 the later entries are drawn less often than asked.
    pub fn with(mut self, fault: Fault, probability: f64) -> Self {
        let p = if probability.is_nan() {
            0.0
        } else {
            probability.clamp(0.0, 1.0)
        };
        self.entries.push((fault, p));
        self
    }

    /// Limits the mix to requests on these paths (default: every path).
    pub fn on_paths(mut self, paths: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.paths = Some(paths.into_iter().map(Into::into).collect());
        self
    }
}

#[derive(Debug)]
struct ActiveMix {
    mix: FaultMix,
    rng: StdRng,
}

impl ActiveMix {
    fn draw(&mut self, path: &str) -> Option<Fault> {
        if let Some(paths) = &self.mix.paths
            && !paths.iter().any(|p| p == path)
        {
            return None;
        }
        let x: f64 = self.rng.random();
        let mut acc = 0.0;
        for (fault, p) in &self.mix.entries {
            acc += p;
            if x < acc {
                return Some(fault.clone());
            }
        }
        None
    }
}

#[derive(Debug, Default)]
struct FaultState {
    script: VecDeque<Fault>,
    per_path: HashMap<String, VecDeque<Fault>>,
    mix: Option<ActiveMix>,
    injected: BTreeMap<&'static str, u64>,
}

/// The fault injector of a sandbox; see [`Sandbox::faults`](crate::Sandbox::faults).
///
/// For each request it takes, in this order: the next fault scripted for the request's path,
/// else the next fault of the global script, else a draw from the random mix, else none.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    state: Arc<Mutex<FaultState>>,
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends faults to the global script: the next requests (any path) get them, one each.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().script.extend(faults);
    }

    /// Appends faults to the script of one path (e.g. `"/cgi-bin/token"`): the next requests
    /// on that path get them, one each, before the global script.
    pub fn script_for(&self, path: &str, faults: impl IntoIterator<Item = Fault>) {
        self.lock()
            .per_path
            .entry(path.to_owned())
            .or_default()
            .extend(faults);
    }

    /// Sets the random mix (replacing any previous one).
    pub fn mix(&self, mix: FaultMix) {
        let rng = StdRng::seed_from_u64(mix.seed);
        self.lock().mix = Some(ActiveMix { mix, rng });
    }

    /// Removes the scripts and the mix (the counts of injected faults stay).
    pub fn clear(&self) {
        let mut s = self.lock();
        s.script.clear();
        s.per_path.clear();
        s.mix = None;
    }

    /// Scripted faults not yet consumed (global and per path).
    #[must_use]
    pub fn pending(&self) -> usize {
        let s = self.lock();
        s.script.len() + s.per_path.values().map(VecDeque::len).sum::<usize>()
    }

    /// Faults injected so far, `Pass` excluded.
    #[must_use]
    pub fn injected(&self) -> u64 {
        self.lock().injected.values().sum()
    }

    /// Faults injected so far by [`Fault::name`], `Pass` excluded.
    #[must_use]
    pub fn injected_by_kind(&self) -> BTreeMap<&'static str, u64> {
        self.lock().injected.clone()
    }

    /// Takes the fault for the next request on `path`.
    pub(crate) fn next(&self, path: &str) -> Fault {
        let mut s = self.lock();
        let fault = s
            .per_path
            .get_mut(path)
            .and_then(VecDeque::pop_front)
            .or_else(|| s.script.pop_front())
            .or_else(|| s.mix.as_mut().and_then(|m| m.draw(path)))
            .unwrap_or(Fault::Pass);
        if fault != Fault::Pass {
            *s.injected.entry(fault.name()).or_default() += 1;
        }
        fault
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_script_then_global_script_then_nothing() {
        let f = Faults::default();
        f.script([Fault::Busy, Fault::Empty]);
        f.script_for("/a", [Fault::Drop]);
        assert_eq!(f.pending(), 3);
        assert_eq!(f.next("/b"), Fault::Busy);
        assert_eq!(f.next("/a"), Fault::Drop);
        assert_eq!(f.next("/a"), Fault::Empty);
        assert_eq!(f.next("/a"), Fault::Pass);
        assert_eq!(f.pending(), 0);
        assert_eq!(f.injected(), 3);
        assert_eq!(f.injected_by_kind().get("drop"), Some(&1));
    }

    #[test]
    fn mix_is_reproducible_and_close_to_its_probabilities() {
        let draw = |seed| {
            let f = Faults::default();
            f.mix(
                FaultMix::new(seed)
                    .with(Fault::Busy, 0.2)
                    .with(Fault::Status(502), 0.1),
            );
            (0..10_000).map(|_| f.next("/x")).collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        let busy = a.iter().filter(|f| **f == Fault::Busy).count();
        let s502 = a.iter().filter(|f| **f == Fault::Status(502)).count();
        assert!((1_800..2_200).contains(&busy), "{busy}");
        assert!((850..1_150).contains(&s502), "{s502}");
    }

    #[test]
    fn mix_limited_to_paths() {
        let f = Faults::default();
        f.mix(FaultMix::new(1).with(Fault::Busy, 1.0).on_paths(["/only"]));
        assert_eq!(f.next("/other"), Fault::Pass);
        assert_eq!(f.next("/only"), Fault::Busy);
        f.clear();
        assert_eq!(f.next("/only"), Fault::Pass);
    }
}
