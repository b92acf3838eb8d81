//! A campaign's audience as SQL: the union of the included segments' members (static and
//! dynamic alike: both are stored), minus the excluded ones, each contact once, minus the
//! opted out, the unreachable on the channel and, where the tenant requires it, those
//! without consent. Everything is evaluated in PostgreSQL, one statement per question.
//!
//! Whole-audience questions (the summary, the stream) join contacts to the `UNION` of the
//! members, which PostgreSQL builds once by hashing or sorting; a page walks contacts in
//! id order and tests each row, so it stops as soon as the page is full.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::members::member_of_any;
use super::sql::{Condition as Sql, Statement};
use crate::core::audience::{Counts, Recipient};
use crate::core::types::Channel;

#[derive(Clone)]
pub struct Audience {
    pub tenant_id: i64,
    pub channel: Channel,
    /// The segments whose members the audience reaches.
    pub included: Vec<i64>,
    /// The segments whose members it leaves out.
    pub excluded: Vec<i64>,
    pub consent_required: bool,
}

type CountsRow = (BigInt, BigInt, BigInt, BigInt, BigInt);
type RecipientRow = (BigInt, Text, Nullable<Text>, Nullable<Text>);

#[derive(Queryable)]
struct RecipientFields {
    contact_id: i64,
    name: String,
    phone_e164: Option<String>,
    email: Option<String>,
}

impl From<RecipientFields> for Recipient {
    fn from(row: RecipientFields) -> Self {
        Self {
            contact_id: row.contact_id,
            name: row.name,
            phone_e164: row.phone_e164,
            email: row.email,
        }
    }
}

impl Audience {
    fn address(&self) -> Sql {
        match self.channel {
            Channel::Email => Sql::column_is_set("contacts.email"),
            Channel::Whatsapp | Channel::Sms => Sql::column_is_set("contacts.phone_e164"),
        }
    }

    fn consent(&self) -> Sql {
        if self.consent_required {
            Sql::column_is_true("contacts.privacy_consent")
        } else {
            Sql::always()
        }
    }

    /// The ids of the included segments' members, each once, as a subquery.
    fn member_ids(&self) -> Statement<()> {
        Statement::new(
            "SELECT DISTINCT m.contact_id AS id FROM segment_members m WHERE m.tenant_id = ",
        )
        .integer(self.tenant_id)
        .sql(" AND m.segment_id = ANY(")
        .integers(self.included.clone())
        .sql(")")
    }

    /// `select`, then `FROM` the members joined to their contacts.
    fn over_members<Row>(&self, select: Statement<Row>) -> Statement<Row> {
        select
            .sql(" FROM (")
            .statement(self.member_ids())
            .sql(") AS audience JOIN contacts ON contacts.tenant_id = ")
            .integer(self.tenant_id)
            .sql(" AND contacts.id = audience.id")
    }

    /// Why a member is left out, in the order a summary counts them: exclusion segment,
    /// opted out, no consent, no address.
    fn exclusions(&self) -> Vec<Sql> {
        vec![
            member_of_any(self.tenant_id, self.excluded.clone()),
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
        let address = match self.channel {
            Channel::Email => "contacts.email",
            Channel::Whatsapp | Channel::Sms => "contacts.phone_e164",
        };
        Statement::<()>::new(&format!(
            "SELECT contacts.id, contacts.name, coalesce({address}, '') AS address, "
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

    fn eligible(&self) -> Sql {
        Sql::all(self.exclusions().into_iter().map(Sql::negated).collect())
    }

    /// Each excluded contact is counted once, under the first reason in this order:
    /// exclusion segment, opted out, no consent, no address.
    pub fn counts(&self, conn: &mut PgConnection) -> QueryResult<Counts> {
        let reasons = self.over_members(
            Statement::<()>::new("SELECT ")
                .condition(self.exclusion_reason())
                .sql(" AS reason"),
        );
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

    fn recipient_columns() -> Statement<RecipientRow> {
        Statement::new("SELECT contacts.id, contacts.name, contacts.phone_e164, contacts.email")
    }

    /// Up to `limit` recipients after contact id `after`, in contact id order.
    pub fn recipients_after(
        &self,
        conn: &mut PgConnection,
        after: i64,
        limit: i64,
    ) -> QueryResult<Vec<Recipient>> {
        let included = member_of_any(self.tenant_id, self.included.clone());
        let rows: Vec<RecipientFields> = Self::recipient_columns()
            .sql(" FROM contacts WHERE contacts.tenant_id = ")
            .integer(self.tenant_id)
            .sql(" AND contacts.id > ")
            .integer(after)
            .sql(" AND ")
            .condition(included)
            .sql(" AND ")
            .condition(self.eligible())
            .sql(" ORDER BY contacts.id LIMIT ")
            .integer(limit)
            .load(conn)?;
        Ok(rows.into_iter().map(Recipient::from).collect())
    }
}
