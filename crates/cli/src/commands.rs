//! One module per verb.

pub(crate) mod audit;
pub(crate) mod backup;
pub(crate) mod bundle;
pub(crate) mod db;
pub(crate) mod deploy;
pub(crate) mod functions;
pub(crate) mod invoke;
pub(crate) mod key;
pub(crate) mod kv;
pub(crate) mod logs;
pub(crate) mod objects;
pub(crate) mod project;
pub(crate) mod queue;
pub(crate) mod secret;
pub(crate) mod serve;
pub(crate) mod site;
pub(crate) mod up;
pub(crate) mod usage;
pub(crate) mod users;
pub(crate) mod versions;
