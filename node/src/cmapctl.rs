//! `totemctl cmap ...`: corosync-cmapctl's jobs, through the cmap service and the client
//! library (`totem_client::cmap`), as any application would use it.
//!
//! ```text
//! totemctl cmap list [PREFIX]         every key under PREFIX: `key (type) = value` lines
//! totemctl cmap get KEY...            the same line for each KEY
//! totemctl cmap set KEY TYPE VALUE    TYPE: i8 u8 i16 u16 i32 u32 i64 u64 flt dbl str bin
//! totemctl cmap del KEY...            delete
//! totemctl cmap track [PREFIX]        print changes until interrupted:
//!                                     `create> key (type) = value`, `modify> ...` (new value),
//!                                     `delete> ...` (last value), `lost> N changes ...`
//! ```
//!
//! Exit status: 0 done; 1 the daemon refused or cannot be reached (the message names the
//! `cs_error_t`, e.g. `Can't get key x.y. Error CS_ERR_NOT_EXIST`, and the daemon's
//! reason); 2 bad arguments (`abc is not valid u32 type value`, as corosync-cmapctl).

use core::time::Duration;
use std::io::Write as _;
use std::path::Path;

use totem_client::Error;
use totem_client::cmap::{Cmap, Event, Options, TrackFlags, Value, ValueType, format_entry};

/// Usage of `totemctl cmap`.
pub const USAGE: &str =
    "  cmap list [PREFIX]       keys under PREFIX (default all): `key (type) = value` lines
  cmap get KEY...          one `key (type) = value` line per key
  cmap set KEY TYPE VALUE  TYPE: i8 u8 i16 u16 i32 u32 i64 u64 flt dbl str bin (hex)
  cmap del KEY...          delete keys
  cmap track [PREFIX]      print changes under PREFIX until interrupted";

/// What a `totemctl cmap` run ends with: the exit status and what to print on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// 1: refused or unreachable; 2: bad arguments.
    pub status: u8,
    /// The message.
    pub message: String,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        status: 2,
        message: format!("{}\nusage:\n{USAGE}", message.into()),
    }
}

fn refused(what: &str, e: &Error, cmap: Option<&Cmap>) -> Failure {
    let reason = cmap.map(Cmap::last_error_reason).unwrap_or_default();
    let mut message = format!("{what}. Error {}", e.cs_name());
    if !reason.is_empty() {
        message = format!("{message}: {reason}");
    } else if matches!(e, Error::Connect(_) | Error::Disconnected | Error::Ipc(_)) {
        message = format!("{message}: {e}");
    }
    Failure { status: 1, message }
}

/// Parses the arguments after `cmap` into (request, the rest), checking their count and
/// the value of a `set`, before anything is sent.
fn check(args: &[String]) -> Result<(&str, &[String]), Failure> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err(usage("cmap: what to do?"));
    };
    let ok = match cmd.as_str() {
        "list" | "track" => rest.len() <= 1,
        "get" | "del" => !rest.is_empty(),
        "set" => rest.len() == 3,
        other => return Err(usage(format!("cmap: unknown command {other:?}"))),
    };
    if !ok {
        return Err(usage(format!("cmap {cmd}: wrong number of arguments")));
    }
    Ok((cmd, rest))
}

/// The value `set` would write.
fn parse_value(ty: &str, text: &str) -> Result<Value, Failure> {
    let ty = ValueType::from_name(ty).ok_or_else(|| {
        usage(format!(
            "unknown type {ty:?} (one of i8 u8 i16 u16 i32 u32 i64 u64 flt dbl str bin)"
        ))
    })?;
    Value::parse(ty, text).map_err(|e| Failure {
        status: 2,
        message: e.to_string(),
    })
}

/// Runs `totemctl cmap <args>` against the daemon at `socket`, printing to stdout.
///
/// # Errors
/// A [`Failure`] with the exit status and message.
pub fn run(socket: &Path, timeout: Duration, args: &[String]) -> Result<(), Failure> {
    let (cmd, rest) = check(args)?;
    let value = match (cmd, rest) {
        ("set", [_, ty, text]) => Some(parse_value(ty, text)?),
        _ => None,
    };
    let options = Options::new().socket(socket).connect_timeout(timeout);
    let mut cmap = Cmap::initialize_with(&options).map_err(|e| {
        refused(
            &format!("Can't initialize cmap at {}", socket.display()),
            &e,
            None,
        )
    })?;
    let out = std::io::stdout();
    let mut out = out.lock();
    match (cmd, rest) {
        ("list", _) => {
            let prefix = rest.first().map_or("", String::as_str);
            for item in cmap.iter(prefix) {
                let (k, v) = item.map_err(|e| refused("Can't list keys", &e, None))?;
                let _ = writeln!(out, "{}", format_entry(&k, &v));
            }
        }
        ("get", keys) => {
            for key in keys {
                match cmap.get(key) {
                    Ok(v) => {
                        let _ = writeln!(out, "{}", format_entry(key, &v));
                    }
                    Err(e) => {
                        return Err(refused(&format!("Can't get key {key}"), &e, Some(&cmap)));
                    }
                }
            }
        }
        ("set", [key, ..]) => {
            let value = value.unwrap_or(Value::U8(0));
            cmap.set(key, value)
                .map_err(|e| refused(&format!("Can't set key {key}"), &e, Some(&cmap)))?;
        }
        ("del", keys) => {
            for key in keys {
                cmap.delete(key)
                    .map_err(|e| refused(&format!("Can't delete key {key}"), &e, Some(&cmap)))?;
            }
        }
        ("track", _) => {
            let prefix = rest.first().map_or("", String::as_str);
            cmap.track_add(prefix, TrackFlags::ALL_PREFIX)
                .map_err(|e| refused(&format!("Can't track {prefix:?}"), &e, Some(&cmap)))?;
            loop {
                let ev = cmap
                    .next_event(None)
                    .map_err(|e| refused("Tracking ended", &e, None))?;
                let line = match ev {
                    Some(Event::Changed {
                        kind,
                        key,
                        new,
                        old,
                        ..
                    }) => match new.or(old) {
                        Some(v) => format!("{}> {}", kind.name(), format_entry(&key, &v)),
                        None => continue,
                    },
                    Some(Event::Lost { count, .. }) => format!(
                        "lost> {count} changes (the tracker fell behind; re-read with `totemctl cmap list`)"
                    ),
                    Some(_) | None => continue,
                };
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    // stdout closed (a pipe reader went away): nothing more to do.
                    return Ok(());
                }
            }
        }
        _ => return Err(usage("cmap: bad arguments")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn arguments_are_checked_before_anything_is_sent() {
        let sock = Path::new("/nonexistent/totemd.sock");
        let t = Duration::from_millis(10);
        for bad in [
            &[][..],
            &["frob"][..],
            &["get"][..],
            &["set", "a.b", "u32"][..],
            &["list", "a", "b"][..],
        ] {
            let e = run(sock, t, &args(bad)).unwrap_err();
            assert_eq!(e.status, 2, "{bad:?}: {}", e.message);
            assert!(e.message.contains("usage"), "{}", e.message);
        }
        let e = run(sock, t, &args(&["set", "a.b", "u32", "abc"])).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (2, "abc is not valid u32 type value")
        );
        let e = run(sock, t, &args(&["set", "a.b", "u33", "1"])).unwrap_err();
        assert!(e.message.contains("unknown type"));
        // Good arguments, no daemon: status 1 and the reason.
        let e = run(sock, t, &args(&["get", "a.b"])).unwrap_err();
        assert_eq!(e.status, 1);
        assert!(
            e.message.starts_with("Can't initialize cmap"),
            "{}",
            e.message
        );
    }
}
