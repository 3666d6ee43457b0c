//! JSON-path-aware field access: every rule of the message contract reads its input through
//! [`Obj`], so a rejection always names the offending field by its full path
//! (`interactive.action.sections[1].rows[3].title: at most 24 characters`) and each kind of
//! check (missing, wrong type, too long, unknown) is worded once.

use serde_json::{Map, Value};

use crate::{ErrorCode, Rejection};

/// `parent.key`, or `key` at the top level.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

/// The JSON type of a value, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn wrong_type(path: &str, expected: &str, got: &Value) -> Rejection {
    Rejection::invalid(path, format!("expected {expected}, got {}", kind(got)))
}

/// `Parameter '<path>' is not a known parameter` (1010).
pub(crate) fn unknown(path: &str) -> Rejection {
    Rejection::new(
        ErrorCode::ParameterNotRequired,
        format!("Parameter '{path}' is not a known parameter"),
    )
}

/// `<path>: not allowed <why>` (1010): a known parameter in the wrong place.
pub(crate) fn not_allowed(path: &str, why: &str) -> Rejection {
    Rejection::new(ErrorCode::ParameterNotRequired, format!("{path}: not allowed {why}"))
}

/// Checks a string against a length limit in characters (what WhatsApp counts).
pub(crate) fn check_len(path: &str, text: &str, max: usize) -> Result<(), Rejection> {
    let length = text.chars().count();
    if length > max {
        return Err(Rejection::invalid(path, format!("at most {max} characters (got {length})")));
    }
    Ok(())
}

/// A JSON object and where it sits in the request.
#[derive(Debug, Clone)]
pub(crate) struct Obj<'a> {
    pub path: String,
    pub map: &'a Map<String, Value>,
}

/// An array element: its path and value.
pub(crate) type Item<'a> = (String, &'a Value);

impl<'a> Obj<'a> {
    /// `value` as an object at `path`, or 1009 naming the type it has.
    pub fn of(path: impl Into<String>, value: &'a Value) -> Result<Self, Rejection> {
        let path = path.into();
        match value {
            Value::Object(map) => Ok(Self { path, map }),
            other => Err(wrong_type(&path, "an object", other)),
        }
    }

    pub fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Refuses any key not in `allowed` (1010, naming the first unknown key's path).
    pub fn only(&self, allowed: &[&str]) -> Result<(), Rejection> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(key) => Err(unknown(&self.at(key))),
            None => Ok(()),
        }
    }

    /// The value of `key`; `null` counts as absent.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Refuses `key` if present (1010), saying why it does not belong here.
    pub fn forbid(&self, key: &str, why: &str) -> Result<(), Rejection> {
        if self.has(key) { Err(not_allowed(&self.at(key), why)) } else { Ok(()) }
    }

    pub fn required<T>(&self, key: &str, found: Option<T>) -> Result<T, Rejection> {
        found.ok_or_else(|| Rejection::missing(&self.at(key)))
    }

    pub fn str(&self, key: &str) -> Result<Option<&'a str>, Rejection> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type(&self.at(key), "a string", other)),
        }
    }

    /// An optional string of at most `max` characters.
    pub fn text(&self, key: &str, max: usize) -> Result<Option<String>, Rejection> {
        let Some(s) = self.str(key)? else { return Ok(None) };
        check_len(&self.at(key), s, max)?;
        Ok(Some(s.to_owned()))
    }

    /// A required, non-blank string of at most `max` characters.
    pub fn req_text(&self, key: &str, max: usize) -> Result<String, Rejection> {
        let s = self.required(key, self.str(key)?)?;
        if s.trim().is_empty() {
            return Err(Rejection::invalid(&self.at(key), "must not be empty"));
        }
        check_len(&self.at(key), s, max)?;
        Ok(s.to_owned())
    }

    /// A non-blank string if present.
    pub fn opt_nonblank(&self, key: &str, max: usize) -> Result<Option<String>, Rejection> {
        if self.has(key) { self.req_text(key, max).map(Some) } else { Ok(None) }
    }

    /// A boolean; `"true"`/`"false"` strings too.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, Rejection> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(other) => Err(wrong_type(&self.at(key), "a boolean", other)),
        }
    }

    /// An integer, given as a number or as a string of digits (Meta's samples use both).
    pub fn int(&self, key: &str) -> Result<Option<i64>, Rejection> {
        let path = self.at(key);
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| Rejection::invalid(&path, format!("'{n}' is not an integer"))),
            Some(Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| Rejection::invalid(&path, format!("'{s}' is not an integer"))),
            Some(other) => Err(wrong_type(&path, "an integer", other)),
        }
    }

    /// An integer within `range`.
    pub fn int_in(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, Rejection> {
        let Some(n) = self.int(key)? else { return Ok(None) };
        if !range.contains(&n) {
            return Err(Rejection::invalid(
                &self.at(key),
                format!("must be between {} and {} (got {n})", range.start(), range.end()),
            ));
        }
        Ok(Some(n))
    }

    /// A finite decimal number, given as a number or a numeric string.
    pub fn number(&self, key: &str) -> Result<Option<f64>, Rejection> {
        let path = self.at(key);
        let parsed = match self.get(key) {
            None => return Ok(None),
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            Some(other) => return Err(wrong_type(&path, "a number", other)),
        };
        match parsed {
            Some(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(Rejection::invalid(&path, "is not a decimal number")),
        }
    }

    pub fn obj(&self, key: &str) -> Result<Option<Obj<'a>>, Rejection> {
        let Some(value) = self.get(key) else { return Ok(None) };
        match value {
            Value::Object(map) => Ok(Some(Obj { path: self.at(key), map })),
            other => Err(wrong_type(&self.at(key), "an object", other)),
        }
    }

    pub fn req_obj(&self, key: &str) -> Result<Obj<'a>, Rejection> {
        let found = self.obj(key)?;
        self.required(key, found)
    }

    /// The elements of an array, each with its path.
    pub fn array(&self, key: &str) -> Result<Option<Vec<Item<'a>>>, Rejection> {
        let path = self.at(key);
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(
                items.iter().enumerate().map(|(i, v)| (format!("{path}[{i}]"), v)).collect(),
            )),
            Some(other) => Err(wrong_type(&path, "an array", other)),
        }
    }

    /// A required array with `min..=max` elements; `code` is the error for a wrong count.
    pub fn req_array(
        &self,
        key: &str,
        min: usize,
        max: usize,
        code: ErrorCode,
    ) -> Result<Vec<Item<'a>>, Rejection> {
        let found = self.array(key)?;
        let items = self.required(key, found)?;
        check_count(&self.at(key), items.len(), min, max, code)?;
        Ok(items)
    }
}

/// Checks an element count; the rejection names the array.
pub(crate) fn check_count(
    path: &str,
    count: usize,
    min: usize,
    max: usize,
    code: ErrorCode,
) -> Result<(), Rejection> {
    if count < min || count > max {
        let expected = if min == max {
            format!("exactly {min}")
        } else if count < min {
            format!("at least {min}")
        } else {
            format!("at most {max}")
        };
        return Err(Rejection::new(code, format!("{path}: {expected} items (got {count})")));
    }
    Ok(())
}
