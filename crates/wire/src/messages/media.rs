//! Media objects (`image`, `audio`, `video`, `document`, `sticker`, and the media of
//! interactive headers and template parameters): exactly one of `id` (an uploaded media id) or
//! `link` (http/https only), an optional `provider`, `caption` where the kind allows one and
//! `filename` only for documents.

use serde::Serialize;

use super::field::{Obj, not_allowed};
use crate::{ErrorCode, Rejection};

/// The longest media caption accepted (as the Cloud API; On-Premises sources are silent).
pub const MAX_CAPTION: usize = 1024;
/// The longest `link` accepted.
pub const MAX_LINK: usize = 2048;

/// Which kind of media an object describes; decides which optional fields it may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Audio,
    Video,
    Document,
    Sticker,
}

impl MediaKind {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Document => "document",
            Self::Sticker => "sticker",
        }
    }

    const fn takes_caption(self) -> bool {
        matches!(self, Self::Image | Self::Video | Self::Document)
    }
}

/// Where the bytes come from: an uploaded media id or a URL to fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaSource {
    Id(String),
    Link(String),
}

/// A validated media object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Media {
    #[serde(flatten)]
    pub(crate) source: MediaSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) provider: Option<Provider>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) caption: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) filename: Option<String>,
}

/// A configured media provider (`/v1/settings/application/media/providers`), On-Premises only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provider {
    pub(crate) name: String,
}

/// Where a media object may appear: captions are not shown in interactive headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Message,
    Header,
}

impl Media {
    pub fn source(&self) -> &MediaSource {
        &self.source
    }

    /// The uploaded media id this object refers to, if it refers to one.
    pub fn id(&self) -> Option<&str> {
        match &self.source {
            MediaSource::Id(id) => Some(id),
            MediaSource::Link(_) => None,
        }
    }

    pub(crate) fn parse(obj: &Obj<'_>, kind: MediaKind, place: Place) -> Result<Self, Rejection> {
        obj.only(&["id", "link", "provider", "caption", "filename"])?;
        let id = obj.opt_nonblank("id", 256)?;
        let link = obj.opt_nonblank("link", MAX_LINK)?;
        let source = match (id, link) {
            (Some(id), None) => MediaSource::Id(id),
            (None, Some(link)) => {
                check_link(&obj.at("link"), &link)?;
                MediaSource::Link(link)
            }
            (None, None) => {
                return Err(Rejection::new(
                    ErrorCode::RequiredParameterMissing,
                    format!("{}: exactly one of 'id' or 'link' is required", obj.path),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(Rejection::new(
                    ErrorCode::ParameterNotRequired,
                    format!("{}: exactly one of 'id' or 'link' is allowed, not both", obj.path),
                ));
            }
        };
        let provider = match obj.obj("provider")? {
            None => None,
            Some(p) => {
                p.only(&["name"])?;
                Some(Provider { name: p.req_text("name", 256)? })
            }
        };
        let caption = if kind.takes_caption() && place == Place::Message {
            obj.text("caption", MAX_CAPTION)?
        } else {
            let why = if place == Place::Header {
                "in a header".to_owned()
            } else {
                format!("for {}", kind.name())
            };
            obj.forbid("caption", &why)?;
            None
        };
        let filename = if kind == MediaKind::Document {
            obj.opt_nonblank("filename", 256)?
        } else {
            if obj.has("filename") {
                return Err(not_allowed(&obj.at("filename"), "except for documents"));
            }
            None
        };
        Ok(Self { source, provider, caption, filename })
    }
}

/// `link` must be an absolute http or https URL with a host.
fn check_link(path: &str, link: &str) -> Result<(), Rejection> {
    let lower = link.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    let valid = host.is_some_and(|h| !h.is_empty() && !h.starts_with(':'))
        && !link.chars().any(char::is_whitespace);
    if valid {
        Ok(())
    } else {
        Err(Rejection::invalid(path, format!("'{link}' is not an http or https URL")))
    }
}
