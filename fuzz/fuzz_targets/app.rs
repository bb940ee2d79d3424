//! The application-protocol stage (recognition and every decoder: Engine.IO/Socket.IO, both
//! GraphQL protocols, STOMP, SockJS, MQTT's byte stream, SignalR, JSON-RPC, Phoenix,
//! ActionCable, tunnels) fed arbitrary messages, Close frames and incomplete payloads.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wsprobe_fuzz::run_app(data));
