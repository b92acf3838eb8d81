//! The key ranges a stream or a page reads: the keys it covers ([`Keys`]) and their
//! split into consecutive ranges sized by the rows met ([`Spans`]).

/// The keys a stream covers, and about how many rows lie among them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keys {
    pub first: i64,
    pub last: i64,
    pub rows: i64,
}

impl Keys {
    /// The keys from `first` to `last` holding about `rows` rows: at most one a key, so an
    /// estimate that counts a row more than once (a contact in several segments) is
    /// capped by the keys there are.
    pub fn new(first: i64, last: i64, rows: i64) -> Self {
        let keys = i128::from(last) - i128::from(first) + 1;
        let rows = i128::from(rows).clamp(1, keys.max(1));
        Self {
            first,
            last,
            rows: i64::try_from(rows).unwrap_or(i64::MAX),
        }
    }

    /// Whether rows fill at least half of the keys: then reading every key of a range
    /// costs at most twice reading its rows.
    pub fn is_dense(&self) -> bool {
        let keys = i128::from(self.last) - i128::from(self.first) + 1;
        i128::from(self.rows) * 2 >= keys
    }

    /// The keys past `after`, with their share of the rows; `None` when none are left.
    pub fn after(self, after: i64) -> Option<Keys> {
        if after >= self.last {
            return None;
        }
        if after < self.first {
            return Some(self);
        }
        let span = i128::from(self.last) - i128::from(self.first) + 1;
        let left = i128::from(self.last) - i128::from(after);
        let rows = i128::from(self.rows) * left / span;
        Some(Keys {
            first: after + 1,
            last: self.last,
            rows: i64::try_from(rows.max(1)).unwrap_or(i64::MAX),
        })
    }
}

/// Splits `keys` into consecutive ranges of about `batch` rows each: the first sized by
/// the keys' average density, each later one by the density of the last range read
/// (with two read at once, the one started before the last), so ranges follow the rows
/// where they cluster and stride over the gaps.
#[derive(Debug)]
pub(super) struct Spans {
    /// The next range starts after this key.
    after: i64,
    last: i64,
    /// Keys per range.
    width: i64,
    /// Rows examined per range, what the width aims at.
    batch: i64,
}

/// A range grows or shrinks by at most this factor at a time, so one odd range does not
/// throw the next far off.
pub(super) const MAX_STEP: i64 = 4;

impl Spans {
    pub(super) fn new(keys: Keys, batch: i64) -> Self {
        let keyspace = i128::from(keys.last) - i128::from(keys.first) + 1;
        let width = keyspace * i128::from(batch.max(1)) / i128::from(keys.rows.max(1));
        Self {
            after: keys.first.saturating_sub(1),
            last: keys.last,
            width: clamp_width(width),
            batch: batch.max(1),
        }
    }

    /// The next range, `(after, through]`; `None` past the last key.
    pub(super) fn next(&mut self) -> Option<(i64, i64)> {
        if self.after >= self.last {
            return None;
        }
        let through = self.after.saturating_add(self.width).min(self.last);
        let range = (self.after, through);
        self.after = through;
        Some(range)
    }

    /// Ranges aim at `batch` examined rows from the next observation on.
    pub(super) fn aim(&mut self, batch: i64) {
        self.batch = batch.max(1);
    }

    /// The next range starts after `key` (a range cut short is read on from there).
    pub(super) fn resume_after(&mut self, key: i64) {
        self.after = key;
    }

    /// `rows` rows were examined among `keys` keys.
    pub(super) fn observe(&mut self, keys: i64, rows: usize) {
        let wanted = match i128::try_from(rows).unwrap_or(i128::MAX) {
            0 => i128::from(self.width) * i128::from(MAX_STEP),
            rows => i128::from(keys.max(1)) * i128::from(self.batch) / rows,
        };
        let (least, most) = (
            i128::from(self.width / MAX_STEP),
            i128::from(self.width) * i128::from(MAX_STEP),
        );
        self.width = clamp_width(wanted.clamp(least, most));
    }
}

fn clamp_width(width: i128) -> i64 {
    i64::try_from(width.max(1)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_dense_when_rows_fill_half_of_them() {
        assert!(Keys::new(1, 100, 50).is_dense());
        assert!(Keys::new(1, 100, 300).is_dense());
        assert!(!Keys::new(1, 100, 49).is_dense());
        assert!(!Keys::new(1, 1_000_000, 1_000).is_dense());
        let rest = Keys::new(1, 1_000_000, 900_000).after(500_000);
        assert!(rest.is_some_and(|keys| keys.is_dense()));
    }

    fn all(spans: &mut Spans) -> Vec<(i64, i64)> {
        std::iter::from_fn(|| spans.next()).collect()
    }

    #[test]
    fn ranges_cover_the_keys_once_in_order() {
        let mut spans = Spans::new(
            Keys {
                first: 5,
                last: 104,
                rows: 100,
            },
            30,
        );
        assert_eq!(all(&mut spans), [(4, 34), (34, 64), (64, 94), (94, 104)]);
    }

    #[test]
    fn a_single_key_is_one_range() {
        let mut spans = Spans::new(
            Keys {
                first: 7,
                last: 7,
                rows: 1,
            },
            20_000,
        );
        assert_eq!(all(&mut spans), [(6, 7)]);
    }

    #[test]
    fn ranges_follow_the_density_met() {
        let keys = Keys {
            first: 1,
            last: 1_000_000,
            rows: 1000,
        };
        let mut spans = Spans::new(keys, 100);
        assert_eq!(spans.next(), Some((0, 100_000)));
        // Twice as dense as estimated: half as wide.
        spans.observe(100_000, 200);
        assert_eq!(spans.next(), Some((100_000, 150_000)));
        // Empty: wider, by at most the step.
        spans.observe(50_000, 0);
        assert_eq!(spans.next(), Some((150_000, 350_000)));
        // Far denser: narrower, by at most the step.
        spans.observe(200_000, 1_000_000);
        assert_eq!(spans.next(), Some((350_000, 400_000)));
    }

    #[test]
    fn a_key_holds_one_row_at_most() {
        assert_eq!(Keys::new(1, 1_000, 3_000).rows, 1_000);
        assert_eq!(Keys::new(1, 1_000, 300).rows, 300);
        assert_eq!(Keys::new(5, 5, 0).rows, 1);
        assert_eq!(Keys::new(1, i64::MAX, i64::MAX).rows, i64::MAX);
    }

    #[test]
    fn the_keys_past_a_key_keep_their_share_of_the_rows() {
        let keys = Keys {
            first: 1,
            last: 1_000,
            rows: 500,
        };
        assert_eq!(keys.after(0), Some(keys));
        assert_eq!(
            keys.after(600),
            Some(Keys {
                first: 601,
                last: 1_000,
                rows: 200
            })
        );
        assert_eq!(keys.after(999).map(|k| (k.first, k.rows)), Some((1_000, 1)));
        assert_eq!(keys.after(1_000), None);
        assert_eq!(keys.after(i64::MAX), None);
    }

    #[test]
    fn extreme_keys_do_not_overflow() {
        let mut spans = Spans::new(
            Keys {
                first: 1,
                last: i64::MAX,
                rows: 1,
            },
            20_000,
        );
        assert_eq!(spans.next(), Some((0, i64::MAX)));
        assert_eq!(spans.next(), None);
        spans.observe(i64::MAX, 0);
        assert_eq!(spans.width, i64::MAX);
    }
}
