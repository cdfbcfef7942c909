//! The subcommands of the `fnaa` binary, one file per group.

pub mod flows;
pub mod plugin;
pub mod serve;
pub mod user;
