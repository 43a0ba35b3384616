//! Input validation: pure leaf functions, each with an upper bound on what it
//! accepts. Every failure is a [`Blocker`] naming the rule and the field; its
//! reason never repeats the input, which may be personal data (an email, a
//! mobile number) and would reach operators' logs with the refusal.

use crate::error::Blocker;
use crate::ids::PhoneNumber;
use crate::model::TokenHash;
use crate::rule::RuleId;
use sha2::{Digest, Sha256};
use std::str::FromStr;

/// Limit: bytes of an email address (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Limit: characters of a name, title, account or role name.
pub const MAX_TEXT_LEN: usize = 200;
/// Limit: bytes of a URL (pictures).
pub const MAX_URL_LEN: usize = 2048;
/// Limit: bytes of a phone number as entered.
pub const MAX_PHONE_INPUT_LEN: usize = 32;
/// Limit: bytes of the raw address list of one invitation command.
pub const MAX_EMAIL_LIST_BYTES: usize = 64 * 1024;
/// Limit: people invited by one command.
pub const MAX_INVITEES: usize = 500;
/// Limit: accounts named by one command.
pub const MAX_ACCOUNTS_PER_COMMAND: usize = 1_000;
/// Limit: items named by one command (work items, client assignments, reassignments).
pub const MAX_ITEMS_PER_COMMAND: usize = 10_000;
/// Limit: bytes of a secret token as presented.
pub const MAX_TOKEN_LEN: usize = 128;
/// Limit: bytes of a role slug.
pub const MAX_ROLE_ID_LEN: usize = 64;
/// Limit: characters of an identity provider's id for a user (SCIM's
/// `externalId`; object ids, GUIDs and user principal names fit with room).
pub const MAX_EXTERNAL_ID_LEN: usize = 255;
/// Limit: characters of a sign-in name (SCIM's `userName`; an email-length
/// bound, since many identity providers send user principal names).
pub const MAX_SIGN_IN_NAME_LEN: usize = 254;

/// Limit: compiled number patterns kept by `phonenumber`'s process-wide
/// metadata database (see [`phone_number`]).
///
/// `phonenumber` compiles its regular expressions on first use and keeps
/// them in one LRU cache of 100 for the whole process. Validating a number
/// takes about ten patterns of its country, so numbers of more than about
/// ten countries evict each other in turn (LRU's worst case) and every
/// validation recompiled its patterns: 5–7 ms per number across 20
/// countries against 9–12 µs once they stay compiled (BENCHMARKS.md §1).
/// A sweep of one number per calling code of all 246 regions kept 718
/// patterns, so 1 024 holds them with room; each costs ~60–90 KB once
/// compiled, so the bound on the cache's memory is ~100 MB, approached
/// only by a process that validates numbers of every region.
pub const PHONE_PATTERN_CACHE: usize = 1_024;

/// Widens `phonenumber`'s pattern cache to [`PHONE_PATTERN_CACHE`], once per
/// process. This configures a dependency's existing process-wide cache (it
/// holds compiled patterns only, no input and nothing of any organization);
/// it adds no state of the library's own.
fn widen_phone_pattern_cache() {
    static WIDENED: std::sync::Once = std::sync::Once::new();
    WIDENED.call_once(|| {
        // A poisoned lock (a panic inside `phonenumber` while it held it)
        // keeps the default size: validation stays correct, only slower.
        if let Ok(mut cache) = phonenumber::metadata::DATABASE.cache().lock() {
            if cache.capacity() < PHONE_PATTERN_CACHE {
                cache.set_capacity(PHONE_PATTERN_CACHE);
            }
        }
    });
}

/// One valid number of each of twenty countries, in E.164: more countries
/// than `phonenumber`'s default pattern cache holds (the unit test of
/// [`PHONE_PATTERN_CACHE`] and the `validate_phone` bench use them).
#[cfg(any(test, feature = "test-util"))]
pub const TWENTY_COUNTRIES_NUMBERS: [&str; 20] = [
    "+14155550100",
    "+442079460018",
    "+4930901820",
    "+33142685300",
    "+919876543210",
    "+5511987654321",
    "+81312345678",
    "+61291234567",
    "+34912345678",
    "+390612345678",
    "+31201234567",
    "+46812345678",
    "+48221234567",
    "+27211234567",
    "+525512345678",
    "+6591234567",
    "+85221234567",
    "+97142345678",
    "+35312345678",
    "+41441234567",
];

fn invalid(rule: RuleId, field: &str, reason: impl Into<String>) -> Blocker {
    Blocker::Invalid {
        rule,
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Checks a count against a limit.
pub fn count(what: &str, actual: usize, limit: usize) -> Result<(), Blocker> {
    if actual > limit {
        Err(Blocker::LimitExceeded {
            what: what.to_owned(),
            limit,
            actual,
        })
    } else {
        Ok(())
    }
}

/// A required short text: trimmed, non-empty, at most `max` characters, no control characters.
pub fn text(field: &str, input: &str, max: usize) -> Result<String, Blocker> {
    let t = input.trim();
    let chars = t.chars().count();
    if chars > max {
        return Err(Blocker::LimitExceeded {
            what: field.to_owned(),
            limit: max,
            actual: chars,
        });
    }
    if t.is_empty() {
        return Err(invalid(RuleId::Input, field, "must not be empty"));
    }
    if t.chars().any(char::is_control) {
        return Err(invalid(
            RuleId::Input,
            field,
            "must not contain control characters",
        ));
    }
    Ok(t.to_owned())
}

/// An identity provider's id for a user, kept exactly as given: compared
/// case-sensitively and never trimmed (SCIM's `externalId` is `caseExact`, and
/// the provider looks the user up by the very string it sent). Not empty, no
/// control characters, at most [`MAX_EXTERNAL_ID_LEN`] characters.
///
/// ```
/// use switchboard_core::validate::external_id;
/// assert_eq!(external_id("00u1ab2CD3").as_deref(), Ok("00u1ab2CD3"));
/// assert!(external_id("").is_err());
/// assert!(external_id("a\nb").is_err());
/// ```
pub fn external_id(input: &str) -> Result<String, Blocker> {
    let chars = input.chars().count();
    if chars > MAX_EXTERNAL_ID_LEN {
        return Err(Blocker::LimitExceeded {
            what: "external_id".into(),
            limit: MAX_EXTERNAL_ID_LEN,
            actual: chars,
        });
    }
    if input.trim().is_empty() {
        return Err(invalid(RuleId::Input, "external_id", "must not be blank"));
    }
    if input.chars().any(char::is_control) {
        return Err(invalid(
            RuleId::Input,
            "external_id",
            "must not contain control characters",
        ));
    }
    Ok(input.to_owned())
}

/// A sign-in name (R-USR-03): kept as given and compared by
/// [`sign_in_key`]. Not blank, no control characters, no white space at
/// either end (a name that differs from another only by a trailing space
/// would look the same on every screen and sign-in form), at most
/// [`MAX_SIGN_IN_NAME_LEN`] characters.
///
/// ```
/// use switchboard_core::validate::{sign_in_key, sign_in_name};
/// assert_eq!(sign_in_name("Ann.Lee").as_deref(), Ok("Ann.Lee"));
/// assert_eq!(sign_in_key("Ann.Lee"), "ann.lee");
/// assert!(sign_in_name(" ann").is_err());
/// assert!(sign_in_name("").is_err());
/// assert!(sign_in_name("a\tb").is_err());
/// ```
pub fn sign_in_name(input: &str) -> Result<String, Blocker> {
    let chars = input.chars().count();
    if chars > MAX_SIGN_IN_NAME_LEN {
        return Err(Blocker::LimitExceeded {
            what: "sign_in_name".into(),
            limit: MAX_SIGN_IN_NAME_LEN,
            actual: chars,
        });
    }
    let reason = if input.trim().is_empty() {
        Some("must not be blank")
    } else if input.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else if input.trim() != input {
        Some("must not begin or end with white space")
    } else {
        None
    };
    match reason {
        Some(r) => Err(invalid(RuleId::Input, "sign_in_name", r)),
        None => Ok(input.to_owned()),
    }
}

/// The key sign-in names are compared by (R-USR-03): lower case, the same
/// key as an email's, so that a sign-in name and an email can be compared.
pub fn sign_in_key(name: &str) -> String {
    email_key(name)
}

/// An email address (R-INV-01, R-USR-01): syntax by `email_address`, plus our
/// own policy: at most 254 bytes, a dotted domain name, no IP literals.
pub fn email(input: &str) -> Result<String, Blocker> {
    let t = input.trim();
    if t.len() > MAX_EMAIL_LEN {
        return Err(Blocker::LimitExceeded {
            what: "email".into(),
            limit: MAX_EMAIL_LEN,
            actual: t.len(),
        });
    }
    let parsed = email_address::EmailAddress::from_str(t).map_err(|e| {
        invalid(
            RuleId::InviteMany,
            "email",
            format!("not an email address: {e}"),
        )
    })?;
    let domain = parsed.domain();
    if domain.starts_with('[') {
        return Err(invalid(
            RuleId::InviteMany,
            "email",
            "IP-literal domains are not accepted",
        ));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return Err(invalid(
            RuleId::InviteMany,
            "email",
            "the domain must be a dotted name",
        ));
    }
    if parsed.display_part() != "" {
        return Err(invalid(
            RuleId::InviteMany,
            "email",
            "give the bare address",
        ));
    }
    Ok(t.to_owned())
}

/// The key emails are compared by (R-USR-01).
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Splits an address list on commas, spaces, semicolons and newlines (R-INV-01).
/// Returns the valid addresses in order and a blocker for each invalid or repeated one.
pub fn email_list(raw: &str) -> Result<(Vec<String>, Vec<Blocker>), Blocker> {
    count("email list bytes", raw.len(), MAX_EMAIL_LIST_BYTES)?;
    let parts: Vec<&str> = raw
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .collect();
    count("invitees", parts.len(), MAX_INVITEES)?;
    if parts.is_empty() {
        return Err(invalid(RuleId::InviteMany, "emails", "no address given"));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (i, p) in parts.into_iter().enumerate() {
        match email(p) {
            Ok(e) => {
                if seen.insert(email_key(&e)) {
                    ok.push(e);
                } else {
                    bad.push(Blocker::DuplicateEmail { email: e });
                }
            }
            // The reason names the address by its place in the list.
            Err(Blocker::Invalid {
                rule,
                field,
                reason,
            }) => bad.push(Blocker::Invalid {
                rule,
                field,
                reason: format!("address {} of the list: {reason}", i + 1),
            }),
            Err(b) => bad.push(b),
        }
    }
    Ok((ok, bad))
}

/// A phone number normalised to E.164 (R-NUM-06, R-USR-02). Numbers must be
/// given in international form (`+` and country code).
pub fn phone_number(field: &str, rule: RuleId, input: &str) -> Result<PhoneNumber, Blocker> {
    let t = input.trim();
    if t.len() > MAX_PHONE_INPUT_LEN {
        return Err(Blocker::LimitExceeded {
            what: field.to_owned(),
            limit: MAX_PHONE_INPUT_LEN,
            actual: t.len(),
        });
    }
    if !t.starts_with('+') {
        return Err(invalid(
            rule,
            field,
            "must be in international form (+ and country code)",
        ));
    }
    widen_phone_pattern_cache();
    let parsed = phonenumber::parse(None, t)
        .map_err(|e| invalid(rule, field, format!("not a phone number: {e}")))?;
    if !phonenumber::is_valid(&parsed) {
        return Err(invalid(rule, field, "not a valid number"));
    }
    Ok(PhoneNumber::from(
        parsed.format().mode(phonenumber::Mode::E164).to_string(),
    ))
}

/// An ISO 3166-1 alpha-2 country code (R-USR-02), upper-cased.
pub fn country(input: &str) -> Result<String, Blocker> {
    let t = input.trim().to_ascii_uppercase();
    let ok = t.len() == 2
        && t.bytes().all(|b| b.is_ascii_uppercase())
        && phonenumber::country::Id::from_str(&t).is_ok();
    if ok {
        Ok(t)
    } else {
        Err(invalid(
            RuleId::MobileAndCountry,
            "default_country",
            "not an ISO 3166-1 alpha-2 code",
        ))
    }
}

/// A picture URL: `https://` or `http://`, bounded.
pub fn url(field: &str, input: &str) -> Result<String, Blocker> {
    let t = input.trim();
    count(field, t.len(), MAX_URL_LEN)?;
    if !(t.starts_with("https://") || t.starts_with("http://"))
        || t.chars().any(char::is_whitespace)
    {
        return Err(invalid(
            RuleId::AdminManagedFields,
            field,
            "must be an http(s) URL",
        ));
    }
    Ok(t.to_owned())
}

/// A role slug: 1..=64 of `a-z`, `0-9`, `-`.
pub fn role_slug(input: &str) -> Result<String, Blocker> {
    count("role id", input.len(), MAX_ROLE_ID_LEN)?;
    if input.is_empty()
        || !input
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(invalid(
            RuleId::Input,
            "role",
            format!("{input:?}: use a-z, 0-9 and -"),
        ));
    }
    Ok(input.to_owned())
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xF) as usize] as char);
    }
    s
}

/// The token text handed to the invitee for 32 secret bytes.
pub fn token_text(secret: &[u8; 32]) -> String {
    hex(secret)
}

/// SHA-256 of a token's text: all that is ever recorded (R-INV-03, R-LIFE-07).
pub fn token_hash(token: &str) -> TokenHash {
    TokenHash(hex(&Sha256::digest(token.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers of twenty countries, each validated twice: with
    /// `phonenumber`'s default cache of 100 patterns their ~215 patterns
    /// evicted each other and every validation recompiled them (5–7 ms a
    /// number); widened, they all stay compiled. Counted, not timed.
    #[test]
    fn r_num_06_patterns_of_many_countries_stay_compiled() {
        for _ in 0..2 {
            for n in TWENTY_COUNTRIES_NUMBERS {
                let number = phone_number("number", RuleId::UniqueNumber, n)
                    .unwrap_or_else(|e| panic!("{n}: {e}"));
                assert_eq!(number.as_str(), n, "already E.164");
            }
        }
        let shared = phonenumber::metadata::DATABASE.cache();
        let cache = shared.lock().expect("phonenumber's cache lock");
        assert!(cache.capacity() >= PHONE_PATTERN_CACHE);
        assert!(
            cache.len() > 100,
            "{} patterns kept: no more than phonenumber's default",
            cache.len()
        );
    }
}
