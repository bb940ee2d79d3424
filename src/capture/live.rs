//! Live capture through libpcap: an interface in, [`Packet`]s out as they arrive.
//!
//! The loop never blocks in libpcap: the handle is non-blocking and the loop `poll`s its file
//! descriptor together with a wake-up socket, at most [`TICK`] at a time. libpcap's own read
//! timeout cannot bound a read on an idle interface (it blocked for 102 s once in our
//! measurements), so stopping promptly (Ctrl-C, `--duration`) relies on this instead: a
//! [`StopHandle`] sets a flag and writes to the wake-up socket, and the loop returns at once.

use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use pcap::{Active, Capture, Device, Savefile};

use super::{LinkType, Packet};
use crate::error::{Error, Result};

/// Longest wait in `poll` between checks of the clock (deadline, ticks).
const TICK: Duration = Duration::from_millis(250);

/// How often the caller's tick runs (idle sweeps, flushing `--write`).
const TICK_EVERY: Duration = Duration::from_secs(1);

/// Bytes of a pcap file header and of a record header, for `--rotate-mb` accounting.
const PCAP_FILE_HEADER: u64 = 24;
const PCAP_RECORD_HEADER: u64 = 16;

/// What to capture and how.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Interface name (`any` for all on Linux).
    pub interface: String,
    /// BPF filter expression (pcap-filter(7)).
    pub filter: Option<String>,
    /// Bytes kept per packet.
    pub snaplen: u32,
    /// Put the interface in promiscuous mode.
    pub promisc: bool,
    /// Kernel capture buffer, MiB.
    pub buffer_mb: u32,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many packets.
    pub count: Option<u64>,
    /// Save what is captured to this pcap file.
    pub write: Option<PathBuf>,
    /// Start a new file (`X.1.pcap`, `X.2.pcap`, ...) when one reaches this many MiB.
    pub rotate_mb: Option<u64>,
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// [`StopHandle::stop`] was called (Ctrl-C, SIGTERM, ...).
    Stopped,
    /// `--duration` elapsed.
    Duration,
    /// `--count` packets were captured.
    Count,
    /// A callback asked to stop (e.g. the output was closed).
    Callback,
    /// libpcap reported an error (e.g. the interface went down).
    Error,
}

/// What a callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep capturing.
    Continue,
    /// Stop the capture.
    Stop,
}

/// Totals of one live capture.
#[derive(Debug, Clone)]
pub struct LiveStats {
    /// Packets captured (after the filter).
    pub packets: u64,
    /// Captured bytes.
    pub bytes: u64,
    /// Packets the kernel dropped (buffer full), from `pcap_stats`; `None` if unavailable.
    pub dropped_by_kernel: Option<u64>,
    /// Packets the interface or its driver dropped, from `pcap_stats`.
    pub dropped_by_interface: Option<u64>,
    /// Why the loop ended.
    pub reason: StopReason,
    /// The libpcap error that ended the capture.
    pub error: Option<String>,
    /// The first `--write` error (capture and analysis went on; saving stopped or was cut).
    pub write_error: Option<String>,
    /// Files written with `--write`, in order.
    pub files_written: Vec<PathBuf>,
}

/// Stops a running capture from another thread (a signal handler's thread, a timer).
#[derive(Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    wake: Arc<UnixStream>,
}

impl StopHandle {
    /// Asks the capture loop to stop; it returns within a moment even on an idle interface.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = (&*self.wake).write(&[1]);
    }

    /// Has [`StopHandle::stop`] been called?
    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// An interface as `wsprobe interfaces` lists it.
#[derive(Debug, Clone)]
pub struct InterfaceInfo {
    /// Name to pass to `-i`.
    pub name: String,
    /// libpcap's description.
    pub description: Option<String>,
    /// Addresses, as `ip/prefix` when the netmask is known.
    pub addresses: Vec<String>,
    /// Up.
    pub up: bool,
    /// Running.
    pub running: bool,
    /// Loopback.
    pub loopback: bool,
    /// Wireless.
    pub wireless: bool,
}

/// Capture devices known to libpcap.
pub fn interfaces() -> Result<Vec<InterfaceInfo>> {
    let devices = Device::list()
        .map_err(|e| Error::Live(format!("cannot list interfaces: {}", pcap_message(&e))))?;
    Ok(devices
        .into_iter()
        .map(|d| InterfaceInfo {
            addresses: d
                .addresses
                .iter()
                .map(|a| match a.netmask.and_then(prefix_len) {
                    Some(p) => format!("{}/{p}", a.addr),
                    None => a.addr.to_string(),
                })
                .collect(),
            up: d.flags.is_up(),
            running: d.flags.is_running(),
            loopback: d.flags.is_loopback(),
            wireless: d.flags.is_wireless(),
            description: d.desc,
            name: d.name,
        })
        .collect())
}

fn prefix_len(mask: std::net::IpAddr) -> Option<u32> {
    let ones = match mask {
        std::net::IpAddr::V4(m) => u32::from(m).count_ones(),
        std::net::IpAddr::V6(m) => u128::from(m).count_ones(),
    };
    Some(ones)
}

/// libpcap's message without the crate's "libpcap error: " prefix.
fn pcap_message(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// The link type of a libpcap DLT value (they differ from LINKTYPE values in a few cases).
pub fn link_of_dlt(dlt: i32) -> LinkType {
    match dlt {
        // OpenBSD numbers DLT_LOOP 12 (and DLT_RAW 14); elsewhere 12 is DLT_RAW.
        12 if cfg!(target_os = "openbsd") => LinkType::LOOP,
        n => LinkType(n),
    }
}

/// An open capture, ready to run.
pub struct LiveCapture {
    cap: Capture<Active>,
    link: LinkType,
    options: LiveOptions,
    writer: Option<Writer>,
    flag: Arc<AtomicBool>,
    wake_rx: UnixStream,
    wake_tx: Arc<UnixStream>,
}

impl LiveCapture {
    /// Opens the interface, applies the filter and opens `--write`; every failure is an
    /// [`Error::Live`] whose message says what to do.
    pub fn open(options: &LiveOptions) -> Result<LiveCapture> {
        let name = options.interface.as_str();
        let inactive = Capture::from_device(name)
            .map_err(|e| open_error(name, &e))?
            .snaplen(i32::try_from(options.snaplen).unwrap_or(i32::MAX))
            .promisc(options.promisc)
            .immediate_mode(true)
            .buffer_size(
                i32::try_from(u64::from(options.buffer_mb) << 20).unwrap_or(i32::MAX & !0xfffff),
            )
            .timeout(100);
        let mut cap = inactive.open().map_err(|e| open_error(name, &e))?;
        if let Some(filter) = options.filter.as_deref() {
            cap.filter(filter, true).map_err(|e| {
                Error::Live(format!(
                    "the capture filter {filter:?} does not compile: {}; see `man pcap-filter` (e.g. -f 'tcp port 8080')",
                    pcap_message(&e)
                ))
            })?;
        }
        let cap = cap.setnonblock().map_err(|e| {
            Error::Live(format!(
                "{name}: cannot make the capture non-blocking: {}",
                pcap_message(&e)
            ))
        })?;
        let link = link_of_dlt(cap.get_datalink().0);
        let writer = match &options.write {
            Some(path) => Some(Writer::new(&cap, path, options.rotate_mb)?),
            None => None,
        };
        let (wake_rx, wake_tx) = UnixStream::pair()
            .map_err(|e| Error::Live(format!("cannot create a wake-up socket: {e}")))?;
        wake_rx
            .set_nonblocking(true)
            .and_then(|()| wake_tx.set_nonblocking(true))
            .map_err(|e| Error::Live(format!("cannot create a wake-up socket: {e}")))?;
        Ok(LiveCapture {
            cap,
            link,
            options: options.clone(),
            writer,
            flag: Arc::new(AtomicBool::new(false)),
            wake_rx,
            wake_tx: Arc::new(wake_tx),
        })
    }

    /// The link type of the packets.
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// A handle that stops [`LiveCapture::run`] from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            flag: Arc::clone(&self.flag),
            wake: Arc::clone(&self.wake_tx),
        }
    }

    /// Captures until stopped, the duration ends or the count is reached, handing each packet
    /// to `on_packet` and calling `on_tick` with the wall-clock time (Unix seconds) about once
    /// a second, packets or not.
    pub fn run<P, T>(&mut self, mut on_packet: P, mut on_tick: T) -> LiveStats
    where
        P: FnMut(&Packet<'_>) -> Control,
        T: FnMut(f64) -> Control,
    {
        let start = Instant::now();
        let deadline = self.options.duration.and_then(|d| start.checked_add(d));
        let mut next_tick = start + TICK_EVERY;
        let mut packets = 0u64;
        let mut bytes = 0u64;
        let mut error = None;
        let mut write_error = None;
        let reason = 'capture: loop {
            // Drain what is there.
            loop {
                if self.flag.load(Ordering::SeqCst) {
                    break 'capture StopReason::Stopped;
                }
                if self.options.count.is_some_and(|n| packets >= n) {
                    break 'capture StopReason::Count;
                }
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    break 'capture StopReason::Duration;
                }
                if now >= next_tick {
                    next_tick = now + TICK_EVERY;
                    if let Some(w) = &mut self.writer
                        && let Err(e) = w.flush()
                    {
                        write_error.get_or_insert(e);
                    }
                    if on_tick(unix_now()) == Control::Stop {
                        break 'capture StopReason::Callback;
                    }
                }
                if let Some(w) = &mut self.writer
                    && w.full()
                    && let Err(e) = w.rotate(&self.cap)
                {
                    write_error.get_or_insert(e);
                    self.writer = None;
                }
                match self.cap.next_packet() {
                    Ok(p) => {
                        packets += 1;
                        bytes += p.data.len() as u64;
                        if let Some(w) = &mut self.writer {
                            w.write(&p);
                        }
                        let packet = Packet {
                            ts: p.header.ts.tv_sec as f64 + p.header.ts.tv_usec as f64 * 1e-6,
                            link: self.link,
                            data: p.data,
                            orig_len: p.header.len,
                        };
                        if on_packet(&packet) == Control::Stop {
                            break 'capture StopReason::Callback;
                        }
                    }
                    Err(pcap::Error::TimeoutExpired) => break,
                    Err(pcap::Error::NoMorePackets) => {
                        // pcap_breakloop: only our own stop uses it; treat as a stop.
                        break 'capture StopReason::Stopped;
                    }
                    Err(e) => {
                        error = Some(format!(
                            "capture on {} failed: {}",
                            self.options.interface,
                            pcap_message(&e)
                        ));
                        break 'capture StopReason::Error;
                    }
                }
            }
            // Nothing buffered: wait for a packet, a stop, the next tick or the deadline.
            let now = Instant::now();
            let mut wait = TICK.min(next_tick.saturating_duration_since(now));
            if let Some(d) = deadline {
                wait = wait.min(d.saturating_duration_since(now));
            }
            wait_readable(
                self.cap.as_raw_fd(),
                self.wake_rx.as_raw_fd(),
                // Round up so a sub-millisecond remainder does not spin.
                wait.as_micros().div_ceil(1000) as i32,
            );
        };
        // Empty the wake-up socket (harmless if nothing is there).
        let _ = std::io::Read::read(&mut &self.wake_rx, &mut [0u8; 64]);
        let (dropped_by_kernel, dropped_by_interface) = match self.cap.stats() {
            Ok(s) => (Some(u64::from(s.dropped)), Some(u64::from(s.if_dropped))),
            Err(_) => (None, None),
        };
        let mut files_written = Vec::new();
        if let Some(mut w) = self.writer.take() {
            if let Err(e) = w.flush() {
                write_error.get_or_insert(e);
            }
            files_written = w.files.clone();
        }
        LiveStats {
            packets,
            bytes,
            dropped_by_kernel,
            dropped_by_interface,
            reason,
            error,
            write_error,
            files_written,
        }
    }
}

/// Unix seconds now.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Waits until either descriptor is readable or `timeout_ms` passes (signals just return).
fn wait_readable(capture: i32, wake: i32, timeout_ms: i32) {
    let mut fds = [
        libc::pollfd {
            fd: capture,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
    unsafe {
        libc::poll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            timeout_ms.max(0),
        );
    }
}

/// Turns a failure to open the interface into a message that says what to do.
fn open_error(name: &str, e: &pcap::Error) -> Error {
    let message = pcap_message(e);
    let lower = message.to_ascii_lowercase();
    // Listing needs no privilege, and on Linux opening fails for want of permission before
    // the name is looked at: check the name first.
    let known = Device::list().ok();
    let listed = known
        .as_ref()
        .is_none_or(|list| list.iter().any(|d| d.name == name));
    if !listed || lower.contains("no such device") || lower.contains("doesn't exist") {
        let names: Vec<String> = known
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.name)
            .take(8)
            .collect();
        let hint = if names.is_empty() {
            String::new()
        } else {
            format!(" (interfaces here: {})", names.join(", "))
        };
        return Error::Live(format!(
            "no such interface {name:?}{hint}; `wsprobe interfaces` lists them"
        ));
    }
    if lower.contains("permission")
        || lower.contains("not permitted")
        || lower.contains("eperm")
        || lower.contains("eacces")
    {
        return Error::Live(format!(
            "{name}: no permission to capture ({message}); run as root, or `sudo setcap cap_net_raw,cap_net_admin=eip $(which wsprobe)`"
        ));
    }
    Error::Live(format!("{name}: cannot capture: {message}"))
}

/// `--write`: a pcap savefile, rotated by size.
struct Writer {
    file: Savefile,
    base: PathBuf,
    rotate_bytes: Option<u64>,
    written: u64,
    files: Vec<PathBuf>,
}

impl Writer {
    fn new(cap: &Capture<Active>, path: &Path, rotate_mb: Option<u64>) -> Result<Writer> {
        let file = cap.savefile(path).map_err(|e| write_error(path, &e))?;
        Ok(Writer {
            file,
            base: path.to_path_buf(),
            rotate_bytes: rotate_mb.map(|mb| mb.max(1) << 20),
            written: PCAP_FILE_HEADER,
            files: vec![path.to_path_buf()],
        })
    }

    fn write(&mut self, p: &pcap::Packet<'_>) {
        self.file.write(p);
        self.written += PCAP_RECORD_HEADER + p.data.len() as u64;
    }

    /// Has the current file reached the `--rotate-mb` size?
    fn full(&self) -> bool {
        self.rotate_bytes.is_some_and(|limit| self.written >= limit)
    }

    /// Closes the current file and opens the next (same link type and snap length as `cap`).
    fn rotate(&mut self, cap: &Capture<Active>) -> std::result::Result<(), String> {
        let path = rotated_path(&self.base, self.files.len());
        let next = cap
            .savefile(&path)
            .map_err(|e| write_error(&path, &e).to_string())?;
        let mut old = std::mem::replace(&mut self.file, next);
        let flushed = old.flush();
        drop(old); // pcap_dump_close
        self.files.push(path);
        self.written = PCAP_FILE_HEADER;
        flushed.map_err(|e| format!("{}: cannot write: {e}", self.base.display()))
    }

    fn flush(&mut self) -> std::result::Result<(), String> {
        self.file.flush().map_err(|e| {
            format!(
                "{}: cannot write: {e}",
                self.files.last().unwrap_or(&self.base).display()
            )
        })
    }
}

fn write_error(path: &Path, e: &pcap::Error) -> Error {
    Error::Live(format!(
        "{}: cannot write the capture file: {}",
        path.display(),
        pcap_message(e)
    ))
}

/// `X.pcap` → `X.N.pcap` (`X` → `X.N` without an extension).
pub fn rotated_path(base: &Path, n: usize) -> PathBuf {
    match (base.file_stem(), base.extension()) {
        (Some(stem), Some(ext)) => base.with_file_name(format!(
            "{}.{n}.{}",
            stem.to_string_lossy(),
            ext.to_string_lossy()
        )),
        _ => {
            let mut s = base.as_os_str().to_owned();
            s.push(format!(".{n}"));
            PathBuf::from(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_names() {
        assert_eq!(
            rotated_path(Path::new("/tmp/cap.pcap"), 1),
            PathBuf::from("/tmp/cap.1.pcap")
        );
        assert_eq!(rotated_path(Path::new("out"), 2), PathBuf::from("out.2"));
    }

    #[test]
    fn dlt_values_map_to_link_types() {
        assert_eq!(link_of_dlt(1), LinkType::ETHERNET);
        assert_eq!(link_of_dlt(113), LinkType::LINUX_SLL);
        if !cfg!(target_os = "openbsd") {
            assert_eq!(link_of_dlt(12), LinkType::RAW_DLT12);
        }
    }
}
