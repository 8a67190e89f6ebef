//! The benchmark's quick mode runs end to end (tiny sizes, debug build), so the benchmark
//! never rots. Timing targets are not asserted here; the refresh-storm count is, since it is
//! a correctness property.

use std::process::Command;

#[test]
fn quick_mode_runs_and_prints_every_figure() {
    let output = Command::new(env!("CARGO_BIN_EXE_leapcraft-bench"))
        .arg("--quick")
        .output()
        .expect("the bench binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for needle in [
        "| 1 | latest_many at DEFAULT_CONCURRENCY",
        "| 2 | the same with prefetch(",
        "| 2 | peak RSS (VmHWM) streaming",
        "| 2 | peak RSS (VmHWM) collect()",
        "| 3 | leapcraft-ext Client::device",
        "| 4 | refresh storm: 100 concurrent calls on an expired token",
        "| 5 | the same with the adaptive rate limiter (the default)",
        "| 5 | the limit drops to 50 req/s",
        "| until (s) | server limit (req/s) |",
        // Measured where the `leapcraft` binary is built (as by `cargo test --workspace`).
        "| 6 | leapcraft serve",
        "| 7 | leapcraft latest --all, 64 devices",
        "| 8 | leapcraft latest --all --concurrency 32, 300 devices",
        "| 8 | leapcraft serve --concurrency 32 on the same account",
        "- Machine: ",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    let storm = stdout
        .lines()
        .find(|l| l.starts_with("| 4 |"))
        .expect("storm row");
    assert!(storm.contains("| 1 exchange(s) |"), "{storm}");
}
