//! Pages of a list with their total.

use diesel::QueryResult;

/// A page whose rows each carry the list's total (an uncorrelated subquery of the page's
/// statement, counted once): one round trip a page instead of two, and the page and its
/// total from one snapshot. A page past the end has no row to carry it, so only then is
/// the total counted on its own (`count_alone`).
pub fn with_total<Row>(
    page: Vec<(Row, Option<i64>)>,
    offset: i64,
    count_alone: impl FnOnce() -> QueryResult<i64>,
) -> QueryResult<(Vec<Row>, i64)> {
    let total = match page.first() {
        Some((_, total)) => total.unwrap_or_default(),
        None if offset == 0 => 0,
        None => count_alone()?,
    };
    Ok((page.into_iter().map(|(row, _)| row).collect(), total))
}

#[cfg(test)]
mod tests {
    use super::with_total;

    #[test]
    fn the_total_comes_from_the_rows_else_from_counting_alone() {
        let carried = with_total(vec![("a", Some(7)), ("b", Some(7))], 0, || {
            panic!("counted")
        });
        assert_eq!(carried.unwrap(), (vec!["a", "b"], 7));
        let first_empty = with_total(Vec::<(&str, Option<i64>)>::new(), 0, || panic!("counted"));
        assert_eq!(first_empty.unwrap(), (vec![], 0));
        let past_the_end = with_total(Vec::<(&str, Option<i64>)>::new(), 50, || Ok(12));
        assert_eq!(past_the_end.unwrap(), (vec![], 12));
    }
}
