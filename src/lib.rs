//! Segments: audiences for bulk messaging campaigns.
//!
//! Layers, each depending only on those below it: [`http`] (actix handlers, the API's
//! bodies and document) -> [`service`] (use cases, one transaction each) -> [`db`] (all
//! SQL) -> [`core`] (the shared vocabulary and the domain rules, pure). [`app`] wires
//! them together for `main` and the tests; [`webhook_client`] is the outbound HTTP the
//! webhook dispatcher (a use case) sends through.

#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod app;
pub mod config;
pub mod core;
pub mod db;
pub mod dev;
pub mod http;
pub mod service;
pub mod telemetry;
pub mod webhook_client;

pub use app::{build_app, openapi_document};
pub use http::state::AppState;
