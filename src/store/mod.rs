//! Persistence. One interface over two backends: PostgreSQL (production) and an
//! embedded SQLite file. Both speak the same SQL through sqlx's `Any` driver; where
//! the dialects differ (row locks, transaction start) the [`Store`] says which to use.
//!
//! Store functions take a connection (`&mut AnyConnection`, which a transaction
//! derefs to); services decide where transactions begin and end.

pub mod accounts;
pub(crate) mod batch;
pub mod claim_actions;
pub mod claims;
pub mod customers;
pub mod endpoint_cache;
pub mod events;
pub mod files;
pub mod gauges;
pub mod guarantees;
pub(crate) mod holder;
pub mod idempotency;
pub mod list;
pub mod operators;
pub mod payouts;
pub mod policies;
pub mod pool;
pub mod recoveries;
pub mod reset;
pub mod setup;
pub mod test_clocks;
pub mod webhooks;

use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Row, TransactionManager};
use tokio::sync::{Notify, OwnedMutexGuard};

use crate::metrics::Metrics;

pub use list::{CreatedFilter, Page, PageRequest};

pub type Conn = AnyConnection;

/// A statement with its values, as `sqlx::query` makes one.
pub type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// An `INSERT` into a resource's table, with the columns every such table starts with
/// bound (`id, account_id, livemode, created` as `$1` to `$4`); the others follow.
pub(crate) fn insert_query<'q>(sql: &'q str, id: &'q str, scope: &'q Scope, created: i64) -> Query<'q> {
    sqlx::query(sql).bind(id).bind(&scope.account_id).bind(scope.livemode).bind(created)
}

/// Runs an `UPDATE` of one object, whose statement ends with
/// `WHERE id = $n AND account_id = $n+1 AND livemode = $n+2`: binds those after the
/// values bound already.
pub(crate) async fn execute_scoped<'q>(
    conn: &mut Conn,
    query: Query<'q>,
    id: &'q str,
    scope: &'q Scope,
) -> Result<(), sqlx::Error> {
    query.bind(id).bind(&scope.account_id).bind(scope.livemode).execute(&mut *conn).await?;
    Ok(())
}

/// An `INSERT` of one object into a resource's table, for `Tx::defer`: the columns
/// every such table starts with (`id, account_id, livemode, created`), then `columns`,
/// each with its bound value's placeholder (or an expression).
pub(crate) fn scoped_insert(
    sql: &mut list::Sql,
    table: &str,
    id: &str,
    scope: &Scope,
    created: i64,
    columns: &[(&str, String)],
) -> String {
    let scoped = batch::scoped_row(sql, id.to_owned(), scope, created, |_| Vec::new());
    let mut text = String::with_capacity(64 + columns.len() * 24);
    text.push_str("INSERT INTO ");
    text.push_str(table);
    text.push(' ');
    let names = ["id", "account_id", "livemode", "created"].into_iter().chain(columns.iter().map(|(name, _)| *name));
    batch::push_list(&mut text, names);
    text.push_str(" VALUES ");
    batch::push_list(&mut text, scoped.iter().map(String::as_str).chain(columns.iter().map(|(_, v)| v.as_str())));
    text
}

/// An `UPDATE` of one object in its scope, for `Tx::defer`: `set` pairs each column
/// with its bound value's placeholder.
pub(crate) fn scoped_update(
    sql: &mut list::Sql,
    table: &str,
    set: &[(&str, String)],
    id: &str,
    scope: &Scope,
) -> String {
    let mut text = String::with_capacity(64 + set.len() * 24);
    text.push_str("UPDATE ");
    text.push_str(table);
    text.push_str(" SET ");
    for (i, (column, value)) in set.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str(column);
        text.push_str(" = ");
        text.push_str(value);
    }
    for (clause, value) in [
        (" WHERE id = ", sql.bind(id.to_owned())),
        (" AND account_id = ", sql.bind(scope.account_id.clone())),
        (" AND livemode = ", sql.bind(scope.livemode)),
    ] {
        text.push_str(clause);
        text.push_str(&value);
    }
    text
}

/// A read-write transaction that knows its backend's dialect. Derefs to a
/// connection, so every store function can run inside it.
pub struct Tx {
    /// The transaction's connection; `open` until it commits (dropped open, it is
    /// rolled back: sqlx's `Transaction` does the same, which is not used because it
    /// would give the connection back to sqlx's pool and its ping, see `pool`).
    conn: pool::Pooled,
    open: bool,
    backend: Backend,
    outbox: Arc<Notify>,
    wrote_outbox: bool,
    /// The enabled webhook endpoints read so far, per scope, so that a batch of events
    /// reads them once (see `webhooks::enabled_endpoints_in`); forgotten when this one
    /// changes an endpoint (`note_endpoint_change`).
    endpoints: Vec<(Scope, webhooks::EnabledEndpoints)>,
    /// The store's endpoints between transactions, and whether this one changed an
    /// endpoint: it then reads them itself, as it sees them, and the cache forgets them
    /// all once it commits.
    endpoint_cache: Arc<endpoint_cache::EndpointCache>,
    changed_endpoints: bool,
    /// The store's metrics, and the counts to add once this transaction commits.
    metrics: Metrics,
    on_commit: Vec<::metrics::Counter>,
    /// PostgreSQL: writes held back (`defer`), to go out together as one statement.
    deferred: Option<Deferred>,
    /// SQLite: this process's turn to write, held until the transaction ends. Declared
    /// after `conn`, so it is released after the transaction is rolled back on drop.
    _writer: Option<OwnedMutexGuard<()>>,
}

/// Writes held back in a transaction on PostgreSQL: their statements in order, each
/// with the table it writes, and their values bound into one list (`$1` onwards across
/// all of them).
struct Deferred {
    values: list::Sql,
    statements: Vec<(&'static str, String)>,
}

/// The table an `INSERT INTO t` or `UPDATE t` statement writes.
fn written_table(statement: &str) -> &str {
    let mut words = statement.split_whitespace();
    let table = match words.next() {
        Some("INSERT") => words.nth(1),
        Some("UPDATE") => words.next(),
        _ => None,
    };
    debug_assert!(table.is_some(), "a deferred write is an INSERT or an UPDATE: {statement}");
    table.unwrap_or_default()
}

/// Past this many bound values the deferred writes go out at once: PostgreSQL takes
/// at most 65,535 in one statement, and one more chunk of rows binds under 4,000.
const DEFERRED_MAX_VALUES: usize = 32_000;

/// The deferred statements as one: `WITH w1 AS (first), w2 AS (second) last`. The
/// writes of one statement see the same snapshot and cannot see each other's rows,
/// but its foreign keys are checked at its end, when every row is in. They run in an
/// order PostgreSQL does not promise, so one statement writes each table at most once
/// (see `Tx::defer`): the rows of a table keep the order they were written in.
fn combine(statements: &[(&'static str, String)]) -> String {
    let Some(((_, last), before)) = statements.split_last() else { return String::new() };
    if before.is_empty() {
        return last.clone();
    }
    let mut text = String::with_capacity(statements.iter().map(|(_, s)| s.len() + 12).sum());
    text.push_str("WITH ");
    for (i, (_, statement)) in before.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push('w');
        text.push_str(itoa::Buffer::new().format(i + 1));
        text.push_str(" AS (");
        text.push_str(statement);
        text.push(')');
    }
    text.push(' ');
    text.push_str(last);
    text
}

impl Tx {
    /// `FOR UPDATE` where the backend has row locks; SQLite's write transaction
    /// (`BEGIN IMMEDIATE`) already holds the whole database.
    pub fn lock_clause(&self) -> &'static str {
        self.backend.lock_clause()
    }

    /// A row lock for changing non-key columns (`FOR NO KEY UPDATE` on PostgreSQL):
    /// it does not conflict with the key-share locks that inserts referencing the row
    /// take, so writers that both insert children and then update the parent cannot
    /// deadlock.
    pub fn lock_no_key_clause(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " FOR NO KEY UPDATE",
            Backend::Sqlite => "",
        }
    }

    /// `FOR UPDATE SKIP LOCKED` for work queues on PostgreSQL, so that replicas
    /// take different rows; SQLite has one writer, which already takes them in turn.
    pub fn skip_locked_clause(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Notes that this transaction queued webhook deliveries, so that committing it
    /// wakes the dispatcher at once instead of at its next poll.
    pub fn note_outbox_write(&mut self) {
        self.wrote_outbox = true;
    }

    /// Adds one to the counter `pick` chooses once this transaction commits, so that a
    /// rolled-back decision is not counted.
    pub fn count_on_commit(&mut self, pick: impl FnOnce(&Metrics) -> ::metrics::Counter) {
        if self.metrics.is_on() {
            let counter = pick(&self.metrics);
            self.on_commit.push(counter);
        }
    }

    /// Called by every write to webhook endpoints (see `changed_endpoints`).
    pub(crate) fn note_endpoint_change(&mut self) {
        self.changed_endpoints = true;
        self.endpoints.clear();
    }

    /// Runs a write whose outcome nothing in the transaction reads: `build` binds its
    /// values into `sql` and returns its text. SQLite runs it at once (a statement
    /// there costs no round trip). PostgreSQL holds it back to go out, with the writes
    /// after it, as one statement at the next `flush`: the outbox's write, which every
    /// state change ends with, or the commit. A database error of a held-back write
    /// (a unique index, say) is then returned by the flush, mapped by its constraint's
    /// name as it would be at once. Until then the transaction's own reads would not
    /// see it, so reading through the connection with writes held back is a bug
    /// (asserted in debug builds).
    pub(crate) async fn defer(
        &mut self,
        table: &'static str,
        build: impl FnOnce(&mut list::Sql) -> String,
    ) -> Result<(), sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                let mut sql = list::Sql::new("");
                let text = build(&mut sql);
                sqlx::query_with(&text, sql.args).execute(&mut *self.conn).await?;
            }
            Backend::Postgres => {
                // A second write to a table goes out after the first (see `combine`).
                if self.deferred.as_ref().is_some_and(|d| d.statements.iter().any(|(t, _)| *t == table)) {
                    self.flush().await?;
                }
                let deferred = self
                    .deferred
                    .get_or_insert_with(|| Deferred { values: list::Sql::new(""), statements: Vec::new() });
                let text = build(&mut deferred.values);
                debug_assert_eq!(written_table(&text), table, "{text}");
                deferred.statements.push((table, text));
                if deferred.values.bound() > DEFERRED_MAX_VALUES {
                    self.flush().await?;
                }
            }
        }
        Ok(())
    }

    /// Sends the writes held back by `defer`, as one statement.
    pub async fn flush(&mut self) -> Result<(), sqlx::Error> {
        if let Some(deferred) = self.deferred.take() {
            let text = combine(&deferred.statements);
            sqlx::query_with(&text, deferred.values.args).execute(&mut *self.conn).await?;
        }
        Ok(())
    }

    /// The connection, for a read that no write held back by `defer` can change (the
    /// outbox's read of webhook endpoints, which are never deferred).
    pub(crate) fn conn_beside_deferred(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }

    pub async fn commit(mut self) -> Result<(), CommitError> {
        // Every state change flushes with its outbox write; what is left (a write no
        // event follows) goes before the COMMIT, and its failure is the commit's.
        self.flush().await.map_err(CommitError)?;
        let committed = TransactionManagerOf::commit(&mut *self.conn).await;
        // Whether or not the COMMIT answered: one that failed may still have taken effect.
        if self.changed_endpoints {
            self.endpoint_cache.invalidate();
        }
        committed.map_err(CommitError)?;
        self.open = false;
        self.conn.release_now();
        if self.wrote_outbox {
            self.outbox.notify_one();
        }
        for counter in &self.on_commit {
            counter.increment(1);
        }
        Ok(())
    }
}

/// A failed COMMIT. Apart from the error itself: when the connection broke during it,
/// whether the transaction took effect is unknown, so it is never retried as a
/// transaction that failed before its commit would be.
#[derive(Debug, thiserror::Error)]
#[error("commit failed: {0}")]
pub struct CommitError(pub sqlx::Error);

/// sqlx's transaction statements for the `Any` driver (`BEGIN`, `COMMIT`, a rollback).
type TransactionManagerOf = <sqlx::Any as sqlx::Database>::TransactionManager;

impl Drop for Tx {
    fn drop(&mut self) {
        if self.open {
            // Queued on the connection, and sent by the ping of sqlx's pool, which an
            // unreleased connection goes back to.
            TransactionManagerOf::start_rollback(&mut *self.conn);
        }
    }
}

impl std::ops::Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        debug_assert!(self.deferred.is_none(), "the connection used while writes are held back (Tx::defer)");
        &mut self.conn
    }
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// `FOR UPDATE` where the backend has row locks (see [`Tx::lock_clause`]).
    pub fn lock_clause(self) -> &'static str {
        match self {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }
}

/// A statement's text for each backend, built on first use: a statement assembled from
/// column lists and dialect clauses costs thousands of instructions to format, once per
/// request when built in the call.
pub(crate) struct PerBackend {
    build: fn(Backend) -> String,
    postgres: OnceLock<String>,
    sqlite: OnceLock<String>,
}

impl PerBackend {
    pub(crate) const fn new(build: fn(Backend) -> String) -> Self {
        PerBackend { build, postgres: OnceLock::new(), sqlite: OnceLock::new() }
    }

    pub(crate) fn get(&self, backend: Backend) -> &str {
        let text = match backend {
            Backend::Postgres => &self.postgres,
            Backend::Sqlite => &self.sqlite,
        };
        text.get_or_init(|| (self.build)(backend))
    }
}

/// A handle on the database: a connection pool and its dialect. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Signalled after a commit that queued webhook deliveries.
    outbox: Arc<Notify>,
    /// SQLite: one write transaction at a time in this process, first come first served.
    writer: Arc<tokio::sync::Mutex<()>>,
    acquire_timeout: std::time::Duration,
    /// When a connection of this pool was last found broken (see `note_connection_lost`).
    lost: Arc<LostConnections>,
    /// This process's identity as the holder of idempotency keys.
    holder: holder::SharedHolder,
    /// The process's metrics, shared by everything that uses this store.
    metrics: Metrics,
    /// Enabled webhook endpoints per scope, between transactions (off until made live).
    endpoint_cache: Arc<endpoint_cache::EndpointCache>,
    /// PostgreSQL: connections kept between uses without sqlx's ping (see [`pool`]).
    stash: Option<Arc<pool::Stash>>,
}

/// The last time a pooled connection was found broken. A database restart or failover
/// breaks every connection at once, so after one is found broken, the idle
/// connections opened before it are closed instead of handed out: the next request
/// gets a fresh connection rather than the next dead one. In steady operation this
/// costs one atomic read per checkout, where a ping would cost a round trip.
struct LostConnections {
    /// The pool's start, the zero of `at_nanos`.
    base: std::time::Instant,
    /// Nanoseconds after `base` of the last loss, or 0 for none.
    at_nanos: std::sync::atomic::AtomicU64,
}

impl LostConnections {
    fn new() -> Self {
        LostConnections { base: std::time::Instant::now(), at_nanos: std::sync::atomic::AtomicU64::new(0) }
    }

    fn note(&self) {
        let nanos = (self.base.elapsed().as_nanos() as u64).max(1);
        self.at_nanos.fetch_max(nanos, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a connection of this `age` was opened before the last loss.
    fn predates_loss(&self, age: Duration) -> bool {
        let lost = self.at_nanos.load(std::sync::atomic::Ordering::Relaxed);
        if lost == 0 {
            return false;
        }
        let opened = self.base.elapsed().saturating_sub(age);
        opened.as_nanos() as u64 <= lost
    }
}

/// The account and mode every platform query is scoped to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub account_id: String,
    pub livemode: bool,
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    pub max_connections: u32,
    /// How long a request waits for a connection before it is answered 503.
    pub acquire_timeout: Duration,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        StoreOptions { url: url.into(), max_connections: 16, acquire_timeout: Duration::from_secs(5) }
    }
}

impl Store {
    /// Opens a pool on `postgres://` or `sqlite:` URLs.
    pub async fn connect(opts: &StoreOptions) -> Result<Store, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let backend = if opts.url.starts_with("postgres://") || opts.url.starts_with("postgresql://") {
            Backend::Postgres
        } else if opts.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(sqlx::Error::Configuration("DATABASE_URL must start with postgres:// or sqlite:".into()));
        };
        let connect_opts = AnyConnectOptions::from_str(&opts.url)?;
        let mut pool_opts = AnyPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.acquire_timeout)
            // No ping before every checkout: it cost a round trip to the database per
            // acquire (two per request). A connection that died is found on its next
            // use instead, answered 503, and replaced by the pool.
            .test_before_acquire(false);
        let lost = Arc::new(LostConnections::new());
        let lost_check = lost.clone();
        pool_opts = pool_opts.before_acquire(move |_conn, meta| {
            let fresh = !lost_check.predates_loss(meta.age);
            Box::pin(async move { Ok(fresh) })
        });
        if backend == Backend::Sqlite {
            let in_memory = opts.url.contains(":memory:") || opts.url.contains("mode=memory");
            // Every connection to `sqlite::memory:` is a database of its own.
            if in_memory {
                pool_opts = pool_opts.max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None);
            }
            pool_opts = pool_opts.after_connect(|conn, _meta| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;").await?;
                    Ok(())
                })
            });
        }
        let pool = pool_opts.connect_with(connect_opts).await?;
        Ok(Store {
            pool,
            backend,
            outbox: Arc::new(Notify::new()),
            writer: Arc::new(tokio::sync::Mutex::new(())),
            acquire_timeout: opts.acquire_timeout,
            lost,
            holder: Arc::new(holder::Holder::new(backend, &opts.url)),
            metrics: Metrics::new(),
            endpoint_cache: Arc::default(),
            stash: (backend == Backend::Postgres).then(|| Arc::new(pool::Stash::new(opts.max_connections))),
        })
    }

    /// This store with `metrics` in place of its own (`Metrics::off()` turns them off).
    pub fn with_metrics(mut self, metrics: Metrics) -> Store {
        self.metrics = metrics;
        self
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The enabled webhook endpoints kept between transactions (see [`endpoint_cache`]).
    pub fn endpoint_cache(&self) -> &endpoint_cache::EndpointCache {
        &self.endpoint_cache
    }

    /// The pool's connections: (in use, idle). Counted by the pool, no query.
    pub fn pool_connections(&self) -> (usize, usize) {
        // The store's kept connections are idle, though checked out of sqlx's pool.
        let idle = self.pool.num_idle() + self.stash.as_ref().map_or(0, |s| s.idle_count());
        let size = self.pool.size() as usize;
        (size - idle.min(size), idle)
    }

    /// The connections kept between uses, idle (see [`pool`]; none on SQLite).
    pub fn kept_connections(&self) -> usize {
        self.stash.as_ref().map_or(0, |s| s.idle_count())
    }

    /// This process's identity as a holder of idempotency keys (see [`holder`]).
    pub(crate) async fn holder_id(&self) -> Option<i64> {
        self.holder.id().await
    }

    /// Whether the process that holds an idempotency key under `holder` is gone.
    pub(crate) async fn holder_is_gone(&self, conn: &mut Conn, holder: i64) -> Result<bool, sqlx::Error> {
        self.holder.is_gone(conn, holder).await
    }

    /// Records that a connection of this pool was found broken: the idle connections
    /// opened before now are closed at their next checkout instead of being used.
    pub fn note_connection_lost(&self) {
        self.lost.note();
        if let Some(stash) = &self.stash {
            stash.forget_all();
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Wakes when a committed transaction has queued webhook deliveries in this process.
    pub fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox.clone()
    }

    /// sqlx's pool, for statements outside the store's own checkouts (tools, tests):
    /// the connections the store kept go back to it first, so that it has them all.
    pub fn pool(&self) -> &AnyPool {
        if let Some(stash) = &self.stash {
            stash.give_back();
        }
        &self.pool
    }

    /// Applies the migrations of this backend that have not run yet.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self.backend {
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&self.pool).await,
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&self.pool).await,
        }
    }

    /// Starts a read-write transaction. SQLite takes its write lock at once
    /// (`BEGIN IMMEDIATE`), so two writers wait for each other instead of failing
    /// with `database is locked` halfway through.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        let (begin, writer) = match self.backend {
            Backend::Postgres => (None, None),
            Backend::Sqlite => {
                // Writers take turns in arrival order here, rather than in SQLite's
                // busy handler, which polls with back-off and lets a steady stream of
                // short transactions (the engine's) starve a request for seconds.
                let turn = tokio::time::timeout(self.acquire_timeout, self.writer.clone().lock_owned())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)?;
                (Some("BEGIN IMMEDIATE".into()), Some(turn))
            }
        };
        let mut conn = self.acquire().await?;
        // Not released if BEGIN fails: sqlx's pool checks the connection.
        TransactionManagerOf::begin(&mut *conn, begin).await?;
        Ok(Tx {
            conn,
            open: true,
            backend: self.backend,
            outbox: self.outbox.clone(),
            wrote_outbox: false,
            endpoints: Vec::new(),
            endpoint_cache: self.endpoint_cache.clone(),
            changed_endpoints: false,
            metrics: self.metrics.clone(),
            on_commit: Vec::new(),
            deferred: None,
            _writer: writer,
        })
    }

    /// A connection outside a transaction. `release` it once its last statement has
    /// answered (`run` does), so that the next checkout takes it without a ping (see
    /// [`pool`]).
    pub async fn acquire(&self) -> Result<pool::Pooled, sqlx::Error> {
        match &self.stash {
            Some(stash) => stash.checkout(&self.pool, self.acquire_timeout).await,
            None => Ok(pool::Pooled::unkept(self.pool.acquire().await?)),
        }
    }

    /// Runs statements on one connection outside a transaction (reads, and writes that
    /// stand alone); the connection is released if they succeed.
    pub async fn run<T, E: From<sqlx::Error>>(
        &self,
        statements: impl AsyncFnOnce(&mut Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.acquire().await?;
        let done = statements(&mut conn).await;
        if done.is_ok() {
            conn.release();
        }
        done
    }

    /// Whether the store answers: for `/readyz`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        self.run(async |conn| sqlx::query("SELECT 1").execute(conn).await.map(|_| ())).await
    }

    pub async fn close(&self) {
        if let Some(stash) = &self.stash {
            stash.close();
        }
        self.pool.close().await;
    }
}

/// The scope of a row read across accounts (its `account_id` and `livemode` columns).
pub(crate) fn row_scope(row: &AnyRow) -> Result<Scope, sqlx::Error> {
    Ok(Scope { account_id: row.try_get("account_id")?, livemode: get_bool(row, "livemode")? })
}

/// A struct read from row `r`: a `field` alone from the column of its name, a
/// `field = "column"` from that column, a `field: value` as given (booleans, JSON and
/// enums need their own reading).
macro_rules! read_row {
    ($r:ident, $ty:ident { $($field:ident $(= $column:literal)? $(: $value:expr)?),* $(,)? }) => {
        $ty { $($field: $crate::store::read_row!(@value $r, $field $(= $column)? $(: $value)?)),* }
    };
    (@value $r:ident, $field:ident) => {
        sqlx::Row::try_get($r, stringify!($field))?
    };
    (@value $r:ident, $field:ident = $column:literal) => {
        sqlx::Row::try_get($r, $column)?
    };
    (@value $r:ident, $field:ident : $value:expr) => {
        $value
    };
}
pub(crate) use read_row;

/// Reads a boolean column: PostgreSQL has a boolean type, SQLite stores 0 or 1.
pub(crate) fn get_bool(row: &AnyRow, col: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<bool, _>(col) {
        Ok(b) => Ok(b),
        Err(_) => row.try_get::<i64, _>(col).map(|i| i != 0),
    }
}

/// Reads a JSON document stored as text.
pub(crate) fn get_json<T: serde::de::DeserializeOwned>(row: &AnyRow, col: &str) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Serialises a value for a TEXT column.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("metadata and objects serialise")
}

/// The unique constraints of the schema (named alike in both backends' migrations).
/// `crate::error` maps each to what a client is told when a write violates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueConstraint {
    /// One live claim per invoice and guarantee (a denied one does not count).
    ClaimPerInvoice,
    /// One payout per claim.
    PayoutPerClaim,
    /// API keys are looked up by hash.
    ApiKeyHash,
    /// One recovery per paid claim.
    RecoveryPerClaim,
}

impl UniqueConstraint {
    pub const ALL: [UniqueConstraint; 4] = [
        UniqueConstraint::ClaimPerInvoice,
        UniqueConstraint::PayoutPerClaim,
        UniqueConstraint::ApiKeyHash,
        UniqueConstraint::RecoveryPerClaim,
    ];

    /// Its name in the migrations, which PostgreSQL reports.
    pub const fn name(self) -> &'static str {
        match self {
            UniqueConstraint::ClaimPerInvoice => "claims_guarantee_invoice_key",
            UniqueConstraint::PayoutPerClaim => "payouts_claim_id_key",
            UniqueConstraint::ApiKeyHash => "api_keys_key_hash_key",
            UniqueConstraint::RecoveryPerClaim => "recoveries_claim_id_key",
        }
    }

    /// Its columns as SQLite reports them: SQLite names no constraint, only the
    /// columns (`UNIQUE constraint failed: claims.guarantee_id, claims.invoice_id`).
    const fn sqlite_columns(self) -> &'static str {
        match self {
            UniqueConstraint::ClaimPerInvoice => "claims.guarantee_id, claims.invoice_id",
            UniqueConstraint::PayoutPerClaim => "payouts.claim_id",
            UniqueConstraint::ApiKeyHash => "api_keys.key_hash",
            UniqueConstraint::RecoveryPerClaim => "recoveries.claim_id",
        }
    }
}

/// The unique constraint a database error violated, on either backend: PostgreSQL
/// by the constraint's name, SQLite by the columns in its message.
pub fn violated_unique(err: &sqlx::Error) -> Option<UniqueConstraint> {
    let db = err.as_database_error()?;
    if db.kind() != sqlx::error::ErrorKind::UniqueViolation {
        return None;
    }
    match db.constraint() {
        Some(name) => UniqueConstraint::ALL.into_iter().find(|c| c.name() == name),
        None => {
            let columns = db.message().strip_prefix("UNIQUE constraint failed: ")?;
            UniqueConstraint::ALL.into_iter().find(|c| c.sqlite_columns() == columns)
        }
    }
}

/// The database file of a `sqlite:` URL, or `None` for PostgreSQL and in-memory databases.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}

/// Held by the one `serve` process of a SQLite database, for as long as it runs: the
/// engine assumes it is the only writer claiming work, so a second server is refused.
/// Other commands (`migrate`, `accounts create`) do not take it.
#[derive(Debug)]
pub struct ServeLock {
    _file: std::fs::File,
}

impl ServeLock {
    /// Takes the lock beside `db_file`, or says which file another server holds.
    pub fn acquire(db_file: &std::path::Path) -> Result<ServeLock, String> {
        let lock_path = db_file.with_extension("db.serve-lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(ServeLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(format!(
                "another casapay server is already running on {} (lock {}); \
                 run one server per SQLite file, or use PostgreSQL for several replicas",
                db_file.display(),
                lock_path.display()
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", lock_path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_opened_before_a_loss_are_not_handed_out() {
        let lost = LostConnections::new();
        std::thread::sleep(Duration::from_millis(2));
        assert!(!lost.predates_loss(Duration::from_millis(1)), "no loss yet");
        lost.note();
        std::thread::sleep(Duration::from_millis(2));
        assert!(lost.predates_loss(lost.base.elapsed()), "opened when the pool started, before the loss");
        assert!(!lost.predates_loss(Duration::from_micros(100)), "opened after it");
    }

    #[test]
    fn unique_constraints_are_in_both_migrations() {
        let migrations = [
            concat!(
                include_str!("../../migrations/postgres/0001_init.sql"),
                include_str!("../../migrations/postgres/0016_recoveries.sql")
            ),
            concat!(
                include_str!("../../migrations/sqlite/0001_init.sql"),
                include_str!("../../migrations/sqlite/0016_recoveries.sql")
            ),
        ];
        for c in UniqueConstraint::ALL {
            for m in migrations {
                assert!(m.contains(c.name()), "{}", c.name());
            }
        }
    }

    #[test]
    fn write_statements_read_as_written_by_hand() {
        let scope = Scope { account_id: "acct_1".into(), livemode: false };
        let mut sql = list::Sql::new("");
        let amount = sql.bind(5_i64);
        let insert =
            scoped_insert(&mut sql, "things", "thg_1", &scope, 7, &[("amount", amount), ("kind", "'x'".into())]);
        assert_eq!(
            insert,
            "INSERT INTO things (id, account_id, livemode, created, amount, kind) VALUES ($2, $3, $4, $5, $1, 'x')"
        );
        let status = sql.bind("open");
        let update = scoped_update(&mut sql, "things", &[("status", status), ("n", "n + 1".into())], "thg_1", &scope);
        assert_eq!(
            update,
            "UPDATE things SET status = $6, n = n + 1 WHERE id = $7 AND account_id = $8 AND livemode = $9"
        );
        assert_eq!(sql.bound(), 9);
        let one = [("things", insert.clone())];
        assert_eq!(combine(&one), insert);
        let three = [
            ("a", "INSERT INTO a VALUES (1)".into()),
            ("b", "UPDATE b SET x = 1".into()),
            ("c", "INSERT INTO c VALUES (2)".into()),
        ];
        assert_eq!(
            combine(&three),
            "WITH w1 AS (INSERT INTO a VALUES (1)), w2 AS (UPDATE b SET x = 1) INSERT INTO c VALUES (2)"
        );
        assert_eq!(combine(&[]), "");
    }

    #[test]
    fn sqlite_file_of_urls() {
        assert_eq!(sqlite_file("sqlite://./casapay.db?mode=rwc"), Some("./casapay.db".into()));
        assert_eq!(sqlite_file("sqlite:/data/casapay.db"), Some("/data/casapay.db".into()));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://x.db?mode=memory"), None);
        assert_eq!(sqlite_file("postgres://localhost/x"), None);
    }

    #[test]
    fn a_second_server_on_one_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("casapay_lock_{}", crate::ids::random_secret(8)));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("casapay.db");
        let first = ServeLock::acquire(&db).expect("first server");
        let err = ServeLock::acquire(&db).expect_err("second server");
        assert!(err.contains("another casapay server is already running"), "{err}");
        drop(first);
        ServeLock::acquire(&db).expect("free again once the first has stopped");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
