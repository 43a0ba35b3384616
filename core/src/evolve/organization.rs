//! Folds the events of the organization, its policies, accounts and roles (decided in `decide/organization.rs`).

use super::*;

/// Applies one event of this area; `evolve` routes only these here.
pub(super) fn apply(state: &mut Organization, event: Event) {
    match event {
        Event::OrganizationCreated {
            name,
            policies,
            root_account,
            root_account_name,
            owner,
            owner_personal,
        } => {
            state.created = true;
            state.name = name;
            state.policies = policies;
            state.root_account = Some(root_account);
            state.primary_owner = Some(owner);
            for r in built_in_roles() {
                state.roles.insert(r.id.clone(), r);
            }
            state.accounts.insert(
                root_account,
                Account {
                    id: root_account,
                    name: root_account_name,
                    parent: None,
                    children: BTreeSet::new(),
                    members: BTreeSet::new(),
                },
            );
            let mut user = new_user_from_personal(owner, UserStatus::Active, owner_personal);
            user.agency_admin = true;
            insert_user(state, user);
            state.agency_admin_index.insert(owner);
            grant_access(state, owner, root_account, RoleId::new(RoleId::OWNER));
        }
        Event::PoliciesChanged { policies } => state.policies = policies,
        Event::PrimaryOwnershipTransferred { from, to } => {
            state.primary_owner = Some(to);
            // Nothing in either record changes, but both users' standing
            // does: an outside copy of either must not pass as current.
            user_mut(state, from);
            user_mut(state, to);
        }
        Event::AccountCreated {
            account,
            name,
            parent,
        } => {
            state.accounts.insert(
                account,
                Account {
                    id: account,
                    name,
                    parent: Some(parent),
                    children: BTreeSet::new(),
                    members: BTreeSet::new(),
                },
            );
            if let Some(p) = state.accounts.get_mut(&parent) {
                p.children.insert(account);
            }
        }
        Event::RoleDefined { role } => {
            state.roles.insert(role.id.clone(), role);
        }
        other => debug_assert!(
            false,
            "{} is not folded in evolve/organization.rs",
            other.event_type()
        ),
    }
}
