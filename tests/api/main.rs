//! The API through HTTP, in process, against PostgreSQL: one database per test.

mod architecture;
mod attributes;
mod campaigns;
mod contacts;
mod date_rules;
mod dynamic;
mod eligibility;
mod errors;
mod filter_bounds;
mod filter_fuzz;
mod filter_operators;
mod harness;
mod imports;
mod isolation;
mod limits;
mod member_lists;
mod members;
mod openapi;
mod operations;
mod outage;
mod process;
mod races;
mod safety;
mod segments;
mod tenants;
mod write_races;
