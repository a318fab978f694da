//! The janitor removes exactly what has expired, in batches, while the token endpoint keeps
//! answering; only one janitor works at a time; the audit log is never touched.

use std::time::{Duration, Instant};

use laventecare_auth::janitor::{self, JANITOR_LOCK};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::flow::{Provider, tokens};
use crate::support::{TestDb, binary, cli, json_out};

async fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(conn).await.unwrap()
}

/// Expired rows of every kind the janitor sweeps, `n` of each unit, in `tenant`; returns how
/// many rows were inserted per sweep. Marked `expired-*` so live rows can be told apart.
async fn seed_expired(conn: &mut PgConnection, tenant: Uuid, user: Uuid, n: i64) -> [(&'static str, i64); 5] {
    let tag = tenant.simple().to_string();
    let run = |sql: String| sqlx::raw_sql(sqlx::AssertSqlSafe(sql));
    run(format!(
        "INSERT INTO browser_sessions (id_hash, data, expires_at) \
         SELECT sha256(('{tag}s' || g)::bytea), '{{}}', now() - interval '1 hour' FROM generate_series(1, {}) g",
        3 * n
    ))
    .execute(&mut *conn)
    .await
    .unwrap();
    run(format!(
        "INSERT INTO authorization_codes (tenant_id, code_hash, client_id, user_id, redirect_uri, scope, auth_time, \
           amr, acr, sid, expires_at, consumed_at) \
         SELECT '{tenant}', sha256(('{tag}c' || g)::bytea), 'expired-client', '{user}', 'https://x.example/cb', 'openid', \
           now(), '{{pwd}}', 'a', 's', now() - interval '1 minute', CASE WHEN g % 2 = 0 THEN now() END \
         FROM generate_series(1, {}) g",
        2 * n
    ))
    .execute(&mut *conn)
    .await
    .unwrap();
    // Families that ended: half revoked (still within their lifetime), half past it; two
    // refresh tokens each (one used, one not).
    run(format!(
        "INSERT INTO token_families (tenant_id, family_id, client_id, user_id, scope, expires_at, revoked_at) \
         SELECT '{tenant}', md5('{tag}f' || g)::uuid, 'expired-client', '{user}', 'openid', \
           CASE WHEN g % 2 = 0 THEN now() + interval '1 day' ELSE now() - interval '1 day' END, \
           CASE WHEN g % 2 = 0 THEN now() END \
         FROM generate_series(1, {n}) g; \
         INSERT INTO refresh_tokens (tenant_id, token_hash, family_id, expires_at, used_at) \
         SELECT '{tenant}', sha256(('{tag}r' || g || '.' || k)::bytea), md5('{tag}f' || g)::uuid, \
           now() + interval '1 day', CASE WHEN k = 1 THEN now() END \
         FROM generate_series(1, {n}) g, generate_series(1, 2) k",
    ))
    .execute(&mut *conn)
    .await
    .unwrap();
    run(format!(
        "INSERT INTO access_tokens (tenant_id, jti, client_id, expires_at) \
         SELECT '{tenant}', md5('{tag}a' || g)::uuid, 'expired-client', now() - interval '1 minute' \
         FROM generate_series(1, {}) g",
        2 * n
    ))
    .execute(&mut *conn)
    .await
    .unwrap();
    [
        ("browser_sessions", 3 * n),
        ("authorization_codes", 2 * n),
        ("token_families", n),
        ("refresh_tokens", 2 * n),
        ("access_tokens", 2 * n),
    ]
}

/// Live rows the janitor must leave: unexpired sessions, codes and access tokens, a live family
/// with a used (and expired) refresh token that reuse detection still needs, and a retired key
/// still in the JWKS. Plus two retired keys past their publish window, which must go.
async fn seed_live(conn: &mut PgConnection, tenant: Uuid, user: Uuid) {
    let family = Uuid::now_v7();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO browser_sessions (id_hash, data, expires_at) \
         SELECT sha256(('live' || g)::bytea), '{{}}', now() + interval '1 day' FROM generate_series(1, 50) g; \
         INSERT INTO authorization_codes (tenant_id, code_hash, client_id, user_id, redirect_uri, scope, auth_time, \
           amr, acr, sid, expires_at, consumed_at) \
         SELECT '{tenant}', sha256(('livec' || g)::bytea), 'live-client', '{user}', 'https://x.example/cb', 'openid', \
           now(), '{{pwd}}', 'a', 's', now() + interval '1 day', CASE WHEN g % 2 = 0 THEN now() END \
         FROM generate_series(1, 50) g; \
         INSERT INTO token_families (tenant_id, family_id, client_id, user_id, scope, expires_at) \
         VALUES ('{tenant}', '{family}', 'live-client', '{user}', 'openid', now() + interval '30 days'); \
         INSERT INTO refresh_tokens (tenant_id, token_hash, family_id, expires_at, used_at) VALUES \
           ('{tenant}', sha256('live-used'::bytea), '{family}', now() - interval '1 day', now() - interval '2 days'), \
           ('{tenant}', sha256('live-new'::bytea), '{family}', now() + interval '1 day', NULL); \
         INSERT INTO access_tokens (tenant_id, jti, family_id, client_id, expires_at) \
         SELECT '{tenant}', gen_random_uuid(), '{family}', 'live-client', now() + interval '1 day' \
         FROM generate_series(1, 50) g; \
         INSERT INTO signing_keys (kid, alg, public_jwk, private_enc, retired_at, publish_until) \
         SELECT k, 'ES256', jsonb_build_object('kid', k), decode(repeat('00', 40), 'hex'), r, p FROM (VALUES \
           (repeat('x', 43), now() - interval '3 days', now() - interval '2 days'), \
           (repeat('y', 43), now() - interval '3 days', now() - interval '1 day'), \
           (repeat('z', 43), now() - interval '1 hour', now() + interval '1 day')) AS v(k, r, p)"
    )))
    .execute(conn)
    .await
    .unwrap();
}

/// Recovery links (20 used, 20 expired, 5 live) and sign-in counters (100 stale, 10 recent,
/// 5 stale but still locked).
async fn seed_mfa_state(conn: &mut PgConnection, tenant: Uuid, user: Uuid) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO recovery_links (tenant_id, token_hash, user_id, issued_by, expires_at, used_at) \
         SELECT '{tenant}', sha256(('link' || g)::bytea), '{user}', 'test', \
           CASE WHEN g <= 20 THEN now() + interval '1 hour' WHEN g <= 40 THEN now() - interval '1 minute' \
                ELSE now() + interval '1 hour' END, \
           CASE WHEN g <= 20 THEN now() END \
         FROM generate_series(1, 45) g; \
         INSERT INTO login_throttle (key_hash, failures, updated_at, locked_until) \
         SELECT sha256(('key' || g)::bytea), 3, \
           CASE WHEN g <= 100 OR g > 110 THEN now() - interval '2 days' ELSE now() END, \
           CASE WHEN g > 110 THEN now() + interval '1 hour' END \
         FROM generate_series(1, 115) g"
    )))
    .execute(conn)
    .await
    .unwrap();
}

/// Counts of what must stay.
async fn live_counts(conn: &mut PgConnection) -> Vec<i64> {
    let mut out = Vec::new();
    for sql in [
        "SELECT count(*) FROM browser_sessions WHERE expires_at > now()",
        "SELECT count(*) FROM authorization_codes WHERE client_id = 'live-client'",
        "SELECT count(*) FROM token_families WHERE client_id = 'live-client'",
        "SELECT count(*) FROM refresh_tokens r JOIN token_families f USING (tenant_id, family_id) \
         WHERE f.client_id = 'live-client'",
        "SELECT count(*) FROM access_tokens WHERE client_id = 'live-client'",
        "SELECT count(*) FROM signing_keys WHERE kid = repeat('z', 43) OR retired_at IS NULL",
        "SELECT count(*) FROM recovery_links WHERE used_at IS NULL AND expires_at > now()",
        "SELECT count(*) FROM login_throttle WHERE updated_at > now() - interval '1 day' OR locked_until > now()",
    ] {
        out.push(count(conn, sql).await);
    }
    out
}

async fn expired_left(conn: &mut PgConnection) -> i64 {
    count(
        conn,
        "SELECT (SELECT count(*) FROM browser_sessions WHERE expires_at < now()) \
              + (SELECT count(*) FROM authorization_codes WHERE expires_at < now()) \
              + (SELECT count(*) FROM token_families WHERE revoked_at IS NOT NULL OR expires_at < now()) \
              + (SELECT count(*) FROM refresh_tokens WHERE family_id IN \
                   (SELECT family_id FROM token_families WHERE revoked_at IS NOT NULL OR expires_at < now())) \
              + (SELECT count(*) FROM access_tokens WHERE expires_at < now()) \
              + (SELECT count(*) FROM signing_keys WHERE publish_until < now()) \
              + (SELECT count(*) FROM recovery_links WHERE used_at IS NOT NULL OR expires_at < now()) \
              + (SELECT count(*) FROM login_throttle WHERE updated_at < now() - interval '1 day' \
                   AND coalesce(locked_until < now(), true))",
    )
    .await
}

/// The number of audit rows up to each tenant's head at `heads`, and a hash over them: the
/// same before and after a janitor run means no row of then was removed or changed (the
/// token endpoint keeps appending `token.issued` rows meanwhile).
async fn audit_state(conn: &mut PgConnection, heads: &[(uuid::Uuid, i64)]) -> (i64, Vec<u8>) {
    let (tenants, seqs): (Vec<uuid::Uuid>, Vec<i64>) = heads.iter().copied().unzip();
    sqlx::query_as(
        "SELECT count(*), coalesce(sha256(string_agg(a.hash, '' ORDER BY a.tenant_id, a.seq)), '') \
         FROM audit_events a JOIN unnest($1::uuid[], $2::bigint[]) AS h (tenant_id, seq) \
           ON a.tenant_id = h.tenant_id AND a.seq <= h.seq",
    )
    .bind(tenants)
    .bind(seqs)
    .fetch_one(conn)
    .await
    .unwrap()
}

/// Each tenant's last audit sequence number now.
async fn audit_heads(conn: &mut PgConnection) -> Vec<(uuid::Uuid, i64)> {
    sqlx::query_as("SELECT tenant_id, max(seq) FROM audit_events GROUP BY tenant_id").fetch_all(conn).await.unwrap()
}

/// 100 000 expired rows in two tenants and some live ones: one run removes exactly the
/// expired, in many batches, while a refresh-token loop on the same database keeps getting
/// 200s quickly; the audit log is unchanged.
#[tokio::test]
async fn one_run_removes_exactly_the_expired_rows() {
    // Codes and access tokens live long here, and the live rows below a day, so that nothing
    // the test leaves live (the refresh loop's tokens included) expires during the run,
    // however slow a loaded machine makes it.
    let p = Provider::start_with(&[("LCA_CODE_TTL_SECS", "600"), ("LCA_ACCESS_TOKEN_TTL_SECS", "86400")]).await;
    let globex = p.t.tenant("globex").await;
    let mut db = p.t.owner().await;
    let acme: Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'acme'").fetch_one(&mut db).await.unwrap();
    let user: Uuid = sqlx::query_scalar("SELECT id FROM users").fetch_one(&mut db).await.unwrap();
    let (_, body) = tokens(&p).await;

    let seeded = Instant::now();
    let mut expected = std::collections::BTreeMap::new();
    for tenant in [acme, globex] {
        for (sweep, n) in seed_expired(&mut db, tenant, user, 5_000).await {
            *expected.entry(sweep).or_insert(0) += n;
        }
    }
    seed_live(&mut db, acme, user).await;
    expected.insert("signing_keys", 2);
    let bulk: i64 = expected.values().sum::<i64>() - 2;
    assert_eq!(bulk, 100_000, "{expected:?}");
    seed_mfa_state(&mut db, acme, user).await;
    // Statistics that know the seeded rows, as autovacuum's would on a database that grew this
    // big: planned against the empty template's, a sweep's join can take minutes here.
    sqlx::query("ANALYZE").execute(&mut db).await.unwrap();
    expected.insert("recovery_links", 40);
    expected.insert("login_throttle", 100);
    let total: i64 = expected.values().sum();
    assert_eq!(expired_left(&mut db).await, total);
    eprintln!("seeded {total} expired rows in {:?}", seeded.elapsed());
    let live_before = live_counts(&mut db).await;
    let heads = audit_heads(&mut db).await;
    let audit_before = audit_state(&mut db, &heads).await;

    // The token endpoint, in a loop, for as long as the janitor runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let looping = {
        let (p, stop) = (&p, stop.clone());
        let mut refresh = body["refresh_token"].as_str().unwrap().to_owned();
        async move {
            let mut latencies = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let (status, body) = p.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
                latencies.push(started.elapsed());
                assert_eq!(status, 200, "{body}");
                refresh = body["refresh_token"].as_str().unwrap().to_owned();
            }
            latencies
        }
    };
    let janitor = async {
        let started = Instant::now();
        let report = janitor::run_once(&p.t.db, 1000).await.unwrap();
        let took = started.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (report, took)
    };
    let ((report, took), latencies) = tokio::join!(janitor, looping);
    let max = latencies.iter().max().copied().unwrap_or_default();
    eprintln!(
        "janitor: {} rows in {took:?}; token endpoint during it: {} requests, max {max:?}",
        report.deleted,
        latencies.len()
    );
    assert!(report.ran);
    for (sweep, n) in &expected {
        assert_eq!(report.deleted_by(sweep) as i64, *n, "{sweep}: {report:?}");
    }
    assert_eq!(report.deleted as i64, total);
    let sessions = report.sweeps.iter().find(|s| s.sweep == "browser_sessions").unwrap();
    assert!(sessions.batches >= 30, "in batches of at most 1000: {report:?}");
    assert!(latencies.len() >= 3, "the loop ran during the janitor: {}", latencies.len());
    // Each batch is a short transaction, so no request waits for the run: here the worst one
    // takes well under 100 ms of a 2-second run. The bound is loose for loaded CI machines.
    assert!(max < Duration::from_secs(5), "token endpoint latency stayed bounded: {max:?}");

    assert_eq!(expired_left(&mut db).await, 0);
    assert_eq!(live_counts(&mut db).await, live_before, "live rows intact");
    assert_eq!(audit_state(&mut db, &heads).await, audit_before, "audit log untouched");
    // A second run finds nothing.
    let again = janitor::run_once(&p.t.db, 1000).await.unwrap();
    assert_eq!(again.deleted, 0, "{again:?}");
}

/// Two janitors started at once: exactly one works. While one holds the lock, `janitor run`
/// says another is running and deletes nothing.
#[tokio::test]
async fn only_one_janitor_works_at_a_time() {
    let t = TestDb::new().await;
    let acme = t.tenant("acme").await;
    let hasher = laventecare_auth::identity::PasswordHasher::new();
    let user = laventecare_auth::identity::create_user(&t.db, &hasher, "a@example.com", "a long password!")
        .await
        .unwrap()
        .user_id;
    let mut db = t.owner().await;
    seed_expired(&mut db, acme, user, 5_000).await;

    let (a, b) = tokio::join!(janitor::run_once(&t.db, 500), janitor::run_once(&t.db, 500));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!([a.ran, b.ran].iter().filter(|r| **r).count(), 1, "{a:?} {b:?}");
    let idle = if a.ran { &b } else { &a };
    assert_eq!(idle.message, Some("another janitor is running"));
    assert_eq!(idle.deleted, 0);
    assert_eq!(a.deleted + b.deleted, 50_000);

    seed_expired(&mut db, acme, Uuid::now_v7(), 10).await;
    let held = t.db.try_session_lock(JANITOR_LOCK).await.unwrap().expect("the lock is free");
    let v = json_out(&cli(&t, &["janitor", "run", "--json"], ""));
    assert_eq!(v["ran"], false);
    assert_eq!(v["message"], "another janitor is running");
    assert_eq!(expired_left(&mut db).await, 100);
    held.release().await;
    let v = json_out(&cli(&t, &["janitor", "run", "--json"], ""));
    assert_eq!((v["ran"].as_bool(), v["deleted"].as_i64()), (Some(true), Some(100)));
    assert_eq!(expired_left(&mut db).await, 0);
}

/// `serve` runs the janitor on its own every LCA_JANITOR_INTERVAL seconds.
#[tokio::test]
async fn the_server_runs_the_janitor() {
    let t = TestDb::new().await;
    let mut cmd = binary();
    t.database_env(&mut cmd).env("LCA_JANITOR_INTERVAL", "1").env("LCA_ADMIN_PASSWORD", "an admin password");
    let server = crate::support::Server::start(cmd).await;
    let mut db = t.owner().await;
    sqlx::raw_sql(
        "INSERT INTO browser_sessions (id_hash, data, expires_at) \
         SELECT sha256(('s' || g)::bytea), '{}', now() - interval '1 hour' FROM generate_series(1, 100) g",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&mut db, "SELECT count(*) FROM browser_sessions WHERE expires_at < now()").await > 0 {
        assert!(Instant::now() < deadline, "the server's janitor did not run");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(server);
}
