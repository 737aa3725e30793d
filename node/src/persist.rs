//! The ring seq a node used last, kept in its state directory so that a restarted node
//! never reuses a ring id (corosync keeps `ringid_<nodeid>` the same way, PR #495).
//!
//! Written atomically (a temporary file, fsync, rename, fsync of the directory), so a crash
//! leaves either the old or the new value, never a torn one.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use totem_proto::NodeId;

/// The file holding `node`'s last ring seq under `state_dir`.
pub fn ring_seq_path(state_dir: &Path, node: NodeId) -> PathBuf {
    state_dir.join(format!("ringid_{node}"))
}

/// The persisted ring seq, 0 if there is none yet.
///
/// # Errors
/// An unreadable file, or one that does not hold a number (never silently 0: reusing ring
/// ids after a restart breaks virtual synchrony).
pub fn load_ring_seq(path: &Path) -> io::Result<u64> {
    match fs::read_to_string(path) {
        Ok(s) => s.trim().parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} does not hold a ring seq: {:?} (delete it only if no other node runs)",
                    path.display(),
                    s.trim()
                ),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Stores `seq` durably.
///
/// # Errors
/// Any I/O error; the caller must not go on using the ring seq if this fails.
pub fn store_ring_seq(path: &Path, seq: u64) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        writeln!(f, "{seq}")?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = std::env::temp_dir().join(format!("totem-persist-{}", std::process::id()));
        let path = ring_seq_path(&dir, NodeId(3));
        assert_eq!(load_ring_seq(&path).unwrap(), 0);
        store_ring_seq(&path, 42).unwrap();
        assert_eq!(load_ring_seq(&path).unwrap(), 42);
        store_ring_seq(&path, 46).unwrap();
        assert_eq!(load_ring_seq(&path).unwrap(), 46);
        fs::write(&path, "garbage").unwrap();
        assert!(load_ring_seq(&path).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
