//! Temporary media (`cgi-bin/media/*`) and the file store permanent materials share: uploads
//! are parsed as the multipart bodies they are (with `multer`, through wx-core's test tools),
//! checked against WeChat's documented size and format rules, and kept with an id; temporary
//! media expire 3 days after upload by the sandbox clock.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use wx_core::test_util::{FormPart, form_parts};

use super::*;
use crate::paths::{MEDIA_GET, MEDIA_UPLOAD, MEDIA_UPLOAD_IMG};

/// This group's routes.
pub(super) const ROUTES: &[Route] = &[
    Route::json(MEDIA_UPLOAD, |w, c| w.media_upload(c)),
    Route::raw(MEDIA_GET, |w, c| {
        let answer = w.media_get(&c.query, c.now);
        w.file_answer(answer, c.now)
    }),
    Route::json(MEDIA_UPLOAD_IMG, |w, c| w.media_uploadimg(c)),
];

/// How long temporary media are kept.
pub(crate) const MEDIA_TTL: Duration = Duration::from_secs(3 * 24 * 3600);

const MIB: usize = 1024 * 1024;

pub(super) const E_MEDIA_TYPE: WxError = err(ErrCode(40004), "invalid media type");
pub(super) const E_FILE_TYPE: WxError = err(ErrCode(40005), "invalid file type");
pub(super) const E_FILE_SIZE: WxError = err(ErrCode(40006), "invalid meida size");
pub(super) const E_MEDIA_ID: WxError = err(ErrCode(40007), "invalid media_id");
pub(super) const E_MEDIA_MISSING: WxError = err(ErrCode(41005), "media data missing");

/// A stored file: temporary media, a permanent material, or an image for article bodies.
#[derive(Clone, Debug)]
pub(super) struct Stored {
    pub(super) kind: &'static str,
    pub(super) filename: String,
    pub(super) content_type: String,
    pub(super) bytes: Bytes,
    pub(super) created_at: SystemTime,
    /// A video material's title and introduction.
    pub(super) video: Option<(String, String)>,
    pub(super) url: String,
}

/// Per-app files.
#[derive(Default)]
pub(super) struct MediaState {
    pub(super) temporary: HashMap<String, Stored>,
    pub(super) permanent: Vec<(String, Stored)>,
    pub(super) article_images: Vec<String>,
    /// News materials (made before 2022-02-28; set-up only): id, articles, creation time.
    pub(super) news: Vec<(String, Vec<Value>, SystemTime)>,
    /// The count limits of permanent (images, other types), when set up lower or higher.
    pub(super) limits: Option<(usize, usize)>,
}

/// WeChat's documented rules: the most bytes and the extensions of each kind of upload.
pub(super) fn rules(kind: &str, permanent: bool) -> Option<(usize, &'static [&'static str])> {
    Some(match (kind, permanent) {
        ("image", false) => (10 * MIB, &["png", "jpeg", "jpg", "gif"]),
        ("image", true) => (10 * MIB, &["bmp", "png", "jpeg", "jpg", "gif"]),
        ("voice", false) => (2 * MIB, &["amr", "mp3"]),
        ("voice", true) => (2 * MIB, &["mp3", "wma", "wav", "amr"]),
        ("video", _) => (10 * MIB, &["mp4"]),
        ("thumb", _) => (64 * 1024, &["jpg"]),
        ("uploadimg", _) => (MIB - 1, &["jpg", "jpeg", "png"]),
        _ => return None,
    })
}

/// The `media` file part of an upload, checked against `rules`; the other parts too.
pub(super) fn uploaded(
    c: &Call<'_>,
    kind: &'static str,
    permanent: bool,
) -> Result<(Stored, Vec<FormPart>), WxError> {
    let (max, extensions) = rules(kind, permanent).ok_or(E_MEDIA_TYPE)?;
    let parts = form_parts(c.request).map_err(|_| E_MEDIA_MISSING)?;
    let file = parts
        .iter()
        .find(|p| p.name == "media" && p.filename.is_some())
        .ok_or(E_MEDIA_MISSING)?;
    let filename = file.filename.clone().unwrap_or_default();
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if !extensions.contains(&ext.as_str()) {
        return Err(E_FILE_TYPE);
    }
    if file.bytes.is_empty() || file.bytes.len() > max {
        return Err(E_FILE_SIZE);
    }
    let stored = Stored {
        kind,
        content_type: file
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".to_owned()),
        filename,
        bytes: file.bytes.clone(),
        created_at: c.now,
        video: None,
        url: String::new(),
    };
    Ok((stored, parts))
}

/// The `type` query parameter as one of WeChat's media types.
pub(super) fn media_type(q: &Query) -> Result<&'static str, WxError> {
    match q.get("type") {
        Some("image") => Ok("image"),
        Some("voice") => Ok("voice"),
        Some("video") => Ok("video"),
        Some("thumb") => Ok("thumb"),
        _ => Err(E_MEDIA_TYPE),
    }
}

/// A file answer as WeChat sends it: its type and an attachment filename.
pub(super) fn file_response(media_id: &str, f: &Stored) -> HttpResponse {
    let mut r = HttpResponse::new(StatusCode::OK, f.bytes.clone());
    let ext = f.filename.rsplit_once('.').map_or("bin", |(_, e)| e);
    if let Ok(v) = HeaderValue::from_str(&f.content_type) {
        r.headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{media_id}.{ext}\"")) {
        r.headers.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// What a download path answers: a file, a JSON document, or a WeChat error.
pub(super) enum FileAnswer {
    File(HttpResponse),
    Json(Value),
}

impl World {
    fn media_upload(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let kind = media_type(&c.query)?;
        let (stored, _) = uploaded(c, kind, false)?;
        let media_id = self.random_string(64);
        let created = unix_secs(c.now);
        self.apps[i]
            .ext
            .get_mut::<MediaState>()
            .temporary
            .insert(media_id.clone(), stored);
        let id_key = if kind == "thumb" {
            "thumb_media_id"
        } else {
            "media_id"
        };
        Ok(json!({ "type": kind, id_key: media_id, "created_at": created }))
    }

    fn media_get(&mut self, q: &Query, now: SystemTime) -> Result<FileAnswer, WxError> {
        let i = self.check_base_token(q, now)?;
        let media_id = q.get("media_id").ok_or(E_MEDIA_ID)?;
        let state = self.apps[i].ext.get_mut::<MediaState>();
        state
            .temporary
            .retain(|_, m| m.created_at + MEDIA_TTL > now);
        let f = state.temporary.get(media_id).ok_or(E_MEDIA_ID)?;
        Ok(if f.kind == "video" {
            FileAnswer::Json(
                json!({ "video_url": format!("http://sandbox.invalid/video/{media_id}") }),
            )
        } else {
            FileAnswer::File(file_response(media_id, f))
        })
    }

    /// Renders a download's answer: the file, or JSON (a document or the error).
    pub(super) fn file_answer(
        &mut self,
        a: Result<FileAnswer, WxError>,
        now: SystemTime,
    ) -> HttpResponse {
        let body = match a {
            Ok(FileAnswer::File(r)) => return r,
            Ok(FileAnswer::Json(v)) => v,
            Err(e) => self.error_body(&e, now),
        };
        json_response(Family::CgiBin, body.to_string().into_bytes())
    }

    fn media_uploadimg(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        uploaded(c, "uploadimg", false)?;
        let url = format!("http://mmbiz.qpic.cn/sandbox/{}/0", self.random_string(32));
        self.apps[i]
            .ext
            .get_mut::<MediaState>()
            .article_images
            .push(url.clone());
        Ok(json!({ "url": url }))
    }
}
