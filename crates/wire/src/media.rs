//! `POST /v1/media`: which media types an upload may have and how large each may be
//! (`docs/onprem-api.md` section 5). The upload is the raw file with its type in `Content-Type`, not
//! multipart. Sizes are in binary units (1 MB = 1,048,576 bytes), the generous reading.

use crate::{ErrorCode, Rejection};

const KB: u64 = 1024;
const MB: u64 = 1024 * KB;

/// The largest upload of any type (On-Premises documented 64 MB).
pub const MAX_MEDIA_BYTES: u64 = 64 * MB;

/// What WhatsApp does with a media type, which sets its size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Image,
    Sticker,
    Video,
    Document,
}

impl MediaKind {
    /// Audio and video 16 MB, images 5 MB, stickers 100 KB (On-Premises sent static stickers
    /// only, and those must stay under 100 KB), documents 100 MB capped by the 64 MB of any upload.
    pub const fn max_bytes(self) -> u64 {
        match self {
            Self::Audio | Self::Video => 16 * MB,
            Self::Image => 5 * MB,
            Self::Sticker => 100 * KB,
            Self::Document => MAX_MEDIA_BYTES,
        }
    }
}

const AUDIO: [&str; 5] = ["audio/aac", "audio/mp4", "audio/amr", "audio/mpeg", "audio/ogg"];
const IMAGE: [&str; 2] = ["image/jpeg", "image/png"];
const VIDEO: [&str; 2] = ["video/mp4", "video/3gpp"];
const STICKER: &str = "image/webp";

/// A validated upload type: `type/subtype` in lower case plus any parameters as sent
/// (`audio/ogg; codecs=opus`), and the kind it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    value: String,
    kind: MediaKind,
}

impl MediaType {
    /// Parses a `Content-Type` header value. Audio, image and video types must be ones WhatsApp
    /// plays; any other well-formed type is a document ("any valid MIME type").
    pub fn parse(content_type: Option<&str>) -> Result<Self, Rejection> {
        let raw = content_type.map(str::trim).unwrap_or_default();
        if raw.is_empty() {
            return Err(Rejection::missing("Content-Type"));
        }
        let (essence, params) = raw.split_once(';').unwrap_or((raw, ""));
        let essence = essence.trim().to_ascii_lowercase();
        let well_formed =
            essence.split_once('/').is_some_and(|(top, sub)| is_token(top) && is_token(sub))
                && raw.len() <= 255
                && raw.chars().all(|c| c.is_ascii() && !c.is_ascii_control());
        if !well_formed {
            return Err(Rejection::invalid("Content-Type", format!("'{raw}' is not a media type")));
        }
        let (top, _) = essence.split_once('/').unwrap_or_default();
        let kind = match top {
            _ if essence == STICKER => MediaKind::Sticker,
            "audio" => supported(&essence, &AUDIO, MediaKind::Audio)?,
            "image" => supported(&essence, &IMAGE, MediaKind::Image)?,
            "video" => supported(&essence, &VIDEO, MediaKind::Video)?,
            "multipart" => {
                return Err(Rejection::invalid(
                    "Content-Type",
                    "multipart uploads are not supported; send the file itself as the body, \
                     with its own type in Content-Type",
                ));
            }
            _ => MediaKind::Document,
        };
        let params = params.trim();
        let value = if params.is_empty() { essence } else { format!("{essence}; {params}") };
        Ok(Self { value, kind })
    }

    /// A type another party vouches for (media a customer sent through the Cloud API): one
    /// [`MediaType::parse`] takes keeps its kind; any other is kept as a document, and what is
    /// not a media type at all becomes `application/octet-stream`.
    pub fn received(content_type: &str) -> Self {
        Self::parse(Some(content_type)).unwrap_or_else(|_| {
            let essence = content_type.split(';').next().unwrap_or_default().trim();
            let well_formed =
                essence.split_once('/').is_some_and(|(t, s)| is_token(t) && is_token(s))
                    && content_type.len() <= 255
                    && content_type.chars().all(|c| c.is_ascii() && !c.is_ascii_control());
            let value = if well_formed { content_type.trim() } else { "application/octet-stream" };
            Self { value: value.to_ascii_lowercase(), kind: MediaKind::Document }
        })
    }

    /// The type as stored and served back on download.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    pub const fn kind(&self) -> MediaKind {
        self.kind
    }

    pub const fn max_bytes(&self) -> u64 {
        self.kind.max_bytes()
    }

    /// The refusal of an upload larger than this type allows, worded as the Webapp did
    /// ("Request content exceeds size of 100 MB").
    pub fn too_large(&self) -> Rejection {
        let limit = self.max_bytes();
        let size =
            if limit >= MB { format!("{} MB", limit / MB) } else { format!("{} KB", limit / KB) };
        Rejection::new(
            ErrorCode::ParameterValueInvalid,
            format!("Request content exceeds size of {size} allowed for {}", self.value),
        )
    }
}

/// 1008, as the Webapp answered an upload without bytes.
pub fn empty_upload() -> Rejection {
    Rejection::new(ErrorCode::RequiredParameterMissing, "Request had no (empty) content")
}

fn supported(essence: &str, list: &[&str], kind: MediaKind) -> Result<MediaKind, Rejection> {
    if list.contains(&essence) {
        return Ok(kind);
    }
    let mut all: Vec<&str> = list.to_vec();
    if kind == MediaKind::Image {
        all.push(STICKER);
    }
    Err(Rejection::invalid(
        "Content-Type",
        format!("{essence} is not a supported type; use one of {}", all.join(", ")),
    ))
}

/// An RFC 6838 restricted name: what `type` and `subtype` are made of.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(ct: &str) -> Result<MediaKind, Rejection> {
        MediaType::parse(Some(ct)).map(|t| t.kind())
    }

    #[test]
    fn kinds_and_limits() {
        assert_eq!(kind("image/jpeg"), Ok(MediaKind::Image));
        assert_eq!(kind("IMAGE/PNG"), Ok(MediaKind::Image));
        assert_eq!(kind("image/webp"), Ok(MediaKind::Sticker));
        assert_eq!(kind("audio/ogg; codecs=opus"), Ok(MediaKind::Audio));
        assert_eq!(kind("video/3gpp"), Ok(MediaKind::Video));
        assert_eq!(kind("application/pdf"), Ok(MediaKind::Document));
        assert_eq!(kind("text/plain; charset=utf-8"), Ok(MediaKind::Document));
        assert_eq!(MediaKind::Image.max_bytes(), 5 * 1024 * 1024);
        assert_eq!(MediaKind::Document.max_bytes(), MAX_MEDIA_BYTES);
        let t = MediaType::parse(Some(" Audio/OGG ;codecs=opus ")).unwrap();
        assert_eq!(t.as_str(), "audio/ogg; codecs=opus");
    }

    #[test]
    fn refusals_name_the_header() {
        let missing = MediaType::parse(None).unwrap_err();
        assert_eq!(missing.code, ErrorCode::RequiredParameterMissing);
        assert!(missing.details.contains("'Content-Type'"));
        for bad in [
            "image/gif",
            "video/avi",
            "audio/wav",
            "multipart/form-data; boundary=x",
            "jpeg",
            "*/*",
            "image/",
        ] {
            let r = kind(bad).unwrap_err();
            assert_eq!(r.code, ErrorCode::ParameterValueInvalid, "{bad}");
            assert!(r.details.starts_with("Content-Type: "), "{bad}: {}", r.details);
        }
        let big = MediaType::parse(Some("image/webp")).unwrap().too_large();
        assert!(big.details.contains("100 KB"), "{}", big.details);
    }
}
