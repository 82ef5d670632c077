//! Natural batching: many tasks' requests of one kind folded into one database statement.
//!
//! Each caller sends its request and waits for its own answer. A background task takes whatever
//! is waiting (up to `max`) and runs it as one batch; while batches run, new requests queue up
//! and form the next one. An idle system adds no delay (a lone request is a batch of one); a
//! busy one pays a statement's fixed cost (executor start, constraints, triggers, commit) once
//! per batch instead of once per request, like a database's group commit. A [`Batcher::linger`]
//! lets the first request of a batch wait a moment for company: on a busy process the cost of a
//! statement (and of its durable commit) is shared by more requests.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{Semaphore, mpsc, oneshot};

type Reply<O> = oneshot::Sender<Result<O, Arc<anyhow::Error>>>;
type Run<I, O> = Arc<dyn Fn(Vec<I>) -> BoxFuture<'static, anyhow::Result<Vec<O>>> + Send + Sync>;

/// Runs batches of `I` through one function that answers each with an `O`, in order.
pub struct Batcher<I, O> {
    max: usize,
    parallel: usize,
    linger: Duration,
    run: Run<I, O>,
    /// Started on first use, on the caller's runtime.
    tx: OnceLock<mpsc::UnboundedSender<(I, Reply<O>)>>,
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// `run` gets up to `max` requests and must answer each, in the same order; at most
    /// `parallel` batches run at once.
    pub fn new<F, Fut>(max: usize, parallel: usize, run: F) -> Batcher<I, O>
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<Vec<O>>> + Send + 'static,
    {
        Batcher {
            max: max.max(1),
            parallel: parallel.max(1),
            linger: Duration::ZERO,
            run: Arc::new(move |batch| Box::pin(run(batch))),
            tx: OnceLock::new(),
        }
    }

    /// A batch starts this long after its first request (unless it is full sooner), so requests
    /// arriving meanwhile join it.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Submit one request and wait for its answer. A failed batch fails each of its requests
    /// with the batch's error.
    pub async fn call(&self, request: I) -> anyhow::Result<O> {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(gather(
                rx,
                self.max,
                self.parallel,
                self.linger,
                self.run.clone(),
            ));
            tx
        });
        let (reply, answer) = oneshot::channel();
        tx.send((request, reply))
            .map_err(|_| anyhow::anyhow!("the batch task has stopped"))?;
        match answer.await {
            Ok(Ok(o)) => Ok(o),
            Ok(Err(e)) => Err(anyhow::anyhow!("{e:#}")),
            Err(_) => Err(anyhow::anyhow!("the batch was dropped before it answered")),
        }
    }
}

/// Add what is waiting already, up to `max` requests in all.
fn drain_ready<I, O>(
    rx: &mut mpsc::UnboundedReceiver<(I, Reply<O>)>,
    max: usize,
    requests: &mut Vec<I>,
    replies: &mut Vec<Reply<O>>,
) {
    while requests.len() < max {
        match rx.try_recv() {
            Ok((i, r)) => {
                requests.push(i);
                replies.push(r);
            }
            Err(_) => break,
        }
    }
}

async fn gather<I: Send + 'static, O: Send + 'static>(
    mut rx: mpsc::UnboundedReceiver<(I, Reply<O>)>,
    max: usize,
    parallel: usize,
    linger: Duration,
    run: Run<I, O>,
) {
    let slots = Arc::new(Semaphore::new(parallel));
    loop {
        // a free slot first: requests arriving meanwhile join the batch
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else { return };
        let mut requests = vec![first.0];
        let mut replies = vec![first.1];
        drain_ready(&mut rx, max, &mut requests, &mut replies);
        if !linger.is_zero() && requests.len() < max {
            let until = tokio::time::Instant::now() + linger;
            while requests.len() < max {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some((i, r))) => {
                        requests.push(i);
                        replies.push(r);
                        drain_ready(&mut rx, max, &mut requests, &mut replies);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        let run = run.clone();
        tokio::spawn(async move {
            let n = requests.len();
            match run(requests).await {
                Ok(answers) if answers.len() == n => {
                    for (reply, o) in replies.into_iter().zip(answers) {
                        let _ = reply.send(Ok(o));
                    }
                }
                Ok(answers) => {
                    let e = Arc::new(anyhow::anyhow!(
                        "a batch of {n} got {} answers",
                        answers.len()
                    ));
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
                Err(e) => {
                    let e = Arc::new(e);
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    #[tokio::test]
    async fn requests_waiting_together_go_in_one_batch_and_each_gets_its_answer() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let b = Arc::new(Batcher::new(100, 1, move |batch: Vec<u32>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(batch.len());
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(batch.into_iter().map(|x| x * 2).collect())
            }
        }));
        // a lone request is a batch of one, at once
        assert_eq!(b.call(1).await.unwrap(), 2);
        let calls: Vec<_> = (0..50u32)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move { b.call(i).await.unwrap() })
            })
            .collect();
        for (i, c) in calls.into_iter().enumerate() {
            assert_eq!(c.await.unwrap(), 2 * i as u32);
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 51);
        assert!(
            sizes.len() <= 4,
            "requests that waited together went together: {sizes:?}"
        );
    }

    #[tokio::test]
    async fn a_lingering_batch_waits_for_requests_arriving_soon_after_its_first() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let b = Arc::new(
            Batcher::new(100, 1, move |batch: Vec<u32>| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(batch.len());
                    Ok(batch)
                }
            })
            .linger(Duration::from_millis(200)),
        );
        let calls: Vec<_> = (0..5u32)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move {
                    // each a little after the one before, all within the linger
                    tokio::time::sleep(Duration::from_millis(10 * u64::from(i))).await;
                    b.call(i).await.unwrap()
                })
            })
            .collect();
        for (i, c) in calls.into_iter().enumerate() {
            assert_eq!(c.await.unwrap(), i as u32);
        }
        assert_eq!(
            *sizes.lock().unwrap(),
            vec![5],
            "one batch for requests 10 ms apart"
        );
    }

    #[tokio::test]
    async fn a_failed_batch_fails_each_of_its_requests() {
        let b = Arc::new(Batcher::new(10, 2, |_batch: Vec<u32>| async {
            Err::<Vec<u32>, _>(anyhow::anyhow!("database gone"))
        }));
        let e = b.call(7).await.unwrap_err();
        assert!(e.to_string().contains("database gone"), "{e}");
    }
}
