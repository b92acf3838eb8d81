//! The HTTP layer: actix handlers (thin: read the request, call a use case, render the
//! answer), the bodies they read and write, extractors, errors as problem documents, and
//! the OpenAPI document generated from it all.

pub mod attributes;
pub mod audience;
pub mod auth;
pub mod campaigns;
pub mod contacts;
pub mod cors;
pub mod document_bounds;
pub mod dto;
pub mod error;
pub mod events;
pub mod extract;
pub mod idempotency;
pub mod imports;
pub mod input;
pub mod members;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod pagination;
pub mod rate_limit;
pub mod request_log;
pub mod schemas;
pub mod segments;
pub mod sends;
pub mod state;
pub mod streaming;
pub mod tenants;
pub mod upload;
pub mod versions;
pub mod webhooks;
