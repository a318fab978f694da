//! A real SMTP server on loopback for the mail tests: it speaks enough of RFC 5321 (greeting,
//! EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT) for any client, keeps
//! every message it accepts, and decodes a base64 or 7-bit text body. Written here because
//! the point is to receive what the provider's real SMTP client (lettre) sends over a socket;
//! no Debian package offers a sink a test can read back from.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// Headers and body as sent (after dot-unstuffing).
    pub data: String,
}

impl Received {
    /// The line of the body that is a link to `path` of `issuer` (`/reset`, `/invite`…).
    pub fn link_to(&self, issuer: &str, path: &str) -> String {
        let body = self.body();
        let start = format!("{issuer}{path}?token=");
        body.lines().find(|l| l.starts_with(&start)).unwrap_or_else(|| panic!("no {start}… in {body}")).to_owned()
    }

    /// A header's value (the first of that name).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        head.lines().find_map(|l| {
            l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned())
        })
    }

    /// The text body, decoded.
    pub fn body(&self) -> String {
        let raw = self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        match self.header("Content-Transfer-Encoding").as_deref() {
            Some(enc) if enc.eq_ignore_ascii_case("base64") => {
                let joined: String = raw.split_whitespace().collect();
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(joined).unwrap()).unwrap()
            }
            _ => raw.to_owned(),
        }
    }
}

/// The server; it stops with the test's runtime.
pub struct Sink {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Sink {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = session(stream, store).await;
                });
            }
        });
        Self { addr, received }
    }

    /// `LCA_SMTP_URL` of this server.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Every message so far.
    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The `n`th message to `to` (counting from 1), waiting for it up to 15 s.
    pub async fn nth_to(&self, to: &str, n: usize) -> Received {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found: Vec<Received> = self.all().into_iter().filter(|m| m.rcpt_to.iter().any(|r| r == to)).collect();
            if found.len() >= n {
                return found[n - 1].clone();
            }
            assert!(Instant::now() < deadline, "no message {n} to {to}; received: {:?}", self.all());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The address inside `MAIL FROM:<a>` or `RCPT TO:<a>`.
fn path(arg: &str) -> String {
    arg.split_once('<').and_then(|(_, rest)| rest.split_once('>')).map_or(String::new(), |(a, _)| a.to_owned())
}

async fn session(stream: tokio::net::TcpStream, store: Arc<Mutex<Vec<Received>>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" | "NOOP" => b"250 OK\r\n",
            "RSET" => {
                (from, to) = (String::new(), Vec::new());
                b"250 OK\r\n"
            }
            "MAIL" => {
                from = path(&command);
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(path(&command));
                b"250 OK\r\n"
            }
            "DATA" => {
                write.write_all(b"354 end with .\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                store.lock().unwrap().push(Received { mail_from: from.clone(), rcpt_to: to.clone(), data });
                (from, to) = (String::new(), Vec::new());
                b"250 OK queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// A provider that mails through a new [`Sink`].
pub async fn provider_with_mail() -> (crate::flow::Provider, Sink) {
    let sink = Sink::start().await;
    let url = sink.url();
    let p = crate::flow::Provider::start_with(&[("LCA_SMTP_URL", &url)]).await;
    (p, sink)
}
