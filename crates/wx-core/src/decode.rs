//! Decoding a WeChat response body: the `errcode` envelope first, then the typed model.
//!
//! The body is decoded whatever its Content-Type. Invalid UTF-8 is replaced and raw control
//! characters inside JSON strings (real nicknames carry them) are escaped before parsing, so
//! they never fail a decode.

use std::borrow::Cow;
use std::sync::LazyLock;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::errcode::ErrCode;
use crate::error::{ApiError, DecodeError, DecodeReason, Error};

#[derive(Deserialize)]
struct Envelope {
    #[serde(default, deserialize_with = "crate::model::lenient_opt_i64")]
    errcode: Option<i64>,
    #[serde(default)]
    errmsg: Option<IgnoredOrString>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IgnoredOrString {
    Str(String),
    Other(IgnoredAny),
}

/// A success body that carries nothing but `errcode: 0` (e.g. `sns/auth`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Ack {}

/// Decodes `body` from `endpoint`: a non-zero `errcode` becomes [`Error::Api`], anything else
/// is decoded into `T`.
///
/// # Errors
/// [`Error::Api`] for a WeChat error, [`Error::Decode`] (endpoint and JSON path, never the
/// body) when the body is empty, not JSON, or lacks a field of `T`.
pub fn decode_response<T: DeserializeOwned>(
    endpoint: &'static str,
    body: &[u8],
) -> Result<T, Error> {
    // The common answer in one serde pass: an object without an `errcode` key that decodes as
    // it is. serde_json accepts only valid UTF-8 without raw control characters inside strings,
    // so a body it accepts is one `sanitize` leaves unchanged and the checks below pass: the
    // result is the one the careful path would give. Anything else takes the careful path.
    if first_byte(body) == Some(b'{')
        && !has_errcode(body)
        && let Ok(value) = serde_json::from_slice::<T>(body)
    {
        return Ok(value);
    }
    decode_carefully(endpoint, body)
}

/// [`decode_response`] for an answer that did not decode as it was: a WeChat error, raw
/// control characters or invalid UTF-8, or a bad body. Out of line and cold, so that the code
/// of a plain answer stays compact.
#[cold]
#[inline(never)]
fn decode_carefully<T: DeserializeOwned>(endpoint: &'static str, body: &[u8]) -> Result<T, Error> {
    let body = sanitize(body);
    let decode_err = |path: String, reason| DecodeError {
        endpoint,
        path,
        reason,
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(decode_err(".".into(), DecodeReason::Empty).into());
    }
    // Only an object is a WeChat answer (serde would also read a struct from an array).
    if first_byte(&body) != Some(b'{') {
        let reason = match serde_json::from_slice::<IgnoredAny>(&body) {
            Ok(_) => DecodeReason::Data,
            Err(e) => reason_of(&e),
        };
        return Err(decode_err(".".into(), reason).into());
    }
    let envelope: Envelope = if has_errcode(&body) {
        serde_json::from_slice(&body).map_err(|e| decode_err(".".into(), reason_of(&e)))?
    } else {
        Envelope {
            errcode: None,
            errmsg: None,
        }
    };
    if let Some(code) = envelope.errcode.filter(|c| *c != 0) {
        let msg = match &envelope.errmsg {
            Some(IgnoredOrString::Str(s)) => s.as_str(),
            _ => "",
        };
        return Err(ApiError::new(endpoint, ErrCode(code), msg).into());
    }
    // The path of a failure is tracked only when there is one: tracking costs on every field.
    if let Ok(value) = serde_json::from_slice::<T>(&body) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(&body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let mut path = e.path().to_string();
        let inner = e.into_inner();
        let reason = reason_of(&inner);
        // "missing field `x`" names only a field; other messages may quote a value.
        let msg = inner.to_string();
        if let Some(field) = msg
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            path = if path == "." {
                format!(".{field}")
            } else {
                format!("{path}.{field}")
            };
        }
        decode_err(path, reason).into()
    })
}

/// The first byte that is not JSON whitespace.
fn first_byte(body: &[u8]) -> Option<u8> {
    body.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// Whether `body` holds the string `"errcode"`. A body without it cannot carry an error code
/// (WeChat never escapes key names), so the envelope pass is skipped.
fn has_errcode(body: &[u8]) -> bool {
    // Built once: building a searcher costs more than searching a typical answer.
    static FINDER: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(b"\"errcode\""));
    FINDER.find(body).is_some()
}

/// Whether `bytes` holds a byte below 0x20, checked 32 bytes at a time by a fold the compiler
/// vectorises.
fn has_control(bytes: &[u8]) -> bool {
    bytes
        .chunks(32)
        .any(|block| block.iter().fold(false, |seen, &b| seen | (b < 0x20)))
}

fn reason_of(e: &serde_json::Error) -> DecodeReason {
    match e.classify() {
        serde_json::error::Category::Eof => DecodeReason::Eof,
        serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
            DecodeReason::Syntax {
                line: e.line(),
                column: e.column(),
            }
        }
        serde_json::error::Category::Data => DecodeReason::Data,
    }
}

/// Makes a body parseable by a strict JSON parser without losing text: invalid UTF-8 is
/// replaced by U+FFFD, and control characters inside strings are escaped as `\u00XX`.
/// Borrows when there is nothing to fix (the common case).
#[must_use]
pub fn sanitize(body: &[u8]) -> Cow<'_, [u8]> {
    if !has_control(body) && std::str::from_utf8(body).is_ok() {
        return Cow::Borrowed(body);
    }
    let text: Cow<'_, [u8]> = match String::from_utf8_lossy(body) {
        Cow::Borrowed(_) => Cow::Borrowed(body),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    };
    // Nothing to escape without a control byte: one fast pass instead of the state machine.
    if !has_control(&text) {
        return text;
    }
    let mut out: Option<Vec<u8>> = None;
    let (mut in_string, mut escaped) = (false, false);
    for (i, &b) in text.iter().enumerate() {
        let raw_control = in_string && !escaped && b < 0x20;
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        }
        if raw_control {
            let buf = out.get_or_insert_with(|| {
                let mut v = Vec::with_capacity(text.len() + 16);
                v.extend_from_slice(&text[..i]);
                v
            });
            buf.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else if let Some(buf) = out.as_mut() {
            buf.push(b);
        }
    }
    match out {
        Some(v) => Cow::Owned(v),
        None => text,
    }
}
