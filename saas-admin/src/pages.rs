//! The pages of the site: sign-in and sign-out, the dashboard, and for every panel its
//! list, detail, actions and form. Every form carries the session's CSRF token; every
//! action and save is audited, refused ones too.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form as FormBody, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::Environment;
use serde_json::{Value, json};

use saas_core::admin::{AdminPanel, AdminSite, Detail, FieldKind, Form, ListQuery};
use saas_core::{AppContext, ErrorKind, ServiceError};
use saas_toolkit::rate_limit::{ClientIp, RateLimit};

use crate::audit::{self, AuditEntry, AuditLogPanel};
use crate::session::{self, FLASH_COOKIE, SESSION_COOKIE, SESSION_TTL, SIGN_IN_CSRF_COOKIE, Session};

/// Rows per list page.
pub const PAGE_SIZE: usize = 50;

const STYLESHEET: &str = include_str!("../static/admin.css");

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.add_filter("segment", |value: String| path_segment(&value));
        for (name, source) in [
            ("base.html", include_str!("../templates/base.html")),
            ("login.html", include_str!("../templates/login.html")),
            ("dashboard.html", include_str!("../templates/dashboard.html")),
            ("list.html", include_str!("../templates/list.html")),
            ("detail.html", include_str!("../templates/detail.html")),
            ("field.html", include_str!("../templates/field.html")),
            ("form.html", include_str!("../templates/form.html")),
            ("message.html", include_str!("../templates/message.html")),
        ] {
            if let Err(err) = env.add_template(name, source) {
                tracing::error!(%err, name, "admin template does not compile");
            }
        }
        env
    })
}

/// `value` as one URL path segment: everything but letters, digits and `-._~` escaped, so
/// an id never reaches another path (`/`, `..`, `?`, `#`).
pub fn path_segment(value: &str) -> String {
    let dots = value == "." || value == "..";
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || (!dots && matches!(byte, b'-' | b'.' | b'_' | b'~')) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The routes of the site under `/admin/`.
pub fn routes() -> Router<AppContext> {
    Router::new()
        .route("/admin", get(|| async { redirect("/admin/") }))
        .route("/admin/", get(dashboard))
        .route("/admin/login/", get(sign_in_page).post(sign_in))
        .route("/admin/logout/", post(sign_out))
        .route("/admin/static/admin.css", get(stylesheet))
        .route("/admin/{panel}/", get(list))
        .route("/admin/{panel}/new/", get(new_form).post(create))
        .route("/admin/{panel}/{id}/", get(detail))
        .route("/admin/{panel}/{id}/edit/", get(edit_form).post(update))
        .route("/admin/{panel}/{id}/actions/{action}/", post(act))
}

fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn with_cookie(mut response: Response, cookie: String) -> Response {
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn site(ctx: &AppContext) -> Arc<AdminSite> {
    ctx.get::<Arc<AdminSite>>().unwrap_or_default()
}

fn site_title(ctx: &AppContext) -> String {
    ctx.config().var("ADMIN_SITE_TITLE").unwrap_or("SaaS").to_owned()
}

/// A rendered page with the site's security headers: no framing, no caching, nothing
/// loaded from another origin.
fn page(ctx: &AppContext, status: StatusCode, template: &str, data: Value) -> Response {
    let mut data = data;
    if let Value::Object(map) = &mut data {
        map.insert("site_title".into(), Value::String(site_title(ctx)));
    }
    let body = templates().get_template(template).and_then(|t| t.render(minijinja::value::Serde(&data)));
    let mut response = match body {
        Ok(body) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(err) => {
            tracing::error!(%err, template, "admin page did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "The page could not be rendered.").into_response()
        }
    };
    // The page is its own error page: the API's JSON envelope leaves it alone.
    response.extensions_mut().insert(saas_core::http::OwnErrorPage);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    response
}

/// Navigation and header data of a signed-in page.
fn chrome(site: &AdminSite, session: &Session, current: &str) -> Value {
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for panel in site.panels() {
        let entry = json!({"slug": panel.slug(), "title": panel.title()});
        match groups.iter_mut().find(|(name, _)| name == panel.group()) {
            Some((_, panels)) => panels.push(entry),
            None => groups.push((panel.group().to_owned(), vec![entry])),
        }
    }
    let nav: Vec<Value> = groups.into_iter().map(|(name, panels)| json!({"name": name, "panels": panels})).collect();
    json!({"staff": session.user, "csrf": session.csrf, "nav": nav, "current": current})
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(base), Value::Object(extra)) = (&mut base, extra) {
        base.extend(extra);
    }
    base
}

fn message(ctx: &AppContext, status: StatusCode, heading: &str, text: &str, chrome: Value) -> Response {
    page(ctx, status, "message.html", merge(chrome, json!({"heading": heading, "text": text})))
}

/// The signed-in staff member, or the response to send instead (to the sign-in page).
async fn staff(ctx: &AppContext, headers: &HeaderMap, uri: &Uri) -> Result<(Arc<AdminSite>, Session), Response> {
    let site = site(ctx);
    let Some(accounts) = site.staff_accounts().cloned() else {
        return Err(message(
            ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            "No accounts",
            "No module provides staff accounts: add the accounts module to the app.",
            json!({}),
        ));
    };
    match session::current(ctx, accounts.as_ref(), headers).await {
        Ok(Some(session)) => Ok((site, session)),
        Ok(None) => {
            let next: String = form_urlencoded::byte_serialize(return_to(uri).as_bytes()).collect();
            Err(redirect(&format!("/admin/login/?next={next}")))
        }
        Err(err) => Err(error_page(ctx, &err, json!({}))),
    }
}

/// Where to come back after signing in: the page asked for, or for a form's target
/// (an action, an edit, sign-out) the page the form was on.
fn return_to(uri: &Uri) -> String {
    let path = uri.path();
    if let Some(at) = path.find("/actions/") {
        return path[..=at].to_owned();
    }
    if path.ends_with("/logout/") {
        return "/admin/".to_owned();
    }
    uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| path.to_owned())
}

fn error_page(ctx: &AppContext, err: &ServiceError, chrome: Value) -> Response {
    let heading = match err.kind() {
        ErrorKind::NotFound => "Not found",
        ErrorKind::Forbidden => "Forbidden",
        ErrorKind::Unavailable => "Unavailable",
        ErrorKind::Internal => "Something went wrong",
        _ => "Refused",
    };
    let text = if err.kind() == ErrorKind::Internal { "The request could not be completed." } else { err.message() };
    message(ctx, err.status(), heading, text, chrome)
}

fn csrf_ok(session: &Session, form: &Form) -> bool {
    form.get("csrf_token").is_some_and(|token| session::same_secret(token, &session.csrf))
}

fn csrf_refused(ctx: &AppContext, chrome: Value) -> Response {
    message(
        ctx,
        StatusCode::FORBIDDEN,
        "CSRF check failed",
        "The form was missing its security token or it did not match your session. Reload the page and try again.",
        chrome,
    )
}

/// The message left by the previous action, and the cookie that clears it.
fn take_flash(ctx: &AppContext, headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let Some(raw) = session::cookie(headers, FLASH_COOKIE) else { return (None, None) };
    let text: String = form_urlencoded::parse(format!("m={raw}").as_bytes()).map(|(_, v)| v.into_owned()).collect();
    (Some(text), Some(session::set_cookie(ctx, FLASH_COOKIE, "", Duration::ZERO)))
}

fn flash_and_go(ctx: &AppContext, text: &str, to: &str) -> Response {
    let encoded: String = form_urlencoded::byte_serialize(text.as_bytes()).collect();
    with_cookie(redirect(to), session::set_cookie(ctx, FLASH_COOKIE, &encoded, Duration::from_secs(60)))
}

fn finish(response: Response, clear: Option<String>) -> Response {
    match clear {
        Some(cookie) => with_cookie(response, cookie),
        None => response,
    }
}

fn to_form(pairs: Vec<(String, String)>) -> Form {
    pairs.into_iter().collect()
}

// ---- sign-in ----------------------------------------------------------------------------

fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next) if next.starts_with("/admin/") && !next.starts_with("//") && !next.contains('\\') => next.to_owned(),
        _ => "/admin/".to_owned(),
    }
}

fn sign_in_form(ctx: &AppContext, status: StatusCode, email: &str, next: &str, error: Option<&str>) -> Response {
    let token = session::random_token();
    let response =
        page(ctx, status, "login.html", json!({"csrf": token, "email": email, "next": next, "error": error}));
    with_cookie(response, session::set_cookie(ctx, SIGN_IN_CSRF_COOKIE, &token, Duration::from_secs(3600)))
}

async fn sign_in_page(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let next = safe_next(query.get("next").map(String::as_str));
    if let Some(accounts) = site(&ctx).staff_accounts()
        && let Ok(Some(_)) = session::current(&ctx, accounts.as_ref(), &headers).await
    {
        return redirect(&next);
    }
    sign_in_form(&ctx, StatusCode::OK, "", &next, None)
}

/// One answer for every refused sign-in, so the form tells no one whether a password was
/// right (the reason is in the audit log).
const SIGN_IN_REFUSED: &str =
    "Unable to sign in: the email or password is wrong, or the account is not an active staff account.";

/// Longest email the form accepts (the longest valid address).
const MAX_EMAIL: usize = 254;

async fn sign_in(
    State(ctx): State<AppContext>,
    ip: ClientIp,
    headers: HeaderMap,
    FormBody(form): FormBody<Vec<(String, String)>>,
) -> Response {
    let form = to_form(form);
    let email = form.get("email").map(|e| e.trim().to_owned()).unwrap_or_default();
    let next = safe_next(form.get("next").map(String::as_str));
    let attempt = AuditEntry::anonymous(&email, "session", "", "sign_in");
    let cookie_token = session::cookie(&headers, SIGN_IN_CSRF_COOKIE).unwrap_or_default();
    if !form.get("csrf_token").is_some_and(|token| session::same_secret(token, cookie_token)) {
        audit::record_or_log(&ctx, attempt.refused("csrf_failed")).await;
        return csrf_refused(&ctx, json!({}));
    }
    let site = site(&ctx);
    let Some(accounts) = site.staff_accounts().cloned() else {
        return message(
            &ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            "No accounts",
            "No module provides staff accounts.",
            json!({}),
        );
    };
    let limit = RateLimit::per_minute("admin.sign_in", ctx.config().auth_rate_limit_per_minute);
    if let Err(err) = limit.check(&ctx, &ip.0.to_string()).await {
        audit::record_or_log(&ctx, attempt.refused(err.code())).await;
        let mut response = sign_in_form(&ctx, err.status(), &email, &next, Some(err.message()));
        if let Some(seconds) = err.details().get("retry_after").and_then(Value::as_u64) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        return response;
    }
    let password = form.get("password").cloned().unwrap_or_default();
    let checked = if email.len() > MAX_EMAIL {
        Err(ServiceError::unauthenticated("auth.invalid_credentials", SIGN_IN_REFUSED))
    } else {
        accounts.sign_in(&ctx, &email, &password).await
    };
    let user = match checked {
        Ok(user) => user,
        Err(err) if matches!(err.kind(), ErrorKind::Internal | ErrorKind::Unavailable) => {
            return error_page(&ctx, &err, json!({}));
        }
        Err(err) => {
            audit::record_or_log(&ctx, attempt.refused(err.code())).await;
            let status = if err.kind() == ErrorKind::RateLimited { err.status() } else { StatusCode::UNAUTHORIZED };
            let text = if err.kind() == ErrorKind::RateLimited { err.message() } else { SIGN_IN_REFUSED };
            return sign_in_form(&ctx, status, &email, &next, Some(text));
        }
    };
    // A session already in the browser ends here: one session per sign-in.
    if let Some(old) = session::cookie(&headers, SESSION_COOKIE)
        && let Err(err) = session::end(&ctx, old).await
    {
        return error_page(&ctx, &err, json!({}));
    }
    let token = match session::start(&ctx, &user).await {
        Ok(token) => token,
        Err(err) => return error_page(&ctx, &err, json!({})),
    };
    let entry = AuditEntry::by(&user, "session", &user.id.to_string(), "sign_in").done("Signed in.");
    if let Err(err) = audit::record(&ctx, entry).await {
        return error_page(&ctx, &err, json!({}));
    }
    let response = with_cookie(redirect(&next), session::set_cookie(&ctx, SESSION_COOKIE, &token, SESSION_TTL));
    with_cookie(response, session::set_cookie(&ctx, SIGN_IN_CSRF_COOKIE, "", Duration::ZERO))
}

async fn sign_out(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    uri: Uri,
    FormBody(form): FormBody<Vec<(String, String)>>,
) -> Response {
    let (site, session) = match staff(&ctx, &headers, &uri).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let entry = AuditEntry::by(&session.user, "session", &session.user.id.to_string(), "sign_out");
    if !csrf_ok(&session, &to_form(form)) {
        audit::record_or_log(&ctx, entry.refused("csrf_failed")).await;
        return csrf_refused(&ctx, chrome(&site, &session, ""));
    }
    if let Err(err) = session::end(&ctx, &session.token).await {
        return error_page(&ctx, &err, json!({}));
    }
    audit::record_or_log(&ctx, entry.done("Signed out.")).await;
    with_cookie(redirect("/admin/login/"), session::set_cookie(&ctx, SESSION_COOKIE, "", Duration::ZERO))
}

async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], STYLESHEET)
        .into_response()
}

// ---- dashboard --------------------------------------------------------------------------

async fn dashboard(State(ctx): State<AppContext>, headers: HeaderMap, uri: Uri) -> Response {
    let (site, session) = match staff(&ctx, &headers, &uri).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (flash, clear) = take_flash(&ctx, &headers);
    let mut cards = Vec::new();
    for card in site.cards() {
        cards.push(match card.card(&ctx).await {
            Ok(card) => serde_json::to_value(card).unwrap_or_default(),
            Err(err) => {
                tracing::warn!(%err, "dashboard card failed");
                json!({"title": "Unavailable", "items": [], "error": err.message()})
            }
        });
    }
    let query = ListQuery { limit: 10, ..ListQuery::default() };
    let activity = match AuditLogPanel.list(&ctx, &query).await {
        Ok(page) => page,
        Err(err) => return error_page(&ctx, &err, chrome(&site, &session, "")),
    };
    let data = merge(chrome(&site, &session, ""), json!({"cards": cards, "activity": activity, "flash": flash}));
    finish(page(&ctx, StatusCode::OK, "dashboard.html", data), clear)
}

// ---- panels -----------------------------------------------------------------------------

fn panel_data(panel: &dyn AdminPanel) -> Value {
    json!({
        "slug": panel.slug(),
        "title": panel.title(),
        "columns": panel.columns(),
        "search_hint": panel.search_hint(),
        "filters": panel.filters(),
        "actions": panel.actions(),
        "creatable": panel.form().is_some(),
    })
}

type Found = (Arc<AdminSite>, Session, Arc<dyn AdminPanel>);

async fn find_panel(ctx: &AppContext, headers: &HeaderMap, uri: &Uri, slug: &str) -> Result<Found, Response> {
    let (site, session) = staff(ctx, headers, uri).await?;
    match site.find(slug).cloned() {
        Some(panel) => Ok((site, session, panel)),
        None => Err(message(
            ctx,
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such panel.",
            chrome(&site, &session, ""),
        )),
    }
}

async fn list(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    uri: Uri,
    Path(slug): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let (site, session, panel) = match find_panel(&ctx, &headers, &uri, &slug).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let params = to_form(params);
    let filters: BTreeMap<String, String> = panel
        .filters()
        .iter()
        .filter_map(|f| params.get(f.name).filter(|v| !v.is_empty()).map(|v| (f.name.to_owned(), v.clone())))
        .collect();
    let query = ListQuery {
        search: params.get("q").filter(|q| !q.trim().is_empty()).cloned(),
        filters: filters.clone(),
        after: params.get("after").filter(|a| !a.is_empty()).cloned(),
        limit: PAGE_SIZE,
    };
    let chrome = chrome(&site, &session, panel.slug());
    let page_data = match panel.list(&ctx, &query).await {
        Ok(page) => page,
        Err(err) => return error_page(&ctx, &err, chrome),
    };
    let next_link = page_data.next.as_ref().map(|after| {
        let mut link = form_urlencoded::Serializer::new(String::new());
        for (name, value) in params.iter().filter(|(name, _)| name.as_str() != "after") {
            link.append_pair(name, value);
        }
        link.append_pair("after", after);
        format!("/admin/{}/?{}", panel.slug(), link.finish())
    });
    let data = json!({
        "panel": panel_data(panel.as_ref()),
        "page": page_data,
        "q": query.search.unwrap_or_default(),
        "chosen": filters,
        "next_link": next_link,
    });
    page(&ctx, StatusCode::OK, "list.html", merge(chrome, data))
}

/// A detail page; `notice` is `{"flash": …}` after an action or `{"error": …}` when it was refused.
fn detail_page(
    ctx: &AppContext,
    status: StatusCode,
    chrome: Value,
    panel: &dyn AdminPanel,
    id: &str,
    detail: &Detail,
    notice: Value,
) -> Response {
    let data = json!({"panel": panel_data(panel), "id": id, "detail": detail});
    page(ctx, status, "detail.html", merge(merge(chrome, data), notice))
}

fn no_such_object(ctx: &AppContext, chrome: Value) -> Response {
    message(ctx, StatusCode::NOT_FOUND, "Not found", "There is no such object.", chrome)
}

async fn detail(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    uri: Uri,
    Path((slug, id)): Path<(String, String)>,
) -> Response {
    let (site, session, panel) = match find_panel(&ctx, &headers, &uri, &slug).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let chrome = chrome(&site, &session, panel.slug());
    let (flash, clear) = take_flash(&ctx, &headers);
    let response = match panel.detail(&ctx, &id).await {
        Ok(Some(detail)) => {
            detail_page(&ctx, StatusCode::OK, chrome, panel.as_ref(), &id, &detail, json!({"flash": flash}))
        }
        Ok(None) => no_such_object(&ctx, chrome),
        Err(err) => error_page(&ctx, &err, chrome),
    };
    finish(response, clear)
}

/// The page of one object.
fn object_path(panel: &dyn AdminPanel, id: &str) -> String {
    format!("/admin/{}/{}/", panel.slug(), path_segment(id))
}

/// Runs an action through the panel (and so through the module's service), audits it
/// with the fields it changed and what was submitted, and shows the outcome. Refusals —
/// a bad CSRF token, an unknown action or object, an unconfirmed dangerous action, the
/// service's own — are audited too.
async fn act(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    uri: Uri,
    Path((slug, id, action)): Path<(String, String, String)>,
    FormBody(form): FormBody<Vec<(String, String)>>,
) -> Response {
    let (site, session, panel) = match find_panel(&ctx, &headers, &uri, &slug).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let chrome = chrome(&site, &session, panel.slug());
    let form = to_form(form);
    let entry = AuditEntry::by(&session.user, panel.slug(), &id, &action).input(&form);
    if !csrf_ok(&session, &form) {
        audit::record_or_log(&ctx, entry.refused("csrf_failed")).await;
        return csrf_refused(&ctx, chrome);
    }
    let Some(spec) = panel.actions().into_iter().find(|a| a.name == action) else {
        audit::record_or_log(&ctx, entry.refused("no such action")).await;
        return message(&ctx, StatusCode::NOT_FOUND, "Not found", "There is no such action.", chrome);
    };
    let before = match panel.detail(&ctx, &id).await {
        Ok(Some(detail)) => detail,
        Ok(None) => {
            audit::record_or_log(&ctx, entry.refused("no such object")).await;
            return no_such_object(&ctx, chrome);
        }
        Err(err) => return error_page(&ctx, &err, chrome),
    };
    if spec.dangerous && form.get("confirm").map(String::as_str) != Some("true") {
        let text = format!("Tick “I am sure” to {}.", spec.label.to_lowercase());
        audit::record_or_log(&ctx, entry.refused("not confirmed")).await;
        return detail_page(
            &ctx,
            StatusCode::BAD_REQUEST,
            chrome,
            panel.as_ref(),
            &id,
            &before,
            json!({"error": text}),
        );
    }
    let outcome = panel.act(&ctx, &session.user, &id, &action, &form).await;
    // Read again for the audit; if that fails the action still stands and is recorded.
    let after = panel.detail(&ctx, &id).await.ok().flatten().unwrap_or_default();
    let entry = entry.changes(&before.fields, &after.fields);
    match outcome {
        Ok(text) => {
            audit::record_or_log(&ctx, entry.done(text.clone())).await;
            flash_and_go(&ctx, &text, &object_path(panel.as_ref(), &id))
        }
        Err(err) => {
            audit::record_or_log(&ctx, entry.refused(format!("{} ({})", err.message(), err.code()))).await;
            if err.kind() == ErrorKind::Internal {
                return error_page(&ctx, &err, chrome);
            }
            let shown = if after.fields.is_empty() { &before } else { &after };
            detail_page(&ctx, err.status(), chrome, panel.as_ref(), &id, shown, json!({"error": err.message()}))
        }
    }
}

// ---- create and edit --------------------------------------------------------------------

fn form_page(
    ctx: &AppContext,
    status: StatusCode,
    chrome: Value,
    panel: &dyn AdminPanel,
    id: Option<&str>,
    values: &Form,
    error: Option<&ServiceError>,
) -> Response {
    let (heading, action) = match id {
        Some(id) => (format!("Edit {id}"), format!("{}edit/", object_path(panel, id))),
        None => (format!("Add to {}", panel.title()), format!("/admin/{}/new/", panel.slug())),
    };
    let data = json!({
        "panel": panel_data(panel),
        "heading": heading,
        "action": action,
        "fields": panel.form().unwrap_or_default(),
        "values": values,
        "error": error.map(ServiceError::message),
        "field_errors": error.and_then(|e| e.details().get("fields").cloned()),
    });
    page(ctx, status, "form.html", merge(chrome, data))
}

async fn new_form(State(ctx): State<AppContext>, headers: HeaderMap, uri: Uri, Path(slug): Path<String>) -> Response {
    let (site, session, panel) = match find_panel(&ctx, &headers, &uri, &slug).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let chrome = chrome(&site, &session, panel.slug());
    if panel.form().is_none() {
        return message(
            &ctx,
            StatusCode::NOT_FOUND,
            "Not found",
            "Objects of this panel are not created here.",
            chrome,
        );
    }
    form_page(&ctx, StatusCode::OK, chrome, panel.as_ref(), None, &Form::new(), None)
}

async fn edit_form(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    uri: Uri,
    Path((slug, id)): Path<(String, String)>,
) -> Response {
    let (site, session, panel) = match find_panel(&ctx, &headers, &uri, &slug).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let chrome = chrome(&site, &session, panel.slug());
    if panel.form().is_none() {
        return message(&ctx, StatusCode::NOT_FOUND, "Not found", "Objects of this panel are not edited here.", chrome);
    }
    match panel.values(&ctx, &id).await {
        Ok(Some(values)) => form_page(&ctx, StatusCode::OK, chrome, panel.as_ref(), Some(&id), &values, None),
        Ok(None) => no_such_object(&ctx, chrome),
        Err(err) => error_page(&ctx, &err, chrome),
    }
}

async fn create(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    uri: Uri,
    Path(slug): Path<String>,
    FormBody(form): FormBody<Vec<(String, String)>>,
) -> Response {
    save(ctx, headers, uri, slug, None, to_form(form)).await
}

async fn update(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    uri: Uri,
    Path((slug, id)): Path<(String, String)>,
    FormBody(form): FormBody<Vec<(String, String)>>,
) -> Response {
    save(ctx, headers, uri, slug, Some(id), to_form(form)).await
}

async fn save(ctx: AppContext, headers: HeaderMap, uri: Uri, slug: String, id: Option<String>, form: Form) -> Response {
    let (site, session, panel) = match find_panel(&ctx, &headers, &uri, &slug).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let chrome = chrome(&site, &session, panel.slug());
    let action = if id.is_some() { "edit" } else { "create" };
    let entry = AuditEntry::by(&session.user, panel.slug(), id.as_deref().unwrap_or_default(), action);
    if !csrf_ok(&session, &form) {
        audit::record_or_log(&ctx, entry.input(&form).refused("csrf_failed")).await;
        return csrf_refused(&ctx, chrome);
    }
    let Some(fields) = panel.form() else {
        return message(&ctx, StatusCode::NOT_FOUND, "Not found", "Objects of this panel are not edited here.", chrome);
    };
    // What the form holds: an unticked checkbox is not sent, and means "false".
    let submitted: Form = fields
        .iter()
        .map(|f| {
            let value = match f.kind {
                FieldKind::Checkbox => {
                    if form.get(f.name).is_some_and(|v| v == "true") { "true" } else { "false" }.to_owned()
                }
                _ => form.get(f.name).cloned().unwrap_or_default(),
            };
            (f.name.to_owned(), value)
        })
        .collect();
    let entry = entry.input(&submitted);
    let before = match &id {
        Some(id) => match panel.values(&ctx, id).await {
            Ok(Some(values)) => values,
            Ok(None) => {
                audit::record_or_log(&ctx, entry.refused("no such object")).await;
                return no_such_object(&ctx, chrome);
            }
            Err(err) => return error_page(&ctx, &err, chrome),
        },
        None => Form::new(),
    };
    let pairs = |form: &Form| form.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>();
    match panel.save(&ctx, &session.user, id.as_deref(), &submitted).await {
        Ok(saved) => {
            // The values as stored (the service may normalise them) are what changed.
            let stored = panel.values(&ctx, &saved).await.ok().flatten().unwrap_or_else(|| submitted.clone());
            let mut entry = entry.changes(&pairs(&before), &pairs(&stored)).done("Saved.");
            if id.is_none() {
                entry = AuditEntry::by(&session.user, panel.slug(), &saved, action)
                    .input(&submitted)
                    .changes(&[], &pairs(&stored))
                    .done("Saved.");
            }
            audit::record_or_log(&ctx, entry).await;
            flash_and_go(&ctx, "Saved.", &object_path(panel.as_ref(), &saved))
        }
        Err(err) => {
            audit::record_or_log(&ctx, entry.refused(format!("{} ({})", err.message(), err.code()))).await;
            if err.kind() == ErrorKind::Internal {
                return error_page(&ctx, &err, chrome);
            }
            form_page(&ctx, err.status(), chrome, panel.as_ref(), id.as_deref(), &submitted, Some(&err))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use saas_core::admin::{ActionSpec, Column, FieldKind, Filter, FormField, ListPage, ListRow, Section};

    fn render(name: &str, data: Value) -> String {
        let template = templates().get_template(name).unwrap_or_else(|err| panic!("{name}: {err}"));
        template.render(minijinja::value::Serde(&data)).unwrap_or_else(|err| panic!("{name}: {err:#}"))
    }

    #[test]
    fn ids_stay_one_path_segment_and_sign_in_returns_to_the_page() {
        assert_eq!(path_segment("evt_1Ab-2.x~"), "evt_1Ab-2.x~");
        assert_eq!(path_segment("a/../b?c#d e+"), "a%2F..%2Fb%3Fc%23d%20e%2B");
        assert_eq!(path_segment(".."), "%2E%2E");
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(return_to(&uri("/admin/users/?q=ann&active=true")), "/admin/users/?q=ann&active=true");
        assert_eq!(return_to(&uri("/admin/users/42/actions/deactivate/")), "/admin/users/42/");
        assert_eq!(return_to(&uri("/admin/logout/")), "/admin/");
    }

    #[test]
    fn every_page_renders_and_escapes() {
        let panel = json!({
            "slug": "users", "title": "Users", "creatable": true, "search_hint": "email",
            "columns": [Column { label: "Email" }],
            "filters": [Filter::yes_no("active", "Active")],
            "actions": [ActionSpec::new("deactivate", "Deactivate")
                .field(FormField::new("reason", "Reason", FieldKind::Text))
                .field(FormField::new("kind", "Kind", FieldKind::Select(vec![("a".into(), "A".into())])))
                .dangerous()],
        });
        let chrome = json!({"staff": {"email": "s@example.com"}, "csrf": "t0k", "site_title": "SaaS",
            "nav": [{"name": "Accounts", "panels": [{"slug": "users", "title": "Users"}]}], "current": "users"});
        let page =
            ListPage { rows: vec![ListRow { id: "1".into(), cells: vec!["<b>x</b>".into()] }], next: Some("c".into()) };
        let list = render(
            "list.html",
            merge(
                chrome.clone(),
                json!({"panel": panel, "page": page, "q": "", "chosen": {}, "next_link": "/admin/users/?after=c"}),
            ),
        );
        assert!(list.contains("&lt;b&gt;x&lt;&#x2f;b&gt;"), "{list}");
        let mut section = Section::new("Linked", &["Provider"]);
        section.row(vec!["google".into()], Some("/admin/x/".into()));
        let detail = Detail::new("d").field("Active", "yes").section(section);
        let html = render(
            "detail.html",
            merge(chrome.clone(), json!({"panel": panel, "id": "1", "detail": detail, "error": "no"})),
        );
        assert!(html.contains("<dt>Active</dt><dd>yes</dd>") && html.contains("name=\"reason\""), "{html}");
        let fields = vec![
            FormField::new("body", "Body", FieldKind::TextArea).required(),
            FormField::new("on", "On", FieldKind::Checkbox),
        ];
        let form = render(
            "form.html",
            merge(
                chrome.clone(),
                json!({"panel": panel, "heading": "Edit", "action": "/admin/users/1/edit/",
            "fields": fields, "values": {"body": "hi", "on": "true"}, "field_errors": {"body": ["Bad."]}}),
            ),
        );
        assert!(form.contains(">hi</textarea>") && form.contains("checked") && form.contains("Bad."), "{form}");
        render(
            "dashboard.html",
            merge(
                chrome.clone(),
                json!({"cards": [{"title": "A", "items": [{"label": "n", "value": "1", "link": null}]}], "activity": ListPage::default()}),
            ),
        );
        render("login.html", json!({"csrf": "t", "email": "", "next": "/admin/", "site_title": "SaaS"}));
        render("message.html", merge(chrome, json!({"heading": "h", "text": "t"})));
    }
}
