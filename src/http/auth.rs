//! Who is calling: a tenant's API key (`Caller`), or the admin token (`Admin`).

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::{ready, LocalBoxFuture, Ready};
use tracing_actix_web::RootSpan;

use crate::core::keys::{is_admin_token, is_well_formed};
use crate::core::tenant::Tenant;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::service::auth::{cached, known_unknown, look_up};

fn bearer_token(request: &HttpRequest) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The tenant whose API key authenticated the request. Every tenant-scoped query takes
/// its id.
pub struct Caller(pub Tenant);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    /// A key of the wrong shape, or one the database said lately it does not know, is
    /// refused without asking it; an address trying many unknown keys is slowed down.
    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let key = bearer_token(request)
            .filter(|key| is_well_formed(key))
            .map(str::to_owned);
        let address = request.peer_addr().map(|address| address.ip());
        let span = request.extensions().get::<RootSpan>().cloned();
        Box::pin(async move {
            let (Some(state), Some(key)) = (state, key) else {
                return Err(ApiError::Unauthorized);
            };
            let authenticated = match cached(&state.keys, &key) {
                Some(authenticated) => authenticated,
                None if known_unknown(&state.keys, &key) => return Err(ApiError::Unauthorized),
                None if !state.rate_limits.may_look_up_key(address) => {
                    return Err(ApiError::RateLimited)
                }
                None => look_up(&state.env, &state.keys, &key)
                    .await?
                    .ok_or(ApiError::Unauthorized)?,
            };
            // Who did what: the request's log line names the tenant and the key.
            if let Some(span) = span {
                span.record("tenant_id", authenticated.tenant.id);
                span.record("key_id", authenticated.key_id);
            }
            Ok(Caller(authenticated.tenant))
        })
    }
}

/// A request carrying the configured admin token.
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let configured = request
            .app_data::<web::Data<AppState>>()
            .and_then(|state| state.config.admin_token.clone());
        ready(match configured {
            // Without a token the admin API does not exist.
            None => Err(ApiError::NoRoute),
            Some(expected)
                if is_admin_token(bearer_token(request).unwrap_or_default(), &expected) =>
            {
                Ok(Admin)
            }
            Some(_) => Err(ApiError::Unauthorized),
        })
    }
}
