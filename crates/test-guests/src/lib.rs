//! Dev-only: the guest components in `test-programs/`, compiled from source for
//! `wasm32-wasip2` by this crate's build script, exposed as path constants.
//!
//! Tests use them as real uploads (`std::fs::read(HTTP_ECHO)`). The product binary never depends
//! on this crate, so building `updraft` needs only the host target. Each guest documents its
//! behaviour and pass/fail contract in its `src/main.rs` and in `test-programs/README.md`.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
