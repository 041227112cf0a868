//! The {{ singular }} record and the inputs that create and change one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use saas_core::{ServiceResult, ValidationErrors};

/// Longest accepted name, in characters.
pub const NAME_MAX_CHARS: usize = 200;
/// Longest accepted description, in characters.
pub const DESCRIPTION_MAX_CHARS: usize = 5000;

/// A {{ singular }}, as stored and as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct {{ Singular }} {
    /// Id (UUIDv7: newer ones sort after older ones).
    pub id: Uuid,
    /// Who created it; only they see it.
    pub owner_id: Uuid,
    /// Its name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// `{"name", "description"?}`: a {{ singular }} to create.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct {{ Singular }}Input {
    /// Its name (1–200 characters).
    pub name: String,
    /// Free text (up to 5000 characters).
    #[serde(default)]
    pub description: String,
}

/// `{"name"?, "description"?}`: the fields to change; absent ones stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct {{ Singular }}Changes {
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
}

impl {{ Singular }} {
    /// Applies `changes`, then checks the result (400 `validation.failed` naming each bad field).
    pub fn apply(&mut self, changes: {{ Singular }}Changes) -> ServiceResult<()> {
        if let Some(name) = changes.name {
            self.name = name.trim().to_owned();
        }
        if let Some(description) = changes.description {
            self.description = description;
        }
        self.validate()
    }

    /// Checks the fields a client sets.
    pub fn validate(&self) -> ServiceResult<()> {
        let mut errors = ValidationErrors::default();
        if self.name.is_empty() {
            errors.add("name", "This field may not be blank.");
        } else if self.name.chars().count() > NAME_MAX_CHARS {
            errors.add("name", format!("Ensure this field has no more than {NAME_MAX_CHARS} characters."));
        }
        if self.description.chars().count() > DESCRIPTION_MAX_CHARS {
            errors.add("description", format!("Ensure this field has no more than {DESCRIPTION_MAX_CHARS} characters."));
        }
        errors.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> {{ Singular }} {
        let now = Utc::now();
        {{ Singular }} {
            id: Uuid::now_v7(),
            owner_id: Uuid::now_v7(),
            name: "First".into(),
            description: String::new(),
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn changes_apply_only_the_fields_given_and_are_checked() {
        let mut record = sample();
        record.apply({{ Singular }}Changes { description: Some("More".into()), ..Default::default() }).unwrap();
        assert_eq!((record.name.as_str(), record.description.as_str()), ("First", "More"));
        let blank = record.apply({{ Singular }}Changes { name: Some("  ".into()), ..Default::default() });
        assert_eq!(blank.unwrap_err().code(), "validation.failed");
        let long = "x".repeat(NAME_MAX_CHARS + 1);
        assert!(record.apply({{ Singular }}Changes { name: Some(long), ..Default::default() }).is_err());
    }
}
