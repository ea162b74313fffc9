//! Messages to users (confirmation, recovery, magic links), and where they go: a [`Mailer`].
//! Until a mail server is configured every message goes to the project's development mailbox
//! (`updraft auth mail`), kept in the store.

use std::sync::Arc;

use updraft_store::{AuthStore, MailRecord, now_ms};

/// Delivers a message to a user.
pub trait Mailer: Send + Sync + 'static {
    /// Sends `subject` and plain-text `body` to `to`, for `project`.
    ///
    /// # Errors
    /// Why it could not be sent.
    fn send<'a>(
        &'a self,
        project: &'a str,
        to: &'a str,
        subject: &'a str,
        body: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

/// The development mailbox: messages are stored, not sent.
pub struct DevMailbox(pub Arc<dyn AuthStore>);

impl Mailer for DevMailbox {
    fn send<'a>(
        &'a self,
        project: &'a str,
        to: &'a str,
        subject: &'a str,
        body: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let m = MailRecord {
                id: 0,
                project: project.to_owned(),
                to: to.to_owned(),
                subject: subject.to_owned(),
                body: body.to_owned(),
                created_at: now_ms(),
            };
            self.0
                .push_mail(&m)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}
