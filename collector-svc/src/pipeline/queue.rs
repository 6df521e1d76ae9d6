//! The bounded queue between receive and commit. It is bounded by span count (a semaphore of
//! span permits taken without waiting), so memory stays bounded however many exporters push;
//! an export that does not fit waits a bounded time (holding its decode slot), then is answered
//! "retry later" instead of being buffered (Phoenix's unbounded queue is its issue #9461, an OOM).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc, oneshot};

use crate::decode::rows::IngestBatch;
use crate::error::Error;

/// One export waiting for the writer.
#[derive(Debug)]
pub(crate) struct Job {
    /// The rows to store.
    pub batch: IngestBatch,
    /// Answered after the commit (or its failure).
    pub ack: oneshot::Sender<Result<(), Error>>,
    /// The export's span permits, returned to the queue when the job is dropped.
    #[allow(dead_code)] // held, never read: dropping it frees the permits
    pub permit: OwnedSemaphorePermit,
}

/// Producer side of the queue; cheap to clone.
#[derive(Clone, Debug)]
pub struct IngestQueue {
    permits: Arc<Semaphore>,
    capacity: u32,
    retry_after_secs: u32,
    // Unbounded is safe: every job holds ≥ 1 of `capacity` permits, so at most `capacity` jobs.
    jobs: mpsc::UnboundedSender<Job>,
}

impl IngestQueue {
    /// A queue of `capacity` spans and the receiver the writer drains.
    pub(crate) fn new(capacity: u32, retry_after_secs: u32) -> (Self, mpsc::UnboundedReceiver<Job>) {
        let (jobs, receiver) = mpsc::unbounded_channel();
        let permits = Arc::new(Semaphore::new(capacity as usize));
        (Self { permits, capacity, retry_after_secs, jobs }, receiver)
    }

    /// Whether no span at all would be accepted now (checked before reading a body).
    pub fn is_full(&self) -> bool {
        self.permits.available_permits() == 0
    }

    /// Spans accepted but not yet committed.
    pub fn depth(&self) -> u64 {
        u64::from(self.capacity).saturating_sub(self.permits.available_permits() as u64)
    }

    /// Capacity, in spans.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The error answered when the queue is full.
    pub fn full_error(&self) -> Error {
        Error::QueueFull { retry_after_secs: self.retry_after_secs }
    }

    /// Takes span permits for `spans` rows: at once when free, else waiting at most `max_wait`
    /// (callers wait holding their decode slot, so waiting exports stay few and bounded).
    pub async fn reserve(&self, spans: usize, max_wait: Duration) -> Result<Reservation, Error> {
        if spans == 0 {
            return Ok(Reservation(None));
        }
        let too_many = || Error::TooManySpans { spans, limit: self.capacity };
        let wanted = u32::try_from(spans).map_err(|_| too_many())?;
        if wanted > self.capacity {
            return Err(too_many());
        }
        match self.permits.clone().try_acquire_many_owned(wanted) {
            Ok(permit) => Ok(Reservation(Some(permit))),
            Err(TryAcquireError::Closed) => Err(Error::ShuttingDown),
            Err(TryAcquireError::NoPermits) => {
                match tokio::time::timeout(max_wait, self.permits.clone().acquire_many_owned(wanted)).await {
                    Ok(Ok(permit)) => Ok(Reservation(Some(permit))),
                    Ok(Err(_)) => Err(Error::ShuttingDown),
                    Err(_) => Err(self.full_error()),
                }
            }
        }
    }

    /// Queues the export's valid rows under `reservation` and waits until they are committed.
    pub async fn submit(&self, batch: IngestBatch, reservation: Reservation) -> Result<(), Error> {
        let Reservation(Some(permit)) = reservation else { return Ok(()) };
        let (ack, acked) = oneshot::channel();
        self.jobs.send(Job { batch, ack, permit }).map_err(|_| Error::ShuttingDown)?;
        // The writer dropping the job unanswered means it stopped: nothing was committed.
        acked.await.map_err(|_| Error::ShuttingDown)?
    }
}

/// Queue room for one export's spans, returned when its job is dropped after the commit.
#[derive(Debug)]
pub struct Reservation(Option<OwnedSemaphorePermit>);
