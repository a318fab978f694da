//! Fleet management from the command line: `device list` shows a tenant's devices with their
//! last refresh (when, from where), `device revoke` ends one, audited; the device's next
//! refresh fails. Another tenant's device is out of reach.

use serde_json::Value;

use crate::device::{approved, device_client, poll, refresh};
use crate::flow::Provider;
use crate::support::{cli, json_out};

async fn paired(p: &Provider, device: &str) -> Value {
    let device_code = approved(p, device).await;
    let (status, tokens) = poll(p, device, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

#[tokio::test]
async fn device_list_shows_the_last_refresh_and_device_revoke_ends_the_device() {
    let p = Provider::start().await;
    let device = device_client(&p).await;
    let tokens = paired(&p, &device).await;

    let listed = json_out(&cli(&p.t, &["device", "list", "--tenant", "acme", "--json"], ""));
    let devices = listed["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{listed}");
    assert_eq!(devices[0]["client_id"], device.as_str());
    assert_eq!(devices[0]["email"], p.email.as_str());
    assert!(devices[0]["last_refresh_at"].is_null(), "not refreshed yet: {listed}");

    let (status, refreshed) = refresh(&p, &device, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{refreshed}");
    let listed = json_out(&cli(&p.t, &["device", "list", "--tenant", "acme", "--json"], ""));
    let seen = &listed["devices"][0];
    assert!(seen["last_refresh_at"].is_string(), "{listed}");
    assert_eq!(seen["last_refresh_ip"], "127.0.0.1");

    let family = seen["family_id"].as_str().unwrap().to_owned();
    let revoked = json_out(&cli(&p.t, &["device", "revoke", "--tenant", "acme", &family, "--json"], ""));
    assert_eq!(revoked["revoked"], true);
    let (status, after) = refresh(&p, &device, refreshed["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, after["error"].as_str()), (400, Some("invalid_grant")));
    let listed = json_out(&cli(&p.t, &["device", "list", "--tenant", "acme", "--json"], ""));
    assert_eq!(listed["devices"].as_array().unwrap().len(), 0);

    let mut owner = p.t.owner().await;
    let (actor_kind, target): (String, Option<String>) =
        sqlx::query_as("SELECT actor_kind, target_id FROM audit_events WHERE action = 'device.revoked'")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!((actor_kind.as_str(), target.as_deref()), ("operator", Some(family.as_str())));

    // A second revoke, or an id that is no device, is a clear error and a failing exit.
    let again = cli(&p.t, &["device", "revoke", "--tenant", "acme", &family, "--json"], "");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no such device"), "{again:?}");
    let bad = cli(&p.t, &["device", "revoke", "--tenant", "acme", "not-a-uuid"], "");
    assert!(!bad.status.success());
}

/// A device of `acme` cannot be listed or revoked through another tenant.
#[tokio::test]
async fn another_tenants_device_is_out_of_reach() {
    let p = Provider::start().await;
    let device = device_client(&p).await;
    let tokens = paired(&p, &device).await;
    p.t.tenant("globex").await;
    let listed = json_out(&cli(&p.t, &["device", "list", "--tenant", "acme", "--json"], ""));
    let family = listed["devices"][0]["family_id"].as_str().unwrap().to_owned();

    let elsewhere = json_out(&cli(&p.t, &["device", "list", "--tenant", "globex", "--json"], ""));
    assert_eq!(elsewhere["devices"].as_array().unwrap().len(), 0);
    let out = cli(&p.t, &["device", "revoke", "--tenant", "globex", &family, "--json"], "");
    assert!(!out.status.success());
    let (status, _) = refresh(&p, &device, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "the device still works");
    let unknown = cli(&p.t, &["device", "list", "--tenant", "no-such-tenant"], "");
    assert!(!unknown.status.success());
}
