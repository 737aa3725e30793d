//! `transport: ib` end to end through the `totemd` binary: built without feature `ib` it
//! refuses with a clear message; built with it, on a machine without RDMA (this CI), it
//! says "transport ib: no RDMA device found". Both exit non-zero, before touching the
//! network. Bad `ib_*` options are configuration errors naming the line.

use std::path::{Path, PathBuf};
use std::process::Command;

const TOTEMD: &str = env!("CARGO_BIN_EXE_totemd");

fn config(dir: &str, extra_totem: &str, node_extra: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("totem-ib-{dir}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("totem.conf");
    let text = format!(
        "totem {{\n  version: 2\n  cluster_name: ibtest\n  transport: ib\n{extra_totem}}}\n\
         nodelist {{\n  node {{\n    nodeid: 1\n    ring0_addr: 127.0.0.1\n{node_extra}  }}\n\
           node {{\n    nodeid: 2\n    ring0_addr: 127.0.0.2\n  }}\n}}\n\
         system {{\n  state_dir: {}\n}}\n",
        dir.display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

fn run(path: &Path) -> (bool, String) {
    let out = Command::new(TOTEMD)
        .args(["-f", path.to_str().expect("utf-8 path"), "--nodeid", "1"])
        .output()
        .expect("run totemd");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.success(), text)
}

#[test]
fn transport_ib_without_device_or_feature_exits_with_a_clear_error() {
    let path = config(
        "nodev",
        "  ib_port: 1\n  ib_gid_index: 3\n",
        "    ib_addr: fe80:0000:0000:0000:0002:c903:0001:2345/lid 7/qpn 0x48\n",
    );
    let (ok, text) = run(&path);
    assert!(!ok, "totemd must exit non-zero: {text}");
    if cfg!(feature = "ib") {
        if Path::new("/sys/class/infiniband").exists() {
            eprintln!("this machine has an RDMA class; not checking the no-device message");
        } else {
            assert!(
                text.contains("transport ib: no RDMA device found"),
                "expected the no-device message, got: {text}"
            );
        }
    } else {
        assert!(
            text.contains("this totemd was built without InfiniBand support"),
            "expected the no-feature message, got: {text}"
        );
    }
}

#[test]
fn bad_ib_options_are_config_errors_with_the_line() {
    for (totem, node, want) in [
        ("  ib_port: 0\n", "", "ib_port must be 1 to 255"),
        ("  ib_gid_index: 300\n", "", "ib_gid_index must be 0 to 255"),
        ("", "    ib_addr: fe80::1\n", "is not an InfiniBand address"),
    ] {
        let (ok, text) = run(&config("bad", totem, node));
        assert!(!ok, "{want}: totemd must refuse: {text}");
        assert!(text.contains(want), "expected {want:?} in: {text}");
        assert!(
            text.contains("totem.conf:"),
            "the error names the file and line: {text}"
        );
    }
}
