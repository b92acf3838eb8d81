//! CRM batch upserts, set-based: one lookup, one UPDATE and one INSERT for the whole batch
//! instead of a round trip per contact. Items the fast path cannot take (two items naming
//! the same contact) go through the one-by-one path afterwards, in order.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Jsonb, Nullable, Text};
use serde_json::Value;
use validator::Validate;

use super::dto::{BatchItem, BatchItemStatus, CreateContact};
use super::model::normalize_tags;
use super::queries::ContactRow;
use crate::attributes::values::{check_values, Definition};
use crate::db::schema::contacts;
use crate::error::{violated_unique_constraint, ApiError};
use crate::phone;
use crate::tenants::TenantRow;

/// An item that passed validation, with its phone normalised.
struct Prepared {
    index: usize,
    input: CreateContact,
    phone_e164: Option<String>,
    phone_country: Option<String>,
    attributes: Value,
}

/// Upserts one contact; true when it was created.
pub type OneByOne<'a> =
    dyn Fn(&mut PgConnection, CreateContact) -> Result<(ContactRow, bool), ApiError> + 'a;

enum Plan {
    Update(i64),
    Insert,
    /// Names a contact an earlier item of the batch names too.
    OneByOne,
}

/// Upserts the batch; `one_by_one` is the per-item path for what the fast path leaves.
pub fn upsert_batch(
    conn: &mut PgConnection,
    tenant: &TenantRow,
    inputs: Vec<CreateContact>,
    definitions: &[Definition<'_>],
    one_by_one: &OneByOne<'_>,
) -> Result<Vec<BatchItem>, ApiError> {
    let mut items: Vec<Option<BatchItem>> = (0..inputs.len()).map(|_| None).collect();
    let mut prepared = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        match prepare(index, input, tenant, definitions) {
            Ok(item) => prepared.push(item),
            Err(error) => items[index] = Some(failed(index, &error)),
        }
    }
    let existing = find_existing(conn, tenant.id, &prepared)?;
    let mut claimed: Vec<i64> = Vec::new();
    let mut new_keys: Vec<String> = Vec::new();
    let (mut updates, mut inserts, mut later) = (Vec::new(), Vec::new(), Vec::new());
    for item in prepared {
        match plan(&item, &existing, &mut claimed, &mut new_keys) {
            Ok(Plan::Update(id)) => updates.push((id, item)),
            Ok(Plan::Insert) => inserts.push(item),
            Ok(Plan::OneByOne) => later.push(item),
            Err(error) => items[item.index] = Some(failed(item.index, &error)),
        }
    }
    // A concurrent writer may take a phone or external id between the lookup and the
    // writes: then the whole batch goes one by one, each item in its own savepoint.
    let fast = conn.transaction(|conn| {
        let updated = update_all(conn, tenant.id, &updates)?;
        let inserted = insert_all(conn, tenant.id, &inserts)?;
        Ok::<_, diesel::result::Error>((updated, inserted))
    });
    let slow: Vec<Prepared> = match fast {
        Ok((updated, inserted)) => {
            for (id, item) in &updated {
                items[item.index] = Some(done(item.index, *id, BatchItemStatus::Updated));
            }
            for (id, item) in &inserted {
                items[item.index] = Some(done(item.index, *id, BatchItemStatus::Created));
            }
            later
        }
        Err(error) if violated_unique_constraint(&error).is_some() => {
            let mut all: Vec<Prepared> = updates
                .into_iter()
                .map(|(_, item)| item)
                .chain(inserts)
                .chain(later)
                .collect();
            all.sort_by_key(|item| item.index);
            all
        }
        Err(error) => return Err(error.into()),
    };
    for item in slow {
        let index = item.index;
        items[index] = Some(
            match conn.transaction(|conn| one_by_one(conn, item.input)) {
                Ok((row, created)) => done(
                    index,
                    row.id,
                    if created {
                        BatchItemStatus::Created
                    } else {
                        BatchItemStatus::Updated
                    },
                ),
                Err(
                    error @ (ApiError::Internal(_)
                    | ApiError::Unavailable(_)
                    | ApiError::Deadlock(_)),
                ) => return Err(error),
                Err(error) => failed(index, &error),
            },
        );
    }
    Ok(items
        .into_iter()
        .map(|item| item.expect("every item is answered"))
        .collect())
}

fn done(index: usize, id: i64, status: BatchItemStatus) -> BatchItem {
    BatchItem {
        index,
        status,
        id: Some(id),
        error: None,
    }
}

fn failed(index: usize, error: &ApiError) -> BatchItem {
    BatchItem {
        index,
        status: BatchItemStatus::Error,
        id: None,
        error: Some(error.to_problem()),
    }
}

fn prepare(
    index: usize,
    mut input: CreateContact,
    tenant: &TenantRow,
    definitions: &[Definition<'_>],
) -> Result<Prepared, ApiError> {
    input
        .validate()
        .map_err(crate::extract::validation_problem)?;
    let errors = check_values(definitions, &input.attributes, "attributes");
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    input.tags = normalize_tags(std::mem::take(&mut input.tags));
    let validated = input
        .phone
        .as_deref()
        .and_then(|p| phone::normalize(p, tenant.default_region.as_deref()));
    // Null values remove attributes: jsonb_strip_nulls applies them in SQL.
    let attributes = Value::Object(input.attributes.clone());
    Ok(Prepared {
        index,
        phone_e164: validated.as_ref().map(|p| p.e164.clone()),
        phone_country: validated.map(|p| p.country),
        attributes,
        input,
    })
}

/// The tenant's contacts any item names, by external id and by validated phone.
struct Existing {
    by_external_id: HashMap<String, (i64, Option<String>)>,
    by_phone: HashMap<String, (i64, Option<String>)>,
}

fn find_existing(
    conn: &mut PgConnection,
    tenant_id: i64,
    items: &[Prepared],
) -> QueryResult<Existing> {
    let external_ids: Vec<String> = items
        .iter()
        .filter_map(|i| i.input.external_id.clone())
        .collect();
    let phones: Vec<String> = items.iter().filter_map(|i| i.phone_e164.clone()).collect();
    // Two index scans rather than one OR, which the planner serves worse. No row locks:
    // a concurrent change to the same contacts makes the writes below fail on a unique
    // key, and the batch then goes one by one.
    let by = |query: contacts::BoxedQuery<'static, diesel::pg::Pg>| {
        query.select((contacts::id, contacts::external_id, contacts::phone_e164))
    };
    let of_tenant = || {
        contacts::table
            .filter(contacts::tenant_id.eq(tenant_id))
            .into_boxed()
    };
    let rows: Vec<(i64, Option<String>, Option<String>)> =
        by(of_tenant().filter(contacts::external_id.eq_any(external_ids)))
            .union_all(by(of_tenant().filter(contacts::phone_e164.eq_any(phones))))
            .load(conn)?;
    let mut existing = Existing {
        by_external_id: HashMap::new(),
        by_phone: HashMap::new(),
    };
    for (id, external_id, phone) in rows {
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

/// The same matching as one-by-one upserts: by external id, else by validated phone when
/// the two do not carry different external ids.
fn plan(
    item: &Prepared,
    existing: &Existing,
    claimed: &mut Vec<i64>,
    new_keys: &mut Vec<String>,
) -> Result<Plan, ApiError> {
    let by_external = item
        .input
        .external_id
        .as_ref()
        .and_then(|key| existing.by_external_id.get(key));
    let by_phone = item
        .phone_e164
        .as_ref()
        .and_then(|phone| existing.by_phone.get(phone));
    let compatible = |(_, other): &&(i64, Option<String>)| {
        item.input.external_id.is_none() || other.is_none() || *other == item.input.external_id
    };
    let target = by_external
        .or(by_phone.filter(compatible))
        .map(|(id, _)| *id);
    if let (Some(phone), Some((owner, _))) = (&item.phone_e164, by_phone) {
        if Some(*owner) != target {
            return Err(ApiError::conflict(
                "phone_taken",
                format!("Another contact already has the phone {phone}."),
            ));
        }
    }
    let keys: Vec<String> = [
        item.input.external_id.as_ref().map(|k| format!("x:{k}")),
        item.phone_e164.as_ref().map(|p| format!("p:{p}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let repeated = keys.iter().any(|key| new_keys.contains(key))
        || target.is_some_and(|id| claimed.contains(&id));
    new_keys.extend(keys);
    if let Some(id) = target {
        claimed.push(id);
    }
    Ok(match (repeated, target) {
        (true, _) => Plan::OneByOne,
        (false, Some(id)) => Plan::Update(id),
        (false, None) => Plan::Insert,
    })
}

fn tags_json(item: &Prepared) -> Value {
    Value::from(item.input.tags.clone())
}

/// Changes only what each item carries; opt-out and consent are only ever set.
fn update_all<'a>(
    conn: &mut PgConnection,
    tenant_id: i64,
    updates: &'a [(i64, Prepared)],
) -> QueryResult<Vec<(i64, &'a Prepared)>> {
    if updates.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: &dyn Fn(&Prepared) -> Option<String>| {
        updates.iter().map(|(_, i)| f(i)).collect::<Vec<_>>()
    };
    diesel::sql_query(
        "UPDATE contacts c SET
             external_id = COALESCE(u.external_id, c.external_id),
             name = u.name,
             phone = CASE WHEN u.phone_given THEN u.phone ELSE c.phone END,
             phone_e164 = CASE WHEN u.phone_given THEN u.phone_e164 ELSE c.phone_e164 END,
             phone_country = CASE WHEN u.phone_given THEN u.phone_country ELSE c.phone_country END,
             email = COALESCE(u.email, c.email),
             attributes = jsonb_strip_nulls(c.attributes || u.attributes),
             tags = CASE WHEN jsonb_array_length(u.tags) > 0
                         THEN ARRAY(SELECT jsonb_array_elements_text(u.tags)) ELSE c.tags END,
             opted_out = c.opted_out OR u.opted_out,
             privacy_consent = c.privacy_consent OR u.privacy_consent,
             updated_at = now()
         FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bool[], $6::text[], $7::text[], $8::text[],
                     $9::text[], $10::jsonb[], $11::jsonb[], $12::bool[], $13::bool[])
              AS u(id, external_id, name, phone_given, phone, phone_e164, phone_country, email,
                   attributes, tags, opted_out, privacy_consent)
         WHERE c.tenant_id = $1 AND c.id = u.id",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<Array<BigInt>, _>(updates.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(column(&|i| i.input.external_id.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(&|i| Some(i.input.name.clone())))
    .bind::<Array<Bool>, _>(updates.iter().map(|(_, i)| i.input.phone.is_some()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(column(&|i| i.input.phone.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(&|i| i.phone_e164.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(&|i| i.phone_country.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(&|i| i.input.email.clone()))
    .bind::<Array<Jsonb>, _>(updates.iter().map(|(_, i)| i.attributes.clone()).collect::<Vec<_>>())
    .bind::<Array<Jsonb>, _>(updates.iter().map(|(_, i)| tags_json(i)).collect::<Vec<_>>())
    .bind::<Array<Bool>, _>(updates.iter().map(|(_, i)| i.input.opted_out).collect::<Vec<_>>())
    .bind::<Array<Bool>, _>(updates.iter().map(|(_, i)| i.input.privacy_consent).collect::<Vec<_>>())
    .execute(conn)?;
    Ok(updates.iter().map(|(id, item)| (*id, item)).collect())
}

#[derive(QueryableByName)]
struct NewId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Inserts with ids taken from the sequence first, so each item knows its id.
fn insert_all<'a>(
    conn: &mut PgConnection,
    tenant_id: i64,
    inserts: &'a [Prepared],
) -> QueryResult<Vec<(i64, &'a Prepared)>> {
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
    let column =
        |f: &dyn Fn(&Prepared) -> Option<String>| inserts.iter().map(f).collect::<Vec<_>>();
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
    .bind::<Array<Nullable<Text>>, _>(column(&|i| i.input.external_id.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(&|i| Some(i.input.name.clone())))
    .bind::<Array<Nullable<Text>>, _>(column(&|i| i.input.phone.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(&|i| i.phone_e164.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(&|i| i.phone_country.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(&|i| i.input.email.clone()))
    .bind::<Array<Jsonb>, _>(inserts.iter().map(|i| i.attributes.clone()).collect::<Vec<_>>())
    .bind::<Array<Jsonb>, _>(inserts.iter().map(tags_json).collect::<Vec<_>>())
    .bind::<Array<Bool>, _>(inserts.iter().map(|i| i.input.opted_out).collect::<Vec<_>>())
    .bind::<Array<Bool>, _>(inserts.iter().map(|i| i.input.privacy_consent).collect::<Vec<_>>())
    .execute(conn)?;
    Ok(ids.into_iter().zip(inserts).collect())
}
