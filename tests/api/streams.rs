//! Streams read in key ranges, two at once (`service::streams::ranges`): every row once,
//! in key order, whatever the ranges meet: clusters, gaps, and ranges far denser or
//! sparser than estimated. The rows come from memory; the reads still take the tenant's
//! pooled connections, as the service's do. Pages (`first_rows`) read the same ranges,
//! one after the other, until they are full.

use diesel::PgConnection;
use segments::core::error::Error;
use segments::db::pool;
use segments::service::streams::{first_rows, ranges, Keys, Read};

use crate::harness::TestDatabase;

/// A dense run, a long gap, sparse keys, another dense run.
fn clustered_keys() -> Vec<i64> {
    let dense = 1..=3_000;
    let sparse = (1_000_000..2_000_000).step_by(997);
    let dense_again = 5_000_000..=5_002_000;
    dense.chain(sparse).chain(dense_again).collect()
}

/// What a range's read returns when `keys` are the stored rows: those in `(after,
/// through]`, at most `limit`, and the key to read on after when the limit cut it short.
fn read_range(keys: &[i64], after: i64, through: i64, limit: i64) -> Read<i64> {
    let read: Vec<i64> = keys
        .iter()
        .copied()
        .filter(|key| *key > after && *key <= through)
        .take(limit as usize)
        .collect();
    let cut = (read.len() as i64 == limit).then(|| read.last().copied());
    Read::whole(read, cut.flatten())
}

/// As [`read_range`], keeping only the rows `kept` keeps (as a page leaves out the
/// opted out): the others still count as examined.
fn read_kept(
    keys: &[i64],
    (after, through, limit): (i64, i64, i64),
    kept: impl Fn(&i64) -> bool,
) -> Read<i64> {
    let read = read_range(keys, after, through, limit);
    Read {
        rows: read.rows.into_iter().filter(kept).collect(),
        ..read
    }
}

/// Streams `keys` with `rows` as the estimate of how many there are: (the rows in the
/// order delivered, the largest batch).
async fn stream(
    pool: &pool::PgPool,
    keys: &[i64],
    rows: i64,
    batch: i64,
) -> Result<(Vec<i64>, usize), Error> {
    let stored = keys.to_vec();
    let fetch = move |_: &mut PgConnection, after: i64, through: i64, limit: i64| {
        Ok(read_range(&stored, after, through, limit))
    };
    let bounds = Keys {
        first: keys[0],
        last: keys[keys.len() - 1],
        rows,
    };
    let mut batches = ranges(pool.clone(), Some(bounds), batch, fetch);
    let (mut delivered, mut largest) = (Vec::new(), 0);
    while let Some(rows) = batches.next().await {
        let rows = rows?;
        largest = largest.max(rows.len());
        delivered.extend(rows);
    }
    Ok((delivered, largest))
}

#[actix_web::test]
async fn ranges_deliver_every_row_once_in_key_order() {
    let database = TestDatabase::new();
    let pool = pool::pool(&database.url, 4, 30, 50).tenant(1);
    let keys = clustered_keys();
    let count = keys.len() as i64;
    // Estimates: right, a third of the truth (every range cut short and read on), a
    // thousandth (one range over everything, read on batch after batch), far too many.
    for estimate in [count, count / 3, count / 1000, count * 1000] {
        for batch in [1, 7, 500] {
            let (delivered, largest) = stream(&pool, &keys, estimate, batch)
                .await
                .unwrap_or_else(|error| panic!("estimate {estimate}, batch {batch}: {error}"));
            assert_eq!(delivered, keys, "estimate {estimate}, batch {batch}");
            assert!(
                largest as i64 <= 2 * batch,
                "a batch of {largest} rows, for batches of {batch}"
            );
        }
    }
}

#[actix_web::test]
async fn a_failed_read_ends_the_stream_with_its_error() {
    let database = TestDatabase::new();
    let pool = pool::pool(&database.url, 4, 30, 50).tenant(1);
    let fetch = |_: &mut PgConnection, after: i64, through: i64, _: i64| {
        if after >= 500 {
            Err(Error::internal("the read failed"))
        } else {
            Ok(Read::whole((after + 1..=through).collect(), None))
        }
    };
    let keys = Keys {
        first: 1,
        last: 10_000,
        rows: 10_000,
    };
    let mut batches = ranges(pool, Some(keys), 100, fetch);
    let mut delivered = Vec::new();
    let error = loop {
        match batches.next().await {
            Some(Ok(rows)) => delivered.extend(rows),
            Some(Err(error)) => break error,
            None => panic!("the stream ended without the error"),
        }
    };
    assert_eq!(delivered, (1..=500).collect::<Vec<i64>>());
    let cause = std::error::Error::source(&error).map(ToString::to_string);
    assert_eq!(cause.as_deref(), Some("the read failed"));
    assert!(
        !matches!(batches.next().await, Some(Ok(_))),
        "no rows after the error"
    );
}

#[actix_web::test]
async fn no_keys_is_an_empty_stream() {
    let database = TestDatabase::new();
    let pool = pool::pool(&database.url, 4, 30, 50).tenant(1);
    let fetch = |_: &mut PgConnection, _: i64, _: i64, _: i64| -> Result<Read<i64>, Error> {
        panic!("nothing to read")
    };
    let mut batches = ranges(pool, None, 100, fetch);
    assert!(batches.next().await.is_none());
}

#[test]
fn pages_hold_the_first_rows_past_their_key() {
    let database = TestDatabase::new();
    let mut conn = database.connection();
    let keys = clustered_keys();
    // Every third row read is left out (as an opted-out member is), so reads come back
    // short and a page reads on.
    let kept = |key: &i64| key % 3 != 0;
    let fetch = |_: &mut PgConnection, after: i64, through: i64, limit: i64| {
        Ok(read_kept(&keys, (after, through, limit), kept))
    };
    let count = keys.len() as i64;
    for estimate in [count, count / 3, count / 1000, count * 1000] {
        let bounds = Keys {
            first: keys[0],
            last: keys[keys.len() - 1],
            rows: estimate,
        };
        for limit in [1, 7, 500] {
            for after in [0, 2_999, 3_000, 1_500_000, 5_001_990, 5_002_000] {
                let page = first_rows(&mut conn, bounds.after(after), (limit, 20_000), &fetch)
                    .unwrap_or_else(|error| panic!("{error}"));
                let expected: Vec<i64> = keys
                    .iter()
                    .copied()
                    .filter(|key| *key > after && kept(key))
                    .take(limit as usize)
                    .collect();
                assert_eq!(
                    page, expected,
                    "estimate {estimate}, limit {limit}, after {after}"
                );
            }
        }
    }
}

#[test]
fn a_page_of_rows_nearly_all_left_out_takes_few_bounded_reads() {
    let database = TestDatabase::new();
    let mut conn = database.connection();
    // 400,000 dense keys, of which 4 are kept (as a page of an e-mail campaign whose
    // members nearly all lack an address).
    let keys: Vec<i64> = (1..=400_000).collect();
    let kept = |key: &i64| key % 100_000 == 0;
    let most = 10_000;
    let reads = std::cell::RefCell::new(Vec::new());
    let fetch = |_: &mut PgConnection, after: i64, through: i64, limit: i64| {
        let read = read_kept(&keys, (after, through, limit), kept);
        reads.borrow_mut().push((through - after, read.examined));
        Ok(read)
    };
    let bounds = Keys {
        first: 1,
        last: 400_000,
        rows: 400_000,
    };
    for limit in [1, 3, 1_000] {
        reads.borrow_mut().clear();
        let page = first_rows(&mut conn, Some(bounds), (limit, most), &fetch)
            .unwrap_or_else(|error| panic!("{error}"));
        let expected: Vec<i64> = keys
            .iter()
            .copied()
            .filter(kept)
            .take(limit as usize)
            .collect();
        assert_eq!(page, expected, "limit {limit}");
        let reads = reads.borrow();
        // Reads grow to `most` rows and stay there: about 400,000 / 10,000 of them, each
        // over a range that holds about what it may examine.
        assert!(reads.len() <= 50, "limit {limit}: {} reads", reads.len());
        for (keys, examined) in reads.iter() {
            assert!(*examined as i64 <= most.max(limit), "{examined} examined");
            assert!(*keys <= 4 * most, "a range of {keys} keys");
        }
    }
}
