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

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain, then `STARTTLS` before anything else (port 587); refused if the server can't.
    StartTls,
    /// No encryption: only for a relay on the same machine or a test server.
    None,
}

/// Where mail to users goes (`[auth.smtp]`).
#[derive(Clone, PartialEq)]
pub struct SmtpConfig {
    /// The server's host name.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is secured.
    pub security: SmtpSecurity,
    /// User name and password, if it wants them.
    pub credentials: Option<(String, String)>,
    /// The `From` address (`Shop <no-reply@shop.example>`).
    pub from: String,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .field("from", &self.from)
            .finish()
    }
}

/// Sends mail through an SMTP server.
pub struct Smtp {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl Smtp {
    /// A sender for `c` (connections are made per message).
    ///
    /// # Errors
    /// A `from` that is not an address, a host TLS can't be set up for.
    pub fn new(c: &SmtpConfig) -> Result<Self, String> {
        use lettre::transport::smtp::authentication::Credentials;
        type Transport = lettre::AsyncSmtpTransport<lettre::Tokio1Executor>;
        let from = c
            .from
            .parse()
            .map_err(|e| format!("auth.smtp.from: `{}`: {e}", c.from))?;
        let builder = match c.security {
            SmtpSecurity::Tls => Transport::relay(&c.host).map_err(|e| e.to_string())?,
            SmtpSecurity::StartTls => {
                Transport::starttls_relay(&c.host).map_err(|e| e.to_string())?
            }
            SmtpSecurity::None => Transport::builder_dangerous(&c.host),
        };
        let mut builder = builder
            .port(c.port)
            .timeout(Some(std::time::Duration::from_secs(15)));
        if let Some((user, password)) = &c.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

impl Mailer for Smtp {
    fn send<'a>(
        &'a self,
        _project: &'a str,
        to: &'a str,
        subject: &'a str,
        body: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            use lettre::AsyncTransport;
            let to: lettre::message::Mailbox =
                to.parse().map_err(|e| format!("recipient `{to}`: {e}"))?;
            let message = lettre::Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(subject)
                .header(lettre::message::header::ContentType::TEXT_PLAIN)
                .body(body.to_owned())
                .map_err(|e| e.to_string())?;
            self.transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}
