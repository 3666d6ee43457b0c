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

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Rejection;
use crate::fields::{object, text};

/// The settings document (`Documents` in the store) that keeps them.
pub const DOCUMENT: &str = "media.providers";
pub const MAX_PROVIDERS: usize = 64;
pub const MAX_NAME: usize = 64;
pub const MAX_SECRET: usize = 4096;
pub const MAX_HOSTS: usize = 16;

/// The media providers, as kept: `{"providers":[...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Providers {
    #[serde(default)]
    pub providers: Vec<Provider>,
}

/// A named set of credentials and the hosts they may be sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub name: String,
    /// `www`, the only type On-Premises had.
    #[serde(rename = "type")]
    pub kind: String,
    pub config: Credentials,
    /// Where the credentials may be sent (`cdn.example.com`, `*.example.com`); none if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
}

/// How a provider's links are fetched: `{"bearer"}` or `{"basic": {"username", "password"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Credentials {
    Bearer(String),
    Basic { username: String, password: String },
}

impl Providers {
    pub fn named(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// The providers after a POST body: those it names replace the ones of the same name.
    pub fn merged(&self, body: &Value) -> Result<Self, Rejection> {
        let Some(posted) = body.as_array() else {
            return Err(Rejection::invalid("providers", "expected an array of providers"));
        };
        if posted.is_empty() {
            return Err(Rejection::missing("providers"));
        }
        let mut providers = self.providers.clone();
        for (i, provider) in posted.iter().enumerate() {
            let checked = Provider::parse(provider, &format!("providers[{i}]"))?;
            match providers.iter_mut().find(|p| p.name == checked.name) {
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
        Ok(Self { providers })
    }

    /// Without the provider `name`; `None` if there is no such provider.
    pub fn without(&self, name: &str) -> Option<Self> {
        let providers: Vec<Provider> =
            self.providers.iter().filter(|p| p.name != name).cloned().collect();
        (providers.len() < self.providers.len()).then_some(Self { providers })
    }
}

impl Provider {
    fn parse(value: &Value, path: &str) -> Result<Self, Rejection> {
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
        let config = object(
            &config_path,
            obj.get("config").ok_or_else(|| Rejection::missing(&config_path))?,
        )?;
        let config = match (config.get("bearer"), config.get("basic")) {
            (Some(_), None) => Credentials::Bearer(text(
                config,
                "bearer",
                &format!("{config_path}.bearer"),
                1,
                MAX_SECRET,
            )?),
            (None, Some(basic)) => {
                let basic_path = format!("{config_path}.basic");
                let basic = object(&basic_path, basic)?;
                let secret =
                    |name: &str| text(basic, name, &format!("{basic_path}.{name}"), 1, MAX_SECRET);
                Credentials::Basic { username: secret("username")?, password: secret("password")? }
            }
            _ => {
                return Err(Rejection::invalid(&config_path, "exactly one of bearer or basic"));
            }
        };
        let hosts = obj.get("hosts").map(|hosts| parse_hosts(hosts, path)).transpose()?;
        Ok(Self { name, kind, config, hosts })
    }

    /// Whether a link on `host` may be fetched with these credentials: `host` is one of the
    /// provider's `hosts`, or a subdomain of a `*.` one.
    pub fn lends_to(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().flatten().any(|pattern| match pattern.strip_prefix("*.") {
            Some(domain) => host.len() > domain.len() + 1 && host.ends_with(&format!(".{domain}")),
            None => host == *pattern,
        })
    }

    /// The provider as a GET shows it: its secrets (the bearer token, the basic password)
    /// left out.
    pub fn shown(&self) -> Value {
        let mut shown = serde_json::to_value(self).expect("a provider serialises");
        if let Some(config) = shown.get_mut("config").and_then(Value::as_object_mut) {
            config.remove("bearer");
            if let Some(basic) = config.get_mut("basic").and_then(Value::as_object_mut) {
                basic.remove("password");
            }
        }
        shown
    }
}

fn parse_hosts(hosts: &Value, path: &str) -> Result<Vec<String>, Rejection> {
    let hosts_path = format!("{path}.hosts");
    let Some(list) = hosts.as_array().filter(|l| (1..=MAX_HOSTS).contains(&l.len())) else {
        return Err(Rejection::invalid(
            &hosts_path,
            format!("expected an array of 1 to {MAX_HOSTS} host names"),
        ));
    };
    let mut checked = Vec::new();
    for (i, host) in list.iter().enumerate() {
        let host = host.as_str().map(str::to_ascii_lowercase).filter(|h| is_host_pattern(h));
        let Some(host) = host else {
            return Err(Rejection::invalid(
                &format!("{hosts_path}[{i}]"),
                "a host name such as cdn.example.com, or *.example.com for its subdomains",
            ));
        };
        checked.push(host);
    }
    Ok(checked)
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn merge_providers(current: &[Provider], body: &Value) -> Result<Vec<Provider>, Rejection> {
        Providers { providers: current.to_vec() }.merged(body).map(|p| p.providers)
    }

    #[test]
    fn credentials_are_lent_to_the_providers_hosts_only_and_never_shown() {
        let body = json!([{"name": "cdn", "type": "www", "config": {"basic": {"username": "u", "password": "p"}},
            "hosts": ["CDN.example.com", "*.files.example"]}]);
        let providers = merge_providers(&[], &body).unwrap();
        let cdn = &providers[0];
        assert!(cdn.lends_to("cdn.example.com"));
        assert!(cdn.lends_to("a.files.example") && cdn.lends_to("b.a.files.example"));
        assert!(!cdn.lends_to("files.example") && !cdn.lends_to("evilcdn.example.com"));
        assert!(!cdn.lends_to("127.0.0.1"));
        let none =
            merge_providers(&[], &json!([{"name": "n", "type": "www", "config": {"bearer": "t"}}]));
        assert!(!none.unwrap()[0].lends_to("cdn.example.com"), "no hosts: lent to none");
        assert_eq!(cdn.shown()["config"], json!({"basic": {"username": "u"}}));
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
        assert_eq!(second[0].config, Credentials::Bearer("t2".into()));
        assert_eq!(
            second[1].config,
            Credentials::Basic { username: "u".into(), password: "p".into() }
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
