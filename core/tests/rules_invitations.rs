//! Rules of invitations and users: R-INV-01..07, R-USR-01..04.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use switchboard_core::*;

fn invite_cmd(emails: &str, grant: Grant) -> Command {
    Command::InviteUsers {
        emails: emails.into(),
        grant,
    }
}

fn accept_cmd(token: &str, email: Option<&str>, name: &str) -> Command {
    Command::AcceptInvitation {
        token: token.into(),
        email: email.map(str::to_owned),
        name: name.into(),
        mobile: Some(phone(9_001)),
        default_country: Some("US".into()),
    }
}

fn invalid_field(b: &Blocker) -> (RuleId, &str, &str) {
    match b {
        Blocker::Invalid {
            rule,
            field,
            reason,
        } => (*rule, field.as_str(), reason.as_str()),
        other => panic!("not Invalid: {other:?}"),
    }
}

// ---------------------------------------------------------------- R-INV-01

#[test]
fn r_inv_01_invites_many_separated_by_commas_spaces_and_newlines() {
    let mut w = World::new();
    let list = "ann@northwind.example, bob@northwind.example carl@northwind.example\ndan@northwind.example;eve@northwind.example";
    let d = w.ok(
        w.owner_actor(),
        invite_cmd(list, grant(agent_role(), &[w.root])),
    );
    assert_eq!(d.events.len(), 5, "one UserInvited per address");
    assert_eq!(d.secrets.len(), 5, "one token per invitation");
    let emails: Vec<String> = d
        .events
        .iter()
        .map(|e| match e {
            Event::UserInvited { personal, .. } => personal.email.clone().unwrap(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        emails,
        [
            "ann@northwind.example",
            "bob@northwind.example",
            "carl@northwind.example",
            "dan@northwind.example",
            "eve@northwind.example"
        ]
    );
    for e in &emails {
        let u = w.state.user_by_email(e).expect("invited user exists");
        assert_eq!(u.status, UserStatus::Invited);
    }
}

#[test]
fn r_inv_01_every_bad_address_is_reported_at_once_and_nobody_is_invited() {
    let mut w = World::new();
    let users_before = w.state.users.len();
    let err = w.refused(
        w.owner_actor(),
        invite_cmd(
            "good@northwind.example, nope@ ,\n@nodomain.example bad@localhost GOOD@northwind.example",
            grant(agent_role(), &[w.root]),
        ),
    );
    assert_eq!(err.blockers.len(), 4, "{err}");
    assert!(
        err.blockers.iter().all(|b| b.rule() == RuleId::InviteMany),
        "{err}"
    );
    // Each bad address is named by its place in the list, not repeated:
    // refusals reach operators' logs.
    let (_, field, reason) = invalid_field(&err.blockers[0]);
    assert_eq!(field, "email");
    assert!(reason.starts_with("address 2 of the list"), "{reason}");
    assert!(!reason.contains("nope@"), "{reason}");
    assert!(invalid_field(&err.blockers[1])
        .2
        .starts_with("address 3 of the list"));
    assert!(invalid_field(&err.blockers[2])
        .2
        .starts_with("address 4 of the list"));
    assert_eq!(
        err.blockers[3],
        Blocker::DuplicateEmail {
            email: "GOOD@northwind.example".into()
        }
    );
    assert_eq!(w.state.users.len(), users_before);
}

#[test]
fn r_inv_01_an_empty_list_is_refused() {
    let mut w = World::new();
    let err = w.refused(
        w.owner_actor(),
        invite_cmd(" ,\n ", grant(agent_role(), &[w.root])),
    );
    let (rule, field, _) = invalid_field(only(&err));
    assert_eq!((rule, field), (RuleId::InviteMany, "emails"));
}

// ---------------------------------------------------------------- R-INV-02

#[test]
fn r_inv_02_the_invitation_carries_role_accounts_admin_grant_and_clients() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let west = w.account("West", w.root);
    let seller = w.agent("Sam Seller", &[east]);
    let client = w.work(WorkKind::Client, "Acme Corp", seller);
    let g = Grant {
        role: role(RoleId::TEAM_LEADER),
        accounts: vec![east, west],
        agency_admin: false,
        clients: vec![client],
    };
    let inv = w.invite("tina@northwind.example", g.clone());
    match w.events.last().unwrap() {
        Event::UserInvited { grant, .. } => assert_eq!(grant, &g),
        other => panic!("unexpected {other:?}"),
    }
    w.accept_complete(&inv.token, "Tina Leader");
    let tina = w.user(inv.user.unwrap());
    assert_eq!(tina.memberships.get(&east), Some(&leader_role()));
    assert_eq!(tina.memberships.get(&west), Some(&leader_role()));
    assert!(!tina.agency_admin);
    assert!(
        tina.work.contains(&client),
        "assigned clients move on acceptance"
    );
    assert_eq!(w.state.work_items[&client].owner, tina.id);
    assert!(!w.user(seller).work.contains(&client));

    // An admin grant: the person becomes an agency administrator.
    let admin = w.invite(
        "alan@northwind.example",
        Grant {
            role: admin_role(),
            accounts: vec![],
            agency_admin: true,
            clients: vec![],
        },
    );
    w.accept_complete(&admin.token, "Alan Admin");
    assert!(w.user(admin.user.unwrap()).agency_admin);
    assert!(w.state.agency_admins().contains(&admin.user.unwrap()));
    w.assert_replays();
}

#[test]
fn r_inv_02_a_malformed_grant_is_refused_with_every_fault() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let bob = w.agent("Bob", &[east]);
    let convo = w.work(WorkKind::Conversation, "Chat", bob);
    let ghost_account = AccountId::from_uuid(uuid::Uuid::from_u128(99));
    let err = w.refused(
        w.owner_actor(),
        invite_cmd(
            "new@northwind.example",
            Grant {
                role: role("no-such-role"),
                accounts: vec![east, east, ghost_account],
                agency_admin: false,
                clients: vec![convo],
            },
        ),
    );
    assert_eq!(
        err.blockers,
        vec![
            Blocker::NotFound {
                missing: Missing::Role(role("no-such-role"))
            },
            Blocker::Invalid {
                rule: RuleId::InvitationGrant,
                field: "accounts".into(),
                reason: format!("{east} is listed twice"),
            },
            Blocker::NotFound {
                missing: Missing::Account(ghost_account)
            },
            Blocker::NotAClient { item: convo },
        ]
    );
    // No account and no admin grant: nothing to join.
    let err = w.refused(
        w.owner_actor(),
        invite_cmd("new@northwind.example", grant(agent_role(), &[])),
    );
    assert_eq!(invalid_field(only(&err)).0, RuleId::InvitationGrant);
}

#[test]
fn r_inv_02_only_an_agency_administrator_may_grant_the_admin_role() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let east_admin = w.admin("Erin", &[east]);
    let err = w.refused(
        as_user(east_admin),
        invite_cmd(
            "boss@northwind.example",
            Grant {
                role: admin_role(),
                accounts: vec![east],
                agency_admin: true,
                clients: vec![],
            },
        ),
    );
    assert_eq!(
        only(&err),
        &Blocker::PermissionDenied {
            actor: as_user(east_admin),
            permission: Permission::ManageUsers,
            account: None,
        }
    );
    // The same admin may invite to their own account.
    w.ok(
        as_user(east_admin),
        invite_cmd("agent@northwind.example", grant(agent_role(), &[east])),
    );
}

// ---------------------------------------------------------------- R-INV-03

#[test]
fn r_inv_03_only_token_hashes_are_recorded() {
    let mut w = World::new();
    let d = w.ok(
        w.owner_actor(),
        invite_cmd(
            "a@northwind.example b@northwind.example",
            grant(agent_role(), &[w.root]),
        ),
    );
    let link = w.ok(
        w.owner_actor(),
        Command::CreateInvitationLink {
            grant: grant(agent_role(), &[w.root]),
        },
    );
    let reset = w.ok(
        w.owner_actor(),
        Command::RequestPasswordReset { user: w.owner },
    );
    let tokens: Vec<String> = [&d, &link, &reset]
        .iter()
        .flat_map(|d| d.secrets.iter().map(|s| s.token.clone()))
        .collect();
    assert_eq!(tokens.len(), 4);
    let log = log_text(&w.events);
    let snapshot = serde_json::to_string(&w.state).unwrap();
    for t in &tokens {
        assert!(t.len() >= 32, "tokens are long secrets");
        assert!(
            !log.contains(t.as_str()),
            "token text must not be in the log"
        );
        assert!(!snapshot.contains(t.as_str()), "nor in the state");
        let hash = validate::token_hash(t);
        assert!(log.contains(&hash.0), "the hash is recorded");
    }
    // The issued secret does not print its token either.
    assert!(!format!("{:?}", d.secrets).contains(tokens[0].as_str()));
}

#[test]
fn r_inv_03_a_link_invitation_is_accepted_with_its_token_and_an_email() {
    let mut w = World::new();
    let link = w.ok(
        w.owner_actor(),
        Command::CreateInvitationLink {
            grant: grant(agent_role(), &[w.root]),
        },
    );
    let token = link.secrets[0].token.clone();
    // Without an email: refused.
    let err = w.refused(Actor::System, accept_cmd(&token, None, "Lina"));
    assert_eq!(
        invalid_field(only(&err)),
        (
            RuleId::InvitationToken,
            "email",
            "accepting a link invitation needs an email"
        )
    );
    // A wrong token: refused.
    let err = w.refused(
        Actor::System,
        accept_cmd(
            &format!("{}x", &token[..token.len() - 1]),
            Some("lina@northwind.example"),
            "Lina",
        ),
    );
    assert_eq!(only(&err), &Blocker::UnknownToken);
    // With the token and an email: the user exists now.
    let d = w.ok(
        Actor::System,
        accept_cmd(&token, Some("lina@northwind.example"), "Lina"),
    );
    let user = match &d.events[..] {
        [Event::InvitationAccepted { user, new_user, .. }] => {
            assert!(*new_user);
            *user
        }
        other => panic!("unexpected {other:?}"),
    };
    let u = w.user(user);
    assert_eq!(u.status, UserStatus::Invited, "active after first sign-in");
    assert_eq!(u.email(), Some("lina@northwind.example"));
    assert!(u.memberships.contains_key(&w.root));
    // The token is spent.
    let err = w.refused(
        Actor::System,
        accept_cmd(&token, Some("other@northwind.example"), "Other"),
    );
    assert!(matches!(
        only(&err),
        Blocker::InvitationNotPending {
            status: InvitationStatus::Accepted,
            ..
        }
    ));
}

#[test]
fn r_inv_03_an_email_invitation_cannot_be_taken_by_another_address() {
    let mut w = World::new();
    let inv = w.invite("ann@northwind.example", grant(agent_role(), &[w.root]));
    let err = w.refused(
        Actor::System,
        accept_cmd(&inv.token, Some("mallory@evil.example"), "Mallory"),
    );
    assert_eq!(invalid_field(only(&err)).0, RuleId::InvitationToken);
    // The same address, in another case, is fine.
    w.ok(
        Actor::System,
        accept_cmd(&inv.token, Some("ANN@northwind.example"), "Ann"),
    );
}

// ---------------------------------------------------------------- R-INV-04

#[test]
fn r_inv_04_invitee_stays_invited_until_accepted_and_signed_in() {
    let mut w = World::new();
    let inv = w.invite("ann@northwind.example", grant(agent_role(), &[w.root]));
    let ann = inv.user.unwrap();
    assert_eq!(w.user(ann).status, UserStatus::Invited);
    assert_eq!(
        w.state.pending_invitations(w.now()).len(),
        1,
        "listed as pending"
    );
    // Signing in before accepting is refused.
    let sign_in = Command::SignIn {
        user: ann,
        device_name: "phone".into(),
    };
    let err = w.refused(as_user(ann), sign_in.clone());
    assert_eq!(
        only(&err),
        &Blocker::WrongStatus {
            user: ann,
            status: UserStatus::Invited,
            rule: RuleId::InviteeActivation
        }
    );
    // Accepting completes the profile but does not yet activate.
    w.accept_complete(&inv.token, "Ann Agent");
    assert_eq!(w.user(ann).status, UserStatus::Invited);
    assert_eq!(w.profile(ann).name.as_deref(), Some("Ann Agent"));
    // The first sign-in activates.
    let d = w.ok(as_user(ann), sign_in.clone());
    assert!(matches!(d.events[0], Event::UserActivated { user } if user == ann));
    assert!(matches!(d.events[1], Event::DeviceSignedIn { .. }));
    assert_eq!(w.user(ann).status, UserStatus::Active);
    // Later sign-ins do not re-activate.
    let d = w.ok(as_user(ann), sign_in);
    assert_eq!(d.events.len(), 1);
}

// ---------------------------------------------------------------- R-INV-05

#[test]
fn r_inv_05_invitations_expire_after_14_days_by_default() {
    let mut w = World::new();
    assert_eq!(w.state.policies.invitation_ttl_days, 14);
    let early = w.invite("early@northwind.example", grant(agent_role(), &[w.root]));
    let late = w.invite("late@northwind.example", grant(agent_role(), &[w.root]));
    let expires = w.state.invitations[&late.invitation].expires_at;
    assert_eq!(expires, w.now() + Duration::days(14));
    // One second before expiry: still acceptable.
    w.advance(Duration::days(14) - Duration::seconds(1));
    w.accept_complete(&early.token, "Early");
    // At expiry: refused, the person must be re-invited.
    w.advance(Duration::seconds(1));
    let err = w.refused(Actor::System, accept_cmd(&late.token, None, "Late"));
    assert_eq!(
        only(&err),
        &Blocker::InvitationExpired {
            invitation: late.invitation
        }
    );
    assert_eq!(
        w.state
            .expired_invitations(w.now())
            .iter()
            .map(|i| i.id)
            .collect::<Vec<_>>(),
        vec![late.invitation]
    );
}

#[test]
fn r_inv_05_reinvite_issues_a_new_token_and_ttl_and_the_old_token_stops_working() {
    let mut w = World::new();
    let old = w.invite("late@northwind.example", grant(agent_role(), &[w.root]));
    w.advance(Duration::days(20));
    // The sweep records the expiry.
    let d = w.ok(Actor::System, Command::ExpireInvitations { limit: 100 });
    assert_eq!(
        d.events,
        vec![Event::InvitationExpired {
            invitation: old.invitation
        }]
    );
    assert_eq!(
        w.state.invitations[&old.invitation].status,
        InvitationStatus::Expired
    );
    let d = w.ok(
        w.owner_actor(),
        Command::Reinvite {
            invitation: old.invitation,
        },
    );
    let new = World::invited(&d).remove(0);
    assert_ne!(new.token, old.token, "a new token");
    assert_ne!(new.invitation, old.invitation);
    assert_eq!(new.user, old.user, "the same invited user");
    match &d.events[..] {
        [Event::UserReinvited {
            previous,
            expires_at,
            ..
        }] => {
            assert_eq!(*previous, old.invitation);
            assert_eq!(*expires_at, w.now() + Duration::days(14), "a new TTL");
        }
        other => panic!("unexpected {other:?}"),
    }
    // The old token no longer works.
    let err = w.refused(Actor::System, accept_cmd(&old.token, None, "Late"));
    assert_eq!(
        only(&err),
        &Blocker::InvitationNotPending {
            invitation: old.invitation,
            status: InvitationStatus::Superseded
        }
    );
    // The new one does.
    w.accept_complete(&new.token, "Late Comer");
    assert!(w.user(new.user.unwrap()).invitation_accepted);
    w.assert_replays();
}

#[test]
fn r_inv_05_the_ttl_is_a_policy() {
    let mut w = World::with_policies(Some(Policies {
        invitation_ttl_days: 3,
        ..Policies::default()
    }));
    let inv = w.invite("short@northwind.example", grant(agent_role(), &[w.root]));
    assert_eq!(
        w.state.invitations[&inv.invitation].expires_at,
        w.now() + Duration::days(3)
    );
    w.advance(Duration::days(3));
    let err = w.refused(Actor::System, accept_cmd(&inv.token, None, "Short"));
    assert_eq!(err.rules(), vec![RuleId::InvitationExpiry]);
    // A TTL outside 1..=365 days is refused.
    let err = w.refused(
        w.owner_actor(),
        Command::SetPolicies {
            policies: Policies {
                invitation_ttl_days: 0,
                ..Policies::default()
            },
        },
    );
    assert_eq!(invalid_field(only(&err)).0, RuleId::InvitationExpiry);
}

/// No panic from any input: with the longest TTL, a caller's clock so near
/// the last representable instant that the expiry cannot be represented is
/// refused under R-INV-05, with every other blocker, and changes nothing.
#[test]
fn r_inv_05_an_expiry_past_the_last_representable_instant_is_refused_not_a_panic() {
    let mut w = World::with_policies(Some(Policies {
        invitation_ttl_days: 365,
        ..Policies::default()
    }));
    let pending = w.invite("pending@northwind.example", grant(agent_role(), &[w.root]));
    let link = Command::CreateInvitationLink {
        grant: grant(agent_role(), &[w.root]),
    };
    let end = DateTime::<Utc>::MAX_UTC;
    // The last instant the TTL still fits: the invitation expires at the end.
    w.clock.set(end - Duration::days(365));
    let d = w.ok(w.owner_actor(), link.clone());
    match &d.events[..] {
        [Event::InvitationLinkCreated { expires_at, .. }] => assert_eq!(*expires_at, end),
        other => panic!("unexpected {other:?}"),
    }
    for now in [end - Duration::days(365) + Duration::seconds(1), end] {
        w.clock.set(now);
        let err = w.refused(w.owner_actor(), link.clone());
        assert_eq!(
            only(&err),
            &Blocker::ExpiryOutOfRange {
                what: "invitation".into(),
                ttl: "365 days".into(),
                now,
                rule: RuleId::InvitationExpiry,
            }
        );
        let err = w.refused(
            w.owner_actor(),
            invite_cmd(
                "late@northwind.example, nope@",
                grant(agent_role(), &[w.root]),
            ),
        );
        let mut rules = err.rules();
        rules.sort();
        assert_eq!(
            rules,
            vec![RuleId::InviteMany, RuleId::InvitationExpiry],
            "{err}"
        );
        let err = w.refused(
            w.owner_actor(),
            Command::Reinvite {
                invitation: pending.invitation,
            },
        );
        assert_eq!(err.rules(), vec![RuleId::InvitationExpiry], "{err}");
    }
    w.assert_replays();
}

// ---------------------------------------------------------------- R-INV-06

#[test]
fn r_inv_06_inviting_an_existing_users_email_names_that_user() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let ann_email = w.profile(ann).email.clone();
    let pending = w.invite("pending@northwind.example", grant(agent_role(), &[w.root]));
    let err = w.refused(
        w.owner_actor(),
        invite_cmd(
            &format!(
                "{}, PENDING@northwind.example, fresh@northwind.example",
                ann_email.to_uppercase()
            ),
            grant(agent_role(), &[w.root]),
        ),
    );
    assert_eq!(
        err.blockers,
        vec![
            Blocker::EmailInUse {
                email: ann_email.to_uppercase(),
                user: ann,
                rule: RuleId::InviteExistingEmail
            },
            Blocker::EmailInUse {
                email: "PENDING@northwind.example".into(),
                user: pending.user.unwrap(),
                rule: RuleId::InviteExistingEmail
            },
        ]
    );
    assert!(err.to_string().contains(&ann.to_string()));
    // Add them to accounts instead (R-MEM-02).
    let east = w.account("East", w.root);
    w.ok(
        w.owner_actor(),
        Command::GrantAccess {
            user: ann,
            role: agent_role(),
            accounts: vec![east],
        },
    );
    // A new address is invited.
    w.ok(
        w.owner_actor(),
        invite_cmd("fresh@northwind.example", grant(agent_role(), &[w.root])),
    );
}

// ---------------------------------------------------------------- R-INV-07

#[test]
fn r_inv_07_a_revoked_invitation_cannot_be_accepted() {
    let mut w = World::new();
    let inv = w.invite("ann@northwind.example", grant(agent_role(), &[w.root]));
    let revoke = Command::RevokeInvitation {
        invitation: inv.invitation,
    };
    let d = w.ok(w.owner_actor(), revoke.clone());
    assert_eq!(
        d.events,
        vec![Event::InvitationRevoked {
            invitation: inv.invitation
        }]
    );
    let err = w.refused(Actor::System, accept_cmd(&inv.token, None, "Ann"));
    assert_eq!(
        only(&err),
        &Blocker::InvitationNotPending {
            invitation: inv.invitation,
            status: InvitationStatus::Revoked
        }
    );
    // Revoking twice is refused: it is no longer pending.
    let err = w.refused(w.owner_actor(), revoke);
    assert_eq!(err.rules(), vec![RuleId::InvitationRevocation]);
    assert!(w.state.pending_invitations(w.now()).is_empty());
}

#[test]
fn r_inv_07_accepted_and_superseded_invitations_cannot_be_revoked_or_accepted() {
    let mut w = World::new();
    let a = w.invite("a@northwind.example", grant(agent_role(), &[w.root]));
    w.accept_complete(&a.token, "A");
    let err = w.refused(
        w.owner_actor(),
        Command::RevokeInvitation {
            invitation: a.invitation,
        },
    );
    assert_eq!(
        only(&err),
        &Blocker::InvitationNotPending {
            invitation: a.invitation,
            status: InvitationStatus::Accepted
        }
    );
    let b = w.invite("b@northwind.example", grant(agent_role(), &[w.root]));
    w.ok(
        w.owner_actor(),
        Command::Reinvite {
            invitation: b.invitation,
        },
    );
    let err = w.refused(
        w.owner_actor(),
        Command::RevokeInvitation {
            invitation: b.invitation,
        },
    );
    assert_eq!(
        only(&err),
        &Blocker::InvitationNotPending {
            invitation: b.invitation,
            status: InvitationStatus::Superseded
        }
    );
}

#[test]
fn r_inv_07_revoking_needs_manage_users_over_the_invitations_accounts() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let west = w.account("West", w.root);
    let west_admin = w.admin("Wes", &[west]);
    let inv = w.invite("e@northwind.example", grant(agent_role(), &[east]));
    let err = w.refused(
        as_user(west_admin),
        Command::RevokeInvitation {
            invitation: inv.invitation,
        },
    );
    assert_eq!(
        only(&err),
        &Blocker::PermissionDenied {
            actor: as_user(west_admin),
            permission: Permission::ManageUsers,
            account: Some(east)
        }
    );
}

// ---------------------------------------------------------------- R-USR-01

#[test]
fn r_usr_01_emails_are_unique_case_insensitively() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let bob = w.agent("Bob", &[w.root]);
    let ann_email = w.profile(ann).email.clone();
    // Bob cannot take Ann's email in another case.
    let err = w.refused(
        as_user(bob),
        Command::UpdateProfile {
            user: bob,
            name: None,
            email: Some(ann_email.to_uppercase()),
            mobile: None,
            default_country: None,
            notifications: None,
        },
    );
    assert_eq!(
        only(&err),
        &Blocker::EmailInUse {
            email: ann_email.to_uppercase(),
            user: ann,
            rule: RuleId::UniqueEmail
        }
    );
    // Nor can a link invitation be accepted with it.
    let link = w.ok(
        w.owner_actor(),
        Command::CreateInvitationLink {
            grant: grant(agent_role(), &[w.root]),
        },
    );
    let err = w.refused(
        Actor::System,
        accept_cmd(
            &link.secrets[0].token,
            Some(&ann_email.to_ascii_uppercase()),
            "Impostor",
        ),
    );
    assert_eq!(err.rules(), vec![RuleId::UniqueEmail]);
    // Ann may change the case of her own email; lookups ignore case.
    w.ok(
        as_user(ann),
        Command::UpdateProfile {
            user: ann,
            name: None,
            email: Some(ann_email.to_uppercase()),
            mobile: None,
            default_country: None,
            notifications: None,
        },
    );
    assert_eq!(w.state.user_by_email(&ann_email).map(|u| u.id), Some(ann));
    // Bob moves to a new address; his old one is free again.
    let bob_old = w.profile(bob).email.clone();
    w.ok(
        as_user(bob),
        Command::UpdateProfile {
            user: bob,
            name: None,
            email: Some("robert@northwind.example".into()),
            mobile: None,
            default_country: None,
            notifications: None,
        },
    );
    assert!(w.state.user_by_email(&bob_old).is_none());
    assert_eq!(
        w.state
            .user_by_email("Robert@Northwind.example")
            .map(|u| u.id),
        Some(bob)
    );
    w.ok(
        w.owner_actor(),
        invite_cmd(&bob_old, grant(agent_role(), &[w.root])),
    );
    w.assert_replays();
}

// ---------------------------------------------------------------- R-USR-03

/// A sign-in name (SCIM's `userName`) is set by an administrator, kept as
/// given, looked up whatever the case, held by one user, never another
/// user's email — and an email never becomes someone's while it is another
/// user's sign-in name. Refusals change nothing; clearing or deleting frees
/// the name.
#[test]
fn r_usr_03_a_sign_in_name_names_one_user() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let bob = w.agent("Bob", &[w.root]);
    let erin = w.admin("Erin", &[w.root]);
    let set = |user: UserId, name: &str| Command::SetSignInName {
        user,
        sign_in_name: Edit::Set(name.to_owned()),
    };
    // Ann herself may not choose it (R-AUTH-03).
    let err = w.refused(as_user(ann), set(ann, "Ann.Lee"));
    assert_eq!(
        only(&err),
        &Blocker::AdminManagedField {
            actor: as_user(ann),
            user: ann,
            field: AdminField::SignInName,
            account: Some(w.root),
        }
    );
    // Her administrator sets it; it is kept as given and found in any case.
    let d = w.ok(as_user(erin), set(ann, "Ann.Lee"));
    assert_eq!(d.events.len(), 1);
    assert_eq!(w.profile(ann).sign_in_name.as_deref(), Some("Ann.Lee"));
    assert_eq!(
        w.state.user_by_sign_in_name("ANN.LEE").map(|u| u.id),
        Some(ann)
    );
    let ann_email = w.profile(ann).email.clone();
    assert_eq!(
        w.state.user_signing_in_as("ann.lee").map(|u| u.id),
        Some(ann)
    );
    assert_eq!(
        w.state.user_signing_in_as(&ann_email).map(|u| u.id),
        Some(ann)
    );
    // The same name again records nothing.
    assert!(w.ok(as_user(erin), set(ann, "Ann.Lee")).events.is_empty());
    // Bob can take neither her name, in any case, nor her email.
    let before = w.state.clone();
    for taken in [
        "ann.lee",
        "ANN.LEE",
        ann_email.as_str(),
        &ann_email.to_uppercase(),
    ] {
        let err = w.refused(as_user(erin), set(bob, taken));
        assert_eq!(
            only(&err),
            &Blocker::SignInNameInUse { user: ann },
            "{taken}"
        );
        assert_eq!(err.rules(), vec![RuleId::UniqueSignInName]);
        assert!(!err.to_string().contains(taken), "the name is not repeated");
    }
    // Malformed names: typed refusals.
    for (bad, rule) in [
        ("   ".to_owned(), RuleId::Input),
        (" bob".to_owned(), RuleId::Input),
        ("bob\t".to_owned(), RuleId::Input),
        (
            "b".repeat(validate::MAX_SIGN_IN_NAME_LEN + 1),
            RuleId::Limit,
        ),
    ] {
        let err = w.refused(as_user(erin), set(bob, &bad));
        assert_eq!(err.rules(), vec![rule], "{bad:?}");
    }
    assert_eq!(w.state, before);
    // Bob may sign in with his own email as his name.
    let bob_email = w.profile(bob).email.clone();
    w.ok(as_user(erin), set(bob, &bob_email.to_uppercase()));
    // A sign-in name that is an address no one has: nobody can then be
    // invited with it, take it as their email, or accept a link with it.
    w.ok(as_user(erin), set(ann, "boss@northwind.example"));
    assert!(
        w.state.user_by_sign_in_name("ann.lee").is_none(),
        "the old name is free"
    );
    let before = w.state.clone();
    let err = w.refused(
        w.owner_actor(),
        invite_cmd("Boss@Northwind.example", grant(agent_role(), &[w.root])),
    );
    assert_eq!(only(&err), &Blocker::SignInNameInUse { user: ann });
    let err = w.refused(
        as_user(bob),
        Command::UpdateProfile {
            user: bob,
            name: None,
            email: Some("boss@northwind.example".into()),
            mobile: None,
            default_country: None,
            notifications: None,
        },
    );
    assert_eq!(only(&err), &Blocker::SignInNameInUse { user: ann });
    let link = w.ok(
        w.owner_actor(),
        Command::CreateInvitationLink {
            grant: grant(agent_role(), &[w.root]),
        },
    );
    let after_link = w.state.clone();
    let err = w.refused(
        Actor::System,
        accept_cmd(
            &link.secrets[0].token,
            Some("boss@northwind.example"),
            "Boss",
        ),
    );
    assert_eq!(err.rules(), vec![RuleId::UniqueSignInName]);
    assert_eq!(w.state, after_link);
    assert_eq!(before.version + 1, w.state.version);
    // Cleared, the name is free again.
    w.ok(
        as_user(erin),
        Command::SetSignInName {
            user: ann,
            sign_in_name: Edit::Clear,
        },
    );
    assert_eq!(w.profile(ann).sign_in_name, None);
    assert!(w
        .state
        .user_by_sign_in_name("boss@northwind.example")
        .is_none());
    w.ok(
        w.owner_actor(),
        invite_cmd("boss@northwind.example", grant(agent_role(), &[w.root])),
    );
    // Deleting its holder frees a name too.
    w.ok(as_user(erin), set(ann, "ann.lee"));
    w.ok(
        w.owner_actor(),
        Command::Delete {
            user: ann,
            acknowledgement: ACK,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    assert!(w.state.user_by_sign_in_name("ann.lee").is_none());
    assert_eq!(w.state.sign_in_index().len(), 1, "Bob's alone");
    w.ok(as_user(erin), set(bob, "Ann.Lee"));
    assert_eq!(
        w.state.user_by_sign_in_name("ann.lee").map(|u| u.id),
        Some(bob)
    );
    w.assert_replays();
}

// ---------------------------------------------------------------- R-USR-04

/// An identity provider provisions a user without an invitation: active at
/// once, with the grant applied, signing in with a sign-in name, an email or
/// both — and with neither the command is refused. The email and the name
/// obey R-USR-01 and R-USR-03; the grant needs `ManageUsers` (R-AUTH-01).
#[test]
fn r_usr_04_a_provisioned_user_is_active_at_once_and_needs_no_email() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let west = w.account("West", w.root);
    let walt = w.admin("Walt", &[west]);
    let ann = w.agent("Ann", &[east]);
    let ann_email = w.profile(ann).email.clone();
    let provision = |name: Option<&str>, email: Option<&str>| Command::ProvisionUser {
        sign_in_name: name.map(str::to_owned),
        email: email.map(str::to_owned),
        name: None,
        mobile: None,
        default_country: None,
        job_title: None,
        external_id: None,
        reports_to: None,
        deactivated: false,
        grant: grant(agent_role(), &[east]),
    };
    // No email: the sign-in name alone.
    let d = w.ok(w.owner_actor(), provision(Some("Dana.Idp"), None));
    assert!(d.secrets.is_empty(), "no invitation, no token");
    let dana = d.created().users[0];
    let u = w.user(dana);
    assert_eq!(u.status, UserStatus::Active);
    assert_eq!(u.email(), None);
    assert_eq!(u.invitation, None);
    assert_eq!(u.memberships.get(&east), Some(&agent_role()));
    assert_eq!(
        w.state.user_signing_in_as("dana.idp").map(|u| u.id),
        Some(dana)
    );
    assert!(!w.state.email_index().values().any(|u| *u == dana));
    // She signs in at once and can later be given an email.
    w.ok(
        as_user(dana),
        Command::SignIn {
            user: dana,
            device_name: "Laptop".into(),
        },
    );
    // An email alone.
    let d = w.ok(
        w.owner_actor(),
        provision(None, Some("eli@northwind.example")),
    );
    let eli = d.created().users[0];
    assert_eq!(w.user(eli).email(), Some("eli@northwind.example"));
    assert_eq!(
        w.state
            .user_signing_in_as("ELI@northwind.example")
            .map(|u| u.id),
        Some(eli)
    );
    // Refusals change nothing: neither name nor email (R-USR-04); a taken
    // email (R-USR-01); a name that is taken or someone's email (R-USR-03);
    // an administrator of another account (R-AUTH-01).
    let before = w.state.clone();
    let err = w.refused(w.owner_actor(), provision(None, None));
    assert_eq!(err.rules(), vec![RuleId::Provisioning]);
    let err = w.refused(
        w.owner_actor(),
        provision(Some("fay"), Some(&ann_email.to_uppercase())),
    );
    assert_eq!(
        only(&err),
        &Blocker::EmailInUse {
            email: ann_email.to_uppercase(),
            user: ann,
            rule: RuleId::UniqueEmail
        }
    );
    for taken in ["DANA.IDP", ann_email.as_str()] {
        let err = w.refused(w.owner_actor(), provision(Some(taken), None));
        assert_eq!(err.rules(), vec![RuleId::UniqueSignInName], "{taken}");
    }
    let err = w.refused(
        w.owner_actor(),
        provision(Some(" fay"), Some("not-an-email")),
    );
    assert_eq!(err.rules(), vec![RuleId::InviteMany, RuleId::Input]);
    let err = w.refused(as_user(walt), provision(Some("fay"), None));
    assert_eq!(err.rules(), vec![RuleId::ManageUsersRequired]);
    // The profile comes in the same command: a bad mobile number creates
    // nobody (R-USR-02).
    let with_profile = |mobile: &str| Command::ProvisionUser {
        sign_in_name: Some("gus".into()),
        email: None,
        name: Some("Gus Idp".into()),
        mobile: Some(mobile.into()),
        default_country: Some("GB".into()),
        job_title: Some("Supervisor".into()),
        external_id: Some("00uGus".into()),
        reports_to: None,
        deactivated: false,
        grant: grant(agent_role(), &[east]),
    };
    let err = w.refused(w.owner_actor(), with_profile("12345"));
    assert_eq!(err.rules(), vec![RuleId::MobileAndCountry]);
    assert_eq!(w.state, before);
    let d = w.ok(w.owner_actor(), with_profile("+1 415 555 0100"));
    let gus = d.created().users[0];
    let p = w.profile(gus);
    assert_eq!(p.name.as_deref(), Some("Gus Idp"));
    assert_eq!(p.mobile.as_ref().map(|m| m.as_str()), Some("+14155550100"));
    assert_eq!(p.job_title.as_deref(), Some("Supervisor"));
    assert_eq!(p.external_id.as_deref(), Some("00uGus"));
    assert_eq!(p.default_country.as_deref(), Some("GB"));
    assert!(p.missing_required().is_empty(), "a complete profile");
    assert_eq!(d.events.len(), 1, "one event: created whole");
    // Provisioned deactivated: known, but no sign-in until reactivated,
    // which needs a complete profile (R-LIFE-02, R-LIFE-04).
    let d = w.ok(
        w.owner_actor(),
        Command::ProvisionUser {
            sign_in_name: Some("hal".into()),
            email: None,
            name: None,
            mobile: None,
            default_country: None,
            job_title: None,
            external_id: None,
            reports_to: None,
            deactivated: true,
            grant: grant(agent_role(), &[east]),
        },
    );
    let hal = d.created().users[0];
    assert_eq!(w.user(hal).status, UserStatus::Deactivated);
    let err = w.refused(
        as_user(hal),
        Command::SignIn {
            user: hal,
            device_name: "Laptop".into(),
        },
    );
    assert_eq!(err.rules(), vec![RuleId::DeactivationEndsAccess]);
    let err = w.refused(w.owner_actor(), Command::Reactivate { user: hal });
    assert_eq!(err.rules(), vec![RuleId::CompleteProfileRequired]);
    w.assert_replays();
}

// ---------------------------------------------------------------- R-USR-02

#[test]
fn r_usr_02_mobiles_are_e164_and_countries_iso_alpha2() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let edit = |mobile: &str, country: &str| Command::UpdateProfile {
        user: ann,
        name: None,
        email: None,
        mobile: Some(Edit::Set(mobile.into())),
        default_country: Some(country.into()),
        notifications: None,
    };
    // Both faults at once.
    let err = w.refused(as_user(ann), edit("415 555 0123", "USA"));
    assert_eq!(
        err.rules(),
        vec![RuleId::MobileAndCountry, RuleId::MobileAndCountry]
    );
    assert_eq!(invalid_field(&err.blockers[0]).1, "mobile");
    assert_eq!(invalid_field(&err.blockers[1]).1, "default_country");
    for (mobile, country) in [
        ("+1 555", "US"),
        ("+1 415 555 0123", "XX"),
        ("+1 415 555 0123", "1A"),
    ] {
        let err = w.refused(as_user(ann), edit(mobile, country));
        assert_eq!(
            err.rules(),
            vec![RuleId::MobileAndCountry],
            "{mobile} {country}"
        );
    }
    // Valid input is normalised.
    w.ok(as_user(ann), edit("+1 (415) 555-0123", "de"));
    let p = w.profile(ann);
    assert_eq!(p.mobile, Some(PhoneNumber::new("+14155550123")));
    assert_eq!(p.default_country.as_deref(), Some("DE"));
    // The same checks on acceptance.
    let inv = w.invite("ivy@northwind.example", grant(agent_role(), &[w.root]));
    let err = w.refused(
        Actor::System,
        Command::AcceptInvitation {
            token: inv.token.clone(),
            email: None,
            name: "Ivy".into(),
            mobile: Some("0044 20 7946 0000".into()),
            default_country: Some("UK".into()),
        },
    );
    assert_eq!(
        err.rules(),
        vec![RuleId::MobileAndCountry, RuleId::MobileAndCountry]
    );
    w.ok(
        Actor::System,
        Command::AcceptInvitation {
            token: inv.token,
            email: None,
            name: "Ivy".into(),
            mobile: Some("+44 20 7946 0000".into()),
            default_country: Some("GB".into()),
        },
    );
    let ivy = w.profile(inv.user.unwrap());
    assert_eq!(ivy.mobile, Some(PhoneNumber::new("+442079460000")));
    assert_eq!(ivy.default_country.as_deref(), Some("GB"));
}

#[test]
fn r_inv_02_clients_in_a_grant_need_manage_users_over_their_current_owner() {
    // Handing over a client is a transfer of work (R-WORK-02, R-AUTH-01): an
    // East administrator cannot take a West user's client by inviting someone.
    let mut w = World::new();
    let east = w.account("East", w.root);
    let west = w.account("West", w.root);
    let erin = w.admin("Erin", &[east]);
    let wes = w.agent("Wes", &[west]);
    let eve = w.agent("Eve", &[east]);
    let west_client = w.work(WorkKind::Client, "Globex", wes);
    let east_client = w.work(WorkKind::Client, "Initech", eve);
    let with_clients = |clients: Vec<WorkItemId>| Grant {
        role: agent_role(),
        accounts: vec![east],
        agency_admin: false,
        clients,
    };
    let err = w.refused(
        as_user(erin),
        invite_cmd("new@northwind.example", with_clients(vec![west_client])),
    );
    assert_eq!(
        only(&err),
        &Blocker::PermissionDenied {
            actor: as_user(erin),
            permission: Permission::ManageUsers,
            account: Some(west)
        }
    );
    let err = w.refused(
        as_user(erin),
        Command::CreateInvitationLink {
            grant: with_clients(vec![west_client]),
        },
    );
    assert_eq!(err.rules(), vec![RuleId::ManageUsersRequired]);
    // Clients of her own account's users: allowed.
    let inv = World::invited(&w.ok(
        as_user(erin),
        invite_cmd("new@northwind.example", with_clients(vec![east_client])),
    ))
    .remove(0);
    w.accept_complete(&inv.token, "New");
    assert_eq!(w.state.work_items[&east_client].owner, inv.user.unwrap());
    assert_eq!(w.state.work_items[&west_client].owner, wes);
}

// Found by `cargo mutants`: every client in the tests' grants belonged to
// a user with accounts, so the owner's other cases, an agency administrator
// or a user left without accounts, could lose their check unnoticed.
#[test]
fn r_inv_02_clients_of_an_agency_administrator_or_of_a_user_without_accounts_need_more() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let erin = w.admin("Erin", &[east]);
    let alan = w.agency_admin("Alan");
    let zed = w.agent("Zed", &[east]);
    let alans_client = w.work(WorkKind::Client, "Globex", alan);
    let zeds_client = w.work(WorkKind::Client, "Initech", zed);
    w.ok(
        w.owner_actor(),
        Command::RemoveFromAllAccounts { user: zed },
    );
    let with_client = |client| Grant {
        role: agent_role(),
        accounts: vec![east],
        agency_admin: false,
        clients: vec![client],
    };
    let denied = |account| Blocker::PermissionDenied {
        actor: as_user(erin),
        permission: Permission::ManageUsers,
        account,
    };
    // An agency administrator's client: only another agency administrator.
    let err = w.refused(
        as_user(erin),
        invite_cmd("new@northwind.example", with_client(alans_client)),
    );
    assert_eq!(only(&err), &denied(None));
    // A client of a user without accounts: ManageUsers on the root account.
    let err = w.refused(
        as_user(erin),
        invite_cmd("new@northwind.example", with_client(zeds_client)),
    );
    assert_eq!(only(&err), &denied(Some(w.root)));
    // The owner may hand over both.
    w.ok(
        w.owner_actor(),
        invite_cmd(
            "new@northwind.example",
            Grant {
                clients: vec![alans_client, zeds_client],
                ..with_client(alans_client)
            },
        ),
    );
}

// Found by `cargo mutants` (RELIABILITY.md): no test re-invited a user who
// was no longer `Invited`, so the guard on the user's status could be dropped.
#[test]
fn r_inv_05_only_an_invitee_who_is_still_invited_can_be_reinvited() {
    let mut w = World::new();
    let gone = w.invite("gone@northwind.example", grant(agent_role(), &[w.root]));
    let user = gone.user.expect("an email invitation creates its user");
    w.ok(
        w.owner_actor(),
        Command::Delete {
            user,
            acknowledgement: DeletionAcknowledgement::ALL,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    let err = w.refused(
        w.owner_actor(),
        Command::Reinvite {
            invitation: gone.invitation,
        },
    );
    assert_eq!(
        err.blockers,
        vec![Blocker::WrongStatus {
            user,
            status: UserStatus::Deleted,
            rule: RuleId::InvitationExpiry,
        }],
        "{err}"
    );
}

// Found by `cargo mutants`: no test gave a token at the length bound, so
// `>` could become `>=` or `==` unnoticed.
#[test]
fn r_inv_03_a_token_at_the_length_bound_is_looked_up_and_one_over_it_is_refused() {
    let mut w = World::new();
    // 128 bytes (the bound): looked up, and unknown.
    let err = w.refused(Actor::System, accept_cmd(&"x".repeat(128), None, "Max"));
    assert_eq!(only(&err), &Blocker::UnknownToken);
    // 129 bytes: refused by the bound before any lookup.
    let err = w.refused(Actor::System, accept_cmd(&"x".repeat(129), None, "Max"));
    assert_eq!(
        only(&err),
        &Blocker::LimitExceeded {
            what: "token".into(),
            limit: 128,
            actual: 129,
        }
    );
    assert_eq!(err.rules(), vec![RuleId::Limit]);
}

// Found by `cargo mutants`: no test signed a user in up to the device limit,
// so the count could be off by one unnoticed.
#[test]
fn r_inv_04_sign_ins_stop_at_the_device_limit() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    // `agent` signed Ann in once; 99 more sessions reach the limit of 100.
    for i in 1..100 {
        w.sign_in(ann, &format!("device {i}"));
    }
    assert_eq!(w.user(ann).devices.len(), 100);
    let err = w.refused(
        as_user(ann),
        Command::SignIn {
            user: ann,
            device_name: "one too many".into(),
        },
    );
    assert_eq!(
        only(&err),
        &Blocker::LimitExceeded {
            what: "devices".into(),
            limit: 100,
            actual: 101,
        }
    );
}
