//! Structured logging into the host's log (`tracing`). The host tags every
//! record with the plugin and instance names, and rate-limits floods.
//!
//! ```ignore
//! fnaa_sdk::log::info!("dropped {} events", dropped);
//! fnaa_sdk::log::log(fnaa_sdk::log::Level::Warn, "bad data", &[("id", &event.id)]);
//! ```
//!
//! Off wasm32 (unit tests) records go to stderr.

/// Severity, as in `tracing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very verbose detail.
    Trace,
    /// Detail for debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// Something failed.
    Error,
}

/// Writes one record: a message and structured key/value fields.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    imp::log(level, message, fields);
}

/// Writes a `trace` record.
pub fn trace(message: &str) {
    log(Level::Trace, message, &[]);
}

/// Writes a `debug` record.
pub fn debug(message: &str) {
    log(Level::Debug, message, &[]);
}

/// Writes an `info` record.
pub fn info(message: &str) {
    log(Level::Info, message, &[]);
}

/// Writes a `warn` record.
pub fn warn(message: &str) {
    log(Level::Warn, message, &[]);
}

/// Writes an `error` record.
pub fn error(message: &str) {
    log(Level::Error, message, &[]);
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Level;
    use crate::bindings::processor::fnaa::plugin::log as host;

    pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
        let level = match level {
            Level::Trace => host::Level::Trace,
            Level::Debug => host::Level::Debug,
            Level::Info => host::Level::Info,
            Level::Warn => host::Level::Warn,
            Level::Error => host::Level::Error,
        };
        // The generated binding wants owned pairs; most records have none.
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        host::log(level, message, &fields);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::Level;

    pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
        eprintln!("[{level:?}] {message} {fields:?}");
    }
}

/// Formats and writes a record at `level`: `log_at!(Level::Info, "x = {}", x)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __fnaa_log_at {
    ($level:expr, $($arg:tt)+) => {
        $crate::log::log($level, &::std::format!($($arg)+), &[])
    };
}

/// Formats and writes a `trace` record.
#[doc(hidden)]
#[macro_export]
macro_rules! __fnaa_log_trace {
    ($($arg:tt)+) => { $crate::__fnaa_log_at!($crate::log::Level::Trace, $($arg)+) };
}

/// Formats and writes a `debug` record.
#[doc(hidden)]
#[macro_export]
macro_rules! __fnaa_log_debug {
    ($($arg:tt)+) => { $crate::__fnaa_log_at!($crate::log::Level::Debug, $($arg)+) };
}

/// Formats and writes an `info` record.
#[doc(hidden)]
#[macro_export]
macro_rules! __fnaa_log_info {
    ($($arg:tt)+) => { $crate::__fnaa_log_at!($crate::log::Level::Info, $($arg)+) };
}

/// Formats and writes a `warn` record.
#[doc(hidden)]
#[macro_export]
macro_rules! __fnaa_log_warn {
    ($($arg:tt)+) => { $crate::__fnaa_log_at!($crate::log::Level::Warn, $($arg)+) };
}

/// Formats and writes an `error` record.
#[doc(hidden)]
#[macro_export]
macro_rules! __fnaa_log_error {
    ($($arg:tt)+) => { $crate::__fnaa_log_at!($crate::log::Level::Error, $($arg)+) };
}

pub use crate::__fnaa_log_at as log_at;
pub use crate::__fnaa_log_debug as debug;
pub use crate::__fnaa_log_error as error;
pub use crate::__fnaa_log_info as info;
pub use crate::__fnaa_log_trace as trace;
pub use crate::__fnaa_log_warn as warn;
