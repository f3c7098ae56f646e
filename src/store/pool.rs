//! Connections kept between uses without sqlx's ping.
//!
//! sqlx's pool pings every connection given back to it (a round trip to the database),
//! to find one that a cancelled query left halfway. On PostgreSQL that was one round
//! trip in every request, as many as a retrieve's own query. So the store keeps the
//! connections whose use ran to its end (a commit, a read that answered) in a stash of
//! its own, and hands those out first. A connection whose user stopped early (a
//! dropped future, an error) goes back to sqlx's pool as before, and is pinged there.
//!
//! The stash holds its connections checked out of sqlx's pool, so it keeps sqlx's
//! limits: its slots are the pool's `max_connections`, taken in arrival order within
//! the acquire timeout; a connection returns to sqlx's pool after a minute idle or ten
//! minutes out (where sqlx's idle timeout and lifetime apply), and when a connection is
//! found broken (`note_connection_lost`), the stash is emptied. SQLite has no stash: a
//! ping there is a message to a thread, not a round trip.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a connection may wait in the stash before it goes back to sqlx's pool.
const IDLE: Duration = Duration::from_secs(60);
/// How long a connection stays out of sqlx's pool in all, so that its lifetime and
/// health are checked there now and then.
const HELD: Duration = Duration::from_secs(600);

/// The connections a store keeps out of sqlx's pool between uses (PostgreSQL).
pub(super) struct Stash {
    idle: Mutex<Vec<Idle>>,
    slots: Arc<Semaphore>,
    /// Bumped when a connection is found broken: those taken before are not kept.
    epoch: AtomicU64,
    closed: AtomicBool,
}

struct Idle {
    conn: PoolConnection<Any>,
    taken: Instant,
    epoch: u64,
    since: Instant,
}

impl Stash {
    pub(super) fn new(max_connections: u32) -> Self {
        Stash {
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(max_connections as usize)),
            epoch: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// A connection: the one used last, or one of sqlx's pool. Waits for a slot (one
    /// per connection the pool may open) at most `timeout`.
    pub(super) async fn checkout(self: &Arc<Self>, pool: &AnyPool, timeout: Duration) -> Result<Pooled, sqlx::Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let slot = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let epoch = self.epoch.load(Ordering::Acquire);
        loop {
            let newest = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match newest {
                Some(idle) if idle.epoch == epoch && idle.since.elapsed() <= IDLE => {
                    return Ok(Pooled {
                        conn: Some(idle.conn),
                        keep: Some(Keep { stash: self.clone(), taken: idle.taken, epoch, _slot: slot }),
                    });
                }
                // Taken before a connection was found broken, or idle long: sqlx's
                // pool checks it (and the older ones below it go the same way).
                Some(stale) => drop(stale),
                None => break,
            }
        }
        let conn = tokio::time::timeout_at(deadline, pool.acquire()).await.map_err(|_| sqlx::Error::PoolTimedOut)??;
        Ok(Pooled {
            conn: Some(conn),
            keep: Some(Keep { stash: self.clone(), taken: Instant::now(), epoch, _slot: slot }),
        })
    }

    fn put(&self, conn: PoolConnection<Any>, taken: Instant, epoch: u64) {
        let now = Instant::now();
        if self.closed.load(Ordering::Acquire)
            || epoch != self.epoch.load(Ordering::Acquire)
            || now.duration_since(taken) > HELD
        {
            return drop(conn);
        }
        let expired: Vec<Idle> = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.push(Idle { conn, taken, epoch, since: now });
            // Oldest first: `checkout` takes from the end.
            let stale = idle.iter().take_while(|i| now.duration_since(i.since) > IDLE).count();
            idle.drain(..stale).collect()
        };
        drop(expired);
    }

    /// A connection was found broken: none taken before now is kept.
    pub(super) fn forget_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.give_back();
    }

    /// Gives the idle connections back to sqlx's pool.
    pub(super) fn give_back(&self) {
        let all = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        drop(all);
    }

    /// Gives every connection back to sqlx's pool, now and from now on (before the
    /// pool closes, which waits for them).
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.forget_all();
        self.slots.close();
    }

    pub(super) fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A connection checked out of the store. Derefs to the connection. `release` says its
/// use ran to its end; dropped without it, it goes back to sqlx's pool and its ping.
pub struct Pooled {
    conn: Option<PoolConnection<Any>>,
    /// PostgreSQL: where `release` puts it, and its slot, held until then.
    keep: Option<Keep>,
}

struct Keep {
    stash: Arc<Stash>,
    taken: Instant,
    epoch: u64,
    _slot: OwnedSemaphorePermit,
}

impl Pooled {
    /// A connection of sqlx's pool, with no stash (SQLite).
    pub(super) fn unkept(conn: PoolConnection<Any>) -> Self {
        Pooled { conn: Some(conn), keep: None }
    }

    /// Gives the connection back after a use that ran to its end, with nothing left
    /// to read and no transaction open: the next checkout takes it as it is. Only a
    /// caller that saw its last statement answer may say so.
    pub fn release(mut self) {
        self.release_now();
    }

    /// `release` for an owner that cannot be moved out of (a `Tx`); empty afterwards.
    pub(super) fn release_now(&mut self) {
        if let (Some(conn), Some(keep)) = (self.conn.take(), self.keep.take()) {
            // Put back before the slot is freed, so the next in line finds it.
            keep.stash.put(conn, keep.taken, keep.epoch);
        }
    }
}

impl std::ops::Deref for Pooled {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        self.conn.as_ref().expect("a connection is not used after its release")
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn.as_mut().expect("a connection is not used after its release")
    }
}
