//! The profile: username rules, completion, preferences.

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use saas_core::{ServiceError, ServiceResult, ValidationErrors};

use super::AuthService;
use crate::models::{Profile, RESERVED_USERNAMES};

/// Changes to a profile; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct ProfileUpdate {
    /// 3–30 of `[A-Za-z0-9_-]`, stored lower-case, unique.
    pub username: Option<String>,
    /// Given name (≤ 150).
    pub first_name: Option<String>,
    /// Family name (≤ 150).
    pub last_name: Option<String>,
    /// An `http(s)` URL, or empty.
    pub avatar_url: Option<String>,
    /// Free text (≤ 500).
    pub bio: Option<String>,
    /// IANA zone name.
    pub timezone: Option<String>,
    /// A JSON object.
    #[schema(value_type = Object)]
    pub preferences: Option<Value>,
}

/// Checks a username's shape and reservation; returns it lower-cased.
pub fn normalize_username(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    let shape_ok =
        (3..=30).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !shape_ok {
        return Err("Use 3 to 30 letters, digits, underscores or hyphens.");
    }
    let name = name.to_ascii_lowercase();
    if RESERVED_USERNAMES.contains(&name.as_str()) {
        return Err("This username is reserved.");
    }
    Ok(name)
}

impl AuthService {
    /// The caller's profile.
    pub async fn profile(&self, user_id: Uuid) -> ServiceResult<Profile> {
        let row = self.store().profile(user_id).await?.ok_or_else(|| ServiceError::not_found("Profile"))?;
        Ok(row.into())
    }

    /// Applies `update`. A profile must end with a username (an incomplete profile's
    /// update has to set one); a username held by someone else is `auth.username_taken`.
    pub async fn update_profile(&self, user_id: Uuid, update: ProfileUpdate) -> ServiceResult<Profile> {
        let mut row = self.store().profile(user_id).await?.ok_or_else(|| ServiceError::not_found("Profile"))?;
        let mut errors = ValidationErrors::default();
        if let Some(raw) = &update.username {
            match normalize_username(raw) {
                Ok(name) => row.username = Some(name),
                Err(message) => errors.add("username", message),
            }
        } else if row.username.is_none() {
            errors.add("username", "Choose a username to complete your profile.");
        }
        let text_fields = [
            ("first_name", &update.first_name, 150, &mut row.first_name),
            ("last_name", &update.last_name, 150, &mut row.last_name),
            ("bio", &update.bio, 500, &mut row.bio),
        ];
        for (name, value, max, target) in text_fields {
            if let Some(value) = value {
                if value.chars().count() > max {
                    errors.add(name, format!("Ensure this field has no more than {max} characters."));
                } else {
                    *target = value.trim().to_owned();
                }
            }
        }
        if let Some(url) = &update.avatar_url {
            let url = url.trim();
            if url.is_empty() || ((url.starts_with("https://") || url.starts_with("http://")) && url.len() <= 500) {
                row.avatar_url = url.to_owned();
            } else {
                errors.add("avatar_url", "Enter a valid http(s) URL.");
            }
        }
        if let Some(zone) = &update.timezone {
            let zone = zone.trim();
            if zone.is_empty() || zone.len() > 64 || zone.contains(char::is_whitespace) {
                errors.add("timezone", "Enter a time zone name such as Europe/Paris.");
            } else {
                row.timezone = zone.to_owned();
            }
        }
        match update.preferences {
            Some(Value::Object(map)) => row.preferences.0 = Value::Object(map),
            Some(_) => errors.add("preferences", "Preferences must be a JSON object."),
            None => {}
        }
        errors.into_result()?;
        if let Some(name) = &row.username
            && self.store().username_taken(name, user_id).await?
        {
            return Err(username_taken());
        }
        row.updated_at = chrono::Utc::now();
        if !self.store().save_profile(&row).await? {
            return Err(username_taken());
        }
        self.profile(user_id).await
    }
}

fn username_taken() -> ServiceError {
    ServiceError::bad_request("auth.username_taken", "This username is already taken.")
        .with_detail("fields", serde_json::json!({"username": ["This username is already taken."]}))
}

#[cfg(test)]
mod tests {
    use super::normalize_username;

    #[test]
    fn usernames_follow_the_rules() {
        assert_eq!(normalize_username(" Ann_Lee-9 ").unwrap(), "ann_lee-9");
        assert!(normalize_username("ab").is_err());
        assert!(normalize_username(&"a".repeat(31)).is_err());
        assert!(normalize_username("ann lee").is_err());
        assert!(normalize_username("añn").is_err());
        assert_eq!(normalize_username("Admin").unwrap_err(), "This username is reserved.");
        assert!(normalize_username("support").is_err());
    }
}
