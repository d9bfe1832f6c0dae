//! The benchmark tools run end to end on tiny workloads against the real
//! debug binaries: a broken load generator or report would otherwise only
//! show up in a 45-minute suite run. Figures are not asserted (speed
//! targets live in the suite's output), only that every figure is there.

use std::process::Command;

fn run(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .env_remove("CUSTODY_BENCH_SIZES")
        .env("CUSTODY_GARAGE_CLUSTER", concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/garage-cluster"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{bin} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn witnessgen_drives_a_real_witness() {
    let out = run(env!("CARGO_BIN_EXE_custody-witnessgen"), &["--json", "--logs", "4", "--requests", "200"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Every request got a 200 with a cosignature, or witnessgen fails.
    assert_eq!(v["requests"], 200);
    assert_eq!(v["windows"]["add_checkpoint_per_s"].as_array().unwrap().len(), 5);
    assert!(v["add_checkpoint_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn the_suite_writes_every_row_between_the_markers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("performance.md");
    std::fs::write(&out, "# Performance\n\nhand-written text stays\n").unwrap();
    run(
        env!("CARGO_BIN_EXE_custody-benchsuite"),
        &[
            "--sizes",
            "300,700",
            "--audit-at",
            "700",
            "--reaudit-entries",
            "100",
            "--concurrency",
            "4",
            "--windows",
            "2",
            "--witness-requests",
            "400",
            // Every attack still runs, on a tenth of the default load: the
            // rows are what this test checks, not their figures.
            "--attack-entries",
            "2000",
            "--model-shards",
            "2",
            "--model-shard-mib",
            "2",
            "--storage-entries",
            "600",
            "--storage-tiles",
            "50",
            "--storage-artifact-mib",
            "2",
            "--report-at",
            "700",
            "--alerts-at",
            "700",
            "--encryption-artifact-mib",
            "2",
            "--encryption-pulls",
            "1",
            "--dashboard-rows",
            "200",
            "--criterion-dir",
            dir.path().join("no-criterion").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(md.starts_with("# Performance\n\nhand-written text stays\n"), "{md}");
    for row in [
        "| witness add-checkpoint (32 logs concurrently) | ≥ 2,000/s | **",
        // The stage sizes include each run's grants and publish.
        "| signed entries durably sequenced over HTTP, at 30",
        "| signed entries durably sequenced over HTTP, at 70",
        "| ack to published cosigned checkpoint p50, at 70",
        "| inclusion proofs served, at 70",
        "| disk growth per entry beyond the entry bytes during load, WAL included (mean entry ",
        "| disk per entry beyond the entry bytes at rest (mean entry ",
        "per entry by column family: ",
        "hashes ",
        "| `custody audit` of 70",
        "entries with signature checks, cold",
        "entries with signature checks, warm",
        "| `custody audit` again after ",
        "from the saved replay state |",
        // The re-audits grow the log past the last stage.
        "| log server start-up (persisted registry state; 0 entries replayed) at ",
        "| leaf appends in core, one core | ≥ 4,000,000/s | not measured |",
        "| `custody pull` and verify of a 2-shard 4 MiB model directory on loopback",
        "| client peak RSS during that pull (2 parallel downloads) | ≤ 100 MiB | **",
        // Exactly the changed shard: 2 MiB.
        "| re-publish with one of 2 shards changed: bytes uploaded (1 files) | one shard | **2.10 MB** |",
        // Storage: the same load on three logs, on a real Garage cluster.
        "| signed entries/s to 600 entries, RocksDB and local disk only (the default) |  | **",
        "| signed entries/s to 600 entries, `--store s3://` (read path to a 3-node Garage, fsync on) | ≥ 0.8 of local | **",
        "| signed entries/s to 600 entries, `--store s3:// --recovery-point-zero`",
        "| acknowledgement p99 latency, s3-rpo0 |",
        "| full level-0 tiles/s from the bucket through Garage's static web endpoint |  | **",
        "| `custody-log restore` of 600 entries from the bucket |  | **",
        "| `custody publish` of a 2 MiB artifact, `--store s3://` |  | **",
        "| `custody pull` and verify of a 2 MiB artifact, `--store s3://` |  | **",
        // The custody features: the whole-registry report, alert rules and
        // encrypted pulls, each measured.
        "| `custody report` of the whole registry, ",
        "cold: full audit from a fresh home |  | **",
        "warm: resumed audit, bundles from the cache |  | **",
        "| `custody monitor --rules --once --from-start` over ",
        "every rule, none fires: entries verified and evaluated",
        "every statement alerts: alerts queued (fsynced) and printed",
        "| `custody pull` and verify of a 2 MiB artifact stored encrypted (the default) | ≥ 0.7 of plaintext | **",
        // Honest load beside each attack, against the same load without.
        "| honest signed entries under the `slow-bodies` attack (1100 attack connections; ",
        "| honest inclusion proofs under the `slow-downloads` attack (1100 attack connections; ",
        "| honest signed entries under the `big-entries` attack (1100 attack connections; ",
        "| honest inclusion proofs under the `bad-signatures` attack (110 attack connections; ",
        // The dashboard's model page, seeded with its history rows.
        "| dashboard model page with 200 history rows: server time to the full HTML (",
    ] {
        assert!(md.contains(row), "missing {row:?} in\n{md}");
    }
    // The browser figures of the same page, when Chromium is installed
    // (scripts/chromium-install; the step skips with a message otherwise).
    if std::path::Path::new("/usr/bin/chromium").exists()
        && std::path::Path::new("/usr/bin/chromedriver").exists()
    {
        for row in [
            "| dashboard model page with 200 history rows: time to first render in Chromium",
            "| dashboard in-browser verification: entries proven per second",
        ] {
            assert!(md.contains(row), "missing {row:?} in\n{md}");
        }
    }
    assert_eq!(md.matches("BEGIN GENERATED").count(), 1);
    // Without criterion results only the core rows are empty; every figure
    // of the servers was measured.
    for line in md.lines().filter(|l| l.contains(" entries") || l.contains("witness")) {
        assert!(!line.contains("not measured"), "{line}");
    }
}
