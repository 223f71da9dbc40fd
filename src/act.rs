//! `postdesk ticket reply|note|close|reopen|assign|queue|priority|merge`: the command-line front end of the ticket
//! actions. The work is done by `pipeline::actions`, the very code an agent's mail commands run, so the history
//! records, the rights checks and the notifications are the same; mail goes to the outbox and `postdesk run`
//! sends it. Arguments are read by the agents' `#command` grammar (`agents::commands::parse_command`).
//!
//! Without `--from-agent` the operator acts as `admin`: rights on every queue, recorded as `admin` in the ticket
//! history. With `--from-agent ADDRESS` the action is that agent's, with that agent's rights.

use std::io::Read;
use std::path::Path;

use clap::Subcommand;

use crate::agents::CommandLine;
use crate::agents::commands::parse_command;
use crate::exit::{EX_DATAERR, EX_NOINPUT, EX_NOPERM, Failure};
use crate::pipeline::Pipeline;
use crate::pipeline::actions::{Action, ActionError};
use crate::setup::{load_setup, load_signer, open_store};

#[derive(Subcommand)]
pub enum TicketAction {
    /// Answer the customer (and the ticket's Cc parties): the text is read from standard input.
    Reply {
        /// The ticket's number, e.g. 2026112410000011.
        number: String,
        /// Act as this agent (rights checked; their name shown if agents.show_agent_name); default: admin.
        #[arg(long)]
        from_agent: Option<String>,
    },
    /// Add an internal note (standard input); the queue's agents are told, the customer is not.
    Note {
        /// The ticket's number, e.g. 2026112410000011.
        number: String,
        /// Act as this agent (rights checked); default: admin.
        #[arg(long)]
        from_agent: Option<String>,
    },
    /// Close the ticket (a customer's next mail opens it again).
    Close {
        /// The ticket's number, e.g. 2026112410000011.
        number: String,
        /// Act as this agent (rights checked); default: admin.
        #[arg(long)]
        from_agent: Option<String>,
    },
    /// Open a closed ticket again.
    Reopen {
        /// The ticket's number, e.g. 2026112410000011.
        number: String,
        /// Act as this agent (rights checked); default: admin.
        #[arg(long)]
        from_agent: Option<String>,
    },
    /// Hand the ticket to an agent with rights on its queue (locked to them, and they are told).
    Assign {
        /// The ticket's number, e.g. 2026112410000011.
        number: String,
        /// The agent's address.
        agent: String,
        /// Act as this agent (rights checked); default: admin.
        #[arg(long)]
        from_agent: Option<String>,
    },
    /// Move the ticket to another queue (its agents are told).
    Queue {
        /// The ticket's number, e.g. 2026112410000011.
        number: String,
        /// The queue's name.
        queue: String,
        /// Act as this agent (rights checked); default: admin.
        #[arg(long)]
        from_agent: Option<String>,
    },
    /// Set the priority: very-low, low, normal, high, very-high, or 1 to 5.
    Priority {
        /// The ticket's number, e.g. 2026112410000011.
        number: String,
        /// very-low, low, normal, high, very-high, or 1 to 5.
        priority: String,
        /// Act as this agent (rights checked); default: admin.
        #[arg(long)]
        from_agent: Option<String>,
    },
    /// Merge the ticket into ticket INTO: its parties may go on writing with the old number.
    Merge {
        /// The ticket's number, e.g. 2026112410000011.
        number: String,
        /// The number of the ticket that stays.
        into: String,
        /// Act as this agent (rights checked); default: admin.
        #[arg(long)]
        from_agent: Option<String>,
    },
}

/// What was asked, before its text is read or its arguments parsed.
enum Request {
    Reply,
    Note,
    /// `#word args`.
    Command(&'static str, String),
}

impl TicketAction {
    /// (ticket number, acting agent, what is asked).
    fn parts(self) -> (String, Option<String>, Request) {
        use Request::Command as C;
        match self {
            TicketAction::Reply { number, from_agent } => (number, from_agent, Request::Reply),
            TicketAction::Note { number, from_agent } => (number, from_agent, Request::Note),
            TicketAction::Close { number, from_agent } => (number, from_agent, C("close", String::new())),
            TicketAction::Reopen { number, from_agent } => (number, from_agent, C("reopen", String::new())),
            TicketAction::Assign { number, agent, from_agent } => (number, from_agent, C("assign", agent)),
            TicketAction::Queue { number, queue, from_agent } => (number, from_agent, C("queue", queue)),
            TicketAction::Priority { number, priority, from_agent } => (number, from_agent, C("priority", priority)),
            TicketAction::Merge { number, into, from_agent } => (number, from_agent, C("merge", into)),
        }
    }
}

pub fn run(config_path: &Path, action: TicketAction) -> Result<(), Failure> {
    let (number, from_agent, request) = action.parts();
    let action = match request {
        Request::Reply => Action::Reply(read_text()?),
        Request::Note => Action::Note(read_text()?),
        Request::Command(word, args) => {
            let args = args.trim();
            let text = if args.is_empty() { format!("#{word}") } else { format!("#{word} {args}") };
            let parsed = parse_command(word, args);
            if let Err(why) = &parsed {
                return Err(Failure::new(EX_DATAERR, why.clone()));
            }
            Action::Command(CommandLine { line: 0, text, parsed })
        }
    };
    let setup = load_setup(config_path)?;
    let mut store = open_store(&setup.config)?;
    crate::admin::seed_from_config(&mut store, &setup.config)?;
    let signer = load_signer(&setup.config)?;
    let relay = setup.config.smtp.is_some();
    let pipeline = Pipeline::new(setup, signer);
    let done = pipeline.act(&mut store, &number, from_agent.as_deref(), action).map_err(|e| match e {
        ActionError::Store(e) => Failure::from(e),
        ActionError::NoTicket(_) => Failure::new(EX_NOINPUT, e.to_string()),
        ActionError::NotAllowed(_) => Failure::new(EX_NOPERM, e.to_string()),
        ActionError::Refused(_) => Failure::new(EX_DATAERR, e.to_string()),
    })?;
    crate::say!("ticket {}: {}", done.number, done.outcome);
    if !relay && done.outcome.contains("queued") {
        crate::say!("note: no [smtp] relay is configured; the mail waits in the outbox until one is");
    }
    Ok(())
}

/// The text of a reply or note, from standard input (UTF-8; CRLF or LF).
fn read_text() -> Result<String, Failure> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        crate::say!("type the text, end with Ctrl-D:");
    }
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::new(EX_NOINPUT, format!("cannot read standard input: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| Failure::new(EX_DATAERR, "the text is not UTF-8"))?;
    Ok(text.replace("\r\n", "\n"))
}
