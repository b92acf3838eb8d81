//! CRM batch upserts, set-based: one lookup, one UPDATE and one INSERT for the whole
//! batch instead of a round trip per contact.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Jsonb, Nullable, Text, Timestamptz};
use serde_json::Value;

use super::events;
use super::sql::hashed;
use crate::core::event::EventType;
use crate::core::push::CheckedPush;

/// The tenant's contacts any item names, by external id and by validated phone: each
/// with its id and external id.
pub struct Existing {
    pub by_external_id: HashMap<String, (i64, Option<String>)>,
    pub by_phone: HashMap<String, (i64, Option<String>)>,
}

pub fn find_existing(
    conn: &mut PgConnection,
    tenant_id: i64,
    items: &[&CheckedPush],
) -> QueryResult<Existing> {
    let external_ids: Vec<String> = items
        .iter()
        .filter_map(|i| i.push.external_id.clone())
        .collect();
    let phones: Vec<String> = items
        .iter()
        .filter_map(|i| i.phone.as_ref().map(|p| p.e164.clone()))
        .collect();
    // The ids from two index scans (one OR is served worse), then the rows locked in id
    // order: two batches naming the same contacts take them in one order, never waiting
    // for each other crosswise. A contact created meanwhile is not seen: the writes then
    // fail on a unique key, and the batch tries again. Two statements, not one joining
    // the ids back to `contacts`: on statistics that show the tenant as a handful of rows,
    // that join read the tenant once per contact (tests/api/statistics.rs). Each array
    // is a bound value, which PostgreSQL hashes when it filters a scan by it.
    #[derive(QueryableByName)]
    struct Named {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let ids: Vec<i64> = diesel::sql_query(
        "SELECT id FROM contacts WHERE tenant_id = $1 AND external_id = ANY($2) \
         UNION SELECT id FROM contacts WHERE tenant_id = $1 AND phone_e164 = ANY($3)",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<Array<Text>, _>(external_ids)
    .bind::<Array<Text>, _>(phones)
    .load::<Named>(conn)?
    .into_iter()
    .map(|named| named.id)
    .collect();
    let rows: Vec<Found> = if ids.is_empty() {
        Vec::new()
    } else {
        diesel::sql_query(
            "SELECT id, external_id, phone_e164 FROM contacts \
             WHERE tenant_id = $1 AND id = ANY($2) ORDER BY id FOR NO KEY UPDATE",
        )
        .bind::<BigInt, _>(tenant_id)
        .bind::<Array<BigInt>, _>(&ids)
        .load(conn)?
    };
    let mut existing = Existing {
        by_external_id: HashMap::new(),
        by_phone: HashMap::new(),
    };
    for Found {
        id,
        external_id,
        phone_e164: phone,
    } in rows
    {
        if let Some(key) = &external_id {
            existing
                .by_external_id
                .insert(key.clone(), (id, external_id.clone()));
        }
        if let Some(phone) = phone {
            existing.by_phone.insert(phone, (id, external_id));
        }
    }
    Ok(existing)
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    external_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    phone_e164: Option<String>,
}

fn tags_json(item: &CheckedPush) -> Value {
    Value::from(item.push.tags.clone())
}

/// The attributes as JSON; null values remove attributes (jsonb_strip_nulls in SQL).
fn attributes_json(item: &CheckedPush) -> Value {
    Value::Object(item.push.attributes.clone())
}

fn phone_e164(item: &CheckedPush) -> Option<String> {
    item.phone.as_ref().map(|p| p.e164.clone())
}

fn phone_country(item: &CheckedPush) -> Option<String> {
    item.phone.as_ref().map(|p| p.country.clone())
}

/// The values an updated contact ends with: what its item carries, opt-out and consent
/// only ever set. Used to set them and to skip updates that change nothing.
const MERGED: &str = "COALESCE(u.external_id, c.external_id), u.name, \
     CASE WHEN u.phone_given THEN u.phone ELSE c.phone END, \
     CASE WHEN u.phone_given THEN u.phone_e164 ELSE c.phone_e164 END, \
     CASE WHEN u.phone_given THEN u.phone_country ELSE c.phone_country END, \
     COALESCE(u.email, c.email), jsonb_strip_nulls(c.attributes || u.attributes), \
     CASE WHEN jsonb_array_length(u.tags) > 0 \
          THEN ARRAY(SELECT jsonb_array_elements_text(u.tags)) ELSE c.tags END, \
     c.opted_out OR u.opted_out, c.privacy_consent OR u.privacy_consent";

/// Updates each contact with what its item carries, recording `contact.updated` for those
/// that changed; returns their ids.
pub fn update_all(
    conn: &mut PgConnection,
    tenant_id: i64,
    updates: &[(i64, &CheckedPush)],
    now: DateTime<Utc>,
) -> QueryResult<Vec<i64>> {
    if updates.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: &dyn Fn(&CheckedPush) -> Option<String>| {
        updates.iter().map(|(_, i)| f(i)).collect::<Vec<_>>()
    };
    const COLUMNS: &str = "external_id, name, phone, phone_e164, phone_country, email, \
                           attributes, tags, opted_out, privacy_consent";
    // Bounded by the ids on both sides and joined by hashes, whatever the statistics.
    let update = diesel::sql_query(format!(
        "WITH changed AS (UPDATE contacts c SET ({COLUMNS}) = ({MERGED}), updated_at = $14 \
         FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bool[], $6::text[], $7::text[], $8::text[], \
                     $9::text[], $10::jsonb[], $11::jsonb[], $12::bool[], $13::bool[]) \
              AS u(id, external_id, name, phone_given, phone, phone_e164, phone_country, email, \
                   attributes, tags, opted_out, privacy_consent) \
         WHERE c.tenant_id = $1 AND c.id = ANY($2) AND c.id = u.id \
           AND (c.external_id, c.name, c.phone, c.phone_e164, c.phone_country, c.email, \
                c.attributes, c.tags, c.opted_out, c.privacy_consent) IS DISTINCT FROM ({MERGED}) \
         RETURNING c.id) \
         SELECT id FROM changed"
    ))
    .bind::<BigInt, _>(tenant_id)
    .bind::<Array<BigInt>, _>(updates.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(column(&|i| i.push.external_id.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(&|i| Some(i.push.name.clone())))
    .bind::<Array<Bool>, _>(updates.iter().map(|(_, i)| i.push.phone.is_some()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(column(&|i| i.push.phone.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(&phone_e164))
    .bind::<Array<Nullable<Text>>, _>(column(&phone_country))
    .bind::<Array<Nullable<Text>>, _>(column(&|i| i.push.email.clone()))
    .bind::<Array<Jsonb>, _>(updates.iter().map(|(_, i)| attributes_json(i)).collect::<Vec<_>>())
    .bind::<Array<Jsonb>, _>(updates.iter().map(|(_, i)| tags_json(i)).collect::<Vec<_>>())
    .bind::<Array<Bool>, _>(updates.iter().map(|(_, i)| i.push.opted_out).collect::<Vec<_>>())
    .bind::<Array<Bool>, _>(updates.iter().map(|(_, i)| i.push.privacy_consent).collect::<Vec<_>>())
    .bind::<Timestamptz, _>(now);
    let changed: Vec<NewId> = hashed(conn, |conn| update.load(conn))?;
    let changed: Vec<i64> = changed.into_iter().map(|row| row.id).collect();
    events::stage_contacts(conn, tenant_id, EventType::ContactUpdated, &changed)?;
    Ok(changed)
}

#[derive(QueryableByName)]
struct NewId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Inserts with ids taken from the sequence first, so each item knows its id; returns
/// the ids in the order of `inserts`.
pub fn insert_all(
    conn: &mut PgConnection,
    tenant_id: i64,
    inserts: &[&CheckedPush],
) -> QueryResult<Vec<i64>> {
    if inserts.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> =
        diesel::sql_query("SELECT nextval('contacts_id_seq') AS id FROM generate_series(1, $1)")
            .bind::<BigInt, _>(inserts.len() as i64)
            .load::<NewId>(conn)?
            .into_iter()
            .map(|row| row.id)
            .collect();
    let column = |f: &dyn Fn(&CheckedPush) -> Option<String>| {
        inserts.iter().map(|i| f(i)).collect::<Vec<_>>()
    };
    diesel::sql_query(
        "INSERT INTO contacts (tenant_id, id, external_id, name, phone, phone_e164, phone_country, email,
                               attributes, tags, opted_out, privacy_consent)
         SELECT $1, u.id, u.external_id, u.name, u.phone, u.phone_e164, u.phone_country, u.email,
                jsonb_strip_nulls(u.attributes), ARRAY(SELECT jsonb_array_elements_text(u.tags)), u.opted_out,
                u.privacy_consent
         FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                     $9::jsonb[], $10::jsonb[], $11::bool[], $12::bool[])
              AS u(id, external_id, name, phone, phone_e164, phone_country, email, attributes, tags,
                   opted_out, privacy_consent)",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<Array<BigInt>, _>(&ids)
    .bind::<Array<Nullable<Text>>, _>(column(&|i| i.push.external_id.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(&|i| Some(i.push.name.clone())))
    .bind::<Array<Nullable<Text>>, _>(column(&|i| i.push.phone.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(&phone_e164))
    .bind::<Array<Nullable<Text>>, _>(column(&phone_country))
    .bind::<Array<Nullable<Text>>, _>(column(&|i| i.push.email.clone()))
    .bind::<Array<Jsonb>, _>(inserts.iter().map(|i| attributes_json(i)).collect::<Vec<_>>())
    .bind::<Array<Jsonb>, _>(inserts.iter().map(|i| tags_json(i)).collect::<Vec<_>>())
    .bind::<Array<Bool>, _>(inserts.iter().map(|i| i.push.opted_out).collect::<Vec<_>>())
    .bind::<Array<Bool>, _>(inserts.iter().map(|i| i.push.privacy_consent).collect::<Vec<_>>())
    .execute(conn)?;
    events::stage_contacts(conn, tenant_id, EventType::ContactCreated, &ids)?;
    Ok(ids)
}
