//! Where the daemon listens: `$TOTEM_SOCKET`, else `/var/lib/totem/totemd.sock` (the
//! socket in totemd's default `state_dir`), the same rule as `totemctl`.

use std::path::PathBuf;

/// The environment variable naming the daemon's socket (`cargo xtask cluster exec` sets it).
pub const SOCKET_ENV: &str = "TOTEM_SOCKET";

/// The socket of a daemon with the default `system.state_dir`.
pub const DEFAULT_SOCKET: &str = "/var/lib/totem/totemd.sock";

/// `$TOTEM_SOCKET` if set and not empty, else [`DEFAULT_SOCKET`].
pub fn default_socket() -> PathBuf {
    match std::env::var_os(SOCKET_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_SOCKET),
    }
}
