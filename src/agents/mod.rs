//! Agents at work by mail: which mail is proven to come from an agent ([`auth`]), and what the commands at the top of
//! an agent's reply ask for ([`commands`]).
//!
//! Both are pure functions over parsed mail: no database, no I/O. The pipeline looks the From address up among the
//! enabled agents, asks [`auth::prove_agent`] for proof, and only then reads the reply with
//! [`commands::parse_agent_reply`]. Without proof the mail is customer mail, whatever its From says.

pub mod auth;
pub mod commands;
pub mod notify;

pub use auth::{AgentProof, AuthContext, Proof, prove_agent};
pub use commands::{AgentReply, Command, CommandLine, parse_agent_reply};
