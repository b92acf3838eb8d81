//! A send's frozen recipients as read now: pages (the opted-out joined) and stream
//! batches (the opted-out of the range read once), each with its status as read.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, SmallInt, Text, Timestamptz};

use super::sends::SendRow;
use super::sql::Statement;
use crate::core::send::{OutcomeError, SendRecipient, Status};

/// Read by position: a stream decodes millions of these, and reading columns by name
/// costs a lookup per column per row.
#[derive(Queryable)]
struct RecipientRow {
    contact_id: i64,
    name: String,
    address: String,
    status: i16,
    opted_out_since: bool,
    status_at: Option<DateTime<Utc>>,
    error_code: Option<String>,
    error_message: Option<String>,
}

type RecipientSql = (
    BigInt,
    Text,
    Text,
    SmallInt,
    Bool,
    Nullable<Timestamptz>,
    Nullable<Text>,
    Nullable<Text>,
);

impl From<RecipientRow> for SendRecipient {
    fn from(row: RecipientRow) -> Self {
        let error = row.error_code.map(|code| OutcomeError {
            code,
            message: row.error_message.unwrap_or_default(),
        });
        let (status, error) = SendRecipient::status_as_read(
            Status::from_code(row.status),
            row.opted_out_since,
            error,
        );
        Self {
            contact_id: row.contact_id,
            name: row.name,
            address: row.address,
            status,
            status_at: row.status_at,
            error,
        }
    }
}

/// Up to `limit` recipients after contact id `after`, in contact id order; only those in
/// `status` (as read now) when given.
pub fn recipients_after(
    conn: &mut PgConnection,
    tenant_id: i64,
    send: &SendRow,
    status: Option<Status>,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<SendRecipient>> {
    // The join names only opted-out contacts, so each row costs one probe of their small
    // index (`contacts_opted_out_idx`), not a read of the contact.
    let only = match status.map(|s| (s, s.code())) {
        None => String::new(),
        Some((Status::Pending, _)) => " AND r.status = 0 AND c.id IS NULL".into(),
        Some((_, None)) => " AND r.status = 0 AND c.id IS NOT NULL".into(),
        Some((_, Some(code))) => format!(" AND r.status = {code}"),
    };
    let only = only.as_str();
    let rows = Statement::<RecipientSql>::new(
        "SELECT r.contact_id, r.name, r.address, r.status, \
         (r.status = 0 AND c.id IS NOT NULL), r.status_at, r.error_code, r.error_message \
         FROM send_recipients r LEFT JOIN contacts c ON c.tenant_id = ",
    )
    .integer(tenant_id)
    .sql(" AND c.id = r.contact_id AND c.opted_out WHERE ");
    let rows: Vec<RecipientRow> =
        after_in_send(rows, tenant_id, send, (after, None), only, limit).load(conn)?;
    Ok(rows.into_iter().map(SendRecipient::from).collect())
}

/// `statement`, then the send's rows (`r`, in its partition) with contact ids in
/// `(after, through]` (through the end when `None`) that also meet `only`, in contact id
/// order, at most `limit`.
fn after_in_send<Row>(
    statement: Statement<Row>,
    tenant_id: i64,
    send: &SendRow,
    (after, through): (i64, Option<i64>),
    only: &str,
    limit: i64,
) -> Statement<Row> {
    let statement = in_send(statement, tenant_id, send)
        .sql(" AND r.contact_id > ")
        .integer(after);
    let statement = match through {
        Some(through) => statement.sql(" AND r.contact_id <= ").integer(through),
        None => statement,
    };
    statement
        .sql(only)
        .sql(" ORDER BY r.contact_id LIMIT ")
        .integer(limit)
}

/// `statement`, then the condition that a row (`r`) is the send's, in its partition.
fn in_send<Row>(statement: Statement<Row>, tenant_id: i64, send: &SendRow) -> Statement<Row> {
    statement
        .sql("r.tenant_id = ")
        .integer(tenant_id)
        .sql(" AND r.send_id = ")
        .integer(send.id)
        .sql(" AND r.created_on = ")
        .day(send.created_on)
}

/// The send's first and last contact ids (what a stream splits into ranges); `None` for
/// a send without recipients.
pub fn contact_id_bounds(
    conn: &mut PgConnection,
    tenant_id: i64,
    send: &SendRow,
) -> QueryResult<Option<(i64, i64)>> {
    // Each bound is one probe of the send's key.
    let bounds = Statement::<(Nullable<BigInt>, Nullable<BigInt>)>::new(
        "SELECT min(r.contact_id), max(r.contact_id) FROM send_recipients r WHERE ",
    );
    let bounds: (Option<i64>, Option<i64>) = in_send(bounds, tenant_id, send).get_result(conn)?;
    Ok(bounds.0.zip(bounds.1))
}

/// As [`recipients_after`], for streams: up to `limit` rows with contact ids in
/// `(after, through]`, read in key order without a join, and the opted-out contacts of
/// the range they span read once from their own index (a join probed it once per row:
/// 25 ms per 20,000 rows against 9), the status as read decided here. Returns the
/// recipients in `status` and the key to read on after when `limit` cut the range short
/// (`None` when it was read to its end).
pub fn recipients_streamed(
    conn: &mut PgConnection,
    tenant_id: i64,
    send: &SendRow,
    status: Option<Status>,
    (after, through): (i64, i64),
    limit: i64,
) -> QueryResult<(Vec<SendRecipient>, Option<i64>)> {
    let range = (after, Some(through));
    if status == Some(Status::Pending) {
        return pending_streamed(conn, tenant_id, send, range, limit);
    }
    let stored = match status.map(|s| (s, s.code())) {
        None => String::new(),
        Some((_, None)) => " AND r.status = 0".into(),
        Some((_, Some(code))) => format!(" AND r.status = {code}"),
    };
    let rows = Statement::<RecipientSql>::new(
        "SELECT r.contact_id, r.name, r.address, r.status, FALSE, r.status_at, r.error_code, \
         r.error_message FROM send_recipients r WHERE ",
    );
    let rows: Vec<RecipientRow> =
        after_in_send(rows, tenant_id, send, range, &stored, limit).load(conn)?;
    let batch = StreamBatch::read_on(conn, tenant_id, range.0, limit, rows, |row| {
        (row.contact_id, row.status == 0)
    })?;
    let recipients = batch
        .rows
        .into_iter()
        .map(|mut row| {
            row.opted_out_since = row.status == 0 && batch.opted_out.contains(row.contact_id);
            SendRecipient::from(row)
        })
        .filter(|r| status.is_none_or(|wanted| r.status == wanted))
        .collect();
    Ok((recipients, batch.next))
}

/// As [`recipients_streamed`], for who is left (the resume after a crash, the largest
/// stream): only the three values a pending recipient has (it has no status time and no
/// error yet), so the database sends, and the service decodes, under half as many.
fn pending_streamed(
    conn: &mut PgConnection,
    tenant_id: i64,
    send: &SendRow,
    range: (i64, Option<i64>),
    limit: i64,
) -> QueryResult<(Vec<SendRecipient>, Option<i64>)> {
    let rows = Statement::<(BigInt, Text, Text)>::new(
        "SELECT r.contact_id, r.name, r.address FROM send_recipients r WHERE ",
    );
    let pending = Status::Pending
        .code()
        .map(|code| format!(" AND r.status = {code}"));
    let rows: Vec<(i64, String, String)> = after_in_send(
        rows,
        tenant_id,
        send,
        range,
        pending.as_deref().unwrap_or_default(),
        limit,
    )
    .load(conn)?;
    let batch = StreamBatch::read_on(conn, tenant_id, range.0, limit, rows, |row| (row.0, true))?;
    let recipients = batch
        .rows
        .into_iter()
        .filter(|(contact_id, _, _)| !batch.opted_out.contains(*contact_id))
        .map(|(contact_id, name, address)| SendRecipient {
            contact_id,
            name,
            address,
            status: Status::Pending,
            status_at: None,
            error: None,
        })
        .collect();
    Ok((recipients, batch.next))
}

/// A stream batch's rows as read in contact id order, the key to read on after when
/// `limit` cut the read short (`None` when the range was read to its end), and the
/// tenant's opted-out contacts in the range the rows span: read once from their own
/// index, and only when a row is pending (the status as read of other rows does not
/// depend on it).
struct StreamBatch<Row> {
    rows: Vec<Row>,
    next: Option<i64>,
    opted_out: OptedOut,
}

impl<Row> StreamBatch<Row> {
    /// `key` gives a row's contact id and whether it is pending as stored.
    fn read_on(
        conn: &mut PgConnection,
        tenant_id: i64,
        after: i64,
        limit: i64,
        rows: Vec<Row>,
        key: impl Fn(&Row) -> (i64, bool),
    ) -> QueryResult<Self> {
        let last = rows.last().map(|row| key(row).0);
        let next = last.filter(|_| rows.len() as i64 == limit);
        let opted_out = match last {
            Some(last) if rows.iter().any(|row| key(row).1) => {
                opted_out_between(conn, tenant_id, after, last)?
            }
            _ => Vec::new(),
        };
        Ok(Self {
            rows,
            next,
            opted_out: OptedOut(opted_out),
        })
    }
}

/// Opted-out contact ids, in id order.
struct OptedOut(Vec<i64>);

impl OptedOut {
    fn contains(&self, contact_id: i64) -> bool {
        self.0.binary_search(&contact_id).is_ok()
    }
}

/// The tenant's opted-out contacts with ids in `(after, through]`, in id order.
fn opted_out_between(
    conn: &mut PgConnection,
    tenant_id: i64,
    after: i64,
    through: i64,
) -> QueryResult<Vec<i64>> {
    Statement::<BigInt>::new("SELECT id FROM contacts WHERE tenant_id = ")
        .integer(tenant_id)
        .sql(" AND opted_out AND id > ")
        .integer(after)
        .sql(" AND id <= ")
        .integer(through)
        .sql(" ORDER BY id")
        .load(conn)
}
