//! Participants of a group: list, add, change roles, remove.

use uuid::Uuid;

use saas_core::{ServiceError, ServiceResult};
use saas_toolkit::pagination::TimeCursor;
use saas_toolkit::{Page, PageParams};

use super::{ChatService, permission_denied};
use crate::events::frames;
use crate::models::{Participant, Role, SystemEvent};
use crate::store::Change;

fn parse_role(role: Option<&str>, default: Role) -> ServiceResult<Role> {
    match role {
        None => Ok(default),
        Some("owner") => Err(ServiceError::invalid_field("role", "Use transfer-ownership/ to change the owner.")),
        Some(text) => {
            Role::parse(text).ok_or_else(|| ServiceError::invalid_field("role", "Must be \"admin\" or \"member\"."))
        }
    }
}

impl ChatService {
    /// Active participants, oldest first.
    pub async fn participants(&self, caller: Uuid, id: Uuid, page: &PageParams) -> ServiceResult<Page<Participant>> {
        self.access(caller, id).await?;
        let limit = page.limit()?;
        let after = page.position::<TimeCursor>()?.map(|p| (p.created_at, p.id));
        let rows = self.store().participants(id, after, limit + 1).await?;
        Ok(Page::from_rows(rows, limit, |row| TimeCursor { created_at: row.joined_at, id: row.id })
            .map(|row| Participant::from(&row)))
    }

    /// Adds a user to a group: the owner adds anyone, an admin adds members.
    pub async fn add_participant(
        &self,
        caller: Uuid,
        id: Uuid,
        user_id: Uuid,
        role: Option<&str>,
    ) -> ServiceResult<Participant> {
        let access = self.access(caller, id).await?;
        Self::require_group(&access)?;
        let role = parse_role(role, Role::Member)?;
        if !access.role().may_add(role) {
            return Err(permission_denied());
        }
        self.require_active_users("user_id", &[user_id]).await?;
        let event = SystemEvent::ParticipantAdded { user_id, added_by_id: caller };
        let changes = [
            Change::Require { user_id: caller, role: Some(access.role()) },
            Change::AddParticipant { user_id, role: Some(role) },
            Change::Post(Self::system(&event, caller)),
        ];
        let applied = self.store().apply(id, None, &changes).await?;
        self.announce(id, &applied, vec![frames::joined(user_id)]).await;
        let row = applied.participants.first().ok_or_else(|| ServiceError::internal("participant not returned"))?;
        Ok(Participant::from(row))
    }

    /// Changes a participant's role (the owner only; ownership moves by transfer).
    pub async fn set_role(
        &self,
        caller: Uuid,
        id: Uuid,
        user_id: Uuid,
        role: Option<&str>,
    ) -> ServiceResult<Participant> {
        let access = self.access(caller, id).await?;
        Self::require_group(&access)?;
        if access.role() != Role::Owner {
            return Err(permission_denied());
        }
        let target =
            self.store().participant(id, user_id).await?.ok_or_else(|| ServiceError::not_found("Participant"))?;
        let Some(role) = role else {
            return Err(ServiceError::invalid_field("role", "This field is required."));
        };
        let role = parse_role(Some(role), Role::Member)?;
        if user_id == caller {
            return Err(ServiceError::invalid_field("role", "Use transfer-ownership/ to give up ownership."));
        }
        let old_role = target.role();
        if old_role != role {
            let event = SystemEvent::RoleChanged { user_id, old_role, new_role: role, changed_by_id: caller };
            let changes = [
                Change::Require { user_id: caller, role: Some(Role::Owner) },
                Change::Require { user_id, role: Some(old_role) },
                Change::SetRole { user_id, role },
                Change::Post(Self::system(&event, caller)),
            ];
            let applied = self.store().apply(id, None, &changes).await?;
            self.announce(id, &applied, Vec::new()).await;
        }
        let row = self.store().participant(id, user_id).await?.ok_or_else(|| ServiceError::not_found("Participant"))?;
        Ok(Participant::from(&row))
    }

    /// Removes a participant: the owner removes admins and members, an admin removes
    /// members. Their sockets on the conversation are closed at once.
    pub async fn remove_participant(&self, caller: Uuid, id: Uuid, user_id: Uuid) -> ServiceResult<()> {
        let access = self.access(caller, id).await?;
        if user_id == caller {
            return Err(ServiceError::bad_request("chat.use_leave", "Use leave/ to leave a conversation."));
        }
        Self::require_group(&access)?;
        let target =
            self.store().participant(id, user_id).await?.ok_or_else(|| ServiceError::not_found("Participant"))?;
        if !access.role().may_remove(target.role()) {
            return Err(permission_denied());
        }
        let event = SystemEvent::ParticipantRemoved { user_id, removed_by_id: caller, left: false };
        let changes = [
            Change::Require { user_id: caller, role: Some(access.role()) },
            Change::Require { user_id, role: Some(target.role()) },
            Change::EndParticipation { user_id },
            Change::Post(Self::system(&event, caller)),
        ];
        let applied = self.store().apply(id, None, &changes).await?;
        self.announce(id, &applied, Vec::new()).await;
        Ok(())
    }
}
