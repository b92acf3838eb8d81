//! The data layer: every SQL statement, as functions over `&mut PgConnection` returning
//! `QueryResult`, plus the pool, the schema, migrations and the embedded server.

pub mod attributes;
pub mod audience;
pub mod campaigns;
pub mod citus;
pub mod contact_batch;
pub mod contact_rows;
pub mod contacts;
pub mod dynamic;
pub mod embedded;
pub mod endpoints;
pub mod events;
pub mod failure;
pub mod filter;
pub mod idempotency;
pub mod import_jobs;
pub mod imports;
pub mod leadership;
pub mod locks;
pub mod member_reads;
pub mod members;
pub mod migrate;
pub mod notify;
pub mod paging;
pub mod pool;
pub mod schema;
pub mod segment_graph;
pub mod segments;
pub mod send_outcomes;
pub mod send_partitions;
pub mod send_recipients;
pub mod sends;
pub mod sql;
pub mod tenants;
pub mod webhook_delivery;
pub mod webhooks;
