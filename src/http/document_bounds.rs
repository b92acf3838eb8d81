//! What every part of the OpenAPI document declares, so that a client (and the OWASP API
//! Security ruleset Spectral lints it with) never meets an unbounded value or an
//! undocumented header: each string a length, each integer a range and a width, each
//! array a size; every answer its rate-limit and CORS headers; the servers their audience.
//!
//! Bounds the code enforces tightly are declared where the types are (`maxLength = 200`
//! on a name); what is left gets a bound the service never exceeds: text it writes stays
//! under [`MAX_TEXT`], lists under [`MAX_ITEMS`], integers are non-negative 64-bit.

use serde_json::{json, Map, Value};

/// The longest text the service writes in any field (problem details included).
pub const MAX_TEXT: u64 = 100_000;
/// The longest query, path or header value a parameter may have (a request's head is
/// refused whole past 32 KiB).
pub const MAX_PARAMETER: u64 = 1_000;
/// The longest list the service reads or writes (10,000 contact ids at most).
pub const MAX_ITEMS: u64 = 10_000;

/// Adds what the document is missing.
pub fn harden(document: &mut Value) {
    if let Some(root) = document.as_object_mut() {
        root.insert(
            "servers".into(),
            json!([{
                "url": "/",
                "description": "This deployment of the service, whichever it is: production, staging or local.",
                "x-internal": false
            }]),
        );
    }
    for responses in response_maps(document) {
        for (status, response) in responses.iter_mut() {
            if response.get("$ref").is_none() {
                add_headers(response, status);
            }
        }
    }
    if let Some(shared) = document.pointer_mut("/components/responses") {
        for (name, response) in shared
            .as_object_mut()
            .into_iter()
            .flat_map(|r| r.iter_mut())
        {
            let status = match name.as_str() {
                "RateLimited" => "429",
                "Unavailable" => "503",
                _ => "",
            };
            add_headers(response, status);
        }
    }
    bound_parameters(document);
    bound(document);
}

/// Query, path and header values are short: they get [`MAX_PARAMETER`], not
/// [`MAX_TEXT`].
fn bound_parameters(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let parameters = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("parameters"))
        .filter_map(Value::as_array_mut)
        .flatten();
    for parameter in parameters {
        if let Some(schema) = parameter.get_mut("schema").and_then(Value::as_object_mut) {
            let text = matches!(schema.get("type"), Some(Value::String(t)) if t == "string");
            if text
                && !["maxLength", "enum", "const"]
                    .iter()
                    .any(|k| schema.contains_key(*k))
            {
                schema.insert("maxLength".into(), json!(MAX_PARAMETER));
            }
        }
    }
}

/// Every operation's `responses`.
fn response_maps(document: &mut Value) -> Vec<&mut Map<String, Value>> {
    let mut maps = Vec::new();
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return maps;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for (method, operation) in item.iter_mut() {
            if ["get", "put", "post", "delete", "patch", "options", "head"]
                .contains(&method.as_str())
            {
                if let Some(responses) = operation
                    .get_mut("responses")
                    .and_then(Value::as_object_mut)
                {
                    maps.push(responses);
                }
            }
        }
    }
    maps
}

fn add_headers(response: &mut Value, status: &str) {
    let Some(response) = response.as_object_mut() else {
        return;
    };
    let headers = response
        .entry("headers")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(headers) = headers else {
        return;
    };
    let count =
        json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": 4_294_967_295_u64});
    for (name, description) in [
        (
            "RateLimit-Limit",
            "Requests the caller may make in a burst (when the service runs with a rate limit).",
        ),
        (
            "RateLimit-Remaining",
            "Requests left in the caller's burst.",
        ),
        (
            "RateLimit-Reset",
            "Seconds until the caller's burst is whole again.",
        ),
    ] {
        headers
            .entry(name)
            .or_insert_with(|| json!({"description": description, "schema": count}));
    }
    if status == "429" || status == "503" {
        headers.entry("Retry-After").or_insert_with(|| {
            json!({
                "description": "Seconds to wait before trying again.",
                "schema": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 86400}
            })
        });
    }
    headers
        .entry("Access-Control-Allow-Origin")
        .or_insert_with(|| {
            json!({
                "description": "The calling page's origin, when SEGMENTS_CORS_ORIGINS allows it.",
                "schema": {"type": "string", "maxLength": 2048}
            })
        });
}

/// Bounds every schema in the document that has none.
fn bound(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(bound),
        Value::Object(object) => {
            if let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) {
                positive_ids(properties);
            }
            bound_schema(object);
            for (key, child) in object.iter_mut() {
                // Examples are values, not schemas; security schemes are not schemas.
                if key != "example" && key != "examples" && key != "securitySchemes" {
                    bound(child);
                }
            }
        }
        _ => {}
    }
}

/// Ids start at 1: properties named `id`, `*_id` (integers) and `*_ids` (lists of them).
fn positive_ids(properties: &mut Map<String, Value>) {
    for (name, schema) in properties.iter_mut() {
        let target = if name == "id" || name.ends_with("_id") {
            Some(schema)
        } else if name.ends_with("_ids") {
            schema.get_mut("items")
        } else {
            None
        };
        if let Some(schema) = target.and_then(Value::as_object_mut) {
            let integer = match schema.get("type") {
                Some(Value::String(t)) => t == "integer",
                Some(Value::Array(types)) => types.iter().any(|t| t == "integer"),
                _ => false,
            };
            if integer {
                schema.entry("minimum").or_insert_with(|| json!(1));
            }
        }
    }
}

fn bound_schema(schema: &mut Map<String, Value>) {
    let is = |kind: &str, schema: &Map<String, Value>| match schema.get("type") {
        Some(Value::String(t)) => t == kind,
        Some(Value::Array(types)) => types.iter().any(|t| t == kind),
        _ => false,
    };
    if is("string", schema)
        && !["maxLength", "enum", "const"]
            .iter()
            .any(|k| schema.contains_key(*k))
    {
        let length = match schema.get("format").and_then(Value::as_str) {
            Some("date-time") => 40,
            Some("date") => 10,
            Some("binary") => 11 * 1024 * 1024,
            _ => MAX_TEXT,
        };
        schema.insert("maxLength".into(), json!(length));
    }
    if is("integer", schema) {
        schema.entry("format").or_insert_with(|| json!("int64"));
        schema.entry("minimum").or_insert_with(|| json!(0));
        schema.entry("maximum").or_insert_with(|| json!(i64::MAX));
    }
    if is("array", schema) {
        schema.entry("maxItems").or_insert_with(|| json!(MAX_ITEMS));
    }
}
