//! The backup codes page: shown once, after enrolment or regeneration, with a download link.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

use crate::error::AppError;
use crate::html::text::Text;
use crate::render::render;

#[derive(Template)]
#[template(path = "backup_codes.html")]
pub struct BackupCodesPage<'a> {
    pub t: &'static Text,
    pub codes: &'a [String],
    /// The codes as a percent-encoded text file, for the download link.
    pub download: &'a str,
    pub next: &'a str,
}

/// The backup codes, shown once, with a download link of the same text.
pub fn backup_codes_page(t: &'static Text, codes: &[String], next: &str) -> Result<Response, AppError> {
    let text = codes.join("\n");
    let download: String =
        url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20");
    Ok(render(StatusCode::OK, &BackupCodesPage { t, codes, download: &download, next }, &[]))
}
