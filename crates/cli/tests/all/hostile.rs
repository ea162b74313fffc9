//! The adversarial suite: hostile guests and clients against a real server (a `updraft serve`
//! process where the whole machine matters, in-process otherwise).
//! Each test is a probe an attacker or a careless client would try; each must end with only
//! the offender refused, while the server and its other users carry on.

mod connections;
mod datadir;
mod guests;
mod logs;
mod queues;
mod sandbox;
mod uploads;
