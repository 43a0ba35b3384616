//! Events in plain words, for trails, the tour and audit reports.

use crate::event::Event;
use crate::ids::UserId;
use crate::model::Organization;

fn who(state: Option<&Organization>, id: UserId) -> String {
    match state.and_then(|s| s.users.get(&id)) {
        Some(u) if u.profile.is_some() => format!("{} ({id})", u.label()),
        Some(_) => format!("deleted user {id}"),
        None => id.to_string(),
    }
}

/// One sentence saying what the event did. `state` (the organization before
/// or after the event) lets the sentence name people; without it, ids are used.
///
/// ```
/// use switchboard_core::{describe::describe, Event, UserId};
/// let e = Event::UserReactivated { user: UserId::from_uuid(uuid::Uuid::nil()) };
/// assert!(describe(&e, None).contains("reactivated"));
/// ```
pub fn describe(event: &Event, state: Option<&Organization>) -> String {
    let w = |id: UserId| who(state, id);
    match event {
        Event::OrganizationCreated {
            name,
            root_account_name,
            owner,
            ..
        } => format!(
            "organization {name:?} created with root account {root_account_name:?}; primary owner {owner}"
        ),
        Event::PoliciesChanged { policies } => format!(
            "policies changed: invitations live {} days, profile edits {:?}, complete profile required: {}",
            policies.invitation_ttl_days, policies.profile_edit, policies.require_complete_profile
        ),
        Event::PrimaryOwnershipTransferred { from, to } => {
            format!("primary ownership moved from {} to {}", w(*from), w(*to))
        }
        Event::AccountCreated {
            account,
            name,
            parent,
        } => format!("account {name:?} ({account}) created under {parent}"),
        Event::RoleDefined { role } => format!(
            "role {} ({:?}) defined with {:?}",
            role.id, role.name, role.permissions
        ),
        Event::UserInvited {
            user,
            grant,
            expires_at,
            ..
        } => format!(
            "{} invited as {}; invitation expires {}",
            w(*user),
            granted(grant),
            expires_at.format("%Y-%m-%d %H:%M UTC")
        ),
        Event::UserProvisioned { user, grant, .. } => format!(
            "{} provisioned by the identity provider as {}",
            w(*user),
            granted(grant)
        ),
        Event::InvitationLinkCreated {
            invitation,
            grant,
            expires_at,
            ..
        } => format!(
            "invitation link {invitation} created for role {}; expires {}",
            grant.role,
            expires_at.format("%Y-%m-%d %H:%M UTC")
        ),
        Event::UserReinvited {
            user,
            previous,
            invitation,
            ..
        } => format!(
            "{} re-invited: invitation {previous} superseded by {invitation} with a new token",
            w(*user)
        ),
        Event::InvitationAccepted {
            invitation, user, ..
        } => format!("{} accepted invitation {invitation}", w(*user)),
        Event::InvitationRevoked { invitation } => format!("invitation {invitation} revoked"),
        Event::InvitationExpired { invitation } => format!("invitation {invitation} expired"),
        Event::DeviceSignedIn { user, name, .. } => {
            format!("{} signed in on {name:?}", w(*user))
        }
        Event::UserActivated { user } => format!("{} signed in for the first time and is active", w(*user)),
        Event::DeviceSignedOut { user, device } => {
            format!("{} signed out of device {device}", w(*user))
        }
        Event::ProfileUpdated {
            user,
            personal,
            default_country,
            notifications,
        } => {
            let mut fields = Vec::new();
            if personal.name.is_some() {
                fields.push("name");
            }
            if personal.email.is_some() {
                fields.push("email");
            }
            if personal.mobile.is_some() {
                fields.push("mobile");
            }
            if personal.job_title.is_some() {
                fields.push("job title");
            }
            if personal.picture.is_some() {
                fields.push("picture");
            }
            if default_country.is_some() {
                fields.push("default sending country");
            }
            if notifications.is_some() {
                fields.push("notification preferences");
            }
            let cleared = if personal.cleared.is_empty() {
                String::new()
            } else {
                format!("; cleared {:?}", personal.cleared)
            };
            format!("{}'s profile updated: {}{cleared}", w(*user), fields.join(", "))
        }
        Event::AgencyAdminGranted { user } => {
            format!("{} made agency administrator (every account)", w(*user))
        }
        Event::AgencyAdminRevoked { user } => {
            format!("{} is no longer agency administrator", w(*user))
        }
        Event::AccessGranted {
            user,
            account,
            role,
        } => format!("{} given access to account {account} as {role}", w(*user)),
        Event::RoleChanged {
            user,
            account,
            from,
            to,
        } => format!("{}'s role on account {account} changed from {from} to {to}", w(*user)),
        Event::AccessRemoved { user, account } => {
            format!("{} removed from account {account}", w(*user))
        }
        Event::NumberAdded { number, account } => format!("number {number} added to account {account}"),
        Event::NumberAssigned { number, user } => format!("number {number} assigned to {}", w(*user)),
        Event::NumberUnassigned { number, user } => {
            format!("number {number} unassigned from {}", w(*user))
        }
        Event::NumberForwarded { number, to } => format!("number {number} forwarded to {}", w(*to)),
        Event::NumberForwardingStopped { number } => format!("number {number} no longer forwarded"),
        Event::NumberReleased { number } => format!("number {number} released"),
        Event::ReportingLineChanged { user, leader } => match leader {
            Some(l) => format!("{} now reports to {}", w(*user), w(*l)),
            None => format!("{} no longer reports to anyone", w(*user)),
        },
        Event::WorkItemCreated {
            item,
            kind,
            title,
            owner,
        } => format!("{kind:?} {title:?} ({item}) owned by {}", w(*owner)),
        Event::WorkTransferred { item, from, to } => {
            format!("{item} transferred from {} to {}", w(*from), w(*to))
        }
        Event::MeetingCancelled { item } => format!("meeting {item} cancelled"),
        Event::PasswordResetIssued { user, .. } => {
            format!("password reset link issued to {}", w(*user))
        }
        Event::UserDeactivated {
            user,
            sessions_ended,
        } => format!(
            "{} deactivated; {} device session(s) ended",
            w(*user),
            sessions_ended.len()
        ),
        Event::UserReactivated { user } => format!("{} reactivated", w(*user)),
        Event::UserDeleted {
            user,
            sessions_ended,
            ..
        } => format!(
            "user {user} deleted; personal data erased; {} device session(s) ended",
            sessions_ended.len()
        ),
    }
}

/// What a grant gives, in words: "agent to 2 account(s)", with the agency
/// administrator access when it has it.
fn granted(grant: &crate::Grant) -> String {
    format!(
        "{} to {} account(s){}",
        grant.role,
        grant.accounts.len(),
        if grant.agency_admin {
            " with agency administrator access"
        } else {
            ""
        }
    )
}
