//! Outgoing mail (ARCHITECTURE.md, "Mail"): SMTP through lettre with rustls when
//! `LCA_SMTP_URL` is set; otherwise every message is written to the log at info level, links
//! and all, for a local run without a mail server (the README says so).
//!
//! Messages go out in the background ([`Mailer::send_later`]): a request never waits for the
//! mail server, and its answer does not depend on whether a message was sent, so a page that
//! must answer the same for a known and an unknown address (a password reset) takes the same
//! time for both. A message that cannot be delivered is logged as an error (without its body,
//! which may hold a link).

use std::sync::Arc;

use anyhow::{Context as _, bail};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Mailbox, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use crate::config::Config;

/// One message: plain text, to one address.
#[derive(Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    /// Holds one-time links: never in `Debug`.
    pub body: String,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail").field("to", &self.to).field("subject", &self.subject).finish_non_exhaustive()
    }
}

/// Sends mail. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    from: Mailbox,
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let via = if self.inner.transport.is_some() { "smtp" } else { "log" };
        f.debug_struct("Mailer").field("from", &self.inner.from.to_string()).field("via", &via).finish()
    }
}

impl Mailer {
    /// The mailer of the configuration: SMTP at `LCA_SMTP_URL` from `LCA_MAIL_FROM`, or the log.
    /// A URL that would send a password in the clear to another machine is refused.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .with_context(|| format!("LCA_MAIL_FROM {:?} is not a mailbox (\"Name <address>\")", config.mail_from))?;
        let transport = match config.smtp_url.as_deref() {
            None => None,
            Some(url) => Some(smtp_transport(url)?),
        };
        Ok(Self { inner: Arc::new(Inner { from, transport }) })
    }

    /// Sends `mail` in the background; failures are logged.
    pub fn send_later(&self, mail: Mail) {
        let mailer = self.clone();
        tokio::spawn(async move {
            let (to, subject) = (mail.to.clone(), mail.subject.clone());
            if let Err(e) = mailer.send(mail).await {
                tracing::error!(to, subject, error = format!("{e:#}"), "a mail could not be sent");
            }
        });
    }

    /// Sends `mail` now.
    pub async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        let Some(transport) = &self.inner.transport else {
            // For a local run: the README tells people to look here for their links.
            tracing::info!(
                to = mail.to,
                subject = mail.subject,
                body = mail.body,
                "mail (no LCA_SMTP_URL: logged, not sent)"
            );
            return Ok(());
        };
        let to: Mailbox = mail.to.parse().with_context(|| "not a mail address")?;
        // Base64: a long link survives intact (quoted-printable would fold it), and so does
        // any text.
        let body = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .header(ContentTransferEncoding::Base64)
            .body(mail.body);
        let message = Message::builder()
            .from(self.inner.from.clone())
            .to(to)
            .subject(mail.subject)
            .singlepart(body)
            .context("building the message")?;
        transport.send(message).await.context("SMTP")?;
        Ok(())
    }
}

/// The transport of `LCA_SMTP_URL` (`smtp://host:port`, `smtp://…?tls=required` for STARTTLS,
/// `smtps://` for TLS from the start; `user:password@` for AUTH).
fn smtp_transport(url: &str) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let parsed = url::Url::parse(url).map_err(|_| anyhow::anyhow!("LCA_SMTP_URL is not a URL"))?;
    let tls = parsed.scheme() == "smtps"
        || parsed.query_pairs().any(|(k, v)| k == "tls" && (v == "required" || v == "opportunistic"));
    // smtp: is not a scheme the URL standard knows, so its host may come back as text.
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    };
    if parsed.password().is_some() && !tls && !loopback {
        bail!(
            "LCA_SMTP_URL has a password but no TLS: use smtps:// or ?tls=required, so it does not travel in the clear"
        );
    }
    // The URL may carry a password: lettre's error is not repeated.
    let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|_| {
        anyhow::anyhow!("LCA_SMTP_URL must be smtp://host[:port][?tls=required] or smtps://host[:port]")
    })?;
    Ok(builder.timeout(Some(std::time::Duration::from_secs(20))).build())
}
