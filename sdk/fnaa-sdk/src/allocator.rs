//! The global allocator of plugin components: small blocks come from
//! per-size free lists, everything else from the standard allocator.
//!
//! Why: every string and list of a batch is allocated in the guest (the
//! host calls `cabi_realloc` once per field) and freed when the batch is
//! dropped, a few hundred times per call. The standard allocator of
//! `wasm32-wasip2` (wasi-libc's dlmalloc) spends ~200 instructions on each
//! `malloc` and `free`; a free-list pop or push is a handful.
//!
//! Blocks of up to [`MAX_SMALL`] bytes (alignment up to [`ALIGN`]) are
//! rounded up to a power of two, carved from chunks taken from the standard
//! allocator, and kept on the free list of their size when freed, for the
//! next block of that size: memory freed by a batch is reused by the next
//! one. The price is the rounding (at most half of a small block) and that
//! small blocks are never given back for other sizes; a guest's memory
//! never shrinks anyway.
//!
//! Only on `wasm32` without threads, where a component instance runs on one
//! thread; native builds (unit tests) keep the standard allocator.

// A global allocator cannot be written without `unsafe`; this module is the
// only place in the SDK that needs it.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// Smallest block: holds the free-list link and keeps every block aligned
/// to [`ALIGN`].
const MIN_SHIFT: u32 = 4;
/// Largest block served from the free lists.
const MAX_SMALL: usize = 4096;
/// Number of block sizes: 16, 32, ..., 4096 bytes.
const CLASSES: usize = (MAX_SMALL.trailing_zeros() - MIN_SHIFT + 1) as usize;
/// Alignment of every small block (blocks are carved at multiples of 16).
const ALIGN: usize = 1 << MIN_SHIFT;
/// Bytes taken from the standard allocator at a time: few at first, so
/// that an instance that allocates little fits in the pages the standard
/// allocator already touched (thousands of instances live at once), then
/// doubling up to [`MAX_CHUNK`].
const FIRST_CHUNK: usize = 1024;
const MAX_CHUNK: usize = 64 * 1024;

/// The allocator; see the module documentation.
pub struct SizeClassAllocator {
    state: UnsafeCell<State>,
}

struct State {
    /// Head of the free list of each block size (a freed block stores the
    /// address of the next one in its first bytes).
    free: [*mut u8; CLASSES],
    /// The unused rest of the current chunk.
    next: *mut u8,
    end: *mut u8,
    /// Size of the next chunk.
    chunk: usize,
}

// SAFETY: only installed on wasm32 without the `atomics` feature, where a
// component instance runs on one thread; nothing can reach the state from
// two threads. (The unit tests use private instances, one per thread.)
unsafe impl Sync for SizeClassAllocator {}

impl SizeClassAllocator {
    /// An allocator with empty free lists.
    pub const fn new() -> Self {
        SizeClassAllocator {
            state: UnsafeCell::new(State {
                free: [ptr::null_mut(); CLASSES],
                next: ptr::null_mut(),
                end: ptr::null_mut(),
                chunk: FIRST_CHUNK,
            }),
        }
    }
}

impl Default for SizeClassAllocator {
    fn default() -> Self {
        SizeClassAllocator::new()
    }
}

/// The free list serving `layout`, or `None` for the standard allocator.
/// A pure function of the layout, so that `dealloc` finds the same one.
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() > MAX_SMALL || layout.align() > ALIGN {
        return None;
    }
    let size = layout.size().max(ALIGN);
    Some((size.next_power_of_two().trailing_zeros() - MIN_SHIFT) as usize)
}

#[inline]
fn block_size(class: usize) -> usize {
    ALIGN << class
}

impl State {
    /// A block of `class`: from its free list, else from the current chunk.
    #[inline]
    unsafe fn take(&mut self, class: usize) -> *mut u8 {
        let head = self.free[class];
        if !head.is_null() {
            // SAFETY: a block on a free list holds the next block's address.
            self.free[class] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let size = block_size(class);
        if (self.end as usize) - (self.next as usize) < size {
            // SAFETY: forwarded to the caller's contract.
            unsafe { self.refill(size) };
            if self.next.is_null() {
                return ptr::null_mut();
            }
        }
        let block = self.next;
        // SAFETY: `size` bytes are left in the chunk (checked above).
        self.next = unsafe { block.add(size) };
        block
    }

    /// Starts a new chunk, first filing what is left of the current one on
    /// the free lists so that nothing is lost.
    #[cold]
    unsafe fn refill(&mut self, size: usize) {
        while (self.end as usize) - (self.next as usize) >= ALIGN {
            let left = (self.end as usize) - (self.next as usize);
            let class = (usize::BITS - 1 - left.leading_zeros() - MIN_SHIFT) as usize;
            let class = class.min(CLASSES - 1);
            let block = self.next;
            // SAFETY: the block lies within the chunk's rest.
            unsafe {
                self.next = block.add(block_size(class));
                self.put(block, class);
            }
        }
        let bytes = self.chunk.max(size);
        self.chunk = (self.chunk * 2).min(MAX_CHUNK);
        // SAFETY: the layout has a non-zero size.
        let chunk = unsafe { System.alloc(Layout::from_size_align_unchecked(bytes, ALIGN)) };
        self.next = chunk;
        // A failed allocation leaves an empty chunk (`take` returns null).
        self.end = if chunk.is_null() {
            chunk
        } else {
            // SAFETY: the chunk is `bytes` long.
            unsafe { chunk.add(bytes) }
        };
    }

    #[inline]
    unsafe fn put(&mut self, block: *mut u8, class: usize) {
        // SAFETY: every block is at least 16 bytes and 16-aligned, room for
        // the link.
        unsafe { block.cast::<*mut u8>().write(self.free[class]) };
        self.free[class] = block;
    }
}

// SAFETY: small blocks are handed out at most once until freed, are at
// least `layout.size()` bytes long and 16-aligned (every block size is a
// multiple of 16 and chunks are 16-aligned); everything else is the
// standard allocator's.
unsafe impl GlobalAlloc for SizeClassAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            // SAFETY: single-threaded (see `Sync`), and the allocator never
            // re-enters itself.
            Some(class) => unsafe { (*self.state.get()).take(class) },
            None => unsafe { System.alloc(layout) },
        }
    }

    #[inline]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class_of(layout) {
            // SAFETY: `block` came from `alloc` with this layout, hence from
            // this free list's size.
            Some(class) => unsafe { (*self.state.get()).put(block, class) },
            None => unsafe { System.dealloc(block, layout) },
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            Some(_) => {
                // SAFETY: as `alloc`; a reused block must be cleared.
                let block = unsafe { self.alloc(layout) };
                if !block.is_null() {
                    unsafe { block.write_bytes(0, layout.size()) };
                }
                block
            }
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    #[inline]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `GlobalAlloc::realloc` guarantees a valid new layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            // The block already has room (strings and vectors that grow a
            // little, or shrink).
            (Some(old), Some(new)) if old == new => block,
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            _ => {
                // SAFETY: copy into a fresh block, then free the old one.
                unsafe {
                    let moved = self.alloc(new_layout);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                    moved
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_to_powers_of_two() {
        let class = |size, align| class_of(Layout::from_size_align(size, align).unwrap());
        assert_eq!(class(1, 1), Some(0));
        assert_eq!(class(16, 8), Some(0));
        assert_eq!(class(17, 1), Some(1));
        assert_eq!(class(256, 1), Some(4));
        assert_eq!(class(4096, 16), Some(CLASSES - 1));
        assert_eq!(class(4097, 1), None);
        assert_eq!(class(8, 32), None);
    }

    #[test]
    fn reuses_freed_blocks_and_keeps_contents_on_realloc() {
        // A private instance: the tests' global allocator stays the standard one.
        let a = SizeClassAllocator::new();
        let small = Layout::from_size_align(24, 1).unwrap();
        unsafe {
            let p = a.alloc(small);
            assert!(!p.is_null() && (p as usize).is_multiple_of(ALIGN));
            p.write_bytes(7, 24);
            let grown = a.realloc(p, small, 30);
            assert_eq!(grown, p, "same block size: no move");
            let moved = a.realloc(grown, Layout::from_size_align(30, 1).unwrap(), 100);
            assert_ne!(moved, p);
            assert!((0..24).all(|i| *moved.add(i) == 7));
            let q = a.alloc(small);
            assert_eq!(q, p, "the freed block is reused");
            let big = Layout::from_size_align(10_000, 8).unwrap();
            let b = a.alloc_zeroed(big);
            assert!((0..10_000).all(|i| *b.add(i) == 0));
            a.dealloc(b, big);
            a.dealloc(q, small);
            a.dealloc(moved, Layout::from_size_align(100, 1).unwrap());
        }
    }

    #[test]
    fn many_blocks_of_mixed_sizes_do_not_overlap() {
        let a = SizeClassAllocator::new();
        let mut blocks = Vec::new();
        for i in 0..5_000usize {
            let layout = Layout::from_size_align(1 + (i * 37) % 5000, 1 << (i % 5)).unwrap();
            let p = unsafe { a.alloc(layout) };
            assert!(!p.is_null() && (p as usize).is_multiple_of(layout.align()));
            unsafe { p.write_bytes((i % 251) as u8, layout.size()) };
            blocks.push((p, layout, (i % 251) as u8));
            if i % 3 == 0 {
                let (p, layout, _) = blocks.swap_remove(i % blocks.len());
                unsafe { a.dealloc(p, layout) };
            }
        }
        for (p, layout, byte) in blocks {
            assert!((0..layout.size()).all(|i| unsafe { *p.add(i) } == byte));
            unsafe { a.dealloc(p, layout) };
        }
    }
}
