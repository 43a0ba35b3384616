//! Replays an organization's audit history from a JSON Lines export on the
//! memory store (no setup), and prints the state as of an instant and the
//! trail of a user.
//!
//! ```text
//! cargo run --example replay                          # a demo history: exported, read back, replayed
//! cargo run --example replay -- FILE.jsonl            # the state now, and every user's id
//! cargo run --example replay -- FILE.jsonl --at 2026-03-04T21:00:00Z --user usr_…
//! ```
//!
//! A file is what `CommandService::export_jsonl` writes: one event per line,
//! envelope and payload. Deleted users' personal data is not in it; their ids
//! still resolve ("deleted user usr_…").

use chrono::{DateTime, Utc};
use std::io::BufReader;
use std::sync::Arc;
use switchboard::audit::{demo, AsOf, Routing, Subject};
use switchboard::memory::MemoryStore;
use switchboard::service::CommandService;
use switchboard::*;

type Failure = Box<dyn std::error::Error>;

fn service() -> (
    CommandService<MemoryStore>,
    Arc<FixedClock>,
    Arc<SequentialIds>,
) {
    let clock = Arc::new(FixedClock::new(DateTime::UNIX_EPOCH));
    let ids = Arc::new(SequentialIds::new(7));
    let service = CommandService::new(
        MemoryStore::new(),
        clock.clone(),
        ids.clone(),
        // Deterministic, so the output is the same on every run; a real
        // service passes `switchboard::system::OsSecrets`.
        Arc::new(SeededSecrets::new(7)),
    );
    (service, clock, ids)
}

/// Reads `usr_<hex>` or a plain UUID.
fn parse_user(text: &str) -> Result<UserId, Failure> {
    let hex = text.strip_prefix("usr_").unwrap_or(text);
    Ok(UserId::from_uuid(uuid::Uuid::parse_str(hex)?))
}

fn print_state(state: &Organization, now: &Organization, at: &str) {
    println!(
        "\n══ {} as of {at} (version {}) ══",
        state.name, state.version
    );
    let label = |id: UserId| audit::trail::user_label(now, id);
    for u in state.users.values() {
        let roles: Vec<String> = u
            .memberships
            .iter()
            .map(|(a, r)| {
                let account = state.accounts.get(a).map_or("?", |x| x.name.as_str());
                format!("{r} on {account}")
            })
            .collect();
        println!(
            "  {:<48} {:<11} {}{}",
            label(u.id),
            u.status.to_string(),
            if u.agency_admin {
                "agency administrator; "
            } else {
                ""
            },
            roles.join(", ")
        );
    }
    for n in state.numbers.values() {
        let routing = match (n.assigned_to, n.forwarded_to) {
            (Some(u), _) => format!("assigned to {}", label(u)),
            (None, Some(u)) => format!("forwarded to {}", label(u)),
            (None, None) => "routed to nobody".into(),
        };
        println!("  number {} {routing}", n.number);
    }
}

async fn print_trail(
    service: &CommandService<MemoryStore>,
    org: OrgId,
    user: UserId,
) -> Result<(), Failure> {
    let now = service.load(org).await?;
    println!("\n══ Trail of {} ══", audit::trail::user_label(&now, user));
    let trail = service.trail(org, Subject::User(user)).await?;
    for entry in &trail.entries {
        println!("  {entry}");
    }
    if trail.entries.is_empty() {
        println!("  (nothing happened to this user)");
    }
    Ok(())
}

/// No file: record the demo story, export it, import the file into a fresh
/// store and answer the auditors' questions from the imported copy.
async fn demo_run() -> Result<(), Failure> {
    let (original, clock, ids) = service();
    let d = demo::record(&original, &clock, ids.as_ref()).await?;
    let path =
        std::env::temp_dir().join(format!("switchboard-replay-{}.jsonl", std::process::id()));
    let mut file = std::fs::File::create(&path)?;
    let written = original.export_jsonl(d.org, &mut file).await?;
    drop(file);
    println!(
        "Exported {written} events of the demo history to {}",
        path.display()
    );

    let (copy, _, _) = service();
    let report = copy
        .import_jsonl(&mut BufReader::new(std::fs::File::open(&path)?))
        .await?;
    let _ = std::fs::remove_file(&path);
    println!(
        "Read them back into an empty memory store: {} events, {} appends",
        report.events, report.appends
    );
    let now = copy.load(d.org).await?;
    assert_eq!(
        now,
        original.load(d.org).await?,
        "the copy has the same state"
    );

    let then = copy
        .load_as_of(d.org, AsOf::Instant(d.times.assigned))
        .await?;
    print_state(&then, &now, &d.times.assigned.to_rfc3339());
    print_state(&now, &now, "now");
    print_trail(&copy, d.org, d.carl).await?;

    println!("\n══ Questions auditors ask ══");
    let who = copy.who_had_access(d.org, d.east, d.times.joined).await?;
    println!("Who had access to East at {}?", d.times.joined.to_rfc3339());
    for a in who {
        println!("  {} ({}, {})", a.label, a.via, a.status);
    }
    for t in [d.times.joined, d.times.assigned, d.times.deleted] {
        let routing = match copy.number_routing_at(d.org, &d.number, t).await? {
            Routing::Assigned(u) => format!("assigned to {}", audit::trail::user_label(&now, u)),
            Routing::Forwarded(u) => format!("forwarded to {}", audit::trail::user_label(&now, u)),
            Routing::Nobody => "routed to nobody".into(),
            Routing::NotHeld => "not held by the organization".into(),
        };
        println!(
            "Where did {} route at {}? {routing}",
            d.number,
            t.to_rfc3339()
        );
    }
    for x in copy.who_deactivated(d.org, d.bob).await? {
        println!(
            "Who deactivated {} and when? {} at {}",
            audit::trail::user_label(&now, d.bob),
            x.by_label,
            x.at.to_rfc3339()
        );
    }
    Ok(())
}

async fn file_run(path: &str, args: &[String]) -> Result<(), Failure> {
    let mut at: Option<DateTime<Utc>> = None;
    let mut user: Option<UserId> = None;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--at" => at = Some(DateTime::parse_from_rfc3339(value)?.with_timezone(&Utc)),
            "--user" => user = Some(parse_user(value)?),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let (service, _, _) = service();
    let report = service
        .import_jsonl(&mut BufReader::new(std::fs::File::open(path)?))
        .await?;
    println!(
        "Read {} events of organization {} from {path}",
        report.events, report.org
    );
    let now = service.load(report.org).await?;
    match at {
        Some(t) => {
            let then = service.load_as_of(report.org, AsOf::Instant(t)).await?;
            print_state(&then, &now, &t.to_rfc3339());
        }
        None => print_state(&now, &now, "now"),
    }
    match user {
        Some(u) => print_trail(&service, report.org, u).await?,
        None => println!(
            "\n(pass --user <id> for a user's trail, --at <RFC 3339 instant> for a past state)"
        ),
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.split_first() {
        None => demo_run().await,
        Some((path, rest)) => file_run(path, rest).await,
    };
    if let Err(e) = result {
        eprintln!("replay: {e}");
        std::process::exit(1);
    }
}
