//! Dynamic filters read against the tenant (its attributes and segments), compiled for
//! the data layer, and summarised.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use diesel::prelude::*;
use serde_json::Value;

use crate::core::attributes::Definition;
use crate::core::error::Error;
use crate::core::filter::operators;
use crate::core::filter::parse::{self, SegmentInfo};
use crate::core::filter::{summary, Node};
use crate::core::segment::NO_FILTERS;
use crate::db::filter::Compiler;
use crate::db::sql::Condition as Sql;
use crate::db::{attributes, segments};

/// Reads filters against one tenant's attributes and segments, each read from the
/// database once however many filters name it (a page of segments costs one lookup
/// per distinct name, not one per row).
pub struct FilterReader {
    tenant_id: i64,
    attributes: Option<Arc<[Definition]>>,
    segments: HashMap<i64, Option<SegmentInfo>>,
}

impl FilterReader {
    pub fn new(tenant_id: i64) -> Self {
        Self::with_definitions(tenant_id, None)
    }

    /// A reader given the tenant's attribute definitions when the caller has them (kept
    /// between requests, see [`super::definition_cache`]); `None` reads them when a
    /// filter first needs them.
    pub fn with_definitions(tenant_id: i64, definitions: Option<Arc<[Definition]>>) -> Self {
        Self {
            tenant_id,
            attributes: definitions,
            segments: HashMap::new(),
        }
    }

    /// Parses a filter found at JSON path `path`; 422 naming every problem's path.
    pub fn parse(
        &mut self,
        conn: &mut PgConnection,
        filter: &Value,
        path: &str,
        own_id: Option<i64>,
    ) -> Result<Node, Error> {
        let tenant_id = self.tenant_id;
        if self.attributes.is_none() {
            self.attributes = Some(attributes::definitions(conn, tenant_id)?.into());
        }
        let definitions = self.attributes.as_deref().unwrap_or_default();
        let known = &mut self.segments;
        let mut lookup_failed = None;
        let mut segment = |id: i64| {
            if let Some(info) = known.get(&id) {
                return info.clone();
            }
            match segments::get(conn, tenant_id, id).optional() {
                Ok(row) => {
                    let info = row.map(|row| SegmentInfo {
                        id: row.id,
                        name: row.name,
                    });
                    known.insert(id, info.clone());
                    info
                }
                Err(error) => {
                    lookup_failed = Some(error);
                    None
                }
            }
        };
        let mut context = parse::Context {
            attributes: definitions,
            segment: &mut segment,
            own_id,
        };
        let parsed = parse::parse(filter, path, &mut context);
        if let Some(error) = lookup_failed {
            return Err(error.into());
        }
        parsed.map_err(Error::Validation)
    }

    /// The filter as a sentence; a stored filter that no longer reads (it cannot, while
    /// the attributes and segments it names are protected) says so rather than failing
    /// the read.
    pub fn summarize(
        &mut self,
        conn: &mut PgConnection,
        filter: Option<&Value>,
        own_id: i64,
    ) -> Result<String, Error> {
        let Some(filter) = filter else {
            return Ok(NO_FILTERS.to_owned());
        };
        match self.parse(conn, filter, "filter", Some(own_id)) {
            Ok(node) => Ok(summary::summarize(&node)),
            Err(Error::Validation(_)) => Ok("Invalid filter".to_owned()),
            Err(other) => Err(other),
        }
    }
}

/// The tenant's filter language: the built-in fields, then its attributes.
pub async fn fields(
    env: &super::Env,
    tenant: crate::core::tenant::Tenant,
) -> Result<Vec<operators::FieldDescription>, Error> {
    let definitions = crate::db::pool::run(&env.pool.tenant(tenant.id), move |conn| {
        attributes::definitions(conn, tenant.id)
    })
    .await?;
    Ok(operators::describe_fields(&definitions))
}

/// Refuses a filter past the size bounds from its JSON alone: called before a connection
/// is taken, so the largest filters cost none.
pub fn check_size(filter: &Value) -> Result<(), Error> {
    crate::core::filter::size::check_size(filter, "filter")
        .map_err(|error| Error::Validation(vec![error]))
}

/// Parses one filter found at JSON path `path`; 422 naming every problem's path.
pub fn parse_filter(
    conn: &mut PgConnection,
    tenant_id: i64,
    filter: &Value,
    path: &str,
    own_id: Option<i64>,
) -> Result<Node, Error> {
    FilterReader::new(tenant_id).parse(conn, filter, path, own_id)
}

pub fn compile(tenant_id: i64, today: NaiveDate, node: &Node) -> Sql {
    Compiler { tenant_id, today }.compile(node)
}
