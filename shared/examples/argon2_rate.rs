//! Measures argon2id hashes per second with the server's parameters, on one
//! thread and on every core: the ceiling of what register and login can
//! reach on this machine.
//!
//! `cargo run --release -p shop --example argon2_rate [seconds]`

use std::time::Duration;

use shop::auth::PasswordHasher;

fn rate(threads: usize, window: Duration) -> f64 {
    PasswordHasher::new().hashes_per_second(threads, window)
}

fn main() {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let window = Duration::from_secs(seconds);
    let single = rate(1, window);
    let all = rate(cores, window);
    println!("argon2id m=19456 KiB, t=2, p=1");
    println!("1 thread:   {single:.1} hashes/s ({:.1} ms per hash)", 1000.0 / single);
    println!("{cores} threads:  {all:.1} hashes/s");
}
