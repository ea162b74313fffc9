//! Access-key roles of queues.

/// What a queue's key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// Everything a client may do with the queue: send, receive, ack, purge, read its depth.
    Full,
    /// Send (and read its depth) only.
    Send,
    /// Receive, ack and delete (and read its depth) only.
    Consume,
}

impl KeyRole {
    /// Its name in the API: `full`, `send`, `consume`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Full => "full",
            KeyRole::Send => "send",
            KeyRole::Consume => "consume",
        }
    }

    /// The role named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "full" => Some(KeyRole::Full),
            "send" => Some(KeyRole::Send),
            "consume" => Some(KeyRole::Consume),
            _ => None,
        }
    }

    /// Whether a key with this role may do what `needed` allows.
    pub fn allows(self, needed: KeyRole) -> bool {
        self == KeyRole::Full || self == needed
    }
}
