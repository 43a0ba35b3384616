//! Roles and access: R-MEM-01..06, R-AUTH-01..04.

mod common;

use common::*;
use switchboard_core::*;

fn denied(actor: UserId, permission: Permission, account: Option<AccountId>) -> Blocker {
    Blocker::PermissionDenied {
        actor: as_user(actor),
        permission,
        account,
    }
}

fn remove(user: UserId, accounts: &[AccountId]) -> Command {
    Command::RemoveAccess {
        user,
        accounts: accounts.to_vec(),
    }
}

// ---------------------------------------------------------------- R-MEM-01

#[test]
fn r_mem_01_a_role_can_be_raised_and_lowered() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let ann = w.agent("Ann", &[east]);
    let change = |role: RoleId| Command::ChangeRole {
        user: ann,
        account: east,
        role,
    };
    let d = w.ok(w.owner_actor(), change(admin_role()));
    assert_eq!(
        d.events,
        vec![Event::RoleChanged {
            user: ann,
            account: east,
            from: agent_role(),
            to: admin_role()
        }]
    );
    assert_eq!(w.user(ann).memberships[&east], admin_role());
    // Raised to administrator, Ann may now invite on East.
    w.ok(
        as_user(ann),
        Command::InviteUsers {
            emails: "x@northwind.example".into(),
            grant: grant(agent_role(), &[east]),
        },
    );
    w.ok(w.owner_actor(), change(role(RoleId::READ_ONLY)));
    assert_eq!(w.user(ann).memberships[&east], role(RoleId::READ_ONLY));
    // Same role: accepted, nothing recorded.
    let d = w.ok(w.owner_actor(), change(role(RoleId::READ_ONLY)));
    assert!(d.events.is_empty());
}

#[test]
fn r_mem_01_changing_a_role_needs_a_membership_and_a_known_role() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let west = w.account("West", w.root);
    let ann = w.agent("Ann", &[east]);
    let err = w.refused(
        w.owner_actor(),
        Command::ChangeRole {
            user: ann,
            account: west,
            role: role("ghost"),
        },
    );
    assert_eq!(
        err.blockers,
        vec![
            Blocker::NotFound {
                missing: Missing::Role(role("ghost"))
            },
            Blocker::NotMember {
                user: ann,
                account: west
            }
        ]
    );
    // A leader demoted out of ManageTeam must hand over their reports first.
    let tom = w.leader("Tom", &[east]);
    w.reports_to(ann, tom);
    let err = w.refused(
        w.owner_actor(),
        Command::ChangeRole {
            user: tom,
            account: east,
            role: agent_role(),
        },
    );
    assert_eq!(
        only(&err),
        &Blocker::HasDirectReports {
            leader: tom,
            reports: vec![ann]
        }
    );
}

// ---------------------------------------------------------------- R-MEM-02

#[test]
fn r_mem_02_an_existing_user_gets_more_accounts_each_with_a_role() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let west = w.account("West", w.root);
    let west_kids = w.account("West Kids", west);
    let ann = w.agent("Ann", &[east]);
    let d = w.ok(
        w.owner_actor(),
        Command::GrantAccess {
            user: ann,
            role: leader_role(),
            accounts: vec![west, west_kids],
        },
    );
    assert_eq!(
        d.events,
        vec![
            Event::AccessGranted {
                user: ann,
                account: west,
                role: leader_role()
            },
            Event::AccessGranted {
                user: ann,
                account: west_kids,
                role: leader_role()
            }
        ]
    );
    let m = &w.user(ann).memberships;
    assert_eq!(m[&east], agent_role());
    assert_eq!(m[&west], leader_role());
    assert_eq!(m[&west_kids], leader_role());
    assert!(w.state.accounts[&west_kids].members.contains(&ann));
    // Again: already a member; with an unknown account too, all reported.
    let ghost = AccountId::from_uuid(uuid::Uuid::from_u128(7));
    let err = w.refused(
        w.owner_actor(),
        Command::GrantAccess {
            user: ann,
            role: agent_role(),
            accounts: vec![east, ghost],
        },
    );
    assert_eq!(
        err.blockers,
        vec![
            Blocker::AlreadyMember {
                user: ann,
                account: east
            },
            Blocker::NotFound {
                missing: Missing::Account(ghost)
            }
        ]
    );
    // A West administrator cannot grant East.
    let wes = w.admin("Wes", &[west]);
    let bob = w.agent("Bob", &[west]);
    let err = w.refused(
        as_user(wes),
        Command::GrantAccess {
            user: bob,
            role: agent_role(),
            accounts: vec![east],
        },
    );
    assert_eq!(
        only(&err),
        &denied(wes, Permission::ManageUsers, Some(east))
    );
    w.assert_replays();
}

// ---------------------------------------------------------------- R-MEM-03

#[test]
fn r_mem_03_access_to_one_account_is_removed_and_the_rest_kept() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let west = w.account("West", w.root);
    let ann = w.agent("Ann", &[east, west]);
    let d = w.ok(w.owner_actor(), remove(ann, &[east]));
    assert_eq!(
        d.events,
        vec![Event::AccessRemoved {
            user: ann,
            account: east
        }]
    );
    let u = w.user(ann);
    assert!(!u.memberships.contains_key(&east));
    assert_eq!(u.memberships[&west], agent_role());
    assert!(u.is_active(), "still a user");
    assert!(!w.state.accounts[&east].members.contains(&ann));
    // Not a member any more: refused.
    let err = w.refused(w.owner_actor(), remove(ann, &[east]));
    assert_eq!(
        only(&err),
        &Blocker::NotMember {
            user: ann,
            account: east
        }
    );
}

// Found by `cargo mutants`: no test took a team leader who holds a number
// off an account other than the one where they lead and the number lives,
// so what the leader keeps could be judged on the account removed (or on
// none) unnoticed.
#[test]
fn r_mem_03_a_leader_keeps_reports_and_numbers_when_another_account_goes() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let west = w.account("West", w.root);
    let tom = w.leader("Tom", &[east]);
    w.ok(
        w.owner_actor(),
        Command::GrantAccess {
            user: tom,
            role: agent_role(),
            accounts: vec![west],
        },
    );
    let ann = w.agent("Ann", &[east]);
    w.reports_to(ann, tom);
    let held = w.number_for(east, tom);
    let forwarded = w.forwarded_to(east, tom);
    let d = w.ok(w.owner_actor(), remove(tom, &[west]));
    assert_eq!(
        d.events,
        vec![Event::AccessRemoved {
            user: tom,
            account: west
        }]
    );
    let u = w.user(tom);
    assert_eq!(
        u.memberships.keys().copied().collect::<Vec<_>>(),
        vec![east]
    );
    assert!(u.direct_reports.contains(&ann));
    assert_eq!(w.number(&held).assigned_to, Some(tom));
    assert_eq!(w.number(&forwarded).forwarded_to, Some(tom));
}

// ---------------------------------------------------------------- R-MEM-04

#[test]
fn r_mem_04_access_is_removed_from_several_sub_accounts_in_one_command() {
    let mut w = World::new();
    let agency = w.account("Agency", w.root);
    let subs: Vec<AccountId> = (0..4)
        .map(|i| w.account(&format!("Client {i}"), agency))
        .collect();
    let mut all = subs.clone();
    all.push(agency);
    let ann = w.agent("Ann", &all);
    let d = w.ok(w.owner_actor(), remove(ann, &subs[..3]));
    assert_eq!(d.events.len(), 3);
    let left: Vec<AccountId> = w.user(ann).memberships.keys().copied().collect();
    let mut expected = vec![subs[3], agency];
    expected.sort();
    assert_eq!(left, expected);
    // Listing an account twice or none is refused.
    let err = w.refused(w.owner_actor(), remove(ann, &[subs[3], subs[3]]));
    assert_eq!(err.rules(), vec![RuleId::RemoveFromSeveralAccounts]);
    let err = w.refused(w.owner_actor(), remove(ann, &[]));
    assert_eq!(err.rules(), vec![RuleId::RemoveFromSeveralAccounts]);
}

// ---------------------------------------------------------------- R-MEM-05

#[test]
fn r_mem_05_an_agency_administrator_is_only_removed_from_all_accounts_at_once() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let alan = w.member(
        "Alan",
        Grant {
            role: admin_role(),
            accounts: vec![east],
            agency_admin: true,
            clients: vec![],
        },
    );
    let err = w.refused(w.owner_actor(), remove(alan, &[east]));
    assert_eq!(only(&err), &Blocker::AgencyAdministrator { user: alan });
    let err = w.refused(
        w.owner_actor(),
        Command::GrantAccess {
            user: alan,
            role: agent_role(),
            accounts: vec![w.root],
        },
    );
    assert_eq!(only(&err), &Blocker::AgencyAdministrator { user: alan });
    // Only another agency administrator may remove one.
    let erin = w.admin("Erin", &[east, w.root]);
    let err = w.refused(as_user(erin), Command::RemoveFromAllAccounts { user: alan });
    assert_eq!(only(&err), &denied(erin, Permission::ManageUsers, None));
    let d = w.ok(
        w.owner_actor(),
        Command::RemoveFromAllAccounts { user: alan },
    );
    assert_eq!(
        d.events,
        vec![
            Event::AccessRemoved {
                user: alan,
                account: east
            },
            Event::AgencyAdminRevoked { user: alan }
        ]
    );
    let u = w.user(alan);
    assert!(!u.agency_admin && u.memberships.is_empty());
    assert!(!w.state.agency_admins().contains(&alan));
    assert!(w
        .state
        .who_can_access(east)
        .iter()
        .all(|(id, _)| *id != alan));
    // Afterwards other roles may be granted.
    w.ok(
        w.owner_actor(),
        Command::GrantAccess {
            user: alan,
            role: agent_role(),
            accounts: vec![east],
        },
    );
    assert_eq!(w.user(alan).memberships[&east], agent_role());
    w.assert_replays();
}

// Found by `cargo mutants`: no test removed from all accounts a user who
// had no access left, so the check could be turned onto agency
// administrators without accounts unnoticed.
#[test]
fn r_mem_05_removal_from_all_accounts_needs_something_to_remove() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    w.ok(
        w.owner_actor(),
        Command::RemoveFromAllAccounts { user: ann },
    );
    let err = w.refused(
        w.owner_actor(),
        Command::RemoveFromAllAccounts { user: ann },
    );
    assert_eq!(err.rules(), vec![RuleId::AgencyAdministratorAllOrNothing]);
    // An agency administrator with no account of their own still has the grant to lose.
    let alan = w.agency_admin("Alan");
    assert!(w.user(alan).memberships.is_empty());
    let d = w.ok(
        w.owner_actor(),
        Command::RemoveFromAllAccounts { user: alan },
    );
    assert_eq!(d.events, vec![Event::AgencyAdminRevoked { user: alan }]);
    let err = w.refused(
        w.owner_actor(),
        Command::RemoveFromAllAccounts { user: alan },
    );
    assert_eq!(err.rules(), vec![RuleId::AgencyAdministratorAllOrNothing]);
}

// ---------------------------------------------------------------- R-MEM-06

#[test]
fn r_mem_06_removal_from_many_accounts_is_one_atomic_decision() {
    let mut w = World::new();
    let agency = w.account("Agency", w.root);
    let subs: Vec<AccountId> = (0..40)
        .map(|i| w.account(&format!("Client {i}"), agency))
        .collect();
    let ann = w.agent("Ann", &subs);
    let n = w.number_for(subs[39], ann);
    // One blocker (a number in the last account) refuses the whole removal:
    // not one of the 40 memberships goes.
    let err = w.refused(w.owner_actor(), remove(ann, &subs));
    assert_eq!(
        only(&err),
        &Blocker::NumbersStillAssigned {
            user: ann,
            numbers: vec![PhoneNumber::from(n.clone())],
            rule: RuleId::NumberAssignee
        }
    );
    assert_eq!(w.user(ann).memberships.len(), 40);
    w.ok(w.owner_actor(), Command::UnassignNumber { number: n });
    let events_before = w.events.len();
    let d = w.ok(
        w.owner_actor(),
        Command::RemoveFromAllAccounts { user: ann },
    );
    assert_eq!(d.events.len(), 40, "one decision carries every removal");
    assert_eq!(w.events.len(), events_before + 40);
    assert!(w.user(ann).memberships.is_empty());
}

#[tokio::test]
async fn r_mem_06_removal_from_many_accounts_is_one_append() {
    let svc = common::svc::Svc::new().await;
    let owner = as_user(svc.owner);
    let mut subs = Vec::new();
    for i in 0..25 {
        let h = svc
            .ok(
                owner.clone(),
                Command::CreateAccount {
                    name: format!("Client {i}"),
                    parent: svc.root,
                },
            )
            .await;
        match &h.events[..] {
            [Event::AccountCreated { account, .. }] => subs.push(*account),
            other => panic!("unexpected {other:?}"),
        }
    }
    let ann = svc.member("Ann", 1, grant(agent_role(), &subs)).await;
    let before = svc.stream_version().await;
    let h = svc
        .ok(
            owner,
            Command::RemoveAccess {
                user: ann,
                accounts: subs.clone(),
            },
        )
        .await;
    let outcome = h.outcome.expect("appended");
    assert_eq!(outcome.first_version, before + 1);
    assert_eq!(outcome.last_version, before + 25);
    assert_eq!(
        outcome.first_position.commit, outcome.last_position.commit,
        "one commit"
    );
    let history = svc.service.history(svc.org).await.unwrap();
    let commits: std::collections::BTreeSet<u64> = history
        .iter()
        .filter(|r| r.event_type == "AccessRemoved")
        .map(|r| r.position.commit)
        .collect();
    assert_eq!(commits.len(), 1);
}

// ---------------------------------------------------------------- R-AUTH-01

#[test]
fn r_auth_01_managing_users_needs_manage_users_on_the_accounts_concerned() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let west = w.account("West", w.root);
    let erin = w.admin("Erin", &[east]);
    let ann = w.agent("Ann", &[east]);
    let wes = w.agent("Wes", &[west]);
    let both = w.agent("Bea", &[east, west]);
    let e = as_user(erin);
    // Over her own account: allowed.
    w.ok(
        e.clone(),
        Command::Deactivate {
            user: ann,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    w.ok(e.clone(), Command::Reactivate { user: ann });
    // Over a user of West: every management command is refused.
    let cmds = vec![
        Command::Deactivate {
            user: wes,
            forward_numbers_to: None,
            reassign_reports: None,
        },
        Command::Delete {
            user: wes,
            acknowledgement: ACK,
            forward_numbers_to: None,
            reassign_reports: None,
        },
        Command::ChangeRole {
            user: wes,
            account: west,
            role: admin_role(),
        },
        remove(wes, &[west]),
        Command::TransferWork {
            from: wes,
            to: ann,
            selection: WorkSelection::All,
        },
        Command::InviteUsers {
            emails: "new@northwind.example".into(),
            grant: grant(agent_role(), &[west]),
        },
    ];
    for c in cmds {
        let name = c.name();
        let err = w.refused(e.clone(), c);
        assert_eq!(
            err.blockers,
            vec![denied(erin, Permission::ManageUsers, Some(west))],
            "{name}"
        );
    }
    // A user on East and West needs the permission on both.
    let err = w.refused(
        e.clone(),
        Command::Deactivate {
            user: both,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    assert_eq!(
        only(&err),
        &denied(erin, Permission::ManageUsers, Some(west))
    );
    // Bulk needs it too (per row).
    let csv = format!("email,deactivated\n{},y\n", w.profile(wes).email);
    let err = w.refused(
        e.clone(),
        Command::BulkUpdate {
            csv,
            mode: BulkMode::AllOrNothing,
        },
    );
    assert!(err.has_rule(RuleId::BulkAllOrNothing));
    // An agency administrator may do all of it.
    let alan = w.agency_admin("Alan");
    w.ok(
        as_user(alan),
        Command::Deactivate {
            user: wes,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
}

#[test]
fn r_auth_01_an_agent_manages_nobody_and_a_deactivated_admin_nothing() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let bob = w.agent("Bob", &[w.root]);
    let err = w.refused(
        as_user(ann),
        Command::Deactivate {
            user: bob,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    assert_eq!(
        only(&err),
        &denied(ann, Permission::ManageUsers, Some(w.root))
    );
    let erin = w.admin("Erin", &[w.root]);
    w.ok(
        w.owner_actor(),
        Command::Deactivate {
            user: erin,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    let err = w.refused(
        as_user(erin),
        Command::Deactivate {
            user: bob,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    assert_eq!(
        only(&err),
        &Blocker::ActorNotActive {
            actor: as_user(erin)
        }
    );
}

// ---------------------------------------------------------------- R-AUTH-02

fn profile_edit(user: UserId, name: &str) -> Command {
    Command::UpdateProfile {
        user,
        name: Some(name.into()),
        email: None,
        mobile: None,
        default_country: None,
        notifications: Some(NotificationPreferences {
            desktop: false,
            browser_badge: true,
            sound: false,
        }),
    }
}

#[test]
fn r_auth_02_self_only_policy_lets_only_the_user_edit_profile_details() {
    let mut w = World::new();
    assert_eq!(w.state.policies.profile_edit, ProfileEditPolicy::SelfOnly);
    let ann = w.agent("Ann", &[w.root]);
    let erin = w.admin("Erin", &[w.root]);
    for actor in [w.owner_actor(), as_user(erin)] {
        let err = w.refused(actor, profile_edit(ann, "Annie"));
        assert_eq!(only(&err), &Blocker::OnlySelf { user: ann });
    }
    let d = w.ok(as_user(ann), profile_edit(ann, "Annie"));
    assert_eq!(d.events.len(), 1);
    let p = w.profile(ann);
    assert_eq!(p.name.as_deref(), Some("Annie"));
    assert!(!p.notifications.desktop && !p.notifications.sound);
}

#[test]
fn r_auth_02_self_or_admin_policy_also_lets_a_manage_users_holder_edit() {
    let mut w = World::with_policies(Some(Policies {
        profile_edit: ProfileEditPolicy::SelfOrAdmin,
        ..Policies::default()
    }));
    let east = w.account("East", w.root);
    let west = w.account("West", w.root);
    let ann = w.agent("Ann", &[east]);
    let bob = w.agent("Bob", &[east]);
    let erin = w.admin("Erin", &[east]);
    let wes = w.admin("Wes", &[west]);
    w.ok(as_user(erin), profile_edit(ann, "Ann by Erin"));
    assert_eq!(w.profile(ann).name.as_deref(), Some("Ann by Erin"));
    // Without ManageUsers on Ann's account: refused.
    let err = w.refused(as_user(wes), profile_edit(ann, "x"));
    assert_eq!(
        only(&err),
        &denied(wes, Permission::ManageUsers, Some(east))
    );
    let err = w.refused(as_user(bob), profile_edit(ann, "x"));
    assert_eq!(
        only(&err),
        &denied(bob, Permission::ManageUsers, Some(east))
    );
    // The user still may.
    w.ok(as_user(ann), profile_edit(ann, "Ann herself"));
}

// Written ahead of the `cargo mutants` run for `profile.rs:94` (an edit of
// the country or the notifications alone dropped as "nothing changes"); the
// run showed `r_usr_01_emails_are_unique_case_insensitively` kills it too.
// This test checks the rule directly.
#[test]
fn r_auth_02_the_country_or_the_notifications_alone_can_be_edited() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let edit = |country: Option<&str>, notifications| Command::UpdateProfile {
        user: ann,
        name: None,
        email: None,
        mobile: None,
        default_country: country.map(str::to_owned),
        notifications,
    };
    let d = w.ok(as_user(ann), edit(Some("GB"), None));
    assert_eq!(
        d.events,
        vec![Event::ProfileUpdated {
            user: ann,
            personal: PersonalData::default(),
            default_country: Some("GB".into()),
            notifications: None,
        }]
    );
    assert_eq!(w.profile(ann).default_country.as_deref(), Some("GB"));
    let quiet = NotificationPreferences {
        desktop: false,
        browser_badge: false,
        sound: false,
    };
    let d = w.ok(as_user(ann), edit(None, Some(quiet.clone())));
    assert_eq!(
        d.events,
        vec![Event::ProfileUpdated {
            user: ann,
            personal: PersonalData::default(),
            default_country: None,
            notifications: Some(quiet.clone()),
        }]
    );
    assert_eq!(w.profile(ann).notifications, quiet);
    w.assert_replays();
}

// ---------------------------------------------------------------- R-AUTH-03

#[test]
fn r_auth_03_admin_managed_fields_need_manage_users() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let erin = w.admin("Erin", &[w.root]);
    let fields = |title: &str| Command::UpdateAdminFields {
        user: ann,
        job_title: Some(Edit::Set(title.into())),
        picture: Some(Edit::Set("https://cdn.example/ann.png".into())),
        admin_access: None,
    };
    // Not even the user herself: each field she edits is named.
    let err = w.refused(as_user(ann), fields("Boss"));
    let admin_managed = |actor, field, account| Blocker::AdminManagedField {
        actor: as_user(actor),
        user: ann,
        field,
        account,
    };
    assert_eq!(
        err.blockers,
        vec![
            admin_managed(ann, AdminField::JobTitle, Some(w.root)),
            admin_managed(ann, AdminField::Picture, Some(w.root)),
        ]
    );
    let d = w.ok(as_user(erin), fields("Senior Agent"));
    assert_eq!(d.events.len(), 1);
    let p = w.profile(ann);
    assert_eq!(p.job_title.as_deref(), Some("Senior Agent"));
    assert_eq!(p.picture.as_deref(), Some("https://cdn.example/ann.png"));
    // A bad picture URL is refused under this rule.
    let err = w.refused(
        as_user(erin),
        Command::UpdateAdminFields {
            user: ann,
            job_title: None,
            picture: Some(Edit::Set("javascript:alert(1)".into())),
            admin_access: None,
        },
    );
    assert_eq!(err.rules(), vec![RuleId::AdminManagedFields]);
    // The admin toggle gives organization-wide power: an agency administrator only.
    let toggle = Command::UpdateAdminFields {
        user: ann,
        job_title: None,
        picture: None,
        admin_access: Some(true),
    };
    let err = w.refused(as_user(erin), toggle.clone());
    assert_eq!(
        only(&err),
        &admin_managed(erin, AdminField::AdminAccess, None)
    );
    let d = w.ok(w.owner_actor(), toggle);
    assert_eq!(d.events, vec![Event::AgencyAdminGranted { user: ann }]);
    assert!(w.user(ann).agency_admin);
    // Clearing works too.
    w.ok(
        w.owner_actor(),
        Command::UpdateAdminFields {
            user: ann,
            job_title: Some(Edit::Clear),
            picture: Some(Edit::Clear),
            admin_access: Some(false),
        },
    );
    let u = w.user(ann);
    assert!(!u.agency_admin);
    assert!(u.profile.as_ref().unwrap().job_title.is_none());
    w.assert_replays();
}

/// The identity provider's id (SCIM's `externalId`) is admin-managed too: the
/// user herself cannot set it, an administrator over her can; it is kept
/// exactly as sent, refused when blank or over its limit, clearable, and gone
/// with the rest of the profile when she is deleted (R-LIFE-06).
#[test]
fn r_auth_03_the_identity_providers_id_is_admin_managed_and_kept_exactly() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let west = w.account("West", w.root);
    let ann = w.agent("Ann", &[east]);
    let erin = w.admin("Erin", &[east]);
    let walt = w.admin("Walt", &[west]);
    let set = |id: &str| Command::SetExternalId {
        user: ann,
        external_id: Edit::Set(id.to_owned()),
    };
    // Ann herself, and an administrator of another account: R-AUTH-03,
    // naming the field.
    for actor in [ann, walt] {
        let err = w.refused(as_user(actor), set("00u1AbC"));
        assert_eq!(
            err.blockers,
            vec![Blocker::AdminManagedField {
                actor: as_user(actor),
                user: ann,
                field: AdminField::ExternalId,
                account: Some(east),
            }],
            "acting as {actor}"
        );
    }
    assert_eq!(w.profile(ann).external_id, None);
    // Her administrator: recorded exactly, case and inner spaces included.
    let d = w.ok(as_user(erin), set(" 00u1AbC Okta "));
    assert_eq!(d.events.len(), 1);
    assert_eq!(
        w.profile(ann).external_id.as_deref(),
        Some(" 00u1AbC Okta ")
    );
    // Blank, control characters and over the limit: typed refusals that
    // change nothing.
    let before = w.state.clone();
    for (bad, rule) in [
        ("   ".to_owned(), RuleId::Input),
        ("a\u{7}b".to_owned(), RuleId::Input),
        ("x".repeat(validate::MAX_EXTERNAL_ID_LEN + 1), RuleId::Limit),
    ] {
        let err = w.refused(as_user(erin), set(&bad));
        assert_eq!(err.rules(), vec![rule], "{bad:?}");
    }
    assert_eq!(w.state, before);
    let at_limit = "x".repeat(validate::MAX_EXTERNAL_ID_LEN);
    w.ok(as_user(erin), set(&at_limit));
    assert_eq!(
        w.profile(ann).external_id.as_deref(),
        Some(at_limit.as_str())
    );
    // Cleared.
    w.ok(
        as_user(erin),
        Command::SetExternalId {
            user: ann,
            external_id: Edit::Clear,
        },
    );
    assert_eq!(w.profile(ann).external_id, None);
    // Deleted: gone with the profile, and no longer settable.
    w.ok(as_user(erin), set("00u1AbC"));
    w.ok(
        w.owner_actor(),
        Command::Delete {
            user: ann,
            acknowledgement: ACK,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    assert!(w.user(ann).profile.is_none());
    let err = w.refused(w.owner_actor(), set("00u1AbC"));
    assert_eq!(err.rules(), vec![RuleId::PersonalDataErased]);
    w.assert_replays();
}

/// Job title, picture and the admin toggle are admin-managed: a user without
/// `ManageUsers` over the target, the target herself included, is refused
/// under R-AUTH-03, whichever of them they edit and by whichever path (the
/// command or a bulk row). Managing the user otherwise stays R-AUTH-01.
#[test]
fn r_auth_03_editing_an_admin_managed_field_without_manage_users_names_r_auth_03() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let west = w.account("West", w.root);
    let ann = w.agent("Ann", &[east]);
    let bob = w.agent("Bob", &[west]);
    let erin = w.admin("Erin", &[east]);
    let edit = |user, job_title: Option<&str>, picture: Option<&str>, admin_access| {
        Command::UpdateAdminFields {
            user,
            job_title: job_title.map(|t| Edit::Set(t.to_owned())),
            picture: picture.map(|p| Edit::Set(p.to_owned())),
            admin_access,
        }
    };
    let all_r_auth_03 = |err: &CommandError| {
        assert!(!err.blockers.is_empty());
        assert!(
            err.rules().iter().all(|r| *r == RuleId::AdminManagedFields),
            "expected only R-AUTH-03: {err}"
        );
    };
    // Ann, a plain agent, edits her own fields: each is refused by R-AUTH-03.
    for cmd in [
        edit(ann, Some("Boss"), None, None),
        edit(ann, None, Some("https://cdn.example/ann.png"), None),
        edit(ann, None, None, Some(true)),
        edit(
            ann,
            Some("Boss"),
            Some("https://cdn.example/ann.png"),
            Some(true),
        ),
    ] {
        all_r_auth_03(&w.refused(as_user(ann), cmd));
    }
    // Erin manages East, not West: Bob's title is out of her reach.
    all_r_auth_03(&w.refused(as_user(erin), edit(bob, Some("Boss"), None, None)));
    // The toggle needs an agency administrator: ManageUsers on East is not enough.
    all_r_auth_03(&w.refused(as_user(erin), edit(ann, None, None, Some(true))));
    // A bulk row that sets a title is the same edit.
    let bob_email = w.profile(bob).email.clone();
    let err = w.refused(
        as_user(erin),
        Command::BulkUpdate {
            csv: format!("email,job_title\n{bob_email},Boss\n"),
            mode: BulkMode::AllOrNothing,
        },
    );
    assert_eq!(err.rules(), vec![RuleId::BulkAllOrNothing]);
    match &err.blockers[0] {
        Blocker::BulkRowsRejected { rows } => match &rows[0].status {
            bulk::RowStatus::Rejected { blockers } => all_r_auth_03(&CommandError {
                blockers: blockers.clone(),
            }),
            other => panic!("unexpected {other:?}"),
        },
        other => panic!("unexpected {other:?}"),
    }
    // Managing the user otherwise is R-AUTH-01: an edit that names no field,
    // a deactivation.
    let err = w.refused(as_user(ann), edit(ann, None, None, None));
    assert_eq!(err.rules(), vec![RuleId::ManageUsersRequired]);
    let err = w.refused(
        as_user(erin),
        Command::Deactivate {
            user: bob,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    assert_eq!(err.rules(), vec![RuleId::ManageUsersRequired]);
    // Erin may edit Ann's title and picture.
    w.ok(
        as_user(erin),
        edit(
            ann,
            Some("Senior Agent"),
            Some("https://cdn.example/ann.png"),
            None,
        ),
    );
    w.assert_replays();
}

// Found by `cargo mutants`: no test set the admin toggle to what it already
// was, so granting an agency administrator the grant again, or revoking it
// from someone who never had it, could record an event unnoticed.
#[test]
fn r_auth_03_setting_the_admin_toggle_to_what_it_is_records_nothing() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let alan = w.agency_admin("Alan");
    let toggle = |user, on| Command::UpdateAdminFields {
        user,
        job_title: None,
        picture: None,
        admin_access: Some(on),
    };
    let d = w.ok(w.owner_actor(), toggle(alan, true));
    assert!(d.events.is_empty(), "{:?}", d.events);
    assert!(w.user(alan).agency_admin);
    let d = w.ok(w.owner_actor(), toggle(ann, false));
    assert!(d.events.is_empty(), "{:?}", d.events);
    assert!(!w.user(ann).agency_admin);
}

// ---------------------------------------------------------------- R-AUTH-04

#[tokio::test]
async fn r_auth_04_every_event_records_its_actor() {
    let svc = common::svc::Svc::new().await;
    let ann = svc.member("Ann", 1, grant(agent_role(), &[svc.root])).await;
    let support = Actor::Support {
        agent: "sam@support.example".into(),
    };
    svc.ok(
        support.clone(),
        Command::TransferPrimaryOwnership { to: ann },
    )
    .await;
    svc.ok(as_user(ann), Command::RequestPasswordReset { user: ann })
        .await;
    let history = svc.service.history(svc.org).await.unwrap();
    let actor_of = |t: &str| -> Vec<Actor> {
        history
            .iter()
            .filter(|r| r.event_type == t)
            .map(|r| r.metadata.actor.clone())
            .collect()
    };
    assert_eq!(actor_of("OrganizationCreated"), vec![Actor::System]);
    assert_eq!(actor_of("UserInvited"), vec![as_user(svc.owner)]);
    assert_eq!(actor_of("InvitationAccepted"), vec![Actor::System]);
    assert_eq!(actor_of("UserActivated"), vec![as_user(ann)]);
    assert_eq!(
        actor_of("PrimaryOwnershipTransferred"),
        vec![support.clone()]
    );
    assert_eq!(actor_of("AgencyAdminGranted"), vec![support]);
    assert_eq!(actor_of("PasswordResetIssued"), vec![as_user(ann)]);
    assert!(history.iter().all(|r| r.metadata.command_id.is_some()));
    // A refusal names the actor too, and records nothing.
    let version = svc.stream_version().await;
    let err = svc
        .handle(
            Actor::Support {
                agent: "x".repeat(10_000),
            },
            Command::RequestPasswordReset { user: ann },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("actor.agent"), "{err}");
    assert_eq!(svc.stream_version().await, version);
}

// ---------------------------------------------------------------- LIMIT

// Found by `cargo mutants`: no test built an account tree up to its depth
// bound, so the walk up the tree could stop counting (`+=` as `*=`), count
// down, or report a wrong depth unnoticed.
#[test]
fn limit_an_account_tree_is_at_most_32_levels_deep() {
    let mut w = World::new();
    // The root is level 1; 31 sub-accounts below it make 32 levels.
    let mut parent = w.root;
    for level in 2..=32 {
        parent = w.account(&format!("Level {level}"), parent);
    }
    // A 33rd level is refused, naming the depth it would reach.
    let err = w.refused(
        w.owner_actor(),
        Command::CreateAccount {
            name: "Level 33".into(),
            parent,
        },
    );
    assert_eq!(
        only(&err),
        &Blocker::LimitExceeded {
            what: "account depth".into(),
            limit: 32,
            actual: 33,
        }
    );
    assert_eq!(err.rules(), vec![RuleId::Limit]);
    // A sibling at level 32 is still accepted.
    let level_31 = w.state.accounts[&parent].parent.expect("parent");
    w.account("Level 32 bis", level_31);
}
