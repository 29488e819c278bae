//! `genai-audit verify` on stores written by `import` and `compact`: the key file generated on
//! first use, a clean store verifying, tampering named, an inclusion proof for one file, and
//! usage errors.

use std::path::Path;
use std::process::Output;

use super::{bin, describe, fixtures, import, stored};

fn verify(store: &Path, args: &[&str]) -> Output {
    bin()
        .arg("verify")
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn import_signs_with_a_generated_key_and_verify_checks_against_its_public_half() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let key_file = dir.path().join("keys/integrity.key");
    let out = bin()
        .env_remove("GENAI_AUDIT_INTEGRITY_KEY")
        .arg("import")
        .arg("--store")
        .arg(&store)
        .arg("--integrity-key-file")
        .arg(&key_file)
        .args(["--chunk-records", "4"])
        .arg(fixtures())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let public = dir.path().join("keys/integrity.key.pub");
    let public = public.to_str().unwrap();
    let (files, _) = stored(&store);
    let n = files.len();
    assert!(n >= 2, "{files:?}");

    let out = verify(&store, &["--public-key", public, "--strict"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        stdout(&out).contains(&format!("1/1 checkpoints valid, {n}/{n} files valid")),
        "{}",
        describe(&out)
    );

    // Importing the same again commits nothing and publishes nothing.
    let again = bin()
        .env_remove("GENAI_AUDIT_INTEGRITY_KEY")
        .arg("import")
        .arg("--store")
        .arg(&store)
        .arg("--integrity-key-file")
        .arg(&key_file)
        .arg(fixtures())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", describe(&again));
    assert!(stdout(&verify(&store, &["--public-key", public])).contains("1/1 checkpoints"));

    // One file's inclusion proof.
    let first = files.iter().next().unwrap();
    let out = verify(&store, &["--public-key", public, "--file", first]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = stdout(&out);
    assert!(text.contains("proof       valid"), "{text}");
    assert!(text.contains("(matches the leaf)"), "{text}");
    assert!(text.contains("checkpoint  _integrity/import/00000000000000000001.checkpoint"));

    // Tampering: a deleted file and a planted one, each named; the proof shows it too.
    let second = files.iter().nth(1).unwrap();
    std::fs::remove_file(store.join(second)).unwrap();
    let planted = first.replace(".parquet", "-x.parquet");
    std::fs::copy(store.join(first), store.join(&planted)).unwrap();
    let out = verify(&store, &["--public-key", public]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("MISSING {second}: listed in ")),
        "{text}"
    );
    assert!(text.contains(&format!("UNLISTED {planted}: ")), "{text}");
    assert!(
        text.contains(&format!(
            "1/1 checkpoints valid, {}/{} files valid",
            n - 1,
            n + 1
        )),
        "{text}"
    );
    let out = verify(&store, &["--public-key", public, "--file", second]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stdout(&out).contains("MISSING from the store"),
        "{}",
        describe(&out)
    );
}

#[test]
fn compaction_publishes_its_removals_and_the_store_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = import(
        &store,
        &["--chunk-records", "3", fixtures().to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let (before, rows) = stored(&store);
    let out = bin()
        .arg("compact")
        .arg("--store")
        .arg(&store)
        .args(["--before", "2100-01-01", "--min-files", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let (after, rows_after) = stored(&store);
    assert!(after.len() < before.len(), "{before:?} -> {after:?}");
    assert_eq!(rows.len(), rows_after.len());
    assert!(store.join("_integrity/maintenance").is_dir());

    // Verified with the public half of the key in the environment (the default).
    let out = verify(&store, &["--strict"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let n = after.len();
    assert!(
        stdout(&out).contains(&format!(", {n}/{n} files valid")),
        "{}",
        describe(&out)
    );
}

#[test]
fn usage_errors_exit_2_and_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    // No key anywhere: the default .pub is looked for in the working directory.
    let out = bin()
        .env_remove("GENAI_AUDIT_INTEGRITY_KEY")
        .current_dir(dir.path())
        .arg("verify")
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--public-key"),
        "{}",
        describe(&out)
    );
    let out = verify(&store, &["--from", "2025-02-01", "--to", "2025-01-01"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let out = verify(&store, &["--concurrency", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let not_a_key = dir.path().join("bad.pub");
    std::fs::write(&not_a_key, "zz").unwrap();
    let out = verify(&store, &["--public-key", not_a_key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.pub"),
        "{}",
        describe(&out)
    );
    // An empty store verifies: nothing claimed, nothing found.
    let out = verify(&store, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(stdout(&out).contains("0/0 checkpoints valid, 0/0 files valid"));
}
