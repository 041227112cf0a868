//! Lists of a table for admin panels: keyset pagination (newest first), prefix search that
//! an ordinary index serves, filters, and cells rendered from whatever the columns hold.

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, Row, TypeInfo, ValueRef};
use uuid::Uuid;

use super::panel::{ListPage, ListQuery, ListRow};
use crate::db::Db;
use crate::error::{ServiceError, ServiceResult};

/// The type of a list's key column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A UUID (a BLOB on SQLite).
    Uuid,
    /// Text.
    Text,
    /// A whole number.
    Int,
}

/// How the search box matches.
#[derive(Debug, Clone, Copy)]
pub enum Search {
    /// Values starting with the term (served by the column's index: `LIKE 'term%'` with
    /// `text_pattern_ops` on PostgreSQL, `GLOB 'term*'` on SQLite).
    Prefix(&'static str),
    /// Like `Prefix`, for a column stored lower-case: the term is lower-cased first.
    LowerPrefix(&'static str),
    /// The whole value.
    Exact(&'static str),
    /// The key, when the term parses as one.
    Key,
}

/// A value bound to a query.
#[derive(Debug, Clone)]
pub enum SqlValue {
    /// Text.
    Text(String),
    /// Boolean.
    Bool(bool),
    /// UUID.
    Uuid(Uuid),
    /// Integer.
    Int(i64),
    /// Timestamp.
    Time(DateTime<Utc>),
}

#[derive(Debug, Clone, Copy)]
enum FilterKind {
    Bool,
    Text,
}

/// A declarative list: `SELECT key, order, columns FROM from WHERE … ORDER BY order DESC, key DESC`.
#[derive(Debug, Clone)]
pub struct SqlList {
    from: &'static str,
    key: &'static str,
    key_kind: KeyKind,
    order: Option<&'static str>,
    columns: Vec<&'static str>,
    search: Vec<Search>,
    filters: Vec<(&'static str, &'static str, FilterKind)>,
    conditions: Vec<&'static str>,
}

impl SqlList {
    /// Rows of `from` (a table or a join), keyed by `key`, newest key first.
    pub fn new(from: &'static str, key: &'static str, key_kind: KeyKind) -> Self {
        Self {
            from,
            key,
            key_kind,
            order: None,
            columns: Vec::new(),
            search: Vec::new(),
            filters: Vec::new(),
            conditions: Vec::new(),
        }
    }

    /// Orders by this timestamp column (newest first), then the key. The column must be
    /// `NOT NULL` and have an index on `(column, key)` for pages to stay fast.
    pub fn order_by(mut self, column: &'static str) -> Self {
        self.order = Some(column);
        self
    }

    /// The SQL expressions of the cells, in the panel's column order.
    pub fn columns(mut self, columns: &[&'static str]) -> Self {
        self.columns = columns.to_vec();
        self
    }

    /// Adds a way the search box matches (ORed with the others).
    pub fn search(mut self, search: Search) -> Self {
        self.search.push(search);
        self
    }

    /// A yes/no filter named `name` on a boolean expression.
    pub fn filter_bool(mut self, name: &'static str, expr: &'static str) -> Self {
        self.filters.push((name, expr, FilterKind::Bool));
        self
    }

    /// A filter named `name` matching a text expression exactly.
    pub fn filter_text(mut self, name: &'static str, expr: &'static str) -> Self {
        self.filters.push((name, expr, FilterKind::Text));
        self
    }

    /// A condition every row meets.
    pub fn condition(mut self, condition: &'static str) -> Self {
        self.conditions.push(condition);
        self
    }

    fn parse_key(&self, text: &str) -> Option<SqlValue> {
        match self.key_kind {
            KeyKind::Uuid => Uuid::parse_str(text).ok().map(SqlValue::Uuid),
            KeyKind::Text => Some(SqlValue::Text(text.to_owned())),
            KeyKind::Int => text.parse().ok().map(SqlValue::Int),
        }
    }

    /// One page of the list for `query`.
    pub async fn fetch(&self, db: &Db, query: &ListQuery) -> ServiceResult<ListPage> {
        self.fetch_bound(db, query, Vec::new()).await
    }

    /// One page of the list for `query`, with `bound` as `$1, $2…` of the
    /// [`condition`](Self::condition)s.
    pub async fn fetch_bound(&self, db: &Db, query: &ListQuery, bound: Vec<SqlValue>) -> ServiceResult<ListPage> {
        let mut values: Vec<SqlValue> = bound;
        let placeholder = |value: SqlValue, values: &mut Vec<SqlValue>| {
            values.push(value);
            format!("${}", values.len())
        };
        let mut conditions: Vec<String> = self.conditions.iter().map(|c| format!("({c})")).collect();

        if let Some(term) = query.search.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let mut any = Vec::new();
            for search in &self.search {
                match *search {
                    Search::Prefix(column) | Search::LowerPrefix(column) => {
                        let term = if matches!(search, Search::LowerPrefix(_)) {
                            term.to_lowercase()
                        } else {
                            term.to_owned()
                        };
                        let (op, pattern) = prefix_pattern(db, &term);
                        any.push(format!("{column} {op} {}", placeholder(SqlValue::Text(pattern), &mut values)));
                    }
                    Search::Exact(column) => {
                        any.push(format!("{column} = {}", placeholder(SqlValue::Text(term.to_owned()), &mut values)));
                    }
                    Search::Key => {
                        if let Some(key) = self.parse_key(term) {
                            any.push(format!("{} = {}", self.key, placeholder(key, &mut values)));
                        }
                    }
                }
            }
            conditions.push(if any.is_empty() { "1 = 0".to_owned() } else { format!("({})", any.join(" OR ")) });
        }

        for (name, expr, kind) in &self.filters {
            let Some(value) = query.filters.get(*name).map(|v| v.trim()).filter(|v| !v.is_empty()) else { continue };
            let value = match kind {
                FilterKind::Bool => match value {
                    "true" | "1" | "yes" => SqlValue::Bool(true),
                    "false" | "0" | "no" => SqlValue::Bool(false),
                    _ => return Err(ServiceError::invalid_field(name, "Must be true or false.")),
                },
                FilterKind::Text => SqlValue::Text(value.to_owned()),
            };
            conditions.push(format!("{expr} = {}", placeholder(value, &mut values)));
        }

        if let Some(after) = query.after.as_deref() {
            let invalid = || ServiceError::invalid_field("after", "Invalid cursor.");
            match self.order {
                Some(order) => {
                    let (at, key) = after.split_once('|').ok_or_else(invalid)?;
                    let at = DateTime::parse_from_rfc3339(at).map_err(|_| invalid())?.with_timezone(&Utc);
                    let key = self.parse_key(key).ok_or_else(invalid)?;
                    let a = placeholder(SqlValue::Time(at), &mut values);
                    let k = placeholder(key, &mut values);
                    // A row comparison: an index range on (order, key) on both databases.
                    conditions.push(format!("({order}, {}) < ({a}, {k})", self.key));
                }
                None => {
                    let key = self.parse_key(after).ok_or_else(invalid)?;
                    conditions.push(format!("{} < {}", self.key, placeholder(key, &mut values)));
                }
            }
        }

        let limit = query.limit.clamp(1, 500);
        let mut select = vec![self.key.to_owned(), self.order.unwrap_or("NULL").to_owned()];
        select.extend(self.columns.iter().map(|c| c.to_string()));
        let order = match self.order {
            Some(order) => format!("{order} DESC, {} DESC", self.key),
            None => format!("{} DESC", self.key),
        };
        let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
        let sql =
            format!("SELECT {} FROM {}{filter} ORDER BY {order} LIMIT {}", select.join(", "), self.from, limit + 1);
        let rows = query_cells(db, &sql, &values, |cells: &mut dyn CellSource| {
            let key = cells.key(0, self.key_kind);
            let at = cells.time(1);
            let row =
                ListRow { id: key.clone(), cells: (2..2 + self.columns.len()).map(|i| cells.display(i)).collect() };
            (
                row,
                at.map(|at| format!("{}|{key}", at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))).unwrap_or(key),
            )
        })
        .await?;
        let mut page = ListPage::default();
        let more = rows.len() > limit;
        for (row, cursor) in rows.into_iter().take(limit) {
            page.next = Some(cursor);
            page.rows.push(row);
        }
        if !more {
            page.next = None;
        }
        Ok(page)
    }
}

/// Runs `sql` with `values` and renders every row's cells as text (for a detail page's
/// related tables).
pub async fn table(db: &Db, sql: &str, values: &[SqlValue]) -> ServiceResult<Vec<Vec<String>>> {
    query_cells(db, sql, values, |cells| (0..cells.len()).map(|i| cells.display(i)).collect()).await
}

/// Counts the rows of `sql` (a `SELECT COUNT(*) …`), for dashboard cards.
pub async fn count(db: &Db, sql: &str, values: &[SqlValue]) -> ServiceResult<i64> {
    let rows = query_cells(db, sql, values, |cells| cells.display(0)).await?;
    Ok(rows.first().and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// The cap of dashboard figures: a card reads at most this many rows per figure.
pub const DASHBOARD_CAP: i64 = 10_000;

/// A dashboard figure: exact up to a cap, `cap+` beyond it, so a card costs the same on a
/// table of a thousand rows or a hundred million.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Rows counted (at most the cap).
    pub count: i64,
    /// Whether there are more than the cap.
    pub more: bool,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.more { write!(f, "{}+", self.count) } else { write!(f, "{}", self.count) }
    }
}

/// Counts the rows of `from_where` (`"auth_users WHERE date_joined >= $1"`) up to `cap`:
/// the database stops reading at `cap + 1` rows.
pub async fn count_upto(db: &Db, from_where: &str, values: &[SqlValue], cap: i64) -> ServiceResult<Tally> {
    let sql = format!("SELECT COUNT(*) FROM (SELECT 1 FROM {from_where} LIMIT {}) AS capped", cap.max(0) + 1);
    let counted = count(db, &sql, values).await?;
    Ok(if counted > cap { Tally { count: cap, more: true } } else { Tally { count: counted, more: false } })
}

/// The rows of a whole table: exact up to `cap`; beyond it, on PostgreSQL, the planner's
/// estimate (`≈1200000`), read in constant time.
pub async fn table_size(db: &Db, table_name: &'static str, cap: i64) -> ServiceResult<String> {
    let tally = count_upto(db, table_name, &[], cap).await?;
    if !tally.more {
        return Ok(tally.to_string());
    }
    if let Db::Postgres(pool) = db {
        let estimate: Option<f32> = sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = $1::regclass")
            .bind(table_name)
            .fetch_optional(pool)
            .await?;
        if let Some(estimate) = estimate.filter(|e| *e as i64 > cap) {
            return Ok(format!("≈{}", estimate as i64));
        }
    }
    Ok(tally.to_string())
}

/// A row whose cells can be rendered.
trait CellSource {
    fn len(&self) -> usize;
    fn display(&self, index: usize) -> String;
    fn time(&self, index: usize) -> Option<DateTime<Utc>>;
    fn key(&self, index: usize, kind: KeyKind) -> String;
}

macro_rules! bind_values {
    ($query:expr, $values:expr) => {{
        let mut query = $query;
        for value in $values {
            query = match value {
                SqlValue::Text(v) => query.bind(v.clone()),
                SqlValue::Bool(v) => query.bind(*v),
                SqlValue::Uuid(v) => query.bind(*v),
                SqlValue::Int(v) => query.bind(*v),
                SqlValue::Time(v) => query.bind(*v),
            };
        }
        query
    }};
}

async fn query_cells<T>(
    db: &Db,
    sql: &str,
    values: &[SqlValue],
    mut each: impl FnMut(&mut dyn CellSource) -> T,
) -> ServiceResult<Vec<T>> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    Ok(match db {
        Db::Sqlite(pool) => {
            let rows = bind_values!(sqlx::query(sql), values).fetch_all(pool).await?;
            rows.into_iter().map(|mut row| each(&mut row)).collect()
        }
        Db::Postgres(pool) => {
            let rows = bind_values!(sqlx::query(sql), values).fetch_all(pool).await?;
            rows.into_iter().map(|mut row| each(&mut row)).collect()
        }
    })
}

fn show_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

impl CellSource for SqliteRow {
    fn len(&self) -> usize {
        self.columns().len()
    }

    fn display(&self, i: usize) -> String {
        let Ok(raw) = self.try_get_raw(i) else { return String::new() };
        if raw.is_null() {
            return String::new();
        }
        let stored = raw.type_info().name().to_owned();
        let declared = self.column(i).type_info().name().to_ascii_uppercase();
        match stored.as_str() {
            "INTEGER" if declared.contains("BOOL") => self.try_get::<bool, _>(i).map(yes_no).unwrap_or_default(),
            "INTEGER" => self.try_get::<i64, _>(i).map(|v| v.to_string()).unwrap_or_default(),
            "REAL" => self.try_get::<f64, _>(i).map(|v| v.to_string()).unwrap_or_default(),
            "BLOB" => match self.try_get::<Vec<u8>, _>(i) {
                Ok(bytes) if bytes.len() == 16 => Uuid::from_slice(&bytes).map(|u| u.to_string()).unwrap_or_default(),
                Ok(bytes) => format!("({} bytes)", bytes.len()),
                Err(_) => String::new(),
            },
            _ => {
                let text = self.try_get::<String, _>(i).unwrap_or_default();
                match self.time(i) {
                    Some(at) if looks_like_time(&text) => show_time(at),
                    _ => text,
                }
            }
        }
    }

    fn time(&self, i: usize) -> Option<DateTime<Utc>> {
        self.try_get::<Option<DateTime<Utc>>, _>(i).ok().flatten()
    }

    fn key(&self, i: usize, kind: KeyKind) -> String {
        match kind {
            KeyKind::Uuid => self.try_get::<Uuid, _>(i).map(|u| u.to_string()).unwrap_or_default(),
            KeyKind::Text => self.try_get::<String, _>(i).unwrap_or_default(),
            KeyKind::Int => self.try_get::<i64, _>(i).map(|v| v.to_string()).unwrap_or_default(),
        }
    }
}

fn looks_like_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 19 && bytes[4] == b'-' && bytes[7] == b'-' && bytes[..4].iter().all(u8::is_ascii_digit)
}

impl CellSource for PgRow {
    fn len(&self) -> usize {
        self.columns().len()
    }

    fn display(&self, i: usize) -> String {
        let Ok(raw) = self.try_get_raw(i) else { return String::new() };
        if raw.is_null() {
            return String::new();
        }
        let name = self.column(i).type_info().name().to_owned();
        let shown = match name.as_str() {
            "UUID" => self.try_get::<Uuid, _>(i).map(|v| v.to_string()),
            "BOOL" => self.try_get::<bool, _>(i).map(yes_no),
            "INT8" => self.try_get::<i64, _>(i).map(|v| v.to_string()),
            "INT4" => self.try_get::<i32, _>(i).map(|v| v.to_string()),
            "INT2" => self.try_get::<i16, _>(i).map(|v| v.to_string()),
            "FLOAT8" => self.try_get::<f64, _>(i).map(|v| v.to_string()),
            "FLOAT4" => self.try_get::<f32, _>(i).map(|v| v.to_string()),
            "TIMESTAMPTZ" => self.try_get::<DateTime<Utc>, _>(i).map(show_time),
            "TIMESTAMP" => self.try_get::<NaiveDateTime, _>(i).map(|v| show_time(v.and_utc())),
            "JSON" | "JSONB" => self.try_get::<serde_json::Value, _>(i).map(|v| v.to_string()),
            _ => self.try_get::<String, _>(i),
        };
        shown.unwrap_or_else(|_| format!("({name})"))
    }

    fn time(&self, i: usize) -> Option<DateTime<Utc>> {
        self.try_get::<Option<DateTime<Utc>>, _>(i).ok().flatten()
    }

    fn key(&self, i: usize, kind: KeyKind) -> String {
        match kind {
            KeyKind::Uuid => self.try_get::<Uuid, _>(i).map(|u| u.to_string()).unwrap_or_default(),
            KeyKind::Text => self.try_get::<String, _>(i).unwrap_or_default(),
            KeyKind::Int => self.try_get::<i64, _>(i).map(|v| v.to_string()).unwrap_or_default(),
        }
    }
}

/// The operator and pattern matching values that start with `prefix`, served by the
/// column's index: `LIKE 'prefix%'` on PostgreSQL (with a `text_pattern_ops` index),
/// `GLOB 'prefix*'` on SQLite; wildcards in `prefix` are matched literally.
pub fn prefix_pattern(db: &Db, prefix: &str) -> (&'static str, String) {
    match db {
        Db::Postgres(_) => ("LIKE", like_prefix(prefix)),
        Db::Sqlite(_) => ("GLOB", glob_prefix(prefix)),
    }
}

/// `term%` with `%`, `_` and `\` escaped (PostgreSQL's default LIKE escape is `\`).
fn like_prefix(term: &str) -> String {
    let mut out = String::with_capacity(term.len() + 1);
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// `term*` with `*`, `?` and `[` matched literally.
fn glob_prefix(term: &str) -> String {
    let mut out = String::with_capacity(term.len() + 1);
    for c in term.chars() {
        match c {
            '*' | '?' | '[' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out.push('*');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_terms_match_literally() {
        assert_eq!(like_prefix("a_b%c\\"), "a\\_b\\%c\\\\%");
        assert_eq!(glob_prefix("a*b?[c"), "a[*]b[?][[]c*");
    }
}
