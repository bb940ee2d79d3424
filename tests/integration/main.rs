//! wsprobe's integration tests: one binary, the built `wsprobe` run on real and synthetic captures.

mod util;

mod captures;
mod cli;
mod hostile;
mod mutants;
mod properties;
mod synthetic;
