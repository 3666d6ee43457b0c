//! Media providers (`/v1/settings/application/media/providers`), as On-Premises had them: named
//! credentials for fetching media links, `[{"name", "type": "www", "config": {"bearer"} |
//! {"basic": {"username", "password"}}}]`. A media object naming one (`"provider":{"name"}`)
//! is fetched with its credentials where Premise fetches links itself (through the Cloud
//! API, whose servers cannot use them). A POST adds providers or replaces those of the same
//! name.

use serde_json::{Map, Value, json};

use crate::Rejection;
use crate::fields::{object, text};

/// The settings document (`Documents` in the store) that keeps them.
pub const DOCUMENT: &str = "media.providers";
pub const MAX_PROVIDERS: usize = 64;
pub const MAX_NAME: usize = 64;
pub const MAX_SECRET: usize = 4096;

/// How a provider's links are fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Bearer(String),
    Basic { username: String, password: String },
}

/// The providers after a POST body: those it names replace the ones of the same name.
pub fn merge_providers(current: &[Value], body: &Value) -> Result<Vec<Value>, Rejection> {
    let Some(posted) = body.as_array() else {
        return Err(Rejection::invalid("providers", "expected an array of providers"));
    };
    if posted.is_empty() {
        return Err(Rejection::missing("providers"));
    }
    let mut providers = current.to_vec();
    for (i, provider) in posted.iter().enumerate() {
        let checked = provider_at(provider, &format!("providers[{i}]"))?;
        match providers.iter_mut().find(|p| p["name"] == checked["name"]) {
            Some(existing) => *existing = checked,
            None => providers.push(checked),
        }
    }
    if providers.len() > MAX_PROVIDERS {
        return Err(Rejection::invalid(
            "providers",
            format!("at most {MAX_PROVIDERS} media providers"),
        ));
    }
    Ok(providers)
}

fn provider_at(value: &Value, path: &str) -> Result<Value, Rejection> {
    let obj = object(path, value)?;
    for key in obj.keys() {
        if !matches!(key.as_str(), "name" | "type" | "config") {
            return Err(Rejection::invalid(&format!("{path}.{key}"), "not a provider field"));
        }
    }
    let name = text(obj, "name", &format!("{path}.name"), 1, MAX_NAME)?;
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(Rejection::invalid(
            &format!("{path}.name"),
            "letters, digits, '-', '_' and '.' only",
        ));
    }
    let kind = text(obj, "type", &format!("{path}.type"), 1, 16)?;
    if kind != "www" {
        return Err(Rejection::invalid(&format!("{path}.type"), "www is the only type"));
    }
    let config_path = format!("{path}.config");
    let config =
        object(&config_path, obj.get("config").ok_or_else(|| Rejection::missing(&config_path))?)?;
    let checked = match (config.get("bearer"), config.get("basic")) {
        (Some(_), None) => {
            let bearer = text(config, "bearer", &format!("{config_path}.bearer"), 1, MAX_SECRET)?;
            json!({ "bearer": bearer })
        }
        (None, Some(basic)) => {
            let basic_path = format!("{config_path}.basic");
            let basic = object(&basic_path, basic)?;
            let username =
                text(basic, "username", &format!("{basic_path}.username"), 1, MAX_SECRET)?;
            let password =
                text(basic, "password", &format!("{basic_path}.password"), 1, MAX_SECRET)?;
            json!({ "basic": { "username": username, "password": password } })
        }
        _ => {
            return Err(Rejection::invalid(&config_path, "exactly one of bearer or basic"));
        }
    };
    Ok(json!({ "name": name, "type": kind, "config": checked }))
}

/// The credentials of a stored provider.
pub fn credentials(provider: &Value) -> Option<Credentials> {
    let config = provider.get("config")?;
    if let Some(bearer) = config["bearer"].as_str() {
        return Some(Credentials::Bearer(bearer.to_owned()));
    }
    let basic = config.get("basic")?;
    Some(Credentials::Basic {
        username: basic["username"].as_str()?.to_owned(),
        password: basic["password"].as_str()?.to_owned(),
    })
}

/// The stored provider list of a settings document `{"providers":[...]}`.
pub fn stored(document: &Value) -> Vec<Value> {
    document["providers"].as_array().cloned().unwrap_or_default()
}

/// The document that keeps `providers`.
pub fn document(providers: Vec<Value>) -> Value {
    let mut doc = Map::new();
    doc.insert("providers".into(), Value::Array(providers));
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_adds_and_replaces_by_name() {
        let first = merge_providers(
            &[],
            &json!([{"name": "cdn", "type": "www", "config": {"bearer": "t1"}}]),
        )
        .unwrap();
        let second = merge_providers(
            &first,
            &json!([{"name": "cdn", "type": "www", "config": {"bearer": "t2"}},
                {"name": "files", "type": "www",
                 "config": {"basic": {"username": "u", "password": "p"}}}]),
        )
        .unwrap();
        assert_eq!(second.len(), 2);
        assert_eq!(credentials(&second[0]), Some(Credentials::Bearer("t2".into())));
        assert_eq!(
            credentials(&second[1]),
            Some(Credentials::Basic { username: "u".into(), password: "p".into() })
        );
    }

    #[test]
    fn each_field_is_checked() {
        let refused = |body: Value| merge_providers(&[], &body).unwrap_err().details;
        let cases = [
            (json!({"name": "x"}), "providers:"),
            (json!([{"type": "www", "config": {"bearer": "t"}}]), "'providers[0].name'"),
            (
                json!([{"name": "a b", "type": "www", "config": {"bearer": "t"}}]),
                "providers[0].name:",
            ),
            (json!([{"name": "a", "type": "s3", "config": {"bearer": "t"}}]), "providers[0].type:"),
            (json!([{"name": "a", "type": "www", "config": {}}]), "providers[0].config:"),
            (
                json!([{"name": "a", "type": "www", "config": {"basic": {"username": "u"}}}]),
                "'providers[0].config.basic.password'",
            ),
            (
                json!([{"name": "a", "type": "www", "config": {"bearer": ""}}]),
                "providers[0].config.bearer:",
            ),
        ];
        for (body, expected) in cases {
            let details = refused(body.clone());
            assert!(details.contains(expected), "{body}: {details}");
        }
    }
}
