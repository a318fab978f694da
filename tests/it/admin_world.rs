//! The world the admin API's suites attack (`admin_isolation`, `admin_roles`, `admin_rls`): two
//! tenants A (`acme`) and B (`globex`) and the platform tenant, each with service accounts of
//! every role, members, a confidential client, a device family and a session family made by the
//! real device and code flows, and the audit rows all that wrote. The operations come from the
//! OpenAPI document, and the request bodies from ONE table ([`body`]) keyed by operationId, so
//! a route added to the API without an entry here fails every suite that sends it.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use laventecare_auth::db::audit::Actor;
use laventecare_auth::tenancy::members::{Unknown, add_member_in};
use laventecare_auth::vocabulary::Role;
use laventecare_auth::{clients, identity, tenancy};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::flow::{Browser, PASSWORD, Provider, REDIRECT, Step, claims, hidden, pkce};

/// One operation of the OpenAPI document.
#[derive(Debug, Clone)]
pub struct Op {
    pub method: reqwest::Method,
    /// The path template, `/api/v1/members/{user_id}`.
    pub path: String,
    pub operation_id: String,
    /// `x-permission`, if the operation names one.
    pub permission: Option<String>,
    /// The names of its path parameters, in order.
    pub path_params: Vec<String>,
    /// The names of its query parameters.
    pub query_params: Vec<String>,
    pub has_body: bool,
}

impl Op {
    /// `GET /api/v1/members`, for messages.
    pub fn name(&self) -> String {
        format!("{} {} ({})", self.method, self.path, self.operation_id)
    }

    /// A list: a GET without path parameters.
    pub fn is_list(&self) -> bool {
        self.method == reqwest::Method::GET && self.path_params.is_empty()
    }

    pub fn is_platform(&self) -> bool {
        self.path.starts_with("/api/v1/platform")
    }

    /// The path with each parameter replaced by `ids`' value for it; `Err` names a parameter
    /// the world has no value for.
    pub fn url_path(&self, ids: &Ids) -> Result<String, String> {
        let mut path = self.path.clone();
        for name in &self.path_params {
            let value = ids.param(name, &self.path).ok_or_else(|| {
                format!("{}: the admin suites have no value for the path parameter {{{name}}}", self.name())
            })?;
            path = path.replace(&format!("{{{name}}}"), &value);
        }
        Ok(path)
    }
}

/// Every operation of the admin API's OpenAPI document, as the code generates it.
pub fn operations() -> Vec<Op> {
    let doc = serde_json::to_value(laventecare_auth::api::openapi()).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<reqwest::Method>() else { continue };
            let params_in = |place: &str| -> Vec<String> {
                op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter().filter(|p| p["in"] == place).map(|p| p["name"].as_str().unwrap().to_owned()).collect()
                    })
                    .unwrap_or_default()
            };
            let (path_params, query_params) = (params_in("path"), params_in("query"));
            ops.push(Op {
                method,
                path: path.clone(),
                operation_id: op["operationId"].as_str().unwrap_or_else(|| panic!("{path}: no operationId")).to_owned(),
                permission: op["x-permission"].as_str().map(str::to_owned),
                path_params,
                query_params,
                has_body: op.get("requestBody").is_some(),
            });
        }
    }
    assert!(ops.len() >= 8, "the reader found too few operations ({}) to be reading the document", ops.len());
    ops
}

/// The ids a request is built from, by OpenAPI parameter name: one tenant's objects, or the
/// missing ones of the same shape.
#[derive(Debug, Clone)]
pub struct Ids {
    pub user_id: Uuid,
    pub client_id: String,
    /// The family of the code grant (`/sessions/{family_id}`).
    pub session_family: Uuid,
    /// The family of the device grant (`/devices/{family_id}`).
    pub device_family: Uuid,
    pub slug: String,
    /// An email to add as a member.
    pub email: String,
    /// An open invitation (`/invitations/{invitation_id}`).
    pub invitation: Uuid,
    /// A registered API (`/resource-servers/{resource_server_id}`).
    pub resource_server: Uuid,
}

impl Ids {
    /// The value of path parameter `name` in `path`.
    pub fn param(&self, name: &str, path: &str) -> Option<String> {
        Some(match name {
            "user_id" => self.user_id.to_string(),
            "client_id" => self.client_id.clone(),
            "family_id" if path.contains("/devices/") => self.device_family.to_string(),
            "family_id" => self.session_family.to_string(),
            "slug" => self.slug.clone(),
            "invitation_id" => self.invitation.to_string(),
            "resource_server_id" => self.resource_server.to_string(),
            _ => return None,
        })
    }

    /// Ids of nothing: a random uuid, a random client id of the generated shape (32 hex), a
    /// slug no tenant has, an email nobody has.
    pub fn missing() -> Self {
        let tag = &Uuid::now_v7().simple().to_string()[20..];
        Self {
            user_id: Uuid::now_v7(),
            client_id: laventecare_auth::secrets::random_id(),
            session_family: Uuid::now_v7(),
            device_family: Uuid::now_v7(),
            slug: format!("nobody-{tag}"),
            email: format!("nobody-{tag}@example.org"),
            invitation: Uuid::now_v7(),
            resource_server: Uuid::now_v7(),
        }
    }
}

/// THE request bodies, by operationId: one entry per operation with a `requestBody`. Each
/// is valid for the ids it is given (a fresh object of the caller's tenant in `admin_roles`,
/// B's or a missing one in `admin_isolation`), so a refusal is about the ids, never the JSON.
pub fn body(operation_id: &str, ids: &Ids) -> Option<Value> {
    Some(match operation_id {
        "members_add" | "invitations_create" => json!({ "email": ids.email, "role": "viewer" }),
        "members_update" => json!({ "role": "editor" }),
        "members_profile_update" => json!({ "name": "Probe Name", "locale": "en-GB" }),
        "clients_create" => {
            json!({ "name": "Probe", "grant_types": ["authorization_code"], "redirect_uris": [REDIRECT] })
        }
        "clients_update" => json!({ "name": "Renamed", "redirect_uris": [REDIRECT] }),
        "settings_update" => json!({ "require_mfa": false }),
        // A new identifier each time: registering one twice is a 409 of its own.
        "resource_servers_create" => json!({
            "identifier": format!("https://probe-{}.example/", Uuid::now_v7().simple()),
            "name": "Probe API",
            "scopes": ["probe:read"],
        }),
        "resource_servers_update" => json!({ "name": "Renamed API", "scopes": ["probe:read", "probe:write"] }),
        "platform_tenants_create" => json!({ "slug": ids.slug, "name": "New tenant", "admin_email": ids.email }),
        "platform_tenants_appoint_admin" => json!({ "email": ids.email }),
        _ => return None,
    })
}

/// An answer of the API.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The body as JSON (`Value::Null` when empty; JSON lines become an array).
    pub json: Value,
    pub text: String,
    pub elapsed: Duration,
}

/// Sends `op` with `ids` and `token` (the body from [`body`]); `Err` when the route cannot be
/// built (unknown parameter, no body entry).
pub async fn send(p: &Provider, token: &str, op: &Op, ids: &Ids) -> Result<Answer, String> {
    send_with(p, token, op, ids, &[]).await
}

/// [`send`] with these query parameters.
pub async fn send_with(
    p: &Provider,
    token: &str,
    op: &Op,
    ids: &Ids,
    query: &[(&str, String)],
) -> Result<Answer, String> {
    let path = op.url_path(ids)?;
    let mut req = p.http().request(op.method.clone(), p.url(&path)).bearer_auth(token).query(query);
    if op.has_body {
        let b = body(&op.operation_id, ids)
            .ok_or_else(|| format!("{}: no entry in admin_world::body for this operation", op.name()))?;
        req = req.json(&b);
    }
    let started = Instant::now();
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let elapsed = started.elapsed();
    Ok(Answer { status, json: parse(&text), text, elapsed })
}

/// A JSON body, JSON lines as an array, nothing as null.
fn parse(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or_else(|_| {
        Value::Array(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap_or(Value::String(l.into())))
                .collect(),
        )
    })
}

/// The shape of a JSON value: its keys (recursively; arrays by their first element) with every
/// value but the `error` code blanked.
pub fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let s = if k == "error" { v.clone() } else { shape(v) };
                    (k.clone(), s)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::Null => Value::Null,
        _ => Value::String("·".into()),
    }
}

/// A tenant of the world and its objects.
pub struct Org {
    pub slug: String,
    pub id: Uuid,
    /// Access tokens (scope `admin`) of service accounts with each role.
    pub admin: String,
    pub editor: String,
    pub viewer: String,
    /// Members: (user id, email, role); the first is the one who signs in through the flows.
    pub members: Vec<(Uuid, String, Role)>,
    /// The confidential client of the code grant, and its secret.
    pub web_client: String,
    pub web_secret: String,
    /// The public client of the device grant.
    pub device_client: String,
    /// The member who signed in (cookies kept), for more flows.
    pub browser: Browser,
    pub session_family: Uuid,
    pub device_family: Uuid,
    /// An open invitation, and the address it is for.
    pub invitation: (Uuid, String),
    /// A registered API that allows the web client.
    pub resource_server: Uuid,
}

impl Org {
    /// The ids of this tenant's objects (`email`: a member of it no operation is sent with as
    /// `user_id`, for `members_add`).
    pub fn ids(&self) -> Ids {
        Ids {
            user_id: self.members[0].0,
            client_id: self.web_client.clone(),
            session_family: self.session_family,
            device_family: self.device_family,
            slug: self.slug.clone(),
            email: self.members.last().unwrap().1.clone(),
            invitation: self.invitation.0,
            resource_server: self.resource_server,
        }
    }

    /// Every id and email of this tenant an answer to another tenant must not hold, but the
    /// members whose email the request itself named (adding B's member to A echoes them).
    pub fn secrets_of(&self, sent: &str) -> Vec<String> {
        let mut out = vec![self.id.to_string(), self.web_client.clone(), self.device_client.clone()];
        out.push(self.session_family.to_string());
        out.push(self.device_family.to_string());
        out.push(self.invitation.0.to_string());
        out.push(self.resource_server.to_string());
        if !sent.contains(self.invitation.1.as_str()) {
            out.push(self.invitation.1.clone());
        }
        for (id, email, _) in self.members.iter().filter(|(_, email, _)| !sent.contains(email.as_str())) {
            out.push(id.to_string());
            out.push(email.clone());
        }
        out
    }

    /// A fresh member (no password) with `role`, in this tenant only.
    pub async fn fresh_member(&self, p: &Provider, role: Role) -> (Uuid, String) {
        let email = format!("m-{}@{}.example", Uuid::now_v7().simple(), self.slug);
        let added = add_member_in(&p.t.db, &Actor::system(), self.id, &email, role, Unknown::Invite).await.unwrap();
        (added.user_id, email)
    }

    /// A fresh open invitation of this tenant.
    pub async fn fresh_invitation(&self, p: &Provider) -> Uuid {
        let email = format!("i-{}@{}.example", Uuid::now_v7().simple(), self.slug);
        let config = &p.state.config;
        tenancy::invitations::invite(&p.t.db, config, &Actor::system(), self.id, &email, Role::Viewer).await.unwrap().id
    }

    /// A fresh registered API of this tenant.
    pub async fn fresh_resource_server(&self, p: &Provider) -> Uuid {
        let req = clients::resources::ResourceRequest {
            identifier: format!("https://fresh-{}.{}.example/", Uuid::now_v7().simple(), self.slug),
            name: "Fresh API".into(),
            ..Default::default()
        };
        clients::resources::register(&p.t.db, &Actor::system(), self.id, req).await.unwrap().id
    }

    /// A fresh confidential client of this tenant.
    pub async fn fresh_client(&self, p: &Provider) -> String {
        clients::create_client(
            &p.t.db,
            clients::ClientRequest {
                tenant: self.slug.clone(),
                name: "Fresh".into(),
                grants: vec!["authorization_code".into(), "refresh_token".into()],
                redirect_uris: vec![REDIRECT.into()],
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .client_id
    }

    /// A fresh token family of the code grant: the signed-in member authorizes again.
    pub async fn fresh_session_family(&self, p: &Provider) -> Uuid {
        let email = self.members[0].1.clone();
        code_family(p, &self.browser, &self.web_client, &self.web_secret, &email).await
    }

    /// A fresh token family of the device grant, approved by the signed-in member.
    pub async fn fresh_device_family(&self, p: &Provider) -> Uuid {
        let email = self.members[0].1.clone();
        device_family(p, &self.browser, &self.device_client, &email).await
    }
}

/// The world: A, B and the platform, each an [`Org`].
pub struct World {
    pub p: Provider,
    pub a: Org,
    pub b: Org,
    pub platform: Org,
}

impl World {
    pub async fn build() -> Self {
        Self::build_on(Provider::start().await).await
    }

    /// The world on a provider started by the caller (`admin_rls` starts one whose handlers do
    /// not check the table).
    pub async fn build_on(p: Provider) -> Self {
        tenancy::create_tenant(&p.t.db, "globex", "Globex", false).await.unwrap();
        tenancy::create_tenant(&p.t.db, tenancy::PLATFORM_SLUG, "Platform", true).await.unwrap();
        let a = org(&p, "acme").await;
        let b = org(&p, "globex").await;
        let platform = org(&p, tenancy::PLATFORM_SLUG).await;
        Self { p, a, b, platform }
    }

    /// The token of `role` in A, or of the platform's admin.
    pub fn token(&self, role: Role, platform_admin: bool) -> &str {
        match (role, platform_admin) {
            (_, true) => &self.platform.admin,
            (Role::Admin, false) => &self.a.admin,
            (Role::Editor, false) => &self.a.editor,
            (Role::Viewer, false) => &self.a.viewer,
        }
    }
}

/// One tenant's objects, made through the real flows.
async fn org(p: &Provider, slug: &str) -> Org {
    let id = tenancy::find_tenant(&p.t.db, slug).await.unwrap().id;
    let admin = crate::api::service_token(p, slug, Role::Admin).await;
    let editor = crate::api::service_token(p, slug, Role::Editor).await;
    let viewer = crate::api::service_token(p, slug, Role::Viewer).await;
    // The one who signs in has a password; the others are invited (no bcrypt to wait for).
    let flow_email = format!("viewer@{slug}.example");
    identity::create_user(&p.t.db, &identity::PasswordHasher::new(), &flow_email, PASSWORD).await.unwrap();
    let flow_user = tenancy::add_member(&p.t.db, slug, &flow_email, Role::Viewer).await.unwrap().user_id;
    let mut members = vec![(flow_user, flow_email.clone(), Role::Viewer)];
    for (name, role) in [("admin", Role::Admin), ("editor", Role::Editor), ("spare", Role::Viewer)] {
        let email = format!("{name}@{slug}.example");
        let added = add_member_in(&p.t.db, &Actor::system(), id, &email, role, Unknown::Invite).await.unwrap();
        members.push((added.user_id, email, role));
    }
    let web = clients::create_client(
        &p.t.db,
        clients::ClientRequest {
            tenant: slug.into(),
            name: format!("{slug} web"),
            grants: vec!["authorization_code".into(), "refresh_token".into()],
            redirect_uris: vec![REDIRECT.into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let device_client = clients::create_client(
        &p.t.db,
        clients::ClientRequest {
            tenant: slug.into(),
            name: format!("{slug} thermostat"),
            grants: vec!["device_code".into(), "refresh_token".into()],
            public: true,
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .client_id;
    let web_secret = web.client_secret.unwrap().expose().to_owned();
    let browser = Browser::new(p);
    let session_family = code_family(p, &browser, &web.client_id, &web_secret, &flow_email).await;
    let device_family = device_family(p, &browser, &device_client, &flow_email).await;
    let invited = format!("invited@{slug}.example");
    let invitation =
        tenancy::invitations::invite(&p.t.db, &p.state.config, &Actor::system(), id, &invited, Role::Editor)
            .await
            .unwrap();
    let api = clients::resources::ResourceRequest {
        identifier: format!("https://api.{slug}.example/"),
        name: format!("{slug} API"),
        scopes: vec!["things:read".into()],
        client_ids: vec![web.client_id.clone()],
    };
    let resource_server = clients::resources::register(&p.t.db, &Actor::system(), id, api).await.unwrap().id;
    Org {
        slug: slug.into(),
        id,
        admin,
        editor,
        viewer,
        members,
        web_client: web.client_id,
        web_secret,
        device_client,
        browser,
        session_family,
        device_family,
        invitation: (invitation.id, invited),
        resource_server,
    }
}

/// The family of an access token (by its `jti`).
async fn family_of(p: &Provider, access_token: &str) -> Uuid {
    let jti: Uuid = claims(access_token)["jti"].as_str().unwrap().parse().unwrap();
    let mut conn = p.t.owner().await;
    sqlx::query_scalar("SELECT family_id FROM access_tokens WHERE jti = $1")
        .bind(jti)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// The code grant through `client`: sign in (once per browser), consent, redeem.
pub async fn code_family(p: &Provider, b: &Browser, client: &str, secret: &str, email: &str) -> Uuid {
    let (verifier, challenge) = pkce();
    let mut url = url::Url::parse(&p.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email offline_access"),
        ("state", "st"),
        ("nonce", "n"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let step = b.sign_in_through(url.as_str(), email, PASSWORD).await;
    let code = step.param("code").unwrap();
    let res = p
        .http()
        .post(p.url("/token"))
        .basic_auth(client, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    family_of(p, tokens["access_token"].as_str().unwrap()).await
}

/// The device grant through `client`: codes, approval by the signed-in member, tokens.
async fn device_family(p: &Provider, b: &Browser, client: &str, email: &str) -> Uuid {
    let (status, codes) = crate::device::request_codes(p, client, "openid offline_access").await;
    assert_eq!(status, 200, "{codes}");
    let mut step = b.open(codes["verification_uri_complete"].as_str().unwrap()).await;
    if step.html().contains("action=\"/login\"") {
        step = b.login(&step, email, PASSWORD).await;
    }
    let html = step.html().to_owned();
    let confirm: Step =
        b.post("/device", &[("csrf", &hidden(&html, "csrf")), ("user_code", &hidden(&html, "user_code"))]).await;
    let done = crate::device::decide(b, &confirm, true).await;
    assert_eq!(done.status(), 200, "{}", done.html());
    let (status, tokens) = crate::device::poll(p, client, codes["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{tokens}");
    family_of(p, tokens["access_token"].as_str().unwrap()).await
}
