-- wsprobe dataset tables in ClickHouse (tables schema_version 1): CREATE TABLE, then INSERT ... SELECT FROM s3() (file() for a local DIR)
-- Generated from src/report/tables/columns.rs; `cargo test --test integration table_sql` checks it.
-- Replace BUCKET/DIR with where `wsprobe analyze --out-dir DIR` wrote (or where it was synced to).

CREATE DATABASE IF NOT EXISTS wsprobe;

CREATE TABLE IF NOT EXISTS wsprobe.connections (
    `schema_version` Int64,
    `conn_uid` String,
    `network.community_id` String,
    `sensor` String,
    `observer.name` String,
    `agent.version` String,
    `@timestamp` DateTime64(6, 'UTC'),
    `ts` Float64,
    `event.dataset` String,
    `event.module` String,
    `event.kind` String,
    `wsprobe.connection_id` Int64,
    `event.category` String,
    `event.type` String,
    `event.start` DateTime64(6, 'UTC'),
    `event.end` DateTime64(6, 'UTC'),
    `event.duration` Int64,
    `event.outcome` String,
    `event.reason` String,
    `source.ip` String,
    `source.port` Int64,
    `destination.ip` String,
    `destination.port` Int64,
    `client.ip` String,
    `client.port` Int64,
    `server.ip` String,
    `server.port` Int64,
    `network.transport` String,
    `network.type` String,
    `network.protocol` String,
    `url.domain` Nullable(String),
    `url.port` Nullable(Int64),
    `url.path` Nullable(String),
    `url.query` Nullable(String),
    `url.original` Nullable(String),
    `user_agent.original` Nullable(String),
    `http.request.method` Nullable(String),
    `http.version` Nullable(String),
    `http.response.status_code` Nullable(Int64),
    `websocket.handshake.reason` Nullable(String),
    `websocket.handshake.origin` Nullable(String),
    `websocket.handshake.accepted` Nullable(Bool),
    `websocket.handshake.accept_valid` Nullable(Bool),
    `websocket.handshake.version` Nullable(String),
    `websocket.handshake.request_time` Nullable(Float64),
    `websocket.handshake.response_time` Nullable(Float64),
    `websocket.handshake.latency_ms` Nullable(Float64),
    `websocket.subprotocol` Nullable(String),
    `websocket.offered_subprotocols` Nullable(String),
    `websocket.extensions` Nullable(String),
    `websocket.offered_extensions` Nullable(String),
    `websocket.http2.stream_id` Nullable(Int64),
    `websocket.http2.end` Nullable(String),
    `websocket.close.code` Nullable(Int64),
    `websocket.close.reason` Nullable(String),
    `websocket.close.initiator` Nullable(String),
    `websocket.close.outcome` String,
    `websocket.close.inferred` Bool,
    `websocket.close.meaning` Nullable(String),
    `websocket.close.reply_code` Nullable(Int64),
    `websocket.close.time` Nullable(Float64),
    `websocket.close.tcp_end` Nullable(String),
    `websocket.close.tcp_end_from` Nullable(String),
    `websocket.close.tcp_end_time` Nullable(Float64),
    `websocket.close.idle_before_end_s` Nullable(Float64),
    `websocket.close.last_message` Nullable(String),
    `websocket.messages.client` Int64,
    `websocket.messages.server` Int64,
    `websocket.payload_bytes.client` Int64,
    `websocket.payload_bytes.server` Int64,
    `websocket.frames.client.text` Int64,
    `websocket.frames.client.binary` Int64,
    `websocket.frames.client.continuation` Int64,
    `websocket.frames.client.close` Int64,
    `websocket.frames.client.ping` Int64,
    `websocket.frames.client.pong` Int64,
    `websocket.frames.client.other` Int64,
    `websocket.frames.server.text` Int64,
    `websocket.frames.server.binary` Int64,
    `websocket.frames.server.continuation` Int64,
    `websocket.frames.server.close` Int64,
    `websocket.frames.server.ping` Int64,
    `websocket.frames.server.pong` Int64,
    `websocket.frames.server.other` Int64,
    `websocket.ping.client_pings` Int64,
    `websocket.ping.server_pings` Int64,
    `websocket.ping.answered` Int64,
    `websocket.ping.unanswered` Int64,
    `websocket.ping.unsolicited_pongs` Int64,
    `websocket.ping.rtt_min_ms` Nullable(Float64),
    `websocket.ping.rtt_median_ms` Nullable(Float64),
    `websocket.ping.rtt_max_ms` Nullable(Float64),
    `tcp.syn_seen` Bool,
    `tcp.gaps` Int64,
    `tcp.gap_bytes` Int64,
    `tcp.retransmissions` Int64,
    `tcp.out_of_order` Int64,
    `websocket.diagnostics.total` Int64,
    `websocket.diagnostics.errors` Int64,
    `websocket.diagnostics.warnings` Int64,
    `websocket.diagnostics.info` Int64,
    `websocket.diagnostics.ids` String,
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(`@timestamp`)
ORDER BY (conn_uid);

INSERT INTO wsprobe.connections
SELECT * FROM s3('https://BUCKET.s3.amazonaws.com/DIR/table=connections/*/*/*.jsonl.gz', 'JSONEachRow')
SETTINGS date_time_input_format = 'best_effort', input_format_skip_unknown_fields = 1;

CREATE TABLE IF NOT EXISTS wsprobe.messages (
    `schema_version` Int64,
    `conn_uid` String,
    `network.community_id` String,
    `sensor` String,
    `observer.name` String,
    `agent.version` String,
    `@timestamp` DateTime64(6, 'UTC'),
    `ts` Float64,
    `event.dataset` String,
    `event.module` String,
    `event.kind` String,
    `wsprobe.connection_id` Int64,
    `source.ip` String,
    `source.port` Int64,
    `destination.ip` String,
    `destination.port` Int64,
    `websocket.message.index` Int64,
    `websocket.message.from` String,
    `websocket.message.opcode` String,
    `websocket.message.length` Nullable(Int64),
    `websocket.message.wire_length` Int64,
    `websocket.message.fragments` Int64,
    `websocket.message.compressed` Bool,
    `websocket.message.complete` Bool,
    `websocket.message.close_code` Nullable(Int64),
    `websocket.message.text` Nullable(String),
    `websocket.message.base64` Nullable(String),
    `websocket.message.truncated` Bool,
    `websocket.message.inflate_error` Nullable(String),
    `websocket.message.inflated_after_gap` Bool,
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(`@timestamp`)
ORDER BY (conn_uid, `websocket.message.index`);

INSERT INTO wsprobe.messages
SELECT * FROM s3('https://BUCKET.s3.amazonaws.com/DIR/table=messages/*/*/*.jsonl.gz', 'JSONEachRow')
SETTINGS date_time_input_format = 'best_effort', input_format_skip_unknown_fields = 1;

CREATE TABLE IF NOT EXISTS wsprobe.diagnostics (
    `schema_version` Int64,
    `conn_uid` String,
    `network.community_id` String,
    `sensor` String,
    `observer.name` String,
    `agent.version` String,
    `@timestamp` DateTime64(6, 'UTC'),
    `ts` Float64,
    `event.dataset` String,
    `event.module` String,
    `event.kind` String,
    `wsprobe.connection_id` Int64,
    `event.code` String,
    `log.level` String,
    `message` String,
    `websocket.diagnostic.from` Nullable(String),
    `websocket.diagnostic.time` Nullable(Float64),
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(`@timestamp`)
ORDER BY (conn_uid, `event.code`, `@timestamp`, message);

INSERT INTO wsprobe.diagnostics
SELECT * FROM s3('https://BUCKET.s3.amazonaws.com/DIR/table=diagnostics/*/*/*.jsonl.gz', 'JSONEachRow')
SETTINGS date_time_input_format = 'best_effort', input_format_skip_unknown_fields = 1;

-- A re-loaded run replaces its rows (same key) when ClickHouse merges; query with FINAL
-- to see them deduplicated at once, e.g. SELECT count() FROM wsprobe.connections FINAL.
