//! Logging shim: `trace!`/`debug!`/`info!`/`warn!`/`error!` expand to `defmt`, `log`, or to
//! nothing (arguments still type-checked), so the crate logs the same way on firmware and
//! hosts without depending on either. Declared first in `lib.rs` with `#[macro_use]` so every
//! module sees the macros (textual scope, as embassy's `fmt.rs`).
#![allow(unused_macros)]

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

macro_rules! info {
    ($($arg:tt)+) => {{
        #[cfg(feature = "log")] ::log::info!($($arg)+);
        #[cfg(feature = "defmt")] ::defmt::info!($($arg)+);
        #[cfg(not(any(feature = "log", feature = "defmt")))] { let _ = format_args!($($arg)+); }
    }};
}

macro_rules! error {
    ($($arg:tt)+) => {{
        #[cfg(feature = "log")] ::log::error!($($arg)+);
        #[cfg(feature = "defmt")] ::defmt::error!($($arg)+);
        #[cfg(not(any(feature = "log", feature = "defmt")))] { let _ = format_args!($($arg)+); }
    }};
}
