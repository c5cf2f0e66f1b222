//! RFC 8555 vocabulary as pure types: problems, identifiers, statuses and the JSON resources.
//! Nothing in here does I/O.

pub mod identifier;
pub mod problem;
pub mod resources;
pub mod status;

pub use identifier::{Identifier, IdentifierError};
pub use problem::{Problem, ProblemType};
pub use status::{AccountStatus, AuthorizationStatus, ChallengeStatus, OrderStatus};
