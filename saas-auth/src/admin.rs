//! Accounts in the admin site: staff sign-in, the users panel (search by email, filters,
//! profile and linked accounts, deactivate/reactivate, resend verification) and the
//! dashboard's sign-up figures.

use async_trait::async_trait;
use chrono::{Duration, Utc};
use uuid::Uuid;

use saas_core::admin::{
    ActionSpec, AdminAccounts, AdminPanel, AdminUser, Card, Column, DASHBOARD_CAP, DashboardCard, Detail, FieldKind,
    Filter, Form, FormField, KeyKind, ListPage, ListQuery, Search, Section, SqlList, SqlValue, count_upto, table,
    table_size,
};
use saas_core::{AppContext, ServiceError, ServiceResult};
use saas_toolkit::RateLimit;

use crate::AuthService;

/// Staff accounts for the admin site: an active user with `is_staff`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StaffAccounts;

#[async_trait]
impl AdminAccounts for StaffAccounts {
    async fn sign_in(&self, ctx: &AppContext, email: &str, password: &str) -> ServiceResult<AdminUser> {
        // The API's per-account budget: the admin form is no way around the login limit.
        let account = email.trim().to_lowercase();
        let limit = RateLimit::per_minute("auth.login", ctx.config().auth_rate_limit_per_minute);
        limit.check(ctx, &format!("account:{account}")).await?;
        let row = AuthService::get(ctx)?.check_credentials(email, password).await?;
        if !row.is_staff {
            return Err(ServiceError::forbidden("admin.not_staff", "Only staff may use the admin site."));
        }
        Ok(AdminUser { id: row.id, email: row.email })
    }

    async fn staff(&self, ctx: &AppContext, id: Uuid) -> ServiceResult<Option<AdminUser>> {
        let row = AuthService::get(ctx)?.store().user(id).await?;
        Ok(row.filter(|u| u.is_active && u.is_staff).map(|u| AdminUser { id: u.id, email: u.email }))
    }
}

/// Users, with their profile and linked accounts.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsersPanel;

fn users() -> SqlList {
    SqlList::new("auth_users u LEFT JOIN auth_profiles p ON p.user_id = u.id", "u.id", KeyKind::Uuid)
        .order_by("u.date_joined")
        .columns(&["u.email", "p.username", "u.is_active", "u.is_staff", "u.is_email_verified", "u.date_joined"])
        .search(Search::LowerPrefix("u.email"))
        .search(Search::Key)
        .filter_bool("active", "u.is_active")
        .filter_bool("staff", "u.is_staff")
        .filter_bool("verified", "u.is_email_verified")
}

fn user_id(id: &str) -> ServiceResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| ServiceError::not_found("User"))
}

#[async_trait]
impl AdminPanel for UsersPanel {
    fn slug(&self) -> &'static str {
        "users"
    }

    fn title(&self) -> &'static str {
        "Users"
    }

    fn group(&self) -> &'static str {
        "Accounts"
    }

    fn columns(&self) -> Vec<Column> {
        ["Email", "Username", "Active", "Staff", "Verified", "Joined"]
            .into_iter()
            .map(|label| Column { label })
            .collect()
    }

    fn search_hint(&self) -> Option<&'static str> {
        Some("email (start) or user id")
    }

    fn filters(&self) -> Vec<Filter> {
        vec![
            Filter::yes_no("active", "Active"),
            Filter::yes_no("staff", "Staff"),
            Filter::yes_no("verified", "Verified"),
        ]
    }

    fn actions(&self) -> Vec<ActionSpec> {
        vec![
            ActionSpec::new("deactivate", "Deactivate")
                .field(FormField::new("reason", "Reason", FieldKind::Text).help("Kept with the account."))
                .dangerous(),
            ActionSpec::new("reactivate", "Reactivate"),
            ActionSpec::new("resend_verification", "Resend verification email"),
        ]
    }

    async fn list(&self, ctx: &AppContext, query: &ListQuery) -> ServiceResult<ListPage> {
        users().fetch(ctx.db(), query).await
    }

    async fn detail(&self, ctx: &AppContext, id: &str) -> ServiceResult<Option<Detail>> {
        let Ok(id) = Uuid::parse_str(id) else { return Ok(None) };
        let key = [SqlValue::Uuid(id)];
        let rows = table(
            ctx.db(),
            "SELECT u.email, p.username, p.first_name, p.last_name, u.is_active, u.is_staff, u.is_email_verified, \
             u.date_joined, u.last_login, u.deactivated_at, u.deactivation_reason, p.bio, p.timezone \
             FROM auth_users u LEFT JOIN auth_profiles p ON p.user_id = u.id WHERE u.id = $1",
            &key,
        )
        .await?;
        let Some(row) = rows.into_iter().next() else { return Ok(None) };
        let labels = [
            "Email",
            "Username",
            "First name",
            "Last name",
            "Active",
            "Staff",
            "Email verified",
            "Joined",
            "Last login",
            "Deactivated at",
            "Deactivation reason",
            "Bio",
            "Time zone",
        ];
        let detail = Detail::new(row[0].clone()).field("Id", id).fields(&labels, row);
        let mut linked = Section::new("Linked accounts", &["Provider", "Provider user id", "Linked"]);
        let sql = "SELECT provider, provider_user_id, created_at FROM auth_linked_accounts WHERE user_id = $1 \
                   ORDER BY created_at";
        for row in table(ctx.db(), sql, &key).await? {
            linked.row(row, None);
        }
        let mut devices = Section::new("Biometric devices", &["Device", "Name", "Algorithm", "Added", "Last used"]);
        let sql = "SELECT device_id, device_name, algorithm, created_at, last_used_at FROM auth_biometric_credentials \
                   WHERE user_id = $1 ORDER BY created_at";
        for row in table(ctx.db(), sql, &key).await? {
            devices.row(row, None);
        }
        Ok(Some(detail.section(linked).section(devices)))
    }

    async fn act(
        &self,
        ctx: &AppContext,
        actor: &AdminUser,
        id: &str,
        action: &str,
        form: &Form,
    ) -> ServiceResult<String> {
        let service = AuthService::get(ctx)?;
        let id = user_id(id)?;
        match action {
            "deactivate" => {
                if id == actor.id {
                    return Err(ServiceError::bad_request(
                        "admin.self_deactivation",
                        "You cannot deactivate your own account here.",
                    ));
                }
                let reason = form.get("reason").map(|r| r.trim()).filter(|r| !r.is_empty());
                let user = service.deactivate(id, reason).await?;
                Ok(format!("{} is deactivated; their sessions are revoked.", user.email))
            }
            "reactivate" => {
                let user = service.reactivate(id).await?;
                Ok(format!("{} is active again.", user.email))
            }
            "resend_verification" => {
                service.resend_verification(id).await?;
                Ok("A new verification email is on its way.".to_owned())
            }
            _ => Err(ServiceError::not_found(&format!("Action {action}"))),
        }
    }
}

/// Sign-ups and account figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountsCard;

#[async_trait]
impl DashboardCard for AccountsCard {
    async fn card(&self, ctx: &AppContext) -> ServiceResult<Card> {
        let db = ctx.db();
        let week = [SqlValue::Time(Utc::now() - Duration::days(7))];
        let joined = count_upto(db, "auth_users WHERE date_joined >= $1", &week, DASHBOARD_CAP).await?;
        let total = table_size(db, "auth_users", DASHBOARD_CAP).await?;
        // A literal predicate, so the partial index of inactive users serves it.
        let inactive = count_upto(db, "auth_users WHERE is_active = FALSE", &[], DASHBOARD_CAP).await?;
        Ok(Card::new("Accounts")
            .item("Users joined this week", joined, Some("/admin/users/"))
            .item("Users", total, Some("/admin/users/"))
            .item("Deactivated", inactive, Some("/admin/users/?active=false")))
    }
}
