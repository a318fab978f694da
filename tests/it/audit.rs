//! The audit log is append-only in the database itself, and its per-tenant hash chain shows
//! any edit, deletion or reordering (`audit verify`).

use laventecare_auth::db::audit;
use uuid::Uuid;

use crate::support::{TestDb, binary, cli, json_out};

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
    assert_eq!(audit::verify_chain(&rows), Ok(201));
    assert!(cli(&t, &["audit", "verify", "--tenant", "acme"], "").status.success());
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
