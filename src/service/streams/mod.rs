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

mod keys;

pub use keys::Keys;
use keys::{Spans, MAX_STEP};

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
/// range by range until `limit` rows are kept or the keys end. The first read examines
/// the limit and a quarter more (most members are rows: one read a little larger costs
/// less than a second one); each later one what the rows still missing need at the share
/// kept so far (see [`next_ask`]). So a page costs one read when the estimate holds, and
/// few reads of bounded size however many rows are left out.
///
/// Generic over the connection so that the sizing is tested without a database.
pub fn first_rows<C, T, F>(
    conn: &mut C,
    keys: Option<Keys>,
    (limit, most): (i64, i64),
    mut fetch: F,
) -> Result<Vec<T>, Error>
where
    F: FnMut(&mut C, i64, i64, i64) -> RangeRows<T>,
{
    let mut rows = Vec::new();
    let Some(keys) = keys else {
        return Ok(rows);
    };
    let wanted = usize::try_from(limit).unwrap_or_default();
    let most = most.max(limit).max(1);
    let mut ask = with_headroom(limit.max(1)).min(most);
    let mut spans = Spans::new(keys, ask);
    let mut examined = 0;
    let mut range = spans.next();
    while let Some((after, through)) = range {
        let read = fetch(conn, after, through, ask)?;
        examined += read.examined;
        rows.extend(read.rows);
        if rows.len() >= wanted {
            rows.truncate(wanted);
            break;
        }
        ask = next_ask(wanted - rows.len(), rows.len(), examined, ask, most);
        spans.aim(ask);
        spans.observe(read.cut.unwrap_or(through) - after, read.examined);
        if let Some(key) = read.cut {
            // Read on from the cut in a range sized anew, not over the rest of this one.
            spans.resume_after(key);
        }
        range = spans.next();
    }
    Ok(rows)
}

/// A read aimed at `rows` rows examines a quarter more.
fn with_headroom(rows: i64) -> i64 {
    rows.saturating_add(rows / 4)
}

/// The members a page's next read examines: enough for the `missing` rows at the share
/// of the members examined so far that were kept, with headroom; `MAX_STEP` times the
/// last read while none was kept. Never more than `MAX_STEP` times the last read, nor
/// than `most`.
fn next_ask(missing: usize, kept: usize, examined: usize, last: i64, most: i64) -> i64 {
    let step = last.saturating_mul(MAX_STEP).min(most);
    if kept == 0 {
        return step;
    }
    let needed = (missing as u128).saturating_mul(examined as u128) / kept as u128;
    with_headroom(i64::try_from(needed).unwrap_or(i64::MAX)).clamp(1, step.max(1))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows 1..=1000 at every key, of which those `kept` keeps; records each read.
    fn page(limit: i64, kept: fn(i64) -> bool) -> (Vec<i64>, Vec<(i64, i64, i64)>) {
        let mut reads = Vec::new();
        let keys = Some(Keys::new(1, 1_000, 1_000));
        let rows = first_rows(
            &mut reads,
            keys,
            (limit, 400),
            |reads, after, through, ask| {
                reads.push((after, through, ask));
                let examined: Vec<i64> = (after + 1..=through).take(ask as usize).collect();
                let cut = (examined.len() as i64 == ask && examined.last() != Some(&through))
                    .then(|| examined.last().copied())
                    .flatten();
                let rows = examined.iter().copied().filter(|&key| kept(key)).collect();
                Ok(Read {
                    rows,
                    examined: examined.len(),
                    cut,
                })
            },
        )
        .unwrap_or_default();
        (rows, reads)
    }

    #[test]
    fn a_page_whose_estimate_holds_takes_one_read() {
        // Nine rows in ten kept: the headroom covers them.
        let (rows, reads) = page(100, |key| key % 10 != 0);
        assert_eq!(rows.len(), 100);
        assert_eq!(rows.last(), Some(&111));
        assert_eq!(reads, [(0, 125, 125)]);
    }

    #[test]
    fn a_short_page_reads_on_for_what_is_missing() {
        // Half kept: the first read brings 62, the second aims at the 38 missing.
        let (rows, reads) = page(100, |key| key % 2 == 0);
        assert_eq!(rows, (1..=100).map(|n| n * 2).collect::<Vec<_>>());
        assert_eq!(reads.len(), 2);
        assert_eq!(reads[1].2, 95);
    }

    #[test]
    fn where_nearly_all_is_left_out_reads_grow_to_the_most() {
        let (rows, reads) = page(100, |key| key > 990);
        assert_eq!(rows, (991..=1_000).collect::<Vec<_>>());
        let asks: Vec<i64> = reads.iter().map(|read| read.2).collect();
        assert!(asks.windows(2).all(|pair| pair[1] <= pair[0] * MAX_STEP));
        assert!(asks.iter().all(|&ask| ask <= 400), "{asks:?}");
        assert_eq!(reads.last().map(|read| read.1), Some(1_000));
    }

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
}
