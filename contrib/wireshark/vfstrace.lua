-- vfstrace.lua: a Wireshark / tshark dissector for vfstrace captures.
--
-- `vfstrace trace` writes pcapng files whose packets (link type 147,
-- LINKTYPE_USER0) are vfstrace records: a 32-byte record header, then a
-- vhost-user message, a FUSE request or reply, a NOTE, a NOTIFY or the next
-- bytes of a chain (docs/capture-format.md). This script registers three
-- protocols for them: "vfstrace" (the record header), "fuse" and
-- "vhost_user".
--
-- Install: copy this one file to ~/.local/lib/wireshark/plugins/ (Wireshark
-- and tshark load it at start), or load it per run:
--   tshark -X lua_script:vfstrace.lua -r capture.pcapng -Y 'fuse.error != 0'
-- See contrib/wireshark/README.md for the fields and example filters.
--
-- The tables between the GENERATED markers are written by
-- contrib/wireshark/generate.ts from the project's protocol tables (one table
-- per protocol drives decoding, printing and this dissector); the code after
-- them is written by hand and reads only those tables. Tested with tshark 4.0
-- (Lua 5.2).

-- BEGIN GENERATED TABLES: contrib/wireshark/generate.ts writes this part from the
-- tables of decode/pcapng.ts, decode/fuse_table.ts, decode/fuse_layouts.ts,
-- decode/fuse_flags.ts, decode/vhost_user_table.ts and sys/errno.ts.
-- Do not edit it: change those tables and run `deno task wireshark`.
local T = {}
T.record = {
  layout = "vfstrace_record",
  linktype = 147,
  magic = 22086,
  version = 2,
  header_size = 32,
  queue_none = 65535,
  head_none = 65535,
  max_packet_data = 262144,
  fuse_in_header_size = 40,
  fuse_out_header_size = 16,
  kind_names = "vfstrace_record_kind",
  kinds = { VHOST_USER = 1, FUSE_REQUEST = 2, FUSE_REPLY = 3, NOTE = 4, NOTIFY = 5, CONTINUATION = 6 },
  flag_names = "vfstrace_record_flags",
  direction_by_kind = { [1] = "vfstrace_vhost_user_direction", [5] = "vfstrace_notify_direction" },
  vhost_user_directions = "vfstrace_vhost_user_direction",
  notify_directions = "vfstrace_notify_direction",
  stream_names = "vfstrace_stream",
  queue_stream_base = 4,
  hiprio_name = "hiprio",
  request_queue_prefix = "request.",
  note_types = {
    "start",
    "stop",
    "features_masked",
    "malformed_chain",
    "malformed_request",
    "undecodable_message",
    "shadow_region_moved",
    "kick_without_fd",
    "vring_stopped_with_pending",
    "backend_used_unknown_head",
    "backend_used_len_over_capacity",
    "queue_broken",
    "proxy_error",
    "dropped",
  },
}
T.fuse = {
  kernel_version = 7,
  minor = 45,
  ext_minor = 38,
  max_nr_secctx = 31,
  ext_groups = 32,
  name_max = 1024,
  in_header = "fuse_in_header",
  out_header = "fuse_out_header",
  dirent = "fuse_dirent",
  direntplus_entry = "fuse_entry_out",
  ext_header = "fuse_ext_header",
  secctx_header = "fuse_secctx_header",
  secctx = "fuse_secctx",
  supp_groups = "fuse_supp_groups",
  opcode_names = "fuse_opcode",
  notify_codes = "fuse_notify_code",
  open_flags = "open_flags",
  name_labels = { "name", "newname", "oldname", "target" },
  ops = {
    [1] = {
      name = "LOOKUP",
      since = 0,
      request = { names = { { label = "name" } } },
      reply = { kind = "struct", struct = "fuse_entry_out" },
    },
    [2] = {
      name = "FORGET",
      since = 0,
      request = { struct = "fuse_forget_in" },
      reply = { kind = "none" },
    },
    [3] = {
      name = "GETATTR",
      since = 0,
      request = { struct = "fuse_getattr_in" },
      reply = { kind = "struct", struct = "fuse_attr_out" },
    },
    [4] = {
      name = "SETATTR",
      since = 1,
      request = { struct = "fuse_setattr_in" },
      reply = { kind = "struct", struct = "fuse_attr_out" },
    },
    [5] = {
      name = "READLINK",
      since = 0,
      request = {},
      reply = { kind = "data", data = { label = "target" } },
    },
    [6] = {
      name = "SYMLINK",
      since = 1,
      request = { names = { { label = "name" }, { label = "target" } }, creates = true },
      reply = { kind = "struct", struct = "fuse_entry_out" },
    },
    [8] = {
      name = "MKNOD",
      since = 1,
      request = { struct = "fuse_mknod_in", names = { { label = "name" } }, creates = true },
      reply = { kind = "struct", struct = "fuse_entry_out" },
    },
    [9] = {
      name = "MKDIR",
      since = 1,
      request = { struct = "fuse_mkdir_in", names = { { label = "name" } }, creates = true },
      reply = { kind = "struct", struct = "fuse_entry_out" },
    },
    [10] = {
      name = "UNLINK",
      since = 1,
      request = { names = { { label = "name" } } },
      reply = { kind = "empty" },
    },
    [11] = {
      name = "RMDIR",
      since = 1,
      request = { names = { { label = "name" } } },
      reply = { kind = "empty" },
    },
    [12] = {
      name = "RENAME",
      since = 1,
      request = { struct = "fuse_rename_in", names = { { label = "oldname" }, { label = "newname" } } },
      reply = { kind = "empty" },
    },
    [13] = {
      name = "LINK",
      since = 1,
      request = { struct = "fuse_link_in", names = { { label = "newname" } } },
      reply = { kind = "struct", struct = "fuse_entry_out" },
    },
    [14] = {
      name = "OPEN",
      since = 1,
      request = { struct = "fuse_open_in" },
      reply = { kind = "struct", struct = "fuse_open_out" },
    },
    [15] = {
      name = "READ",
      since = 1,
      request = { struct = "fuse_read_in" },
      reply = { kind = "data", data = { label = "data" }, limit = "size" },
    },
    [16] = {
      name = "WRITE",
      since = 1,
      request = { struct = "fuse_write_in", data = { label = "data", size = "size" } },
      reply = { kind = "struct", struct = "fuse_write_out" },
    },
    [17] = {
      name = "STATFS",
      since = 0,
      request = {},
      reply = { kind = "struct", struct = "fuse_statfs_out" },
    },
    [18] = {
      name = "RELEASE",
      since = 1,
      request = { struct = "fuse_release_in" },
      reply = { kind = "empty" },
    },
    [20] = {
      name = "FSYNC",
      since = 1,
      request = { struct = "fuse_fsync_in" },
      reply = { kind = "empty" },
    },
    [21] = {
      name = "SETXATTR",
      since = 1,
      request = {
        struct = "fuse_setxattr_in",
        names = { { label = "name" } },
        data = { label = "value", size = "size" },
        version = "setxattr",
      },
      reply = { kind = "empty" },
    },
    [22] = {
      name = "GETXATTR",
      since = 1,
      request = { struct = "fuse_getxattr_in", names = { { label = "name" } } },
      reply = { kind = "xattr", struct = "fuse_getxattr_out", data = { label = "value" }, limit = "size" },
    },
    [23] = {
      name = "LISTXATTR",
      since = 1,
      request = { struct = "fuse_getxattr_in" },
      reply = { kind = "xattr", struct = "fuse_getxattr_out", data = { label = "value" }, limit = "size" },
    },
    [24] = {
      name = "REMOVEXATTR",
      since = 1,
      request = { names = { { label = "name" } } },
      reply = { kind = "empty" },
    },
    [25] = {
      name = "FLUSH",
      since = 1,
      request = { struct = "fuse_flush_in" },
      reply = { kind = "empty" },
    },
    [26] = {
      name = "INIT",
      since = 0,
      request = { struct = "fuse_init_in", version = "init" },
      reply = { kind = "struct", struct = "fuse_init_out", version = "init" },
    },
    [27] = {
      name = "OPENDIR",
      since = 1,
      request = { struct = "fuse_open_in" },
      reply = { kind = "struct", struct = "fuse_open_out" },
    },
    [28] = {
      name = "READDIR",
      since = 1,
      request = { struct = "fuse_read_in" },
      reply = { kind = "dirents", limit = "size" },
    },
    [29] = {
      name = "RELEASEDIR",
      since = 1,
      request = { struct = "fuse_release_in" },
      reply = { kind = "empty" },
    },
    [30] = {
      name = "FSYNCDIR",
      since = 2,
      request = { struct = "fuse_fsync_in" },
      reply = { kind = "empty" },
    },
    [31] = {
      name = "GETLK",
      since = 7,
      request = { struct = "fuse_lk_in" },
      reply = { kind = "struct", struct = "fuse_lk_out" },
    },
    [32] = { name = "SETLK", since = 7, request = { struct = "fuse_lk_in" }, reply = { kind = "empty" } },
    [33] = { name = "SETLKW", since = 7, request = { struct = "fuse_lk_in" }, reply = { kind = "empty" } },
    [34] = {
      name = "ACCESS",
      since = 3,
      request = { struct = "fuse_access_in" },
      reply = { kind = "empty" },
    },
    [35] = {
      name = "CREATE",
      since = 3,
      request = { struct = "fuse_create_in", names = { { label = "name" } }, creates = true },
      reply = { kind = "struct", struct = "fuse_entry_out+fuse_open_out" },
    },
    [36] = {
      name = "INTERRUPT",
      since = 7,
      request = { struct = "fuse_interrupt_in" },
      reply = { kind = "none" },
    },
    [37] = {
      name = "BMAP",
      since = 8,
      request = { struct = "fuse_bmap_in" },
      reply = { kind = "struct", struct = "fuse_bmap_out" },
    },
    [38] = { name = "DESTROY", since = 8, request = {}, reply = { kind = "empty" } },
    [39] = {
      name = "IOCTL",
      since = 11,
      request = { struct = "fuse_ioctl_in", data = { label = "data", size = "in_size" } },
      reply = {
        kind = "ioctl",
        struct = "fuse_ioctl_out",
        data = { label = "data" },
        items = { label = "iovecs", layout = "fuse_ioctl_iovec", count = "in_iovs+out_iovs" },
        limit = "out_size",
      },
    },
    [40] = {
      name = "POLL",
      since = 11,
      request = { struct = "fuse_poll_in" },
      reply = { kind = "struct", struct = "fuse_poll_out" },
    },
    [41] = {
      name = "NOTIFY_REPLY",
      since = 15,
      request = { struct = "fuse_notify_retrieve_in", data = { label = "data", size = "size" } },
      reply = { kind = "none" },
    },
    [42] = {
      name = "BATCH_FORGET",
      since = 16,
      request = {
        struct = "fuse_batch_forget_in",
        items = { label = "forgets", layout = "fuse_forget_one", count = "count" },
      },
      reply = { kind = "none" },
    },
    [43] = {
      name = "FALLOCATE",
      since = 19,
      request = { struct = "fuse_fallocate_in" },
      reply = { kind = "empty" },
    },
    [44] = {
      name = "READDIRPLUS",
      since = 21,
      request = { struct = "fuse_read_in" },
      reply = { kind = "direntplus", limit = "size" },
    },
    [45] = {
      name = "RENAME2",
      since = 23,
      request = { struct = "fuse_rename2_in", names = { { label = "oldname" }, { label = "newname" } } },
      reply = { kind = "empty" },
    },
    [46] = {
      name = "LSEEK",
      since = 24,
      request = { struct = "fuse_lseek_in" },
      reply = { kind = "struct", struct = "fuse_lseek_out" },
    },
    [47] = {
      name = "COPY_FILE_RANGE",
      since = 28,
      request = { struct = "fuse_copy_file_range_in" },
      reply = { kind = "struct", struct = "fuse_write_out" },
    },
    [48] = {
      name = "SETUPMAPPING",
      since = 31,
      request = { struct = "fuse_setupmapping_in" },
      reply = { kind = "empty" },
    },
    [49] = {
      name = "REMOVEMAPPING",
      since = 31,
      request = {
        struct = "fuse_removemapping_in",
        items = { label = "mappings", layout = "fuse_removemapping_one", count = "count" },
      },
      reply = { kind = "empty" },
    },
    [50] = {
      name = "SYNCFS",
      since = 34,
      request = { struct = "fuse_syncfs_in" },
      reply = { kind = "empty" },
    },
    [51] = {
      name = "TMPFILE",
      since = 37,
      request = { struct = "fuse_create_in", names = { { label = "name" } }, creates = true },
      reply = { kind = "struct", struct = "fuse_entry_out+fuse_open_out" },
    },
    [52] = {
      name = "STATX",
      since = 39,
      request = { struct = "fuse_statx_in" },
      reply = { kind = "struct", struct = "fuse_statx_out" },
    },
    [53] = {
      name = "COPY_FILE_RANGE_64",
      since = 45,
      request = { struct = "fuse_copy_file_range_in" },
      reply = { kind = "struct", struct = "fuse_copy_file_range_out" },
    },
    [4096] = {
      name = "CUSE_INIT",
      since = 12,
      request = { struct = "cuse_init_in" },
      reply = { kind = "struct", struct = "cuse_init_out", data = { label = "info" } },
    },
  },
  notify = {
    [1] = { name = "POLL", since = 11, struct = "fuse_notify_poll_wakeup_out" },
    [2] = { name = "INVAL_INODE", since = 12, struct = "fuse_notify_inval_inode_out" },
    [3] = {
      name = "INVAL_ENTRY",
      since = 12,
      struct = "fuse_notify_inval_entry_out",
      names = { { label = "name", len = "namelen" } },
    },
    [4] = {
      name = "STORE",
      since = 15,
      struct = "fuse_notify_store_out",
      data = { label = "data", size = "size" },
    },
    [5] = { name = "RETRIEVE", since = 15, struct = "fuse_notify_retrieve_out" },
    [6] = {
      name = "DELETE",
      since = 18,
      struct = "fuse_notify_delete_out",
      names = { { label = "name", len = "namelen" } },
    },
    [7] = { name = "RESEND", since = 40 },
    [8] = { name = "INC_EPOCH", since = 44 },
    [9] = {
      name = "PRUNE",
      since = 45,
      struct = "fuse_notify_prune_out",
      items = { label = "nodeids", layout = "fuse_nodeid", count = "count" },
    },
  },
}
T.vhost_user = {
  header = "VhostUserHeader",
  header_size = 12,
  version = 1,
  version_mask = 3,
  reply_mask = 4,
  need_reply_mask = 8,
  flags_known = 15,
  max_payload = 4096,
  max_fds = 8,
  vring_idx_mask = 255,
  vring_nofd_mask = 256,
  memory_baseline_nregions = 8,
  max_config_size = 256,
  max_shmem_regions = 256,
  fs_backend_entries = 8,
  fs_flags = "vhost_user_fs_flags",
  u64 = "u64",
  memory_table = "VhostUserMemory",
  region = "VhostUserMemoryRegion",
  region_xen = "VhostUserMemoryRegion(xen)",
  mem_reg = "VhostUserMemRegMsg",
  config = "VhostUserConfig",
  shmem_config = "VhostUserShMemConfig",
  virtio_fs_config = "virtio_fs_config",
  channel_by_direction = { [0] = "frontend", [1] = "frontend", [2] = "backend", [3] = "backend" },
  payload_layouts = {
    device_state = "VhostUserTransferDeviceState",
    inflight = "VhostUserInflight",
    iotlb = "vhost_iotlb_msg",
    log = "VhostUserLog",
    shared_object = "VhostUserShared",
    shmem_map = "VhostUserMMap",
    vring_addr = "vhost_vring_addr",
    vring_area = "VhostUserVringArea",
    vring_state = "vhost_vring_state",
  },
  payload_sizes = {
    device_state = 8,
    empty = 0,
    fs_backend = 256,
    inflight = 24,
    iotlb = 32,
    log = 16,
    shared_object = 16,
    shmem_config = 2056,
    shmem_map = 40,
    u64 = 8,
    vring_addr = 40,
    vring_area = 24,
    vring_index = 8,
    vring_state = 8,
  },
  frontend = {
    [1] = {
      name = "GET_FEATURES",
      request = { { payload = "empty" } },
      reply = { { payload = "u64", show = "flags:virtio_fs_features" } },
    },
    [2] = {
      name = "SET_FEATURES",
      request = { { payload = "u64", show = "flags:virtio_fs_features" } },
      reply = { { payload = "u64" } },
    },
    [3] = { name = "SET_OWNER", request = { { payload = "empty" } }, reply = { { payload = "u64" } } },
    [4] = { name = "RESET_OWNER", request = { { payload = "empty" } }, reply = { { payload = "u64" } } },
    [5] = {
      name = "SET_MEM_TABLE",
      request = { { payload = "memory_table" } },
      reply = { { payload = "u64" }, { payload = "memory_table" } },
    },
    [6] = { name = "SET_LOG_BASE", request = { { payload = "log" } }, reply = { { payload = "u64" } } },
    [7] = { name = "SET_LOG_FD", request = { { payload = "empty" } }, reply = { { payload = "u64" } } },
    [8] = {
      name = "SET_VRING_NUM",
      request = { { payload = "vring_state" } },
      reply = { { payload = "u64" } },
    },
    [9] = {
      name = "SET_VRING_ADDR",
      request = { { payload = "vring_addr" } },
      reply = { { payload = "u64" } },
    },
    [10] = {
      name = "SET_VRING_BASE",
      request = { { payload = "vring_state" } },
      reply = { { payload = "u64" } },
    },
    [11] = {
      name = "GET_VRING_BASE",
      request = { { payload = "vring_state" } },
      reply = { { payload = "vring_state" } },
    },
    [12] = {
      name = "SET_VRING_KICK",
      request = { { payload = "vring_index", show = "custom:vring_index" } },
      reply = { { payload = "u64" } },
    },
    [13] = {
      name = "SET_VRING_CALL",
      request = { { payload = "vring_index", show = "custom:vring_index" } },
      reply = { { payload = "u64" } },
    },
    [14] = {
      name = "SET_VRING_ERR",
      request = { { payload = "vring_index", show = "custom:vring_index" } },
      reply = { { payload = "u64" } },
    },
    [15] = {
      name = "GET_PROTOCOL_FEATURES",
      request = { { payload = "empty" } },
      reply = { { payload = "u64", show = "flags:vhost_user_protocol_features" } },
    },
    [16] = {
      name = "SET_PROTOCOL_FEATURES",
      request = { { payload = "u64", show = "flags:vhost_user_protocol_features" } },
      reply = { { payload = "u64" } },
    },
    [17] = { name = "GET_QUEUE_NUM", request = { { payload = "empty" } }, reply = { { payload = "u64" } } },
    [18] = {
      name = "SET_VRING_ENABLE",
      request = { { payload = "vring_state" } },
      reply = { { payload = "u64" } },
    },
    [19] = {
      name = "SEND_RARP",
      request = { { payload = "u64", show = "custom:mac" } },
      reply = { { payload = "u64" } },
    },
    [20] = { name = "NET_SET_MTU", request = { { payload = "u64" } }, reply = { { payload = "u64" } } },
    [21] = {
      name = "SET_BACKEND_REQ_FD",
      legacy = "SET_SLAVE_REQ_FD",
      request = { { payload = "empty" } },
      reply = { { payload = "u64" } },
    },
    [22] = { name = "IOTLB_MSG", request = { { payload = "iotlb" } }, reply = { { payload = "u64" } } },
    [23] = {
      name = "SET_VRING_ENDIAN",
      request = { { payload = "vring_state" } },
      reply = { { payload = "u64" } },
    },
    [24] = {
      name = "GET_CONFIG",
      request = { { payload = "config" } },
      reply = { { payload = "config" }, { payload = "empty" } },
    },
    [25] = { name = "SET_CONFIG", request = { { payload = "config" } }, reply = { { payload = "u64" } } },
    [26] = {
      name = "CREATE_CRYPTO_SESSION",
      request = { { payload = "crypto_session" } },
      reply = { { payload = "crypto_session" } },
    },
    [27] = {
      name = "CLOSE_CRYPTO_SESSION",
      request = { { payload = "u64" } },
      reply = { { payload = "u64" } },
    },
    [28] = {
      name = "POSTCOPY_ADVISE",
      request = { { payload = "empty" } },
      reply = { { payload = "empty" } },
    },
    [29] = {
      name = "POSTCOPY_LISTEN",
      request = { { payload = "empty" } },
      reply = { { payload = "u64" } },
    },
    [30] = { name = "POSTCOPY_END", request = { { payload = "empty" } }, reply = { { payload = "u64" } } },
    [31] = {
      name = "GET_INFLIGHT_FD",
      request = { { payload = "inflight" } },
      reply = { { payload = "inflight" } },
    },
    [32] = {
      name = "SET_INFLIGHT_FD",
      request = { { payload = "inflight" } },
      reply = { { payload = "u64" } },
    },
    [33] = {
      name = "GPU_SET_SOCKET",
      request = { { payload = "empty" } },
      reply = { { payload = "u64" } },
    },
    [34] = { name = "RESET_DEVICE", request = { { payload = "empty" } }, reply = { { payload = "u64" } } },
    [35] = {
      name = "VRING_KICK",
      request = { { payload = "vring_state" } },
      reply = { { payload = "u64" } },
    },
    [36] = {
      name = "GET_MAX_MEM_SLOTS",
      request = { { payload = "empty" } },
      reply = { { payload = "u64" } },
    },
    [37] = {
      name = "ADD_MEM_REG",
      request = { { payload = "mem_reg" }, { payload = "u64" } },
      reply = { { payload = "u64" }, { payload = "mem_reg" } },
    },
    [38] = {
      name = "REM_MEM_REG",
      request = { { payload = "mem_reg" } },
      reply = { { payload = "u64" }, { payload = "mem_reg" } },
    },
    [39] = {
      name = "SET_STATUS",
      request = { { payload = "u64", show = "flags:virtio_device_status" } },
      reply = { { payload = "u64" } },
    },
    [40] = {
      name = "GET_STATUS",
      request = { { payload = "empty" } },
      reply = { { payload = "u64", show = "flags:virtio_device_status" } },
    },
    [41] = {
      name = "GET_SHARED_OBJECT",
      request = { { payload = "shared_object" }, { payload = "empty" } },
      reply = { { payload = "u64" }, { payload = "empty" } },
    },
    [42] = {
      name = "SET_DEVICE_STATE_FD",
      request = { { payload = "device_state" } },
      reply = { { payload = "u64", show = "custom:device_state_result" } },
    },
    [43] = {
      name = "CHECK_DEVICE_STATE",
      request = { { payload = "empty" } },
      reply = { { payload = "u64" } },
    },
    [44] = {
      name = "GET_SHMEM_CONFIG",
      request = { { payload = "empty" } },
      reply = { { payload = "shmem_config" } },
    },
    [45] = {
      name = "GET_VRING_BASE_SKIP_DRAIN",
      request = { { payload = "vring_state" } },
      reply = { { payload = "vring_state" } },
    },
  },
  backend = {
    [1] = {
      name = "BACKEND_IOTLB_MSG",
      legacy = "SLAVE_IOTLB_MSG",
      request = { { payload = "iotlb" } },
      reply = { { payload = "u64" } },
    },
    [2] = {
      name = "BACKEND_CONFIG_CHANGE_MSG",
      legacy = "SLAVE_CONFIG_CHANGE_MSG",
      request = { { payload = "empty" } },
      reply = { { payload = "u64" } },
    },
    [3] = {
      name = "BACKEND_VRING_HOST_NOTIFIER_MSG",
      legacy = "SLAVE_VRING_HOST_NOTIFIER_MSG",
      request = { { payload = "vring_area" } },
      reply = { { payload = "u64" } },
    },
    [4] = {
      name = "BACKEND_VRING_CALL",
      legacy = "SLAVE_VRING_CALL",
      request = { { payload = "vring_state" } },
      reply = { { payload = "u64" } },
    },
    [5] = {
      name = "BACKEND_VRING_ERR",
      legacy = "SLAVE_VRING_ERR",
      request = { { payload = "vring_state" } },
      reply = { { payload = "u64" } },
    },
    [6] = {
      name = "BACKEND_SHARED_OBJECT_ADD",
      request = { { payload = "shared_object" } },
      reply = { { payload = "u64" } },
    },
    [7] = {
      name = "BACKEND_SHARED_OBJECT_REMOVE",
      request = { { payload = "shared_object" } },
      reply = { { payload = "u64" } },
    },
    [8] = {
      name = "BACKEND_SHARED_OBJECT_LOOKUP",
      request = { { payload = "shared_object" } },
      reply = { { payload = "u64" } },
    },
    [9] = {
      name = "BACKEND_SHMEM_MAP",
      request = { { payload = "shmem_map" } },
      reply = { { payload = "u64" } },
    },
    [10] = {
      name = "BACKEND_SHMEM_UNMAP",
      request = { { payload = "shmem_map" } },
      reply = { { payload = "u64" } },
    },
  },
  backend_dax = {
    [6] = {
      name = "BACKEND_FS_MAP",
      legacy = "SLAVE_FS_MAP",
      request = { { payload = "fs_backend" } },
      reply = { { payload = "u64" } },
    },
    [7] = {
      name = "BACKEND_FS_UNMAP",
      legacy = "SLAVE_FS_UNMAP",
      request = { { payload = "fs_backend" } },
      reply = { { payload = "u64" } },
    },
    [8] = {
      name = "BACKEND_FS_SYNC",
      legacy = "SLAVE_FS_SYNC",
      request = { { payload = "fs_backend" } },
      reply = { { payload = "u64" } },
    },
    [9] = {
      name = "BACKEND_FS_IO",
      legacy = "SLAVE_FS_IO",
      request = { { payload = "fs_backend" } },
      reply = { { payload = "u64" } },
    },
  },
}
T.errno = {
  [1] = "EPERM",
  [2] = "ENOENT",
  [3] = "ESRCH",
  [4] = "EINTR",
  [5] = "EIO",
  [6] = "ENXIO",
  [7] = "E2BIG",
  [8] = "ENOEXEC",
  [9] = "EBADF",
  [10] = "ECHILD",
  [11] = "EAGAIN",
  [12] = "ENOMEM",
  [13] = "EACCES",
  [14] = "EFAULT",
  [15] = "ENOTBLK",
  [16] = "EBUSY",
  [17] = "EEXIST",
  [18] = "EXDEV",
  [19] = "ENODEV",
  [20] = "ENOTDIR",
  [21] = "EISDIR",
  [22] = "EINVAL",
  [23] = "ENFILE",
  [24] = "EMFILE",
  [25] = "ENOTTY",
  [26] = "ETXTBSY",
  [27] = "EFBIG",
  [28] = "ENOSPC",
  [29] = "ESPIPE",
  [30] = "EROFS",
  [31] = "EMLINK",
  [32] = "EPIPE",
  [33] = "EDOM",
  [34] = "ERANGE",
  [35] = "EDEADLK",
  [36] = "ENAMETOOLONG",
  [37] = "ENOLCK",
  [38] = "ENOSYS",
  [39] = "ENOTEMPTY",
  [40] = "ELOOP",
  [42] = "ENOMSG",
  [43] = "EIDRM",
  [44] = "ECHRNG",
  [45] = "EL2NSYNC",
  [46] = "EL3HLT",
  [47] = "EL3RST",
  [48] = "ELNRNG",
  [49] = "EUNATCH",
  [50] = "ENOCSI",
  [51] = "EL2HLT",
  [52] = "EBADE",
  [53] = "EBADR",
  [54] = "EXFULL",
  [55] = "ENOANO",
  [56] = "EBADRQC",
  [57] = "EBADSLT",
  [59] = "EBFONT",
  [60] = "ENOSTR",
  [61] = "ENODATA",
  [62] = "ETIME",
  [63] = "ENOSR",
  [64] = "ENONET",
  [65] = "ENOPKG",
  [66] = "EREMOTE",
  [67] = "ENOLINK",
  [68] = "EADV",
  [69] = "ESRMNT",
  [70] = "ECOMM",
  [71] = "EPROTO",
  [72] = "EMULTIHOP",
  [73] = "EDOTDOT",
  [74] = "EBADMSG",
  [75] = "EOVERFLOW",
  [76] = "ENOTUNIQ",
  [77] = "EBADFD",
  [78] = "EREMCHG",
  [79] = "ELIBACC",
  [80] = "ELIBBAD",
  [81] = "ELIBSCN",
  [82] = "ELIBMAX",
  [83] = "ELIBEXEC",
  [84] = "EILSEQ",
  [85] = "ERESTART",
  [86] = "ESTRPIPE",
  [87] = "EUSERS",
  [88] = "ENOTSOCK",
  [89] = "EDESTADDRREQ",
  [90] = "EMSGSIZE",
  [91] = "EPROTOTYPE",
  [92] = "ENOPROTOOPT",
  [93] = "EPROTONOSUPPORT",
  [94] = "ESOCKTNOSUPPORT",
  [95] = "EOPNOTSUPP",
  [96] = "EPFNOSUPPORT",
  [97] = "EAFNOSUPPORT",
  [98] = "EADDRINUSE",
  [99] = "EADDRNOTAVAIL",
  [100] = "ENETDOWN",
  [101] = "ENETUNREACH",
  [102] = "ENETRESET",
  [103] = "ECONNABORTED",
  [104] = "ECONNRESET",
  [105] = "ENOBUFS",
  [106] = "EISCONN",
  [107] = "ENOTCONN",
  [108] = "ESHUTDOWN",
  [109] = "ETOOMANYREFS",
  [110] = "ETIMEDOUT",
  [111] = "ECONNREFUSED",
  [112] = "EHOSTDOWN",
  [113] = "EHOSTUNREACH",
  [114] = "EALREADY",
  [115] = "EINPROGRESS",
  [116] = "ESTALE",
  [117] = "EUCLEAN",
  [118] = "ENOTNAM",
  [119] = "ENAVAIL",
  [120] = "EISNAM",
  [121] = "EREMOTEIO",
  [122] = "EDQUOT",
  [123] = "ENOMEDIUM",
  [124] = "EMEDIUMTYPE",
  [125] = "ECANCELED",
  [126] = "ENOKEY",
  [127] = "EKEYEXPIRED",
  [128] = "EKEYREVOKED",
  [129] = "EKEYREJECTED",
  [130] = "EOWNERDEAD",
  [131] = "ENOTRECOVERABLE",
  [132] = "ERFKILL",
  [133] = "EHWPOISON",
}
T.customs = {
  "device_state_result",
  "fuse_error",
  "mac",
  "mode",
  "octal",
  "open_flags",
  "rdev",
  "vhost_user_flags",
  "vring_index",
}
T.layouts = {
  VhostUserConfig = {
    size = 12,
    fields = {
      { name = "offset", type = "u32", size = 4, offset = 0 },
      { name = "size", type = "u32", size = 4, offset = 4 },
      { name = "flags", type = "u32", size = 4, offset = 8, show = "enum:vhost_set_config_type" },
    },
  },
  VhostUserHeader = {
    size = 12,
    fields = {
      { name = "request", type = "u32", size = 4, offset = 0 },
      { name = "flags", type = "u32", size = 4, offset = 4, show = "custom:vhost_user_flags" },
      { name = "size", type = "u32", size = 4, offset = 8 },
    },
  },
  VhostUserInflight = {
    size = 24,
    fields = {
      { name = "mmap_size", type = "u64", size = 8, offset = 0, show = "hex" },
      { name = "mmap_offset", type = "u64", size = 8, offset = 8, show = "hex" },
      { name = "num_queues", type = "u16", size = 2, offset = 16 },
      { name = "queue_size", type = "u16", size = 2, offset = 18 },
      { name = "padding", type = "bytes", size = 4, offset = 20, pad = true },
    },
  },
  VhostUserLog = {
    size = 16,
    fields = {
      { name = "mmap_size", type = "u64", size = 8, offset = 0, show = "hex" },
      { name = "mmap_offset", type = "u64", size = 8, offset = 8, show = "hex" },
    },
  },
  VhostUserMMap = {
    size = 40,
    fields = {
      { name = "shmid", type = "u8", size = 1, offset = 0 },
      { name = "padding", type = "bytes", size = 7, offset = 1, pad = true },
      { name = "fd_offset", type = "u64", size = 8, offset = 8, show = "hex" },
      { name = "shm_offset", type = "u64", size = 8, offset = 16, show = "hex" },
      { name = "len", type = "u64", size = 8, offset = 24, show = "hex" },
      { name = "flags", type = "u64", size = 8, offset = 32, show = "flags:vhost_user_mmap_flags" },
    },
  },
  VhostUserMemRegMsg = { size = 8, fields = { { name = "padding", type = "u64", size = 8, offset = 0, pad = true } } },
  VhostUserMemory = {
    size = 8,
    fields = {
      { name = "nregions", type = "u32", size = 4, offset = 0 },
      { name = "padding", type = "u32", size = 4, offset = 4, pad = true },
    },
  },
  VhostUserMemoryRegion = {
    size = 32,
    fields = {
      { name = "guest_phys_addr", type = "u64", size = 8, offset = 0, show = "hex" },
      { name = "memory_size", type = "u64", size = 8, offset = 8, show = "hex" },
      { name = "userspace_addr", type = "u64", size = 8, offset = 16, show = "hex" },
      { name = "mmap_offset", type = "u64", size = 8, offset = 24, show = "hex" },
    },
  },
  ["VhostUserMemoryRegion(xen)"] = {
    size = 40,
    fields = {
      { name = "guest_phys_addr", type = "u64", size = 8, offset = 0, show = "hex" },
      { name = "memory_size", type = "u64", size = 8, offset = 8, show = "hex" },
      { name = "userspace_addr", type = "u64", size = 8, offset = 16, show = "hex" },
      { name = "mmap_offset", type = "u64", size = 8, offset = 24, show = "hex" },
      {
        name = "xen_mmap_flags",
        type = "u32",
        size = 4,
        offset = 32,
        show = "flags:vhost_user_xen_mmap_flags",
      },
      { name = "domid", type = "u32", size = 4, offset = 36 },
    },
  },
  VhostUserShMemConfig = {
    size = 8,
    fields = {
      { name = "nregions", type = "u32", size = 4, offset = 0 },
      { name = "padding", type = "u32", size = 4, offset = 4, pad = true },
    },
  },
  VhostUserShared = { size = 16, fields = { { name = "uuid", type = "bytes", size = 16, offset = 0 } } },
  VhostUserTransferDeviceState = {
    size = 8,
    fields = {
      {
        name = "direction",
        type = "u32",
        size = 4,
        offset = 0,
        show = "enum:vhost_transfer_state_direction",
      },
      {
        name = "phase",
        type = "u32",
        size = 4,
        offset = 4,
        show = "enum:vhost_transfer_state_phase",
      },
    },
  },
  VhostUserVringArea = {
    size = 24,
    fields = {
      { name = "u64", type = "u64", size = 8, offset = 0, show = "custom:vring_index" },
      { name = "size", type = "u64", size = 8, offset = 8, show = "hex" },
      { name = "offset", type = "u64", size = 8, offset = 16, show = "hex" },
    },
  },
  cuse_init_in = {
    size = 16,
    fields = {
      { name = "major", type = "u32", size = 4, offset = 0 },
      { name = "minor", type = "u32", size = 4, offset = 4 },
      { name = "unused", type = "u32", size = 4, offset = 8, pad = true },
      { name = "flags", type = "u32", size = 4, offset = 12, show = "flags:cuse_init_flags" },
    },
  },
  cuse_init_out = {
    size = 72,
    fields = {
      { name = "major", type = "u32", size = 4, offset = 0 },
      { name = "minor", type = "u32", size = 4, offset = 4 },
      { name = "unused", type = "u32", size = 4, offset = 8, pad = true },
      { name = "flags", type = "u32", size = 4, offset = 12, show = "flags:cuse_init_flags" },
      { name = "max_read", type = "u32", size = 4, offset = 16 },
      { name = "max_write", type = "u32", size = 4, offset = 20 },
      { name = "dev_major", type = "u32", size = 4, offset = 24 },
      { name = "dev_minor", type = "u32", size = 4, offset = 28 },
      { name = "spare", type = "bytes", size = 40, offset = 32, pad = true },
    },
  },
  fuse_access_in = {
    size = 8,
    fields = {
      { name = "mask", type = "u32", size = 4, offset = 0, show = "flags:access_mask" },
      { name = "padding", type = "u32", size = 4, offset = 4, pad = true },
    },
  },
  fuse_attr_out = {
    size = 104,
    fields = {
      { name = "attr_valid", type = "u64", size = 8, offset = 0 },
      { name = "attr_valid_nsec", type = "u32", size = 4, offset = 8 },
      { name = "dummy", type = "u32", size = 4, offset = 12, pad = true },
      { name = "ino", type = "u64", size = 8, offset = 16 },
      { name = "size", type = "u64", size = 8, offset = 24 },
      { name = "blocks", type = "u64", size = 8, offset = 32 },
      { name = "atime", type = "u64", size = 8, offset = 40 },
      { name = "mtime", type = "u64", size = 8, offset = 48 },
      { name = "ctime", type = "u64", size = 8, offset = 56 },
      { name = "atimensec", type = "u32", size = 4, offset = 64 },
      { name = "mtimensec", type = "u32", size = 4, offset = 68 },
      { name = "ctimensec", type = "u32", size = 4, offset = 72 },
      { name = "mode", type = "u32", size = 4, offset = 76, show = "custom:mode" },
      { name = "nlink", type = "u32", size = 4, offset = 80 },
      { name = "uid", type = "u32", size = 4, offset = 84 },
      { name = "gid", type = "u32", size = 4, offset = 88 },
      { name = "rdev", type = "u32", size = 4, offset = 92, show = "custom:rdev" },
      { name = "blksize", type = "u32", size = 4, offset = 96, since = 9 },
      {
        name = "flags",
        type = "u32",
        size = 4,
        offset = 100,
        since = 9,
        show = "flags:fuse_attr_flags",
      },
    },
  },
  fuse_batch_forget_in = {
    size = 8,
    fields = {
      { name = "count", type = "u32", size = 4, offset = 0 },
      { name = "dummy", type = "u32", size = 4, offset = 4, pad = true },
    },
  },
  fuse_bmap_in = {
    size = 16,
    fields = {
      { name = "block", type = "u64", size = 8, offset = 0 },
      { name = "blocksize", type = "u32", size = 4, offset = 8 },
      { name = "padding", type = "u32", size = 4, offset = 12, pad = true },
    },
  },
  fuse_bmap_out = { size = 8, fields = { { name = "block", type = "u64", size = 8, offset = 0 } } },
  fuse_copy_file_range_in = {
    size = 56,
    fields = {
      { name = "fh_in", type = "u64", size = 8, offset = 0 },
      { name = "off_in", type = "u64", size = 8, offset = 8 },
      { name = "nodeid_out", type = "u64", size = 8, offset = 16 },
      { name = "fh_out", type = "u64", size = 8, offset = 24 },
      { name = "off_out", type = "u64", size = 8, offset = 32 },
      { name = "len", type = "u64", size = 8, offset = 40 },
      { name = "flags", type = "u64", size = 8, offset = 48, show = "hex" },
    },
  },
  fuse_copy_file_range_out = { size = 8, fields = { { name = "bytes_copied", type = "u64", size = 8, offset = 0 } } },
  fuse_create_in = {
    size = 16,
    fields = {
      { name = "flags", type = "u32", size = 4, offset = 0, show = "custom:open_flags" },
      { name = "mode", type = "u32", size = 4, offset = 4, show = "custom:mode" },
      { name = "umask", type = "u32", size = 4, offset = 8, since = 12, show = "custom:octal" },
      {
        name = "open_flags",
        type = "u32",
        size = 4,
        offset = 12,
        since = 12,
        show = "flags:fuse_open_in_flags",
      },
    },
  },
  fuse_dirent = {
    size = 24,
    fields = {
      { name = "ino", type = "u64", size = 8, offset = 0 },
      { name = "off", type = "u64", size = 8, offset = 8 },
      { name = "namelen", type = "u32", size = 4, offset = 16 },
      { name = "type", type = "u32", size = 4, offset = 20, show = "enum:dirent_type" },
    },
  },
  fuse_entry_out = {
    size = 128,
    fields = {
      { name = "nodeid", type = "u64", size = 8, offset = 0 },
      { name = "generation", type = "u64", size = 8, offset = 8 },
      { name = "entry_valid", type = "u64", size = 8, offset = 16 },
      { name = "attr_valid", type = "u64", size = 8, offset = 24 },
      { name = "entry_valid_nsec", type = "u32", size = 4, offset = 32 },
      { name = "attr_valid_nsec", type = "u32", size = 4, offset = 36 },
      { name = "ino", type = "u64", size = 8, offset = 40 },
      { name = "size", type = "u64", size = 8, offset = 48 },
      { name = "blocks", type = "u64", size = 8, offset = 56 },
      { name = "atime", type = "u64", size = 8, offset = 64 },
      { name = "mtime", type = "u64", size = 8, offset = 72 },
      { name = "ctime", type = "u64", size = 8, offset = 80 },
      { name = "atimensec", type = "u32", size = 4, offset = 88 },
      { name = "mtimensec", type = "u32", size = 4, offset = 92 },
      { name = "ctimensec", type = "u32", size = 4, offset = 96 },
      { name = "mode", type = "u32", size = 4, offset = 100, show = "custom:mode" },
      { name = "nlink", type = "u32", size = 4, offset = 104 },
      { name = "uid", type = "u32", size = 4, offset = 108 },
      { name = "gid", type = "u32", size = 4, offset = 112 },
      { name = "rdev", type = "u32", size = 4, offset = 116, show = "custom:rdev" },
      { name = "blksize", type = "u32", size = 4, offset = 120, since = 9 },
      {
        name = "flags",
        type = "u32",
        size = 4,
        offset = 124,
        since = 9,
        show = "flags:fuse_attr_flags",
      },
    },
  },
  ["fuse_entry_out+fuse_open_out"] = {
    size = 144,
    fields = {
      { name = "nodeid", type = "u64", size = 8, offset = 0 },
      { name = "generation", type = "u64", size = 8, offset = 8 },
      { name = "entry_valid", type = "u64", size = 8, offset = 16 },
      { name = "attr_valid", type = "u64", size = 8, offset = 24 },
      { name = "entry_valid_nsec", type = "u32", size = 4, offset = 32 },
      { name = "attr_valid_nsec", type = "u32", size = 4, offset = 36 },
      { name = "ino", type = "u64", size = 8, offset = 40 },
      { name = "size", type = "u64", size = 8, offset = 48 },
      { name = "blocks", type = "u64", size = 8, offset = 56 },
      { name = "atime", type = "u64", size = 8, offset = 64 },
      { name = "mtime", type = "u64", size = 8, offset = 72 },
      { name = "ctime", type = "u64", size = 8, offset = 80 },
      { name = "atimensec", type = "u32", size = 4, offset = 88 },
      { name = "mtimensec", type = "u32", size = 4, offset = 92 },
      { name = "ctimensec", type = "u32", size = 4, offset = 96 },
      { name = "mode", type = "u32", size = 4, offset = 100, show = "custom:mode" },
      { name = "nlink", type = "u32", size = 4, offset = 104 },
      { name = "uid", type = "u32", size = 4, offset = 108 },
      { name = "gid", type = "u32", size = 4, offset = 112 },
      { name = "rdev", type = "u32", size = 4, offset = 116, show = "custom:rdev" },
      { name = "blksize", type = "u32", size = 4, offset = 120, since = 9 },
      {
        name = "flags",
        type = "u32",
        size = 4,
        offset = 124,
        since = 9,
        show = "flags:fuse_attr_flags",
      },
      { name = "fh", type = "u64", size = 8, offset = 128 },
      { name = "open_flags", type = "u32", size = 4, offset = 136, show = "flags:fuse_fopen_flags" },
      { name = "backing_id", type = "i32", size = 4, offset = 140 },
    },
  },
  fuse_ext_header = {
    size = 8,
    fields = {
      { name = "size", type = "u32", size = 4, offset = 0 },
      { name = "type", type = "u32", size = 4, offset = 4 },
    },
  },
  fuse_fallocate_in = {
    size = 32,
    fields = {
      { name = "fh", type = "u64", size = 8, offset = 0 },
      { name = "offset", type = "u64", size = 8, offset = 8 },
      { name = "length", type = "u64", size = 8, offset = 16 },
      { name = "mode", type = "u32", size = 4, offset = 24, show = "flags:fallocate_mode" },
      { name = "padding", type = "u32", size = 4, offset = 28, pad = true },
    },
  },
  fuse_flush_in = {
    size = 24,
    fields = {
      { name = "fh", type = "u64", size = 8, offset = 0 },
      { name = "unused", type = "u32", size = 4, offset = 8, pad = true },
      { name = "padding", type = "u32", size = 4, offset = 12, pad = true },
      { name = "lock_owner", type = "u64", size = 8, offset = 16, show = "hex" },
    },
  },
  fuse_forget_in = { size = 8, fields = { { name = "nlookup", type = "u64", size = 8, offset = 0 } } },
  fuse_forget_one = {
    size = 16,
    fields = {
      { name = "nodeid", type = "u64", size = 8, offset = 0 },
      { name = "nlookup", type = "u64", size = 8, offset = 8 },
    },
  },
  fuse_fsync_in = {
    size = 16,
    fields = {
      { name = "fh", type = "u64", size = 8, offset = 0 },
      { name = "fsync_flags", type = "u32", size = 4, offset = 8, show = "flags:fuse_fsync_flags" },
      { name = "padding", type = "u32", size = 4, offset = 12, pad = true },
    },
  },
  fuse_getattr_in = {
    size = 16,
    fields = {
      {
        name = "getattr_flags",
        type = "u32",
        size = 4,
        offset = 0,
        since = 9,
        show = "flags:fuse_getattr_flags",
      },
      { name = "dummy", type = "u32", size = 4, offset = 4, since = 9, pad = true },
      { name = "fh", type = "u64", size = 8, offset = 8, since = 9 },
    },
  },
  fuse_getxattr_in = {
    size = 8,
    fields = {
      { name = "size", type = "u32", size = 4, offset = 0 },
      { name = "padding", type = "u32", size = 4, offset = 4, pad = true },
    },
  },
  fuse_getxattr_out = {
    size = 8,
    fields = {
      { name = "size", type = "u32", size = 4, offset = 0 },
      { name = "padding", type = "u32", size = 4, offset = 4, pad = true },
    },
  },
  fuse_in_header = {
    size = 40,
    fields = {
      { name = "len", type = "u32", size = 4, offset = 0 },
      { name = "opcode", type = "u32", size = 4, offset = 4, show = "enum:fuse_opcode" },
      { name = "unique", type = "u64", size = 8, offset = 8, show = "hex" },
      { name = "nodeid", type = "u64", size = 8, offset = 16 },
      { name = "uid", type = "u32", size = 4, offset = 24 },
      { name = "gid", type = "u32", size = 4, offset = 28 },
      { name = "pid", type = "u32", size = 4, offset = 32 },
      { name = "total_extlen", type = "u16", size = 2, offset = 36 },
      { name = "padding", type = "u16", size = 2, offset = 38, pad = true },
    },
  },
  fuse_init_in = {
    size = 64,
    fields = {
      { name = "major", type = "u32", size = 4, offset = 0 },
      { name = "minor", type = "u32", size = 4, offset = 4 },
      { name = "max_readahead", type = "u32", size = 4, offset = 8, since = 6 },
      {
        name = "flags",
        type = "u32",
        size = 4,
        offset = 12,
        since = 6,
        show = "flags:fuse_init_flags",
      },
      {
        name = "flags2",
        type = "u32",
        size = 4,
        offset = 16,
        since = 36,
        show = "flags:fuse_init_flags2",
      },
      { name = "unused", type = "bytes", size = 44, offset = 20, since = 36, pad = true },
    },
  },
  fuse_init_out = {
    size = 64,
    fields = {
      { name = "major", type = "u32", size = 4, offset = 0 },
      { name = "minor", type = "u32", size = 4, offset = 4 },
      { name = "max_readahead", type = "u32", size = 4, offset = 8, since = 5 },
      {
        name = "flags",
        type = "u32",
        size = 4,
        offset = 12,
        since = 5,
        show = "flags:fuse_init_flags",
      },
      { name = "max_background", type = "u16", size = 2, offset = 16, since = 5 },
      { name = "congestion_threshold", type = "u16", size = 2, offset = 18, since = 5 },
      { name = "max_write", type = "u32", size = 4, offset = 20, since = 5 },
      { name = "time_gran", type = "u32", size = 4, offset = 24, since = 23 },
      { name = "max_pages", type = "u16", size = 2, offset = 28, since = 23 },
      { name = "map_alignment", type = "u16", size = 2, offset = 30, since = 23 },
      {
        name = "flags2",
        type = "u32",
        size = 4,
        offset = 32,
        since = 23,
        show = "flags:fuse_init_flags2",
      },
      { name = "max_stack_depth", type = "u32", size = 4, offset = 36, since = 23 },
      { name = "request_timeout", type = "u16", size = 2, offset = 40, since = 23 },
      { name = "unused", type = "bytes", size = 22, offset = 42, since = 23, pad = true },
    },
  },
  fuse_interrupt_in = { size = 8, fields = { { name = "unique", type = "u64", size = 8, offset = 0, show = "hex" } } },
  fuse_ioctl_in = {
    size = 32,
    fields = {
      { name = "fh", type = "u64", size = 8, offset = 0 },
      { name = "flags", type = "u32", size = 4, offset = 8, show = "flags:fuse_ioctl_flags" },
      { name = "cmd", type = "u32", size = 4, offset = 12, show = "hex" },
      { name = "arg", type = "u64", size = 8, offset = 16, show = "hex" },
      { name = "in_size", type = "u32", size = 4, offset = 24 },
      { name = "out_size", type = "u32", size = 4, offset = 28 },
    },
  },
  fuse_ioctl_iovec = {
    size = 16,
    fields = {
      { name = "base", type = "u64", size = 8, offset = 0, show = "hex" },
      { name = "len", type = "u64", size = 8, offset = 8 },
    },
  },
  fuse_ioctl_out = {
    size = 16,
    fields = {
      { name = "result", type = "i32", size = 4, offset = 0 },
      { name = "flags", type = "u32", size = 4, offset = 4, show = "flags:fuse_ioctl_flags" },
      { name = "in_iovs", type = "u32", size = 4, offset = 8 },
      { name = "out_iovs", type = "u32", size = 4, offset = 12 },
    },
  },
  fuse_link_in = { size = 8, fields = { { name = "oldnodeid", type = "u64", size = 8, offset = 0 } } },
  fuse_lk_in = {
    size = 48,
    fields = {
      { name = "fh", type = "u64", size = 8, offset = 0 },
      { name = "owner", type = "u64", size = 8, offset = 8, show = "hex" },
      { name = "start", type = "u64", size = 8, offset = 16 },
      { name = "end", type = "u64", size = 8, offset = 24 },
      { name = "type", type = "u32", size = 4, offset = 32, show = "enum:lock_type" },
      { name = "pid", type = "u32", size = 4, offset = 36 },
      { name = "lk_flags", type = "u32", size = 4, offset = 40, show = "flags:fuse_lk_flags" },
      { name = "padding", type = "u32", size = 4, offset = 44, pad = true },
    },
  },
  fuse_lk_out = {
    size = 24,
    fields = {
      { name = "start", type = "u64", size = 8, offset = 0 },
      { name = "end", type = "u64", size = 8, offset = 8 },
      { name = "type", type = "u32", size = 4, offset = 16, show = "enum:lock_type" },
      { name = "pid", type = "u32", size = 4, offset = 20 },
    },
  },
  fuse_lseek_in = {
    size = 24,
    fields = {
      { name = "fh", type = "u64", size = 8, offset = 0 },
      { name = "offset", type = "u64", size = 8, offset = 8 },
      { name = "whence", type = "u32", size = 4, offset = 16, show = "enum:seek_whence" },
      { name = "padding", type = "u32", size = 4, offset = 20, pad = true },
    },
  },
  fuse_lseek_out = { size = 8, fields = { { name = "offset", type = "u64", size = 8, offset = 0 } } },
  fuse_mkdir_in = {
    size = 8,
    fields = {
      { name = "mode", type = "u32", size = 4, offset = 0, show = "custom:mode" },
      { name = "umask", type = "u32", size = 4, offset = 4, show = "custom:octal" },
    },
  },
  fuse_mknod_in = {
    size = 16,
    fields = {
      { name = "mode", type = "u32", size = 4, offset = 0, show = "custom:mode" },
      { name = "rdev", type = "u32", size = 4, offset = 4, show = "custom:rdev" },
      { name = "umask", type = "u32", size = 4, offset = 8, since = 12, show = "custom:octal" },
      { name = "padding", type = "u32", size = 4, offset = 12, since = 12, pad = true },
    },
  },
  fuse_nodeid = { size = 8, fields = { { name = "nodeid", type = "u64", size = 8, offset = 0 } } },
  fuse_notify_delete_out = {
    size = 24,
    fields = {
      { name = "parent", type = "u64", size = 8, offset = 0 },
      { name = "child", type = "u64", size = 8, offset = 8 },
      { name = "namelen", type = "u32", size = 4, offset = 16 },
      { name = "padding", type = "u32", size = 4, offset = 20, pad = true },
    },
  },
  fuse_notify_inval_entry_out = {
    size = 16,
    fields = {
      { name = "parent", type = "u64", size = 8, offset = 0 },
      { name = "namelen", type = "u32", size = 4, offset = 8 },
      {
        name = "flags",
        type = "u32",
        size = 4,
        offset = 12,
        show = "flags:fuse_notify_inval_entry_flags",
      },
    },
  },
  fuse_notify_inval_inode_out = {
    size = 24,
    fields = {
      { name = "ino", type = "u64", size = 8, offset = 0 },
      { name = "off", type = "i64", size = 8, offset = 8 },
      { name = "len", type = "i64", size = 8, offset = 16 },
    },
  },
  fuse_notify_poll_wakeup_out = { size = 8, fields = { { name = "kh", type = "u64", size = 8, offset = 0, show = "hex" } } },
  fuse_notify_prune_out = {
    size = 16,
    fields = {
      { name = "count", type = "u32", size = 4, offset = 0 },
      { name = "padding", type = "u32", size = 4, offset = 4, pad = true },
      { name = "spare", type = "u64", size = 8, offset = 8, pad = true },
    },
  },
  fuse_notify_retrieve_in = {
    size = 40,
    fields = {
      { name = "dummy1", type = "u64", size = 8, offset = 0, pad = true },
      { name = "offset", type = "u64", size = 8, offset = 8 },
      { name = "size", type = "u32", size = 4, offset = 16 },
      { name = "dummy2", type = "u32", size = 4, offset = 20, pad = true },
      { name = "dummy3", type = "u64", size = 8, offset = 24, pad = true },
      { name = "dummy4", type = "u64", size = 8, offset = 32, pad = true },
    },
  },
  fuse_notify_retrieve_out = {
    size = 32,
    fields = {
      { name = "notify_unique", type = "u64", size = 8, offset = 0, show = "hex" },
      { name = "nodeid", type = "u64", size = 8, offset = 8 },
      { name = "offset", type = "u64", size = 8, offset = 16 },
      { name = "size", type = "u32", size = 4, offset = 24 },
      { name = "padding", type = "u32", size = 4, offset = 28, pad = true },
    },
  },
  fuse_notify_store_out = {
    size = 24,
    fields = {
      { name = "nodeid", type = "u64", size = 8, offset = 0 },
      { name = "offset", type = "u64", size = 8, offset = 8 },
      { name = "size", type = "u32", size = 4, offset = 16 },
      { name = "padding", type = "u32", size = 4, offset = 20, pad = true },
    },
  },
  fuse_open_in = {
    size = 8,
    fields = {
      { name = "flags", type = "u32", size = 4, offset = 0, show = "custom:open_flags" },
      { name = "open_flags", type = "u32", size = 4, offset = 4, show = "flags:fuse_open_in_flags" },
    },
  },
  fuse_open_out = {
    size = 16,
    fields = {
      { name = "fh", type = "u64", size = 8, offset = 0 },
      { name = "open_flags", type = "u32", size = 4, offset = 8, show = "flags:fuse_fopen_flags" },
      { name = "backing_id", type = "i32", size = 4, offset = 12 },
    },
  },
  fuse_out_header = {
    size = 16,
    fields = {
      { name = "len", type = "u32", size = 4, offset = 0 },
      { name = "error", type = "i32", size = 4, offset = 4, show = "custom:fuse_error" },
      { name = "unique", type = "u64", size = 8, offset = 8, show = "hex" },
    },
  },
  fuse_poll_in = {
    size = 24,
    fields = {
      { name = "fh", type = "u64", size = 8, offset = 0 },
      { name = "kh", type = "u64", size = 8, offset = 8, show = "hex" },
      { name = "flags", type = "u32", size = 4, offset = 16, show = "flags:fuse_poll_flags" },
      { name = "events", type = "u32", size = 4, offset = 20, show = "flags:poll_events" },
    },
  },
  fuse_poll_out = {
    size = 8,
    fields = {
      { name = "revents", type = "u32", size = 4, offset = 0, show = "flags:poll_events" },
      { name = "padding", type = "u32", size = 4, offset = 4, pad = true },
    },
  },
  fuse_read_in = {
    size = 40,
    fields = {
      { name = "fh", type = "u64", size = 8, offset = 0 },
      { name = "offset", type = "u64", size = 8, offset = 8 },
      { name = "size", type = "u32", size = 4, offset = 16 },
      { name = "read_flags", type = "u32", size = 4, offset = 20, show = "flags:fuse_read_flags" },
      { name = "lock_owner", type = "u64", size = 8, offset = 24, show = "hex" },
      { name = "flags", type = "u32", size = 4, offset = 32, show = "custom:open_flags" },
      { name = "padding", type = "u32", size = 4, offset = 36, pad = true },
    },
  },
  fuse_release_in = {
    size = 24,
    fields = {
      { name = "fh", type = "u64", size = 8, offset = 0 },
      { name = "flags", type = "u32", size = 4, offset = 8, show = "custom:open_flags" },
      {
        name = "release_flags",
        type = "u32",
        size = 4,
        offset = 12,
        show = "flags:fuse_release_flags",
      },
      { name = "lock_owner", type = "u64", size = 8, offset = 16, show = "hex" },
    },
  },
  fuse_removemapping_in = { size = 4, fields = { { name = "count", type = "u32", size = 4, offset = 0 } } },
  fuse_removemapping_one = {
    size = 16,
    fields = {
      { name = "moffset", type = "u64", size = 8, offset = 0 },
      { name = "len", type = "u64", size = 8, offset = 8 },
    },
  },
  fuse_rename2_in = {
    size = 16,
    fields = {
      { name = "newdir", type = "u64", size = 8, offset = 0 },
      { name = "flags", type = "u32", size = 4, offset = 8, show = "flags:rename_flags" },
      { name = "padding", type = "u32", size = 4, offset = 12, pad = true },
    },
  },
  fuse_rename_in = { size = 8, fields = { { name = "newdir", type = "u64", size = 8, offset = 0 } } },
  fuse_secctx = {
    size = 8,
    fields = {
      { name = "size", type = "u32", size = 4, offset = 0 },
      { name = "padding", type = "u32", size = 4, offset = 4, pad = true },
    },
  },
  fuse_secctx_header = {
    size = 8,
    fields = {
      { name = "size", type = "u32", size = 4, offset = 0 },
      { name = "nr_secctx", type = "u32", size = 4, offset = 4 },
    },
  },
  fuse_setattr_in = {
    size = 88,
    fields = {
      { name = "valid", type = "u32", size = 4, offset = 0, show = "flags:fuse_setattr_valid" },
      { name = "padding", type = "u32", size = 4, offset = 4, pad = true },
      { name = "fh", type = "u64", size = 8, offset = 8 },
      { name = "size", type = "u64", size = 8, offset = 16 },
      { name = "lock_owner", type = "u64", size = 8, offset = 24, show = "hex" },
      { name = "atime", type = "u64", size = 8, offset = 32 },
      { name = "mtime", type = "u64", size = 8, offset = 40 },
      { name = "ctime", type = "u64", size = 8, offset = 48 },
      { name = "atimensec", type = "u32", size = 4, offset = 56 },
      { name = "mtimensec", type = "u32", size = 4, offset = 60 },
      { name = "ctimensec", type = "u32", size = 4, offset = 64 },
      { name = "mode", type = "u32", size = 4, offset = 68, show = "custom:mode" },
      { name = "unused4", type = "u32", size = 4, offset = 72, pad = true },
      { name = "uid", type = "u32", size = 4, offset = 76 },
      { name = "gid", type = "u32", size = 4, offset = 80 },
      { name = "unused5", type = "u32", size = 4, offset = 84, pad = true },
    },
  },
  fuse_setupmapping_in = {
    size = 40,
    fields = {
      { name = "fh", type = "u64", size = 8, offset = 0 },
      { name = "foffset", type = "u64", size = 8, offset = 8 },
      { name = "len", type = "u64", size = 8, offset = 16 },
      {
        name = "flags",
        type = "u64",
        size = 8,
        offset = 24,
        show = "flags:fuse_setupmapping_flags",
      },
      { name = "moffset", type = "u64", size = 8, offset = 32 },
    },
  },
  fuse_setxattr_in = {
    size = 16,
    fields = {
      { name = "size", type = "u32", size = 4, offset = 0 },
      { name = "flags", type = "u32", size = 4, offset = 4, show = "flags:xattr_flags" },
      {
        name = "setxattr_flags",
        type = "u32",
        size = 4,
        offset = 8,
        since = 33,
        show = "flags:fuse_setxattr_flags",
      },
      { name = "padding", type = "u32", size = 4, offset = 12, since = 33, pad = true },
    },
  },
  fuse_statfs_out = {
    size = 80,
    fields = {
      { name = "blocks", type = "u64", size = 8, offset = 0 },
      { name = "bfree", type = "u64", size = 8, offset = 8 },
      { name = "bavail", type = "u64", size = 8, offset = 16 },
      { name = "files", type = "u64", size = 8, offset = 24 },
      { name = "ffree", type = "u64", size = 8, offset = 32 },
      { name = "bsize", type = "u32", size = 4, offset = 40 },
      { name = "namelen", type = "u32", size = 4, offset = 44 },
      { name = "frsize", type = "u32", size = 4, offset = 48, since = 4 },
      { name = "padding", type = "u32", size = 4, offset = 52, since = 4, pad = true },
      { name = "spare", type = "bytes", size = 24, offset = 56, since = 4, pad = true },
    },
  },
  fuse_statx_in = {
    size = 24,
    fields = {
      {
        name = "getattr_flags",
        type = "u32",
        size = 4,
        offset = 0,
        show = "flags:fuse_getattr_flags",
      },
      { name = "reserved", type = "u32", size = 4, offset = 4, pad = true },
      { name = "fh", type = "u64", size = 8, offset = 8 },
      { name = "sx_flags", type = "u32", size = 4, offset = 16, show = "flags:statx_flags" },
      { name = "sx_mask", type = "u32", size = 4, offset = 20, show = "flags:statx_mask" },
    },
  },
  fuse_statx_out = {
    size = 288,
    fields = {
      { name = "attr_valid", type = "u64", size = 8, offset = 0 },
      { name = "attr_valid_nsec", type = "u32", size = 4, offset = 8 },
      { name = "flags", type = "u32", size = 4, offset = 12 },
      { name = "spare", type = "bytes", size = 16, offset = 16, pad = true },
      { name = "mask", type = "u32", size = 4, offset = 32, show = "flags:statx_mask" },
      { name = "blksize", type = "u32", size = 4, offset = 36 },
      { name = "attributes", type = "u64", size = 8, offset = 40, show = "flags:statx_attributes" },
      { name = "nlink", type = "u32", size = 4, offset = 48 },
      { name = "uid", type = "u32", size = 4, offset = 52 },
      { name = "gid", type = "u32", size = 4, offset = 56 },
      { name = "mode", type = "u16", size = 2, offset = 60, show = "custom:mode" },
      { name = "spare0", type = "u16", size = 2, offset = 62, pad = true },
      { name = "ino", type = "u64", size = 8, offset = 64 },
      { name = "size", type = "u64", size = 8, offset = 72 },
      { name = "blocks", type = "u64", size = 8, offset = 80 },
      {
        name = "attributes_mask",
        type = "u64",
        size = 8,
        offset = 88,
        show = "flags:statx_attributes",
      },
      { name = "atime_sec", type = "i64", size = 8, offset = 96 },
      { name = "atime_nsec", type = "u32", size = 4, offset = 104 },
      { name = "atime_reserved", type = "i32", size = 4, offset = 108, pad = true },
      { name = "btime_sec", type = "i64", size = 8, offset = 112 },
      { name = "btime_nsec", type = "u32", size = 4, offset = 120 },
      { name = "btime_reserved", type = "i32", size = 4, offset = 124, pad = true },
      { name = "ctime_sec", type = "i64", size = 8, offset = 128 },
      { name = "ctime_nsec", type = "u32", size = 4, offset = 136 },
      { name = "ctime_reserved", type = "i32", size = 4, offset = 140, pad = true },
      { name = "mtime_sec", type = "i64", size = 8, offset = 144 },
      { name = "mtime_nsec", type = "u32", size = 4, offset = 152 },
      { name = "mtime_reserved", type = "i32", size = 4, offset = 156, pad = true },
      { name = "rdev_major", type = "u32", size = 4, offset = 160 },
      { name = "rdev_minor", type = "u32", size = 4, offset = 164 },
      { name = "dev_major", type = "u32", size = 4, offset = 168 },
      { name = "dev_minor", type = "u32", size = 4, offset = 172 },
      { name = "spare2", type = "bytes", size = 112, offset = 176, pad = true },
    },
  },
  fuse_supp_groups = { size = 4, fields = { { name = "nr_groups", type = "u32", size = 4, offset = 0 } } },
  fuse_syncfs_in = { size = 8, fields = { { name = "padding", type = "u64", size = 8, offset = 0, pad = true } } },
  fuse_write_in = {
    size = 40,
    fields = {
      { name = "fh", type = "u64", size = 8, offset = 0 },
      { name = "offset", type = "u64", size = 8, offset = 8 },
      { name = "size", type = "u32", size = 4, offset = 16 },
      { name = "write_flags", type = "u32", size = 4, offset = 20, show = "flags:fuse_write_flags" },
      { name = "lock_owner", type = "u64", size = 8, offset = 24, since = 9, show = "hex" },
      { name = "flags", type = "u32", size = 4, offset = 32, since = 9, show = "custom:open_flags" },
      { name = "padding", type = "u32", size = 4, offset = 36, since = 9, pad = true },
    },
  },
  fuse_write_out = {
    size = 8,
    fields = {
      { name = "size", type = "u32", size = 4, offset = 0 },
      { name = "padding", type = "u32", size = 4, offset = 4, pad = true },
    },
  },
  u64 = { size = 8, fields = { { name = "value", type = "u64", size = 8, offset = 0 } } },
  vfstrace_record = {
    size = 32,
    fields = {
      { name = "magic", type = "u16", size = 2, offset = 0, show = "hex" },
      { name = "version", type = "u8", size = 1, offset = 2 },
      { name = "kind", type = "u8", size = 1, offset = 3, show = "enum:vfstrace_record_kind" },
      { name = "flags", type = "u16", size = 2, offset = 4, show = "flags:vfstrace_record_flags" },
      { name = "queue", type = "u16", size = 2, offset = 6 },
      { name = "fd_count", type = "u16", size = 2, offset = 8 },
      { name = "direction", type = "u8", size = 1, offset = 10 },
      { name = "reserved", type = "u8", size = 1, offset = 11, pad = true },
      { name = "head", type = "u16", size = 2, offset = 12 },
      { name = "reserved2", type = "u16", size = 2, offset = 14, pad = true },
      { name = "seq", type = "u32", size = 4, offset = 16 },
      { name = "residence_ns", type = "u32", size = 4, offset = 20 },
      { name = "aux", type = "u64", size = 8, offset = 24, show = "hex" },
    },
  },
  vhost_iotlb_msg = {
    size = 32,
    fields = {
      { name = "iova", type = "u64", size = 8, offset = 0, show = "hex" },
      { name = "size", type = "u64", size = 8, offset = 8, show = "hex" },
      { name = "uaddr", type = "u64", size = 8, offset = 16, show = "hex" },
      { name = "perm", type = "u8", size = 1, offset = 24, show = "enum:vhost_iotlb_perm" },
      { name = "type", type = "u8", size = 1, offset = 25, show = "enum:vhost_iotlb_type" },
      { name = "padding", type = "bytes", size = 6, offset = 26, pad = true },
    },
  },
  vhost_vring_addr = {
    size = 40,
    fields = {
      { name = "index", type = "u32", size = 4, offset = 0 },
      { name = "flags", type = "u32", size = 4, offset = 4, show = "flags:vhost_vring_flags" },
      { name = "desc_user_addr", type = "u64", size = 8, offset = 8, show = "hex" },
      { name = "used_user_addr", type = "u64", size = 8, offset = 16, show = "hex" },
      { name = "avail_user_addr", type = "u64", size = 8, offset = 24, show = "hex" },
      { name = "log_guest_addr", type = "u64", size = 8, offset = 32, show = "hex" },
    },
  },
  vhost_vring_state = {
    size = 8,
    fields = {
      { name = "index", type = "u32", size = 4, offset = 0 },
      { name = "num", type = "u32", size = 4, offset = 4 },
    },
  },
  virtio_fs_config = {
    size = 44,
    fields = {
      { name = "tag", type = "bytes", size = 36, offset = 0 },
      { name = "num_request_queues", type = "u32", size = 4, offset = 36 },
      { name = "notify_buf_size", type = "u32", size = 4, offset = 40 },
    },
  },
}
T.sets = {
  access_mask = { flags = { { "X_OK", 1, 0 }, { "W_OK", 2, 0 }, { "R_OK", 4, 0 } } },
  cuse_init_flags = { flags = { { "CUSE_UNRESTRICTED_IOCTL", 1, 0 } } },
  dirent_type = {
    enum = {
      [0] = "DT_UNKNOWN",
      [1] = "DT_FIFO",
      [2] = "DT_CHR",
      [4] = "DT_DIR",
      [6] = "DT_BLK",
      [8] = "DT_REG",
      [10] = "DT_LNK",
      [12] = "DT_SOCK",
      [14] = "DT_WHT",
    },
  },
  fallocate_mode = {
    flags = {
      { "FALLOC_FL_KEEP_SIZE", 1, 0 },
      { "FALLOC_FL_PUNCH_HOLE", 2, 0 },
      { "FALLOC_FL_NO_HIDE_STALE", 4, 0 },
      { "FALLOC_FL_COLLAPSE_RANGE", 8, 0 },
      { "FALLOC_FL_ZERO_RANGE", 16, 0 },
      { "FALLOC_FL_INSERT_RANGE", 32, 0 },
      { "FALLOC_FL_UNSHARE_RANGE", 64, 0 },
    },
  },
  fuse_attr_flags = { flags = { { "ATTR_SUBMOUNT", 1, 0 }, { "ATTR_DAX", 2, 0 } } },
  fuse_fopen_flags = {
    flags = {
      { "FOPEN_DIRECT_IO", 1, 0 },
      { "FOPEN_KEEP_CACHE", 2, 0 },
      { "FOPEN_NONSEEKABLE", 4, 0 },
      { "FOPEN_CACHE_DIR", 8, 0 },
      { "FOPEN_STREAM", 16, 0 },
      { "FOPEN_NOFLUSH", 32, 0 },
      { "FOPEN_PARALLEL_DIRECT_WRITES", 64, 0 },
      { "FOPEN_PASSTHROUGH", 128, 0 },
    },
  },
  fuse_fsync_flags = { flags = { { "FSYNC_FDATASYNC", 1, 0 } } },
  fuse_getattr_flags = { flags = { { "GETATTR_FH", 1, 0 } } },
  fuse_init_flags = {
    flags = {
      { "ASYNC_READ", 1, 0 },
      { "POSIX_LOCKS", 2, 0 },
      { "FILE_OPS", 4, 0 },
      { "ATOMIC_O_TRUNC", 8, 0 },
      { "EXPORT_SUPPORT", 16, 0 },
      { "BIG_WRITES", 32, 0 },
      { "DONT_MASK", 64, 0 },
      { "SPLICE_WRITE", 128, 0 },
      { "SPLICE_MOVE", 256, 0 },
      { "SPLICE_READ", 512, 0 },
      { "FLOCK_LOCKS", 1024, 0 },
      { "HAS_IOCTL_DIR", 2048, 0 },
      { "AUTO_INVAL_DATA", 4096, 0 },
      { "DO_READDIRPLUS", 8192, 0 },
      { "READDIRPLUS_AUTO", 16384, 0 },
      { "ASYNC_DIO", 32768, 0 },
      { "WRITEBACK_CACHE", 65536, 0 },
      { "NO_OPEN_SUPPORT", 131072, 0 },
      { "PARALLEL_DIROPS", 262144, 0 },
      { "HANDLE_KILLPRIV", 524288, 0 },
      { "POSIX_ACL", 1048576, 0 },
      { "ABORT_ERROR", 2097152, 0 },
      { "MAX_PAGES", 4194304, 0 },
      { "CACHE_SYMLINKS", 8388608, 0 },
      { "NO_OPENDIR_SUPPORT", 16777216, 0 },
      { "EXPLICIT_INVAL_DATA", 33554432, 0 },
      { "MAP_ALIGNMENT", 67108864, 0 },
      { "SUBMOUNTS", 134217728, 0 },
      { "HANDLE_KILLPRIV_V2", 268435456, 0 },
      { "SETXATTR_EXT", 536870912, 0 },
      { "INIT_EXT", 1073741824, 0 },
      { "INIT_RESERVED", 2147483648, 0 },
    },
  },
  fuse_init_flags2 = {
    flags = {
      { "SECURITY_CTX", 1, 0 },
      { "HAS_INODE_DAX", 2, 0 },
      { "CREATE_SUPP_GROUP", 4, 0 },
      { "HAS_EXPIRE_ONLY", 8, 0 },
      { "DIRECT_IO_ALLOW_MMAP", 16, 0 },
      { "PASSTHROUGH", 32, 0 },
      { "NO_EXPORT_SUPPORT", 64, 0 },
      { "HAS_RESEND", 128, 0 },
      { "ALLOW_IDMAP", 256, 0 },
      { "OVER_IO_URING", 512, 0 },
      { "REQUEST_TIMEOUT", 1024, 0 },
    },
  },
  fuse_ioctl_flags = {
    flags = {
      { "IOCTL_COMPAT", 1, 0 },
      { "IOCTL_UNRESTRICTED", 2, 0 },
      { "IOCTL_RETRY", 4, 0 },
      { "IOCTL_32BIT", 8, 0 },
      { "IOCTL_DIR", 16, 0 },
      { "IOCTL_COMPAT_X32", 32, 0 },
    },
  },
  fuse_lk_flags = { flags = { { "LK_FLOCK", 1, 0 } } },
  fuse_notify_code = {
    enum = {
      [1] = "POLL",
      [2] = "INVAL_INODE",
      [3] = "INVAL_ENTRY",
      [4] = "STORE",
      [5] = "RETRIEVE",
      [6] = "DELETE",
      [7] = "RESEND",
      [8] = "INC_EPOCH",
      [9] = "PRUNE",
    },
  },
  fuse_notify_inval_entry_flags = { flags = { { "EXPIRE_ONLY", 1, 0 } } },
  fuse_opcode = {
    enum = {
      [1] = "LOOKUP",
      [2] = "FORGET",
      [3] = "GETATTR",
      [4] = "SETATTR",
      [5] = "READLINK",
      [6] = "SYMLINK",
      [8] = "MKNOD",
      [9] = "MKDIR",
      [10] = "UNLINK",
      [11] = "RMDIR",
      [12] = "RENAME",
      [13] = "LINK",
      [14] = "OPEN",
      [15] = "READ",
      [16] = "WRITE",
      [17] = "STATFS",
      [18] = "RELEASE",
      [20] = "FSYNC",
      [21] = "SETXATTR",
      [22] = "GETXATTR",
      [23] = "LISTXATTR",
      [24] = "REMOVEXATTR",
      [25] = "FLUSH",
      [26] = "INIT",
      [27] = "OPENDIR",
      [28] = "READDIR",
      [29] = "RELEASEDIR",
      [30] = "FSYNCDIR",
      [31] = "GETLK",
      [32] = "SETLK",
      [33] = "SETLKW",
      [34] = "ACCESS",
      [35] = "CREATE",
      [36] = "INTERRUPT",
      [37] = "BMAP",
      [38] = "DESTROY",
      [39] = "IOCTL",
      [40] = "POLL",
      [41] = "NOTIFY_REPLY",
      [42] = "BATCH_FORGET",
      [43] = "FALLOCATE",
      [44] = "READDIRPLUS",
      [45] = "RENAME2",
      [46] = "LSEEK",
      [47] = "COPY_FILE_RANGE",
      [48] = "SETUPMAPPING",
      [49] = "REMOVEMAPPING",
      [50] = "SYNCFS",
      [51] = "TMPFILE",
      [52] = "STATX",
      [53] = "COPY_FILE_RANGE_64",
      [4096] = "CUSE_INIT",
    },
  },
  fuse_open_in_flags = { flags = { { "OPEN_KILL_SUIDGID", 1, 0 } } },
  fuse_poll_flags = { flags = { { "POLL_SCHEDULE_NOTIFY", 1, 0 } } },
  fuse_read_flags = { flags = { { "READ_LOCKOWNER", 2, 0 } } },
  fuse_release_flags = { flags = { { "RELEASE_FLUSH", 1, 0 }, { "RELEASE_FLOCK_UNLOCK", 2, 0 } } },
  fuse_setattr_valid = {
    flags = {
      { "FATTR_MODE", 1, 0 },
      { "FATTR_UID", 2, 0 },
      { "FATTR_GID", 4, 0 },
      { "FATTR_SIZE", 8, 0 },
      { "FATTR_ATIME", 16, 0 },
      { "FATTR_MTIME", 32, 0 },
      { "FATTR_FH", 64, 0 },
      { "FATTR_ATIME_NOW", 128, 0 },
      { "FATTR_MTIME_NOW", 256, 0 },
      { "FATTR_LOCKOWNER", 512, 0 },
      { "FATTR_CTIME", 1024, 0 },
      { "FATTR_KILL_SUIDGID", 2048, 0 },
    },
  },
  fuse_setupmapping_flags = { flags = { { "SETUPMAPPING_FLAG_WRITE", 1, 0 }, { "SETUPMAPPING_FLAG_READ", 2, 0 } } },
  fuse_setxattr_flags = { flags = { { "SETXATTR_ACL_KILL_SGID", 1, 0 } } },
  fuse_write_flags = {
    flags = { { "WRITE_CACHE", 1, 0 }, { "WRITE_LOCKOWNER", 2, 0 }, { "WRITE_KILL_SUIDGID", 4, 0 } },
  },
  lock_type = { enum = { [0] = "F_RDLCK", [1] = "F_WRLCK", [2] = "F_UNLCK" } },
  open_flags = {
    flags = {
      { "O_CREAT", 64, 0 },
      { "O_EXCL", 128, 0 },
      { "O_NOCTTY", 256, 0 },
      { "O_TRUNC", 512, 0 },
      { "O_APPEND", 1024, 0 },
      { "O_NONBLOCK", 2048, 0 },
      { "O_SYNC", 1052672, 0 },
      { "O_DSYNC", 4096, 0 },
      { "FASYNC", 8192, 0 },
      { "O_DIRECT", 16384, 0 },
      { "O_LARGEFILE", 32768, 0 },
      { "O_TMPFILE", 4259840, 0 },
      { "O_DIRECTORY", 65536, 0 },
      { "O_NOFOLLOW", 131072, 0 },
      { "O_NOATIME", 262144, 0 },
      { "O_CLOEXEC", 524288, 0 },
      { "O_PATH", 2097152, 0 },
    },
  },
  poll_events = {
    flags = {
      { "POLLIN", 1, 0 },
      { "POLLPRI", 2, 0 },
      { "POLLOUT", 4, 0 },
      { "POLLERR", 8, 0 },
      { "POLLHUP", 16, 0 },
      { "POLLNVAL", 32, 0 },
      { "POLLRDNORM", 64, 0 },
      { "POLLRDBAND", 128, 0 },
      { "POLLWRNORM", 256, 0 },
      { "POLLWRBAND", 512, 0 },
      { "POLLMSG", 1024, 0 },
      { "POLLRDHUP", 8192, 0 },
    },
  },
  rename_flags = {
    flags = { { "RENAME_NOREPLACE", 1, 0 }, { "RENAME_EXCHANGE", 2, 0 }, { "RENAME_WHITEOUT", 4, 0 } },
  },
  seek_whence = {
    enum = { [0] = "SEEK_SET", [1] = "SEEK_CUR", [2] = "SEEK_END", [3] = "SEEK_DATA", [4] = "SEEK_HOLE" },
  },
  statx_attributes = {
    flags = {
      { "STATX_ATTR_COMPRESSED", 4, 0 },
      { "STATX_ATTR_IMMUTABLE", 16, 0 },
      { "STATX_ATTR_APPEND", 32, 0 },
      { "STATX_ATTR_NODUMP", 64, 0 },
      { "STATX_ATTR_ENCRYPTED", 2048, 0 },
      { "STATX_ATTR_AUTOMOUNT", 4096, 0 },
      { "STATX_ATTR_MOUNT_ROOT", 8192, 0 },
      { "STATX_ATTR_VERITY", 1048576, 0 },
      { "STATX_ATTR_DAX", 2097152, 0 },
      { "STATX_ATTR_WRITE_ATOMIC", 4194304, 0 },
    },
  },
  statx_flags = {
    flags = {
      { "AT_SYMLINK_NOFOLLOW", 256, 0 },
      { "AT_NO_AUTOMOUNT", 2048, 0 },
      { "AT_EMPTY_PATH", 4096, 0 },
      { "AT_STATX_FORCE_SYNC", 8192, 0 },
      { "AT_STATX_DONT_SYNC", 16384, 0 },
    },
  },
  statx_mask = {
    flags = {
      { "STATX_TYPE", 1, 0 },
      { "STATX_MODE", 2, 0 },
      { "STATX_NLINK", 4, 0 },
      { "STATX_UID", 8, 0 },
      { "STATX_GID", 16, 0 },
      { "STATX_ATIME", 32, 0 },
      { "STATX_MTIME", 64, 0 },
      { "STATX_CTIME", 128, 0 },
      { "STATX_INO", 256, 0 },
      { "STATX_SIZE", 512, 0 },
      { "STATX_BLOCKS", 1024, 0 },
      { "STATX_BTIME", 2048, 0 },
      { "STATX_MNT_ID", 4096, 0 },
      { "STATX_DIOALIGN", 8192, 0 },
      { "STATX_MNT_ID_UNIQUE", 16384, 0 },
      { "STATX_SUBVOL", 32768, 0 },
      { "STATX_WRITE_ATOMIC", 65536, 0 },
      { "STATX_DIO_READ_ALIGN", 131072, 0 },
    },
  },
  vfstrace_notify_direction = {
    enum = { [0] = "GUEST_KICK", [1] = "BACKEND_CALL", [2] = "KICK_TO_BACKEND", [3] = "CALL_TO_GUEST" },
  },
  vfstrace_record_flags = {
    flags = {
      { "TRUNCATED", 1, 0 },
      { "MALFORMED", 2, 0 },
      { "PAIRED", 4, 0 },
      { "SYNTHETIC", 8, 0 },
      { "CONTINUED", 16, 0 },
    },
  },
  vfstrace_record_kind = {
    enum = {
      [1] = "VHOST_USER",
      [2] = "FUSE_REQUEST",
      [3] = "FUSE_REPLY",
      [4] = "NOTE",
      [5] = "NOTIFY",
      [6] = "CONTINUATION",
    },
  },
  vfstrace_stream = {
    enum = {
      [0] = "vfstrace",
      [1] = "vhost-user.frontend",
      [2] = "vhost-user.backend",
      [3] = "backend-channel",
    },
  },
  vfstrace_vhost_user_direction = {
    enum = {
      [0] = "FRONTEND_TO_BACKEND",
      [1] = "BACKEND_TO_FRONTEND",
      [2] = "BACKEND_CHANNEL_REQUEST",
      [3] = "BACKEND_CHANNEL_REPLY",
    },
  },
  vhost_iotlb_perm = { enum = { [0] = "NO_ACCESS", [1] = "RO", [2] = "WO", [3] = "RW" } },
  vhost_iotlb_type = {
    enum = {
      [1] = "MISS",
      [2] = "UPDATE",
      [3] = "INVALIDATE",
      [4] = "ACCESS_FAIL",
      [5] = "BATCH_BEGIN",
      [6] = "BATCH_END",
    },
  },
  vhost_set_config_type = { enum = { [0] = "FRONTEND", [1] = "MIGRATION" } },
  vhost_transfer_state_direction = { enum = { [0] = "SAVE", [1] = "LOAD" } },
  vhost_transfer_state_phase = { enum = { [0] = "STOPPED" } },
  vhost_user_fs_flags = { flags = { { "MAP_R", 1, 0 }, { "MAP_W", 2, 0 } } },
  vhost_user_mmap_flags = { flags = { { "MAP_RW", 1, 0 } } },
  vhost_user_protocol_features = {
    flags = {
      { "MQ", 1, 0 },
      { "LOG_SHMFD", 2, 0 },
      { "RARP", 4, 0 },
      { "REPLY_ACK", 8, 0 },
      { "NET_MTU", 16, 0 },
      { "BACKEND_REQ", 32, 0 },
      { "CROSS_ENDIAN", 64, 0 },
      { "CRYPTO_SESSION", 128, 0 },
      { "PAGEFAULT", 256, 0 },
      { "CONFIG", 512, 0 },
      { "BACKEND_SEND_FD", 1024, 0 },
      { "HOST_NOTIFIER", 2048, 0 },
      { "INFLIGHT_SHMFD", 4096, 0 },
      { "RESET_DEVICE", 8192, 0 },
      { "INBAND_NOTIFICATIONS", 16384, 0 },
      { "CONFIGURE_MEM_SLOTS", 32768, 0 },
      { "STATUS", 65536, 0 },
      { "XEN_MMAP", 131072, 0 },
      { "SHARED_OBJECT", 262144, 0 },
      { "DEVICE_STATE", 524288, 0 },
      { "GET_VRING_BASE_INFLIGHT", 1048576, 0 },
      { "GPA_ADDRESSES", 2097152, 0 },
      { "SHMEM", 4194304, 0 },
      { "GET_VRING_BASE_SKIP_DRAIN", 8388608, 0 },
      { "MTU", 16, 0 },
      { "SLAVE_REQ", 32, 0 },
      { "SLAVE_SEND_FD", 1024, 0 },
      { "SHMEM_MAP", 4194304, 0 },
    },
  },
  vhost_user_xen_mmap_flags = { flags = { { "FOREIGN", 1, 0 }, { "GRANT", 2, 0 }, { "NO_ADVANCE_MAP", 256, 0 } } },
  vhost_vring_flags = { flags = { { "VHOST_VRING_F_LOG", 1, 0 } } },
  virtio_device_status = {
    flags = {
      { "ACKNOWLEDGE", 1, 0 },
      { "DRIVER", 2, 0 },
      { "DRIVER_OK", 4, 0 },
      { "FEATURES_OK", 8, 0 },
      { "NEEDS_RESET", 64, 0 },
      { "FAILED", 128, 0 },
    },
  },
  virtio_fs_features = {
    flags = {
      { "VIRTIO_FS_F_NOTIFICATION", 1, 0 },
      { "VIRTIO_F_NOTIFY_ON_EMPTY", 16777216, 0 },
      { "VHOST_F_LOG_ALL", 67108864, 0 },
      { "VIRTIO_F_ANY_LAYOUT", 134217728, 0 },
      { "VIRTIO_RING_F_INDIRECT_DESC", 268435456, 0 },
      { "VIRTIO_RING_F_EVENT_IDX", 536870912, 0 },
      { "VHOST_USER_F_PROTOCOL_FEATURES", 1073741824, 0 },
      { "VIRTIO_F_VERSION_1", 0, 1 },
      { "VIRTIO_F_ACCESS_PLATFORM", 0, 2 },
      { "VIRTIO_F_RING_PACKED", 0, 4 },
      { "VIRTIO_F_IN_ORDER", 0, 8 },
      { "VIRTIO_F_ORDER_PLATFORM", 0, 16 },
      { "VIRTIO_F_SR_IOV", 0, 32 },
      { "VIRTIO_F_NOTIFICATION_DATA", 0, 64 },
      { "VIRTIO_F_NOTIF_CONFIG_DATA", 0, 128 },
      { "VIRTIO_F_RING_RESET", 0, 256 },
      { "VIRTIO_F_ADMIN_VQ", 0, 512 },
      { "VIRTIO_F_IOMMU_PLATFORM", 0, 2 },
    },
  },
  xattr_flags = { flags = { { "XATTR_CREATE", 1, 0 }, { "XATTR_REPLACE", 2, 0 } } },
}
-- END GENERATED TABLES

---------------------------------------------------------------------------
-- Table access, with a clear error when the generated part lacks something

-- Lua 5.2 has bit32; every Wireshark with Lua also has BitOp as `bit`, whose
-- results are signed: both are used through unsigned 32-bit wrappers.
local bitlib = bit32 or bit
local function u32(x) return x % 4294967296 end
local function band(a, b) return u32(bitlib.band(a, b)) end
local function bor(a, b) return u32(bitlib.bor(a, b)) end
local function bnot(a) return u32(bitlib.bnot(a)) end
local function rshift(a, n) return u32(bitlib.rshift(a, n)) end

local function need(tbl, key, what)
  local v = tbl[key]
  if v == nil then error("vfstrace.lua: the generated tables have no " .. what .. " " .. tostring(key)) end
  return v
end

local REC = T.record
local FUSE = T.fuse
local VU = T.vhost_user
local K = REC.kinds
local HDR = REC.header_size
local NEWEST = math.huge

local function layout(name) return need(T.layouts, name, "layout") end
local function set(name) return need(T.sets, name, "name table") end

-- Wire size of a layout at protocol minor `version` (nil: newest).
local function layout_size(l, version)
  local v = version or NEWEST
  local s = 0
  for _, f in ipairs(l.fields) do
    if (f.since or 0) <= v then s = s + f.size end
  end
  return s
end

local function field_spec(l, name)
  for _, f in ipairs(l.fields) do
    if f.name == name then return f end
  end
  error("vfstrace.lua: layout has no field " .. name)
end

-- Value name tables for ProtoFields, keyed by value.
local function enum_of(name) return set(name).enum or error("vfstrace.lua: " .. name .. " is not an enum") end

local KIND_NAMES = enum_of(REC.kind_names)
local OPCODE = {}
for opcode, op in pairs(FUSE.ops) do OPCODE[op.name] = opcode end
local INIT = need(OPCODE, "INIT", "FUSE opcode")
local NOTIFY_CODES = enum_of(FUSE.notify_codes)
local FLAG_BIT = {}
for _, b in ipairs(set(REC.flag_names).flags) do FLAG_BIT[b[1]] = b[2] end

local INIT_FLAGS = {}
for _, b in ipairs(set(field_spec(layout("fuse_init_out"), "flags").show:match("^flags:(.+)$")).flags) do
  INIT_FLAGS[b[1]] = b[2]
end
local SETXATTR_EXT = need(INIT_FLAGS, "SETXATTR_EXT", "INIT flag")
local IOCTL_RETRY
for _, b in ipairs(set(field_spec(layout("fuse_ioctl_out"), "flags").show:match("^flags:(.+)$")).flags) do
  if b[1] == "IOCTL_RETRY" then IOCTL_RETRY = b[2] end
end
need({ IOCTL_RETRY = IOCTL_RETRY }, "IOCTL_RETRY", "ioctl flag")
-- Without SETXATTR_EXT, fuse_setxattr_in is the short form: the fields of
-- the minors before the first field added later.
local SETXATTR_COMPAT_MINOR = NEWEST
for _, f in ipairs(layout(FUSE.ops[need(OPCODE, "SETXATTR", "FUSE opcode")].request.struct).fields) do
  if (f.since or 0) > 0 then SETXATTR_COMPAT_MINOR = math.min(SETXATTR_COMPAT_MINOR, f.since - 1) end
end

---------------------------------------------------------------------------
-- Numbers

-- The two 32-bit words of a number, UInt64 or Int64.
local function words(v)
  if type(v) == "number" then
    if v < 0 then v = v + 4294967296 end
    return v % 4294967296, math.floor(v / 4294967296)
  end
  return v:lower(), v:higher()
end

local function num(v)
  if type(v) == "number" then return v end
  return v:tonumber()
end

local function hex(v)
  local lo, hi = words(v)
  if hi ~= 0 then return string.format("0x%x%08x", hi, lo) end
  return string.format("0x%x", lo)
end

local function is_zero(v)
  local lo, hi = words(v)
  return lo == 0 and hi == 0
end

local function align8(n) return math.floor((n + 7) / 8) * 8 end

-- Names of the bits of `v` in flag table `s` (BitNames.names: in table order,
-- each entry taking its bits, unknown bits as a hex rest).
local function flag_names(s, v)
  local lo, hi = words(v)
  local out = {}
  for _, b in ipairs(s.flags) do
    local blo, bhi = b[2], b[3]
    if (blo ~= 0 or bhi ~= 0) and band(lo, blo) == blo and band(hi, bhi) == bhi then
      out[#out + 1] = b[1]
      lo, hi = band(lo, bnot(blo)), band(hi, bnot(bhi))
    end
  end
  if lo ~= 0 or hi ~= 0 then
    out[#out + 1] = hi ~= 0 and string.format("0x%x%08x", hi, lo) or string.format("0x%x", lo)
  end
  return out
end

local function format_flags(s, v)
  local n = flag_names(s, v)
  return #n == 0 and "0" or table.concat(n, "|")
end

---------------------------------------------------------------------------
-- Custom displays: one formatter per `custom:<name>` the tables use
-- (generate.ts refuses tables that name one missing here).

local CUSTOM = {}
local ACCESS_MODES = { [0] = "O_RDONLY", [1] = "O_WRONLY", [2] = "O_RDWR", [3] = "O_ACCMODE" }
local TYPE_CHARS = {
  [0xC000] = "s", [0xA000] = "l", [0x8000] = "-", [0x6000] = "b",
  [0x4000] = "d", [0x2000] = "c", [0x1000] = "p",
}

CUSTOM["mode"] = function(v)
  local m = words(v)
  local function b(mask, c) return band(m, mask) ~= 0 and c or "-" end
  local function special(x, s, on, off)
    if band(m, s) ~= 0 then return band(m, x) ~= 0 and on or off end
    return band(m, x) ~= 0 and "x" or "-"
  end
  return (TYPE_CHARS[band(m, 0xF000)] or "?") .. b(256, "r") .. b(128, "w") .. special(64, 2048, "s", "S")
    .. b(32, "r") .. b(16, "w") .. special(8, 1024, "s", "S")
    .. b(4, "r") .. b(2, "w") .. special(1, 512, "t", "T")
end

CUSTOM["octal"] = function(v) return string.format("0%o", num(v)) end

CUSTOM["open_flags"] = function(v)
  local n = words(v)
  local rest = band(n, bnot(3))
  local mode = ACCESS_MODES[band(n, 3)]
  if rest == 0 then return mode end
  return mode .. "|" .. format_flags(set(FUSE.open_flags), rest)
end

CUSTOM["rdev"] = function(v)
  local d = words(v)
  return string.format("%d:%d", rshift(band(d, 0xfff00), 8), bor(band(d, 0xff), band(rshift(d, 12), 0xfff00)))
end

CUSTOM["fuse_error"] = function(v)
  local e = num(v)
  if e == 0 then return "0" end
  if e < 0 then return "-" .. (T.errno[-e] or ("E" .. -e)) end
  return NOTIFY_CODES[e] and ("NOTIFY_" .. NOTIFY_CODES[e]) or tostring(e)
end

CUSTOM["vhost_user_flags"] = function(v)
  local f = words(v)
  local s = "v" .. band(f, VU.version_mask)
  if band(f, VU.reply_mask) ~= 0 then s = s .. "|REPLY" end
  if band(f, VU.need_reply_mask) ~= 0 then s = s .. "|NEED_REPLY" end
  local rest = band(f, bnot(VU.flags_known))
  if rest ~= 0 then s = s .. string.format("|0x%x", rest) end
  return s
end

CUSTOM["vring_index"] = function(v)
  local lo, hi = words(v)
  local s = tostring(band(lo, VU.vring_idx_mask))
  if band(lo, VU.vring_nofd_mask) ~= 0 then s = s .. "|NOFD" end
  local rest = band(lo, bnot(bor(VU.vring_idx_mask, VU.vring_nofd_mask)))
  if rest ~= 0 or hi ~= 0 then s = s .. "|" .. hex(UInt64(rest, hi)) end
  return s
end

CUSTOM["mac"] = function(v)
  local lo, hi = words(v)
  return string.format("%02x:%02x:%02x:%02x:%02x:%02x", band(lo, 0xff), band(rshift(lo, 8), 0xff),
    band(rshift(lo, 16), 0xff), rshift(lo, 24), band(hi, 0xff), band(rshift(hi, 8), 0xff))
end

CUSTOM["device_state_result"] = function(v)
  local lo = words(v)
  local err = band(lo, 0xff)
  return (err == 0 and "ok" or ("error " .. err)) .. (band(lo, VU.vring_nofd_mask) ~= 0 and "|NOFD" or "|fd")
end

for _, name in ipairs(T.customs) do need(CUSTOM, name, "formatter for custom display") end

---------------------------------------------------------------------------
-- Protocols and fields

local p_vfstrace = Proto("vfstrace", "vfstrace capture record")
local p_fuse = Proto("fuse", "FUSE")
local p_vhost = Proto("vhost_user", "vhost-user")

local F = {}          -- key (normally the abbreviation) -> ProtoField
local FTYPE = {}      -- abbreviation -> type, to catch clashes
local LISTS = { vfstrace = {}, fuse = {}, vhost_user = {} }

local function add_field(key, abbr, ftype, pf)
  if F[key] then return F[key] end
  if FTYPE[abbr] and FTYPE[abbr] ~= ftype then
    error("vfstrace.lua: field " .. abbr .. " defined as " .. FTYPE[abbr] .. " and " .. ftype)
  end
  FTYPE[abbr] = ftype
  F[key] = pf
  local list = need(LISTS, abbr:match("^[^.]+"), "protocol of field")
  list[#list + 1] = pf
  return pf
end

local CTOR = {
  u8 = ProtoField.uint8, u16 = ProtoField.uint16, u32 = ProtoField.uint32, u64 = ProtoField.uint64,
  i32 = ProtoField.int32, i64 = ProtoField.int64,
}

local function show_of(spec)
  if spec == nil then return nil, nil end
  return spec:match("^([a-z]+):?(.*)$")
end

-- fuse.error: errno names for negative values, notify codes for positive ones.
local ERROR_NAMES = {}
for no, name in pairs(T.errno) do ERROR_NAMES[-no] = "-" .. name end
for code, name in pairs(NOTIFY_CODES) do ERROR_NAMES[code] = "NOTIFY_" .. name end
ERROR_NAMES[0] = "OK"

-- Boolean subfields <abbr>.<bit name> for each entry of a flag table.
local function bit_fields(prefix, s)
  local seen = {}
  for _, b in ipairs(s.flags) do
    local key = prefix .. "." .. b[1]:lower()
    if not seen[key] then
      seen[key] = true
      add_field(key, key, "bool", ProtoField.bool(key, b[1]))
    end
  end
end

-- The ProtoField(s) for layout field `f` under abbreviation `abbr`.
local function struct_field(abbr, f)
  if f.pad then return end
  local kind, arg = show_of(f.show)
  if f.type == "bytes" then
    add_field(abbr, abbr, "bytes", ProtoField.bytes(abbr, f.name))
    return
  end
  local signed = f.type == "i32" or f.type == "i64"
  local b, vs = base.DEC, nil
  if kind == "hex" or kind == "flags" then b = signed and base.DEC or base.HEX
  elseif kind == "enum" and f.size <= 4 then vs = enum_of(arg)
  elseif kind == "custom" and arg == "octal" then b = base.OCT
  elseif kind == "custom" and arg == "fuse_error" then vs = ERROR_NAMES
  elseif kind == "custom" and (arg == "vhost_user_flags" or arg == "open_flags") then b = base.HEX
  end
  add_field(abbr, abbr, f.type, need(CTOR, f.type, "field type")(abbr, f.name, b, vs))
  if kind == "flags" then bit_fields(abbr, set(arg)) end
  if kind == "custom" and arg == "open_flags" then
    local k = abbr .. ".accmode"
    add_field(k, k, "u32", ProtoField.uint32(k, "access mode", base.DEC, ACCESS_MODES, 3))
    bit_fields(abbr, set(FUSE.open_flags))
  end
end

local function layout_fields(prefix, lname)
  for _, f in ipairs(layout(lname).fields) do struct_field(prefix .. f.name, f) end
end

local SIMPLE = {
  string = ProtoField.string, bytes = ProtoField.bytes, bool = ProtoField.bool,
  framenum = ProtoField.framenum, u8 = ProtoField.uint8, u32 = ProtoField.uint32, u64 = ProtoField.uint64,
  i64 = ProtoField.int64,
}

-- A field that is not in a layout.
local function simple(abbr, ftype, label, ...)
  return add_field(abbr, abbr, ftype, SIMPLE[ftype](abbr, label, ...))
end

-- vfstrace: the record header, and what aux means per kind.
layout_fields("vfstrace.", REC.layout)
do
  -- The direction's names depend on the kind: one field per table, same abbreviation.
  local dir = field_spec(layout(REC.layout), "direction")
  for kind, sname in pairs(REC.direction_by_kind) do
    add_field("vfstrace.direction#" .. kind, "vfstrace.direction", dir.type,
      CTOR[dir.type]("vfstrace.direction", "direction", base.DEC, enum_of(sname)))
  end
end
simple("vfstrace.queue_name", "string", "queue name")
simple("vfstrace.body_length", "u32", "body length (whole record)")
simple("vfstrace.aux.descriptors", "u32", "descriptors in the chain")
simple("vfstrace.aux.writable", "u32", "writable bytes offered for the reply")
simple("vfstrace.aux.latency_ns", "u64", "latency (ns, kick to call)")
simple("vfstrace.aux.counter", "u64", "eventfd counter")
simple("vfstrace.aux.first_seq", "u32", "seq of the chain's first record")
simple("vfstrace.chain_start", "framenum", "chain starts in frame")
simple("vfstrace.note", "string", "note")
simple("vfstrace.note.type", "string", "note type")

-- fuse: headers, per-opcode argument structs, names, data, items, entries.
layout_fields("fuse.", FUSE.in_header)
layout_fields("fuse.", FUSE.out_header)
simple("fuse.reply", "bool", "is a reply")
simple("fuse.request_in", "framenum", "request in frame", base.NONE, frametype.REQUEST)
simple("fuse.reply_in", "framenum", "reply in frame", base.NONE, frametype.RESPONSE)
add_field("fuse.notify", "fuse.notify", "u32", ProtoField.uint32("fuse.notify", "notify code", base.DEC, NOTIFY_CODES))

local NAME_LABEL = {}
for _, l in ipairs(FUSE.name_labels) do
  NAME_LABEL[l] = true
  simple("fuse." .. l, "string", l)
end
local function data_field(label)
  if NAME_LABEL[label] then return end
  simple("fuse." .. label, "bytes", label)
end

local function body_fields(prefix, body)
  if body.struct then layout_fields(prefix, body.struct) end
  if body.data then data_field(body.data.label) end
  if body.items then layout_fields(prefix .. body.items.label .. ".", body.items.layout) end
end

local function op_prefix(op) return "fuse." .. op.name:lower() .. "." end

for _, op in pairs(FUSE.ops) do
  body_fields(op_prefix(op), op.request)
  body_fields(op_prefix(op) .. "reply.", op.reply)
end
for _, n in pairs(FUSE.notify) do body_fields("fuse.notify." .. n.name:lower() .. ".", n) end
layout_fields("fuse.dirent.", FUSE.dirent)
simple("fuse.dirent.name", "string", "name")
layout_fields("fuse.direntplus.", FUSE.direntplus_entry)
layout_fields("fuse.ext.", FUSE.ext_header)
layout_fields("fuse.ext.", FUSE.secctx_header)
layout_fields("fuse.ext.", FUSE.supp_groups)
layout_fields("fuse.ext.secctx.", FUSE.secctx)
simple("fuse.ext.secctx.name", "string", "xattr name")
simple("fuse.ext.secctx.value", "bytes", "context")
simple("fuse.ext.group", "u32", "group")
simple("fuse.ext.data", "bytes", "extension data")

-- vhost_user: header, names, payloads.
local REQ_NAMES = { frontend = {}, backend = {} }
for n, m in pairs(VU.frontend) do REQ_NAMES.frontend[n] = m.name end
for n, m in pairs(VU.backend) do REQ_NAMES.backend[n] = m.name end
do
  local req = field_spec(layout(VU.header), "request")
  for channel, names in pairs(REQ_NAMES) do
    add_field("vhost_user.request#" .. channel, "vhost_user.request", req.type,
      CTOR[req.type]("vhost_user.request", "request", base.DEC, names))
  end
end
layout_fields("vhost_user.", VU.header)
add_field("vhost_user.flags.version", "vhost_user.flags.version", "u32",
  ProtoField.uint32("vhost_user.flags.version", "version", base.DEC, nil, VU.version_mask))
add_field("vhost_user.flags.reply", "vhost_user.flags.reply", "bool",
  ProtoField.bool("vhost_user.flags.reply", "REPLY", 32, nil, VU.reply_mask))
add_field("vhost_user.flags.need_reply", "vhost_user.flags.need_reply", "bool",
  ProtoField.bool("vhost_user.flags.need_reply", "NEED_REPLY", 32, nil, VU.need_reply_mask))
simple("vhost_user.name", "string", "message")
simple("vhost_user.channel", "string", "channel")
simple("vhost_user.u64", "u64", "u64", base.HEX)
simple("vhost_user.vring_index.index", "u8", "vring index")
simple("vhost_user.vring_index.nofd", "bool", "NOFD")
simple("vhost_user.payload", "bytes", "payload")
simple("vhost_user.config.data", "bytes", "config space")
simple("vhost_user.crypto_session.session_id", "i64", "session id")
simple("vhost_user.crypto_session.data", "bytes", "session data")
simple("vhost_user.shmem_config.memory_size", "u64", "memory size", base.HEX)
for kind, lname in pairs(VU.payload_layouts) do layout_fields("vhost_user." .. kind .. ".", lname) end
layout_fields("vhost_user.memory_table.", VU.memory_table)
layout_fields("vhost_user.region.", VU.region)
layout_fields("vhost_user.region.", VU.region_xen)
layout_fields("vhost_user.mem_reg.", VU.mem_reg)
layout_fields("vhost_user.config.", VU.config)
layout_fields("vhost_user.shmem_config.", VU.shmem_config)
layout_fields("vhost_user.virtio_fs_config.", VU.virtio_fs_config)
local FS_ARRAYS = { "fd_offset", "c_offset", "len", "flags" }
for _, a in ipairs(FS_ARRAYS) do simple("vhost_user.fs_backend." .. a, "u64", a, base.HEX) end
bit_fields("vhost_user.fs_backend.flags", set(VU.fs_flags))

-- u64 payloads shown as flags (features, protocol features, status) get
-- vhost_user.<table>.<bit> subfields.
local function u64_bits_prefix(sname) return "vhost_user." .. sname:gsub("^vhost_user_", "") end
for _, tbl in ipairs({ VU.frontend, VU.backend, VU.backend_dax }) do
  for _, m in pairs(tbl) do
    for _, forms in ipairs({ m.request, m.reply }) do
      for _, form in ipairs(forms) do
        local kind, arg = show_of(form.show)
        if kind == "flags" then bit_fields(u64_bits_prefix(arg), set(arg)) end
      end
    end
  end
end

p_vfstrace.fields = LISTS.vfstrace
p_fuse.fields = LISTS.fuse
p_vhost.fields = LISTS.vhost_user

local G, S = expert.group, expert.severity
local E = {
  short = ProtoExpert.new("vfstrace.expert.short", "Packet shorter than a record header", G.MALFORMED, S.ERROR),
  magic = ProtoExpert.new("vfstrace.expert.magic", "Not a vfstrace record (bad magic)", G.MALFORMED, S.ERROR),
  version = ProtoExpert.new("vfstrace.expert.version", "Record version not supported", G.MALFORMED, S.ERROR),
  kind = ProtoExpert.new("vfstrace.expert.kind", "Unknown record kind", G.UNDECODED, S.WARN),
  snap = ProtoExpert.new("vfstrace.expert.snaplen", "Body cut by the snap length", G.UNDECODED, S.NOTE),
  cut = ProtoExpert.new("vfstrace.expert.cut", "Packet cut after capture", G.UNDECODED, S.WARN),
  chain = ProtoExpert.new("vfstrace.expert.chain", "Body continues in CONTINUATION packets", G.REASSEMBLE, S.CHAT),
  continuation = ProtoExpert.new("vfstrace.expert.continuation", "Continuation of a chain", G.REASSEMBLE, S.CHAT),
  note = ProtoExpert.new("vfstrace.expert.note", "NOTE body is not a JSON object with a type", G.MALFORMED, S.WARN),
  internal = ProtoExpert.new("vfstrace.expert.internal", "vfstrace.lua failed on this packet", G.MALFORMED, S.ERROR),
  fuse_short = ProtoExpert.new("fuse.expert.short", "FUSE header missing or cut", G.MALFORMED, S.WARN),
  fuse_cut = ProtoExpert.new("fuse.expert.cut", "FUSE message cut: the rest is not in the capture", G.UNDECODED, S.NOTE),
  fuse_bad = ProtoExpert.new("fuse.expert.malformed", "Malformed FUSE message", G.MALFORMED, S.ERROR),
  fuse_errno = ProtoExpert.new("fuse.expert.errno", "FUSE error reply", G.RESPONSE_CODE, S.NOTE),
  fuse_unpaired = ProtoExpert.new("fuse.expert.unpaired", "FUSE reply without its request", G.SEQUENCE, S.WARN),
  fuse_unknown = ProtoExpert.new("fuse.expert.unknown", "Unknown FUSE opcode", G.UNDECODED, S.WARN),
  vu_bad = ProtoExpert.new("vhost_user.expert.malformed", "Malformed vhost-user message", G.MALFORMED, S.ERROR),
  vu_unknown = ProtoExpert.new("vhost_user.expert.unknown", "Unknown vhost-user request", G.UNDECODED, S.WARN),
  vu_cut = ProtoExpert.new("vhost_user.expert.cut", "vhost-user message cut", G.UNDECODED, S.WARN),
}
p_vfstrace.experts = { E.short, E.magic, E.version, E.kind, E.snap, E.cut, E.chain, E.continuation, E.note, E.internal }
p_fuse.experts = { E.fuse_short, E.fuse_cut, E.fuse_bad, E.fuse_errno, E.fuse_unpaired, E.fuse_unknown }
p_vhost.experts = { E.vu_bad, E.vu_unknown, E.vu_cut }

---------------------------------------------------------------------------
-- Adding fields

local function read(r, t)
  if t == "u8" then return r:uint()
  elseif t == "u16" or t == "u32" then return r:le_uint()
  elseif t == "i32" then return r:le_int()
  elseif t == "u64" then return r:le_uint64()
  elseif t == "i64" then return r:le_int64()
  end
  return nil
end

-- Names, bit subfields or a formatted value after a field's item.
local function decorate(item, show, v, r, bits_prefix)
  local kind, arg = show_of(show)
  if kind == "flags" then
    local names = flag_names(set(arg), v)
    item:append_text(" (" .. (#names == 0 and "0" or table.concat(names, "|")) .. ")")
    local on = {}
    for _, n in ipairs(names) do on[n] = true end
    local seen = {}
    for _, b in ipairs(set(arg).flags) do
      local key = bits_prefix .. "." .. b[1]:lower()
      if not seen[key] then
        seen[key] = true
        item:add(F[key], r, on[b[1]] == true)
      end
    end
  elseif kind == "enum" then
    local name = enum_of(arg)[num(v)]
    if name and type(v) ~= "number" then item:append_text(" (" .. name .. ")") end
  elseif kind == "custom" and arg ~= "fuse_error" and arg ~= "octal" then
    item:append_text(" (" .. CUSTOM[arg](v) .. ")")
    if arg == "vhost_user_flags" then
      local f = words(v)
      item:add_le(F[bits_prefix .. ".version"], r)
      item:add_le(F[bits_prefix .. ".reply"], r)
      item:add_le(F[bits_prefix .. ".need_reply"], r)
    end
    if arg == "open_flags" then
      item:add(F[bits_prefix .. ".accmode"], r, band(words(v), 3))
      local on = {}
      for _, n in ipairs(flag_names(set(FUSE.open_flags), band(words(v), bnot(3)))) do on[n] = true end
      local seen = {}
      for _, b in ipairs(set(FUSE.open_flags).flags) do
        local key = bits_prefix .. "." .. b[1]:lower()
        if not seen[key] then
          seen[key] = true
          item:add(F[key], r, on[b[1]] == true)
        end
      end
    end
  end
end

-- Adds the fields of layout `lname` at `off`, reading nothing at or past
-- `limit`; `version` is the protocol minor (fields added later are absent).
-- Returns the values by field name, the bytes it covers and whether it was
-- whole. `keys` maps field names to other ProtoField keys.
local function add_struct(tree, tvb, off, limit, lname, prefix, version, keys)
  local l = layout(lname)
  local vals = {}
  local pos = off
  local v = version or NEWEST
  for _, f in ipairs(l.fields) do
    if (f.since or 0) <= v then
      if pos + f.size > limit then return vals, pos - off, false end
      local r = tvb(pos, f.size)
      local value = read(r, f.type)
      vals[f.name] = value
      if not f.pad then
        local field = F[(keys and keys[f.name]) or (prefix .. f.name)]
        local item = f.type == "bytes" and tree:add(field, r) or tree:add_le(field, r)
        decorate(item, f.show, value, r, prefix .. f.name)
      end
      pos = pos + f.size
    end
  end
  return vals, pos - off, true
end

-- tvb(off, len) clamped to the captured bytes: where expert infos and
-- generated fields point, which may be past what a cut packet holds.
local function rng(tvb, off, len)
  local n = tvb:len()
  off = math.max(0, math.min(off, n))
  return tvb(off, math.max(0, math.min(len, n - off)))
end

local function generated(tree, field, tvb, off, value)
  local item = tree:add(field, rng(tvb, off, 0), value)
  item:set_generated()
  return item
end

-- The offset of the first NUL in [from, to), or nil.
local function find_nul(tvb, from, to)
  if to <= from then return nil end
  local i = tvb:raw(from, to - from):find("\0", 1, true)
  return i and (from + i - 1) or nil
end

local function field_num(vals, name)
  local total = 0
  for part in name:gmatch("[^+]+") do total = total + num(vals[part] or 0) end
  return total
end

local function queue_name(q)
  if q == REC.queue_none then return "none" end
  if q == 0 then return REC.hiprio_name end
  return REC.request_queue_prefix .. (q - 1)
end

---------------------------------------------------------------------------
-- State: the FUSE session and request/reply pairing, learnt on the first
-- pass (requests precede their replies), kept per frame for later passes.

local st_session, st_frame, st_by_unique, st_by_head, st_req, st_reply, st_chain

local function reset()
  st_session = { minor = FUSE.minor }
  st_frame, st_by_unique, st_by_head, st_req, st_reply, st_chain = {}, {}, {}, {}, {}, {}
end
reset()
function p_vfstrace.init() reset() end

-- The session as this frame saw it.
local function session_of(pinfo)
  local s = st_frame[pinfo.number]
  if s == nil then
    local cur = st_session
    local sx = cur.setxattr_ext
    if cur.flags_lo ~= nil then sx = band(cur.flags_lo, SETXATTR_EXT) ~= 0 end
    s = { minor = cur.minor, kminor = cur.kminor, setxattr_ext = sx }
    st_frame[pinfo.number] = s
  end
  return s
end

---------------------------------------------------------------------------
-- The record header as numbers (the sub-dissectors get the whole record).

local R = {}
for _, f in ipairs(layout(REC.layout).fields) do R[f.name] = f end

local function header_of(tvb)
  local h = {}
  for name, f in pairs(R) do
    if f.type ~= "bytes" and f.offset + f.size <= tvb:len() then h[name] = read(tvb(f.offset, f.size), f.type) end
  end
  for _, name in ipairs({ "kind", "flags", "queue", "fd_count", "direction", "head", "seq" }) do
    h[name] = num(need(h, name, "record header field"))
  end
  h.continued = band(h.flags, FLAG_BIT.CONTINUED or 0) ~= 0
  return h
end

local function guarded(fn, tvb, pinfo, tree)
  local ok, err = pcall(fn, tvb, pinfo, tree)
  if not ok then tree:add_proto_expert_info(E.internal, "vfstrace.lua: " .. tostring(err)) end
  return tvb:len()
end

---------------------------------------------------------------------------
-- FUSE

-- Set while dissecting the first packet of a chain: its body goes on in the
-- CONTINUATION packets, which the record's chain note says already.
local in_chain = false

local function cut_note(tree, tvb, off, what, have, want)
  if in_chain then return end
  tree:add_tvb_expert_info(E.fuse_cut, rng(tvb, off, 0),
    string.format("%s cut: %d of %d bytes in the capture", what, have, want))
end

-- Names, data and items after the struct; returns the new position, or nil
-- when the rest is cut or malformed (expert info added).
local function dissect_tail(tree, tvb, spec, vals, pos, endb, avail, version, prefix, label)
  if spec.names then
    for _, part in ipairs(spec.names) do
      local field = F["fuse." .. part.label]
      if part.len then
        local n = num(vals[part.len] or 0)
        if n > FUSE.name_max or pos + n + 1 > endb then
          tree:add_tvb_expert_info(E.fuse_bad, rng(tvb, pos, 0),
            string.format("%s says %d bytes of %s, %d bytes follow", part.len, n, part.label, endb - pos))
          return nil
        end
        if pos + n + 1 > avail then
          cut_note(tree, tvb, pos, part.label, avail - pos, n + 1)
          return nil
        end
        tree:add(field, tvb(pos, n + 1), tvb:raw(pos, n))
        label[#label + 1] = '"' .. tvb:raw(pos, n) .. '"'
        pos = pos + n + 1
      else
        local nul = find_nul(tvb, pos, avail)
        if nul == nil then
          if avail < endb then
            cut_note(tree, tvb, pos, part.label, avail - pos, endb - pos)
          else
            tree:add_tvb_expert_info(E.fuse_bad, rng(tvb, pos, avail - pos), part.label .. " is not NUL-terminated")
          end
          return nil
        end
        local text = tvb:raw(pos, nul - pos)
        tree:add(field, tvb(pos, nul - pos + 1), text)
        label[#label + 1] = '"' .. text .. '"'
        pos = nul + 1
      end
    end
  end
  if spec.data then
    local d = spec.data
    local n = endb - pos
    if d.size then
      local want = num(vals[d.size] or 0)
      if want ~= n then
        tree:add_tvb_expert_info(E.fuse_bad, rng(tvb, pos, 0),
          string.format("%s says %d bytes of %s, %d bytes follow", d.size, want, d.label, n))
      end
    end
    local have = math.min(avail, endb) - pos
    if have > 0 then
      local r = tvb(pos, have)
      local item
      if NAME_LABEL[d.label] then
        item = tree:add(F["fuse." .. d.label], r, tvb:raw(pos, have))
        label[#label + 1] = '"' .. tvb:raw(pos, have) .. '"'
      else
        item = tree:add(F["fuse." .. d.label], r)
        label[#label + 1] = string.format("%s=%d bytes", d.label, n)
      end
      if have < n then
        item:append_text(string.format(" (%d of %d bytes in the capture)", have, n))
      end
    end
    if have < n then cut_note(tree, tvb, pos + math.max(have, 0), d.label, math.max(have, 0), n) end
    pos = endb
  elseif spec.items then
    local it = spec.items
    local count = field_num(vals, it.count)
    local l = layout(it.layout)
    local size = layout_size(l, version)
    if count * size ~= endb - pos then
      tree:add_tvb_expert_info(E.fuse_bad, rng(tvb, pos, 0),
        string.format("%s says %d %s (%d bytes), %d bytes follow", it.count, count, it.label, count * size, endb - pos))
    end
    local i = 0
    while i < count and pos + size <= endb do
      if pos + size > avail then
        cut_note(tree, tvb, pos, it.label, avail - pos, endb - pos)
        return nil
      end
      local sub = tree:add(tvb(pos, size), string.format("%s[%d]", it.label, i))
      add_struct(sub, tvb, pos, avail, it.layout, prefix .. it.label .. ".", version)
      pos = pos + size
      i = i + 1
    end
    label[#label + 1] = string.format("%d %s", count, it.label)
  end
  return pos
end

-- Request extensions (security contexts, supplementary groups) in [pos, endb).
local function dissect_extensions(tree, tvb, pos, endb)
  local i = 0
  while pos < endb do
    if endb - pos < 8 then
      tree:add_tvb_expert_info(E.fuse_bad, rng(tvb, pos, endb - pos), "extension header truncated")
      return
    end
    local size, xtype = tvb(pos, 4):le_uint(), tvb(pos + 4, 4):le_uint()
    if size < 8 or size > endb - pos or size % 8 ~= 0 then
      tree:add_tvb_expert_info(E.fuse_bad, rng(tvb, pos, 8), string.format("extension #%d size %d invalid", i, size))
      return
    end
    local xend = pos + size
    local sub = tree:add(tvb(pos, size), string.format("extension #%d", i))
    if xtype <= FUSE.max_nr_secctx then
      sub:append_text(": security contexts")
      add_struct(sub, tvb, pos, xend, FUSE.secctx_header, "fuse.ext.")
      local p = pos + layout_size(layout(FUSE.secctx_header))
      local hsize = layout_size(layout(FUSE.secctx))
      for k = 1, xtype do
        if xend - p < hsize then break end
        local ctxlen = tvb(p, 4):le_uint()
        local nul = find_nul(tvb, p + hsize, xend)
        if nul == nil or ctxlen > xend - nul - 1 then
          sub:add_tvb_expert_info(E.fuse_bad, rng(tvb, p, xend - p), "fuse_secctx #" .. k .. " malformed")
          break
        end
        local c = sub:add(tvb(p, nul + 1 + ctxlen - p), "security context " .. tvb:raw(p + hsize, nul - p - hsize))
        add_struct(c, tvb, p, xend, FUSE.secctx, "fuse.ext.secctx.")
        c:add(F["fuse.ext.secctx.name"], tvb(p + hsize, nul - p - hsize + 1), tvb:raw(p + hsize, nul - p - hsize))
        if ctxlen > 0 then c:add(F["fuse.ext.secctx.value"], tvb(nul + 1, ctxlen)) end
        p = p + align8(nul + 1 + ctxlen - p)
      end
    elseif xtype == FUSE.ext_groups then
      sub:append_text(": supplementary groups")
      add_struct(sub, tvb, pos, xend, FUSE.ext_header, "fuse.ext.")
      local hs = layout_size(layout(FUSE.ext_header))
      local gv, gsize = add_struct(sub, tvb, pos + hs, xend, FUSE.supp_groups, "fuse.ext.")
      local p = pos + hs + gsize
      for _ = 1, num(gv.nr_groups or 0) do
        if p + 4 > xend then break end
        sub:add_le(F["fuse.ext.group"], tvb(p, 4))
        p = p + 4
      end
    else
      add_struct(sub, tvb, pos, xend, FUSE.ext_header, "fuse.ext.")
      if size > 8 then sub:add(F["fuse.ext.data"], tvb(pos + 8, size - 8)) end
    end
    pos = xend
    i = i + 1
  end
end

local function op_name(opcode)
  local op = FUSE.ops[opcode]
  return op and op.name or ("opcode " .. opcode)
end

local function dissect_fuse_request(tvb, pinfo, tree, rec)
  local have = tvb:len() - HDR
  local full = tvb:reported_len() - HDR
  local t = tree:add(p_fuse, tvb(HDR, have))
  t:append_text(" request")
  pinfo.cols.protocol = "FUSE"
  local insize = REC.fuse_in_header_size
  if have < insize then
    t:add_tvb_expert_info(E.fuse_short, rng(tvb, HDR, have),
      string.format("fuse_in_header needs %d bytes, %d in the capture", insize, have))
    pinfo.cols.info = "FUSE request (header cut)"
    return
  end
  local st = session_of(pinfo)
  local h = add_struct(t, tvb, HDR, HDR + have, FUSE.in_header, "fuse.")
  generated(t, F["fuse.reply"], tvb, HDR, false)
  local opcode, len, unique = h.opcode, h.len, h.unique
  local op = FUSE.ops[opcode]
  local info = { op_name(opcode), "unique=" .. tostring(unique), "nodeid=" .. tostring(h.nodeid) }

  -- Pairing, on the first pass.
  local req = st_req[pinfo.number]
  if req == nil then
    req = { opcode = opcode, unique = unique, frame = pinfo.number }
    st_req[pinfo.number] = req
    st_by_unique[rec.queue .. ":" .. tostring(unique)] = req
    if rec.head ~= REC.head_none then st_by_head[rec.queue .. ":" .. rec.head] = req end
  end
  if req.reply_frame then generated(t, F["fuse.reply_in"], tvb, HDR, req.reply_frame) end

  if len ~= full then
    t:add_tvb_expert_info(E.fuse_bad, rng(tvb, HDR, 4),
      string.format("fuse_in_header.len says %d bytes, the record holds %d", len, full))
  end
  local ext = st.minor >= FUSE.ext_minor and num(h.total_extlen) * 8 or 0
  if insize + ext > len then
    t:add_tvb_expert_info(E.fuse_bad, rng(tvb, HDR, insize), "total_extlen exceeds the message")
    ext = 0
  end
  -- Offsets from here on are absolute: the body starts at HDR.
  local endb = HDR + len - ext
  local limit = HDR + have
  local avail = math.min(limit, endb)
  local pos = HDR + insize
  if op == nil then
    t:add_tvb_expert_info(E.fuse_unknown, rng(tvb, HDR + 4, 4), "unknown opcode " .. opcode)
    if avail > pos then t:add(F["fuse.data"], tvb(pos, avail - pos)) end
  else
    local spec = op.request
    local args = t
    local vals = {}
    local ok = true
    if spec.struct then
      local version = st.minor
      if spec.version == "init" then
        if avail - pos >= 8 then version = tvb(pos + 4, 4):le_uint() end
      elseif spec.version == "setxattr" then
        local sx = st.setxattr_ext
        if sx == nil then
          -- Flags unknown (no INIT seen): the form whose name and value fill the body exactly.
          local size = avail - pos >= 8 and tvb(pos, 4):le_uint() or 0
          local nul16 = (avail - pos >= 16 and tvb(pos + 12, 4):le_uint() == 0) and find_nul(tvb, pos + 16, avail) or nil
          sx = nul16 ~= nil and nul16 + 1 + size == endb
          if not pinfo.visited and (nul16 ~= nil or avail == endb) then st_session.setxattr_ext = sx end
        end
        version = sx and NEWEST or SETXATTR_COMPAT_MINOR
      end
      local l = layout(spec.struct)
      local size = layout_size(l, version)
      args = t:add(tvb(pos, math.min(size, math.max(avail - pos, 0))), spec.struct)
      local whole
      vals, _, whole = add_struct(args, tvb, pos, avail, spec.struct, op_prefix(op), version)
      if not whole then
        if pos + size > endb then
          t:add_tvb_expert_info(E.fuse_bad, rng(tvb, pos, 0), string.format("%s needs %d bytes, %d follow", spec.struct, size, endb - pos))
        else
          cut_note(t, tvb, pos, spec.struct, avail - pos, size)
        end
        ok = false
      end
      pos = pos + size
      req.size = vals.size
      if opcode == INIT and ok and not pinfo.visited and num(vals.major or 0) == FUSE.kernel_version then
        st_session.kminor = num(vals.minor)
        st_session.minor = st_session.kminor
      end
    end
    if ok then
      local p = dissect_tail(t, tvb, spec, vals, pos, endb, avail, st.minor, op_prefix(op), info)
      if p ~= nil and spec.creates and p < endb and ext == 0 then
        -- 7.36-7.37: security contexts inline after the names, uncounted.
        if avail >= endb then dissect_extensions(t, tvb, p, endb) end
        p = endb
      end
      if p ~= nil and p ~= endb then
        t:add_tvb_expert_info(E.fuse_bad, rng(tvb, p, 0), string.format("%d unexpected bytes after the arguments", endb - p))
      end
    end
  end
  if ext > 0 and limit >= HDR + len then dissect_extensions(t, tvb, endb, HDR + len) end
  pinfo.cols.info = table.concat(info, " ")
end

local function dissect_dirents(t, tvb, pos, endb, avail, plus, version, info)
  local dl = layout(FUSE.dirent)
  local dsize = layout_size(dl)
  local esize = plus and layout_size(layout(FUSE.direntplus_entry), version) or 0
  local fixed = esize + dsize
  local n = 0
  while pos < endb do
    local left = endb - pos
    if left < fixed then
      t:add_tvb_expert_info(E.fuse_bad, rng(tvb, pos, 0), "directory entry truncated")
      break
    end
    if avail - pos < fixed then
      cut_note(t, tvb, pos, "directory entries", avail - pos, left)
      break
    end
    local sub = t:add(tvb(pos, math.min(left, avail - pos)), plus and "fuse_direntplus" or "fuse_dirent")
    if plus then add_struct(sub, tvb, pos, avail, FUSE.direntplus_entry, "fuse.direntplus.", version) end
    local d = add_struct(sub, tvb, pos + esize, avail, FUSE.dirent, "fuse.dirent.")
    local namelen = num(d.namelen)
    if namelen == 0 or namelen > FUSE.name_max or align8(fixed + namelen) > left then
      sub:add_tvb_expert_info(E.fuse_bad, rng(tvb, pos, fixed), "namelen " .. namelen .. " invalid")
      break
    end
    if avail - pos < fixed + namelen then
      cut_note(t, tvb, pos, "directory entries", avail - pos, left)
      break
    end
    local name = tvb:raw(pos + fixed, namelen)
    sub:add(F["fuse.dirent.name"], tvb(pos + fixed, namelen), name)
    sub:append_text(": " .. name)
    pos = pos + align8(fixed + namelen)
    n = n + 1
  end
  info[#info + 1] = n == 1 and "1 entry" or (n .. " entries")
end

local function dissect_notify(t, tvb, h, pos, endb, avail, st, info)
  local code = num(h.error)
  local spec = FUSE.notify[code]
  t:add(F["fuse.notify"], tvb(HDR + 4, 4), code)
  info[1] = "NOTIFY_" .. (spec and spec.name or code)
  if spec == nil then
    t:add_tvb_expert_info(E.fuse_unknown, rng(tvb, HDR + 4, 4), "unknown notify code " .. code)
    return
  end
  local prefix = "fuse.notify." .. spec.name:lower() .. "."
  local vals = {}
  if spec.struct then
    local size = layout_size(layout(spec.struct), st.minor)
    local whole
    vals, _, whole = add_struct(t, tvb, pos, avail, spec.struct, prefix, st.minor)
    if not whole then
      cut_note(t, tvb, pos, spec.struct, avail - pos, size)
      return
    end
    pos = pos + size
  end
  dissect_tail(t, tvb, spec, vals, pos, endb, avail, st.minor, prefix, info)
end

local function dissect_fuse_reply(tvb, pinfo, tree, rec)
  local have = tvb:len() - HDR
  local full = tvb:reported_len() - HDR
  local t = tree:add(p_fuse, tvb(HDR, have))
  t:append_text(" reply")
  pinfo.cols.protocol = "FUSE"
  local st = session_of(pinfo)

  -- The request: paired on the first pass, by unique, or by head for empty replies.
  local req = st_reply[pinfo.number]
  if req == nil and not pinfo.visited then
    if have >= 16 then
      req = st_by_unique[rec.queue .. ":" .. tostring(tvb(HDR + 8, 8):le_uint64())]
    elseif full == 0 and rec.head ~= REC.head_none then
      req = st_by_head[rec.queue .. ":" .. rec.head]
    end
    if req then
      st_reply[pinfo.number] = req
      req.reply_frame = req.reply_frame or pinfo.number
    end
  end

  if full == 0 then
    -- FORGET, BATCH_FORGET: the chain came back without a FUSE reply.
    generated(t, F["fuse.reply"], tvb, HDR, true)
    if req then
      generated(t, F["fuse.unique"], tvb, HDR, req.unique)
      generated(t, F["fuse.opcode"], tvb, HDR, req.opcode)
      generated(t, F["fuse.request_in"], tvb, HDR, req.frame)
      pinfo.cols.info = string.format("%s reply unique=%s (no reply body)", op_name(req.opcode), tostring(req.unique))
    else
      t:add_tvb_expert_info(E.fuse_unpaired, rng(tvb, HDR, 0), "empty reply whose request (by head) is not in the capture")
      pinfo.cols.info = "FUSE reply (no reply body)"
    end
    t:append_text(" (no body)")
    return
  end
  local outsize = REC.fuse_out_header_size
  if have < outsize then
    t:add_tvb_expert_info(E.fuse_short, rng(tvb, HDR, have),
      string.format("fuse_out_header needs %d bytes, %d in the capture", outsize, have))
    pinfo.cols.info = "FUSE reply (header cut)"
    return
  end
  local h = add_struct(t, tvb, HDR, HDR + have, FUSE.out_header, "fuse.")
  generated(t, F["fuse.reply"], tvb, HDR, true)
  local len, err, unique = h.len, num(h.error), h.unique
  if len ~= full then
    t:add_tvb_expert_info(E.fuse_bad, rng(tvb, HDR, 4),
      string.format("fuse_out_header.len says %d bytes, the record holds %d", len, full))
  end
  local endb = HDR + len
  local avail = math.min(HDR + have, endb)
  local pos = HDR + outsize
  local info = { "?", "reply", "unique=" .. tostring(unique) }
  if is_zero(unique) then
    info[2] = "notification"
    info[3] = nil
    dissect_notify(t, tvb, h, pos, endb, avail, st, info)
    pinfo.cols.info = table.concat(info, " ")
    return
  end
  local opcode = req and req.opcode
  if req then
    generated(t, F["fuse.opcode"], tvb, HDR, opcode)
    generated(t, F["fuse.request_in"], tvb, HDR, req.frame)
    info[1] = op_name(opcode)
  else
    t:add_tvb_expert_info(E.fuse_unpaired, rng(tvb, HDR + 8, 8),
      "no request with unique " .. tostring(unique) .. " on queue " .. rec.queue .. " before this reply")
    info[1] = "FUSE"
  end
  if err ~= 0 then
    info[#info + 1] = CUSTOM["fuse_error"](err)
    if err > 0 or err <= -512 then
      t:add_tvb_expert_info(E.fuse_bad, rng(tvb, HDR + 4, 4), "error " .. err .. " is not a negated errno")
    else
      t:add_tvb_expert_info(E.fuse_errno, rng(tvb, HDR + 4, 4), info[1] .. ": " .. CUSTOM["fuse_error"](err))
    end
    if len ~= outsize then
      t:add_tvb_expert_info(E.fuse_bad, rng(tvb, HDR, 4), "an error reply carries a body")
    end
    pinfo.cols.info = table.concat(info, " ")
    return
  end
  local op = opcode and FUSE.ops[opcode]
  if op == nil then
    if avail > pos then t:add(F["fuse.data"], tvb(pos, avail - pos)) end
    pinfo.cols.info = table.concat(info, " ")
    return
  end
  local spec = op.reply
  local prefix = op_prefix(op) .. "reply."
  local kind = spec.kind
  if kind == "none" or kind == "empty" then
    if endb > pos then
      t:add_tvb_expert_info(E.fuse_bad, rng(tvb, pos, avail - pos), string.format("%d body bytes where none are expected", endb - pos))
    end
  elseif kind == "data" then
    dissect_tail(t, tvb, { data = spec.data }, {}, pos, endb, avail, st.minor, prefix, info)
  elseif kind == "xattr" then
    local probe
    if req and req.size ~= nil then probe = num(req.size) == 0 else probe = endb - pos == 8 end
    if probe and spec.struct then
      local vals, _, whole = add_struct(t, tvb, pos, avail, spec.struct, prefix, st.minor)
      if whole then info[#info + 1] = "size=" .. tostring(vals.size) end
    else
      dissect_tail(t, tvb, { data = spec.data }, {}, pos, endb, avail, st.minor, prefix, info)
    end
  elseif kind == "dirents" or kind == "direntplus" then
    dissect_dirents(t, tvb, pos, endb, avail, kind == "direntplus", st.minor, info)
  elseif kind == "ioctl" then
    local size = layout_size(layout(spec.struct), st.minor)
    local vals, _, whole = add_struct(t, tvb, pos, avail, spec.struct, prefix, st.minor)
    if whole then
      if band(words(vals.flags), IOCTL_RETRY) ~= 0 and spec.items then
        dissect_tail(t, tvb, { items = spec.items }, vals, pos + size, endb, avail, st.minor, prefix, info)
      else
        dissect_tail(t, tvb, { data = spec.data }, vals, pos + size, endb, avail, st.minor, prefix, info)
      end
    else
      cut_note(t, tvb, pos, spec.struct, avail - pos, size)
    end
  elseif kind == "struct" then
    local version = st.minor
    if spec.version == "init" then
      version = 0
      if avail - pos >= 8 then
        local m = tvb(pos + 4, 4):le_uint()
        version = math.min(m, st.kminor or m)
      end
    end
    local size = layout_size(layout(spec.struct), version)
    local args = t:add(tvb(pos, math.min(size, math.max(avail - pos, 0))), spec.struct)
    local vals, _, whole = add_struct(args, tvb, pos, avail, spec.struct, prefix, version)
    if not whole then
      if pos + size > endb then
        t:add_tvb_expert_info(E.fuse_bad, rng(tvb, pos, 0), string.format("%s needs %d bytes, %d follow", spec.struct, size, endb - pos))
      else
        cut_note(t, tvb, pos, spec.struct, avail - pos, size)
      end
    else
      if vals.nodeid ~= nil then info[#info + 1] = "nodeid=" .. tostring(vals.nodeid) end
      local p = dissect_tail(t, tvb, spec, vals, pos + size, endb, avail, st.minor, prefix, info)
      if p ~= nil and p ~= endb then
        t:add_tvb_expert_info(E.fuse_bad, rng(tvb, p, 0), string.format("%d unexpected bytes after %s", endb - p, spec.struct))
      end
      if opcode == INIT and not pinfo.visited and num(vals.major or 0) == FUSE.kernel_version then
        local s = st_session
        s.dminor = num(vals.minor)
        s.minor = math.min(s.dminor, s.kminor or s.dminor)
        s.flags_lo = words(vals.flags or 0)
        s.setxattr_ext = nil
      end
    end
  else
    error("vfstrace.lua: FUSE reply kind " .. kind .. " is not handled")
  end
  pinfo.cols.info = table.concat(info, " ")
end

local function dissect_fuse(tvb, pinfo, tree)
  local rec = header_of(tvb)
  in_chain = rec.continued
  if rec.kind == K.FUSE_REQUEST then
    dissect_fuse_request(tvb, pinfo, tree, rec)
  else
    dissect_fuse_reply(tvb, pinfo, tree, rec)
  end
  in_chain = false
end

function p_fuse.dissector(tvb, pinfo, tree) return guarded(dissect_fuse, tvb, pinfo, tree) end

---------------------------------------------------------------------------
-- vhost-user

local REGION = layout_size(layout(VU.region))
local REGION_XEN = layout_size(layout(VU.region_xen))
local MEMTABLE_HDR = layout_size(layout(VU.memory_table))
local MEMREG_HDR = layout_size(layout(VU.mem_reg))
local CONFIG_HDR = layout_size(layout(VU.config))

-- Sizes decodeMessage accepts for the payloads whose size varies.
local ACCEPTS = {
  memory_table = function(s)
    return s >= MEMTABLE_HDR and s <= MEMTABLE_HDR + VU.memory_baseline_nregions * REGION_XEN
      and ((s - MEMTABLE_HDR) % REGION == 0 or (s - MEMTABLE_HDR) % REGION_XEN == 0)
  end,
  mem_reg = function(s) return s == MEMREG_HDR + REGION or s == MEMREG_HDR + REGION_XEN end,
  config = function(s) return s >= CONFIG_HDR and s - CONFIG_HDR <= VU.max_config_size end,
  crypto_session = function(s) return s >= 8 and s % 8 == 0 end,
  raw = function() return true end,
}

local function accepts(kind, size)
  local f = ACCEPTS[kind]
  if f then return f(size) end
  return size == need(VU.payload_sizes, kind, "size of vhost-user payload")
end

local function fits(forms, size)
  for _, f in ipairs(forms) do
    if accepts(f.payload, size) then return f end
  end
  return nil
end

-- decodeMessage's lookup: backend numbers 6-9 take the virtio-fs DAX meaning
-- for requests whose size only that fits.
local function lookup(channel, request, is_reply, size)
  if channel == "frontend" then return VU.frontend[request] end
  local current, dax = VU.backend[request], VU.backend_dax[request]
  if dax and not is_reply and fits(dax.request, size) and not (current and fits(current.request, size)) then
    return dax
  end
  return current
end

local function add_region(t, tvb, off, limit, xen, i)
  local l = xen and VU.region_xen or VU.region
  local size = xen and REGION_XEN or REGION
  local sub = t:add(tvb(off, math.min(size, limit - off)), string.format("region[%d]", i))
  local vals = add_struct(sub, tvb, off, limit, l, "vhost_user.region.")
  if vals.guest_phys_addr and vals.memory_size then
    sub:append_text(string.format(": gpa %s size %s", hex(vals.guest_phys_addr), hex(vals.memory_size)))
  end
end

local PAYLOAD = {}
PAYLOAD.empty = function() end
PAYLOAD.raw = function(t, tvb, off, size, limit)
  if limit > off then t:add(F["vhost_user.payload"], tvb(off, limit - off)) end
end
PAYLOAD.u64 = function(t, tvb, off, size, limit, form, info)
  local r = tvb(off, 8)
  local v = r:le_uint64()
  local item = t:add_le(F["vhost_user.u64"], r)
  local kind, arg = show_of(form.show)
  local prefix = kind == "flags" and u64_bits_prefix(arg) or nil
  decorate(item, form.show, v, r, prefix)
  info[#info + 1] = form.show and (kind == "flags" and format_flags(set(arg), v) or CUSTOM[arg](v)) or tostring(v)
end
PAYLOAD.vring_index = function(t, tvb, off, size, limit, form, info)
  local r = tvb(off, 8)
  local v = r:le_uint64()
  local item = t:add_le(F["vhost_user.u64"], r)
  item:append_text(" (" .. CUSTOM["vring_index"](v) .. ")")
  local lo = words(v)
  item:add(F["vhost_user.vring_index.index"], r, band(lo, VU.vring_idx_mask))
  item:add(F["vhost_user.vring_index.nofd"], r, band(lo, VU.vring_nofd_mask) ~= 0)
  info[#info + 1] = CUSTOM["vring_index"](v)
end
PAYLOAD.memory_table = function(t, tvb, off, size, limit, form, info)
  local vals = add_struct(t, tvb, off, limit, VU.memory_table, "vhost_user.memory_table.")
  local n = num(vals.nregions or 0)
  local xen
  if n * REGION == size - MEMTABLE_HDR then xen = false
  elseif n > 0 and n * REGION_XEN == size - MEMTABLE_HDR then xen = true
  else
    t:add_tvb_expert_info(E.vu_bad, rng(tvb, off, 4), string.format("nregions %d inconsistent with payload size %d", n, size))
    return
  end
  local stride = xen and REGION_XEN or REGION
  for i = 0, n - 1 do
    local p = off + MEMTABLE_HDR + i * stride
    if p + stride > limit then break end
    add_region(t, tvb, p, limit, xen, i)
  end
  info[#info + 1] = "nregions=" .. n
end
PAYLOAD.mem_reg = function(t, tvb, off, size, limit)
  add_struct(t, tvb, off, limit, VU.mem_reg, "vhost_user.mem_reg.")
  add_region(t, tvb, off + MEMREG_HDR, limit, size == MEMREG_HDR + REGION_XEN, 0)
end
PAYLOAD.config = function(t, tvb, off, size, limit, form, info)
  local vals, _, whole = add_struct(t, tvb, off, limit, VU.config, "vhost_user.config.")
  if not whole then return end
  local n = size - CONFIG_HDR
  if num(vals.size) ~= n then
    t:add_tvb_expert_info(E.vu_bad, rng(tvb, off + 4, 4), string.format("config size %d, %d bytes follow", num(vals.size), n))
  end
  local p = off + CONFIG_HDR
  if n > 0 and limit > p then
    local d = t:add(F["vhost_user.config.data"], tvb(p, math.min(n, limit - p)))
    local fs = layout(VU.virtio_fs_config)
    if num(vals.offset) == 0 and n >= layout_size(fs) and limit - p >= layout_size(fs) then
      local sub = d:add(tvb(p, layout_size(fs)), "virtio_fs_config")
      local fv = add_struct(sub, tvb, p, limit, VU.virtio_fs_config, "vhost_user.virtio_fs_config.")
      local tag = tvb:raw(p, field_spec(fs, "tag").size):gsub("%z.*$", "")
      sub:append_text(string.format(': tag "%s" num_request_queues %d', tag, num(fv.num_request_queues)))
    end
  end
end
PAYLOAD.crypto_session = function(t, tvb, off, size, limit)
  if limit < off + size then return end
  if size > 8 then t:add(F["vhost_user.crypto_session.data"], tvb(off, size - 8)) end
  t:add_le(F["vhost_user.crypto_session.session_id"], tvb(off + size - 8, 8))
end
PAYLOAD.shmem_config = function(t, tvb, off, size, limit)
  local vals, hsize, whole = add_struct(t, tvb, off, limit, VU.shmem_config, "vhost_user.shmem_config.")
  if not whole then return end
  for i = 0, math.min(num(vals.nregions), VU.max_shmem_regions) - 1 do
    local p = off + hsize + 8 * i
    if p + 8 > limit then break end
    t:add_le(F["vhost_user.shmem_config.memory_size"], tvb(p, 8))
  end
end
PAYLOAD.fs_backend = function(t, tvb, off, size, limit)
  local n = VU.fs_backend_entries
  for i = 0, n - 1 do
    local sub = t:add(rng(tvb, off, 0), string.format("entry[%d]", i))
    for a, name in ipairs(FS_ARRAYS) do
      local p = off + 8 * ((a - 1) * n + i)
      if p + 8 > limit then return end
      local r = tvb(p, 8)
      local item = sub:add_le(F["vhost_user.fs_backend." .. name], r)
      if name == "flags" then decorate(item, "flags:" .. VU.fs_flags, r:le_uint64(), r, "vhost_user.fs_backend.flags") end
    end
  end
end
do
  -- The other payloads are one layout each.
  for kind, lname in pairs(VU.payload_layouts) do
    if PAYLOAD[kind] == nil then
      PAYLOAD[kind] = function(t, tvb, off, size, limit)
        add_struct(t, tvb, off, limit, lname, "vhost_user." .. kind .. ".")
      end
    end
  end
  -- Every payload kind the tables use must be handled, with a size rule.
  for _, tbl in ipairs({ VU.frontend, VU.backend, VU.backend_dax }) do
    for _, m in pairs(tbl) do
      for _, forms in ipairs({ m.request, m.reply }) do
        for _, form in ipairs(forms) do
          need(PAYLOAD, form.payload, "handler for vhost-user payload")
          if ACCEPTS[form.payload] == nil then need(VU.payload_sizes, form.payload, "size of vhost-user payload") end
        end
      end
    end
  end
end

local function dissect_vhost_user(tvb, pinfo, tree, rec)
  local have = tvb:len() - HDR
  local t = tree:add(p_vhost, tvb(HDR, have))
  pinfo.cols.protocol = "vhost-user"
  local hsize = VU.header_size
  if have < hsize then
    t:add_tvb_expert_info(E.vu_cut, rng(tvb, HDR, have), string.format("header needs %d bytes, %d in the capture", hsize, have))
    pinfo.cols.info = "vhost-user (header cut)"
    return
  end
  local channel = VU.channel_by_direction[rec.direction] or "frontend"
  local request = tvb(HDR, 4):le_uint()
  local flags = tvb(HDR + 4, 4):le_uint()
  local size = tvb(HDR + 8, 4):le_uint()
  local is_reply = band(flags, VU.reply_mask) ~= 0
  local need_reply = band(flags, VU.need_reply_mask) ~= 0
  add_struct(t, tvb, HDR, HDR + have, VU.header, "vhost_user.", nil, { request = "vhost_user.request#" .. channel })
  local spec = lookup(channel, request, is_reply, size)
  local name = spec and spec.name or ("unknown message " .. request)
  generated(t, F["vhost_user.name"], tvb, HDR, name)
  generated(t, F["vhost_user.channel"], tvb, HDR, channel)
  t:append_text(string.format(", %s %s", name, is_reply and "reply" or "request"))
  local info = { name, is_reply and "reply" or (need_reply and "request NEED_REPLY" or "request") }
  if rec.fd_count > 0 then info[#info + 1] = "fds=" .. rec.fd_count end
  if band(flags, VU.version_mask) ~= VU.version then
    t:add_tvb_expert_info(E.vu_bad, rng(tvb, HDR + 4, 4), "flags.version is not " .. VU.version)
  end
  if band(flags, bnot(VU.flags_known)) ~= 0 then
    t:add_tvb_expert_info(E.vu_bad, rng(tvb, HDR + 4, 4), "reserved flag bits set")
  end
  if spec == nil then
    t:add_tvb_expert_info(E.vu_unknown, rng(tvb, HDR, 4), string.format("unknown %s request %d", channel, request))
  end
  local off = HDR + hsize
  local got = have - hsize
  local whole = tvb:reported_len() - HDR - hsize
  if size > VU.max_payload then
    t:add_tvb_expert_info(E.vu_bad, rng(tvb, HDR + 8, 4), string.format("size %d exceeds the maximum payload %d", size, VU.max_payload))
  end
  if whole ~= size then
    t:add_tvb_expert_info(E.vu_bad, rng(tvb, HDR + 8, 4), string.format("header size %d, the message has %d payload bytes", size, whole))
  end
  if got < math.min(size, whole) then
    t:add_tvb_expert_info(E.vu_cut, rng(tvb, off, got), string.format("payload cut: %d of %d bytes in the capture", got, size))
  end
  local limit = off + math.min(got, size)
  local forms = spec and (is_reply and spec.reply or spec.request) or { { payload = "raw" } }
  local form = fits(forms, size)
  if form == nil then
    t:add_tvb_expert_info(E.vu_bad, rng(tvb, HDR + 8, 4), string.format("payload size %d fits no form of %s", size, name))
    form = { payload = "raw" }
  end
  if size > 0 then
    local pt = t:add(tvb(off, limit - off), "payload (" .. form.payload .. ")")
    if limit - off >= math.min(size, 8) or form.payload == "raw" then
      PAYLOAD[form.payload](pt, tvb, off, size, limit, form, info)
    end
  end
  pinfo.cols.info = table.concat(info, " ")
end

function p_vhost.dissector(tvb, pinfo, tree)
  return guarded(function() dissect_vhost_user(tvb, pinfo, tree, header_of(tvb)) end, tvb, pinfo, tree)
end

---------------------------------------------------------------------------
-- The record

local fuse_handle = Dissector.get("fuse")
local vhost_handle = Dissector.get("vhost_user")

local function dissect_note(tvb, pinfo, t, have)
  local text = have > 0 and tvb:raw(HDR, have) or ""
  if have > 0 then t:add(F["vfstrace.note"], tvb(HDR, have), text) end
  local ntype = text:match('^%s*{.-"type"%s*:%s*"([^"\\]*)"')
  if ntype then
    generated(t, F["vfstrace.note.type"], tvb, HDR, ntype)
    pinfo.cols.info = "note " .. ntype
  else
    t:add_tvb_expert_info(E.note, rng(tvb, HDR, have), "NOTE body is not a JSON object with a string type")
    pinfo.cols.info = "note"
  end
end

local function dissect_record(tvb, pinfo, tree)
  local len = tvb:len()
  pinfo.cols.protocol = "vfstrace"
  local t = tree:add(p_vfstrace, tvb(0, math.min(len, HDR)))
  if len < 3 then
    t:add_tvb_expert_info(E.short, rng(tvb, 0, len), "packet of " .. len .. " bytes")
    return
  end
  local magic, version = tvb(0, 2):le_uint(), tvb(2, 1):uint()
  if magic ~= REC.magic then
    t:add_tvb_expert_info(E.magic, rng(tvb, 0, 2), string.format("magic 0x%04x, not 0x%04x", magic, REC.magic))
    pinfo.cols.info = "not a vfstrace record"
    return
  end
  if version ~= REC.version then
    t:add_tvb_expert_info(E.version, rng(tvb, 2, 1),
      string.format("record version %d; this dissector reads version %d", version, REC.version))
    pinfo.cols.info = "vfstrace record version " .. version
    return
  end
  if len < HDR then
    t:add_tvb_expert_info(E.short, rng(tvb, 0, len), string.format("%d bytes, the header has %d", len, HDR))
    return
  end
  local kind = tvb(3, 1):uint()
  local dirkey = REC.direction_by_kind[kind] and ("vfstrace.direction#" .. kind) or nil
  local rec = add_struct(t, tvb, 0, HDR, REC.layout, "vfstrace.", nil, { direction = dirkey })
  rec.queue, rec.head, rec.direction = num(rec.queue), num(rec.head), num(rec.direction)
  rec.fd_count, rec.flags, rec.seq = num(rec.fd_count), num(rec.flags), num(rec.seq)
  generated(t, F["vfstrace.queue_name"], tvb, 6, queue_name(rec.queue))
  local kname = KIND_NAMES[kind] or ("kind " .. kind)
  t:append_text(string.format(", %s, seq %d", kname, rec.seq))
  local aux = rec.aux
  local lo, hi = words(aux)
  if kind == K.FUSE_REQUEST then
    generated(t, F["vfstrace.aux.descriptors"], tvb, 24, band(lo, 0xffff))
    generated(t, F["vfstrace.aux.writable"], tvb, 28, hi)
  elseif kind == K.FUSE_REPLY then
    generated(t, F["vfstrace.aux.latency_ns"], tvb, 24, aux)
  elseif kind == K.NOTIFY then
    generated(t, F["vfstrace.aux.counter"], tvb, 24, aux)
  elseif kind == K.CONTINUATION then
    generated(t, F["vfstrace.aux.first_seq"], tvb, 24, lo)
  end
  local have = len - HDR
  local full = tvb:reported_len() - HDR
  generated(t, F["vfstrace.body_length"], tvb, HDR, full)
  local continued = band(rec.flags, FLAG_BIT.CONTINUED or 0) ~= 0
  if band(rec.flags, FLAG_BIT.TRUNCATED or 0) ~= 0 then
    t:add_tvb_expert_info(E.snap, rng(tvb, 0, HDR), string.format("body cut: %d of %d bytes kept", have, full))
  elseif have < full and not continued then
    t:add_tvb_expert_info(E.cut, rng(tvb, 0, HDR), string.format("%d of %d body bytes in the capture", have, full))
  end
  if continued and kind ~= K.CONTINUATION then
    t:add_tvb_expert_info(E.chain, rng(tvb, 0, HDR),
      string.format("%d of %d body bytes here; the rest follows in CONTINUATION packets", have, full))
    if not pinfo.visited then st_chain[rec.seq] = pinfo.number end
  end
  pinfo.cols.info = kname
  if kind == K.VHOST_USER then
    vhost_handle:call(tvb, pinfo, tree)
  elseif kind == K.FUSE_REQUEST or kind == K.FUSE_REPLY then
    fuse_handle:call(tvb, pinfo, tree)
  elseif kind == K.NOTE then
    dissect_note(tvb, pinfo, t, have)
  elseif kind == K.NOTIFY then
    pinfo.cols.info = string.format("NOTIFY %s %s counter=%s",
      enum_of(REC.notify_directions)[rec.direction] or rec.direction, queue_name(rec.queue), tostring(aux))
  elseif kind == K.CONTINUATION then
    local first = st_chain[lo]
    if first then generated(t, F["vfstrace.chain_start"], tvb, 24, first) end
    t:add_tvb_expert_info(E.continuation, rng(tvb, 24, 8),
      string.format("continues the record of seq %d with %d body bytes", lo, have))
    pinfo.cols.info = string.format("CONTINUATION of seq %d (%d bytes)", lo, have)
  else
    t:add_tvb_expert_info(E.kind, rng(tvb, 3, 1), "kind " .. kind)
  end
end

function p_vfstrace.dissector(tvb, pinfo, tree) return guarded(dissect_record, tvb, pinfo, tree) end

-- pcapng link type 147 (LINKTYPE_USER0) is Wireshark's encapsulation USER0.
DissectorTable.get("wtap_encap"):add(wtap_encaps.USER0, p_vfstrace)
