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
    /// A point after which the call waits no longer. It only ever shortens
    /// the wait (the store's or `timeout`): a caller's own deadline, such as
    /// a Go context's, never lengthens what the store allows.
    pub deadline: Option<Instant>,
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

    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
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
    /// Whether `deadline` is the request's own (it came before the timeout).
    at_request_deadline: bool,
    timeout: Duration,
    request: &'a Request,
    /// Set when the store the call runs in is being closed.
    store_closing: Option<&'a AtomicBool>,
}

impl<'a> Wait<'a> {
    pub fn new(request: &'a Request, default_timeout: Duration) -> Self {
        let timeout = request.timeout.unwrap_or(default_timeout);
        let now = Instant::now();
        // An absurd timeout means "as good as forever".
        let deadline = now.checked_add(timeout).unwrap_or(now + Duration::from_secs(100 * 365 * 86_400));
        match request.deadline {
            Some(own) if own < deadline => {
                Wait { deadline: own, at_request_deadline: true, timeout, request, store_closing: None }
            }
            _ => Wait { deadline, at_request_deadline: false, timeout, request, store_closing: None },
        }
    }

    /// The same wait, which also ends (as cancelled) once `closing` is set.
    pub fn ending_when(self, closing: &'a AtomicBool) -> Self {
        Wait { store_closing: Some(closing), ..self }
    }

    /// `Err` once the call is cancelled or out of time; `what` names what it waited for.
    pub fn check(&self, what: &dyn Fn() -> String) -> Result<()> {
        if self.request.is_cancelled() {
            return Err(Error::new(Status::Cancelled, format!("cancelled while waiting for {}", what())));
        }
        if self.store_closing.is_some_and(|closing| closing.load(Ordering::Acquire)) {
            return Err(Error::new(Status::Cancelled, format!("the store was closed while waiting for {}", what())));
        }
        if Instant::now() >= self.deadline {
            let why = if self.at_request_deadline {
                "gave up at the request's deadline".to_string()
            } else {
                format!("gave up after {} ms", self.timeout.as_millis())
            };
            return Err(Error::new(Status::Timeout, format!("{why} waiting for {}", what())));
        }
        Ok(())
    }

    /// How long to sleep before checking again: at most `slice`, never past the deadline.
    pub fn slice(&self, slice: Duration) -> Duration {
        self.deadline.saturating_duration_since(Instant::now()).min(slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed_out_after(request: &Request, store_timeout: Duration) -> Duration {
        let started = Instant::now();
        let wait = Wait::new(request, store_timeout);
        while wait.check(&|| "nothing".into()).is_ok() {
            std::thread::sleep(wait.slice(Duration::from_millis(5)));
        }
        started.elapsed()
    }

    #[test]
    fn a_deadline_only_shortens_the_wait() {
        let short = Duration::from_millis(50);
        // A far deadline does not lengthen the store's short wait.
        let far = Request::new().with_deadline(Instant::now() + Duration::from_secs(3600));
        assert!(timed_out_after(&far, short) < Duration::from_secs(2));
        // A near deadline shortens a long one, and says so.
        let near = Request::new().with_deadline(Instant::now() + short);
        assert!(timed_out_after(&near, Duration::from_secs(3600)) < Duration::from_secs(2));
        let wait = Wait::new(&near, Duration::from_secs(3600));
        std::thread::sleep(short);
        let err = wait.check(&|| "x".into()).unwrap_err();
        assert_eq!(err.status(), Status::Timeout);
        assert!(err.message().contains("deadline"), "{err}");
    }
}
