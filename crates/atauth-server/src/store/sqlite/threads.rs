//! The SQLite store's own threads: one writer that group-commits, and a few readers.
//!
//! Why not `spawn_blocking` per call: each call then pays a blocking-pool hand-off, and each write
//! its own WAL commit. Profiled under load (docs/BENCHMARKS.md), that was about 100 µs of kernel time
//! per request, more than all of SQLite's own work, and the pool's idle threads and their malloc
//! arenas inflated RSS.
//!
//! **Writer.** One thread owns the write connection. It takes the next job, then every job already
//! queued (up to [`MAX_BATCH`]), and runs them in one `BEGIN IMMEDIATE … COMMIT`, each inside its
//! own `SAVEPOINT`: a job that fails is rolled back alone, the others still commit. Callers are
//! answered only after the `COMMIT`, so a write that was acknowledged is durable (as far as WAL with
//! `synchronous=NORMAL` promises) and visible to every reader. Under load many requests share one
//! commit; an idle server commits each job at once, so latency does not wait for a batch to fill.
//!
//! **Readers.** [`READERS`] threads, each with its own connection, take read jobs from one shared
//! queue. WAL lets them read while the writer writes.
//!
//! A job that panics is treated as failed (its savepoint rolled back) and its caller gets an error;
//! the thread lives on. The threads end when the store's last clone is dropped: the queues close,
//! queued jobs finish, and the connections close.
//!
//! Jobs are plain closures over a `Connection`, so the SQL code reads as it would inline, minus its
//! own `BEGIN`/`COMMIT`. Measured and not kept (docs/BENCHMARKS.md): reads inline on the runtime
//! worker (`block_in_place`: more CPU, more threads), a bigger page cache, `mmap_size`, 1 KiB pages,
//! and checkpoints on a thread of their own (the WAL then never
//! restarts under continuous writes, because only a checkpoint on the appending connection lets
//! SQLite wrap it around: 1.1 GB in 12 s). `locking_mode=EXCLUSIVE` would drop the shared-memory
//! locks but forbid the operator commands that open the database next to a running server. A larger
//! `wal_autocheckpoint` saved no CPU, but it halves the p99 latency of writes under load, so it is
//! kept for that (`WAL_AUTOCHECKPOINT_PAGES` in the parent module).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::Connection;

use crate::store::StoreError;

/// Jobs in one commit at most: bounds how long one batch holds the write lock.
pub(super) const MAX_BATCH: usize = 64;
/// Reader threads (and connections).
pub(super) const READERS: usize = 2;

/// A write job, run by the writer inside the batch transaction (`None`: the transaction could not
/// start, so the job does not run). It returns whether it succeeded and how to answer its caller
/// once the commit's outcome is known.
type WriteJob = Box<dyn FnOnce(Option<&Connection>) -> Ran + Send>;
/// A read job: runs and answers its caller itself.
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// Answers a write job's caller, given the batch's commit outcome.
type Answer = Box<dyn FnOnce(Result<(), &str>) + Send>;

/// What a write job leaves behind.
struct Ran {
    ok: bool,
    answer: Answer,
}

/// The running threads and the queues into them.
pub(super) struct Threads {
    writes: Option<Sender<WriteJob>>,
    reads: Option<Sender<ReadJob>>,
    /// The writer first, then the readers (`Drop` joins the readers first, the writer last).
    handles: Vec<JoinHandle<()>>,
}

fn closed() -> StoreError {
    StoreError::Backend("the SQLite store's threads have stopped".into())
}

impl Threads {
    /// Starts the writer on `writer` and [`READERS`] readers on fresh connections from `open`.
    pub(super) fn start(
        writer: Connection,
        path: &Path,
        open: fn(&Path) -> rusqlite::Result<Connection>,
    ) -> Result<Self, StoreError> {
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(open(path).map_err(|e| StoreError::Backend(Box::new(e)))?);
        }
        let (write_tx, write_rx) = crossbeam_channel::unbounded::<WriteJob>();
        let (read_tx, read_rx) = crossbeam_channel::unbounded::<ReadJob>();
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name).spawn(f).map_err(|e| StoreError::Backend(Box::new(e)))
        };
        let mut handles =
            vec![spawn("atauth-sqlite-w".into(), Box::new(move || writer_loop(&writer, &write_rx)))?];
        for (i, conn) in readers.into_iter().enumerate() {
            let rx = read_rx.clone();
            handles.push(spawn(format!("atauth-sqlite-r{i}"), Box::new(move || reader_loop(&conn, &rx)))?);
        }
        Ok(Self { writes: Some(write_tx), reads: Some(read_tx), handles })
    }

    /// Runs `f` on the writer inside the current batch; answers after the commit.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let result = conn.map(f);
            let ok = matches!(result, Some(Ok(_)));
            Ran {
                ok,
                answer: Box::new(move |commit| {
                    let failed = |why: String| Err(StoreError::Backend(why.into()));
                    let answer = match (result, commit) {
                        (Some(Err(e)), _) => Err(e),
                        (Some(Ok(v)), Ok(())) => Ok(v),
                        (Some(Ok(_)), Err(e)) => failed(format!("SQLite commit failed: {e}")),
                        (None, e) => {
                            failed(format!("SQLite transaction could not start: {}", e.err().unwrap_or("")))
                        }
                    };
                    let _ = tx.send(answer);
                }),
            }
        });
        self.writes.as_ref().ok_or_else(closed)?.send(job).map_err(|_| closed())?;
        rx.await.map_err(|_| StoreError::Backend("a SQLite write job panicked".into()))?
    }

    /// Runs `f` on a reader connection.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        self.reads.as_ref().ok_or_else(closed)?.send(job).map_err(|_| closed())?;
        rx.await.map_err(|_| StoreError::Backend("a SQLite read job panicked".into()))?
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        // Closing the queues ends the loops once the queued jobs are done; joining makes sure the
        // connections are closed before the caller (e.g. a temporary store) removes the files.
        // Readers first, the writer last and alone: SQLite checkpoints and removes the WAL only when
        // the closing connection is the last one, which two connections closing at the same moment
        // can both miss.
        self.reads.take();
        let mut handles = self.handles.drain(..);
        let writer = handles.next();
        for reader in handles {
            let _ = reader.join();
        }
        self.writes.take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }
}

fn reader_loop(conn: &Connection, jobs: &Receiver<ReadJob>) {
    while let Ok(job) = jobs.recv() {
        // A panicking job drops its answer channel; its caller sees the error.
        let _ = catch_unwind(AssertUnwindSafe(|| job(conn)));
    }
}

fn writer_loop(conn: &Connection, jobs: &Receiver<WriteJob>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = jobs.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(conn, &mut batch);
    }
}

/// Runs `batch` in one transaction (draining it) and answers every job.
fn run_batch(conn: &Connection, batch: &mut Vec<WriteJob>) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        // Nothing ran; every caller learns why (e.g. another process held the lock past the busy
        // timeout).
        let reason = e.to_string();
        for job in batch.drain(..) {
            (job(None).answer)(Err(&reason));
        }
        return;
    }
    let single = batch.len() == 1;
    let mut ran = Vec::with_capacity(batch.len());
    // Set when a failed job's changes could not be undone: then nothing of the batch may commit.
    let mut broken: Option<String> = None;
    for job in batch.drain(..) {
        if broken.is_some() {
            (job(None).answer)(Err("an earlier write of the same batch could not be undone"));
            continue;
        }
        if !single && let Err(e) = exec(conn, "SAVEPOINT job") {
            (job(None).answer)(Err(&e.to_string()));
            continue;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| job(Some(conn))));
        let ok = matches!(&outcome, Ok(r) if r.ok);
        if !single {
            // Keep a successful job's changes; undo a failed one's (ROLLBACK TO leaves the
            // savepoint open, RELEASE closes it).
            let undo = if ok { Ok(()) } else { exec(conn, "ROLLBACK TO job") };
            if let Err(e) = undo.and_then(|()| exec(conn, "RELEASE job")) {
                broken = Some(e.to_string());
            }
        }
        if let Ok(r) = outcome {
            ran.push(r);
        }
    }
    let commit = match broken {
        Some(why) => Err(why),
        None if single && !ran.first().is_some_and(|r| r.ok) => {
            exec(conn, "ROLLBACK").map_err(|e| e.to_string())
        }
        None => exec(conn, "COMMIT").map_err(|e| e.to_string()),
    };
    let commit = match commit {
        Ok(()) => Ok(()),
        Err(e) => {
            // Whatever is still open is undone; every caller whose write succeeded learns it did
            // not commit.
            let _ = exec(conn, "ROLLBACK");
            Err(e)
        }
    };
    for r in ran {
        (r.answer)(match &commit {
            Ok(()) => Ok(()),
            Err(e) => Err(e.as_str()),
        });
    }
}

fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        Ok(conn)
    }

    struct TempDb(std::path::PathBuf);
    impl Drop for TempDb {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    fn start() -> (Threads, TempDb) {
        let path = std::env::temp_dir().join(format!(
            "atauth-threads-{}.sqlite",
            hex::encode(atauth_crypto::random::random_bytes::<8>())
        ));
        let writer = open(&path).unwrap();
        writer.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY)").unwrap();
        (Threads::start(writer, &path, open).unwrap(), TempDb(path))
    }

    fn insert(k: &'static str) -> impl FnOnce(&Connection) -> Result<(), StoreError> + Send {
        move |c| {
            c.execute("INSERT INTO t (k) VALUES (?1)", [k])
                .map(drop)
                .map_err(|e| StoreError::Backend(e.into()))
        }
    }

    async fn keys(threads: &Threads) -> Vec<String> {
        threads
            .read(|c| {
                let mut st = c.prepare("SELECT k FROM t ORDER BY k").unwrap();
                Ok(st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect())
            })
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_job_is_undone_alone_and_the_rest_of_its_batch_commits() {
        let (threads, _db) = start();
        let threads = std::sync::Arc::new(threads);
        // Hold the writer busy, so that the three jobs queued meanwhile run as one batch.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let t = threads.clone();
        let blocked = tokio::spawn(async move {
            t.write(move |_| {
                let _ = wait.recv();
                Ok(())
            })
            .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        let t = threads.clone();
        let a = tokio::spawn(async move { t.write(insert("a")).await });
        let t = threads.clone();
        let b = tokio::spawn(async move {
            t.write(|c| {
                insert("b")(c)?;
                Err::<(), _>(StoreError::Conflict("test"))
            })
            .await
        });
        let t = threads.clone();
        let c = tokio::spawn(async move { t.write(insert("c")).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        release.send(()).unwrap();
        blocked.await.unwrap().unwrap();
        a.await.unwrap().unwrap();
        assert!(matches!(b.await.unwrap(), Err(StoreError::Conflict("test"))));
        c.await.unwrap().unwrap();
        assert_eq!(keys(&threads).await, ["a", "c"], "b's insert was rolled back, a and c committed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_fails_its_caller_and_the_writer_lives_on() {
        let (threads, _db) = start();
        let r = threads
            .write(|c| -> Result<(), StoreError> {
                insert("x")(c)?;
                panic!("job bug")
            })
            .await;
        assert!(matches!(r, Err(StoreError::Backend(e)) if e.to_string().contains("panicked")));
        threads.write(insert("y")).await.unwrap();
        assert_eq!(keys(&threads).await, ["y"], "the panicking job's insert was undone");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_acknowledged_write_is_visible_to_every_reader() {
        let (threads, _db) = start();
        for i in 0..50 {
            let k: &'static str = Box::leak(format!("k{i:02}").into_boxed_str());
            threads.write(insert(k)).await.unwrap();
            for _ in 0..READERS {
                let n: i64 = threads
                    .read(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap()))
                    .await
                    .unwrap();
                assert_eq!(n, i + 1);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_single_failing_job_writes_nothing() {
        let (threads, _db) = start();
        let r = threads
            .write(|c| {
                insert("lonely")(c)?;
                Err::<(), _>(StoreError::Conflict("test"))
            })
            .await;
        assert!(matches!(r, Err(StoreError::Conflict("test"))));
        assert!(keys(&threads).await.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_threads_closes_every_connection() {
        let (threads, db) = start();
        threads.write(insert("z")).await.unwrap();
        drop(threads);
        // With every connection closed, the last one checkpointed and removed the WAL.
        assert!(!std::path::Path::new(&format!("{}-wal", db.0.display())).exists());
    }
}
