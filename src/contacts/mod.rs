//! Contacts: the candidates and customers segments are made of.

mod batch;
mod dto;
pub mod model;
pub mod queries;

use actix_web::{delete, get, patch, post, put, web, HttpResponse};
use diesel::PgConnection;
use utoipa_actix_web::service_config::ServiceConfig;

pub use dto::*;

use crate::attributes::values::Definition;
use crate::attributes::{self, AttributeType};
use crate::auth::Caller;
use crate::error::{violated_unique_constraint, ApiError, Problem};
use crate::extract::{Json, Path, Query};
use crate::pagination::{Page, PageParams};
use crate::segments::{queries as segment_queries, SegmentList};
use crate::tenants::TenantRow;
use crate::{db, phone, AppState};

#[derive(serde::Deserialize)]
struct ContactPath {
    id: i64,
}

#[derive(serde::Deserialize)]
struct ExternalIdPath {
    external_id: String,
}

fn definitions_of(rows: &[attributes::queries::DefinitionRow]) -> Vec<Definition<'_>> {
    rows.iter()
        .map(|row| Definition {
            key: &row.key,
            value_type: AttributeType::from_db(&row.value_type),
        })
        .collect()
}

/// Applies `changes` to `current` (or to a new contact) and stores the result.
fn save(
    conn: &mut PgConnection,
    tenant: &TenantRow,
    current: Option<queries::ContactRow>,
    changes: UpdateContact,
) -> Result<queries::ContactRow, ApiError> {
    let rows = attributes::queries::list(conn, tenant.id)?;
    let definitions = definitions_of(&rows);
    let id = current.as_ref().map(|row| row.id);
    let values = model::apply_changes(
        current.map(Into::into),
        changes,
        tenant.default_region.as_deref(),
        &definitions,
    )
    .map_err(ApiError::Validation)?;
    let saved = match id {
        Some(id) => queries::update(conn, tenant.id, id, &values),
        None => queries::insert(conn, tenant.id, &values),
    };
    saved.map_err(|error| match violated_unique_constraint(&error) {
        Some("contacts_phone_e164_key") => ApiError::conflict(
            "phone_taken",
            format!(
                "Another contact already has the phone {}.",
                values.phone_e164.as_deref().unwrap_or_default()
            ),
        ),
        Some("contacts_external_id_key") => ApiError::conflict(
            "external_id_taken",
            format!(
                "Another contact already has the external id {}.",
                values.external_id.as_deref().unwrap_or_default()
            ),
        ),
        _ => error.into(),
    })
}

/// Creates the contact `input` names by external id (else by validated phone), or
/// updates it with the fields given. True when created.
fn upsert(
    conn: &mut PgConnection,
    tenant: &TenantRow,
    input: CreateContact,
) -> Result<(queries::ContactRow, bool), ApiError> {
    let existing = match &input.external_id {
        Some(external_id) => queries::find_by_external_id(conn, tenant.id, external_id)?,
        None => None,
    };
    let existing = match existing {
        Some(row) => Some(row),
        None => match input
            .phone
            .as_deref()
            .and_then(|p| phone::normalize(p, tenant.default_region.as_deref()))
        {
            // A contact found by phone is not this one if both carry different external ids.
            Some(phone) => queries::find_by_phone(conn, tenant.id, &phone.e164)?.filter(|row| {
                input.external_id.is_none()
                    || row.external_id.is_none()
                    || row.external_id == input.external_id
            }),
            None => None,
        },
    };
    let created = existing.is_none();
    let changes = if created {
        UpdateContact::from(input)
    } else {
        // An upsert only changes what it carries: opt-out and consent are never reset
        // by a push that does not mention them.
        UpdateContact {
            opted_out: input.opted_out.then_some(true),
            privacy_consent: input.privacy_consent.then_some(true),
            ..UpdateContact::from(input)
        }
    };
    save(conn, tenant, existing, changes).map(|row| (row, created))
}

/// List contacts
///
/// The tenant's contacts in id order (oldest first), paged with `page` and `per_page`
/// (1 to 500, default 25). `search` matches part of the name, phone (as given or
/// validated), email or external id, ignoring case; text that reads as a phone number
/// also finds that number however it was written. `tag` keeps contacts carrying that
/// tag; `opted_out` keeps opted-out (true) or not opted-out (false) contacts. Filters
/// combine with AND.
#[utoipa::path(
    tag = "contacts",
    params(ContactListParams, PageParams),
    responses((status = 200, description = "A page of contacts.", body = Page<Contact>))
)]
#[get("/contacts")]
async fn list_contacts(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Query(params): Query<ContactListParams>,
    Query(page): Query<PageParams>,
) -> Result<web::Json<Page<Contact>>, ApiError> {
    let filters = queries::ContactFilters::new(
        params.search.as_deref(),
        params.tag,
        params.opted_out,
        tenant.default_region.as_deref(),
    );
    let (rows, total) = db::run(&state.pool, move |conn| {
        queries::list(conn, tenant.id, &filters, page.limit(), page.offset())
    })
    .await?;
    Ok(web::Json(Page::new(rows, &page, total)))
}

/// Create a contact
///
/// `name` is required. The phone is validated and normalised to E.164 with the tenant's
/// `default_region` for numbers without a country prefix; a phone that is not a valid
/// number is stored all the same, with `phone_valid: false` and `phone_e164: null`. The
/// validated phone and the external id are each unique per tenant. `attributes` may only
/// carry defined attributes, each value of its definition's type. Tags are trimmed and
/// kept once each.
#[utoipa::path(
    tag = "contacts",
    request_body = CreateContact,
    responses(
        (status = 201, description = "The contact, created.", body = Contact),
        (status = 409, description = "`phone_taken` or `external_id_taken`: another contact of the tenant has this validated phone or external id.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`, every offending field in `errors`: e.g. `undefined_attribute` (no definition for the key), `invalid_attribute_value` (wrong type for the definition), `email`, `invalid_tag`, `length`.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/contacts")]
async fn create_contact(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Json(input): Json<CreateContact>,
) -> Result<HttpResponse, ApiError> {
    let row = db::transaction(&state.pool, move |conn| {
        save(conn, &tenant, None, input.into())
    })
    .await?;
    Ok(HttpResponse::Created().json(Contact::from(row)))
}

/// Read a contact
///
/// Every field of the contact, its phone as given and as validated.
#[utoipa::path(
    tag = "contacts",
    params(("id" = i64, Path, description = "Contact id")),
    responses(
        (status = 200, description = "The contact.", body = Contact),
        (status = 404, description = "`not_found`: no such contact.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/contacts/{id}")]
async fn get_contact(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<ContactPath>,
) -> Result<web::Json<Contact>, ApiError> {
    let id = path.0.id;
    let row = db::run(&state.pool, move |conn| queries::get(conn, tenant.id, id))
        .await
        .map_err(|e| e.or_not_found("contact"))?;
    Ok(web::Json(row.into()))
}

/// Edit a contact
///
/// Any field; fields left out keep their value, and `null` clears `external_id`,
/// `phone` and `email`. `attributes` are merged into the contact's: a key given sets
/// that attribute, a key given `null` removes it, keys left out stay. `tags` replace
/// the list. A new phone is validated as on create. Dynamic segments follow the change
/// at once; static memberships stay.
#[utoipa::path(
    tag = "contacts",
    params(("id" = i64, Path, description = "Contact id")),
    request_body = UpdateContact,
    responses(
        (status = 200, description = "The contact, changed.", body = Contact),
        (status = 404, description = "`not_found`: no such contact.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`phone_taken` or `external_id_taken`: another contact of the tenant has this validated phone or external id.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`, every offending field in `errors`: e.g. `undefined_attribute` (no definition for the key), `invalid_attribute_value` (wrong type for the definition), `email`, `invalid_tag`, `length`.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/contacts/{id}")]
async fn update_contact(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<ContactPath>,
    Json(input): Json<UpdateContact>,
) -> Result<web::Json<Contact>, ApiError> {
    let id = path.0.id;
    let row = db::transaction(&state.pool, move |conn| {
        let current = queries::get_for_update(conn, tenant.id, id)
            .map_err(|e| ApiError::from(e).or_not_found("contact"))?;
        save(conn, &tenant, Some(current), input)
    })
    .await?;
    Ok(web::Json(row.into()))
}

/// Delete a contact
///
/// The contact and its memberships go. The static segments it was in stay, their
/// `recipients` one fewer; dynamic segments simply no longer match it.
#[utoipa::path(
    tag = "contacts",
    params(("id" = i64, Path, description = "Contact id")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "`not_found`: no such contact.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/contacts/{id}")]
async fn delete_contact(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<ContactPath>,
) -> Result<HttpResponse, ApiError> {
    let id = path.0.id;
    let deleted = db::retrying_transaction(&state.pool, move |conn| {
        Ok(queries::delete(conn, tenant.id, id)?)
    })
    .await?;
    if !deleted {
        return Err(ApiError::NotFound("contact"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Create or update a contact by external id
///
/// The idempotent push for CRM integrations: sending the same body twice leaves the
/// same contact. The contact is found by the external id in the path, else by validated
/// phone (a contact that carries a different external id is never taken over). Found:
/// it is updated with the fields given (200); fields left out keep their value, and
/// opt-out and consent are only ever set, never cleared, by a push. Not found: it is
/// created (201). The body's `external_id` may be left out; if given it must equal the
/// path's. The path's external id is trimmed, 1 to 200 characters.
#[utoipa::path(
    tag = "contacts",
    params(("external_id" = String, Path, description = "The contact's id in the pushing system, 1 to 200 characters")),
    request_body = CreateContact,
    responses(
        (status = 200, description = "An existing contact, updated.", body = Contact),
        (status = 201, description = "A new contact, created.", body = Contact),
        (status = 409, description = "`phone_taken`: another contact has this validated phone.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: as on create, or `external_id` with `length` (the path's is empty or too long) or `mismatch` (the body's differs from the path's).", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/contacts/by-external-id/{external_id}")]
async fn upsert_contact_by_external_id(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<ExternalIdPath>,
    Json(mut input): Json<CreateContact>,
) -> Result<HttpResponse, ApiError> {
    let external_id = path.0.external_id.trim().to_owned();
    if external_id.is_empty() || external_id.chars().count() > 200 {
        return Err(ApiError::invalid_field(
            "external_id",
            "length",
            "must be 1 to 200 characters long",
        ));
    }
    if input
        .external_id
        .as_ref()
        .is_some_and(|given| *given != external_id)
    {
        return Err(ApiError::invalid_field(
            "external_id",
            "mismatch",
            "differs from the external id in the path",
        ));
    }
    input.external_id = Some(external_id);
    let (row, created) =
        db::transaction(&state.pool, move |conn| upsert(conn, &tenant, input)).await?;
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(Contact::from(row)))
}

/// Create or update contacts in a batch
///
/// Up to 1000 contacts, each upserted as by `PUT /v1/contacts/by-external-id/{external_id}`:
/// matched by `external_id`, else by validated phone; an existing contact is updated with
/// the fields given (opt-out and consent only ever set, never cleared), otherwise one is
/// created. Each item succeeds or fails on its own: the answer lists every item in request
/// order with `status` `created`, `updated` or `error` (and then `error`, a problem with
/// its `code`, e.g. `validation_failed` or `phone_taken`). The answer is 200 even when
/// items failed.
#[utoipa::path(
    tag = "contacts",
    request_body = ContactBatch,
    responses(
        (status = 200, description = "One result per item, in request order.", body = BatchResult),
        (status = 422, description = "`validation_failed`: `contacts` is empty or has more than 1000 items.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/contacts/batch")]
async fn batch_upsert_contacts(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Json(batch): Json<ContactBatch>,
) -> Result<web::Json<BatchResult>, ApiError> {
    let items = db::transaction(&state.pool, move |conn| {
        let rows = attributes::queries::list(conn, tenant.id)?;
        let definitions = definitions_of(&rows);
        batch::upsert_batch(
            conn,
            &tenant,
            batch.contacts,
            &definitions,
            &|conn, input| upsert(conn, &tenant, input),
        )
    })
    .await?;
    Ok(web::Json(BatchResult { items }))
}

/// List the segments a contact is in
///
/// Every segment the contact is a member of: the static ones it was added to and the
/// dynamic ones whose filter matches it now. Not paged.
#[utoipa::path(
    tag = "contacts",
    params(("id" = i64, Path, description = "Contact id")),
    responses(
        (status = 200, description = "The contact's segments.", body = SegmentList),
        (status = 404, description = "`not_found`: no such contact.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/contacts/{id}/segments")]
async fn list_contact_segments(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<ContactPath>,
) -> Result<web::Json<SegmentList>, ApiError> {
    let id = path.0.id;
    let items = db::run(&state.pool, move |conn| {
        queries::get(conn, tenant.id, id).map_err(|e| ApiError::from(e).or_not_found("contact"))?;
        let mut rows = segment_queries::of_contact(conn, tenant.id, id)?;
        rows.extend(crate::segments::dynamic::containing(conn, tenant.id, id)?);
        rows.into_iter()
            .map(|row| crate::segments::present(conn, tenant.id, row))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    Ok(web::Json(SegmentList { items }))
}

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_contacts)
        .service(create_contact)
        .service(batch_upsert_contacts)
        .service(upsert_contact_by_external_id)
        .service(get_contact)
        .service(update_contact)
        .service(delete_contact)
        .service(list_contact_segments);
}
