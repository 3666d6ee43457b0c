//! The actions of catalog and flow messages: `{"name": "catalog_message" | "flow",
//! "parameters": {...}}`. A flow names its `flow_id`, a `flow_token`, a CTA of at most 20
//! characters, message version 3, and optionally its mode, action and the first screen's payload.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Action, MAX_FLOW_CTA, MAX_RETAILER_ID};
use crate::Rejection;
use crate::messages::field::{Obj, not_allowed, wrong_type};

/// `{"name": "catalog_message" | "flow", "parameters": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "name", content = "parameters", rename_all = "snake_case")]
pub enum Named {
    CatalogMessage(CatalogParameters),
    Flow(FlowParameters),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogParameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) thumbnail_product_retailer_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowParameters {
    pub(crate) flow_message_version: String,
    pub(crate) flow_token: String,
    pub(crate) flow_id: String,
    pub(crate) flow_cta: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) flow_action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) flow_action_payload: Option<FlowPayload>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowPayload {
    pub(crate) screen: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<Map<String, Value>>,
}

fn named(action: &Obj<'_>, name: &str) -> Result<(), Rejection> {
    action.only(&["name", "parameters"])?;
    match action.required("name", action.str("name")?)? {
        n if n == name => Ok(()),
        other => Err(Rejection::invalid(&action.at("name"), format!("'{other}' must be '{name}'"))),
    }
}

pub(super) fn catalog(action: &Obj<'_>) -> Result<Action, Rejection> {
    named(action, "catalog_message")?;
    let thumbnail = match action.obj("parameters")? {
        None => None,
        Some(p) => {
            p.only(&["thumbnail_product_retailer_id"])?;
            p.opt_nonblank("thumbnail_product_retailer_id", MAX_RETAILER_ID)?
        }
    };
    Ok(Action::Named(Named::CatalogMessage(CatalogParameters {
        thumbnail_product_retailer_id: thumbnail,
    })))
}

pub(super) fn flow(action: &Obj<'_>) -> Result<Action, Rejection> {
    named(action, "flow")?;
    let p = action.req_obj("parameters")?;
    p.only(&[
        "flow_message_version",
        "flow_token",
        "flow_id",
        "flow_cta",
        "mode",
        "flow_action",
        "flow_action_payload",
    ])?;
    let version = match p.get("flow_message_version") {
        None => return Err(Rejection::missing(&p.at("flow_message_version"))),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(wrong_type(&p.at("flow_message_version"), "a string", other));
        }
    };
    if version != "3" {
        return Err(Rejection::invalid(
            &p.at("flow_message_version"),
            format!("'{version}' must be '3'"),
        ));
    }
    let mode = one_of(&p, "mode", &["draft", "published"])?;
    let flow_action = one_of(&p, "flow_action", &["navigate", "data_exchange"])?;
    let payload = match p.obj("flow_action_payload")? {
        None => None,
        Some(_) if flow_action.as_deref() == Some("data_exchange") => {
            return Err(not_allowed(
                &p.at("flow_action_payload"),
                "when flow_action is data_exchange",
            ));
        }
        Some(payload) => {
            payload.only(&["screen", "data"])?;
            let data = match payload.obj("data")? {
                None => None,
                Some(d) if d.map.is_empty() => {
                    return Err(Rejection::invalid(&d.path, "must not be an empty object"));
                }
                Some(d) => Some(d.map.clone()),
            };
            Some(FlowPayload { screen: payload.req_text("screen", 256)?, data })
        }
    };
    Ok(Action::Named(Named::Flow(FlowParameters {
        flow_message_version: version,
        flow_token: p.req_text("flow_token", 1024)?,
        flow_id: p.req_text("flow_id", 256)?,
        flow_cta: p.req_text("flow_cta", MAX_FLOW_CTA)?,
        mode,
        flow_action,
        flow_action_payload: payload,
    })))
}

fn one_of(obj: &Obj<'_>, key: &str, allowed: &[&str]) -> Result<Option<String>, Rejection> {
    match obj.str(key)? {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v.to_owned())),
        Some(other) => Err(Rejection::invalid(
            &obj.at(key),
            format!("'{other}' is not one of {}", allowed.join(", ")),
        )),
    }
}
