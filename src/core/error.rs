//! What can go wrong in a use case, in the service's own words. The HTTP layer renders
//! each variant as a problem document; the data layer classifies database failures into
//! the last four.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The underlying failure of a 5xx, kept whole (with its chain of sources) for the log.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One offending input field of a validation error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that breaks a rule, each problem naming its field.
    #[error("invalid input: {0:?}")]
    Validation(Vec<FieldError>),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state (a name taken, a dynamic segment).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// A well-formed request a rule refuses, with members specific to `code`.
    #[error("{detail}")]
    Unprocessable {
        code: &'static str,
        detail: String,
        extra: Map<String, Value>,
    },
    /// What was asked for existed but is gone for good (a send's recipients past the
    /// retention horizon).
    #[error("{detail}")]
    Gone { code: &'static str, detail: String },
    /// The resource changed since the client read it (`If-Match` no longer matches).
    #[error("the resource changed since it was read")]
    PreconditionFailed,
    /// The input is larger than the service reads (a workbook that unpacks too far).
    #[error("{detail}")]
    TooLarge { code: &'static str, detail: String },
    /// The database cannot be reached.
    #[error("database unavailable")]
    Unavailable(#[source] Cause),
    /// A statement ran past its time limit.
    #[error("statement timed out")]
    TimedOut(#[source] Cause),
    /// The transaction lost a race (a deadlock, a serialization failure, a lock it could
    /// not get in time): running it again may well succeed.
    #[error("transaction lost a race")]
    Contention(#[source] Cause),
    /// The tenant is using its whole share of the database: retry shortly.
    #[error("the tenant's share of database connections is taken")]
    Busy,
    /// A bug or an unexpected failure.
    #[error("internal error")]
    Internal(#[source] Cause),
}

impl Error {
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

    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self::Internal(cause.into())
    }

    /// Names what was not found, for errors that came from a query.
    pub fn or_not_found(self, what: &'static str) -> Self {
        match self {
            Self::NotFound(_) => Self::NotFound(what),
            other => other,
        }
    }
}

/// An error and the chain of its sources, one line: what the log shows of a 5xx.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_shows_every_cause() {
        let io = std::io::Error::other("connection reset");
        let error = Error::Unavailable(Box::new(io));
        assert_eq!(
            Chain(&error).to_string(),
            "database unavailable: connection reset"
        );
    }
}
