//! The subcommands of the `fnaa` binary, one file per group.

pub mod plugin;
pub mod serve;
