//! Handshake messages and key installation: hellos, EncryptedExtensions, Finished,
//! KeyUpdate, ChangeCipherSpec; key-log lookups and the per-direction key switches.

use super::*;

impl TlsLayer {
    pub(super) fn on_handshake_skipped(&mut self, from: Side, msg_type: u8) {
        // A TLS 1.2 full handshake shows its certificate flight in clear.
        if from == Side::Server && msg_type == kind::SERVER_HELLO_DONE {
            self.server_hello_done = true;
        }
    }

    pub(super) fn on_handshake(
        &mut self,
        from: Side,
        t: u8,
        body: &[u8],
        decrypted: bool,
        out: &mut OutFn<'_, '_>,
    ) {
        match (from, t) {
            (Side::Client, kind::CLIENT_HELLO) => self.on_client_hello(body, decrypted, out),
            (Side::Server, kind::SERVER_HELLO) => self.on_server_hello(body, decrypted, out),
            (Side::Server, kind::ENCRYPTED_EXTENSIONS) => {
                if let Ok(ee) = handshake::parse_encrypted_extensions(body) {
                    self.record.alpn = ee.alpn.or(self.record.alpn.take());
                    if self.early != EarlyDecision::NotOffered {
                        let accepted = ee.early_data;
                        self.record.early_data.accepted = Some(accepted);
                        self.decide_early(accepted, out);
                    }
                }
            }
            (Side::Server, kind::SERVER_HELLO_DONE) => self.server_hello_done = true,
            (Side::Server, kind::NEW_SESSION_TICKET) if !self.is13() => {
                if let Ok(ticket) = handshake::parse_tls12_ticket(body) {
                    self.nst_ticket = Some(ticket.to_vec());
                    self.learn_tls12_session();
                }
            }
            (_, kind::FINISHED) => self.on_finished(from, out),
            (_, kind::KEY_UPDATE) if self.is13() => match handshake::parse_key_update(body) {
                Ok(_) => {
                    let d = &mut self.dirs[idx(from)];
                    d.key_updates += 1;
                    d.switch = Some(Switch::KeyUpdate);
                    out(Out::Event(TlsEvent::KeyUpdate { from }));
                }
                Err(e) => self.diag(
                    DiagnosticId::TlsDecryptFailed,
                    Some(from),
                    format!(
                        "{} KeyUpdate is malformed ({}): its keys cannot be followed",
                        from.as_str(),
                        e.0
                    ),
                    out,
                ),
            },
            (Side::Client, kind::END_OF_EARLY_DATA) => {
                self.dirs[0].switch = Some(Switch::ToHandshake);
            }
            (Side::Server, kind::HELLO_REQUEST) if !self.is13() && self.dirs[1].finished => {
                self.start_renegotiation(from, out);
            }
            _ => {}
        }
    }

    pub(super) fn start_renegotiation(&mut self, from: Side, out: &mut OutFn<'_, '_>) {
        if !self.renegotiating {
            self.renegotiating = true;
            self.diag(
                DiagnosticId::TlsRenegotiation,
                Some(from),
                format!(
                    "{} started a TLS 1.2 renegotiation: records after the next ChangeCipherSpec are not decrypted",
                    from.as_str()
                ),
                out,
            );
        }
    }

    pub(super) fn on_client_hello(
        &mut self,
        body: &[u8],
        decrypted: bool,
        out: &mut OutFn<'_, '_>,
    ) {
        if decrypted || self.dirs[0].finished {
            // A ClientHello under encryption, or after the handshake: TLS 1.2 renegotiation.
            self.start_renegotiation(Side::Client, out);
            return;
        }
        let hello = match handshake::parse_client_hello(body) {
            Ok(h) => h,
            Err(e) => {
                self.diag(
                    DiagnosticId::TlsHandshakeFailed,
                    Some(Side::Client),
                    format!(
                        "the ClientHello is malformed ({}): TLS facts and keys cannot be read",
                        e.0
                    ),
                    out,
                );
                return;
            }
        };
        let r = &mut self.record;
        r.sni = hello.sni.clone();
        r.alpn_offered = hello.alpn.clone();
        r.client_random = Some(hex(&hello.random));
        r.ech_offered = hello.ech;
        r.versions_offered = if hello.supported_versions.is_empty() {
            vec![suite::version_name(hello.legacy_version)]
        } else {
            hello
                .supported_versions
                .iter()
                .filter(|v| !suite::is_grease(**v))
                .map(|v| suite::version_name(*v))
                .collect()
        };
        r.cipher_suites_offered = hello
            .cipher_suites
            .iter()
            .map(|s| suite::suite_name(*s))
            .collect();
        r.early_data.offered = hello.early_data;
        if hello.early_data
            && self.early == EarlyDecision::NotOffered
            && self.server_hello.is_none()
        {
            self.early = EarlyDecision::Undecided;
        }
        self.client_hello = Some(hello);
        out(Out::Event(TlsEvent::ClientHello));
    }

    pub(super) fn on_server_hello(
        &mut self,
        body: &[u8],
        decrypted: bool,
        out: &mut OutFn<'_, '_>,
    ) {
        if decrypted {
            self.start_renegotiation(Side::Server, out);
            return;
        }
        let hello = match handshake::parse_server_hello(body) {
            Ok(h) => h,
            Err(e) => {
                self.diag(
                    DiagnosticId::TlsHandshakeFailed,
                    Some(Side::Server),
                    format!(
                        "the ServerHello is malformed ({}): version and keys cannot be read",
                        e.0
                    ),
                    out,
                );
                return;
            }
        };
        let version = hello.version();
        self.version = Some(version);
        self.suite = suite::suite(hello.cipher_suite);
        self.record.version = Some(suite::version_name(version));
        self.record.cipher_suite = Some(suite::suite_name(hello.cipher_suite));
        self.record.key_share_group = hello.key_share_group.map(suite::group_name);
        if hello.is_hrr {
            self.record.hello_retry_request = true;
            // RFC 8446 §4.1.4: after a HelloRetryRequest the client sends no early data.
            if self.early == EarlyDecision::Undecided {
                self.decide_early(false, out);
            }
            out(Out::Event(TlsEvent::HelloRetryRequest));
            if !self.dirs[0].queue.is_empty() && !self.client_must_wait() {
                self.release_client_queue(out);
            }
            return;
        }
        if let Some(alpn) = &hello.alpn {
            self.record.alpn = Some(alpn.clone());
        }
        let ch_session = self
            .client_hello
            .as_ref()
            .map(|c| c.session_id.clone())
            .unwrap_or_default();
        let ch_ticket = self
            .client_hello
            .as_ref()
            .and_then(|c| c.session_ticket.clone())
            .filter(|t| !t.is_empty());
        if version == 0x0304 {
            if hello.psk_selected.is_some() {
                self.record.resumed = true;
                self.record.resumption = Some("psk");
            }
        } else if !hello.session_id.is_empty() && hello.session_id == ch_session {
            // RFC 5246 §7.4.1.3 (and RFC 5077 §3.4 for tickets): an echoed session id means
            // the abbreviated handshake.
            self.record.resumed = true;
            self.record.resumption = Some(if ch_ticket.is_some() {
                "ticket"
            } else {
                "session_id"
            });
        }
        self.server_hello = Some(hello);
        out(Out::Event(TlsEvent::ServerHello));
        if version == 0x0304 {
            self.install_tls13_handshake_keys(out);
            if self.early == EarlyDecision::Undecided && !self.decrypts(Side::Server) {
                // EncryptedExtensions will not be read: assume the usual (0-RTT rejected
                // records are then skipped by trial with the handshake key).
                self.decide_early(false, out);
            }
        } else if self.suite.and_then(|s| s.aead).is_none() {
            self.report_unsupported(out);
        }
        if !self.dirs[0].queue.is_empty() && !self.client_must_wait() {
            self.release_client_queue(out);
        }
    }

    pub(super) fn report_unsupported(&mut self, out: &mut OutFn<'_, '_>) {
        if self.reported_unsupported {
            return;
        }
        self.reported_unsupported = true;
        let name = self.record.cipher_suite.clone().unwrap_or_default();
        let msg = format!(
            "cipher suite {name} is not decrypted by wsprobe (AES-GCM and ChaCha20-Poly1305 suites are): records are counted, not decrypted"
        );
        self.set_error(&msg);
        self.diag(DiagnosticId::TlsUnsupportedCipher, None, msg, out);
    }

    pub(super) fn decide_early(&mut self, accepted: bool, out: &mut OutFn<'_, '_>) {
        self.early = if accepted {
            EarlyDecision::Accepted
        } else {
            EarlyDecision::Rejected
        };
        if self.record.early_data.offered {
            let d = &mut self.dirs[0];
            if accepted && d.phase == Phase::SkippingEarly {
                // Install the early key in front of the handshake key.
                if let (Some(secrets), Some(suite)) = (self.tls13.as_ref(), self.suite)
                    && let (Some(early), Some(aead)) = (secrets.client_early, suite.aead)
                    && early.len() == suite.hash.len()
                {
                    let tk = schedule::tls13_traffic_keys(aead, suite.hash, early.as_bytes());
                    d.hs_keys = d.keys.take();
                    d.keys = Some(RecordKeys::new(aead, &tk, Protection::Tls13));
                    d.phase = Phase::Early;
                }
            }
        }
        if !self.client_must_wait() && !self.dirs[0].queue.is_empty() {
            self.release_client_queue(out);
        }
    }

    pub(super) fn lookup_tls13(&mut self) -> Option<Tls13Secrets> {
        let random = self.client_hello.as_ref()?.random;
        let mut found = self.keys.tls13(&random);
        if found.is_none() && self.keys.follows() && self.keys.refresh() {
            found = self.keys.tls13(&random);
        }
        found
    }

    /// Live key logs lag behind the capture: a TLS 1.3 client logs its handshake secret only
    /// after the server's whole flight (and its traffic secret after that), which the capture
    /// may already have passed. When a record of `from` finds no keys, the followed key log is
    /// read again and the direction's missing keys are made from what it now has. True when
    /// the direction has keys now. Bounded: a connection whose secrets never come costs at most
    /// [`MAX_LATE_KEY_TRIES`] looks.
    pub(super) fn late_tls13_keys(&mut self, from: Side, out: &mut OutFn<'_, '_>) -> bool {
        if !self.is13() || !self.keys.follows() || self.late_key_tries >= MAX_LATE_KEY_TRIES {
            return false;
        }
        let (Some(suite), Some(random)) =
            (self.suite, self.client_hello.as_ref().map(|c| c.random))
        else {
            return false;
        };
        let Some(aead) = suite.aead else {
            return false;
        };
        // Another connection's look may have read the new lines already: look up either way.
        let grew = self.keys.refresh();
        let Some(secrets) = self.keys.tls13(&random) else {
            // Only a look that read new lines counts: one that found the file unchanged cost a
            // stat, and a burst of records before the client logs must not use the tries up.
            if grew {
                self.late_key_tries += 1;
                if self.late_key_tries >= MAX_LATE_KEY_TRIES {
                    self.report_no_key(out);
                }
            }
            return false;
        };
        let handshake_secret = match from {
            Side::Client => secrets.client_handshake,
            Side::Server => secrets.server_handshake,
        };
        let first = self.tls13.is_none();
        self.tls13 = Some(secrets);
        if first {
            self.record.keys_from = Some("client_random");
        }
        let di = idx(from);
        match self.dirs[di].phase {
            Phase::None | Phase::Handshake => {
                if let Some(secret) = handshake_secret.filter(|s| s.len() == suite.hash.len()) {
                    let tk = schedule::tls13_traffic_keys(aead, suite.hash, secret.as_bytes());
                    let d = &mut self.dirs[di];
                    d.late_handshake = d.undecrypted > 0;
                    d.keys = Some(RecordKeys::new(aead, &tk, Protection::Tls13));
                    d.phase = if from == Side::Client && self.record.early_data.offered {
                        Phase::SkippingEarly
                    } else {
                        Phase::Handshake
                    };
                }
            }
            Phase::Application(0) => {
                if let Some((k, secret)) = self.tls13_app_keys(from, 0, None) {
                    let d = &mut self.dirs[di];
                    d.keys = Some(k);
                    d.app_secret = Some(secret);
                }
            }
            _ => {}
        }
        self.dirs[di].keys.is_some()
    }

    pub(super) fn report_no_key(&mut self, out: &mut OutFn<'_, '_>) {
        if self.reported_no_key {
            return;
        }
        self.reported_no_key = true;
        let random = self
            .record
            .client_random
            .clone()
            .unwrap_or_else(|| "?".into());
        let msg = if !self.keys.has_sources() {
            "no key log given (--keylog FILE or SSLKEYLOGFILE): the connection's contents are not decrypted".to_string()
        } else {
            format!(
                "no key for client random {random} in the key logs: the connection's contents are not decrypted"
            )
        };
        self.set_error(if self.keys.has_sources() {
            "no key for this connection in the key logs"
        } else {
            "no key log given"
        });
        self.diag(DiagnosticId::TlsNoKey, None, msg, out);
    }

    pub(super) fn install_tls13_handshake_keys(&mut self, out: &mut OutFn<'_, '_>) {
        let Some(suite) = self.suite else {
            self.report_unsupported(out);
            return;
        };
        let Some(aead) = suite.aead else {
            self.report_unsupported(out);
            return;
        };
        let Some(secrets) = self.lookup_tls13() else {
            if self.keys.follows() {
                // Live: the client may log its secrets only after this flight (OpenSSL writes
                // them when it processes the server's Finished); looked up again when a
                // record needs them.
                self.late_key_tries = 1;
            } else {
                self.report_no_key(out);
            }
            return;
        };
        self.record.keys_from = Some("client_random");
        let hash = suite.hash;
        let mut bad_len = None;
        let make = |secret: Option<Secret>, bad_len: &mut Option<usize>| -> Option<RecordKeys> {
            let s = secret?;
            if s.len() != hash.len() {
                *bad_len = Some(s.len());
                return None;
            }
            let tk = schedule::tls13_traffic_keys(aead, hash, s.as_bytes());
            Some(RecordKeys::new(aead, &tk, Protection::Tls13))
        };
        let server = make(secrets.server_handshake, &mut bad_len);
        let client = make(secrets.client_handshake, &mut bad_len);
        if let Some(len) = bad_len {
            let msg = format!(
                "the logged secret is {len} bytes but {} needs {}: the key log does not belong to this connection's suite",
                suite.name,
                hash.len()
            );
            self.set_error(&msg);
            self.diag(DiagnosticId::TlsDecryptFailed, None, msg, out);
        }
        let s = &mut self.dirs[1];
        s.keys = server;
        s.phase = Phase::Handshake;
        let c = &mut self.dirs[0];
        c.phase = match (&client, self.early) {
            (None, _) => Phase::None,
            // 0-RTT records may come first: they are skipped (or decrypted, once the server
            // says it accepted them) until a record opens with the handshake key.
            (Some(_), EarlyDecision::Undecided | EarlyDecision::Accepted) => Phase::SkippingEarly,
            (Some(_), _) => Phase::Handshake,
        };
        c.keys = client;
        if self.record.early_data.offered && c.phase == Phase::Handshake {
            c.phase = Phase::SkippingEarly;
        }
        self.tls13 = Some(secrets);
    }

    pub(super) fn tls12_master(&mut self) -> Option<(Secret, MasterSource)> {
        if self.master.is_none() && !self.master_looked_up {
            self.master_looked_up = true;
            let ch = self.client_hello.as_ref()?;
            let sh = self.server_hello.as_ref()?;
            let ticket = ch.session_ticket.as_deref();
            let mut found = self.keys.master_secret(&ch.random, &sh.session_id, ticket);
            if found.is_none() && self.keys.follows() && self.keys.refresh() {
                found = self.keys.master_secret(&ch.random, &sh.session_id, ticket);
            }
            // A session id or ticket only stands for the old master in an abbreviated
            // handshake; a full handshake has a new master secret.
            if let Some((_, src)) = found
                && src != MasterSource::ClientRandom
                && !self.record.resumed
            {
                found = None;
            }
            self.master = found;
            if self.master.is_some() {
                self.learn_tls12_session();
            }
        }
        self.master
    }

    pub(super) fn learn_tls12_session(&mut self) {
        let Some((master, _)) = self.master else {
            return;
        };
        if let Some(sh) = &self.server_hello {
            self.keys.remember_session(&sh.session_id, master);
        }
        if let Some(ticket) = &self.nst_ticket {
            self.keys.remember_ticket(ticket, master);
        }
    }

    pub(super) fn on_change_cipher_spec(&mut self, from: Side, out: &mut OutFn<'_, '_>) {
        if self.is13() || self.version.is_none() {
            // TLS 1.3 middlebox-compatibility CCS (RFC 8446 §D.4): not a key change.
            return;
        }
        let d = idx(from);
        if self.dirs[d].ccs && self.dirs[d].finished {
            // Renegotiated keys: not followed.
            self.start_renegotiation(from, out);
            self.dirs[d].keys = None;
            self.dirs[d].phase = Phase::None;
            self.set_error("TLS 1.2 renegotiation: the renegotiated keys are not followed");
            return;
        }
        self.dirs[d].ccs = true;
        if from == Side::Server && !self.server_hello_done && !self.record.resumed {
            // The server's ChangeCipherSpec right after its ServerHello (and a ticket): the
            // abbreviated handshake of a ticket resumption (RFC 5077 §3.1).
            self.record.resumed = true;
            self.record.resumption = Some("ticket");
            self.master_looked_up = false;
        }
        let Some(suite) = self.suite else {
            self.report_unsupported(out);
            return;
        };
        let Some(aead) = suite.aead else {
            self.report_unsupported(out);
            return;
        };
        let Some((master, src)) = self.tls12_master() else {
            self.report_no_key(out);
            return;
        };
        self.record.keys_from = Some(match src {
            MasterSource::ClientRandom => "client_random",
            MasterSource::SessionId => "session_id",
            MasterSource::Ticket => "ticket",
        });
        let (Some(ch), Some(sh)) = (&self.client_hello, &self.server_hello) else {
            return;
        };
        let (client, server) =
            schedule::tls12_key_block(aead, suite.hash, master.as_bytes(), &ch.random, &sh.random);
        let protection = if aead == Aead::Chacha20Poly1305 {
            Protection::Tls12Chacha
        } else {
            Protection::Tls12Gcm
        };
        let tk = if from == Side::Client { client } else { server };
        let dir = &mut self.dirs[d];
        dir.keys = Some(RecordKeys::new(aead, &tk, protection));
        dir.phase = Phase::Handshake;
    }

    pub(super) fn on_finished(&mut self, from: Side, out: &mut OutFn<'_, '_>) {
        let d = &mut self.dirs[idx(from)];
        if d.finished {
            return;
        }
        d.finished = true;
        if self.version == Some(0x0304) {
            d.switch = Some(Switch::ToApplication);
        } else {
            d.phase = Phase::Application(0);
            d.carries_data = true;
        }
        out(Out::Event(TlsEvent::Finished { from }));
        if self.dirs[0].finished && self.dirs[1].finished {
            self.record.handshake_complete = Some(true);
        }
    }

    /// TLS 1.3 keys for this side's application traffic secret `generation`.
    pub(super) fn tls13_app_keys(
        &self,
        side: Side,
        generation: u32,
        previous: Option<&Secret>,
    ) -> Option<(RecordKeys, Secret)> {
        let suite = self.suite?;
        let aead = suite.aead?;
        let secrets = self.tls13.as_ref()?;
        let secret = secrets
            .traffic(side == Side::Server, generation)
            .or_else(|| previous.map(|p| schedule::tls13_next_secret(suite.hash, p)))?;
        if secret.len() != suite.hash.len() {
            return None;
        }
        let tk = schedule::tls13_traffic_keys(aead, suite.hash, secret.as_bytes());
        Some((RecordKeys::new(aead, &tk, Protection::Tls13), secret))
    }

    pub(super) fn apply_switch(&mut self, from: Side) {
        let Some(switch) = self.dirs[idx(from)].switch.take() else {
            return;
        };
        match switch {
            Switch::ToApplication => {
                let keys = self.tls13_app_keys(from, 0, None);
                let d = &mut self.dirs[idx(from)];
                d.phase = Phase::Application(0);
                d.carries_data = true;
                match keys {
                    Some((k, s)) => {
                        d.keys = Some(k);
                        d.app_secret = Some(s);
                    }
                    None => d.keys = None,
                }
            }
            Switch::KeyUpdate => {
                let (generation, previous) = match self.dirs[idx(from)].phase {
                    Phase::Application(n) => (n + 1, self.dirs[idx(from)].app_secret),
                    _ => (1, self.dirs[idx(from)].app_secret),
                };
                let keys = self.tls13_app_keys(from, generation, previous.as_ref());
                let d = &mut self.dirs[idx(from)];
                d.phase = Phase::Application(generation);
                match keys {
                    Some((k, s)) => {
                        d.keys = Some(k);
                        d.app_secret = Some(s);
                    }
                    None => d.keys = None,
                }
            }
            Switch::ToHandshake => {
                let d = &mut self.dirs[idx(from)];
                if let Some(hs) = d.hs_keys.take() {
                    d.keys = Some(hs);
                }
                d.phase = Phase::Handshake;
            }
        }
    }
}
