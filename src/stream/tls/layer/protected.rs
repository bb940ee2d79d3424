//! Protected records: decryption at the expected sequence number, or by trial after records
//! were lost; holes reported to the layer above; failures reported, never plaintext.

use super::*;

impl TlsLayer {
    // ---- protected records -------------------------------------------------------------

    pub(super) fn on_protected(
        &mut self,
        from: Side,
        mut record: Record<'_>,
        out: &mut OutFn<'_, '_>,
    ) {
        let header = record.header;
        let di = idx(from);
        self.dirs[di].encrypted_records += 1;
        let phase = self.dirs[di].phase;
        if header.content_type == ContentType::ApplicationData {
            let early = phase == Phase::SkippingEarly || phase == Phase::Early;
            let counts_as_app = match phase {
                Phase::Application(_) => true,
                // Without keys in TLS 1.3 the handshake records are the client's first (its
                // Finished) and the server's before it (its flight, one record per message with
                // OpenSSL). Later ones are application data (or alerts, tickets ...) as far as
                // sizes tell.
                Phase::None | Phase::Handshake if self.is13() => {
                    let client_finished_seen =
                        self.dirs[0].encrypted_records > self.early_records();
                    match from {
                        Side::Client => self.dirs[0].encrypted_records > 1 + self.early_records(),
                        Side::Server => client_finished_seen,
                    }
                }
                _ => !self.is13() && self.dirs[di].ccs,
            };
            if counts_as_app && !early {
                // Its plaintext size, as far as the record's length tells (no padding).
                let overhead = match (self.is13(), self.suite.and_then(|s| s.aead)) {
                    (true, _) => TAG_LEN + 1,
                    (false, Some(Aead::Chacha20Poly1305)) => TAG_LEN,
                    (false, _) => TAG_LEN + 8,
                };
                let plain = usize::from(header.length).saturating_sub(overhead) as u64;
                self.pattern.push(AppRecord {
                    side: from,
                    time: self.now,
                    plain,
                    close_notify_sized: self.is13() && plain == 2,
                });
            }
        }
        if self.dirs[di].keys.is_none() && !self.late_tls13_keys(from, out) {
            self.undecryptable(from, header, record.fragment(), out);
            return;
        }
        if self.single_try(from)
            && let Some(buf) = record.fragment_mut()
        {
            // The hot path for a record the framer assembled from pieces: decrypted where it
            // lies, no copy (a failure needs no second try, so the ciphertext may go).
            let d = &self.dirs[di];
            let keys = d.keys.as_ref().expect("bug: keys checked above");
            let seq = keys.seq;
            match keys.open_in_place(seq, &header, buf) {
                Ok(opened) => {
                    self.on_opened(from, seq, opened.content_type, &buf[opened.range()], out)
                }
                Err(err) => self.on_open_failed(from, header, buf.len(), err, out),
            }
            return;
        }
        let fragment = record.fragment();
        let mut scratch = std::mem::take(&mut self.scratch);
        match self.open(from, &header, fragment, &mut scratch) {
            Ok((seq, opened)) => self.on_opened(
                from,
                seq,
                opened.content_type,
                &scratch[opened.range()],
                out,
            ),
            Err(err) => self.on_open_failed(from, header, fragment.len(), err, out),
        }
        self.scratch = scratch;
    }

    /// Is this direction's next record tried at one sequence number with one key only (no
    /// records lost before it, no key change that may have been lost)? Then a failure is final
    /// and the record may be decrypted in place.
    fn single_try(&self, from: Side) -> bool {
        let d = &self.dirs[idx(from)];
        let key_change_may_be_lost = self.is13() && d.phase == Phase::Handshake;
        !(d.loss_pending() || key_change_may_be_lost)
    }

    /// A record authenticated as number `seq`: its plaintext goes on.
    fn on_opened(
        &mut self,
        from: Side,
        seq: u64,
        content_type: ContentType,
        plain: &[u8],
        out: &mut OutFn<'_, '_>,
    ) {
        let di = idx(from);
        self.settle_loss(from, seq, out);
        self.record.decrypted = true;
        let d = &mut self.dirs[di];
        d.failures = 0;
        if let Some(k) = d.keys.as_mut() {
            k.seq = seq.wrapping_add(1);
        }
        if d.phase == Phase::SkippingEarly {
            d.phase = Phase::Handshake;
        }
        if d.phase == Phase::Early {
            self.record.early_data.decrypted_records += 1;
        }
        self.on_plaintext(from, content_type, plain, true, out);
        self.apply_switch(from);
    }

    /// Tries the direction's keys at the expected sequence number, or at a range of them
    /// after records were lost. Also tries the next phase's keys when a key change may have
    /// been lost (the Finished or KeyUpdate was in a lost record). The plaintext is left in
    /// `scratch`.
    pub(super) fn open(
        &mut self,
        from: Side,
        header: &Header,
        fragment: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<(u64, Opened), OpenError> {
        let di = idx(from);
        let d = &self.dirs[di];
        let keys = d.keys.as_ref().expect("bug: open without keys");
        if !d.loss_pending() {
            // The hot path: one record, one open.
            let seq = keys.seq;
            match keys.open_at(seq, header, fragment, scratch) {
                Ok(o) => return Ok((seq, o)),
                Err(e)
                    if d.phase == Phase::SkippingEarly
                        || !(self.is13() && d.phase == Phase::Handshake) =>
                {
                    return Err(e);
                }
                Err(_) => {}
            }
        }
        let candidates = self.seq_candidates(from, fragment);
        let mut last_err = OpenError::BadTag;
        for &seq in &candidates {
            match keys.open_at(seq, header, fragment, scratch) {
                Ok(o) => return Ok((seq, o)),
                Err(e) => last_err = e,
            }
        }
        if d.phase == Phase::SkippingEarly {
            return Err(last_err);
        }
        // A lost key change: the next keys, at sequence numbers from 0.
        let next = match d.phase {
            Phase::Handshake if self.is13() => self.tls13_app_keys(from, 0, None),
            Phase::Application(n) if self.is13() && d.loss_pending() => {
                self.tls13_app_keys(from, n + 1, d.app_secret.as_ref())
            }
            _ => None,
        };
        let Some((next_keys, secret)) = next else {
            return Err(last_err);
        };
        let limit = (candidates.len() as u64).max(1);
        for seq in 0..limit {
            if let Ok(o) = next_keys.open_at(seq, header, fragment, scratch) {
                let d = &mut self.dirs[di];
                d.phase = match d.phase {
                    Phase::Application(n) => Phase::Application(n + 1),
                    _ => Phase::Application(0),
                };
                d.finished = true;
                d.carries_data = true;
                d.app_secret = Some(secret);
                d.keys = Some(next_keys);
                // The key change was lost with records: report the hole before this one
                // (unless they were the handshake records that passed before late keys).
                d.boundary_lost = !std::mem::take(&mut d.late_handshake);
                return Ok((seq, o));
            }
        }
        Err(last_err)
    }

    /// Sequence numbers to try, most likely first.
    pub(super) fn seq_candidates(&self, from: Side, fragment: &[u8]) -> Vec<u64> {
        let d = &self.dirs[idx(from)];
        let keys = d.keys.as_ref().expect("bug: keys");
        let base = keys.seq;
        if !d.loss_pending() {
            return vec![base];
        }
        if !d.boundary_lost {
            // The framer counted the lost records; a failed record counts as lost too.
            let exact = base.wrapping_add(d.lost_records);
            let mut v = vec![exact];
            if exact != base {
                v.push(base);
            }
            return v;
        }
        let mut v = Vec::new();
        // TLS 1.2 GCM: the explicit nonce is the sequence number in the common stacks.
        if let Some(n) = keys.explicit_nonce(fragment)
            && n >= base
            && n - base <= u64::from(u32::MAX)
        {
            v.push(n);
        }
        let most = (d.lost_bytes / MIN_RECORD + 1 + d.lost_records).min(1 << 24);
        let average = d.bytes.checked_div(d.records).unwrap_or(0).max(MIN_RECORD);
        let guess = (d.lost_bytes / average + d.lost_records).min(most);
        // Outwards from the guess, within 0..=most.
        let mut step = 0u64;
        while (v.len() as u64) < MAX_SEQ_TRIALS && (step <= guess || guess + step <= most) {
            if guess + step <= most {
                v.push(base.wrapping_add(guess + step));
            }
            if step > 0 && step <= guess {
                v.push(base.wrapping_add(guess - step));
            }
            step += 1;
        }
        v
    }

    /// A record decrypted as number `seq`: if records were lost before it, say so and hand
    /// the layer above a hole of (an estimate of) the plaintext lost.
    pub(super) fn settle_loss(&mut self, from: Side, seq: u64, out: &mut OutFn<'_, '_>) {
        let di = idx(from);
        let d = &mut self.dirs[di];
        if !d.loss_pending() {
            return;
        }
        let base = d.keys.as_ref().map_or(seq, |k| k.seq);
        let records = seq.saturating_sub(base).max(d.lost_records);
        let overhead = d.keys.as_ref().map_or(TAG_LEN + 1, RecordKeys::overhead) + HEADER_LEN;
        let plain = d
            .lost_bytes
            .saturating_sub(records * overhead as u64)
            .max(1);
        let boundary_lost = d.boundary_lost;
        let carries = d.carries_data;
        d.lost_bytes = 0;
        d.lost_records = 0;
        d.boundary_lost = false;
        if boundary_lost {
            d.undecrypted += records;
            let msg = format!(
                "{} records after the gap decrypt again from sequence number {seq} ({records} records lost)",
                from.as_str()
            );
            self.diag(DiagnosticId::TlsResync, Some(from), msg, out);
        }
        if carries {
            out(Out::Data {
                channel: 0,
                from,
                chunk: Chunk::Gap(plain),
            });
        }
    }

    pub(super) fn undecryptable(
        &mut self,
        from: Side,
        header: Header,
        fragment: &[u8],
        out: &mut OutFn<'_, '_>,
    ) {
        let di = idx(from);
        let is13 = self.is13();
        let d = &mut self.dirs[di];
        d.undecrypted += 1;
        if d.carries_data {
            d.lost_bytes += (HEADER_LEN + fragment.len()) as u64;
            d.lost_records += 1;
        }
        // TLS 1.2 without keys: the record types still tell alerts and the Finished.
        if !is13 {
            match header.content_type {
                ContentType::Alert => {
                    let sized = match self.suite.and_then(|s| s.aead) {
                        Some(Aead::Chacha20Poly1305) => fragment.len() == 2 + TAG_LEN,
                        Some(_) => fragment.len() == 2 + 8 + TAG_LEN,
                        None => false,
                    };
                    self.on_alert(from, None, None, sized, out);
                }
                ContentType::Handshake if self.dirs[di].ccs && !self.dirs[di].finished => {
                    self.on_finished(from, out);
                }
                _ => {}
            }
        }
    }

    pub(super) fn on_open_failed(
        &mut self,
        from: Side,
        header: Header,
        fragment_len: usize,
        err: OpenError,
        out: &mut OutFn<'_, '_>,
    ) {
        let di = idx(from);
        if self.dirs[di].phase == Phase::SkippingEarly {
            // A 0-RTT record the server did not take (or whose key is not logged).
            self.record.early_data.skipped_records += 1;
            self.dirs[di].undecrypted += 1;
            if !self.reported_early_skip {
                self.reported_early_skip = true;
                let why = if self
                    .tls13
                    .as_ref()
                    .is_some_and(|s| s.client_early.is_some())
                {
                    "the server rejected it"
                } else {
                    "no CLIENT_EARLY_TRAFFIC_SECRET in the key log, or the server rejected it"
                };
                self.diag(
                    DiagnosticId::TlsEarlyDataSkipped,
                    Some(from),
                    format!("client 0-RTT early data was not decrypted ({why}): the first request may be missing above"),
                    out,
                );
            }
            return;
        }
        let d = &mut self.dirs[di];
        d.failures += 1;
        d.undecrypted += 1;
        d.lost_bytes += (HEADER_LEN + fragment_len) as u64;
        d.lost_records += 1;
        let seq = d.keys.as_ref().map_or(0, |k| k.seq);
        let failures = d.failures;
        let after_loss = d.boundary_lost;
        let reported = d.reported_failure;
        d.reported_failure = true;
        let what = match err {
            OpenError::BadTag => "failed authentication",
            OpenError::TooShort => "is too short to hold an AEAD tag",
            OpenError::NoContentType => "has no content type after decryption",
        };
        if !reported {
            let cause = if after_loss {
                "after a capture gap the record sequence number could not be found"
            } else {
                "wrong key in the key log for this connection, or damaged bytes"
            };
            let msg = format!(
                "{} record {} ({} bytes, {:?}) {what}: {cause}; no plaintext is output for it",
                from.as_str(),
                seq,
                fragment_len,
                header.content_type
            );
            self.set_error(&format!("{} records {what} ({cause})", from.as_str()));
            self.diag(DiagnosticId::TlsDecryptFailed, Some(from), msg, out);
        }
        if failures >= MAX_FAILURES {
            let d = &mut self.dirs[di];
            d.keys = None;
            self.diag(
                DiagnosticId::TlsDecryptFailed,
                Some(from),
                format!(
                    "{failures} consecutive {} records failed: decryption of this direction stopped",
                    from.as_str()
                ),
                out,
            );
        }
    }
}
