//! Links the system's OpenBLAS when it is installed, so burn-flex's dense layers can use it
//! (3-4x faster than burn-flex's own gemm on x86 CPUs); without it, or with
//! `MOMENTKV_BLAS=none`, they stay on burn-flex's gemm and the build says so.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(openblas)");
    println!("cargo::rerun-if-env-changed=MOMENTKV_BLAS");
    println!("cargo::rerun-if-env-changed=PKG_CONFIG_PATH");
    if std::env::var("CARGO_FEATURE_FLEX").is_err() {
        return;
    }
    if std::env::var("MOMENTKV_BLAS").as_deref() == Ok("none") {
        return;
    }
    match find_openblas() {
        Some(dirs) => {
            for dir in dirs {
                println!("cargo::rustc-link-search=native={dir}");
            }
            println!("cargo::rustc-link-lib=dylib=openblas");
            println!("cargo::rustc-cfg=openblas");
        }
        None => println!(
            "cargo::warning=OpenBLAS not found: the flex backend's dense layers use burn-flex's gemm \
             (slower); install it for speed (Debian: apt-get install libopenblas-dev)"
        ),
    }
}

/// Library directories of OpenBLAS, from pkg-config or the usual Debian/Fedora locations.
fn find_openblas() -> Option<Vec<String>> {
    if let Ok(out) = Command::new("pkg-config")
        .args(["--libs-only-L", "openblas"])
        .output()
    {
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            return Some(
                text.split_whitespace()
                    .filter_map(|s| s.strip_prefix("-L"))
                    .map(str::to_string)
                    .collect(),
            );
        }
    }
    [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ]
    .iter()
    .find(|dir| Path::new(dir).join("libopenblas.so").exists())
    .map(|dir| vec![dir.to_string()])
}
