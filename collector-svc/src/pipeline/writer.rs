//! The writer: drains the queue, writes many exports in one transaction, then answers each of
//! them. An export is acknowledged only after the commit that holds its spans.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, watch};

use crate::config::WriterHold;
use crate::metrics::Metrics;
use crate::pipeline::queue::Job;
use crate::store::{ResolvedBatch, Store};

/// What a writer task needs.
pub(crate) struct Writer {
    pub store: Store,
    pub jobs: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>,
    pub max_batch_spans: usize,
    pub metrics: Arc<Metrics>,
    pub hold: Option<WriterHold>,
}

impl Writer {
    /// Writes until `stop` turns true, then writes whatever is still queued and returns.
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let jobs = {
                let mut receiver = self.jobs.lock().await;
                let first = if receiver.is_closed() {
                    receiver.recv().await
                } else {
                    tokio::select! {
                        job = receiver.recv() => job,
                        () = stopped(&mut stop) => {
                            // Refuse new exports; drain what was accepted.
                            receiver.close();
                            receiver.recv().await
                        }
                    }
                };
                let Some(first) = first else { break };
                let mut spans = first.batch.rows.len();
                let mut jobs = vec![first];
                while spans < self.max_batch_spans {
                    match receiver.try_recv() {
                        Ok(job) => {
                            spans += job.batch.rows.len();
                            jobs.push(job);
                        }
                        Err(_) => break,
                    }
                }
                jobs
            };
            if let Some(hold) = &self.hold {
                hold.wait_released().await;
            }
            self.write(jobs).await;
        }
    }

    #[tracing::instrument(skip_all, fields(exports = jobs.len()))]
    async fn write(&self, mut jobs: Vec<Job>) {
        let result = self.commit(&mut jobs).await;
        match result {
            Ok((spans, inserted)) => {
                self.metrics.record_commit(spans, inserted);
                for job in jobs {
                    let _ = job.ack.send(Ok(()));
                }
            }
            Err(error) => {
                tracing::warn!(%error, "batch not stored; its exports are answered UNAVAILABLE");
                for job in jobs {
                    let _ = job.ack.send(Err(crate::error::Error::Unavailable));
                }
            }
        }
        // Dropping the jobs returns their span permits to the queue.
    }

    /// Resolves projects and inserts every job's rows in one transaction.
    async fn commit(&self, jobs: &mut [Job]) -> Result<(u64, u64), crate::error::Error> {
        let mut seen = HashSet::new();
        let names: Vec<&str> = jobs
            .iter()
            .flat_map(|job| job.batch.projects.iter().map(String::as_str))
            .filter(|name| seen.insert(*name))
            .collect();
        let ids = self.store.project_ids(&names).await?;
        let by_name: HashMap<String, i64> = names.iter().map(|n| (*n).to_owned()).zip(ids).collect();
        let mut spans = 0;
        let batches: Vec<ResolvedBatch> = jobs
            .iter_mut()
            .map(|job| {
                let batch = std::mem::take(&mut job.batch);
                spans += batch.rows.len() as u64;
                let project_ids =
                    batch.projects.iter().map(|n| by_name.get(n).copied().unwrap_or_default()).collect();
                ResolvedBatch { batch, project_ids }
            })
            .collect();
        let inserted = self.store.insert_batches(batches).await?;
        Ok((spans, inserted))
    }
}

/// Completes once `stop` is true (the watch guard is dropped before returning, keeping the
/// writer future `Send`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
