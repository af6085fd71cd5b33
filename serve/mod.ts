/**
 * serve: vfstrace as a virtio-fs back-end (a virtiofsd replacement). QEMU
 * connects over vhost-user; the guest mounts the shared directory; every
 * FUSE request is served through fds on the host (see fs.ts), optionally
 * recorded to a capture.
 *
 * @module
 */
export * from "./device.ts";
export * from "./fs.ts";
export * from "./handles.ts";
export * from "./inodes.ts";
export * from "./run.ts";
