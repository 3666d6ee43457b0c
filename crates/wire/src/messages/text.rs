//! `text` messages: a body of at most 4096 characters (1001 beyond), and `preview_url` at the
//! top level (On-Premises) or inside `text` (Cloud API).

use serde::Serialize;

use super::field::Obj;
use crate::{ErrorCode, Rejection};

/// The longest text body WhatsApp accepts (1001 beyond it).
pub const MAX_TEXT_BODY: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextBody {
    pub(crate) body: String,
}

impl TextBody {
    pub fn body(&self) -> &str {
        &self.body
    }
}

/// Parses `text` and the `preview_url` of either dialect (`top` is the top-level one).
pub(crate) fn parse(text: &Obj<'_>, top: Option<bool>) -> Result<(TextBody, bool), Rejection> {
    text.only(&["body", "preview_url"])?;
    let body = text.required("body", text.str("body")?)?;
    if body.trim().is_empty() {
        return Err(Rejection::invalid(&text.at("body"), "must not be empty"));
    }
    let length = body.chars().count();
    if length > MAX_TEXT_BODY {
        return Err(Rejection::new(
            ErrorCode::MessageTooLong,
            format!("{}: at most {MAX_TEXT_BODY} characters (got {length})", text.at("body")),
        ));
    }
    let nested = text.bool("preview_url")?;
    Ok((TextBody { body: body.to_owned() }, top.or(nested).unwrap_or(false)))
}
