//! wsprobe's integration tests: one binary, the built `wsprobe` run on real and synthetic captures.

mod util;

mod captures;
mod cli;
mod fidelity;
mod golden;
mod hostile;
mod live;
mod mutants;
mod properties;
mod synthetic;
