//! [`DecodeError`]: one precise, non-allocating variant per way a frame can be wrong.
//!
//! Richer than smoltcp's unit error on purpose: clusters run mixed versions during rolling
//! upgrades and see other programs' datagrams on shared multicast groups, and an operator has
//! to tell "truncated", "foreign magic" and "newer version" apart from one log line.

use core::fmt;

/// Why a byte buffer is not a valid totem frame (or packed payload).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DecodeError {
    /// The buffer ends before the structure does.
    Truncated {
        /// Bytes the structure needs.
        need: usize,
        /// Bytes the buffer has.
        have: usize,
    },
    /// The frame does not start with totem's magic (another program, or corosync).
    BadMagic(u16),
    /// A wire version outside what this build supports.
    UnsupportedVersion(u8),
    /// A message type this build does not know.
    UnknownType(u8),
    /// Header flag bits this wire version does not define.
    UnknownFlags(u16),
    /// A list longer than the protocol allows.
    TooManyEntries {
        /// The list.
        field: &'static str,
        /// Its maximum length.
        max: usize,
    },
    /// Bytes left over after the structure ended.
    TrailingBytes(usize),
    /// A field holds a value that is never valid (node id 0, a flag byte of 7, ...).
    InvalidValue {
        /// The field.
        field: &'static str,
        /// The value found, widened to `u64`.
        value: u64,
    },
    /// A version range whose minimum is above its maximum.
    BadVersionRange {
        /// Claimed minimum.
        min: u8,
        /// Claimed maximum.
        max: u8,
    },
    /// A fragment record in a position where it cannot be (packing format).
    MisplacedFragment {
        /// Index of the offending record in its frame.
        index: u16,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { need, have } => {
                write!(f, "truncated: need {need} bytes, have {have}")
            }
            Self::BadMagic(m) => write!(f, "bad magic {m:#06x} (not a totem frame)"),
            Self::UnsupportedVersion(v) => write!(
                f,
                "unsupported wire version {v} (this build speaks {}..={})",
                crate::WIRE_VERSION_MIN,
                crate::WIRE_VERSION_MAX
            ),
            Self::UnknownType(t) => write!(f, "unknown message type {t}"),
            Self::UnknownFlags(fl) => write!(f, "unknown header flags {fl:#06x}"),
            Self::TooManyEntries { field, max } => {
                write!(f, "too many entries in {field} (max {max})")
            }
            Self::TrailingBytes(n) => write!(f, "{n} trailing bytes after the message"),
            Self::InvalidValue { field, value } => write!(f, "invalid {field}: {value}"),
            Self::BadVersionRange { min, max } => {
                write!(f, "bad version range {min}..={max}")
            }
            Self::MisplacedFragment { index } => {
                write!(f, "fragment record {index} is not at the edge of its frame")
            }
        }
    }
}

impl core::error::Error for DecodeError {}

/// Shorthand for this crate's results.
pub type Result<T> = core::result::Result<T, DecodeError>;

/// Why a frame could not be written.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EmitError {
    /// The output buffer is too small for the frame.
    BufferTooSmall {
        /// Bytes the frame needs.
        need: usize,
        /// Bytes the buffer has.
        have: usize,
    },
    /// A list does not have the shape the wire requires (unsorted, too long, id 0).
    InvalidList(&'static str),
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BufferTooSmall { need, have } => {
                write!(f, "buffer too small: need {need} bytes, have {have}")
            }
            Self::InvalidList(l) => write!(f, "{l} is not strictly ascending without id 0"),
        }
    }
}

impl core::error::Error for EmitError {}
