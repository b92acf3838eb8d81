//! Dynamic segments' members, kept true as everything they depend on changes: contacts
//! (created, edited, deleted), static members (for filters that name segments), the
//! filter itself, and the date (for relative dates and anniversaries).
//!
//! Every write that changes what filters read takes the tenant's evaluation lock shared
//! first ([`begin_write`]); filter changes and full evaluations take it exclusively.
//! So a full evaluation never misses a write, and writes never wait for one another.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use diesel::PgConnection;

use super::filters::FilterReader;
use super::Env;
use crate::core::error::Error;
use crate::core::filter::graph::Graph;
use crate::core::filter::{Field, Node};
use crate::db::dynamic::{self, Moves};
use crate::db::filter::Compiler;
use crate::db::locks::{self, Lock};
use crate::db::segment_graph::{self, FilterFacts};
use crate::db::segments::{self, SegmentRow};
use crate::db::sql::Condition as Sql;

/// Starts a write that changes what filters read: call first in its transaction.
pub fn begin_write(conn: &mut PgConnection, tenant_id: i64) -> Result<(), Error> {
    Ok(locks::shared(conn, Lock::Evaluation(tenant_id))?)
}

/// Starts a change to segments or filters: call first in its transaction.
pub fn begin_change(conn: &mut PgConnection, tenant_id: i64) -> Result<(), Error> {
    Ok(locks::exclusive(conn, Lock::Evaluation(tenant_id))?)
}

/// The tenant's dynamic segments (or those of `only`), compiled, in levels: each level
/// names only segments of earlier levels.
fn levels(
    conn: &mut PgConnection,
    tenant_id: i64,
    today: NaiveDate,
    only: Option<&BTreeSet<i64>>,
) -> Result<Vec<Vec<(i64, Sql)>>, Error> {
    let mut reader = FilterReader::new(tenant_id);
    let compiler = Compiler { tenant_id, today };
    let mut levels: Vec<(i16, Vec<(i64, Sql)>)> = Vec::new();
    for segment in segments::dynamic_by_depth(conn, tenant_id)? {
        if only.is_some_and(|only| !only.contains(&segment.id)) {
            continue;
        }
        let Some(node) = read(&mut reader, conn, &segment)? else {
            continue;
        };
        let condition = compiler.compile(&node);
        match levels.last_mut() {
            Some((depth, level)) if *depth == segment.depth => level.push((segment.id, condition)),
            _ => levels.push((segment.depth, vec![(segment.id, condition)])),
        }
    }
    Ok(levels.into_iter().map(|(_, level)| level).collect())
}

/// A stored filter, read; one that no longer reads (which the foreign keys on what
/// filters name prevent) is logged and left alone rather than failing the write.
fn read(
    reader: &mut FilterReader,
    conn: &mut PgConnection,
    segment: &SegmentRow,
) -> Result<Option<Node>, Error> {
    let Some(filter) = &segment.filter else {
        return Ok(None);
    };
    match reader.parse(conn, filter, "filter", Some(segment.id)) {
        Ok(node) => Ok(Some(node)),
        Err(Error::Validation(errors)) => {
            tracing::warn!(
                segment_id = segment.id,
                ?errors,
                "a stored filter no longer reads"
            );
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

fn evaluate_levels(
    conn: &mut PgConnection,
    tenant_id: i64,
    levels: &[Vec<(i64, Sql)>],
    contact_ids: &[i64],
) -> Result<Vec<Moves>, Error> {
    let mut moves = Vec::new();
    for level in levels {
        moves.extend(dynamic::evaluate_for(conn, tenant_id, level, contact_ids)?);
    }
    dynamic::apply_moves(conn, tenant_id, &moves)?;
    Ok(moves)
}

/// After contacts were created or changed: every dynamic segment, for those contacts.
pub fn contacts_written(
    conn: &mut PgConnection,
    tenant_id: i64,
    today: NaiveDate,
    contacts: &dyn Fn(&mut PgConnection) -> Result<Vec<i64>, Error>,
) -> Result<Vec<Moves>, Error> {
    if !dynamic::tenant_has_dynamic(conn, tenant_id)? {
        return Ok(Vec::new());
    }
    let contact_ids = contacts(conn)?;
    let levels = levels(conn, tenant_id, today, None)?;
    evaluate_levels(conn, tenant_id, &levels, &contact_ids)
}

/// After contacts' `last_messaged_at` moved (a send's outcomes): the dynamic segments
/// whose filters read it, and those naming them, for those contacts. The contacts are
/// locked first, as for a change to their own rows (`last_messaged_at` is kept apart
/// from them), so a concurrent write to them waits for this one.
pub fn contacts_messaged(
    conn: &mut PgConnection,
    tenant_id: i64,
    today: NaiveDate,
    contact_ids: &[i64],
) -> Result<Vec<Moves>, Error> {
    if contact_ids.is_empty() || !dynamic::tenant_has_dynamic(conn, tenant_id)? {
        return Ok(Vec::new());
    }
    let mut reader = FilterReader::new(tenant_id);
    let mut reading = Vec::new();
    for segment in segments::dynamic_by_depth(conn, tenant_id)? {
        if read(&mut reader, conn, &segment)?.is_some_and(|node| node.reads(&Field::LastMessagedAt))
        {
            reading.push(segment.id);
        }
    }
    if reading.is_empty() {
        return Ok(Vec::new());
    }
    dynamic::lock_contacts(conn, tenant_id, contact_ids)?;
    let graph = Graph::new(segment_graph::graph(conn, tenant_id)?);
    let affected: BTreeSet<i64> = reading
        .iter()
        .flat_map(|id| std::iter::once(*id).chain(graph.dependents(*id)))
        .collect();
    let levels = levels(conn, tenant_id, today, Some(&affected))?;
    evaluate_levels(conn, tenant_id, &levels, contact_ids)
}

/// After static members of `segment_ids` were added or removed: the dynamic segments
/// that name them (directly or through others), for those contacts. The contacts are
/// locked first, so a concurrent write to them waits for this one.
pub fn members_written(
    conn: &mut PgConnection,
    tenant_id: i64,
    today: NaiveDate,
    segment_ids: &[i64],
    contacts: &dyn Fn(&mut PgConnection) -> Result<Vec<i64>, Error>,
) -> Result<Vec<Moves>, Error> {
    if !dynamic::tenant_has_dynamic(conn, tenant_id)? {
        return Ok(Vec::new());
    }
    let graph = Graph::new(segment_graph::graph(conn, tenant_id)?);
    let dependents: BTreeSet<i64> = segment_ids
        .iter()
        .flat_map(|id| graph.dependents(*id))
        .collect();
    if dependents.is_empty() {
        return Ok(Vec::new());
    }
    let contact_ids = contacts(conn)?;
    dynamic::lock_contacts(conn, tenant_id, &contact_ids)?;
    let levels = levels(conn, tenant_id, today, Some(&dependents))?;
    evaluate_levels(conn, tenant_id, &levels, &contact_ids)
}

/// Checks a filter about to be saved for `segment_id` against the bounds over
/// references (for it and every segment naming it) and records what it names and its
/// derived facts. Call after [`begin_change`].
pub fn save_filter(
    conn: &mut PgConnection,
    tenant_id: i64,
    segment_id: i64,
    name: &str,
    node: &Node,
) -> Result<(), Error> {
    let references: Vec<i64> = node.references().into_iter().collect();
    let attributes: Vec<String> = node.attribute_keys().into_iter().collect();
    let facts = FilterFacts {
        conditions: node.conditions().len(),
        dated: node.is_date_relative(),
        references: &references,
        attributes: &attributes,
    };
    let mut graph = Graph::new(segment_graph::graph(conn, tenant_id)?);
    graph.set(crate::core::filter::graph::Vertex {
        id: segment_id,
        name: name.to_owned(),
        conditions: facts.conditions,
        references: references.iter().copied().collect(),
        date_relative: facts.dated,
    });
    let derived = graph
        .check(segment_id)
        .map_err(|error| Error::Validation(vec![error]))?;
    segment_graph::save_filter_facts(conn, tenant_id, segment_id, &facts)?;
    segment_graph::save_derived(conn, tenant_id, &derived)?;
    Ok(())
}

/// Evaluates a segment over all contacts (its filter is new, or the date moved on), then
/// the segments naming it for the contacts that moved. Call after [`begin_change`].
pub fn evaluate_segment(
    conn: &mut PgConnection,
    tenant_id: i64,
    today: NaiveDate,
    segment_id: i64,
    node: &Node,
) -> Result<i64, Error> {
    let condition = Compiler { tenant_id, today }.compile(node);
    let (_, moved) = dynamic::evaluate_all(conn, tenant_id, segment_id, condition)?;
    let recipients = dynamic::mark_evaluated(conn, tenant_id, segment_id, today)?;
    let graph = Graph::new(segment_graph::graph(conn, tenant_id)?);
    let dependents: BTreeSet<i64> = graph.dependents(segment_id).into_iter().collect();
    if !dependents.is_empty() && !moved.is_empty() {
        let levels = levels(conn, tenant_id, today, Some(&dependents))?;
        evaluate_levels(conn, tenant_id, &levels, &moved)?;
    }
    Ok(recipients)
}

/// Brings one due segment up to date (see [`crate::db::segments::due_for_evaluation`]):
/// its facts recorded again (segments from before this was stored have none) and its
/// members evaluated in full.
pub fn evaluate_due(
    conn: &mut PgConnection,
    tenant_id: i64,
    today: NaiveDate,
    segment_id: i64,
) -> Result<(), Error> {
    begin_change(conn, tenant_id)?;
    let segment = segments::get(conn, tenant_id, segment_id)?;
    let mut reader = FilterReader::new(tenant_id);
    let Some(node) = read(&mut reader, conn, &segment)? else {
        return Ok(());
    };
    save_filter(conn, tenant_id, segment_id, &segment.name, &node)?;
    evaluate_segment(conn, tenant_id, today, segment_id, &node)?;
    Ok(())
}

/// Due segments fetched at a time by [`evaluate_all_due`].
const DUE_BATCH: i64 = 100;

/// Brings every due dynamic segment up to date, each in its own transaction: those never
/// evaluated, and those depending on the date once a day. Runs on one replica at a time
/// (a session lock; the others skip). A segment that fails is logged and skipped, never
/// stopping the others. Returns how many were evaluated.
pub async fn evaluate_all_due(env: &Env) -> Result<usize, Error> {
    let today = env.clock.today();
    crate::db::pool::run(&env.pool, move |conn| {
        locks::on_one_replica(conn, Lock::EvaluationJob, |conn| {
            evaluate_due_batches(conn, today)
        })
        .map(Option::unwrap_or_default)
    })
    .await
}

fn evaluate_due_batches(conn: &mut PgConnection, today: NaiveDate) -> Result<usize, Error> {
    let mut failed: BTreeSet<(i64, i64)> = BTreeSet::new();
    let mut evaluated = 0;
    loop {
        let due: Vec<(i64, i64)> =
            segments::due_for_evaluation(conn, today, DUE_BATCH + failed.len() as i64)?
                .into_iter()
                .filter(|segment| !failed.contains(segment))
                .collect();
        if due.is_empty() {
            return Ok(evaluated);
        }
        for (tenant_id, segment_id) in due {
            match crate::db::pool::writing(conn, |conn| {
                evaluate_due(conn, tenant_id, today, segment_id)
            }) {
                Ok(()) => evaluated += 1,
                Err(error @ (Error::Unavailable(_) | Error::TimedOut(_)))
                    if failed.is_empty() && evaluated == 0 =>
                {
                    return Err(error)
                }
                Err(error) => {
                    tracing::warn!(tenant_id, segment_id, error = %crate::core::error::Chain(&error), "could not evaluate a dynamic segment; skipped");
                    failed.insert((tenant_id, segment_id));
                }
            }
        }
    }
}
