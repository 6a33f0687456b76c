//! Thin, safe wrappers over the few module API calls the commands make. The command path goes
//! through these instead of `valkey_module`'s `Context`, because that one copies every argument
//! into a new string and builds replies as trees. Here arguments stay borrowed and replies go
//! straight to the client.
//!
//! Every `unsafe` block of the crate that calls the server lives here or in `datatype.rs`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::NonNull;

use valkey_module::raw;

use crate::args::ArgList;

/// Calls a module API function. The server fills every pointer this crate uses before it calls
/// into the module, so a missing one is a server older than the module supports.
macro_rules! api {
    ($name:ident) => {
        valkey_module::raw::$name.expect(concat!(
            stringify!($name),
            " is missing from the module API"
        ))
    };
}
pub(crate) use api;

/// The global allocator: the server's allocator once the module is loaded, so that memory
/// shows in `INFO memory` and `MEMORY USAGE`, and the system allocator in unit tests and
/// benchmarks, which run without a server.
///
/// The choice cannot change under a live allocation: the server sets the API pointers before
/// any code of the module runs, and unit tests never set them.
pub struct ModuleAllocator;

unsafe impl GlobalAlloc for ModuleAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match raw::RedisModule_Alloc {
            // The server's allocator aligns to 16 bytes; a larger alignment is rounded into
            // the size the way valkey-module's own allocator does it.
            Some(alloc) => alloc(padded_size(layout)).cast(),
            None => System.alloc(layout),
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match raw::RedisModule_Calloc {
            Some(calloc) => calloc(1, padded_size(layout)).cast(),
            None => System.alloc_zeroed(layout),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match raw::RedisModule_Free {
            Some(free) => free(ptr.cast()),
            None => System.dealloc(ptr, layout),
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match raw::RedisModule_Realloc {
            Some(realloc) if layout.align() <= 16 => realloc(ptr.cast(), new_size).cast(),
            Some(_) => {
                let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                let new_ptr = self.alloc(new_layout);
                if !new_ptr.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new_ptr
            }
            None => System.realloc(ptr, layout, new_size),
        }
    }
}

fn padded_size(layout: Layout) -> usize {
    (layout.size() + layout.align() - 1) & !(layout.align() - 1)
}

/// Returns the command time, in milliseconds since the epoch: the clock that key expiry uses.
/// It is fixed for the length of a command, a MULTI/EXEC block or a script.
///
/// NOTE: Redis 7.0 has no cached command time in its module API, so there the module reads
/// the live clock, and calls inside one MULTI/EXEC block or script may see different times.
pub fn now_ms() -> u64 {
    let millis = match unsafe { raw::RedisModule_CachedMicroseconds } {
        Some(cached_micros) => unsafe { cached_micros() / 1000 },
        None => unsafe { api!(RedisModule_Milliseconds)() },
    };
    u64::try_from(millis).unwrap_or(0)
}

/// A command's context.
#[derive(Clone, Copy)]
pub struct Ctx(*mut raw::RedisModuleCtx);

/// The `GetContextFlags` bits this crate looks at.
pub const FLAG_MULTI: c_int = raw::REDISMODULE_CTX_FLAGS_MULTI as c_int;
pub const FLAG_LUA: c_int = raw::REDISMODULE_CTX_FLAGS_LUA as c_int;
pub const FLAG_DENY_BLOCKING: c_int = raw::REDISMODULE_CTX_FLAGS_DENY_BLOCKING as c_int;
pub const FLAG_LOADING: c_int = raw::REDISMODULE_CTX_FLAGS_LOADING as c_int;
pub const FLAG_OOM: c_int = raw::REDISMODULE_CTX_FLAGS_OOM as c_int;

/// Returns how long writes stay paused, in milliseconds, while a `CLIENT PAUSE WRITE` or a
/// failover pauses them, or `None` when writes may happen. `INFO clients` reports the pause in
/// `paused_actions`, which Valkey added after 8.0, in early 2025 (valkey-io/valkey pull
/// request 1519).
///
/// NOTE: an older server has no such field, so there this returns `None` even during a pause.
pub fn writes_paused_for_ms() -> Option<u64> {
    let info = valkey_module::ServerInfo::new("clients");
    let actions = info.field_c("paused_actions")?;
    if actions == "none" {
        return None;
    }
    let remaining_ms = info
        .field_c("paused_timeout_milliseconds")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    Some(remaining_ms)
}

impl Ctx {
    /// # Safety
    /// `ctx` is the context the server passed to the running callback.
    pub unsafe fn new(ctx: *mut raw::RedisModuleCtx) -> Ctx {
        Ctx(ctx)
    }

    pub fn raw(&self) -> *mut raw::RedisModuleCtx {
        self.0
    }

    pub fn flags(&self) -> c_int {
        unsafe { api!(RedisModule_GetContextFlags)(self.0) }
    }

    pub fn reply_i64(&self, value: i64) {
        unsafe { api!(RedisModule_ReplyWithLongLong)(self.0, value) };
    }

    pub fn reply_u64(&self, value: u64) {
        self.reply_i64(i64::try_from(value).unwrap_or(i64::MAX));
    }

    pub fn reply_array(&self, len: usize) {
        unsafe { api!(RedisModule_ReplyWithArray)(self.0, len as _) };
    }

    /// Starts a map: a map in RESP3, a flat array of names and values in RESP2.
    pub fn reply_map(&self, len: usize) {
        unsafe { api!(RedisModule_ReplyWithMap)(self.0, len as _) };
    }

    pub fn reply_bulk(&self, value: &[u8]) {
        unsafe {
            api!(RedisModule_ReplyWithStringBuffer)(self.0, value.as_ptr().cast(), value.len())
        };
    }

    pub fn reply_null(&self) {
        unsafe { api!(RedisModule_ReplyWithNull)(self.0) };
    }

    pub fn reply_ok(&self) {
        unsafe { api!(RedisModule_ReplyWithSimpleString)(self.0, c"OK".as_ptr()) };
    }

    /// Replies with an error. `message` starts with its error code; line breaks, which would
    /// break the protocol, become spaces.
    pub fn reply_error(&self, message: &str) {
        let message = message.replace(['\r', '\n', '\0'], " ");
        let message = CString::new(message).unwrap_or_default();
        unsafe { api!(RedisModule_ReplyWithError)(self.0, message.as_ptr()) };
    }

    pub fn open_key(&self, name: &Arg, write: bool) -> Key {
        let mode = if write {
            raw::REDISMODULE_READ | raw::REDISMODULE_WRITE
        } else {
            raw::REDISMODULE_READ
        };
        let key = unsafe { api!(RedisModule_OpenKey)(self.0, name.0, mode as c_int) };
        Key {
            ptr: key,
            ctx: self.0,
            name: name.0,
        }
    }

    /// Propagates `RL.APPLY key at_ms charged ALGORITHM params...` to replicas and the AOF
    /// after the current command. A policy has one to three parameters.
    pub fn replicate_apply(
        &self,
        key: &Arg,
        at_ms: i64,
        charged: i64,
        algorithm: &CStr,
        params: &[i64],
    ) {
        let replicate = unsafe { api!(RedisModule_Replicate) };
        let (ctx, name, word) = (self.0, c"RL.APPLY".as_ptr(), algorithm.as_ptr());
        // Each letter of a format names one argument: s a string, l a number, c a C string.
        unsafe {
            match *params {
                [a] => replicate(ctx, name, c"sllcl".as_ptr(), key.0, at_ms, charged, word, a),
                [a, b] => replicate(
                    ctx,
                    name,
                    c"sllcll".as_ptr(),
                    key.0,
                    at_ms,
                    charged,
                    word,
                    a,
                    b,
                ),
                [a, b, c] => replicate(
                    ctx,
                    name,
                    c"sllclll".as_ptr(),
                    key.0,
                    at_ms,
                    charged,
                    word,
                    a,
                    b,
                    c,
                ),
                _ => unreachable!("a policy has one to three parameters"),
            };
        }
    }

    /// Propagates `command key bytes`.
    pub fn replicate_bytes(&self, command: &CStr, key: &Arg, bytes: &[u8]) {
        unsafe {
            api!(RedisModule_Replicate)(
                self.0,
                command.as_ptr(),
                c"sb".as_ptr(),
                key.0,
                bytes.as_ptr().cast::<c_char>(),
                bytes.len(),
            )
        };
    }

    /// Invalidates `WATCH` and client-side caching for a key this command wrote.
    pub fn signal_modified(&self, key: &Arg) {
        unsafe { api!(RedisModule_SignalModifiedKey)(self.0, key.0) };
    }

    /// Fires a keyspace notification of the module class (`d`).
    pub fn notify(&self, event: &CStr, key: &Arg) {
        let class = raw::NotifyEvent::MODULE.bits();
        unsafe { api!(RedisModule_NotifyKeyspaceEvent)(self.0, class, event.as_ptr(), key.0) };
    }
}

/// Writes a line to the server log at `level` ("warning", "notice", "verbose" or "debug"),
/// attributed to the module when a context is given.
pub fn log(ctx: Option<Ctx>, level: &CStr, message: &str) {
    let ctx = ctx.map_or(std::ptr::null_mut(), |ctx| ctx.0);
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    unsafe { api!(RedisModule_Log)(ctx, level.as_ptr(), c"%s".as_ptr(), message.as_ptr()) };
}

/// One command argument, borrowed from the server for the length of the command.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Arg(*mut raw::RedisModuleString);

impl Arg {
    pub fn bytes(&self) -> &[u8] {
        let mut len = 0;
        unsafe {
            let ptr = api!(RedisModule_StringPtrLen)(self.0, &mut len);
            std::slice::from_raw_parts(ptr.cast(), len)
        }
    }

    pub fn raw(&self) -> *mut raw::RedisModuleString {
        self.0
    }
}

/// A string this module created, freed on drop.
pub struct OwnedString {
    ctx: *mut raw::RedisModuleCtx,
    string: *mut raw::RedisModuleString,
}

impl OwnedString {
    pub fn new(ctx: Ctx, bytes: &[u8]) -> OwnedString {
        let string =
            unsafe { api!(RedisModule_CreateString)(ctx.0, bytes.as_ptr().cast(), bytes.len()) };
        OwnedString { ctx: ctx.0, string }
    }

    /// Borrows the string as a command argument.
    pub fn arg(&self) -> Arg {
        Arg(self.string)
    }
}

impl Drop for OwnedString {
    fn drop(&mut self) {
        unsafe { api!(RedisModule_FreeString)(self.ctx, self.string) };
    }
}

/// The arguments of a command, the command name first.
pub struct Args<'a>(&'a [Arg]);

impl<'a> Args<'a> {
    /// # Safety
    /// `argv` and `argc` are the arguments the server passed to the running command.
    pub unsafe fn new(argv: *mut *mut raw::RedisModuleString, argc: c_int) -> Args<'a> {
        let argc = usize::try_from(argc).unwrap_or(0);
        if argv.is_null() || argc == 0 {
            return Args(&[]);
        }
        // `Arg` is a transparent wrapper of the string pointer.
        Args(std::slice::from_raw_parts(argv.cast::<Arg>(), argc))
    }

    pub fn arg(&self, index: usize) -> Arg {
        self.0[index]
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl ArgList for Args<'_> {
    fn count(&self) -> usize {
        self.0.len()
    }

    fn get(&self, index: usize) -> &[u8] {
        self.0[index].bytes()
    }
}

/// The kind of value in an open key.
pub enum KeyValue {
    Empty,
    /// A value of this module's type, as the data type stores it.
    Limiter(NonNull<c_void>),
    /// A value of any other type.
    Other,
}

/// An open key, closed on drop.
pub struct Key {
    ptr: *mut raw::RedisModuleKey,
    ctx: *mut raw::RedisModuleCtx,
    name: *mut raw::RedisModuleString,
}

impl Key {
    pub fn value(&self, module_type: *mut raw::RedisModuleType) -> KeyValue {
        unsafe {
            match api!(RedisModule_KeyType)(self.ptr) as isize {
                raw::REDISMODULE_KEYTYPE_EMPTY => KeyValue::Empty,
                raw::REDISMODULE_KEYTYPE_MODULE
                    if api!(RedisModule_ModuleTypeGetType)(self.ptr) == module_type =>
                {
                    match NonNull::new(api!(RedisModule_ModuleTypeGetValue)(self.ptr)) {
                        Some(value) => KeyValue::Limiter(value),
                        None => KeyValue::Other,
                    }
                }
                _ => KeyValue::Other,
            }
        }
    }

    /// Stores a new value in an empty key, or one of this module's type, which the server then
    /// frees.
    ///
    /// # Safety
    /// `module_type` is this module's type and `value` a value of it that nothing else owns.
    pub unsafe fn set_value(&self, module_type: *mut raw::RedisModuleType, value: *mut c_void) {
        unsafe { api!(RedisModule_ModuleTypeSetValue)(self.ptr, module_type, value) };
    }

    /// Swaps the value of a key of this module's type without freeing the old one, which is
    /// returned.
    ///
    /// # Safety
    /// As for [`Key::set_value`], and the key contains a value of `module_type`.
    pub unsafe fn replace_value(
        &self,
        module_type: *mut raw::RedisModuleType,
        value: *mut c_void,
    ) -> *mut c_void {
        let mut old = std::ptr::null_mut();
        unsafe { api!(RedisModule_ModuleTypeReplaceValue)(self.ptr, module_type, value, &mut old) };
        old
    }

    /// Sets the key to expire at `at_ms`, milliseconds since the epoch.
    pub fn expire_at(&self, at_ms: i64) {
        unsafe { api!(RedisModule_SetAbsExpire)(self.ptr, at_ms) };
    }

    /// Returns the key's expiry in milliseconds since the epoch, or `None`.
    pub fn expiry_ms(&self) -> Option<i64> {
        let at_ms = unsafe { api!(RedisModule_GetAbsExpire)(self.ptr) };
        (at_ms >= 0).then_some(at_ms)
    }

    /// Deletes the key; the server frees its value.
    pub fn delete(&self) {
        unsafe { api!(RedisModule_DeleteKey)(self.ptr) };
    }

    pub fn ctx(&self) -> *mut raw::RedisModuleCtx {
        self.ctx
    }

    pub fn name(&self) -> *mut raw::RedisModuleString {
        self.name
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            unsafe { api!(RedisModule_CloseKey)(self.ptr) };
        }
    }
}

impl Ctx {
    /// Checks whether the server calls the command only to learn where its keys are.
    pub fn is_keys_position_request(&self) -> bool {
        unsafe { api!(RedisModule_IsKeysPositionRequest)(self.0) != 0 }
    }

    /// Reports argument `index` as a key, in reply to a keys position request.
    pub fn key_at(&self, index: usize) {
        unsafe { api!(RedisModule_KeyAtPos)(self.0, index as c_int) };
    }

    pub fn selected_db(&self) -> c_int {
        unsafe { api!(RedisModule_GetSelectedDb)(self.0) }
    }

    pub fn select_db(&self, db: c_int) {
        unsafe { api!(RedisModule_SelectDb)(self.0, db) };
    }

    /// Blocks the calling client without a server timeout; the module unblocks it. The server
    /// calls `unblocked` only for `CLIENT UNBLOCK`.
    pub fn block_client(
        &self,
        reply_callback: raw::RedisModuleCmdFunc,
        unblocked: raw::RedisModuleCmdFunc,
        free_reply: Option<unsafe extern "C" fn(*mut raw::RedisModuleCtx, *mut c_void)>,
    ) -> *mut raw::RedisModuleBlockedClient {
        unsafe { api!(RedisModule_BlockClient)(self.0, reply_callback, unblocked, free_reply, 0) }
    }

    /// Propagates the running command as it was called.
    pub fn replicate_verbatim(&self) {
        unsafe { api!(RedisModule_ReplicateVerbatim)(self.0) };
    }
}

/// A command handler as the server calls it.
pub type Handler =
    extern "C" fn(*mut raw::RedisModuleCtx, *mut *mut raw::RedisModuleString, c_int) -> c_int;

/// One row of the command table.
pub struct CommandSpec {
    pub name: &'static CStr,
    pub handler: Handler,
    /// Command flags, such as `write deny-oom fast`.
    pub flags: &'static CStr,
    /// ACL categories besides those the flags imply, space separated.
    pub acl_categories: &'static CStr,
    pub docs: &'static CommandDocs,
}

/// The documentation of a command, as `COMMAND INFO` and `COMMAND DOCS` show it.
pub struct CommandDocs {
    pub summary: &'static CStr,
    pub complexity: &'static CStr,
    pub since: &'static CStr,
    /// Argument count with the command name; negative for "at least".
    pub arity: c_int,
    pub key_specs: &'static [KeySpecDoc],
    pub args: &'static [ArgDoc],
}

/// The position of a command's keys.
pub enum KeySpecDoc {
    /// One key at `index`.
    Single { index: c_int, flags: u32 },
    /// A count at `index`, followed by that many keys.
    Counted { index: c_int, flags: u32 },
}

/// The type of a documented argument.
#[derive(Clone, Copy)]
pub enum ArgType {
    Key,
    Integer,
    Text,
    UnixTime,
    Token,
    Block,
    OneOf,
}

/// One documented argument.
pub struct ArgDoc {
    pub name: &'static CStr,
    pub kind: ArgType,
    /// The word that introduces the argument, such as `COST`.
    pub token: Option<&'static CStr>,
    pub optional: bool,
    pub multiple: bool,
    pub summary: Option<&'static CStr>,
    pub subargs: &'static [ArgDoc],
}

impl ArgDoc {
    pub const fn new(name: &'static CStr, kind: ArgType) -> ArgDoc {
        ArgDoc {
            name,
            kind,
            token: None,
            optional: false,
            multiple: false,
            summary: None,
            subargs: &[],
        }
    }
}

/// Creates the `ratelimit` ACL category, where the server has module ACL categories (Valkey 8
/// and later). Returns whether it exists now.
pub fn add_acl_category(ctx: Ctx, name: &CStr) -> bool {
    match unsafe { raw::RedisModule_AddACLCategory } {
        Some(add) => unsafe { add(ctx.0, name.as_ptr()) == raw::REDISMODULE_OK as c_int },
        None => false,
    }
}

/// Sets the module options: RDB loading checks for I/O errors, and keys are signalled as
/// modified only when a command writes them, so a denied request does not break a `WATCH`.
pub fn set_module_options(ctx: Ctx) {
    let options = raw::REDISMODULE_OPTIONS_HANDLE_IO_ERRORS
        | raw::REDISMODULE_OPTION_NO_IMPLICIT_SIGNAL_MODIFIED;
    unsafe { api!(RedisModule_SetModuleOptions)(ctx.0, options as c_int) };
}

/// Creates a command and sets its documentation, key specs and ACL categories. Must run
/// while the module loads.
pub fn register_command(
    ctx: Ctx,
    spec: &CommandSpec,
    with_acl_category: bool,
) -> Result<(), String> {
    let failed = |step: &str| format!("cannot {step} for {}", spec.name.to_string_lossy());
    let (first_key, last_key, key_step) = legacy_key_range(spec.docs.key_specs);
    let status = unsafe {
        api!(RedisModule_CreateCommand)(
            ctx.0,
            spec.name.as_ptr(),
            Some(spec.handler),
            spec.flags.as_ptr(),
            first_key,
            last_key,
            key_step,
        )
    };
    if status != raw::REDISMODULE_OK as c_int {
        return Err(failed("create the command"));
    }
    let command = unsafe { api!(RedisModule_GetCommand)(ctx.0, spec.name.as_ptr()) };
    if command.is_null() {
        return Err(failed("find the command"));
    }

    let mut key_specs: Vec<raw::RedisModuleCommandKeySpec> =
        spec.docs.key_specs.iter().map(raw_key_spec).collect();
    key_specs.push(unsafe { std::mem::zeroed() });
    let mut arg_storage = Vec::new();
    let args = raw_args(spec.docs.args, &mut arg_storage);
    let version = raw::RedisModuleCommandInfoVersion {
        version: 1,
        sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
        sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
        sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
    };
    let info = raw::RedisModuleCommandInfo {
        version: &version,
        summary: spec.docs.summary.as_ptr(),
        complexity: spec.docs.complexity.as_ptr(),
        since: spec.docs.since.as_ptr(),
        history: std::ptr::null_mut(),
        tips: std::ptr::null(),
        arity: spec.docs.arity,
        key_specs: key_specs.as_mut_ptr(),
        args,
    };
    // The server copies everything `info` points to, so the vectors may go afterwards.
    if unsafe { api!(RedisModule_SetCommandInfo)(command, &info) } != raw::REDISMODULE_OK as c_int {
        return Err(failed("set the command info"));
    }

    if with_acl_category && !spec.acl_categories.is_empty() {
        if let Some(set_categories) = unsafe { raw::RedisModule_SetCommandACLCategories } {
            let status = unsafe { set_categories(command, spec.acl_categories.as_ptr()) };
            if status != raw::REDISMODULE_OK as c_int {
                return Err(failed("set the ACL categories"));
            }
        }
    }
    Ok(())
}

/// Returns the first key, last key and step for servers that predate key specs.
fn legacy_key_range(key_specs: &[KeySpecDoc]) -> (c_int, c_int, c_int) {
    match key_specs.first() {
        Some(KeySpecDoc::Single { index, .. }) => (*index, *index, 1),
        // A key count has no legacy form; the key specs describe it.
        Some(KeySpecDoc::Counted { .. }) | None => (0, 0, 0),
    }
}

fn raw_key_spec(doc: &KeySpecDoc) -> raw::RedisModuleCommandKeySpec {
    let mut key_spec: raw::RedisModuleCommandKeySpec = unsafe { std::mem::zeroed() };
    let (KeySpecDoc::Single { index, flags } | KeySpecDoc::Counted { index, flags }) = *doc;
    key_spec.flags = u64::from(flags);
    key_spec.begin_search_type = raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX;
    key_spec.bs.index.pos = index;
    match doc {
        KeySpecDoc::Single { .. } => {
            key_spec.find_keys_type =
                raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE;
            key_spec.fk.range = raw::RedisModuleCommandKeySpec__bindgen_ty_2__bindgen_ty_1 {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            };
        }
        KeySpecDoc::Counted { .. } => {
            key_spec.find_keys_type =
                raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_KEYNUM;
            key_spec.fk.keynum = raw::RedisModuleCommandKeySpec__bindgen_ty_2__bindgen_ty_2 {
                keynumidx: 0,
                firstkey: 1,
                keystep: 1,
            };
        }
    }
    key_spec
}

/// Builds a null-terminated argument array, keeping every array in `storage` so the pointers
/// stay valid until registration ends.
fn raw_args(
    docs: &[ArgDoc],
    storage: &mut Vec<Vec<raw::RedisModuleCommandArg>>,
) -> *mut raw::RedisModuleCommandArg {
    if docs.is_empty() {
        return std::ptr::null_mut();
    }
    let mut args: Vec<raw::RedisModuleCommandArg> = Vec::with_capacity(docs.len() + 1);
    let mut key_index = 0;
    for doc in docs {
        let mut arg: raw::RedisModuleCommandArg = unsafe { std::mem::zeroed() };
        arg.name = doc.name.as_ptr();
        arg.type_ = match doc.kind {
            ArgType::Key => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY,
            ArgType::Integer => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
            ArgType::Text => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
            ArgType::UnixTime => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_UNIX_TIME,
            ArgType::Token => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
            ArgType::Block => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK,
            ArgType::OneOf => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF,
        };
        arg.key_spec_index = -1;
        if let ArgType::Key = doc.kind {
            arg.key_spec_index = key_index;
            key_index += 1;
        }
        arg.token = doc.token.map_or(std::ptr::null(), CStr::as_ptr);
        arg.summary = doc.summary.map_or(std::ptr::null(), CStr::as_ptr);
        let mut flags = raw::REDISMODULE_CMD_ARG_NONE;
        if doc.optional {
            flags |= raw::REDISMODULE_CMD_ARG_OPTIONAL;
        }
        if doc.multiple {
            flags |= raw::REDISMODULE_CMD_ARG_MULTIPLE;
        }
        arg.flags = flags as c_int;
        arg.subargs = raw_args(doc.subargs, storage);
        args.push(arg);
    }
    args.push(unsafe { std::mem::zeroed() });
    let ptr = args.as_mut_ptr();
    storage.push(args);
    ptr
}
