//! Profile details (R-AUTH-02, R-USR-01, R-USR-02), sign-in names
//! (R-USR-03), admin-managed fields (R-AUTH-03), devices (R-LIFE-08) and password resets (R-LIFE-07).

use super::*;
use crate::command::Edit;
use crate::event::PersonalData;
use crate::validate::{self, MAX_TEXT_LEN};

/// The profile-detail part of a command (also used by bulk rows).
#[derive(Default)]
pub(crate) struct ProfileChange<'a> {
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub mobile: Option<&'a Edit<String>>,
    pub default_country: Option<&'a str>,
    pub notifications: Option<&'a NotificationPreferences>,
}

/// R-AUTH-02: who may edit profile details under the organization's policy.
fn require_profile_editor(
    s: &Organization,
    ctx: &Context<'_>,
    target: &User,
    b: &mut Vec<Blocker>,
) {
    match ctx.actor.user_id() {
        None => {} // system / support
        Some(actor) if actor == target.id => {
            if let Err(e) = acting_user(s, ctx) {
                b.push(e);
            }
        }
        Some(_) => match s.policies.profile_edit {
            ProfileEditPolicy::SelfOnly => b.push(Blocker::OnlySelf { user: target.id }),
            ProfileEditPolicy::SelfOrAdmin => {
                require_over_user(s, ctx, Permission::ManageUsers, target, b)
            }
        },
    }
}

/// Validates a profile change and yields its event (None when it changes nothing).
pub(crate) fn profile_events(
    s: &Organization,
    ctx: &Context<'_>,
    user: UserId,
    change: &ProfileChange<'_>,
    b: &mut Vec<Blocker>,
) -> Option<Event> {
    let nothing = change.name.is_none()
        && change.email.is_none()
        && change.mobile.is_none()
        && change.default_country.is_none()
        && change.notifications.is_none();
    if nothing {
        // Nothing asked (e.g. a bulk row with only other columns): no
        // permission is needed to change nothing.
        return None;
    }
    let target = live_user(s, user, RuleId::PersonalDataErased, b)?;
    require_profile_editor(s, ctx, target, b);
    let mut personal = PersonalData {
        name: change
            .name
            .and_then(|n| check(validate::text("name", n, MAX_TEXT_LEN), b)),
        ..PersonalData::default()
    };
    if let Some(e) = change.email {
        personal.email = checked_email(s, Some(user), e, b);
    }
    match change.mobile {
        Some(Edit::Set(m)) => {
            personal.mobile = check(
                validate::phone_number("mobile", RuleId::MobileAndCountry, m),
                b,
            );
        }
        Some(Edit::Clear) => personal.cleared.push(ProfileField::Mobile),
        None => {}
    }
    let default_country = change
        .default_country
        .and_then(|c| check(validate::country(c), b));
    if personal.is_empty() && default_country.is_none() && change.notifications.is_none() {
        return None;
    }
    Some(Event::ProfileUpdated {
        user,
        personal,
        default_country,
        notifications: change.notifications.cloned(),
    })
}

pub(super) fn update_profile(s: &Organization, ctx: &Context<'_>, command: &Command) -> Outcome {
    let Command::UpdateProfile {
        user,
        name,
        email,
        mobile,
        default_country,
        notifications,
    } = command
    else {
        return Err(Blocker::NotFound {
            missing: Missing::Organization,
        }
        .into());
    };
    let mut b = Vec::new();
    let change = ProfileChange {
        name: name.as_deref(),
        email: email.as_deref(),
        mobile: mobile.as_ref(),
        default_country: default_country.as_deref(),
        notifications: notifications.as_ref(),
    };
    let event = profile_events(s, ctx, *user, &change, &mut b);
    verdict(b)?;
    accept(event.into_iter().collect())
}

/// The admin-managed part of a command (also used by bulk rows).
#[derive(Default)]
pub(crate) struct AdminChange<'a> {
    pub job_title: Option<&'a Edit<String>>,
    pub picture: Option<&'a Edit<String>>,
    pub admin_access: Option<bool>,
}

impl AdminChange<'_> {
    /// The admin-managed fields the change names.
    fn fields(&self) -> Vec<AdminField> {
        [
            (self.job_title.is_some(), AdminField::JobTitle),
            (self.picture.is_some(), AdminField::Picture),
            (self.admin_access.is_some(), AdminField::AdminAccess),
        ]
        .into_iter()
        .filter_map(|(named, field)| named.then_some(field))
        .collect()
    }
}

/// R-AUTH-03: the permission denials of a check, for an edit of `fields`:
/// each missing `ManageUsers` becomes one blocker per field; an inactive
/// actor stays what it is (R-AUTH-01).
fn admin_field_denials(denied: Vec<Blocker>, user: UserId, fields: &[AdminField]) -> Vec<Blocker> {
    denied
        .into_iter()
        .flat_map(|d| match d {
            Blocker::PermissionDenied { actor, account, .. } => fields
                .iter()
                .map(|&field| Blocker::AdminManagedField {
                    actor: actor.clone(),
                    user,
                    field,
                    account,
                })
                .collect(),
            other => vec![other],
        })
        .collect()
}

/// R-AUTH-03: job title, picture and the admin toggle need `ManageUsers`; the
/// toggle gives organization-wide power, so it needs an agency administrator.
/// A change that names none of them still needs `ManageUsers` over the user,
/// as managing the user (R-AUTH-01): a bulk row without a title.
pub(crate) fn admin_fields_events(
    s: &Organization,
    ctx: &Context<'_>,
    user: UserId,
    change: &AdminChange<'_>,
    b: &mut Vec<Blocker>,
) -> Vec<Event> {
    let Some(target) = live_user(s, user, RuleId::PersonalDataErased, b) else {
        return Vec::new();
    };
    let fields = change.fields();
    if fields.is_empty() {
        require_over_user(s, ctx, Permission::ManageUsers, target, b);
    } else {
        let mut denied = Vec::new();
        require_over_user(s, ctx, Permission::ManageUsers, target, &mut denied);
        b.extend(admin_field_denials(denied, user, &fields));
    }
    let require_agency_admin = |b: &mut Vec<Blocker>| {
        let mut denied = Vec::new();
        require_org_wide(s, ctx, Permission::ManageUsers, &mut denied);
        b.extend(admin_field_denials(
            denied,
            user,
            &[AdminField::AdminAccess],
        ));
    };
    let mut personal = PersonalData::default();
    match change.job_title {
        Some(Edit::Set(t)) => {
            personal.job_title = check(validate::text("job_title", t, MAX_TEXT_LEN), b)
        }
        Some(Edit::Clear) => personal.cleared.push(ProfileField::JobTitle),
        None => {}
    }
    match change.picture {
        Some(Edit::Set(p)) => personal.picture = check(validate::url("picture", p), b),
        Some(Edit::Clear) => personal.cleared.push(ProfileField::Picture),
        None => {}
    }
    let mut events = Vec::new();
    if !personal.is_empty() {
        events.push(Event::ProfileUpdated {
            user,
            personal,
            default_country: None,
            notifications: None,
        });
    }
    match change.admin_access {
        Some(true) if !target.agency_admin => {
            require_agency_admin(b);
            events.push(Event::AgencyAdminGranted { user });
        }
        Some(false) if target.agency_admin => {
            require_agency_admin(b);
            not_primary_owner(s, user, b);
            not_self(ctx, user, b);
            // Losing the grant must not strand numbers, forwards or reports.
            let keeps_team = holds_manage_team(s, false, target.memberships.values());
            access_loss_blockers(
                s,
                target,
                |a| target.memberships.contains_key(&a),
                keeps_team,
                b,
            );
            events.push(Event::AgencyAdminRevoked { user });
        }
        _ => {}
    }
    events
}

pub(super) fn update_admin_fields(
    s: &Organization,
    ctx: &Context<'_>,
    command: &Command,
) -> Outcome {
    let Command::UpdateAdminFields {
        user,
        job_title,
        picture,
        admin_access,
    } = command
    else {
        return Err(Blocker::NotFound {
            missing: Missing::Organization,
        }
        .into());
    };
    let mut b = Vec::new();
    let change = AdminChange {
        job_title: job_title.as_ref(),
        picture: picture.as_ref(),
        admin_access: *admin_access,
    };
    let events = admin_fields_events(s, ctx, *user, &change, &mut b);
    verdict(b)?;
    accept(events)
}

/// R-AUTH-03: the identity provider's id is admin-managed: `ManageUsers` over
/// the user; kept exactly as given ([`validate::external_id`]). R-LIFE-06: a
/// deleted user has no profile to hold one.
pub(super) fn set_external_id(
    s: &Organization,
    ctx: &Context<'_>,
    user: UserId,
    external_id: &Edit<String>,
) -> Outcome {
    let mut b = Vec::new();
    let mut personal = PersonalData::default();
    if let Some(target) = live_user(s, user, RuleId::PersonalDataErased, &mut b) {
        let mut denied = Vec::new();
        require_over_user(s, ctx, Permission::ManageUsers, target, &mut denied);
        b.extend(admin_field_denials(denied, user, &[AdminField::ExternalId]));
    }
    match external_id {
        Edit::Set(id) => personal.external_id = check(validate::external_id(id), &mut b),
        Edit::Clear => personal.cleared.push(ProfileField::ExternalId),
    }
    verdict(b)?;
    accept(vec![Event::ProfileUpdated {
        user,
        personal,
        default_country: None,
        notifications: None,
    }])
}

/// R-USR-01, R-USR-03: an email about to be `user`'s (`None`: a
/// newcomer's), valid, and neither another live user's email nor their
/// sign-in name. The email, when valid; blockers go to `b`.
pub(super) fn checked_email(
    s: &Organization,
    user: Option<UserId>,
    raw: &str,
    b: &mut Vec<Blocker>,
) -> Option<String> {
    let e = check(validate::email(raw), b)?;
    if let Some(other) = s.user_by_email(&e).filter(|o| Some(o.id) != user) {
        b.push(Blocker::EmailInUse {
            email: e.clone(),
            user: other.id,
            rule: RuleId::UniqueEmail,
        });
    }
    b.extend(email_names_someone_else(s, user, &e));
    Some(e)
}

/// R-USR-03: an email about to be `user`'s (`None`: a newcomer's) must not
/// be the sign-in name of another live user, or signing in with it would
/// name two people.
pub(super) fn email_names_someone_else(
    s: &Organization,
    user: Option<UserId>,
    email: &str,
) -> Option<Blocker> {
    s.user_by_sign_in_name(email)
        .filter(|holder| Some(holder.id) != user)
        .map(|holder| Blocker::SignInNameInUse { user: holder.id })
}

/// R-AUTH-03, R-USR-03: a sign-in name is admin-managed (`ManageUsers` over
/// the user), held by one live user only and never another user's email,
/// whatever the letter case; kept as given ([`validate::sign_in_name`]).
/// Setting the name the user has already, or clearing none, records
/// nothing. R-LIFE-06: a deleted user has no profile to hold one.
pub(super) fn set_sign_in_name(
    s: &Organization,
    ctx: &Context<'_>,
    user: UserId,
    sign_in_name: &Edit<String>,
) -> Outcome {
    let mut b = Vec::new();
    let mut personal = PersonalData::default();
    let target = live_user(s, user, RuleId::PersonalDataErased, &mut b);
    if let Some(target) = target {
        let mut denied = Vec::new();
        require_over_user(s, ctx, Permission::ManageUsers, target, &mut denied);
        b.extend(admin_field_denials(denied, user, &[AdminField::SignInName]));
    }
    match sign_in_name {
        Edit::Set(name) => {
            if let Some(name) = check(validate::sign_in_name(name), &mut b) {
                let holder = [s.user_by_sign_in_name(&name), s.user_by_email(&name)]
                    .into_iter()
                    .flatten()
                    .find(|holder| holder.id != user);
                if let Some(holder) = holder {
                    b.push(Blocker::SignInNameInUse { user: holder.id });
                }
                personal.sign_in_name = Some(name);
            }
        }
        Edit::Clear => personal.cleared.push(ProfileField::SignInName),
    }
    verdict(b)?;
    let current = target
        .and_then(|t| t.profile.as_ref())
        .and_then(|p| p.sign_in_name.as_deref());
    let unchanged = match (&personal.sign_in_name, current) {
        (Some(new), Some(old)) => new == old,
        (None, None) => true, // clearing what is not there
        _ => false,
    };
    if unchanged {
        return accept(Vec::new());
    }
    accept(vec![Event::ProfileUpdated {
        user,
        personal,
        default_country: None,
        notifications: None,
    }])
}

/// The user themself, or a `ManageUsers` holder over them.
fn require_self_or_manager(
    s: &Organization,
    ctx: &Context<'_>,
    target: &User,
    b: &mut Vec<Blocker>,
) {
    if ctx.actor.user_id() == Some(target.id) {
        if let Err(e) = acting_user(s, ctx) {
            b.push(e);
        }
    } else {
        require_over_user(s, ctx, Permission::ManageUsers, target, b);
    }
}

/// R-LIFE-08: sign any of a user's devices out.
pub(super) fn sign_out(
    s: &Organization,
    ctx: &Context<'_>,
    user: UserId,
    device: DeviceId,
) -> Outcome {
    let mut b = Vec::new();
    if let Some(u) = find_user(s, user, &mut b) {
        require_self_or_manager(s, ctx, u, &mut b);
        if !u.devices.contains_key(&device) {
            b.push(Blocker::NotFound {
                missing: Missing::Device(device),
            });
        }
    }
    verdict(b)?;
    accept(vec![Event::DeviceSignedOut { user, device }])
}

/// R-LIFE-07: a reset token for an active user; only its hash is recorded.
pub(super) fn password_reset(s: &Organization, ctx: &Context<'_>, user: UserId) -> Outcome {
    let mut b = Vec::new();
    if let Some(u) = active_user(s, user, RuleId::PasswordReset, &mut b) {
        require_self_or_manager(s, ctx, u, &mut b);
    }
    let hours = s.policies.password_reset_ttl_hours;
    let expires_at = expires_at(
        ctx,
        chrono::TimeDelta::try_hours(i64::from(hours)),
        "password reset",
        format!("{hours} hours"),
        RuleId::PasswordReset,
    );
    b.extend(expires_at.as_ref().err().cloned());
    verdict(b)?;
    let expires_at = expires_at?;
    let (token, token_hash) = issue_token(ctx);
    Ok(Decision {
        events: vec![Event::PasswordResetIssued {
            user,
            token_hash,
            expires_at,
        }],
        secrets: vec![IssuedSecret {
            purpose: SecretPurpose::PasswordReset { user },
            token,
        }],
        report: None,
    })
}
