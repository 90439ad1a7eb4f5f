//! One error type for the whole library, and the status codes it maps to.

use std::fmt;

/// The class of a problem. The numeric values are the C API's `fstore_status`
/// constants and never change once released.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Status {
    Ok = 0,
    /// A caller-supplied argument is malformed or out of range.
    InvalidArgument = 1,
    /// The entry (or object) asked for does not exist.
    NotFound = 2,
    /// A bounded wait ran out.
    Timeout = 3,
    /// The call was cancelled through its request.
    Cancelled = 4,
    /// The compute callback reported a failure.
    CallbackFailed = 5,
    /// An Arrow stream was unset, failed midway or did not match its schema.
    InvalidData = 6,
    /// A file-system operation failed.
    Io = 7,
    /// The manifest database failed.
    Database = 8,
    /// A stored entry failed its integrity check.
    Corrupt = 9,
    /// The object cannot be used in its current state (e.g. after fork()).
    InvalidState = 10,
    /// A required server could not be reached.
    Unavailable = 11,
    /// A bug in libfstore (e.g. a caught panic).
    Internal = 12,
    /// The cache directory is unsafe to use: someone else could write it.
    PermissionDenied = 13,
}

impl Status {
    pub fn code(self) -> u32 {
        self as u32
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::InvalidArgument => "invalid argument",
            Status::NotFound => "not found",
            Status::Timeout => "timeout",
            Status::Cancelled => "cancelled",
            Status::CallbackFailed => "callback failed",
            Status::InvalidData => "invalid data",
            Status::Io => "I/O error",
            Status::Database => "database error",
            Status::Corrupt => "corrupt entry",
            Status::InvalidState => "invalid state",
            Status::Unavailable => "unavailable",
            Status::Internal => "internal error",
            Status::PermissionDenied => "permission denied",
        }
    }
}

/// An error: its class and a message that names the input at fault.
///
/// Errors are `Clone` because a failed compute is handed to every caller that
/// waited for it.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    status: Status,
    message: String,
    /// The SQLSTATE of the PostgreSQL error behind this one, if any.
    sqlstate: Option<[u8; 5]>,
}

impl Error {
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        debug_assert!(status != Status::Ok, "an error needs a failing status");
        Error { status, message: message.into(), sqlstate: None }
    }

    /// The same error, carrying the SQLSTATE of the PostgreSQL error behind
    /// it (ignored unless five ASCII characters).
    pub fn with_sqlstate(mut self, code: &str) -> Self {
        self.sqlstate = <[u8; 5]>::try_from(code.as_bytes()).ok().filter(|c| c.is_ascii());
        self
    }

    /// The SQLSTATE of the PostgreSQL error behind this one, if any.
    pub fn sqlstate(&self) -> Option<&str> {
        self.sqlstate.as_ref().and_then(|c| std::str::from_utf8(c).ok())
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context` put in front of its message.
    pub fn context(self, context: impl fmt::Display) -> Self {
        Error { message: format!("{context}: {}", self.message), ..self }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Status::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Status::NotFound, message)
    }
    pub fn invalid_data(message: impl Into<String>) -> Self {
        Self::new(Status::InvalidData, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Status::Internal, message)
    }
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(Status::InvalidState, message)
    }
    pub fn database(message: impl Into<String>) -> Self {
        Self::new(Status::Database, message)
    }

    /// An I/O error, with the operation and path that failed.
    pub fn io(what: impl fmt::Display, source: std::io::Error) -> Self {
        Self::new(Status::Io, format!("{what}: {source}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.status.name(), self.status.code(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<duckdb::Error> for Error {
    fn from(e: duckdb::Error) -> Self {
        Error::database(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
