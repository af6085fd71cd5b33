/**
 * client: a built-in vhost-user front-end (what QEMU does), as a library.
 * Connects to any vhost-user back-end, negotiates, shares guest memory it
 * creates, sets up virtqueues and drives them from the guest side, so
 * vfstrace can exercise a virtio-fs back-end (or the tracing proxy) without
 * a VM.
 *
 * May import sys/, vhost/, decode/ and virtq/.
 *
 * @module
 */
export * from "./errors.ts";
export * from "./memory.ts";
export * from "./driver_queue.ts";
export * from "./frontend.ts";
export * from "./fuse_client.ts";
export * from "./bench.ts";
