//! Logging shim (STYLE point 12): `debug!`, `info!`, `warn!` and `error!` go to `log` or
//! `defmt`, whichever feature the integrator picked, or nowhere (the arguments are still
//! type-checked). The four share one body, `log_at!`, so they cannot drift apart.
//! Declared first in `lib.rs` with `#[macro_use]`.
#![allow(unused_macros)]

#[cfg(all(feature = "defmt", feature = "log"))]
compile_error!("features `log` and `defmt` are mutually exclusive: a build has one logger");

/// Logs at `$level` through whichever logger the build has.
macro_rules! log_at {
    ($level:ident, $($arg:tt)+) => {{
        #[cfg(feature = "log")]
        ::log::$level!($($arg)+);
        #[cfg(feature = "defmt")]
        ::defmt::$level!($($arg)+);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        {
            let _ = format_args!($($arg)+);
        }
    }};
}

macro_rules! debug {
    ($($arg:tt)+) => { log_at!(debug, $($arg)+) };
}

macro_rules! info {
    ($($arg:tt)+) => { log_at!(info, $($arg)+) };
}

macro_rules! warn {
    ($($arg:tt)+) => { log_at!(warn, $($arg)+) };
}

macro_rules! error {
    ($($arg:tt)+) => { log_at!(error, $($arg)+) };
}
