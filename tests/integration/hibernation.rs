//! Hibernation (what the idle sweep does to quiet connections: spare buffers given back, the
//! handshake record packed, deflate windows packed under memory pressure) changes nothing a
//! report says: every capture analysed with every connection hibernated after every packet
//! gives the same events, records and summary as without.

use std::path::Path;

use wsprobe::capture::{InputSummary, Packet};
use wsprobe::pipeline::Pipeline;
use wsprobe::record::{ConnectionRecord, Event, OtherConnection, Sink, Summary};

use crate::util::*;

#[derive(Default)]
struct Collect(Vec<String>);

impl Sink for Collect {
    fn event(&mut self, event: &Event<'_>) {
        self.0.push(format!("{event:?}"));
    }
    fn connection(&mut self, record: ConnectionRecord) {
        self.0.push(serde_json::to_string(&record).unwrap());
    }
    fn other_connection(&mut self, connection: &OtherConnection) {
        self.0.push(format!("{connection:?}"));
    }
    fn finish(&mut self, _: &[InputSummary], _: &Summary) -> std::io::Result<()> {
        Ok(())
    }
}

fn options() -> wsprobe::run::RunOptions {
    let cli = <wsprobe::cli::Cli as clap::Parser>::parse_from([
        "wsprobe",
        "analyze",
        "--messages",
        "--frames",
        "x.pcap",
    ]);
    let wsprobe::cli::Command::Analyze(args) = cli.command else {
        unreachable!("analyze")
    };
    wsprobe::run::RunOptions::from_args(&args.report, false).unwrap()
}

/// Everything the pipeline said about `path`; `hibernate`: every connection hibernates after
/// every packet (and packs its deflate decoders after every third).
fn analysed(path: &Path, hibernate: bool) -> Vec<String> {
    let options = options();
    let mut sink = Collect::default();
    let mut pipeline = Pipeline::new(&mut sink, options.connection, options.table);
    let keys = path.with_extension("keys");
    if keys.is_file() {
        pipeline.set_keys(wsprobe::run::load_key_logs(&[keys], false).unwrap());
    }
    let mut n = 0u64;
    let file = std::fs::File::open(path).unwrap();
    let name = path.display().to_string();
    let on_packet = |packet: &Packet<'_>| {
        let _ = pipeline.packet(packet);
        if hibernate {
            n += 1;
            pipeline.hibernate_all(n.is_multiple_of(3));
        }
    };
    wsprobe::capture::file::read_capture(file, &name, on_packet, |_| {}).unwrap();
    let summary = pipeline.finish_all();
    let mut said = sink.0;
    said.push(serde_json::to_string(&summary).unwrap());
    said
}

#[test]
fn hibernating_after_every_packet_changes_no_report() {
    let mut checked = 0;
    for entry in std::fs::read_dir(captures_dir()).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .extension()
            .is_some_and(|e| e == "pcap" || e == "pcapng")
        {
            continue;
        }
        let awake = analysed(&path, false);
        let hibernated = analysed(&path, true);
        assert_eq!(awake.len(), hibernated.len(), "{}", path.display());
        for (a, h) in awake.iter().zip(&hibernated) {
            assert!(a == h, "{}:\n{a}\n!=\n{h}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} captures");
}
