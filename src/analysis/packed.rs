//! The handshake record of an idle connection, packed into one allocation. The record is a
//! dozen strings and two header lists: for a typical upgrade about 1.1 KB in some 25
//! allocations (432 bytes of struct, 48 per header, the strings), packed about 350 bytes. Once
//! the handshake is over it is only read again for the connection's record (or by a second
//! attempt on the same connection), so hibernation packs it and the first reader unpacks it.

use crate::pack::{Reader, Writer};
use crate::record::{HandshakeRecord, Header};

/// A connection's handshake record: open while it is written, packed while the connection is
/// idle.
#[derive(Debug, Default)]
pub(super) struct StoredHandshake(Slot);

#[derive(Debug, Default)]
enum Slot {
    #[default]
    None,
    Open(Box<HandshakeRecord>),
    Packed(Box<[u8]>),
}

impl StoredHandshake {
    pub(super) fn is_some(&self) -> bool {
        !matches!(self.0, Slot::None)
    }

    pub(super) fn set(&mut self, record: HandshakeRecord) {
        self.0 = Slot::Open(Box::new(record));
    }

    /// The record, unpacked if it was packed.
    pub(super) fn get_mut(&mut self) -> Option<&mut HandshakeRecord> {
        if let Slot::Packed(bytes) = &self.0 {
            self.0 = Slot::Open(Box::new(unpack(bytes)));
        }
        match &mut self.0 {
            Slot::Open(record) => Some(record),
            _ => None,
        }
    }

    /// The record, made empty if there was none.
    pub(super) fn get_or_default(&mut self) -> &mut HandshakeRecord {
        if !self.is_some() {
            self.set(HandshakeRecord::default());
        }
        self.get_mut().expect("set above")
    }

    /// Reads the record without unpacking it for good (a packed one is unpacked for the call).
    pub(super) fn read<T>(&self, f: impl FnOnce(&HandshakeRecord) -> T) -> Option<T> {
        match &self.0 {
            Slot::None => None,
            Slot::Open(record) => Some(f(record)),
            Slot::Packed(bytes) => Some(f(&unpack(bytes))),
        }
    }

    /// The connection is idle: one allocation instead of many.
    pub(super) fn pack(&mut self) {
        if let Slot::Open(record) = &self.0 {
            self.0 = Slot::Packed(pack(record));
        }
    }

    pub(super) fn take(self) -> Option<HandshakeRecord> {
        match self.0 {
            Slot::None => None,
            Slot::Open(record) => Some(*record),
            Slot::Packed(bytes) => Some(unpack(&bytes)),
        }
    }
}

fn pack(r: &HandshakeRecord) -> Box<[u8]> {
    // Every field, so that one added to the record cannot be forgotten here.
    let HandshakeRecord {
        method,
        http_version,
        path,
        host,
        origin,
        user_agent,
        version,
        status,
        reason,
        accepted,
        accept_valid,
        subprotocol,
        offered_subprotocols,
        extensions,
        offered_extensions,
        request_time,
        response_time,
        request_headers,
        response_headers,
        request_head_bytes,
        response_head_bytes,
        response_http_version,
    } = r;
    let mut w = Writer(Vec::with_capacity(256));
    w.str(method);
    w.str(http_version);
    w.str(path);
    for s in [host, origin, user_agent, version] {
        w.opt_str(s.as_deref());
    }
    w.opt_u64(status.map(u64::from));
    w.opt_str(reason.as_deref());
    w.byte(u8::from(*accepted));
    w.byte(accept_valid.map_or(2, u8::from));
    w.opt_str(subprotocol.as_deref());
    w.length(offered_subprotocols.len());
    for s in offered_subprotocols {
        w.str(s);
    }
    w.opt_str(extensions.as_deref());
    w.opt_str(offered_extensions.as_deref());
    w.opt_u64(request_time.map(f64::to_bits));
    w.opt_u64(response_time.map(f64::to_bits));
    for headers in [request_headers, response_headers] {
        w.length(headers.len());
        for h in headers {
            w.str(&h.name);
            w.str(&h.value);
        }
    }
    w.opt_u64(*request_head_bytes);
    w.opt_u64(*response_head_bytes);
    w.opt_str(response_http_version.as_deref());
    w.0.into_boxed_slice()
}

fn unpack(bytes: &[u8]) -> HandshakeRecord {
    let record = read_record(&mut Reader(bytes));
    debug_assert!(
        record.is_some(),
        "bug: a packed handshake record does not read back"
    );
    record.unwrap_or_default()
}

fn read_record(r: &mut Reader<'_>) -> Option<HandshakeRecord> {
    let method = r.str()?;
    let http_version = r.str()?;
    let path = r.str()?;
    let host = r.opt_str()?;
    let origin = r.opt_str()?;
    let user_agent = r.opt_str()?;
    let version = r.opt_str()?;
    let status = r.opt_u64()?.map(|s| s as u16);
    let reason = r.opt_str()?;
    let accepted = r.byte()? == 1;
    let accept_valid = match r.byte()? {
        2 => None,
        b => Some(b == 1),
    };
    let subprotocol = r.opt_str()?;
    let offered_subprotocols = (0..r.length()?).map(|_| r.str()).collect::<Option<_>>()?;
    let extensions = r.opt_str()?;
    let offered_extensions = r.opt_str()?;
    let request_time = r.opt_u64()?.map(f64::from_bits);
    let response_time = r.opt_u64()?.map(f64::from_bits);
    let mut headers = || {
        (0..r.length()?)
            .map(|_| {
                Some(Header {
                    name: r.str()?,
                    value: r.str()?,
                })
            })
            .collect::<Option<Vec<_>>>()
    };
    let request_headers = headers()?;
    let response_headers = headers()?;
    Some(HandshakeRecord {
        method,
        http_version,
        path,
        host,
        origin,
        user_agent,
        version,
        status,
        reason,
        accepted,
        accept_valid,
        subprotocol,
        offered_subprotocols,
        extensions,
        offered_extensions,
        request_time,
        response_time,
        request_headers,
        response_headers,
        request_head_bytes: r.opt_u64()?,
        response_head_bytes: r.opt_u64()?,
        response_http_version: r.opt_str()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &str) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    fn full() -> HandshakeRecord {
        HandshakeRecord {
            method: "GET".into(),
            http_version: "HTTP/1.1".into(),
            path: "/chat?token=REDACTED&é=ü".into(),
            host: Some("example.com".into()),
            origin: Some(String::new()),
            user_agent: Some("x".repeat(300)),
            version: Some("13".into()),
            status: Some(101),
            reason: Some("Switching Protocols".into()),
            accepted: true,
            accept_valid: Some(false),
            subprotocol: Some("graphql-ws".into()),
            offered_subprotocols: vec!["graphql-ws".into(), String::new(), "mqtt".into()],
            extensions: Some("permessage-deflate; client_max_window_bits=15".into()),
            offered_extensions: Some("permessage-deflate".into()),
            request_time: Some(1_700_000_000.123_456_7),
            response_time: Some(-0.0),
            request_headers: vec![header("Host", "example.com"), header("", "")],
            response_headers: vec![header("Upgrade", "websocket")],
            request_head_bytes: Some(u64::MAX),
            response_head_bytes: Some(129),
            response_http_version: Some("HTTP/1.1".into()),
        }
    }

    #[test]
    fn packing_keeps_every_field() {
        for record in [full(), HandshakeRecord::default()] {
            let packed = pack(&record);
            assert_eq!(format!("{:?}", unpack(&packed)), format!("{record:?}"));
        }
        let mut partial = full();
        partial.accept_valid = None;
        partial.accepted = false;
        partial.status = None;
        partial.response_time = None;
        partial.response_headers.clear();
        partial.host = None;
        assert_eq!(
            format!("{:?}", unpack(&pack(&partial))),
            format!("{partial:?}")
        );
    }

    #[test]
    fn a_packed_record_is_small_and_unpacked_by_its_first_writer() {
        let record = full();
        let mut stored = StoredHandshake::default();
        assert!(!stored.is_some() && stored.read(|_| ()).is_none());
        stored.set(record.clone());
        stored.pack();
        let Slot::Packed(bytes) = &stored.0 else {
            panic!("packed")
        };
        // The text, plus a byte or two per string and number.
        let text: usize = [&record.method, &record.http_version, &record.path]
            .into_iter()
            .chain(record.offered_subprotocols.iter())
            .chain(
                [
                    &record.host,
                    &record.origin,
                    &record.user_agent,
                    &record.version,
                    &record.reason,
                    &record.subprotocol,
                    &record.extensions,
                    &record.offered_extensions,
                    &record.response_http_version,
                ]
                .into_iter()
                .flatten(),
            )
            .chain(
                record
                    .request_headers
                    .iter()
                    .chain(&record.response_headers)
                    .flat_map(|h| [&h.name, &h.value]),
            )
            .map(String::len)
            .sum();
        assert!(bytes.len() <= text + 64, "{} bytes for {text}", bytes.len());
        assert_eq!(stored.read(|r| r.request_time), Some(record.request_time));
        assert!(
            matches!(stored.0, Slot::Packed(_)),
            "a read leaves it packed"
        );
        stored.get_mut().expect("record").status = Some(426);
        assert!(matches!(stored.0, Slot::Open(_)));
        stored.pack();
        stored.pack();
        assert_eq!(stored.take().and_then(|r| r.status), Some(426));
    }
}
