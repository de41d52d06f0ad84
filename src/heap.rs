//! Gives freed heap back to the kernel. glibc's allocator keeps the memory a burst freed (a
//! policy compile at start, a load peak, 10k sessions that ended) inside its arenas, so a
//! gateway that was busy once stays at its peak RSS for good: on an 8 GB edge node the
//! processors need it more. `malloc_trim(0)` returns every free page of every arena; it runs
//! right after start, and then when a burst has ended: the free space inside the heap has
//! moved by at least [`MOVED`] since the last trim but stood still for the last second. Never
//! during load: a trim walks the whole heap under the arenas' locks (a stall for every
//! allocating thread, long with 10k connections open), and pages it gives back mid-burst are
//! faulted right back in.
//!
//! Not here: the budgets this serves (docs/benchmarks.md, idle RSS).

use std::time::Duration;

/// How often the heap is looked at.
const EVERY: Duration = Duration::from_secs(1);
/// Free bytes inside the heap must move by this much before another trim...
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MOVED: usize = 256 * 1024;
/// ...and by less than this over the last tick (the heap is quiet).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const QUIET: usize = 32 * 1024;

/// Trims now and then watches the heap until the runtime ends.
pub fn spawn_trimmer() {
    let mut last = trim();
    let mut prev = last;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = free_bytes();
            if burst_ended(last, prev, now) {
                // Not on a worker thread: the trim may take a while on a big heap.
                last = tokio::task::spawn_blocking(trim).await.unwrap_or(last);
                prev = last;
            } else {
                prev = now;
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

/// Free space inside the heap now.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn free_bytes() -> usize {
    // SAFETY: as in `trim`.
    unsafe { libc::mallinfo2().fordblks }
}

/// Moved since the last trim, still since the previous tick.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn burst_ended(last_trim: usize, prev: usize, now: usize) -> bool {
    now.abs_diff(last_trim) >= MOVED && now.abs_diff(prev) < QUIET
}

// Other allocators (musl, macOS) return memory on their own terms: nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> usize {
    0
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn free_bytes() -> usize {
    0
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn burst_ended(_last_trim: usize, _prev: usize, _now: usize) -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    #[test]
    fn trims_only_once_a_moved_heap_is_quiet() {
        let mib = 1024 * 1024;
        // Moved and still: the burst is over.
        assert!(burst_ended(0, 4 * mib, 4 * mib));
        // Moved but still moving: load goes on.
        assert!(!burst_ended(0, 3 * mib, 4 * mib));
        // Quiet but hardly moved since the last trim: nothing to give back.
        assert!(!burst_ended(4 * mib, 4 * mib + 1024, 4 * mib + 1024));
    }
}
