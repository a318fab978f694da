//! Cursor pagination for the admin lists: a page of items and an opaque cursor for the next.
//! The cursor is the last item's key, base64url-encoded; it says nothing the caller could not
//! read in the page itself, and a cursor from another tenant only pages this tenant's rows.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::service_error::ServiceError;

/// The most items one page may hold, and the default.
pub const MAX_LIMIT: u32 = 200;
pub const DEFAULT_LIMIT: u32 = 50;

/// A page of a list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Where a page starts: after the item with this key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor {
    pub after: Option<String>,
    pub limit: u32,
}

impl Cursor {
    /// The first page of `limit` items.
    pub fn first(limit: u32) -> Self {
        Self { after: None, limit: limit.clamp(1, MAX_LIMIT) }
    }

    /// A cursor as the caller sent it (`cursor`, `limit`): the key must decode to at most 200
    /// printable characters.
    pub fn parse(cursor: Option<&str>, limit: Option<u32>) -> Result<Self, ServiceError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ServiceError::Invalid(format!("limit must be 1-{MAX_LIMIT}")));
        }
        let after = match cursor {
            None => None,
            Some(c) => {
                let bad = || ServiceError::Invalid("unreadable cursor".into());
                let bytes = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
                let key = String::from_utf8(bytes).map_err(|_| bad())?;
                if key.is_empty() || key.len() > 200 || key.chars().any(char::is_control) {
                    return Err(bad());
                }
                Some(key)
            }
        };
        Ok(Self { after, limit })
    }

    /// The rows to fetch: one more than a page, to know whether another follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// Cuts the fetched rows to a page; `key` gives the cursor of the last item kept.
    pub fn page<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> String) -> Page<T> {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let next_cursor = if more { rows.last().map(|r| URL_SAFE_NO_PAD.encode(key(r))) } else { None };
        Page { items: rows, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page's cursor reads back as the key of its last item; bad cursors and limits are
    /// refused.
    #[test]
    fn cursors_round_trip() {
        let c = Cursor::parse(None, Some(2)).unwrap();
        let page = c.page(vec!["a", "b", "c"], |s| (*s).to_owned());
        assert_eq!(page.items, ["a", "b"]);
        let next = Cursor::parse(page.next_cursor.as_deref(), Some(2)).unwrap();
        assert_eq!(next.after.as_deref(), Some("b"));
        assert!(c.page(vec!["a"], |s| (*s).to_owned()).next_cursor.is_none());
        assert!(Cursor::parse(Some("!!"), None).is_err());
        assert!(Cursor::parse(None, Some(0)).is_err());
        assert!(Cursor::parse(None, Some(MAX_LIMIT + 1)).is_err());
        assert!(Cursor::parse(Some(&URL_SAFE_NO_PAD.encode("a\nb")), None).is_err());
    }
}
