//! Payloads between [`RawPayload`] and `jsonb` without a `serde_json::Value`
//! tree on either side.
//!
//! PostgreSQL's binary form of `jsonb` is a version byte (1) followed by the
//! JSON text; the server converts its internal form to that text (and back)
//! itself. So a payload is written as its text, and read by checking the
//! version byte and validating the text into a `Box<RawValue>` — one pass
//! over the bytes, no tree. Selecting `payload::text` instead would cost the
//! server the same conversion and the client the same validation (BENCHMARKS.md §4).

use bytes::BytesMut;
use serde_json::value::RawValue;
use std::error::Error;
use switchboard_core::store::RawPayload;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

/// The version byte of `jsonb`'s binary form.
const JSONB_VERSION: u8 = 1;

/// A payload written as `jsonb` (or `json`) from its text.
#[derive(Debug)]
pub(crate) struct JsonbIn<'a>(pub(crate) &'a RawPayload);

impl ToSql for JsonbIn<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        if *ty == Type::JSONB {
            out.extend_from_slice(&[JSONB_VERSION]);
        }
        out.extend_from_slice(self.0.get().as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSONB | Type::JSON)
    }

    to_sql_checked!();
}

/// A payload read from `jsonb` (or `json`) as raw JSON text.
pub(crate) struct JsonbOut(pub(crate) RawPayload);

/// Why a stored payload could not be read. Never quotes the payload (it
/// may hold personal data).
#[derive(Debug)]
struct BadPayload(String);

impl std::fmt::Display for BadPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stored payload is not valid JSON: {}", self.0)
    }
}

impl Error for BadPayload {}

impl<'a> FromSql<'a> for JsonbOut {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let text = if *ty == Type::JSONB {
            match raw.split_first() {
                Some((&JSONB_VERSION, text)) => text,
                Some((v, _)) => {
                    return Err(Box::new(BadPayload(format!("unknown jsonb version {v}"))))
                }
                None => return Err(Box::new(BadPayload("empty jsonb".into()))),
            }
        } else {
            raw
        };
        let text =
            std::str::from_utf8(text).map_err(|_| Box::new(BadPayload("not UTF-8".into())))?;
        RawValue::from_string(text.to_owned())
            .map(|raw| JsonbOut(RawPayload::from_raw(raw)))
            .map_err(|e| {
                Box::new(BadPayload(switchboard_core::codec::json_error_shape(&e)))
                    as Box<dyn Error + Sync + Send>
            })
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSONB | Type::JSON)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_binary_form_and_refuses_what_is_not_json() {
        let ok = JsonbOut::from_sql(&Type::JSONB, b"\x01{\"a\": [1, 2]}").expect("reads");
        assert_eq!(ok.0.get(), "{\"a\": [1, 2]}");
        let json = JsonbOut::from_sql(&Type::JSON, b"{\"a\":1}").expect("reads json");
        assert_eq!(json.0.get(), "{\"a\":1}");
        for bad in [
            &b""[..],
            b"\x02{}",
            b"\x01{\"a\":",
            b"\x01\xff",
            b"\x01{} {}",
        ] {
            let e = JsonbOut::from_sql(&Type::JSONB, bad)
                .err()
                .expect("refused");
            assert!(e
                .to_string()
                .starts_with("stored payload is not valid JSON"));
        }
    }

    #[test]
    fn writes_the_version_byte_then_the_text() {
        let p = RawPayload::from(serde_json::json!({"a": 1}));
        let mut out = BytesMut::new();
        JsonbIn(&p).to_sql(&Type::JSONB, &mut out).expect("writes");
        assert_eq!(&out[..], b"\x01{\"a\":1}");
        let mut out = BytesMut::new();
        JsonbIn(&p).to_sql(&Type::JSON, &mut out).expect("writes");
        assert_eq!(&out[..], b"{\"a\":1}");
    }
}
