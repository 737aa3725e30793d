//! `cargo xtask tidy`: rules of the source tree that neither rustc nor clippy checks.
//!
//! * Every `.rs` file of every crate under the root (each directory with a `Cargo.toml` that
//!   has a `[package]`, including nostd-check and xtask) in `src/`, `tests/`, `benches/`,
//!   `examples/` and its `build.rs` has a `//!` doc as its first non-empty line (STYLE
//!   point 13, rust-analyzer's tidy test). `fuzz/` is excluded: another workspace, nightly.
//! * No `HashMap`/`HashSet` in the core crates' `src/` (STYLE point 9: their iteration order
//!   depends on a random seed, which breaks replay-by-seed). Comment lines are ignored.
//! * `nostd-check/Cargo.lock` exists (STYLE: committed, so the proof is reproducible).
//!
//! All violations are reported as `path:line: what`, then the task fails.

use std::fs;
use std::path::{Path, PathBuf};

use crate::workspace::{CORE_CRATES, NOSTD_CHECK_DIR, root};

/// Directories never searched for crates: build output, VCS data, the nightly fuzz
/// workspace (its targets are written and checked on their own schedule).
const SKIP_DIRS: &[&str] = &["target", "fuzz", "node_modules"];

/// Sub-directories of a crate whose `.rs` files must open with `//!`.
const DOC_DIRS: &[&str] = &["src", "tests", "benches", "examples"];

/// Names of types whose iteration order is randomly seeded.
const NONDETERMINISTIC: &[&str] = &["HashMap", "HashSet"];

/// Runs every check and reports every violation.
pub(crate) fn run() -> crate::Result {
    let root = root();
    let mut crates = Vec::new();
    find_crates(&root, &mut crates)?;
    crates.sort();

    let mut violations = Vec::new();
    let mut files_checked = 0_usize;
    for krate in &crates {
        let mut files = Vec::new();
        for dir in DOC_DIRS {
            collect_rs(&krate.join(dir), &mut files)?;
        }
        let build_rs = krate.join("build.rs");
        if build_rs.is_file() {
            files.push(build_rs);
        }
        files.sort();
        for file in &files {
            files_checked += 1;
            let text = read(file)?;
            if let Some(v) = check_module_doc(&text) {
                violations.push(format!("{}:{v}", rel(&root, file)));
            }
        }
    }

    for krate in CORE_CRATES {
        let mut files = Vec::new();
        collect_rs(&root.join(krate).join("src"), &mut files)?;
        files.sort();
        for file in &files {
            for v in check_deterministic(&read(file)?) {
                violations.push(format!("{}:{v}", rel(&root, file)));
            }
        }
    }

    let lock = format!("{NOSTD_CHECK_DIR}/Cargo.lock");
    if !root.join(&lock).is_file() {
        violations.push(format!(
            "{lock}: missing (generate it with `cargo generate-lockfile --manifest-path \
             {NOSTD_CHECK_DIR}/Cargo.toml` and commit it)"
        ));
    }

    if violations.is_empty() {
        println!(
            "tidy: ok ({files_checked} files in {} crates)",
            crates.len()
        );
        Ok(())
    } else {
        for v in &violations {
            println!("{v}");
        }
        Err(format!("{} violation(s)", violations.len()))
    }
}

/// `None` if the first non-empty line is a `//!` doc; else `line: what`.
fn check_module_doc(text: &str) -> Option<String> {
    match text.lines().enumerate().find(|(_, l)| !l.trim().is_empty()) {
        Some((_, line)) if line.trim_start().starts_with("//!") => None,
        Some((i, _)) => Some(format!(
            "{}: the first non-empty line must be a `//!` module doc",
            i + 1
        )),
        None => Some("1: empty file; it needs at least a `//!` module doc".into()),
    }
}

/// Each `line: what` that names a randomly-ordered collection outside a comment.
fn check_deterministic(text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .filter_map(|(i, l)| {
            let name = NONDETERMINISTIC.iter().find(|n| l.contains(**n))?;
            Some(format!(
                "{}: `{name}` in a core crate: iteration order is randomly seeded; use \
                 BTreeMap/heapless::IndexMap or a sorted Vec (STYLE point 9)",
                i + 1
            ))
        })
        .collect()
}

/// Every directory below `dir` with a `Cargo.toml` that declares a `[package]`.
fn find_crates(dir: &Path, out: &mut Vec<PathBuf>) -> crate::Result {
    let manifest = dir.join("Cargo.toml");
    if manifest.is_file() && read(&manifest)?.lines().any(|l| l.trim() == "[package]") {
        out.push(dir.to_path_buf());
    }
    for entry in entries(dir)? {
        let name = entry.file_name().unwrap_or_default().to_string_lossy();
        if entry.is_dir() && !name.starts_with('.') && !SKIP_DIRS.contains(&name.as_ref()) {
            find_crates(&entry, out)?;
        }
    }
    Ok(())
}

/// Every `.rs` file below `dir` (nothing if `dir` does not exist).
fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> crate::Result {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in entries(dir)? {
        if entry.is_dir() {
            collect_rs(&entry, out)?;
        } else if entry.extension().is_some_and(|e| e == "rs") {
            out.push(entry);
        }
    }
    Ok(())
}

fn entries(dir: &Path) -> crate::Result<Vec<PathBuf>> {
    let read_dir = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in read_dir {
        paths.push(
            entry
                .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
                .path(),
        );
    }
    Ok(paths)
}

fn read(path: &Path) -> crate::Result<String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_doc_must_come_first() {
        assert_eq!(check_module_doc("\n\n//! Doc.\nfn f() {}\n"), None);
        assert_eq!(
            check_module_doc("#![no_std]\n//! Doc.\n").as_deref(),
            Some("1: the first non-empty line must be a `//!` module doc")
        );
        assert_eq!(
            check_module_doc("\n/// Item doc.\n").as_deref(),
            Some("2: the first non-empty line must be a `//!` module doc")
        );
        assert!(check_module_doc("\n  \n").is_some());
    }

    #[test]
    fn hash_collections_are_found_outside_comments() {
        let text = "//! Never a HashMap here.\nuse alloc::collections::BTreeMap;\n// HashSet no\nlet m: HashMap<u8, u8>;\n";
        let found = check_deterministic(text);
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("4: `HashMap`"));
    }

    #[test]
    fn this_workspace_is_found() {
        let mut crates = Vec::new();
        find_crates(&root(), &mut crates).unwrap();
        assert!(crates.iter().any(|c| c.ends_with("xtask")));
        assert!(crates.iter().any(|c| c.ends_with(NOSTD_CHECK_DIR)));
        assert!(!crates.iter().any(|c| c.ends_with("fuzz")));
    }
}
