//! On-Premises error codes, their titles and the HTTP status the Webapp answered them with
//! (`docs/onprem-api.md` section 10.1).

use std::fmt;

/// An On-Premises client error code. The numbers are part of the contract: integrations switch
/// on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    GenericError,
    MessageTooLong,
    InvalidRecipientType,
    ResourceAlreadyExists,
    AccessDenied,
    ResourceNotFound,
    RequiredParameterMissing,
    ParameterValueInvalid,
    ParameterNotRequired,
    ServiceNotReady,
    InternalError,
    TooManyRequests,
    SystemOverloaded,
    DatabaseError,
    PasswordChangeRequired,
    InvalidRequest,
    ReceiverIncapable,
    InvalidSectionCount,
    InvalidRowCount,
    InvalidProductCount,
    TemplateParamCountMismatch,
    TemplateMissing,
    TemplateHydratedTextTooLong,
    TemplateParameterFormatMismatch,
}

impl ErrorCode {
    /// The code with this number, if it is one of ours.
    pub fn from_code(code: u32) -> Option<Self> {
        ALL.into_iter().find(|c| c.code() == code)
    }

    pub const fn code(self) -> u32 {
        match self {
            Self::GenericError => 1000,
            Self::MessageTooLong => 1001,
            Self::InvalidRecipientType => 1002,
            Self::ResourceAlreadyExists => 1004,
            Self::AccessDenied => 1005,
            Self::ResourceNotFound => 1006,
            Self::RequiredParameterMissing => 1008,
            Self::ParameterValueInvalid => 1009,
            Self::ParameterNotRequired => 1010,
            Self::ServiceNotReady => 1011,
            Self::InternalError => 1014,
            Self::TooManyRequests => 1015,
            Self::SystemOverloaded => 1016,
            Self::DatabaseError => 1023,
            Self::PasswordChangeRequired => 1024,
            Self::InvalidRequest => 1025,
            Self::ReceiverIncapable => 1026,
            Self::InvalidSectionCount => 2015,
            Self::InvalidRowCount => 2016,
            Self::InvalidProductCount => 2023,
            Self::TemplateParamCountMismatch => 2000,
            Self::TemplateMissing => 2001,
            Self::TemplateHydratedTextTooLong => 2005,
            Self::TemplateParameterFormatMismatch => 2012,
        }
    }

    pub const fn title(self) -> &'static str {
        match self {
            Self::GenericError => "Generic error",
            Self::MessageTooLong => "Message too long",
            Self::InvalidRecipientType => "Invalid recipient type",
            Self::ResourceAlreadyExists => "Resource already exists",
            Self::AccessDenied => "Access denied",
            Self::ResourceNotFound => "Resource not found",
            Self::RequiredParameterMissing => "Required parameter is missing",
            Self::ParameterValueInvalid => "Parameter value is not valid",
            Self::ParameterNotRequired => "Parameter is not required",
            Self::ServiceNotReady => "Service not ready",
            Self::InternalError => "Internal error",
            Self::TooManyRequests => "Too many requests",
            Self::SystemOverloaded => "System overloaded",
            Self::DatabaseError => "Database error occurred",
            Self::PasswordChangeRequired => "Password Change Required",
            Self::InvalidRequest => "Invalid Request",
            Self::ReceiverIncapable => "Receiver incapable",
            Self::InvalidSectionCount => "Invalid number of sections",
            Self::InvalidRowCount => "Invalid number of rows",
            Self::InvalidProductCount => "Invalid number of product",
            Self::TemplateParamCountMismatch => "Template Param Count Mismatch",
            Self::TemplateMissing => "Template Missing",
            Self::TemplateHydratedTextTooLong => "Template Hydrated Text Too Long",
            Self::TemplateParameterFormatMismatch => "Template Parameter Format Mismatch",
        }
    }

    /// The HTTP status the Webapp's code map gave this code. `AccessDenied` is 403 there, but
    /// bad credentials are answered 401; callers that mean "not authenticated" choose 401
    /// themselves.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::MessageTooLong
            | Self::InvalidRecipientType
            | Self::RequiredParameterMissing
            | Self::ParameterValueInvalid
            | Self::ParameterNotRequired
            | Self::InvalidRequest
            | Self::InvalidSectionCount
            | Self::InvalidRowCount
            | Self::InvalidProductCount
            | Self::TemplateParamCountMismatch
            | Self::TemplateHydratedTextTooLong
            | Self::TemplateParameterFormatMismatch => 400,
            Self::PasswordChangeRequired => 401,
            Self::AccessDenied => 403,
            Self::ResourceNotFound | Self::TemplateMissing => 404,
            Self::ResourceAlreadyExists => 409,
            Self::TooManyRequests => 429,
            Self::ReceiverIncapable => 501,
            Self::SystemOverloaded => 503,
            Self::GenericError
            | Self::ServiceNotReady
            | Self::InternalError
            | Self::DatabaseError => 500,
        }
    }
}

impl ErrorCode {
    /// The Cloud API's code for the same failure (`docs/onprem-api.md` section 12.1, matched by
    /// title). Codes without a Cloud counterpart of their own are parameter errors there.
    pub const fn cloud_code(self) -> u32 {
        match self {
            Self::GenericError | Self::InternalError | Self::DatabaseError => 131_000,
            Self::MessageTooLong => 131_001,
            Self::InvalidRecipientType => 131_002,
            Self::AccessDenied => 131_005,
            Self::ResourceNotFound => 131_006,
            Self::RequiredParameterMissing => 131_008,
            Self::ParameterValueInvalid
            | Self::ParameterNotRequired
            | Self::InvalidSectionCount
            | Self::InvalidRowCount
            | Self::InvalidProductCount
            | Self::ResourceAlreadyExists => 131_009,
            Self::ServiceNotReady | Self::SystemOverloaded => 131_016,
            Self::TooManyRequests => 130_429,
            Self::ReceiverIncapable => 131_026,
            Self::InvalidRequest => 100,
            Self::PasswordChangeRequired => 190,
            Self::TemplateParamCountMismatch => 132_000,
            Self::TemplateMissing => 132_001,
            Self::TemplateHydratedTextTooLong => 132_005,
            Self::TemplateParameterFormatMismatch => 132_012,
        }
    }
}

const ALL: [ErrorCode; 24] = [
    ErrorCode::GenericError,
    ErrorCode::MessageTooLong,
    ErrorCode::InvalidRecipientType,
    ErrorCode::ResourceAlreadyExists,
    ErrorCode::AccessDenied,
    ErrorCode::ResourceNotFound,
    ErrorCode::RequiredParameterMissing,
    ErrorCode::ParameterValueInvalid,
    ErrorCode::ParameterNotRequired,
    ErrorCode::ServiceNotReady,
    ErrorCode::InternalError,
    ErrorCode::TooManyRequests,
    ErrorCode::SystemOverloaded,
    ErrorCode::DatabaseError,
    ErrorCode::PasswordChangeRequired,
    ErrorCode::InvalidRequest,
    ErrorCode::ReceiverIncapable,
    ErrorCode::InvalidSectionCount,
    ErrorCode::InvalidRowCount,
    ErrorCode::InvalidProductCount,
    ErrorCode::TemplateParamCountMismatch,
    ErrorCode::TemplateMissing,
    ErrorCode::TemplateHydratedTextTooLong,
    ErrorCode::TemplateParameterFormatMismatch,
];

/// Why a wire value was refused: the On-Premises code and a `details` text that names the
/// offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: ErrorCode,
    pub details: String,
}

impl Rejection {
    pub fn new(code: ErrorCode, details: impl Into<String>) -> Self {
        Self { code, details: shorten_quotes(&details.into()) }
    }

    /// `Missing mandatory parameter '<field>'` (1008), worded as the Webapp did.
    pub fn missing(field: &str) -> Self {
        Self::new(
            ErrorCode::RequiredParameterMissing,
            format!("Missing mandatory parameter '{field}'"),
        )
    }

    /// `<field>: <problem>` (1009).
    pub fn invalid(field: &str, problem: impl fmt::Display) -> Self {
        Self::new(ErrorCode::ParameterValueInvalid, format!("{field}: {problem}"))
    }
}

/// Values quoted in error details ('like this' or "like this") are cut to their first
/// [`QUOTE_PREFIX`] characters, with their length: a client that sent 10,000 digits learns
/// which value was refused without receiving it back. Details stay under [`MAX_DETAILS`].
pub fn shorten_quotes(details: &str) -> String {
    if details.len() <= QUOTE_PREFIX + 2 {
        return details.to_owned();
    }
    let mut out = String::with_capacity(details.len().min(MAX_DETAILS));
    let mut rest = details;
    while let Some(open) = rest.find(['\'', '"']) {
        let quote = &rest[open..=open];
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let Some(close) = rest.find(quote) else { break };
        let value = &rest[..close];
        let chars = value.chars().count();
        if chars > QUOTE_PREFIX {
            out.extend(value.chars().take(QUOTE_PREFIX));
            out.push('…');
            out.push_str(quote);
            out.push_str(&format!(" ({chars} characters)"));
        } else {
            out.push_str(value);
            out.push_str(quote);
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    if out.len() > MAX_DETAILS {
        let cut = (0..=MAX_DETAILS).rev().find(|i| out.is_char_boundary(*i)).unwrap_or(0);
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// How much of a quoted value error details keep.
pub const QUOTE_PREFIX: usize = 100;
/// The longest error details, in bytes.
pub const MAX_DETAILS: usize = 1_000;

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code.title(), self.code.code(), self.details)
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_quoted_values_are_cut() {
        let long = "1".repeat(10_000);
        let details = shorten_quotes(&format!("to: '{long}' must have 5 to 20 digits"));
        assert_eq!(
            details,
            format!("to: '{}…' (10000 characters) must have 5 to 20 digits", "1".repeat(100))
        );
        let serde = shorten_quotes(&format!("invalid type: string \"{long}\", expected u32"));
        assert!(serde.len() < 160 && serde.ends_with("expected u32"), "{serde}");
        let short = "to: '123' must have 5 to 20 digits";
        assert_eq!(shorten_quotes(short), short);
        assert_eq!(shorten_quotes("an 'unclosed quote"), "an 'unclosed quote");
        assert!(shorten_quotes(&"é".repeat(2_000)).len() <= MAX_DETAILS + '…'.len_utf8());
    }
}
