//! The OpenAPI document's frame: info, tags, security schemes and the error responses
//! every operation shares. Paths and schemas come from the handlers themselves.

use utoipa::openapi::path::{Operation, Parameter};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{Object, Schema, SchemaType, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::http::error::Problem;
use crate::http::{document_bounds, idempotency, versions};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Segments",
        description = "Audiences for bulk messaging campaigns (WhatsApp, SMS, email): contacts, \
static and dynamic segments, and campaign audience resolution.\n\n\
Every `/v1` route but `/v1/admin/*` takes a tenant's API key as `Authorization: Bearer <key>` \
and sees only that tenant's data: another tenant's ids answer 404. `/v1/admin/*` takes the \
admin token configured at start-up.\n\n\
Errors are `application/problem+json` (RFC 9457) with a stable `code`; validation errors list \
every offending field in `errors`. Lists page with `?page=&per_page=` (1 to 500, default 25).",
    ),
    tags(
        (name = "admin", description = "Tenants and their API keys. Admin token only."),
        (name = "tenant", description = "The caller's own tenant and its usage."),
        (name = "contacts", description = "Candidates and customers, with validated phones, typed attributes and tags."),
        (name = "attributes", description = "Typed custom fields that contacts carry and filters name."),
        (name = "segments", description = "Reusable audiences of contacts for one channel."),
        (name = "campaigns", description = "Campaigns and their audiences: who a send reaches, and why the others are left out."),
        (name = "sends", description = "Campaign sends: the audience frozen at one moment, and what became of each recipient."),
        (name = "events", description = "Every change an integration may follow: a feed to pull, webhooks that push."),
        (name = "operations", description = "Health, readiness and metrics for operators."),
    ),
    servers((url = "/", description = "The service that serves this document")),
    components(schemas(Problem)),
)]
pub struct ApiDoc;

/// Adds the security requirement and the shared error responses to every operation, so
/// no handler can forget one. Runs once the handlers' paths are in the document.
pub fn finish(document: &mut utoipa::openapi::OpenApi) {
    // First, so that the 409, 412 and 422 answers they add get their problem body below.
    document_versions(document);
    document_idempotency(document);
    SharedResponses.modify(document);
    list_recognised_headers(document);
    // Last: bounds and headers for whatever the steps above and the types left open.
    if let Ok(mut value) = serde_json::to_value(&*document) {
        document_bounds::harden(&mut value);
        match serde_json::from_value(value) {
            Ok(hardened) => *document = hardened,
            Err(error) => {
                tracing::error!(%error, "the hardened OpenAPI document does not read back")
            }
        }
    }
}

/// `ETag` on the answers of single resources and their creates, `If-Match` and 412 on
/// their PATCH and DELETE (see `http/versions.rs`).
fn document_versions(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::Required;
    let etag = || {
        HeaderBuilder::new()
            .schema(Some(Object::with_type(Type::String)))
            .description(Some(
                "The representation's version: send it back in `If-Match` to change or delete \
                 the resource only if nobody else did meanwhile.",
            ))
            .build()
    };
    let tag_answers = |operation: &mut Operation, status: &str| {
        if let Some(RefOr::T(response)) = operation.responses.responses.get_mut(status) {
            response.headers.insert("ETag".to_owned(), RefOr::T(etag()));
        }
    };
    for (path, item) in document.paths.paths.iter_mut() {
        if versions::CREATES.contains(&path.as_str()) {
            if let Some(post) = item.post.as_mut() {
                tag_answers(post, "201");
            }
        }
        if !versions::VERSIONED.contains(&path.as_str()) {
            continue;
        }
        for operation in [&mut item.get, &mut item.patch, &mut item.put]
            .into_iter()
            .flatten()
        {
            tag_answers(operation, "200");
            tag_answers(operation, "201");
        }
        for operation in [&mut item.patch, &mut item.delete].into_iter().flatten() {
            let if_match = ParameterBuilder::new()
                .name("If-Match")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "An `ETag` this resource answered with: the change is made only if it \
                     still matches (else 412 `precondition_failed`, nothing changed); `*` \
                     matches any version.",
                ))
                .schema(Some(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(1000))
                        .pattern(Some(r"^[!-~]([ -~]*[!-~])?$")),
                ))
                .build();
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .push(RefOr::T(if_match));
            operation.responses.responses.insert(
                "412".to_owned(),
                RefOr::T(
                    ResponseBuilder::new()
                        .description(
                            "`precondition_failed`: the resource changed since the `ETag` in \
                             `If-Match` was read; nothing was changed. Read it again.",
                        )
                        .build(),
                ),
            );
        }
    }
}

/// `Idempotency-Key` on every POST, with the answers it can cause (see
/// `http/idempotency.rs`).
fn document_idempotency(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::Required;
    for (path, item) in document.paths.paths.iter_mut() {
        let Some(post) = item.post.as_mut().filter(|_| path.starts_with("/v1/")) else {
            continue;
        };
        let parameter = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "1 to 255 visible ASCII characters (a UUID, say), new for each new request: a retry with the same key and \
                 the same request within 24 h gets the first answer again (with \
                 `Idempotent-Replayed: true`) and the work is not done twice.",
            ))
            .schema(Some(
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(idempotency::MAX_KEY))
                    .pattern(Some(idempotency::KEY_PATTERN)),
            ))
            .build();
        post.parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::T(parameter));
        for (status, code) in [
            (
                "409",
                "`idempotency_key_in_use`: the first request with this `Idempotency-Key` is still running.",
            ),
            (
                "422",
                "`idempotency_key_reused`: this `Idempotency-Key` was used with another request.",
            ),
        ] {
            let responses = &mut post.responses.responses;
            match responses.get_mut(status) {
                Some(RefOr::T(response)) => {
                    response.description = format!("{} Or {code}", response.description);
                }
                Some(RefOr::Ref(_)) => {}
                None => {
                    responses.insert(
                        status.to_owned(),
                        RefOr::T(ResponseBuilder::new().description(code).build()),
                    );
                }
            }
        }
    }
}

/// The import's description ends with the table of headers it recognises, from the one
/// place that table lives.
fn list_recognised_headers(document: &mut utoipa::openapi::OpenApi) {
    let import = document
        .paths
        .paths
        .get_mut("/v1/segments/{id}/import")
        .and_then(|item| item.post.as_mut());
    if let Some(operation) = import {
        let description = operation.description.get_or_insert_with(String::new);
        description.push_str(
            "\n\nRecognised headers (compared without case, accents or punctuation):\n\n",
        );
        description.push_str(&crate::core::import::headers::describe());
    }
}

struct SharedResponses;

const PROBLEM_JSON: &str = "application/problem+json";

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (scheme, description) in [
            (
                "api_key",
                "A tenant's API key: `Authorization: Bearer sk_...`.",
            ),
            (
                "admin_token",
                "The admin token configured with SEGMENTS_ADMIN_TOKEN.",
            ),
        ] {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(description.to_owned());
            components.add_security_scheme(scheme, SecurityScheme::Http(http));
        }
        for (_, name, description) in SHARED {
            let response = ResponseBuilder::new()
                .description(*description)
                .content(PROBLEM_JSON, problem_content())
                .build();
            components
                .responses
                .insert((*name).to_owned(), RefOr::T(response));
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let security = if path.starts_with("/v1/admin") {
                Some("admin_token")
            } else if path.starts_with("/v1/") {
                Some("api_key")
            } else {
                None
            };
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                add_shared(operation, security);
            }
        }
    }
}

/// Query and path text never holds U+0000 (400 names the parameter): the document says
/// so with a pattern on each free-text parameter, so a client generated from it knows.
fn forbid_nul(parameter: &mut Parameter) {
    let Some(RefOr::T(Schema::Object(schema))) = &mut parameter.schema else {
        return;
    };
    let is_text = match &schema.schema_type {
        SchemaType::Type(Type::String) => true,
        SchemaType::Array(types) => types.contains(&Type::String),
        _ => false,
    };
    if is_text && schema.pattern.is_none() && schema.enum_values.is_none() {
        schema.pattern = Some(NO_NUL.to_owned());
    }
}

const NO_NUL: &str = "^[^\\u0000]*$";

/// (status, component name, description) of the errors any operation may answer.
const SHARED: &[(&str, &str, &str)] = &[
    ("400", "BadRequest", "`malformed_json`, `invalid_query` or `invalid_path_parameter`: the request cannot be read."),
    ("401", "Unauthorized", "`unauthorized`: the bearer key or token is missing or wrong."),
    ("413", "PayloadTooLarge", "`payload_too_large`: the body is larger than the limit."),
    ("415", "UnsupportedMediaType", "`unsupported_media_type`: send the body as `application/json`."),
    ("422", "ValidationFailed", "`validation_failed` (every offending field in `errors`) or another rule's code."),
    ("408", "RequestTimeout", "`request_timeout`: the body stopped arriving for 30 s; send the request again."),
    ("429", "RateLimited", "`rate_limited`: past the key's rate limit; retry after the `Retry-After` seconds."),
    ("500", "InternalError", "`internal_error`: a bug; the cause is logged, never shown."),
    ("503", "Unavailable", "`database_unavailable` (the database is unreachable or busy), `tenant_busy` (this account's work holds its whole share of the database) or `contention` (concurrent requests kept changing the same records, or a lock stayed taken past 20 s): retry after the `Retry-After` seconds."),
];

/// A problem+json body for an error response: handlers declare only the status and
/// what it means (`(status = 404, description = "...")`), and get the body from here.
fn problem_content() -> utoipa::openapi::content::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build()
}

fn add_shared(operation: &mut Operation, security: Option<&str>) {
    for (status, response) in operation.responses.responses.iter_mut() {
        if let RefOr::T(response) = response {
            let is_error = status.starts_with('4') || status.starts_with('5');
            if is_error && response.content.is_empty() {
                response
                    .content
                    .insert(PROBLEM_JSON.to_owned(), RefOr::T(problem_content()));
            }
        }
    }
    for parameter in operation.parameters.iter_mut().flatten() {
        if let RefOr::T(parameter) = parameter {
            forbid_nul(parameter);
        }
    }
    let has_body = operation.request_body.is_some();
    for (status, name, _) in SHARED {
        let applies = match *status {
            "401" => security.is_some(),
            "408" | "413" | "415" => has_body,
            _ => security.is_some() || *status == "500",
        };
        if applies && !operation.responses.responses.contains_key(*status) {
            operation.responses.responses.insert(
                (*status).to_owned(),
                RefOr::Ref(Ref::new(format!("#/components/responses/{name}"))),
            );
        }
    }
    // Operations without credentials say so (`[{}]`) rather than leave it unstated.
    operation.security = Some(vec![match security {
        Some(scheme) => SecurityRequirement::new(scheme, Vec::<String>::new()),
        None => SecurityRequirement::default(),
    }]);
}
