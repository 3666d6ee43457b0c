//! Marking an inbound message read: `PUT /v1/messages/{id}` with `{"status":"read"}`
//! (On-Premises), or the Cloud API's `POST .../messages` with
//! `{"messaging_product":"whatsapp","status":"read","message_id":"..."}`.

use serde_json::Value;

use super::field::{Obj, wrong_type};
use crate::{ErrorCode, Rejection};

/// Checks an On-Premises mark-as-read body.
pub fn parse_read(request: &Value) -> Result<(), Rejection> {
    let obj = object(request)?;
    obj.only(&["status"])?;
    status(&obj)
}

/// Whether a Cloud `.../messages` body is a read receipt rather than a message to send.
pub fn is_cloud_read(request: &Value) -> bool {
    request.get("status").is_some()
}

/// Checks a Cloud read receipt and returns the id of the message to mark read.
pub fn parse_cloud_read(request: &Value) -> Result<String, Rejection> {
    let obj = object(request)?;
    obj.only(&["messaging_product", "status", "message_id"])?;
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
    obj.req_text("message_id", 256)
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
