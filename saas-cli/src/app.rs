//! An app made by `saas new`: found from the current folder upwards by its `Cargo.toml`,
//! whose `[package.metadata.saas]` table says which SDK domains it has.

use std::path::{Path, PathBuf};

use crate::{CliResult, Failure};

/// What the generators and the doctor know about an app.
#[derive(Debug, Clone)]
pub struct App {
    /// The folder of its `Cargo.toml`.
    pub root: PathBuf,
    /// The package name.
    pub package: String,
    /// Its Rust edition (for rustfmt).
    pub edition: String,
    /// Which SDK domains it composes.
    pub domains: Domains,
}

/// The SDK domains an app composes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Domains {
    /// saas-auth.
    pub auth: bool,
    /// saas-payments.
    pub payments: bool,
    /// saas-chat.
    pub chat: bool,
    /// saas-notify.
    pub notify: bool,
}

impl Domains {
    /// Every domain, in the order they are listed.
    pub const NAMES: [&'static str; 4] = ["auth", "payments", "chat", "notify"];

    /// Whether `name` is chosen.
    pub fn has(&self, name: &str) -> bool {
        match name {
            "auth" => self.auth,
            "payments" => self.payments,
            "chat" => self.chat,
            "notify" => self.notify,
            _ => false,
        }
    }

    /// Chooses `name`; false when it is not a domain.
    pub fn set(&mut self, name: &str) -> bool {
        match name {
            "auth" => self.auth = true,
            "payments" => self.payments = true,
            "chat" => self.chat = true,
            "notify" => self.notify = true,
            _ => return false,
        }
        true
    }

    /// The chosen ones, comma-separated (`none` when there is none).
    pub fn list(&self) -> String {
        let chosen: Vec<&str> = Self::NAMES.into_iter().filter(|name| self.has(name)).collect();
        if chosen.is_empty() { "none".to_owned() } else { chosen.join(", ") }
    }
}

impl App {
    /// The app whose `Cargo.toml` is in `start` or a folder above it.
    pub fn find(start: &Path) -> CliResult<Self> {
        for dir in start.ancestors() {
            let manifest = dir.join("Cargo.toml");
            if let Ok(text) = std::fs::read_to_string(&manifest) {
                return Self::parse(dir, &text)?.ok_or_else(|| {
                    Failure::new(format!(
                        "{} has no [package.metadata.saas] table: run this in a folder of an app made by `saas new`",
                        manifest.display()
                    ))
                });
            }
        }
        Err(Failure::new(format!(
            "no Cargo.toml in {} or above: run this in the folder of an app made by `saas new`",
            start.display()
        )))
    }

    /// The app described by the manifest `text` in `root`; `None` when it has no saas table.
    fn parse(root: &Path, text: &str) -> CliResult<Option<Self>> {
        let manifest: toml::Table = toml::from_str(text)
            .map_err(|err| Failure::new(format!("{} is not valid TOML: {err}", root.join("Cargo.toml").display())))?;
        let package = manifest.get("package").and_then(toml::Value::as_table);
        let Some(saas) = package
            .and_then(|package| package.get("metadata"))
            .and_then(|metadata| metadata.get("saas"))
            .and_then(toml::Value::as_table)
        else {
            return Ok(None);
        };
        let flag = |name: &str| saas.get(name).and_then(toml::Value::as_bool).unwrap_or(false);
        Ok(Some(Self {
            root: root.to_path_buf(),
            package: package.and_then(|p| p.get("name")).and_then(toml::Value::as_str).unwrap_or("app").to_owned(),
            edition: package.and_then(|p| p.get("edition")).and_then(toml::Value::as_str).unwrap_or("2024").to_owned(),
            domains: Domains {
                auth: flag("auth"),
                payments: flag("payments"),
                chat: flag("chat"),
                notify: flag("notify"),
            },
        }))
    }

    /// The crate name of the package (`my-app` → `my_app`).
    pub fn crate_name(&self) -> String {
        self.package.replace('-', "_")
    }
}
