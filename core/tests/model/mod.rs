//! The reference model of the directory, for the state-machine test
//! (`model_directory.rs`).
//!
//! Deliberately simple and independent of core's `decide`: plain vectors and
//! maps, entities named by their creation index, every relation computed by
//! scanning (no indexes), and every rule written again from RULES.md. It shares
//! only data types with core (`Permission`, `UserStatus`, `Policies`, ...),
//! never a guard or a validation function. Refusals are compared blocker by
//! blocker as (rule id, subject) pairs (`S`: the user, number, account,
//! invitation, work item, role or input field a blocker is about), so the
//! model states, for each command, which rules stand in the way and what
//! each of them names.
//!
//! Transitions are symbolic: a user is "the i-th user created", a number "pool
//! number k". That keeps a shrunk sequence meaningful when steps are removed,
//! and readable when printed.
#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::select;
use proptest_state_machine::ReferenceStateMachine;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use switchboard_core::{
    AdminField, InvitationStatus, Permission, Policies, ProfileEditPolicy, ProfileField, RuleId,
    UserStatus, WorkKind,
};

// ---------------------------------------------------------------------------
// Symbolic inputs
// ---------------------------------------------------------------------------

/// Who acts.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum A {
    System,
    Support,
    /// The i-th user (an index past the last names nobody).
    U(usize),
}

impl fmt::Debug for A {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            A::System => f.write_str("system"),
            A::Support => f.write_str("support"),
            A::U(i) => write!(f, "u{i}"),
        }
    }
}

/// An email from a small pool, so that collisions (R-USR-01, R-INV-06) are frequent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Em {
    /// `p{i}@acme.example`, upper-cased when the flag is set (R-USR-01 is case-insensitive).
    Pool(u8, bool),
    /// Not an email address (R-INV-01).
    Invalid,
}

impl Em {
    pub fn text(&self) -> String {
        match self {
            Em::Pool(i, false) => format!("p{i}@acme.example"),
            Em::Pool(i, true) => format!("P{i}@ACME.example"),
            Em::Invalid => "not-an-email".into(),
        }
    }
    /// The case-insensitive key.
    pub fn key(&self) -> Option<String> {
        match self {
            Em::Pool(i, _) => Some(format!("p{i}@acme.example")),
            Em::Invalid => None,
        }
    }
}

impl fmt::Debug for Em {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Em::Pool(..) => write!(f, "{:?}", self.text()),
            Em::Invalid => f.write_str("<invalid email>"),
        }
    }
}

/// A sign-in name: from a small pool (collisions, R-USR-03 is
/// case-insensitive), an email of the email pool (R-USR-03: never another
/// user's email), or blank (malformed).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sn {
    /// `agent{i}`, upper-cased when the flag is set.
    Pool(u8, bool),
    /// The email `p{i}@acme.example` of the email pool.
    Email(u8),
    /// Not a sign-in name.
    Blank,
}

impl Sn {
    pub fn text(&self) -> String {
        match self {
            Sn::Pool(i, false) => format!("agent{i}"),
            Sn::Pool(i, true) => format!("AGENT{i}"),
            Sn::Email(i) => Em::Pool(*i, false).text(),
            Sn::Blank => " ".into(),
        }
    }
    /// The case-insensitive key.
    pub fn key(&self) -> Option<String> {
        match self {
            Sn::Blank => None,
            other => Some(other.text().to_lowercase()),
        }
    }
}

impl fmt::Debug for Sn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text())
    }
}

pub const OWNER_EMAIL: &str = "owner@acme.example";

/// A phone number of the pool (`+1415200000k`), possibly written with spaces
/// (the same number, R-NUM-06), or not a number.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Num {
    N(u8, bool),
    Invalid,
}

impl Num {
    pub fn text(&self) -> String {
        match self {
            Num::N(k, false) => format!("+1415200000{k}"),
            Num::N(k, true) => format!("+1 415 200 000{k}"),
            Num::Invalid => "12345".into(),
        }
    }
    pub fn key(&self) -> Option<u8> {
        match self {
            Num::N(k, _) => Some(*k),
            Num::Invalid => None,
        }
    }
}

impl fmt::Debug for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::N(k, _) => write!(f, "n{k}"),
            Num::Invalid => f.write_str("<invalid number>"),
        }
    }
}

/// A mobile number: valid (`+1415300000k`) or not (R-USR-02).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mob {
    Valid(u8),
    Invalid,
}

impl Mob {
    pub fn text(&self) -> String {
        match self {
            Mob::Valid(k) => format!("+1415300000{k}"),
            Mob::Invalid => "555".into(),
        }
    }
}

/// A default sending country: valid or not (R-USR-02).
pub const COUNTRIES: [&str; 3] = ["US", "gb", "Q1"];
fn country_ok(c: &str) -> bool {
    c != "Q1"
}

/// A role slug.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum R {
    Owner,
    Admin,
    Leader,
    Agent,
    ReadOnly,
    /// `custom-{i}`, defined by `DefineRole`.
    Custom(u8),
    /// A slug nobody defined.
    Unknown,
}

impl R {
    pub fn slug(&self) -> String {
        match self {
            R::Owner => "owner".into(),
            R::Admin => "administrator".into(),
            R::Leader => "team-leader".into(),
            R::Agent => "agent".into(),
            R::ReadOnly => "read-only".into(),
            R::Custom(i) => format!("custom-{i}"),
            R::Unknown => "nobody-defined-this".into(),
        }
    }
}

impl fmt::Debug for R {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.slug())
    }
}

/// A grant (R-INV-02): role, account indexes, agency admin, client work indexes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct G {
    pub role: R,
    pub accounts: Vec<usize>,
    pub admin: bool,
    pub clients: Vec<usize>,
}

/// A reassignment of reports (R-TEAM-02).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Re {
    AllTo(usize),
    Each(Vec<(usize, usize)>),
}

/// A work selection (R-WORK-01).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sel {
    All,
    Kinds(Vec<WorkKind>),
    Items(Vec<usize>),
}

/// Edit of an optional field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ed<T> {
    Set(T),
    Clear,
}

/// One CSV row of a bulk run (R-BULK-01). Cells are written as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// `None`: an empty email cell.
    pub email: Option<Em>,
    /// "", "y", "n" or "maybe".
    pub deactivated: &'static str,
    pub name: bool,
    pub mobile: Option<Mob>,
    pub country: Option<&'static str>,
    pub job_title: bool,
}

/// Every command of `switchboard_core::Command`, symbolically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum C {
    CreateOrganization,
    SetPolicies {
        ttl_days: u32,
        reset_hours: u32,
        self_or_admin: bool,
        require_complete: bool,
    },
    TransferPrimaryOwnership {
        to: usize,
    },
    CreateAccount {
        parent: usize,
    },
    DefineRole {
        role: R,
        invalid_slug: bool,
        permissions: Vec<Permission>,
    },
    InviteUsers {
        emails: Vec<Em>,
        grant: G,
    },
    ProvisionUser {
        sign_in: Option<Sn>,
        email: Option<Em>,
        /// `Some(false)`: a blank name.
        name: Option<bool>,
        mobile: Option<Mob>,
        country: Option<&'static str>,
        leader: Option<usize>,
        deactivated: bool,
        grant: G,
    },
    CreateInvitationLink {
        grant: G,
    },
    Reinvite {
        invitation: usize,
    },
    RevokeInvitation {
        invitation: usize,
    },
    ExpireInvitations {
        limit: u32,
    },
    /// `invitation: None`: a token nobody issued.
    AcceptInvitation {
        invitation: Option<usize>,
        email: Option<Em>,
        name_ok: bool,
        mobile: Option<Mob>,
        country: Option<&'static str>,
    },
    SignIn {
        user: usize,
    },
    SignOutDevice {
        user: usize,
        device: usize,
    },
    UpdateProfile {
        user: usize,
        name: Option<bool>,
        email: Option<Em>,
        mobile: Option<Ed<Mob>>,
        country: Option<&'static str>,
        notifications: bool,
    },
    UpdateAdminFields {
        user: usize,
        job_title: Option<Ed<bool>>,
        picture: Option<Ed<bool>>,
        admin_access: Option<bool>,
    },
    SetExternalId {
        user: usize,
        external_id: Ed<bool>,
    },
    SetSignInName {
        user: usize,
        sign_in_name: Ed<Sn>,
    },
    RequestPasswordReset {
        user: usize,
    },
    GrantAccess {
        user: usize,
        role: R,
        accounts: Vec<usize>,
    },
    ChangeRole {
        user: usize,
        account: usize,
        role: R,
    },
    RemoveAccess {
        user: usize,
        accounts: Vec<usize>,
    },
    RemoveFromAllAccounts {
        user: usize,
    },
    AddNumber {
        number: Num,
        account: usize,
    },
    AssignNumber {
        number: Num,
        user: usize,
    },
    UnassignNumber {
        number: Num,
    },
    ForwardNumber {
        number: Num,
        to: usize,
    },
    StopForwarding {
        number: Num,
    },
    ReleaseNumber {
        number: Num,
    },
    SetReportingLine {
        user: usize,
        leader: Option<usize>,
    },
    ReassignReports {
        leader: usize,
        to: Re,
    },
    CreateWorkItem {
        kind: WorkKind,
        owner: usize,
    },
    TransferWork {
        from: usize,
        to: usize,
        selection: Sel,
    },
    ReassignClients {
        assignments: Vec<(usize, usize)>,
    },
    Deactivate {
        user: usize,
        forward_to: Option<usize>,
        reassign: Option<Re>,
    },
    Reactivate {
        user: usize,
    },
    Delete {
        user: usize,
        acknowledged: bool,
        forward_to: Option<usize>,
        reassign: Option<Re>,
    },
    Offboard {
        user: usize,
        unassign_numbers: bool,
        forward_to: Option<usize>,
        reassign: Option<Re>,
        transfer_work_to: Option<usize>,
        delete: Option<bool>,
    },
    BulkUpdate {
        rows: Vec<Row>,
        partial: bool,
    },
}

/// One step: a command by an actor, or the clock moving on.
#[derive(Clone, PartialEq, Eq)]
pub enum T {
    Cmd(A, C),
    AdvanceDays(u32),
}

impl fmt::Debug for T {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            T::Cmd(a, c) => write!(f, "{a:?}: {c:?}"),
            T::AdvanceDays(d) => write!(f, "clock +{d} days"),
        }
    }
}

// ---------------------------------------------------------------------------
// The model state
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MUser {
    pub status: UserStatus,
    /// Lower-cased email; `None` once erased.
    pub email: Option<String>,
    /// Lower-cased sign-in name (R-USR-03); `None` when unset or erased.
    pub sign_in: Option<String>,
    pub has_name: bool,
    pub has_mobile: bool,
    pub has_country: bool,
    /// Account index to role slug.
    pub memberships: BTreeMap<usize, String>,
    pub admin: bool,
    pub leader: Option<usize>,
    /// Global device indexes.
    pub devices: BTreeSet<usize>,
    pub invitation: Option<usize>,
    pub accepted: bool,
}

impl MUser {
    fn new(status: UserStatus, email: String) -> Self {
        Self {
            status,
            email: Some(email),
            sign_in: None,
            has_name: false,
            has_mobile: false,
            has_country: false,
            memberships: BTreeMap::new(),
            admin: false,
            leader: None,
            devices: BTreeSet::new(),
            invitation: None,
            accepted: false,
        }
    }
    /// The required profile fields it lacks (R-LIFE-04), with `given` filled in.
    fn missing_with(&self, given: [bool; 3]) -> BTreeSet<ProfileField> {
        [
            (self.has_name || given[0], ProfileField::Name),
            (self.has_mobile || given[1], ProfileField::Mobile),
            (self.has_country || given[2], ProfileField::DefaultCountry),
        ]
        .into_iter()
        .filter_map(|(has, f)| (!has).then_some(f))
        .collect()
    }
    fn missing(&self) -> BTreeSet<ProfileField> {
        self.missing_with([false; 3])
    }
    fn reaches(&self, account: usize) -> bool {
        self.admin || self.memberships.contains_key(&account)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MNum {
    pub account: usize,
    pub assigned: Option<usize>,
    pub forwarded: Option<usize>,
    pub ever_assigned: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MGrant {
    pub role: String,
    pub accounts: Vec<usize>,
    pub admin: bool,
    pub clients: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MInv {
    pub user: Option<usize>,
    pub link: bool,
    pub grant: MGrant,
    pub expires: DateTime<Utc>,
    pub status: InvitationStatus,
}

impl MInv {
    pub fn status_at(&self, now: DateTime<Utc>) -> InvitationStatus {
        if self.status == InvitationStatus::Pending && now >= self.expires {
            InvitationStatus::Expired
        } else {
            self.status
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MWork {
    pub kind: WorkKind,
    pub owner: usize,
    pub cancelled: bool,
}

/// What a blocker is about, in the model's names: with the rule id, the
/// normalized form of a blocker that core and the model are compared by
/// (`subject` in `model_directory.rs` maps each of core's blockers to it).
/// Lists (numbers, reports, missing fields) are sets: core lists them in a
/// fixed order, and the order says nothing the set does not.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum S {
    /// The blocker names nothing (an unknown token, an organization created
    /// already, a deletion not acknowledged), or nothing the model predicts
    /// (see `subject` in `model_directory.rs`).
    Nothing,
    /// The organization, missing.
    Org,
    /// The actor (not an active user; not the primary owner).
    Actor(A),
    /// The actor lacks a permission on this account (`None`: organization-wide).
    Denied(A, Option<usize>),
    /// The actor may not edit this admin-managed field of this user, for want
    /// of `ManageUsers` on this account (`None`: organization-wide).
    AdminField(A, usize, AdminField, Option<usize>),
    User(usize),
    Account(usize),
    /// A user and an account: no access, already a member, not a member.
    UserOn(usize, usize),
    Role(String),
    Number(u8),
    /// A number and the user it is assigned to.
    NumberOf(u8, usize),
    /// A user and the numbers assigned or forwarded to them.
    UserNumbers(usize, BTreeSet<u8>),
    /// A leader and their direct reports.
    Reports(usize, BTreeSet<usize>),
    /// A leader, the reports a reassignment leaves out and the non-reports it names.
    Reassignment(usize, BTreeSet<usize>, BTreeSet<usize>),
    /// A user and the leader they would report to (a cycle).
    Line(usize, usize),
    /// A user and the required profile fields they lack.
    Incomplete(usize, BTreeSet<ProfileField>),
    Invitation(usize),
    Work(usize),
    /// A work item and its owner.
    WorkOf(usize, usize),
    /// A device (its global index).
    Device(usize),
    /// An email, by its case-insensitive key.
    Email(String),
    /// An input field: malformed input, a limit.
    Field(String),
}

/// A refusal: its blockers as (rule id, subject) pairs. A set, not a list:
/// core may name one blocker more than once (an item listed twice in a
/// transfer, each report sent back to their leaving leader, a denial met by
/// two checks of one bulk row), and what is compared is what stands in the
/// way, not how often it is said.
pub type Refusal = BTreeSet<(RuleId, S)>;

/// What a bulk row should come to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowExpect {
    Applied,
    Unchanged,
    Rejected(Refusal),
}

/// What the last step should give.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    Accepted,
    Refused(Refusal),
    /// Bulk runs: the rows, and whether the whole run is refused (all-or-nothing with a rejected row).
    Bulk {
        refused: bool,
        rows: Vec<RowExpect>,
    },
}

#[derive(Clone, Debug)]
pub struct Model {
    pub now: DateTime<Utc>,
    pub policies: Policies,
    pub owner: usize,
    /// Parent of each account (the root has none).
    pub accounts: Vec<Option<usize>>,
    /// Slug to (built in, permissions).
    pub roles: BTreeMap<String, (bool, BTreeSet<Permission>)>,
    pub users: Vec<MUser>,
    /// Pool index to number.
    pub numbers: BTreeMap<u8, MNum>,
    pub invitations: Vec<MInv>,
    pub work: Vec<MWork>,
    /// Device index to its user.
    pub devices: Vec<usize>,
    /// The deliberately broken variant forgets R-NUM-02 (for the shrinking demo).
    pub forget_r_num_02: bool,
    pub last: Option<Expect>,
}

pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// A refusal in the making: the rules that stand in the way, each with its subject.
#[derive(Default)]
struct Bl(Refusal);

impl Bl {
    fn push(&mut self, rule: RuleId, subject: S) {
        self.0.insert((rule, subject));
    }
    fn ok(&self) -> bool {
        self.0.is_empty()
    }
}

/// How a missing `ManageUsers` is reported: by R-AUTH-01, or, for an edit
/// of admin-managed fields of a user, by R-AUTH-03 once per field it names
/// (an edit naming none is managing the user: R-AUTH-01).
#[derive(Clone, Copy)]
enum Deny<'f> {
    Auth,
    Fields(usize, &'f [AdminField]),
}

impl Model {
    /// A created organization: the owner (user 0, agency administrator and
    /// owner of the root account 0, name and email only) and the built-in roles.
    pub fn created(forget_r_num_02: bool) -> Self {
        use Permission::*;
        let mut roles = BTreeMap::new();
        let all: BTreeSet<Permission> = Permission::ALL.into_iter().collect();
        roles.insert("owner".to_owned(), (true, all.clone()));
        roles.insert("administrator".to_owned(), (true, all));
        roles.insert(
            "team-leader".to_owned(),
            (true, [ManageTeam, ViewReports].into_iter().collect()),
        );
        roles.insert("agent".to_owned(), (true, BTreeSet::new()));
        roles.insert(
            "read-only".to_owned(),
            (true, [ViewReports].into_iter().collect()),
        );
        let mut owner = MUser::new(UserStatus::Active, OWNER_EMAIL.to_owned());
        owner.has_name = true;
        owner.admin = true;
        owner.memberships.insert(0, "owner".to_owned());
        Self {
            now: start(),
            policies: Policies::default(),
            owner: 0,
            accounts: vec![None],
            roles,
            users: vec![owner],
            numbers: BTreeMap::new(),
            invitations: Vec::new(),
            work: Vec::new(),
            devices: Vec::new(),
            forget_r_num_02,
            last: None,
        }
    }

    // -- lookups ------------------------------------------------------------

    fn role_has(&self, slug: &str, p: Permission) -> bool {
        self.roles.get(slug).is_some_and(|(_, ps)| ps.contains(&p))
    }
    fn permits(&self, u: &MUser, account: usize, p: Permission) -> bool {
        u.admin
            || u.memberships
                .get(&account)
                .is_some_and(|r| self.role_has(r, p))
    }
    fn holds_manage_team(&self, u: &MUser) -> bool {
        u.admin
            || u.memberships
                .values()
                .any(|r| self.role_has(r, Permission::ManageTeam))
    }
    fn reports_of(&self, leader: usize) -> BTreeSet<usize> {
        (0..self.users.len())
            .filter(|i| self.users[*i].leader == Some(leader))
            .collect()
    }
    fn assigned_to(&self, user: usize) -> BTreeSet<u8> {
        self.numbers
            .iter()
            .filter(|(_, n)| n.assigned == Some(user))
            .map(|(k, _)| *k)
            .collect()
    }
    fn forwarded_to(&self, user: usize) -> BTreeSet<u8> {
        self.numbers
            .iter()
            .filter(|(_, n)| n.forwarded == Some(user))
            .map(|(k, _)| *k)
            .collect()
    }
    fn work_of(&self, user: usize) -> Vec<usize> {
        (0..self.work.len())
            .filter(|w| self.work[*w].owner == user)
            .collect()
    }
    /// The live user holding an email key.
    fn by_email(&self, key: &str) -> Option<usize> {
        self.users
            .iter()
            .position(|u| u.status != UserStatus::Deleted && u.email.as_deref() == Some(key))
    }
    /// R-INV-01, R-USR-01, R-USR-03: an email about to be `user`'s (`None`:
    /// a newcomer's).
    fn check_email(&self, e: &Em, user: Option<usize>, b: &mut Bl) {
        let Some(k) = e.key() else {
            return b.push(RuleId::InviteMany, S::Field("email".to_owned()));
        };
        if let Some(holder) = self.by_email(&k).filter(|h| Some(*h) != user) {
            b.push(RuleId::UniqueEmail, S::User(holder));
        }
        if let Some(holder) = self.by_sign_in(&k).filter(|h| Some(*h) != user) {
            b.push(RuleId::UniqueSignInName, S::User(holder));
        }
    }
    /// The live user holding a sign-in name key (R-USR-03).
    fn by_sign_in(&self, key: &str) -> Option<usize> {
        self.users
            .iter()
            .position(|u| u.status != UserStatus::Deleted && u.sign_in.as_deref() == Some(key))
    }
    fn active(&self, i: usize) -> bool {
        self.users
            .get(i)
            .is_some_and(|u| u.status == UserStatus::Active)
    }

    /// A user that exists, else INPUT.
    fn user(&self, i: usize, b: &mut Bl) -> Option<&MUser> {
        let u = self.users.get(i);
        if u.is_none() {
            b.push(RuleId::Input, S::User(i));
        }
        u
    }
    /// A user that exists and is not deleted, else INPUT or `rule`.
    fn live(&self, i: usize, rule: RuleId, b: &mut Bl) -> Option<&MUser> {
        let u = self.user(i, b)?;
        if u.status == UserStatus::Deleted {
            b.push(rule, S::User(i));
            return None;
        }
        Some(u)
    }
    /// An active user, else INPUT or `rule`.
    fn active_user(&self, i: usize, rule: RuleId, b: &mut Bl) -> Option<&MUser> {
        let u = self.user(i, b)?;
        if u.status != UserStatus::Active {
            b.push(rule, S::User(i));
            return None;
        }
        Some(u)
    }

    // -- R-AUTH-01 -------------------------------------------------------

    /// The acting user: `Ok(None)` for system and support, `Err` when not an active user.
    fn actor(&self, a: A) -> Result<Option<&MUser>, ()> {
        match a {
            A::U(i) => match self.users.get(i) {
                Some(u) if u.status == UserStatus::Active => Ok(Some(u)),
                _ => Err(()),
            },
            _ => Ok(None),
        }
    }
    /// R-AUTH-01 for an actor who is not an active user, whatever is asked.
    fn inactive_actor(&self, a: A, b: &mut Bl) {
        b.push(RuleId::ManageUsersRequired, S::Actor(a));
    }
    /// A missing permission on `account` (`None`: organization-wide), as `how` reports it.
    fn deny(&self, a: A, account: Option<usize>, how: Deny<'_>, b: &mut Bl) {
        match how {
            Deny::Fields(user, fields) if !fields.is_empty() => {
                for f in fields {
                    b.push(
                        RuleId::AdminManagedFields,
                        S::AdminField(a, user, *f, account),
                    );
                }
            }
            _ => b.push(RuleId::ManageUsersRequired, S::Denied(a, account)),
        }
    }
    fn need_on(&self, a: A, p: Permission, accounts: impl IntoIterator<Item = usize>, b: &mut Bl) {
        self.need_on_as(a, p, accounts, Deny::Auth, b)
    }
    /// The permission on each account: every account lacking it is refused
    /// (as `how` says); an actor who is not an active user, by R-AUTH-01.
    fn need_on_as(
        &self,
        a: A,
        p: Permission,
        accounts: impl IntoIterator<Item = usize>,
        how: Deny<'_>,
        b: &mut Bl,
    ) {
        match self.actor(a) {
            Err(()) => self.inactive_actor(a, b),
            Ok(None) => {}
            Ok(Some(u)) => {
                for acc in accounts {
                    if !self.permits(u, acc, p) {
                        self.deny(a, Some(acc), how, b);
                    }
                }
            }
        }
    }
    fn need_org_wide(&self, a: A, b: &mut Bl) {
        self.need_org_wide_as(a, Deny::Auth, b)
    }
    fn need_org_wide_as(&self, a: A, how: Deny<'_>, b: &mut Bl) {
        match self.actor(a) {
            Err(()) => self.inactive_actor(a, b),
            Ok(Some(u)) if !u.admin => self.deny(a, None, how, b),
            _ => {}
        }
    }
    /// Permission over a user: everywhere for an agency administrator, on the
    /// root for a user without accounts, else on each of their accounts.
    fn need_over(&self, a: A, p: Permission, target: &MUser, b: &mut Bl) {
        self.need_over_as(a, p, target, Deny::Auth, b)
    }
    fn need_over_as(&self, a: A, p: Permission, target: &MUser, how: Deny<'_>, b: &mut Bl) {
        if target.admin {
            self.need_org_wide_as(a, how, b)
        } else if target.memberships.is_empty() {
            self.need_on_as(a, p, [0], how, b)
        } else {
            self.need_on_as(a, p, target.memberships.keys().copied(), how, b)
        }
    }
    fn need_self_or_manager(&self, a: A, target_ix: usize, target: &MUser, b: &mut Bl) {
        if a == A::U(target_ix) {
            if self.actor(a).is_err() {
                self.inactive_actor(a, b);
            }
        } else {
            self.need_over(a, Permission::ManageUsers, target, b)
        }
    }

    fn check_grant(&self, a: A, g: &G, b: &mut Bl) {
        let slug = g.role.slug();
        if !self.roles.contains_key(&slug) {
            b.push(RuleId::Input, S::Role(slug));
        }
        if g.accounts.is_empty() && !g.admin {
            b.push(RuleId::InvitationGrant, S::Field("accounts".into()));
        }
        let distinct: BTreeSet<usize> = g.accounts.iter().copied().collect();
        if distinct.len() != g.accounts.len() {
            b.push(RuleId::InvitationGrant, S::Field("accounts".into()));
        }
        for acc in &g.accounts {
            if *acc >= self.accounts.len() {
                b.push(RuleId::Input, S::Account(*acc));
            }
        }
        // Handing a client over is a transfer of its owner's work (R-WORK-02):
        // the actor needs ManageUsers over that owner too (R-AUTH-01).
        let mut org_wide = g.admin;
        let mut owners_accounts = BTreeSet::new();
        for c in &g.clients {
            match self.work.get(*c) {
                None => b.push(RuleId::Input, S::Work(*c)),
                Some(w) if w.kind != WorkKind::Client => {
                    b.push(RuleId::ReassignClients, S::Work(*c))
                }
                Some(w) => {
                    let o = &self.users[w.owner];
                    if o.admin {
                        org_wide = true;
                    } else if o.memberships.is_empty() {
                        owners_accounts.insert(0);
                    } else {
                        owners_accounts.extend(o.memberships.keys().copied());
                    }
                }
            }
        }
        if org_wide {
            self.need_org_wide(a, b);
        }
        // An agency administrator grant asks for organization-wide power,
        // which covers every account: no account is refused on its own then.
        if !g.admin {
            let mut accounts: BTreeSet<usize> = distinct
                .into_iter()
                .filter(|x| *x < self.accounts.len())
                .collect();
            accounts.extend(owners_accounts);
            self.need_on(a, Permission::ManageUsers, accounts, b);
        }
    }

    /// R-TEAM-01: whether `user` under `leader` closes a loop, given lines planned in the same command.
    fn loops(&self, planned: &BTreeMap<usize, usize>, user: usize, leader: usize) -> bool {
        let mut seen = BTreeSet::new();
        let mut cur = Some(leader);
        while let Some(c) = cur {
            if c == user {
                return true;
            }
            if !seen.insert(c) {
                return false;
            }
            cur = planned
                .get(&c)
                .copied()
                .or_else(|| self.users.get(c).and_then(|u| u.leader));
        }
        false
    }

    /// R-TEAM-01: a leader is an active user holding ManageTeam somewhere.
    fn check_leader(&self, l: usize, b: &mut Bl) {
        if let Some(u) = self.active_user(l, RuleId::ReportingLine, b) {
            if !self.holds_manage_team(u) {
                b.push(RuleId::ReportingLine, S::User(l));
            }
        }
    }

    /// R-TEAM-02: the plan moving every report of `leader`.
    fn reassignment(&self, leader: usize, to: &Re, b: &mut Bl) -> Vec<(usize, usize)> {
        let reports = self.reports_of(leader);
        let plan: Vec<(usize, usize)> = match to {
            Re::AllTo(n) => reports.iter().map(|r| (*r, *n)).collect(),
            Re::Each(p) => p.clone(),
        };
        let named: BTreeSet<usize> = plan.iter().map(|(r, _)| *r).collect();
        if named != reports || named.len() != plan.len() {
            b.push(
                RuleId::ReassignReports,
                S::Reassignment(
                    leader,
                    reports.difference(&named).copied().collect(),
                    named.difference(&reports).copied().collect(),
                ),
            );
        }
        let planned: BTreeMap<usize, usize> = plan.iter().copied().collect();
        let mut checked = BTreeSet::new();
        for (r, n) in &plan {
            if *n == leader {
                // The leaving leader cannot take their own reports back.
                b.push(RuleId::OffboardInOneCommand, S::User(leader));
                continue;
            }
            if checked.insert(*n) {
                self.check_leader(*n, b);
            }
            if self.loops(&planned, *r, *n) {
                b.push(RuleId::ReportingLine, S::Line(*r, *n));
            }
        }
        plan
    }

    /// What losing access breaks: numbers (R-NUM-01, R-NUM-05) and reports (R-TEAM-02).
    fn loss(&self, user: usize, keeps: impl Fn(usize) -> bool, keeps_team: bool, b: &mut Bl) {
        let lost = |set: BTreeSet<u8>| -> BTreeSet<u8> {
            set.into_iter()
                .filter(|k| !keeps(self.numbers[k].account))
                .collect()
        };
        let assigned = lost(self.assigned_to(user));
        if !assigned.is_empty() {
            b.push(RuleId::NumberAssignee, S::UserNumbers(user, assigned));
        }
        let forwarded = lost(self.forwarded_to(user));
        if !forwarded.is_empty() {
            b.push(
                RuleId::ForwardTargetProtected,
                S::UserNumbers(user, forwarded),
            );
        }
        let reports = self.reports_of(user);
        if !keeps_team && !reports.is_empty() {
            b.push(RuleId::ReassignReports, S::Reports(user, reports));
        }
    }

    fn number(&self, n: Num, b: &mut Bl) -> Option<u8> {
        let Some(k) = n.key() else {
            b.push(RuleId::UniqueNumber, S::Field("number".into()));
            return None;
        };
        if !self.numbers.contains_key(&k) {
            b.push(RuleId::Input, S::Number(k));
            return None;
        }
        Some(k)
    }

    // -- the step -------------------------------------------------------------

    /// Applies one step: records what core should answer in `last` and, when
    /// accepted, changes the model.
    pub fn step(&mut self, t: &T) {
        match t {
            T::AdvanceDays(d) => {
                self.now += Duration::days(i64::from(*d));
                self.last = None;
            }
            T::Cmd(a, c) => {
                let e = self.command(*a, c);
                self.last = Some(e);
            }
        }
    }

    fn command(&mut self, a: A, c: &C) -> Expect {
        let mut b = Bl::default();
        match c {
            C::BulkUpdate { rows, partial } => return self.bulk(a, rows, *partial),
            _ => self.check(a, c, &mut b),
        }
        if b.ok() {
            self.apply(a, c);
            Expect::Accepted
        } else {
            Expect::Refused(b.0)
        }
    }

    /// The blockers of `c` (rule and subject), if any.
    fn check(&self, a: A, c: &C, b: &mut Bl) {
        use Permission::*;
        let field = |f: &str| S::Field(f.to_owned());
        match c {
            C::CreateOrganization => {
                b.push(RuleId::Input, S::Nothing);
                if matches!(a, A::U(_)) {
                    b.push(RuleId::ManageUsersRequired, S::Denied(a, None));
                }
            }
            C::SetPolicies {
                ttl_days,
                reset_hours,
                ..
            } => {
                self.need_org_wide(a, b);
                if !(1..=365).contains(ttl_days) {
                    b.push(RuleId::InvitationExpiry, field("invitation_ttl_days"));
                }
                if !(1..=720).contains(reset_hours) {
                    b.push(RuleId::PasswordReset, field("password_reset_ttl_hours"));
                }
            }
            C::TransferPrimaryOwnership { to } => {
                if let A::U(i) = a {
                    if i != self.owner {
                        b.push(RuleId::PrimaryOwnerProtected, S::Actor(a));
                    } else if self.actor(a).is_err() {
                        self.inactive_actor(a, b);
                    }
                }
                self.active_user(*to, RuleId::PrimaryOwnerProtected, b);
                if *to == self.owner {
                    b.push(RuleId::PrimaryOwnerProtected, field("to"));
                }
            }
            C::CreateAccount { parent } => {
                if *parent >= self.accounts.len() {
                    b.push(RuleId::Input, S::Account(*parent));
                } else {
                    self.need_on(a, ManageAccounts, [*parent], b);
                    let mut depth = 1;
                    let mut cur = self.accounts[*parent];
                    while let Some(p) = cur {
                        depth += 1;
                        if depth >= 32 {
                            b.push(RuleId::Limit, field("account depth"));
                            break;
                        }
                        cur = self.accounts[p];
                    }
                }
            }
            C::DefineRole {
                role,
                invalid_slug,
                permissions,
            } => {
                self.need_org_wide(a, b);
                if *invalid_slug {
                    b.push(RuleId::Input, field("role"));
                }
                let slug = role.slug();
                if !*invalid_slug {
                    if let Some((built_in, old)) = self.roles.get(&slug) {
                        if *built_in {
                            b.push(RuleId::Input, S::Role(slug));
                        } else if old.contains(&ManageTeam) && !permissions.contains(&ManageTeam) {
                            b.push(RuleId::ReportingLine, field("permissions"));
                        }
                    }
                }
            }
            C::InviteUsers { emails, grant } => {
                self.check_grant(a, grant, b);
                if emails.is_empty() {
                    b.push(RuleId::InviteMany, field("emails"));
                }
                let mut seen = BTreeSet::new();
                for e in emails {
                    match e.key() {
                        None => b.push(RuleId::InviteMany, field("email")),
                        Some(k) => {
                            if !seen.insert(k.clone()) {
                                b.push(RuleId::InviteMany, S::Email(k));
                            } else {
                                if let Some(holder) = self.by_email(&k) {
                                    // R-INV-06 points at the user who has the address.
                                    b.push(RuleId::InviteExistingEmail, S::User(holder));
                                }
                                // R-USR-03: nor may it be someone's sign-in name.
                                if let Some(holder) = self.by_sign_in(&k) {
                                    b.push(RuleId::UniqueSignInName, S::User(holder));
                                }
                            }
                        }
                    }
                }
            }
            C::ProvisionUser {
                sign_in,
                email,
                name,
                mobile,
                country,
                leader,
                grant,
                ..
            } => {
                self.check_grant(a, grant, b);
                if country.is_some_and(|c| !country_ok(c)) {
                    b.push(RuleId::MobileAndCountry, field("default_country"));
                }
                if let Some(l) = leader {
                    self.check_leader(*l, b);
                }
                if *name == Some(false) {
                    b.push(RuleId::Input, field("name"));
                }
                if *mobile == Some(Mob::Invalid) {
                    b.push(RuleId::MobileAndCountry, field("mobile"));
                }
                if sign_in.is_none() && email.is_none() {
                    b.push(RuleId::Provisioning, field("sign_in_name"));
                }
                if let Some(e) = email {
                    self.check_email(e, None, b);
                }
                match sign_in {
                    Some(Sn::Blank) => b.push(RuleId::Input, field("sign_in_name")),
                    Some(n) => {
                        let k = n.key().unwrap_or_default();
                        let holder = [self.by_sign_in(&k), self.by_email(&k)]
                            .into_iter()
                            .flatten()
                            .next();
                        if let Some(holder) = holder {
                            b.push(RuleId::UniqueSignInName, S::User(holder));
                        }
                    }
                    None => {}
                }
            }
            C::CreateInvitationLink { grant } => self.check_grant(a, grant, b),
            C::Reinvite { invitation } | C::RevokeInvitation { invitation } => {
                let Some(inv) = self.invitations.get(*invitation) else {
                    return b.push(RuleId::Input, S::Invitation(*invitation));
                };
                if inv.grant.admin {
                    self.need_org_wide(a, b);
                } else {
                    self.need_on(a, ManageUsers, inv.grant.accounts.iter().copied(), b);
                }
                let st = inv.status_at(self.now);
                if matches!(c, C::RevokeInvitation { .. }) {
                    if st != InvitationStatus::Pending {
                        b.push(RuleId::InvitationRevocation, S::Invitation(*invitation));
                    }
                    return;
                }
                if !matches!(
                    st,
                    InvitationStatus::Pending
                        | InvitationStatus::Expired
                        | InvitationStatus::Revoked
                ) {
                    b.push(RuleId::InvitationRevocation, S::Invitation(*invitation));
                }
                // Only email invitations of users still invited are re-sent.
                match inv.user.filter(|_| !inv.link) {
                    Some(u) if self.users[u].status == UserStatus::Invited => {}
                    Some(u) => b.push(RuleId::InvitationExpiry, S::User(u)),
                    None => b.push(RuleId::InvitationExpiry, field("invitation")),
                }
            }
            C::ExpireInvitations { limit } => {
                self.need_org_wide(a, b);
                if *limit > 10_000 {
                    b.push(RuleId::Limit, field("limit"));
                }
            }
            C::AcceptInvitation {
                invitation,
                email,
                name_ok,
                mobile,
                country,
            } => {
                let known = invitation.filter(|i| *i < self.invitations.len());
                let inv = match known {
                    None => {
                        b.push(RuleId::InvitationToken, S::Nothing);
                        None
                    }
                    Some(i) => match self.invitations[i].status_at(self.now) {
                        InvitationStatus::Pending => Some(&self.invitations[i]),
                        InvitationStatus::Expired => {
                            b.push(RuleId::InvitationExpiry, S::Invitation(i));
                            None
                        }
                        _ => {
                            b.push(RuleId::InvitationRevocation, S::Invitation(i));
                            None
                        }
                    },
                };
                if !name_ok {
                    b.push(RuleId::Input, field("name"));
                }
                if *mobile == Some(Mob::Invalid) {
                    b.push(RuleId::MobileAndCountry, field("mobile"));
                }
                if country.is_some_and(|c| !country_ok(c)) {
                    b.push(RuleId::MobileAndCountry, field("default_country"));
                }
                match inv {
                    Some(inv) if !inv.link => {
                        // The address, if given, must be the one invited.
                        let invited = inv.user.and_then(|u| self.users[u].email.clone());
                        if let Some(e) = email {
                            let given = match e {
                                Em::Invalid => Some("not-an-email".to_owned()),
                                e => e.key(),
                            };
                            if given != invited {
                                b.push(RuleId::InvitationToken, field("email"));
                            }
                        }
                    }
                    Some(_) => match email {
                        None => b.push(RuleId::InvitationToken, field("email")),
                        Some(e) => self.check_email(e, None, b),
                    },
                    None => {}
                }
            }
            C::SignIn { user } => {
                if let A::U(i) = a {
                    if i != *user {
                        b.push(RuleId::ProfileSelfEdit, S::User(*user));
                    }
                }
                if let Some(u) = self.user(*user, b) {
                    match u.status {
                        UserStatus::Active => {}
                        UserStatus::Invited if u.accepted => {}
                        UserStatus::Invited => b.push(RuleId::InviteeActivation, S::User(*user)),
                        _ => b.push(RuleId::DeactivationEndsAccess, S::User(*user)),
                    }
                }
            }
            C::SignOutDevice { user, device } => {
                if let Some(u) = self.user(*user, b) {
                    self.need_self_or_manager(a, *user, u, b);
                    if !u.devices.contains(device) {
                        b.push(RuleId::Input, S::Device(*device));
                    }
                }
            }
            C::UpdateProfile {
                user,
                name,
                email,
                mobile,
                country,
                notifications,
            } => {
                if name.is_none()
                    && email.is_none()
                    && mobile.is_none()
                    && country.is_none()
                    && !notifications
                {
                    return; // nothing asked, nothing to refuse
                }
                let Some(u) = self.live(*user, RuleId::PersonalDataErased, b) else {
                    return;
                };
                self.need_profile_editor(a, *user, u, b);
                if *name == Some(false) {
                    b.push(RuleId::Input, field("name"));
                }
                if let Some(e) = email {
                    self.check_email(e, Some(*user), b);
                }
                if *mobile == Some(Ed::Set(Mob::Invalid)) {
                    b.push(RuleId::MobileAndCountry, field("mobile"));
                }
                if country.is_some_and(|c| !country_ok(c)) {
                    b.push(RuleId::MobileAndCountry, field("default_country"));
                }
            }
            C::UpdateAdminFields {
                user,
                job_title,
                picture,
                admin_access,
            } => {
                let Some(u) = self.live(*user, RuleId::PersonalDataErased, b) else {
                    return;
                };
                let named: Vec<AdminField> = [
                    (job_title.is_some(), AdminField::JobTitle),
                    (picture.is_some(), AdminField::Picture),
                    (admin_access.is_some(), AdminField::AdminAccess),
                ]
                .into_iter()
                .filter_map(|(n, f)| n.then_some(f))
                .collect();
                self.need_over_as(a, ManageUsers, u, Deny::Fields(*user, &named), b);
                if *job_title == Some(Ed::Set(false)) {
                    b.push(RuleId::Input, field("job_title"));
                }
                if *picture == Some(Ed::Set(false)) {
                    b.push(RuleId::AdminManagedFields, field("picture"));
                }
                // The toggle gives organization-wide power: an agency administrator only.
                let toggle = Deny::Fields(*user, &[AdminField::AdminAccess]);
                match admin_access {
                    Some(true) if !u.admin => self.need_org_wide_as(a, toggle, b),
                    Some(false) if u.admin => {
                        self.need_org_wide_as(a, toggle, b);
                        if *user == self.owner {
                            b.push(RuleId::PrimaryOwnerProtected, S::User(*user));
                        }
                        if a == A::U(*user) {
                            b.push(RuleId::NoSelfRemoval, S::User(*user));
                        }
                        let stripped = MUser {
                            admin: false,
                            ..u.clone()
                        };
                        let keeps_team = self.holds_manage_team(&stripped);
                        self.loss(*user, |acc| u.memberships.contains_key(&acc), keeps_team, b);
                    }
                    _ => {}
                }
            }
            C::SetExternalId { user, external_id } => {
                if let Some(u) = self.live(*user, RuleId::PersonalDataErased, b) {
                    let named = [AdminField::ExternalId];
                    self.need_over_as(a, ManageUsers, u, Deny::Fields(*user, &named), b);
                }
                if *external_id == Ed::Set(false) {
                    b.push(RuleId::Input, field("external_id"));
                }
            }
            C::SetSignInName { user, sign_in_name } => {
                if let Some(u) = self.live(*user, RuleId::PersonalDataErased, b) {
                    let named = [AdminField::SignInName];
                    self.need_over_as(a, ManageUsers, u, Deny::Fields(*user, &named), b);
                }
                match sign_in_name {
                    Ed::Set(Sn::Blank) => b.push(RuleId::Input, field("sign_in_name")),
                    Ed::Set(n) => {
                        let k = n.key().unwrap_or_default();
                        let holder = [self.by_sign_in(&k), self.by_email(&k)]
                            .into_iter()
                            .flatten()
                            .find(|h| h != user);
                        if let Some(holder) = holder {
                            b.push(RuleId::UniqueSignInName, S::User(holder));
                        }
                    }
                    Ed::Clear => {}
                }
            }
            C::RequestPasswordReset { user } => {
                if let Some(u) = self.active_user(*user, RuleId::PasswordReset, b) {
                    self.need_self_or_manager(a, *user, u, b);
                }
            }
            C::GrantAccess {
                user,
                role,
                accounts,
            } => {
                if accounts.is_empty() {
                    b.push(RuleId::GrantAccounts, field("accounts"));
                }
                if !self.roles.contains_key(&role.slug()) {
                    b.push(RuleId::Input, S::Role(role.slug()));
                }
                let t = self.live(*user, RuleId::GrantAccounts, b);
                let mut seen = BTreeSet::new();
                for acc in accounts {
                    if *acc >= self.accounts.len() {
                        b.push(RuleId::Input, S::Account(*acc));
                        continue;
                    }
                    if !seen.insert(*acc) {
                        b.push(RuleId::GrantAccounts, field("accounts"));
                    }
                    if t.is_some_and(|t| t.memberships.contains_key(acc)) {
                        b.push(RuleId::GrantAccounts, S::UserOn(*user, *acc));
                    }
                }
                if t.is_some_and(|t| t.admin) {
                    b.push(RuleId::AgencyAdministratorAllOrNothing, S::User(*user));
                }
                self.need_on(a, ManageUsers, seen, b);
            }
            C::ChangeRole {
                user,
                account,
                role,
            } => {
                if !self.roles.contains_key(&role.slug()) {
                    b.push(RuleId::Input, S::Role(role.slug()));
                }
                let t = self.live(*user, RuleId::ChangeRole, b);
                let known = *account < self.accounts.len();
                if !known {
                    b.push(RuleId::Input, S::Account(*account));
                }
                if let (Some(t), true) = (t, known) {
                    if !t.memberships.contains_key(account) {
                        b.push(RuleId::RemoveFromAccount, S::UserOn(*user, *account));
                    }
                    if *user == self.owner {
                        b.push(RuleId::PrimaryOwnerProtected, S::User(*user));
                    }
                    self.need_on(a, ManageUsers, [*account], b);
                    let mut after = t.clone();
                    after.memberships.insert(*account, role.slug());
                    let keeps_team = self.holds_manage_team(&after);
                    self.loss(*user, |_| true, keeps_team, b);
                }
            }
            C::RemoveAccess { user, accounts } => {
                if accounts.is_empty() {
                    b.push(RuleId::RemoveFromSeveralAccounts, field("accounts"));
                }
                let Some(t) = self.live(*user, RuleId::RemoveFromAccount, b) else {
                    return;
                };
                if t.admin {
                    b.push(RuleId::AgencyAdministratorAllOrNothing, S::User(*user));
                }
                if *user == self.owner {
                    b.push(RuleId::PrimaryOwnerProtected, S::User(*user));
                }
                if a == A::U(*user) {
                    b.push(RuleId::NoSelfRemoval, S::User(*user));
                }
                let removed: BTreeSet<usize> = accounts.iter().copied().collect();
                if removed.len() != accounts.len() {
                    b.push(RuleId::RemoveFromSeveralAccounts, field("accounts"));
                }
                for acc in &removed {
                    if *acc >= self.accounts.len() {
                        b.push(RuleId::Input, S::Account(*acc));
                    } else if !t.memberships.contains_key(acc) {
                        b.push(RuleId::RemoveFromAccount, S::UserOn(*user, *acc));
                    }
                }
                self.need_on(
                    a,
                    ManageUsers,
                    removed.iter().copied().filter(|x| *x < self.accounts.len()),
                    b,
                );
                let mut after = t.clone();
                after.memberships.retain(|acc, _| !removed.contains(acc));
                let keeps_team = self.holds_manage_team(&after);
                self.loss(*user, |acc| after.reaches(acc), keeps_team, b);
            }
            C::RemoveFromAllAccounts { user } => {
                let Some(t) = self.live(*user, RuleId::AgencyAdministratorAllOrNothing, b) else {
                    return;
                };
                if *user == self.owner {
                    b.push(RuleId::PrimaryOwnerProtected, S::User(*user));
                }
                if a == A::U(*user) {
                    b.push(RuleId::NoSelfRemoval, S::User(*user));
                }
                self.need_over(a, ManageUsers, t, b);
                self.loss(*user, |_| false, false, b);
                if t.memberships.is_empty() && !t.admin {
                    b.push(RuleId::AgencyAdministratorAllOrNothing, field("user"));
                }
            }
            C::AddNumber { number, account } => {
                if number.key().is_none() {
                    b.push(RuleId::UniqueNumber, field("number"));
                }
                if *account >= self.accounts.len() {
                    b.push(RuleId::Input, S::Account(*account));
                } else {
                    self.need_on(a, ManageNumbers, [*account], b);
                }
                if let Some(k) = number.key().filter(|k| self.numbers.contains_key(k)) {
                    b.push(RuleId::UniqueNumber, S::Number(k));
                }
            }
            C::AssignNumber { number, user } => {
                let Some(k) = self.number(*number, b) else {
                    return;
                };
                let n = &self.numbers[&k];
                self.need_on(a, ManageNumbers, [n.account], b);
                if let Some(holder) = n.assigned {
                    b.push(RuleId::NumberAssignee, S::NumberOf(k, holder));
                }
                if let Some(u) = self.active_user(*user, RuleId::NumberAssignee, b) {
                    if !u.reaches(n.account) {
                        b.push(RuleId::NumberAssignee, S::UserOn(*user, n.account));
                    }
                }
            }
            C::UnassignNumber { number } => {
                let Some(k) = self.number(*number, b) else {
                    return;
                };
                let n = &self.numbers[&k];
                self.need_on(a, ManageNumbers, [n.account], b);
                if n.assigned.is_none() {
                    b.push(RuleId::OrphanedNumber, S::Number(k));
                }
            }
            C::ForwardNumber { number, to } => {
                let Some(k) = self.number(*number, b) else {
                    return;
                };
                let n = &self.numbers[&k];
                self.need_on(a, ManageNumbers, [n.account], b);
                if let Some(u) = self.active_user(*to, RuleId::ForwardToActiveUser, b) {
                    if !u.reaches(n.account) {
                        b.push(RuleId::ForwardToActiveUser, S::UserOn(*to, n.account));
                    }
                }
            }
            C::StopForwarding { number } => {
                let Some(k) = self.number(*number, b) else {
                    return;
                };
                let n = &self.numbers[&k];
                self.need_on(a, ManageNumbers, [n.account], b);
                if n.forwarded.is_none() {
                    b.push(RuleId::ForwardToActiveUser, field("number"));
                }
            }
            C::ReleaseNumber { number } => {
                let Some(k) = self.number(*number, b) else {
                    return;
                };
                let n = &self.numbers[&k];
                self.need_on(a, ManageNumbers, [n.account], b);
                if let Some(holder) = n.assigned {
                    b.push(RuleId::NumberAssignee, S::NumberOf(k, holder));
                }
            }
            C::SetReportingLine { user, leader } => {
                let Some(u) = self.live(*user, RuleId::ReportingLine, b) else {
                    return;
                };
                self.need_over(a, ManageUsers, u, b);
                if let Some(l) = leader {
                    self.check_leader(*l, b);
                    if self.loops(&BTreeMap::new(), *user, *l) {
                        b.push(RuleId::ReportingLine, S::Line(*user, *l));
                    }
                }
            }
            C::ReassignReports { leader, to } => {
                let Some(l) = self.user(*leader, b) else {
                    return;
                };
                self.need_over(a, ManageUsers, l, b);
                if self.reports_of(*leader).is_empty() {
                    b.push(RuleId::ReassignReports, field("leader"));
                }
                self.reassignment(*leader, to, b);
            }
            C::CreateWorkItem { owner, .. } => {
                if let Some(o) = self.active_user(*owner, RuleId::TransferWork, b) {
                    if a != A::U(*owner) {
                        self.need_over(a, ManageUsers, o, b);
                    }
                }
            }
            C::TransferWork {
                from,
                to,
                selection,
            } => {
                let f = self.user(*from, b);
                self.active_user(*to, RuleId::TransferWork, b);
                let Some(f) = f else { return };
                self.need_over(a, ManageUsers, f, b);
                if let Sel::Items(items) = selection {
                    let mut seen = BTreeSet::new();
                    for i in items {
                        match self.work.get(*i) {
                            None => b.push(RuleId::Input, S::Work(*i)),
                            Some(w) if w.owner != *from => {
                                b.push(RuleId::TransferWork, S::WorkOf(*i, w.owner))
                            }
                            Some(_) => {}
                        }
                        if !seen.insert(*i) {
                            b.push(RuleId::TransferWork, field("items"));
                        }
                    }
                }
                if from == to {
                    b.push(RuleId::OffboardInOneCommand, S::User(*from));
                }
            }
            C::ReassignClients { assignments } => {
                if assignments.is_empty() {
                    return b.push(RuleId::ReassignClients, field("assignments"));
                }
                let mut seen = BTreeSet::new();
                for (item, to) in assignments {
                    if !seen.insert(*item) {
                        b.push(RuleId::ReassignClients, field("assignments"));
                        continue;
                    }
                    self.active_user(*to, RuleId::ReassignClients, b);
                    let Some(w) = self.work.get(*item) else {
                        b.push(RuleId::Input, S::Work(*item));
                        continue;
                    };
                    if w.kind != WorkKind::Client {
                        b.push(RuleId::ReassignClients, S::Work(*item));
                        continue;
                    }
                    self.need_over(a, ManageUsers, &self.users[w.owner], b);
                }
            }
            C::Deactivate {
                user,
                forward_to,
                reassign,
            } => self.offboard_check(
                a,
                *user,
                false,
                *forward_to,
                reassign.as_ref(),
                None,
                None,
                b,
            ),
            C::Reactivate { user } => self.reactivate_check(a, *user, None, b),
            C::Delete {
                user,
                acknowledged,
                forward_to,
                reassign,
            } => self.offboard_check(
                a,
                *user,
                false,
                *forward_to,
                reassign.as_ref(),
                None,
                Some(*acknowledged),
                b,
            ),
            C::Offboard {
                user,
                unassign_numbers,
                forward_to,
                reassign,
                transfer_work_to,
                delete,
            } => self.offboard_check(
                a,
                *user,
                *unassign_numbers,
                *forward_to,
                reassign.as_ref(),
                *transfer_work_to,
                *delete,
                b,
            ),
            C::BulkUpdate { .. } => {}
        }
    }

    fn need_profile_editor(&self, a: A, user: usize, u: &MUser, b: &mut Bl) {
        match a {
            A::U(i) if i == user && self.actor(a).is_err() => self.inactive_actor(a, b),
            A::U(i) if i == user => {}
            A::U(_) => match self.policies.profile_edit {
                ProfileEditPolicy::SelfOnly => b.push(RuleId::ProfileSelfEdit, S::User(user)),
                ProfileEditPolicy::SelfOrAdmin => self.need_over(a, Permission::ManageUsers, u, b),
            },
            _ => {}
        }
    }

    /// R-OFF-01 and the single-step lifecycle commands (R-LIFE-01/03/04/05/09,
    /// R-NUM-01/02/04/05, R-TEAM-02, R-WORK-01).
    #[allow(clippy::too_many_arguments)]
    fn offboard_check(
        &self,
        a: A,
        user: usize,
        unassign: bool,
        forward_to: Option<usize>,
        reassign: Option<&Re>,
        transfer_to: Option<usize>,
        delete: Option<bool>,
        b: &mut Bl,
    ) {
        self.offboard_check_with(
            a,
            user,
            unassign,
            forward_to,
            reassign,
            transfer_to,
            delete,
            None,
            b,
        )
    }

    /// `missing_after` is what the profile lacks as the command leaves it
    /// (bulk rows fill fields); `None`: as it is.
    #[allow(clippy::too_many_arguments)]
    fn offboard_check_with(
        &self,
        a: A,
        user: usize,
        unassign: bool,
        forward_to: Option<usize>,
        reassign: Option<&Re>,
        transfer_to: Option<usize>,
        delete: Option<bool>,
        missing_after: Option<BTreeSet<ProfileField>>,
        b: &mut Bl,
    ) {
        let deleting = delete.is_some();
        let Some(u) = self.live(
            user,
            if deleting {
                RuleId::DeletionAcknowledged
            } else {
                RuleId::DeactivationEndsAccess
            },
            b,
        ) else {
            return;
        };
        if !deleting && u.status != UserStatus::Active {
            b.push(RuleId::DeactivationEndsAccess, S::User(user));
        }
        self.need_over(a, Permission::ManageUsers, u, b);
        if a == A::U(user) {
            b.push(RuleId::NoSelfRemoval, S::User(user));
        }
        if user == self.owner {
            b.push(RuleId::PrimaryOwnerProtected, S::User(user));
        }
        let assigned = self.assigned_to(user);
        if !assigned.is_empty() && !unassign {
            if deleting {
                if !self.forget_r_num_02 {
                    b.push(
                        RuleId::NumbersBlockDeletion,
                        S::UserNumbers(user, assigned.clone()),
                    );
                }
            } else {
                // A deactivated user cannot keep numbers (R-NUM-01).
                b.push(
                    RuleId::NumberAssignee,
                    S::UserNumbers(user, assigned.clone()),
                );
            }
        }
        let forwarded = self.forwarded_to(user);
        match forward_to {
            None => {
                if !forwarded.is_empty() {
                    b.push(
                        RuleId::ForwardTargetProtected,
                        S::UserNumbers(user, forwarded),
                    );
                }
            }
            Some(t) if t == user => b.push(RuleId::OffboardInOneCommand, S::User(user)),
            Some(t) => {
                if let Some(tu) = self.active_user(t, RuleId::ForwardToActiveUser, b) {
                    let mut moving = forwarded.clone();
                    if unassign {
                        moving.extend(assigned.iter().copied());
                    }
                    // One blocker per account the target does not reach.
                    for k in moving {
                        let acc = self.numbers[&k].account;
                        if !tu.reaches(acc) {
                            b.push(RuleId::ForwardToActiveUser, S::UserOn(t, acc));
                        }
                    }
                }
            }
        }
        match reassign {
            None => {
                let reports = self.reports_of(user);
                if !reports.is_empty() {
                    b.push(RuleId::ReassignReports, S::Reports(user, reports));
                }
            }
            Some(re) => {
                self.reassignment(user, re, b);
            }
        }
        if let Some(t) = transfer_to {
            self.active_user(t, RuleId::TransferWork, b);
            if t == user {
                b.push(RuleId::OffboardInOneCommand, S::User(user));
            }
        }
        match delete {
            None => {
                let missing = missing_after.unwrap_or_else(|| u.missing());
                if self.policies.require_complete_profile && !missing.is_empty() {
                    b.push(
                        RuleId::CompleteProfileRequired,
                        S::Incomplete(user, missing),
                    );
                }
            }
            Some(ack) => {
                if !ack {
                    b.push(RuleId::DeletionAcknowledged, S::Nothing);
                }
            }
        }
    }

    fn reactivate_check(
        &self,
        a: A,
        user: usize,
        missing_after: Option<BTreeSet<ProfileField>>,
        b: &mut Bl,
    ) {
        let Some(u) = self.user(user, b) else { return };
        if u.status != UserStatus::Deactivated {
            b.push(RuleId::Reactivation, S::User(user));
        }
        self.need_over(a, Permission::ManageUsers, u, b);
        if a == A::U(user) {
            b.push(RuleId::NoSelfRemoval, S::User(user));
        }
        // An erased (deleted) user has no profile to be incomplete: R-LIFE-02 says it all.
        let erased = u.status == UserStatus::Deleted;
        let missing = missing_after.unwrap_or_else(|| u.missing());
        if self.policies.require_complete_profile && !erased && !missing.is_empty() {
            b.push(
                RuleId::CompleteProfileRequired,
                S::Incomplete(user, missing),
            );
        }
    }

    // -- effects ------------------------------------------------------------

    fn apply_grant(&mut self, user: usize, g: &MGrant) {
        for acc in &g.accounts {
            self.users[user].memberships.insert(*acc, g.role.clone());
        }
        if g.admin {
            self.users[user].admin = true;
        }
        for c in &g.clients {
            self.work[*c].owner = user;
        }
    }

    fn grant(&self, g: &G) -> MGrant {
        MGrant {
            role: g.role.slug(),
            accounts: g.accounts.clone(),
            admin: g.admin,
            clients: g.clients.clone(),
        }
    }

    fn set_inv(&mut self, i: usize, st: InvitationStatus) {
        self.invitations[i].status = st;
    }

    fn apply(&mut self, a: A, c: &C) {
        let now = self.now;
        let ttl = Duration::days(i64::from(self.policies.invitation_ttl_days));
        match c {
            C::CreateOrganization | C::BulkUpdate { .. } => {}
            C::SetPolicies {
                ttl_days,
                reset_hours,
                self_or_admin,
                require_complete,
            } => {
                self.policies = Policies {
                    invitation_ttl_days: *ttl_days,
                    password_reset_ttl_hours: *reset_hours,
                    profile_edit: if *self_or_admin {
                        ProfileEditPolicy::SelfOrAdmin
                    } else {
                        ProfileEditPolicy::SelfOnly
                    },
                    require_complete_profile: *require_complete,
                }
            }
            C::TransferPrimaryOwnership { to } => {
                self.owner = *to;
                self.users[*to].admin = true;
            }
            C::CreateAccount { parent } => self.accounts.push(Some(*parent)),
            C::DefineRole {
                role, permissions, ..
            } => {
                self.roles
                    .insert(role.slug(), (false, permissions.iter().copied().collect()));
            }
            C::InviteUsers { emails, grant } => {
                for e in emails {
                    let mut u = MUser::new(UserStatus::Invited, e.key().unwrap_or_default());
                    u.invitation = Some(self.invitations.len());
                    self.invitations.push(MInv {
                        user: Some(self.users.len()),
                        link: false,
                        grant: self.grant(grant),
                        expires: now + ttl,
                        status: InvitationStatus::Pending,
                    });
                    self.users.push(u);
                }
            }
            C::ProvisionUser {
                sign_in,
                email,
                name,
                mobile,
                country,
                leader,
                deactivated,
                grant,
            } => {
                let status = if *deactivated {
                    UserStatus::Deactivated
                } else {
                    UserStatus::Active
                };
                let mut u = MUser::new(status, String::new());
                u.has_name = name.is_some();
                u.has_mobile = mobile.is_some();
                u.has_country = country.is_some();
                u.leader = *leader;
                u.email = email.and_then(|e| e.key());
                u.sign_in = sign_in.and_then(|n| n.key());
                let user = self.users.len();
                self.users.push(u);
                let g = self.grant(grant);
                self.apply_grant(user, &g);
            }
            C::CreateInvitationLink { grant } => self.invitations.push(MInv {
                user: None,
                link: true,
                grant: self.grant(grant),
                expires: now + ttl,
                status: InvitationStatus::Pending,
            }),
            C::Reinvite { invitation } => {
                let old = self.invitations[*invitation].clone();
                self.set_inv(*invitation, InvitationStatus::Superseded);
                let user = old.user.unwrap_or_default();
                self.users[user].invitation = Some(self.invitations.len());
                self.invitations.push(MInv {
                    expires: now + ttl,
                    status: InvitationStatus::Pending,
                    ..old
                });
            }
            C::RevokeInvitation { invitation } => {
                self.set_inv(*invitation, InvitationStatus::Revoked)
            }
            C::ExpireInvitations { limit } => {
                let mut lapsed: Vec<(DateTime<Utc>, usize)> = (0..self.invitations.len())
                    .filter(|i| {
                        self.invitations[*i].status == InvitationStatus::Pending
                            && self.invitations[*i].expires <= now
                    })
                    .map(|i| (self.invitations[i].expires, i))
                    .collect();
                lapsed.sort();
                for (_, i) in lapsed.into_iter().take(*limit as usize) {
                    self.set_inv(i, InvitationStatus::Expired);
                }
            }
            C::AcceptInvitation {
                invitation,
                email,
                mobile,
                country,
                ..
            } => {
                let i = invitation.unwrap_or_default();
                let inv = self.invitations[i].clone();
                let user = if inv.link {
                    self.users.push(MUser::new(
                        UserStatus::Invited,
                        email.and_then(|e| e.key()).unwrap_or_default(),
                    ));
                    self.users.len() - 1
                } else {
                    inv.user.unwrap_or_default()
                };
                let u = &mut self.users[user];
                u.has_name = true;
                u.has_mobile |= mobile.is_some();
                u.has_country |= country.is_some();
                u.invitation = Some(i);
                u.accepted = true;
                self.invitations[i].status = InvitationStatus::Accepted;
                self.invitations[i].user = Some(user);
                self.apply_grant(user, &inv.grant);
            }
            C::SignIn { user } => {
                let u = &mut self.users[*user];
                u.status = UserStatus::Active;
                u.devices.insert(self.devices.len());
                self.devices.push(*user);
            }
            C::SignOutDevice { user, device } => {
                self.users[*user].devices.remove(device);
            }
            C::UpdateProfile {
                user,
                name,
                email,
                mobile,
                country,
                ..
            } => {
                if name.is_none() && email.is_none() && mobile.is_none() && country.is_none() {
                    // Notifications only (or nothing): the profile fields stay.
                    return;
                }
                let u = &mut self.users[*user];
                if name.is_some() {
                    u.has_name = true;
                }
                if let Some(e) = email.and_then(|e| e.key()) {
                    u.email = Some(e);
                }
                match mobile {
                    Some(Ed::Set(_)) => u.has_mobile = true,
                    Some(Ed::Clear) => u.has_mobile = false,
                    None => {}
                }
                if country.is_some() {
                    u.has_country = true;
                }
            }
            C::UpdateAdminFields {
                user, admin_access, ..
            } => {
                if let Some(x) = admin_access {
                    self.users[*user].admin = *x;
                }
            }
            C::RequestPasswordReset { .. } | C::SetExternalId { .. } => {}
            C::SetSignInName { user, sign_in_name } => {
                self.users[*user].sign_in = match sign_in_name {
                    Ed::Set(n) => n.key(),
                    Ed::Clear => None,
                };
            }
            C::GrantAccess {
                user,
                role,
                accounts,
            } => {
                for acc in accounts {
                    self.users[*user].memberships.insert(*acc, role.slug());
                }
            }
            C::ChangeRole {
                user,
                account,
                role,
            } => {
                self.users[*user].memberships.insert(*account, role.slug());
            }
            C::RemoveAccess { user, accounts } => {
                for acc in accounts {
                    self.users[*user].memberships.remove(acc);
                }
            }
            C::RemoveFromAllAccounts { user } => {
                self.users[*user].memberships.clear();
                self.users[*user].admin = false;
            }
            C::AddNumber { number, account } => {
                self.numbers.insert(
                    number.key().unwrap_or_default(),
                    MNum {
                        account: *account,
                        assigned: None,
                        forwarded: None,
                        ever_assigned: false,
                    },
                );
            }
            C::AssignNumber { number, user } => {
                let n = self
                    .numbers
                    .get_mut(&number.key().unwrap_or_default())
                    .expect("checked");
                n.forwarded = None;
                n.assigned = Some(*user);
                n.ever_assigned = true;
            }
            C::UnassignNumber { number } => {
                self.numbers
                    .get_mut(&number.key().unwrap_or_default())
                    .expect("checked")
                    .assigned = None;
            }
            C::ForwardNumber { number, to } => {
                self.numbers
                    .get_mut(&number.key().unwrap_or_default())
                    .expect("checked")
                    .forwarded = Some(*to);
            }
            C::StopForwarding { number } => {
                self.numbers
                    .get_mut(&number.key().unwrap_or_default())
                    .expect("checked")
                    .forwarded = None;
            }
            C::ReleaseNumber { number } => {
                self.numbers.remove(&number.key().unwrap_or_default());
            }
            C::SetReportingLine { user, leader } => self.users[*user].leader = *leader,
            C::ReassignReports { leader, to } => self.move_reports(*leader, to),
            C::CreateWorkItem { kind, owner } => self.work.push(MWork {
                kind: *kind,
                owner: *owner,
                cancelled: false,
            }),
            C::TransferWork {
                from,
                to,
                selection,
            } => {
                let items: Vec<usize> = match selection {
                    Sel::All => self.work_of(*from),
                    Sel::Kinds(k) => self
                        .work_of(*from)
                        .into_iter()
                        .filter(|w| k.contains(&self.work[*w].kind))
                        .collect(),
                    Sel::Items(i) => i.clone(),
                };
                for w in items {
                    self.work[w].owner = *to;
                }
            }
            C::ReassignClients { assignments } => {
                for (w, to) in assignments {
                    self.work[*w].owner = *to;
                }
            }
            C::Deactivate {
                user,
                forward_to,
                reassign,
            } => self.offboard(*user, false, *forward_to, reassign.as_ref(), None, false),
            C::Reactivate { user } => self.users[*user].status = UserStatus::Active,
            C::Delete {
                user,
                forward_to,
                reassign,
                ..
            } => self.offboard(*user, false, *forward_to, reassign.as_ref(), None, true),
            C::Offboard {
                user,
                unassign_numbers,
                forward_to,
                reassign,
                transfer_work_to,
                delete,
            } => self.offboard(
                *user,
                *unassign_numbers,
                *forward_to,
                reassign.as_ref(),
                *transfer_work_to,
                delete.is_some(),
            ),
        }
        let _ = a;
    }

    fn move_reports(&mut self, leader: usize, to: &Re) {
        let plan: Vec<(usize, usize)> = match to {
            Re::AllTo(n) => self
                .reports_of(leader)
                .into_iter()
                .map(|r| (r, *n))
                .collect(),
            Re::Each(p) => p.clone(),
        };
        for (r, n) in plan {
            self.users[r].leader = Some(n);
        }
    }

    fn offboard(
        &mut self,
        user: usize,
        unassign: bool,
        forward_to: Option<usize>,
        reassign: Option<&Re>,
        transfer_to: Option<usize>,
        delete: bool,
    ) {
        let assigned = self.assigned_to(user);
        if unassign {
            for k in &assigned {
                self.numbers.get_mut(k).expect("listed").assigned = None;
            }
        }
        if let Some(t) = forward_to {
            let mut moving = self.forwarded_to(user);
            if unassign {
                moving.extend(assigned);
            }
            for k in moving {
                self.numbers.get_mut(&k).expect("listed").forwarded = Some(t);
            }
        }
        if let Some(re) = reassign {
            self.move_reports(user, re);
        }
        if let Some(t) = transfer_to {
            for w in self.work_of(user) {
                // Deleting cancels meetings rather than moving them (R-LIFE-05).
                if !(delete && self.work[w].kind == WorkKind::Meeting) {
                    self.work[w].owner = t;
                }
            }
        }
        if delete {
            if let Some(i) = self.users[user].invitation {
                if self.invitations[i].status == InvitationStatus::Pending {
                    self.invitations[i].status = InvitationStatus::Revoked;
                }
            }
            for w in self.work_of(user) {
                if self.work[w].kind == WorkKind::Meeting {
                    self.work[w].cancelled = true;
                }
            }
            let u = &mut self.users[user];
            u.status = UserStatus::Deleted;
            u.email = None;
            u.sign_in = None;
            u.has_name = false;
            u.has_mobile = false;
            u.has_country = false;
            u.memberships.clear();
            u.admin = false;
            u.leader = None;
            u.devices.clear();
        } else {
            let u = &mut self.users[user];
            u.status = UserStatus::Deactivated;
            u.devices.clear();
        }
    }

    // -- bulk (R-BULK-01..03) -------------------------------------------------

    fn bulk(&mut self, a: A, rows: &[Row], partial: bool) -> Expect {
        if self.actor(a).is_err() {
            return Expect::Refused([(RuleId::ManageUsersRequired, S::Actor(a))].into());
        }
        if rows.is_empty() {
            return Expect::Refused([(RuleId::BulkSpreadsheet, S::Field("csv".into()))].into());
        }
        let mut seen = BTreeSet::new();
        let mut outcomes = Vec::new();
        let mut plans: Vec<(usize, &Row, Option<bool>)> = Vec::new();
        for row in rows {
            let mut b = Bl::default();
            let key = row.email.and_then(|e| match e {
                Em::Invalid => None,
                e => e.key(),
            });
            let Some(user) = key.as_deref().and_then(|k| self.by_email(k)) else {
                let no_user = (RuleId::BulkSpreadsheet, S::Field("email".into()));
                outcomes.push(RowExpect::Rejected([no_user].into()));
                continue;
            };
            if !seen.insert(user) {
                b.push(
                    RuleId::InviteMany,
                    S::Email(key.clone().unwrap_or_default()),
                );
            }
            let deactivate = match row.deactivated {
                "" => None,
                "y" => Some(true),
                "n" => Some(false),
                _ => {
                    b.push(RuleId::BulkSpreadsheet, S::Field("deactivated".into()));
                    None
                }
            };
            let u = &self.users[user];
            let profile_change = row.name || row.mobile.is_some() || row.country.is_some();
            if profile_change {
                self.need_profile_editor(a, user, u, &mut b);
                if row.mobile == Some(Mob::Invalid) {
                    b.push(RuleId::MobileAndCountry, S::Field("mobile".into()));
                }
                if row.country.is_some_and(|c| !country_ok(c)) {
                    b.push(RuleId::MobileAndCountry, S::Field("default_country".into()));
                }
            }
            // The admin-managed part is checked on every row, even an empty one:
            // R-AUTH-03 when the row sets a title, else R-AUTH-01 (managing the user).
            let title: &[AdminField] = if row.job_title {
                &[AdminField::JobTitle]
            } else {
                &[]
            };
            self.need_over_as(
                a,
                Permission::ManageUsers,
                u,
                Deny::Fields(user, title),
                &mut b,
            );
            // The profile as the row leaves it, values as written (R-LIFE-04).
            let missing_after =
                u.missing_with([row.name, row.mobile.is_some(), row.country.is_some()]);
            let mut changes = profile_change || row.job_title;
            match (deactivate, u.status) {
                (Some(true), UserStatus::Active) => {
                    if self.holds_manage_team(u) {
                        b.push(RuleId::BulkSkipsTeamManagers, S::User(user));
                    } else {
                        self.offboard_check_with(
                            a,
                            user,
                            false,
                            None,
                            None,
                            None,
                            None,
                            Some(missing_after),
                            &mut b,
                        );
                        changes = true;
                    }
                }
                (Some(true), UserStatus::Deactivated) => {}
                (Some(false), UserStatus::Deactivated) => {
                    self.reactivate_check(a, user, Some(missing_after), &mut b);
                    changes = true;
                }
                (Some(true), _) => b.push(RuleId::DeactivationEndsAccess, S::User(user)),
                _ => {}
            }
            if !b.ok() {
                outcomes.push(RowExpect::Rejected(b.0));
            } else if changes {
                outcomes.push(RowExpect::Applied);
                plans.push((user, row, deactivate));
            } else {
                outcomes.push(RowExpect::Unchanged);
            }
        }
        let rejected = outcomes.iter().any(|o| matches!(o, RowExpect::Rejected(_)));
        let refused = rejected && !partial;
        if !refused {
            let plans: Vec<(usize, Row, Option<bool>)> = plans
                .into_iter()
                .map(|(u, r, d)| (u, r.clone(), d))
                .collect();
            for (user, row, deactivate) in plans {
                let status = self.users[user].status;
                let u = &mut self.users[user];
                u.has_name |= row.name;
                u.has_mobile |= row.mobile.is_some();
                u.has_country |= row.country.is_some();
                match (deactivate, status) {
                    (Some(true), UserStatus::Active) => {
                        self.offboard(user, false, None, None, None, false)
                    }
                    (Some(false), UserStatus::Deactivated) => {
                        self.users[user].status = UserStatus::Active
                    }
                    _ => {}
                }
            }
        }
        Expect::Bulk {
            refused,
            rows: outcomes,
        }
    }
}

// ---------------------------------------------------------------------------
// The fixed opening: a small but rich organization, built by commands
// ---------------------------------------------------------------------------

/// Every run starts with these steps (all accepted): a sub-account (1); an
/// administrator (user 1, root), a team leader (user 2, root and sub-account)
/// and an agent (user 3, sub-account) invited, accepted with complete profiles
/// and signed in; numbers n0 (root) and n1 (sub-account), n1 assigned to the
/// agent; the agent reports to the leader. The owner (user 0) lacks a mobile
/// and a country (R-LIFE-04 material).
pub fn opening() -> Vec<T> {
    let owner = A::U(0);
    let g = |role: R, accounts: Vec<usize>| G {
        role,
        accounts,
        admin: false,
        clients: vec![],
    };
    let accept = |i: usize, m: u8| C::AcceptInvitation {
        invitation: Some(i),
        email: None,
        name_ok: true,
        mobile: Some(Mob::Valid(m)),
        country: Some("US"),
    };
    vec![
        T::Cmd(owner, C::CreateAccount { parent: 0 }),
        T::Cmd(
            owner,
            C::InviteUsers {
                emails: vec![Em::Pool(0, false)],
                grant: g(R::Admin, vec![0]),
            },
        ),
        T::Cmd(
            owner,
            C::InviteUsers {
                emails: vec![Em::Pool(1, false)],
                grant: g(R::Leader, vec![0, 1]),
            },
        ),
        T::Cmd(
            owner,
            C::InviteUsers {
                emails: vec![Em::Pool(2, false)],
                grant: g(R::Agent, vec![1]),
            },
        ),
        T::Cmd(A::System, accept(0, 1)),
        T::Cmd(A::System, accept(1, 2)),
        T::Cmd(A::System, accept(2, 3)),
        T::Cmd(A::U(1), C::SignIn { user: 1 }),
        T::Cmd(A::U(2), C::SignIn { user: 2 }),
        T::Cmd(A::U(3), C::SignIn { user: 3 }),
        T::Cmd(
            owner,
            C::AddNumber {
                number: Num::N(0, false),
                account: 0,
            },
        ),
        T::Cmd(
            owner,
            C::AddNumber {
                number: Num::N(1, false),
                account: 1,
            },
        ),
        T::Cmd(
            owner,
            C::AssignNumber {
                number: Num::N(1, false),
                user: 3,
            },
        ),
        T::Cmd(
            owner,
            C::SetReportingLine {
                user: 3,
                leader: Some(2),
            },
        ),
        // A client from the start, so that reassigning clients (R-WORK-02)
        // and transfers by kind meet one in most sequences.
        T::Cmd(
            owner,
            C::CreateWorkItem {
                kind: WorkKind::Client,
                owner: 3,
            },
        ),
    ]
}

// ---------------------------------------------------------------------------
// Transition strategies: biased towards what exists, so that commands interact
// ---------------------------------------------------------------------------

/// Numbers in the pool.
pub const NUMBER_POOL: u8 = 5;
/// Emails in the pool.
pub const EMAIL_POOL: u8 = 8;

fn users_s(m: &Model) -> BoxedStrategy<usize> {
    // Mostly existing users; now and then one that does not exist.
    let n = m.users.len();
    prop_oneof![12 => 0..n, 1 => Just(n)].boxed()
}

fn maybe_user(m: &Model) -> BoxedStrategy<Option<usize>> {
    prop::option::weighted(0.6, users_s(m)).boxed()
}

fn accounts_s(m: &Model) -> BoxedStrategy<usize> {
    let n = m.accounts.len();
    prop_oneof![12 => 0..n, 1 => Just(n)].boxed()
}

fn account_list(m: &Model) -> BoxedStrategy<Vec<usize>> {
    prop::collection::vec(accounts_s(m), 0..3).boxed()
}

fn role_s() -> BoxedStrategy<R> {
    prop_oneof![
        1 => Just(R::Owner),
        3 => Just(R::Admin),
        3 => Just(R::Leader),
        4 => Just(R::Agent),
        2 => Just(R::ReadOnly),
        2 => (0u8..2).prop_map(R::Custom),
        1 => Just(R::Unknown),
    ]
    .boxed()
}

fn email_s() -> BoxedStrategy<Em> {
    prop_oneof![10 => (0..EMAIL_POOL, prop::bool::weighted(0.2)).prop_map(|(i, u)| Em::Pool(i, u)), 1 => Just(Em::Invalid)].boxed()
}

fn sign_in_s() -> BoxedStrategy<Sn> {
    prop_oneof![
        8 => (0u8..3, prop::bool::weighted(0.2)).prop_map(|(i, u)| Sn::Pool(i, u)),
        2 => (0..EMAIL_POOL).prop_map(Sn::Email),
        1 => Just(Sn::Blank),
    ]
    .boxed()
}

fn number_s() -> BoxedStrategy<Num> {
    prop_oneof![12 => (0..NUMBER_POOL, prop::bool::weighted(0.2)).prop_map(|(k, s)| Num::N(k, s)), 1 => Just(Num::Invalid)].boxed()
}

fn work_s(m: &Model) -> BoxedStrategy<usize> {
    let n = m.work.len();
    if n == 0 {
        Just(0).boxed()
    } else {
        prop_oneof![8 => 0..n, 1 => Just(n)].boxed()
    }
}

fn kind_s() -> BoxedStrategy<WorkKind> {
    select(vec![
        WorkKind::Conversation,
        WorkKind::GroupConversation,
        WorkKind::FlowTemplate,
        WorkKind::ContentFolder,
        WorkKind::Client,
        WorkKind::Client,
        WorkKind::Meeting,
        WorkKind::Meeting,
    ])
    .boxed()
}

fn grant_s(m: &Model) -> BoxedStrategy<G> {
    (
        role_s(),
        prop_oneof![6 => accounts_s(m).prop_map(|a| vec![a]), 2 => account_list(m)],
        prop::bool::weighted(0.15),
        prop::collection::vec(work_s(m), 0..2).prop_map(|v| v),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(role, accounts, admin, clients, with_clients)| G {
            role,
            accounts,
            admin,
            clients: if with_clients { clients } else { vec![] },
        })
        .boxed()
}

fn reassign_s(m: &Model, leader: usize) -> BoxedStrategy<Re> {
    let reports: Vec<usize> = m.reports_of(leader).into_iter().collect();
    let each = if reports.is_empty() {
        prop::collection::vec((users_s(m), users_s(m)), 0..2).boxed()
    } else {
        let r = reports.clone();
        (
            prop::collection::vec(users_s(m), r.len()..=r.len()),
            prop::bool::weighted(0.2),
            users_s(m),
        )
            .prop_map(move |(leaders, drop_one, extra)| {
                let mut pairs: Vec<(usize, usize)> = r.iter().copied().zip(leaders).collect();
                if drop_one {
                    pairs.pop();
                    pairs.push((extra, extra));
                }
                pairs
            })
            .boxed()
    };
    prop_oneof![3 => users_s(m).prop_map(Re::AllTo), 1 => each.prop_map(Re::Each)].boxed()
}

fn actor_s(m: &Model) -> BoxedStrategy<A> {
    let owner = m.owner;
    prop_oneof![
        8 => Just(A::U(owner)),
        4 => Just(A::U(1)),
        1 => Just(A::System),
        1 => Just(A::Support),
        7 => users_s(m).prop_map(A::U),
    ]
    .boxed()
}

fn row_s(m: &Model) -> BoxedStrategy<Row> {
    // Emails of live users mostly, so rows find someone.
    let live: Vec<Em> = m
        .users
        .iter()
        .filter_map(|u| u.email.as_deref())
        .filter_map(|e| {
            e.strip_prefix('p')
                .and_then(|r| r.split('@').next())
                .and_then(|d| d.parse::<u8>().ok())
        })
        .map(|i| Em::Pool(i, false))
        .collect();
    let email = if live.is_empty() {
        email_s()
    } else {
        prop_oneof![6 => select(live), 1 => email_s()].boxed()
    };
    (
        prop::option::weighted(0.95, email),
        select(vec!["", "", "y", "y", "n", "maybe"]),
        prop::bool::weighted(0.3),
        prop::option::weighted(
            0.3,
            prop_oneof![4 => (0u8..9).prop_map(Mob::Valid), 1 => Just(Mob::Invalid)],
        ),
        prop::option::weighted(0.3, select(COUNTRIES.to_vec())),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(email, deactivated, name, mobile, country, job_title)| Row {
                email,
                deactivated,
                name,
                mobile,
                country,
                job_title,
            },
        )
        .boxed()
}

/// Mostly one of `list` (what makes the command interesting), else anything.
fn prefer<V: Clone + std::fmt::Debug + 'static>(
    list: Vec<V>,
    fallback: BoxedStrategy<V>,
) -> BoxedStrategy<V> {
    if list.is_empty() {
        fallback
    } else {
        prop_oneof![3 => select(list), 1 => fallback].boxed()
    }
}

/// The transitions from a model state.
pub fn transitions(m: &Model) -> BoxedStrategy<T> {
    use Permission::*;
    let u = || users_s(m);
    let acc = || accounts_s(m);
    let n_inv = m.invitations.len();
    let pending: Vec<usize> = (0..n_inv)
        .filter(|i| m.invitations[*i].status == InvitationStatus::Pending)
        .collect();
    let inv = move || {
        let any = if n_inv == 0 {
            Just(0usize).boxed()
        } else {
            prop_oneof![8 => 0..n_inv, 1 => Just(n_inv)].boxed()
        };
        prefer(pending.clone(), any)
    };
    let accepted: Vec<usize> = (0..m.users.len())
        .filter(|i| m.users[*i].status == UserStatus::Invited && m.users[*i].accepted)
        .collect();
    let deactivated: Vec<usize> = (0..m.users.len())
        .filter(|i| m.users[*i].status == UserStatus::Deactivated)
        .collect();
    let live_devices: Vec<(usize, usize)> = (0..m.devices.len())
        .filter(|d| m.users[m.devices[*d]].devices.contains(d))
        .map(|d| (m.devices[d], d))
        .collect();
    let nums = |f: &dyn Fn(&MNum) -> bool| -> BoxedStrategy<Num> {
        let ks: Vec<Num> = m
            .numbers
            .iter()
            .filter(|(_, n)| f(n))
            .map(|(k, _)| Num::N(*k, false))
            .collect();
        prefer(ks, number_s())
    };
    let clients: Vec<usize> = (0..m.work.len())
        .filter(|w| m.work[*w].kind == WorkKind::Client)
        .collect();
    let active: Vec<usize> = (0..m.users.len())
        .filter(|i| m.users[*i].status == UserStatus::Active)
        .collect();
    let assigned_n = nums(&|n| n.assigned.is_some());
    let forwarded_n = nums(&|n| n.forwarded.is_some());
    let free_n = nums(&|n| n.assigned.is_none());
    // Users with something at stake: numbers, forwards, reports.
    let stake: Vec<usize> = (0..m.users.len())
        .filter(|i| {
            !m.assigned_to(*i).is_empty()
                || !m.forwarded_to(*i).is_empty()
                || !m.reports_of(*i).is_empty()
                || *i == m.owner
        })
        .collect();
    let stake_s = if stake.is_empty() {
        u()
    } else {
        prop_oneof![1 => select(stake), 1 => u()].boxed()
    };
    let leaders: Vec<usize> = (0..m.users.len())
        .filter(|i| !m.reports_of(*i).is_empty())
        .collect();
    let leader_s = if leaders.is_empty() {
        u()
    } else {
        prop_oneof![3 => select(leaders), 1 => u()].boxed()
    };
    let m1 = m.clone();
    let m2 = m.clone();
    let m3 = m.clone();
    let m4 = m.clone();
    let m5 = m.clone();
    let devices = m.devices.len();
    let dev = move || {
        if devices == 0 {
            Just(0usize).boxed()
        } else {
            (0..devices + 1).boxed()
        }
    };
    let perms = prop::sample::subsequence(Permission::ALL.to_vec(), 0..=3);
    let edm = prop_oneof![4 => (0u8..9).prop_map(|k| Ed::Set(Mob::Valid(k))), 1 => Just(Ed::Set(Mob::Invalid)), 1 => Just(Ed::Clear)];
    let edb =
        prop_oneof![4 => Just(Ed::Set(true)), 1 => Just(Ed::Set(false)), 1 => Just(Ed::Clear)];
    let sel = prop_oneof![
        3 => Just(Sel::All),
        2 => prop::sample::subsequence(vec![WorkKind::Client, WorkKind::Meeting, WorkKind::Conversation], 1..=2).prop_map(Sel::Kinds),
        2 => prop::collection::vec(work_s(m), 1..3).prop_map(Sel::Items),
    ];
    let cmd = prop_oneof![
        1 => Just(C::CreateOrganization),
        2 => (select(vec![0u32, 1, 3, 14, 400]), select(vec![24u32, 0]), any::<bool>(), prop::bool::weighted(0.7))
            .prop_map(|(ttl_days, reset_hours, self_or_admin, require_complete)| C::SetPolicies { ttl_days, reset_hours, self_or_admin, require_complete }),
        3 => u().prop_map(|to| C::TransferPrimaryOwnership { to }),
        3 => acc().prop_map(|parent| C::CreateAccount { parent }),
        3 => (prop_oneof![6 => (0u8..2).prop_map(R::Custom), 1 => Just(R::Agent)], prop::bool::weighted(0.1), perms.clone(), prop::bool::weighted(0.5))
            .prop_map(|(role, invalid_slug, mut permissions, team)| {
                if team { permissions.push(ManageTeam); permissions.sort(); permissions.dedup(); }
                C::DefineRole { role, invalid_slug, permissions }
            }),
        10 => (prop::collection::vec(email_s(), 0..3), grant_s(&m1)).prop_map(|(emails, grant)| C::InviteUsers { emails, grant }),
        3 => (prop::option::weighted(0.7, sign_in_s()), prop::option::weighted(0.6, email_s()), grant_s(&m1))
            .prop_map(|(sign_in, email, grant)| (sign_in, email, grant))
            .prop_flat_map({ let leader_s = leader_s.clone(); move |(sign_in, email, grant)| {
                let mobile = prop_oneof![4 => (0u8..9).prop_map(Mob::Valid), 1 => Just(Mob::Invalid)];
                (prop::option::weighted(0.5, prop::bool::weighted(0.9)), prop::option::weighted(0.5, mobile), prop::option::weighted(0.3, leader_s.clone()), prop::bool::weighted(0.2), prop::option::weighted(0.5, select(COUNTRIES.to_vec())))
                    .prop_map(move |(name, mobile, leader, deactivated, country)| C::ProvisionUser { sign_in, email, name, mobile, country, leader, deactivated, grant: grant.clone() })
            }}),
        3 => grant_s(&m2).prop_map(|grant| C::CreateInvitationLink { grant }),
        3 => inv().prop_map(|invitation| C::Reinvite { invitation }),
        2 => inv().prop_map(|invitation| C::RevokeInvitation { invitation }),
        2 => select(vec![0u32, 1, 100, 20_000]).prop_map(|limit| C::ExpireInvitations { limit }),
        12 => (prop::option::weighted(0.9, inv()), prop::option::weighted(0.3, email_s()), prop::bool::weighted(0.9),
               prop::option::weighted(0.7, prop_oneof![6 => (0u8..9).prop_map(Mob::Valid), 1 => Just(Mob::Invalid)]),
               prop::option::weighted(0.7, select(COUNTRIES.to_vec())))
            .prop_map(|(invitation, email, name_ok, mobile, country)| C::AcceptInvitation { invitation, email, name_ok, mobile, country }),
        10 => prefer(accepted, u()).prop_map(|user| C::SignIn { user }),
        2 => prefer(live_devices, (u(), dev()).boxed()).prop_map(|(user, device)| C::SignOutDevice { user, device }),
        4 => (u(), prop::option::weighted(0.3, prop::bool::weighted(0.9)), prop::option::weighted(0.2, email_s()), prop::option::weighted(0.3, edm),
              prop::option::weighted(0.3, select(COUNTRIES.to_vec())), prop::bool::weighted(0.1))
            .prop_map(|(user, name, email, mobile, country, notifications)| C::UpdateProfile { user, name, email, mobile, country, notifications }),
        4 => (u(), prop::option::weighted(0.3, edb.clone()), prop::option::weighted(0.2, edb), prop::option::weighted(0.5, any::<bool>()))
            .prop_map(|(user, job_title, picture, admin_access)| C::UpdateAdminFields { user, job_title, picture, admin_access }),
        2 => (u(), prop_oneof![5 => Just(Ed::Set(true)), 1 => Just(Ed::Set(false)), 1 => Just(Ed::Clear)])
            .prop_map(|(user, external_id)| C::SetExternalId { user, external_id }),
        2 => (u(), prop_oneof![6 => sign_in_s().prop_map(Ed::Set), 1 => Just(Ed::Clear)])
            .prop_map(|(user, sign_in_name)| C::SetSignInName { user, sign_in_name }),
        1 => u().prop_map(|user| C::RequestPasswordReset { user }),
        5 => (u(), role_s(), prop_oneof![4 => acc().prop_map(|a| vec![a]), 1 => account_list(&m3)])
            .prop_map(|(user, role, accounts)| C::GrantAccess { user, role, accounts }),
        4 => (stake_s.clone(), acc(), role_s()).prop_map(|(user, account, role)| C::ChangeRole { user, account, role }),
        4 => (stake_s.clone(), prop_oneof![4 => acc().prop_map(|a| vec![a]), 1 => account_list(&m4)])
            .prop_map(|(user, accounts)| C::RemoveAccess { user, accounts }),
        2 => stake_s.clone().prop_map(|user| C::RemoveFromAllAccounts { user }),
        5 => (number_s(), acc()).prop_map(|(number, account)| C::AddNumber { number, account }),
        8 => (free_n.clone(), u()).prop_map(|(number, user)| C::AssignNumber { number, user }),
        3 => assigned_n.prop_map(|number| C::UnassignNumber { number }),
        5 => (number_s(), u()).prop_map(|(number, to)| C::ForwardNumber { number, to }),
        2 => forwarded_n.prop_map(|number| C::StopForwarding { number }),
        2 => free_n.clone().prop_map(|number| C::ReleaseNumber { number }),
        6 => (u(), prop::option::weighted(0.85, leader_s.clone())).prop_map(|(user, leader)| C::SetReportingLine { user, leader }),
        3 => leader_s.clone().prop_flat_map({ let m = m5.clone(); move |leader| reassign_s(&m, leader).prop_map(move |to| C::ReassignReports { leader, to }) }),
        4 => (kind_s(), u()).prop_map(|(kind, owner)| C::CreateWorkItem { kind, owner }),
        3 => (u(), u(), sel).prop_map(|(from, to, selection)| C::TransferWork { from, to, selection }),
        // Mostly clients that exist, to active users, so that some are accepted.
        3 => prop_oneof![
                1 => Just(Vec::new()),
                6 => prop::collection::vec((prefer(clients, work_s(m)), prefer(active.clone(), u())), 1..3),
            ].prop_map(|assignments| C::ReassignClients { assignments }),
        6 => stake_s.clone().prop_flat_map({ let m = m5.clone(); move |user| (maybe_user(&m), prop::option::weighted(0.4, reassign_s(&m, user)))
            .prop_map(move |(forward_to, reassign)| C::Deactivate { user, forward_to, reassign }) }),
        4 => prefer(deactivated, u()).prop_map(|user| C::Reactivate { user }),
        6 => stake_s.clone().prop_flat_map({ let m = m5.clone(); move |user| (prop::bool::weighted(0.9), maybe_user(&m), prop::option::weighted(0.4, reassign_s(&m, user)))
            .prop_map(move |(acknowledged, forward_to, reassign)| C::Delete { user, acknowledged, forward_to, reassign }) }),
        6 => stake_s.prop_flat_map({ let m = m5.clone(); move |user| (prop::bool::weighted(0.6), maybe_user(&m), prop::option::weighted(0.6, reassign_s(&m, user)), maybe_user(&m), prop::option::weighted(0.4, prop::bool::weighted(0.9)))
            .prop_map(move |(unassign_numbers, forward_to, reassign, transfer_work_to, delete)| C::Offboard { user, unassign_numbers, forward_to, reassign, transfer_work_to, delete }) }),
        4 => (prop::collection::vec(row_s(&m5), 0..4), prop::bool::weighted(0.4)).prop_map(|(rows, partial)| C::BulkUpdate { rows, partial }),
    ];
    prop_oneof![
        20 => (actor_s(m), cmd).prop_map(|(a, c)| T::Cmd(a, c)),
        1 => select(vec![1u32, 7, 15]).prop_map(T::AdvanceDays),
    ]
    .boxed()
}

/// The reference state machine; `BROKEN` forgets R-NUM-02 (shrinking demo).
pub struct Directory<const BROKEN: bool>;

impl<const BROKEN: bool> ReferenceStateMachine for Directory<BROKEN> {
    type State = Model;
    type Transition = T;

    fn init_state() -> BoxedStrategy<Model> {
        let mut m = Model::created(BROKEN);
        for t in opening() {
            m.step(&t);
            assert_eq!(m.last, Some(Expect::Accepted), "opening step {t:?}");
        }
        m.last = None;
        Just(m).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<T> {
        transitions(state)
    }

    fn apply(mut state: Model, t: &T) -> Model {
        state.step(t);
        state
    }
}
