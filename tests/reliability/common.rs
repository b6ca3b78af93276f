//! Shared parts of the suite: the TRACE log capture, the secret scanner, the report file and a
//! seeded random generator.

use std::collections::{BTreeMap, HashMap};
use std::error::Error as StdError;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The AppID every test uses (letters and digits, as WeChat's).
pub(crate) const APPID: &str = "wx5e1ab1e0d15ea5ed";
/// A distinctive AppSecret, so that a leak is found by a plain substring search.
pub(crate) const SECRET: &str = "APPSECRET-reliability-7f3c9a1e5b2d";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Installs (once per test binary) a global TRACE subscriber writing every event and every new
/// span, with all their fields, into a buffer. Tests call this first and read the buffer with
/// [`log_bytes`] at the end.
pub(crate) fn capture_logs() {
    let _ = wx_core::test_util::CapturedLogs::global();
}

/// A copy of everything logged so far.
pub(crate) fn log_bytes() -> Vec<u8> {
    wx_core::test_util::CapturedLogs::global().bytes()
}

/// Display, alternate Display, Debug and pretty Debug of an error and of every error in its
/// `source()` chain.
pub(crate) fn error_texts(e: &(dyn StdError + 'static)) -> String {
    let mut out = format!("{e}\n{e:#}\n{e:?}\n{e:#?}\n");
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!("{s}\n{s:?}\n"));
        source = s.source();
    }
    out
}

/// Length of the windows secrets are searched by. Every secret is at least this long.
const WINDOW: usize = 16;

/// A set of secrets and a fast search for them: each secret is cut into aligned windows of
/// [`WINDOW`] bytes (plus its last window), so a text holding a whole secret, or any piece of
/// one of at least `2 * WINDOW - 1` bytes, holds one of its windows.
#[derive(Default)]
pub(crate) struct Secrets {
    windows: HashMap<[u8; WINDOW], usize>,
    labels: Vec<String>,
}

impl Secrets {
    /// Adds a secret; `label` names its kind in failure messages (never the value).
    pub(crate) fn add(&mut self, label: &str, secret: &str) {
        let bytes = secret.as_bytes();
        assert!(
            bytes.len() >= WINDOW,
            "a {label} shorter than {WINDOW} bytes cannot be searched for reliably"
        );
        let id = self.labels.len();
        self.labels.push(label.to_owned());
        let mut starts: Vec<usize> = (0..=bytes.len() - WINDOW).step_by(WINDOW).collect();
        starts.push(bytes.len() - WINDOW);
        for start in starts {
            let mut w = [0u8; WINDOW];
            w.copy_from_slice(&bytes[start..start + WINDOW]);
            self.windows.entry(w).or_insert(id);
        }
    }

    /// How many secrets were added.
    pub(crate) fn len(&self) -> usize {
        self.labels.len()
    }

    /// The first secret found in `text`: its label and the byte offset of the hit.
    pub(crate) fn find_in(&self, text: &[u8]) -> Option<(&str, usize)> {
        if text.len() < WINDOW {
            return None;
        }
        (0..=text.len() - WINDOW).find_map(|i| {
            let mut w = [0u8; WINDOW];
            w.copy_from_slice(&text[i..i + WINDOW]);
            self.windows
                .get(&w)
                .map(|&id| (self.labels[id].as_str(), i))
        })
    }

    /// Panics naming the kind of secret and the surrounding text (with the secret cut out)
    /// when `text` holds one.
    pub(crate) fn assert_absent(&self, what: &str, text: &[u8]) {
        if let Some((label, at)) = self.find_in(text) {
            let from = at.saturating_sub(120);
            let to = (at + WINDOW + 120).min(text.len());
            let before = String::from_utf8_lossy(&text[from..at]);
            let after = String::from_utf8_lossy(&text[at + WINDOW..to]);
            panic!("a {label} leaked into {what}: ...{before}<SECRET>{after}...");
        }
    }
}

/// The report of this binary's figures: `<target dir>/reliability-report.txt`, one section per
/// test, rewritten whole each time a test adds its section. Also printed (`--nocapture` shows
/// it; CI keeps the file).
pub(crate) fn report(section: &'static str, text: &str) {
    static SECTIONS: Mutex<BTreeMap<&'static str, String>> = Mutex::new(BTreeMap::new());
    let mut sections = lock(&SECTIONS);
    sections.insert(section, text.to_owned());
    let whole: String = sections
        .iter()
        .map(|(name, body)| format!("== {name} ==\n{body}\n"))
        .collect();
    let path = report_path();
    std::fs::write(&path, whole).expect("write the reliability report");
    print_section(section, text, &path);
}

#[allow(clippy::print_stdout)] // The figures are this suite's output.
fn print_section(section: &str, text: &str, path: &std::path::Path) {
    println!("== {section} ==\n{text}(written to {})", path.display());
}

fn report_path() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target dir>/tmp` for integration tests.
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .map_or(tmp.clone(), std::path::Path::to_path_buf)
        .join("reliability-report.txt")
}

/// SplitMix64: a tiny seeded generator, so the schedule of calls is the same on every run.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % n as u64).expect("below n")
    }
}
