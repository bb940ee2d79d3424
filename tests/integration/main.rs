//! wsprobe's integration tests: one binary, the built `wsprobe` run on real and synthetic captures.

mod util;
mod webdriver;

mod app;
mod browser;
mod captures;
mod cli;
mod determinism;
mod fidelity;
mod findings;
mod golden;
mod hibernation;
mod hostile;
mod http2;
mod late_data;
mod live;
mod mutants;
mod properties;
mod reports;
mod synthetic;
mod threads;
mod tls;
mod tls_harness;
