//! `RULES.md` and [`RuleId`] list the same rules: every id in the file's
//! tables parses, and every variant appears in the file.

use std::collections::BTreeSet;
use switchboard_core::RuleId;

fn rules_md() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../RULES.md");
    std::fs::read_to_string(path).expect("RULES.md at the repository root")
}

/// The ids of the rule tables: the first cell of rows like `| R-NUM-02 | …`.
fn table_ids(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("| R-"))
        .map(|rest| format!("R-{}", rest.split(' ').next().unwrap_or_default()))
        .collect()
}

#[test]
fn every_rule_of_rules_md_is_a_rule_id() {
    let ids = table_ids(&rules_md());
    assert!(ids.len() >= 40, "the rule tables were not found: {ids:?}");
    for id in &ids {
        let rule: RuleId = id
            .parse()
            .unwrap_or_else(|e| panic!("RULES.md lists {id}, which RuleId lacks: {e}"));
        assert_eq!(rule.as_str(), id);
    }
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an id is listed twice in RULES.md");
}

#[test]
fn every_rule_id_is_in_rules_md() {
    let text = rules_md();
    let ids: BTreeSet<String> = table_ids(&text).into_iter().collect();
    for rule in RuleId::ALL {
        match rule {
            // Not business rules: RULES.md names them where it explains ids.
            RuleId::Limit | RuleId::Input => {
                assert!(
                    text.contains(&format!("`{rule}` (`RuleId::{rule:?}`")),
                    "{rule}"
                );
            }
            _ => assert!(
                ids.contains(rule.as_str()),
                "{rule} ({rule:?}) has no row in RULES.md"
            ),
        }
    }
}
