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
use crate::http::ops::method_label;

pub struct RequestLog;

impl RootSpanBuilder for RequestLog {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
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
