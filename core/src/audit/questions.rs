//! The questions auditors ask, answered by replay.

use super::asof::AsOf;
use super::trail::{actor_label, user_label, Subject};
use crate::context::Actor;
use crate::ids::*;
use crate::model::UserStatus;
use crate::query::AccessVia;
use crate::service::{CommandService, ServiceError};
use crate::store::Store;
use chrono::{DateTime, Utc};

/// A user who could reach an account at some point in time. `Debug` hides the label.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessAt {
    /// The user.
    pub user: UserId,
    /// The user in words, as of today ("deleted user usr_…" once deleted).
    pub label: String,
    /// How: a role there, or the agency administrator grant.
    pub via: AccessVia,
    /// Their status then (a deactivated member keeps the membership but cannot sign in).
    pub status: UserStatus,
}

crate::redact::debug_redacted!(struct AccessAt { user, @redacted label, via, status });

/// Where a number routed at some point in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routing {
    /// Assigned to a user (R-NUM-01); assignment wins over forwarding.
    Assigned(UserId),
    /// Not assigned, forwarded to a user (R-NUM-04).
    Forwarded(UserId),
    /// Held by the organization, routed to nobody.
    Nobody,
    /// Not held by the organization then.
    NotHeld,
}

/// One deactivation of a user. `Debug` hides the label.
#[derive(Clone, PartialEq, Eq)]
pub struct Deactivation {
    /// Who deactivated them.
    pub by: Actor,
    /// The actor in words, as of today.
    pub by_label: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The command.
    pub command_id: Option<CommandId>,
    /// The stream version of the `UserDeactivated` event.
    pub version: u64,
}

crate::redact::debug_redacted!(struct Deactivation {
    by,
    @redacted by_label,
    at,
    command_id,
    version,
});

impl<S: Store> CommandService<S> {
    /// Who had access to `account` at instant `at`: its members then, and every
    /// agency administrator then, in user-id order.
    ///
    /// ```
    /// # use switchboard_core::service::*;
    /// # async fn demo<S: switchboard_core::store::Store>(service: &CommandService<S>, org: switchboard_core::OrgId, account: switchboard_core::AccountId) -> Result<(), ServiceError> {
    /// let then = chrono::DateTime::UNIX_EPOCH;
    /// for who in service.who_had_access(org, account, then).await? {
    ///     println!("{} via {:?}", who.label, who.via);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn who_had_access(
        &self,
        org: OrgId,
        account: AccountId,
        at: DateTime<Utc>,
    ) -> Result<Vec<AccessAt>, ServiceError> {
        let then = self.load_as_of(org, AsOf::Instant(at)).await?;
        let now = self.load(org).await?;
        let mut out: Vec<AccessAt> = then
            .who_can_access(account)
            .into_iter()
            .filter_map(|(user, via)| {
                let status = then.users.get(&user)?.status;
                Some(AccessAt {
                    user,
                    label: user_label(&now, user),
                    via,
                    status,
                })
            })
            .collect();
        out.sort_by_key(|a| a.user);
        out.dedup_by_key(|a| a.user);
        Ok(out)
    }

    /// Where `number` routed at instant `at`: the user it was assigned to,
    /// else the user it forwarded to.
    ///
    /// ```
    /// # use switchboard_core::service::*;
    /// # use switchboard_core::audit::Routing;
    /// # async fn demo<S: switchboard_core::store::Store>(service: &CommandService<S>, org: switchboard_core::OrgId) -> Result<(), ServiceError> {
    /// let number = switchboard_core::PhoneNumber::new("+14155550100");
    /// let routing = service.number_routing_at(org, &number, chrono::DateTime::UNIX_EPOCH).await?;
    /// assert_eq!(routing, Routing::NotHeld);
    /// # Ok(()) }
    /// ```
    pub async fn number_routing_at(
        &self,
        org: OrgId,
        number: &PhoneNumber,
        at: DateTime<Utc>,
    ) -> Result<Routing, ServiceError> {
        let then = self.load_as_of(org, AsOf::Instant(at)).await?;
        Ok(match then.numbers.get(number) {
            None => Routing::NotHeld,
            Some(n) => match (n.assigned_to, n.forwarded_to) {
                (Some(u), _) => Routing::Assigned(u),
                (None, Some(u)) => Routing::Forwarded(u),
                (None, None) => Routing::Nobody,
            },
        })
    }

    /// Who deactivated `user`, and when: every deactivation, oldest first
    /// (a user can be deactivated, reactivated and deactivated again).
    ///
    /// ```
    /// # use switchboard_core::service::*;
    /// # async fn demo<S: switchboard_core::store::Store>(service: &CommandService<S>, org: switchboard_core::OrgId, user: switchboard_core::UserId) -> Result<(), ServiceError> {
    /// if let Some(last) = service.who_deactivated(org, user).await?.last() {
    ///     println!("{} deactivated them at {}", last.by_label, last.at);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn who_deactivated(
        &self,
        org: OrgId,
        user: UserId,
    ) -> Result<Vec<Deactivation>, ServiceError> {
        let trail = self.trail(org, Subject::User(user)).await?;
        let now = self.load(org).await?;
        Ok(trail
            .entries
            .into_iter()
            .filter(|e| e.event_type == "UserDeactivated")
            .map(|e| Deactivation {
                by_label: actor_label(&now, &e.actor),
                by: e.actor,
                at: e.occurred_at,
                command_id: e.command_id,
                version: e.version,
            })
            .collect())
    }
}
