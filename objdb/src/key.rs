//! Key names: dotted (`totem.token`, `nodelist.node.0.ring0_addr`), 3 to 255 bytes of
//! `[a-zA-Z0-9._/:-]` (corosync's `CMAP_KEYNAME_MINLEN`/`MAXLEN` and `icmap_is_valid_name`).
//! Prefixes (for iteration and tracking) use the same characters and may be shorter,
//! empty included (everything).

use core::fmt;

/// Shortest key name, in bytes.
pub const KEY_MIN_LEN: usize = 3;
/// Longest key name (and prefix), in bytes.
pub const KEY_MAX_LEN: usize = 255;

/// Why a string is not a key name (or a prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum KeyError {
    /// Fewer than [`KEY_MIN_LEN`] bytes.
    TooShort(usize),
    /// More than [`KEY_MAX_LEN`] bytes.
    TooLong(usize),
    /// A character outside `[a-zA-Z0-9._/:-]`, at this byte offset.
    InvalidChar {
        /// Byte offset.
        at: usize,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort(n) => write!(f, "key name of {n} bytes (at least {KEY_MIN_LEN})"),
            Self::TooLong(n) => write!(f, "key name of {n} bytes (at most {KEY_MAX_LEN})"),
            Self::InvalidChar { at } => write!(
                f,
                "invalid character at byte {at} of the key name (allowed: a-z A-Z 0-9 . _ - / :)"
            ),
        }
    }
}

impl core::error::Error for KeyError {}

fn valid_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b':')
}

/// Checks a key name.
///
/// # Errors
/// [`KeyError`] saying what is wrong.
pub fn check_key(key: &str) -> Result<(), KeyError> {
    if key.len() < KEY_MIN_LEN {
        return Err(KeyError::TooShort(key.len()));
    }
    check_prefix(key)
}

/// Checks a prefix: as a key name, but any length up to [`KEY_MAX_LEN`], empty included.
///
/// # Errors
/// [`KeyError`] saying what is wrong.
pub fn check_prefix(prefix: &str) -> Result<(), KeyError> {
    if prefix.len() > KEY_MAX_LEN {
        return Err(KeyError::TooLong(prefix.len()));
    }
    match prefix.bytes().position(|b| !valid_char(b)) {
        Some(at) => Err(KeyError::InvalidChar { at }),
        None => Ok(()),
    }
}
