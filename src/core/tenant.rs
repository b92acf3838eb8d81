//! The tenant a request acts for, and the one rule about its endpoint limit.

use serde_json::{Map, Value};

use super::error::Error;

/// The settings of the caller's tenant that use cases apply: every tenant-scoped query
/// takes its `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: i64,
    pub name: String,
    /// Most distinct (contact, channel) endpoints over all segments; `None`: unlimited.
    pub endpoint_limit: Option<i64>,
    /// Reads phone numbers written without a country prefix.
    pub default_region: Option<String>,
    pub require_privacy_consent: bool,
}

/// Refuses a write that adds `requested` endpoints to the `used` ones past `limit`: 422
/// `endpoint_limit_exceeded`, with the figures a screen needs to explain it.
pub fn check_endpoint_limit(used: i64, requested: i64, limit: i64) -> Result<(), Error> {
    if requested <= 0 || used + requested <= limit {
        return Ok(());
    }
    let mut extra = Map::new();
    extra.insert("used".into(), Value::from(used));
    extra.insert("limit".into(), Value::from(limit));
    extra.insert("requested".into(), Value::from(requested));
    Err(Error::Unprocessable {
        code: "endpoint_limit_exceeded",
        detail: format!(
            "This write would add {requested} endpoints to the {used} in use, past the limit of {limit}; nothing was added."
        ),
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_refuses_only_what_passes_it() {
        assert!(check_endpoint_limit(2, 1, 3).is_ok());
        assert!(
            check_endpoint_limit(5, 0, 3).is_ok(),
            "adding nothing is fine"
        );
        let Err(Error::Unprocessable { code, extra, .. }) = check_endpoint_limit(2, 2, 3) else {
            panic!("expected a refusal");
        };
        assert_eq!(code, "endpoint_limit_exceeded");
        assert_eq!(extra["used"], 2);
        assert_eq!(extra["limit"], 3);
        assert_eq!(extra["requested"], 2);
    }
}
