//! TLS served directly (`LCA_TLS_CERT`/`LCA_TLS_KEY`), end to end with the real binary: a
//! self-signed certificate for 127.0.0.1, discovery and tokens over https, HTTP/1.1 and
//! HTTP/2 by ALPN, TLS 1.2 and 1.3 and nothing older, plain http refused, the start refused
//! with a clear message for a missing or bad file, and SIGTERM stopping it cleanly.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use laventecare_auth::clients::{self, ClientRequest};
use laventecare_auth::vocabulary::Role;
use nix::sys::signal::Signal;
use openidconnect::IssuerUrl;
use openidconnect::core::CoreProviderMetadata;

use crate::support::{TestDb, binary, free_port, run_with_stdin};

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    cert_pem: String,
    key_pem: String,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let (cert_pem, key_pem) = (made.cert.pem(), made.signing_key.serialize_pem());
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, &cert_pem).unwrap();
        std::fs::write(&key, &key_pem).unwrap();
        Self { dir, cert, key, cert_pem, key_pem }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// An https client that trusts only this certificate.
    fn client(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.cert_pem.as_bytes()).unwrap())
            .redirect(reqwest::redirect::Policy::none())
    }

    fn roots(&self) -> rustls::RootCertStore {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap()).unwrap();
        roots
    }
}

/// A `serve` child answering https; killed when dropped.
struct TlsServer {
    child: Option<Child>,
    port: u16,
    base: String,
}

impl TlsServer {
    /// Starts `serve` with TLS on a free port, issuer `https://127.0.0.1:<port>`, and these
    /// settings; waits for `/healthz` over https.
    async fn start(t: &TestDb, pki: &Pki, vars: &[(&str, &str)]) -> Self {
        let port = free_port();
        let base = format!("https://127.0.0.1:{port}");
        let mut cmd = binary();
        t.database_env(&mut cmd)
            .arg("serve")
            .env("LCA_LISTEN", format!("127.0.0.1:{port}"))
            .env("LCA_ISSUER", &base)
            .env("LCA_TLS_CERT", &pki.cert)
            .env("LCA_TLS_KEY", &pki.key)
            .envs(vars.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut server = Self { child: Some(cmd.spawn().unwrap()), port, base };
        let client = pki.client().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", server.base)).send().await
                && r.status().is_success()
            {
                return server;
            }
            if let Ok(Some(status)) = server.child.as_mut().unwrap().try_wait() {
                let out = server.child.take().unwrap().wait_with_output().unwrap();
                panic!("server exited with {status}: {}", String::from_utf8_lossy(&out.stderr));
            }
            assert!(Instant::now() < deadline, "server did not answer /healthz over https");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends `signal`; the process must exit within `within` (the runtime keeps running, so
    /// this test's clients answer the server). Returns its output and how long it took.
    async fn stop(mut self, signal: Signal, within: Duration) -> (Output, Duration) {
        let mut child = self.child.take().unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > within {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!("no exit within {within:?} of {signal}: {}", String::from_utf8_lossy(&out.stderr));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let took = start.elapsed();
        (child.wait_with_output().unwrap(), took)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Discovery, the JWKS and a client_credentials token, all over https with https URLs; h2 and
/// http/1.1 both served; plain http to the port answered with nothing usable; SIGTERM with an
/// idle connection open still ends the process cleanly and soon.
#[tokio::test]
async fn serves_discovery_and_tokens_over_https() {
    let t = TestDb::new().await;
    t.tenant("acme").await;
    let job = clients::create_client(
        &t.db,
        ClientRequest {
            tenant: "acme".into(),
            name: "Nightly job".into(),
            grants: vec!["client_credentials".into()],
            role: Some(Role::Viewer),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let pki = Pki::new();
    let server = TlsServer::start(&t, &pki, &[]).await;
    let http = pki.client().build().unwrap();

    let res = http.get(format!("{}/.well-known/openid-configuration", server.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), reqwest::Version::HTTP_2, "h2 is chosen by ALPN when the client offers it");
    assert!(res.headers().contains_key("strict-transport-security"), "HSTS under an https issuer");
    let meta: serde_json::Value = res.json().await.unwrap();
    assert_eq!(meta["issuer"], server.base);
    for key in ["authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint"] {
        let url = meta[key].as_str().unwrap_or_else(|| panic!("{key} missing"));
        assert!(url.starts_with(&format!("{}/", server.base)), "{key} = {url}");
    }
    let jwks: serde_json::Value =
        http.get(meta["jwks_uri"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    assert!(!jwks["keys"].as_array().unwrap().is_empty());

    // HTTP/1.1 for a client that offers only that.
    let h1 = pki.client().http1_only().build().unwrap();
    let res = h1.get(format!("{}/healthz", server.base)).send().await.unwrap();
    assert_eq!((res.status().as_u16(), res.version()), (200, reqwest::Version::HTTP_11));

    let res = http
        .post(meta["token_endpoint"].as_str().unwrap())
        .basic_auth(&job.client_id, Some(job.client_secret.as_ref().unwrap().expose()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let token: serde_json::Value = res.json().await.unwrap();
    assert_eq!(token["token_type"], "Bearer");
    assert!(token["access_token"].as_str().unwrap().len() > 20);
    // A wrong secret over the same channel is still refused.
    let res = http
        .post(meta["token_endpoint"].as_str().unwrap())
        .basic_auth(&job.client_id, Some("not-the-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // A standard relying party discovers (metadata and JWKS) over https.
    let rp = openidconnect::reqwest::ClientBuilder::new()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.cert_pem.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let discovered =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &rp).await.unwrap();
    assert_eq!(discovered.issuer().as_str(), server.base);
    assert!(!discovered.jwks().keys().is_empty());

    // Plain http to the TLS port gets no HTTP answer; the server goes on serving https.
    let plain = reqwest::Client::new().get(format!("http://127.0.0.1:{}/healthz", server.port)).send().await;
    assert!(plain.is_err(), "plain http answered: {plain:?}");
    assert_eq!(http.get(format!("{}/healthz", server.base)).send().await.unwrap().status(), 200);

    // An unknown certificate is not trusted by a client that does not know it.
    let stranger = reqwest::Client::new().get(format!("{}/healthz", server.base)).send().await;
    assert!(stranger.is_err(), "a client without the root accepted the certificate");

    // `http` and `h1` still hold idle h2 and HTTP/1.1 connections: graceful shutdown closes
    // them at once (well before its 35 s bound) and the process exits cleanly.
    let (out, took) = server.stop(Signal::SIGTERM, Duration::from_secs(15)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "clean exit on SIGTERM: {}\n{stderr}", out.status);
    assert!(took < Duration::from_secs(5), "idle connections held the stop for {took:?}");
    assert!(stderr.contains("listening on https://127.0.0.1:"), "{stderr}");
    assert!(stderr.contains("server stopped"), "{stderr}");
    drop((http, h1));
}

/// A finished rustls client handshake with these versions and ALPN offers.
fn connect(
    port: u16,
    pki: &Pki,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> std::io::Result<(rustls::ClientConnection, std::net::TcpStream)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(pki.roots())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port))?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    Ok((conn, sock))
}

/// The negotiated version and application protocol.
fn negotiated(conn: &rustls::ClientConnection) -> (rustls::ProtocolVersion, Option<Vec<u8>>) {
    (conn.protocol_version().unwrap(), conn.alpn_protocol().map(<[u8]>::to_vec))
}

/// A ClientHello record of `version` with no supported_versions extension (so the version
/// field is the offer, RFC 8446 §4.2.1), one TLS 1.2 suite and what that suite needs.
fn client_hello(version: [u8; 2]) -> Vec<u8> {
    let ext = |kind: u16, body: &[u8]| [&kind.to_be_bytes()[..], &(body.len() as u16).to_be_bytes(), body].concat();
    let extensions = [
        ext(0x000d, &[0x00, 0x04, 0x04, 0x03, 0x08, 0x04]), // signature_algorithms: ecdsa p256, rsa-pss
        ext(0x000a, &[0x00, 0x04, 0x00, 0x1d, 0x00, 0x17]), // supported_groups: x25519, p256
        ext(0x000b, &[0x01, 0x00]),                         // ec_point_formats: uncompressed
    ]
    .concat();
    let mut body = version.to_vec();
    body.extend([7u8; 32]); // random
    body.push(0); // no session id
    body.extend([0x00, 0x02, 0xc0, 0x2b]); // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    body.extend([0x01, 0x00]); // null compression
    body.extend((extensions.len() as u16).to_be_bytes());
    body.extend(extensions);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend((body.len() as u16).to_be_bytes());
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

/// The first record the server answers `record` with.
fn first_answer(port: u16, record: &[u8]) -> Vec<u8> {
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    sock.write_all(record).unwrap();
    let mut answer = vec![0u8; 4096];
    let n = sock.read(&mut answer).unwrap();
    answer.truncate(n);
    answer
}

/// TLS 1.3 and 1.2 both complete, each with h2 or http/1.1 by ALPN; the same ClientHello that
/// gets a ServerHello as TLS 1.2 gets a fatal protocol_version alert as TLS 1.0 or 1.1. An
/// HTTP/2 client that never answers the shutdown's GOAWAY holds the stop only until its bound.
#[tokio::test]
async fn tls_versions_alpn_and_a_silent_h2_client() {
    let t = TestDb::new().await;
    let pki = Pki::new();
    let server = TlsServer::start(&t, &pki, &[("LCA_REQUEST_TIMEOUT_SECS", "2")]).await;
    let port = server.port;
    let p = &pki;
    let (v13, v12) = (&rustls::version::TLS13, &rustls::version::TLS12);
    let got = |versions: &[_], alpn: &[&[u8]]| negotiated(&connect(port, p, versions, alpn).unwrap().0);
    use rustls::ProtocolVersion::{TLSv1_2, TLSv1_3};
    assert_eq!(got(&[v13], &[b"h2", b"http/1.1"]), (TLSv1_3, Some(b"h2".to_vec())));
    assert_eq!(got(&[v13], &[b"http/1.1"]), (TLSv1_3, Some(b"http/1.1".to_vec())));
    assert_eq!(got(&[v12], &[b"h2", b"http/1.1"]), (TLSv1_2, Some(b"h2".to_vec())));
    assert_eq!(got(&[v12], &[b"http/1.1"]), (TLSv1_2, Some(b"http/1.1".to_vec())));
    // No ALPN offered: no protocol chosen (HTTP/1.1 is then the default).
    assert_eq!(got(&[v13, v12], &[]), (TLSv1_3, None));
    // Only a protocol we do not speak: no_application_protocol (RFC 7301 §3.2).
    assert!(connect(port, p, &[v13], &[b"spdy/3"]).is_err());

    let answer = first_answer(port, &client_hello([0x03, 0x03]));
    assert_eq!(answer[..3], [0x16, 0x03, 0x03], "a handshake record: {answer:02x?}");
    assert_eq!(answer[5], 0x02, "a ServerHello to TLS 1.2: {answer:02x?}");
    for old in [[0x03, 0x01], [0x03, 0x02]] {
        let answer = first_answer(port, &client_hello(old));
        // alert record, fatal, protocol_version (RFC 5246 §7.2.2)
        assert_eq!(answer, [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 70], "{old:02x?}");
    }

    // An HTTP/2 connection (preface and SETTINGS sent) whose client then reads nothing.
    let (mut conn, mut sock) = connect(port, p, &[v13], &[b"h2"]).unwrap();
    conn.writer().write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").unwrap();
    while conn.wants_write() {
        conn.write_tls(&mut sock).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (out, took) = server.stop(Signal::SIGTERM, Duration::from_secs(20)).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The bound: the 2 s request timeout plus the 5 s margin.
    assert!(took >= Duration::from_secs(6), "the silent client was cut before its bound: {took:?}");
    drop((conn, sock));
}

/// Runs `serve` on `t` with these settings; it must fail. Returns its stderr.
fn refused(t: Option<&TestDb>, vars: &[(&str, &Path)], issuer: &str) -> (Option<i32>, String) {
    let mut cmd = binary();
    if let Some(t) = t {
        t.database_env(&mut cmd);
    }
    cmd.arg("serve").env("LCA_LISTEN", format!("127.0.0.1:{}", free_port())).env("LCA_ISSUER", issuer);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = run_with_stdin(cmd, "");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "serve started with {vars:?}: {stderr}");
    (out.status.code(), stderr)
}

/// One of the two alone, or TLS under an http issuer: the start is refused before any
/// database work, naming the missing variable; the TOML file's keys say the same.
#[test]
fn one_file_alone_or_an_http_issuer_is_refused() {
    let pki = Pki::new();
    let https = "https://127.0.0.1:8443";
    let (code, e) = refused(None, &[("LCA_TLS_CERT", &pki.cert)], https);
    assert_eq!(code, Some(2));
    assert!(e.contains("LCA_TLS_CERT is set without LCA_TLS_KEY"), "{e}");
    let (code, e) = refused(None, &[("LCA_TLS_KEY", &pki.key)], https);
    assert_eq!(code, Some(2));
    assert!(e.contains("LCA_TLS_KEY is set without LCA_TLS_CERT"), "{e}");
    let both = [("LCA_TLS_CERT", pki.cert.as_path()), ("LCA_TLS_KEY", pki.key.as_path())];
    let (code, e) = refused(None, &both, "http://127.0.0.1:8443");
    assert_eq!(code, Some(2));
    assert!(e.contains("LCA_ISSUER must be an https URL"), "{e}");

    // The same settings from the TOML file (keys as the flags, with `_`).
    let toml = pki.file("lca.toml", &format!("tls_key = {:?}\n", pki.key.to_str().unwrap()));
    let (code, e) = refused(None, &[("LCA_CONFIG", &toml)], https);
    assert_eq!(code, Some(2));
    assert!(e.contains("LCA_TLS_KEY is set without LCA_TLS_CERT"), "{e}");
}

/// On the embedded default, a bad certificate stops the start before anything is made: no
/// master key is generated and no cluster is created in the data directory.
#[test]
fn a_bad_certificate_stops_the_embedded_default_before_its_cluster() {
    let pki = Pki::new();
    let garbage = pki.file("garbage.pem", "-----BEGIN CERTIFICATE-----\nTk9UQUNFUlRJRklDQVRF\n-----END CERTIFICATE-----\n");
    let data = tempfile::tempdir().unwrap();
    let mut cmd = binary();
    cmd.env_remove("LCA_MASTER_KEY")
        .arg("serve")
        .env("LCA_DATA_DIR", data.path())
        .env("LCA_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("LCA_ISSUER", "https://127.0.0.1:8443")
        .env("LCA_TLS_CERT", &garbage)
        .env("LCA_TLS_KEY", &pki.key);
    let started = std::time::Instant::now();
    let out = run_with_stdin(cmd, "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("garbage.pem"), "{stderr}");
    let made: Vec<_> = std::fs::read_dir(data.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(made.is_empty(), "the data directory got {made:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

/// Unreadable, garbage, empty or mismatched files: the start fails with a message naming the
/// file, without panicking and without a byte of what the files hold.
#[tokio::test]
async fn bad_files_are_named_never_printed() {
    let t = TestDb::new().await;
    let pki = Pki::new();
    let other = Pki::new();
    let secret_body = "U0VDUkVULUtFWS1NQVRFUklBTC0wMTIzNDU2Nzg5!!notbase64";
    let garbage_key = pki
        .file("garbage-key.pem", &format!("-----BEGIN PRIVATE KEY-----\n{secret_body}\n-----END PRIVATE KEY-----\n"));
    let garbage_cert = pki
        .file("garbage-cert.pem", &format!("-----BEGIN CERTIFICATE-----\n{secret_body}\n-----END CERTIFICATE-----\n"));
    // Valid base64, but not a certificate.
    let not_a_cert =
        pki.file("not-a-cert.pem", "-----BEGIN CERTIFICATE-----\nTk9UQUNFUlRJRklDQVRF\n-----END CERTIFICATE-----\n");
    let empty = pki.file("empty.pem", "");
    let missing = pki.dir.path().join("missing.pem");
    let cases: [(&Path, &Path, &[&str]); 7] = [
        (&pki.cert, &garbage_key, &["LCA_TLS_KEY", "garbage-key.pem"]),
        (&garbage_cert, &pki.key, &["LCA_TLS_CERT", "garbage-cert.pem"]),
        (&not_a_cert, &pki.key, &["LCA_TLS_CERT", "not-a-cert.pem"]),
        (&empty, &pki.key, &["LCA_TLS_CERT", "empty.pem", "no certificate"]),
        (&pki.cert, &empty, &["LCA_TLS_KEY", "empty.pem"]),
        (&missing, &pki.key, &["cannot read LCA_TLS_CERT", "missing.pem"]),
        // A real key of another certificate.
        (&pki.cert, &other.key, &["do not make a usable pair", "cert.pem", "key.pem"]),
    ];
    for (cert, key, expected) in cases {
        let (code, e) = refused(Some(&t), &[("LCA_TLS_CERT", cert), ("LCA_TLS_KEY", key)], "https://127.0.0.1:8443");
        assert_eq!(code, Some(1), "{e}");
        for word in expected {
            assert!(e.contains(word), "{word:?} not in {e}");
        }
        assert!(!e.contains("panicked"), "{e}");
        assert_eq!(e.lines().filter(|l| !l.starts_with('{')).count(), 1, "one line: {e}");
        for leak in [secret_body, "BEGIN", "U0VDUkVU", "Tk9UQUNF"] {
            assert!(!e.contains(leak), "{leak:?} leaked: {e}");
        }
        for pem in [&pki.key_pem, &other.key_pem, &pki.cert_pem] {
            let body_line = pem.lines().nth(1).unwrap();
            assert!(!e.contains(body_line), "PEM material leaked: {e}");
        }
    }
}
