//! Names the user gives: checked before anything is written, and turned into the forms the
//! generated code needs (`blog_posts` → `BlogPosts`, `blog_post`, `BlogPost`).

use crate::{CliResult, Failure};

/// Rust's keywords, reserved words included: none can name a crate or a module.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
    "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match", "mod",
    "move", "mut", "override", "priv", "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true",
    "try", "type", "typeof", "union", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Crate names an app cannot take: the standard library's and the SDK's own.
const TAKEN_CRATE_NAMES: &[&str] = &[
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
    "saas_core",
    "saas_toolkit",
    "saas_auth",
    "saas_payments",
    "saas_chat",
    "saas_notify",
    "saas_cli",
];

/// The longest name accepted.
const MAX_LEN: usize = 64;

/// Checks an app name: a Cargo package name (lower-case letters, digits, `-`, `_`, starting
/// with a letter) whose crate name is not a keyword nor taken.
pub fn check_app_name(name: &str) -> CliResult<()> {
    check_shape(name, "app name", true)?;
    let crate_name = name.replace('-', "_");
    if KEYWORDS.contains(&crate_name.as_str()) {
        return Err(Failure::new(format!("`{name}` is a Rust keyword and cannot name a crate: choose another name")));
    }
    if TAKEN_CRATE_NAMES.contains(&crate_name.as_str()) {
        return Err(Failure::new(format!("`{name}` is the name of a crate the app depends on: choose another name")));
    }
    Ok(())
}

/// Checks the name of a module or strategy: a snake_case Rust identifier, not a keyword.
pub fn check_identifier(name: &str, what: &str) -> CliResult<()> {
    check_shape(name, what, false)?;
    if name.ends_with('_') || name.contains("__") {
        return Err(Failure::new(format!("invalid {what} `{name}`: no leading, trailing or doubled `_`")));
    }
    if KEYWORDS.contains(&name) {
        return Err(Failure::new(format!("`{name}` is a Rust keyword and cannot name a {what}: choose another name")));
    }
    Ok(())
}

fn check_shape(name: &str, what: &str, dashes: bool) -> CliResult<()> {
    let allowed = if dashes { "lower-case letters, digits, `-` and `_`" } else { "lower-case letters, digits and `_`" };
    if name.is_empty() {
        return Err(Failure::new(format!("the {what} is empty")));
    }
    if name.len() > MAX_LEN {
        return Err(Failure::new(format!("the {what} `{name}` is longer than {MAX_LEN} characters")));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(Failure::new(format!("invalid {what} `{name}`: it must start with a lower-case letter")));
    }
    if let Some(bad) =
        name.chars().find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || (dashes && c == '-')))
    {
        return Err(Failure::new(format!("invalid {what} `{name}`: `{bad}` is not allowed ({allowed} only)")));
    }
    Ok(())
}

/// `blog_posts` → `BlogPosts`.
pub fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The singular of an English plural in snake_case (`categories` → `category`,
/// `boxes` → `box`, `notes` → `note`); a word that does not look plural is kept.
pub fn singular(plural: &str) -> String {
    let (head, last) = match plural.rsplit_once('_') {
        Some((head, last)) => (Some(head), last),
        None => (None, plural),
    };
    let word = if let Some(stem) = last.strip_suffix("ies").filter(|stem| !stem.is_empty()) {
        format!("{stem}y")
    } else if ["sses", "xes", "zes", "ches", "shes"].iter().any(|end| last.ends_with(end)) {
        last[..last.len() - 2].to_owned()
    } else if last.ends_with('s') && !last.ends_with("ss") && last.len() > 1 {
        last[..last.len() - 1].to_owned()
    } else {
        last.to_owned()
    };
    match head {
        Some(head) => format!("{head}_{word}"),
        None => word,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_are_crate_names() {
        for good in ["demo", "my-app", "my_app2", "a"] {
            assert!(check_app_name(good).is_ok(), "{good}");
        }
        for bad in ["", "2fast", "My-App", "my app", "my.app", "-x", "fn", "self", "test", "saas-core", "ünï"] {
            assert!(check_app_name(bad).is_err(), "{bad}");
        }
        assert!(check_app_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn identifiers_are_snake_case_and_not_keywords() {
        for good in ["notes", "blog_posts", "tip2"] {
            assert!(check_identifier(good, "module name").is_ok(), "{good}");
        }
        for bad in ["Notes", "blog-posts", "_x", "x_", "a__b", "type", "mod", ""] {
            assert!(check_identifier(bad, "module name").is_err(), "{bad}");
        }
    }

    #[test]
    fn names_take_the_forms_code_needs() {
        assert_eq!(pascal_case("blog_posts"), "BlogPosts");
        assert_eq!(pascal_case("tip"), "Tip");
        for (plural, one) in [
            ("notes", "note"),
            ("categories", "category"),
            ("boxes", "box"),
            ("addresses", "address"),
            ("matches", "match"),
            ("blog_posts", "blog_post"),
            ("inventory", "inventory"),
            ("glass", "glass"),
            ("s", "s"),
        ] {
            assert_eq!(singular(plural), one, "{plural}");
        }
    }
}
