//! Logging shim: `trace!`/`debug!`/`warn!` expand to `defmt`, to `log`, or to nothing while
//! still type-checking their arguments, so this crate logs the same way on firmware and on
//! hosts without depending on either. Declared first in `lib.rs` with `#[macro_use]`, so
//! every later module sees the macros by textual scope (embassy's way; a `pub(crate) use`
//! re-export of a macro named `warn` is ambiguous with the built-in `#[warn]` attribute).
//!
//! Format strings use plain `{}` with arguments that implement both `Display` (for `log` and
//! the silent arm) and `defmt::Format` (for `defmt`), so one call site serves all three arms.
#![allow(unused_macros)]

// Features unify across a Cargo build, so this catches a firmware crate and a host crate
// asking for different loggers in one graph; smoltcp and embassy reject it the same way.
#[cfg(all(feature = "defmt", feature = "log"))]
compile_error!(
    "features `defmt` and `log` are mutually exclusive: pick the one logger of your build"
);

macro_rules! trace {
    ($($arg:tt)+) => {{
        #[cfg(feature = "log")] ::log::trace!($($arg)+);
        #[cfg(feature = "defmt")] ::defmt::trace!($($arg)+);
        #[cfg(not(any(feature = "log", feature = "defmt")))] { let _ = format_args!($($arg)+); }
    }};
}

macro_rules! debug {
    ($($arg:tt)+) => {{
        #[cfg(feature = "log")] ::log::debug!($($arg)+);
        #[cfg(feature = "defmt")] ::defmt::debug!($($arg)+);
        #[cfg(not(any(feature = "log", feature = "defmt")))] { let _ = format_args!($($arg)+); }
    }};
}

macro_rules! warn {
    ($($arg:tt)+) => {{
        #[cfg(feature = "log")] ::log::warn!($($arg)+);
        #[cfg(feature = "defmt")] ::defmt::warn!($($arg)+);
        #[cfg(not(any(feature = "log", feature = "defmt")))] { let _ = format_args!($($arg)+); }
    }};
}
