//! The API through HTTP, in process, against PostgreSQL: one database per test.

mod architecture;
mod attributes;
mod campaigns;
mod contacts;
mod date_rules;
mod dynamic;
mod errors;
mod harness;
mod imports;
mod isolation;
mod limits;
mod members;
mod openapi;
mod operations;
mod outage;
mod process;
mod segments;
mod tenants;
