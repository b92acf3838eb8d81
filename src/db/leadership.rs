//! One replica leads: a session lock held by a connection of its own, for work that
//! reads across tenants again and again (the webhook dispatcher's search for due
//! webhooks). Every replica polling every tenant would, on Citus, send each poll to
//! every shard from every replica. When the leader's connection is lost, its lock goes
//! with it and another replica takes over within [`CONTEND_EVERY`]. Leading is never
//! needed for correctness (the work leases what it does, row by row), only for cost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::prelude::*;

use super::locks::{self, Lock};

/// How often a follower tries the lock, and the leader checks its connection.
const CONTEND_EVERY: Duration = Duration::from_secs(1);
/// How often the thread looks at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Whether this replica leads, for as long as the value lives.
pub struct Leadership {
    leading: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Leadership {
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Contends for `lock` on a connection of its own, reconnecting when it is lost.
pub fn contend(database_url: String, lock: Lock) -> Leadership {
    let leading = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, stopping) = (leading.clone(), stop.clone());
    let thread = std::thread::spawn(move || {
        while !stopping.load(Ordering::Relaxed) {
            if let Ok(mut connection) = PgConnection::establish(&database_url) {
                hold(&mut connection, lock, &flag, &stopping);
            }
            flag.store(false, Ordering::Relaxed);
            pause(&stopping);
        }
    });
    Leadership {
        leading,
        stop,
        thread: Some(thread),
    }
}

/// Tries the lock until it is taken, then checks the connection, until either fails.
fn hold(connection: &mut PgConnection, lock: Lock, leading: &AtomicBool, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let alive = if leading.load(Ordering::Relaxed) {
            diesel::sql_query("SELECT 1").execute(connection).is_ok()
        } else {
            match locks::try_session(connection, lock) {
                Ok(taken) => {
                    leading.store(taken, Ordering::Relaxed);
                    true
                }
                Err(_) => false,
            }
        };
        if !alive {
            return;
        }
        pause(stop);
    }
}

fn pause(stop: &AtomicBool) {
    let started = Instant::now();
    while started.elapsed() < CONTEND_EVERY && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(STOP_CHECK);
    }
}
