//! Entity trails: everything that happened to a user, an account or a number.

use crate::context::Actor;
use crate::describe::describe;
use crate::event::Event;
use crate::evolve::{evolve, evolve_owned};
use crate::ids::*;
use crate::model::Organization;
use crate::service::{CommandService, ServiceError};
use crate::store::{Position, Store, MAX_READ_PAGE};
use chrono::{DateTime, Utc};
use std::fmt;

/// Limit: entries in one trail. A longer trail is cut and marked [`Trail::truncated`].
pub const MAX_TRAIL_ENTRIES: usize = 100_000;

/// What a trail is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A user (deleted ones included).
    User(UserId),
    /// An account.
    Account(AccountId),
    /// A phone number.
    Number(PhoneNumber),
}

/// One thing that happened to the subject. `Display` is the auditors' line,
/// with people's names; `Debug` hides the label and the sentence.
#[derive(Clone, PartialEq, Eq)]
pub struct TrailEntry {
    /// Stream version of the event.
    pub version: u64,
    /// Its place in the whole log.
    pub position: Position,
    /// Its id.
    pub event_id: EventId,
    /// When it happened (the recording service's clock).
    pub occurred_at: DateTime<Utc>,
    /// Who acted.
    pub actor: Actor,
    /// The actor in words ("Ada (usr_…)", "deleted user usr_…", "system").
    pub actor_label: String,
    /// The command that caused it.
    pub command_id: Option<CommandId>,
    /// The event's type name.
    pub event_type: String,
    /// What happened, in plain words.
    pub sentence: String,
}

crate::redact::debug_redacted!(struct TrailEntry {
    version,
    position,
    event_id,
    occurred_at,
    actor,
    @redacted actor_label,
    command_id,
    event_type,
    @redacted sentence,
});

impl fmt::Display for TrailEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}  v{:<4} {:<28} by {}: {}",
            self.occurred_at.format("%Y-%m-%d %H:%M:%S UTC"),
            self.version,
            self.event_type,
            self.actor_label,
            self.sentence
        )?;
        if let Some(c) = self.command_id {
            write!(f, " [{c}]")?;
        }
        Ok(())
    }
}

/// A subject's trail, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trail {
    /// The subject.
    pub subject: Subject,
    /// The entries, in stream order.
    pub entries: Vec<TrailEntry>,
    /// True when more than [`MAX_TRAIL_ENTRIES`] entries matched and the rest were left out.
    pub truncated: bool,
}

/// A user in words, as of `state`: their label, or "deleted user usr_…".
pub fn user_label(state: &Organization, id: UserId) -> String {
    match state.users.get(&id) {
        Some(u) if u.profile.is_some() => format!("{} ({id})", u.label()),
        Some(_) => format!("deleted user {id}"),
        None => id.to_string(),
    }
}

/// An actor in words, as of `state`.
pub fn actor_label(state: &Organization, actor: &Actor) -> String {
    match actor {
        Actor::User { id } => user_label(state, *id),
        Actor::System => "system".into(),
        Actor::Support { agent } => format!("support agent {agent}"),
    }
}

/// Whether `event`, applied to `before`, concerns `subject`.
pub fn concerns(event: &Event, before: &Organization, subject: &Subject) -> bool {
    match subject {
        Subject::User(u) => concerns_user(event, before, *u),
        Subject::Account(a) => concerns_account(event, before, *a),
        Subject::Number(n) => concerns_number(event, n),
    }
}

fn concerns_user(event: &Event, before: &Organization, u: UserId) -> bool {
    if event.users().contains(&u) {
        return true;
    }
    let invitation_of = |i: &InvitationId| {
        before
            .invitations
            .get(i)
            .is_some_and(|inv| inv.user == Some(u))
    };
    let number_routes_to = |n: &PhoneNumber| {
        before
            .numbers
            .get(n)
            .is_some_and(|x| x.assigned_to == Some(u) || x.forwarded_to == Some(u))
    };
    match event {
        Event::InvitationRevoked { invitation } | Event::InvitationExpired { invitation } => {
            invitation_of(invitation)
        }
        Event::MeetingCancelled { item } => {
            before.work_items.get(item).is_some_and(|w| w.owner == u)
        }
        Event::NumberForwardingStopped { number } | Event::NumberReleased { number } => {
            number_routes_to(number)
        }
        _ => false,
    }
}

fn concerns_account(event: &Event, before: &Organization, a: AccountId) -> bool {
    let member = |u: &UserId| {
        before
            .users
            .get(u)
            .is_some_and(|x| x.memberships.contains_key(&a))
    };
    let number_here = |n: &PhoneNumber| before.numbers.get(n).is_some_and(|x| x.account == a);
    match event {
        Event::OrganizationCreated { root_account, .. } => *root_account == a,
        Event::AccountCreated {
            account, parent, ..
        } => *account == a || *parent == a,
        Event::AccessGranted { account, .. }
        | Event::RoleChanged { account, .. }
        | Event::AccessRemoved { account, .. }
        | Event::NumberAdded { account, .. } => *account == a,
        Event::UserInvited { grant, .. }
        | Event::UserProvisioned { grant, .. }
        | Event::InvitationLinkCreated { grant, .. } => {
            grant.agency_admin || grant.accounts.contains(&a)
        }
        Event::InvitationAccepted { invitation, .. } => before
            .invitations
            .get(invitation)
            .is_some_and(|i| i.grant.agency_admin || i.grant.accounts.contains(&a)),
        // The grant covers every account; revoking it removes every membership (R-MEM-05).
        Event::AgencyAdminGranted { .. } => true,
        Event::AgencyAdminRevoked { user } => {
            before.users.get(user).is_some_and(|x| x.agency_admin)
        }
        Event::UserDeactivated { user, .. }
        | Event::UserReactivated { user }
        | Event::UserDeleted { user, .. } => member(user),
        Event::NumberAssigned { number, .. }
        | Event::NumberUnassigned { number, .. }
        | Event::NumberForwarded { number, .. }
        | Event::NumberForwardingStopped { number }
        | Event::NumberReleased { number } => number_here(number),
        _ => false,
    }
}

fn concerns_number(event: &Event, n: &PhoneNumber) -> bool {
    match event {
        Event::NumberAdded { number, .. }
        | Event::NumberAssigned { number, .. }
        | Event::NumberUnassigned { number, .. }
        | Event::NumberForwarded { number, .. }
        | Event::NumberForwardingStopped { number }
        | Event::NumberReleased { number } => number == n,
        _ => false,
    }
}

impl<S: Store> CommandService<S> {
    /// The trail of a user, account or number across the organization's
    /// whole history, oldest first. People are named as of the end of the
    /// history: deleted users resolve as "deleted user usr_…" (their ids stay;
    /// their personal data does not). Cost: one replay of the stream.
    ///
    /// ```
    /// # use switchboard_core::service::*;
    /// # use switchboard_core::audit::Subject;
    /// # async fn demo<S: switchboard_core::store::Store>(service: &CommandService<S>, org: switchboard_core::OrgId, user: switchboard_core::UserId) -> Result<(), ServiceError> {
    /// for entry in service.trail(org, Subject::User(user)).await?.entries {
    ///     println!("{entry}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn trail(&self, org: OrgId, subject: Subject) -> Result<Trail, ServiceError> {
        let mut state = Organization::empty(org);
        let mut hits = Vec::new();
        let mut truncated = false;
        loop {
            let page = self
                .read_decoded(org, state.version + 1, None, MAX_READ_PAGE)
                .await?;
            if page.is_empty() {
                break;
            }
            for (r, e) in page {
                let version = r.version;
                let kept = concerns(&e, &state, &subject);
                if kept && hits.len() < MAX_TRAIL_ENTRIES {
                    evolve(&mut state, &e);
                    hits.push((r, e));
                } else {
                    truncated |= kept;
                    evolve_owned(&mut state, e);
                }
                // Versions are dense; a gap would loop for ever, so stop on one.
                if state.version != version {
                    return Err(crate::store::StoreError::Corrupt {
                        reason: format!("stream {org} is not dense at version {version}"),
                        source: None,
                    }
                    .into());
                }
            }
        }
        let entries = hits
            .into_iter()
            .map(|(r, e)| TrailEntry {
                version: r.version,
                position: r.position,
                event_id: r.event_id,
                occurred_at: r.metadata.occurred_at,
                actor_label: actor_label(&state, &r.metadata.actor),
                actor: r.metadata.actor,
                command_id: r.metadata.command_id,
                event_type: r.event_type,
                sentence: describe(&e, Some(&state)),
            })
            .collect();
        Ok(Trail {
            subject,
            entries,
            truncated,
        })
    }
}
