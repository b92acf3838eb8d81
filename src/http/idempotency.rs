//! `Idempotency-Key` on every POST: the first answer is kept 24 hours (per tenant) and a
//! retry with the same key and the same request gets it again, marked
//! `Idempotent-Replayed: true`, without the work being done twice. The same key with
//! another request is 422 `idempotency_key_reused`; while the first request runs, 409
//! `idempotency_key_in_use`. A server error (5xx) is not kept: the retry does the work.

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpResponse};
use sha2::{Digest, Sha256};

use crate::core::error::Error;
use crate::core::import::MAX_FILE_BYTES;
use crate::db::idempotency::Stored;
use crate::http::auth::{Admin, Caller};
use crate::http::error::ApiError;
use crate::http::extract::read_limited;
use crate::http::state::AppState;
use crate::service::idempotency::{self, Claim, ADMIN};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";

/// The longest key accepted, in bytes.
pub const MAX_KEY: usize = 255;

/// The most a request with a key may send: an import's file and its form.
const MAX_BODY: usize = MAX_FILE_BYTES + 64 * 1024;

/// Whose key it is: the tenant's, or the admin API's; none when the request carries no
/// valid credentials (the handler then answers 401, and nothing is kept).
async fn owner(request: &actix_web::HttpRequest) -> Option<i64> {
    if request.path().starts_with("/v1/admin/") {
        return Admin::extract(request).await.ok().map(|_| ADMIN);
    }
    Caller::extract(request)
        .await
        .ok()
        .map(|Caller(tenant)| tenant.id)
}

/// A key is 1 to 255 visible ASCII characters (a UUID, say): the document's pattern.
pub const KEY_PATTERN: &str = "^[!-~]{1,255}$";

fn key_of(request: &ServiceRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get(HEADER) else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    let visible = bytes.iter().all(|b| (b'!'..=b'~').contains(b));
    if bytes.is_empty() || bytes.len() > MAX_KEY || !visible {
        return Err(ApiError::bad_request(
            "invalid_header",
            format!(
                "`Idempotency-Key` must be 1 to {MAX_KEY} visible ASCII characters, e.g. a UUID."
            ),
        ));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// The request, as far as a retry must repeat it.
fn fingerprint(request: &ServiceRequest, body: &[u8]) -> Vec<u8> {
    let mut hash = Sha256::new();
    for part in [
        request.method().as_str(),
        request.path(),
        request.query_string(),
        request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.update(body);
    hash.finalize().to_vec()
}

pub async fn replay_or_keep(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let key = match key_of(&request) {
        Ok(Some(key)) if request.method() == Method::POST && request.path().starts_with("/v1/") => {
            key
        }
        Ok(_) => {
            return next
                .call(request)
                .await
                .map(ServiceResponse::map_into_boxed_body)
        }
        Err(error) => return Ok(request.error_response(error)),
    };
    let (Some(state), Some(owner)) = (
        request.app_data::<web::Data<AppState>>().cloned(),
        owner(request.request()).await,
    ) else {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let body = match read_limited(request.take_payload(), MAX_BODY).await {
        Ok(body) => body,
        Err(error) => return Ok(request.error_response(error)),
    };
    let hash = fingerprint(&request, &body);
    let claim = idempotency::claim(&state.env, owner, key.clone(), hash).await;
    match claim {
        Err(error) => Ok(request.error_response(ApiError::from(error))),
        Ok(Claim::Reused) => Ok(request.error_response(ApiError::from(Error::unprocessable(
            "idempotency_key_reused",
            "This Idempotency-Key was used with another request; use a new key for a new \
             request.",
        )))),
        Ok(Claim::InUse) => Ok(request.error_response(ApiError::from(Error::conflict(
            "idempotency_key_in_use",
            "The first request with this Idempotency-Key is still running; retry shortly.",
        )))),
        Ok(Claim::Replay(stored)) => Ok(request.into_response(replayed(stored))),
        Ok(Claim::Proceed) => {
            request.set_payload(Payload::from(body));
            let response = next.call(request).await?;
            keep(&state, owner, key, response).await
        }
    }
}

/// Keeps the answer (but a server error's) and sends it on.
async fn keep<B: MessageBody + 'static>(
    state: &AppState,
    owner: i64,
    key: String,
    response: ServiceResponse<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let status = response.status();
    if status.is_server_error() {
        if let Err(error) = idempotency::release(&state.env, owner, key).await {
            tracing::warn!(%error, "an idempotency key stays claimed until it expires");
        }
        return Ok(response.map_into_boxed_body());
    }
    let (request, response) = response.into_parts();
    let (response, body) = response.into_parts();
    let bytes = body::to_bytes(body)
        .await
        .map_err(|_| ApiError::from(Error::internal("could not read an answer to keep it")))?;
    let text = |name: HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let stored = Stored {
        request_hash: Vec::new(),
        status: i16::try_from(status.as_u16()).ok(),
        content_type: text(header::CONTENT_TYPE),
        location: text(header::LOCATION),
        body: Some(bytes.to_vec()),
    };
    if let Err(error) = idempotency::finish(&state.env, owner, key, stored).await {
        tracing::warn!(%error, "an idempotent answer could not be kept");
    }
    let response = response.set_body(BoxBody::new(bytes));
    Ok(ServiceResponse::new(request, response))
}

/// The kept answer, again.
fn replayed(stored: Stored) -> HttpResponse {
    let status = stored
        .status
        .and_then(|s| StatusCode::from_u16(u16::try_from(s).ok()?).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    response.insert_header((
        HeaderName::from_static(REPLAYED),
        HeaderValue::from_static("true"),
    ));
    if let Some(content_type) = stored.content_type {
        response.insert_header((header::CONTENT_TYPE, content_type));
    }
    if let Some(location) = stored.location {
        response.insert_header((header::LOCATION, location));
    }
    response.body(stored.body.unwrap_or_default())
}
