//! `multipart/form-data` request bodies (RFC 7578), encoded once here so that every
//! [`HttpTransport`](crate::HttpTransport) sends an upload as plain bytes with a `Content-Type`
//! header, without knowing multipart.
//!
//! The encoding is done by the `mpart-async` crate; this module adds what an upload to WeChat
//! needs around it: a boundary that occurs in no part, names and filenames that cannot break
//! out of their quoted header parameter, and the whole body as one [`Bytes`].

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use http::HeaderValue;
use mpart_async::client::{ByteStream, MultipartRequest};
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::error::InvalidInput;

/// Length of the random part of a boundary (RFC 2046 allows up to 70 characters).
const BOUNDARY_RANDOM_LEN: usize = 32;

/// One part of a [`MultipartForm`].
#[derive(Clone)]
enum Part {
    Text {
        name: String,
        value: String,
    },
    File {
        name: String,
        filename: String,
        content_type: String,
        bytes: Bytes,
    },
}

/// A `multipart/form-data` form: text fields and files, in order.
///
/// ```
/// use wx_core::MultipartForm;
/// let form = MultipartForm::new()
///     .file("media", "cover.jpg", "image/jpeg", &b"\xff\xd8\xff"[..])
///     .text("description", r#"{"title":"T","introduction":"I"}"#);
/// let body = form.encode()?;
/// assert!(body.content_type.to_str().unwrap().starts_with("multipart/form-data; boundary="));
/// # Ok::<(), wx_core::InvalidInput>(())
/// ```
///
/// `Debug` shows part names, filenames, content types and sizes, never the values or bytes.
#[derive(Clone, Default)]
#[must_use]
pub struct MultipartForm {
    parts: Vec<Part>,
}

/// An encoded form: the body bytes and the `Content-Type` header that names its boundary.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EncodedForm {
    /// `multipart/form-data; boundary=...`.
    pub content_type: HeaderValue,
    /// The whole body.
    pub body: Bytes,
}

impl MultipartForm {
    /// An empty form.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a text field.
    pub fn text(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.parts.push(Part::Text {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// Appends a file part: its field name, filename, content type and bytes.
    pub fn file(
        mut self,
        name: impl Into<String>,
        filename: impl Into<String>,
        content_type: impl Into<String>,
        bytes: impl Into<Bytes>,
    ) -> Self {
        self.parts.push(Part::File {
            name: name.into(),
            filename: filename.into(),
            content_type: content_type.into(),
            bytes: bytes.into(),
        });
        self
    }

    /// Encodes the form with a fresh random boundary that occurs in no part.
    ///
    /// # Errors
    /// [`InvalidInput`] (argument `multipart form`) when the form is empty, a name or filename
    /// is empty or holds a `"`, `\` or control character (it would break out of its quoted
    /// header parameter), or a content type is not a plain `type/subtype[; params]` value.
    pub fn encode(&self) -> Result<EncodedForm, InvalidInput> {
        self.check()?;
        let mut rng = rand::rng();
        loop {
            let random: String = (&mut rng)
                .sample_iter(Alphanumeric)
                .take(BOUNDARY_RANDOM_LEN)
                .map(char::from)
                .collect();
            let boundary = format!("wx-rs-{random}");
            // A 32-character random boundary in a part is all but impossible; draw again if so.
            if !self.contains(boundary.as_bytes()) {
                return self.encode_with_boundary(&boundary);
            }
        }
    }

    /// Encodes the form with `boundary` (for tests that compare bytes).
    ///
    /// # Errors
    /// As [`encode`](Self::encode), and when `boundary` is not 1 to 70 characters of
    /// `A-Z a-z 0-9 ' ( ) + _ , - . / : = ?` or occurs in a part.
    pub fn encode_with_boundary(&self, boundary: &str) -> Result<EncodedForm, InvalidInput> {
        self.check()?;
        let valid_boundary = (1..=70).contains(&boundary.len())
            && boundary
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"'()+_,-./:=?".contains(&b));
        if !valid_boundary || self.contains(boundary.as_bytes()) {
            return Err(invalid("boundary is not a valid RFC 2046 boundary"));
        }
        let mut request: MultipartRequest<ByteStream> = MultipartRequest::new(boundary);
        for part in &self.parts {
            match part {
                Part::Text { name, value } => request.add_field(name.as_str(), value.as_str()),
                Part::File {
                    name,
                    filename,
                    content_type,
                    bytes,
                } => request.add_stream(
                    name.as_str(),
                    filename.as_str(),
                    content_type.as_str(),
                    ByteStream::new(bytes),
                ),
            }
        }
        let body = collect(request)?;
        let content_type =
            HeaderValue::try_from(format!("multipart/form-data; boundary={boundary}"))
                .map_err(|_| invalid("boundary is not a valid header value"))?;
        Ok(EncodedForm { content_type, body })
    }

    fn check(&self) -> Result<(), InvalidInput> {
        if self.parts.is_empty() {
            return Err(invalid("has no part"));
        }
        for part in &self.parts {
            let (name, file) = match part {
                Part::Text { name, .. } => (name, None),
                Part::File {
                    name,
                    filename,
                    content_type,
                    ..
                } => (name, Some((filename, content_type))),
            };
            if !is_quotable(name) {
                return Err(invalid(
                    "a part name is empty or holds a quote, backslash or control character",
                ));
            }
            if let Some((filename, content_type)) = file {
                if !is_quotable(filename) {
                    return Err(invalid(
                        "a filename is empty or holds a quote, backslash or control character",
                    ));
                }
                if !is_media_type(content_type) {
                    return Err(invalid("a content type is not a `type/subtype` value"));
                }
            }
        }
        Ok(())
    }

    /// Whether `needle` occurs in any part's value or bytes.
    fn contains(&self, needle: &[u8]) -> bool {
        self.parts.iter().any(|p| {
            let hay: &[u8] = match p {
                Part::Text { value, .. } => value.as_bytes(),
                Part::File { bytes, .. } => bytes,
            };
            memchr::memmem::find(hay, needle).is_some()
        })
    }
}

impl fmt::Debug for MultipartForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for part in &self.parts {
            match part {
                Part::Text { name, value } => {
                    list.entry(&format_args!("text {name:?} ({} bytes)", value.len()));
                }
                Part::File {
                    name,
                    filename,
                    content_type,
                    bytes,
                } => {
                    list.entry(&format_args!(
                        "file {name:?} {filename:?} {content_type} ({} bytes)",
                        bytes.len()
                    ));
                }
            }
        }
        list.finish()
    }
}

fn invalid(reason: &'static str) -> InvalidInput {
    InvalidInput::new("multipart form", reason)
}

/// Non-empty, and safe inside `name="..."`: no quote, backslash or control character.
fn is_quotable(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c == '"' || c == '\\' || c.is_control())
}

/// `type/subtype` of token characters, optionally followed by `;` parameters without controls.
fn is_media_type(s: &str) -> bool {
    let is_token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    let (essence, params) = s.split_once(';').unwrap_or((s, ""));
    let Some((ty, sub)) = essence.trim().split_once('/') else {
        return false;
    };
    is_token(ty) && is_token(sub) && !params.chars().any(|c| c.is_control())
}

/// Drains the encoder. Its parts are in memory, so every poll is ready; a pending poll would
/// be a bug of the encoder and is reported rather than waited for.
fn collect(mut request: MultipartRequest<ByteStream>) -> Result<Bytes, InvalidInput> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut body = BytesMut::new();
    loop {
        match Pin::new(&mut request).poll_next(&mut cx) {
            Poll::Ready(Some(Ok(chunk))) => body.extend_from_slice(&chunk),
            Poll::Ready(None) => return Ok(body.freeze()),
            Poll::Ready(Some(Err(never))) => match never {},
            Poll::Pending => return Err(invalid("the encoder did not complete")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_rfc7578_bytes() {
        let form = MultipartForm::new()
            .file("media", "a.jpg", "image/jpeg", &b"\xff\xd8JPEG"[..])
            .text("description", "{\"title\":\"T\"}");
        let e = form.encode_with_boundary("XyZ").expect("encodes");
        assert_eq!(e.content_type, "multipart/form-data; boundary=XyZ");
        let expected: &[u8] = b"--XyZ\r\n\
Content-Disposition: form-data; name=\"media\"; filename=\"a.jpg\"\r\n\
Content-Type: image/jpeg\r\n\
\r\n\
\xff\xd8JPEG\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"description\"\r\n\
\r\n\
{\"title\":\"T\"}\r\n\
--XyZ--\r\n";
        assert_eq!(e.body.as_ref(), expected);
    }

    #[test]
    fn random_boundaries_differ_and_avoid_the_content() {
        let form = MultipartForm::new().file("media", "a.png", "image/png", &b"png"[..]);
        let a = form.encode().expect("a");
        let b = form.encode().expect("b");
        assert_ne!(a.content_type, b.content_type);
        let ct = a.content_type.to_str().expect("ascii");
        let boundary = ct
            .strip_prefix("multipart/form-data; boundary=")
            .expect("prefix");
        assert_eq!(boundary.len(), "wx-rs-".len() + BOUNDARY_RANDOM_LEN);
        // A boundary found in the content is refused.
        let form = MultipartForm::new().text("x", "a--XyZ-b");
        assert!(form.encode_with_boundary("XyZ").is_err());
    }

    #[test]
    fn header_injection_and_empty_forms_are_refused() {
        let bad = [
            MultipartForm::new(),
            MultipartForm::new().text("a\"b", "v"),
            MultipartForm::new().text("", "v"),
            MultipartForm::new().file("m", "x\r\nX-Evil: 1", "image/png", Bytes::new()),
            MultipartForm::new().file("m", "a\\b.png", "image/png", Bytes::new()),
            MultipartForm::new().file("m", "a.png", "image png", Bytes::new()),
            MultipartForm::new().file("m", "a.png", "image/png\r\nX: 1", Bytes::new()),
        ];
        for form in bad {
            let e = form.encode().expect_err("refused");
            assert_eq!(e.argument, "multipart form", "{form:?}");
        }
        for boundary in ["", "a b", &"x".repeat(71)] {
            let form = MultipartForm::new().text("a", "v");
            assert!(form.encode_with_boundary(boundary).is_err(), "{boundary:?}");
        }
        // Non-ASCII filenames are allowed (WeChat keeps them).
        MultipartForm::new()
            .file("media", "封面.jpg", "image/jpeg", &b"x"[..])
            .encode()
            .expect("utf-8 filename");
    }

    #[test]
    fn debug_shows_sizes_not_values() {
        let form = MultipartForm::new().text("description", "SECRET-ISH").file(
            "media",
            "a.jpg",
            "image/jpeg",
            &b"BYTES"[..],
        );
        let d = format!("{form:?}");
        assert!(!d.contains("SECRET-ISH") && !d.contains("BYTES"), "{d}");
        assert!(d.contains("a.jpg") && d.contains("10 bytes"), "{d}");
    }
}
