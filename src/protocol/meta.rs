//! Who is asking: the request facts the audit log records.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use crate::db::audit::{Actor, Event};
use crate::error::REQUEST_ID_HEADER;

/// Client IP (the TCP peer), user agent and request id of a request.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts.headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(512).collect::<String>())
        };
        Ok(Self {
            ip: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()),
            user_agent: header(header::USER_AGENT.as_str()),
            request_id: header(REQUEST_ID_HEADER),
        })
    }
}

impl RequestMeta {
    /// An audit event of this request: `actor` and `target` are (kind, id).
    pub fn event<'a>(
        &self,
        action: &'a str,
        outcome: &'a str,
        actor: (&'a str, Option<String>),
        target: (&'a str, String),
    ) -> Event<'a> {
        Event {
            actor_kind: actor.0,
            actor_id: actor.1,
            target_kind: Some(target.0),
            target_id: Some(target.1),
            action,
            outcome,
            ip: self.ip,
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
            details: serde_json::Value::Object(Default::default()),
        }
    }

    /// The actor of this request's events: `kind` and `id` say who, the request where from.
    pub fn actor(&self, kind: &'static str, id: Option<String>) -> Actor {
        Actor { kind, id, ip: self.ip, user_agent: self.user_agent.clone(), request_id: self.request_id.clone() }
    }
}
