//! Gives freed heap back to the kernel. glibc's allocator keeps the memory a burst freed (a
//! policy compile at start, a load peak, 10k sessions that ended) inside its arenas, so a
//! gateway that was busy once stays at its peak RSS for good: on an 8 GB edge node the
//! processors need it more. `malloc_trim(0)` returns every free page of every arena; it runs
//! right after start and then once a second when the free space inside the heap has moved by
//! at least [`MOVED`] since the last trim (a burst ended), never while nothing changes.
//!
//! Not here: the budgets this serves (docs/benchmarks.md, idle RSS).

use std::time::Duration;

/// How often the heap is looked at.
const EVERY: Duration = Duration::from_secs(1);
/// Free bytes inside the heap must move by this much before another trim.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MOVED: usize = 256 * 1024;

/// Trims now and then watches the heap until the runtime ends.
pub fn spawn_trimmer() {
    let mut last = trim();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if moved(last) {
                // A trim walks every arena under its lock: not on a worker thread.
                last = tokio::task::spawn_blocking(trim).await.unwrap_or(last);
            }
        }
    });
}

/// Returns free pages to the kernel; the free space inside the heap after it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() -> usize {
    // SAFETY: both are thread-safe glibc calls without arguments that point anywhere.
    unsafe {
        libc::malloc_trim(0);
        libc::mallinfo2().fordblks
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn moved(last: usize) -> bool {
    // SAFETY: as in `trim`.
    let free = unsafe { libc::mallinfo2().fordblks };
    free.abs_diff(last) >= MOVED
}

// Other allocators (musl, macOS) return memory on their own terms: nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> usize {
    0
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn moved(_last: usize) -> bool {
    false
}
