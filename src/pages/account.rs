//! The account page: the user's profile, two-step verification, passkeys (registered and
//! removed in `pages::passkeys::manage`), password change, the user's sessions, and the
//! devices connected with the device grant.

use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::db::{self, audit};
use crate::error::AppError;
use crate::html::text::{Lang, Text};
use crate::identity::profile::{self, Field};
use crate::identity::{mfa, security, throttle};
use crate::notify;
use crate::protocol::meta::RequestMeta;
use crate::render::render;
use crate::secrets::{ExposeSecret, SecretString};
use crate::service_error::ServiceError;
use crate::session::{self, PageLang, SessionForm, SignedIn};
use crate::state::AppState;

/// One line of the sessions list.
pub struct SessionLine {
    pub label: String,
    pub handle: String,
    pub current: bool,
}

/// One line of the passkeys list.
pub struct PasskeyLine {
    pub id: String,
    pub name: String,
    pub added: String,
    /// When it last signed in, or that it has not yet.
    pub last_used: String,
}

/// One line of the devices list: a live token family begun by the device grant.
pub struct DeviceLine {
    pub client_name: String,
    pub since: String,
    pub tenant: String,
    pub family: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    t: &'static Text,
    csrf: &'a str,
    email: &'a str,
    profile: &'a db::users::Profile,
    mfa_on: bool,
    backup_left: i64,
    passkeys: &'a [PasskeyLine],
    /// Whether this issuer can register passkeys (not on an IP address).
    passkeys_possible: bool,
    sessions: &'a [SessionLine],
    devices: &'a [DeviceLine],
    notice: Option<&'a str>,
    problem: Option<&'a str>,
}

/// The signed-in user, or a redirect to sign in and come back. A user who has a second factor
/// reaches the account area only with a session that passed it (a password-only session,
/// from before they enrolled, steps up first).
async fn signed_in(state: &AppState, session: &Session) -> Result<Result<SignedIn, Response>, AppError> {
    let Some(who) = session::signed_in(session).await? else {
        session::set_return_to(session, "/account").await?;
        return Ok(Err(Redirect::to("/login").into_response()));
    };
    if !who.has_mfa() {
        let mut tx = state.db.user(who.user_id).await?;
        let has_factor = db::mfa::state(&mut tx, who.user_id).await?.is_some_and(|s| s.has_second_factor());
        tx.commit().await?;
        if has_factor {
            session::set_return_to(session, "/account").await?;
            return Ok(Err(Redirect::to("/login/mfa").into_response()));
        }
    }
    Ok(Ok(who))
}

/// The signed-in user of an account page, as [`signed_in`] finds them; otherwise the page
/// answers with the redirect to sign in (or step up) and come back. Body extractors (the
/// form, its CSRF check) run after it.
pub struct AccountUser(pub SignedIn);

impl FromRequestParts<AppState> for AccountUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        match signed_in(state, &session).await {
            Ok(Ok(who)) => Ok(Self(who)),
            Ok(Err(to_sign_in)) => Err(to_sign_in),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// `GET /account`.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    PageLang(lang): PageLang,
    AccountUser(who): AccountUser,
) -> Result<Response, AppError> {
    page(&state, &session, lang, &who, None, None, StatusCode::OK).await
}

/// The account page with a notice at the top (for the account's actions in other modules).
pub(crate) async fn notice_page(
    state: &AppState,
    session: &Session,
    lang: Lang,
    who: &SignedIn,
    notice: &str,
) -> Result<Response, AppError> {
    page(state, session, lang, who, Some(notice), None, StatusCode::OK).await
}

async fn page(
    state: &AppState,
    session: &Session,
    lang: Lang,
    who: &SignedIn,
    notice: Option<&str>,
    problem: Option<&str>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let mut tx = state.db.user(who.user_id).await?;
    let st = db::mfa::state(&mut tx, who.user_id).await?.ok_or(AppError::NotFound)?;
    let rows = db::browser_sessions::of_user(&mut tx, who.user_id).await?;
    let profile = db::users::profile(&mut tx, who.user_id).await?.unwrap_or_default();
    let keys = db::passkeys::of_user(&mut tx, who.user_id).await?;
    tx.commit().await?;
    let t = lang.text();
    let passkeys: Vec<PasskeyLine> = keys
        .into_iter()
        .map(|k| PasskeyLine {
            id: k.id.to_string(),
            name: k.name,
            added: lang.datetime(k.created_at),
            last_used: match k.last_used_at {
                Some(at) => format!("{} {}", t.passkey_last_used, lang.datetime(at)),
                None => t.passkey_never_used.to_owned(),
            },
        })
        .collect();
    let current = session::current_handle(session);
    let sessions: Vec<SessionLine> = rows
        .iter()
        .map(|r| {
            let auth = r.data.get("auth");
            let field = |name: &str| auth.and_then(|a| a.get(name)).and_then(|v| v.as_str()).unwrap_or("").to_owned();
            let since = auth
                .and_then(|a| a.get("auth_time"))
                .and_then(serde_json::Value::as_i64)
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| lang.datetime(t))
                .unwrap_or_default();
            let agent: String = field("user_agent").chars().take(60).collect();
            // A half sign-in: someone got the password right and stopped at the second step.
            let label = if auth.is_none() {
                lang.text().account_half_sign_in.to_owned()
            } else {
                format!("{since} · {} · {agent}", field("ip"))
            };
            SessionLine {
                label,
                handle: hex::encode(&r.handle),
                current: current.is_some_and(|c| c.as_slice() == r.handle.as_slice()),
            }
        })
        .collect();
    let devices = device_lines(state, lang, who).await?;
    let csrf = session::csrf_token(session).await?;
    let page = AccountPage {
        t: lang.text(),
        csrf: &csrf,
        email: &st.email,
        profile: &profile,
        mfa_on: st.has_totp(),
        backup_left: st.backup_codes_left,
        passkeys: &passkeys,
        passkeys_possible: state.passkeys.is_some(),
        sessions: &sessions,
        devices: &devices,
        notice,
        problem,
    };
    Ok(render(status, &page, &[]))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    preferred_username: String,
    #[serde(default)]
    locale: String,
    #[serde(default)]
    zoneinfo: String,
}

crate::session::csrf_field!(ProfileForm);

/// `POST /account/profile`: the user edits their profile (`identity::profile`); an empty box
/// removes that field. A value that is refused changes nothing: the page says why, with a 400.
pub async fn change_profile(
    State(state): State<AppState>,
    session: Session,
    PageLang(lang): PageLang,
    meta: RequestMeta,
    AccountUser(who): AccountUser,
    SessionForm(form): SessionForm<ProfileForm>,
) -> Result<Response, AppError> {
    let edit = profile::ProfileEdit {
        name: Field::from_input(&form.name),
        given_name: Field::from_input(&form.given_name),
        family_name: Field::from_input(&form.family_name),
        preferred_username: Field::from_input(&form.preferred_username),
        locale: Field::from_input(&form.locale),
        zoneinfo: Field::from_input(&form.zoneinfo),
        email_verified: None,
    };
    let actor = meta.actor("user", Some(who.user_id.to_string()));
    match profile::change(&state.db, &actor, profile::Editor::Own, who.user_id, &edit).await {
        Ok(Some(_)) => {
            // The pages follow a new language at once.
            let locale = Some(form.locale.trim()).filter(|l| !l.is_empty());
            session::language::from_account(&session, locale, true).await?;
            let lang = session::language::current(&session).await?.unwrap_or(lang);
            page(&state, &session, lang, &who, Some(lang.text().account_profile_saved), None, StatusCode::OK).await
        }
        Ok(None) => Err(AppError::NotFound),
        Err(ServiceError::Invalid(why)) => {
            page(&state, &session, lang, &who, None, Some(&why), StatusCode::BAD_REQUEST).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current: SecretString,
    new: SecretString,
}

crate::session::csrf_field!(PasswordForm);

/// `POST /account/password`: needs the current password (a wrong one counts towards the
/// account's lock), then ends every other session and every token family of the user.
pub async fn change_password(
    State(state): State<AppState>,
    session: Session,
    PageLang(lang): PageLang,
    meta: RequestMeta,
    AccountUser(who): AccountUser,
    SessionForm(form): SessionForm<PasswordForm>,
) -> Result<Response, AppError> {
    let mut tx = state.db.user(who.user_id).await?;
    let stored = db::users::password_hash(&mut tx, who.user_id).await?;
    let email = db::mfa::state(&mut tx, who.user_id).await?.map(|s| s.email).unwrap_or_default();
    tx.commit().await?;
    let attempt = throttle::Attempt::new(&email, meta.ip);
    let reserved = throttle::reserve(&state.db, &state.config.throttle, &attempt).await?;
    let may_try = reserved.is_some();
    let (current, new) = (form.current.expose_secret(), form.new.expose_secret());
    let current_ok = current.len() <= 1024
        && state.passwords.verify(current, stored.as_deref().filter(|_| may_try)).await?
        && may_try;
    if !current_ok {
        if let Some(reserved) = reserved {
            throttle::failed(&state.db, &state.config.throttle, &attempt, reserved).await?;
        }
        let event = meta.event(
            "password.change",
            "failure",
            ("user", Some(who.user_id.to_string())),
            ("user", who.user_id.to_string()),
        );
        let mut tx = state.db.user(who.user_id).await?;
        security::append_for_user(&mut tx, who.user_id, &event).await?;
        tx.commit().await?;
        return page(&state, &session, lang, &who, None, Some(lang.text().account_password_wrong), StatusCode::OK)
            .await;
    }
    if let Some(problem) = crate::pages::password_refused(lang.text(), new) {
        return page(&state, &session, lang, &who, None, Some(&problem), StatusCode::OK).await;
    }
    let hash = state.passwords.hash(new).await?;
    let mut tx = state.db.user(who.user_id).await?;
    db::users::set_password(&mut tx, who.user_id, &hash).await?;
    let keep = session::current_handle(&session);
    let actor = meta.actor("user", Some(who.user_id.to_string()));
    let ended = security::end_sessions_and_families(
        &mut tx,
        &actor,
        who.user_id,
        keep.as_ref().map(|k| k.as_slice()),
        "password_change",
    )
    .await?;
    let event = ended_event(&meta, "password.change", &who, &ended);
    security::append_for_user(&mut tx, who.user_id, &event).await?;
    tx.commit().await?;
    // This session goes on under the new stamp (and a new id, as after any sign-in).
    let who = SignedIn { stamp: ended.stamp, ..who };
    session::sign_in(&session, &who).await?;
    throttle::succeeded(&state.db, &attempt).await?;
    state.mailer.send_later(notify::password_changed_mail(lang, &email, meta.ip));
    page(&state, &session, lang, &who, Some(lang.text().account_password_changed), None, StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

crate::session::csrf_field!(CsrfForm);

/// `POST /account/backup-codes`: replaces the backup codes (a session that passed MFA only).
pub async fn regenerate_backup_codes(
    State(state): State<AppState>,
    lang: PageLang,
    meta: RequestMeta,
    AccountUser(who): AccountUser,
    _checked: SessionForm<CsrfForm>,
) -> Result<Response, AppError> {
    if !who.has_mfa() {
        return Ok(Redirect::to("/login/mfa").into_response());
    }
    let codes = mfa::new_backup_codes();
    let hashes: Vec<[u8; 32]> = codes.iter().filter_map(|c| mfa::backup_code_hash(c)).collect();
    let mut tx = state.db.user(who.user_id).await?;
    db::mfa::replace_backup_codes(&mut tx, who.user_id, &hashes).await?;
    let event = meta.event(
        "mfa.backup_codes_regenerated",
        "success",
        ("user", Some(who.user_id.to_string())),
        ("user", who.user_id.to_string()),
    );
    security::append_for_user(&mut tx, who.user_id, &event).await?;
    tx.commit().await?;
    crate::pages::mfa::backup_codes::backup_codes_page(lang.text(), &codes, "/account")
}

/// The user's own successful `action` that ended sessions and families (`ended`, counted in
/// the details).
fn ended_event<'a>(meta: &RequestMeta, action: &'a str, who: &SignedIn, ended: &security::Ended) -> audit::Event<'a> {
    let mut event =
        meta.event(action, "success", ("user", Some(who.user_id.to_string())), ("user", who.user_id.to_string()));
    event.details = serde_json::json!({ "sessions_ended": ended.sessions, "families_revoked": ended.families });
    event
}

/// `POST /account/sign-out-everywhere`: a new security stamp; every session of the user, this
/// one included, every half sign-in and every token family in every tenant ends.
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    AccountUser(who): AccountUser,
    _checked: SessionForm<CsrfForm>,
) -> Result<Response, AppError> {
    let mut tx = state.db.user(who.user_id).await?;
    let actor = meta.actor("user", Some(who.user_id.to_string()));
    let ended =
        security::end_sessions_and_families(&mut tx, &actor, who.user_id, None, "signed_out_everywhere").await?;
    let event = ended_event(&meta, "user.signed_out_everywhere", &who, &ended);
    security::append_for_user(&mut tx, who.user_id, &event).await?;
    tx.commit().await?;
    session::sign_out(&session).await?;
    Ok(Redirect::to("/login").into_response())
}

#[derive(Debug, Deserialize)]
pub struct EndSessionForm {
    csrf: String,
    session: String,
}

crate::session::csrf_field!(EndSessionForm);

/// `POST /account/sessions/end`: signs one of the user's other sessions out.
pub async fn end_session(
    State(state): State<AppState>,
    meta: RequestMeta,
    AccountUser(who): AccountUser,
    SessionForm(form): SessionForm<EndSessionForm>,
) -> Result<Response, AppError> {
    let Ok(handle) = hex::decode(&form.session) else { return Err(AppError::NotFound) };
    let mut tx = state.db.user(who.user_id).await?;
    if db::browser_sessions::end_one(&mut tx, who.user_id, &handle).await? {
        let event = meta.event(
            "session.ended",
            "success",
            ("user", Some(who.user_id.to_string())),
            ("session", form.session.clone()),
        );
        security::append_for_user(&mut tx, who.user_id, &event).await?;
    }
    tx.commit().await?;
    Ok(Redirect::to("/account").into_response())
}

/// The user's live device families, in each tenant where the user has live families.
async fn device_lines(state: &AppState, lang: Lang, who: &SignedIn) -> Result<Vec<DeviceLine>, AppError> {
    let mut tx = state.db.user(who.user_id).await?;
    let mut lines = Vec::new();
    for tenant in db::families::tenants_of_user(&mut tx, who.user_id).await? {
        tx.switch_tenant(tenant).await?;
        for f in db::families::device_families_of_user(&mut tx, who.user_id).await? {
            lines.push(DeviceLine {
                client_name: f.client_name.unwrap_or(f.client_id),
                since: lang.datetime(f.created_at),
                tenant: tenant.to_string(),
                family: f.family_id.to_string(),
            });
        }
    }
    tx.commit().await?;
    Ok(lines)
}

#[derive(Debug, Deserialize)]
pub struct RevokeDeviceForm {
    csrf: String,
    tenant: uuid::Uuid,
    family: uuid::Uuid,
}

crate::session::csrf_field!(RevokeDeviceForm);

/// `POST /account/devices/revoke`: ends one of the user's device families (its refresh and
/// access tokens), with `device.revoked` in the family's tenant. Another user's family, or one
/// not begun by the device grant, is a 404 like a missing one.
pub async fn revoke_device(
    State(state): State<AppState>,
    meta: RequestMeta,
    AccountUser(who): AccountUser,
    SessionForm(form): SessionForm<RevokeDeviceForm>,
) -> Result<Response, AppError> {
    let mut tx = state.db.tenant(form.tenant).await?;
    let Some(client_id) = db::families::revoke_device_family_of_user(&mut tx, who.user_id, form.family).await? else {
        return Err(AppError::NotFound);
    };
    let mut event = meta.event(
        "device.revoked",
        "success",
        ("user", Some(who.user_id.to_string())),
        ("token_family", form.family.to_string()),
    );
    event.details = serde_json::json!({ "client_id": client_id });
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(Redirect::to("/account").into_response())
}

#[cfg(test)]
mod redaction {
    /// A logged `PasswordForm` shows no secret it carries.
    #[test]
    fn debug_shows_no_secret() {
        crate::secrets::assert_debug_redacts::<super::PasswordForm>(
            "csrf=x&current=old-pa55word&new=new-pa55word",
            &["old-pa55word", "new-pa55word"],
        );
    }
}
