//! Optimistic concurrency: every single resource answers with an `ETag` (a digest of its
//! representation), and a PATCH or DELETE carrying `If-Match` changes it only while that
//! tag still matches (412 `precondition_failed` otherwise, nothing changed). The check
//! runs inside the write's transaction, with the row locked (see [`Precondition`]), so of
//! two writes sent with the same tag exactly one wins.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponseBuilder};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::http::error::ApiError;
use crate::service::Precondition;

/// Single resources: their GET, PATCH and PUT answers carry `ETag`; PATCH and DELETE
/// take `If-Match`.
pub const VERSIONED: [&str; 5] = [
    "/v1/contacts/{id}",
    "/v1/segments/{id}",
    "/v1/campaigns/{id}",
    "/v1/contacts/by-external-id/{external_id}",
    "/v1/webhooks/{id}",
];

/// Creates whose 201 carries the new resource's `ETag`.
pub const CREATES: [&str; 4] = [
    "/v1/contacts",
    "/v1/segments",
    "/v1/campaigns",
    "/v1/webhooks",
];

/// The strong entity tag of a representation.
pub fn etag<T: Serialize>(body: &T) -> String {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    format!("\"{}\"", hex::encode(&digest[..12]))
}

/// Adds the representation's `ETag` to an answer.
pub fn tagged<T: Serialize>(mut response: HttpResponseBuilder, body: &T) -> HttpResponseBuilder {
    if let Ok(value) = HeaderValue::from_str(&etag(body)) {
        response.insert_header((header::ETAG, value));
    }
    response
}

/// The request's `If-Match`, if it has one.
#[derive(Debug, Clone, Default)]
pub struct IfMatch(Option<Vec<String>>);

impl IfMatch {
    /// Whether the current tag satisfies the header (`*` matches any existing resource).
    pub fn matches(&self, current: &str) -> bool {
        match &self.0 {
            None => true,
            Some(tags) => tags.iter().any(|tag| tag == "*" || tag == current),
        }
    }

    /// The check a write runs on the resource it locked: its representation, rendered
    /// by `render`, must still carry a tag the header lists. `None` without the header.
    pub fn precondition<R, T>(self, render: fn(R) -> T) -> Option<Precondition<R>>
    where
        R: Clone + 'static,
        T: Serialize + 'static,
    {
        self.0.is_some().then(|| {
            Box::new(move |current: &R| self.matches(&etag(&render(current.clone()))))
                as Precondition<R>
        })
    }
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(value) = request.headers().get(header::IF_MATCH) else {
            return ready(Ok(Self(None)));
        };
        let tags: Option<Vec<String>> = value.to_str().ok().map(|text| {
            text.split(',')
                .map(|tag| tag.trim().to_owned())
                .filter(|tag| !tag.is_empty())
                .collect()
        });
        // Empty list elements are allowed (RFC 9110, 5.6.1), so `If-Match: ,` is a list
        // of no tags: it matches no representation, and the write answers 412. An empty
        // value is no list at all: malformed.
        let blank = value.as_bytes().iter().all(u8::is_ascii_whitespace);
        ready(match tags {
            Some(tags) if !blank && tags.len() <= 20 && value.len() <= 1000 => {
                Ok(Self(Some(tags)))
            }
            _ => Err(ApiError::bad_request(
                "invalid_header",
                "`If-Match` must list entity tags (from `ETag`), or be `*`: at most 1,000 characters.",
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_representation_and_if_match_compares_them() {
        let a = etag(&serde_json::json!({"name": "A", "n": 1}));
        assert_eq!(a, etag(&serde_json::json!({"name": "A", "n": 1})));
        assert_ne!(a, etag(&serde_json::json!({"name": "A", "n": 2})));
        assert!(a.starts_with('"') && a.ends_with('"') && a.len() == 26);
        let header = IfMatch(Some(vec!["\"x\"".into(), a.clone()]));
        assert!(header.matches(&a));
        assert!(!header.matches("\"y\""));
        assert!(IfMatch(Some(vec!["*".into()])).matches("\"anything\""));
        assert!(IfMatch(None).matches("\"anything\""));
    }

    fn if_match(value: &str) -> Result<IfMatch, ApiError> {
        let request = actix_web::test::TestRequest::default()
            .insert_header((header::IF_MATCH, value))
            .to_http_request();
        IfMatch::from_request(&request, &mut Payload::None).into_inner()
    }

    #[test]
    fn a_list_of_no_tags_matches_nothing_and_an_oversized_one_is_refused() {
        assert!(if_match("").is_err() && if_match("  ").is_err());
        for empty in [",", " , ,"] {
            let header = if_match(empty).unwrap();
            assert!(header.0.is_some() && !header.matches("\"x\""), "{empty:?}");
        }
        assert!(if_match(&vec!["\"x\""; 21].join(",")).is_err());
        assert!(if_match(&format!("\"{}\"", "x".repeat(1000))).is_err());
    }
}
