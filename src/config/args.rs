//! The settings as the command line and the environment give them (`LCA_*`, `DATABASE_*`,
//! and a TOML file): one flag per setting, with its variable, default and range in its help.
//! `Config::from_args` (in `config.rs`) checks them and makes the typed [`super::Config`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Settings as given on the command line or in the environment.
#[derive(Args, Clone, Debug)]
pub struct ConfigArgs {
    /// A TOML file of settings (keys as the flags, with `_`); flags and environment win.
    #[arg(long, env = "LCA_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address the server binds.
    #[arg(long, env = "LCA_LISTEN", default_value = "127.0.0.1:8080", global = true)]
    pub listen: SocketAddr,
    /// Issuer URL (https in production; http only for a loopback host).
    #[arg(long, env = "LCA_ISSUER", default_value = "http://127.0.0.1:8080", global = true)]
    pub issuer: String,
    /// Data directory: the embedded PostgreSQL cluster and the generated master key.
    #[arg(long, env = "LCA_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// Directory of the PostgreSQL server binaries for the embedded cluster [default: from
    /// `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin].
    #[arg(long, env = "LCA_PG_BINDIR", global = true)]
    pub pg_bindir: Option<PathBuf>,
    /// An external PostgreSQL (owner rights); when set, no embedded cluster is started.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// Login of the runtime role `lca_runtime` on the database of DATABASE_URL, for request
    /// connections; needed with DATABASE_URL for every command but `migrate`.
    #[arg(long, env = "DATABASE_RUNTIME_URL", hide_env_values = true, global = true)]
    pub database_runtime_url: Option<String>,
    /// Key (32 bytes, base64) that encrypts signing keys and TOTP secrets; generated into the
    /// data directory when unset.
    #[arg(long, env = "LCA_MASTER_KEY", hide_env_values = true, global = true)]
    pub master_key: Option<String>,
    /// Sentry DSN for error reporting.
    #[arg(long, env = "SENTRY_DSN", hide_env_values = true, global = true)]
    pub sentry_dsn: Option<String>,
    /// Log filter (tracing's EnvFilter syntax) [default: info for serve, warn for the others].
    #[arg(long, env = "LCA_LOG", global = true)]
    pub log: Option<String>,
    /// Email of the platform admin created on an empty database.
    #[arg(long, env = "LCA_ADMIN_EMAIL", default_value = "admin@localhost", global = true)]
    pub admin_email: String,
    /// Password of that admin; a random one is generated and printed once when unset.
    #[arg(long, env = "LCA_ADMIN_PASSWORD", hide_env_values = true, global = true)]
    pub admin_password: Option<String>,
    /// Upper bound of the request connection pool.
    #[arg(long, env = "LCA_DB_MAX_CONNECTIONS", default_value_t = 20, global = true)]
    pub db_max_connections: u32,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "LCA_ACCESS_TOKEN_TTL_SECS", default_value_t = 600, global = true)]
    pub access_token_ttl_secs: u64,
    /// Lifetime of ID tokens, in seconds.
    #[arg(long, env = "LCA_ID_TOKEN_TTL_SECS", default_value_t = 600, global = true)]
    pub id_token_ttl_secs: u64,
    /// Lifetime of authorization codes, in seconds.
    #[arg(long, env = "LCA_CODE_TTL_SECS", default_value_t = 60, global = true)]
    pub code_ttl_secs: u64,
    /// Lifetime of a device authorization request (RFC 8628 device and user codes), in seconds.
    #[arg(long, env = "LCA_DEVICE_CODE_TTL_SECS", default_value_t = 600, global = true)]
    pub device_code_ttl_secs: u64,
    /// A refresh token unused for this many seconds expires (default 30 days).
    #[arg(long, env = "LCA_REFRESH_TOKEN_TTL_SECS", default_value_t = 30 * 86400, global = true)]
    pub refresh_token_ttl_secs: u64,
    /// A token family ends this many seconds after the login that began it (default 90 days).
    #[arg(long, env = "LCA_REFRESH_FAMILY_TTL_SECS", default_value_t = 90 * 86400, global = true)]
    pub refresh_family_ttl_secs: u64,
    /// A browser session idle for this many seconds ends (default 12 hours).
    #[arg(long, env = "LCA_SESSION_TTL_SECS", default_value_t = 12 * 3600, global = true)]
    pub session_ttl_secs: u64,
    /// A browser session ends this many seconds after its sign-in, however active (default 12
    /// hours).
    #[arg(long, env = "LCA_SESSION_MAX_SECS", default_value_t = 12 * 3600, global = true)]
    pub session_max_secs: u64,
    /// Failed sign-ins per account before each attempt must wait (1 s, then doubling).
    #[arg(long, env = "LCA_LOGIN_FREE_FAILURES", default_value_t = 3, global = true)]
    pub login_free_failures: u32,
    /// Failed sign-ins (password or second factor) that lock an account.
    #[arg(long, env = "LCA_LOGIN_LOCK_AFTER", default_value_t = 10, global = true)]
    pub login_lock_after: u32,
    /// Seconds an account (or client IP) stays locked.
    #[arg(long, env = "LCA_LOGIN_LOCK_SECS", default_value_t = 900, global = true)]
    pub login_lock_secs: u64,
    /// The longest wait between attempts, in seconds.
    #[arg(long, env = "LCA_LOGIN_MAX_DELAY_SECS", default_value_t = 30, global = true)]
    pub login_max_delay_secs: u64,
    /// Failed sign-ins from one client IP (any accounts) that lock that IP.
    #[arg(long, env = "LCA_LOGIN_IP_LOCK_AFTER", default_value_t = 100, global = true)]
    pub login_ip_lock_after: u32,
    /// Lifetime of an account recovery link, in seconds.
    #[arg(long, env = "LCA_RECOVERY_LINK_TTL_SECS", default_value_t = 3600, global = true)]
    pub recovery_link_ttl_secs: u64,
    /// Lifetime of a self-service password reset link (seconds, 300 to 86400).
    #[arg(long, env = "LCA_PASSWORD_RESET_TTL_SECS", default_value_t = 1800, global = true)]
    pub password_reset_ttl_secs: u64,
    /// Lifetime of an email verification link (seconds, 300 to 604800).
    #[arg(long, env = "LCA_EMAIL_VERIFICATION_TTL_SECS", default_value_t = 86400, global = true)]
    pub email_verification_ttl_secs: u64,
    /// Lifetime of an invitation to a tenant (seconds, 3600 to 2592000).
    #[arg(long, env = "LCA_INVITATION_TTL_SECS", default_value_t = 7 * 86400, global = true)]
    pub invitation_ttl_secs: u64,
    /// Seconds between the janitor's runs in `serve` (0: the server runs no janitor).
    #[arg(long, env = "LCA_JANITOR_INTERVAL", default_value_t = 300, global = true)]
    pub janitor_interval: u64,
    /// Let back-channel logout tokens go to private, loopback and link-local addresses (a
    /// relying party on the same host or network). Off by default: a registered URI could
    /// otherwise make this server POST to internal services.
    #[arg(long, env = "LCA_BACKCHANNEL_ALLOW_PRIVATE", default_value_t = false, global = true,
        action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub backchannel_allow_private: bool,
    /// For development only: fetch client ID metadata documents from private, loopback and
    /// link-local addresses, and accept `http://127.0.0.1:PORT/…` and `http://localhost:PORT/…`
    /// client ids (a document served on this machine). Off by default: a client_id would
    /// otherwise make this server GET internal services.
    #[arg(long, env = "LCA_CLIENT_METADATA_ALLOW_PRIVATE", default_value_t = false, global = true,
        action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub client_metadata_allow_private: bool,
    /// Rows the janitor deletes per batch (each batch is its own transaction).
    #[arg(long, env = "LCA_JANITOR_BATCH_SIZE", default_value_t = 1000, global = true)]
    pub janitor_batch_size: u32,
    /// Seconds a request may take before it is cut off.
    #[arg(long, env = "LCA_REQUEST_TIMEOUT_SECS", default_value_t = 30, global = true)]
    pub request_timeout_secs: u64,

    // --- Proxies and rate limits (issue #9, items 4 and 6) ---
    /// Reverse proxies (CIDRs or addresses, comma-separated) whose forwarding header names the
    /// client; from any other peer the header is ignored [default: none, the TCP peer is the
    /// client].
    #[arg(long, env = "LCA_TRUSTED_PROXIES", default_value = "", global = true)]
    pub trusted_proxies: String,
    /// The header the trusted proxies append the client to: `x-forwarded-for` or `forwarded`
    /// (RFC 7239). Only that one is read: a proxy passes the other through as the client sent it.
    #[arg(long, env = "LCA_PROXY_HEADER", default_value = "x-forwarded-for", global = true)]
    pub proxy_header: String,
    /// Device authorization requests (RFC 8628 §3.1) per client per minute.
    #[arg(long, env = "LCA_DEVICE_AUTHORIZATIONS_PER_CLIENT", default_value_t = 60, global = true)]
    pub device_authorizations_per_client: u32,
    /// Device authorization requests from one client IP (an IPv6 /64) per minute.
    #[arg(long, env = "LCA_DEVICE_AUTHORIZATIONS_PER_IP", default_value_t = 20, global = true)]
    pub device_authorizations_per_ip: u32,

    /// How often a running server re-reads the signing keys, so a rotation made by another
    /// instance or the CLI is published and used here (at most 240: retired keys stay
    /// published for the tokens' lifetime plus 5 minutes).
    #[arg(long, env = "LCA_KEY_RELOAD_SECS", default_value_t = 60, global = true)]
    pub key_reload_secs: u64,

    // --- Mail ---
    /// SMTP server for the mail the provider sends: `smtp://host[:port]` (plain, for a relay
    /// on the same machine or network), `smtp://host:587?tls=required` (STARTTLS) or
    /// `smtps://host[:465]`, with `user:password@` for AUTH [default: none, mail is written to
    /// the log instead].
    #[arg(long, env = "LCA_SMTP_URL", hide_env_values = true, global = true)]
    pub smtp_url: Option<String>,
    /// The sender of that mail, `Name <address>`.
    #[arg(long, env = "LCA_MAIL_FROM", default_value = "LaventeCare <no-reply@localhost>", global = true)]
    pub mail_from: String,

    // --- Metrics ---
    /// Address of a separate listener that serves `/metrics` (Prometheus text format) and
    /// nothing else [default: none, no metrics]. Keep it off the public network: it is not
    /// authenticated.
    #[arg(long, env = "LCA_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<String>,

    // --- TLS served directly (issue #11) ---
    /// PEM file of the certificate chain (leaf first) to serve https with; needs LCA_TLS_KEY
    /// and an https LCA_ISSUER [default: none, plain http].
    #[arg(long, env = "LCA_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// PEM file of the certificate's private key (PKCS#8, PKCS#1 or SEC1); needs LCA_TLS_CERT.
    #[arg(long, env = "LCA_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
}
