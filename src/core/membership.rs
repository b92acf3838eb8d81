//! What a write to a segment's members reports, and its limits.

use serde::{Deserialize, Serialize};

/// Most contact ids one call may name.
pub const MAX_IDS_PER_CALL: usize = 10_000;
/// Most refused contacts and warned ids a report lists; the totals count them all.
pub const MAX_LISTED: i64 = 1000;

/// A contact that was not added, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub contact_id: i64,
    pub code: String,
    pub message: String,
}

/// Contacts that were accepted but deserve a look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub code: String,
    pub message: String,
    /// The first [`MAX_LISTED`] contacts concerned.
    pub contact_ids: Vec<i64>,
    /// How many contacts are concerned in all.
    pub count: i64,
}

/// What a write to a segment's members did: every contact named is counted once, in
/// `added`, `already_members` or `rejected_total`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub added: i64,
    pub already_members: i64,
    /// The first [`MAX_LISTED`] refusals.
    pub rejected: Vec<Rejection>,
    pub rejected_total: i64,
    pub warnings: Vec<Warning>,
    /// The segment's member count after the write.
    pub recipients: i64,
}

/// What removing members did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub removed: i64,
    pub recipients: i64,
}
