//! Page pagination for lists shown on screens: `?page=&per_page=` -> `{items, page, per_page, total}`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

pub const MAX_PER_PAGE: u32 = 500;
const DEFAULT_PER_PAGE: u32 = 25;

#[derive(Debug, Clone, Copy, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1-based page number. A page past the end has no items.
    #[validate(range(min = 1, max = 1_000_000))]
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<u32>,
    /// Items per page, 1 to 500.
    #[validate(range(min = 1, max = 500))]
    #[param(minimum = 1, maximum = 500, default = 25)]
    pub per_page: Option<u32>,
}

impl PageParams {
    pub fn page(&self) -> u32 {
        self.page.unwrap_or(1)
    }

    pub fn per_page(&self) -> u32 {
        self.per_page.unwrap_or(DEFAULT_PER_PAGE).min(MAX_PER_PAGE)
    }

    pub fn limit(&self) -> i64 {
        i64::from(self.per_page())
    }

    pub fn offset(&self) -> i64 {
        i64::from(self.page() - 1) * self.limit()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// Item schemas stay named components, so generated clients get named types.
    #[schema(inline = false)]
    pub items: Vec<T>,
    #[schema(example = 1)]
    pub page: u32,
    #[schema(example = 25)]
    pub per_page: u32,
    /// Items over all pages.
    #[schema(example = 1)]
    pub total: i64,
}

impl<T> Page<T> {
    pub fn new<R: Into<T>>(rows: Vec<R>, params: &PageParams, total: i64) -> Self {
        Self {
            items: rows.into_iter().map(Into::into).collect(),
            page: params.page(),
            per_page: params.per_page(),
            total,
        }
    }
}

/// A keyset page's `next_after`: the key of its last item when the page is full (more
/// may follow), `None` when it is not (the end).
pub fn next_after<T>(items: &[T], limit: i64, key: impl Fn(&T) -> i64) -> Option<i64> {
    (items.len() as i64 == limit)
        .then(|| items.last().map(key))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_pages() {
        let params = PageParams {
            page: Some(3),
            per_page: Some(10),
        };
        assert_eq!((params.limit(), params.offset()), (10, 20));
        let defaults = PageParams {
            page: None,
            per_page: None,
        };
        assert_eq!((defaults.limit(), defaults.offset()), (25, 0));
    }
}
