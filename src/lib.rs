//! Segments: audiences for bulk messaging campaigns.

pub mod attributes;
pub mod audience;
pub mod auth;
pub mod campaigns;
pub mod config;
pub mod contacts;
pub mod db;
pub mod dev;
pub mod eligibility;
pub mod endpoints;
pub mod error;
pub mod extract;
pub mod filter;
pub mod imports;
pub mod members;
pub mod openapi;
pub mod ops;
pub mod pagination;
pub mod phone;
pub mod segments;
pub mod telemetry;
pub mod tenants;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse};
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{scope, AppExt};
use utoipa_swagger_ui::SwaggerUi;

use crate::config::Config;
use crate::db::PgPool;
use crate::error::ApiError;
use crate::ops::Metrics;

/// What every handler can reach.
pub struct AppState {
    pub pool: PgPool,
    pub config: Config,
    pub metrics: Metrics,
    pub keys: std::sync::Arc<auth::KeyCache>,
}

impl AppState {
    pub fn new(config: Config) -> Self {
        let url = config.database_url.clone().unwrap_or_default();
        Self {
            pool: db::pool(&url, config.db_pool_size, config.statement_timeout_secs),
            config,
            metrics: Metrics::new(),
            keys: Default::default(),
        }
    }
}

/// Every route, registered so that the OpenAPI document cannot miss one.
fn routes(config: &mut ServiceConfig) {
    config.configure(ops::configure).service(
        scope::scope("/v1")
            .configure(tenants::configure)
            .configure(attributes::configure)
            .configure(contacts::configure)
            .configure(imports::configure)
            .configure(members::configure)
            .configure(segments::configure)
            .configure(campaigns::configure)
            .configure(audience::configure),
    );
}

/// The OpenAPI document, generated from the handlers; needs no database.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, mut document) = App::new()
        .into_utoipa_app()
        .openapi(openapi::ApiDoc::openapi())
        .configure(routes)
        .split_for_parts();
    openapi::finish(&mut document);
    document
}

/// The one application, used by `main` and by the tests.
pub fn build_app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (app, document) = App::new()
        .into_utoipa_app()
        .openapi(openapi::ApiDoc::openapi())
        .app_data(state)
        .configure(routes)
        .split_for_parts();
    let mut document = document;
    openapi::finish(&mut document);
    // No validator badge: it would send the document's address to validator.swagger.io.
    let swagger_ui = SwaggerUi::new("/swagger-ui/{_:.*}")
        .url("/api-docs/openapi.json", document)
        .config(utoipa_swagger_ui::Config::default().validator_url("none"));
    app.service(swagger_ui)
        .service(web::redirect("/swagger-ui", "/swagger-ui/"))
        .default_service(web::to(not_found))
        .wrap(from_fn(ops::track_requests))
        .wrap(tracing_actix_web::TracingLogger::default())
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("route"))
}
