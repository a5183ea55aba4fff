//! The README's first command, `cargo run -p testenv -- demo`, through its library entry
//! point with this build of pgwal-recv: a lab, a write load, the archiver on the standby.

use std::time::Duration;

use crate::common::*;

#[test]
fn the_demo_archives_from_the_standby_and_cleans_up() {
    let work = TempDir::new("demo");
    let lab_dir = work.path().join("lab");
    let opts = testenv::demo::DemoOptions {
        lab_dir: lab_dir.clone(),
        archive: work.path().join("archive"),
        duration: Duration::from_secs(4),
        pgwal_recv: env!("CARGO_BIN_EXE_pgwal-recv").into(),
        bin: testenv::PgBin::select(None).unwrap(),
        show_archiver: false,
    };
    let summary = testenv::demo::run(&opts).unwrap();
    assert_eq!(summary.archiver_exit, Some(0), "{summary:?}");
    assert!(summary.bytes > 0, "{summary:?}");
    let files: Vec<String> = std::fs::read_dir(&opts.archive)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with(".partial")),
        "no open segment kept: {files:?}"
    );
    assert_eq!(summary.segments, complete_segments(&opts.archive).len());
    assert!(!lab_dir.exists(), "the lab was not removed");
    // A second run empties the archive it made; a foreign file stops it before anything.
    std::fs::write(opts.archive.join("notes.txt"), "mine").unwrap();
    let err = testenv::demo::run(&opts).unwrap_err().to_string();
    assert!(err.contains("not an archive file"), "{err}");
    assert!(opts.archive.join("notes.txt").exists());
}
