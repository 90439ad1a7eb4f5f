//! Structs that cross the boundary travel with their size, so that they can
//! grow without breaking programs built against an older header: the library
//! writes (or reads) only the bytes both sides know, and zero-fills the rest
//! of a caller's larger struct.

use std::mem::{size_of, MaybeUninit};

use crate::error::{Error, Result};

/// Checks an out-parameter and its size before a call does any work, so
/// that a bad one fails the call with nothing done.
pub(crate) fn check_out<T>(out: *mut T, out_size: usize, name: &str) -> Result<()> {
    if out.is_null() {
        return Err(Error::invalid_argument(format!("{name} is NULL")));
    }
    if out_size == 0 {
        return Err(Error::invalid_argument(format!("{name}_size is 0; pass sizeof *{name}")));
    }
    Ok(())
}

/// Writes `value` into the caller's `out` of `out_size` bytes, which passed
/// [`check_out`].
pub(crate) unsafe fn write_sized<T>(out: *mut T, out_size: usize, value: T) {
    let known = out_size.min(size_of::<T>());
    let value = MaybeUninit::new(value);
    // Bytes, padding included, as MaybeUninit<u8>: no byte is read as a value.
    std::ptr::copy_nonoverlapping(value.as_ptr() as *const MaybeUninit<u8>, out as *mut MaybeUninit<u8>, known);
    if out_size > known {
        std::ptr::write_bytes((out as *mut u8).add(known), 0, out_size - known);
    }
}

/// Reads the caller's `input` of `in_size` bytes over `defaults`: fields the
/// caller's (older) struct lacks keep their defaults.
pub(crate) unsafe fn read_sized<T: Copy>(input: *const T, in_size: usize, defaults: T) -> T {
    let mut value = MaybeUninit::new(defaults);
    let known = in_size.min(size_of::<T>());
    std::ptr::copy_nonoverlapping(input as *const MaybeUninit<u8>, value.as_mut_ptr() as *mut MaybeUninit<u8>, known);
    value.assume_init()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C)]
    #[derive(Copy, Clone, Debug, PartialEq)]
    struct V2 {
        a: u64,
        b: u64,
    }

    #[test]
    fn older_callers_get_a_prefix_newer_ones_get_zeros() {
        let value = V2 { a: 1, b: 2 };
        // An older caller knows only `a`.
        let mut old = [u64::MAX; 2];
        unsafe { write_sized(old.as_mut_ptr() as *mut V2, 8, value) };
        assert_eq!(old, [1, u64::MAX], "nothing past its 8 bytes is touched");
        // A newer caller has a third field, which is zeroed.
        let mut new = [u64::MAX; 3];
        unsafe { write_sized(new.as_mut_ptr() as *mut V2, 24, value) };
        assert_eq!(new, [1, 2, 0]);
        let err = check_out(new.as_mut_ptr() as *mut V2, 0, "out").unwrap_err();
        assert!(err.message().contains("out_size is 0"), "{err}");
        assert!(check_out(std::ptr::null_mut::<V2>(), 16, "out").unwrap_err().message().contains("out is NULL"));
        assert!(check_out(new.as_mut_ptr() as *mut V2, 16, "out").is_ok());

        let input = [7u64];
        let read = unsafe { read_sized(input.as_ptr() as *const V2, 8, V2 { a: 0, b: 9 }) };
        assert_eq!(read, V2 { a: 7, b: 9 }, "a missing field keeps its default");
    }
}
