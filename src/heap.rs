//! Gives freed heap back to the kernel. glibc's allocator keeps the memory a burst freed (a
//! policy compile at start, a load peak, 10k sessions that ended) inside its arenas, so a
//! gateway that was busy once stays at its peak RSS for good: on an 8 GB edge node the
//! processors need it more. `malloc_trim(0)` returns every free page of every arena; it runs
//! right after start, and then when a burst is over: the heap in use has fallen by at least
//! [`FALLEN`] from its peak since the last trim and stood still for the last second. Never
//! during load, nor while many connections are held open: a trim walks the whole heap under
//! the arenas' locks (a stall for every allocating thread, long on a big heap), and pages it
//! gives back mid-burst are faulted right back in.
//!
//! Not here: the budgets this serves (docs/benchmarks.md, idle RSS).

#[cfg(all(target_os = "linux", target_env = "gnu"))]
use std::time::Duration;

/// How often the heap is looked at.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const EVERY: Duration = Duration::from_secs(1);
/// The heap in use must have fallen this far below its peak...
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const FALLEN: usize = 256 * 1024;
/// ...and moved less than this over the last tick (the heap is quiet).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const QUIET: usize = 32 * 1024;

/// Trims now and then watches the heap until the runtime ends.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn spawn_trimmer() {
    trim();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut prev = in_use();
        let mut peak = prev;
        loop {
            tick.tick().await;
            let now = in_use();
            peak = peak.max(now);
            if burst_over(peak, prev, now) {
                // Not on a worker thread: the trim may take a while.
                let _ = tokio::task::spawn_blocking(trim).await;
                peak = now;
            }
            prev = now;
        }
    });
}

/// Other allocators (musl, macOS) return memory on their own terms: nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn spawn_trimmer() {}

/// Returns free pages to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: a thread-safe glibc call that takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Bytes of heap in use now.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn in_use() -> usize {
    // SAFETY: a thread-safe glibc call that takes no pointer.
    unsafe { libc::mallinfo2().uordblks }
}

/// Fallen from the peak since the last trim, still since the previous tick.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn burst_over(peak: usize, prev: usize, now: usize) -> bool {
    peak.saturating_sub(now) >= FALLEN && now.abs_diff(prev) < QUIET
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    #[test]
    fn trims_only_once_a_fallen_heap_is_quiet() {
        let mib = 1024 * 1024;
        // Fallen from 8 MiB to 4 and still: the burst is over.
        assert!(burst_over(8 * mib, 4 * mib, 4 * mib));
        // Still falling: the burst goes on.
        assert!(!burst_over(8 * mib, 5 * mib, 4 * mib));
        // Held at its peak (10k open connections): nothing to give back, and a trim would
        // stall them all.
        assert!(!burst_over(200 * mib, 200 * mib, 200 * mib));
    }
}
