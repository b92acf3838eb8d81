//! A campaign's audience as SQL: the union of the included segments' members (static and
//! dynamic alike: both are stored), minus the excluded ones, each contact once, minus the
//! opted out, the unreachable on the channel and, where the tenant requires it, those
//! without consent. Everything is evaluated in PostgreSQL, one statement per question.
//!
//! The summary joins contacts to the members, each once with whether an excluded segment
//! holds it, which PostgreSQL builds once by hashing, or for an audience holding most of
//! the tenant's memberships reads in contact order and merges; pages and streams read a
//! range of contact ids at a time, the members from the membership key, then those
//! contacts by id (a page of a dense audience reads the range's contacts and
//! memberships together).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::members::member_of_any;
use super::sql::{hashed, Condition as Sql, Statement};
use crate::core::audience::{Counts, Recipient};
use crate::core::types::Channel;

mod ranges;
pub use ranges::RangeRecipients;

#[derive(Clone)]
pub struct Audience {
    pub tenant_id: i64,
    pub channel: Channel,
    /// The segments whose members the audience reaches.
    pub included: Vec<i64>,
    /// The segments whose members it leaves out.
    pub excluded: Vec<i64>,
    pub consent_required: bool,
    /// About how many members a read of every range would examine: the included and
    /// excluded segments' counts added up (more than there are when they overlap).
    pub members_estimate: i64,
}

type CountsRow = (BigInt, BigInt, BigInt, BigInt, BigInt);
type RecipientRow = (BigInt, Text, Text);

#[derive(Queryable)]
struct RecipientFields {
    contact_id: i64,
    name: String,
    address: String,
}

impl From<RecipientFields> for Recipient {
    fn from(row: RecipientFields) -> Self {
        Self {
            contact_id: row.contact_id,
            name: row.name,
            address: row.address,
        }
    }
}

/// Members (counted once per segment) from which an audience is large: read with
/// hashes, given room in memory.
const LARGE_AUDIENCE: i64 = 20_000;

/// Memory a large audience's hashes may take (per hash, for the transaction).
const LARGE_AUDIENCE_WORK_MEM: &str = "64MB";

/// Lets the transaction's statements read memberships only as the index by contact
/// orders them, and join them to contacts by merging the two orders: no sort, no hash,
/// however many members. (Without it, PostgreSQL sorted or hashed the members of
/// segments it had no statistics for, once in each parallel worker, spilling: at 1M
/// contacts and 3M memberships, a summary took 1.9-2.2 s that way and 0.84-0.97 s in
/// order.) JIT is off too: the plans ruled out still weigh in the costs, which then
/// looked large enough to compile, 15-180 ms per statement.
fn read_in_contact_order(conn: &mut PgConnection) -> QueryResult<()> {
    conn.batch_execute(
        "SET LOCAL enable_sort = off; SET LOCAL enable_hashagg = off; \
         SET LOCAL enable_hashjoin = off; SET LOCAL jit = off",
    )
}

impl Audience {
    /// Whether the segments' own counts (which never lag, unlike the planner's
    /// statistics) say the audience is large.
    pub fn is_large(&self) -> bool {
        self.members_estimate >= LARGE_AUDIENCE
    }

    /// Lets the transaction's hashes of a large audience stay in memory.
    pub fn give_hashes_room(&self, conn: &mut PgConnection) -> QueryResult<()> {
        diesel::sql_query(format!("SET LOCAL work_mem = '{LARGE_AUDIENCE_WORK_MEM}'"))
            .execute(conn)
            .map(drop)
    }

    /// The column that holds a contact's address on the audience's channel.
    fn address_column(&self) -> &'static str {
        if self.channel.uses_phone() {
            "contacts.phone_e164"
        } else {
            "contacts.email"
        }
    }

    fn address(&self) -> Sql {
        Sql::column_is_set(self.address_column())
    }

    fn consent(&self) -> Sql {
        if self.consent_required {
            Sql::column_is_true("contacts.privacy_consent")
        } else {
            Sql::always()
        }
    }

    /// The included segments' members, each once with whether an excluded segment holds
    /// it, as a subquery `(id, excluded)`: read in one pass over the memberships, where
    /// asking each member's exclusion apart probed the membership key once per member
    /// (at 1M contacts, 6.0 s against 2.7 s with one excluded segment; and 3.1 s against
    /// 2.2 s with none, as the probe ran all the same).
    fn flagged_members(&self) -> Statement<()> {
        if self.excluded.is_empty() {
            // No exclusion to ask: each member once (DISTINCT reads faster than GROUP
            // BY here, 2.1-2.2 s against 2.4 s).
            return Statement::new("SELECT DISTINCT m.contact_id AS id, FALSE AS excluded")
                .statement(self.memberships(&self.included));
        }
        Statement::new("SELECT m.contact_id AS id, bool_or(m.segment_id = ANY(")
            .integers(self.excluded.clone())
            .sql(")) AS excluded")
            .statement(self.memberships(&self.included_and_excluded()))
            .sql(" GROUP BY m.contact_id HAVING bool_or(m.segment_id = ANY(")
            .integers(self.included.clone())
            .sql("))")
    }

    fn included_and_excluded(&self) -> Vec<i64> {
        [self.included.as_slice(), self.excluded.as_slice()].concat()
    }

    /// ` FROM` the memberships of `segments`.
    fn memberships(&self, segments: &[i64]) -> Statement<()> {
        Statement::new(" FROM segment_members m WHERE m.tenant_id = ")
            .integer(self.tenant_id)
            .sql(" AND m.segment_id = ANY(")
            .integers(segments.to_vec())
            .sql(")")
    }

    /// Why a member is left out, in the order a summary counts them: exclusion segment,
    /// opted out, no consent, no address.
    fn exclusions(&self) -> Vec<Sql> {
        let mut exclusions = vec![member_of_any(self.tenant_id, self.excluded.clone())];
        exclusions.extend(self.contact_exclusions());
        exclusions
    }

    /// The reasons a member is left out that its contact row alone tells.
    fn contact_exclusions(&self) -> [Sql; 3] {
        [
            Sql::column_is_true("contacts.opted_out"),
            self.consent().negated(),
            self.address().negated(),
        ]
    }

    /// The reason a member is left out: 0 for none, else the first that applies.
    fn exclusion_reason(&self) -> Sql {
        Sql::when_first(self.exclusions())
    }

    /// Every member with the name and address it has now, and the reason it is left out
    /// (0 for none): `id, name, address, reason`, for a freeze to keep. Contacts are read
    /// in their own order and kept when a membership exists (a semi-join, no `DISTINCT`),
    /// so a freeze writes its rows close to key order.
    pub fn members_with_reasons(&self) -> Statement<()> {
        Statement::<()>::new(&format!(
            "SELECT contacts.id, contacts.name, coalesce({}, '') AS address, ",
            self.address_column()
        ))
        .condition(self.exclusion_reason())
        .sql(" AS reason FROM contacts WHERE contacts.tenant_id = ")
        .integer(self.tenant_id)
        .sql(" AND contacts.id IN (SELECT m.contact_id FROM segment_members m WHERE m.tenant_id = ")
        .integer(self.tenant_id)
        .sql(" AND m.segment_id = ANY(")
        .integers(self.included.clone())
        .sql("))")
    }

    /// Each excluded contact is counted once, under the first reason in this order:
    /// exclusion segment, opted out, no consent, no address.
    ///
    /// The members are joined to their contacts by hashes, never by a nested loop: with
    /// statistics taken when the tenant had a handful of contacts, PostgreSQL joined
    /// 50,000 members by scanning every contact of the tenant for each (a 503 after the
    /// statement timeout). A small audience in a large tenant pays for one scan of the
    /// tenant's contacts instead of a probe per member.
    ///
    /// A large audience that holds most of the tenant's memberships is read in contact
    /// order instead (see [`read_in_contact_order`]).
    pub fn counts(&self, conn: &mut PgConnection) -> QueryResult<Counts> {
        conn.transaction(|conn| {
            // In 4 MB, the members' hash of a 1M-member audience spilled to disk, built
            // again by each parallel worker: 3.3-3.5 s against 2.6 s.
            if self.is_large() {
                self.give_hashes_room(conn)?;
                if self.holds_most_memberships(conn)? {
                    read_in_contact_order(conn)?;
                }
            }
            hashed(conn, |conn| self.count(conn))
        })
    }

    /// Whether the audience's segments hold at least half of the tenant's memberships,
    /// by the segments' own counts: then reading every membership of the tenant costs at
    /// most twice reading the audience's.
    fn holds_most_memberships(&self, conn: &mut PgConnection) -> QueryResult<bool> {
        let tenant_memberships: i64 = Statement::<BigInt>::new(
            "SELECT coalesce(sum(recipients), 0)::bigint FROM segments WHERE tenant_id = ",
        )
        .integer(self.tenant_id)
        .get_result(conn)?;
        Ok(self.members_estimate.saturating_mul(2) >= tenant_memberships)
    }

    fn count(&self, conn: &mut PgConnection) -> QueryResult<Counts> {
        let mut reasons = vec![Sql::column_is_true("audience.excluded")];
        reasons.extend(self.contact_exclusions());
        let reasons = Statement::<()>::new("SELECT ")
            .condition(Sql::when_first(reasons))
            .sql(" AS reason FROM (")
            .statement(self.flagged_members())
            .sql(") AS audience JOIN contacts ON contacts.tenant_id = ")
            .integer(self.tenant_id)
            .sql(" AND contacts.id = audience.id");
        let (total_unique, by_exclusion, opted_out, no_consent, no_address) =
            Statement::<CountsRow>::new(
                "SELECT count(*), count(*) FILTER (WHERE reason = 1), \
                 count(*) FILTER (WHERE reason = 2), count(*) FILTER (WHERE reason = 3), \
                 count(*) FILTER (WHERE reason = 4) FROM (",
            )
            .statement(reasons)
            .sql(") AS reasons")
            .get_result::<(i64, i64, i64, i64, i64)>(conn)?;
        Ok(Counts {
            total_unique,
            by_exclusion,
            opted_out,
            no_consent,
            no_address,
        })
    }
}
