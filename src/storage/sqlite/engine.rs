//! How the SQLite backend talks to SQLite: rusqlite connections, each confined to one thread
//! at a time, so a store call costs at most one thread hand-off. sqlx-sqlite ran every
//! statement on a worker thread behind a channel, two wake-ups per statement, and that was
//! about half of Mayfly's CPU under load (BENCHMARKS.md, "What bounds Mayfly").
//!
//! - **Reads** run on the calling thread, on a connection from a small pool, inside one
//!   deferred transaction (one snapshot). They are indexed lookups of microseconds; WAL
//!   readers never wait for the writer. Scans (admin listings, job queries) run on tokio's
//!   blocking pool instead, so they cannot stall a runtime thread.
//! - **Writes** go to the one writer thread. It takes every write that is waiting, runs each in
//!   its own savepoint inside one `BEGIN IMMEDIATE` transaction, commits once (a durable
//!   commit, `synchronous=FULL`), and only then answers each caller: group commit. A write
//!   that fails rolls back its savepoint and nothing else; a failed commit fails the batch.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::storage::rows::other;
use crate::storage::{StoreError, StoreResult};

/// How long a connection waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The most writes one commit carries: bounds how long the first caller of a batch waits for
/// the last write of it to run.
const MAX_BATCH: usize = 512;
/// Prepared statements kept per connection; the store has about a hundred distinct ones.
const STATEMENT_CACHE: usize = 128;
/// Page cache per connection, in KiB (SQLite's negative `cache_size`): the hot B-tree pages of
/// a large database stay in memory without letting RSS grow past the issue 9 bound.
const WRITER_CACHE_KIB: i64 = 16 * 1024;
const READER_CACHE_KIB: i64 = 4 * 1024;
/// Readers copy pages with pread rather than mapping the file. In WAL mode each read
/// transaction that follows a commit (nearly every one under load) empties the reader's page
/// cache, and with a mapping also munmaps the whole file (`unixUnfetch`): a TLB shoot-down
/// across the cores, then a page fault per page touched. Mapped pages also count in RSS: 303
/// MiB at start on a 1M-certificate database against 54 MiB without (BENCHMARKS.md).
const MMAP_BYTES: i64 = 0;

/// Where the database lives, parsed from a `sqlite:` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// A file; `create` unless the URL sets a `mode` without `c`.
    File {
        path: PathBuf,
        create: bool,
        read_only: bool,
    },
    /// A private database that lives as long as the store.
    Memory,
}

impl Target {
    /// Parses the URL forms sqlx accepted: `sqlite::memory:`, `sqlite:path`, `sqlite://path`,
    /// `sqlite:///absolute/path`, each with an optional `?mode=ro|rw|rwc|memory`.
    pub(super) fn parse(url: &str) -> StoreResult<Self> {
        let rest = url
            .strip_prefix("sqlite:")
            .ok_or_else(|| other(format!("not a sqlite: URL: {url:?}")))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let path = path.strip_prefix("//").unwrap_or(path);
        let mut mode = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("mode", value)) => mode = Some(value),
                // sqlx's other options (cache, immutable, vfs) do not apply here.
                _ => return Err(other(format!("unsupported SQLite URL option {pair:?}"))),
            }
        }
        if path == ":memory:" || mode == Some("memory") {
            return Ok(Target::Memory);
        }
        if path.is_empty() {
            return Err(other("the SQLite URL names no file"));
        }
        let (create, read_only) = match mode {
            None | Some("rwc") => (true, false),
            Some("rw") => (false, false),
            Some("ro") => (false, true),
            Some(other_mode) => return Err(other(format!("unknown SQLite mode {other_mode:?}"))),
        };
        Ok(Target::File {
            path: PathBuf::from(percent_decode(path)?),
            create,
            read_only,
        })
    }

    fn open(&self, role: Role) -> StoreResult<Connection> {
        let connection = match self {
            Target::Memory => Connection::open_in_memory()?,
            Target::File {
                path,
                create,
                read_only,
            } => {
                let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
                if *read_only || role == Role::Reader {
                    flags |= OpenFlags::SQLITE_OPEN_READ_ONLY;
                } else {
                    flags |= OpenFlags::SQLITE_OPEN_READ_WRITE;
                    if *create {
                        flags |= OpenFlags::SQLITE_OPEN_CREATE;
                    }
                }
                Connection::open_with_flags(path, flags)?
            }
        };
        connection.busy_timeout(BUSY_TIMEOUT)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        match role {
            Role::Writer => {
                if *self != Target::Memory {
                    // WAL: readers see the last commit while the writer works.
                    connection.pragma_update(None, "journal_mode", "WAL")?;
                }
                // Durable: a commit is on disk before any caller of its batch hears of it.
                connection.pragma_update(None, "synchronous", "FULL")?;
                connection.pragma_update(None, "foreign_keys", true)?;
                connection.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
                // Each write runs in a savepoint, whose journal would otherwise be a temporary
                // file created and deleted for every batch.
                connection.pragma_update(None, "temp_store", "MEMORY")?;
            }
            Role::Reader => {
                connection.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
                connection.pragma_update(None, "mmap_size", MMAP_BYTES)?;
            }
        }
        Ok(connection)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    Reader,
}

/// The connections of one store: a pool of readers and the writer thread.
pub(super) struct Engine {
    target: Target,
    /// Idle read connections; empty for an in-memory database, whose reads go to the writer
    /// (another connection would see another database).
    readers: Mutex<Vec<Connection>>,
    max_readers: usize,
    /// `None` once closed.
    writer: Mutex<Option<mpsc::UnboundedSender<Box<dyn Write>>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
}

impl Engine {
    /// Opens the writer connection, runs `prepare` on it (the migrations) before any other
    /// connection exists, and starts the writer thread.
    pub(super) fn open(
        target: Target,
        max_connections: u32,
        prepare: impl FnOnce(&mut Connection) -> StoreResult<()>,
    ) -> StoreResult<Self> {
        let mut writer = target.open(Role::Writer)?;
        prepare(&mut writer)?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let writer_thread = std::thread::Builder::new()
            .name("mayfly-sqlite-writer".into())
            .spawn(move || write_loop(&writer, receiver))
            .map_err(other)?;
        Ok(Self {
            target,
            readers: Mutex::new(Vec::new()),
            // The writer is one of the connections `database.max_connections` allows.
            max_readers: max_connections.saturating_sub(1).max(1) as usize,
            writer: Mutex::new(Some(sender)),
            writer_thread: Mutex::new(Some(writer_thread)),
            closed: AtomicBool::new(false),
        })
    }

    /// Runs `work` on a read connection in one snapshot, on this thread; for point reads.
    pub(super) async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        if self.target == Target::Memory {
            return self.write(work).await;
        }
        self.read_here(work)
    }

    /// As `read`, on tokio's blocking pool: for queries that may scan many rows.
    pub(super) async fn scan<T, F>(self: &std::sync::Arc<Self>, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        if self.target == Target::Memory {
            return self.write(work).await;
        }
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.read_here(work))
            .await
            .map_err(other)?
    }

    /// Queues `work` for the writer; resolves once the batch that ran it is committed.
    pub(super) async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Write> = Box::new(Pending {
            work: Some(work),
            result: None,
            reply,
        });
        {
            let writer = lock(&self.writer);
            let sender = writer.as_ref().ok_or_else(closed)?;
            sender.send(job).map_err(|_| closed())?;
        }
        answer.await.map_err(|_| closed())?
    }

    /// Stops the writer after the writes already queued, and drops every connection; later
    /// calls fail.
    pub(super) async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        lock(&self.writer).take();
        lock(&self.readers).clear();
        let thread = lock(&self.writer_thread).take();
        if let Some(thread) = thread {
            // The writer ends once its channel is empty and closed.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    fn read_here<T>(&self, work: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(closed());
        }
        let pooled = lock(&self.readers).pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => self.target.open(Role::Reader)?,
        };
        connection.prepare_cached("BEGIN")?.execute([])?;
        let result = work(&connection);
        let ended = connection
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]));
        // A connection whose transaction did not end cleanly is not reused.
        if ended.is_ok() && !self.closed.load(Ordering::SeqCst) {
            let mut readers = lock(&self.readers);
            if readers.len() < self.max_readers {
                readers.push(connection);
            }
        }
        let value = result?;
        ended?;
        Ok(value)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a push, a pop or a take: a panic cannot leave the data
    // half-changed, so a poisoned lock is still sound.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn closed() -> StoreError {
    other("the database is closed")
}

/// One queued write: runs in the batch's transaction, then hears the batch's fate.
trait Write: Send {
    fn run(&mut self, connection: &Connection);
    /// `commit` is the batch's commit error, if the commit failed.
    fn deliver(self: Box<Self>, commit: Option<&str>);
}

struct Pending<T, F> {
    work: Option<F>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Write for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> StoreResult<T> + Send,
{
    fn run(&mut self, connection: &Connection) {
        if let Some(work) = self.work.take() {
            self.result = Some(in_savepoint(connection, work));
        }
    }

    fn deliver(self: Box<Self>, commit: Option<&str>) {
        let result = match (self.result, commit) {
            // A write that failed on its own reports its own error (its savepoint was rolled
            // back either way).
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(_)), Some(e)) | (None, Some(e)) => {
                Err(other(format!("the transaction did not commit: {e}")))
            }
            (Some(Ok(value)), None) => Ok(value),
            (None, None) => Err(other("the write did not run")),
        };
        // The caller may have gone away (its request was cancelled); the write stands.
        let _ = self.reply.send(result);
    }
}

fn in_savepoint<T>(
    connection: &Connection,
    work: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    connection.prepare_cached("SAVEPOINT w")?.execute([])?;
    let result = catch_unwind(AssertUnwindSafe(|| work(connection)))
        .unwrap_or_else(|_| Err(other("a database write panicked")));
    if result.is_err() {
        connection.prepare_cached("ROLLBACK TO w")?.execute([])?;
    }
    connection.prepare_cached("RELEASE w")?.execute([])?;
    result
}

fn write_loop(connection: &Connection, mut queue: mpsc::UnboundedReceiver<Box<dyn Write>>) {
    let mut batch: Vec<Box<dyn Write>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcome = run_batch(connection, &mut batch);
        // Writes per commit is what group commit buys; the two counters give it.
        metrics::counter!("mayfly_db_commits_total").increment(1);
        metrics::counter!("mayfly_db_writes_total").increment(batch.len() as u64);
        let commit_error = outcome.err();
        for job in batch.drain(..) {
            job.deliver(commit_error.as_deref());
        }
    }
}

fn run_batch(connection: &Connection, batch: &mut [Box<dyn Write>]) -> Result<(), String> {
    // IMMEDIATE takes the write lock up front, so waiting for another process honours
    // busy_timeout instead of failing on the upgrade.
    connection
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| e.to_string())?;
    for job in batch.iter_mut() {
        job.run(connection);
    }
    if let Err(e) = connection.execute_batch("COMMIT") {
        let _ = connection.execute_batch("ROLLBACK");
        return Err(e.to_string());
    }
    Ok(())
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
            rusqlite::Error::SqliteFailure(failure, message)
                if failure.code == ErrorCode::ConstraintViolation =>
            {
                let message = message.as_deref().unwrap_or_default();
                if let Some(key) = message.strip_prefix("UNIQUE constraint failed: ") {
                    StoreError::Conflict(key.to_owned())
                } else if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY {
                    // Only inserts reference other rows, so a broken reference means the row
                    // it names (an account, an order, an authorization) does not exist.
                    StoreError::NotFound
                } else {
                    StoreError::Other(Box::new(e))
                }
            }
            _ => StoreError::Other(Box::new(e)),
        }
    }
}

/// `%XX` escapes in the path of a URL, as sqlx decoded them.
fn percent_decode(path: &str) -> StoreResult<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = path
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| other(format!("bad %-escape in the SQLite path {path:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_as_sqlx_read_them() {
        let file = |path: &str, create, read_only| Target::File {
            path: PathBuf::from(path),
            create,
            read_only,
        };
        let cases = [
            ("sqlite::memory:", Target::Memory),
            ("sqlite://x.db?mode=memory", Target::Memory),
            (
                "sqlite:///var/lib/m.db?mode=rwc",
                file("/var/lib/m.db", true, false),
            ),
            ("sqlite://./d/m.db", file("./d/m.db", true, false)),
            ("sqlite:m.db?mode=rw", file("m.db", false, false)),
            ("sqlite:/a%20b/m.db?mode=ro", file("/a b/m.db", false, true)),
        ];
        for (url, expected) in cases {
            assert_eq!(Target::parse(url).expect(url), expected, "{url}");
        }
        for bad in [
            "postgres://x",
            "sqlite:",
            "sqlite:m.db?mode=x",
            "sqlite:m.db?cache=shared",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
