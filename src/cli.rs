//! Command-line arguments (clap derive). Raw flags here; `run.rs` turns them into options.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Analyze WebSocket traffic in packet captures.
#[derive(Debug, Parser)]
#[command(name = "wsprobe", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyze saved captures (.pcap, .pcapng; '-' reads standard input).
    Analyze(AnalyzeArgs),
    /// Watch WebSocket traffic on a network interface as it happens (libpcap; needs root or
    /// CAP_NET_RAW). Stops at Ctrl-C, SIGTERM, --duration or --count, then reports.
    Live(LiveArgs),
    /// List the capture interfaces (names for `live -i`).
    Interfaces,
    /// List the diagnostic ids (severities, meanings) and the finding ids.
    Diagnostics,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Table,
    /// One JSON report (schema/report.v1.json).
    Json,
    /// One JSON event per line.
    Jsonl,
    /// One self-contained HTML page: summary, timeline, per-connection panels, plots.
    Html,
    /// HTTP Archive 1.2 with Chrome's `_webSocketMessages` (opens in DevTools, HTTP Toolkit).
    Har,
}

/// How much payload message records carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PayloadArg {
    /// No payload.
    None,
    /// The first --preview-bytes bytes.
    Preview,
    /// All of it (up to --max-message-bytes).
    Full,
}

/// Options shared by `analyze` and `live`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Add every message and control frame to the report.
    #[arg(long)]
    pub messages: bool,
    /// Add every frame's header (FIN, RSV, opcode, MASK, lengths) to the report: `frames_detail`
    /// per connection in json, `frame` events in jsonl, a frame log in the table.
    #[arg(long)]
    pub frames: bool,
    /// How much payload goes into message records [default: preview; full for --format har].
    #[arg(long, value_enum)]
    pub payload: Option<PayloadArg>,
    /// Bytes shown with --payload preview.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub preview_bytes: usize,
    /// Exit 1 when a reported connection has a diagnostic with one of these ids, or of one of
    /// these severities or worse (error, warning, info), or when a finding across connections
    /// has one of these ids (idle_timeout, server_restart, ...). Comma-separated.
    #[arg(long, value_name = "ID[,ID...]", value_delimiter = ',')]
    pub fail_on: Vec<String>,
    /// Application protocols to recognise and decode inside the messages: auto (default: by
    /// subprotocol, URL, then content), none, or protocol names (socket.io, graphql,
    /// graphql-transport-ws, subscriptions-transport-ws, stomp, sockjs, mqtt, signalr, json-rpc,
    /// phoenix, actioncable, tunnel); one name forces that decoder on every connection.
    #[arg(
        long,
        value_name = "auto|none|NAME[,NAME]",
        value_delimiter = ',',
        default_value = "auto"
    )]
    pub app: Vec<String>,
    /// Report only this connection id (the ids of a previous report). Exit 2 when there is none.
    #[arg(long, value_name = "ID")]
    pub connection: Option<u64>,
    /// Report only connections with this endpoint, client or server side: IP, IP:PORT,
    /// [IPv6]:PORT, :PORT or PORT. The totals count only what matches.
    #[arg(long, value_name = "ENDPOINT")]
    pub address: Option<String>,
    /// Table: every column in full, as wide as it needs (for a wide terminal or a file). The
    /// default table fits the terminal's width (COLUMNS when set, else 100 when not a terminal).
    #[arg(long)]
    pub wide: bool,
    /// Indent the JSON report.
    #[arg(long)]
    pub pretty: bool,
    /// Largest payload kept per message with --payload full (bytes).
    #[arg(long, default_value_t = 16 << 20, value_name = "BYTES")]
    pub max_message_bytes: usize,
    /// Largest inflated size per compressed message (bytes): decompression-bomb guard.
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    pub max_inflated_bytes: u64,
    /// Out-of-order TCP bytes held per direction (bytes).
    #[arg(long, default_value_t = 4 << 20, value_name = "BYTES")]
    pub max_buffered_bytes: usize,
    /// Packets of a connection to wait for data the capture shows after the peer's ACK of it
    /// (reordering at multi-queue NICs, `-i any`, merged taps) before the hole is a gap; the
    /// wait also lasts --late-seconds. 0 and 0: a gap at the ACK.
    #[arg(long, default_value_t = crate::tcp::reassembly::DEFAULT_LATE_PACKETS, value_name = "N")]
    pub late_packets: u64,
    /// Capture seconds to wait for such late data (with --late-packets).
    #[arg(long, default_value_t = crate::tcp::reassembly::DEFAULT_LATE_SECONDS, value_name = "SECS")]
    pub late_seconds: f64,
    /// Worker threads for capture files (default: the cores available): packets are decoded
    /// once and routed by connection to the thread that owns it, and the report is merged back
    /// into the single-threaded one, byte for byte. Standard input and live capture use one
    /// thread. When a cap (--max-connections, --max-inflaters, --max-listed-bytes) is reached,
    /// what it stops can differ from a one-thread run; the run says so.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Connections tracked at once.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub max_connections: usize,
    /// Idle connections followed at once; past it the longest-idle are reported as still open.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub max_idle_connections: usize,
    /// Seconds (capture time) without packets after which a WebSocket connection is reported as
    /// still open and no longer followed. Raise it to catch proxies with longer idle timeouts.
    #[arg(long, default_value_t = 600.0, value_name = "SECS")]
    pub idle_timeout: f64,
    /// permessage-deflate decoders alive at once (each up to ~85 KiB; a direction holds one, two
    /// while it recovers from lost compression history); past it messages are counted, not
    /// inflated.
    #[arg(long, default_value_t = crate::ws::message::DEFAULT_MAX_INFLATERS, value_name = "N")]
    pub max_inflaters: usize,
    /// NSS key log (SSLKEYLOGFILE format) to decrypt TLS with; repeatable. Default:
    /// $SSLKEYLOGFILE when set. Keys embedded in a pcapng (Decryption Secrets Block) are used
    /// too. In `live`, the file is re-read as it grows.
    #[arg(long, value_name = "FILE")]
    pub keylog: Vec<std::path::PathBuf>,
    /// Bytes of listed messages (--messages, json and table) held at once; past it messages
    /// are counted but not listed. json holds them in a temporary file (in $TMPDIR), not in
    /// memory, until their connection is written. For html and har it bounds all messages
    /// written [default: 256 MiB; none for json; 32 MiB for --format html].
    #[arg(long, value_name = "BYTES")]
    pub max_listed_bytes: Option<u64>,
    /// Dataset tables, HAR and HTML options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Where reports go besides standard output, and what they may contain.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Also write dataset tables (connections, diagnostics; messages with --messages) under
    /// DIR, hive-partitioned: DIR/table=T/date=YYYY-MM-DD/sensor=S/part-RUN.jsonl[.gz].
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<std::path::PathBuf>,
    /// Gzip the --out-dir tables (.jsonl.gz).
    #[arg(long, requires = "out_dir")]
    pub compress: bool,
    /// File format of the --out-dir tables (parquet needs a build with `--features parquet`).
    #[arg(long, value_enum, default_value_t = TableFormat::Jsonl, requires = "out_dir")]
    pub table_format: TableFormat,
    /// Name of this capture point in the tables [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,
    /// Keep credentials (Authorization, Cookie, Set-Cookie, tokens in the query string and in
    /// Sec-WebSocket-Protocol) in every report; by default their values become REDACTED.
    #[arg(long)]
    pub no_redact: bool,
}

/// File format of the dataset tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    /// JSON Lines, one flat object per row.
    Jsonl,
    /// Apache Parquet (build with `--features parquet`).
    Parquet,
}

/// `wsprobe analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Capture files; '-' reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Packet filter as for tcpdump (pcap-filter(7)), e.g. 'tcp port 8080': only the packets
    /// that match are analysed. Needs libpcap (the default build).
    #[arg(short = 'f', long, value_name = "BPF")]
    pub filter: Option<String>,
    /// Report options.
    #[command(flatten)]
    pub report: ReportArgs,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// `wsprobe live`.
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Interface to capture on (`any` for all; `wsprobe interfaces` lists them).
    #[arg(short = 'i', long, value_name = "IFACE")]
    pub interface: String,
    /// Packet filter as for tcpdump (pcap-filter(7)), e.g. 'tcp port 8080': only the packets
    /// that match are captured and analysed (applied in the kernel).
    #[arg(short = 'f', long, value_name = "BPF")]
    pub filter: Option<String>,
    /// Bytes captured per packet.
    #[arg(long, default_value_t = 262_144, value_name = "BYTES")]
    pub snaplen: u32,
    /// Put the interface in promiscuous mode.
    #[arg(long)]
    pub promisc: bool,
    /// Kernel capture buffer (MiB): larger absorbs longer bursts without drops.
    #[arg(long, default_value_t = 32, value_name = "MIB")]
    pub buffer_mb: u32,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Stop after this many packets (counted after the filter).
    #[arg(short = 'c', long, value_name = "N")]
    pub count: Option<u64>,
    /// Also save the captured packets to this pcap file.
    #[arg(short = 'w', long, value_name = "FILE.pcap")]
    pub write: Option<std::path::PathBuf>,
    /// With --write: start a new file (FILE.1.pcap, FILE.2.pcap, ...) each N MiB.
    #[arg(long, value_name = "N", requires = "write")]
    pub rotate_mb: Option<u64>,
    /// Report options.
    #[command(flatten)]
    pub report: ReportArgs,
}
