//! Long reads streamed in keyset batches: each batch is its own short statement, so
//! between batches a stream holds no connection and no transaction, and a client that
//! reads slowly (or not at all) costs the database nothing. The bounded channel is the
//! backpressure: memory stays flat. An error ends the stream.

use diesel::PgConnection;
use tokio::sync::mpsc;

use crate::core::error::Error;
use crate::db::pool::{self, PgPool};

/// Batches waiting for a slow client; beyond this the database reads pause.
const BUFFER: usize = 2;

/// A client that reads nothing for this long loses its stream.
const STALLED_CLIENT: std::time::Duration = std::time::Duration::from_secs(60);

/// Streams what `fetch(conn, after, batch)` returns, batch after batch: each returns its
/// rows and the key to read on after (`None` at the end), so a batch may hold fewer
/// rows than it read.
pub fn keyset<T, F>(pool: PgPool, batch: i64, fetch: F) -> mpsc::Receiver<Result<Vec<T>, Error>>
where
    T: Send + 'static,
    F: Fn(&mut PgConnection, i64, i64) -> Result<(Vec<T>, Option<i64>), Error>
        + Clone
        + Send
        + 'static,
{
    let (sender, receiver) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let mut after = 0;
        loop {
            let fetch = fetch.clone();
            let rows = pool::run(&pool, move |conn| fetch(conn, after, batch)).await;
            let (rows, next) = match rows {
                Ok(read) => read,
                Err(error) => {
                    tracing::warn!(%error, "stream cut short");
                    let _ = sender.send(Err(error)).await;
                    return;
                }
            };
            let delivered = tokio::time::timeout(STALLED_CLIENT, sender.send(Ok(rows))).await;
            match (delivered, next) {
                (Ok(Ok(())), Some(next)) => after = next,
                _ => return,
            }
        }
    });
    receiver
}
