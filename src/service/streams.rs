//! Long reads streamed in keyset batches: each batch is its own short statement, so
//! between batches a stream holds no connection and no transaction, and a client that
//! reads slowly (or not at all) costs the database nothing. The bounded channel is the
//! backpressure: memory stays flat. An error ends the stream.

use diesel::PgConnection;
use tokio::sync::mpsc;

use crate::core::error::Error;
use crate::db::pool::{self, PgPool};

/// Rows fetched per database round trip while streaming.
pub const BATCH: i64 = 5000;

/// Batches waiting for a slow client; beyond this the database reads pause.
const BUFFER: usize = 2;

/// A client that reads nothing for this long loses its stream.
const STALLED_CLIENT: std::time::Duration = std::time::Duration::from_secs(60);

/// Streams what `fetch(conn, after, limit)` returns, batch after batch, each starting
/// after the `key` of the last row of the one before, until a batch comes back short.
pub fn keyset<T, F>(
    pool: PgPool,
    fetch: F,
    key: fn(&T) -> i64,
) -> mpsc::Receiver<Result<Vec<T>, Error>>
where
    T: Send + 'static,
    F: Fn(&mut PgConnection, i64, i64) -> Result<Vec<T>, Error> + Clone + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let mut after = 0;
        loop {
            let fetch = fetch.clone();
            let batch = pool::run(&pool, move |conn| fetch(conn, after, BATCH)).await;
            let batch = match batch {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, "stream cut short");
                    let _ = sender.send(Err(error)).await;
                    return;
                }
            };
            let done = (batch.len() as i64) < BATCH;
            after = batch.last().map_or(after, key);
            let delivered = tokio::time::timeout(STALLED_CLIENT, sender.send(Ok(batch))).await;
            if !matches!(delivered, Ok(Ok(()))) || done {
                return;
            }
        }
    });
    receiver
}
