//! Updraft's end-to-end tests: one test binary, real sockets, real components built from
//! `test-programs/`. See `tests/README.md` for the tiers.

mod cli;
mod deploy;
mod gateway;
mod logs;
mod outbound;
mod restart;
mod support;
