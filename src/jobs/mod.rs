//! Background work, one pattern: a [`Worker`] takes one step of its work at a time (the
//! steps themselves are in `service/`), and [`run`] is the loop that steps it until it
//! is cancelled. The workers: the claims engine ([`engine`]: reviews, payouts, guarantee
//! dates, housekeeping), the webhook dispatcher ([`dispatcher`]) and the metrics
//! sampler ([`metrics`]). Tests and draining step them directly with their
//! `run_once`.

pub mod dispatcher;
pub mod endpoint_listener;
pub mod engine;
pub mod metrics;

use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::ApiResult;
use crate::store::Store;

/// What a step found, for the loop to know when to step again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Less than a full batch: wait for a wake-up or the poll interval, so that work
    /// arriving meanwhile gathers into one step rather than one small step each.
    CaughtUp,
    /// A full batch: more is likely waiting, so step again at once.
    Full,
}

/// Something [`run`] steps in the background.
pub trait Worker: Send + Sync {
    /// For the logs.
    fn name(&self) -> &'static str;

    /// The store the steps use: a lost connection is noted on it.
    fn store(&self) -> &Store;

    /// How long to wait for work when nothing wakes the loop sooner.
    fn poll_interval(&self) -> Duration;

    /// Wakes the loop before the poll interval is up. The loop notifies it too after a
    /// full batch, so that another loop stepping the same work joins in.
    fn wakeup(&self) -> &Notify;

    /// One step. Work it leaves running (a webhook attempt) goes into `background`: one
    /// of those finishing wakes the loop (a slot is free), and [`run`] waits for them
    /// all before it returns.
    fn step(&self, background: &mut JoinSet<()>) -> impl Future<Output = ApiResult<Progress>> + Send;
}

/// Steps `worker` on every wake-up, poll interval or finished background task, and at
/// once again after a full batch, until `cancel` fires. A step in progress finishes
/// (its transactions commit or roll back), and so does the work it left running,
/// before this returns. A failed step is logged here, once, and tried again at the
/// next wake-up or poll.
pub async fn run<W: Worker>(worker: W, cancel: CancellationToken) {
    let mut background = JoinSet::new();
    while !cancel.is_cancelled() {
        match worker.step(&mut background).await {
            Ok(Progress::Full) if !cancel.is_cancelled() => {
                worker.wakeup().notify_one();
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                if e.is_connection_lost() {
                    worker.store().note_connection_lost();
                }
                tracing::warn!(worker = worker.name(), error = %e, "background step failed; trying again at the next wake-up or poll");
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = worker.wakeup().notified() => {}
            Some(_) = background.join_next(), if !background.is_empty() => {}
            _ = tokio::time::sleep(worker.poll_interval()) => {}
        }
    }
    while background.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use tokio::sync::{mpsc, oneshot};

    use super::*;
    use crate::error::ApiError;
    use crate::store::StoreOptions;

    /// What the scripted worker's next step does.
    enum Next {
        Report(Progress),
        Fail,
        /// Leaves a task running until the sender is used or dropped.
        Background(oneshot::Receiver<()>),
    }

    /// A worker whose steps follow a script (then report `CaughtUp`) and announce their
    /// number, with a poll interval long enough that only wake-ups bring a step.
    #[derive(Clone)]
    struct Scripted(Arc<Inner>);

    struct Inner {
        store: Store,
        wakeup: Notify,
        script: Mutex<VecDeque<Next>>,
        steps: Mutex<(usize, mpsc::UnboundedSender<usize>)>,
    }

    async fn scripted(script: Vec<Next>) -> (Scripted, mpsc::UnboundedReceiver<usize>) {
        let store = Store::connect(&StoreOptions::new("sqlite::memory:")).await.expect("in-memory store");
        let (tx, rx) = mpsc::unbounded_channel();
        let inner =
            Inner { store, wakeup: Notify::new(), script: Mutex::new(script.into()), steps: Mutex::new((0, tx)) };
        (Scripted(Arc::new(inner)), rx)
    }

    impl Worker for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }

        fn store(&self) -> &Store {
            &self.0.store
        }

        fn poll_interval(&self) -> Duration {
            Duration::from_secs(3600)
        }

        fn wakeup(&self) -> &Notify {
            &self.0.wakeup
        }

        async fn step(&self, background: &mut JoinSet<()>) -> ApiResult<Progress> {
            {
                let mut steps = self.0.steps.lock().unwrap();
                steps.0 += 1;
                let _ = steps.1.send(steps.0);
            }
            let next = self.0.script.lock().unwrap().pop_front();
            match next.unwrap_or(Next::Report(Progress::CaughtUp)) {
                Next::Report(progress) => Ok(progress),
                Next::Fail => Err(ApiError::internal("scripted failure")),
                Next::Background(done) => {
                    background.spawn(async move {
                        let _ = done.await;
                    });
                    Ok(Progress::CaughtUp)
                }
            }
        }
    }

    async fn next_step(steps: &mut mpsc::UnboundedReceiver<usize>) -> usize {
        tokio::time::timeout(Duration::from_secs(5), steps.recv()).await.expect("a step within 5 s").expect("open")
    }

    #[tokio::test]
    async fn a_full_batch_is_followed_by_another_step_at_once() {
        let (worker, mut steps) = scripted(vec![
            Next::Report(Progress::Full),
            Next::Report(Progress::Full),
            Next::Report(Progress::CaughtUp),
        ])
        .await;
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(worker, cancel.clone()));
        for want in 1..=3 {
            assert_eq!(next_step(&mut steps).await, want);
        }
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("stops on cancel").unwrap();
    }

    #[tokio::test]
    async fn wakeups_and_finished_background_work_bring_steps_and_stopping_waits_for_that_work() {
        let (first_done, first) = oneshot::channel();
        let (second_done, second) = oneshot::channel();
        let (worker, mut steps) = scripted(vec![Next::Fail, Next::Background(first), Next::Background(second)]).await;
        let cancel = CancellationToken::new();
        let mut task = tokio::spawn(run(worker.clone(), cancel.clone()));

        // A failed step does not end the loop: it waits, and a wake-up brings the next.
        assert_eq!(next_step(&mut steps).await, 1);
        worker.wakeup().notify_one();
        assert_eq!(next_step(&mut steps).await, 2);
        // Background work finishing (a slot freed) brings the next step.
        first_done.send(()).unwrap();
        assert_eq!(next_step(&mut steps).await, 3);

        // Cancelled, the loop takes no new step but waits for the work left running.
        cancel.cancel();
        let early = tokio::time::timeout(Duration::from_millis(100), &mut task).await;
        assert!(early.is_err(), "returned while background work was running");
        second_done.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("stops once the work is done").unwrap();
        assert!(steps.try_recv().is_err(), "no step after cancel");
    }
}
