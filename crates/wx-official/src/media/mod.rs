//! Temporary media (`cgi-bin/media/*`): uploads kept 3 days, downloads, images for article
//! bodies; and [`MediaFile`], the answer type of every download.
//!
//! Each upload checks WeChat's documented size and format rules for its type before anything
//! is sent (a refused file is a typed [`wx_core::Error::InvalidInput`] and no request).

mod file;
mod upload;

use serde::Deserialize;
use wx_core::{HttpResponse, Result, check_arg};

use crate::endpoint::Endpoint;
use crate::request::{FromResponse, Request};

pub use file::MediaFile;
pub(crate) use file::{FileOrJson, file_or_json};
pub(crate) use upload::{MAX_DOWNLOAD, Rules};
pub use upload::{MediaType, UploadFile};

/// Longest media id accepted as an argument (WeChat's are 64 characters or fewer).
pub(crate) const MAX_MEDIA_ID_LEN: usize = 256;

/// `POST /cgi-bin/media/upload?type=...`: uploads a temporary media file (kept 3 days).
///
/// Documented rules, checked before sending: image ≤ 10 MiB (png, jpeg, jpg, gif), voice
/// ≤ 2 MiB (amr, mp3), video ≤ 10 MiB (mp4), thumb ≤ 64 KiB (jpg).
///
/// ```
/// use wx_official::Request;
/// use wx_official::media::{MediaType, UploadFile, UploadMedia};
/// let up = UploadMedia::new(MediaType::Image, UploadFile::new("cover.jpg", vec![0xff, 0xd8]));
/// let ep = up.endpoint()?;
/// assert_eq!(ep.name(), "cgi-bin/media/upload");
/// assert!(ep.content_type().unwrap().to_str().unwrap().starts_with("multipart/form-data"));
/// # Ok::<(), wx_core::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct UploadMedia {
    kind: MediaType,
    file: UploadFile,
}

impl UploadMedia {
    /// Uploads `file` as temporary media of type `kind`.
    pub fn new(kind: MediaType, file: UploadFile) -> Self {
        UploadMedia { kind, file }
    }
}

/// The answer of [`UploadMedia`].
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct UploadedMedia {
    /// The media type WeChat stored (`image`, `voice`, `video`, `thumb`).
    #[serde(rename = "type", default)]
    pub media_type: String,
    /// The media id (WeChat names it `thumb_media_id` for thumbs).
    #[serde(alias = "thumb_media_id")]
    pub media_id: String,
    /// When it was stored (Unix seconds); it expires 3 days later.
    #[serde(default)]
    pub created_at: i64,
}

impl Request for UploadMedia {
    type Response = UploadedMedia;
    fn endpoint(&self) -> Result<Endpoint> {
        let form = self.file.form(Rules::temporary(self.kind))?;
        Ok(Endpoint::post_form("/cgi-bin/media/upload", &form)?
            .query("type", self.kind.as_str())
            .with_base_token())
    }
}

/// `GET /cgi-bin/media/get`: downloads a temporary media file (a video answers with its URL).
/// The answer may be up to 10 MiB (WeChat's largest media size), whatever the transport's
/// default cap for JSON answers.
#[derive(Clone, Debug)]
#[must_use]
pub struct GetMedia {
    media_id: String,
}

impl GetMedia {
    /// Downloads the media `media_id`.
    pub fn new(media_id: impl Into<String>) -> Self {
        GetMedia {
            media_id: media_id.into(),
        }
    }
}

/// The answer of [`GetMedia`]: the file, or for a video the URL to fetch it from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaContent {
    /// An image, voice or thumb file.
    File(MediaFile),
    /// A video: WeChat answers with its download URL (`video_url`).
    VideoUrl(String),
}

#[derive(Deserialize)]
struct VideoUrl {
    video_url: String,
}

impl FromResponse for MediaContent {
    fn from_response(endpoint: &'static str, response: &HttpResponse) -> Result<Self> {
        Ok(match file_or_json::<VideoUrl>(endpoint, response)? {
            FileOrJson::File(f) => MediaContent::File(f),
            FileOrJson::Json(v) => MediaContent::VideoUrl(v.video_url),
        })
    }
}

impl Request for GetMedia {
    type Response = MediaContent;
    fn endpoint(&self) -> Result<Endpoint> {
        check_arg("media_id", &self.media_id, MAX_MEDIA_ID_LEN)?;
        Ok(Endpoint::get("/cgi-bin/media/get")
            .query("media_id", self.media_id.as_str())
            .response_limit(MAX_DOWNLOAD)
            .with_base_token())
    }
}

/// `POST /cgi-bin/media/uploadimg`: uploads an image for use inside article bodies and
/// returns its URL (it counts against no material limit). Documented rule, checked before
/// sending: jpg or png, under 1 MiB.
#[derive(Clone, Debug)]
#[must_use]
pub struct UploadImage {
    file: UploadFile,
}

impl UploadImage {
    /// Uploads `file` as an image for article bodies.
    pub fn new(file: UploadFile) -> Self {
        UploadImage { file }
    }
}

/// The answer of [`UploadImage`].
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct UploadedImage {
    /// The image's URL, to put in an article's `content`.
    pub url: String,
}

impl Request for UploadImage {
    type Response = UploadedImage;
    fn endpoint(&self) -> Result<Endpoint> {
        let form = self.file.form(Rules::ARTICLE_IMAGE)?;
        Ok(Endpoint::post_form("/cgi-bin/media/uploadimg", &form)?.with_base_token())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Auth;
    use wx_core::Error;

    fn parts(ep: &Endpoint) -> String {
        String::from_utf8_lossy(ep.body_bytes().expect("body")).into_owned()
    }

    #[test]
    fn upload_encodes_the_media_part_and_type() {
        let ep = UploadMedia::new(
            MediaType::Voice,
            UploadFile::new("hello.AMR", &b"#!AMR"[..]),
        )
        .endpoint()
        .expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/media/upload");
        assert_eq!(ep.auth_kind(), Auth::BaseToken);
        assert!(!ep.is_idempotent());
        assert_eq!(ep.query_names().collect::<Vec<_>>(), ["type"]);
        let body = parts(&ep);
        assert!(
            body.contains(
                "Content-Disposition: form-data; name=\"media\"; filename=\"hello.AMR\"\r\nContent-Type: audio/amr\r\n\r\n#!AMR\r\n"
            ),
            "{body}"
        );
    }

    #[test]
    fn uploads_over_the_documented_rules_are_refused() {
        let cases = [
            (MediaType::Image, "a.jpg", 10 * 1024 * 1024 + 1),
            (MediaType::Voice, "a.mp3", 2 * 1024 * 1024 + 1),
            (MediaType::Video, "a.mp4", 10 * 1024 * 1024 + 1),
            (MediaType::Thumb, "a.jpg", 64 * 1024 + 1),
            (MediaType::Thumb, "a.png", 10),
            (MediaType::Image, "a.bmp", 10),
            (MediaType::Voice, "a.wav", 10),
            (MediaType::Video, "a.mov", 10),
            (MediaType::Image, "noextension", 10),
            (MediaType::Image, "a.jpg", 0),
        ];
        for (kind, name, len) in cases {
            let up = UploadMedia::new(kind, UploadFile::new(name, vec![1u8; len]));
            let e = up.endpoint().expect_err(name);
            assert!(
                matches!(e, Error::InvalidInput(ref i) if i.argument == "file"),
                "{kind:?} {name} {len}: {e:?}"
            );
        }
        // At the limit is fine.
        let _ = UploadMedia::new(
            MediaType::Thumb,
            UploadFile::new("t.JPG", vec![1u8; 64 * 1024]),
        )
        .endpoint()
        .expect("at the limit");
        let e = UploadImage::new(UploadFile::new("a.gif", vec![1u8; 10]))
            .endpoint()
            .expect_err("gif in article");
        assert!(matches!(e, Error::InvalidInput(_)));
        let e = UploadImage::new(UploadFile::new("a.png", vec![1u8; 1024 * 1024]))
            .endpoint()
            .expect_err("1 MiB");
        assert!(matches!(e, Error::InvalidInput(_)));
    }

    #[test]
    fn get_media_is_a_capped_download() {
        let ep = GetMedia::new("MEDIA_ID").endpoint().expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/media/get");
        assert_eq!(ep.response_limit_bytes(), Some(10 * 1024 * 1024));
        assert!(ep.is_idempotent());
        assert!(GetMedia::new("").endpoint().is_err());
        let video = HttpResponse::json(r#"{"video_url":"http://example.invalid/v.mp4"}"#);
        assert_eq!(
            MediaContent::from_response("x", &video).expect("video"),
            MediaContent::VideoUrl("http://example.invalid/v.mp4".into())
        );
    }

    #[test]
    fn upload_answers_decode() {
        let body = include_str!(
            "../../../../tests/fixtures/push/media_upload.success.wechatpy_fixture.json"
        );
        let r: UploadedMedia = wx_core::decode_response("x", body.as_bytes()).expect("fixture");
        assert_eq!(
            (r.media_type.as_str(), r.media_id.as_str(), r.created_at),
            ("image", "12345678", 123_456_789)
        );
        let thumb: UploadedMedia = wx_core::decode_response(
            "x",
            br#"{"type":"thumb","thumb_media_id":"T1","created_at":1}"#,
        )
        .expect("thumb");
        assert_eq!(thumb.media_id, "T1");
        let missing = include_str!(
            "../../../../tests/fixtures/push/media_upload.error_41005_media_data_missing.wxjava_issue316.json"
        );
        let e =
            wx_core::decode_response::<UploadedMedia>("x", missing.as_bytes()).expect_err("41005");
        assert_eq!(e.api().map(|a| a.code.0), Some(41005));
    }
}
