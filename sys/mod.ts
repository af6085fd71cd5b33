/**
 * sys: the libc layer. Raw fds, Unix sockets with fd passing, eventfd,
 * epoll and an event loop, memfd and mmap, extended attributes, errno as
 * typed errors, and the *at file-system calls of the file server.
 *
 * @module
 */
export * from "./errno.ts";
export * from "./error.ts";
export * from "./fd.ts";
export * from "./eventfd.ts";
export * from "./epoll.ts";
export * from "./event_loop.ts";
export * from "./memory.ts";
export * from "./socket.ts";
export * from "./xattr.ts";
export * from "./fs.ts";
export { LIBC_PATH } from "./_libc.ts";
