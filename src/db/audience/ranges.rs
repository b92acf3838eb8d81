//! An audience's recipients a range of contact ids at a time, what pages and streams
//! read.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use super::{Audience, RecipientFields, RecipientRow};
use crate::core::audience::Recipient;
use crate::db::sql::{merged_transaction, Condition as Sql, Statement};

impl Audience {
    /// A recipient's columns (an eligible contact always has its address).
    fn recipient_columns(&self) -> Statement<RecipientRow> {
        Statement::new(&format!(
            "SELECT contacts.id, contacts.name, coalesce({}, '')",
            self.address_column()
        ))
    }

    /// The recipient columns of the contacts with ids in `(after, through]` that their
    /// own rows let the audience reach (not opted out, consent where required, an
    /// address on the channel), for a statement to narrow further.
    fn eligible_contacts_in(&self, (after, through): (i64, i64)) -> Statement<RecipientRow> {
        self.recipient_columns()
            .sql(" FROM contacts WHERE contacts.tenant_id = ")
            .integer(self.tenant_id)
            .sql(" AND contacts.id > ")
            .integer(after)
            .sql(" AND contacts.id <= ")
            .integer(through)
            .sql(" AND ")
            .condition(Sql::all(
                self.contact_exclusions()
                    .into_iter()
                    .map(Sql::negated)
                    .collect(),
            ))
    }

    /// ` FROM` the memberships of `segments` with contact ids in `(after, through]`.
    fn memberships_in(&self, segments: &[i64], (after, through): (i64, i64)) -> Statement<()> {
        self.memberships(segments)
            .sql(" AND m.contact_id > ")
            .integer(after)
            .sql(" AND m.contact_id <= ")
            .integer(through)
    }

    /// The recipients among the members with contact ids in `(after, through]`, in
    /// contact id order, read from the first `limit` members there (those of excluded
    /// segments too).
    ///
    /// Two statements, each bounded by the range and the limit whatever the statistics
    /// say: the members from the membership key alone, then their contacts by id. (One
    /// statement testing each contact's membership was planned from the statistics: with
    /// none yet for the segments, PostgreSQL hashed every membership of the tenant for
    /// each batch, 4 s a read at 1M contacts; and on a small tenant not yet analysed it
    /// compared every contact with every membership.)
    pub fn recipients_in(
        &self,
        conn: &mut PgConnection,
        (after, through): (i64, i64),
        limit: i64,
    ) -> QueryResult<RangeRecipients> {
        let members = self.members_in(conn, (after, through), limit)?;
        let Some(&(last, _)) = members.last() else {
            return Ok(RangeRecipients::default());
        };
        let examined = members.len();
        let next = (examined as i64 == limit).then_some(last);
        let kept: Vec<i64> = members
            .into_iter()
            .filter(|(_, excluded)| !excluded)
            .map(|(contact_id, _)| contact_id)
            .collect();
        if kept.is_empty() {
            return Ok(RangeRecipients {
                examined,
                next,
                ..RangeRecipients::default()
            });
        }
        let rows: Vec<RecipientFields> = self
            .eligible_contacts_in((after, last))
            .sql(" AND contacts.id = ANY(")
            .integers(kept)
            .sql(") ORDER BY contacts.id")
            .load(conn)?;
        Ok(RangeRecipients {
            recipients: rows.into_iter().map(Recipient::from).collect(),
            examined,
            next,
        })
    }

    /// The recipients with contact ids in `(after, through]`, in contact id order, at
    /// most `limit`, for an audience whose members fill most of the tenant's contact
    /// ids: one statement reading the range's contacts and memberships together, both
    /// in contact order and merged. Where [`Audience::recipients_in`] reads the members,
    /// then their contacts by id (two statements, and a bound array of ids), this read
    /// costs the contacts in the range, not the members: callers keep it for dense
    /// audiences, and `examined` counts the contact ids it passed.
    ///
    /// Every input of the statement is bounded by the range and read in contact order,
    /// so the plan is a merge: each input read once, no sort, and no further than the
    /// limit's row (a hash join read the whole range and sorted it: 2.3 against 2.1 ms a
    /// page of 1,000 at 1M contacts by pgbench, 1.8 ms with the limit at the page's
    /// size). Nested loops are ruled out, as statistics taken on a small tenant once led
    /// one to compare every contact with every membership.
    pub fn dense_recipients_in(
        &self,
        conn: &mut PgConnection,
        (after, through): (i64, i64),
        limit: i64,
    ) -> QueryResult<RangeRecipients> {
        let mut read = self
            .eligible_contacts_in((after, through))
            .sql(" AND contacts.id IN (SELECT m.contact_id")
            .statement(self.memberships_in(&self.included, (after, through)))
            .sql(")");
        if !self.excluded.is_empty() {
            read = read
                .sql(" AND NOT EXISTS (SELECT 1")
                .statement(self.memberships_in(&self.excluded, (after, through)))
                .sql(" AND m.contact_id = contacts.id)");
        }
        let read = read.sql(" ORDER BY contacts.id LIMIT ").integer(limit);
        let rows: Vec<RecipientFields> = merged_transaction(conn, |conn| read.load(conn))?;
        let next = rows
            .last()
            .filter(|_| rows.len() as i64 == limit)
            .map(|row| row.contact_id);
        Ok(RangeRecipients {
            examined: usize::try_from(next.unwrap_or(through).saturating_sub(after))
                .unwrap_or(usize::MAX),
            recipients: rows.into_iter().map(Recipient::from).collect(),
            next,
        })
    }

    /// The first `limit` members (of an included or an excluded segment) with contact ids
    /// in `(after, through]`, in order, each with whether an excluded segment holds it.
    /// Excluded ones are read and counted, not skipped: a range's cost follows every
    /// member it reads.
    fn members_in(
        &self,
        conn: &mut PgConnection,
        (after, through): (i64, i64),
        limit: i64,
    ) -> QueryResult<Vec<(i64, bool)>> {
        Statement::<(BigInt, Bool)>::new("SELECT m.contact_id, bool_or(m.segment_id = ANY(")
            .integers(self.excluded.clone())
            .sql("))")
            .statement(self.memberships_in(&self.included_and_excluded(), (after, through)))
            .sql(" GROUP BY m.contact_id ORDER BY m.contact_id LIMIT ")
            .integer(limit)
            .load(conn)
    }
}

/// What [`Audience::recipients_in`] read of a range: its recipients, how many members it
/// examined, and the key to read on after when the limit cut the range short (`None`
/// when it was read to its end).
#[derive(Debug, Default)]
pub struct RangeRecipients {
    pub recipients: Vec<Recipient>,
    pub examined: usize,
    pub next: Option<i64>,
}
