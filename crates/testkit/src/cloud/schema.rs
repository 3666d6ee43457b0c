//! Meta's OpenAPI description of the Cloud API (`cloud-api/business-messaging-api_v23.0.yaml`),
//! as JSON Schema validators for what the fake receives (send bodies) and sends (webhooks).
//!
//! OpenAPI 3 schemas are JSON Schema with a few differences; two matter here. Message schemas
//! are built with `allOf` from parts that each say `additionalProperties: false`, which in
//! JSON Schema rejects every property of the other parts; OpenAPI tools merge the parts, and so
//! does [`flatten`]. And a send is checked against the schema its `type` names (the
//! `discriminator` of `Message`), as OpenAPI means, rather than the bare `oneOf`.
//!
//! Where the description is narrower than the API Meta documents, the fake follows the
//! documentation: each such erratum is listed in [`ERRATA`], with what it changes and why. The
//! fake never accepts anything else the description refuses.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

const SPEC: &str = include_str!("../../cloud-api/business-messaging-api_v23.0.yaml");

/// What differs from Meta's description, and why.
pub const ERRATA: [(&str, &str); 9] = [
    (
        "biz_opaque_callback_data on every send",
        "Meta's send reference documents `biz_opaque_callback_data` for every message type; the \
         description's closed message schemas leave it out (added to `BaseMessageProperties`)",
    ),
    (
        "read receipts",
        "`{messaging_product, status: read, message_id, typing_indicator?}` goes to the same \
         path as sends; the description has an example of it but no schema (one is written here \
         from the example)",
    ),
    (
        "template button index",
        "the button `index` pattern `^[2-6, 11-14]$` is a broken character class; the field's \
         own description says 0-9 and its examples use \"0\" (pattern `^[0-9]$`)",
    ),
    (
        "customers' messages in webhooks",
        "`IncomingMessage` maps each inbound type to the *send* schema of that name (`TextMessage` \
         requires `to` and `messaging_product`), a name collision from merging Meta's specs (the \
         inbound ones were renamed `TextMessage_1`, ... and not all refs followed); none of \
         Meta's own inbound examples validates. A customer's message is checked for the \
         properties every inbound type shares: `id`, `timestamp`, `type` (and `from` when the \
         number is shown, see below); \
         `SystemMessage` gets the inbound `BaseMessageProperties_1` it was meant to have",
    ),
    (
        "business-scoped user ids in sends",
        "since 2026 a send may name its recipient by business-scoped user id in `recipient` \
         instead of `to` (Meta's \"Business-scoped user IDs\" page; YCloud's \"Business-Scoped \
         User IDs API & Webhook Updates\"): `recipient` is added to `BaseMessageProperties` \
         (`CC.` or `CC.ENT.` and up to 128 letters and digits) and one of `to` and `recipient` \
         is required",
    ),
    (
        "business-scoped user ids in statuses",
        "a status of a send by business-scoped user id has no `recipient_id` when the number is \
         hidden, and `recipient_user_id` instead (Dualhook's \"BSUID Webhook Changes\"): one \
         of the two is required",
    ),
    (
        "customers without a phone number",
        "a username customer's message has no `from` (Meta's \"Business-scoped user IDs\" \
         page): the inbound message requires `id`, `timestamp` and `type`",
    ),
    (
        "user_id_update",
        "Meta's `user_id_update` webhook field (a customer's business-scoped user id replaced) \
         is added to `Change.field`, with a value of `messaging_product`, `metadata` and a \
         `user_id_update` array",
    ),
    (
        "template button sub_type",
        "Meta's template reference documents `copy_code`, `flow` and `mpm` buttons besides \
         `quick_reply`, `url` and `catalog`, the description's enum",
    ),
];

/// The validators, built once per process (parsing the description takes a while).
pub fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(Schemas::load)
}

#[derive(Debug)]
pub struct Schemas {
    /// One per message `type`, from `Message`'s discriminator.
    sends: HashMap<String, jsonschema::Validator>,
    read_receipt: jsonschema::Validator,
    webhook: jsonschema::Validator,
}

impl Schemas {
    fn load() -> Self {
        let spec: Value = serde_yaml::from_str(SPEC).expect("the Cloud API description parses");
        let mut components = spec["components"]["schemas"].as_object().cloned().expect("schemas");
        apply_errata(&mut components);
        let flat: Map<String, Value> = components
            .iter()
            .map(|(name, schema)| (name.clone(), flatten(schema, &components)))
            .collect();
        let root = |name: &str| json!({"$ref": format!("#/components/schemas/{name}"), "components": {"schemas": flat}});
        let compile = |schema: &Value| {
            jsonschema::draft202012::options()
                .should_validate_formats(false)
                .build(schema)
                .expect("a schema of the description compiles")
        };
        let mapping = spec["components"]["schemas"]["Message"]["discriminator"]["mapping"]
            .as_object()
            .cloned()
            .expect("Message has a discriminator");
        let sends = mapping
            .iter()
            .map(|(kind, target)| {
                let name = target.as_str().and_then(|t| t.rsplit('/').next()).expect("a $ref");
                (kind.clone(), compile(&root(name)))
            })
            .collect();
        let read_receipt = compile(&json!({
            "type": "object",
            "required": ["messaging_product", "status", "message_id"],
            "additionalProperties": false,
            "properties": {
                "messaging_product": {"const": "whatsapp"},
                "status": {"const": "read"},
                "message_id": {"type": "string", "minLength": 1},
                "typing_indicator": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {"type": {"const": "text"}}
                }
            }
        }));
        Self { sends, read_receipt, webhook: compile(&root("WebhookPayload")) }
    }

    /// What is wrong with a `POST /{phone-number-id}/messages` body; empty if nothing.
    pub fn check_send(&self, body: &Value) -> Vec<String> {
        if body.get("status").is_some() {
            return errors(&self.read_receipt, body);
        }
        let kind = body.get("type").and_then(Value::as_str).unwrap_or("text");
        match self.sends.get(kind) {
            Some(validator) => errors(validator, body),
            None => vec![format!("type: '{kind}' is not a message type of the description")],
        }
    }

    /// What is wrong with a webhook body; empty if nothing.
    pub fn check_webhook(&self, body: &Value) -> Vec<String> {
        errors(&self.webhook, body)
    }
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator.iter_errors(instance).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

/// A schema with every `$ref` in an `allOf` resolved and the parts of the `allOf` merged into
/// one object schema (properties, required, closed if any part is).
fn flatten(schema: &Value, all: &Map<String, Value>) -> Value {
    match schema {
        Value::Array(items) => Value::Array(items.iter().map(|s| flatten(s, all)).collect()),
        Value::Object(map) => {
            if let Some(Value::Array(parts)) = map.get("allOf") {
                let parts: Vec<Value> =
                    parts.iter().map(|p| flatten(resolve(p, all), all)).collect();
                if parts.iter().all(is_object_schema) {
                    return merge(map, &parts, all);
                }
            }
            Value::Object(map.iter().map(|(k, v)| (k.clone(), flatten(v, all))).collect())
        }
        other => other.clone(),
    }
}

fn resolve<'a>(schema: &'a Value, all: &'a Map<String, Value>) -> &'a Value {
    let mut schema = schema;
    while let Some(name) = schema
        .as_object()
        .filter(|m| m.len() == 1)
        .and_then(|m| m.get("$ref"))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        schema = &all[name];
    }
    schema
}

fn is_object_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object")
        || schema.get("properties").is_some()
}

fn merge(outer: &Map<String, Value>, parts: &[Value], all: &Map<String, Value>) -> Value {
    let mut merged: Map<String, Value> = outer
        .iter()
        .filter(|(k, _)| *k != "allOf")
        .map(|(k, v)| (k.clone(), flatten(v, all)))
        .collect();
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    let mut closed = false;
    for part in parts {
        if let Some(Value::Object(props)) = part.get("properties") {
            properties.extend(props.clone());
        }
        if let Some(Value::Array(names)) = part.get("required") {
            required.extend(names.iter().cloned());
        }
        closed |= part.get("additionalProperties") == Some(&Value::Bool(false));
        for (key, value) in part.as_object().into_iter().flatten() {
            if !["properties", "required", "additionalProperties"].contains(&key.as_str()) {
                merged.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
    }
    merged.insert("type".into(), json!("object"));
    merged.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        required.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        required.dedup();
        merged.insert("required".into(), Value::Array(required));
    }
    if closed {
        merged.insert("additionalProperties".into(), json!(false));
    }
    Value::Object(merged)
}

/// The [`ERRATA`], applied to the description's schemas before they are flattened (the read
/// receipt's schema is written in [`Schemas::load`]).
fn apply_errata(schemas: &mut Map<String, Value>) {
    const USER_ID: &str = "^[A-Z]{2}\\.(ENT\\.)?[A-Za-z0-9]{1,128}$";
    {
        let base = schemas.get_mut("BaseMessageProperties").expect("BaseMessageProperties");
        base["properties"]["recipient"] = json!({"type": "string", "pattern": USER_ID});
        let required = base["required"].as_array_mut().expect("required");
        required.retain(|r| r != "to");
        base["anyOf"] = json!([{"required": ["to"]}, {"required": ["recipient"]}]);
        let statuses = schemas.get_mut("Statuses").expect("Statuses");
        statuses["required"] = json!(["id", "status", "timestamp"]);
        statuses["anyOf"] =
            json!([{"required": ["recipient_id"]}, {"required": ["recipient_user_id"]}]);
        statuses["properties"]["recipient_user_id"] = json!({"type": "string", "pattern": USER_ID});
        let change = schemas.get_mut("Change").expect("Change");
        change["properties"]["field"]["enum"]
            .as_array_mut()
            .expect("an enum of fields")
            .push(json!("user_id_update"));
        change["properties"]["value"]["oneOf"]
            .as_array_mut()
            .expect("a oneOf of values")
            .push(json!({"$ref": "#/components/schemas/UserIdUpdateValue"}));
    }
    schemas.insert(
        "UserIdUpdateValue".into(),
        json!({
            "type": "object",
            "required": ["messaging_product", "metadata", "user_id_update"],
            "properties": {
                "messaging_product": {"type": "string"},
                "metadata": {"$ref": "#/components/schemas/Metadata"},
                "user_id_update": {"type": "array", "items": {"type": "object"}}
            }
        }),
    );
    let system = schemas.get_mut("SystemMessage").and_then(|s| s.pointer_mut("/allOf/0/$ref"));
    *system.expect("SystemMessage starts from the base properties") =
        json!("#/components/schemas/BaseMessageProperties_1");
    schemas.insert(
        "IncomingMessage".into(),
        json!({
            "type": "object",
            "required": ["id", "timestamp", "type"],
            "properties": {
                "from": {"type": "string"},
                "from_user_id": {"type": "string"},
                "id": {"type": "string"},
                "timestamp": {"type": "string"},
                "type": {"type": "string"}
            }
        }),
    );
    let base = schemas
        .get_mut("BaseMessageProperties")
        .and_then(|s| s.get_mut("properties"))
        .and_then(Value::as_object_mut)
        .expect("BaseMessageProperties has properties");
    base.insert("biz_opaque_callback_data".into(), json!({"type": "string", "maxLength": 512}));
    let buttons = [
        "/TemplateComponent/properties".to_owned(),
        "/ButtonComponent/allOf/1/properties".to_owned(),
    ];
    for pointer in buttons {
        let mut all = Value::Object(std::mem::take(schemas));
        let properties = all.pointer_mut(&pointer).expect("a button component's properties");
        properties["index"]["pattern"] = json!("^[0-9]$");
        let sub_types = properties["sub_type"]["enum"].as_array_mut().expect("a sub_type enum");
        sub_types.extend([json!("copy_code"), json!("flow"), json!("mpm")]);
        let Value::Object(restored) = all else { unreachable!() };
        *schemas = restored;
    }
}
