//! The types every stage and reporter shares: the connection record that the analysis fills and
//! the reporters read (`model`), the findings across connections (`findings`), and the [`Sink`] interface between them. Below all stages, so
//! that no stage imports a reporter.

pub mod app;
pub mod compact_json;
pub mod findings;
pub mod http2;
pub mod model;
pub mod order;
pub mod sink;
pub mod spool;
pub mod tls;

pub use app::*;
pub use findings::{Finding, FindingId, Suspect};
pub use http2::{Http2ConnectionRecord, Http2GoAwayRecord, Http2OtherStream, Http2StreamRecord};
pub use model::*;
pub use sink::{Event, Position, Sink};
