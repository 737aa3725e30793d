//! Logging for totemd: `tracing` with a stderr (and optional file) writer, with the `log`
//! facade that the core crates use bridged in (`tracing-log`), so their lines appear too.

use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

use crate::config::{DebugLevel, Logging};

/// Installs the global subscriber. `TOTEM_LOG` (an `EnvFilter` directive such as
/// `totem_ring=debug`) overrides the level from the config.
///
/// # Errors
/// The log file cannot be opened.
pub fn init(cfg: &Logging) -> std::io::Result<()> {
    // ipc-shm logs each connection's end at info: with `totemctl status` polled every
    // second that floods the log, so below debug only its warnings show (refusals,
    // corrupt rings); the daemon logs service clients' ends itself.
    let level = match cfg.debug {
        DebugLevel::Off => "info,ipc_shm=warn",
        DebugLevel::On => "debug",
        DebugLevel::Trace => "trace",
    };
    let filter = EnvFilter::try_from_env("TOTEM_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    // The core crates log through `log`; route it into tracing.
    let _ = tracing_log::LogTracer::init();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let result = match (&cfg.logfile, cfg.to_logfile) {
        (Some(path), true) => {
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            builder
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .try_init()
        }
        _ => builder
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
    Ok(())
}
