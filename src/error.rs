//! Fatal errors: the command cannot do its job (exit status 2). Damaged input and protocol
//! findings are not errors; they are reported in `inputs[].error` and as diagnostics.

use std::path::PathBuf;

/// Something that stops wsprobe from doing what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A capture file could not be opened or read at all.
    #[error("{path}: cannot open: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why the OS refused.
        source: std::io::Error,
    },
    /// The input holds no bytes.
    #[error("{path}: the file is empty, not a capture")]
    Empty {
        /// The file.
        path: String,
    },
    /// The input does not start with a pcap or pcapng header.
    #[error(
        "{path}: not a pcap or pcapng capture (unrecognised header {magic}); convert it with `editcap -F pcap IN OUT` or `tshark -r IN -w OUT -F pcap`"
    )]
    NotACapture {
        /// The file.
        path: String,
        /// The first bytes, hex.
        magic: String,
    },
    /// Arguments that cannot be used (found after parsing, e.g. a filter libpcap rejects).
    #[error("{0}")]
    Usage(String),
    /// `--connection` names a connection the inputs do not have.
    #[error("{0}")]
    NotFound(String),
    /// A live capture could not start.
    #[error("{0}")]
    Live(String),
    /// Writing the report failed (other than a closed pipe).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// Result with [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;
