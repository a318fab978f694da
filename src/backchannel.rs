//! Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0; ARCHITECTURE.md,
//! "Back-channel logout"). What ends a user's sessions writes notices in its own transaction
//! (`db::logout_notices`); this worker, beside the janitor in `serve`, claims the due ones,
//! signs a logout token for each and POSTs it to the client's `backchannel_logout_uri`, so the
//! user's request never waits for a relying party. A failed delivery is tried again after 5
//! s, 30 s, 2 min, 10 min, 1 h and 6 h, then given up and audited.
//!
//! Outbound requests are the server reaching into the network at a URI a tenant chose, so
//! they go through `outbound`: only to public addresses unless `LCA_BACKCHANNEL_ALLOW_PRIVATE`
//! says otherwise, literal addresses checked before sending, no redirects followed.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, json};
use uuid::Uuid;

use crate::db::logout_notices::{self, Notice};
use crate::db::{self, audit};
use crate::outbound::{is_public, literal_ip};
use crate::state::AppState;
use crate::tokens::{SigningAlg, TokenType};

/// The event a logout token carries (§2.4).
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How often the worker looks for due notices.
pub const POLL: Duration = Duration::from_secs(1);
/// How long a relying party has to answer one delivery.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a claimed notice is the claiming worker's (longer than any delivery takes).
const LEASE_SECS: i64 = 60;
/// Notices claimed per tenant per round.
const BATCH: i64 = 50;
/// The wait before each retry; past the last, the notice is given up.
const BACKOFF_SECS: [i64; 6] = [5, 30, 120, 600, 3600, 6 * 3600];
/// How long a logout token is valid (§2.4 asks for a short `exp`).
const TOKEN_SECS: i64 = 120;

/// Starts the worker; it stops when `stop` completes.
pub fn spawn(
    state: AppState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = client(state.config.backchannel_allow_private);
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = tick.tick() => {
                    if let Err(e) = deliver_due(&state, &http).await {
                        tracing::warn!(error = %e, "back-channel logout round failed");
                    }
                }
            }
        }
    })
}

/// The HTTP client of deliveries: no redirects, a short timeout, public addresses only
/// (`outbound::client`).
pub fn client(allow_private: bool) -> reqwest::Client {
    crate::outbound::client(allow_private, TIMEOUT, "LaventeCare-Auth back-channel logout")
}

/// One round: every tenant with notices due, each notice claimed, delivered and recorded.
/// Returns how many were delivered.
pub async fn deliver_due(state: &AppState, http: &reqwest::Client) -> anyhow::Result<u64> {
    let mut tx = state.db.unscoped().await?;
    let tenants = logout_notices::due_tenants(&mut tx).await?;
    tx.commit().await?;
    let mut delivered = 0;
    for tenant in tenants {
        let mut tx = state.db.tenant(tenant).await?;
        let notices = logout_notices::claim(&mut tx, BATCH, LEASE_SECS).await?;
        tx.commit().await?;
        let mut posts = tokio::task::JoinSet::new();
        for notice in notices {
            let (state, http) = (state.clone(), http.clone());
            posts.spawn(async move {
                let outcome = deliver(&state, &http, &notice).await;
                (notice, outcome)
            });
        }
        while let Some(joined) = posts.join_next().await {
            let Ok((notice, outcome)) = joined else { continue };
            let mut tx = state.db.tenant(tenant).await?;
            match outcome {
                Ok(()) => {
                    logout_notices::delivered(&mut tx, notice.id).await?;
                    delivered += 1;
                }
                Err(why) => record_failure(&mut tx, &notice, &why).await?,
            }
            tx.commit().await?;
        }
    }
    Ok(delivered)
}

/// A failed attempt: retried later, or given up and audited after the last.
async fn record_failure(tx: &mut db::Tx, notice: &Notice, why: &str) -> Result<(), sqlx::Error> {
    let attempt = usize::try_from(notice.attempts).unwrap_or(usize::MAX);
    let next = BACKOFF_SECS.get(attempt).map(|secs| Utc::now() + chrono::Duration::seconds(*secs));
    logout_notices::failed(tx, notice.id, why, next).await?;
    if next.is_none() {
        let event = audit::Event {
            actor_kind: "system",
            action: "backchannel_logout.abandoned",
            outcome: "failure",
            target_kind: Some("client"),
            target_id: Some(notice.client_id.clone()),
            details: json!({ "user_id": notice.user_id, "sid": notice.sid, "attempts": notice.attempts + 1, "error": why }),
            ..Default::default()
        };
        audit::append(tx, &event).await?;
    }
    Ok(())
}

/// Signs and POSTs one logout token (§2.5): `logout_token` in a form; any 2xx is delivered.
async fn deliver(state: &AppState, http: &reqwest::Client, notice: &Notice) -> Result<(), String> {
    let url = reqwest::Url::parse(&notice.uri).map_err(|_| "the URI does not parse".to_owned())?;
    if let Some(ip) = literal_ip(&url)
        && !(state.config.backchannel_allow_private || is_public(ip))
    {
        return Err("the URI names an address that is not public".into());
    }
    let token = logout_token(state, notice).map_err(|e| format!("signing failed: {e}"))?;
    let res =
        http.post(url).form(&[("logout_token", token)]).send().await.map_err(|e| crate::outbound::describe(&e))?;
    if res.status().is_success() { Ok(()) } else { Err(format!("answered {}", res.status().as_u16())) }
}

/// The logout token of a notice (§2.4): `iss`, `aud` (the client), `iat`, `exp`, `jti`,
/// `sub`, `sid` when the session is known, and the event; never a `nonce`. Signed with the
/// client's algorithm, `typ: logout+jwt`.
pub fn logout_token(state: &AppState, notice: &Notice) -> anyhow::Result<String> {
    let now = Utc::now().timestamp();
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(state.config.issuer));
    claims.insert("aud".into(), json!(notice.client_id));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + TOKEN_SECS));
    claims.insert("jti".into(), json!(Uuid::now_v7().to_string()));
    claims.insert("sub".into(), json!(notice.user_id.to_string()));
    if let Some(sid) = &notice.sid {
        claims.insert("sid".into(), json!(sid));
    }
    claims.insert("events".into(), json!({ EVENT: {} }));
    let alg = notice.signing_alg.as_deref().and_then(SigningAlg::from_name).unwrap_or(SigningAlg::Rs256);
    state.keys.sign(alg, TokenType::LogoutToken, &claims)
}
