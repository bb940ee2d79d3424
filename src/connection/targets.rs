//! WebSocket endpoints (`host/path`) seen upgraded, and refused plain requests to endpoints not
//! (yet) known as such: a request that another connection's upgrade shows to be for a
//! WebSocket endpoint is reported even when it came earlier in the capture.
//!
//! A look across connections. In a sharded run the connections live on several threads, so
//! the endpoints are kept in one shared table, each with the [`Position`] at which it was
//! first upgraded, and a look-up waits for the other threads ([`crate::record::order`]): it
//! then sees exactly the endpoints a single-threaded run would have seen.

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::record::order;
use crate::record::{ConnectionRecord, Position, Sink};

/// Endpoints remembered as upgraded: far more than a capture's distinct WebSocket URLs.
const MAX_UPGRADED_TARGETS: usize = 65_536;
/// Refused plain exchanges held until the end of the capture (each a small record).
pub(crate) const MAX_WAITING_EXCHANGES: usize = 4096;

/// The endpoint table of a single-threaded run, or a thread's view of a sharded run's.
pub(super) enum Targets {
    Local {
        upgraded: HashSet<String>,
        /// Records built for refused plain exchanges, with their target; reported at the end
        /// if the target was upgraded by then.
        waiting: Vec<(String, ConnectionRecord)>,
    },
    Shared(Arc<SharedTargets>),
}

impl Default for Targets {
    fn default() -> Self {
        Targets::Local {
            upgraded: HashSet::new(),
            waiting: Vec::new(),
        }
    }
}

impl Targets {
    /// Has another connection upgraded `target` before `at`?
    pub(super) fn upgraded(&self, target: &str, at: Position) -> bool {
        match self {
            Targets::Local { upgraded, .. } => upgraded.contains(target),
            Targets::Shared(shared) => {
                let at = order::wait_for_the_others().unwrap_or(at);
                let table = shared.upgraded.lock().unwrap_or_else(|e| e.into_inner());
                table.get(target).is_some_and(|first| *first < at)
            }
        }
    }

    pub(super) fn note_upgraded(&mut self, target: String, at: Position) {
        match self {
            Targets::Local { upgraded, .. } => {
                if upgraded.len() < MAX_UPGRADED_TARGETS {
                    upgraded.insert(target);
                }
            }
            Targets::Shared(shared) => {
                let mut table = shared.upgraded.lock().unwrap_or_else(|e| e.into_inner());
                let full = table.len() >= MAX_UPGRADED_TARGETS;
                match table.get_mut(&target) {
                    Some(first) => *first = (*first).min(at),
                    None if !full => {
                        table.insert(target, at);
                    }
                    None => {}
                }
            }
        }
    }

    /// Can one more refused exchange wait for the end? (A sharded run counts them at the
    /// merge, which keeps the first [`MAX_WAITING_EXCHANGES`] in run order.)
    pub(super) fn has_room(&self) -> bool {
        match self {
            Targets::Local { waiting, .. } => waiting.len() < MAX_WAITING_EXCHANGES,
            Targets::Shared(_) => true,
        }
    }

    pub(super) fn keep(&mut self, target: String, record: ConnectionRecord, sink: &mut dyn Sink) {
        match self {
            Targets::Local { waiting, .. } => waiting.push((target, record)),
            Targets::Shared(_) => sink.waiting(target, record),
        }
    }

    /// End of all input (single-threaded): the waiting records whose target was upgraded.
    pub(super) fn take_late_records(&mut self) -> Vec<ConnectionRecord> {
        match std::mem::take(self) {
            Targets::Local { upgraded, waiting } => waiting
                .into_iter()
                .filter(|(target, _)| upgraded.contains(target))
                .map(|(_, record)| record)
                .collect(),
            shared @ Targets::Shared(_) => {
                *self = shared;
                Vec::new()
            }
        }
    }
}

/// The endpoint table shared by a sharded run's threads.
pub struct SharedTargets {
    upgraded: Mutex<HashMap<String, Position>>,
}

impl SharedTargets {
    /// An empty table.
    pub fn new() -> Arc<SharedTargets> {
        Arc::new(SharedTargets {
            upgraded: Mutex::new(HashMap::new()),
        })
    }

    /// Was `target` upgraded anywhere in the run? (At the end, when every thread is done.)
    pub fn upgraded_by_the_end(&self, target: &str) -> bool {
        let table = self.upgraded.lock().unwrap_or_else(|e| e.into_inner());
        table.contains_key(target)
    }
}
