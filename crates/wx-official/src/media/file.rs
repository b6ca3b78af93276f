//! Answers that are files: WeChat sends the bytes with a `Content-Disposition`, or JSON on the
//! same path (its errors, and for some media a JSON document instead of a file).

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use wx_core::{Ack, DecodeError, DecodeReason, HttpResponse, Result, decode_response};

use crate::request::FromResponse;

/// A downloaded file: its bytes, content type and the filename WeChat gave it.
///
/// As an answer ([`FromResponse`]) it is the file when WeChat sends one, the typed
/// [`wx_core::Error::Api`] when WeChat answers its JSON error on the same path, and a
/// [`wx_core::Error::Decode`] for any other JSON (a document where a file was expected).
///
/// `Debug` shows the content type, filename and size, not the bytes.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MediaFile {
    /// The file's bytes.
    pub bytes: Bytes,
    /// The `Content-Type` WeChat sent (`image/jpeg`...), if any.
    pub content_type: Option<String>,
    /// The filename of the `Content-Disposition` header (its last path segment only, so it
    /// cannot name another directory), if any.
    pub filename: Option<String>,
}

impl std::fmt::Debug for MediaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaFile")
            .field("content_type", &self.content_type)
            .field("filename", &self.filename)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl MediaFile {
    /// A file from its parts (for tests and for users' own transports).
    #[must_use]
    pub fn new(
        bytes: impl Into<Bytes>,
        content_type: Option<String>,
        filename: Option<String>,
    ) -> Self {
        MediaFile {
            bytes: bytes.into(),
            content_type,
            filename,
        }
    }

    fn of(response: &HttpResponse) -> Self {
        MediaFile {
            bytes: response.body.clone(),
            content_type: header(&response.headers, CONTENT_TYPE).map(str::to_owned),
            filename: header(&response.headers, CONTENT_DISPOSITION).and_then(disposition_filename),
        }
    }
}

impl FromResponse for MediaFile {
    fn from_response(endpoint: &'static str, response: &HttpResponse) -> Result<Self> {
        match file_or_json::<Ack>(endpoint, response)? {
            FileOrJson::File(file) => Ok(file),
            FileOrJson::Json(_) => Err(not_a_file(endpoint)),
        }
    }
}

/// What a download path answered: a file, or a JSON document of type `J` (WeChat errors are
/// already turned into [`wx_core::Error::Api`]).
pub(crate) enum FileOrJson<J> {
    File(MediaFile),
    Json(J),
}

/// Decides by what WeChat actually sent: a `Content-Disposition` means a file; otherwise a
/// JSON content type (`application/json`, or `text/plain` as WeChat labels some JSON) or a body
/// that opens with `{` is JSON, decoded through the errcode envelope; anything else is a file.
pub(crate) fn file_or_json<J: DeserializeOwned>(
    endpoint: &'static str,
    response: &HttpResponse,
) -> Result<FileOrJson<J>> {
    if is_json(response) {
        decode_response(endpoint, &response.body).map(FileOrJson::Json)
    } else {
        Ok(FileOrJson::File(MediaFile::of(response)))
    }
}

/// A JSON answer that is not an error where only a file was expected.
pub(crate) fn not_a_file(endpoint: &'static str) -> wx_core::Error {
    DecodeError {
        endpoint,
        path: ".".to_owned(),
        reason: DecodeReason::Data,
    }
    .into()
}

fn is_json(response: &HttpResponse) -> bool {
    if response.headers.contains_key(CONTENT_DISPOSITION) {
        return false;
    }
    let ct = header(&response.headers, CONTENT_TYPE)
        .unwrap_or_default()
        .to_ascii_lowercase();
    ct.contains("json")
        || ct.starts_with("text/plain")
        || response
            .body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b'{')
}

fn header(headers: &HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The filename of a `Content-Disposition` value: `filename*=UTF-8''...` (percent-decoded) when
/// present, else `filename="..."` or `filename=token`; reduced to its last path segment.
fn disposition_filename(value: &str) -> Option<String> {
    let mut plain = None;
    let mut extended = None;
    for param in value.split(';').skip(1) {
        let Some((key, val)) = param.split_once('=') else {
            continue;
        };
        let val = val.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "filename*" => {
                // charset'language'percent-encoded; WeChat and browsers use UTF-8.
                extended = val.splitn(3, '\'').nth(2).and_then(|enc| {
                    percent_encoding::percent_decode_str(enc)
                        .decode_utf8()
                        .ok()
                        .map(|s| s.into_owned())
                });
            }
            "filename" => {
                let unquoted = val
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(val);
                plain = Some(unquoted.to_owned());
            }
            _ => {}
        }
    }
    let name = extended.or(plain)?;
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    (!last.is_empty() && last != "." && last != ".." && !last.chars().any(char::is_control))
        .then(|| last.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, StatusCode};

    fn file_response(ct: &str, disposition: Option<&str>, body: &'static [u8]) -> HttpResponse {
        let mut r = HttpResponse::new(StatusCode::OK, body);
        r.headers
            .insert(CONTENT_TYPE, HeaderValue::from_str(ct).expect("ct"));
        if let Some(d) = disposition {
            r.headers
                .insert(CONTENT_DISPOSITION, HeaderValue::from_str(d).expect("cd"));
        }
        r
    }

    #[test]
    fn a_file_keeps_bytes_type_and_name() {
        let r = file_response(
            "image/jpeg",
            Some(r#"attachment; filename="MEDIA_ID.jpg""#),
            b"\xff\xd8\xff",
        );
        let f = MediaFile::from_response("cgi-bin/media/get", &r).expect("file");
        assert_eq!(f.bytes.as_ref(), b"\xff\xd8\xff");
        assert_eq!(f.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(f.filename.as_deref(), Some("MEDIA_ID.jpg"));
        // A file without Content-Disposition is still a file when it is not JSON.
        let r = file_response("audio/amr", None, b"#!AMR\n");
        let f = MediaFile::from_response("x", &r).expect("file");
        assert_eq!(f.filename, None);
    }

    #[test]
    fn json_on_the_same_path_is_the_typed_error() {
        for ct in [
            "application/json; encoding=utf-8",
            "text/plain",
            "image/jpeg",
        ] {
            let r = file_response(
                ct,
                None,
                br#"{"errcode":40007,"errmsg":"invalid media_id"}"#,
            );
            let e = MediaFile::from_response("cgi-bin/media/get", &r).expect_err(ct);
            assert_eq!(e.api().map(|a| a.code.0), Some(40007), "{ct}: {e:?}");
        }
        // JSON that is not an error where a file was expected: a decode error, not a file.
        let r = file_response("text/plain", None, br#"{"video_url":"http://x"}"#);
        let e = MediaFile::from_response("cgi-bin/media/get", &r).expect_err("json");
        assert!(matches!(e, wx_core::Error::Decode(_)), "{e:?}");
    }

    #[test]
    fn filenames_are_read_safely() {
        let cases = [
            (r#"attachment; filename="a.jpg""#, Some("a.jpg")),
            ("attachment; filename=b.png", Some("b.png")),
            (
                r#"attachment; filename="x.jpg"; filename*=UTF-8''%E5%B0%81%E9%9D%A2.jpg"#,
                Some("封面.jpg"),
            ),
            (r#"attachment; filename="../../etc/passwd""#, Some("passwd")),
            (r#"attachment; filename="C:\\x\\y.gif""#, Some("y.gif")),
            (r#"attachment; filename="..""#, None),
            (r#"attachment; filename="""#, None),
            ("attachment", None),
            ("attachment; filename*=UTF-8''%FF", None),
        ];
        for (value, expected) in cases {
            assert_eq!(disposition_filename(value).as_deref(), expected, "{value}");
        }
    }

    #[test]
    fn debug_hides_the_bytes() {
        let f = MediaFile::new(&b"SECRETBYTES"[..], Some("image/png".into()), None);
        let d = format!("{f:?}");
        assert!(!d.contains("SECRETBYTES") && d.contains("11"), "{d}");
    }
}
