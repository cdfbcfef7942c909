//! FNAP, the Flow Namespace Accessing Protocol (`docs/fnap.md`), without
//! I/O: splitting input into lines ([`line`]), parsing commands
//! ([`command`], one file per verb in `cmd/`) and building replies
//! ([`reply`], the one place where errors become reply codes), and the
//! lines of a relay ([`relay`]).

pub mod cmd;
pub mod command;
pub mod line;
pub mod relay;
pub mod reply;

pub use command::{Command, ParseError};
pub use line::{Line, LineReader};
pub use reply::{Reply, ReplyCode};
