//! Replays every fuzz seed and every input a fuzzing run kept (`fuzz/seeds/<target>/`,
//! `fuzz/regressions/<target>/`) through the checks of the fuzz targets (`fuzz/checks.rs`):
//! the Stripe-Signature parser, JWT decoding and chat socket frames.

use std::path::Path;

include!("../../../fuzz/checks.rs");

/// Every kept input of `target`, with its file name.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut found = Vec::new();
    for folder in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(folder).join(target)) else { continue };
        for entry in entries.flatten() {
            let data = std::fs::read(entry.path()).expect("a fuzz input");
            found.push((format!("{folder}/{target}/{}", entry.file_name().to_string_lossy()), data));
        }
    }
    found.sort();
    found
}

fn replay(target: &str, check: fn(&[u8])) {
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no seeds for {target}");
    for (name, data) in inputs {
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{name} fails the {target} check");
        }
    }
}

#[test]
fn stripe_signatures_replay() {
    replay("webhook_signature", webhook_signature);
}

#[test]
fn jwts_replay() {
    replay("jwt_decode", jwt_decode);
}

#[test]
fn chat_frames_replay() {
    replay("chat_frame", chat_frame);
}
