//! The `Dockerfile` (issue #14, item 5). CI machines have no Docker daemon (and no registry to
//! pull base images from), so this reads the file and checks what it promises against this
//! machine, which is the Debian release the file builds on:
//! - the build stage runs exactly the command the suite builds its release binary with
//!   (`release_server::RELEASE_BUILD`), on the same Debian, with a Rust at least the crate's
//!   `rust-version`; the binary it copies is the one that command makes;
//! - the runtime image has every shared library that binary links (`ldd`);
//! - it runs as a non-root user that it creates, and ENTRYPOINT + CMD with its ENV serve
//!   against `DATABASE_URL`: started that way, the binary answers on the exposed port's
//!   listener and writes its generated master key into the declared volume.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::fault::Proc;
use crate::release_server::{RELEASE_BUILD, release_binary};
use crate::support::{TestDb, free_port};

/// One instruction: its keyword (upper case) and its arguments as written.
#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
}

/// A build stage: `FROM image AS name`, then its instructions.
#[derive(Debug)]
struct Stage {
    image: String,
    name: String,
    body: Vec<Instruction>,
}

impl Stage {
    fn all(&self, keyword: &str) -> Vec<&str> {
        self.body.iter().filter(|i| i.keyword == keyword).map(|i| i.args.as_str()).collect()
    }

    fn one(&self, keyword: &str) -> &str {
        let found = self.all(keyword);
        assert_eq!(found.len(), 1, "stage {}: one {keyword}, found {found:?}", self.name);
        found[0]
    }

    /// `ENV K=V K2=V2` lines, merged.
    fn env(&self) -> BTreeMap<String, String> {
        self.all("ENV")
            .iter()
            .flat_map(|line| line.split_whitespace())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("ENV {pair}: use the K=V form"));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }
}

/// The Dockerfile's stages: continuation lines joined, comments and blank lines left out.
fn stages(text: &str) -> Vec<Stage> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part.trim());
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical.into_iter().filter(|l| !l.is_empty()) {
        let (keyword, args) = line.split_once(' ').unwrap_or((&line, ""));
        let keyword = keyword.to_uppercase();
        if keyword == "FROM" {
            let parts: Vec<&str> = args.split_whitespace().collect();
            assert!(parts.len() == 3 && parts[1].eq_ignore_ascii_case("as"), "FROM image AS name: {args}");
            stages.push(Stage { image: parts[0].into(), name: parts[2].into(), body: Vec::new() });
        } else {
            let stage = stages.last_mut().expect("FROM first");
            stage.body.push(Instruction { keyword, args: args.trim().to_owned() });
        }
    }
    stages
}

/// An exec-form argument list (`["a", "b"]`).
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|_| panic!("exec form (a JSON list) expected: {args}"))
}

/// The packages of the `apt-get install` in `run`.
fn apt_packages(run: &str) -> Vec<&str> {
    run.split("&&")
        .filter_map(|cmd| cmd.trim().strip_prefix("apt-get install"))
        .flat_map(|rest| rest.split_whitespace().filter(|w| !w.starts_with('-')))
        .collect()
}

/// This machine's Debian codename (`bookworm`).
fn debian_codename() -> String {
    let release = std::fs::read_to_string("/etc/os-release").unwrap();
    release.lines().find_map(|l| l.strip_prefix("VERSION_CODENAME=")).unwrap().trim_matches('"').to_owned()
}

/// The shared libraries `bin` needs, by soname.
fn linked_libraries(bin: &Path) -> Vec<String> {
    let out = Command::new("ldd").arg(bin).output().unwrap();
    assert!(out.status.success(), "ldd: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("not found"), "{text}");
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|name| name.rsplit('/').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_dockerfile_builds_the_tested_binary_and_serves_as_it_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let stages = stages(&std::fs::read_to_string(root.join("Dockerfile")).unwrap());
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage: {stages:?}");
    let (build, runtime) = (&stages[0], &stages[1]);
    let codename = debian_codename();

    // Build: the suite's own release build, on this Debian, with a new enough Rust.
    let (image, tag) = build.image.split_once(':').unwrap();
    assert_eq!(image, "rust");
    let (rust, debian) = tag.split_once('-').unwrap();
    assert_eq!(debian, codename, "the build image is the Debian the suite runs on");
    let manifest: toml::Value = toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
    let needed = manifest["package"]["rust-version"].as_str().unwrap();
    let version = |v: &str| v.split('.').map(|n| n.parse::<u32>().unwrap()).collect::<Vec<_>>();
    assert!(version(rust) >= version(needed), "rust {rust} < rust-version {needed}");
    let cargo_runs: Vec<&str> = build.all("RUN").into_iter().filter(|r| r.contains("cargo")).collect();
    assert_eq!(cargo_runs, [format!("cargo {}", RELEASE_BUILD.join(" ")).as_str()], "the suite's release build");
    let workdir = build.one("WORKDIR");
    assert_eq!(build.one("COPY"), ". .");

    // Runtime: the same Debian, slim; the binary that build made; every library it links.
    assert_eq!(runtime.image, format!("debian:{codename}-slim"));
    let copy: Vec<&str> = runtime.one("COPY").split_whitespace().collect();
    let installed = "/usr/local/bin/laventecare-auth";
    assert_eq!(
        copy,
        [&format!("--from={}", build.name), &format!("{workdir}/target/release/laventecare-auth"), installed]
    );
    let bin = release_binary().unwrap();
    let packages: Vec<&str> = runtime.all("RUN").into_iter().flat_map(apt_packages).collect();
    // In debian:<codename>-slim already: glibc (libc6) and libgcc-s1.
    let base = ["linux-vdso.so.1", "libc.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2"];
    for lib in linked_libraries(&bin) {
        match lib.as_str() {
            l if base.contains(&l) => {}
            "libssl.so.3" | "libcrypto.so.3" => assert!(packages.contains(&"libssl3"), "{lib}: install libssl3"),
            other => panic!("the binary links {other}, which the runtime image does not install"),
        }
    }
    assert!(packages.contains(&"ca-certificates"), "https to Sentry and SMTP needs the CA roots");

    // A non-root user the image creates.
    let user = runtime.one("USER");
    let uid = user.split(':').next().unwrap();
    assert!(uid.parse::<u32>().is_ok_and(|u| u >= 1000), "a numeric, non-root USER: {user}");
    assert!(runtime.all("RUN").iter().any(|r| r.contains(&format!("--uid {uid}"))), "the image creates uid {uid}");

    // Started as ENTRYPOINT + CMD with the image's ENV, on DATABASE_URL: it serves.
    let entrypoint = exec_form(runtime.one("ENTRYPOINT"));
    let cmd = exec_form(runtime.one("CMD"));
    assert_eq!(
        (entrypoint.as_slice(), cmd.as_slice()),
        ([installed.to_owned()].as_slice(), ["serve".to_owned()].as_slice())
    );
    let env = runtime.env();
    let listen = &env["LCA_LISTEN"];
    let port = listen.strip_prefix("0.0.0.0:").expect("listens on every interface of the container");
    assert_eq!(runtime.one("EXPOSE"), port);
    let volume = runtime.one("VOLUME");
    assert_eq!(env["LCA_DATA_DIR"], volume, "the generated master key goes to the volume");

    // The release binary with the image's ENV (no master key among it: it is generated into
    // the data directory), the data directory a temporary one for the volume.
    let t = TestDb::new().await;
    let logs = tempfile::tempdir().unwrap();
    let data = logs.path().join("volume");
    let image_env: Vec<(&str, &str)> =
        env.iter().filter(|(k, _)| k.as_str() != "LCA_DATA_DIR").map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut run = crate::release_server::command(bin.to_str().unwrap(), &data, &image_env);
    t.database_env(&mut run);
    // `Proc` adds CMD's `serve` and a loopback LCA_LISTEN on a free port (the container's
    // 0.0.0.0:8080 is published by the runtime, not bound here).
    let port = free_port();
    let server = Proc::start_on(run, &logs.path().join("server.log"), port).await;
    let discovery: serde_json::Value =
        reqwest::get(format!("{}/.well-known/openid-configuration", server.base)).await.unwrap().json().await.unwrap();
    assert_eq!(discovery["issuer"], server.base);
    assert_eq!(reqwest::get(format!("{}/readyz", server.base)).await.unwrap().status(), 200);
    let files: Vec<String> =
        std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(files, ["master.key"], "the volume holds the generated master key, and no embedded cluster");
}
