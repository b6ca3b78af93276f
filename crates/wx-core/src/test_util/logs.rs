//! Log capture and the no-secret assertion, shared by every test that checks redaction.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Everything a `tracing` subscriber wrote, at every level, with span fields.
///
/// ```
/// use wx_core::test_util::CapturedLogs;
/// let (logs, _guard) = CapturedLogs::start();
/// tracing::info!(endpoint = "sns/userinfo", "called");
/// assert!(logs.text().contains("sns/userinfo"));
/// ```
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

type Builder = tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::DefaultFields,
    tracing_subscriber::fmt::format::Format,
    tracing_subscriber::filter::LevelFilter,
    CapturedLogs,
>;

/// TRACE, new spans with their fields, no colours, into `writer`.
fn builder(writer: CapturedLogs) -> Builder {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::NEW)
        .with_ansi(false)
        .with_writer(writer)
}

impl CapturedLogs {
    /// Captures, at TRACE level with new spans and their fields, what this thread logs while the
    /// returned guard lives (use a current-thread runtime in async tests).
    #[must_use]
    pub fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = CapturedLogs::default();
        let guard = tracing::subscriber::set_default(builder(logs.clone()).finish());
        (logs, guard)
    }

    /// Captures what every thread of this process logs, from now on (`log` records of
    /// dependencies such as reqwest and redis included): installs the global subscriber once per
    /// process and returns the same buffer on every call.
    ///
    /// # Panics
    /// When another global subscriber was installed first.
    #[must_use]
    pub fn global() -> &'static CapturedLogs {
        static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = CapturedLogs::default();
            builder(logs.clone())
                .try_init()
                .unwrap_or_else(|_| panic!("another global tracing subscriber was installed"));
            logs
        })
    }

    /// What was logged so far, as text.
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    /// What was logged so far, as bytes.
    #[must_use]
    pub fn bytes(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Display, alternate Display, Debug and pretty Debug of `error` and of every error in its
/// source chain: every text of an error a user could print or log.
#[must_use]
pub fn error_texts(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        out.push(format!("{e}"));
        out.push(format!("{e:#}"));
        out.push(format!("{e:?}"));
        out.push(format!("{e:#?}"));
        next = e.source();
    }
    out
}

/// Asserts that no text in `texts` contains any of `secrets` (empty secrets are ignored).
///
/// # Panics
/// Naming the secret's position in `secrets` and the text's position (never printing the secret
/// itself) when one leaks.
pub fn assert_no_secret<I, T>(texts: I, secrets: &[&str])
where
    I: IntoIterator<Item = T>,
    T: AsRef<str>,
{
    for (i, text) in texts.into_iter().enumerate() {
        for (j, secret) in secrets.iter().enumerate() {
            assert!(
                secret.is_empty() || !text.as_ref().contains(secret),
                "secret #{j} leaked in text #{i} ({} bytes)",
                text.as_ref().len()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_and_finds_leaks() {
        let (logs, guard) = CapturedLogs::start();
        tracing::warn!(token = "T0P", "leaky");
        drop(guard);
        tracing::warn!("not captured");
        assert!(logs.text().contains("leaky"));
        assert!(!logs.text().contains("not captured"));
        let caught = std::panic::catch_unwind(|| assert_no_secret([logs.text()], &["T0P"]));
        let msg = caught.expect_err("leak found");
        let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("secret #0") && !msg.contains("T0P"), "{msg}");
        assert_no_secret([logs.text()], &["other", ""]);
    }

    #[test]
    fn error_texts_walk_the_chain() {
        let e = crate::Error::transport_at(
            "x",
            crate::TransportError::new(crate::TransportErrorKind::Io, "inner cause"),
        );
        let texts = error_texts(&e);
        assert_eq!(texts.len(), 12, "three errors, four texts each");
        assert!(texts.iter().any(|t| t.contains("inner cause")));
    }
}
