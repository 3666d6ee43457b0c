//! Registration as On-Premises took it: `POST /v1/account` `{cc, phone_number, method, cert,
//! pin?}` asks for a code by SMS or voice call, `POST /v1/account/verify` `{code}` registers
//! with it. `cert` is the verified-name certificate Business Manager gives, base64: a protobuf
//! `VerifiedNameCertificate` (`details` = 1) whose `Details` carry the name (`verified_name` =
//! 4) that On-Premises answered as `vname`.

use base64::Engine;
use serde_json::Value;

use crate::Rejection;
use crate::fields::{object, optional_text, text};

/// How the code is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeMethod {
    Sms,
    Voice,
}

impl CodeMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Voice => "voice",
        }
    }
}

/// A valid `POST /v1/account` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationRequest {
    pub cc: String,
    pub phone_number: String,
    pub method: CodeMethod,
    /// The verified name the certificate carries.
    pub vname: String,
    /// The two-step verification PIN, when the number has one.
    pub pin: Option<String>,
}

impl RegistrationRequest {
    /// The number, `cc` then `phone_number`, digits only.
    pub fn number(&self) -> String {
        format!("{}{}", self.cc, self.phone_number)
    }
}

pub fn registration_request(body: &Value) -> Result<RegistrationRequest, Rejection> {
    let body = object("account", body)?;
    let cc = text(body, "cc", "cc", 1, 3)?;
    if !cc.bytes().all(|b| b.is_ascii_digit()) || cc.starts_with('0') {
        return Err(Rejection::invalid(
            "cc",
            "a country calling code: 1 to 3 digits, like 1 or 44",
        ));
    }
    let phone_number = text(body, "phone_number", "phone_number", 4, 14)?;
    if !phone_number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::invalid(
            "phone_number",
            "the number without its country code, digits only",
        ));
    }
    if cc.len() + phone_number.len() > 15 {
        return Err(Rejection::invalid("phone_number", "longer than 15 digits with its cc"));
    }
    let method = match text(body, "method", "method", 1, 5)?.as_str() {
        "sms" => CodeMethod::Sms,
        "voice" => CodeMethod::Voice,
        _ => return Err(Rejection::invalid("method", "sms or voice")),
    };
    let cert = text(body, "cert", "cert", 1, 16_384)?;
    let vname = verified_name(&cert)
        .ok_or_else(|| Rejection::invalid("cert", "not a verified name certificate"))?;
    let pin = optional_text(body, "pin", "pin", 6)?.filter(|pin| !pin.is_empty());
    if let Some(pin) = &pin
        && !(pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Rejection::invalid("pin", "six digits, as a string"));
    }
    Ok(RegistrationRequest { cc, phone_number, method, vname, pin })
}

/// The code of a `POST /v1/account/verify` body: six digits (`123-456` as WhatsApp shows them
/// is taken too).
pub fn verification_code(body: &Value) -> Result<String, Rejection> {
    let body = object("account", body)?;
    let code = text(body, "code", "code", 1, 16)?.replace('-', "");
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(code)
    } else {
        Err(Rejection::invalid("code", "the six digits of the code that was sent"))
    }
}

/// The verified name a base64 certificate carries, `None` if it is not one.
pub fn verified_name(cert: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cert.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(cert.trim()))
        .ok()?;
    let details = field(&bytes, 1)?;
    let name = std::str::from_utf8(field(details, 4)?).ok()?;
    (!name.trim().is_empty()).then(|| name.to_owned())
}

/// The first length-delimited field `number` of a protobuf message; `None` if the bytes are
/// not a well-formed message.
fn field(mut bytes: &[u8], number: u64) -> Option<&[u8]> {
    let mut found = None;
    while !bytes.is_empty() {
        let tag = varint(&mut bytes)?;
        match tag & 7 {
            0 => {
                varint(&mut bytes)?;
            }
            1 => bytes = bytes.get(8..)?,
            2 => {
                let len = usize::try_from(varint(&mut bytes)?).ok()?;
                let value = bytes.get(..len)?;
                if tag >> 3 == number && found.is_none() {
                    found = Some(value);
                }
                bytes = &bytes[len..];
            }
            5 => bytes = bytes.get(4..)?,
            _ => return None,
        }
    }
    found
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// A certificate carrying `name`, as Business Manager makes them (for tests and the sandbox;
/// the signature is not checked by Premise).
pub fn certificate_for(name: &str, serial: u64) -> String {
    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn put_bytes(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
        put_varint(out, number << 3 | 2);
        put_varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
    let mut details = Vec::new();
    put_varint(&mut details, 1 << 3);
    put_varint(&mut details, serial);
    put_bytes(&mut details, 2, b"smb:wa");
    put_bytes(&mut details, 4, name.as_bytes());
    let mut cert = Vec::new();
    put_bytes(&mut cert, 1, &details);
    put_bytes(&mut cert, 2, &[7u8; 64]);
    base64::engine::general_purpose::STANDARD.encode(cert)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ErrorCode;

    #[test]
    fn a_certificate_gives_its_verified_name() {
        let cert = certificate_for("Lucky Shrub", 4_611_686_018_427_387_904);
        assert_eq!(verified_name(&cert).as_deref(), Some("Lucky Shrub"));
        assert_eq!(verified_name("bm90IGEgY2VydA=="), None);
        assert_eq!(verified_name("%%%"), None);
        let request = registration_request(&json!({"cc": "1", "phone_number": "6315551234",
            "method": "sms", "cert": cert}))
        .unwrap();
        assert_eq!(
            (request.number(), request.vname.as_str()),
            ("16315551234".into(), "Lucky Shrub")
        );
    }

    #[test]
    fn each_field_is_checked() {
        let cert = certificate_for("Lucky Shrub", 1);
        let valid = json!({"cc": "44", "phone_number": "7700900123", "method": "voice",
            "cert": cert, "pin": "123456"});
        for (pointer, value, field) in [
            ("/cc", json!("0"), "cc"),
            ("/cc", json!("1234"), "cc"),
            ("/phone_number", json!("770-090"), "phone_number"),
            ("/method", json!("email"), "method"),
            ("/cert", json!("bm90IGEgY2VydA=="), "cert"),
            ("/pin", json!("12345"), "pin"),
        ] {
            let mut body = valid.clone();
            *body.pointer_mut(pointer).unwrap() = value;
            let rejection = registration_request(&body).unwrap_err();
            assert_eq!(rejection.code, ErrorCode::ParameterValueInvalid, "{field}");
            assert!(rejection.details.starts_with(&format!("{field}:")), "{}", rejection.details);
        }
        assert_eq!(verification_code(&json!({"code": "123-456"})).unwrap(), "123456");
        assert!(verification_code(&json!({"code": "12345"})).is_err());
        assert_eq!(
            verification_code(&json!({})).unwrap_err().code,
            ErrorCode::RequiredParameterMissing
        );
    }
}
