//! The deprecated `hsm` object (replaced by `template` in v2.39). Older integrations still
//! send it, so it is accepted and carried as the equivalent template: `element_name` becomes
//! `name`, and `localizable_params` become the body's parameters (`default` is the text, or the
//! fallback value of a currency or date_time).

use super::field::Obj;
use super::template::{Component, Currency, DateTime, Language, Parameter, Template};
use crate::{ErrorCode, Rejection};

pub(crate) fn parse(obj: &Obj<'_>) -> Result<Template, Rejection> {
    obj.only(&["namespace", "element_name", "language", "localizable_params"])?;
    let namespace = Some(obj.req_text("namespace", 256)?);
    let name = obj.req_text("element_name", 512)?;
    let language = Language::parse(&obj.req_obj("language")?)?;
    let items = obj.req_array("localizable_params", 0, 100, ErrorCode::ParameterValueInvalid)?;
    let mut parameters = Vec::with_capacity(items.len());
    for (path, value) in items {
        parameters.push(param(&Obj::of(path, value)?)?);
    }
    let components =
        if parameters.is_empty() { Vec::new() } else { vec![Component::Body { parameters }] };
    Ok(Template { namespace, name, language, components })
}

fn param(obj: &Obj<'_>) -> Result<Parameter, Rejection> {
    obj.only(&["default", "currency", "date_time"])?;
    let default = obj.req_text("default", super::template::MAX_TEXT_PARAM)?;
    if obj.has("currency") && obj.has("date_time") {
        return Err(super::field::not_allowed(&obj.at("date_time"), "together with 'currency'"));
    }
    if let Some(c) = obj.obj("currency")? {
        c.only(&["currency_code", "amount_1000"])?;
        let code = c.required("currency_code", c.str("currency_code")?)?;
        let amount = c.required("amount_1000", c.int("amount_1000")?)?;
        // Validate the code as a template currency would be, naming the hsm path.
        let as_template = serde_json::json!({
            "fallback_value": default, "code": code, "amount_1000": amount
        });
        let currency = Currency::parse(&Obj::of(c.path.clone(), &as_template)?).map_err(|e| {
            Rejection::new(e.code, e.details.replace(&c.at("code"), &c.at("currency_code")))
        })?;
        return Ok(Parameter::Currency { currency });
    }
    if let Some(d) = obj.obj("date_time")? {
        d.only(&["component", "unix_epoch"])?;
        let mut date_time = match d.obj("component")? {
            Some(c) => {
                c.only(&["day_of_week", "year", "month", "day_of_month", "hour", "minute"])?;
                DateTime::parts(&c)?
            }
            None => DateTime::parts(&Obj::of(d.path.clone(), &serde_json::json!({}))?)?,
        };
        if let Some(e) = d.obj("unix_epoch")? {
            e.only(&["timestamp"])?;
            date_time.timestamp = Some(e.required("timestamp", e.int("timestamp")?)?);
        }
        date_time.fallback_value = default;
        return Ok(Parameter::DateTime { date_time });
    }
    Ok(Parameter::Text { text: default })
}
