//! Changes to keys and tenants, announced through PostgreSQL (`NOTIFY`) so that every
//! replica hears them, and the connection that listens for them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::prelude::*;

/// The channel on which every change to keys or tenants is announced.
pub const CHANGES_CHANNEL: &str = "segments_auth_changed";

/// Tells every replica that keys or tenants changed (delivered at commit).
pub fn announce_change(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_notify($1, '')")
        .bind::<diesel::sql_types::Text, _>(CHANGES_CHANNEL)
        .execute(conn)
        .map(drop)
}

/// What hears the announcements.
pub trait ChangeListener: Send + Sync {
    /// The listening connection is up (`true`) or lost (`false`): changes made while it
    /// is down go unheard.
    fn listening(&self, listening: bool);
    /// Keys or tenants changed.
    fn changed(&self);
    /// The listening connection answered a ping: nothing was missed until now.
    fn heard(&self);
}

/// The listening thread; stops when dropped.
pub struct Listening {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How often the listening connection is checked (listeners stop trusting a silent
/// connection after a few missed pings).
const PING_EVERY: Duration = Duration::from_secs(1);
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Listens on [`CHANGES_CHANNEL`] for as long as the returned handle lives, reconnecting
/// when the connection is lost.
pub fn listen_for_changes(database_url: String, listener: Arc<dyn ChangeListener>) -> Listening {
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::spawn(move || {
        while !stopping.load(Ordering::Relaxed) {
            let connection =
                PgConnection::establish(&database_url)
                    .ok()
                    .and_then(|mut connection| {
                        diesel::sql_query(format!("LISTEN {CHANGES_CHANNEL}"))
                            .execute(&mut connection)
                            .ok()?;
                        Some(connection)
                    });
            listener.listening(connection.is_some());
            match connection {
                Some(connection) => relay(connection, listener.as_ref(), &stopping),
                None => std::thread::sleep(Duration::from_secs(1)),
            }
            listener.listening(false);
        }
    });
    Listening {
        stop,
        thread: Some(thread),
    }
}

/// Relays announcements until the connection fails or the stop flag is set.
fn relay(mut connection: PgConnection, listener: &dyn ChangeListener, stop: &AtomicBool) {
    let mut last_ping = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        for notification in connection.notifications_iter() {
            listener.changed();
            if notification.is_err() {
                return;
            }
        }
        if last_ping.elapsed() > PING_EVERY {
            if diesel::sql_query("SELECT 1")
                .execute(&mut connection)
                .is_err()
            {
                return;
            }
            listener.heard();
            last_ping = Instant::now();
        }
        std::thread::sleep(POLL_EVERY);
    }
}
