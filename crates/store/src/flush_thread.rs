//! The one thread that does a writer's flush CPU work (reading spilled entries back, sorting,
//! encoding).
//!
//! Why not tokio's blocking pool: each flush may land on another pool thread, and a thread that
//! goes idle right after freeing a flush's tens of MiB keeps them in its allocator heap until
//! it runs again; with a few such threads the process held ~100 MiB more than it used.
//! Flushes run one at a time anyway, so one long-lived thread reuses the same memory.

use std::sync::Mutex;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::error::{Error, Result};

type Job = Box<dyn FnOnce() + Send>;

/// A thread running jobs one at a time; it ends when this is dropped.
pub(crate) struct FlushThread {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl FlushThread {
    /// Starts the thread.
    pub(crate) fn start() -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("genai-flush".into())
            .spawn(move || {
                for job in rx {
                    // A panicking job drops its reply (the caller sees the error); the thread
                    // stays for the next one.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })
            .map_err(|e| Error::Parquet(format!("starting the flush thread: {e}")))?;
        Ok(Self {
            jobs: Mutex::new(tx),
        })
    }

    /// Runs `f` on the thread; resolves to its result.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs
            .lock()
            .map_err(|_| Error::WalClosed)?
            .send(job)
            .map_err(|_| Error::Parquet("the flush thread is gone".into()))?;
        rx.await
            .map_err(|_| Error::Parquet("a flush job panicked".into()))?
    }
}
