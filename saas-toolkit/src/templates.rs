//! Text templates (minijinja) for email and notification text. Undefined variables are
//! errors, never blanks, and a template's variables can be listed before it is used.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use saas_core::{ServiceError, ServiceResult};

/// A set of named templates; `.html` names are auto-escaped.
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    /// An empty set with strict undefined handling.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        Self { env }
    }

    /// Adds (or replaces) a template; a syntax error is `validation.failed` on `template`.
    pub fn add(&mut self, name: impl Into<String>, source: impl Into<String>) -> ServiceResult<()> {
        self.env.add_template_owned(name.into(), source.into()).map_err(template_error)
    }

    /// Renders a named template with `context`.
    pub fn render(&self, name: &str, context: impl Serialize) -> ServiceResult<String> {
        let template = self.env.get_template(name).map_err(template_error)?;
        template.render(minijinja::value::Serde(context)).map_err(template_error)
    }

    /// Renders a one-off template source with `context`.
    pub fn render_str(&self, source: &str, context: impl Serialize) -> ServiceResult<String> {
        self.env.render_str(source, minijinja::value::Serde(context)).map_err(template_error)
    }

    /// The top-level variables a template source reads (for validating it up front).
    pub fn variables(&self, source: &str) -> ServiceResult<BTreeSet<String>> {
        let template = self.env.template_from_str(source).map_err(template_error)?;
        Ok(template.undeclared_variables(false).into_iter().collect())
    }
}

/// Renders `source` with `context` under the strict rules.
pub fn render_str(source: &str, context: impl Serialize) -> ServiceResult<String> {
    Templates::new().render_str(source, context)
}

fn template_error(err: minijinja::Error) -> ServiceError {
    let message = match err.kind() {
        minijinja::ErrorKind::UndefinedError => format!("a template variable is missing: {err}"),
        _ => format!("template error: {err}"),
    };
    ServiceError::invalid_field("template", message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_with_context_and_refuses_missing_variables() {
        let text = render_str("New message from {{ sender_name }}", json!({"sender_name": "Ann"})).unwrap();
        assert_eq!(text, "New message from Ann");
        let err = render_str("Hi {{ name }}", json!({})).unwrap_err();
        assert_eq!(err.code(), "validation.failed");
        assert!(err.details()["fields"]["template"][0].as_str().unwrap().contains("missing"));
    }

    #[test]
    fn lists_variables_and_reports_syntax_errors() {
        let templates = Templates::new();
        let vars = templates.variables("{{ title }}: {{ message }} {% if extra %}{{ extra }}{% endif %}").unwrap();
        assert_eq!(vars.into_iter().collect::<Vec<_>>(), vec!["extra", "message", "title"]);
        assert!(templates.variables("{{ unclosed").is_err());
    }

    #[test]
    fn html_templates_are_escaped() {
        let mut templates = Templates::new();
        templates.add("welcome.html", "<p>Hello {{ name }}</p>").unwrap();
        templates.add("welcome.txt", "Hello {{ name }}").unwrap();
        let context = json!({"name": "<b>Ann</b>"});
        assert_eq!(templates.render("welcome.html", &context).unwrap(), "<p>Hello &lt;b&gt;Ann&lt;&#x2f;b&gt;</p>");
        assert_eq!(templates.render("welcome.txt", &context).unwrap(), "Hello <b>Ann</b>");
    }
}
