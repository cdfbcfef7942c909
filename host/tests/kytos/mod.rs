//! What the Kytos EP038 tests share: a real Kytos controller, RabbitMQ
//! consumers and helpers, and the host set-up.

pub mod controller;
pub mod rabbit;
pub mod setup;
