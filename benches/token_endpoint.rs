//! The token endpoint's refresh grant, and the JWKS and discovery documents, through the real
//! router and a real PostgreSQL (the embedded cluster under `target/bench-cluster`).
//!
//! Run: `cargo bench --bench token_endpoint`
//!
//! Each refresh iteration presents the refresh token the previous one returned, so every
//! request does the full work: client authentication, the atomic rotation, a role lookup,
//! signing two JWTs and writing the new refresh and access token rows.

#![allow(clippy::unwrap_used, reason = "a benchmark that cannot set up should stop")]

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use laventecare_auth::config::{Config, ConfigArgs};
use laventecare_auth::db::{self, ConnectTarget, Database, EmbeddedCluster};
use laventecare_auth::master_key::MasterKey;
use laventecare_auth::secrets::Secret;
use laventecare_auth::{AppState, clients, identity, tenancy};
use tower::ServiceExt;

struct Setup {
    app: axum::Router,
    basic: String,
    refresh: Secret,
    _cluster: EmbeddedCluster,
}

async fn setup() -> Setup {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Args {
        #[command(flatten)]
        config: ConfigArgs,
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-cluster");
    let cluster = EmbeddedCluster::start(&dir, None).await.unwrap();
    let name = format!("bench_{}", uuid::Uuid::now_v7().simple());
    cluster.ensure_database(&name).await.unwrap();
    let database = Database::connect_lazy(&ConnectTarget {
        owner: cluster.connect_options(&name),
        runtime: Some(cluster.runtime_connect_options(&name)),
        max_connections: 8,
    });
    database.migrate().await.unwrap();
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let args = Args::try_parse_from(["bench", &format!("--master-key={key}")]).unwrap();
    let config = Arc::new(Config::from_args(args.config).unwrap());
    let master_key = Arc::new(MasterKey::load(&config).unwrap());
    let state = AppState::new(config, database.clone(), master_key).await.unwrap();
    // The state's handle carries the audit key the appends below need.
    let database = state.db.clone();

    let tenant = tenancy::create_tenant(&database, "bench", "Bench", false).await.unwrap().tenant_id;
    let hasher = identity::PasswordHasher::new();
    let user = identity::create_user(&database, &hasher, "bench@example.com", "a long bench password").await.unwrap();
    tenancy::add_member(&database, "bench", "bench@example.com", laventecare_auth::vocabulary::Role::Editor)
        .await
        .unwrap();
    let client = clients::create_client(
        &database,
        clients::ClientRequest {
            tenant: "bench".into(),
            name: "Bench".into(),
            grants: vec!["authorization_code".into(), "refresh_token".into()],
            redirect_uris: vec!["https://bench.example.com/cb".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();

    // A token family as a code redemption would have left it.
    let refresh = Secret::generate();
    let family = uuid::Uuid::now_v7();
    let until = chrono::Utc::now() + chrono::Duration::days(1);
    let mut tx = database.tenant(tenant).await.unwrap();
    db::families::insert(
        &mut tx,
        &db::families::Family {
            family_id: family,
            client_id: client.client_id.clone(),
            user_id: Some(user.user_id),
            scope: "openid email offline_access".into(),
            auth_time: Some(chrono::Utc::now()),
            amr: vec!["pwd".into()],
            acr: Some("urn:laventecare:acr:pwd".into()),
            sid: Some("bench".into()),
            expires_at: until,
            revoked_at: None,
            resources: Vec::new(),
        },
    )
    .await
    .unwrap();
    db::refresh_tokens::insert(&mut tx, &refresh.hash(), family, until).await.unwrap();
    tx.commit().await.unwrap();

    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        client.client_id,
        client.client_secret.unwrap().expose()
    ));
    Setup { app: laventecare_auth::app(state), basic: format!("Basic {basic}"), refresh, _cluster: cluster }
}

async fn refresh_once(app: &axum::Router, basic: &str, token: &Secret) -> Secret {
    let body = format!("grant_type=refresh_token&refresh_token={}", token.expose());
    let req = Request::post("/token")
        .header("authorization", basic)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    Secret::from_presented(v["refresh_token"].as_str().unwrap().to_owned())
}

async fn get(app: &axum::Router, path: &str) {
    let res = app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), 200);
    axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let setup = rt.block_on(setup());
    let current = std::sync::Mutex::new(setup.refresh.clone());

    c.bench_function("token/refresh_grant", |b| {
        b.to_async(&rt).iter(|| async {
            let token = current.lock().unwrap().clone();
            let next = refresh_once(&setup.app, &setup.basic, &token).await;
            *current.lock().unwrap() = next;
        })
    });
    c.bench_function("jwks", |b| b.to_async(&rt).iter(|| get(&setup.app, "/jwks")));
    c.bench_function("discovery", |b| b.to_async(&rt).iter(|| get(&setup.app, "/.well-known/openid-configuration")));
}

criterion_group!(token_endpoint, benches);
criterion_main!(token_endpoint);
