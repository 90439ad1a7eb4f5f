//! Where the library's log lines go when it is used through the C API: to
//! stderr, or to a host program's logger through a callback. Filtered by
//! level: `FSTORE_LOG` (`off`, `error`, `warn`, `info`, `debug`, `trace`;
//! `warn` by default) or `fstore_log_set_level`.
//!
//! A Rust program using the crate directly installs its own `log` logger;
//! this one is installed by the C API only, at the first call that can log.

use std::ffi::{c_char, c_void};
use std::sync::{Once, RwLock};

use super::boundary::{boundary, OK};
use super::{fstore_error, fstore_status};
use crate::error::Error;

/// A log level: FSTORE_LOG_OFF to FSTORE_LOG_TRACE, in order of detail.
pub type fstore_log_level = u32;

pub const FSTORE_LOG_OFF: fstore_log_level = 0;
pub const FSTORE_LOG_ERROR: fstore_log_level = 1;
pub const FSTORE_LOG_WARN: fstore_log_level = 2;
pub const FSTORE_LOG_INFO: fstore_log_level = 3;
pub const FSTORE_LOG_DEBUG: fstore_log_level = 4;
pub const FSTORE_LOG_TRACE: fstore_log_level = 5;

/// Receives one log line: its level and its text (NUL-terminated UTF-8,
/// valid during the call). Called on whichever thread logs, possibly
/// several at once; it must not call back into libfstore's logging setup.
pub type fstore_log_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, level: fstore_log_level, message: *const c_char)>;

#[derive(Copy, Clone)]
struct Sink {
    callback: unsafe extern "C" fn(*mut c_void, fstore_log_level, *const c_char),
    userdata: *mut c_void,
}

// SAFETY: the caller of fstore_log_set_callback promises that its callback
// and userdata may be used from any thread.
unsafe impl Send for Sink {}
unsafe impl Sync for Sink {}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
static INSTALL: Once = Once::new();

struct CLogger;

impl log::Log for CLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = record.args().to_string();
        // Lines say "libfstore: ..." for stderr; a host's logger names the source itself.
        let text = text.strip_prefix("libfstore: ").unwrap_or(&text);
        let sink = *SINK.read().unwrap_or_else(|p| p.into_inner());
        match sink {
            Some(sink) => {
                let line = super::error::to_c_string(text);
                // SAFETY: as promised by fstore_log_set_callback's caller.
                unsafe { (sink.callback)(sink.userdata, level_code(record.level()), line.as_ptr()) };
            }
            None => eprintln!("libfstore: {}: {text}", record.level().as_str().to_lowercase()),
        }
    }

    fn flush(&self) {}
}

/// Installs the logger (once per process) at the level `FSTORE_LOG` asks.
/// When the host already installed a `log` logger, that one stays.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        if log::set_logger(&CLogger).is_err() {
            return;
        }
        let (filter, bad) = match std::env::var("FSTORE_LOG") {
            Ok(value) => match parse_filter(&value) {
                Some(filter) => (filter, None),
                None => (log::LevelFilter::Warn, Some(value)),
            },
            Err(_) => (log::LevelFilter::Warn, None),
        };
        log::set_max_level(filter);
        if let Some(value) = bad {
            log::warn!("libfstore: FSTORE_LOG={value:?} is not one of off, error, warn, info, debug, trace; using warn");
        }
    });
}

fn parse_filter(value: &str) -> Option<log::LevelFilter> {
    match value.trim().to_ascii_lowercase().as_str() {
        "off" => Some(log::LevelFilter::Off),
        "error" => Some(log::LevelFilter::Error),
        "warn" | "warning" => Some(log::LevelFilter::Warn),
        "info" => Some(log::LevelFilter::Info),
        "debug" => Some(log::LevelFilter::Debug),
        "trace" => Some(log::LevelFilter::Trace),
        _ => None,
    }
}

fn level_code(level: log::Level) -> fstore_log_level {
    match level {
        log::Level::Error => FSTORE_LOG_ERROR,
        log::Level::Warn => FSTORE_LOG_WARN,
        log::Level::Info => FSTORE_LOG_INFO,
        log::Level::Debug => FSTORE_LOG_DEBUG,
        log::Level::Trace => FSTORE_LOG_TRACE,
    }
}

/// Sends the library's log lines to `callback` (with `userdata`) instead of
/// stderr; NULL sends them to stderr again. Lines already filtered by level
/// (see `fstore_log_set_level`). For host programs whose logger (glog, Go's
/// slog, Python's logging) should receive them.
#[no_mangle]
pub unsafe extern "C" fn fstore_log_set_callback(callback: fstore_log_fn, userdata: *mut c_void) {
    install();
    let sink = callback.map(|callback| Sink { callback, userdata });
    *SINK.write().unwrap_or_else(|p| p.into_inner()) = sink;
}

/// Logs only lines at `level` or more severe (FSTORE_LOG_OFF: none). The
/// default is `FSTORE_LOG` from the environment (off, error, warn, info,
/// debug, trace), else FSTORE_LOG_WARN.
#[no_mangle]
pub unsafe extern "C" fn fstore_log_set_level(level: fstore_log_level, error: *mut fstore_error) -> fstore_status {
    boundary(error, || {
        install();
        let filter = match level {
            FSTORE_LOG_OFF => log::LevelFilter::Off,
            FSTORE_LOG_ERROR => log::LevelFilter::Error,
            FSTORE_LOG_WARN => log::LevelFilter::Warn,
            FSTORE_LOG_INFO => log::LevelFilter::Info,
            FSTORE_LOG_DEBUG => log::LevelFilter::Debug,
            FSTORE_LOG_TRACE => log::LevelFilter::Trace,
            other => return Err(Error::invalid_argument(format!("log level {other} is not one of 0 (off) to 5 (trace)"))),
        };
        log::set_max_level(filter);
        OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_parse_and_unknown_ones_do_not() {
        assert_eq!(parse_filter(" Debug "), Some(log::LevelFilter::Debug));
        assert_eq!(parse_filter("warning"), Some(log::LevelFilter::Warn));
        assert_eq!(parse_filter("loud"), None);
    }
}
