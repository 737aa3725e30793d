//! Typed values: corosync cmap's twelve types (`cmap_value_types_t`, numbered 1..=12 the
//! same way), their short names as `corosync-cmapctl` prints them (`u32`, `str`, ...),
//! parsing from text (the CLI) and printing.
//!
//! Equality is bitwise for `Float` and `Double` (a NaN equals the same NaN, `0.0` and `-0.0`
//! differ), as corosync compares stored values byte by byte to decide whether a write
//! changed anything: so `Value` is `Eq`, and writing the same bits twice never notifies.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// The type of a [`Value`], with corosync's code points (`CMAP_VALUETYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ValueType {
    /// `i8`.
    I8,
    /// `u8`.
    U8,
    /// `i16`.
    I16,
    /// `u16`.
    U16,
    /// `i32`.
    I32,
    /// `u32`.
    U32,
    /// `i64`.
    I64,
    /// `u64`.
    U64,
    /// `flt` (f32).
    Float,
    /// `dbl` (f64).
    Double,
    /// `str` (UTF-8 here; corosync stores NUL-terminated bytes).
    String,
    /// `bin` (any bytes).
    Binary,
}

impl ValueType {
    /// Every type, in code-point order.
    pub const ALL: [Self; 12] = [
        Self::I8,
        Self::U8,
        Self::I16,
        Self::U16,
        Self::I32,
        Self::U32,
        Self::I64,
        Self::U64,
        Self::Float,
        Self::Double,
        Self::String,
        Self::Binary,
    ];

    /// corosync's code point (`CMAP_VALUETYPE_INT8` = 1 ... `BINARY` = 12).
    pub const fn code(self) -> u8 {
        match self {
            Self::I8 => 1,
            Self::U8 => 2,
            Self::I16 => 3,
            Self::U16 => 4,
            Self::I32 => 5,
            Self::U32 => 6,
            Self::I64 => 7,
            Self::U64 => 8,
            Self::Float => 9,
            Self::Double => 10,
            Self::String => 11,
            Self::Binary => 12,
        }
    }

    /// The type of code point `code`, if there is one.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The name `corosync-cmapctl` prints and takes: `i8 u8 i16 u16 i32 u32 i64 u64 flt dbl
    /// str bin`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::I8 => "i8",
            Self::U8 => "u8",
            Self::I16 => "i16",
            Self::U16 => "u16",
            Self::I32 => "i32",
            Self::U32 => "u32",
            Self::I64 => "i64",
            Self::U64 => "u64",
            Self::Float => "flt",
            Self::Double => "dbl",
            Self::String => "str",
            Self::Binary => "bin",
        }
    }

    /// The type called `name` (see [`ValueType::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether values of this type can be incremented and decremented.
    pub const fn is_integer(self) -> bool {
        !matches!(
            self,
            Self::Float | Self::Double | Self::String | Self::Binary
        )
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A typed value.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Value {
    /// `i8`.
    I8(i8),
    /// `u8`.
    U8(u8),
    /// `i16`.
    I16(i16),
    /// `u16`.
    U16(u16),
    /// `i32`.
    I32(i32),
    /// `u32`.
    U32(u32),
    /// `i64`.
    I64(i64),
    /// `u64`.
    U64(u64),
    /// `flt`.
    Float(f32),
    /// `dbl`.
    Double(f64),
    /// `str`.
    String(String),
    /// `bin`.
    Binary(Vec<u8>),
}

impl PartialEq for Value {
    /// Bitwise for floats (see the module docs).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::I8(a), Self::I8(b)) => a == b,
            (Self::U8(a), Self::U8(b)) => a == b,
            (Self::I16(a), Self::I16(b)) => a == b,
            (Self::U16(a), Self::U16(b)) => a == b,
            (Self::I32(a), Self::I32(b)) => a == b,
            (Self::U32(a), Self::U32(b)) => a == b,
            (Self::I64(a), Self::I64(b)) => a == b,
            (Self::U64(a), Self::U64(b)) => a == b,
            (Self::Float(a), Self::Float(b)) => a.to_bits() == b.to_bits(),
            (Self::Double(a), Self::Double(b)) => a.to_bits() == b.to_bits(),
            (Self::String(a), Self::String(b)) => a == b,
            (Self::Binary(a), Self::Binary(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Value {}

/// Why text is not a value of the asked type (`corosync-cmapctl`: "abc is not valid u32
/// type value").
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ParseValueError {
    /// The text.
    pub text: String,
    /// The type asked for.
    pub ty: ValueType,
}

impl fmt::Display for ParseValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not valid {} type value", self.text, self.ty)?;
        if self.ty == ValueType::Binary {
            f.write_str(" (give bytes as hex digits, e.g. 00ff10)")?;
        }
        Ok(())
    }
}

impl core::error::Error for ParseValueError {}

impl Value {
    /// The value's type.
    pub const fn value_type(&self) -> ValueType {
        match self {
            Self::I8(_) => ValueType::I8,
            Self::U8(_) => ValueType::U8,
            Self::I16(_) => ValueType::I16,
            Self::U16(_) => ValueType::U16,
            Self::I32(_) => ValueType::I32,
            Self::U32(_) => ValueType::U32,
            Self::I64(_) => ValueType::I64,
            Self::U64(_) => ValueType::U64,
            Self::Float(_) => ValueType::Float,
            Self::Double(_) => ValueType::Double,
            Self::String(_) => ValueType::String,
            Self::Binary(_) => ValueType::Binary,
        }
    }

    /// Bytes of payload (1 to 8 for numbers, the length for strings and binaries): what a
    /// tracker's memory bound counts.
    pub fn len(&self) -> usize {
        match self {
            Self::I8(_) | Self::U8(_) => 1,
            Self::I16(_) | Self::U16(_) => 2,
            Self::I32(_) | Self::U32(_) | Self::Float(_) => 4,
            Self::I64(_) | Self::U64(_) | Self::Double(_) => 8,
            Self::String(s) => s.len(),
            Self::Binary(b) => b.len(),
        }
    }

    /// Whether this is an empty string or binary.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Parses `text` as a value of type `ty`: integers in decimal, floats as Rust writes
    /// them, strings as they are, binaries as hex digits (`00ff10`; empty is no bytes).
    ///
    /// # Errors
    /// [`ParseValueError`] when `text` is not a value of that type (out of range included).
    pub fn parse(ty: ValueType, text: &str) -> Result<Self, ParseValueError> {
        let err = || ParseValueError {
            text: text.to_string(),
            ty,
        };
        let t = text.trim();
        Ok(match ty {
            ValueType::I8 => Self::I8(t.parse().map_err(|_| err())?),
            ValueType::U8 => Self::U8(t.parse().map_err(|_| err())?),
            ValueType::I16 => Self::I16(t.parse().map_err(|_| err())?),
            ValueType::U16 => Self::U16(t.parse().map_err(|_| err())?),
            ValueType::I32 => Self::I32(t.parse().map_err(|_| err())?),
            ValueType::U32 => Self::U32(t.parse().map_err(|_| err())?),
            ValueType::I64 => Self::I64(t.parse().map_err(|_| err())?),
            ValueType::U64 => Self::U64(t.parse().map_err(|_| err())?),
            ValueType::Float => Self::Float(t.parse().map_err(|_| err())?),
            ValueType::Double => Self::Double(t.parse().map_err(|_| err())?),
            ValueType::String => Self::String(text.to_string()),
            ValueType::Binary => Self::Binary(from_hex(t).ok_or_else(err)?),
        })
    }

    /// The value as a signed 128-bit integer, if it is an integer (any width).
    pub fn as_integer(&self) -> Option<i128> {
        Some(match *self {
            Self::I8(v) => v.into(),
            Self::U8(v) => v.into(),
            Self::I16(v) => v.into(),
            Self::U16(v) => v.into(),
            Self::I32(v) => v.into(),
            Self::U32(v) => v.into(),
            Self::I64(v) => v.into(),
            Self::U64(v) => v.into(),
            _ => return None,
        })
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value plus `delta`, wrapping at its type's bounds (corosync's `cmap_inc` and
    /// `cmap_dec` do not detect overflow either); `None` for non-integers.
    pub fn wrapping_add(&self, delta: i8) -> Option<Self> {
        Some(match *self {
            Self::I8(v) => Self::I8(v.wrapping_add(delta)),
            Self::U8(v) => Self::U8(v.wrapping_add_signed(delta)),
            Self::I16(v) => Self::I16(v.wrapping_add(delta.into())),
            Self::U16(v) => Self::U16(v.wrapping_add_signed(delta.into())),
            Self::I32(v) => Self::I32(v.wrapping_add(delta.into())),
            Self::U32(v) => Self::U32(v.wrapping_add_signed(delta.into())),
            Self::I64(v) => Self::I64(v.wrapping_add(delta.into())),
            Self::U64(v) => Self::U64(v.wrapping_add_signed(delta.into())),
            _ => return None,
        })
    }
}

impl fmt::Display for Value {
    /// Numbers in decimal, strings as they are, binaries in lowercase hex (what
    /// [`Value::parse`] reads back).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::I8(v) => write!(f, "{v}"),
            Self::U8(v) => write!(f, "{v}"),
            Self::I16(v) => write!(f, "{v}"),
            Self::U16(v) => write!(f, "{v}"),
            Self::I32(v) => write!(f, "{v}"),
            Self::U32(v) => write!(f, "{v}"),
            Self::I64(v) => write!(f, "{v}"),
            Self::U64(v) => write!(f, "{v}"),
            Self::Float(v) => write!(f, "{v}"),
            Self::Double(v) => write!(f, "{v}"),
            Self::String(s) => f.write_str(s),
            Self::Binary(b) => b.iter().try_for_each(|x| write!(f, "{x:02x}")),
        }
    }
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            // Two hex digits: at most 0xff.
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

macro_rules! conversions {
    ($($variant:ident($t:ty)),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Self::$variant(v)
            }
        }

        impl TryFrom<Value> for $t {
            type Error = ValueType;

            /// The value if it has exactly this type; else its type.
            fn try_from(v: Value) -> Result<Self, ValueType> {
                match v {
                    Value::$variant(x) => Ok(x),
                    other => Err(other.value_type()),
                }
            }
        }
    )*};
}

conversions! {
    I8(i8), U8(u8), I16(i16), U16(u16), I32(i32), U32(u32), I64(i64), U64(u64),
    Float(f32), Double(f64), String(String), Binary(Vec<u8>),
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::String(v.to_string())
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Self::Binary(v.to_vec())
    }
}
