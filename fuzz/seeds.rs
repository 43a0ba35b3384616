//! Writes the seed corpora of the fuzz targets under `corpus/<target>/`,
//! as files named `seed-*` (what a fuzzing run adds there is not committed).
//! Reproducible: everything comes from the deterministic fixture
//! (`switchboard_fuzz::build_fixture`), the demo story (`audit::demo`), the
//! frozen v1 fixture and CSVs and commands taken from the core's tests.
//!
//! ```text
//! cd fuzz && cargo run --example seeds
//! ```
#![forbid(unsafe_code)]

use serde_json::json;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use switchboard_core::codec::{self, Sealing};
use switchboard_core::service::CommandService;
use switchboard_core::*;
use switchboard_fuzz::codec_seed::{known_key, metadata, EVENT, ORG};
use switchboard_fuzz::{block_on, build_fixture, email, start, Fixture};
use switchboard_store_memory::MemoryStore;

const V1_HISTORY: &str = include_str!("../core/tests/fixtures/v1_history.jsonl");

/// Empties the target's seeds and returns its directory.
fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).expect("corpus directory");
    for entry in fs::read_dir(&dir).expect("corpus directory") {
        let path = entry.expect("entry").path();
        let seed = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("seed-"));
        if seed {
            fs::remove_file(&path).expect("old seed removed");
        }
    }
    dir
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed written");
}

fn bulk_csv() {
    let dir = corpus("bulk_csv");
    let [ann, bob, cat, tom, alan, ian, sue, olivia, ada] = [
        "ann", "bob", "cat", "tom", "alan", "ian", "sue", "olivia", "ada",
    ]
    .map(email);
    let sheets = [
        // core/tests/rules_bulk.rs, with the fixture's people.
        format!(
            "Job Title, Email ,Deactivated\nAgent,{ann},y\nSenior Agent,{bob},\n,{},n\n,{olivia},\n",
            cat.to_uppercase()
        ),
        format!(
            "email,deactivated,mobile,default_country\nnobody@northwind.example,y,,\n\
             {ann},maybe,,\n{bob},,555-0100,Narnia\n{ann},,,\n"
        ),
        "name,deactivated\nAnn,y\n".into(),
        "email,salary\na@b.example,1\n".into(),
        "email,email\na@b.example,a@b.example\n".into(),
        "email\n".into(),
        format!("email,deactivated\n{ian},y\n"),
        format!("email,deactivated,mobile,country\n{ian},y,+1 415 555 0177,US\n"),
        format!("email,deactivated,mobile,country\n{ian},y,+1 415 555 0177,Q1\n"),
        format!("email,deactivated,country\n{ian},y,Q1\n"),
        format!("email,deactivated\n{ann},y\n{tom},y\n{bob},y\n{alan},y\n"),
        format!("email,deactivated\n{ann},y\n{bob},y\n{cat},y\nghost@northwind.example,y\n"),
        "email,deactivated\nghost@northwind.example,y\n".into(),
        // Every column, quoting, a short row, reactivation.
        format!(
            "email,name,mobile,country,title,deactivated\n\
             {sue},\"Sue, \"\"Sup\"\" Northwind\",+14155550177,gb,Lead,\n\
             {ada},Ada N,,,,n\n{cat},,,,,n\n{ian}\n"
        ),
    ];
    for (i, sheet) in sheets.iter().enumerate() {
        write(&dir, &format!("{i:02}.csv"), sheet.as_bytes());
    }
}

fn command_decide(f: &Fixture, story: &[(Actor, Command)]) {
    let dir = corpus("command_decide");
    let p = &f.people;
    let mut commands: Vec<Command> = Vec::new();
    let mut seen = BTreeSet::new();
    // The fixture's own story, one command of each kind.
    for (_, c) in story {
        if seen.insert(c.name()) {
            commands.push(c.clone());
        }
    }
    let device = f.state.users[&p.ann]
        .devices
        .keys()
        .next()
        .copied()
        .expect("Ann signed in");
    let n = &p.numbers;
    commands.extend([
        Command::Deactivate {
            user: p.ann,
            forward_numbers_to: Some(p.bob),
            reassign_reports: None,
        },
        Command::Deactivate {
            user: p.tom,
            forward_numbers_to: None,
            reassign_reports: Some(Reassignment::AllTo(p.alan)),
        },
        Command::Delete {
            user: p.ann,
            acknowledgement: DeletionAcknowledgement::ALL,
            forward_numbers_to: Some(p.bob),
            reassign_reports: None,
        },
        Command::Offboard(Offboarding {
            user: p.ann,
            unassign_numbers: true,
            forward_numbers_to: Some(p.bob),
            reassign_reports: None,
            transfer_work_to: Some(p.bob),
            end: OffboardEnd::Deactivate,
        }),
        Command::Offboard(Offboarding {
            user: p.tom,
            unassign_numbers: false,
            forward_numbers_to: None,
            reassign_reports: Some(Reassignment::Each(vec![(p.ann, p.alan), (p.bob, p.alan)])),
            transfer_work_to: Some(p.alan),
            end: OffboardEnd::Delete(DeletionAcknowledgement::ALL),
        }),
        Command::TransferWork {
            from: p.ann,
            to: p.bob,
            selection: WorkSelection::Kinds(vec![WorkKind::Conversation]),
        },
        Command::TransferWork {
            from: p.ann,
            to: p.sue,
            selection: WorkSelection::Items(vec![p.work[0], p.work[3]]),
        },
        Command::ReassignClients {
            assignments: vec![(p.work[1], p.ann)],
        },
        Command::Reactivate { user: p.cat },
        Command::Reinvite {
            invitation: p.pia_invitation,
        },
        Command::RevokeInvitation {
            invitation: p.link_invitation,
        },
        Command::ExpireInvitations { limit: 10 },
        Command::AcceptInvitation {
            token: "not-a-token".into(),
            email: Some(email("zoe")),
            name: "Zoe".into(),
            mobile: Some("+14155550110".into()),
            default_country: Some("US".into()),
        },
        Command::SignOutDevice {
            user: p.ann,
            device,
        },
        Command::UpdateProfile {
            user: p.ann,
            name: Some("Ann A. Northwind".into()),
            email: Some("ann.a@northwind.example".into()),
            mobile: Some(Edit::Clear),
            default_country: Some("GB".into()),
            notifications: Some(NotificationPreferences::default()),
        },
        Command::UpdateAdminFields {
            user: p.ann,
            job_title: Some(Edit::Clear),
            picture: Some(Edit::Set("https://northwind.example/ann.png".into())),
            admin_access: Some(true),
        },
        Command::SetExternalId {
            user: p.ann,
            external_id: Edit::Set("00uAnn0rthw1nd".into()),
        },
        Command::ProvisionUser {
            sign_in_name: Some("idp.dana".into()),
            email: None,
            name: Some("Dana Idp".into()),
            mobile: Some("+14155550142".into()),
            default_country: Some("US".into()),
            job_title: Some("Agent".into()),
            external_id: Some("00uDana".into()),
            reports_to: Some(p.tom),
            deactivated: false,
            grant: Grant {
                role: RoleId::new(RoleId::AGENT),
                accounts: vec![p.root],
                agency_admin: false,
                clients: vec![],
            },
        },
        Command::SetSignInName {
            user: p.ann,
            sign_in_name: Edit::Set("ann.northwind".into()),
        },
        Command::GrantAccess {
            user: p.bob,
            role: RoleId::new("supervisor"),
            accounts: vec![p.east_support],
        },
        Command::ChangeRole {
            user: p.ann,
            account: p.east,
            role: RoleId::new(RoleId::TEAM_LEADER),
        },
        Command::RemoveAccess {
            user: p.bob,
            accounts: vec![p.east],
        },
        Command::RemoveFromAllAccounts { user: p.ian },
        Command::UnassignNumber {
            number: n[0].clone(),
        },
        Command::StopForwarding {
            number: n[1].clone(),
        },
        Command::ReleaseNumber {
            number: n[2].clone(),
        },
        Command::SetReportingLine {
            user: p.tom,
            leader: Some(p.ann),
        },
        Command::ReassignReports {
            leader: p.tom,
            to: Reassignment::AllTo(p.alan),
        },
        Command::TransferPrimaryOwnership { to: p.alan },
        Command::SetPolicies {
            policies: Policies::default(),
        },
        Command::BulkUpdate {
            csv: format!("email,deactivated\n{},y\n", email("bob")),
            mode: BulkMode::Partial,
        },
    ]);
    for (i, c) in commands.iter().enumerate() {
        let text = serde_json::to_vec(c).expect("a command serializes");
        write(&dir, &format!("{i:02}-{}.json", c.name()), &text);
    }
}

/// The envelope the `codec_decode` target reads.
fn stored(event_type: &str, schema_version: u32, payload: &store::RawPayload) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "event_type": event_type,
        "schema_version": schema_version,
        "payload": payload,
    }))
    .expect("serializes")
}

fn codec_decode(export: &[u8]) {
    let dir = corpus("codec_decode");
    let mut seen = BTreeSet::new();
    let lines = export
        .split(|b| *b == b'\n')
        .chain(V1_HISTORY.as_bytes().split(|b| *b == b'\n'))
        .filter(|l| !l.is_empty());
    for line in lines {
        let r: store::RecordedEvent = serde_json::from_slice(line).expect("an export line");
        if !seen.insert((r.event_type.clone(), r.schema_version)) {
            continue;
        }
        let name = format!("{}-v{}", r.event_type, r.schema_version);
        write(
            &dir,
            &format!("{name}.json"),
            &stored(&r.event_type, r.schema_version, &r.payload),
        );
        // Its personal data sealed under the target's known key.
        let event = codec::decode(&r).expect("decodes");
        if codec::personal_subject(&event).is_some() {
            let sealed = codec::encode_sealed(
                &event,
                ORG,
                EVENT,
                metadata(),
                Sealing::Seal {
                    key: &known_key(),
                    nonce: [3; 32],
                },
            )
            .expect("encodes");
            write(
                &dir,
                &format!("{name}-sealed.json"),
                &stored(&sealed.event_type, sealed.schema_version, &sealed.payload),
            );
        }
    }
}

fn jsonl_import(export: &[u8]) {
    let dir = corpus("jsonl_import");
    write(&dir, "fixture.jsonl", export);
    write(&dir, "v1_history.jsonl", V1_HISTORY.as_bytes());
    let first: Vec<&[u8]> = export.split(|b| *b == b'\n').take(4).collect();
    write(&dir, "fixture-first-4.jsonl", &first.join(&b"\n"[..]));
    // The demo story (audit::demo), recorded on a fresh store and exported.
    let clock = Arc::new(FixedClock::new(start()));
    let ids = Arc::new(SequentialIds::new(1));
    let service = CommandService::new(
        MemoryStore::new(),
        clock.clone(),
        ids.clone(),
        Arc::new(SeededSecrets::new(1)),
    );
    let demo = block_on(audit::demo::record(&service, &clock, ids.as_ref())).expect("demo");
    let mut out = Vec::new();
    block_on(service.export_jsonl(demo.org, &mut out)).expect("demo exports");
    // With CRLF line ends and blank lines, which the import accepts.
    let crlf = String::from_utf8(out.clone())
        .expect("utf-8")
        .replace('\n', "\r\n\r\n");
    write(&dir, "demo.jsonl", &out);
    write(&dir, "demo-crlf.jsonl", crlf.as_bytes());
}

fn snapshot_decode(f: &Fixture) {
    let dir = corpus("snapshot_decode");
    let head = f.state.version;
    // Each input: the version (8 bytes, big-endian), then the sealed state.
    for v in [head, head / 2, 12, 3] {
        let state = block_on(f.service.load_at_version(f.org, v)).expect("loads");
        let snapshot = block_on(f.service.seal_snapshot(&state)).expect("seals");
        let input = [snapshot.version.to_be_bytes().as_slice(), &snapshot.state].concat();
        write(&dir, &format!("sealed-v{v}.bin"), &input);
    }
}

fn main() {
    let (f, story) = build_fixture();
    let export = f.export();
    bulk_csv();
    command_decide(&f, &story);
    codec_decode(&export);
    jsonl_import(&export);
    snapshot_decode(&f);
    println!(
        "seeds written for an organization of {} events, {} users",
        f.state.version,
        f.state.users.len()
    );
}
