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

/// List contacts: search, filter by tag and opt-out, page.
#[utoipa::path(tag = "contacts", params(ContactListParams, PageParams), responses((status = 200, body = Page<Contact>)))]
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

/// Create a contact.
#[utoipa::path(
    tag = "contacts",
    request_body = CreateContact,
    responses(
        (status = 201, body = Contact),
        (status = 409, description = "`phone_taken` or `external_id_taken`: another contact has it.", body = Problem, content_type = "application/problem+json"),
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

/// Read a contact.
#[utoipa::path(
    tag = "contacts",
    params(("id" = i64, Path, description = "Contact id")),
    responses((status = 200, body = Contact), (status = 404, description = "No such contact.", body = Problem, content_type = "application/problem+json"))
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

/// Edit a contact: any field; attributes are merged, tags replaced.
#[utoipa::path(
    tag = "contacts",
    params(("id" = i64, Path, description = "Contact id")),
    request_body = UpdateContact,
    responses(
        (status = 200, body = Contact),
        (status = 404, description = "No such contact.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`phone_taken` or `external_id_taken`: another contact has it.", body = Problem, content_type = "application/problem+json"),
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

/// Delete a contact. Its memberships go with it; segments stay.
#[utoipa::path(
    tag = "contacts",
    params(("id" = i64, Path, description = "Contact id")),
    responses((status = 204, description = "Deleted."), (status = 404, description = "No such contact.", body = Problem, content_type = "application/problem+json"))
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

/// Create or update the contact with this external id: the idempotent push for CRM
/// integrations. Fields left out keep their value on an existing contact; opt-out and
/// consent are only ever set, never cleared, by a push.
#[utoipa::path(
    tag = "contacts",
    params(("external_id" = String, Path, description = "The contact's id in the pushing system")),
    request_body = CreateContact,
    responses(
        (status = 200, description = "Updated.", body = Contact),
        (status = 201, description = "Created.", body = Contact),
        (status = 409, description = "`phone_taken`: another contact has this phone.", body = Problem, content_type = "application/problem+json"),
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

/// Create or update up to 1000 contacts, each matched by `external_id`, else by validated
/// phone. Each item succeeds or fails on its own; the answer lists every item in order.
#[utoipa::path(tag = "contacts", request_body = ContactBatch, responses((status = 200, body = BatchResult)))]
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

/// The segments a contact is a member of, static and dynamic.
#[utoipa::path(
    tag = "contacts",
    params(("id" = i64, Path, description = "Contact id")),
    responses((status = 200, body = SegmentList), (status = 404, description = "No such contact.", body = Problem, content_type = "application/problem+json"))
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
