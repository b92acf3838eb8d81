//! A campaign's audience as SQL: the union of the included segments (static members and
//! dynamic filters), minus the excluded ones, each contact once, minus the opted out, the
//! unreachable on the channel and, where the tenant requires it, those without consent.
//! Everything is evaluated in PostgreSQL, one statement per question.
//!
//! Whole-audience questions (the summary, the stream) join contacts to the `UNION` of the
//! members, which PostgreSQL builds once by hashing or sorting; a page walks contacts in
//! id order and tests each row, so it stops as soon as the page is full.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use crate::error::{ApiError, FieldError};
use crate::filter::sql::{SqlCondition, Statement};
use crate::segments::queries::SegmentRow;
use crate::segments::{dynamic, Channel};
use crate::tenants::TenantRow;

#[derive(Clone)]
pub struct Audience {
    tenant_id: i64,
    channel: Channel,
    static_ids: Vec<i64>,
    dynamic: Vec<SqlCondition>,
    excluded: SqlCondition,
    consent_required: bool,
}

/// The audience summary: `eligible` plus the excluded counts equals `total_unique`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub total_unique: i64,
    pub by_exclusion: i64,
    pub opted_out: i64,
    pub no_consent: i64,
    pub no_address: i64,
}

type CountsRow = (BigInt, BigInt, BigInt, BigInt, BigInt);
type RecipientRow = (BigInt, Text, Nullable<Text>, Nullable<Text>);

/// One recipient.
#[derive(Debug, Clone, Queryable)]
pub struct Recipient {
    pub contact_id: i64,
    pub name: String,
    pub phone_e164: Option<String>,
    pub email: Option<String>,
}

impl Recipient {
    /// The E.164 phone for WhatsApp and SMS, the email for email.
    pub fn address(&self, channel: Channel) -> String {
        let address = match channel {
            Channel::Email => &self.email,
            Channel::Whatsapp | Channel::Sms => &self.phone_e164,
        };
        address.clone().unwrap_or_default()
    }
}

/// The cursor a stream reads the audience through; one per transaction.
const CURSOR: &str = "audience_recipients";

impl Audience {
    /// Checks that every segment named exists in the tenant and has the channel (422
    /// naming the offending entry otherwise), and builds the audience's conditions.
    pub fn resolve(
        conn: &mut PgConnection,
        tenant: &TenantRow,
        channel: Channel,
        segment_ids: &[i64],
        exclude_segment_ids: &[i64],
    ) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let (static_ids, dynamic) = members(
            conn,
            tenant.id,
            channel,
            segment_ids,
            "segment_ids",
            &mut errors,
        )?;
        let (included_static, included_dynamic) = (static_ids, dynamic);
        let (static_ids, mut dynamic) = members(
            conn,
            tenant.id,
            channel,
            exclude_segment_ids,
            "exclude_segment_ids",
            &mut errors,
        )?;
        if !static_ids.is_empty() {
            dynamic.push(SqlCondition::static_member_of(tenant.id, static_ids));
        }
        let excluded = SqlCondition::any(dynamic);
        for (index, id) in exclude_segment_ids.iter().enumerate() {
            if segment_ids.contains(id) {
                errors.push(FieldError::new(
                    format!("exclude_segment_ids[{index}]"),
                    "included_and_excluded",
                    format!("segment {id} is both included and excluded"),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(Self {
            tenant_id: tenant.id,
            channel,
            static_ids: included_static,
            dynamic: included_dynamic,
            excluded,
            consent_required: tenant.require_privacy_consent,
        })
    }

    fn address(&self) -> SqlCondition {
        match self.channel {
            Channel::Email => SqlCondition::column_is_set("contacts.email"),
            Channel::Whatsapp | Channel::Sms => SqlCondition::column_is_set("contacts.phone_e164"),
        }
    }

    fn consent(&self) -> SqlCondition {
        if self.consent_required {
            SqlCondition::column_is_true("contacts.privacy_consent")
        } else {
            SqlCondition::always()
        }
    }

    /// The ids of the included segments' members, each once, as a subquery.
    fn member_ids(&self) -> Statement<()> {
        let mut union = Statement::new("");
        let mut first = true;
        if !self.static_ids.is_empty() {
            union = union
                // DISTINCT: a contact in two static segments is one member even when
                // no dynamic branch follows to make the UNION remove the repeat.
                .sql("SELECT DISTINCT m.contact_id AS id FROM segment_members m WHERE m.tenant_id = ")
                .integer(self.tenant_id)
                .sql(" AND m.segment_id = ANY(")
                .integers(self.static_ids.clone())
                .sql(")");
            first = false;
        }
        if !self.dynamic.is_empty() {
            if !first {
                union = union.sql(" UNION ");
            }
            union = union
                .sql("SELECT contacts.id FROM contacts WHERE contacts.tenant_id = ")
                .integer(self.tenant_id)
                .sql(" AND ")
                .condition(SqlCondition::any(self.dynamic.clone()));
            first = false;
        }
        if first {
            return Statement::new("SELECT NULL::bigint AS id WHERE FALSE");
        }
        union
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
    fn exclusions(&self) -> Vec<SqlCondition> {
        vec![
            self.excluded.clone(),
            SqlCondition::column_is_true("contacts.opted_out"),
            self.consent().negated(),
            self.address().negated(),
        ]
    }

    /// The reason a member is left out: 0 for none, else the first that applies.
    fn exclusion_reason(&self) -> SqlCondition {
        SqlCondition::when_first(self.exclusions())
    }

    fn eligible(&self) -> SqlCondition {
        SqlCondition::all(
            self.exclusions()
                .into_iter()
                .map(SqlCondition::negated)
                .collect(),
        )
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
        // The index probe for static membership first: OR stops at the first match, and
        // it is cheaper than reading a contact's attributes for the dynamic filters.
        let mut included = Vec::with_capacity(self.dynamic.len() + 1);
        if !self.static_ids.is_empty() {
            included.push(SqlCondition::static_member_of(
                self.tenant_id,
                self.static_ids.clone(),
            ));
        }
        included.extend(self.dynamic.iter().cloned());
        Self::recipient_columns()
            .sql(" FROM contacts WHERE contacts.tenant_id = ")
            .integer(self.tenant_id)
            .sql(" AND contacts.id > ")
            .integer(after)
            .sql(" AND ")
            .condition(SqlCondition::any(included))
            .sql(" AND ")
            .condition(self.eligible())
            .sql(" ORDER BY contacts.id LIMIT ")
            .integer(limit)
            .load(conn)
    }

    /// Opens a cursor over every recipient in contact id order, read with
    /// [`Audience::fetch`]: one statement for the whole audience, read a batch at a time.
    /// Must run inside a transaction.
    pub fn open_cursor(&self, conn: &mut PgConnection) -> QueryResult<()> {
        let select = self
            .over_members(Self::recipient_columns())
            .sql(" WHERE ")
            .condition(self.eligible())
            .sql(" ORDER BY contacts.id");
        Statement::<()>::new(&format!("DECLARE {CURSOR} NO SCROLL CURSOR FOR "))
            .statement(select)
            .execute(conn)?;
        Ok(())
    }

    /// The next `count` recipients from the cursor; fewer at the end.
    pub fn fetch(conn: &mut PgConnection, count: usize) -> QueryResult<Vec<Recipient>> {
        Statement::<RecipientRow>::new(&format!("FETCH {count} FROM {CURSOR}")).load(conn)
    }

    pub fn channel(&self) -> Channel {
        self.channel
    }
}

impl Counts {
    pub fn eligible(&self) -> i64 {
        self.total_unique - self.by_exclusion - self.opted_out - self.no_consent - self.no_address
    }
}

/// The segments' members: the static segments' ids, and the dynamic ones' compiled filters.
fn members(
    conn: &mut PgConnection,
    tenant_id: i64,
    channel: Channel,
    ids: &[i64],
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Result<(Vec<i64>, Vec<SqlCondition>), ApiError> {
    let mut static_ids = Vec::new();
    let mut parts = Vec::new();
    for (index, id) in ids.iter().enumerate() {
        let path = format!("{field}[{index}]");
        let Some(segment): Option<SegmentRow> =
            crate::segments::queries::get(conn, tenant_id, *id).optional()?
        else {
            errors.push(FieldError::new(
                path,
                "segment_not_found",
                format!("no segment {id} exists"),
            ));
            continue;
        };
        if Channel::from_db(&segment.channel) != channel {
            errors.push(FieldError::new(
                path,
                "channel_mismatch",
                format!(
                    "segment {id} (\"{}\") is for {}, not {}",
                    segment.name,
                    segment.channel,
                    channel.as_str()
                ),
            ));
            continue;
        }
        match &segment.filter {
            Some(filter) => {
                let node =
                    dynamic::parse_filter(conn, tenant_id, filter, "filter", Some(segment.id))?;
                parts.push(dynamic::compile(tenant_id, &node));
            }
            None => static_ids.push(segment.id),
        }
    }
    Ok((static_ids, parts))
}
