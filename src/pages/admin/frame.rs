//! What every admin page shares: the frame around it (the organisation, the caller's role,
//! the navigation, the CSRF token of its forms, a notice from the form before), the notice
//! itself, values shown once, and the pages' own error pages.

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tower_sessions::Session;

use crate::admin::{Action, Caller};
use crate::error::AppError;
use crate::html::text::{AdminText, Lang};
use crate::render::page_error;
use crate::service_error::ServiceError;
use crate::session;
use crate::state::AppState;
use crate::vocabulary::Role;

const NOTICE: &str = "admin_notice";
const ONCE: &str = "admin_once";
/// The seal's purpose for values shown once (`tokens::seal`).
const ONCE_PURPOSE: &str = "admin-page-once";

/// The area of the admin pages a page belongs to (the navigation marks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Dashboard,
    Members,
    Clients,
    Devices,
    Sessions,
    Audit,
    Settings,
}

/// The frame of a tenant's admin page.
#[derive(Debug)]
pub struct Frame {
    pub slug: String,
    pub tenant_name: String,
    pub role: Role,
    pub platform_admin: bool,
    pub section: Section,
    pub csrf: String,
    /// What the form before did, shown once.
    pub notice: Option<String>,
    /// The admin pages' words in the page's language.
    pub a: &'static AdminText,
    caller: Caller,
}

impl Frame {
    /// The frame for `caller` on a page of `section`; takes the pending notice.
    pub async fn new(session: &Session, caller: &Caller, lang: Lang, section: Section) -> Result<Self, AppError> {
        Ok(Self {
            slug: caller.slug.clone(),
            tenant_name: caller.tenant_name.clone(),
            role: caller.role,
            platform_admin: caller.platform_admin,
            section,
            csrf: session::csrf_token(session).await?,
            notice: take_flash(session).await?,
            a: lang.admin(),
            caller: caller.clone(),
        })
    }

    /// Whether the permission table lets the caller take `action`: the page shows its form
    /// only then.
    pub fn may(&self, action: Action) -> bool {
        self.caller.may(action)
    }

    /// The link of a section, and whether it is this page's.
    pub fn nav(&self) -> Vec<(String, &'static str, bool)> {
        let a = self.a;
        [
            (Section::Dashboard, "", a.nav_dashboard),
            (Section::Members, "/members", a.nav_members),
            (Section::Clients, "/clients", a.nav_clients),
            (Section::Devices, "/devices", a.nav_devices),
            (Section::Sessions, "/sessions", a.nav_sessions),
            (Section::Audit, "/audit", a.nav_audit),
            (Section::Settings, "/settings", a.nav_settings),
        ]
        .into_iter()
        .map(|(s, tail, label)| (format!("/admin/t/{}{tail}", self.slug), label, s == self.section))
        .collect()
    }

    /// The path of a page of this tenant (`tail` starts with `/`, or is empty).
    pub fn path(&self, tail: &str) -> String {
        format!("/admin/t/{}{tail}", self.slug)
    }
}

/// Keeps a notice for the next page this session opens.
pub async fn flash(session: &Session, notice: &str) -> Result<(), AppError> {
    session.insert(NOTICE, notice).await.map_err(|e| AppError::Internal(e.into()))
}

/// The pending notice, once.
pub async fn take_flash(session: &Session) -> Result<Option<String>, AppError> {
    session.remove::<String>(NOTICE).await.map_err(|e| AppError::Internal(e.into()))
}

/// A secret shown once, with the words that say what it is for.
#[derive(Debug)]
pub struct Shown {
    pub label: String,
    pub secret: String,
}

/// Keeps a secret (a client secret, a recovery link) for the one page that shows it, after the
/// redirect that follows the form: sealed under the master key, so the session store never
/// holds it in the clear, and bound to `subject` (the page it is for). Reloading that page, or
/// coming back to it, finds nothing.
pub async fn keep_once(
    state: &AppState,
    session: &Session,
    subject: &str,
    label: &str,
    secret: &str,
) -> Result<(), AppError> {
    let sealed = crate::tokens::seal::seal(&state.master_key, ONCE_PURPOSE, subject, secret.as_bytes())
        .map_err(AppError::Internal)?;
    let value = (subject.to_owned(), label.to_owned(), STANDARD.encode(sealed));
    session.insert(ONCE, value).await.map_err(|e| AppError::Internal(e.into()))
}

/// The secret kept for `subject`, removed as it is read; `None` when there is none (another
/// subject's secret is dropped too: it was for a page that was not opened next).
pub async fn take_once(state: &AppState, session: &Session, subject: &str) -> Result<Option<Shown>, AppError> {
    let kept: Option<(String, String, String)> =
        session.remove(ONCE).await.map_err(|e| AppError::Internal(e.into()))?;
    let Some((for_subject, label, sealed)) = kept.filter(|(s, _, _)| s == subject) else { return Ok(None) };
    let Ok(sealed) = STANDARD.decode(sealed) else { return Ok(None) };
    let Ok(plain) = crate::tokens::seal::open(&state.master_key, ONCE_PURPOSE, &for_subject, &sealed) else {
        return Ok(None);
    };
    Ok(String::from_utf8(plain).ok().map(|secret| Shown { label, secret }))
}

/// A domain error as an admin page shows it, in `lang`: HTML pages with our words (a refusal
/// by the permission table is a 403 page, a missing or foreign object the 404 every missing
/// thing gets, a bad input a 400 page saying what was wrong: the domain's words, which are
/// English, then ours).
pub fn refused(lang: Lang) -> impl Fn(ServiceError) -> AppError {
    let a: &'static AdminText = lang.admin();
    move |e| match e {
        ServiceError::Forbidden(_) => page_error(StatusCode::FORBIDDEN, a.forbidden_title, a.forbidden_body),
        ServiceError::NotFound(_) => AppError::NotFound,
        ServiceError::RateLimited { retry_after } => AppError::TooManyRequests { retry_after, page: true },
        ServiceError::Invalid(msg) | ServiceError::Conflict(msg) => {
            page_error(StatusCode::BAD_REQUEST, a.invalid_title, format!("{msg}. {}", a.invalid_back))
        }
        other => other.into(),
    }
}

/// Whether a checkbox of a form was ticked (browsers send `on`, or nothing).
pub fn ticked(field: &Option<String>) -> bool {
    field.as_deref().is_some_and(|v| !v.is_empty())
}
