//! Must-show 1 of the admin surface: the cross-tenant attack, generated from the OpenAPI
//! document. For every operation an admin of A sends B's ids and missing ids of the same shape;
//! the answers are the same (status, body shape, error code, no step in the medians), lists
//! hold and count none of B's objects, and B is unchanged afterwards (ARCHITECTURE.md, "Admin
//! surface"). An operation the suite cannot build — an unknown path parameter, no request body
//! in `admin_world::body`, a list without a check in [`LISTS`] — fails it, naming the route.

use std::time::Duration;

use laventecare_auth::admin::Action;
use serde_json::Value;
use uuid::Uuid;

use crate::admin_world::{Answer, Ids, Op, Org, World, operations, send, send_with, shape};
use crate::flow::Provider;

/// How many requests of each kind (B's ids, missing ids) each route gets for the medians.
const ROUNDS: usize = 15;

/// What a list (a GET without path parameters) must answer the caller: SQL (`$1` = the
/// caller's tenant id) reads the truth from the owner's connection, as JSON.
enum List {
    /// A paged list (`items`, `next_cursor`): all pages hold this many items.
    Items(&'static str),
    /// JSON lines: this many lines.
    Lines(&'static str),
    /// One object: its field has this value.
    Field(&'static str, &'static str),
    /// A platform list: a 404 to anyone but a platform admin.
    PlatformOnly,
}

const AUDIT_ROWS: &str = "SELECT to_jsonb(count(*)) FROM audit_events WHERE tenant_id = $1";

/// Every list of the document and its check; a list missing here fails the suite.
const LISTS: &[(&str, List)] = &[
    ("members_list", List::Items("SELECT to_jsonb(count(*)) FROM memberships WHERE tenant_id = $1")),
    ("clients_list", List::Items("SELECT to_jsonb(count(*)) FROM clients WHERE tenant_id = $1")),
    (
        "invitations_list",
        List::Items(
            "SELECT to_jsonb(count(*)) FROM invitations WHERE tenant_id = $1 AND accepted_at IS NULL \
             AND revoked_at IS NULL AND expires_at > now()",
        ),
    ),
    (
        "devices_list",
        List::Items(
            "SELECT to_jsonb(count(*)) FROM token_families WHERE tenant_id = $1 AND revoked_at IS NULL \
             AND expires_at > now() AND origin_grant = 'device_code'",
        ),
    ),
    (
        "sessions_list",
        List::Items(
            "SELECT to_jsonb(count(*)) FROM token_families WHERE tenant_id = $1 AND revoked_at IS NULL \
             AND expires_at > now() AND origin_grant IS DISTINCT FROM 'device_code'",
        ),
    ),
    ("resource_servers_list", List::Items("SELECT to_jsonb(count(*)) FROM resource_servers WHERE tenant_id = $1")),
    ("audit_list", List::Items(AUDIT_ROWS)),
    ("audit_export", List::Lines(AUDIT_ROWS)),
    ("audit_verify", List::Field("rows", AUDIT_ROWS)),
    ("settings_get", List::Field("require_mfa", "SELECT to_jsonb(require_mfa) FROM tenants WHERE id = $1")),
    ("platform_tenants_list", List::PlatformOnly),
];

/// Query parameters of lists that take an id: each is sent with B's user id and a missing
/// one. The others are known not to name anything of a tenant; any other fails the suite.
const ID_QUERIES: &[&str] = &["user_id", "actor", "target"];
const PLAIN_QUERIES: &[&str] = &["cursor", "limit", "action", "since", "until"];

/// The medians of one route, for the report.
#[derive(Debug)]
pub struct Timing {
    pub route: String,
    pub status: u16,
    pub median_b: Duration,
    pub median_missing: Duration,
    /// Measurements taken (see [`measured`]).
    pub tries: usize,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// An error body without its `request_id` (which differs on every answer), and with the ids
/// the request itself sent in its description replaced by `<id>` (a conflict names the email
/// it was sent).
fn comparable(v: &Value, ids: &Ids) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("request_id");
        if let Some(Value::String(d)) = m.get_mut("error_description") {
            for id in [ids.email.clone(), ids.slug.clone(), ids.client_id.clone(), ids.user_id.to_string()] {
                *d = d.replace(&id, "<id>");
            }
        }
    }
    v
}

/// Two answers are the same to the caller: status, body shape and `error` code; an error's
/// whole body but its `request_id` and the ids it was sent.
fn assert_same(op: &Op, b: &Answer, b_ids: &Ids, missing: &Answer, missing_ids: &Ids) {
    let route = op.name();
    assert_eq!(
        b.status, missing.status,
        "{route}: B's id {} but a missing id {}: {} / {}",
        b.status, missing.status, b.text, missing.text
    );
    assert_eq!(
        shape(&b.json),
        shape(&missing.json),
        "{route}: the bodies differ in shape: {} / {}",
        b.text,
        missing.text
    );
    if b.status >= 400 {
        assert_eq!(
            comparable(&b.json, b_ids),
            comparable(&missing.json, missing_ids),
            "{route}: the error bodies differ"
        );
    }
}

/// The timing rule. The requests go over loopback to a server sharing two cores with other
/// builds, so single requests jitter by milliseconds; medians of 15 interleaved requests
/// (alternating which kind goes first) cancel most of that. What the rule must catch is a
/// branch that does real work only for an id that exists elsewhere: a password hash, a key
/// derivation, a second round of queries under another tenant, each worth several ms or
/// doubling the request. A step of max(5 ms, 50% of the smaller median) is the smallest the
/// noise of this machine lets us assert without flaking; the figures are printed for review.
/// The tests of this binary run side by side, so a burst of load can still skew one
/// measurement: [`measured`] takes up to three, and only a step in all three fails.
fn has_step(t: &Timing) -> bool {
    let (b, m) = (t.median_b.as_secs_f64() * 1e3, t.median_missing.as_secs_f64() * 1e3);
    (b - m).abs() > f64::max(5.0, 0.5 * b.min(m))
}

/// Every page of a list, following `next_cursor`: (all items, every page's text).
async fn all_pages(w: &World, token: &str, op: &Op, query: &[(&str, String)]) -> (Vec<Value>, String) {
    let (mut items, mut texts, mut cursor) = (Vec::new(), String::new(), None::<String>);
    loop {
        let mut req = w.p.http().get(w.p.url(&op.path)).bearer_auth(token).query(query).query(&[("limit", "200")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c)]);
        }
        let res = req.send().await.unwrap();
        assert!(res.status().is_success(), "{}: {}", op.name(), res.status());
        let page: Value = res.json().await.unwrap();
        texts.push_str(&page.to_string());
        let page_items = page["items"].as_array().unwrap_or_else(|| panic!("{}: no items: {page}", op.name()));
        items.extend(page_items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (items, texts),
        }
    }
}

/// The check of one list (see [`LISTS`]): none of B's objects anywhere in it, and the
/// caller's tenant's (`own`) count or value.
async fn check_list(w: &World, token: &str, op: &Op, own: &Org) {
    let Some((_, check)) = LISTS.iter().find(|(id, _)| *id == op.operation_id) else {
        panic!("{}: a list without a check in admin_isolation::LISTS", op.name());
    };
    let truth = |sql: &'static str| async move {
        let mut conn = w.p.t.owner().await;
        sqlx::query_scalar::<_, Value>(sql).bind(own.id).fetch_one(&mut conn).await.unwrap()
    };
    let route = op.name();
    match check {
        List::Items(sql) => {
            let (items, text) = all_pages(w, token, op, &[]).await;
            assert_holds_none_of(&w.b, &text, &route, "");
            assert_eq!(Value::from(items.len()), truth(sql).await, "{route}: other items than {}'s own", own.slug);
        }
        List::Lines(sql) | List::Field(_, sql) => {
            let answer = send(&w.p, token, op, &Ids::missing()).await.unwrap();
            assert_eq!(answer.status, 200, "{route}: {}", answer.text);
            assert_holds_none_of(&w.b, &answer.text, &route, "");
            let got = match check {
                List::Field(field, _) => answer.json[*field].clone(),
                _ => Value::from(answer.text.lines().filter(|l| !l.trim().is_empty()).count()),
            };
            assert_eq!(got, truth(sql).await, "{route}: not {}'s own", own.slug);
        }
        List::PlatformOnly => {
            let answer = send(&w.p, token, op, &Ids::missing()).await.unwrap();
            assert_eq!(answer.status, 404, "{route}: {}", answer.text);
        }
    }
}

/// ROUNDS interleaved pairs of `op` with B's ids and with missing ones (which goes first
/// alternates), each pair held to [`assert_same`] and more; `filter` names a query parameter
/// of a list to send the user id in instead of the path. The medians of the pairs.
async fn measure(w: &World, token: &str, op: &Op, filter: Option<&str>, b_ids: &Ids, missing: &Ids) -> Timing {
    let ask = |ids: &Ids| {
        let query: Vec<(&str, String)> = filter.map(|name| (name, ids.user_id.to_string())).into_iter().collect();
        let ids = ids.clone();
        async move { send_with(&w.p, token, op, &ids, &query).await.unwrap_or_else(|e| panic!("{e}")) }
    };
    let route = match filter {
        Some(name) => format!("{} ?{name}=", op.name()),
        None => op.name(),
    };
    let sent = crate::admin_world::body(&op.operation_id, b_ids).map(|v| v.to_string()).unwrap_or_default();
    let (mut tb, mut tm, mut status) = (Vec::new(), Vec::new(), 0);
    for round in 0..ROUNDS {
        let (b, m) = if round % 2 == 0 {
            let b = ask(b_ids).await;
            (b, ask(missing).await)
        } else {
            let m = ask(missing).await;
            (ask(b_ids).await, m)
        };
        assert_same(op, &b, b_ids, &m, missing);
        assert_holds_none_of(&w.b, &b.text, &route, &sent);
        if !op.path_params.is_empty() {
            // An id of B is not found, exactly like a missing one; a slug of B too.
            assert_eq!(b.status, 404, "{route}: B's ids answered {}: {}", b.status, b.text);
        }
        if filter.is_some() && b.status == 200 {
            let n = b.json.get("items").and_then(Value::as_array).map_or_else(|| b.text.lines().count(), Vec::len);
            assert_eq!(n, 0, "{route}: B's user found something: {}", b.text);
        }
        status = m.status;
        tb.push(b.elapsed);
        tm.push(m.elapsed);
    }
    Timing { route, status, median_b: median(tb), median_missing: median(tm), tries: 1 }
}

/// [`measure`], again (up to three times in all) while the medians show a step: a branch that
/// does more work for B's ids shows in every measurement, a burst of load from the tests
/// running beside this one seldom in three in a row.
async fn measured(w: &World, token: &str, op: &Op, filter: Option<&str>, b_ids: &Ids, missing: &Ids) -> Timing {
    let mut t = measure(w, token, op, filter, b_ids, missing).await;
    while has_step(&t) && t.tries < 3 {
        let tries = t.tries + 1;
        t = Timing { tries, ..measure(w, token, op, filter, b_ids, missing).await };
    }
    t
}

/// The attack, with `token` of a member of A: lists first (before any write could add a row),
/// then every other operation, ROUNDS times with B's ids and with missing ones, interleaved;
/// each list's id filters likewise. Returns the medians of each route.
pub async fn attack(w: &World, token: &str) -> Vec<Timing> {
    let mut ops = operations();
    // Lists first; writes without ids (which add rows to A) last.
    ops.sort_by_key(|op| (!op.is_list(), op.path_params.is_empty(), op.path.clone(), op.method.to_string()));
    let b_ids = w.b.ids();
    let missing = Ids::missing();
    let mut timings = Vec::new();
    for op in &ops {
        if !op.is_list() {
            timings.push(measured(w, token, op, None, &b_ids, &missing).await);
            continue;
        }
        check_list(w, token, op, &w.a).await;
        for name in &op.query_params {
            if PLAIN_QUERIES.contains(&name.as_str()) {
                continue;
            }
            assert!(ID_QUERIES.contains(&name.as_str()), "{}: the query parameter {name:?} is not covered", op.name());
            timings.push(measured(w, token, op, Some(name), &b_ids, &missing).await);
        }
    }
    timings
}

/// Prints the medians (run with `--nocapture` to see them) and holds each to the rule.
pub fn report(label: &str, timings: &[Timing]) {
    println!("{label}: median per route, B's ids vs missing ids ({ROUNDS} each, interleaved)");
    for t in timings {
        println!(
            "  {:<60} {}  B {:>7.2} ms  missing {:>7.2} ms  (measurement {})",
            t.route,
            t.status,
            t.median_b.as_secs_f64() * 1e3,
            t.median_missing.as_secs_f64() * 1e3,
            t.tries
        );
    }
    for t in timings {
        let (b, m) = (t.median_b.as_secs_f64() * 1e3, t.median_missing.as_secs_f64() * 1e3);
        assert!(
            !has_step(t),
            "{}: a timing step in {} measurements: median {b:.2} ms with B's ids, {m:.2} ms with missing ones",
            t.route,
            t.tries
        );
    }
}

/// Must-show 1: every route and method, with B's ids and with missing ids, as an admin of A.
#[tokio::test]
async fn b_looks_missing_to_a_on_every_route() {
    let w = World::build().await;
    let before = snapshot(&w.p, w.b.id).await;
    assert_b_has_something_to_lose(&before);
    let timings = attack(&w, &w.a.admin).await;
    assert_eq!(snapshot(&w.p, w.b.id).await, before, "B changed under A's requests");
    report("admin of A", &timings);
}

/// B's snapshot holds what a crossing request would change: live families of both grants,
/// browser sessions, an audit chain, clients and members.
pub fn assert_b_has_something_to_lose(before: &Value) {
    let families = before["families"].as_array().unwrap();
    assert!(families.len() >= 2 && families.iter().all(|f| f[1].is_null()), "{before}");
    assert!(before["browser_sessions"].as_i64().unwrap() >= 1, "{before}");
    assert!(before["audit_chain_length"].as_i64().unwrap() >= 5, "{before}");
    assert!(before["clients"].as_array().unwrap().len() >= 5, "{before}");
    assert!(before["members"].as_array().unwrap().len() >= 4, "{before}");
}

/// The suite's tables name what the document has, no more and no less: a list check for
/// every list, a body for every operation with a request body and for no other.
#[test]
fn the_tables_match_the_document() {
    let ops = operations();
    for op in &ops {
        let listed = LISTS.iter().any(|(id, _)| *id == op.operation_id);
        assert_eq!(listed, op.is_list(), "{}: in LISTS but not a list, or a list not in LISTS", op.name());
        let body = crate::admin_world::body(&op.operation_id, &Ids::missing()).is_some();
        assert_eq!(body, op.has_body, "{}: a body without a requestBody, or none for one", op.name());
    }
    for (id, _) in LISTS {
        assert!(ops.iter().any(|op| op.operation_id == *id), "LISTS names {id}, which the document has not");
    }
}

/// No token of A acts for B where the API takes a tenant by slug: the platform routes are
/// each a 404 with B's slug, for every role of A.
#[tokio::test]
async fn a_token_of_a_never_acts_for_b_by_slug() {
    let w = World::build().await;
    let before = snapshot(&w.p, w.b.id).await;
    let slug_ops: Vec<Op> = operations().into_iter().filter(|op| op.path_params.iter().any(|p| p == "slug")).collect();
    assert!(!slug_ops.is_empty(), "the document has no route that takes a slug");
    for op in &slug_ops {
        assert_eq!(
            Action::from_word(op.permission.as_deref().unwrap_or("")),
            Some(Action::ManageTenants),
            "{}: a route that takes a slug outside the platform's",
            op.name()
        );
        for token in [&w.a.admin, &w.a.editor, &w.a.viewer] {
            let answer = send(&w.p, token, op, &w.b.ids()).await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(answer.status, 404, "{}: {}", op.name(), answer.text);
        }
    }
    assert_eq!(snapshot(&w.p, w.b.id).await, before);
}

/// Everything of tenant `tenant` (and of its members' global rows) a request for another
/// tenant could change, read with the owner's connection (no RLS): compared before and after.
pub async fn snapshot(p: &Provider, tenant: Uuid) -> Value {
    let mut conn = p.t.owner().await;
    let mut out = serde_json::Map::new();
    let queries: &[(&str, &str)] = &[
        ("tenant", "SELECT row_to_json(t)::jsonb FROM tenants t WHERE id = $1"),
        (
            "members",
            "SELECT coalesce(jsonb_agg(to_jsonb(m) ORDER BY user_id), '[]') FROM memberships m WHERE tenant_id = $1",
        ),
        (
            "clients",
            "SELECT coalesce(jsonb_agg(to_jsonb(c) ORDER BY client_id), '[]') FROM clients c WHERE tenant_id = $1",
        ),
        (
            "families",
            "SELECT coalesce(jsonb_agg(jsonb_build_array(family_id, revoked_at, revoked_reason, expires_at) \
             ORDER BY family_id), '[]') FROM token_families WHERE tenant_id = $1",
        ),
        (
            "access_tokens",
            "SELECT coalesce(jsonb_agg(jsonb_build_array(jti, revoked_at) ORDER BY jti), '[]') \
             FROM access_tokens WHERE tenant_id = $1",
        ),
        (
            "refresh_tokens",
            "SELECT coalesce(jsonb_agg(jsonb_build_array(token_hash, used_at) ORDER BY token_hash), '[]') \
             FROM refresh_tokens WHERE tenant_id = $1",
        ),
        (
            "users",
            "SELECT coalesce(jsonb_agg(to_jsonb(u) ORDER BY id), '[]') FROM users u \
             WHERE id IN (SELECT user_id FROM memberships WHERE tenant_id = $1)",
        ),
        (
            "browser_sessions",
            "SELECT to_jsonb(count(*)) FROM browser_sessions \
             WHERE user_ids && ARRAY(SELECT user_id FROM memberships WHERE tenant_id = $1)",
        ),
        ("recovery_links", "SELECT to_jsonb(count(*)) FROM recovery_links WHERE tenant_id = $1"),
        ("audit_chain_length", "SELECT to_jsonb(count(*)) FROM audit_events WHERE tenant_id = $1"),
    ];
    for (name, sql) in queries {
        let v: Value = sqlx::query_scalar(*sql).bind(tenant).fetch_one(&mut conn).await.unwrap();
        out.insert((*name).into(), v);
    }
    Value::Object(out)
}

/// Asserts that nothing of `org` appears anywhere in `text` (an answer to another tenant), but
/// what the request `sent` named.
pub fn assert_holds_none_of(org: &Org, text: &str, what: &str, sent: &str) {
    for s in org.secrets_of(sent) {
        assert!(!text.contains(&s), "{what}: the answer holds {}'s {s}: {text}", org.slug);
    }
}
