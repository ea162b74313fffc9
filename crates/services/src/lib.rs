//! The platform's services for apps, beside functions:
//! - [`auth`]: end-user auth per project: sign-up and sign-in, sessions with short-lived ES256
//!   access tokens and rotating refresh tokens, the JWKS, and the verification the gateway's
//!   route policies use; served under `/_updraft/auth/v1/` with the shapes of Supabase Auth
//!   (GoTrue), so its clients work with only the URL changed;
//! - [`kv`]: key-value stores for functions (`wasi:keyvalue`, Spin) and over HTTP;
//! - [`docs`]: JSON document collections with CEL rules, queries and live changes;
//! - [`objects`]: buckets and objects, served with the S3 API (through `s3s`) on their own
//!   listener, and over plain HTTP for the control API;
//! - [`sites`]: static sites, published per project with the app that declares them and
//!   served where no function route matches.
//!
//! It owns the rules of those services and their HTTP shapes; state lives behind the store's
//! traits ([`updraft_store::AuthStore`], [`updraft_store::KvStore`],
//! [`updraft_store::DocStore`], [`updraft_store::objects::ObjectStore`]). It must not know
//! about Wasmtime, the registry or the gateway: the composition root mounts its routers and
//! listeners and hands the gateway its verifier.

mod answer;
pub mod auth;
mod chunks;
pub mod docs;
pub mod kv;
pub mod objects;
pub mod sites;
