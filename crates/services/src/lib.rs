//! The platform's services for apps, beside functions. Today: end-user auth per project
//! ([`auth`]): sign-up and sign-in, sessions with short-lived ES256 access tokens and rotating
//! refresh tokens, the JWKS, and the verification the gateway's route policies use. Served
//! under `/_updraft/auth/v1/` on the data plane with the request and response shapes of
//! Supabase Auth (GoTrue), so its clients work with only the URL changed.
//!
//! It owns the rules of those services and their HTTP shapes; state lives behind the store's
//! [`updraft_store::AuthStore`]. It must not know about Wasmtime, the registry or the gateway:
//! the composition root mounts its router and hands the gateway its verifier.

mod answer;
pub mod auth;
pub mod docs;
pub mod kv;
pub mod objects;
