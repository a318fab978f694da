//! The error of domain code (`tenancy`, `identity`, `clients`, `tokens`, `bootstrap`): what went
//! wrong in words an operator may read. It sits below the HTTP edge, which maps it to an
//! `AppError` (`crate::error`); domain code must not know of HTTP (ARCHITECTURE.md, "Code map").

/// Errors of domain code, safe to show to the operator who asked (CLI, admin pages).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// The caller's role does not allow this (the admin surface's permission table).
    #[error("{0}")]
    Forbidden(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
    /// The password hasher's queue is full (`identity::password`).
    #[error("the server is busy; retry in {retry_after} s")]
    Busy { retry_after: u64 },
    /// This client already has its share of the password hasher.
    #[error("too many sign-ins at once from this address; retry in {retry_after} s")]
    TooManyAtOnce { retry_after: u64 },
    /// An allowance per hour is spent (invitations to one address, or a tenant's).
    #[error("too many requests of this kind; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
}
