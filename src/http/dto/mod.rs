//! What the API reads and writes: request and response bodies, with their schemas for
//! the document and their conversions from and to the use cases' types.

pub mod attributes;
pub mod audience;
pub mod campaigns;
pub mod contacts;
pub mod events;
pub mod import_preview;
pub mod imports;
pub mod members;
pub mod segments;
pub mod sends;
pub mod tenants;
pub mod webhooks;
