//! Signing keys: created on first load, sealed at rest, published by RFC 7638 thumbprint,
//! rotated without breaking live tokens, and a verifier that lets no token choose its key.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use laventecare_auth::master_key::MasterKey;
use laventecare_auth::tokens::keys::PrivateKey;
use laventecare_auth::tokens::{self, Expected, KeyRotationPolicy, KeyStore, SigningAlg, TokenType, VerifyError, jwt};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::support::{TEST_MASTER_KEY, TestDb, test_config};

const ISSUER: &str = "https://id.example.com";

fn master_key(encoded: &str) -> Arc<MasterKey> {
    Arc::new(MasterKey::load(&test_config(&[("LCA_MASTER_KEY", encoded)])).unwrap())
}

fn test_master_key() -> Arc<MasterKey> {
    master_key(TEST_MASTER_KEY)
}

fn claims() -> Map<String, Value> {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": ISSUER, "sub": "user-1", "aud": "client-1", "iat": now, "exp": now + 600,
        "tid": "0190d7a4-0000-7000-8000-000000000000", "roles": ["admin", "editor", "viewer"],
    })
    .as_object()
    .unwrap()
    .clone()
}

fn jwks(store: &KeyStore) -> Vec<Value> {
    let doc: Value = serde_json::from_slice(&store.jwks()).unwrap();
    doc["keys"].as_array().unwrap().clone()
}

fn jwks_kids(store: &KeyStore) -> Vec<String> {
    jwks(store).iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

/// RFC 7638 §3, written out independently of the library.
fn rfc7638_thumbprint(jwk: &Value) -> String {
    let members: &[&str] = match jwk["kty"].as_str().unwrap() {
        "RSA" => &["e", "kty", "n"],
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        other => panic!("unexpected kty {other}"),
    };
    let body: Vec<String> = members.iter().map(|m| format!("\"{m}\":\"{}\"", jwk[*m].as_str().unwrap())).collect();
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{{{}}}", body.join(","))))
}

/// A compact JWS with any header, signed by `sign` over `header.payload`.
fn forge(header: Value, claims: &Map<String, Value>, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string())
    );
    let signature = URL_SAFE_NO_PAD.encode(sign(message.as_bytes()));
    format!("{message}.{signature}")
}

/// The rows of the table as the owner sees them: (kid, alg, active, private_enc, whole row).
async fn rows(t: &TestDb) -> Vec<(String, String, bool, Vec<u8>, String)> {
    let mut conn = t.owner().await;
    sqlx::query_as(
        "SELECT kid, alg, retired_at IS NULL, private_enc, row_to_json(k)::text \
         FROM signing_keys k ORDER BY created_at, kid",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

/// The first load of an empty database creates one active key per algorithm, whose private
/// part is stored only sealed under the master key.
#[tokio::test]
async fn first_load_creates_one_sealed_key_per_alg() {
    let t = TestDb::new().await;
    let master = test_master_key();
    let store = KeyStore::load(t.db.clone(), master.clone()).await.unwrap();
    let rows = rows(&t).await;
    let mut algs: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    let other_master = master_key(&STANDARD.encode([9u8; 32]));
    for (kid, alg, active, private_enc, row) in &rows {
        assert!(active, "{kid} active");
        let alg = SigningAlg::from_name(alg).unwrap();
        assert_eq!(store.active_kid(alg).as_deref(), Some(kid.as_str()));
        let key = PrivateKey::unseal(&master, alg, kid, private_enc).unwrap();
        let d = key.expose_jwk().parameter("d").unwrap().as_str().unwrap();
        assert!(!row.contains(d), "{alg}: d appears in the row");
        let d_raw = URL_SAFE_NO_PAD.decode(d).unwrap();
        assert!(!private_enc.windows(d_raw.len()).any(|w| w == d_raw), "{alg}: raw d appears in private_enc");
        assert!(PrivateKey::unseal(&other_master, alg, kid, private_enc).is_err());
        // The ciphertext is bound to its row: it does not open as another kid.
        let other_kid = &rows.iter().find(|r| &r.0 != kid).unwrap().0;
        assert!(PrivateKey::unseal(&master, alg, other_kid, private_enc).is_err());
    }
    // A second load reuses the keys.
    let again = KeyStore::load(t.db.clone(), master).await.unwrap();
    assert_eq!(self::rows(&t).await.len(), 3);
    assert_eq!(jwks_kids(&again), jwks_kids(&store));
}

/// A store whose master key is not the one the keys were sealed with refuses to start.
#[tokio::test]
async fn load_with_another_master_key_fails() {
    let t = TestDb::new().await;
    KeyStore::load(t.db.clone(), test_master_key()).await.unwrap();
    let err = KeyStore::load(t.db.clone(), master_key(&STANDARD.encode([9u8; 32]))).await.unwrap_err();
    assert!(format!("{err:#}").contains("master key"), "{err:#}");
}

/// The runtime role may read keys and may not delete them (nor add or retire them: see
/// `rls_login::runtime_may_not_write_tenants_or_keys`).
#[tokio::test]
async fn runtime_role_cannot_delete_keys() {
    let t = TestDb::new().await;
    KeyStore::load(t.db.clone(), test_master_key()).await.unwrap();
    let mut conn = t.runtime().await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM signing_keys").fetch_one(&mut conn).await.unwrap();
    assert_eq!(n, 3);
    for sql in ["DELETE FROM signing_keys", "TRUNCATE signing_keys"] {
        let err = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
        assert_eq!(laventecare_auth::db::sqlstate(&err).as_deref(), Some("42501"), "{sql}");
    }
}

/// Every published key's kid is the RFC 7638 thumbprint of the published JWK, which has kid,
/// alg and use=sig and no private member.
#[tokio::test]
async fn kid_is_the_thumbprint_of_the_published_jwk() {
    let t = TestDb::new().await;
    let store = KeyStore::load(t.db.clone(), test_master_key()).await.unwrap();
    let keys = jwks(&store);
    assert_eq!(keys.len(), 3);
    for jwk in &keys {
        assert_eq!(jwk["kid"].as_str().unwrap(), rfc7638_thumbprint(jwk));
        assert_eq!(jwk["use"], "sig");
        let alg = SigningAlg::from_name(jwk["alg"].as_str().unwrap()).unwrap();
        assert_eq!(store.active_kid(alg).as_deref(), jwk["kid"].as_str());
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(jwk.get(private).is_none(), "{alg}: {private} published");
        }
    }
    // The stored public_jwk is the published one.
    let mut conn = t.owner().await;
    let stored: Vec<Value> =
        sqlx::query_scalar("SELECT public_jwk FROM signing_keys").fetch_all(&mut conn).await.unwrap();
    for jwk in stored {
        assert!(keys.contains(&jwk), "{jwk} is published");
    }
}

/// Each algorithm signs a token with its active kid and the requested typ, and the token
/// verifies, here and in another instance's store, with its claims intact.
#[tokio::test]
async fn sign_and_verify_round_trip_for_each_alg() {
    let t = TestDb::new().await;
    let store = KeyStore::load(t.db.clone(), test_master_key()).await.unwrap();
    let other_instance = KeyStore::load(t.db.clone(), test_master_key()).await.unwrap();
    let claims = claims();
    for alg in SigningAlg::ALL {
        for typ in [TokenType::AccessToken, TokenType::IdToken] {
            let token = store.sign(alg, typ, &claims).unwrap();
            let header = jwt::decode_header(&token).unwrap();
            assert_eq!(header.alg, alg.as_str());
            assert_eq!(header.kid, store.active_kid(alg));
            assert_eq!(header.typ.as_deref(), Some(typ.header_value()));
            assert_eq!(store.verify(&token).unwrap(), claims);
            assert_eq!(other_instance.verify_typ(&token, typ).unwrap(), claims);
            let expected = Expected {
                issuer: ISSUER,
                audience: Some("client-1"),
                now: chrono::Utc::now(),
                leeway: Duration::from_secs(30),
            };
            assert_eq!(tokens::check_claims(&claims, &expected), Ok(()));
        }
        // An ID token does not pass for an access token, nor the other way round.
        let id_token = store.sign(alg, TokenType::IdToken, &claims).unwrap();
        assert_eq!(store.verify_typ(&id_token, TokenType::AccessToken), Err(VerifyError::WrongType));
        let access_token = store.sign(alg, TokenType::AccessToken, &claims).unwrap();
        assert_eq!(store.verify_typ(&access_token, TokenType::IdToken), Err(VerifyError::WrongType));
    }
}

/// After a rotation, tokens signed before it still verify and their kids stay in the JWKS,
/// while new tokens carry the new kids; the retired keys stay published for the policy's time.
#[tokio::test]
async fn rotation_keeps_old_tokens_valid() {
    let t = TestDb::new().await;
    let master = test_master_key();
    let store = KeyStore::load(t.db.clone(), master.clone()).await.unwrap();
    let claims = claims();
    let before: Vec<(SigningAlg, String, String)> = SigningAlg::ALL
        .into_iter()
        .map(|alg| {
            let token = store.sign(alg, TokenType::AccessToken, &claims).unwrap();
            (alg, store.active_kid(alg).unwrap(), token)
        })
        .collect();

    let report = tokens::rotate_signing_keys(&t.db, &master, &KeyRotationPolicy::default()).await.unwrap();
    let mut retired: Vec<_> = report.retired.iter().map(|r| r.kid.clone()).collect();
    let mut old: Vec<_> = before.iter().map(|b| b.1.clone()).collect();
    retired.sort();
    old.sort();
    assert_eq!(retired, old);
    assert_eq!(report.created.len(), 3);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["created"].as_array().unwrap().len(), 3);
    assert!(json["retired"][0]["publish_until"].is_string());

    store.reload().await.unwrap();
    let kids = jwks_kids(&store);
    assert_eq!(kids.len(), 6);
    for (alg, old_kid, token) in &before {
        assert_eq!(store.verify(token).unwrap(), claims, "{alg} token after rotation");
        assert!(kids.contains(old_kid));
        let new_kid = store.active_kid(*alg).unwrap();
        assert_ne!(&new_kid, old_kid);
        assert!(report.created.iter().any(|c| c.kid == new_kid && c.alg == *alg));
        let fresh = store.sign(*alg, TokenType::AccessToken, &claims).unwrap();
        assert_eq!(jwt::decode_header(&fresh).unwrap().kid, Some(new_kid));
    }
    // Active keys come first in the JWKS.
    for new in &report.created {
        assert!(kids[..3].contains(&new.kid));
    }
    // Published for 24 h (longest token) + 5 min (instances still on the old key).
    let mut conn = t.owner().await;
    let windows: Vec<bool> = sqlx::query_scalar(
        "SELECT publish_until - retired_at = interval '24 hours 5 minutes' \
         FROM signing_keys WHERE retired_at IS NOT NULL",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(windows, [true, true, true]);
}

/// A retired key whose publication time has passed leaves the JWKS and verifies nothing.
#[tokio::test]
async fn expired_retired_key_leaves_the_jwks() {
    let t = TestDb::new().await;
    let master = test_master_key();
    let store = KeyStore::load(t.db.clone(), master.clone()).await.unwrap();
    let old_token = store.sign(SigningAlg::Es256, TokenType::AccessToken, &claims()).unwrap();
    let old_kid = store.active_kid(SigningAlg::Es256).unwrap();
    tokens::rotate_signing_keys(&t.db, &master, &KeyRotationPolicy::default()).await.unwrap();
    store.reload().await.unwrap();
    assert!(jwks_kids(&store).contains(&old_kid));
    // A day passes.
    let mut conn = t.owner().await;
    sqlx::query(
        "UPDATE signing_keys SET retired_at = retired_at - interval '25 hours', \
         publish_until = publish_until - interval '25 hours' WHERE retired_at IS NOT NULL",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    store.reload().await.unwrap();
    let kids = jwks_kids(&store);
    assert_eq!(kids.len(), 3);
    assert!(!kids.contains(&old_kid));
    assert_eq!(store.verify(&old_token), Err(VerifyError::UnknownKey));

    // A policy of zero publishes retired keys no longer at all.
    let report = tokens::rotate_signing_keys(
        &t.db,
        &master,
        &KeyRotationPolicy { max_token_lifetime: Duration::ZERO, reload_lag: Duration::ZERO },
    )
    .await
    .unwrap();
    store.reload().await.unwrap();
    let kids = jwks_kids(&store);
    assert_eq!(kids.len(), 3);
    assert!(report.retired.iter().all(|r| !kids.contains(&r.kid)));
}

/// The verifier refuses alg none, HMAC with the public key, a tampered payload, an unknown
/// kid, another key under a known kid, an alg that is not the key's, and garbage.
#[tokio::test]
async fn verify_refuses_forgeries() {
    let t = TestDb::new().await;
    let store = KeyStore::load(t.db.clone(), test_master_key()).await.unwrap();
    let claims = claims();
    let rs_kid = store.active_kid(SigningAlg::Rs256).unwrap();
    let es_kid = store.active_kid(SigningAlg::Es256).unwrap();

    // alg: none, with and without a real kid (RFC 8725 §2.1).
    for header in [json!({"alg": "none", "kid": rs_kid, "typ": "at+jwt"}), json!({"alg": "none"})] {
        let token = forge(header, &claims, |_| Vec::new());
        assert_eq!(store.verify(&token), Err(VerifyError::UnsupportedAlgorithm));
    }

    // HS256 keyed with the published RSA key (the classic key-confusion attack).
    let rsa_public = jwks(&store).into_iter().find(|k| k["kid"] == rs_kid.as_str()).unwrap();
    let hmac = josekit::jws::HS256.signer_from_bytes(rsa_public.to_string().as_bytes()).unwrap();
    let token =
        forge(json!({"alg": "HS256", "kid": rs_kid}), &claims, |m| josekit::jws::JwsSigner::sign(&hmac, m).unwrap());
    assert_eq!(store.verify(&token), Err(VerifyError::UnsupportedAlgorithm));

    // A tampered payload.
    let token = store.sign(SigningAlg::Es256, TokenType::AccessToken, &claims).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut raised = claims.clone();
    raised.insert("roles".into(), json!(["admin", "editor", "viewer", "platform"]));
    let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(Value::Object(raised).to_string()), parts[2]);
    assert_eq!(store.verify(&tampered), Err(VerifyError::BadSignature));

    // A key of our own making: unknown under its own kid, wrong under ours.
    let stranger = PrivateKey::generate(SigningAlg::Es256).unwrap();
    let signer = josekit::jws::ES256.signer_from_jwk(stranger.expose_jwk()).unwrap();
    let sign = |m: &[u8]| josekit::jws::JwsSigner::sign(&signer, m).unwrap();
    let token = forge(json!({"alg": "ES256", "kid": stranger.kid()}), &claims, sign);
    assert_eq!(store.verify(&token), Err(VerifyError::UnknownKey));
    let token = forge(json!({"alg": "ES256"}), &claims, sign);
    assert_eq!(store.verify(&token), Err(VerifyError::UnknownKey));
    let token = forge(json!({"alg": "ES256", "kid": es_kid}), &claims, sign);
    assert_eq!(store.verify(&token), Err(VerifyError::BadSignature));

    // An alg that is not the key's: ES256 claimed under the RSA key's kid.
    let token = forge(json!({"alg": "ES256", "kid": rs_kid}), &claims, sign);
    assert_eq!(store.verify(&token), Err(VerifyError::AlgorithmMismatch));

    // A valid token whose header is changed to another alg no longer verifies.
    let es_token = store.sign(SigningAlg::Es256, TokenType::AccessToken, &claims).unwrap();
    let mut pieces = es_token.splitn(2, '.');
    let (_, rest) = (pieces.next().unwrap(), pieces.next().unwrap());
    let relabelled = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(json!({"alg": "EdDSA", "kid": es_kid}).to_string()));
    assert_eq!(store.verify(&relabelled), Err(VerifyError::AlgorithmMismatch));

    for garbage in ["", "abc", "a.b.c", "....", &"x".repeat(20_000)] {
        assert_eq!(store.verify(garbage), Err(VerifyError::Malformed), "{garbage:.10}");
    }
}

/// Several servers starting at once on an empty database end with exactly one active key per
/// algorithm, and all of them sign with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_loads_create_one_key_per_alg() {
    const STARTS: i64 = 4;
    let t = TestDb::new().await;
    // Hold back every insert until all starts have seen the empty table and generated their
    // keys, so they really do race for the first keys.
    let mut blocker = t.owner().await;
    let mut gate = sqlx::Connection::begin(&mut blocker).await.unwrap();
    sqlx::query("LOCK TABLE signing_keys IN EXCLUSIVE MODE").execute(&mut *gate).await.unwrap();
    let loads: Vec<_> = (0..STARTS).map(|_| tokio::spawn(KeyStore::load(t.db.clone(), test_master_key()))).collect();
    let mut watcher = t.owner().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting == STARTS {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{waiting} starts waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gate.rollback().await.unwrap();
    let mut stores = Vec::new();
    for load in loads {
        stores.push(load.await.unwrap().unwrap());
    }
    let rows = rows(&t).await;
    assert_eq!(rows.len(), 3, "no extra keys were stored");
    for alg in SigningAlg::ALL {
        let active: Vec<_> = rows.iter().filter(|r| r.1 == alg.as_str() && r.2).collect();
        assert_eq!(active.len(), 1, "{alg}");
        for store in &stores {
            assert_eq!(store.active_kid(alg).as_deref(), Some(active[0].0.as_str()));
        }
    }
}

/// A rotation by another process reaches a running store through the reloader, which stops
/// on shutdown.
#[tokio::test]
async fn reloader_picks_up_a_rotation() {
    let t = TestDb::new().await;
    let master = test_master_key();
    let store = KeyStore::load(t.db.clone(), master.clone()).await.unwrap();
    let old = store.active_kid(SigningAlg::Rs256).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokens::spawn_reloader(store.clone(), Duration::from_millis(50), async {
        let _ = stopped.await;
    });
    tokens::rotate_signing_keys(&t.db, &master, &KeyRotationPolicy::default()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.active_kid(SigningAlg::Rs256).as_deref() == Some(old.as_str()) {
        assert!(tokio::time::Instant::now() < deadline, "no reload");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}

/// An instance that has not reloaded yet still verifies a token signed with a key another
/// instance just rotated in (verify_fresh reloads on an unknown kid).
#[tokio::test]
async fn verify_fresh_reloads_on_unknown_kid() {
    let t = TestDb::new().await;
    let master = test_master_key();
    let lagging = KeyStore::load(t.db.clone(), master.clone()).await.unwrap();
    tokens::rotate_signing_keys(&t.db, &master, &KeyRotationPolicy::default()).await.unwrap();
    let current = KeyStore::load(t.db.clone(), master).await.unwrap();
    let token = current.sign(SigningAlg::EdDsa, TokenType::AccessToken, &claims()).unwrap();
    assert_eq!(lagging.verify(&token), Err(VerifyError::UnknownKey));
    assert!(lagging.verify_fresh(&token, TokenType::AccessToken).await.is_ok());
    assert_eq!(lagging.active_kid(SigningAlg::EdDsa), current.active_kid(SigningAlg::EdDsa));
}
