//! The import's SQL: rows are copied into a temporary staging table, then one upsert writes
//! every contact and the membership rules add them all at once. Import jobs are rows too,
//! so any replica can answer a poll.

use std::io::Write;

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::pg::{CopyFormat, Pg};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use serde_json::Value;

use super::schema::contacts;
use super::sql::{hashed, Condition};
use crate::core::event::EventType;
use crate::core::import::row::Row;
use crate::core::import::UpdateMode;

diesel::table! {
    /// Created per import transaction, dropped at commit.
    import_rows (line) {
        line -> BigInt,
        phone_e164 -> Nullable<Text>,
        phone_country -> Nullable<Text>,
        phone -> Nullable<Text>,
        name -> Text,
        email -> Nullable<Text>,
        /// `|`-separated.
        tags -> Text,
        attributes -> Jsonb,
    }
}

pub fn create_staging(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query(
        "CREATE TEMPORARY TABLE import_rows (line bigint NOT NULL, phone_e164 text, \
         phone_country text, phone text, name text NOT NULL, email text, \
         tags text NOT NULL, attributes jsonb NOT NULL, contact_id bigint, matches bigint) ON COMMIT DROP",
    )
    .execute(conn)?;
    Ok(())
}

/// Streams rows in COPY text format into the staging table; `next_chunk` yields encoded
/// rows until it returns `None`.
pub fn copy_into_staging(
    conn: &mut PgConnection,
    next_chunk: &dyn Fn() -> Option<Vec<u8>>,
) -> QueryResult<usize> {
    let staged = diesel::copy_from(import_rows::table)
        .from_raw_data(import_rows::table, |out: &mut dyn Write| {
            while let Some(chunk) = next_chunk() {
                out.write_all(&chunk)
                    .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
            }
            Ok::<_, diesel::result::Error>(())
        })
        .with_format(CopyFormat::Text)
        .execute(conn)?;
    // Fresh statistics, so the upsert and the membership checks join it sensibly.
    diesel::sql_query("ANALYZE import_rows").execute(conn)?;
    Ok(staged)
}

/// Writes one staged row as a line of COPY text format.
pub fn encode_staged(out: &mut Vec<u8>, row: &Row) {
    out.extend_from_slice(row.line.to_string().as_bytes());
    out.push(b'\t');
    let phone = row.phone.as_ref();
    let written = Some(row.phone_as_written.as_str()).filter(|p| !p.is_empty());
    for text in [
        phone.map(|p| p.e164.as_str()),
        phone.map(|p| p.country.as_str()),
        written,
        Some(row.name.as_str()),
        row.email.as_deref(),
    ] {
        match text {
            Some(text) => escape(out, text),
            None => out.extend_from_slice(b"\\N"),
        }
        out.push(b'\t');
    }
    escape(out, &row.tags.join("|"));
    out.push(b'\t');
    escape(out, &Value::Object(row.attributes.clone()).to_string());
    out.push(b'\n');
}

/// COPY text format: backslash, tab and line breaks are escaped.
fn escape(out: &mut Vec<u8>, text: &str) {
    for byte in text.bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            other => out.push(other),
        }
    }
}

/// Creates or updates the contact of every staged phone, in phone order so that
/// concurrent imports lock shared contacts in one order. Opt-out and consent are never
/// touched. Returns (created, updated); contacts the file would not change are neither
/// (and have no event).
/// `now` is bound rather than read with `now()`: Citus refuses functions that are not
/// immutable in an upsert's `DO UPDATE`.
pub fn upsert_contacts(
    conn: &mut PgConnection,
    tenant_id: i64,
    mode: UpdateMode,
    now: DateTime<Utc>,
) -> QueryResult<(i64, i64)> {
    let file_wins = mode == UpdateMode::Overwrite;
    // The values an existing contact ends with, used to set them and to skip no-op updates.
    let merged = format!(
        "CASE WHEN {file_wins} AND excluded.name <> '' OR contacts.name = '' THEN excluded.name ELSE contacts.name END, \
         CASE WHEN {file_wins} THEN excluded.phone ELSE contacts.phone END, \
         CASE WHEN {file_wins} THEN coalesce(excluded.email, contacts.email) ELSE coalesce(contacts.email, excluded.email) END, \
         contacts.tags || ARRAY(SELECT t FROM unnest(excluded.tags) AS t WHERE t <> ALL(contacts.tags)), \
         CASE WHEN {file_wins} THEN contacts.attributes || excluded.attributes ELSE excluded.attributes || contacts.attributes END"
    );
    let statement = format!(
        "WITH written AS ( \
           INSERT INTO contacts (tenant_id, name, phone, phone_e164, phone_country, email, tags, attributes) \
           SELECT $1, name, phone, phone_e164, phone_country, email, \
                  coalesce(string_to_array(nullif(tags, ''), '|'), '{{}}'), attributes \
           FROM import_rows WHERE phone_e164 IS NOT NULL ORDER BY phone_e164 \
           ON CONFLICT (tenant_id, phone_e164) DO UPDATE \
           SET (name, phone, email, tags, attributes) = ({merged}), updated_at = $2 \
           WHERE (contacts.name, contacts.phone, contacts.email, contacts.tags, contacts.attributes) \
                 IS DISTINCT FROM ({merged}) \
           RETURNING id, xmax = 0 AS created), \
         staged AS (INSERT INTO staged_events (tenant_id, type, contact_id) \
           SELECT $1, CASE WHEN created THEN '{created}' ELSE '{updated}' END, id FROM written) \
         SELECT count(*) FILTER (WHERE created) AS created, count(*) FILTER (WHERE NOT created) AS updated \
         FROM written",
        created = EventType::ContactCreated.as_str(),
        updated = EventType::ContactUpdated.as_str(),
    );
    #[derive(QueryableByName)]
    struct Written {
        #[diesel(sql_type = BigInt)]
        created: i64,
        #[diesel(sql_type = BigInt)]
        updated: i64,
    }
    let written: Written = diesel::sql_query(statement)
        .bind::<BigInt, _>(tenant_id)
        .bind::<Timestamptz, _>(now)
        .get_result(conn)?;
    Ok((written.created, written.updated))
}

/// Rows staged without a validated phone (an email segment's file) are matched by
/// e-mail, ignoring case: each gets its contact's id, a new contact when none has the
/// e-mail. Rows whose e-mail two contacts share are taken out of the staging table and
/// returned as errors.
///
/// Matched by hashes against the file's folded e-mails as one value, as
/// [`resolve_phones`] explains; new contacts take their ids as they are written, with no
/// lookup at all.
pub fn upsert_by_email(
    conn: &mut PgConnection,
    tenant_id: i64,
    mode: UpdateMode,
    now: DateTime<Utc>,
) -> QueryResult<ByEmail> {
    let emails: Vec<Option<String>> = import_rows::table
        .filter(import_rows::phone_e164.is_null())
        .select(sql::<Nullable<Text>>("lower(email)"))
        .load(conn)?;
    #[derive(QueryableByName)]
    struct Matched {
        #[diesel(sql_type = BigInt)]
        contact_id: i64,
        #[diesel(sql_type = BigInt)]
        matches: i64,
    }
    let matched = diesel::sql_query(
        "UPDATE import_rows r SET contact_id = f.id, matches = f.n \
         FROM (SELECT lower(c.email) AS email, min(c.id) AS id, count(*) AS n FROM contacts c \
               WHERE c.tenant_id = $1 AND lower(c.email) = ANY($2) GROUP BY 1) f \
         WHERE r.phone_e164 IS NULL AND lower(r.email) = f.email \
         RETURNING r.contact_id, r.matches",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<Array<Nullable<Text>>, _>(emails);
    // The contacts matched once, carried forward to the update as one bound value.
    let matched: Vec<i64> = hashed(conn, |conn| matched.load::<Matched>(conn))?
        .into_iter()
        .filter(|row| row.matches == 1)
        .map(|row| row.contact_id)
        .collect();
    let ambiguous: Vec<Ambiguous> = diesel::sql_query(
        "DELETE FROM import_rows WHERE phone_e164 IS NULL AND matches > 1 RETURNING line, email",
    )
    .load(conn)?;
    let file_wins = mode == UpdateMode::Overwrite;
    let update = diesel::sql_query(format!(
        "WITH updated AS (UPDATE contacts c SET \
           name = CASE WHEN {file_wins} AND r.name <> '' OR c.name = '' THEN r.name ELSE c.name END, \
           phone = coalesce(c.phone, r.phone), \
           tags = c.tags || ARRAY(SELECT t FROM unnest(coalesce(string_to_array(nullif(r.tags, ''), '|'), '{{}}')) AS t \
                                  WHERE t <> ALL(c.tags)), \
           attributes = CASE WHEN {file_wins} THEN c.attributes || r.attributes ELSE r.attributes || c.attributes END, \
           updated_at = $2 \
         FROM import_rows r WHERE c.tenant_id = $1 AND c.id = ANY($3) AND c.id = r.contact_id \
           AND r.phone_e164 IS NULL AND r.contact_id IS NOT NULL \
         RETURNING c.id) \
         INSERT INTO staged_events (tenant_id, type, contact_id) \
         SELECT $1, '{kind}', id FROM updated",
        kind = EventType::ContactUpdated.as_str(),
    ))
    .bind::<BigInt, _>(tenant_id)
    .bind::<Timestamptz, _>(now)
    .bind::<Array<BigInt>, _>(matched);
    let updated = hashed(conn, |conn| update.execute(conn))? as i64;
    let created = diesel::sql_query(format!(
        "WITH fresh AS (UPDATE import_rows SET contact_id = nextval('contacts_id_seq') \
           WHERE phone_e164 IS NULL AND contact_id IS NULL \
           RETURNING contact_id, name, phone, email, tags, attributes), \
         created AS (INSERT INTO contacts (tenant_id, id, name, phone, email, tags, attributes) \
           SELECT $1, contact_id, name, phone, email, \
                  coalesce(string_to_array(nullif(tags, ''), '|'), '{{}}'), attributes \
           FROM fresh RETURNING id) \
         INSERT INTO staged_events (tenant_id, type, contact_id) SELECT $1, '{kind}', id FROM created",
        kind = EventType::ContactCreated.as_str(),
    ))
    .bind::<BigInt, _>(tenant_id)
    .execute(conn)? as i64;
    Ok(ByEmail {
        created,
        updated,
        ambiguous,
    })
}

/// Gives every staged row with a validated phone the id of its contact (after
/// [`upsert_contacts`], each has one), so that what follows reads the staged contacts by
/// id.
///
/// No plan here can read one side once per row of the other, whatever the statistics
/// say. Taken when the tenant had a handful of contacts (or none), they make both the
/// tenant's key prefix and the phone index look like one row; a plan that probed
/// contacts by the prefix for each staged row read the whole tenant 50,000 times (a
/// 50,000-row import ran past the statement timeout). So the join is by hashes, and the
/// contacts' side is bounded by the file's phones bound as one array value: PostgreSQL
/// probes the phone index once per phone when the statistics are sound, and otherwise
/// reads the tenant's contacts once, checking each against a hash of the array (it
/// hashes an array it is given as a value, not one a subquery computes).
pub fn resolve_phones(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<()> {
    let phones: Vec<Option<String>> = import_rows::table
        .filter(import_rows::phone_e164.is_not_null())
        .select(import_rows::phone_e164)
        .load(conn)?;
    let resolve = diesel::sql_query(
        "UPDATE import_rows r SET contact_id = c.id FROM contacts c \
         WHERE c.tenant_id = $1 AND c.phone_e164 = ANY($2) \
           AND c.phone_e164 = r.phone_e164 AND r.phone_e164 IS NOT NULL",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<Array<Nullable<Text>>, _>(phones);
    hashed(conn, |conn| resolve.execute(conn))?;
    Ok(())
}

/// What [`upsert_by_email`] did.
pub struct ByEmail {
    pub created: i64,
    pub updated: i64,
    pub ambiguous: Vec<Ambiguous>,
}

/// A staged row whose e-mail two or more contacts have.
#[derive(QueryableByName)]
pub struct Ambiguous {
    #[diesel(sql_type = BigInt)]
    pub line: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub email: String,
}

/// The ids of the tenant's contacts the staged rows name, once [`resolve_phones`] and
/// [`upsert_by_email`] gave each row its contact: the set the membership rules add.
pub fn staged_contact_ids(conn: &mut PgConnection) -> QueryResult<Vec<i64>> {
    #[derive(QueryableByName)]
    struct Staged {
        #[diesel(sql_type = BigInt)]
        contact_id: i64,
    }
    let staged: Vec<Staged> = diesel::sql_query(
        "SELECT DISTINCT contact_id FROM import_rows WHERE contact_id IS NOT NULL",
    )
    .load(conn)?;
    Ok(staged.into_iter().map(|row| row.contact_id).collect())
}

/// The tenant's contacts of `ids` (the staged ones, see [`staged_contact_ids`]). The ids
/// are bound as one value, which PostgreSQL reads through the primary key or, on
/// statistics that make the tenant look tiny, checks against a hash while it reads the
/// tenant once; never a join to the staging table.
pub fn staged_contacts(tenant_id: i64, ids: &[i64]) -> contacts::BoxedQuery<'static, Pg> {
    contacts::table
        .filter(contacts::tenant_id.eq(tenant_id))
        .filter(Condition::one_of("contacts.id", ids.to_vec()))
        .into_boxed()
}

/// Staged contacts that are opted out: imported all the same, and still opted out.
pub fn opted_out(
    conn: &mut PgConnection,
    tenant_id: i64,
    staged: &[i64],
    limit: i64,
) -> QueryResult<(i64, Vec<i64>)> {
    let total = staged_contacts(tenant_id, staged)
        .filter(contacts::opted_out)
        .count()
        .get_result(conn)?;
    let ids = staged_contacts(tenant_id, staged)
        .filter(contacts::opted_out)
        .select(contacts::id)
        .order(contacts::id)
        .limit(limit)
        .load(conn)?;
    Ok((total, ids))
}

/// A contact's validated phone and e-mail: what a file's line names it by.
#[derive(Queryable)]
pub struct ContactKeys {
    pub id: i64,
    pub phone_e164: Option<String>,
    pub email: Option<String>,
}

/// The validated phones and e-mails of contacts, to find the lines that named them.
pub fn keys_of(
    conn: &mut PgConnection,
    tenant_id: i64,
    ids: &[i64],
) -> QueryResult<Vec<ContactKeys>> {
    contacts::table
        .filter(contacts::tenant_id.eq(tenant_id))
        .filter(Condition::one_of("contacts.id", ids.to_vec()))
        .select((contacts::id, contacts::phone_e164, contacts::email))
        .load(conn)
}
