//! `flow`, the FNUA command-line client (thesis 6.3.2 and 7.3): manages
//! flows, namespaces, subscriptions and processors on an FNAA over FNAP.

pub mod agents;
pub mod cli;
pub mod connect;
pub mod exit;
pub mod login;
pub mod run;
pub mod tail;
