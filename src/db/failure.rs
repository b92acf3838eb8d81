//! Database failures, classified once: what a use case can do about each.
//!
//! Diesel reports the SQLSTATE classes it knows as [`DatabaseErrorKind`]s (unique and
//! foreign-key violations, serialization failures, a closed connection). The others
//! arrive as `Unknown` with only the server's message; those are recognised here and
//! nowhere else, by the primary message PostgreSQL sends for each SQLSTATE (the service
//! sets `lc_messages` to `C` on every pooled connection where the role may, so the
//! wording does not depend on the server's locale).

#[cfg(test)]
use diesel::result::DatabaseErrorInformation;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::core::error::{Cause, Error};

/// The SQLSTATE conditions diesel does not name, by the start of their primary message.
const CONTENTION: &[&str] = &[
    // 40P01 deadlock_detected (Citus: "distributed deadlock detected")
    "deadlock detected",
    "canceling the transaction since it was involved in a distributed deadlock",
    // 55P03 lock_not_available (lock_timeout)
    "canceling statement due to lock timeout",
    "could not obtain lock",
];
/// 57014 query_canceled by statement_timeout.
const TIMED_OUT: &[&str] = &["canceling statement due to statement timeout"];
/// 57P01 admin_shutdown, 57P03 cannot_connect_now, and libpq's lost-server wording.
const UNAVAILABLE: &[&str] = &[
    "terminating connection",
    "the database system is",
    "server closed the connection",
    "no connection to the server",
    "could not connect to server",
    "connection to server",
];

fn starts_with_any(message: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|prefix| message.contains(prefix))
}

impl From<DieselError> for Error {
    fn from(error: DieselError) -> Self {
        let message = match &error {
            DieselError::NotFound => return Self::NotFound("resource"),
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | DieselError::DatabaseError(DatabaseErrorKind::UnableToSendCommand, _) => {
                return Self::Unavailable(Box::new(error));
            }
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                return Self::Contention(Box::new(error));
            }
            DieselError::DatabaseError(_, info) => info.message().to_owned(),
            _ => return Self::Internal(Box::new(error)),
        };
        let cause: Cause = Box::new(error);
        if starts_with_any(&message, CONTENTION) {
            Self::Contention(cause)
        } else if starts_with_any(&message, TIMED_OUT) {
            Self::TimedOut(cause)
        } else if starts_with_any(&message, UNAVAILABLE) {
            Self::Unavailable(cause)
        } else {
            Self::Internal(cause)
        }
    }
}

impl From<diesel::r2d2::PoolError> for Error {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        Self::Unavailable(Box::new(error))
    }
}

/// The unique constraint `error` violates, if that is what it is: its name without the
/// shard suffix Citus adds (`contacts_phone_e164_key_102029`), or, where the server
/// sends no constraint name, the one of `known` its message names.
pub fn unique_violation<'a>(error: &DieselError, known: &[&'a str]) -> Option<&'a str> {
    let DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) = error else {
        return None;
    };
    let named = info.constraint_name().map(strip_shard_suffix);
    known.iter().copied().find(|constraint| {
        named.map_or_else(
            || info.message().contains(constraint),
            |name| name == *constraint,
        )
    })
}

fn strip_shard_suffix(name: &str) -> &str {
    match name.rsplit_once('_') {
        Some((base, suffix))
            if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) =>
        {
            base
        }
        _ => name,
    }
}

/// Maps a write's unique violations to the errors `on_conflict` gives for each named
/// constraint; any other failure is classified as usual.
pub fn on_unique(
    error: DieselError,
    constraints: &[&str],
    on_conflict: impl FnOnce(&str) -> Error,
) -> Error {
    match unique_violation(&error, constraints) {
        Some(constraint) => on_conflict(constraint),
        None => error.into(),
    }
}

/// Information about a failure a test can build without a server.
#[cfg(test)]
struct Info {
    message: &'static str,
    constraint: Option<&'static str>,
}

#[cfg(test)]
impl DatabaseErrorInformation for Info {
    fn message(&self) -> &str {
        self.message
    }
    fn details(&self) -> Option<&str> {
        None
    }
    fn hint(&self) -> Option<&str> {
        None
    }
    fn table_name(&self) -> Option<&str> {
        None
    }
    fn column_name(&self) -> Option<&str> {
        None
    }
    fn constraint_name(&self) -> Option<&str> {
        self.constraint
    }
    fn statement_position(&self) -> Option<i32> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(
        kind: DatabaseErrorKind,
        message: &'static str,
        constraint: Option<&'static str>,
    ) -> DieselError {
        DieselError::DatabaseError(
            kind,
            Box::new(Info {
                message,
                constraint,
            }),
        )
    }

    #[test]
    fn failures_are_classified_by_what_can_be_done_about_them() {
        let unknown = |message| Error::from(failure(DatabaseErrorKind::Unknown, message, None));
        assert!(matches!(unknown("deadlock detected"), Error::Contention(_)));
        assert!(matches!(
            unknown("canceling the transaction since it was involved in a distributed deadlock"),
            Error::Contention(_)
        ));
        assert!(matches!(
            unknown("canceling statement due to lock timeout"),
            Error::Contention(_)
        ));
        assert!(matches!(
            unknown("canceling statement due to statement timeout"),
            Error::TimedOut(_)
        ));
        assert!(matches!(
            unknown("terminating connection due to administrator command"),
            Error::Unavailable(_)
        ));
        assert!(matches!(unknown("division by zero"), Error::Internal(_)));
        assert!(matches!(
            Error::from(failure(
                DatabaseErrorKind::SerializationFailure,
                "could not serialize",
                None
            )),
            Error::Contention(_)
        ));
        assert!(matches!(
            Error::from(DieselError::NotFound),
            Error::NotFound(_)
        ));
    }

    #[test]
    fn unique_violations_are_recognised_with_or_without_a_shard_suffix_or_name() {
        let known = ["contacts_phone_e164_key", "contacts_external_id_key"];
        let plain = failure(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key",
            Some("contacts_phone_e164_key"),
        );
        assert_eq!(
            unique_violation(&plain, &known),
            Some("contacts_phone_e164_key")
        );
        let sharded = failure(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key",
            Some("contacts_external_id_key_102029"),
        );
        assert_eq!(
            unique_violation(&sharded, &known),
            Some("contacts_external_id_key")
        );
        let unnamed = failure(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key value violates unique constraint \"contacts_phone_e164_key_102029\"",
            None,
        );
        assert_eq!(
            unique_violation(&unnamed, &known),
            Some("contacts_phone_e164_key")
        );
        let other = failure(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key",
            Some("segments_name_key"),
        );
        assert_eq!(unique_violation(&other, &known), None);
    }
}
