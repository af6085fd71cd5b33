/**
 * vfstrace: trace, decode, analyse and serve virtio-fs.
 *
 * The public API, layer by layer:
 * - sys: libc through FFI (Unix sockets with fd passing, eventfd, epoll and the
 *   event loop, memfd/mmap, errno as typed errors);
 * - vhost: vhost-user framing over sockets;
 * - virtq: split virtqueues over mapped guest memory;
 * - decode: pure codecs for vhost-user and FUSE;
 * - capture: the pcapng capture writer and streaming reader (format:
 *   docs/capture-format.md);
 * - client: a built-in vhost-user front-end (drives any back-end without QEMU);
 * - trace: the tracing proxy;
 * - show: pairing of recorded FUSE requests and replies, strace-like lines;
 * - stats, report: per-opcode statistics and the HTML report;
 * - serve: the standalone virtio-fs back-end;
 * - vm: the real-guest rig (QEMU + Debian cloud kernel).
 *
 * @module
 */
export * as sys from "./sys/mod.ts";
export * as vhost from "./vhost/channel.ts";
export * as virtq from "./virtq/mod.ts";
export * as vhostUser from "./decode/vhost_user.ts";
export * as fuse from "./decode/fuse.ts";
export * as struct from "./decode/struct.ts";
export * as vm from "./vm/mod.ts";
export * as capture from "./capture/mod.ts";
export * as client from "./client/mod.ts";
export * as show from "./show/mod.ts";
export * as stats from "./stats/mod.ts";
export * as report from "./report/mod.ts";
export * as serve from "./serve/mod.ts";
export {
  MASKED_PROTOCOL_FEATURES,
  MASKED_VIRTIO_FEATURES,
  type MaskedFeature,
  nowNs,
  type ProxyEnd,
  TraceProxy,
  type TraceProxyOptions,
} from "./trace/proxy.ts";
export * from "./trace/recorder.ts";
export * from "./trace/run.ts";
