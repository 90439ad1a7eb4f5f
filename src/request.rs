//! Per-call settings: column projection, a wait bound, and cancellation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result, Status};

/// Settings of one call. Cloning shares the cancellation flag, so a clone
/// handed to another thread can cancel the call.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Columns to return, in this order; `None` returns all.
    pub columns: Option<Vec<String>>,
    /// Overrides the store's `wait.timeout_ms` for this call.
    pub timeout: Option<Duration>,
    cancelled: Arc<AtomicBool>,
}

impl Request {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Makes every wait of calls using this request return `Cancelled`. Safe
    /// from any thread; a compute already running is not interrupted.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

/// How long a call may still wait, and whether it has been cancelled.
pub(crate) struct Wait<'a> {
    deadline: Instant,
    timeout: Duration,
    request: &'a Request,
}

impl<'a> Wait<'a> {
    pub fn new(request: &'a Request, default_timeout: Duration) -> Self {
        let timeout = request.timeout.unwrap_or(default_timeout);
        let now = Instant::now();
        // An absurd timeout means "as good as forever".
        let deadline = now.checked_add(timeout).unwrap_or(now + Duration::from_secs(100 * 365 * 86_400));
        Wait { deadline, timeout, request }
    }

    /// `Err` once the call is cancelled or out of time; `what` names what it waited for.
    pub fn check(&self, what: &dyn Fn() -> String) -> Result<()> {
        if self.request.is_cancelled() {
            return Err(Error::new(Status::Cancelled, format!("cancelled while waiting for {}", what())));
        }
        if Instant::now() >= self.deadline {
            return Err(Error::new(
                Status::Timeout,
                format!("gave up after {} ms waiting for {}", self.timeout.as_millis(), what()),
            ));
        }
        Ok(())
    }

    /// How long to sleep before checking again: at most `slice`, never past the deadline.
    pub fn slice(&self, slice: Duration) -> Duration {
        self.deadline.saturating_duration_since(Instant::now()).min(slice)
    }
}
