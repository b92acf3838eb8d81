//! The API's one error type, rendered as `application/problem+json` (RFC 9457): the
//! core's errors, plus what only HTTP can get wrong (a body that cannot be read, a
//! missing key).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::core::error::{Chain, Error, FieldError};

/// An RFC 9457 problem document, as every 4xx and 5xx answer carries it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:segments:problem:<code>`.
    #[schema(example = "urn:segments:problem:validation_failed")]
    pub r#type: String,
    #[schema(example = "Unprocessable Entity")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    #[schema(example = "The request has 1 invalid field.")]
    pub detail: String,
    /// A stable snake_case code to branch on.
    #[schema(example = "validation_failed")]
    pub code: String,
    /// Every offending field, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// Members specific to a code, e.g. `used`, `limit`, `requested` for
    /// `endpoint_limit_exceeded`.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A use case refused the request or failed.
    #[error(transparent)]
    Service(#[from] Error),
    /// The request cannot be read: malformed JSON, a bad query or path parameter.
    #[error("{detail}")]
    BadRequest {
        code: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// No route answers this path.
    #[error("route not found")]
    NoRoute,
    /// The body stopped arriving.
    #[error("The request body stopped arriving; send it again.")]
    BodyStalled,
    /// The caller is past its rate limit.
    #[error("Too many requests for this key; retry after `Retry-After` seconds.")]
    RateLimited,
}

impl ApiError {
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn invalid_field(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self::Service(Error::invalid_field(field, code, message))
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Service(error) => code_of(error),
            Self::BadRequest { code, .. } => code,
            Self::Unauthorized => "unauthorized",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::NoRoute => "not_found",
            Self::RateLimited => "rate_limited",
            Self::BodyStalled => "request_timeout",
        }
    }

    /// The text shown to the client: never the cause of a 5xx, which only goes to the log.
    fn detail(&self) -> String {
        match self {
            Self::Service(error) => detail_of(error),
            Self::Unauthorized => "Send a valid key as `Authorization: Bearer <key>`.".to_owned(),
            other => other.to_string(),
        }
    }

    pub fn to_problem(&self) -> Problem {
        let (errors, extra) = match self {
            Self::Service(error) => return problem_of(error),
            Self::BadRequest { errors, .. } if !errors.is_empty() => Some(errors.clone()),
            _ => None,
        }
        .map_or((None, Map::new()), |errors| (Some(errors), Map::new()));
        render(
            self.status_code(),
            self.code(),
            self.detail(),
            errors,
            extra,
        )
    }
}

/// The most characters of a problem's text (its detail, an error's field or message):
/// messages quote what the client sent, which may be long; the answer stays readable
/// and within the document's bounds.
const MAX_PROBLEM_TEXT: usize = 1_000;

fn cut(text: String) -> String {
    if text.chars().count() <= MAX_PROBLEM_TEXT {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_PROBLEM_TEXT - 1).collect();
    cut.push('…');
    cut
}

fn render(
    status: StatusCode,
    code: &str,
    detail: String,
    errors: Option<Vec<FieldError>>,
    extra: Map<String, Value>,
) -> Problem {
    let errors = errors.map(|errors| {
        errors
            .into_iter()
            .map(|error| FieldError {
                field: cut(error.field),
                code: error.code,
                message: cut(error.message),
            })
            .collect()
    });
    Problem {
        r#type: format!("urn:segments:problem:{code}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: cut(detail),
        code: code.to_owned(),
        errors,
        extra,
    }
}

fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::Validation(_) | Error::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Error::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict { .. } => StatusCode::CONFLICT,
        Error::Gone { .. } => StatusCode::GONE,
        Error::Unavailable(_) | Error::TimedOut(_) | Error::Contention(_) | Error::Busy => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn code_of(error: &Error) -> &'static str {
    match error {
        Error::Validation(_) => "validation_failed",
        Error::NotFound(_) => "not_found",
        Error::PreconditionFailed => "precondition_failed",
        Error::Conflict { code, .. }
        | Error::Gone { code, .. }
        | Error::Unprocessable { code, .. }
        | Error::TooLarge { code, .. } => code,
        Error::Unavailable(_) => "database_unavailable",
        Error::Contention(_) => "contention",
        Error::TimedOut(_) => "query_timeout",
        Error::Busy => "tenant_busy",
        Error::Internal(_) => "internal_error",
    }
}

/// The text shown to the client: never the cause of a 5xx, which only goes to the log.
fn detail_of(error: &Error) -> String {
    match error {
        Error::Validation(errors) if errors.len() == 1 => {
            format!("{}: {}", errors[0].field, errors[0].message)
        }
        Error::Validation(errors) => format!("The request has {} invalid fields.", errors.len()),
        Error::Unavailable(_) => "The database is unavailable; retry in a few seconds.".to_owned(),
        Error::Contention(_) => {
            "Other requests kept changing the same records at the same moment; retry in a few seconds."
                .to_owned()
        }
        Error::TimedOut(_) => {
            "The database took too long to answer; retry later or narrow the request.".to_owned()
        }
        Error::Busy => {
            "This account's work is using its full share of the database; retry in a few seconds."
                .to_owned()
        }
        Error::Internal(_) => "An unexpected error occurred; it has been logged.".to_owned(),
        other => other.to_string(),
    }
}

/// The problem document for a use case's error.
pub fn problem_of(error: &Error) -> Problem {
    let (errors, extra) = match error {
        Error::Validation(errors) => (Some(errors.clone()), Map::new()),
        Error::Unprocessable { extra, .. } => (None, extra.clone()),
        _ => (None, Map::new()),
    };
    render(
        status_of(error),
        code_of(error),
        detail_of(error),
        errors,
        extra,
    )
}

/// The problem document for a use case's error, as JSON: how failed import jobs store
/// theirs.
pub fn problem_json(error: &Error) -> Value {
    serde_json::to_value(problem_of(error)).unwrap_or_default()
}

/// Seconds a client should wait before retrying while the database is down or busy.
const RETRY_AFTER_SECONDS: &str = "5";

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Service(error) => status_of(error),
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::BodyStalled => StatusCode::REQUEST_TIMEOUT,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Service(error @ Error::Internal(_)) => {
                tracing::error!(error = %Chain(error), "request failed")
            }
            Self::Service(error @ (Error::Unavailable(_) | Error::Contention(_))) => {
                tracing::warn!(error = %Chain(error), "database unavailable")
            }
            Self::Service(error @ Error::TimedOut(_)) => {
                tracing::warn!(error = %Chain(error), "statement timed out")
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        match self {
            Self::Service(
                Error::Unavailable(_) | Error::TimedOut(_) | Error::Contention(_) | Error::Busy,
            ) => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS));
            }
            Self::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            _ => {}
        }
        let mut response = response.json(self.to_problem());
        response.extensions_mut().insert(ProblemCode(self.code()));
        response
    }
}

/// The code of the problem an answer carries, for the request's log line.
#[derive(Debug, Clone, Copy)]
pub struct ProblemCode(pub &'static str);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_problem_lists_fields_and_uses_422() {
        let error = ApiError::invalid_field("name", "required", "is required");
        let problem = error.to_problem();
        assert_eq!(problem.status, 422);
        assert_eq!(problem.code, "validation_failed");
        assert_eq!(problem.detail, "name: is required");
        assert_eq!(problem.errors.unwrap()[0].field, "name");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let problem = ApiError::from(Error::internal("password=secret in a query")).to_problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("secret"));
    }

    #[test]
    fn unprocessable_carries_extension_members() {
        let mut extra = Map::new();
        extra.insert("limit".into(), 3.into());
        let error = ApiError::from(Error::Unprocessable {
            code: "endpoint_limit_exceeded",
            detail: "too many".into(),
            extra,
        });
        let json = serde_json::to_value(error.to_problem()).unwrap();
        assert_eq!(json["limit"], 3);
        assert_eq!(json["type"], "urn:segments:problem:endpoint_limit_exceeded");
    }
}
