//! Integrity checkpoints of a running collector: published at startup, on the interval while
//! idle and at shutdown after the final flush; `genai-audit verify` passes on what it wrote and
//! names a flipped byte.

use genai_audit_store::integrity::IntegrityKey;

use super::*;
use crate::INTEGRITY_KEY_HEX;

/// `genai-audit verify ARGS…` on `store`, bounded in time.
fn verify(store: &Path, args: &[&str]) -> Output {
    let mut cmd = bin();
    cmd.arg("verify").arg("--store").arg(store).args(args);
    run_bounded(cmd, Duration::from_secs(60))
}

fn checkpoints(store: &Path) -> Vec<String> {
    let dir = store.join("_integrity");
    let mut out: Vec<String> = walkdir(&dir);
    out.sort();
    out
}

fn walkdir(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(std::fs::read_to_string(&p).unwrap());
        }
    }
    out
}

#[test]
fn serve_publishes_checkpoints_and_verify_catches_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        Opts {
            env: &[("GENAI_AUDIT_INTEGRITY_CHECKPOINT_INTERVAL_SECS", "1")],
            ..Opts::default()
        },
    );
    let rt = rt();
    let client = http_client();
    let (req, rids) = chat_request(7, 5);
    rt.block_on(post_traces_ok(&client, &server, &req));
    // Idle ticks publish too: wait for a few beyond the startup one.
    let deadline = Instant::now() + Duration::from_secs(20);
    while checkpoints(&server.store()).len() < 3 {
        assert!(
            Instant::now() < deadline,
            "no interval checkpoints\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let store = server.store();
    server.stop();

    let all = checkpoints(&store);
    let reasons: Vec<&str> = all
        .iter()
        .filter_map(|c| c.lines().find_map(|l| l.strip_prefix("reason ")))
        .collect();
    assert_eq!(reasons.first(), Some(&"startup"), "{reasons:?}");
    assert_eq!(reasons.last(), Some(&"shutdown"), "{reasons:?}");
    assert!(reasons.contains(&"interval"), "{reasons:?}");
    // The shutdown flush is covered by the last checkpoint (its files were written at exit).
    assert!(
        all.last().unwrap().contains("\"op\":\"add\""),
        "{}",
        all.last().unwrap()
    );

    // The auditor has only the public key.
    let public = dir.path().join("integrity.pub");
    let key = IntegrityKey::from_hex(INTEGRITY_KEY_HEX).unwrap();
    std::fs::write(&public, key.public_key().to_hex()).unwrap();
    let public = public.to_str().unwrap();
    let out = verify(&store, &["--public-key", public, "--strict"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", crate::describe(&out));
    let n = all.len();
    assert!(
        stdout.contains(&format!("{n}/{n} checkpoints valid, 1/1 files valid")),
        "{stdout}"
    );
    assert_eq!(read_rows(&store).len(), rids.len());

    // One flipped byte in the Parquet file.
    let file = std::fs::read_dir(store.join("audit_log"))
        .unwrap()
        .flat_map(|t| std::fs::read_dir(t.unwrap().path()).unwrap())
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&file, bytes).unwrap();
    let out = verify(&store, &["--public-key", public]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", crate::describe(&out));
    let rel = file.strip_prefix(&store).unwrap().to_str().unwrap();
    assert!(
        stdout.starts_with(&format!("MODIFIED {rel}: SHA-256 is ")),
        "{stdout}"
    );
    assert!(stdout.contains(", 0/1 files valid"), "{stdout}");

    // The wrong public key: every checkpoint is a bad signature.
    let other = dir.path().join("other.pub");
    let wrong = IntegrityKey::from_seed([3; 32]).public_key().to_hex();
    std::fs::write(&other, wrong).unwrap();
    let out = verify(&store, &["--public-key", other.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", crate::describe(&out));
    assert_eq!(stdout.matches("BAD SIGNATURE").count(), n, "{stdout}");
    assert!(
        stdout.contains(&format!("0/{n} checkpoints valid")),
        "{stdout}"
    );
}
