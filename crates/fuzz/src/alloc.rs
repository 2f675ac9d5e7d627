//! The global allocator: `System`, watched.
//!
//! Every allocation's size is recorded (the largest since the last [`take_largest`]). Two
//! thresholds make "no single allocation beyond a stated bound" checkable without crashing the
//! harness:
//!
//! - above the **bound** (`--max-alloc-mib`, default 256 MiB) an allocation is a finding: it is
//!   recorded ([`take_over_bound`]) and still served, so the execution runs to its end and the
//!   harness reports it like a panic, with the input saved;
//! - above the **ceiling** (`--abort-alloc-mib`, default 2 GiB) it is refused. Refusing means
//!   returning null, and Rust answers a null from the global allocator by aborting the process
//!   (`handle_alloc_error`; the hook that could turn it into a panic is unstable), so before
//!   refusing, the allocator calls the refusal hook ([`on_refusal`]), which saves the input and
//!   says why. The run then ends with the abort's non-zero status rather than with the machine
//!   out of memory, which is what serving a request that size and filling it would risk.
//!
//! Panicking inside an allocator is undefined behaviour, so it never does; the hook only writes
//! a file and a line to stderr (small allocations of its own, which pass through here again,
//! far below either threshold).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;

/// The allocator to install with `#[global_allocator]`.
pub struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);
static OVER_BOUND: AtomicUsize = AtomicUsize::new(0);
static BOUND: AtomicUsize = AtomicUsize::new(usize::MAX);
static CEILING: AtomicUsize = AtomicUsize::new(usize::MAX);
static REFUSAL_HOOK: OnceLock<fn(usize)> = OnceLock::new();

/// Sets the bound (a finding above it) and the ceiling (refused above it), in bytes.
pub fn set_limits(bound: usize, ceiling: usize) {
    BOUND.store(bound, Relaxed);
    CEILING.store(ceiling.max(bound), Relaxed);
}

pub fn bound() -> usize {
    BOUND.load(Relaxed)
}

pub fn ceiling() -> usize {
    CEILING.load(Relaxed)
}

/// Registers what runs just before an allocation above the ceiling is refused (first call wins).
pub fn on_refusal(hook: fn(usize)) {
    let _ = REFUSAL_HOOK.set(hook);
}

/// The largest single allocation since the last call, in bytes.
pub fn take_largest() -> usize {
    LARGEST.swap(0, Relaxed)
}

/// The largest single allocation above the bound since the last call, or 0 if there was none.
pub fn take_over_bound() -> usize {
    OVER_BOUND.swap(0, Relaxed)
}

/// Records an allocation of `size` bytes; false when it must be refused.
fn admit(size: usize) -> bool {
    LARGEST.fetch_max(size, Relaxed);
    if size <= BOUND.load(Relaxed) {
        return true;
    }
    OVER_BOUND.fetch_max(size, Relaxed);
    if size <= CEILING.load(Relaxed) {
        return true;
    }
    if let Some(hook) = REFUSAL_HOOK.get() {
        hook(size);
    }
    false
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, or returns
// null, which `GlobalAlloc` allows for a request it cannot serve.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if admit(layout.size()) {
            unsafe { System.alloc(layout) }
        } else {
            std::ptr::null_mut()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if admit(layout.size()) {
            unsafe { System.alloc_zeroed(layout) }
        } else {
            std::ptr::null_mut()
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if admit(new_size) {
            unsafe { System.realloc(ptr, layout, new_size) }
        } else {
            std::ptr::null_mut()
        }
    }
}
