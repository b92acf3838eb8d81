//! The committed contract must be exactly what the code generates.

use actix_web::http::Method;

use crate::harness::spawn_app;

const COMMITTED: &str = "openapi/openapi.json";

#[test]
fn committed_document_matches_the_code() {
    let generated = segments::openapi_document()
        .to_pretty_json()
        .expect("serialise the document");
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "{COMMITTED} differs from the code. If the change is intended, refresh it with:\n  \
         cargo run -q -- openapi > {COMMITTED}"
    );
}

#[test]
fn every_tenant_operation_is_secured_and_documents_its_errors() {
    let document = serde_json::to_value(segments::openapi_document()).unwrap();
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            assert!(
                operation["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{id} has no tag"
            );
            assert!(
                operation["responses"]["500"].is_object(),
                "{id} does not document 500"
            );
            if path.starts_with("/v1/") {
                let scheme = if path.starts_with("/v1/admin") {
                    "admin_token"
                } else {
                    "api_key"
                };
                assert!(
                    operation["security"][0][scheme].is_array(),
                    "{id} is not secured by {scheme}"
                );
                assert!(
                    operation["responses"]["401"].is_object(),
                    "{id} does not document 401"
                );
                assert!(
                    operation["responses"]["422"].is_object(),
                    "{id} does not document 422"
                );
            }
        }
    }
    assert!(operations >= 20, "only {operations} operations documented");
}

#[actix_web::test]
async fn the_served_document_is_the_generated_one() {
    let app = spawn_app().await;
    let served = app
        .call(Method::GET, "/api-docs/openapi.json", None, None)
        .await
        .expect(200);
    assert_eq!(
        served,
        serde_json::to_value(segments::openapi_document()).unwrap()
    );
}
