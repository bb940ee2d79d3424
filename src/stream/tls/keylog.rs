//! Key material: the NSS key log format (`SSLKEYLOGFILE`, RFC 9850) from files and pcapng
//! Decryption Secrets Blocks, into a [`KeyStore`] shared by every connection (and later by
//! every thread): TLS 1.3 secrets and TLS 1.2 master secrets by client random, plus TLS 1.2
//! master secrets by session id and session ticket for resumed handshakes.
//!
//! A malformed line is a warning naming the source and line number; the rest is used. Memory
//! while reading is bounded by [`MAX_LINE`] whatever the file holds.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use super::schedule::Secret;
use crate::record::tls::{KeyLogSummary, KeyLogWarning};
use crate::record::{Position, order};

/// Longest line read. The longest real line is an `ECH_CONFIG` (an ECHConfig in hex, a few
/// hundred bytes); secret lines are under 220. Longer lines are malformed and are skipped
/// without being held.
pub const MAX_LINE: usize = 8 * 1024;

/// Warnings kept per source; the rest are counted.
pub const MAX_WARNINGS: usize = 20;

/// TLS 1.2 sessions learned from full handshakes in the capture and kept for resumption: the
/// oldest are forgotten first, so memory does not grow with the capture.
pub const MAX_LEARNED_SESSIONS: usize = 100_000;

/// A key log label (RFC 9850 §3, plus OpenSSL's `_N` traffic secrets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// `CLIENT_RANDOM`: TLS 1.2 48-byte master secret.
    ClientRandom,
    /// `CLIENT_EARLY_TRAFFIC_SECRET`.
    ClientEarlyTraffic,
    /// `CLIENT_HANDSHAKE_TRAFFIC_SECRET`.
    ClientHandshakeTraffic,
    /// `SERVER_HANDSHAKE_TRAFFIC_SECRET`.
    ServerHandshakeTraffic,
    /// `CLIENT_TRAFFIC_SECRET_N`.
    ClientTraffic(u32),
    /// `SERVER_TRAFFIC_SECRET_N`.
    ServerTraffic(u32),
    /// OpenSSL 3.0 writes the literal `CLIENT_TRAFFIC_SECRET_N` after each KeyUpdate: the
    /// next generation after the ones already logged for this client random.
    ClientTrafficNext,
    /// The same for `SERVER_TRAFFIC_SECRET_N`.
    ServerTrafficNext,
    /// `EXPORTER_SECRET`, `EARLY_EXPORTER_SECRET`, `ECH_SECRET`, `ECH_CONFIG`: valid, unused.
    Unused,
}

/// One meaningful key log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `LABEL <client random> <secret>`.
    Secret {
        /// The label.
        label: Label,
        /// The ClientHello random.
        client_random: [u8; 32],
        /// The secret (not set for [`Label::Unused`]).
        secret: Option<Secret>,
    },
    /// `RSA Session-ID:<id> Master-Key:<master>` (Java's extract-tls-secrets, old NSS).
    SessionMaster {
        /// The session id.
        session_id: Vec<u8>,
        /// The master secret.
        master: Secret,
    },
    /// A legacy form that carries no usable secret here (`RSA <enc pms> <pms>`,
    /// `PMS_CLIENT_RANDOM`): accepted, not used.
    Ignored,
}

fn unhex(s: &[u8], out: &mut Vec<u8>) -> bool {
    if !s.len().is_multiple_of(2) {
        return false;
    }
    out.clear();
    for pair in s.chunks_exact(2) {
        let hi = (pair[0] as char).to_digit(16);
        let lo = (pair[1] as char).to_digit(16);
        match (hi, lo) {
            (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
            _ => return false,
        }
    }
    true
}

/// Parses one line (without its line end). `Ok(None)`: blank or comment.
pub fn parse_line(line: &[u8]) -> Result<Option<Entry>, String> {
    let line = line.trim_ascii();
    if line.is_empty() || line[0] == b'#' {
        return Ok(None);
    }
    let mut fields = line
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|f| !f.is_empty());
    let label = fields.next().unwrap_or_default();
    let mut buf = Vec::with_capacity(48);
    if label == b"RSA" {
        let first = fields.next().unwrap_or_default();
        if let Some(id) = first.strip_prefix(b"Session-ID:") {
            let master = fields
                .next()
                .and_then(|m| m.strip_prefix(b"Master-Key:"))
                .ok_or("RSA Session-ID line without Master-Key:")?;
            if !unhex(id, &mut buf) || buf.is_empty() || buf.len() > 32 {
                return Err("Session-ID is not 1 to 32 bytes of hex".into());
            }
            let session_id = buf.clone();
            if !unhex(master, &mut buf) || buf.len() != 48 {
                return Err("Master-Key is not 48 bytes of hex".into());
            }
            return Ok(Some(Entry::SessionMaster {
                session_id,
                master: Secret::new(&buf).expect("48 bytes"),
            }));
        }
        return Ok(Some(Entry::Ignored));
    }
    let label_str = String::from_utf8_lossy(label);
    let label = match label {
        b"CLIENT_RANDOM" => Label::ClientRandom,
        b"CLIENT_EARLY_TRAFFIC_SECRET" => Label::ClientEarlyTraffic,
        b"CLIENT_HANDSHAKE_TRAFFIC_SECRET" => Label::ClientHandshakeTraffic,
        b"SERVER_HANDSHAKE_TRAFFIC_SECRET" => Label::ServerHandshakeTraffic,
        b"EXPORTER_SECRET" | b"EARLY_EXPORTER_SECRET" | b"ECH_SECRET" | b"ECH_CONFIG" => {
            Label::Unused
        }
        b"PMS_CLIENT_RANDOM" => return Ok(Some(Entry::Ignored)),
        b"CLIENT_TRAFFIC_SECRET_N" => Label::ClientTrafficNext,
        b"SERVER_TRAFFIC_SECRET_N" => Label::ServerTrafficNext,
        other => {
            let generation = |prefix: &[u8]| -> Option<u32> {
                let n = other.strip_prefix(prefix)?;
                if n.is_empty() || n.len() > 9 || !n.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                std::str::from_utf8(n).ok()?.parse().ok()
            };
            if let Some(n) = generation(b"CLIENT_TRAFFIC_SECRET_") {
                Label::ClientTraffic(n)
            } else if let Some(n) = generation(b"SERVER_TRAFFIC_SECRET_") {
                Label::ServerTraffic(n)
            } else {
                let shown: String = label_str.chars().take(40).collect();
                return Err(format!("unknown label {shown:?}"));
            }
        }
    };
    let (Some(random), Some(secret), None) = (fields.next(), fields.next(), fields.next()) else {
        return Err(format!("expected `{label_str} <client random> <secret>`"));
    };
    if !unhex(random, &mut buf) || buf.len() != 32 {
        return Err("client random is not 64 hex digits".into());
    }
    let mut client_random = [0u8; 32];
    client_random.copy_from_slice(&buf);
    if !unhex(secret, &mut buf) || buf.is_empty() {
        return Err("secret is not hex".into());
    }
    let secret = match label {
        Label::Unused => None,
        Label::ClientRandom if buf.len() != 48 => {
            return Err(format!(
                "CLIENT_RANDOM master secret is {} bytes, not 48",
                buf.len()
            ));
        }
        Label::ClientRandom => Secret::new(&buf),
        _ if buf.len() != 32 && buf.len() != 48 => {
            return Err(format!(
                "{label_str} secret is {} bytes, not 32 (SHA-256) or 48 (SHA-384)",
                buf.len()
            ));
        }
        _ => Secret::new(&buf),
    };
    Ok(Some(Entry::Secret {
        label,
        client_random,
        secret,
    }))
}

/// Splits a byte stream into lines (LF, CR or CRLF), holding at most [`MAX_LINE`] bytes.
#[derive(Debug, Default)]
struct LineSplitter {
    line: Vec<u8>,
    too_long: bool,
    /// Number of the line being collected (1-based).
    line_no: u64,
    after_cr: bool,
}

/// A line as the splitter hands it on.
enum Line<'a> {
    Text(&'a [u8]),
    TooLong,
}

impl LineSplitter {
    fn feed(&mut self, mut bytes: &[u8], on_line: &mut dyn FnMut(u64, Line<'_>)) {
        while !bytes.is_empty() {
            if self.after_cr && bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
            self.after_cr = false;
            let end = bytes.iter().position(|&b| b == b'\n' || b == b'\r');
            let (piece, ended) = match end {
                Some(i) => (&bytes[..i], Some(bytes[i])),
                None => (bytes, None),
            };
            if !self.too_long {
                if self.line.len() + piece.len() > MAX_LINE {
                    self.too_long = true;
                    self.line.clear();
                } else {
                    self.line.extend_from_slice(piece);
                }
            }
            match ended {
                Some(b) => {
                    self.emit(on_line);
                    self.after_cr = b == b'\r';
                    bytes = &bytes[piece.len() + 1..];
                }
                None => bytes = &[],
            }
        }
    }

    fn emit(&mut self, on_line: &mut dyn FnMut(u64, Line<'_>)) {
        self.line_no += 1;
        if self.too_long {
            on_line(self.line_no, Line::TooLong);
        } else {
            on_line(self.line_no, Line::Text(&self.line));
        }
        self.line.clear();
        self.too_long = false;
    }

    /// The input ended: a last line without a line end is a line.
    fn finish(&mut self, on_line: &mut dyn FnMut(u64, Line<'_>)) {
        if !self.line.is_empty() || self.too_long {
            self.emit(on_line);
        }
    }
}

/// TLS 1.3 secrets of one connection, by label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls13Secrets {
    /// `CLIENT_EARLY_TRAFFIC_SECRET`.
    pub client_early: Option<Secret>,
    /// `CLIENT_HANDSHAKE_TRAFFIC_SECRET`.
    pub client_handshake: Option<Secret>,
    /// `SERVER_HANDSHAKE_TRAFFIC_SECRET`.
    pub server_handshake: Option<Secret>,
    /// `CLIENT_TRAFFIC_SECRET_N` by N (usually only 0).
    pub client_traffic: Vec<(u32, Secret)>,
    /// `SERVER_TRAFFIC_SECRET_N` by N.
    pub server_traffic: Vec<(u32, Secret)>,
}

impl Tls13Secrets {
    /// Any secret at all?
    pub fn any(&self) -> bool {
        self.client_early.is_some()
            || self.client_handshake.is_some()
            || self.server_handshake.is_some()
            || !self.client_traffic.is_empty()
            || !self.server_traffic.is_empty()
    }

    /// The logged application traffic secret `generation` of one side.
    pub fn traffic(&self, server: bool, generation: u32) -> Option<Secret> {
        let list = if server {
            &self.server_traffic
        } else {
            &self.client_traffic
        };
        list.iter().find(|(n, _)| *n == generation).map(|(_, s)| *s)
    }
}

/// A bounded FIFO map for sessions learned from the capture.
#[derive(Debug, Default)]
struct Learned {
    /// Each secret with where in the run it was learned (several, rarely: a session id
    /// learned again later; a sharded run's look at position P sees the last one before P).
    map: HashMap<Vec<u8>, Vec<(Position, Secret)>>,
    order: VecDeque<Vec<u8>>,
}

impl Learned {
    /// The secret learned for `key` as seen at `at` (None: everything learned so far).
    fn get(&self, key: &[u8], at: Option<Position>) -> Option<&Secret> {
        let versions = self.map.get(key)?;
        match at {
            None => versions.last().map(|(_, s)| s),
            Some(at) => versions
                .iter()
                .rev()
                .find(|(learned, _)| *learned < at)
                .map(|(_, s)| s),
        }
    }

    fn insert(&mut self, key: &[u8], secret: Secret) {
        if key.is_empty() {
            return;
        }
        let at = order::position();
        let versions = self.map.entry(key.to_vec()).or_default();
        let fresh = versions.is_empty();
        versions.push((at, secret));
        versions.sort_by_key(|(at, _)| *at);
        if fresh {
            self.order.push_back(key.to_vec());
            if self.order.len() > MAX_LEARNED_SESSIONS
                && let Some(old) = self.order.pop_front()
            {
                self.map.remove(&old);
            }
        }
    }
}

#[derive(Debug, Default)]
struct Secrets {
    tls13: HashMap<[u8; 32], Tls13Secrets>,
    masters: HashMap<[u8; 32], Secret>,
    /// `RSA Session-ID` lines.
    logged_sessions: HashMap<Vec<u8>, Secret>,
    learned_sessions: Learned,
    learned_tickets: Learned,
}

impl Secrets {
    fn add(&mut self, entry: Entry) -> bool {
        match entry {
            Entry::Secret {
                label,
                client_random,
                secret: Some(secret),
            } => {
                if label == Label::ClientRandom {
                    self.masters.insert(client_random, secret);
                    return true;
                }
                let s = self.tls13.entry(client_random).or_default();
                match label {
                    Label::ClientEarlyTraffic => s.client_early = Some(secret),
                    Label::ClientHandshakeTraffic => s.client_handshake = Some(secret),
                    Label::ServerHandshakeTraffic => s.server_handshake = Some(secret),
                    Label::ClientTraffic(_)
                    | Label::ServerTraffic(_)
                    | Label::ClientTrafficNext
                    | Label::ServerTrafficNext => {
                        let server =
                            matches!(label, Label::ServerTraffic(_) | Label::ServerTrafficNext);
                        let list = if server {
                            &mut s.server_traffic
                        } else {
                            &mut s.client_traffic
                        };
                        let n = match label {
                            Label::ClientTraffic(n) | Label::ServerTraffic(n) => n,
                            // A repeated line is the same generation, not a new one.
                            _ if list.iter().any(|(_, known)| *known == secret) => return true,
                            _ => list.iter().map(|(g, _)| g + 1).max().unwrap_or(1).max(1),
                        };
                        // Duplicated lines (seen in real logs) replace, never pile up.
                        if let Some(slot) = list.iter_mut().find(|(g, _)| *g == n) {
                            slot.1 = secret;
                        } else if list.len() < 64 {
                            list.push((n, secret));
                        }
                    }
                    Label::ClientRandom | Label::Unused => {}
                }
                true
            }
            Entry::SessionMaster { session_id, master } => {
                self.logged_sessions.insert(session_id, master);
                true
            }
            Entry::Secret { secret: None, .. } | Entry::Ignored => false,
        }
    }
}

/// A key log file being followed.
#[derive(Debug)]
struct FileSource {
    path: PathBuf,
    /// Bytes read so far.
    offset: u64,
    splitter: LineSplitter,
    /// Index into `KeyStore::summaries`.
    summary: usize,
}

/// Every secret known, shared by all connections: `Arc<KeyStore>`. Reads take a read lock;
/// loading, refreshing and learning sessions take the write lock briefly.
#[derive(Debug, Default)]
pub struct KeyStore {
    secrets: RwLock<Secrets>,
    files: Mutex<Vec<FileSource>>,
    summaries: Mutex<Vec<KeyLogSummary>>,
    /// Live mode: a key-log file may still be written, so its unfinished last line waits.
    follow: bool,
}

/// Where a TLS 1.2 master secret was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterSource {
    /// `CLIENT_RANDOM` for this connection's random.
    ClientRandom,
    /// An `RSA Session-ID` line or an earlier full handshake with this session id.
    SessionId,
    /// An earlier full handshake that issued this ticket.
    Ticket,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data: keep using it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl KeyStore {
    /// An empty store. `follow`: key-log files are re-read as they grow ([`KeyStore::refresh`])
    /// and a last line without a line end waits for the rest.
    pub fn new(follow: bool) -> KeyStore {
        KeyStore {
            follow,
            ..KeyStore::default()
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Secrets> {
        self.secrets.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Secrets> {
        self.secrets.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads a key-log file (and remembers it for [`KeyStore::refresh`]). An unreadable file
    /// is an `Err`; malformed lines are warnings in the returned summary.
    pub fn load_file(&self, path: &Path) -> std::io::Result<KeyLogSummary> {
        let file = std::fs::File::open(path)?;
        if file.metadata()?.is_dir() {
            return Err(std::io::Error::other("is a directory"));
        }
        let index = {
            let mut summaries = lock(&self.summaries);
            summaries.push(KeyLogSummary {
                source: path.display().to_string(),
                ..KeyLogSummary::default()
            });
            summaries.len() - 1
        };
        let mut source = FileSource {
            path: path.to_path_buf(),
            offset: 0,
            splitter: LineSplitter::default(),
            summary: index,
        };
        self.read_from(&mut source, file)?;
        let summary = lock(&self.summaries)[index].clone();
        lock(&self.files).push(source);
        Ok(summary)
    }

    fn read_from(&self, source: &mut FileSource, mut file: impl Read) -> std::io::Result<()> {
        let mut block = vec![0u8; 64 * 1024];
        let mut pending: Vec<(u64, Result<Entry, String>)> = Vec::new();
        loop {
            let n = match file.read(&mut block) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            source.offset += n as u64;
            source
                .splitter
                .feed(&block[..n], &mut |no, line| collect(&mut pending, no, line));
            self.apply(source.summary, &mut pending);
        }
        if !self.follow {
            source
                .splitter
                .finish(&mut |no, line| collect(&mut pending, no, line));
            self.apply(source.summary, &mut pending);
        }
        Ok(())
    }

    /// Adds key-log text from another source (a pcapng Decryption Secrets Block: pass only
    /// its first `secrets_len` bytes). `name` labels warnings.
    pub fn add_text(&self, name: &str, text: &[u8]) -> KeyLogSummary {
        let index = {
            let mut summaries = lock(&self.summaries);
            summaries.push(KeyLogSummary {
                source: name.to_string(),
                ..KeyLogSummary::default()
            });
            summaries.len() - 1
        };
        let mut pending = Vec::new();
        let mut splitter = LineSplitter::default();
        splitter.feed(text, &mut |no, line| collect(&mut pending, no, line));
        splitter.finish(&mut |no, line| collect(&mut pending, no, line));
        self.apply(index, &mut pending);
        lock(&self.summaries)[index].clone()
    }

    fn apply(&self, summary: usize, pending: &mut Vec<(u64, Result<Entry, String>)>) {
        if pending.is_empty() {
            return;
        }
        let mut added = 0u64;
        let mut summaries = lock(&self.summaries);
        let s = &mut summaries[summary];
        {
            let mut secrets = self.write();
            for (line, parsed) in pending.drain(..) {
                s.lines = s.lines.max(line);
                match parsed {
                    Ok(entry) => {
                        if secrets.add(entry) {
                            added += 1;
                        }
                    }
                    Err(message) => {
                        s.malformed += 1;
                        if s.warnings.len() < MAX_WARNINGS {
                            s.warnings.push(KeyLogWarning { line, message });
                        }
                    }
                }
            }
        }
        s.secrets += added;
    }

    /// Re-reads followed key-log files that grew since the last read (a stat per file when
    /// nothing changed). A file that shrank was rewritten: it is read again from the start.
    /// Returns whether any line was read.
    pub fn refresh(&self) -> bool {
        let mut files = lock(&self.files);
        let mut read_any = false;
        for source in files.iter_mut() {
            let Ok(meta) = std::fs::metadata(&source.path) else {
                continue;
            };
            if meta.len() == source.offset {
                continue;
            }
            if meta.len() < source.offset {
                source.offset = 0;
                source.splitter = LineSplitter::default();
            }
            let Ok(mut file) = std::fs::File::open(&source.path) else {
                continue;
            };
            use std::io::Seek;
            if file.seek(std::io::SeekFrom::Start(source.offset)).is_err() {
                continue;
            }
            read_any |= self.read_from(source, file).is_ok();
        }
        read_any
    }

    /// Are there any sources at all (files or blocks)?
    pub fn has_sources(&self) -> bool {
        !lock(&self.summaries).is_empty()
    }

    /// What each source gave, for the report.
    pub fn summaries(&self) -> Vec<KeyLogSummary> {
        lock(&self.summaries).clone()
    }

    /// Number of usable secrets (lines) loaded.
    pub fn secret_count(&self) -> u64 {
        lock(&self.summaries).iter().map(|s| s.secrets).sum()
    }

    /// The TLS 1.3 secrets logged for a ClientHello random.
    pub fn tls13(&self, client_random: &[u8; 32]) -> Option<Tls13Secrets> {
        self.read()
            .tls13
            .get(client_random)
            .filter(|s| s.any())
            .cloned()
    }

    /// The TLS 1.2 master secret: by client random, then by session id, then by ticket
    /// (RFC 5246 §7.3 abbreviated handshakes reuse the earlier session's master secret).
    pub fn master_secret(
        &self,
        client_random: &[u8; 32],
        session_id: &[u8],
        ticket: Option<&[u8]>,
    ) -> Option<(Secret, MasterSource)> {
        {
            let s = self.read();
            if let Some(m) = s.masters.get(client_random) {
                return Some((*m, MasterSource::ClientRandom));
            }
            if !session_id.is_empty()
                && let Some(m) = s.logged_sessions.get(session_id)
            {
                return Some((*m, MasterSource::SessionId));
            }
        }
        // Learned from another connection's handshake: as a single thread would know it.
        let at = order::wait_for_the_others();
        let s = self.read();
        if !session_id.is_empty()
            && let Some(m) = s.learned_sessions.get(session_id, at)
        {
            return Some((*m, MasterSource::SessionId));
        }
        if let Some(t) = ticket.filter(|t| !t.is_empty())
            && let Some(m) = s.learned_tickets.get(t, at)
        {
            return Some((*m, MasterSource::Ticket));
        }
        None
    }

    /// A full TLS 1.2 handshake with this session id used `master`: remember it for later
    /// abbreviated handshakes in the capture.
    pub fn remember_session(&self, session_id: &[u8], master: Secret) {
        self.write().learned_sessions.insert(session_id, master);
    }

    /// The server issued `ticket` (NewSessionTicket) for a session with `master`.
    pub fn remember_ticket(&self, ticket: &[u8], master: Secret) {
        self.write().learned_tickets.insert(ticket, master);
    }

    /// Is this store following files (live)?
    pub fn follows(&self) -> bool {
        self.follow
    }
}

fn collect(pending: &mut Vec<(u64, Result<Entry, String>)>, no: u64, line: Line<'_>) {
    match line {
        Line::TooLong => pending.push((no, Err(format!("line longer than {MAX_LINE} bytes")))),
        Line::Text(text) => match parse_line(text) {
            Ok(Some(entry)) => pending.push((no, Ok(entry))),
            Ok(None) => {}
            Err(message) => pending.push((no, Err(message))),
        },
    }
    // `pending` is drained after every 64 KiB block: at most one block's lines (and a few
    // bytes each for junk) are held.
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7";
    const R2: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const S32: &str = "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38";
    const S48: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f";

    fn random(h: &str) -> [u8; 32] {
        let mut v = Vec::new();
        assert!(unhex(h.as_bytes(), &mut v));
        v.try_into().unwrap()
    }

    #[test]
    fn every_label_of_rfc9850_and_openssl() {
        let text = format!(
            "# a comment\r\n\
             \r\n\
             CLIENT_RANDOM {R2} {S48}\r\n\
             CLIENT_EARLY_TRAFFIC_SECRET {R1} {S32}\n\
             CLIENT_HANDSHAKE_TRAFFIC_SECRET {R1} {S32}\r\
             SERVER_HANDSHAKE_TRAFFIC_SECRET {R1} {}\n\
             CLIENT_TRAFFIC_SECRET_0 {R1} {S32}\n\
             SERVER_TRAFFIC_SECRET_0 {R1} {S32}\n\
             SERVER_TRAFFIC_SECRET_0 {R1} {S32}\n\
             CLIENT_TRAFFIC_SECRET_1 {R1} {S32}\n\
             EXPORTER_SECRET {R1} {S32}\n\
             EARLY_EXPORTER_SECRET {R1} {S32}\n\
             ECH_SECRET {R1} {S32}\n\
             ECH_CONFIG {R1} 0011aabb\n\
             RSA 0123456789abcdef 0303aabb\n\
             PMS_CLIENT_RANDOM {R1} 0303aabb\n\
             RSA Session-ID:abcd Master-Key:{S48}\n\
             SERVER_TRAFFIC_SECRET_N {R1} {S48_AS_32}\n\
             SERVER_TRAFFIC_SECRET_N {R1} {S48_AS_32}\n\
             SERVER_TRAFFIC_SECRET_0 {R1} {S32}",
            S32.to_uppercase(),
            S48_AS_32 = &S48[..64]
        );
        let store = KeyStore::new(false);
        let summary = store.add_text("test", text.as_bytes());
        assert_eq!(summary.malformed, 0, "{:?}", summary.warnings);
        assert_eq!(summary.lines, 20);
        let s = store.tls13(&random(R1)).unwrap();
        assert!(s.client_early.is_some() && s.client_handshake.is_some());
        assert_eq!(
            s.server_handshake, s.client_handshake,
            "hex case does not matter"
        );
        assert_eq!(
            s.server_traffic.len(),
            2,
            "duplicates replace; _N is generation 1"
        );
        assert!(s.traffic(true, 1).is_some() && s.traffic(true, 2).is_none());
        assert!(s.traffic(false, 1).is_some());
        let (m, src) = store.master_secret(&random(R2), &[], None).unwrap();
        assert_eq!((m.len(), src), (48, MasterSource::ClientRandom));
        let (_, src) = store.master_secret(&[9; 32], &[0xab, 0xcd], None).unwrap();
        assert_eq!(src, MasterSource::SessionId);
        assert!(store.master_secret(&[9; 32], &[1], Some(&[2])).is_none());
        store.remember_ticket(&[2], m);
        assert_eq!(
            store.master_secret(&[9; 32], &[1], Some(&[2])).unwrap().1,
            MasterSource::Ticket
        );
    }

    #[test]
    fn malformed_lines_are_warnings_with_line_numbers_and_the_rest_is_used() {
        let text = format!(
            "CLIENT_RANDOM {R2}\n\
             CLIENT_RANDOM {R2} {S32}\n\
             NOT_A_LABEL {R1} {S32}\n\
             CLIENT_HANDSHAKE_TRAFFIC_SECRET zz{} {S32}\n\
             CLIENT_HANDSHAKE_TRAFFIC_SECRET {R1} 0011\n\
             CLIENT_HANDSHAKE_TRAFFIC_SECRET {R1} {S32} extra\n\
             SERVER_HANDSHAKE_TRAFFIC_SECRET {R1} {S32}\n",
            &R1[2..]
        );
        let store = KeyStore::new(false);
        let summary = store.add_text("keys.log", text.as_bytes());
        let lines: Vec<u64> = summary.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, vec![1, 2, 3, 4, 5, 6]);
        assert!(
            summary.warnings[1].message.contains("not 48"),
            "{:?}",
            summary.warnings[1]
        );
        assert!(summary.warnings[2].message.contains("unknown label"));
        assert_eq!(summary.secrets, 1);
        assert!(store.tls13(&random(R1)).unwrap().server_handshake.is_some());
    }

    /// 64 MiB of junk (one endless line, binary noise, long and short lines), with good lines
    /// between: memory stays at the line cap, warnings are capped, the good lines are used.
    #[test]
    fn junk_key_log_reads_in_bounded_memory() {
        struct Junk {
            left: u64,
            state: u64,
        }
        impl Read for Junk {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.left == 0 {
                    return Ok(0);
                }
                let n = (buf.len() as u64).min(self.left) as usize;
                for b in &mut buf[..n] {
                    // xorshift noise with rare line ends.
                    self.state ^= self.state << 13;
                    self.state ^= self.state >> 7;
                    self.state ^= self.state << 17;
                    *b = if self.state.is_multiple_of(997) {
                        b'\n'
                    } else {
                        (self.state >> 24) as u8 | 1
                    };
                }
                self.left -= n as u64;
                Ok(n)
            }
        }
        let good = format!("\nSERVER_HANDSHAKE_TRAFFIC_SECRET {R1} {S32}\n");
        let endless = std::io::repeat(b'A').take(20 << 20);
        let tail = format!("\nCLIENT_RANDOM {R2} {S48}\n").into_bytes();
        let input = good
            .as_bytes()
            .chain(endless)
            .chain(Junk {
                left: 44 << 20,
                state: 88172645463325252,
            })
            .chain(&tail[..]);
        let store = KeyStore::new(false);
        let mut source = FileSource {
            path: PathBuf::from("junk"),
            offset: 0,
            splitter: LineSplitter::default(),
            summary: 0,
        };
        lock(&store.summaries).push(KeyLogSummary::default());
        // Read through a wrapper that checks the splitter never holds more than the cap.
        store.read_from(&mut source, input).unwrap();
        assert!(source.splitter.line.capacity() <= 2 * MAX_LINE);
        let summary = &store.summaries()[0];
        assert!(summary.malformed > 1000);
        assert_eq!(summary.warnings.len(), MAX_WARNINGS);
        assert_eq!(summary.warnings[0].line, 3);
        assert!(summary.warnings[0].message.contains("longer than"));
        assert_eq!(summary.secrets, 2);
        assert!(store.tls13(&random(R1)).is_some());
        assert!(store.master_secret(&random(R2), &[], None).is_some());
    }

    #[test]
    fn refresh_reads_what_was_appended_and_waits_for_a_line_end() {
        let dir = std::env::temp_dir().join(format!("wsprobe-keylog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.log");
        std::fs::write(&path, format!("CLIENT_RANDOM {R2} {S48}\nSERVER_HANDSHAKE")).unwrap();
        let store = KeyStore::new(true);
        store.load_file(&path).unwrap();
        assert!(store.master_secret(&random(R2), &[], None).is_some());
        assert!(store.tls13(&random(R1)).is_none());
        assert!(!store.refresh(), "nothing new: only a stat");
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(f, "_TRAFFIC_SECRET {R1} {S32}").unwrap();
        assert!(store.refresh());
        assert!(store.tls13(&random(R1)).unwrap().server_handshake.is_some());
        assert_eq!(store.summaries()[0].malformed, 0);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(store.load_file(&dir.join("missing")).is_err());
    }

    #[test]
    fn learned_sessions_are_bounded() {
        let mut l = Learned::default();
        let s = Secret::new(&[1; 48]).unwrap();
        for i in 0..(MAX_LEARNED_SESSIONS as u32 + 10) {
            l.insert(&i.to_be_bytes(), s);
        }
        assert_eq!(l.map.len(), MAX_LEARNED_SESSIONS);
        assert!(!l.map.contains_key(&0u32.to_be_bytes()[..]));
    }
}
