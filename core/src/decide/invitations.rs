//! Invitations and first sign-in: R-INV-01..07.

use super::*;
use crate::event::PersonalData;
use crate::validate::{self, MAX_TEXT_LEN, MAX_TOKEN_LEN};

/// Limit: device sessions per user; the oldest must be signed out first.
pub const MAX_DEVICES_PER_USER: usize = 100;

/// R-INV-05: when an invitation issued now expires, or why it cannot.
fn expiry(s: &Organization, ctx: &Context<'_>) -> Result<chrono::DateTime<chrono::Utc>, Blocker> {
    let days = s.policies.invitation_ttl_days;
    expires_at(
        ctx,
        chrono::TimeDelta::try_days(i64::from(days)),
        "invitation",
        format!("{days} days"),
        RuleId::InvitationExpiry,
    )
}

/// R-INV-01, R-INV-02, R-INV-06: invite many by email in one command.
pub(super) fn invite(s: &Organization, ctx: &Context<'_>, raw: &str, grant: &Grant) -> Outcome {
    let mut b = Vec::new();
    check_grant(s, ctx, grant, &mut b);
    let emails = match validate::email_list(raw) {
        Ok((ok, bad)) => {
            b.extend(bad);
            ok
        }
        Err(e) => {
            b.push(e);
            Vec::new()
        }
    };
    for e in &emails {
        // R-INV-06: an existing user is added to accounts instead, or re-invited.
        if let Some(existing) = s.user_by_email(e) {
            b.push(Blocker::EmailInUse {
                email: e.clone(),
                user: existing.id,
                rule: RuleId::InviteExistingEmail,
            });
        }
        b.extend(super::profile::email_names_someone_else(s, None, e));
    }
    let expires_at = expiry(s, ctx);
    b.extend(expires_at.as_ref().err().cloned());
    verdict(b)?;
    let expires_at = expires_at?;
    let mut decision = Decision::default();
    for email in emails {
        let user: UserId = new_id(ctx);
        let invitation: InvitationId = new_id(ctx);
        let (token, token_hash) = issue_token(ctx);
        decision.events.push(Event::UserInvited {
            user,
            invitation,
            personal: PersonalData {
                email: Some(email.clone()),
                ..PersonalData::default()
            },
            grant: grant.clone(),
            token_hash,
            expires_at,
        });
        decision.secrets.push(IssuedSecret {
            purpose: SecretPurpose::Invitation {
                invitation,
                user: Some(user),
                email: Some(email),
            },
            token,
        });
    }
    Ok(decision)
}

/// R-USR-04: a user provisioned by an identity provider, active at once,
/// with a sign-in name, an email or both: the email unique (R-USR-01) and
/// no one's sign-in name, the name unique and no one's email (R-USR-03), the
/// grant as an invitation's (R-INV-02, R-AUTH-01), the profile as every
/// edit's (R-USR-02; the admin-managed fields are the grant's `ManageUsers`
/// holder's to set, R-AUTH-03).
pub(super) fn provision(s: &Organization, ctx: &Context<'_>, command: &Command) -> Outcome {
    let Command::ProvisionUser {
        sign_in_name,
        email,
        name,
        mobile,
        default_country,
        job_title,
        external_id,
        reports_to,
        deactivated,
        grant,
    } = command
    else {
        // Dispatch routes only `ProvisionUser` here; no input panics.
        return Err(Blocker::NotFound {
            missing: Missing::Organization,
        }
        .into());
    };
    let (sign_in_name, email) = (sign_in_name.as_deref(), email.as_deref());
    let mut b = Vec::new();
    check_grant(s, ctx, grant, &mut b);
    if sign_in_name.is_none() && email.is_none() {
        b.push(Blocker::Invalid {
            rule: RuleId::Provisioning,
            field: "sign_in_name".into(),
            reason: "a provisioned user needs a sign-in name or an email to sign in with".into(),
        });
    }
    let mut personal = PersonalData {
        email: email.and_then(|e| super::profile::checked_email(s, None, e, &mut b)),
        ..PersonalData::default()
    };
    if let Some(name) = sign_in_name.and_then(|n| check(validate::sign_in_name(n), &mut b)) {
        let holder = [s.user_by_sign_in_name(&name), s.user_by_email(&name)]
            .into_iter()
            .flatten()
            .next();
        if let Some(holder) = holder {
            b.push(Blocker::SignInNameInUse { user: holder.id });
        }
        personal.sign_in_name = Some(name);
    }
    personal.name = name
        .as_deref()
        .and_then(|n| check(validate::text("name", n, MAX_TEXT_LEN), &mut b));
    personal.mobile = mobile.as_deref().and_then(|m| {
        check(
            validate::phone_number("mobile", RuleId::MobileAndCountry, m),
            &mut b,
        )
    });
    // The country is no personal data: events record it in clear, beside
    // the sealed part.
    let default_country = default_country
        .as_deref()
        .and_then(|c| check(validate::country(c), &mut b));
    personal.job_title = job_title
        .as_deref()
        .and_then(|t| check(validate::text("job_title", t, MAX_TEXT_LEN), &mut b));
    personal.external_id = external_id
        .as_deref()
        .and_then(|x| check(validate::external_id(x), &mut b));
    // R-TEAM-01; a new user can close no loop.
    if let Some(leader) = reports_to {
        super::teams::check_leader(s, *leader, &mut b);
    }
    verdict(b)?;
    let user = new_id(ctx);
    let mut events = vec![Event::UserProvisioned {
        user,
        personal,
        default_country,
        grant: grant.clone(),
    }];
    if let Some(leader) = reports_to {
        events.push(Event::ReportingLineChanged {
            user,
            leader: Some(*leader),
        });
    }
    if *deactivated {
        events.push(Event::UserDeactivated {
            user,
            sessions_ended: Vec::new(),
        });
    }
    accept(events)
}

/// R-INV-03: a copyable link; the email is given on acceptance.
pub(super) fn create_link(s: &Organization, ctx: &Context<'_>, grant: &Grant) -> Outcome {
    let mut b = Vec::new();
    check_grant(s, ctx, grant, &mut b);
    let expires_at = expiry(s, ctx);
    b.extend(expires_at.as_ref().err().cloned());
    verdict(b)?;
    let expires_at = expires_at?;
    let invitation: InvitationId = new_id(ctx);
    let (token, token_hash) = issue_token(ctx);
    Ok(Decision {
        events: vec![Event::InvitationLinkCreated {
            invitation,
            grant: grant.clone(),
            token_hash,
            expires_at,
        }],
        secrets: vec![IssuedSecret {
            purpose: SecretPurpose::Invitation {
                invitation,
                user: None,
                email: None,
            },
            token,
        }],
        report: None,
    })
}

fn find_invitation<'s>(
    s: &'s Organization,
    id: InvitationId,
    b: &mut Vec<Blocker>,
) -> Option<&'s Invitation> {
    let i = s.invitations.get(&id);
    if i.is_none() {
        b.push(Blocker::NotFound {
            missing: Missing::Invitation(id),
        });
    }
    i
}

fn require_over_invitation(
    s: &Organization,
    ctx: &Context<'_>,
    inv: &Invitation,
    b: &mut Vec<Blocker>,
) {
    if inv.grant.agency_admin {
        require_org_wide(s, ctx, Permission::ManageUsers, b);
    } else {
        require_on_accounts(
            s,
            ctx,
            Permission::ManageUsers,
            inv.grant.accounts.iter().copied(),
            b,
        );
    }
}

/// R-INV-05: a new token and TTL; the old invitation is superseded (R-INV-07).
pub(super) fn reinvite(s: &Organization, ctx: &Context<'_>, id: InvitationId) -> Outcome {
    let mut b = Vec::new();
    let Some(inv) = find_invitation(s, id, &mut b) else {
        return Err(CommandError { blockers: b });
    };
    require_over_invitation(s, ctx, inv, &mut b);
    let status = inv.status_at(ctx.now);
    if !matches!(
        status,
        InvitationStatus::Pending | InvitationStatus::Expired | InvitationStatus::Revoked
    ) {
        b.push(Blocker::InvitationNotPending {
            invitation: id,
            status,
        });
    }
    let user = match (inv.delivery, inv.user) {
        (Delivery::Email, Some(u)) => s.users.get(&u),
        _ => None,
    };
    match user {
        Some(u) if u.status == UserStatus::Invited => {}
        Some(u) => b.push(Blocker::WrongStatus {
            user: u.id,
            status: u.status,
            rule: RuleId::InvitationExpiry,
        }),
        None => b.push(Blocker::Invalid {
            rule: RuleId::InvitationExpiry,
            field: "invitation".into(),
            reason: "only email invitations are re-sent; create a new link instead".into(),
        }),
    }
    let expires_at = expiry(s, ctx);
    b.extend(expires_at.as_ref().err().cloned());
    verdict(b)?;
    let expires_at = expires_at?;
    let Some(user) = user else {
        return Err(Blocker::NotFound {
            missing: Missing::Invitation(id),
        }
        .into());
    };
    let invitation: InvitationId = new_id(ctx);
    let (token, token_hash) = issue_token(ctx);
    Ok(Decision {
        events: vec![Event::UserReinvited {
            user: user.id,
            previous: id,
            invitation,
            token_hash,
            expires_at,
        }],
        secrets: vec![IssuedSecret {
            purpose: SecretPurpose::Invitation {
                invitation,
                user: Some(user.id),
                email: user.email().map(str::to_owned),
            },
            token,
        }],
        report: None,
    })
}

/// R-INV-07: only a pending invitation can be revoked.
pub(super) fn revoke(s: &Organization, ctx: &Context<'_>, id: InvitationId) -> Outcome {
    let mut b = Vec::new();
    let Some(inv) = find_invitation(s, id, &mut b) else {
        return Err(CommandError { blockers: b });
    };
    require_over_invitation(s, ctx, inv, &mut b);
    let status = inv.status_at(ctx.now);
    if status != InvitationStatus::Pending {
        b.push(Blocker::InvitationNotPending {
            invitation: id,
            status,
        });
    }
    verdict(b)?;
    accept(vec![Event::InvitationRevoked { invitation: id }])
}

/// R-INV-05: the sweep marks lapsed invitations expired. Cost: the lapsed
/// invitations (an index by expiry), at most `limit` per command.
pub(super) fn expire(s: &Organization, ctx: &Context<'_>, limit: u32) -> Outcome {
    let mut b = Vec::new();
    require_org_wide(s, ctx, Permission::ManageUsers, &mut b);
    let limit = limit as usize;
    check(
        validate::count("limit", limit, validate::MAX_ITEMS_PER_COMMAND),
        &mut b,
    );
    verdict(b)?;
    let events = s
        .expiry_index
        .iter()
        .take_while(|(at, _)| *at <= ctx.now)
        .take(limit)
        .map(|(_, id)| Event::InvitationExpired { invitation: *id })
        .collect();
    accept(events)
}

/// R-INV-03, R-INV-04, R-INV-05, R-INV-07: accept with the secret token and complete the profile.
fn accept_invitation_checks(
    s: &Organization,
    ctx: &Context<'_>,
    token: &str,
    b: &mut Vec<Blocker>,
) -> Option<InvitationId> {
    if token.len() > MAX_TOKEN_LEN {
        b.push(Blocker::LimitExceeded {
            what: "token".into(),
            limit: MAX_TOKEN_LEN,
            actual: token.len(),
        });
        return None;
    }
    let Some(id) = s
        .token_index
        .get(&validate::token_hash(token), &s.invitations)
    else {
        b.push(Blocker::UnknownToken);
        return None;
    };
    let inv = s.invitations.get(&id)?;
    match inv.status_at(ctx.now) {
        InvitationStatus::Pending => Some(id),
        InvitationStatus::Expired => {
            b.push(Blocker::InvitationExpired { invitation: id });
            None
        }
        status => {
            b.push(Blocker::InvitationNotPending {
                invitation: id,
                status,
            });
            None
        }
    }
}

pub(super) fn accept_invitation(
    s: &Organization,
    ctx: &Context<'_>,
    token: &str,
    email: Option<&str>,
    name: &str,
    mobile: Option<&str>,
    default_country: Option<&str>,
) -> Outcome {
    let mut b = Vec::new();
    let invitation = accept_invitation_checks(s, ctx, token, &mut b);
    let name = check(validate::text("name", name, MAX_TEXT_LEN), &mut b);
    let mobile = mobile.and_then(|m| {
        check(
            validate::phone_number("mobile", RuleId::MobileAndCountry, m),
            &mut b,
        )
    });
    let country = default_country.and_then(|c| check(validate::country(c), &mut b));
    let inv = invitation.and_then(|id| s.invitations.get(&id));
    let mut personal = PersonalData {
        name,
        mobile,
        ..PersonalData::default()
    };
    let (user, new_user) = match inv {
        Some(Invitation {
            delivery: Delivery::Email,
            user: Some(user),
            ..
        }) => {
            let existing = s.users.get(user);
            if let (Some(given), Some(u)) = (email, existing) {
                if u.email().map(validate::email_key) != Some(validate::email_key(given)) {
                    b.push(Blocker::Invalid {
                        rule: RuleId::InvitationToken,
                        field: "email".into(),
                        reason: "this invitation was sent to another address".into(),
                    });
                }
            }
            (Some(*user), false)
        }
        Some(_) => {
            match email {
                None => b.push(Blocker::Invalid {
                    rule: RuleId::InvitationToken,
                    field: "email".into(),
                    reason: "accepting a link invitation needs an email".into(),
                }),
                Some(e) => personal.email = super::profile::checked_email(s, None, e, &mut b),
            }
            (None, true)
        }
        None => (None, false),
    };
    verdict(b)?;
    let (Some(invitation), true) = (invitation, user.is_some() || new_user) else {
        return Err(Blocker::UnknownToken.into());
    };
    let user = user.unwrap_or_else(|| new_id(ctx));
    super::accept(vec![Event::InvitationAccepted {
        invitation,
        user,
        new_user,
        personal,
        default_country: country,
    }])
}

/// R-INV-04: the first sign-in after acceptance activates; R-LIFE-01: a
/// deactivated user cannot sign in.
pub(super) fn sign_in(
    s: &Organization,
    ctx: &Context<'_>,
    user: UserId,
    device_name: &str,
) -> Outcome {
    let mut b = Vec::new();
    if let Some(actor) = ctx.actor.user_id() {
        if actor != user {
            b.push(Blocker::OnlySelf { user });
        }
    }
    let name = check(
        validate::text("device_name", device_name, MAX_TEXT_LEN),
        &mut b,
    );
    let u = find_user(s, user, &mut b);
    let mut activate = false;
    if let Some(u) = u {
        match u.status {
            UserStatus::Active => {}
            UserStatus::Invited if u.invitation_accepted => activate = true,
            UserStatus::Invited => b.push(Blocker::WrongStatus {
                user,
                status: u.status,
                rule: RuleId::InviteeActivation,
            }),
            UserStatus::Deactivated | UserStatus::Deleted => b.push(Blocker::WrongStatus {
                user,
                status: u.status,
                rule: RuleId::DeactivationEndsAccess,
            }),
        }
        check(
            validate::count("devices", u.devices.len() + 1, MAX_DEVICES_PER_USER),
            &mut b,
        );
    }
    verdict(b)?;
    let mut events = Vec::with_capacity(2);
    if activate {
        events.push(Event::UserActivated { user });
    }
    events.push(Event::DeviceSignedIn {
        user,
        device: new_id(ctx),
        name: name.unwrap_or_default(),
        at: ctx.now,
    });
    super::accept(events)
}
