//! The `ratelimit` data type: how a key stores a limiter in memory, and the callbacks through
//! which the server saves, loads, rewrites, copies, digests, sizes and frees it.
//!
//! A key's value is one pointer, in one of two forms:
//! - a small limiter (every algorithm but the sliding log) is one packed block,
//!   `[tag][length][fields]`, with the fields as `encoding` writes them. A token bucket in
//!   typical use packs into about 16 bytes, where its structs would take 64.
//! - a sliding log is a boxed [`Sliding`], whose pointer is marked by setting its lowest bit.
//!   Packed blocks are allocated 2-byte aligned, so their pointers never have that bit set.
//!
//! The packed block is read into a [`Limiter`] for each command and written back in place when
//! its length is unchanged. A sliding log is worked on where it is.

use std::alloc::Layout;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use valkey_module::native_types::ValkeyType;
use valkey_module::raw;

use crate::encoding::{self, Reader};
use crate::ffi::{api, Key};
use crate::limiter::{Algorithm, Limiter};
use crate::sliding::Sliding;

/// The type name: `TYPE` reports it and RDB files store it. It must be nine characters.
pub const TYPE_NAME: &str = "ratelimit";

/// The RDB encoding version of the type. Version 1 stores one string: `encoding::encode`.
pub const ENCODING_VERSION: i32 = 1;

/// Marks a value pointer that points to a boxed sliding log.
const SLIDING_MARK: usize = 1;

/// Alignment of packed blocks, which keeps [`SLIDING_MARK`] clear in their pointers.
const PACKED_ALIGN: usize = 2;

/// Bytes before the fields in a packed block: the tag and the length.
const PACKED_HEADER: usize = 2;

/// The longest packed block: a rate limiter with every field at its largest.
const PACKED_MAX: usize = 64;

pub static RATELIMIT_TYPE: ValkeyType = ValkeyType::new(
    TYPE_NAME,
    ENCODING_VERSION,
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: Some(rdb_load),
        rdb_save: Some(rdb_save),
        aof_rewrite: Some(aof_rewrite),
        mem_usage: Some(mem_usage),
        digest: Some(digest),
        free: Some(free),
        // The module keeps no data outside keys.
        aux_load: None,
        aux_save: None,
        aux_save2: None,
        aux_save_triggers: 0,
        free_effort: Some(free_effort),
        // Nothing to do before a key is unlinked: no waiter or index refers to values.
        unlink: None,
        copy: Some(copy),
        // Values are small and short-lived; the default defragmentation passes them by.
        defrag: None,
        mem_usage2: None,
        free_effort2: None,
        unlink2: None,
        copy2: None,
    },
);

/// Returns the type handle the server gave at load.
pub fn module_type() -> *mut raw::RedisModuleType {
    *RATELIMIT_TYPE.raw_type.borrow()
}

/// A fixed-size buffer for packing a small limiter without allocating.
struct Packed {
    bytes: [u8; PACKED_MAX],
    len: usize,
}

impl encoding::Sink for Packed {
    fn push(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }
}

fn pack(limiter: &Limiter) -> Packed {
    let mut packed = Packed {
        bytes: [0; PACKED_MAX],
        len: PACKED_HEADER,
    };
    encoding::encode_fields(limiter, &mut packed);
    packed.bytes[0] = limiter.algorithm().tag();
    packed.bytes[1] = packed.len as u8;
    packed
}

fn packed_layout(len: usize) -> Layout {
    Layout::from_size_align(len, PACKED_ALIGN).expect("a packed block has a valid layout")
}

/// Turns a limiter into a value pointer for a key, which then owns it.
pub fn into_value(limiter: Limiter) -> *mut c_void {
    match limiter {
        Limiter::Sliding(sliding) => {
            let ptr = Box::into_raw(sliding) as usize;
            (ptr | SLIDING_MARK) as *mut c_void
        }
        small => {
            let packed = pack(&small);
            unsafe {
                let block = std::alloc::alloc(packed_layout(packed.len));
                if block.is_null() {
                    std::alloc::handle_alloc_error(packed_layout(packed.len));
                }
                std::ptr::copy_nonoverlapping(packed.bytes.as_ptr(), block, packed.len);
                block.cast()
            }
        }
    }
}

/// Returns the packed block behind a value pointer without the mark.
///
/// # Safety
/// `value` came from [`into_value`] for a small limiter and is still owned by a key.
unsafe fn packed_bytes<'a>(value: *const c_void) -> &'a [u8] {
    let block = value.cast::<u8>();
    let len = usize::from(*block.add(1));
    std::slice::from_raw_parts(block, len)
}

fn sliding_ptr(value: *const c_void) -> Option<*mut Sliding> {
    let address = value as usize;
    (address & SLIDING_MARK != 0).then_some((address & !SLIDING_MARK) as *mut Sliding)
}

/// A limiter read from a key's value. The key still owns a sliding log, so dropping this frees
/// nothing; [`write_back`] stores changes.
pub struct Stored {
    pub limiter: ManuallyDrop<Limiter>,
    value: NonNull<c_void>,
}

/// Reads the limiter a key's value holds.
///
/// # Safety
/// `value` came from [`into_value`] and is still owned by a key.
pub unsafe fn read(value: NonNull<c_void>) -> Stored {
    let limiter = match sliding_ptr(value.as_ptr()) {
        Some(sliding) => Limiter::Sliding(Box::from_raw(sliding)),
        None => {
            let bytes = packed_bytes(value.as_ptr());
            let algorithm = Algorithm::from_tag(bytes[0]).expect("a packed block has a valid tag");
            let mut reader = Reader::new(&bytes[PACKED_HEADER..]);
            encoding::decode_fields(algorithm, &mut reader).expect("a packed block decodes")
        }
    };
    Stored {
        limiter: ManuallyDrop::new(limiter),
        value,
    }
}

/// Stores a changed limiter back into the key it was read from.
///
/// # Safety
/// `stored` came from [`read`] on the value `key` contains now.
pub unsafe fn write_back(key: &Key, stored: Stored) {
    if let Limiter::Sliding(sliding) = &*stored.limiter {
        // The log was changed where it is, so the key already points to it.
        debug_assert_eq!(
            Some(&**sliding as *const Sliding as *mut Sliding),
            sliding_ptr(stored.value.as_ptr())
        );
        return;
    }

    let packed = pack(&stored.limiter);
    let old = stored.value.as_ptr();
    let old_len = packed_bytes(old).len();
    if packed.len == old_len {
        std::ptr::copy_nonoverlapping(packed.bytes.as_ptr(), old.cast::<u8>(), packed.len);
    } else {
        let limiter = ManuallyDrop::into_inner(stored.limiter);
        // The key contains a value of this type, and nothing else owns the new one.
        let replaced = key.replace_value(module_type(), into_value(limiter));
        free_value(replaced);
    }
}

/// Frees a value pointer made by [`into_value`].
///
/// # Safety
/// `value` came from [`into_value`] and no key owns it any more.
unsafe fn free_value(value: *mut c_void) {
    match sliding_ptr(value) {
        Some(sliding) => drop(Box::from_raw(sliding)),
        None => {
            let len = packed_bytes(value).len();
            std::alloc::dealloc(value.cast(), packed_layout(len));
        }
    }
}

/// Runs `f` on the limiter behind a value pointer without taking it over.
///
/// # Safety
/// `value` came from [`into_value`] and is still owned by a key.
unsafe fn inspect<R>(value: *const c_void, f: impl FnOnce(&Limiter) -> R) -> R {
    let Some(value) = NonNull::new(value.cast_mut()) else {
        unreachable!("the server passes no null value to type callbacks")
    };
    let stored = read(value);
    f(&stored.limiter)
}

/// # Safety
/// The server calls this with an RDB reader positioned at a value of this type.
unsafe extern "C" fn rdb_load(io: *mut raw::RedisModuleIO, encoding_version: c_int) -> *mut c_void {
    if encoding_version > ENCODING_VERSION {
        log_io_warning(
            io,
            &format!(
                "cannot load a ratelimit value of encoding version {encoding_version}: this \
                 module reads versions up to {ENCODING_VERSION}; upgrade the module"
            ),
        );
        return std::ptr::null_mut();
    }

    let mut len = 0;
    let buffer = api!(RedisModule_LoadStringBuffer)(io, &mut len);
    if buffer.is_null() || api!(RedisModule_IsIOError)(io) != 0 {
        return std::ptr::null_mut();
    }
    let result = encoding::decode(std::slice::from_raw_parts(buffer.cast::<u8>(), len));
    api!(RedisModule_Free)(buffer.cast());

    match result {
        Ok(limiter) => into_value(limiter),
        Err(error) => {
            log_io_warning(io, &format!("cannot load a ratelimit value: {error}"));
            std::ptr::null_mut()
        }
    }
}

fn log_io_warning(io: *mut raw::RedisModuleIO, message: &str) {
    let message = std::ffi::CString::new(message).unwrap_or_default();
    unsafe {
        api!(RedisModule_LogIOError)(io, c"warning".as_ptr(), c"%s".as_ptr(), message.as_ptr())
    };
}

/// # Safety
/// The server calls this with an RDB writer and a value of this type.
unsafe extern "C" fn rdb_save(io: *mut raw::RedisModuleIO, value: *mut c_void) {
    let bytes = inspect(value, encoding::encode);
    api!(RedisModule_SaveStringBuffer)(io, bytes.as_ptr().cast(), bytes.len());
}

/// Rewrites a key as `RL.LOAD key state`; the server adds its `PEXPIREAT`.
///
/// # Safety
/// The server calls this with an AOF writer, the key name and a value of this type.
unsafe extern "C" fn aof_rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    let bytes = inspect(value, encoding::encode);
    api!(RedisModule_EmitAOF)(
        aof,
        LOAD_COMMAND.as_ptr(),
        c"sb".as_ptr(),
        key,
        bytes.as_ptr().cast::<c_char>(),
        bytes.len(),
    );
}

/// The command that recreates a key from its encoded state.
pub const LOAD_COMMAND: &CStr = c"RL.LOAD";

/// Reports the heap bytes of a value, as the allocator counts them.
///
/// # Safety
/// The server calls this with a value of this type.
unsafe extern "C" fn mem_usage(value: *const c_void) -> usize {
    let malloc_size = api!(RedisModule_MallocSize);
    match sliding_ptr(value) {
        Some(sliding) => malloc_size(sliding.cast()) + (*sliding).allocated_bytes(),
        None => malloc_size(value.cast_mut()),
    }
}

/// Adds a value to `DEBUG DIGEST`: equal limiters give equal digests on every server.
///
/// # Safety
/// The server calls this with a digest and a value of this type.
unsafe extern "C" fn digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    let bytes = inspect(value, encoding::encode);
    api!(RedisModule_DigestAddStringBuffer)(md, bytes.as_ptr().cast(), bytes.len());
    api!(RedisModule_DigestEndSequence)(md);
}

/// # Safety
/// The server calls this with a value of this type that no key owns any more, possibly on a
/// background thread. It touches nothing but the value.
unsafe extern "C" fn free(value: *mut c_void) {
    free_value(value);
}

/// Tells the server how much work freeing a value is, so that it frees large sliding logs
/// on a background thread.
///
/// # Safety
/// The server calls this with a value of this type.
unsafe extern "C" fn free_effort(_key: *mut raw::RedisModuleString, value: *const c_void) -> usize {
    match sliding_ptr(value) {
        Some(sliding) => (*sliding).entry_count().max(1),
        None => 1,
    }
}

/// Copies a value for `COPY`.
///
/// # Safety
/// The server calls this with a value of this type.
unsafe extern "C" fn copy(
    _from_key: *mut raw::RedisModuleString,
    _to_key: *mut raw::RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    inspect(value, |limiter| into_value(limiter.clone()))
}
