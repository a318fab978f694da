//! Configuration: read once from the environment (or flags) into a typed, validated struct,
//! shared as `Arc<Config>`. Every setting has a safe default for a local run; `--help` lists
//! them with their variables. The flags and variables themselves are [`ConfigArgs`]
//! (`config/args.rs`); this file turns them into [`Config`] and checks them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use url::Url;

mod args;

pub use args::ConfigArgs;

/// Where the data lives.
#[derive(Clone, Debug)]
pub enum DatabaseConfig {
    /// The embedded cluster in the data directory.
    Embedded,
    /// An external server.
    External { url: String, runtime_url: Option<String> },
}

/// How long things live.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    pub access_token: Duration,
    pub id_token: Duration,
    pub code: Duration,
    pub device_code: Duration,
    pub refresh_token: Duration,
    pub refresh_family: Duration,
    /// Idle lifetime of a browser session.
    pub session: Duration,
    /// Absolute lifetime of a browser session, from its sign-in.
    pub session_max: Duration,
    pub recovery_link: Duration,
    pub password_reset: Duration,
    pub email_verification: Duration,
    pub invitation: Duration,
}

/// Brute-force limits of sign-in, per account and per client IP.
#[derive(Clone, Copy, Debug)]
pub struct ThrottleConfig {
    pub account: ThrottleLimits,
    pub ip: ThrottleLimits,
}

/// The limits of one kind of sign-in counter (`db::throttle`, `identity::throttle`).
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Failures allowed before delays start.
    pub free: i32,
    /// Failures that lock the key.
    pub lock_after: i32,
    pub lock_seconds: i64,
    /// The longest delay between attempts.
    pub max_delay_seconds: i64,
    /// Failures older than this are forgotten.
    pub window_seconds: i64,
}

/// Which forwarding header trusted proxies write (`LCA_PROXY_HEADER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (de facto standard).
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239 §4).
    Forwarded,
}

/// Who may tell us the client's address (`protocol::meta`).
#[derive(Clone, Debug, Default)]
pub struct ProxyConfig {
    /// Peers whose forwarding header is believed; empty: none.
    pub trusted: Vec<ipnet::IpNet>,
    pub header: Option<ProxyHeader>,
}

/// Fixed-window limits of unauthenticated requests that write rows (`db::rate_limit`).
#[derive(Clone, Copy, Debug)]
pub struct RateLimits {
    /// Device authorization requests per client per window.
    pub device_per_client: i32,
    /// Device authorization requests per client IP per window.
    pub device_per_ip: i32,
    pub window_seconds: i64,
}

/// The janitor's schedule (`crate::janitor`).
#[derive(Clone, Copy, Debug)]
pub struct JanitorSettings {
    /// Between runs in `serve`; `None`: no background janitor.
    pub interval: Option<Duration>,
    pub batch_size: u32,
}

/// The PEM files `serve` answers https with (`cli::serve`); read when the server starts.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// The issuer, without a trailing slash (OIDC Discovery §4.3 compares it exactly).
    pub issuer: String,
    /// Whether the issuer is https: cookies are then `Secure` with the `__Host-` prefix.
    pub secure_cookies: bool,
    pub data_dir: PathBuf,
    pub pg_bindir: Option<PathBuf>,
    pub database: DatabaseConfig,
    pub master_key: Option<String>,
    pub sentry_dsn: Option<String>,
    /// Log filter; `None` for the command's default.
    pub log: Option<String>,
    pub admin_email: String,
    pub admin_password: Option<String>,
    pub db_max_connections: u32,
    pub request_timeout: Duration,
    pub ttl: Lifetimes,
    pub throttle: ThrottleConfig,
    pub janitor: JanitorSettings,
    /// Back-channel logout may deliver to private, loopback and link-local addresses
    /// (`LCA_BACKCHANNEL_ALLOW_PRIVATE`).
    pub backchannel_allow_private: bool,
    /// Client ID metadata documents may be fetched from private, loopback and link-local
    /// addresses, and loopback http client ids are accepted (`LCA_CLIENT_METADATA_ALLOW_PRIVATE`,
    /// for development).
    pub client_metadata_allow_private: bool,
    /// Largest request body accepted.
    pub body_limit: usize,
    pub proxies: ProxyConfig,
    pub rate_limits: RateLimits,
    /// `None`: plain http (loopback, or TLS ended by a reverse proxy).
    pub tls: Option<TlsFiles>,
    /// Where `/metrics` is served; `None`: metrics are off.
    pub metrics_listen: Option<SocketAddr>,
    /// Between two readings of the signing keys (`tokens::spawn_reloader`).
    pub key_reload: Duration,
    /// `None`: mail is logged, not sent (`mail::Mailer`).
    pub smtp_url: Option<String>,
    pub mail_from: String,
}

impl Config {
    /// Validates the settings.
    pub fn from_args(args: ConfigArgs) -> anyhow::Result<Self> {
        let issuer = validate_issuer(&args.issuer)?;
        let tls = tls_files(args.tls_cert.clone(), args.tls_key.clone(), &issuer)?;
        let throttle = throttle_limits(&args);
        let proxies = proxy_config(&args.trusted_proxies, &args.proxy_header)?;
        let rate_limits = RateLimits {
            device_per_client: i32::try_from(args.device_authorizations_per_client.max(1)).unwrap_or(i32::MAX),
            device_per_ip: i32::try_from(args.device_authorizations_per_ip.max(1)).unwrap_or(i32::MAX),
            window_seconds: 60,
        };
        let database = match args.database_url.filter(|u| !u.is_empty()) {
            Some(url) => {
                DatabaseConfig::External { url, runtime_url: args.database_runtime_url.filter(|u| !u.is_empty()) }
            }
            None if args.database_runtime_url.is_some() => {
                bail!("DATABASE_RUNTIME_URL is set without DATABASE_URL")
            }
            None => DatabaseConfig::Embedded,
        };
        if args.janitor_batch_size == 0 {
            bail!("LCA_JANITOR_BATCH_SIZE must be at least 1");
        }
        let metrics_listen = match args.metrics_listen.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            None => None,
            Some(addr) => Some(addr.parse::<SocketAddr>().map_err(|_| {
                anyhow::anyhow!("LCA_METRICS_LISTEN must be an address and port such as 127.0.0.1:9100, not {addr:?}")
            })?),
        };
        if metrics_listen.is_some_and(|m| m == args.listen) {
            bail!("LCA_METRICS_LISTEN must differ from LCA_LISTEN: metrics are never served on the public listener");
        }
        if !(1..=240).contains(&args.key_reload_secs) {
            bail!("LCA_KEY_RELOAD_SECS must be between 1 and 240");
        }
        if args.db_max_connections == 0 {
            bail!("LCA_DB_MAX_CONNECTIONS must be at least 1");
        }
        Ok(Self {
            listen: args.listen,
            secure_cookies: issuer.starts_with("https://"),
            issuer,
            data_dir: args.data_dir,
            pg_bindir: args.pg_bindir.filter(|p| !p.as_os_str().is_empty()),
            database,
            master_key: args.master_key.filter(|k| !k.is_empty()),
            sentry_dsn: args.sentry_dsn.filter(|d| !d.is_empty()),
            log: args.log.filter(|l| !l.is_empty()),
            admin_email: args.admin_email,
            admin_password: args.admin_password.filter(|p| !p.is_empty()),
            db_max_connections: args.db_max_connections,
            request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
            ttl: Lifetimes {
                access_token: Duration::from_secs(args.access_token_ttl_secs.clamp(10, 86400)),
                id_token: Duration::from_secs(args.id_token_ttl_secs.clamp(10, 86400)),
                code: Duration::from_secs(args.code_ttl_secs.clamp(1, 600)),
                device_code: Duration::from_secs(args.device_code_ttl_secs.clamp(1, 1800)),
                refresh_token: Duration::from_secs(args.refresh_token_ttl_secs.max(60)),
                refresh_family: Duration::from_secs(args.refresh_family_ttl_secs.max(60)),
                session: Duration::from_secs(args.session_ttl_secs.max(60)),
                session_max: Duration::from_secs(args.session_max_secs.max(60)),
                recovery_link: Duration::from_secs(args.recovery_link_ttl_secs.clamp(60, 7 * 86400)),
                password_reset: Duration::from_secs(args.password_reset_ttl_secs.clamp(300, 86400)),
                email_verification: Duration::from_secs(args.email_verification_ttl_secs.clamp(300, 7 * 86400)),
                invitation: Duration::from_secs(args.invitation_ttl_secs.clamp(3600, 30 * 86400)),
            },
            throttle,
            janitor: JanitorSettings {
                interval: (args.janitor_interval > 0).then(|| Duration::from_secs(args.janitor_interval)),
                batch_size: args.janitor_batch_size,
            },
            backchannel_allow_private: args.backchannel_allow_private,
            client_metadata_allow_private: args.client_metadata_allow_private,
            body_limit: 64 * 1024,
            proxies,
            rate_limits,
            tls,
            metrics_listen,
            key_reload: Duration::from_secs(args.key_reload_secs),
            smtp_url: args.smtp_url.filter(|u| !u.trim().is_empty()),
            mail_from: args.mail_from,
        })
    }
}

fn throttle_limits(args: &ConfigArgs) -> ThrottleConfig {
    let clamp = |v: u32| i32::try_from(v.max(1)).unwrap_or(i32::MAX);
    let secs = |v: u64| i64::try_from(v.max(1)).unwrap_or(i64::MAX);
    let account = ThrottleLimits {
        free: clamp(args.login_free_failures),
        lock_after: clamp(args.login_lock_after),
        lock_seconds: secs(args.login_lock_secs),
        max_delay_seconds: secs(args.login_max_delay_secs),
        window_seconds: secs(args.login_lock_secs).max(900),
    };
    // An IP is shared by many people (NAT, offices): it only locks, much later, and never
    // makes anyone wait.
    let ip = ThrottleLimits {
        free: clamp(args.login_ip_lock_after),
        max_delay_seconds: 0,
        lock_after: clamp(args.login_ip_lock_after),
        ..account
    };
    ThrottleConfig { account, ip }
}

/// Parses `LCA_TRUSTED_PROXIES` (CIDRs, or single addresses meaning /32 or /128) and
/// `LCA_PROXY_HEADER`. A typo must stop the start, not silently trust nobody (or everybody).
fn proxy_config(list: &str, header: &str) -> anyhow::Result<ProxyConfig> {
    let mut trusted = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let net = match item.parse::<ipnet::IpNet>() {
            Ok(net) => net.trunc(),
            Err(_) => item
                .parse::<std::net::IpAddr>()
                .map(ipnet::IpNet::from)
                .map_err(|_| anyhow::anyhow!("LCA_TRUSTED_PROXIES: {item:?} is not a CIDR or an IP address"))?,
        };
        trusted.push(net);
    }
    let header = match header.trim().to_ascii_lowercase().as_str() {
        "x-forwarded-for" => ProxyHeader::XForwardedFor,
        "forwarded" => ProxyHeader::Forwarded,
        other => bail!("LCA_PROXY_HEADER must be x-forwarded-for or forwarded, not {other:?}"),
    };
    Ok(ProxyConfig { header: (!trusted.is_empty()).then_some(header), trusted })
}

/// Both TLS files or neither: one alone is a mistake, not a request for plain http. With
/// TLS on, the issuer must be https: discovery would otherwise name http endpoints this
/// listener does not answer (OIDC Discovery §3 builds every endpoint from the issuer).
fn tls_files(cert: Option<PathBuf>, key: Option<PathBuf>, issuer: &str) -> anyhow::Result<Option<TlsFiles>> {
    let given = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
    let files = match (given(cert), given(key)) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => TlsFiles { cert, key },
        (Some(_), None) => bail!("LCA_TLS_CERT is set without LCA_TLS_KEY: set both (or neither, for plain http)"),
        (None, Some(_)) => bail!("LCA_TLS_KEY is set without LCA_TLS_CERT: set both (or neither, for plain http)"),
    };
    if !issuer.starts_with("https://") {
        bail!("LCA_TLS_CERT and LCA_TLS_KEY serve https: LCA_ISSUER must be an https URL, not {issuer:?}");
    }
    Ok(Some(files))
}

/// An issuer is an https URL without query or fragment; http is allowed only for a loopback
/// host, for local runs (OIDC Discovery §3, OAuth 2.1 §1.5).
fn validate_issuer(raw: &str) -> anyhow::Result<String> {
    let url = Url::parse(raw).with_context(|| format!("LCA_ISSUER {raw:?} is not a URL"))?;
    if url.query().is_some() || url.fragment().is_some() {
        bail!("LCA_ISSUER must not have a query or fragment");
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => bail!("LCA_ISSUER must use https (http is only allowed for a loopback host)"),
        _ => bail!("LCA_ISSUER must be an https URL"),
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Reads the command line, then fills in settings from the TOML file named by `--config` /
/// `LCA_CONFIG` for every setting that neither a flag nor an environment variable gave.
/// Keys are the settings' long names with `_` (`listen`, `database_url`, `code_ttl_secs`…).
///
/// Flags and environment win over the file, the file over the defaults: the file is turned
/// into flags and the command line parsed again, with those already given left out.
pub fn parse_cli<T: clap::Parser>(argv: Vec<std::ffi::OsString>) -> anyhow::Result<T> {
    use clap::parser::ValueSource;
    let matches = T::command().try_get_matches_from(&argv).unwrap_or_else(|e| e.exit());
    let Some(path) = matches.get_one::<PathBuf>("config").cloned() else {
        return Ok(T::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()));
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let known: Vec<String> =
        T::command().get_arguments().filter(|a| a.is_global_set()).map(|a| a.get_id().as_str().to_owned()).collect();
    let mut extra = Vec::new();
    for (key, value) in table {
        if key == "config" || !known.contains(&key) {
            bail!("{}: unknown setting {key:?}", path.display());
        }
        if matches!(matches.value_source(&key), Some(ValueSource::CommandLine | ValueSource::EnvVariable)) {
            continue;
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => bail!("{}: {key} must be a string, integer or boolean, not {}", path.display(), other.type_str()),
        };
        extra.push(std::ffi::OsString::from(format!("--{}={value}", key.replace('_', "-"))));
    }
    let mut full = argv;
    // Right after the program name: global flags are accepted before the subcommand.
    full.splice(1..1, extra);
    T::try_parse_from(full).map_err(|e| e.exit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// https issuers pass, http only on loopback, and the trailing slash goes.
    #[test]
    fn issuers() {
        assert_eq!(validate_issuer("https://id.example.com/").unwrap(), "https://id.example.com");
        assert_eq!(validate_issuer("https://id.example.com/t/acme").unwrap(), "https://id.example.com/t/acme");
        assert_eq!(validate_issuer("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        assert!(validate_issuer("http://localhost:8080").is_ok());
        assert!(validate_issuer("http://id.example.com").is_err());
        assert!(validate_issuer("https://id.example.com/?x=1").is_err());
        assert!(validate_issuer("ftp://id.example.com").is_err());
        assert!(validate_issuer("not a url").is_err());
    }

    /// TLS: both files or neither, and then an https issuer; the error names what is missing.
    #[test]
    fn tls_settings() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert!(tls_files(None, None, "http://127.0.0.1:8080").unwrap().is_none());
        assert!(tls_files(p(""), p(""), "http://127.0.0.1:8080").unwrap().is_none());
        let files = tls_files(p("c.pem"), p("k.pem"), "https://localhost:8443").unwrap().unwrap();
        assert_eq!((files.cert, files.key), (PathBuf::from("c.pem"), PathBuf::from("k.pem")));
        let e = tls_files(p("c.pem"), None, "https://localhost").unwrap_err().to_string();
        assert!(e.starts_with("LCA_TLS_CERT is set without LCA_TLS_KEY"), "{e}");
        let e = tls_files(p(""), p("k.pem"), "https://localhost").unwrap_err().to_string();
        assert!(e.starts_with("LCA_TLS_KEY is set without LCA_TLS_CERT"), "{e}");
        let e = tls_files(p("c.pem"), p("k.pem"), "http://127.0.0.1:8443").unwrap_err().to_string();
        assert!(e.contains("LCA_ISSUER must be an https URL"), "{e}");
    }

    /// Proxy lists: CIDRs and bare addresses, spaces allowed; anything else stops the start.
    #[test]
    fn trusted_proxies() {
        let c = proxy_config(" 10.0.0.0/8, 192.168.1.7 ,2001:db8::/32,::1", "Forwarded").unwrap();
        let nets: Vec<String> = c.trusted.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["10.0.0.0/8", "192.168.1.7/32", "2001:db8::/32", "::1/128"]);
        assert_eq!(c.header, Some(ProxyHeader::Forwarded));
        assert_eq!(proxy_config("10.1.2.3/8", "x-forwarded-for").unwrap().trusted[0].to_string(), "10.0.0.0/8");
        let none = proxy_config("", "x-forwarded-for").unwrap();
        assert!(none.trusted.is_empty() && none.header.is_none());
        for bad in ["10.0.0.0/33", "proxy.example.com", "10.0.0.0/8;", "*"] {
            assert!(proxy_config(bad, "x-forwarded-for").is_err(), "{bad}");
        }
        assert!(proxy_config("10.0.0.0/8", "x-real-ip").is_err());
    }
}
