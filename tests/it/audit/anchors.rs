//! Anchors: `audit export` prints a chain's head as TENANT:SEQ:HASH, and `audit verify
//! --against` proves it is still in the chain, so rows cut off the end show.

use crate::support::{TestDb, binary, cli, json_out};

use super::{append_n, superuser};

/// `audit verify --against`: an anchor taken from an export (its file, or the TENANT:SEQ:HASH
/// `audit export` prints) holds while the chain grows; after a superuser deletes the last two
/// rows, which plain `audit verify` cannot see, the later anchor fails, naming itself and where
/// the chain now ends, while the earlier anchor still holds. (At 310a6ac there was no
/// `--against`, and the deletion went unnoticed.)
#[tokio::test]
async fn an_anchor_catches_rows_cut_off_the_end() {
    let t = TestDb::new().await;
    let acme = t.tenant("acme").await;
    t.tenant("other").await;
    append_n(&t, acme, 5, "x").await;
    let dir = tempfile::tempdir().unwrap();
    let export = |name: &str| {
        let file = dir.path().join(name);
        let args = ["audit", "export", "--tenant", "acme", "--output", file.to_str().unwrap(), "--json"];
        (file.clone(), json_out(&cli(&t, &args, ""))["anchor"].as_str().unwrap().to_owned())
    };
    let (early, early_anchor) = export("early.jsonl");
    let head: Vec<u8> = sqlx::query_scalar("SELECT hash FROM audit_events WHERE tenant_id = $1 AND seq = 6")
        .bind(acme)
        .fetch_one(&mut t.owner().await)
        .await
        .unwrap();
    assert_eq!(early_anchor, format!("acme:6:{}", hex::encode(&head)));
    // Without --output the rows go to standard output, the anchor to standard error.
    let plain = cli(&t, &["audit", "export", "--tenant", "acme"], "");
    assert_eq!(String::from_utf8_lossy(&plain.stderr).trim(), format!("head {early_anchor}"));

    append_n(&t, acme, 2, "y").await;
    let (late, late_anchor) = export("late.jsonl");
    assert!(late_anchor.starts_with("acme:8:"), "{late_anchor}");
    let against = |anchor: &str| {
        let out = cli(&t, &["audit", "verify", "--against", anchor, "--json"], "");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        (out.status.code(), v)
    };
    let id_anchor = late_anchor.replacen("acme", &acme.to_string(), 1);
    for anchor in [early.to_str().unwrap(), late.to_str().unwrap(), &early_anchor, &late_anchor, &id_anchor] {
        let (code, v) = against(anchor);
        assert_eq!(code, Some(0), "{anchor}: {v}");
        let tenants = v["tenants"].as_array().unwrap();
        assert_eq!(tenants.len(), 1, "only the anchor's tenant");
        assert_eq!(
            (tenants[0]["tenant"].as_str(), tenants[0]["against"]["holds"].as_bool()),
            (Some("acme"), Some(true))
        );
    }

    let mut owner = superuser(&t).await;
    sqlx::query("DELETE FROM audit_events WHERE tenant_id = $1 AND seq > 6")
        .bind(acme)
        .execute(&mut owner)
        .await
        .unwrap();
    // What is left is an intact chain: without an anchor nothing shows.
    assert!(cli(&t, &["audit", "verify", "--tenant", "acme"], "").status.success());

    for anchor in [late.to_str().unwrap(), &late_anchor] {
        let (code, v) = against(anchor);
        assert_eq!(code, Some(1), "{anchor}: {v}");
        let r = &v["tenants"][0];
        assert_eq!(
            (v["ok"].as_bool(), r["ok"].as_bool(), r["against"]["holds"].as_bool()),
            (Some(false), Some(false), Some(false))
        );
        assert!(r["against"]["anchor"].as_str().unwrap().ends_with(&late_anchor[5..]), "{r}");
        assert_eq!(r["against"]["problem"], "row 8 is gone: the chain ends at row 6 (rows were cut off its end)");
    }
    let human = cli(&t, &["audit", "verify", "--against", &late_anchor], "");
    assert_eq!(human.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&human.stdout).contains(&format!("acme: anchor {late_anchor} FAILS: row 8 is gone"))
    );
    assert_eq!(against(&early_anchor).0, Some(0), "rows up to 6 are untouched");

    // Offline: today's export against the late anchor fails the same way.
    let (now, _) = export("now.jsonl");
    let out = verify_file_offline_against(&now, &late_anchor);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["against"]["holds"], false, "{v}");
    assert_eq!(verify_file_offline_against(&now, early.to_str().unwrap()).status.code(), Some(0));
}

fn verify_file_offline_against(file: &std::path::Path, anchor: &str) -> std::process::Output {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = binary();
    cmd.env("LCA_DATA_DIR", data.path()).env("LCA_PG_BINDIR", "/nonexistent");
    cmd.args(["audit", "verify", "--file", file.to_str().unwrap(), "--against", anchor, "--json"]);
    crate::support::run_with_stdin(cmd, "")
}

/// Malformed anchors are usage errors (exit 2) saying what is wrong; an anchor of a tenant that
/// does not exist, of another tenant than `--tenant`, another tenant's export, a damaged export
/// and the wrong master key each get a clear error, never a pass.
#[tokio::test]
async fn bad_anchors_are_refused_clearly() {
    let t = TestDb::new().await;
    let acme = t.tenant("acme").await;
    t.tenant("other").await;
    append_n(&t, acme, 2, "x").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.jsonl");
    let summary =
        json_out(&cli(&t, &["audit", "export", "--tenant", "acme", "--output", file.to_str().unwrap(), "--json"], ""));
    let anchor = summary["anchor"].as_str().unwrap().to_owned();
    let hash = &anchor[anchor.rfind(':').unwrap() + 1..];
    let run = |args: &[&str]| {
        let out = cli(&t, args, "");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for (bad, says) in [
        ("acme:3".to_owned(), "TENANT:SEQ:HASH"),
        (format!("acme:0:{hash}"), "SEQ"),
        (format!("acme:-1:{hash}"), "SEQ"),
        (format!("acme:3:{}", &hash[..63]), "HASH"),
        (format!("ACME:3:{hash}"), "tenant"),
        ("/nonexistent/early.jsonl".to_owned(), "neither an export file that exists nor an anchor"),
    ] {
        let (code, stderr) = run(&["audit", "verify", "--against", &bad]);
        assert_eq!(code, Some(2), "{bad}: {stderr}");
        assert!(stderr.contains(says), "{bad}: {stderr}");
    }
    let (code, stderr) = run(&["audit", "verify", "--against", &format!("nosuch:3:{hash}")]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("the anchor names tenant \"nosuch\""), "{stderr}");
    let (code, stderr) = run(&["audit", "verify", "--tenant", "other", "--against", &anchor]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("which is not other"), "{stderr}");
    // Acme's anchor under another tenant's name: the hash is not in that chain.
    let (code, _) = run(&["audit", "verify", "--against", &anchor.replacen("acme", "other", 1)]);
    assert_eq!(code, Some(1));

    let damaged = dir.path().join("damaged.jsonl");
    std::fs::write(&damaged, std::fs::read_to_string(&file).unwrap().replace("\"test.event\"", "\"test.forged\""))
        .unwrap();
    let (code, stderr) = run(&["audit", "verify", "--against", damaged.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("not an intact export"), "{stderr}");
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let (code, stderr) = run(&["audit", "verify", "--against", empty.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("the export has no rows"), "{stderr}");

    // Another master key: the export does not verify (from row 1), so it proves nothing.
    let mut cmd = binary();
    cmd.env("LCA_MASTER_KEY", "b3RoZXItbWFzdGVyLWtleS10aGlydHktdHdvLWJ5dGU=");
    cmd.env("LCA_DATA_DIR", dir.path()).args(["audit", "verify", "--file", file.to_str().unwrap(), "--json"]);
    let out = crate::support::run_with_stdin(cmd, "");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["broken_at"]["seq"], 1, "{v}");
    // No master key at all: verify --file says so and does not make one up.
    let empty_dir = tempfile::tempdir().unwrap();
    let mut cmd = binary();
    cmd.env_remove("LCA_MASTER_KEY").env("LCA_DATA_DIR", empty_dir.path());
    cmd.args(["audit", "verify", "--file", file.to_str().unwrap()]);
    let out = crate::support::run_with_stdin(cmd, "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no master key"), "{out:?}");
    assert!(!empty_dir.path().join("master.key").exists());
}
