//! The command line of `flow`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::agents::{MechanismChoice, TlsMode};

/// flow: manage flows, namespaces, subscriptions and processors on an FNAA
/// (FNAP client). Exit codes follow sysexits(3): 64 usage, 65 bad
/// argument, 66 not found, 68 FNAA not found in DNS, 69 unreachable, 73
/// exists, 75 try again later, 76 protocol error, 77 not allowed, 78
/// configuration.
#[derive(Debug, Parser)]
#[command(name = "flow", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every command.
#[derive(Debug, Args)]
pub struct Global {
    /// The agents file (thesis 7.3 format).
    #[arg(
        long,
        global = true,
        env = "FLOW_CONFIG",
        default_value = "~/.flow.yml"
    )]
    pub config: String,
    /// The agent (FNAA) to use, by its name in the agents file.
    #[arg(long, global = true)]
    pub agent: Option<String>,
    /// Connect to this `host:port` instead of looking the agent up in DNS.
    #[arg(long, global = true, env = "FLOW_SERVER")]
    pub server: Option<String>,
    /// DNS server for the SRV lookups, `ip[:port]`.
    #[arg(long, global = true, env = "FLOW_NAMESERVER")]
    pub nameserver: Option<String>,
    /// Print the protocol exchange (`C: ...` lines) on standard error.
    #[arg(short = 'd', long = "debug", global = true)]
    pub debug: bool,
    /// Transport security (default: the agent's, else what DNS says, else none).
    #[arg(long, global = true, value_enum)]
    pub tls: Option<TlsMode>,
    /// PEM file of the CA that signed the FNAA's certificate.
    #[arg(long, global = true)]
    pub ca: Option<PathBuf>,
    /// The account (default: the agent's `username`).
    #[arg(long, global = true, env = "FLOW_USER")]
    pub user: Option<String>,
    /// SASL mechanism (default: PLAIN over TLS, SCRAM-SHA-256 otherwise).
    #[arg(long, global = true, value_enum)]
    pub mechanism: Option<MechanismChoice>,
    /// Seconds to wait for the FNAA.
    #[arg(long, global = true, default_value_t = 30)]
    pub timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Creates a flow, a namespace or a processor instance.
    #[command(subcommand)]
    Create(Create),
    /// Shows a flow's connection details or a processor's status.
    #[command(subcommand)]
    Describe(Object),
    /// Deletes a flow, a namespace or a processor instance.
    #[command(subcommand)]
    Delete(Deletable),
    /// Lists flows, namespaces, subscriptions or processors.
    #[command(subcommand)]
    List(Listing),
    /// Makes a flow public (anyone may read it) or private, or sets what
    /// it says about itself (schema, rate, retention, terms, contact).
    Set {
        /// The flow.
        #[arg(value_parser = flow_name)]
        flow: String,
        /// `public` or `private`, or what the flow says about itself:
        /// `schema` (a URI or a JSON Schema object), `rate` (`10/s`),
        /// `retention` (`7d`), `terms` (text), `contact` (`mailto:...`).
        #[arg(value_parser = ["public", "private", "schema", "rate", "retention", "terms", "contact"])]
        setting: String,
        /// The value of `schema`, `rate`, `retention`, `terms` or
        /// `contact` (`-` removes it); the words are joined by spaces.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        value: Vec<String>,
    },
    /// Subscribes to a flow; its events are delivered into a local flow.
    Subscribe {
        /// The flow to subscribe to.
        #[arg(value_parser = flow_name)]
        flow: String,
        /// The local flow (default: the agent's prefix followed by the flow).
        #[arg(long)]
        local: Option<String>,
        /// Only create the copy flow (what an FNAA asks of another).
        #[arg(long, conflicts_with = "local")]
        no_local: bool,
    },
    /// Ends a subscription, named by the copy flow SUBSCRIBE returned.
    Unsubscribe { subscription: String },
    /// Changes, pauses or resumes a processor instance.
    #[command(subcommand)]
    Processor(ProcessorCommand),
    /// Prints a flow's events as they arrive (from now on), read from its
    /// broker as DESCRIBE FLOW tells; stops on Ctrl-C or after `--count`.
    Tail {
        /// The flow.
        #[arg(value_parser = flow_name)]
        flow: String,
        /// What to print per event: `json`, the CloudEvent in JSON format
        /// (one per line); `data`, its data only; `summary`, its time,
        /// type, subject and id.
        #[arg(long, value_enum, default_value_t = TailOutput::Json)]
        output: TailOutput,
        /// Exit after this many events.
        #[arg(long)]
        count: Option<usize>,
    },
    /// Checks the credentials with the FNAA and saves them, with the
    /// address and the namespaces of the account, as an agent of the
    /// agents file (mode 0600), so that later commands need no options.
    Login {
        /// The agent's name in the agents file.
        #[arg(long, default_value = "local")]
        name: String,
        /// Read the password from the first line of standard input
        /// (else FLOW_PASSWORD, else a prompt).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Prints a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// How `flow tail` prints an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TailOutput {
    Json,
    Data,
    Summary,
}

#[derive(Debug, Subcommand)]
pub enum Create {
    /// A flow in a namespace you own.
    Flow {
        #[arg(value_parser = flow_name)]
        name: String,
        /// Readable by anyone, also anonymously.
        #[arg(long)]
        public: bool,
    },
    /// A namespace (where the FNAA allows users to create them).
    Namespace { name: String },
    /// A processor instance wiring input flows to output flows.
    Processor {
        name: String,
        /// `plugin[@version]`.
        #[arg(long)]
        plugin: String,
        /// Input flows, comma-separated or repeated.
        #[arg(long, value_delimiter = ',', required = true)]
        input: Vec<String>,
        /// Output flows, comma-separated or repeated.
        #[arg(long, value_delimiter = ',', required = true)]
        output: Vec<String>,
        /// The processor's configuration, a JSON object (`--config` names
        /// the agents file).
        #[arg(long, value_name = "JSON")]
        settings: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Object {
    Flow {
        #[arg(value_parser = flow_name)]
        name: String,
    },
    Processor {
        name: String,
    },
    /// A subscription, by the copy flow SUBSCRIBE returned: its state and
    /// the events it moved.
    Subscription {
        #[arg(value_parser = flow_name)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Deletable {
    Flow {
        #[arg(value_parser = flow_name)]
        name: String,
    },
    Namespace {
        name: String,
    },
    Processor {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Listing {
    /// Your flows, or the flows of a namespace you may read.
    Flows {
        namespace: Option<String>,
    },
    Namespaces,
    Subscriptions,
    Processors,
}

#[derive(Debug, Subcommand)]
pub enum ProcessorCommand {
    /// Changes the plugin version and/or the configuration.
    Update {
        name: String,
        #[arg(long)]
        plugin: Option<String>,
        /// The new configuration, a JSON object.
        #[arg(long, value_name = "JSON")]
        settings: Option<String>,
    },
    Pause {
        name: String,
    },
    Resume {
        name: String,
    },
    /// Same as `describe processor`.
    Status {
        name: String,
    },
}

/// A flow given as `flow://name.namespace.domain` or as the bare name: FNAP
/// commands take the bare name (thesis annex C).
fn flow_name(text: &str) -> Result<String, String> {
    let bare = text.strip_prefix("flow://").unwrap_or(text);
    if bare.is_empty() || bare.contains('/') {
        return Err(format!(
            "`{text}` is not a flow name (name.namespace.domain or flow://name.namespace.domain)"
        ));
    }
    Ok(bare.to_owned())
}
