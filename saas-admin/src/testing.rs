//! A cookie-keeping HTTP client for tests of the admin site (feature `testing`): it signs
//! in through the sign-in form and fills each form's CSRF token from the page it came from.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;

/// One page as the browser got it.
#[derive(Debug, Clone)]
pub struct Page {
    /// Status.
    pub status: StatusCode,
    /// `Location` of a redirect.
    pub location: Option<String>,
    /// Raw `Set-Cookie` values.
    pub set_cookies: Vec<String>,
    /// Response headers, lower-case names.
    pub headers: BTreeMap<String, String>,
    /// The HTML.
    pub body: String,
}

impl Page {
    /// The CSRF token of the first form on the page.
    pub fn csrf(&self) -> Option<String> {
        hidden_value(&self.body, "csrf_token")
    }

    /// Every `href`, `src` and `action` of the page, entities decoded.
    pub fn links(&self) -> Vec<String> {
        let mut links = Vec::new();
        for attribute in ["href=\"", "src=\"", "action=\""] {
            for rest in self.body.split(attribute).skip(1) {
                let raw = &rest[..rest.find('"').unwrap_or(rest.len())];
                links.push(unescape(raw));
            }
        }
        links
    }

    /// Whether the (HTML-escaped) text appears on the page.
    pub fn shows(&self, text: &str) -> bool {
        self.body.contains(&escape(text))
    }
}

fn unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

/// The value of the hidden input `name` in `html`.
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// A browser without JavaScript: cookies kept, redirects not followed.
pub struct AdminClient {
    base: String,
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl AdminClient {
    /// A client of the app at `base` (`http://127.0.0.1:port`).
    pub fn new(base: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|err| panic!("cannot build an HTTP client: {err}"));
        Self { base: base.into(), http, cookies: BTreeMap::new() }
    }

    /// The cookie `name`, if set.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let request = if cookie.is_empty() { request } else { request.header("cookie", cookie.join("; ")) };
        let response = request.send().await.unwrap_or_else(|err| panic!("request failed: {err}"));
        let status = response.status();
        let mut headers = BTreeMap::new();
        for (name, value) in response.headers() {
            headers.insert(name.as_str().to_owned(), value.to_str().unwrap_or_default().to_owned());
        }
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        for set in &set_cookies {
            let pair = set.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let gone = set.contains("Max-Age=0") || value.is_empty();
                if gone {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let location = headers.get("location").cloned();
        let body = response.text().await.unwrap_or_default();
        Page { status, location, set_cookies, headers, body }
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// `POST path` with these form fields, exactly as given.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            body.append_pair(name, value);
        }
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.finish());
        self.send(request).await
    }

    /// Loads `page` (a page with a form), then posts `fields` plus its CSRF token to `path`.
    pub async fn submit(&mut self, page: &str, path: &str, fields: &[(&str, &str)]) -> Page {
        let form = self.get(page).await;
        let token = form.csrf().unwrap_or_else(|| panic!("no CSRF token on {page}: {}", form.body));
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf_token", &token));
        self.post(path, &all).await
    }

    /// Signs in through the form; returns the answer to the form.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        self.submit("/admin/login/", "/admin/login/", &[("email", email), ("password", password), ("next", "/admin/")])
            .await
    }
}
