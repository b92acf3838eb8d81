//! Streamed responses: batches from a use case's stream, each encoded as it arrives. A
//! failure midway aborts the transfer (the chunked body never ends properly), so a
//! response that completes holds everything.

use actix_web::{web, HttpResponse};
use futures_util::{stream, StreamExt};
use serde::Serialize;

use crate::core::error::Error;
use crate::http::error::ApiError;
use crate::service::streams::Batches;

/// A 200 of `content_type`: `header`, then every batch encoded by `encode`.
pub fn response<T: 'static>(
    batches: Batches<T>,
    content_type: &'static str,
    header: &'static str,
    encode: impl Fn(Vec<T>) -> Result<Vec<u8>, Error> + 'static,
) -> HttpResponse {
    let encode = std::rc::Rc::new(encode);
    let head =
        stream::once(async move { Ok::<_, ApiError>(web::Bytes::from_static(header.as_bytes())) });
    let body = stream::unfold(batches, move |mut batches| {
        let encode = encode.clone();
        async move {
            let batch = batches.next().await?;
            let bytes = batch.and_then(|items| encode(items)).map(web::Bytes::from);
            Some((bytes.map_err(ApiError::from), batches))
        }
    });
    HttpResponse::Ok()
        .content_type(content_type)
        .streaming(head.chain(body))
}

/// One JSON object per line.
pub fn ndjson<U: Serialize>(items: &[U]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(items.len() * 64);
    for item in items {
        serde_json::to_writer(&mut out, item).map_err(Error::internal)?;
        out.push(b'\n');
    }
    Ok(out)
}
