//! Marking an inbound message read: `PUT /v1/messages/{id}` with `{"status":"read"}`
//! (On-Premises), or the Cloud API's `POST .../messages` with
//! `{"messaging_product":"whatsapp","status":"read","message_id":"..."}`. Either may ask for a
//! typing indicator, `"typing_indicator":{"type":"text"}` (Cloud API, 2025): the customer sees
//! the business typing until it replies or 25 seconds pass.

use serde_json::Value;

use super::field::{Obj, wrong_type};
use crate::{ErrorCode, Rejection};

/// A read receipt: the message read, and whether a typing indicator is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReceipt {
    pub message_id: String,
    pub typing_indicator: bool,
}

/// Checks an On-Premises mark-as-read body: whether it asks for a typing indicator.
pub fn parse_read(request: &Value) -> Result<bool, Rejection> {
    let obj = object(request)?;
    obj.only(&["status", "typing_indicator"])?;
    status(&obj)?;
    typing_indicator(&obj)
}

/// Whether a Cloud `.../messages` body is a read receipt rather than a message to send.
pub fn is_cloud_read(request: &Value) -> bool {
    request.get("status").is_some()
}

/// Checks a Cloud read receipt and returns the id of the message to mark read.
pub fn parse_cloud_read(request: &Value) -> Result<ReadReceipt, Rejection> {
    let obj = object(request)?;
    obj.only(&["messaging_product", "status", "message_id", "typing_indicator"])?;
    match obj.required("messaging_product", obj.str("messaging_product")?)? {
        "whatsapp" => {}
        other => {
            return Err(Rejection::invalid(
                "messaging_product",
                format!("'{other}' must be 'whatsapp'"),
            ));
        }
    }
    status(&obj)?;
    let typing_indicator = typing_indicator(&obj)?;
    Ok(ReadReceipt { message_id: obj.req_text("message_id", 256)?, typing_indicator })
}

/// `typing_indicator`: absent, or `{"type":"text"}` (the only type there is).
fn typing_indicator(obj: &Obj<'_>) -> Result<bool, Rejection> {
    let Some(indicator) = obj.obj("typing_indicator")? else { return Ok(false) };
    indicator.only(&["type"])?;
    match indicator.required("type", indicator.str("type")?)? {
        "text" => Ok(true),
        other => {
            Err(Rejection::invalid("typing_indicator.type", format!("'{other}' must be 'text'")))
        }
    }
}

fn object(request: &Value) -> Result<Obj<'_>, Rejection> {
    match request {
        Value::Object(map) => Ok(Obj { path: String::new(), map }),
        other => Err(Rejection::new(
            ErrorCode::InvalidRequest,
            wrong_type("request body", "a JSON object", other).details,
        )),
    }
}

fn status(obj: &Obj<'_>) -> Result<(), Rejection> {
    match obj.required("status", obj.str("status")?)? {
        "read" => Ok(()),
        other => Err(Rejection::invalid("status", format!("'{other}' must be 'read'"))),
    }
}
