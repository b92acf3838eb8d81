//! Contacts: the candidates and customers segments are made of.

use actix_web::{delete, get, patch, post, put, web, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::core::push::ContactPush;
use crate::db::contacts::ContactFilters;
use crate::http::auth::Caller;
use crate::http::dto::contacts::*;
use crate::http::dto::segments::{Segment, SegmentList};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::http::pagination::{Page, PageParams};
use crate::http::state::AppState;
use crate::http::versions::{self, IfMatch};
use crate::service::{contact_batch, contacts, segments};

#[derive(serde::Deserialize)]
struct ContactPath {
    id: i64,
}

#[derive(serde::Deserialize)]
struct ExternalIdPath {
    external_id: String,
}

const NOT_FOUND: &str = "`not_found`: no such contact.";
const TAKEN: &str = "`phone_taken` or `external_id_taken`: another contact of the tenant has this validated phone or external id.";
const INVALID: &str = "`validation_failed`, every offending field in `errors`: e.g. `undefined_attribute` (no definition for the key), `invalid_attribute_value` (wrong type for the definition), `email`, `invalid_tag`, `length`.";

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
    let region = tenant.default_region.clone();
    let filters = ContactFilters::new(
        params.search.as_deref(),
        params.tag,
        params.opted_out,
        region.as_deref(),
    );
    let (rows, total) =
        contacts::list(&state.env, tenant, filters, page.limit(), page.offset()).await?;
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
        (status = 409, description = TAKEN),
        (status = 422, description = INVALID),
    )
)]
#[post("/contacts")]
async fn create_contact(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Json(input): Json<CreateContact>,
) -> Result<HttpResponse, ApiError> {
    let contact = Contact::from(contacts::create(&state.env, tenant, input.into()).await?);
    Ok(versions::tagged(HttpResponse::Created(), &contact).json(contact))
}

/// Read a contact
///
/// Every field of the contact, its phone as given and as validated.
#[utoipa::path(
    tag = "contacts",
    params(("id" = i64, Path, description = "Contact id")),
    responses(
        (status = 200, description = "The contact.", body = Contact),
        (status = 404, description = NOT_FOUND),
    )
)]
#[get("/contacts/{id}")]
async fn get_contact(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<ContactPath>,
) -> Result<HttpResponse, ApiError> {
    let contact = Contact::from(contacts::get(&state.env, tenant, path.0.id).await?);
    Ok(versions::tagged(HttpResponse::Ok(), &contact).json(contact))
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
        (status = 404, description = NOT_FOUND),
        (status = 409, description = TAKEN),
        (status = 422, description = INVALID),
    )
)]
#[patch("/contacts/{id}")]
async fn update_contact(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<ContactPath>,
    if_match: IfMatch,
    Json(input): Json<UpdateContact>,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match.precondition(Contact::from);
    let row = contacts::update(&state.env, tenant, path.0.id, input.into(), precondition).await?;
    let contact = Contact::from(row);
    Ok(versions::tagged(HttpResponse::Ok(), &contact).json(contact))
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
        (status = 404, description = NOT_FOUND),
    )
)]
#[delete("/contacts/{id}")]
async fn delete_contact(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<ContactPath>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match.precondition(Contact::from);
    contacts::delete(&state.env, tenant, path.0.id, precondition).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The external id in the path, and the body's if it gives one, must agree.
fn push_by_external_id(
    path: ExternalIdPath,
    mut input: CreateContact,
) -> Result<ContactPush, ApiError> {
    let external_id = path.external_id.trim().to_owned();
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
    Ok(input.into())
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
        (status = 409, description = "`phone_taken`: another contact has this validated phone."),
        (status = 422, description = "`validation_failed`: as on create, or `external_id` with `length` (the path's is empty or too long) or `mismatch` (the body's differs from the path's)."),
    )
)]
#[put("/contacts/by-external-id/{external_id}")]
async fn upsert_contact_by_external_id(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<ExternalIdPath>,
    Json(input): Json<CreateContact>,
) -> Result<HttpResponse, ApiError> {
    let push = push_by_external_id(path.0, input)?;
    let (row, created) = contacts::push(&state.env, tenant, push).await?;
    let response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    let contact = Contact::from(row);
    Ok(versions::tagged(response, &contact).json(contact))
}

/// Create or update contacts in a batch
///
/// Up to 1000 contacts, each upserted as by `PUT /v1/contacts/by-external-id/{external_id}`:
/// matched by `external_id`, else by validated phone; an existing contact is updated with
/// the fields given (opt-out and consent only ever set, never cleared), otherwise one is
/// created. Items that break this document's schema (a name too long, an invalid e-mail
/// or tag) refuse the whole batch: 422 naming each field (`contacts[3].email`), nothing
/// written. Past that, each item succeeds or fails on its own, for what only the
/// tenant's data decides: the answer lists every item in request order with `status`
/// `created`, `updated` or `error` (and then `error`, a problem with its `code`:
/// `validation_failed` for an attribute without a definition or of the wrong type,
/// `phone_taken` or `external_id_taken` for a phone or external id another contact
/// holds). The answer is 200 even when items failed. Identical items sent at once by
/// several workers converge on one contact.
#[utoipa::path(
    tag = "contacts",
    request_body = ContactBatch,
    responses(
        (status = 200, description = "One result per item, in request order.", body = BatchResult),
        (status = 422, description = "`validation_failed`: `contacts` is empty, has more than 1000 items, or an item breaks the schema; `errors` names each field (`contacts[3].email`)."),
    )
)]
#[post("/contacts/batch")]
async fn batch_upsert_contacts(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Json(batch): Json<ContactBatch>,
) -> Result<web::Json<BatchResult>, ApiError> {
    let items = batch.contacts.into_iter().map(Into::into).collect();
    let outcomes = contact_batch::upsert_batch(&state.env, tenant, items).await?;
    Ok(web::Json(BatchResult::from_outcomes(outcomes)))
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
        (status = 404, description = NOT_FOUND),
    )
)]
#[get("/contacts/{id}/segments")]
async fn list_contact_segments(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<ContactPath>,
) -> Result<web::Json<SegmentList>, ApiError> {
    let views = segments::of_contact(&state.env, tenant, path.0.id).await?;
    Ok(web::Json(SegmentList {
        items: views.into_iter().map(Segment::from).collect(),
    }))
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
