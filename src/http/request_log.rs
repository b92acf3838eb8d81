//! One log line per request, when its span closes: the method, the route template
//! (never the raw path or query string, which carry phones and e-mails), the request id,
//! the tenant and key that called (recorded once authenticated), the status, and for
//! errors the problem's code.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

use crate::http::error::ProblemCode;
use crate::http::metrics::method_label;

pub struct RequestLog;

/// The request's id, as its log lines and the `X-Request-Id` answer carry it: the
/// client's own when it sent a sane one (so a front-end can follow its id into the logs),
/// else a fresh UUID.
#[derive(Clone)]
pub struct RequestIdentity(pub String);

/// A client's id is kept when it is 1 to 128 characters of letters, digits, `-`, `_`, `.`
/// and `:` (no spaces, nothing a log line could be forged with).
fn sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

impl RootSpanBuilder for RequestLog {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let from_client = request
            .headers()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .filter(|id| sane(id))
            .map(str::to_owned);
        let request_id = from_client.unwrap_or_else(|| {
            request
                .extensions()
                .get::<RequestId>()
                .map(ToString::to_string)
                .unwrap_or_default()
        });
        request
            .extensions_mut()
            .insert(RequestIdentity(request_id.clone()));
        tracing::info_span!(
            "request",
            method = %method_label(request.method()),
            route = %route,
            request_id = %request_id,
            tenant_id = tracing::field::Empty,
            key_id = tracing::field::Empty,
            status = tracing::field::Empty,
            error = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, code) = match outcome {
            Ok(response) => (
                response.status(),
                response
                    .response()
                    .extensions()
                    .get::<ProblemCode>()
                    .copied(),
            ),
            Err(error) => (error.as_response_error().status_code(), None),
        };
        span.record("status", status.as_u16());
        if let Some(ProblemCode(code)) = code {
            span.record("error", code);
        }
    }
}
