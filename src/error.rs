//! The one error type of the API, rendered as `application/problem+json` (RFC 9457).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// One offending input field of a validation error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// Where the problem is: a dotted path into the request (`contacts[3].phone`,
    /// `filter.all[0].op`) or the name of a query or path parameter.
    pub field: String,
    /// A stable machine code, e.g. `required`, `invalid_phone`, `too_long`.
    pub code: String,
    /// A sentence for a person.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

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
    #[error("{detail}")]
    BadRequest {
        code: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    #[error("{detail}")]
    Unprocessable {
        code: &'static str,
        detail: String,
        extra: Map<String, Value>,
    },
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// PostgreSQL cancelled a statement that ran past the statement timeout.
    #[error("statement timeout: {0}")]
    TimedOut(String),
    /// PostgreSQL aborted the transaction to break a deadlock; [`crate::db::transaction`]
    /// runs it again.
    #[error("deadlock: {0}")]
    Deadlock(String),
    #[error("internal error: {0}")]
    Internal(String),
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
        Self::Validation(vec![FieldError::new(field, code, message)])
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
        }
    }

    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Unprocessable {
            code,
            detail: detail.into(),
            extra: Map::new(),
        }
    }

    /// Names what was not found, for errors that came from a query.
    pub fn or_not_found(self, what: &'static str) -> Self {
        match self {
            Self::NotFound(_) => Self::NotFound(what),
            other => other,
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unprocessable { code, .. }
            | Self::Conflict { code, .. } => code,
            Self::Validation(_) => "validation_failed",
            Self::Unauthorized => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unavailable(_) => "database_unavailable",
            Self::TimedOut(_) => "query_timeout",
            Self::Deadlock(_) | Self::Internal(_) => "internal_error",
        }
    }

    /// The text shown to the client: never the cause of a 5xx, which only goes to the log.
    fn detail(&self) -> String {
        match self {
            Self::Validation(errors) if errors.len() == 1 => {
                format!("{}: {}", errors[0].field, errors[0].message)
            }
            Self::Validation(errors) => format!("The request has {} invalid fields.", errors.len()),
            Self::Unauthorized => "Send a valid key as `Authorization: Bearer <key>`.".to_owned(),
            Self::Unavailable(_) => {
                "The database is unavailable; retry in a few seconds.".to_owned()
            }
            Self::TimedOut(_) => {
                "The database took too long to answer; retry later or narrow the request."
                    .to_owned()
            }
            Self::Deadlock(_) | Self::Internal(_) => {
                "An unexpected error occurred; it has been logged.".to_owned()
            }
            other => other.to_string(),
        }
    }

    pub fn to_problem(&self) -> Problem {
        let status = self.status_code();
        let code = self.code();
        let (errors, extra) = match self {
            Self::Validation(errors) => (Some(errors.clone()), Map::new()),
            Self::BadRequest { errors, .. } if !errors.is_empty() => {
                (Some(errors.clone()), Map::new())
            }
            Self::Unprocessable { extra, .. } => (None, extra.clone()),
            _ => (None, Map::new()),
        };
        Problem {
            r#type: format!("urn:segments:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.detail(),
            code: code.to_owned(),
            errors,
            extra,
        }
    }
}

/// Seconds a client should wait before retrying while the database is down.
const RETRY_AFTER_SECONDS: &str = "5";

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Validation(_) | Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) | Self::TimedOut(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Deadlock(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(cause) | Self::Deadlock(cause) => {
                tracing::error!(%cause, "request failed")
            }
            Self::Unavailable(cause) => tracing::warn!(%cause, "database unavailable"),
            Self::TimedOut(cause) => tracing::warn!(%cause, "statement timed out"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        match self {
            Self::Unavailable(_) | Self::TimedOut(_) => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS));
            }
            Self::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            _ => {}
        }
        response.json(self.to_problem())
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::NotFound => Self::NotFound("resource"),
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                Self::Unavailable(info.message().to_owned())
            }
            Error::DatabaseError(_, ref info)
                if info
                    .message()
                    .contains("canceling statement due to statement timeout") =>
            {
                Self::TimedOut(info.message().to_owned())
            }
            Error::DatabaseError(_, ref info) if info.message().contains("deadlock detected") => {
                Self::Deadlock(info.message().to_owned())
            }
            // libpq reports a lost server as an unknown error with this wording.
            Error::DatabaseError(_, ref info)
                if info.message().contains("server closed the connection")
                    || info.message().contains("no connection to the server") =>
            {
                Self::Unavailable(info.message().to_owned())
            }
            other => Self::internal(other),
        }
    }
}

/// The name of the unique constraint `error` violates, if that is what it is.
pub fn violated_unique_constraint(error: &diesel::result::Error) -> Option<&str> {
    match error {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            info,
        ) => info.constraint_name(),
        _ => None,
    }
}

impl From<diesel::r2d2::PoolError> for ApiError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        Self::internal(error)
    }
}

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
        let problem = ApiError::internal("password=secret in a query").to_problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("secret"));
    }

    #[test]
    fn unprocessable_carries_extension_members() {
        let mut extra = Map::new();
        extra.insert("limit".into(), 3.into());
        let error = ApiError::Unprocessable {
            code: "endpoint_limit_exceeded",
            detail: "too many".into(),
            extra,
        };
        let json = serde_json::to_value(error.to_problem()).unwrap();
        assert_eq!(json["limit"], 3);
        assert_eq!(json["type"], "urn:segments:problem:endpoint_limit_exceeded");
    }
}
