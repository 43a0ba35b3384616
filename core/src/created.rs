//! What a command created: the ids of the entities its events brought into
//! being, so that a caller (a provisioning API answering `201 Created`, a
//! screen opening the new user) need not search the events for them.

use crate::event::Event;
use crate::ids::*;

/// The entities a command's events created, in the order they were created.
/// Cost: one pass over the events.
///
/// ```
/// # use switchboard_core::*;
/// # fn demo(events: &[Event]) {
/// let created = Created::from_events(events);
/// if let Some(user) = created.users.first() {
///     println!("created user {user}");
/// }
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Created {
    /// Users: the owner of a new organization, invitees by email, and people
    /// who joined by an invitation link.
    pub users: Vec<UserId>,
    /// Accounts, the root account of a new organization first.
    pub accounts: Vec<AccountId>,
    /// Custom roles defined.
    pub roles: Vec<RoleId>,
    /// Invitations: by email, by link, or re-issued.
    pub invitations: Vec<InvitationId>,
    /// Phone numbers added to the inventory.
    pub numbers: Vec<PhoneNumber>,
    /// Work items.
    pub work_items: Vec<WorkItemId>,
    /// Device sessions signed in.
    pub devices: Vec<DeviceId>,
}

impl Created {
    /// What `events` created.
    pub fn from_events(events: &[Event]) -> Self {
        let mut c = Created::default();
        for e in events {
            match e {
                Event::OrganizationCreated {
                    root_account,
                    owner,
                    ..
                } => {
                    c.accounts.push(*root_account);
                    c.users.push(*owner);
                }
                Event::AccountCreated { account, .. } => c.accounts.push(*account),
                Event::RoleDefined { role } => c.roles.push(role.id.clone()),
                Event::UserInvited {
                    user, invitation, ..
                } => {
                    c.users.push(*user);
                    c.invitations.push(*invitation);
                }
                Event::UserProvisioned { user, .. } => c.users.push(*user),
                Event::InvitationLinkCreated { invitation, .. }
                | Event::UserReinvited { invitation, .. } => c.invitations.push(*invitation),
                Event::InvitationAccepted {
                    user,
                    new_user: true,
                    ..
                } => c.users.push(*user),
                Event::NumberAdded { number, .. } => c.numbers.push(number.clone()),
                Event::WorkItemCreated { item, .. } => c.work_items.push(*item),
                Event::DeviceSignedIn { device, .. } => c.devices.push(*device),
                _ => {}
            }
        }
        c
    }

    /// Whether nothing was created.
    pub fn is_empty(&self) -> bool {
        *self == Created::default()
    }
}
