//! Cross-origin calls from browser apps: which origins may call, and which headers they
//! may send and read.

use actix_cors::Cors;

/// Headers a front-end sends besides the simple ones.
const REQUEST_HEADERS: [&str; 6] = [
    "authorization",
    "content-type",
    "if-match",
    "idempotency-key",
    "prefer",
    "x-request-id",
];

/// Headers a front-end needs to read: versions for `If-Match`, where a created resource
/// or a job is, when to retry, its rate limit, its request id, whether an answer was
/// replayed, a download's file name.
const EXPOSED_HEADERS: [&str; 9] = [
    "etag",
    "location",
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "x-request-id",
    "idempotent-replayed",
    "content-disposition",
];

/// The CORS policy for `origins` (`*`: any). With none, preflights are refused (400) and
/// other requests carry no CORS headers, so browsers keep cross-origin pages out.
pub fn policy(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers(REQUEST_HEADERS)
        .expose_headers(EXPOSED_HEADERS)
        .max_age(600);
    for origin in origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
        cors = if origin == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(origin)
        };
    }
    cors
}
