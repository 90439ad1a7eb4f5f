//! A producer's bugs, made on purpose: a stream that changes what each
//! exported batch declares (its lengths, null counts, buffer and child
//! pointers) before the consumer sees it. Only changes that never make a
//! declared size larger than its allocation: a consumer cannot detect a lie
//! about how much memory a pointer holds, everything else it must catch.
#![allow(dead_code)]

use std::ffi::{c_char, c_int, c_void};
use std::ptr;

use fstore::arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use fstore::arrow::ffi_stream::FFI_ArrowArrayStream;

/// The C Data Interface's `struct ArrowArray`, as the Arrow specification
/// fixes it, with every field open to change.
#[repr(C)]
pub struct RawArray {
    pub length: i64,
    pub null_count: i64,
    pub offset: i64,
    pub n_buffers: i64,
    pub n_children: i64,
    pub buffers: *mut *const c_void,
    pub children: *mut *mut RawArray,
    pub dictionary: *mut RawArray,
    pub release: Option<unsafe extern "C" fn(*mut RawArray)>,
    pub private_data: *mut c_void,
}

const _: () = assert!(std::mem::size_of::<RawArray>() == std::mem::size_of::<FFI_ArrowArray>());

impl RawArray {
    /// Child `index` of an array that has it.
    pub fn child(&mut self, index: usize) -> &mut RawArray {
        assert!((index as i64) < self.n_children && !self.children.is_null());
        unsafe { &mut **self.children.add(index) }
    }
}

/// Points `array`'s buffer `index` at `to`. The exporter's release callback
/// frees what it owns through its private data, never through these pointer
/// arrays, so the replacement array is simply leaked (a few bytes a test).
pub fn set_buffer(array: &mut RawArray, index: usize, to: *const c_void) {
    let count = array.n_buffers as usize;
    let mut pointers: Vec<*const c_void> = (0..count).map(|i| unsafe { *array.buffers.add(i) }).collect();
    pointers[index] = to;
    array.buffers = Box::leak(pointers.into_boxed_slice()).as_mut_ptr();
}

/// Points `array`'s child `index` at `to`, as [`set_buffer`] does buffers.
/// The child left out is still released by its exporter.
pub fn set_child(array: &mut RawArray, index: usize, to: *mut RawArray) {
    let count = array.n_children as usize;
    let mut pointers: Vec<*mut RawArray> = (0..count).map(|i| unsafe { *array.children.add(i) }).collect();
    pointers[index] = to;
    array.children = Box::leak(pointers.into_boxed_slice()).as_mut_ptr();
}

/// What a tampered stream does to each batch before handing it over.
pub type Tamper = fn(&mut RawArray);

struct Tampered {
    inner: FFI_ArrowArrayStream,
    tamper: Box<dyn FnMut(&mut RawArray) + Send>,
}

/// `inner`'s batches, each changed by `tamper` on its way out.
pub fn tampered_stream(inner: FFI_ArrowArrayStream, tamper: impl FnMut(&mut RawArray) + Send + 'static) -> FFI_ArrowArrayStream {
    let private = Box::into_raw(Box::new(Tampered { inner, tamper: Box::new(tamper) }));
    unsafe {
        FFI_ArrowArrayStream::new_unchecked(
            Some(get_schema),
            Some(get_next),
            Some(get_last_error),
            Some(release),
            private.cast(),
        )
    }
}

unsafe fn tampered<'a>(stream: *mut FFI_ArrowArrayStream) -> &'a mut Tampered {
    &mut *(*stream).private_data().cast::<Tampered>()
}

unsafe extern "C" fn get_schema(stream: *mut FFI_ArrowArrayStream, out: *mut FFI_ArrowSchema) -> c_int {
    let t = tampered(stream);
    (t.inner.get_schema().expect("a live stream"))(&mut t.inner, out)
}

unsafe extern "C" fn get_next(stream: *mut FFI_ArrowArrayStream, out: *mut FFI_ArrowArray) -> c_int {
    let t = tampered(stream);
    let code = (t.inner.get_next().expect("a live stream"))(&mut t.inner, out);
    if code == 0 && !(*out).is_released() {
        (t.tamper)(&mut *out.cast::<RawArray>());
    }
    code
}

unsafe extern "C" fn get_last_error(stream: *mut FFI_ArrowArrayStream) -> *const c_char {
    let t = tampered(stream);
    match t.inner.get_last_error() {
        Some(f) => f(&mut t.inner),
        None => ptr::null(),
    }
}

unsafe extern "C" fn release(stream: *mut FFI_ArrowArrayStream) {
    let private = (*stream).private_data().cast::<Tampered>();
    drop(Box::from_raw(private)); // releases the inner stream
    (*stream).set_release(None);
}
