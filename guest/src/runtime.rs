//! What std would otherwise provide the component: an allocator and a panic
//! handler. Compiled only into the component itself (`export` on wasm).
//!
//! The allocator is a size-class free list, about half a kilobyte of code
//! where a general-purpose allocator costs the component 6 to 10 KB. A
//! request is rounded up to a power of two (16 bytes at least); freed blocks
//! go on their class's list and serve the next request of that class.
//! Blocks below 64 KiB are cut, one at a time as they are first needed,
//! from a wasm page of their own class, so each is aligned to its own size,
//! which covers any alignment a layout of that size can ask for; larger
//! blocks are whole pages. Cutting lazily keeps a fresh instance from
//! touching (and the host from zeroing) memory it does not use. The price
//! is up to half of each block unused, which for records of kilobytes and
//! a 16 MB input ceiling is a good trade; memory is reused from one call to
//! the next and never returned, as wasm memory cannot shrink anyway.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::UnsafeCell;
use core::ptr;

const PAGE_SHIFT: u32 = 16;
const PAGE: usize = 1 << PAGE_SHIFT;
const MIN_SHIFT: u32 = 4;
/// One list per power of two from 16 bytes to 2 GiB.
const CLASSES: usize = 32 - MIN_SHIFT as usize;

struct Allocator {
    /// The head of each class's free list; a free block's first word points
    /// at the next one.
    free: UnsafeCell<[*mut u8; CLASSES]>,
    /// Where each small class's next never-used block starts; on a page
    /// boundary (null included) the class's page is used up.
    fresh: UnsafeCell<[*mut u8; CLASSES]>,
}

// The component runs single-threaded: nothing can race on the lists.
unsafe impl Sync for Allocator {}

#[global_allocator]
static ALLOCATOR: Allocator = Allocator {
    free: UnsafeCell::new([ptr::null_mut(); CLASSES]),
    fresh: UnsafeCell::new([ptr::null_mut(); CLASSES]),
};

/// The class of a layout: log2 of its block size, less [`MIN_SHIFT`].
fn class(layout: Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(1 << MIN_SHIFT);
    let shift = usize::BITS - (size - 1).leading_zeros();
    let class = shift.checked_sub(MIN_SHIFT)? as usize;
    (class < CLASSES).then_some(class)
}

/// `pages` fresh wasm pages, or null when memory cannot grow.
fn grow(pages: usize) -> *mut u8 {
    let previous = wasm32::memory_grow(0, pages);
    if previous == usize::MAX {
        return ptr::null_mut();
    }
    (previous << PAGE_SHIFT) as *mut u8
}

unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class(layout) else {
            return ptr::null_mut();
        };
        let size = 1usize << (class as u32 + MIN_SHIFT);
        // SAFETY: single-threaded, and no reference to the lists outlives
        // this call.
        let free = unsafe { &mut *self.free.get() };
        let head = free[class];
        if !head.is_null() {
            // SAFETY: every block on a list is at least a word, aligned,
            // and holds the next block's address.
            free[class] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        if size >= PAGE {
            return grow(size >> PAGE_SHIFT);
        }
        // SAFETY: as above.
        let fresh = unsafe { &mut *self.fresh.get() };
        let mut block = fresh[class];
        // Blocks tile a page exactly, so the cursor lands on the boundary
        // when the page is used up.
        if (block as usize) & (PAGE - 1) == 0 {
            block = grow(1);
            if block.is_null() {
                return block;
            }
        }
        // SAFETY: the block lies within its class's page.
        fresh[class] = unsafe { block.add(size) };
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // A block was allocated with this layout, so its class exists.
        let Some(class) = class(layout) else {
            return;
        };
        // SAFETY: as in `alloc`; the block is ours again and big enough
        // for a word.
        let free = unsafe { &mut *self.free.get() };
        unsafe { block.cast::<*mut u8>().write(free[class]) };
        free[class] = block;
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees the new layout is valid.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if class(new_layout) == class(layout) {
            return block;
        }
        // SAFETY: as `GlobalAlloc::realloc`'s default, which this is but
        // for staying in place within a class.
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

/// A panic is a bug: trap, so the host drops this instance and carries on
/// with a fresh one. Nothing is printed (the component has no stderr); the
/// host reports the trap.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    wasm32::unreachable()
}

/// The C library provides `memcmp` to std builds; LLVM calls it for slice
/// and string comparisons. (`memcpy`, `memmove` and `memset` become bulk
/// memory instructions and need no definition.)
///
/// # Safety
///
/// `a` and `b` must be readable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut index = 0;
    while index < n {
        // SAFETY: within the `n` bytes the caller vouches for.
        let (x, y) = unsafe { (*a.add(index), *b.add(index)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        index += 1;
    }
    0
}

/// The canonical ABI's allocator export, through which the host places
/// arguments in the component's memory. wasi-libc provides it to std
/// builds; this is wit-bindgen's own definition for other targets.
///
/// # Safety
///
/// As for `GlobalAlloc::realloc` when `old_len` is not zero; `align` must
/// be a power of two.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    old_ptr: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    let block = if old_len == 0 {
        if new_len == 0 {
            return align as *mut u8;
        }
        // SAFETY: a power-of-two alignment and a non-zero size.
        unsafe { ALLOCATOR.alloc(Layout::from_size_align_unchecked(new_len, align)) }
    } else {
        // SAFETY: the host hands back a block it got from here.
        unsafe {
            ALLOCATOR.realloc(
                old_ptr,
                Layout::from_size_align_unchecked(old_len, align),
                new_len,
            )
        }
    };
    if block.is_null() {
        wasm32::unreachable();
    }
    block
}
