//! `Debug` without personal data or secrets.
//!
//! `Debug` output ends up in logs, panic messages and tickets, read by
//! operators and kept long after a user's deletion (R-LIFE-06); a token in a
//! log can be replayed (R-INV-03, R-LIFE-07). So no `Debug` of this crate
//! prints an e-mail, a person's name, a mobile number, a job title, a picture,
//! a device name (devices are named after their owner: "Ann's iPhone") or a
//! token. It prints everything else an operator needs: ids, statuses, counts,
//! rule ids, field names, account and role names, the organization's own
//! numbers, and the *shape* of what it hides (`None`, `Some(<redacted>)`,
//! `Clear`).
//!
//! Types holding such values implement `Debug` with `debug_redacted!`, which
//! lists every field (without `..`: a new field does not compile until it is
//! listed, and so judged) and prints those marked `@redacted` through
//! [`Redacted`].
//!
//! ```
//! use switchboard_core::redact::Redacted;
//! let email = String::from("ann@northwind.example");
//! assert_eq!(format!("{:?}", Redacted(&email)), "<redacted>");
//! assert_eq!(format!("{:?}", Redacted(&Some(email))), "Some(<redacted>)");
//! assert_eq!(format!("{:?}", Redacted(&None::<String>)), "None");
//! ```

use crate::command::Edit;
use crate::ids::PhoneNumber;
use std::collections::BTreeMap;
use std::fmt;

/// What a redacted value prints instead of its content.
pub const REDACTED: &str = "<redacted>";

/// Shows a value's shape in `Debug`, never its content.
pub struct Redacted<'a, T: ?Sized>(pub &'a T);

impl<T: Redact + ?Sized> fmt::Debug for Redacted<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_redacted(f)
    }
}

/// A value that can be shown redacted: its shape (set or not, cleared, how
/// many entries), never its content.
pub trait Redact {
    /// Writes the redacted form.
    fn fmt_redacted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl Redact for str {
    fn fmt_redacted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Redact for String {
    fn fmt_redacted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Redact for PhoneNumber {
    fn fmt_redacted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Redact> Redact for Option<T> {
    fn fmt_redacted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Some(v) => f.debug_tuple("Some").field(&Redacted(v)).finish(),
            None => f.write_str("None"),
        }
    }
}

impl<T: Redact> Redact for Edit<T> {
    fn fmt_redacted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Edit::Set(v) => f.debug_tuple("Set").field(&Redacted(v)).finish(),
            Edit::Clear => f.write_str("Clear"),
        }
    }
}

/// A map keyed by personal values (an index by e-mail): the keys redacted,
/// the values shown.
impl<K: Redact, V: fmt::Debug> Redact for BTreeMap<K, V> {
    fn fmt_redacted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (Redacted(k), v)))
            .finish()
    }
}

/// Implements `Debug` for a struct or an enum, listing every field; fields
/// marked `@redacted` print through [`Redacted`].
///
/// ```ignore
/// debug_redacted!(struct Profile { @redacted email, default_country });
/// debug_redacted!(enum Command { SignIn { user, @redacted device_name }, Offboard(plan), Ping });
/// ```
macro_rules! debug_redacted {
    (struct $ty:ident { $($(@$mark:ident)? $field:ident),* $(,)? }) => {
        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let $ty { $($field),* } = self;
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), $crate::redact::debug_redacted!(@value $($mark)? $field)))*
                    .finish()
            }
        }
    };
    (enum $ty:ident {
        $($variant:ident
            $({ $($(@$mark:ident)? $field:ident),* $(,)? })?
            $(( $($(@$tmark:ident)? $tfield:ident),* $(,)? ))?
        ),* $(,)?
    }) => {
        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match self {
                    $($ty::$variant $({ $($field),* })? $(( $($tfield),* ))? => {
                        $crate::redact::debug_redacted!(@variant f $variant
                            $({ $($(@$mark)? $field),* })?
                            $(( $($(@$tmark)? $tfield),* ))?
                        )
                    })*
                }
            }
        }
    };
    (@variant $f:ident $variant:ident { $($(@$mark:ident)? $field:ident),* }) => {
        $f.debug_struct(stringify!($variant))
            $(.field(stringify!($field), $crate::redact::debug_redacted!(@value $($mark)? $field)))*
            .finish()
    };
    (@variant $f:ident $variant:ident ( $($(@$mark:ident)? $field:ident),* )) => {
        $f.debug_tuple(stringify!($variant))
            $(.field($crate::redact::debug_redacted!(@value $($mark)? $field)))*
            .finish()
    };
    (@variant $f:ident $variant:ident) => {
        $f.write_str(stringify!($variant))
    };
    (@value $field:ident) => {
        $field
    };
    (@value redacted $field:ident) => {
        &$crate::redact::Redacted($field)
    };
}

pub(crate) use debug_redacted;

#[cfg(test)]
mod tests {
    use super::*;

    struct Person {
        id: u32,
        email: String,
        mobile: Option<PhoneNumber>,
    }
    debug_redacted!(struct Person { id, @redacted email, @redacted mobile });

    enum Change {
        Email { id: u32, email: Edit<String> },
        Both(u32, String),
        Nothing,
    }
    debug_redacted!(enum Change { Email { id, @redacted email }, Both(id, @redacted email), Nothing });

    #[test]
    fn shows_the_shape_and_hides_the_content() {
        let p = Person {
            id: 7,
            email: "ann@northwind.example".into(),
            mobile: None,
        };
        assert_eq!(
            format!("{p:?}"),
            "Person { id: 7, email: <redacted>, mobile: None }"
        );
        let set = Change::Email {
            id: 7,
            email: Edit::Set("ann@northwind.example".into()),
        };
        assert_eq!(
            format!("{set:?}"),
            "Email { id: 7, email: Set(<redacted>) }"
        );
        let both = Change::Both(7, "ann@northwind.example".into());
        assert_eq!(format!("{both:?}"), "Both(7, <redacted>)");
        assert_eq!(format!("{:?}", Change::Nothing), "Nothing");
        let index: BTreeMap<String, u32> = [("ann@northwind.example".to_owned(), 7)].into();
        assert_eq!(format!("{:?}", Redacted(&index)), "{<redacted>: 7}");
    }
}
