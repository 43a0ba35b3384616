//! Lifecycle: deactivate (R-LIFE-01), reactivate (R-LIFE-02), delete
//! (R-LIFE-05, R-LIFE-06) and whole offboardings (R-OFF-01), with every
//! blocker reported at once (R-OFF-02): numbers still assigned (R-NUM-02),
//! forward targets (R-NUM-05), direct reports (R-TEAM-02), primary ownership
//! (R-LIFE-03), incomplete profile (R-LIFE-04), self (R-LIFE-09).

use super::teams::reassignment_events;
use super::work::transfer_events;
use super::*;
use crate::command::{OffboardEnd, Offboarding};
use std::collections::BTreeSet;

/// An offboarding plus what a bulk row changes in the same breath.
pub(crate) struct OffboardInput<'a> {
    /// The plan.
    pub plan: &'a Offboarding,
    /// The profile as the same command leaves it (bulk rows fill fields and deactivate at once).
    pub profile_after: Option<&'a Profile>,
}

/// The events of an offboarding, in the order they happen: unassign numbers,
/// forward, reassign reports, transfer work, then deactivate or delete. Every
/// check is made against the state as those earlier steps leave it.
pub(crate) fn offboard_events(
    s: &Organization,
    ctx: &Context<'_>,
    input: &OffboardInput<'_>,
    b: &mut Vec<Blocker>,
) -> Vec<Event> {
    let plan = input.plan;
    let user = plan.user;
    let deleting = matches!(plan.end, OffboardEnd::Delete(_));
    let Some(u) = live_user(
        s,
        user,
        if deleting {
            RuleId::DeletionAcknowledged
        } else {
            RuleId::DeactivationEndsAccess
        },
        b,
    ) else {
        return Vec::new();
    };
    if !deleting && u.status != UserStatus::Active {
        b.push(Blocker::WrongStatus {
            user,
            status: u.status,
            rule: RuleId::DeactivationEndsAccess,
        });
    }
    require_over_user(s, ctx, Permission::ManageUsers, u, b);
    not_self(ctx, user, b);
    not_primary_owner(s, user, b);
    let mut events = Vec::new();

    // 1. Numbers assigned to the user: unassign in this command, or refuse.
    if !u.assigned_numbers.is_empty() && !plan.unassign_numbers {
        b.push(Blocker::NumbersStillAssigned {
            user,
            numbers: u.assigned_numbers.iter().cloned().collect(),
            rule: if deleting {
                RuleId::NumbersBlockDeletion
            } else {
                RuleId::NumberAssignee
            },
        });
    }
    if plan.unassign_numbers {
        events.extend(u.assigned_numbers.iter().map(|n| Event::NumberUnassigned {
            number: n.clone(),
            user,
        }));
    }

    // 2. Forwarding: numbers forwarded to the user must go elsewhere (R-NUM-05);
    //    numbers just unassigned go along when a target is named.
    match plan.forward_numbers_to {
        None if !u.forwarded_numbers.is_empty() => b.push(Blocker::ForwardTarget {
            user,
            numbers: u.forwarded_numbers.iter().cloned().collect(),
        }),
        None => {}
        Some(to) if to == user => b.push(Blocker::TargetIsSubject { user }),
        Some(to) => {
            let unassigned = plan.unassign_numbers.then_some(&u.assigned_numbers);
            let numbers: BTreeSet<&PhoneNumber> = u
                .forwarded_numbers
                .iter()
                .chain(unassigned.into_iter().flatten())
                .collect();
            if let Some(target) = active_user(s, to, RuleId::ForwardToActiveUser, b) {
                let mut denied = BTreeSet::new();
                for n in &numbers {
                    if let Some(num) = s.numbers.get(*n) {
                        if !target.has_access(num.account) && denied.insert(num.account) {
                            b.push(Blocker::NoAccess {
                                user: to,
                                account: num.account,
                                rule: RuleId::ForwardToActiveUser,
                            });
                        }
                    }
                }
            }
            events.extend(numbers.into_iter().map(|n| Event::NumberForwarded {
                number: n.clone(),
                to,
            }));
        }
    }

    // 3. Direct reports (R-TEAM-02).
    match &plan.reassign_reports {
        None if !u.direct_reports.is_empty() => b.push(Blocker::HasDirectReports {
            leader: user,
            reports: u.direct_reports.iter().copied().collect(),
        }),
        None => {}
        Some(to) => events.extend(reassignment_events(s, u, to, b)),
    }

    // 4. Work (R-WORK-01). Deleting cancels meetings instead of moving them (R-LIFE-05).
    if let Some(to) = plan.transfer_work_to {
        active_user(s, to, RuleId::TransferWork, b);
        let items: Vec<WorkItemId> = u
            .work
            .iter()
            .filter(|w| {
                !(deleting
                    && s.work_items
                        .get(*w)
                        .is_some_and(|w| w.kind == WorkKind::Meeting))
            })
            .copied()
            .collect();
        events.extend(transfer_events(user, to, &items, b));
    }

    // 5. The end.
    match &plan.end {
        OffboardEnd::Deactivate => {
            if s.policies.require_complete_profile {
                let profile = input.profile_after.or(u.profile.as_ref());
                let missing = profile.map(Profile::missing_required).unwrap_or_default();
                if !missing.is_empty() {
                    b.push(Blocker::IncompleteProfile { user, missing });
                }
            }
            events.push(Event::UserDeactivated {
                user,
                sessions_ended: u.devices.keys().copied().collect(),
            });
        }
        OffboardEnd::Delete(ack) => {
            if *ack != DeletionAcknowledgement::ALL {
                b.push(Blocker::DeletionNotAcknowledged);
            }
            // A pending invitation of the deleted user must not stay acceptable.
            if let Some(inv) = u.invitation.and_then(|i| s.invitations.get(&i)) {
                if inv.status == InvitationStatus::Pending {
                    events.push(Event::InvitationRevoked { invitation: inv.id });
                }
            }
            events.extend(
                u.work
                    .iter()
                    .filter_map(|w| s.work_items.get(w))
                    .filter(|w| w.kind == WorkKind::Meeting && !w.cancelled)
                    .map(|w| Event::MeetingCancelled { item: w.id }),
            );
            events.push(Event::UserDeleted {
                user,
                acknowledgement: *ack,
                sessions_ended: u.devices.keys().copied().collect(),
            });
        }
    }
    events
}

use crate::event::DeletionAcknowledgement;

pub(super) fn offboard(s: &Organization, ctx: &Context<'_>, plan: &Offboarding) -> Outcome {
    let mut b = Vec::new();
    let events = offboard_events(
        s,
        ctx,
        &OffboardInput {
            plan,
            profile_after: None,
        },
        &mut b,
    );
    verdict(b)?;
    accept(events)
}

/// R-LIFE-02: a deactivated user can be reactivated; R-LIFE-04: not with an incomplete profile.
pub(crate) fn reactivate_events(
    s: &Organization,
    ctx: &Context<'_>,
    user: UserId,
    profile_after: Option<&Profile>,
    b: &mut Vec<Blocker>,
) -> Vec<Event> {
    let Some(u) = find_user(s, user, b) else {
        return Vec::new();
    };
    if u.status != UserStatus::Deactivated {
        b.push(Blocker::WrongStatus {
            user,
            status: u.status,
            rule: RuleId::Reactivation,
        });
    }
    require_over_user(s, ctx, Permission::ManageUsers, u, b);
    not_self(ctx, user, b);
    if s.policies.require_complete_profile {
        let missing = profile_after
            .or(u.profile.as_ref())
            .map(Profile::missing_required)
            .unwrap_or_default();
        if !missing.is_empty() {
            b.push(Blocker::IncompleteProfile { user, missing });
        }
    }
    vec![Event::UserReactivated { user }]
}

pub(super) fn reactivate(s: &Organization, ctx: &Context<'_>, user: UserId) -> Outcome {
    let mut b = Vec::new();
    let events = reactivate_events(s, ctx, user, None, &mut b);
    verdict(b)?;
    accept(events)
}
