//! Outgoing mail, as pure building blocks: templates rendered from a context, RFC 5322 bytes built with lettre's
//! typed API, HMAC proofs in Message-IDs and reply addresses, the "may we answer automatically" decision, and the
//! SMTP relay client (the one network edge here). The outbox table and the sender loop live elsewhere.

pub mod message;
pub mod policy;
pub mod sender;
pub mod signing;
pub mod smtp;
pub mod templates;

pub use message::{AutoSubmitted, BuildError, LOOP_HEADER, OutgoingMail, build};
pub use policy::{Blocked, ReplyPolicyInput, auto_reply_blocker, is_our_own_mail, normalise_sender};
pub use signing::Signer;
pub use smtp::{Relay, SendError, SmtpSetupError};
pub use templates::{RenderError, Rendered, TemplateContext, TemplateErrors, Templates};
