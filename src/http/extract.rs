//! Request extractors whose every failure is a problem+json naming the offending field.
//!
//! actix's own `Json`, `Query` and `Path` report serde errors as text without the field
//! path; these read the same inputs through `serde_path_to_error` and `validator`.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::{ready, LocalBoxFuture, Ready};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
use validator::Validate;

use crate::core::error::{Error, FieldError};
use crate::http::error::ApiError;
use crate::http::input::{field_errors, validation_problem};
use crate::http::state::AppState;

/// Bodies above this size are refused when no configuration is at hand.
const DEFAULT_JSON_LIMIT: usize = 1024 * 1024;

/// A JSON request body: `application/json`, within the configured size (or `AT_LEAST`
/// bytes, for the few bodies that are large by design), deserialised and validated.
pub struct Json<T, const AT_LEAST: usize = 0>(pub T);

impl<T: DeserializeOwned + Validate + 'static, const AT_LEAST: usize> FromRequest
    for Json<T, AT_LEAST>
{
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(DEFAULT_JSON_LIMIT, |state| state.config.json_limit)
            .max(AT_LEAST);
        let content_type_ok = req.mime_type().ok().flatten().is_some_and(|mime| {
            mime.type_() == "application"
                && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
        });
        let declared_length = declared_length(req);
        let payload = payload.take();
        Box::pin(async move {
            if !content_type_ok {
                return Err(ApiError::UnsupportedMediaType(
                    "Send the body as `Content-Type: application/json`.".to_owned(),
                ));
            }
            if declared_length.is_some_and(|length| length > limit) {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            let body = read_limited(payload, limit).await?;
            let value = parse_json::<T>(&body)?;
            value.validate().map_err(validation_problem)?;
            Ok(Json(value))
        })
    }
}

/// The body length the client declared, if any: a body declared too big is refused
/// before a byte of it is read.
pub fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok())
}

/// Reads a body into memory, refusing it (413) as soon as it passes `limit` bytes rather
/// than after buffering it all.
pub async fn read_limited<S, E>(mut body: S, limit: usize) -> Result<web::Bytes, ApiError>
where
    S: futures_util::Stream<Item = Result<web::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut bytes = web::BytesMut::new();
    loop {
        let next = tokio::time::timeout(STALLED_BODY, body.next())
            .await
            .map_err(|_| ApiError::BodyStalled)?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|error| {
            ApiError::bad_request(
                "unreadable_body",
                format!("Could not read the body: {error}"),
            )
        })?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes.freeze())
}

/// A body that sends nothing for this long is cut off (408): a client cannot hold a
/// request open by trickling it.
const STALLED_BODY: std::time::Duration = std::time::Duration::from_secs(30);

/// Syntax errors are 400; well-formed JSON of the wrong shape is 422 with the field path.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if has_escaped_nul(body) {
        if let Ok(value) = serde_json::from_slice::<Value>(body) {
            if let Some(field) = nul_path(&value, String::new()) {
                return Err(Error::Validation(vec![nul_error(field)]).into());
            }
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let field = field_of(error.path());
        let inner = error.into_inner();
        if inner.classify() != serde_json::error::Category::Data {
            return malformed(inner);
        }
        let message = strip_position(&inner.to_string());
        // serde reports a missing field at its parent: name the field itself.
        match missing_field(&message) {
            Some(name) if field.is_empty() => {
                ApiError::invalid_field(name, "required", "is required")
            }
            Some(name) => {
                ApiError::invalid_field(format!("{field}.{name}"), "required", "is required")
            }
            None => ApiError::invalid_field(field, "invalid_value", message),
        }
    })?;
    deserializer.end().map_err(malformed)?;
    Ok(value)
}

/// PostgreSQL stores no U+0000 in text or jsonb: refused at the edge, naming the field,
/// rather than failing in the database.
const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";

fn nul_error(field: String) -> FieldError {
    FieldError::new(field, "invalid_character", NUL_MESSAGE)
}

/// Whether the JSON text has a `\u0000` escape (an escaped backslash followed by
/// `u0000` is not one). Raw NUL bytes are not valid JSON and fail parsing anyway.
fn has_escaped_nul(body: &[u8]) -> bool {
    let mut index = 0;
    while index < body.len() {
        if body[index] == b'\\' {
            if body[index + 1..].starts_with(b"u0000") {
                return true;
            }
            index += 2;
        } else {
            index += 1;
        }
    }
    false
}

/// The JSON path of the first string (value or key) holding U+0000.
fn nul_path(value: &Value, path: String) -> Option<String> {
    let at = |prefix: &str, key: &str| {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        Value::String(text) => text.contains('\0').then_some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| nul_path(item, format!("{path}[{index}]"))),
        Value::Object(members) => members.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(at(&path, key))
            } else {
                nul_path(item, at(&path, key))
            }
        }),
        _ => None,
    }
}

fn malformed(error: serde_json::Error) -> ApiError {
    ApiError::bad_request(
        "malformed_json",
        format!("The body is not valid JSON: {error}"),
    )
}

/// Query parameters, deserialised and validated.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Validate> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let pairs = form_urlencoded::parse(req.query_string().as_bytes());
        if let Some((name, _)) = pairs
            .clone()
            .find(|(name, value)| name.contains('\0') || value.contains('\0'))
        {
            return ready(Err(ApiError::BadRequest {
                code: "invalid_query",
                detail: format!("Query parameter `{name}`: {NUL_MESSAGE}"),
                errors: vec![nul_error(name.into_owned())],
            }));
        }
        let parsed = serde_path_to_error::deserialize(serde_urlencoded::Deserializer::new(pairs))
            .map_err(|error| {
                let field = field_of(error.path());
                ApiError::BadRequest {
                    code: "invalid_query",
                    detail: format!("Query parameter `{field}`: {}", error.inner()),
                    errors: vec![FieldError::new(
                        field,
                        "invalid_value",
                        error.inner().to_string(),
                    )],
                }
            })
            .and_then(|value: T| {
                value.validate().map_err(|errors| {
                    let errors = field_errors(errors);
                    ApiError::BadRequest {
                        code: "invalid_query",
                        detail: format!(
                            "Query parameter {}: {}",
                            errors[0].field, errors[0].message
                        ),
                        errors,
                    }
                })?;
                Ok(Query(value))
            });
        ready(parsed)
    }
}

/// Path parameters, deserialised by name.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Path<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some((name, _)) = req
            .match_info()
            .iter()
            .find(|(_, value)| value.contains('\0'))
        {
            return ready(Err(ApiError::BadRequest {
                code: "invalid_path_parameter",
                detail: format!("Path parameter `{name}`: {NUL_MESSAGE}"),
                errors: vec![nul_error(name.to_owned())],
            }));
        }
        let deserializer = actix_router::PathDeserializer::new(req.match_info());
        ready(
            serde_path_to_error::deserialize(deserializer)
                .map(Path)
                .map_err(|error| {
                    let field = field_of(error.path());
                    ApiError::BadRequest {
                        code: "invalid_path_parameter",
                        detail: format!("Path parameter `{field}`: {}", error.inner()),
                        errors: vec![FieldError::new(
                            field,
                            "invalid_value",
                            error.inner().to_string(),
                        )],
                    }
                }),
        )
    }
}

fn field_of(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." {
        String::new()
    } else {
        text
    }
}

fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// serde_json appends "at line 1 column 9", which means nothing next to a field path.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    #[test]
    fn wrong_type_names_the_nested_field() {
        let error = parse_json::<Outer>(br#"{"items":[{"count":1},{"count":"x"}]}"#).unwrap_err();
        match error {
            ApiError::Service(Error::Validation(fields)) => {
                assert_eq!(fields[0].field, "items[1].count");
                assert!(!fields[0].message.contains("line"));
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn broken_syntax_is_a_bad_request() {
        let error = parse_json::<Outer>(br#"{"items": [}"#).unwrap_err();
        assert!(matches!(
            error,
            ApiError::BadRequest {
                code: "malformed_json",
                ..
            }
        ));
    }

    #[test]
    fn trailing_garbage_is_a_bad_request() {
        let error = parse_json::<Inner>(br#"{"count": 1} x"#).unwrap_err();
        assert!(matches!(
            error,
            ApiError::BadRequest {
                code: "malformed_json",
                ..
            }
        ));
    }
}
