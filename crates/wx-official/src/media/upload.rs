//! The file of an upload and WeChat's documented rules for each kind of media.

use std::fmt;

use bytes::Bytes;
use wx_core::{InvalidInput, MultipartForm, Result};

const MIB: usize = 1024 * 1024;

/// The largest file WeChat serves from its media downloads (an image, 10 MiB): the answer-size
/// limit of `media/get` and `material/get_material`.
pub(crate) const MAX_DOWNLOAD: usize = 10 * MIB;

/// A kind of media.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaType {
    /// An image.
    Image,
    /// A voice recording.
    Voice,
    /// A video.
    Video,
    /// A thumbnail (for video and music messages).
    Thumb,
}

impl MediaType {
    /// WeChat's name of the type (`image`, `voice`, `video`, `thumb`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Image => "image",
            MediaType::Voice => "voice",
            MediaType::Video => "video",
            MediaType::Thumb => "thumb",
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The documented size and formats of one kind of upload.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rules {
    max_bytes: usize,
    /// Accepted filename extensions, lower case.
    extensions: &'static [&'static str],
    too_large: &'static str,
    bad_format: &'static str,
}

impl Rules {
    /// `media/upload` (temporary media).
    pub(crate) fn temporary(kind: MediaType) -> Rules {
        match kind {
            MediaType::Image => Rules::new(
                10 * MIB,
                &["png", "jpeg", "jpg", "gif"],
                "an image: at most 10 MiB",
                "an image: png, jpeg, jpg or gif",
            ),
            MediaType::Voice => Rules::new(
                2 * MIB,
                &["amr", "mp3"],
                "a voice: at most 2 MiB",
                "a voice: amr or mp3",
            ),
            MediaType::Video => Rules::VIDEO,
            MediaType::Thumb => Rules::THUMB,
        }
    }

    /// `material/add_material` (permanent materials).
    pub(crate) fn permanent(kind: MediaType) -> Rules {
        match kind {
            MediaType::Image => Rules::new(
                10 * MIB,
                &["bmp", "png", "jpeg", "jpg", "gif"],
                "an image: at most 10 MiB",
                "an image: bmp, png, jpeg, jpg or gif",
            ),
            MediaType::Voice => Rules::new(
                2 * MIB,
                &["mp3", "wma", "wav", "amr"],
                "a voice: at most 2 MiB",
                "a voice: mp3, wma, wav or amr",
            ),
            MediaType::Video => Rules::VIDEO,
            MediaType::Thumb => Rules::THUMB,
        }
    }

    const VIDEO: Rules = Rules::new(
        10 * MIB,
        &["mp4"],
        "a video: at most 10 MiB",
        "a video: mp4",
    );
    const THUMB: Rules = Rules::new(
        64 * 1024,
        &["jpg"],
        "a thumb: at most 64 KiB",
        "a thumb: jpg",
    );

    /// `media/uploadimg` (images inside article bodies): under 1 MiB, jpg or png.
    pub(crate) const ARTICLE_IMAGE: Rules = Rules::new(
        MIB - 1,
        &["jpg", "jpeg", "png"],
        "an article image: under 1 MiB",
        "an article image: jpg or png",
    );

    const fn new(
        max_bytes: usize,
        extensions: &'static [&'static str],
        too_large: &'static str,
        bad_format: &'static str,
    ) -> Rules {
        Rules {
            max_bytes,
            extensions,
            too_large,
            bad_format,
        }
    }
}

/// A file to upload: its filename (whose extension WeChat checks), content type and bytes.
///
/// `Debug` shows the filename, content type and size, not the bytes.
#[derive(Clone)]
#[must_use]
pub struct UploadFile {
    filename: String,
    content_type: Option<String>,
    bytes: Bytes,
}

impl UploadFile {
    /// A file named `filename` (e.g. `cover.jpg`); the content type follows from the extension
    /// unless set with [`content_type`](Self::content_type).
    pub fn new(filename: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        UploadFile {
            filename: filename.into(),
            content_type: None,
            bytes: bytes.into(),
        }
    }

    /// Sets the part's `Content-Type` instead of the one the extension implies.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// The filename.
    #[must_use]
    pub fn filename(&self) -> &str {
        &self.filename
    }

    /// The size in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the file is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn extension(&self) -> Option<String> {
        let (stem, ext) = self.filename.rsplit_once('.')?;
        (!stem.is_empty()).then(|| ext.to_ascii_lowercase())
    }

    /// The form WeChat expects (the file in the `media` field), after checking `rules`.
    pub(crate) fn form(&self, rules: Rules) -> Result<MultipartForm> {
        let invalid = |reason| wx_core::Error::InvalidInput(InvalidInput::new("file", reason));
        if self.bytes.is_empty() {
            return Err(invalid("is empty"));
        }
        if self.bytes.len() > rules.max_bytes {
            return Err(invalid(rules.too_large));
        }
        let ext = self
            .extension()
            .filter(|e| rules.extensions.contains(&e.as_str()))
            .ok_or_else(|| invalid(rules.bad_format))?;
        let content_type = self
            .content_type
            .clone()
            .unwrap_or_else(|| content_type_of(&ext).to_owned());
        Ok(MultipartForm::new().file(
            "media",
            self.filename.as_str(),
            content_type,
            self.bytes.clone(),
        ))
    }
}

impl fmt::Debug for UploadFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadFile")
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

fn content_type_of(ext: &str) -> &'static str {
    match ext {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "amr" => "audio/amr",
        "mp3" => "audio/mpeg",
        "wma" => "audio/x-ms-wma",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}
