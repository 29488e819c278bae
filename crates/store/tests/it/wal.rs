//! The write-ahead log under real crashes: a child process appends and is killed with SIGKILL at a
//! random moment; every entry it reported as acknowledged must be recovered, exactly, once.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use genai_audit_store::Error;
use genai_audit_store::wal::{Durability, Wal, WalOptions};

/// Set in the child: the log directory. Its presence turns `crash_child` into the append loop.
const CHILD_DIR: &str = "GENAI_WAL_CHILD";
/// Set in the child: the round number (part of every payload).
const CHILD_ROUND: &str = "GENAI_WAL_CHILD_ROUND";
/// Set in the child: `fsync` or `os`.
const CHILD_MODE: &str = "GENAI_WAL_CHILD_MODE";

const ROUNDS: u64 = 10;
const APPENDERS: u64 = 3;
/// Entries the releaser thread keeps unreleased.
const KEEP: u64 = 400;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// The payload of entry `n` of appender `thread` in `round`: a readable id, then filler of varying
/// length (0..4000 bytes) derived from the id.
fn crash_payload(round: u64, thread: u64, n: u64) -> Vec<u8> {
    let mut p = format!("r{round} t{thread} n{n}|").into_bytes();
    let len = (n * 7919 + thread * 104_729 + round * 31) % 4000;
    p.extend((0..len).map(|i| (i ^ n ^ (thread << 5) ^ (round << 2)) as u8));
    p
}

/// The id of a payload made by `crash_payload`, if it is one (and intact).
fn payload_id(p: &[u8]) -> Option<(u64, u64, u64)> {
    let bar = p.iter().position(|&b| b == b'|')?;
    let head = std::str::from_utf8(&p[..bar]).ok()?;
    let mut it = head.split(' ');
    let r = it.next()?.strip_prefix('r')?.parse().ok()?;
    let t = it.next()?.strip_prefix('t')?.parse().ok()?;
    let n = it.next()?.strip_prefix('n')?.parse().ok()?;
    (crash_payload(r, t, n) == p).then_some((r, t, n))
}

fn child_options(mode: &str) -> WalOptions {
    WalOptions {
        durability: if mode == "os" {
            Durability::Os
        } else {
            Durability::Fsync
        },
        // Small segments: rotations (and releases) happen all the time.
        segment_bytes: 64 << 10,
        ..WalOptions::default()
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes()).unwrap();
    out.write_all(b"\n").unwrap();
    out.flush().unwrap();
}

/// The child: appends until killed, printing `ACK <seq> <round> <thread> <n>` for every
/// acknowledged entry and `RELSTART <seq>` before every release. A no-op in the normal test run.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let round: u64 = std::env::var(CHILD_ROUND).unwrap().parse().unwrap();
    let mode = std::env::var(CHILD_MODE).unwrap();
    let (wal, replay) = Wal::open(&dir, child_options(&mode)).unwrap();
    drop(replay);
    let wal = Arc::new(wal);
    let mut threads = Vec::new();
    for t in 0..APPENDERS {
        let wal = Arc::clone(&wal);
        threads.push(std::thread::spawn(move || {
            let mut n = 0u64;
            loop {
                if t == 0 {
                    // Batches of 5.
                    let batch: Vec<Vec<u8>> =
                        (n..n + 5).map(|i| crash_payload(round, t, i)).collect();
                    let r = wal.append_batch_blocking(batch).unwrap();
                    for (k, seq) in (r.first..=r.last).enumerate() {
                        say(&format!("ACK {seq} {round} {t} {}", n + k as u64));
                    }
                    n += 5;
                } else {
                    let seq = wal.append_blocking(crash_payload(round, t, n)).unwrap();
                    say(&format!("ACK {seq} {round} {t} {n}"));
                    n += 1;
                }
            }
        }));
    }
    // The releaser: keeps the last KEEP entries, releases the rest.
    loop {
        std::thread::sleep(Duration::from_millis(20));
        if let Some(last) = wal.last_seq()
            && last > KEEP
        {
            let through = last - KEEP;
            say(&format!("RELSTART {through}"));
            wal.truncate_through_blocking(through).unwrap();
        }
    }
}

/// Re-executes this test binary as a child that appends until it is killed with SIGKILL, at a
/// random moment, several rounds over the same directory (alternating `Fsync` and `Os` mode: a
/// process crash loses neither). After each kill: every acknowledged entry is recovered with its
/// exact payload, no entry is there twice, and the next round's seqs are all new.
#[test]
fn acked_entries_survive_sigkill() {
    if std::env::var(CHILD_DIR).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = XorShift(seed);
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();

    let mut acked: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut released_through = 0u64;
    let mut max_seq_seen = 0u64;
    for round in 0..ROUNDS {
        let mode = if round % 2 == 0 { "fsync" } else { "os" };
        let mut child = Command::new(&exe)
            .args([
                "wal::crash_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, tmp.path())
            .env(CHILD_ROUND, round.to_string())
            .env(CHILD_MODE, mode)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    // A line cut by the kill carries no newline and is not an acknowledgement.
                    Ok(_) if line.ends_with(b"\n") => {
                        let _ = tx.send(String::from_utf8_lossy(&line).trim_end().to_owned());
                    }
                    Ok(_) => {}
                }
            }
        });

        // Let the child get going (some acks), then kill it at a random moment.
        let want_acks = 10 + rng.next() % 300;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut lines = Vec::new();
        let mut acks = 0;
        while acks < want_acks && Instant::now() < deadline {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(20)) {
                acks += u64::from(l.starts_with("ACK "));
                lines.push(l);
            }
        }
        std::thread::sleep(Duration::from_micros(rng.next() % 250_000));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "child exited by itself: {status}");
        reader.join().unwrap();
        lines.extend(rx.try_iter());

        let mut round_acks = 0;
        for l in &lines {
            let f: Vec<&str> = l.split(' ').collect();
            match f.first() {
                Some(&"ACK") => {
                    let v: Vec<u64> = f[1..].iter().map(|x| x.parse().unwrap()).collect();
                    let (seq, r, t, n) = (v[0], v[1], v[2], v[3]);
                    assert_eq!(r, round);
                    assert!(
                        seq > max_seq_seen,
                        "round {round}: seq {seq} reused (seen up to {max_seq_seen})"
                    );
                    assert!(
                        acked.insert(seq, crash_payload(r, t, n)).is_none(),
                        "seq {seq} acknowledged twice"
                    );
                    round_acks += 1;
                }
                Some(&"RELSTART") => {
                    released_through = released_through.max(f[1].parse().unwrap());
                }
                _ => {}
            }
        }
        assert!(
            round_acks > 0,
            "round {round}: the child acknowledged nothing"
        );

        // Recover, as the service would on restart.
        let (wal, replay) = Wal::open(tmp.path(), WalOptions::default()).unwrap();
        let mut recovered = BTreeMap::new();
        let mut ids = HashSet::new();
        let mut prev = 0;
        for e in replay {
            let e = e.unwrap();
            assert!(e.seq > prev, "seqs not increasing: {prev} then {}", e.seq);
            prev = e.seq;
            let id = payload_id(&e.payload)
                .unwrap_or_else(|| panic!("seq {}: payload is not one the child wrote", e.seq));
            assert!(ids.insert(id), "payload {id:?} recovered twice");
            recovered.insert(e.seq, e.payload);
        }
        for (seq, payload) in acked.range(released_through + 1..) {
            match recovered.get(seq) {
                Some(p) => assert!(p == payload, "round {round}: seq {seq} payload differs"),
                None => panic!(
                    "round {round} ({mode}): acknowledged seq {seq} lost \
                     (released through {released_through}, recovered {:?}..{:?}, seed {seed})",
                    recovered.keys().next(),
                    recovered.keys().next_back()
                ),
            }
        }
        max_seq_seen = max_seq_seen
            .max(prev)
            .max(acked.keys().next_back().copied().unwrap_or(0));
        eprintln!(
            "round {round} ({mode}): {round_acks} acked, {} recovered, torn tails {}, released through {released_through}",
            recovered.len(),
            wal.recovery().torn_tails
        );
        wal.close_blocking().unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// A full log refuses appends with backpressure (not fatal), and accepts them again once
/// entries are released.
#[test]
fn backpressure_then_release_from_async_code() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let opts = WalOptions {
            segment_bytes: 8 << 10,
            max_wal_bytes: 32 << 10,
            ..WalOptions::default()
        };
        let (wal, _) = Wal::open(tmp.path(), opts).unwrap();
        let mut last = 0;
        loop {
            match wal.append(vec![1u8; 500]) {
                Ok(h) => last = h.await.unwrap(),
                Err(Error::Backpressure { retry_after, .. }) => {
                    assert!(retry_after > Duration::ZERO);
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        let freed = wal.truncate_through(last).await.unwrap();
        assert!(freed.bytes_freed > 16 << 10);
        let seq = wal.append(vec![2u8; 500]).unwrap().await.unwrap();
        assert_eq!(seq, last + 1);
        wal.close().await.unwrap();
    });
}
