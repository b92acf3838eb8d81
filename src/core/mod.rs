//! The pure core: the shared vocabulary and the domain rules, as plain functions and
//! types. It knows no web framework, no database driver and no API document
//! (`tests/api/architecture.rs` keeps it so).

pub mod attributes;
pub mod audience;
pub mod clock;
pub mod contact;
pub mod eligibility;
pub mod error;
pub mod event;
pub mod filter;
pub mod import;
pub mod keys;
pub mod membership;
pub mod phone;
pub mod push;
pub mod segment;
pub mod send;
pub mod tenant;
pub mod types;
pub mod webhook;
