//! What the devices and the sessions pages share: each lists live token families of the
//! organisation (`admin::devices`, `admin::sessions`), with a button that ends one. Only their
//! words, their section and the button's path differ.

use askama::Template;
use axum::response::Response;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::frame::{Frame, Section};
use super::{Ctx, ok};
use crate::admin::devices::DeviceView;
use crate::admin::sessions::SessionView;
use crate::admin::{Action, Page};
use crate::error::AppError;
use crate::html::text::{AdminText, Text};

/// Which of the two pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Devices,
    Sessions,
}

/// What tells one page from the other.
struct Words {
    title: &'static str,
    intro: &'static str,
    empty: &'static str,
    button: &'static str,
    /// The action of the button.
    manage: Action,
    /// The page's path in the organisation; the table's id is the same word.
    tail: &'static str,
    id: &'static str,
    /// The last segment of the button's path.
    verb: &'static str,
}

impl Kind {
    fn section(self) -> Section {
        match self {
            Kind::Devices => Section::Devices,
            Kind::Sessions => Section::Sessions,
        }
    }

    fn words(self, a: &'static AdminText) -> Words {
        let ((title, intro, empty, button), (manage, tail, verb)) = match self {
            Kind::Devices => (
                (a.devices_title, a.devices_intro, a.no_devices, a.revoke),
                (Action::ManageDevices, "/devices", "revoke"),
            ),
            Kind::Sessions => (
                (a.sessions_title, a.sessions_intro, a.no_sessions, a.end_session),
                (Action::EndSessions, "/sessions", "end"),
            ),
        };
        Words { title, intro, empty, button, manage, tail, id: &tail[1..], verb }
    }
}

/// A family as a row of the page shows it.
pub struct Row<'a> {
    family_id: Uuid,
    email: &'a str,
    /// The client's name, or its id when it has none.
    client: &'a str,
    created_at: DateTime<Utc>,
    /// "2026-12-05 07:40 UTC from 192.0.2.7", empty before the first refresh.
    last_refresh: String,
}

/// A family of a page's list.
pub trait Listed {
    fn row(&self) -> Row<'_>;
}

macro_rules! listed {
    ($($view:ty),*) => {$(
        impl Listed for $view {
            fn row(&self) -> Row<'_> {
                let client = self.client_name.as_deref().unwrap_or(self.client_id.as_str());
                let last_refresh = match (self.last_refresh_at, self.last_refresh_ip.as_deref()) {
                    (Some(at), ip) => format!("{} {}", at.format("%Y-%m-%d %H:%M UTC"), ip.map(|ip| format!("· {ip}")).unwrap_or_default()),
                    (None, _) => String::new(),
                };
                Row { family_id: self.family_id, email: self.email.as_deref().unwrap_or(""), client, created_at: self.created_at, last_refresh }
            }
        }
    )*};
}

listed!(DeviceView, SessionView);

#[derive(Template)]
#[template(path = "admin/families.html")]
struct FamiliesPage<'a> {
    t: &'static Text,
    a: &'static AdminText,
    f: &'a Frame,
    w: &'a Words,
    /// Whether the permission table lets the caller press the button (the page shows it only then).
    may_end: bool,
    rows: &'a [Row<'a>],
    next: Option<String>,
}

/// The page of `kind` showing `page`.
pub async fn show<T: Listed>(ctx: &Ctx, kind: Kind, page: Page<T>) -> Result<Response, AppError> {
    let f = ctx.frame(kind.section()).await?;
    let rows: Vec<Row<'_>> = page.items.iter().map(Listed::row).collect();
    let w = kind.words(ctx.a());
    ok(&FamiliesPage {
        t: ctx.t(),
        a: ctx.a(),
        may_end: f.may(w.manage),
        f: &f,
        w: &w,
        rows: &rows,
        next: page.next_cursor,
    })
}
