//! The sandbox's template registry, and how a template message is checked against it.
//!
//! A definition follows Meta's message-template format (`name`, `language`, `category`,
//! `components` of type `HEADER`/`BODY`/`FOOTER`/`BUTTONS` with `{{n}}` placeholders), plus a
//! `namespace` (On-Premises sends carried one) and, per component, an optional `parameters`
//! list naming the kind each placeholder takes (`text`, `currency`, `date_time`).
//!
//! Checking a send is a pure function, [`hydrate`]: the template's text with the parameters
//! filled in, or the On-Premises error (`docs/onprem-api.md` section 10) WhatsApp answered with.
//! On-Premises learnt of template errors from WhatsApp after the send was accepted, so they end
//! the message `failed` (the API answered the POST with an id, as for any message).
//!
//! How strictly is a [`TemplateCheck`]: `learn` (the default) takes a template the registry does
//! not know as existing and learns its shape from that first use ([`learn`]), so an
//! integration's own templates work at once and later uses are checked against the first;
//! `strict` refuses what the registry lacks; `off` checks nothing.

use std::collections::BTreeMap;

use premise_wire::StatusError;
use premise_wire::messages::template::{ButtonKind, Component, Parameter, Template};
use serde::{Deserialize, Serialize};

/// How template messages are checked (`sandbox.check_templates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TemplateCheck {
    /// Unknown templates are learned from their first use; known ones are checked.
    #[default]
    Learn,
    /// Unknown templates are refused (2001).
    Strict,
    /// Nothing is checked.
    Off,
}

impl<'de> Deserialize<'de> for TemplateCheck {
    /// `learn`, `strict` or `off`; `true` and `false` (the setting's older form) mean `strict`
    /// and `off`.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            Flag(bool),
            Word(String),
        }
        match Given::deserialize(deserializer)? {
            Given::Flag(true) => Ok(Self::Strict),
            Given::Flag(false) => Ok(Self::Off),
            Given::Word(word) => match word.to_ascii_lowercase().as_str() {
                "learn" => Ok(Self::Learn),
                "strict" | "true" => Ok(Self::Strict),
                "off" | "false" => Ok(Self::Off),
                _ => Err(serde::de::Error::custom(format!(
                    "'{word}' is not a template check: learn, strict or off"
                ))),
            },
        }
    }
}

/// The namespace of the sandbox's demo templates (`config/templates.json`). A demo template
/// does not judge an integration's template of the same name in a namespace of its own: that
/// one is unknown, so learned (replacing the demo), as a business's own template would be.
pub const SANDBOX_NAMESPACE: &str = "premise_sandbox";

/// A template in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateDef {
    pub namespace: String,
    pub name: String,
    pub language: String,
    #[serde(default = "utility")]
    pub category: String,
    pub components: Vec<ComponentDef>,
    /// Learned from its first use (`learn` mode) rather than registered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub learned: bool,
}

impl TemplateDef {
    /// One of the sandbox's demo templates, as seeded (not learned, in its namespace).
    pub fn is_demo(&self) -> bool {
        !self.learned && self.namespace == SANDBOX_NAMESPACE
    }
}

fn utility() -> String {
    "UTILITY".to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentDef {
    #[serde(rename = "type")]
    pub kind: String,
    /// For a `HEADER`: `TEXT` (default), `IMAGE`, `VIDEO` or `DOCUMENT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The kind of each placeholder, `{{1}}` first; absent: any of text, currency, date_time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<ButtonDef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonDef {
    /// `QUICK_REPLY`, `URL`, `PHONE_NUMBER` or `OTP`.
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// For `OTP`: `COPY_CODE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_type: Option<String>,
}

const VALUE_KINDS: [&str; 3] = ["text", "currency", "date_time"];
const HEADER_MEDIA: [&str; 4] = ["IMAGE", "VIDEO", "DOCUMENT", "LOCATION"];
/// The longest hydrated body WhatsApp accepted (2005 beyond).
const MAX_HYDRATED_BODY: usize = 1024;

/// What is wrong with a template definition: the field, by its path, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct Invalid {
    pub field: String,
    pub why: String,
}

fn invalid(field: impl Into<String>, why: impl Into<String>) -> Invalid {
    Invalid { field: field.into(), why: why.into() }
}

/// Why a registry file was refused.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("[{index}].{invalid}")]
    Invalid { index: usize, invalid: Invalid },
}

/// The placeholders `{{1}}`..`{{n}}` of a text: `n`, or what is wrong with their numbering
/// (for people: the field is the caller's).
fn placeholders(text: &str) -> Result<usize, String> {
    let mut seen = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or("an unclosed '{{'")?;
        let n: usize = after[..end]
            .trim()
            .parse()
            .map_err(|_| format!("'{{{{{}}}}}' is not a numbered placeholder", &after[..end]))?;
        seen.push(n);
        rest = &after[end + 2..];
    }
    seen.sort_unstable();
    seen.dedup();
    if seen.iter().enumerate().any(|(i, n)| *n != i + 1) {
        return Err("placeholders must be numbered {{1}}, {{2}}, ... without gaps".to_owned());
    }
    Ok(seen.len())
}

impl TemplateDef {
    /// Checks a definition; the error names the field by its path.
    pub fn validate(&self) -> Result<(), Invalid> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 512
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !name_ok {
            return Err(invalid("name", "lower-case letters, digits and underscores, 1 to 512"));
        }
        if self.namespace.trim().is_empty() {
            return Err(invalid("namespace", "must not be empty"));
        }
        if self.language.is_empty()
            || self.language.len() > 16
            || !self.language.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_')
        {
            return Err(invalid("language", format!("'{}' is not a language code", self.language)));
        }
        if !["UTILITY", "MARKETING", "AUTHENTICATION"].contains(&self.category.as_str()) {
            return Err(invalid("category", "one of UTILITY, MARKETING, AUTHENTICATION"));
        }
        if !self.components.iter().any(|c| c.kind == "BODY") {
            return Err(invalid("components", "a BODY is required"));
        }
        for (i, c) in self.components.iter().enumerate() {
            let path = format!("components[{i}]");
            if !["HEADER", "BODY", "FOOTER", "BUTTONS"].contains(&c.kind.as_str()) {
                return Err(invalid(
                    format!("{path}.type"),
                    "one of HEADER, BODY, FOOTER, BUTTONS",
                ));
            }
            if self.components.iter().filter(|o| o.kind == c.kind).count() > 1 {
                return Err(invalid(format!("{path}.type"), format!("more than one {}", c.kind)));
            }
            let media = c.format.as_deref().is_some_and(|f| f != "TEXT");
            if let Some(format) = &c.format
                && (c.kind != "HEADER"
                    || !(format == "TEXT" || HEADER_MEDIA.contains(&format.as_str())))
            {
                return Err(invalid(
                    format!("{path}.format"),
                    "only a HEADER has one: TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION",
                ));
            }
            let needs_text =
                matches!(c.kind.as_str(), "BODY" | "FOOTER") || (c.kind == "HEADER" && !media);
            let count = match (&c.text, needs_text) {
                (Some(text), true) => {
                    placeholders(text).map_err(|why| invalid(format!("{path}.text"), why))?
                }
                (None, true) => return Err(invalid(format!("{path}.text"), "required")),
                (Some(_), false) => {
                    return Err(invalid(format!("{path}.text"), "not allowed here"));
                }
                (None, false) => 0,
            };
            if c.kind == "FOOTER" && count > 0 {
                return Err(invalid(format!("{path}.text"), "a footer takes no placeholders"));
            }
            if !c.parameters.is_empty() && c.parameters.len() != count {
                return Err(invalid(
                    format!("{path}.parameters"),
                    format!("{count} placeholders, {} kinds", c.parameters.len()),
                ));
            }
            if let Some(kind) = c.parameters.iter().find(|k| !VALUE_KINDS.contains(&k.as_str())) {
                return Err(invalid(
                    format!("{path}.parameters"),
                    format!("'{kind}' is not text, currency or date_time"),
                ));
            }
            if c.kind == "BUTTONS" {
                if c.buttons.is_empty() || c.buttons.len() > 10 {
                    return Err(invalid(format!("{path}.buttons"), "1 to 10"));
                }
                for (j, b) in c.buttons.iter().enumerate() {
                    if !["QUICK_REPLY", "URL", "PHONE_NUMBER", "OTP"].contains(&b.kind.as_str()) {
                        return Err(invalid(
                            format!("{path}.buttons[{j}].type"),
                            "one of QUICK_REPLY, URL, PHONE_NUMBER, OTP",
                        ));
                    }
                }
            } else if !c.buttons.is_empty() {
                return Err(invalid(format!("{path}.buttons"), "only in a BUTTONS component"));
            }
        }
        Ok(())
    }
}

/// The registry: templates by (name, language).
pub type Registry = BTreeMap<(String, String), TemplateDef>;

fn error(code: u32, title: &str, details: String) -> StatusError {
    StatusError { code, title: title.to_owned(), details: Some(details) }
}

fn missing(details: String) -> StatusError {
    error(2001, "Template Missing", details)
}

fn count_mismatch(details: String) -> StatusError {
    error(2000, "Template Param Count Mismatch", details)
}

fn format_mismatch(details: String) -> StatusError {
    error(2012, "Template Parameter Format Mismatch", details)
}

/// The text a parameter puts in place of its placeholder, checked against the declared kind.
fn value(param: &Parameter, expected: Option<&str>, path: &str) -> Result<String, StatusError> {
    let kind = param.kind();
    let allowed = expected.map_or(VALUE_KINDS.contains(&kind), |e| e == kind);
    if !allowed {
        let wanted = expected.unwrap_or("text, currency or date_time");
        return Err(format_mismatch(format!("{path}: expected {wanted}, got {kind}")));
    }
    Ok(param.text().unwrap_or_default().to_owned())
}

/// Fills a component's placeholders from the request's parameters of that component.
fn fill(def: &ComponentDef, params: &[&Parameter], path: &str) -> Result<String, StatusError> {
    let text = def.text.as_deref().unwrap_or("");
    let count = placeholders(text).unwrap_or(0);
    if params.len() != count {
        return Err(count_mismatch(format!(
            "{path}: the template takes {count} parameters, the message has {}",
            params.len()
        )));
    }
    let mut out = text.to_owned();
    for (i, param) in params.iter().enumerate() {
        let expected = def.parameters.get(i).map(String::as_str);
        let filled = value(param, expected, &format!("{path}.parameters[{i}]"))?;
        out = out.replace(&format!("{{{{{}}}}}", i + 1), &filled);
    }
    Ok(out)
}

/// Checks a template message against the registry: the hydrated text (header, body and
/// footer, one per line) or the error that fails the message. The namespace counts only with
/// `check_namespace` (integrations have their own; `learn` mode does not check it).
pub fn hydrate(
    registry: &Registry,
    template: &Template,
    check_namespace: bool,
) -> Result<String, StatusError> {
    let (name, language) = (template.name(), template.language());
    let Some(def) = registry.get(&(name.to_owned(), language.to_owned())) else {
        let languages: Vec<&str> =
            registry.keys().filter(|(n, _)| n == name).map(|(_, l)| l.as_str()).collect();
        return Err(missing(if languages.is_empty() {
            format!("no template named '{name}'")
        } else {
            format!(
                "template '{name}' has no translation '{language}' (it has {})",
                languages.join(", ")
            )
        }));
    };
    if let Some(namespace) = template.namespace().filter(|_| check_namespace)
        && namespace != def.namespace
    {
        return Err(missing(format!("template '{name}' is not in namespace '{namespace}'")));
    }
    if let Some(namespace) = template.namespace()
        && def.is_demo()
        && namespace != def.namespace
    {
        return Err(missing(format!(
            "no template named '{name}' in namespace '{namespace}' (the sandbox's demo of that \
             name is in '{SANDBOX_NAMESPACE}')"
        )));
    }
    let sent = template.components();
    let params_of = |kind: &str| -> Vec<&Parameter> {
        sent.iter().filter(|c| c.kind() == kind).flat_map(|c| c.parameters()).collect()
    };
    let component = |kind: &str| def.components.iter().find(|c| c.kind == kind);
    let mut lines = Vec::new();

    let header_params = params_of("header");
    match component("HEADER") {
        Some(header) if header.format.as_deref().is_some_and(|f| f != "TEXT") => {
            let format = header.format.as_deref().unwrap_or("").to_ascii_lowercase();
            match header_params.as_slice() {
                [one] if one.kind() == format.as_str() => lines.push(format!("[{format}]")),
                [one] => {
                    return Err(format_mismatch(format!(
                        "header.parameters[0]: expected {format}, got {}",
                        one.kind()
                    )));
                }
                other => {
                    return Err(count_mismatch(format!(
                        "header: the template takes 1 {format} parameter, the message has {}",
                        other.len()
                    )));
                }
            }
        }
        Some(header) => lines.push(fill(header, &header_params, "header")?),
        None if !header_params.is_empty() => {
            return Err(count_mismatch("header: the template has no header".to_owned()));
        }
        None => {}
    }
    if let Some(body) = component("BODY") {
        let text = fill(body, &params_of("body"), "body")?;
        if text.chars().count() > MAX_HYDRATED_BODY {
            return Err(error(
                2005,
                "Template Hydrated Text Too Long",
                format!(
                    "body: {} characters after hydration, at most {MAX_HYDRATED_BODY}",
                    text.chars().count()
                ),
            ));
        }
        lines.push(text);
    }
    if let Some(footer) = component("FOOTER") {
        lines.push(footer.text.clone().unwrap_or_default());
    }
    check_buttons(component("BUTTONS").map_or(&[][..], |c| &c.buttons), sent)?;
    Ok(lines.join("\n"))
}

/// Button components of the message: each names a button of the template by `index`, of the
/// matching `sub_type`, with the parameter that button takes. Dynamic URL and copy-code buttons
/// must get theirs.
fn check_buttons(defs: &[ButtonDef], sent: &[Component]) -> Result<(), StatusError> {
    let mut given = vec![false; defs.len()];
    for c in sent {
        let Component::Button { sub_type, index, parameters } = c else { continue };
        let index = usize::from(index.get());
        let path = format!("button[{index}]");
        let Some(def) = defs.get(index) else {
            return Err(count_mismatch(format!("{path}: the template has {} buttons", defs.len())));
        };
        let (wanted, param_kind) = match def.kind.as_str() {
            "QUICK_REPLY" => ("quick_reply", "payload"),
            "URL" | "OTP" => ("url", "text"),
            _ => ("", ""),
        };
        let sub_type = sub_type.as_str();
        let sub_type_ok = sub_type == wanted || (def.kind == "OTP" && sub_type == "copy_code");
        if !sub_type_ok {
            return Err(format_mismatch(format!(
                "{path}.sub_type: the button is {}, not {sub_type}",
                def.kind
            )));
        }
        let [param] = parameters.as_slice() else {
            return Err(count_mismatch(format!(
                "{path}: takes 1 parameter, the message has {}",
                parameters.len()
            )));
        };
        let kind = param.kind();
        let kind_ok = kind == param_kind || (def.kind == "OTP" && kind == "coupon_code");
        if !kind_ok {
            return Err(format_mismatch(format!(
                "{path}.parameters[0]: expected {param_kind}, got {kind}"
            )));
        }
        given[index] = true;
    }
    for (i, def) in defs.iter().enumerate() {
        let dynamic = def.kind == "OTP" || def.url.as_deref().is_some_and(|u| u.contains("{{1}}"));
        if dynamic && !given[i] {
            return Err(count_mismatch(format!(
                "button[{i}]: the {} button takes 1 parameter, none given",
                def.kind
            )));
        }
    }
    Ok(())
}

/// The definition a template message implies, for `learn` mode: its name, language and
/// namespace, and per component the kind and count of its parameters (a header's media kind, a
/// body's placeholders, each button's sub-type by its index). Later uses are checked against
/// it as against a registered template. An error if the message cannot be a template's (the
/// definition fails [`TemplateDef::validate`]).
pub fn learn(template: &Template) -> Result<TemplateDef, StatusError> {
    let sent = template.components();
    let kinds = |kind: &str| -> Vec<&'static str> {
        sent.iter()
            .filter(|c| c.kind() == kind)
            .flat_map(|c| c.parameters())
            .map(Parameter::kind)
            .collect()
    };
    let placeholders =
        |n: usize| (1..=n).map(|i| format!("{{{{{i}}}}}")).collect::<Vec<_>>().join(" ");
    let mut components = Vec::new();
    let header = kinds("header");
    match header.as_slice() {
        [] => {}
        [media] if HEADER_MEDIA.contains(&media.to_ascii_uppercase().as_str()) => {
            components.push(ComponentDef {
                kind: "HEADER".to_owned(),
                format: Some(media.to_ascii_uppercase()),
                text: None,
                parameters: Vec::new(),
                buttons: Vec::new(),
            });
        }
        texts => components.push(ComponentDef {
            kind: "HEADER".to_owned(),
            format: None,
            text: Some(placeholders(texts.len())),
            parameters: texts.iter().map(|k| (*k).to_owned()).collect(),
            buttons: Vec::new(),
        }),
    }
    let body = kinds("body");
    components.push(ComponentDef {
        kind: "BODY".to_owned(),
        format: None,
        text: Some(placeholders(body.len())),
        parameters: body.iter().map(|k| (*k).to_owned()).collect(),
        buttons: Vec::new(),
    });
    let mut buttons: Vec<ButtonDef> = Vec::new();
    for c in sent {
        let Component::Button { sub_type, index, .. } = c else { continue };
        let index = usize::from(index.get());
        while buttons.len() <= index {
            let n = buttons.len();
            buttons.push(ButtonDef {
                kind: "QUICK_REPLY".to_owned(),
                text: format!("Button {n}"),
                url: None,
                phone_number: None,
                otp_type: None,
            });
        }
        let button = &mut buttons[index];
        match sub_type {
            ButtonKind::QuickReply => {}
            ButtonKind::Url => {
                button.kind = "URL".to_owned();
                button.url = Some("https://example.com/{{1}}".to_owned());
            }
            ButtonKind::CopyCode => {
                button.kind = "OTP".to_owned();
                button.otp_type = Some("COPY_CODE".to_owned());
            }
        }
    }
    if !buttons.is_empty() {
        components.push(ComponentDef {
            kind: "BUTTONS".to_owned(),
            format: None,
            text: None,
            parameters: Vec::new(),
            buttons,
        });
    }
    let def = TemplateDef {
        namespace: template.namespace().unwrap_or("learned").to_owned(),
        name: template.name().to_owned(),
        language: template.language().to_owned(),
        category: utility(),
        components,
        learned: true,
    };
    def.validate().map_err(|why| format_mismatch(format!("not a template's form: {why}")))?;
    Ok(def)
}

/// Parses a registry file (a JSON array of definitions), checking each one.
pub fn parse_file(json: &str) -> Result<Vec<TemplateDef>, FileError> {
    let defs: Vec<TemplateDef> = serde_json::from_str(json)?;
    for (index, def) in defs.iter().enumerate() {
        def.validate().map_err(|invalid| FileError::Invalid { index, invalid })?;
    }
    Ok(defs)
}

#[cfg(test)]
mod tests {
    use premise_wire::{Content, Message};
    use serde_json::{Value, json};

    use super::*;

    fn registry() -> Registry {
        parse_file(include_str!("../../../../config/templates.json"))
            .unwrap()
            .into_iter()
            .map(|d| ((d.name.clone(), d.language.clone()), d))
            .collect()
    }

    /// The `template` object of a send, validated as `POST /v1/messages` does.
    fn typed(template: &Value) -> Template {
        let send = json!({"to": "16315551234", "type": "template", "template": template});
        match Message::parse(&send).unwrap().content {
            Content::Template { template } => *template,
            other => panic!("{other:?}"),
        }
    }

    fn code(template: &Value) -> u32 {
        hydrate(&registry(), &typed(template), true).unwrap_err().code
    }

    /// A demo template does not judge an integration's template of the same name in another
    /// namespace (Meta's Postman requests and On-Premises clients send `order_update` with a
    /// namespace and parameters of their own): that one is unknown, to be learned.
    #[test]
    fn a_demo_template_does_not_judge_another_namespace() {
        let theirs = json!({"namespace": "ns", "name": "order_update", "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "one"}]}]});
        for check_namespace in [false, true] {
            let refused = hydrate(&registry(), &typed(&theirs), check_namespace).unwrap_err();
            assert_eq!(refused.code, 2001, "unknown, not 2000 (wrong parameters)");
        }
        let ours = registry();
        assert!(ours[&("order_update".to_owned(), "en_US".to_owned())].is_demo());
        let learned = learn(&typed(&theirs)).unwrap();
        assert!(!learned.is_demo());
    }

    #[test]
    fn the_default_file_hydrates() {
        let hello = json!({"name": "hello_world", "language": {"code": "en_US"}});
        assert!(hydrate(&registry(), &typed(&hello), true).unwrap().starts_with("Hello World\n"));
        let order = json!({"namespace": "premise_sandbox", "name": "order_update", "language": {"code": "en_US"}, "components": [
            {"type": "body", "parameters": [
                {"type": "text", "text": "Ada"}, {"type": "text", "text": "#1234"},
                {"type": "currency", "currency": {"fallback_value": "$12.50", "code": "USD", "amount_1000": 12500}},
                {"type": "date_time", "date_time": {"fallback_value": "March 3, 2027"}}]}]});
        let text = hydrate(&registry(), &typed(&order), true).unwrap();
        assert!(text.contains("Hi Ada, your order #1234 of $12.50"), "{text}");
        assert!(text.contains("March 3, 2027"), "{text}");
    }

    #[test]
    fn each_error_has_its_code() {
        assert_eq!(code(&json!({"name": "nope", "language": {"code": "en_US"}})), 2001);
        assert_eq!(code(&json!({"name": "hello_world", "language": {"code": "fr"}})), 2001);
        assert_eq!(
            code(
                &json!({"namespace": "other", "name": "hello_world", "language": {"code": "en_US"}})
            ),
            2001
        );
        let body = |params: Value| json!({"name": "order_update", "language": {"code": "en_US"}, "components": [{"type": "body", "parameters": params}]});
        assert_eq!(code(&body(json!([{"type": "text", "text": "Ada"}]))), 2000);
        let wrong_kind = json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}, {"type": "text", "text": "c"}, {"type": "text", "text": "d"}]);
        assert_eq!(code(&body(wrong_kind)), 2012);
        let long = json!([{"type": "text", "text": "a".repeat(1100)}, {"type": "text", "text": "b"},
            {"type": "currency", "currency": {"fallback_value": "$1", "code": "USD", "amount_1000": 1000}},
            {"type": "date_time", "date_time": {"fallback_value": "today"}}]);
        assert_eq!(code(&body(long)), 2005);
        assert_eq!(
            code(&json!({"name": "delivery_photo", "language": {"code": "en_US"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "P1"}]}]})),
            2000,
            "no header image"
        );
        assert_eq!(
            code(
                &json!({"name": "verification_code", "language": {"code": "en_US"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "123456"}]}]})
            ),
            2000,
            "no code for the button"
        );
    }

    #[test]
    fn a_template_is_learned_from_its_first_use() {
        let first = json!({"namespace": "acme_ns", "name": "shipping", "language": {"code": "pt_BR"}, "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://example.com/a.jpg"}}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Ada"},
                {"type": "currency", "currency": {"fallback_value": "$5", "code": "USD", "amount_1000": 5000}}]},
            {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "x1"}]}]});
        let def = learn(&typed(&first)).unwrap();
        assert!(def.learned && def.namespace == "acme_ns" && def.language == "pt_BR");
        assert_eq!(def.components[0].format.as_deref(), Some("IMAGE"));
        assert_eq!(def.components[1].parameters, ["text", "currency"]);
        let buttons = &def.components[2].buttons;
        assert_eq!((buttons[0].kind.as_str(), buttons[1].kind.as_str()), ("QUICK_REPLY", "URL"));
        let registry: Registry = [(("shipping".into(), "pt_BR".into()), def)].into();
        let use_again = |t: &Value| hydrate(&registry, &typed(t), false);
        assert!(use_again(&first).is_ok(), "the same shape again");
        let mut other_namespace = first.clone();
        other_namespace["namespace"] = json!("another");
        assert!(use_again(&other_namespace).is_ok(), "the namespace is not checked");
        let mut fewer = first.clone();
        fewer["components"][1]["parameters"].as_array_mut().unwrap().pop();
        assert_eq!(use_again(&fewer).unwrap_err().code, 2000);
        let mut wrong_kind = first.clone();
        wrong_kind["components"][1]["parameters"][1] = json!({"type": "text", "text": "5"});
        assert_eq!(use_again(&wrong_kind).unwrap_err().code, 2012);
        let mut no_url = first;
        no_url["components"].as_array_mut().unwrap().pop();
        assert_eq!(use_again(&no_url).unwrap_err().code, 2000, "the dynamic URL needs its part");
        let plain = json!({"name": "hello_there", "language": {"code": "en"}});
        let def = learn(&typed(&plain)).unwrap();
        assert_eq!((def.namespace.as_str(), def.components.len()), ("learned", 1));
    }

    #[test]
    fn the_mode_reads_as_words_or_the_old_flag() {
        let mode = |v: Value| serde_json::from_value::<TemplateCheck>(v).map_err(|e| e.to_string());
        assert_eq!(mode(json!("learn")), Ok(TemplateCheck::Learn));
        assert_eq!(mode(json!("STRICT")), Ok(TemplateCheck::Strict));
        assert_eq!(mode(json!(true)), Ok(TemplateCheck::Strict));
        assert_eq!(mode(json!("false")), Ok(TemplateCheck::Off));
        assert!(mode(json!("sometimes")).unwrap_err().contains("learn, strict or off"));
    }

    #[test]
    fn definitions_are_checked() {
        let mut def = registry()[&("hello_world".to_owned(), "en_US".to_owned())].clone();
        def.components[1].text = Some("Hi {{2}}".into());
        assert!(def.validate().unwrap_err().to_string().starts_with("components[1].text"));
        def.name = "Hello".into();
        assert!(def.validate().unwrap_err().to_string().starts_with("name"));
    }
}
