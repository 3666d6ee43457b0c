//! Media providers (`/v1/settings/application/media/providers`), as On-Premises had them: named
//! credentials for fetching media links, `[{"name", "type": "www", "config": {"bearer"} |
//! {"basic": {"username", "password"}}}]`. A media object naming one (`"provider":{"name"}`)
//! is fetched with its credentials where Premise fetches links itself (through the Cloud
//! API, whose servers cannot use them). A POST adds providers or replaces those of the same
//! name.
//!
//! Premise adds one field: `hosts`, the hosts the provider's credentials may be sent to
//! (`"cdn.example.com"`, or `"*.example.com"` for its subdomains). A link naming a provider on
//! any other host is not fetched with its credentials; a provider without `hosts` lends them
//! to no host. On a GET the secrets are left out (they are write-only, as `webhooks.secret`).

use serde_json::{Map, Value, json};

use crate::Rejection;
use crate::fields::{object, text};

/// The settings document (`Documents` in the store) that keeps them.
pub const DOCUMENT: &str = "media.providers";
pub const MAX_PROVIDERS: usize = 64;
pub const MAX_NAME: usize = 64;
pub const MAX_SECRET: usize = 4096;
pub const MAX_HOSTS: usize = 16;

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
        if !matches!(key.as_str(), "name" | "type" | "config" | "hosts") {
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
    let mut provider = json!({ "name": name, "type": kind, "config": checked });
    if let Some(hosts) = obj.get("hosts") {
        let hosts_path = format!("{path}.hosts");
        let Some(list) = hosts.as_array().filter(|l| (1..=MAX_HOSTS).contains(&l.len())) else {
            return Err(Rejection::invalid(
                &hosts_path,
                format!("expected an array of 1 to {MAX_HOSTS} host names"),
            ));
        };
        let mut checked_hosts = Vec::new();
        for (i, host) in list.iter().enumerate() {
            let host = host.as_str().map(str::to_ascii_lowercase).filter(|h| is_host_pattern(h));
            let Some(host) = host else {
                return Err(Rejection::invalid(
                    &format!("{hosts_path}[{i}]"),
                    "a host name such as cdn.example.com, or *.example.com for its subdomains",
                ));
            };
            checked_hosts.push(Value::String(host));
        }
        provider["hosts"] = Value::Array(checked_hosts);
    }
    Ok(provider)
}

/// `cdn.example.com`, `*.example.com` or an address, as a provider's `hosts` name them.
fn is_host_pattern(host: &str) -> bool {
    let name = host.strip_prefix("*.").unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Whether a link on `host` may be fetched with `provider`'s credentials: `host` is one of its
/// `hosts`, or a subdomain of a `*.` one.
pub fn lends_to(provider: &Value, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    provider["hosts"].as_array().into_iter().flatten().filter_map(Value::as_str).any(|pattern| {
        match pattern.strip_prefix("*.") {
            Some(domain) => host.len() > domain.len() + 1 && host.ends_with(&format!(".{domain}")),
            None => host == pattern,
        }
    })
}

/// A provider as a GET shows it: its secrets (the bearer token, the basic password) left out.
pub fn shown(provider: &Value) -> Value {
    let mut shown = provider.clone();
    if let Some(config) = shown.get_mut("config").and_then(Value::as_object_mut) {
        config.remove("bearer");
        if let Some(basic) = config.get_mut("basic").and_then(Value::as_object_mut) {
            basic.remove("password");
        }
    }
    shown
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
    fn credentials_are_lent_to_the_providers_hosts_only_and_never_shown() {
        let body = json!([{"name": "cdn", "type": "www", "config": {"basic": {"username": "u", "password": "p"}},
            "hosts": ["CDN.example.com", "*.files.example"]}]);
        let providers = merge_providers(&[], &body).unwrap();
        let cdn = &providers[0];
        assert!(lends_to(cdn, "cdn.example.com"));
        assert!(lends_to(cdn, "a.files.example") && lends_to(cdn, "b.a.files.example"));
        assert!(!lends_to(cdn, "files.example") && !lends_to(cdn, "evilcdn.example.com"));
        assert!(!lends_to(cdn, "127.0.0.1"));
        let none =
            merge_providers(&[], &json!([{"name": "n", "type": "www", "config": {"bearer": "t"}}]));
        assert!(!lends_to(&none.unwrap()[0], "cdn.example.com"), "no hosts: lent to none");
        assert_eq!(shown(cdn)["config"], json!({"basic": {"username": "u"}}));
        for bad in [json!([]), json!(["a b"]), json!("cdn.example.com")] {
            let body =
                json!([{"name": "x", "type": "www", "config": {"bearer": "t"}, "hosts": bad}]);
            assert!(merge_providers(&[], &body).is_err(), "{bad}");
        }
    }

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
