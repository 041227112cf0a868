//! Cursor pagination in the contract's shape: `?limit=&cursor=` in,
//! `{"results": [...], "next_cursor": "…" | null}` out. Cursors are opaque keyset positions.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use saas_core::{ServiceError, ServiceResult};

/// Items per page when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 20;
/// The largest accepted `limit`.
pub const MAX_LIMIT: u32 = 100;

/// The query parameters of every list (`?limit=&cursor=`); use with `saas_core::extract::Query`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page (1–100, default 20).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    /// The limit, validated (1–100).
    pub fn limit(&self) -> ServiceResult<u32> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => {
                Err(ServiceError::invalid_field("limit", format!("Ensure this value is between 1 and {MAX_LIMIT}.")))
            }
        }
    }

    /// The decoded cursor position, if any.
    pub fn position<P: DeserializeOwned>(&self) -> ServiceResult<Option<P>> {
        self.cursor.as_deref().filter(|c| !c.is_empty()).map(decode_cursor).transpose()
    }
}

/// One page of results.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub results: Vec<T>,
    /// The cursor of the next page, `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` fetched rows: the extra row only tells that a
    /// next page exists, and `position` gives the cursor of the last row kept.
    pub fn from_rows<P: Serialize>(mut rows: Vec<T>, limit: u32, position: impl Fn(&T) -> P) -> Self {
        let limit = limit as usize;
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if has_more { rows.last().map(|row| encode_cursor(&position(row))) } else { None };
        Self { results: rows, next_cursor }
    }

    /// Maps every item, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { results: self.results.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

/// The usual keyset position: newest first by `(created_at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeCursor {
    /// The creation time of the last row seen.
    pub created_at: DateTime<Utc>,
    /// Its id, breaking ties.
    pub id: Uuid,
}

/// Encodes a position as an opaque URL-safe cursor.
pub fn encode_cursor<P: Serialize>(position: &P) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

/// Decodes a cursor made by [`encode_cursor`]; anything else is 400 `validation.failed`.
pub fn decode_cursor<P: DeserializeOwned>(cursor: &str) -> ServiceResult<P> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| ServiceError::invalid_field("cursor", "Invalid cursor."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_are_bounded() {
        assert_eq!(PageParams::default().limit().unwrap(), 20);
        assert_eq!(PageParams { limit: Some(100), cursor: None }.limit().unwrap(), 100);
        assert!(PageParams { limit: Some(0), cursor: None }.limit().is_err());
        assert!(PageParams { limit: Some(101), cursor: None }.limit().is_err());
    }

    #[test]
    fn a_page_carries_a_cursor_only_when_more_rows_exist() {
        let page = Page::from_rows(vec![5, 4, 3], 2, |n| *n);
        assert_eq!(page.results, vec![5, 4]);
        let next: i32 = decode_cursor(page.next_cursor.as_deref().unwrap()).unwrap();
        assert_eq!(next, 4);
        assert!(Page::from_rows(vec![1, 2], 2, |n| *n).next_cursor.is_none());
        let json = serde_json::to_value(Page::from_rows(Vec::<i32>::new(), 20, |n| *n)).unwrap();
        assert_eq!(json, serde_json::json!({"results": [], "next_cursor": null}));
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        let position = TimeCursor { created_at: Utc::now(), id: Uuid::new_v4() };
        let params = PageParams { limit: None, cursor: Some(encode_cursor(&position)) };
        assert_eq!(params.position::<TimeCursor>().unwrap(), Some(position));
        let bad = PageParams { limit: None, cursor: Some("not-a-cursor".into()) };
        assert_eq!(bad.position::<TimeCursor>().unwrap_err().code(), "validation.failed");
    }
}
