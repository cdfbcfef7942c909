//! A command line into a [`Command`]. Verbs and keywords are
//! case-insensitive; arguments are separated by spaces.

use crate::fnap::cmd;
use crate::names::{DnsName, NameError};

/// A parsed command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Authenticate(cmd::authenticate::Authenticate),
    Create(cmd::create::Create),
    Delete(cmd::delete::Delete),
    Describe(cmd::describe::Describe),
    List(cmd::list::List),
    Set(cmd::set::Set),
    Subscribe(cmd::subscribe::Subscribe),
    Relay(cmd::relay::Relay),
    Unsubscribe(cmd::unsubscribe::Unsubscribe),
    Update(cmd::update::Update),
    Pause(cmd::pause::Pause),
    Resume(cmd::resume::Resume),
    Help(cmd::help::Help),
    Noop,
    Quit,
    StartTls,
}

/// Why a line is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty command line")]
    Empty,
    #[error("unknown command `{0}`; HELP lists the commands")]
    UnknownCommand(String),
    #[error("{problem}; usage: {usage}")]
    Syntax {
        usage: &'static str,
        problem: String,
    },
    #[error("invalid name `{name}`: {reason}")]
    InvalidName { name: String, reason: NameError },
}

impl Command {
    /// Parses one command line (without its CRLF).
    pub fn parse(line: &str) -> Result<Command, ParseError> {
        let line = line.trim_matches(|c| c == ' ' || c == '\t');
        let (verb, rest) = line.split_once([' ', '\t']).unwrap_or((line, ""));
        if verb.is_empty() {
            return Err(ParseError::Empty);
        }
        let args = Args::new(rest);
        match verb.to_ascii_uppercase().as_str() {
            "AUTHENTICATE" | "AUTH" => cmd::authenticate::parse(args).map(Command::Authenticate),
            "CREATE" => cmd::create::parse(args).map(Command::Create),
            "DELETE" => cmd::delete::parse(args).map(Command::Delete),
            "DESCRIBE" => cmd::describe::parse(args).map(Command::Describe),
            "LIST" => cmd::list::parse(args).map(Command::List),
            "SET" => cmd::set::parse(args).map(Command::Set),
            "SUBSCRIBE" => cmd::subscribe::parse(args).map(Command::Subscribe),
            "RELAY" => cmd::relay::parse(args).map(Command::Relay),
            "UNSUBSCRIBE" => cmd::unsubscribe::parse(args).map(Command::Unsubscribe),
            "UPDATE" => cmd::update::parse(args).map(Command::Update),
            "PAUSE" => cmd::pause::parse(args).map(Command::Pause),
            "RESUME" => cmd::resume::parse(args).map(Command::Resume),
            "HELP" => cmd::help::parse(args).map(Command::Help),
            "NOOP" => cmd::noop::parse(args).map(|()| Command::Noop),
            "QUIT" => cmd::quit::parse(args).map(|()| Command::Quit),
            "STARTTLS" => cmd::starttls::parse(args).map(|()| Command::StartTls),
            _ => Err(ParseError::UnknownCommand(printable(verb))),
        }
    }

    /// The verb, for logs (never the arguments: they may hold secrets).
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Authenticate(_) => "AUTHENTICATE",
            Command::Create(_) => "CREATE",
            Command::Delete(_) => "DELETE",
            Command::Describe(_) => "DESCRIBE",
            Command::List(_) => "LIST",
            Command::Set(_) => "SET",
            Command::Subscribe(_) => "SUBSCRIBE",
            Command::Relay(_) => "RELAY",
            Command::Unsubscribe(_) => "UNSUBSCRIBE",
            Command::Update(_) => "UPDATE",
            Command::Pause(_) => "PAUSE",
            Command::Resume(_) => "RESUME",
            Command::Help(_) => "HELP",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
            Command::StartTls => "STARTTLS",
        }
    }
}

/// At most 32 characters of client input, for an error text.
fn printable(text: &str) -> String {
    let mut shown: String = text.chars().take(32).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    shown
}

/// The arguments after the verb, taken word by word.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    rest: &'a str,
    usage: &'static str,
}

impl<'a> Args<'a> {
    fn new(rest: &'a str) -> Args<'a> {
        Args {
            rest: rest.trim_start_matches([' ', '\t']),
            usage: "",
        }
    }

    /// Sets the usage line quoted by errors from here on.
    pub fn usage(mut self, usage: &'static str) -> Args<'a> {
        self.usage = usage;
        self
    }

    /// A syntax error quoting the usage line.
    pub fn error(&self, problem: impl Into<String>) -> ParseError {
        ParseError::Syntax {
            usage: self.usage,
            problem: problem.into(),
        }
    }

    /// The next word, if any.
    pub fn word(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        let (word, rest) = self.rest.split_once([' ', '\t']).unwrap_or((self.rest, ""));
        self.rest = rest.trim_start_matches([' ', '\t']);
        Some(word)
    }

    /// The next word, or an error naming what was expected.
    pub fn required(&mut self, what: &str) -> Result<&'a str, ParseError> {
        self.word()
            .ok_or_else(|| self.error(format!("missing {what}")))
    }

    /// The next word, upper-cased, or an error.
    pub fn keyword(&mut self, what: &str) -> Result<String, ParseError> {
        self.required(what).map(str::to_ascii_uppercase)
    }

    /// The next word as a DNS name.
    pub fn name(&mut self, what: &str) -> Result<DnsName, ParseError> {
        let word = self.required(what)?;
        parse_name(word)
    }

    /// Everything left, as it was written.
    pub fn rest(&mut self) -> &'a str {
        std::mem::take(&mut self.rest).trim_end_matches([' ', '\t'])
    }

    /// Fails when words are left.
    pub fn end(&mut self) -> Result<(), ParseError> {
        match self.word() {
            None => Ok(()),
            Some(extra) => Err(self.error(format!("unexpected `{}`", printable(extra)))),
        }
    }
}

/// A name argument.
pub fn parse_name(word: &str) -> Result<DnsName, ParseError> {
    DnsName::parse(word).map_err(|reason| ParseError::InvalidName {
        name: printable(word),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fnap::cmd::{authenticate::Authenticate, create::Create, subscribe::Subscribe};

    fn name(text: &str) -> DnsName {
        DnsName::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn thesis_commands() {
        assert_eq!(
            Command::parse("AUTHENTICATE PLAIN"),
            Ok(Command::Authenticate(Authenticate {
                mechanism: "PLAIN".into(),
                initial_response: None
            }))
        );
        assert_eq!(
            Command::parse("CREATE FLOW time.flows.unix.ar"),
            Ok(Command::Create(Create::Flow {
                name: name("time.flows.unix.ar"),
                public: false
            }))
        );
        assert_eq!(
            Command::parse("subscribe time.flows.unix.ar local emiliano.ar-time.flows.unix.ar"),
            Ok(Command::Subscribe(Subscribe {
                source: name("time.flows.unix.ar"),
                local: Some(name("emiliano.ar-time.flows.unix.ar"))
            }))
        );
    }

    #[test]
    fn errors() {
        assert_eq!(Command::parse("   "), Err(ParseError::Empty));
        assert!(
            matches!(Command::parse("FROB x"), Err(ParseError::UnknownCommand(v)) if v == "FROB")
        );
        assert!(matches!(
            Command::parse("CREATE FLOW"),
            Err(ParseError::Syntax { .. })
        ));
        assert!(matches!(
            Command::parse("CREATE FLOW a_b.c"),
            Err(ParseError::InvalidName { .. })
        ));
        assert!(matches!(
            Command::parse("NOOP now"),
            Err(ParseError::Syntax { .. })
        ));
    }

    #[test]
    fn relay() {
        use crate::fnap::cmd::relay::Relay;
        assert_eq!(
            Command::parse("RELAY ksdj898.time.flows.unix.ar"),
            Ok(Command::Relay(Relay {
                copy: name("ksdj898.time.flows.unix.ar"),
                window: crate::fnap::relay::DEFAULT_WINDOW
            }))
        );
        assert_eq!(
            Command::parse("relay a.b.c window 64"),
            Ok(Command::Relay(Relay {
                copy: name("a.b.c"),
                window: 64
            }))
        );
        for bad in [
            "RELAY",
            "RELAY a.b.c WINDOW",
            "RELAY a.b.c WINDOW 0",
            "RELAY a.b.c WINDOW 65",
            "RELAY a.b.c FROM 1",
        ] {
            assert!(
                matches!(Command::parse(bad), Err(ParseError::Syntax { .. })),
                "{bad}"
            );
        }
    }
}
