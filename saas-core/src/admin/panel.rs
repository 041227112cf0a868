//! A panel: one model of a module, as a searchable list, a detail page, actions and
//! (optionally) a create/edit form.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::AdminUser;
use crate::context::AppContext;
use crate::error::{ServiceError, ServiceResult};

/// Submitted form fields, by name.
pub type Form = BTreeMap<String, String>;

/// A column of the list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Column {
    /// Heading.
    pub label: &'static str,
}

/// A filter of the list: a select of values.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Filter {
    /// Query parameter name.
    pub name: &'static str,
    /// Heading.
    pub label: &'static str,
    /// `(value, label)` choices.
    pub choices: Vec<(String, String)>,
}

impl Filter {
    /// A filter whose choices are their own labels.
    pub fn new(name: &'static str, label: &'static str, choices: &[&str]) -> Self {
        Self { name, label, choices: choices.iter().map(|c| (c.to_string(), c.to_string())).collect() }
    }

    /// A yes/no filter.
    pub fn yes_no(name: &'static str, label: &'static str) -> Self {
        Self { name, label, choices: vec![("true".into(), "Yes".into()), ("false".into(), "No".into())] }
    }
}

/// How a form field is entered.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "type", content = "choices", rename_all = "snake_case")]
pub enum FieldKind {
    /// One line of text.
    Text,
    /// Several lines.
    TextArea,
    /// A whole number.
    Number,
    /// A checkbox (`"true"` when ticked).
    Checkbox,
    /// One of `(value, label)`.
    Select(Vec<(String, String)>),
}

/// A field of an action's or a panel's form.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FormField {
    /// Field name.
    pub name: &'static str,
    /// Label.
    pub label: &'static str,
    /// Input kind.
    pub kind: FieldKind,
    /// Whether it must be filled.
    pub required: bool,
    /// A hint under the field.
    pub help: &'static str,
}

impl FormField {
    /// A field.
    pub fn new(name: &'static str, label: &'static str, kind: FieldKind) -> Self {
        Self { name, label, kind, required: false, help: "" }
    }

    /// Marks it required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Adds a hint.
    pub fn help(mut self, help: &'static str) -> Self {
        self.help = help;
        self
    }
}

/// An action on one object (a button on its detail page, with an optional form).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ActionSpec {
    /// Name in the URL (`deactivate`).
    pub name: &'static str,
    /// Button label.
    pub label: &'static str,
    /// Fields asked before running it.
    pub fields: Vec<FormField>,
    /// Shown in red, asking for confirmation.
    pub dangerous: bool,
}

impl ActionSpec {
    /// An action without a form.
    pub fn new(name: &'static str, label: &'static str) -> Self {
        Self { name, label, fields: Vec::new(), dangerous: false }
    }

    /// Adds a form field.
    pub fn field(mut self, field: FormField) -> Self {
        self.fields.push(field);
        self
    }

    /// Marks it dangerous.
    pub fn dangerous(mut self) -> Self {
        self.dangerous = true;
        self
    }
}

/// What the list page asks for.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// The search box.
    pub search: Option<String>,
    /// Chosen filter values, by filter name.
    pub filters: BTreeMap<String, String>,
    /// The cursor of the page (from [`ListPage::next`]).
    pub after: Option<String>,
    /// Rows per page.
    pub limit: usize,
}

/// One row of a list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListRow {
    /// Id of the object (its detail page).
    pub id: String,
    /// Cells, in column order.
    pub cells: Vec<String>,
}

/// A page of a list.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ListPage {
    /// Rows.
    pub rows: Vec<ListRow>,
    /// The cursor of the next page, if any.
    pub next: Option<String>,
}

/// A table on a detail page (state history, ledger entries, messages…).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Section {
    /// Heading.
    pub title: String,
    /// Column headings.
    pub columns: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
    /// Where each row links (`/admin/…`), when it does.
    pub links: Vec<Option<String>>,
}

impl Section {
    /// An empty section.
    pub fn new(title: impl Into<String>, columns: &[&str]) -> Self {
        Self { title: title.into(), columns: columns.iter().map(|c| c.to_string()).collect(), ..Self::default() }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>, link: Option<String>) {
        self.rows.push(cells);
        self.links.push(link);
    }
}

/// The detail page of one object.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Detail {
    /// Heading (an email, an order id…).
    pub title: String,
    /// `(label, value)` fields; the audit log compares them before and after an action.
    pub fields: Vec<(String, String)>,
    /// Related tables.
    pub sections: Vec<Section>,
}

impl Detail {
    /// A detail page.
    pub fn new(title: impl Into<String>) -> Self {
        Self { title: title.into(), ..Self::default() }
    }

    /// Adds a field.
    pub fn field(mut self, label: &str, value: impl ToString) -> Self {
        self.fields.push((label.to_owned(), value.to_string()));
        self
    }

    /// Adds a field per label, from a row of cells in the same order.
    pub fn fields(mut self, labels: &[&str], cells: Vec<String>) -> Self {
        self.fields.extend(labels.iter().map(|label| (*label).to_owned()).zip(cells));
        self
    }

    /// Adds a section.
    pub fn section(mut self, section: Section) -> Self {
        self.sections.push(section);
        self
    }
}

/// One model of a module in the admin site. Actions and saves go through the module's
/// services, so the admin obeys the same rules (and returns the same errors) as the API.
#[async_trait]
pub trait AdminPanel: Send + Sync + 'static {
    /// URL segment, unique in the site (`users`).
    fn slug(&self) -> &'static str;

    /// Plural title (`Users`).
    fn title(&self) -> &'static str;

    /// Navigation group, usually the module (`Accounts`).
    fn group(&self) -> &'static str;

    /// List columns.
    fn columns(&self) -> Vec<Column>;

    /// What the search box searches (`email`); `None` hides it.
    fn search_hint(&self) -> Option<&'static str> {
        None
    }

    /// List filters.
    fn filters(&self) -> Vec<Filter> {
        Vec::new()
    }

    /// Actions on one object.
    fn actions(&self) -> Vec<ActionSpec> {
        Vec::new()
    }

    /// Fields of the create/edit form; `None` when objects are not created or edited here.
    fn form(&self) -> Option<Vec<FormField>> {
        None
    }

    /// A page of the list.
    async fn list(&self, ctx: &AppContext, query: &ListQuery) -> ServiceResult<ListPage>;

    /// One object, `None` when there is no such object.
    async fn detail(&self, ctx: &AppContext, id: &str) -> ServiceResult<Option<Detail>>;

    /// Runs an action; returns the message shown to the staff member.
    async fn act(
        &self,
        _ctx: &AppContext,
        _actor: &AdminUser,
        _id: &str,
        action: &str,
        _form: &Form,
    ) -> ServiceResult<String> {
        Err(ServiceError::not_found(&format!("Action {action}")))
    }

    /// The current values of the edit form.
    async fn values(&self, _ctx: &AppContext, _id: &str) -> ServiceResult<Option<Form>> {
        Ok(None)
    }

    /// Creates (`id` none) or updates an object from the form; returns its id.
    async fn save(
        &self,
        _ctx: &AppContext,
        _actor: &AdminUser,
        _id: Option<&str>,
        _form: &Form,
    ) -> ServiceResult<String> {
        Err(ServiceError::not_found("Form"))
    }
}
