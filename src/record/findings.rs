//! Findings across connections (`findings` in the report): why connections ended, as patterns
//! over many of them (src/findings draws them). The ids are the report contract's.

use serde::{Serialize, Serializer};

macro_rules! finding_ids {
    ($($variant:ident = $name:literal, $what:literal;)*) => {
        /// A finding's stable id, as used in reports and by `--fail-on`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum FindingId {
            $(#[doc = $what] $variant,)*
        }

        impl FindingId {
            /// Every id.
            pub const ALL: &'static [FindingId] = &[$(FindingId::$variant,)*];

            /// The snake_case id.
            pub fn as_str(self) -> &'static str {
                match self { $(FindingId::$variant => $name,)* }
            }

            /// One line saying what the finding means.
            pub fn description(self) -> &'static str {
                match self { $(FindingId::$variant => $what,)* }
            }

            /// Looks an id up by name.
            pub fn parse(name: &str) -> Option<FindingId> {
                FindingId::ALL.iter().copied().find(|id| id.as_str() == name)
            }
        }
    };
}

finding_ids! {
    IdleTimeout = "idle_timeout", "connections ended after nearly the same idle time: an idle timeout between client and server";
    MaxLifetime = "max_lifetime", "connections ended at nearly the same age whatever their traffic: a maximum connection lifetime";
    ServerRestart = "server_restart", "many connections to one server ended at one instant without Close, and clients came back";
    MassDisconnect = "mass_disconnect", "many connections ended at one instant without Close (and did not come back)";
    GracefulShutdown = "graceful_shutdown", "one server sent the same Close code (1001, 1012, ...) to many connections at one instant";
    HeartbeatTimeout = "heartbeat_timeout", "pings went unanswered, then the pinging side ended the connection after a consistent delay";
    PeerUnreachable = "peer_unreachable", "one side kept retransmitting data that was never acknowledged: the other side went silent";
    ProxyLegs = "proxy_legs", "two connections carry the same frames: the two legs of one proxied session";
}

impl Serialize for FindingId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A known component whose default setting matches a finding's parameter.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Suspect {
    /// `nginx`, `AWS Application Load Balancer`, ...
    pub name: &'static str,
    /// The setting to change: `proxy_read_timeout`.
    pub setting: &'static str,
    /// Its default, seconds.
    pub default_s: f64,
    /// Where the default is documented.
    pub source: &'static str,
}

/// One pattern over the connections' endings.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    /// Stable id.
    pub id: FindingId,
    /// How sure wsprobe is, 0 to 1.
    pub confidence: f64,
    /// The connections it covers, by id.
    pub connections: Vec<u64>,
    /// The numbers (contract names: `timeout_s`, `lifetime_s`, `time`, `server`, `side`,
    /// `since`, ...).
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// The evidence, in numbers.
    pub evidence: String,
    /// What it means, in plain words.
    pub explanation: String,
    /// What to do.
    pub advice: String,
    /// Components whose default matches (idle_timeout, max_lifetime); may be empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suspects: Vec<Suspect>,
    /// When the pattern happened (its first ending), Unix seconds.
    pub time: Option<f64>,
}
