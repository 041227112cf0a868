//! Outgoing email: the `Mailer` trait and its SMTP, file (`.eml`) and console back-ends,
//! chosen by `EMAIL_BACKEND`.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use saas_core::{AppContext, Config, ServiceError, ServiceResult};

/// One message to send, made by [`Email::text`] and the `with_` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Email {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body (always sent).
    pub text: String,
    /// Optional HTML alternative.
    pub html: Option<String>,
    /// A stable `Message-ID` (without the angle brackets), so that a message sent twice (its
    /// sender died between the server's acceptance and its own record of it) carries one id,
    /// by which some receivers (Gmail) drop the copy. Generated per send when absent.
    pub message_id: Option<String>,
}

impl Email {
    /// A plain-text message.
    pub fn text(to: impl Into<String>, subject: impl Into<String>, text: impl Into<String>) -> Self {
        Self { to: to.into(), subject: subject.into(), text: text.into(), html: None, message_id: None }
    }

    /// Sets a stable `Message-ID`: `<{id}@{domain of the sender}>`.
    pub fn with_message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    /// Adds an HTML alternative.
    pub fn with_html(mut self, html: impl Into<String>) -> Self {
        self.html = Some(html.into());
        self
    }

    /// The RFC 5322 message from `from`.
    pub fn to_message(&self, from: &Mailbox) -> ServiceResult<Message> {
        let to: Mailbox =
            self.to.parse().map_err(|_| ServiceError::invalid_field("email", "Enter a valid email address."))?;
        let message_id = self.message_id.as_ref().map(|id| format!("<{id}@{}>", from.email.domain()));
        let builder = Message::builder().from(from.clone()).to(to).subject(self.subject.clone()).message_id(message_id);
        let message = match &self.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(self.text.clone(), html.clone())),
            None => builder.header(ContentType::TEXT_PLAIN).body(self.text.clone()),
        };
        message.map_err(|err| ServiceError::internal(format!("cannot build email: {err}")))
    }
}

/// Sends email. Apps may provide their own (`SaasApp::builder(..).provide(Arc<dyn Mailer>)`).
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends one message; a transient failure is `unavailable` so a job retries it.
    async fn send(&self, email: &Email) -> ServiceResult<()>;
}

/// SMTP through lettre (`SMTP_URL`, e.g. `smtp://localhost:1025` or `smtps://user:pass@host`).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// A mailer for `url` sending as `from`.
    pub fn new(url: &str, from: Mailbox) -> ServiceResult<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|err| ServiceError::internal(format!("invalid SMTP_URL: {err}")))?
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &Email) -> ServiceResult<()> {
        let message = email.to_message(&self.from)?;
        self.transport.send(message).await.map_err(|err| {
            tracing::warn!(error = %err, "SMTP delivery failed");
            if err.is_permanent() {
                ServiceError::bad_request("mail.rejected", format!("the mail server refused the message: {err}"))
            } else {
                ServiceError::unavailable("mail.unavailable", "The mail server is unavailable.")
            }
        })?;
        Ok(())
    }
}

/// Writes each message as an `.eml` file under a folder (development and tests).
pub struct FileMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl FileMailer {
    /// A mailer writing into `dir` (created when missing).
    pub fn new(dir: impl Into<PathBuf>, from: Mailbox) -> Self {
        Self { dir: dir.into(), from }
    }
}

#[async_trait]
impl Mailer for FileMailer {
    async fn send(&self, email: &Email) -> ServiceResult<()> {
        let message = email.to_message(&self.from)?;
        tokio::fs::create_dir_all(&self.dir).await.map_err(ServiceError::internal)?;
        let name = format!("{}-{}.eml", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"), uuid::Uuid::new_v4().simple());
        let tmp = self.dir.join(format!(".{name}.tmp"));
        tokio::fs::write(&tmp, message.formatted()).await.map_err(ServiceError::internal)?;
        tokio::fs::rename(&tmp, self.dir.join(name)).await.map_err(ServiceError::internal)?;
        Ok(())
    }
}

/// Logs each message (the default backend; nothing leaves the machine). The body, which
/// may hold a sign-in link, is logged only in development (`DEBUG=true`).
pub struct ConsoleMailer {
    /// Whether the body is logged too.
    pub show_body: bool,
}

#[async_trait]
impl Mailer for ConsoleMailer {
    async fn send(&self, email: &Email) -> ServiceResult<()> {
        if self.show_body {
            tracing::info!(to = %email.to, subject = %email.subject, body = %email.text, "email (console backend)");
        } else {
            tracing::info!(to = %email.to, subject = %email.subject, "email (console backend; body hidden)");
        }
        Ok(())
    }
}

/// The mailer `EMAIL_BACKEND` asks for.
pub fn mailer_from_config(config: &Config) -> ServiceResult<Arc<dyn Mailer>> {
    let from: Mailbox = config
        .default_from_email
        .parse()
        .map_err(|_| ServiceError::internal("DEFAULT_FROM_EMAIL is not a valid address"))?;
    Ok(match config.email_backend.as_str() {
        "smtp" => {
            let url = config
                .smtp_url
                .as_deref()
                .ok_or_else(|| ServiceError::internal("EMAIL_BACKEND=smtp needs SMTP_URL"))?;
            Arc::new(SmtpMailer::new(url, from)?)
        }
        "file" => Arc::new(FileMailer::new(&config.email_file_path, from)),
        _ => Arc::new(ConsoleMailer { show_body: config.debug }),
    })
}

/// The app's mailer: the one provided to the app builder, else the configured one.
pub fn mailer(ctx: &AppContext) -> ServiceResult<Arc<dyn Mailer>> {
    if let Some(mailer) = ctx.get::<Arc<dyn Mailer>>() {
        return Ok(mailer);
    }
    let mailer = mailer_from_config(ctx.config())?;
    ctx.insert(mailer.clone());
    Ok(mailer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_file_backend_writes_a_readable_eml() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_vars([
            ("DEBUG", "true"),
            ("EMAIL_BACKEND", "file"),
            ("EMAIL_FILE_PATH", dir.path().to_str().unwrap()),
            ("DEFAULT_FROM_EMAIL", "App <noreply@example.com>"),
        ])
        .unwrap();
        let mailer = mailer_from_config(&config).unwrap();
        let email = Email::text("Ann@Example.com", "Verify your email", "Open https://app.test/verify?token=abc")
            .with_html("<p><a href=\"https://app.test/verify?token=abc\">Verify</a></p>");
        mailer.send(&email).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].extension().unwrap(), "eml");
        let raw = std::fs::read_to_string(&files[0]).unwrap();
        assert!(raw.contains("To: Ann@Example.com"), "{raw}");
        assert!(raw.contains("From: App <noreply@example.com>"), "{raw}");
        assert!(raw.contains("Subject: Verify your email"), "{raw}");
        assert!(raw.contains("token=abc"), "{raw}");
    }

    #[tokio::test]
    async fn a_bad_recipient_is_a_validation_error() {
        let mailer = ConsoleMailer { show_body: false };
        let from: Mailbox = "noreply@example.com".parse().unwrap();
        let err = Email::text("not an address", "s", "b").to_message(&from).unwrap_err();
        assert_eq!(err.code(), "validation.failed");
        mailer.send(&Email::text("a@b.co", "s", "b")).await.unwrap();
    }

    #[test]
    fn a_stable_message_id_is_the_same_on_every_send() {
        let from: Mailbox = "App <noreply@example.com>".parse().unwrap();
        let message_id = |email: &Email| {
            let raw = String::from_utf8(email.to_message(&from).unwrap().formatted()).unwrap();
            raw.lines().find(|line| line.starts_with("Message-ID: ")).map(str::to_owned).expect("a Message-ID")
        };
        let email = Email::text("ann@example.com", "s", "b").with_message_id("0190-mail");
        for _ in 0..2 {
            assert_eq!(message_id(&email), "Message-ID: <0190-mail@example.com>");
        }
        let plain = Email::text("ann@example.com", "s", "b");
        assert_ne!(message_id(&plain), message_id(&plain), "without an id each send has its own");
    }

    #[test]
    fn smtp_needs_a_url() {
        let config = Config::from_vars([("DEBUG", "true"), ("EMAIL_BACKEND", "smtp")]).unwrap();
        assert!(mailer_from_config(&config).is_err());
    }
}
