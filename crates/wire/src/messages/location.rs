//! `location` messages and template location parameters: latitude and longitude in decimal
//! degrees (numbers, or strings as Meta's own samples send them), a name and an address. The
//! seed makes all four required.

use serde::Serialize;

use super::field::Obj;
use crate::Rejection;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Location {
    pub(crate) latitude: f64,
    pub(crate) longitude: f64,
    pub(crate) name: String,
    pub(crate) address: String,
}

impl Location {
    pub(crate) fn parse(obj: &Obj<'_>) -> Result<Self, Rejection> {
        obj.only(&["latitude", "longitude", "name", "address"])?;
        let latitude = degrees(obj, "latitude", 90.0)?;
        let longitude = degrees(obj, "longitude", 180.0)?;
        Ok(Self {
            latitude,
            longitude,
            name: obj.req_text("name", 1024)?,
            address: obj.req_text("address", 1024)?,
        })
    }
}

fn degrees(obj: &Obj<'_>, key: &str, limit: f64) -> Result<f64, Rejection> {
    let value = obj.required(key, obj.number(key)?)?;
    if !(-limit..=limit).contains(&value) {
        return Err(Rejection::invalid(
            &obj.at(key),
            format!("must be between -{limit} and {limit} degrees (got {value})"),
        ));
    }
    Ok(value)
}
