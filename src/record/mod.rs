//! The types every stage and reporter shares: the connection record that the analysis fills and
//! the reporters read (`model`), the findings across connections (`findings`), and the [`Sink`] interface between them. Below all stages, so
//! that no stage imports a reporter.

pub mod findings;
pub mod model;
pub mod sink;

pub use findings::{Finding, FindingId, Suspect};
pub use model::*;
pub use sink::{Event, Sink};
