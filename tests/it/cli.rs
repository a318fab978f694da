//! The provisioning CLI, run as the real binary against a test database.

use crate::support::{TestDb, cli, json_out};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `tenant create --json` prints one object; a second tenant with the same slug is refused
/// with a clear message, a non-zero exit and nothing on stdout.
#[tokio::test]
async fn tenant_create_and_duplicate_slug() {
    let t = TestDb::new().await;
    let v = json_out(&cli(&t, &["tenant", "create", "--slug", "acme", "--name", "Acme Corp", "--json"], ""));
    assert_eq!(v["slug"], "acme");
    assert_eq!(v["name"], "Acme Corp");
    let id: uuid::Uuid = v["tenant_id"].as_str().unwrap().parse().unwrap();

    let dup = cli(&t, &["tenant", "create", "--slug", "acme", "--name", "Other", "--json"], "");
    assert!(!dup.status.success());
    assert!(dup.stdout.is_empty());
    assert!(stderr(&dup).contains(r#"a tenant with slug "acme" already exists"#), "{}", stderr(&dup));

    let bad = cli(&t, &["tenant", "create", "--slug", "Not Valid", "--name", "x", "--json"], "");
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("invalid tenant slug"), "{}", stderr(&bad));

    let mut owner = t.owner().await;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM tenants WHERE slug = 'acme'").fetch_all(&mut owner).await.unwrap();
    assert_eq!(names, ["Acme Corp"]);
    let stored: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'acme'").fetch_one(&mut owner).await.unwrap();
    assert_eq!(stored, id);
}

/// `user create --password-stdin` stores a bcrypt hash; the same email in another case is a
/// duplicate; a short password is refused.
#[tokio::test]
async fn user_create_and_duplicate_email() {
    let t = TestDb::new().await;
    let v = json_out(&cli(
        &t,
        &["user", "create", "--email", "Ann@Example.com", "--password-stdin", "--json"],
        "correct horse battery\n",
    ));
    assert_eq!(v["email"], "Ann@Example.com");

    let dup = cli(
        &t,
        &["user", "create", "--email", "ann@example.COM", "--password-stdin", "--json"],
        "another long password\n",
    );
    assert!(!dup.status.success());
    assert!(stderr(&dup).contains("already exists"), "{}", stderr(&dup));

    let short = cli(&t, &["user", "create", "--email", "bob@example.com", "--password-stdin"], "short\n");
    assert!(!short.status.success());
    assert!(stderr(&short).contains("at least 12 characters"), "{}", stderr(&short));

    let mut owner = t.owner().await;
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users").fetch_one(&mut owner).await.unwrap();
    assert!(hash.starts_with("$2b$12$"), "bcrypt cost 12: {hash}");
    assert!(bcrypt::verify("correct horse battery", &hash).unwrap());
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&mut owner).await.unwrap();
    assert_eq!(n, 1);
}

/// `member add` links a user to a tenant; unknown tenants, unknown users and a second
/// membership are clear errors.
#[tokio::test]
async fn member_add() {
    let t = TestDb::new().await;
    json_out(&cli(&t, &["tenant", "create", "--slug", "acme", "--name", "Acme", "--json"], ""));
    let user = json_out(&cli(
        &t,
        &["user", "create", "--email", "ann@example.com", "--password-stdin", "--json"],
        "correct horse battery\n",
    ));
    let v = json_out(&cli(
        &t,
        &["member", "add", "--tenant", "acme", "--email", "ANN@example.com", "--role", "editor", "--json"],
        "",
    ));
    assert_eq!(v["role"], "editor");
    assert_eq!(v["user_id"], user["user_id"]);

    for (args, message) in [
        (vec!["--tenant", "nope", "--email", "ann@example.com", "--role", "viewer"], r#"no tenant with slug "nope""#),
        (
            vec!["--tenant", "acme", "--email", "bob@example.com", "--role", "viewer"],
            r#"no user with email "bob@example.com""#,
        ),
        (vec!["--tenant", "acme", "--email", "ann@example.com", "--role", "admin"], "already a member"),
    ] {
        let mut full = vec!["member", "add"];
        full.extend(args);
        let out = cli(&t, &full, "");
        assert!(!out.status.success(), "{full:?}");
        assert!(stderr(&out).contains(message), "{full:?}: {}", stderr(&out));
    }
    let bad_role = cli(&t, &["member", "add", "--tenant", "acme", "--email", "ann@example.com", "--role", "owner"], "");
    assert!(!bad_role.status.success());

    let mut owner = t.owner().await;
    let roles: Vec<String> = sqlx::query_scalar("SELECT role FROM memberships").fetch_all(&mut owner).await.unwrap();
    assert_eq!(roles, ["editor"]);
}

/// `client create` prints the secret once and stores only its SHA-256: no column of the row
/// holds the secret.
#[tokio::test]
async fn client_secret_is_never_stored() {
    let t = TestDb::new().await;
    json_out(&cli(&t, &["tenant", "create", "--slug", "acme", "--name", "Acme", "--json"], ""));
    let v = json_out(&cli(
        &t,
        &[
            "client",
            "create",
            "--tenant",
            "acme",
            "--name",
            "Web app",
            "--grant",
            "authorization_code",
            "refresh_token",
            "--redirect-uri",
            "https://app.example.com/callback",
            "--post-logout-redirect-uri",
            "https://app.example.com/",
            "--signing-alg",
            "ES256",
            "--json",
        ],
        "",
    ));
    let client_id = v["client_id"].as_str().unwrap();
    let secret = v["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 43, "256-bit secret");
    assert_eq!(v["grant_types"], serde_json::json!(["authorization_code", "refresh_token"]));
    assert_eq!(v["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(v["signing_alg"], "ES256");

    let mut owner = t.owner().await;
    let (row, hash): (String, Vec<u8>) =
        sqlx::query_as("SELECT c::text, secret_hash FROM clients c WHERE client_id = $1")
            .bind(client_id)
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert!(!row.contains(secret), "the secret is stored in clear: {row}");
    use sha2::Digest;
    assert_eq!(hash, sha2::Sha256::digest(secret.as_bytes()).to_vec());

    // A public client has no secret at all.
    let p = json_out(&cli(
        &t,
        &[
            "client",
            "create",
            "--tenant",
            "acme",
            "--name",
            "SPA",
            "--grant",
            "authorization_code",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1:5173/cb",
            "--json",
        ],
        "",
    ));
    assert!(p.get("client_secret").is_none());
    assert_eq!(p["token_endpoint_auth_method"], "none");
    let hash: Option<Vec<u8>> = sqlx::query_scalar("SELECT secret_hash FROM clients WHERE client_id = $1")
        .bind(p["client_id"].as_str().unwrap())
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(hash, None);
}

/// Registrations that make no sense are refused with a message saying why.
#[tokio::test]
async fn client_create_refuses_nonsense() {
    let t = TestDb::new().await;
    json_out(&cli(&t, &["tenant", "create", "--slug", "acme", "--name", "Acme", "--json"], ""));
    let cases: &[(&[&str], &str)] = &[
        (&["--grant", "authorization_code"], "needs at least one --redirect-uri"),
        (
            &["--grant", "authorization_code", "--redirect-uri", "http://evil.example.com/cb"],
            "http is only allowed for a loopback host",
        ),
        (&["--grant", "authorization_code", "--redirect-uri", "https://a.example.com/cb#x"], "fragment"),
        (
            &["--grant", "client_credentials", "--public", "--role", "viewer"],
            "public client cannot use client_credentials",
        ),
        (&["--grant", "client_credentials"], "needs --role"),
        (&["--grant", "refresh_token"], "refresh_token needs"),
        (&["--grant", "implicit"], "unknown grant"),
    ];
    for (extra, message) in cases {
        let mut args = vec!["client", "create", "--tenant", "acme", "--name", "x"];
        args.extend_from_slice(extra);
        let out = cli(&t, &args, "");
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    let out = cli(
        &t,
        &["client", "create", "--tenant", "ghost", "--name", "x", "--grant", "client_credentials", "--role", "viewer"],
        "",
    );
    assert!(stderr(&out).contains(r#"no tenant with slug "ghost""#), "{}", stderr(&out));

    let mut owner = t.owner().await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM clients").fetch_one(&mut owner).await.unwrap();
    assert_eq!(n, 0, "nothing was written");
}

/// Settings from a TOML file (`--config`); the environment wins over the file, and an unknown
/// key is refused.
#[tokio::test]
async fn settings_from_a_toml_file() {
    let t = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lca.toml");
    std::fs::write(
        &file,
        format!("database_url = \"{}\"\ndatabase_runtime_url = \"{}\"\ncode_ttl_secs = 30\n", t.url(), t.runtime_url()),
    )
    .unwrap();
    let mut cmd = crate::support::binary();
    cmd.args(["--config", file.to_str().unwrap(), "tenant", "create", "--slug", "from-file", "--name", "F", "--json"]);
    let v = json_out(&crate::support::run_with_stdin(cmd, ""));
    assert_eq!(v["slug"], "from-file");

    // DATABASE_URL in the environment beats the file's (which now points nowhere).
    std::fs::write(
        &file,
        "database_url = \"postgres://nobody@127.0.0.1:1/none\"\ndatabase_runtime_url = \"postgres://nobody@127.0.0.1:1/none\"\n",
    )
    .unwrap();
    let mut cmd = crate::support::binary();
    t.database_env(&mut cmd);
    cmd.args(["--config", file.to_str().unwrap(), "tenant", "create", "--slug", "env-wins", "--name", "E", "--json"]);
    json_out(&crate::support::run_with_stdin(cmd, ""));

    std::fs::write(&file, "listn = \"127.0.0.1:1\"\n").unwrap();
    let mut cmd = crate::support::binary();
    cmd.args(["--config", file.to_str().unwrap(), "migrate"]);
    let out = crate::support::run_with_stdin(cmd, "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown setting \"listn\""));
}
