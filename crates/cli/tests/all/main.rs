//! Updraft's end-to-end tests: one test binary, real sockets, real components built from
//! `test-programs/`. See `tests/README.md` for the tiers.

// Helpers outside #[test] functions are test code too: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod auth;
mod capabilities;
mod cli;
mod deploy;
mod documents;
mod events;
mod examples;
mod gateway;
mod hostile;
mod keys;
mod keyvalue;
mod lambda;
mod lifecycle;
mod limits;
mod logs;
mod metering;
mod objects;
mod outbound;
mod projects;
mod restart;
mod secrets;
mod sites;
mod support;
mod toolchains;
mod versions;
