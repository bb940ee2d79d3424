//! The endings of a capture file's connections, written out to an unlinked temporary file in
//! batches while the capture is read and read back once, for the findings at its end. They are
//! the one thing the run keeps for every connection (200 bytes each, 37 MiB for the 200,000 of
//! a 2 GB capture), and they were held beside the open connections' state to the end; written
//! out, the run's peak is the larger of the two, not their sum (that capture, 1 thread: 198 ->
//! 138 MiB peak RSS). Where `$TMPDIR` is a tmpfs they stay in memory, but outside the process,
//! as the page cache of the file. A live capture, whose findings are looked for while it runs,
//! keeps them in memory; so does a run whose temporary file cannot be made or written (from
//! that point on).
//!
//! The encoding is [`crate::pack`]'s (the file never outlives the run): each field in turn,
//! destructured so that a field added to [`Ending`] does not compile until it is written and
//! read here; about 150 bytes an ending. The rare facts (`Ending::rare`, a few connections'
//! boxed extras) stay in memory beside the file.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use super::chunked::Chunked;
use super::ending::{Ending, Host, How, Rare, Secs, Seen};
use crate::diag::Side;
use crate::pack::{Reader, Writer};
use crate::record::Fingerprint;

/// Endings gathered before a batch is written out.
const BATCH: usize = 1024;

/// Every ending of a run, in the order they came.
#[derive(Debug, Default)]
pub struct Endings {
    /// In memory: all of them, or (while spilling) those after the last batch written.
    kept: Chunked<Ending>,
    spill: Option<Spill>,
}

#[derive(Debug)]
struct Spill {
    out: BufWriter<File>,
    /// Endings in the file.
    written: usize,
    /// The boxed rare facts of endings in the file, by their place in the list.
    rare: Vec<(usize, Box<Rare>)>,
    /// A batch that could not be written is kept in memory, and so is everything after it.
    failed: bool,
    buffer: Writer,
}

/// Endings in the file could not be read back (the temporary file was damaged or cut short):
/// this many were lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost(pub usize);

impl Endings {
    /// Endings written out to an unlinked file in `dir` (in memory when none can be made).
    pub fn spilling(dir: &std::path::Path) -> Self {
        let spill = crate::record::spool::unlinked_file(dir, ".wsprobe-endings")
            .ok()
            .map(|file| Spill {
                out: BufWriter::with_capacity(64 << 10, file),
                written: 0,
                rare: Vec::new(),
                failed: false,
                buffer: Writer::default(),
            });
        Endings {
            kept: Chunked::new(),
            spill,
        }
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.spill.as_ref().map_or(0, |s| s.written) + self.kept.len()
    }

    /// None yet?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `ending`.
    pub fn push(&mut self, ending: Ending) {
        self.kept.push(ending);
        if let Some(spill) = self.spill.as_mut()
            && !spill.failed
            && self.kept.len() >= BATCH
        {
            let batch = std::mem::take(&mut self.kept);
            if let Err(batch) = spill.write(batch) {
                self.kept = batch;
            }
        }
    }

    /// All of them, in order: what was written out is read back (once; they stay in memory
    /// from then on). `Err` says how many could not be read back; the others are there.
    pub fn all(&mut self) -> Result<&Chunked<Ending>, Lost> {
        let Some(spill) = self.spill.take() else {
            return Ok(&self.kept);
        };
        let (mut all, lost) = spill.read_back();
        all.extend(std::mem::take(&mut self.kept));
        self.kept = all;
        match lost {
            0 => Ok(&self.kept),
            n => Err(Lost(n)),
        }
    }

    /// Those in memory: all of them unless some were written out ([`Endings::all`] reads them).
    pub fn kept(&self) -> &Chunked<Ending> {
        &self.kept
    }
}

impl FromIterator<Ending> for Endings {
    /// In memory.
    fn from_iter<I: IntoIterator<Item = Ending>>(items: I) -> Self {
        Endings {
            kept: items.into_iter().collect(),
            spill: None,
        }
    }
}

impl Spill {
    /// Writes `batch` out; gives it back when it could not be.
    fn write(&mut self, batch: Chunked<Ending>) -> Result<(), Chunked<Ending>> {
        self.buffer.0.clear();
        let first = self.written;
        let mut rare = Vec::new();
        for (i, e) in batch.iter().enumerate() {
            encode(e, &mut self.buffer);
            if let Some(r) = &e.rare {
                rare.push((first + i, r.clone()));
            }
        }
        let length = u32::try_from(self.buffer.0.len()).unwrap_or(u32::MAX);
        let written = self
            .out
            .write_all(&length.to_le_bytes())
            .and_then(|()| self.out.write_all(&self.buffer.0));
        if written.is_err() {
            // Part of a batch may be in the file: read back only what came before it.
            self.failed = true;
            return Err(batch);
        }
        self.written += batch.len();
        self.rare.extend(rare);
        Ok(())
    }

    /// Everything written, and how many endings could not be read back.
    fn read_back(mut self) -> (Chunked<Ending>, usize) {
        let mut all = Chunked::new();
        // A flush that fails leaves the last batches short: they count as lost.
        let mut file = match self.out.into_inner() {
            Ok(file) => file,
            Err(e) => e.into_inner().into_parts().0,
        };
        if file.seek(SeekFrom::Start(0)).is_ok() {
            let mut reader = BufReader::with_capacity(64 << 10, file);
            let mut rare = self.rare.drain(..).peekable();
            let mut batch = Vec::new();
            // Anything short or undecodable ends the reading: the endings after it would no
            // longer be where their rare facts say.
            'batches: while all.len() < self.written {
                let mut length = [0u8; 4];
                if reader.read_exact(&mut length).is_err() {
                    break;
                }
                batch.resize(u32::from_le_bytes(length) as usize, 0);
                if reader.read_exact(&mut batch).is_err() {
                    break;
                }
                let mut rest = Reader(&batch);
                while !rest.0.is_empty() {
                    let Some(mut e) = decode(&mut rest) else {
                        break 'batches;
                    };
                    if rare.peek().is_some_and(|(at, _)| *at == all.len()) {
                        e.rare = rare.next().map(|(_, r)| r);
                    }
                    all.push(e);
                }
            }
        }
        let lost = self.written - all.len().min(self.written);
        (all, lost)
    }
}

fn put_side(w: &mut Writer, side: Option<Side>) {
    w.byte(match side {
        None => 0,
        Some(Side::Client) => 1,
        Some(Side::Server) => 2,
    });
}

fn put_secs(w: &mut Writer, secs: Secs) {
    w.f32(secs.get().unwrap_or(f32::NAN));
}

fn put_host(w: &mut Writer, host: &Host) {
    w.raw(&host.addr);
    w.varint(host.port.into());
}

fn put_counts(w: &mut Writer, values: [u32; 2]) {
    for v in values {
        w.varint(v.into());
    }
}

/// Appends `e`, all but its rare facts (a flag says whether it has them).
fn encode(e: &Ending, w: &mut Writer) {
    let Ending {
        id,
        client,
        server,
        first_seen,
        start,
        end,
        how,
        by,
        websocket,
        idle,
        idle_by_side,
        longest_silence,
        age,
        messages,
        pings,
        ping_interval,
        unanswered,
        unanswered_for,
        retransmissions_near_end,
        reason,
        fingerprint,
        stopped,
        rare,
        seen,
    } = e;
    w.varint(*id);
    put_host(w, client);
    put_host(w, server);
    for t in [first_seen, start, end] {
        w.f64(*t);
    }
    let (tag, code, answered) = match *how {
        How::Close { code, answered } => (0u8, code, answered),
        How::Fin => (1, 0, false),
        How::Rst => (2, 0, false),
        How::CloseNotify => (3, 0, false),
        How::TlsAlert => (4, 0, false),
        How::Open => (5, 0, false),
    };
    w.byte(tag);
    w.varint(code.into());
    w.byte(u8::from(answered));
    put_side(w, *by);
    w.byte(u8::from(*websocket));
    put_secs(w, *idle);
    idle_by_side.iter().for_each(|s| put_secs(w, *s));
    put_secs(w, *longest_silence);
    w.f32(*age);
    put_counts(w, *messages);
    put_counts(w, *pings);
    ping_interval.iter().for_each(|s| put_secs(w, *s));
    put_counts(w, *unanswered);
    unanswered_for.iter().for_each(|s| put_secs(w, *s));
    put_counts(w, *retransmissions_near_end);
    w.opt_str(reason.as_deref());
    let Fingerprint {
        key,
        frames,
        frame_count,
        masked,
        varied_masks,
    } = fingerprint;
    w.opt_u64(*key);
    w.raw(&frames.to_le_bytes());
    w.raw(&[*frame_count, *masked, u8::from(*varied_masks)]);
    w.byte(u8::from(*stopped));
    w.byte(u8::from(rare.is_some()));
    match seen {
        Seen::Plain => w.byte(0),
        Seen::Encrypted { close_from } => {
            w.byte(1);
            put_side(w, *close_from);
        }
    }
}

fn side(r: &mut Reader<'_>) -> Option<Option<Side>> {
    match r.byte()? {
        0 => Some(None),
        1 => Some(Some(Side::Client)),
        2 => Some(Some(Side::Server)),
        _ => None,
    }
}

fn secs(r: &mut Reader<'_>) -> Option<Secs> {
    Some(Secs::from(Some(r.f32()?)))
}

fn host(r: &mut Reader<'_>) -> Option<Host> {
    Some(Host {
        addr: r.array()?,
        port: u16::try_from(r.varint()?).ok()?,
    })
}

fn count(r: &mut Reader<'_>) -> Option<u32> {
    u32::try_from(r.varint()?).ok()
}

/// Reads what [`encode`] wrote (the rare facts are not in it); None when the bytes are cut
/// short or not such an ending.
fn decode(r: &mut Reader<'_>) -> Option<Ending> {
    let id = r.varint()?;
    let client = host(r)?;
    let server = host(r)?;
    let first_seen = r.f64()?;
    let start = r.f64()?;
    let end = r.f64()?;
    let tag = r.byte()?;
    let code = u16::try_from(r.varint()?).ok()?;
    let answered = r.byte()? != 0;
    let how = match tag {
        0 => How::Close { code, answered },
        1 => How::Fin,
        2 => How::Rst,
        3 => How::CloseNotify,
        4 => How::TlsAlert,
        5 => How::Open,
        _ => return None,
    };
    let by = side(r)?;
    let websocket = r.byte()? != 0;
    let idle = secs(r)?;
    let idle_by_side = [secs(r)?, secs(r)?];
    let longest_silence = secs(r)?;
    let age = r.f32()?;
    let messages = [count(r)?, count(r)?];
    let pings = [count(r)?, count(r)?];
    let ping_interval = [secs(r)?, secs(r)?];
    let unanswered = [count(r)?, count(r)?];
    let unanswered_for = [secs(r)?, secs(r)?];
    let retransmissions_near_end = [count(r)?, count(r)?];
    let reason = r.opt_str()?.map(String::into_boxed_str);
    let fingerprint = Fingerprint {
        key: r.opt_u64()?,
        frames: u64::from_le_bytes(r.array()?),
        frame_count: r.byte()?,
        masked: r.byte()?,
        varied_masks: r.byte()? != 0,
    };
    let stopped = r.byte()? != 0;
    let _has_rare = r.byte()? != 0;
    let seen = match r.byte()? {
        0 => Seen::Plain,
        1 => Seen::Encrypted {
            close_from: side(r)?,
        },
        _ => return None,
    };
    Some(Ending {
        id,
        client,
        server,
        first_seen,
        start,
        end,
        how,
        by,
        websocket,
        idle,
        idle_by_side,
        longest_silence,
        age,
        messages,
        pings,
        ping_interval,
        unanswered,
        unanswered_for,
        retransmissions_near_end,
        reason,
        fingerprint,
        stopped,
        rare: None,
        seen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::FindingsEngine;
    use crate::findings::tests::{Rng, detect, ids, noise, plant_idle};
    /// Endings of every shape the encoding must carry: each way of ending, sides, close reasons,
    /// missing seconds, fingerprints without a key, encrypted ones, and the rare boxed facts.
    fn varied_endings(n: usize) -> Vec<Ending> {
        let mut rng = Rng::new(7);
        let hows = [
            How::Close {
                code: 4001,
                answered: true,
            },
            How::Fin,
            How::Rst,
            How::CloseNotify,
            How::TlsAlert,
            How::Open,
        ];
        let mut endings = noise(&mut rng, n, 0, None);
        for (i, e) in endings.iter_mut().enumerate() {
            e.how = hows[i % hows.len()];
            e.by = [None, Some(Side::Client), Some(Side::Server)][i % 3];
            if i % 5 == 0 {
                e.reason = Some(format!("going away é {i}").into());
                e.idle = Secs::NONE;
                e.fingerprint.key = None;
            }
            if i % 7 == 0 {
                e.seen = Seen::Encrypted {
                    close_from: Some(Side::Server),
                };
                e.ping_interval = Secs::pair([Some(25.0), None]);
            }
            if i % 11 == 0 {
                e.rare = Some(Box::new(Rare {
                    unreachable: Some((Side::Server, 12.5, 4, 9.0)),
                    protocol_meaning: Some("the server restarts"),
                    app: None,
                }));
            }
        }
        endings
    }

    #[test]
    fn spilled_endings_come_back_as_they_went() {
        // Three batches and a part: what is read back, in order, then what was still in memory.
        let endings = varied_endings(3 * 1024 + 100);
        let mut spilled = Endings::spilling(&std::env::temp_dir());
        for e in endings.iter().cloned() {
            spilled.push(e);
        }
        assert_eq!(spilled.len(), endings.len());
        assert_eq!(
            spilled.kept().len(),
            100,
            "all but the last part were written out"
        );
        let back: Vec<Ending> = spilled
            .all()
            .expect("all read back")
            .iter()
            .cloned()
            .collect();
        assert_eq!(back, endings);
        assert_eq!(spilled.len(), endings.len());
    }

    #[test]
    fn without_a_place_for_the_file_endings_stay_in_memory() {
        let endings = varied_endings(2000);
        let mut kept = Endings::spilling(std::path::Path::new("/nonexistent/wsprobe-test"));
        for e in endings.iter().cloned() {
            kept.push(e);
        }
        assert_eq!(kept.kept().len(), 2000);
        let back: Vec<Ending> = kept.all().unwrap().iter().cloned().collect();
        assert_eq!(back, endings);
    }

    #[test]
    fn a_spilling_engine_finds_what_an_engine_in_memory_finds() {
        let mut rng = Rng::new(11);
        let mut endings = noise(&mut rng, 2500, 0, Some(300.0));
        endings.extend(plant_idle(&mut rng, 300.0, 40, 10_000));
        let mut spilling = FindingsEngine::spilling(&std::env::temp_dir());
        for e in endings.iter().cloned() {
            spilling.add(e);
        }
        let found = spilling.finish();
        assert!(ids(&found).contains(&"idle_timeout"), "{:?}", ids(&found));
        assert_eq!(found, detect(endings));
    }
}
