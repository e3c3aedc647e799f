//! The architecture as a test: only `shell/` (and `lib.rs`'s export) may touch the platform
//! (`spin_sdk`, `wasi`), so everything else stays pure and runs natively; and a client's
//! request to MLflow is made only from a permit.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable").flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Every code line (comments cut) of every source file but `except`, containing any of
/// `needles`, as `src/<file>:<line>: <text>`.
fn lines_with(needles: &[&str], except: impl Fn(&str) -> bool) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 30, "found {} files", files.len());
    let mut found = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(&src)
            .unwrap_or(&f)
            .to_string_lossy()
            .replace('\\', "/");
        if except(&rel) || rel == "layering.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if needles.iter().any(|s| code.contains(s)) {
                found.push(format!("src/{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn only_the_shell_talks_to_the_platform() {
    let offenders = lines_with(&["spin_sdk", "wasi::"], |rel| {
        rel.starts_with("shell/") || rel == "lib.rs"
    });
    assert!(
        offenders.is_empty(),
        "platform calls outside shell/:\n{}",
        offenders.join("\n")
    );
}

/// `Ctx::forward` sends only a `ClientRequest`, and only a permit makes one
/// (`pipeline::decision::Permit::request`); the forward tests build one from a plan by hand.
#[test]
fn only_a_permit_makes_a_client_request() {
    let offenders = lines_with(&["client_request(", "ClientRequest("], |rel| {
        rel == "forward.rs" || rel == "pipeline/decision.rs"
    });
    assert!(
        offenders.is_empty(),
        "client requests made outside a permit:\n{}",
        offenders.join("\n")
    );
}
