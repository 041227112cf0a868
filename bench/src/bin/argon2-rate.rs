//! The machine's bare Argon2id verify rate with the SDK's parameters (the defaults:
//! m = 19 MiB, t = 2, p = 1): one thread per core verifying for a few seconds.
//!
//! `argon2-rate [seconds]` prints `verifies/s`.

use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};

fn main() {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let stored = match Argon2::default().hash_password(b"bench-password-123") {
        Ok(hash) => hash.to_string(),
        Err(err) => {
            eprintln!("cannot hash: {err}");
            std::process::exit(1);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let stored = stored.clone();
            std::thread::spawn(move || {
                let mut done = 0u64;
                let Ok(parsed) = PasswordHash::new(&stored) else { return 0 };
                while Instant::now() < deadline {
                    if Argon2::default().verify_password(b"bench-password-123", &parsed).is_ok() {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    let total: u64 = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    let elapsed = started.elapsed().as_secs_f64();
    println!("{:.1} verifies/s ({threads} threads, {total} in {elapsed:.1} s)", total as f64 / elapsed);
}
