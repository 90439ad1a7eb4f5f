//! In-process single flight: one compute per entry, every other thread of the
//! process waits for it and gets the same result.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::data::Data;
use crate::error::{Error, Result};
use crate::request::Wait;
use crate::sync::lock;

/// How often a waiter looks at its cancellation flag.
const POLL: Duration = Duration::from_millis(5);

type Outcome = Result<Arc<Data>>;

#[derive(Default)]
pub(crate) struct Flights {
    in_flight: Mutex<HashMap<String, Arc<Flight>>>,
}

#[derive(Default)]
pub(crate) struct Flight {
    outcome: Mutex<Option<Outcome>>,
    done: Condvar,
}

pub(crate) enum Role<'a> {
    Leader(Leader<'a>),
    Follower(Arc<Flight>),
}

/// The one caller that computes an entry. Dropping it without `finish`
/// (a panic) releases the followers with an error.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    entry_id: String,
    flight: Arc<Flight>,
    finished: bool,
}

impl Flights {
    pub fn join(&self, entry_id: &str) -> Role<'_> {
        let mut in_flight = lock(&self.in_flight);
        if let Some(flight) = in_flight.get(entry_id) {
            return Role::Follower(Arc::clone(flight));
        }
        let flight = Arc::new(Flight::default());
        in_flight.insert(entry_id.to_string(), Arc::clone(&flight));
        Role::Leader(Leader { flights: self, entry_id: entry_id.to_string(), flight, finished: false })
    }
}

impl Leader<'_> {
    pub fn finish(mut self, outcome: Outcome) {
        self.publish(outcome);
    }

    fn publish(&mut self, outcome: Outcome) {
        self.finished = true;
        lock(&self.flights.in_flight).remove(&self.entry_id);
        *lock(&self.flight.outcome) = Some(outcome);
        self.flight.done.notify_all();
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.publish(Err(Error::internal("the computing call ended without a result")));
        }
    }
}

impl Flight {
    /// Waits for the leader's outcome. The outer `Err` is this waiter's own
    /// timeout or cancellation; the leader carries on regardless.
    pub fn wait(&self, wait: &Wait, what: &dyn Fn() -> String) -> Result<Outcome> {
        let mut outcome = lock(&self.outcome);
        loop {
            if let Some(outcome) = outcome.as_ref() {
                return Ok(outcome.clone());
            }
            wait.check(what)?;
            outcome = self.done.wait_timeout(outcome, wait.slice(POLL)).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}
