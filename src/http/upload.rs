//! An import's upload: the file (a multipart `file` field or a raw body, counted against
//! the limit as it arrives), an optional `mapping`, and the body's declared charset.

use actix_web::{web, HttpMessage, HttpRequest};
use futures_util::StreamExt;

use crate::core::error::Error;
use crate::core::import::MAX_FILE_BYTES;
use crate::http::error::ApiError;
use crate::http::extract::{declared_length, read_limited};

/// `mapping` as JSON; 422 naming it when it is not.
pub fn mapping_of(text: Option<String>) -> Result<Option<serde_json::Value>, ApiError> {
    text.map(|text| {
        serde_json::from_str(&text).map_err(|error| {
            ApiError::invalid_field(
                "mapping",
                "invalid_mapping",
                format!("must be a JSON object: {error}"),
            )
        })
    })
    .transpose()
}

/// What an upload carries.
pub struct Upload {
    pub file: web::Bytes,
    pub mapping: Option<String>,
    /// The body's declared `charset`, if any.
    pub charset: Option<String>,
}

/// The most a multipart `mapping` field may hold.
const MAX_MAPPING_BYTES: usize = 4000;

/// The file's bytes, from a multipart `file` field (with an optional `mapping` field) or
/// a raw body, refused (413) as soon as they pass the limit.
pub async fn read_upload(request: &HttpRequest, payload: web::Payload) -> Result<Upload, ApiError> {
    let declared = declared_length(request);
    let mime = request.mime_type().ok().flatten();
    let is_multipart = mime
        .as_ref()
        .is_some_and(|m| m.type_() == "multipart" && m.subtype() == "form-data");
    let is_file = mime.as_ref().is_some_and(|m| {
        (m.type_() == "text"
            && ["csv", "plain", "tab-separated-values"].contains(&m.subtype().as_str()))
            || (m.type_() == "application"
                && [
                    "octet-stream",
                    "vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                ]
                .contains(&m.subtype().as_str()))
    });
    if !is_multipart && !is_file {
        return Err(ApiError::UnsupportedMediaType(
            "Send the file as `multipart/form-data` (field `file`), or as a `text/csv`, \
             `application/octet-stream` or `.xlsx` body."
                .to_owned(),
        ));
    }
    let charset = mime
        .as_ref()
        .and_then(|m| m.get_param("charset"))
        .map(|c| c.as_str().to_owned());
    // Multipart framing adds a little to the file itself.
    let framing = if is_multipart { 64 * 1024 } else { 0 };
    if declared.is_some_and(|length| length > MAX_FILE_BYTES + framing) {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_FILE_BYTES,
        });
    }
    if !is_multipart {
        let file = read_limited(payload, MAX_FILE_BYTES).await?;
        return Ok(Upload {
            file,
            mapping: None,
            charset,
        });
    }
    let mut multipart = actix_multipart::Multipart::new(request.headers(), payload);
    let (mut file, mut mapping, mut file_charset) = (None, None, None);
    // At most the two parts the contract names, each once.
    loop {
        let next = tokio::time::timeout(STALLED_PART, multipart.next())
            .await
            .map_err(|_| ApiError::BodyStalled)?;
        let Some(field) = next else {
            break;
        };
        let field = field.map_err(unreadable_body)?;
        match field.name() {
            Some("file") if file.is_none() => {
                file_charset = field
                    .content_type()
                    .and_then(|m| m.get_param("charset"))
                    .map(|c| c.as_str().to_owned());
                file = Some(read_limited(field, MAX_FILE_BYTES).await?);
            }
            Some("mapping") if mapping.is_none() => {
                let bytes = read_limited(field, MAX_MAPPING_BYTES)
                    .await
                    .map_err(|error| match error {
                        ApiError::PayloadTooLarge { .. } => ApiError::invalid_field(
                            "mapping",
                            "length",
                            format!("must be at most {MAX_MAPPING_BYTES} bytes"),
                        ),
                        other => other,
                    })?;
                mapping = Some(String::from_utf8(bytes.to_vec()).map_err(|_| {
                    ApiError::invalid_field("mapping", "invalid_mapping", "must be UTF-8 JSON")
                })?);
            }
            name => return Err(unexpected_field(name)),
        }
    }
    let file = file.ok_or_else(|| {
        ApiError::from(Error::unprocessable(
            "missing_file_field",
            "The form has no `file` field: send the file as the form field named `file`.",
        ))
    })?;
    Ok(Upload {
        file,
        mapping,
        charset: file_charset,
    })
}

fn unexpected_field(name: Option<&str>) -> ApiError {
    ApiError::invalid_field(
        name.unwrap_or_default(),
        "unexpected_form_field",
        "the form takes the field `file`, and optionally `mapping`, each once",
    )
}

/// A multipart upload that sends nothing for this long is cut off (408).
const STALLED_PART: std::time::Duration = std::time::Duration::from_secs(30);

fn unreadable_body(error: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(
        "unreadable_body",
        format!("Could not read the upload: {error}"),
    )
}
