//! The audit log is append-only in the database itself, and its per-tenant keyed hash chain
//! shows any edit, deletion or reordering (`audit verify`), even one whose hashes were
//! recomputed; an anchor from an earlier export shows rows cut off the end (`--against`,
//! in `audit/anchors.rs`).
//!
//! These tests use only what the code of 310a6ac had too (plus the CLI), so they can be run
//! against it: the forged-chain and anchor tests fail there.

use laventecare_auth::db::audit;
use uuid::Uuid;

use crate::support::{TestDb, binary, cli, json_out};

mod anchors;

async fn append_n(t: &TestDb, tenant: Uuid, n: usize, tag: &str) {
    for i in 0..n {
        let mut tx = t.db.tenant(tenant).await.unwrap();
        let event = audit::Event {
            actor_kind: "system",
            action: "test.event",
            outcome: "success",
            ip: Some("192.0.2.7".parse().unwrap()),
            details: serde_json::json!({ "writer": tag, "i": i }),
            ..Default::default()
        };
        audit::append(&mut tx, &event).await.unwrap();
        tx.commit().await.unwrap();
    }
}

/// As the runtime role, UPDATE, DELETE and TRUNCATE fail; as the owner (a superuser here),
/// the triggers still stop UPDATE, DELETE and TRUNCATE.
#[tokio::test]
async fn audit_rows_cannot_be_changed() {
    let t = TestDb::new().await;
    let acme = t.tenant("acme").await;
    append_n(&t, acme, 2, "a").await;
    let mut runtime = t.runtime().await;
    sqlx::query("SELECT set_config('app.tenant_id', $1, false)")
        .bind(acme.to_string())
        .execute(&mut runtime)
        .await
        .unwrap();
    for sql in ["UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events"] {
        let err = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut runtime).await.unwrap_err();
        assert_eq!(laventecare_auth::db::sqlstate(&err).as_deref(), Some("42501"), "{sql}: {err}");
    }
    let mut owner = t.owner().await;
    for sql in ["UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events"] {
        let err = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut owner).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events").fetch_one(&mut owner).await.unwrap();
    assert_eq!(n, 3, "tenant.created and the two appended");
}

/// With the triggers disabled by a superuser: an edited row, a deleted row and two swapped
/// rows are each named by `audit verify`, which exits non-zero; an untouched chain verifies.
#[tokio::test]
async fn tampering_is_detected() {
    let t = TestDb::new().await;
    let mut ids = Vec::new();
    for slug in ["clean", "edited", "deleted", "swapped"] {
        let id = t.tenant(slug).await;
        append_n(&t, id, 5, slug).await;
        ids.push(id);
    }
    let ok = cli(&t, &["audit", "verify", "--json"], "");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));

    let mut owner = t.owner().await;
    sqlx::raw_sql("ALTER TABLE audit_events DISABLE TRIGGER USER").execute(&mut owner).await.unwrap();
    sqlx::query("UPDATE audit_events SET details = '{\"writer\":\"forged\"}' WHERE tenant_id = $1 AND seq = 3")
        .bind(ids[1])
        .execute(&mut owner)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_events WHERE tenant_id = $1 AND seq = 2")
        .bind(ids[2])
        .execute(&mut owner)
        .await
        .unwrap();
    // Swap the contents of rows 2 and 4, keeping their places.
    sqlx::query(
        "UPDATE audit_events a SET details = b.details, hash = b.hash, prev_hash = b.prev_hash \
         FROM audit_events b WHERE a.tenant_id = $1 AND b.tenant_id = $1 \
           AND ((a.seq = 2 AND b.seq = 4) OR (a.seq = 4 AND b.seq = 2))",
    )
    .bind(ids[3])
    .execute(&mut owner)
    .await
    .unwrap();
    sqlx::raw_sql("ALTER TABLE audit_events ENABLE TRIGGER USER").execute(&mut owner).await.unwrap();

    let out = cli(&t, &["audit", "verify", "--json"], "");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let by_tenant = |slug: &str| v["tenants"].as_array().unwrap().iter().find(|r| r["tenant"] == slug).unwrap().clone();
    assert_eq!(by_tenant("clean")["ok"], true);
    assert_eq!(by_tenant("edited")["broken_at"]["seq"], 3);
    assert_eq!(by_tenant("deleted")["broken_at"]["seq"], 3, "the row after the gap");
    assert_eq!(by_tenant("swapped")["broken_at"]["seq"], 2);
    // One tenant at a time.
    let one = cli(&t, &["audit", "verify", "--tenant", "clean"], "");
    assert!(one.status.success());
    assert!(String::from_utf8_lossy(&one.stdout).contains("clean: 6 rows, chain intact"));
}

/// 8 writers appending to one tenant's chain at once never fork it.
#[tokio::test]
async fn concurrent_writers_keep_one_chain() {
    let t = TestDb::new().await;
    let acme = t.tenant("acme").await;
    let writers = (0..8).map(|w| {
        let t = &t;
        async move { append_n(t, acme, 25, &format!("w{w}")).await }
    });
    futures::future::join_all(writers).await;
    let mut tx = t.db.tenant(acme).await.unwrap();
    let rows = audit::rows(&mut tx).await.unwrap();
    assert_eq!(rows.len(), 201, "tenant.created and 8 × 25");
    let v = json_out(&cli(&t, &["audit", "verify", "--tenant", "acme", "--json"], ""));
    assert_eq!((v["ok"].as_bool(), v["tenants"][0]["rows"].as_i64()), (Some(true), Some(201)), "{v}");
}

/// Runs `audit verify --file` with no database at all: no DATABASE_URL, and a data directory
/// whose cluster could not even start (no PostgreSQL binaries there).
fn verify_file_offline(file: &std::path::Path) -> std::process::Output {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = binary();
    cmd.env("LCA_DATA_DIR", data.path()).env("LCA_PG_BINDIR", "/nonexistent");
    cmd.args(["audit", "verify", "--file", file.to_str().unwrap(), "--json"]);
    let out = crate::support::run_with_stdin(cmd, "");
    assert!(!data.path().join("postgres").exists(), "no cluster was set up");
    out
}

/// `audit export` writes the chain as JSON lines whose last hash is the database's head;
/// `audit verify --file` checks it offline; an edited, deleted or moved line is named by line
/// and row, with exit code 1.
#[tokio::test]
async fn export_verifies_offline_and_names_tampering() {
    let t = TestDb::new().await;
    let acme = t.tenant("acme").await;
    append_n(&t, acme, 5, "x").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.jsonl");
    let summary =
        json_out(&cli(&t, &["audit", "export", "--tenant", "acme", "--output", file.to_str().unwrap(), "--json"], ""));
    assert_eq!(summary["rows"], 6);
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6);
    // One AuditRow per line, in seq order; the last hash is the head in the database.
    let seqs: Vec<i64> = lines.iter().map(|l| serde_json::from_str::<audit::AuditRow>(l).unwrap().seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    let last: serde_json::Value = serde_json::from_str(lines[5]).unwrap();
    let mut owner = t.owner().await;
    let head: Vec<u8> =
        sqlx::query_scalar("SELECT hash FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1")
            .bind(acme)
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!(last["hash"], hex::encode(&head));
    assert_eq!(summary["head"], hex::encode(&head));
    // Standard output without --output: the same lines.
    let stdout = cli(&t, &["audit", "export", "--tenant", "acme"], "");
    assert!(stdout.status.success());
    assert_eq!(String::from_utf8(stdout.stdout).unwrap(), text);

    let ok = verify_file_offline(&file);
    let v = json_out(&ok);
    assert_eq!((v["ok"].as_bool(), v["rows"].as_i64()), (Some(true), Some(6)));
    assert_eq!(v["head"], hex::encode(&head));
    assert_eq!(v["anchor"], format!("{acme}:6:{}", hex::encode(&head)));

    let tampered = |name: &str, lines: Vec<String>| {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let out = verify_file_offline(&path);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["ok"], false, "{name}");
        v["broken_at"].clone()
    };
    let owned: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();

    let mut edited = owned.clone();
    edited[2] = edited[2].replace("\"test.event\"", "\"test.forged\"");
    assert_ne!(edited[2], owned[2]);
    let b = tampered("edited.jsonl", edited);
    assert_eq!((b["line"].as_i64(), b["seq"].as_i64()), (Some(3), Some(3)), "{b}");
    assert_eq!(b["problem"], "its content was changed");

    let mut deleted = owned.clone();
    deleted.remove(2);
    let b = tampered("deleted.jsonl", deleted);
    assert_eq!((b["line"].as_i64(), b["seq"].as_i64()), (Some(3), Some(4)), "{b}");
    assert_eq!(b["problem"], "a row before this one is missing");

    let mut swapped = owned.clone();
    swapped.swap(1, 3);
    let b = tampered("swapped.jsonl", swapped);
    assert_eq!((b["line"].as_i64(), b["seq"].as_i64()), (Some(2), Some(4)), "{b}");
    assert_eq!(b["problem"], "out of order (rows were moved)");

    let b = tampered("garbage.jsonl", vec![owned[0].clone(), "not json".into()]);
    assert_eq!(b["line"].as_i64(), Some(2));
}

/// The hash of the code before the chain was keyed (`AuditRow::compute_hash` at 310a6ac),
/// written out here: plain SHA-256 of the canonical row, which anyone with the rows can compute.
fn plain_sha256(row: &audit::AuditRow) -> Vec<u8> {
    use sha2::Digest;
    fn sorted(value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
            }
            serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let canonical = serde_json::json!([
        row.tenant_id,
        row.seq,
        row.occurred_at.timestamp_micros(),
        row.actor_kind,
        row.actor_id,
        row.target_kind,
        row.target_id,
        row.action,
        row.outcome,
        row.ip,
        row.user_agent,
        row.request_id,
        sorted(&row.details),
        hex::encode(&row.prev_hash),
    ]);
    sha2::Sha256::digest(canonical.to_string().as_bytes()).to_vec()
}

/// A superuser's session with the append-only triggers off (`session_replication_role`).
async fn superuser(t: &TestDb) -> sqlx::PgConnection {
    let mut owner = t.owner().await;
    sqlx::raw_sql("SET session_replication_role = replica").execute(&mut owner).await.unwrap();
    owner
}

/// As a superuser: sets row `from`'s details to `forged` (if `edit`), then recomputes its hash
/// and every later row's up to `to` (and their links) with plain SHA-256, exactly as the old
/// `compute_hash` did. `extra` is more SQL for each rewritten row (e.g. marking it legacy).
async fn rewrite(t: &TestDb, tenant: Uuid, (from, to): (i64, i64), edit: bool, extra: &str) {
    let mut tx = t.db.tenant(tenant).await.unwrap();
    let mut rows = audit::rows(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    let mut owner = superuser(t).await;
    for i in usize::try_from(from - 1).unwrap()..rows.len().min(usize::try_from(to).unwrap_or(usize::MAX)) {
        if edit && rows[i].seq == from {
            rows[i].details = serde_json::json!({ "writer": "forged" });
        }
        rows[i].prev_hash = if i == 0 { vec![0; 32] } else { rows[i - 1].hash.clone() };
        rows[i].hash = plain_sha256(&rows[i]);
        let sql = format!(
            "UPDATE audit_events SET details = $1, prev_hash = $2, hash = $3{extra} WHERE tenant_id = $4 AND seq = $5"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&rows[i].details)
            .bind(&rows[i].prev_hash)
            .bind(&rows[i].hash)
            .bind(tenant)
            .bind(rows[i].seq)
            .execute(&mut owner)
            .await
            .unwrap();
    }
}

/// Issue #9 item 3: a superuser edits row 3 and recomputes it and every later hash with plain
/// SHA-256; `audit verify` still names row 3 and exits 1, and so does `audit verify --file` on
/// an export of the forged chain. (At 310a6ac both accepted the forgery.)
#[tokio::test]
async fn a_chain_recomputed_with_plain_sha256_is_named() {
    let t = TestDb::new().await;
    let acme = t.tenant("acme").await;
    append_n(&t, acme, 5, "x").await;
    assert!(cli(&t, &["audit", "verify", "--tenant", "acme"], "").status.success());

    rewrite(&t, acme, (3, i64::MAX), true, "").await;
    // The forgery is consistent as a plain SHA-256 chain: every link and hash recomputed.
    let mut owner = t.owner().await;
    let stored: Vec<(i64, Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT seq, prev_hash, hash FROM audit_events WHERE tenant_id = $1 ORDER BY seq")
            .bind(acme)
            .fetch_all(&mut owner)
            .await
            .unwrap();
    assert!(stored.windows(2).all(|w| w[1].1 == w[0].2), "links recomputed");

    let out = cli(&t, &["audit", "verify", "--json"], "");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let acme_report = v["tenants"].as_array().unwrap().iter().find(|r| r["tenant"] == "acme").unwrap().clone();
    assert_eq!(acme_report["ok"], false);
    assert_eq!(acme_report["broken_at"]["seq"], 3, "{acme_report}");
    let human = cli(&t, &["audit", "verify", "--tenant", "acme"], "");
    assert_eq!(human.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&human.stdout).contains("acme: BROKEN at row 3"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("forged.jsonl");
    let exported = cli(&t, &["audit", "export", "--tenant", "acme", "--output", file.to_str().unwrap()], "");
    assert!(exported.status.success());
    let out = verify_file_offline(&file);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["broken_at"]["line"].as_i64(), v["broken_at"]["seq"].as_i64()), (Some(3), Some(3)), "{v}");
}

/// The forger also marks the rewritten rows as legacy (plain SHA-256, as rows from before the
/// keyed chain are): an unkeyed row after keyed ones is named. A chain that really starts with
/// legacy rows (an upgraded deployment) verifies and says how many; editing a legacy row and
/// recomputing the rest of the legacy prefix breaks the first keyed row.
#[tokio::test]
async fn forged_rows_never_pass_as_legacy() {
    let t = TestDb::new().await;
    let downgraded = t.tenant("downgraded").await;
    append_n(&t, downgraded, 5, "x").await;
    rewrite(&t, downgraded, (4, i64::MAX), true, ", mac_version = 0").await;
    let out = cli(&t, &["audit", "verify", "--tenant", "downgraded", "--json"], "");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tenants"][0]["broken_at"]["seq"], 4, "{v}");
    assert_eq!(v["tenants"][0]["broken_at"]["problem"], "an unkeyed row after keyed ones (forged)");

    // An upgraded deployment: its first 3 rows were written before migration 0011.
    let upgraded = t.tenant("upgraded").await;
    append_n(&t, upgraded, 2, "old").await;
    rewrite(&t, upgraded, (1, 3), false, ", mac_version = 0").await;
    append_n(&t, upgraded, 2, "new").await;
    let v = json_out(&cli(&t, &["audit", "verify", "--tenant", "upgraded", "--json"], ""));
    let r = &v["tenants"][0];
    assert_eq!(
        (r["ok"].as_bool(), r["rows"].as_i64(), r["legacy_rows"].as_i64()),
        (Some(true), Some(5), Some(3)),
        "{r}"
    );
    let human = cli(&t, &["audit", "verify", "--tenant", "upgraded"], "");
    assert!(String::from_utf8_lossy(&human.stdout).contains("3 legacy rows"), "{human:?}");

    // Row 2 (legacy) edited, rows 2–3 recomputed as legacy: row 4's MAC covers row 3's hash.
    rewrite(&t, upgraded, (2, 3), true, ", mac_version = 0").await;
    let out = cli(&t, &["audit", "verify", "--tenant", "upgraded", "--json"], "");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tenants"][0]["broken_at"]["seq"], 4, "{v}");
    assert_eq!(v["tenants"][0]["broken_at"]["problem"], "does not follow the previous row (inserted or reordered)");
}

/// A database handle without the audit key (one not built by the application state or the
/// CLI) cannot append: the action's transaction fails and no unkeyed row is written.
#[tokio::test]
async fn appending_without_the_key_fails_closed() {
    let t = TestDb::new().await;
    let acme = t.tenant("acme").await;
    let config = crate::support::test_config(&[("DATABASE_URL", &t.url()), ("DATABASE_RUNTIME_URL", &t.runtime_url())]);
    let (keyless, cluster) = laventecare_auth::db::open(&config).await.unwrap();
    assert!(cluster.is_none());
    let mut tx = keyless.tenant(acme).await.unwrap();
    let event = audit::Event { actor_kind: "system", action: "test.event", outcome: "success", ..Default::default() };
    let err = audit::append(&mut tx, &event).await.unwrap_err();
    assert!(err.to_string().contains("no key"), "{err}");
    drop(tx);
    keyless.close().await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE tenant_id = $1")
        .bind(acme)
        .fetch_one(&mut t.owner().await)
        .await
        .unwrap();
    assert_eq!(n, 1, "only tenant.created");
}

/// A CLI command run with another master key than the one the log was written with is refused
/// before it writes anything (its rows would break the chain for good); `audit verify` still
/// runs with it and names row 1; the right key works.
#[tokio::test]
async fn a_cli_with_another_master_key_writes_nothing() {
    let t = TestDb::new().await;
    t.tenant("acme").await;
    let other_key = |args: &[&str]| {
        let mut cmd = binary();
        t.database_env(&mut cmd).env("LCA_MASTER_KEY", "b3RoZXItbWFzdGVyLWtleS10aGlydHktdHdvLWJ5dGU=");
        cmd.args(args);
        crate::support::run_with_stdin(cmd, "")
    };
    let out = other_key(&["tenant", "create", "--slug", "beta", "--name", "Beta", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not written under this master key"), "{out:?}");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants WHERE slug = 'beta'")
        .fetch_one(&mut t.owner().await)
        .await
        .unwrap();
    assert_eq!(n, 0, "no tenant beta");
    let out = other_key(&["audit", "verify", "--tenant", "acme", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tenants"][0]["broken_at"]["seq"], 1, "{v}");
    json_out(&cli(&t, &["tenant", "create", "--slug", "beta", "--name", "Beta", "--json"], ""));
}
