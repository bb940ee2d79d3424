//! Wire values -> meaning: the 4-bit frame opcode (RFC 6455 §5.2) and the 16-bit Close status code (§7.4).
//!
//! Unknown values are kept as variants (`OpCode::Reserved`), never rejected here: judging them is the
//! analysis stage's job.

/// The 4-bit frame opcode of RFC 6455 §5.2; converting from the wire never fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// `0x0`: continues a fragmented message.
    Continuation,
    /// `0x1`: first frame of a text (UTF-8) message.
    Text,
    /// `0x2`: first frame of a binary message.
    Binary,
    /// `0x8`: connection close.
    Close,
    /// `0x9`: ping.
    Ping,
    /// `0xA`: pong.
    Pong,
    /// `0x3..=0x7` (reserved non-control) or `0xB..=0xF` (reserved control); the value is kept.
    Reserved(u8),
}

/// `as_str` names of the reserved opcodes, indexed by value (entries of assigned opcodes are unused).
static RESERVED_NAMES: [&str; 16] = [
    "reserved-0",
    "reserved-1",
    "reserved-2",
    "reserved-3",
    "reserved-4",
    "reserved-5",
    "reserved-6",
    "reserved-7",
    "reserved-8",
    "reserved-9",
    "reserved-10",
    "reserved-11",
    "reserved-12",
    "reserved-13",
    "reserved-14",
    "reserved-15",
];

impl OpCode {
    /// Decodes the low 4 bits of `b` (the high bits are ignored), so any byte maps to an opcode.
    pub fn from_u4(b: u8) -> OpCode {
        match b & 0x0F {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            n => OpCode::Reserved(n),
        }
    }

    /// The 4-bit wire value, for re-encoding and for reports that print the raw opcode.
    pub fn as_u4(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
            OpCode::Reserved(n) => n & 0x0F,
        }
    }

    /// True for opcodes `0x8..=0xF`, reserved ones included: control-frame rules (FIN set, payload <= 125)
    /// apply to them.
    pub fn is_control(self) -> bool {
        // RFC 6455 §5.5: "Control frames are identified by opcodes where the most significant bit of the
        // opcode is 1."
        self.as_u4() & 0x8 != 0
    }

    /// True for `0x3..=0x7` and `0xB..=0xF`, which RFC 6455 reserves for future use.
    pub fn is_reserved(self) -> bool {
        matches!(self, OpCode::Reserved(_))
    }

    /// Stable lower-case name for reports: "continuation", "text", "binary", "close", "ping", "pong", or
    /// "reserved-N" with N in 3..=15.
    pub fn as_str(self) -> &'static str {
        match self {
            OpCode::Continuation => "continuation",
            OpCode::Text => "text",
            OpCode::Binary => "binary",
            OpCode::Close => "close",
            OpCode::Ping => "ping",
            OpCode::Pong => "pong",
            OpCode::Reserved(n) => RESERVED_NAMES[usize::from(n & 0x0F)],
        }
    }
}

/// Registered name of a close code plus the most likely cause, in the report contract's wording, so a
/// reader does not need the RFC open beside the report.
pub fn close_code_meaning(code: u16) -> String {
    let text: &str = match code {
        1000 => "Normal Closure: the purpose of the connection was fulfilled",
        1001 => "Going Away: server shutting down or browser navigating away",
        1002 => "Protocol Error: an endpoint saw a protocol violation",
        1003 => {
            "Unsupported Data: the endpoint cannot accept this kind of data (e.g. binary where only text is handled)"
        }
        1004 => "Reserved: not a valid close code (no meaning is defined for 1004)",
        1005 => "No Status Received: the Close frame carried no status code",
        1006 => {
            "Abnormal Closure: the TCP connection was dropped without a Close frame — server crash, proxy or \
             load-balancer idle timeout, or network loss"
        }
        1007 => "Invalid Frame Payload Data: e.g. text that is not UTF-8",
        1008 => "Policy Violation: often failed authentication",
        1009 => "Message Too Big: a message exceeded the receiver's size limit",
        1010 => "Mandatory Extension: client wanted an extension the server did not negotiate",
        1011 => "Internal Error: unhandled exception on the server — check its logs",
        1012 => "Service Restart",
        1013 => "Try Again Later: server overloaded",
        1014 => "Bad Gateway: a proxy got an invalid response from upstream",
        1015 => "TLS Handshake failure (never sent on the wire)",
        3000..=3999 => match code {
            3000 => "Unauthorized: registered by a library or framework (IANA)",
            3003 => "Forbidden: registered by a library or framework (IANA)",
            3008 => "Timeout: registered by a library or framework (IANA)",
            _ => "registered by a library or framework",
        },
        4000..=4999 => "private use: defined by the application",
        _ => "not a valid close code",
    };
    text.to_string()
}

/// RFC 6455 §7.4: may `code` appear in a Close frame on the wire? False for < 1000, 1004, 1005, 1006, 1015,
/// the unassigned 1016..=2999 and >= 5000; 1012..=1014 are IANA-registered and allowed.
pub fn close_code_allowed_on_wire(code: u16) -> bool {
    match code {
        // RFC 6455 §7.4.2: "Status codes in the range 0-999 are not used."
        0..=999 => false,
        // RFC 6455 §7.4.1: 1004 "Reserved. The specific meaning might be defined in the future."
        // 1005, 1006, 1015: "designated for use in applications expecting a status code to indicate ...";
        // each "MUST NOT be set as a status code in a Close control frame by an endpoint."
        1004 | 1005 | 1006 | 1015 => false,
        1000..=1003 | 1007..=1011 => true,
        // IANA "WebSocket Close Code Number Registry": 1012 Service Restart, 1013 Try Again Later,
        // 1014 Bad Gateway.
        1012..=1014 => true,
        // RFC 6455 §7.4.2: "1000-2999 ... reserved for definition by this protocol, its future revisions,
        // and extensions"; not assigned yet, so not valid on the wire.
        1016..=2999 => false,
        // RFC 6455 §7.4.2: "3000-3999 ... reserved for use by libraries, frameworks, and applications";
        // "4000-4999 ... reserved for private use".
        3000..=4999 => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nibble_round_trips() {
        for b in 0u8..=0xFF {
            let op = OpCode::from_u4(b);
            assert_eq!(op.as_u4(), b & 0x0F);
            assert_eq!(op.is_control(), b & 0x08 != 0);
            assert_eq!(
                op.is_reserved(),
                !matches!(b & 0x0F, 0x0 | 0x1 | 0x2 | 0x8 | 0x9 | 0xA)
            );
        }
    }

    #[test]
    fn names() {
        assert_eq!(OpCode::from_u4(0x0).as_str(), "continuation");
        assert_eq!(OpCode::from_u4(0x1).as_str(), "text");
        assert_eq!(OpCode::from_u4(0x2).as_str(), "binary");
        assert_eq!(OpCode::from_u4(0x8).as_str(), "close");
        assert_eq!(OpCode::from_u4(0x9).as_str(), "ping");
        assert_eq!(OpCode::from_u4(0xA).as_str(), "pong");
        assert_eq!(OpCode::from_u4(0x3).as_str(), "reserved-3");
        assert_eq!(OpCode::from_u4(0x7).as_str(), "reserved-7");
        assert_eq!(OpCode::from_u4(0xB).as_str(), "reserved-11");
        assert_eq!(OpCode::from_u4(0xF).as_str(), "reserved-15");
        // A byte with FIN/RSV bits set still names its low nibble.
        assert_eq!(OpCode::from_u4(0x8B).as_str(), "reserved-11");
        assert!(OpCode::Reserved(0xB).is_control());
        assert!(!OpCode::Reserved(0x3).is_control());
    }

    #[test]
    fn allowed_on_wire() {
        let allowed: Vec<u16> = (0..=u16::MAX)
            .filter(|&c| close_code_allowed_on_wire(c))
            .collect();
        let expected: Vec<u16> = (1000..=1003)
            .chain(1007..=1014)
            .chain(3000..=4999)
            .collect();
        assert_eq!(allowed, expected);
    }

    #[test]
    fn meanings() {
        assert_eq!(
            close_code_meaning(1000),
            "Normal Closure: the purpose of the connection was fulfilled"
        );
        assert!(
            close_code_meaning(1006)
                .starts_with("Abnormal Closure: the TCP connection was dropped")
        );
        assert_eq!(
            close_code_meaning(1015),
            "TLS Handshake failure (never sent on the wire)"
        );
        assert!(close_code_meaning(3000).starts_with("Unauthorized"));
        assert!(close_code_meaning(3003).starts_with("Forbidden"));
        assert!(close_code_meaning(3008).starts_with("Timeout"));
        assert_eq!(
            close_code_meaning(3500),
            "registered by a library or framework"
        );
        assert_eq!(
            close_code_meaning(4001),
            "private use: defined by the application"
        );
        for bad in [0u16, 999, 1016, 2999, 5000, u16::MAX] {
            assert_eq!(close_code_meaning(bad), "not a valid close code", "{bad}");
        }
        assert!(close_code_meaning(1004).contains("not a valid close code"));
        // Every code in the registered range has its own text.
        for c in 1000..=1015u16 {
            assert_ne!(close_code_meaning(c), "not a valid close code", "{c}");
        }
    }
}
