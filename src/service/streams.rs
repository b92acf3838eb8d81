//! Long reads streamed in batches: each batch is its own short statement, so between
//! statements a stream holds no transaction, no connection is kept for it, and a client
//! that reads slowly (or not at all) costs the database nothing. The bounded channel is
//! the backpressure: memory stays flat. An error ends the stream, and so does a client
//! that stops reading; either way the receiver is told, so a response that ends
//! normally holds every row.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use diesel::PgConnection;
use tokio::sync::mpsc;

use crate::core::error::Error;
use crate::db::pool::{self, PgPool};

/// Batches waiting for a slow client; beyond this the database reads pause.
const BUFFER: usize = 2;

/// A client that reads nothing for this long loses its stream.
const STALLED_CLIENT: std::time::Duration = std::time::Duration::from_secs(60);

/// A stream's batches as they are read: each `Ok`, then the end. A stream that stopped
/// short (a failed read, a client that stopped reading for too long) ends with an
/// `Err`, never as if it were whole.
pub struct Batches<T> {
    receiver: mpsc::Receiver<Result<Vec<T>, Error>>,
    whole: Arc<AtomicBool>,
}

impl<T> Batches<T> {
    /// The next batch; `None` once every row was delivered.
    pub async fn next(&mut self) -> Option<Result<Vec<T>, Error>> {
        match self.receiver.recv().await {
            Some(batch) => Some(batch),
            None if self.whole.load(Ordering::Acquire) => None,
            None => Some(Err(Error::internal("the stream stopped before its end"))),
        }
    }
}

/// The sending side of [`Batches`].
struct Sender<T> {
    sender: mpsc::Sender<Result<Vec<T>, Error>>,
    whole: Arc<AtomicBool>,
}

fn channel<T>() -> (Sender<T>, Batches<T>) {
    let (sender, receiver) = mpsc::channel(BUFFER);
    let whole = Arc::new(AtomicBool::new(false));
    let batches = Batches {
        receiver,
        whole: whole.clone(),
    };
    (Sender { sender, whole }, batches)
}

impl<T> Sender<T> {
    /// Hands a batch to the client; false when the client is gone or stalled.
    async fn deliver(&self, rows: Vec<T>) -> bool {
        matches!(
            tokio::time::timeout(STALLED_CLIENT, self.sender.send(Ok(rows))).await,
            Ok(Ok(()))
        )
    }

    /// Every row was delivered.
    fn finish(self) {
        self.whole.store(true, Ordering::Release);
    }

    async fn cut_short(self, error: Error) {
        tracing::warn!(%error, "stream cut short");
        let _ = tokio::time::timeout(STALLED_CLIENT, self.sender.send(Err(error))).await;
    }
}

/// Key ranges read at once, each on its own connection: while the service decodes one
/// range's rows, PostgreSQL reads the next. (Read one after the other, the two took
/// turns, and the stream ran at the speed of both added up.)
const READ_AHEAD: usize = 2;

/// The keys a stream covers, and about how many rows lie among them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keys {
    pub first: i64,
    pub last: i64,
    pub rows: i64,
}

impl Keys {
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

/// A range's read: the rows it kept, how many it examined (what the read cost: rows it
/// read and then left out count too, and ranges are sized by them), and the key to read
/// on after when its limit cut it short.
pub struct Read<T> {
    pub rows: Vec<T>,
    pub examined: usize,
    pub cut: Option<i64>,
}

impl<T> Read<T> {
    /// A read that kept every row it examined.
    pub fn whole(rows: Vec<T>, cut: Option<i64>) -> Self {
        let examined = rows.len();
        Self {
            rows,
            examined,
            cut,
        }
    }
}

/// What `fetch(conn, after, through, limit)` returns: the rows with keys in
/// `(after, through]`, in key order, from at most `limit` examined.
type RangeRows<T> = Result<Read<T>, Error>;

/// The first `limit` rows with keys in `keys`, in key order, read on one connection
/// range by range, each range sized by the density met so far, until `limit` rows are
/// kept or the keys end. The first read examines `limit` rows at most; while reads keep
/// too few (the rest left out), each examines up to four times more, to `most`. So a
/// page costs reads of bounded size, and few of them however many rows are left out.
pub fn first_rows<T, F>(
    conn: &mut PgConnection,
    keys: Option<Keys>,
    (limit, most): (i64, i64),
    mut fetch: F,
) -> Result<Vec<T>, Error>
where
    F: FnMut(&mut PgConnection, i64, i64, i64) -> RangeRows<T>,
{
    let mut rows = Vec::new();
    let Some(keys) = keys else {
        return Ok(rows);
    };
    let wanted = usize::try_from(limit).unwrap_or_default();
    let mut ask = limit.max(1);
    let mut spans = Spans::new(keys, ask);
    let mut range = spans.next();
    while let Some((after, through)) = range {
        let read = fetch(conn, after, through, ask)?;
        let kept_too_few = read.rows.len().saturating_mul(2) < read.examined;
        rows.extend(read.rows);
        if rows.len() >= wanted {
            rows.truncate(wanted);
            break;
        }
        if kept_too_few {
            ask = ask.saturating_mul(MAX_STEP).min(most.max(ask));
            spans.batch = ask;
        }
        spans.observe(read.cut.unwrap_or(through) - after, read.examined);
        if let Some(key) = read.cut {
            // Read on from the cut in a range sized anew, not over the rest of this one.
            spans.after = key;
        }
        range = spans.next();
    }
    Ok(rows)
}

/// Streams the rows with keys in `keys` (none when `None`), in key order, in ranges of
/// about `batch` examined rows read [`READ_AHEAD`] at once (see [`RangeRows`]).
pub fn ranges<T, F>(pool: PgPool, keys: Option<Keys>, batch: i64, fetch: F) -> Batches<T>
where
    T: Send + 'static,
    F: Fn(&mut PgConnection, i64, i64, i64) -> RangeRows<T> + Clone + Send + 'static,
{
    let (sender, batches) = channel();
    let Some(keys) = keys else {
        sender.finish();
        return batches;
    };
    // A range denser than its estimate is cut at twice the batch and read on from there.
    let limit = batch.saturating_mul(2);
    tokio::spawn(async move {
        let mut spans = Spans::new(keys, batch);
        let mut reads = VecDeque::with_capacity(READ_AHEAD + 1);
        loop {
            while reads.len() < READ_AHEAD {
                let Some((after, through)) = spans.next() else {
                    break;
                };
                reads.push_back(RangeRead::start(&pool, &fetch, after, through, limit));
            }
            let Some(read) = reads.pop_front() else {
                return sender.finish();
            };
            let Read {
                rows,
                examined,
                cut,
            } = match read.rows.await.map_err(Error::internal) {
                Ok(Ok(read)) => read,
                Ok(Err(error)) | Err(error) => return sender.cut_short(error).await,
            };
            spans.observe(cut.unwrap_or(read.through) - read.after, examined);
            if let Some(key) = cut {
                // The rest of this range comes before any later one.
                reads.push_front(RangeRead::start(&pool, &fetch, key, read.through, limit));
            }
            // A range can hold none of the rows asked for (a gap, a rare status).
            if !rows.is_empty() && !sender.deliver(rows).await {
                return;
            }
        }
    });
    batches
}

/// One range's read under way.
struct RangeRead<T> {
    after: i64,
    through: i64,
    rows: tokio::task::JoinHandle<RangeRows<T>>,
}

impl<T: Send + 'static> RangeRead<T> {
    fn start<F>(pool: &PgPool, fetch: &F, after: i64, through: i64, limit: i64) -> Self
    where
        F: Fn(&mut PgConnection, i64, i64, i64) -> RangeRows<T> + Clone + Send + 'static,
    {
        let (pool, fetch) = (pool.clone(), fetch.clone());
        let rows = tokio::spawn(async move {
            pool::run(&pool, move |conn| fetch(conn, after, through, limit)).await
        });
        Self {
            after,
            through,
            rows,
        }
    }
}

/// Splits `keys` into consecutive ranges of about `batch` rows each: the first sized by
/// the keys' average density, each later one by the density of the last range read
/// (with two read at once, the one started before the last), so ranges follow the rows
/// where they cluster and stride over the gaps.
#[derive(Debug)]
struct Spans {
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
const MAX_STEP: i64 = 4;

impl Spans {
    fn new(keys: Keys, batch: i64) -> Self {
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
    fn next(&mut self) -> Option<(i64, i64)> {
        if self.after >= self.last {
            return None;
        }
        let through = self.after.saturating_add(self.width).min(self.last);
        let range = (self.after, through);
        self.after = through;
        Some(range)
    }

    /// `rows` rows were examined among `keys` keys.
    fn observe(&mut self, keys: i64, rows: usize) {
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

    #[tokio::test]
    async fn a_stream_that_stops_short_ends_with_an_error() {
        let (sender, mut batches) = channel();
        assert!(sender.deliver(vec![1, 2]).await);
        drop(sender);
        assert_eq!(batches.next().await.map(|b| b.ok()), Some(Some(vec![1, 2])));
        assert!(matches!(batches.next().await, Some(Err(_))));
    }

    #[tokio::test]
    async fn a_whole_stream_ends_with_its_last_batch() {
        let (sender, mut batches) = channel();
        assert!(sender.deliver(vec![1, 2]).await);
        sender.finish();
        assert_eq!(batches.next().await.map(|b| b.ok()), Some(Some(vec![1, 2])));
        assert!(batches.next().await.is_none());
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
