/**
 * The one libc symbol table. Every foreign call vfstrace makes goes through
 * here; wrappers in the sibling modules turn results into typed values and
 * errors.
 *
 * @module
 */

/** Absolute path: dlopen("libc.so.6") search rules differ between hosts. */
export const LIBC_PATH = "/lib/x86_64-linux-gnu/libc.so.6";

const SYMBOLS = {
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "pointer" },
  // char *strerror(int errnum);
  strerror: { parameters: ["i32"], result: "pointer" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count);
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t pread(int fd, void *buf, size_t count, off_t offset);
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  // ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset);
  pwrite: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  // int fcntl(int fd, int cmd, ... /* int arg */);
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int dup(int oldfd);
  dup: { parameters: ["i32"], result: "i32" },
  // int socket(int domain, int type, int protocol);
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int socketpair(int domain, int type, int protocol, int sv[2]);
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // int bind(int sockfd, const struct sockaddr *addr, socklen_t addrlen);
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int listen(int sockfd, int backlog);
  listen: { parameters: ["i32", "i32"], result: "i32" },
  // int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  // int connect(int sockfd, const struct sockaddr *addr, socklen_t addrlen);
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int shutdown(int sockfd, int how);
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  // ssize_t sendmsg(int sockfd, const struct msghdr *msg, int flags);
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  // ssize_t recvmsg(int sockfd, struct msghdr *msg, int flags);
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  // int eventfd(unsigned int initval, int flags);
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  // int epoll_create1(int flags);
  epoll_create1: { parameters: ["i32"], result: "i32" },
  // int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event);
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout);
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  // The same call, parked on Deno's blocking thread pool: the JS thread keeps running.
  epoll_wait_parked: {
    name: "epoll_wait",
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // int memfd_create(const char *name, unsigned int flags);
  memfd_create: { parameters: ["buffer", "u32"], result: "i32" },
  // int ftruncate(int fd, off_t length);
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  // int munmap(void *addr, size_t length);
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  // ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size);
  lgetxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
  // int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags);
  lsetxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
  // --- file-system calls of the virtio-fs server (serve/), wrapped in sys/fs.ts ---
  // int openat(int dirfd, const char *pathname, int flags, mode_t mode);
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  // int fstatat(int dirfd, const char *pathname, struct stat *statbuf, int flags);
  fstatat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  // ssize_t readlinkat(int dirfd, const char *pathname, char *buf, size_t bufsiz);
  readlinkat: { parameters: ["i32", "buffer", "buffer", "usize"], result: "isize" },
  // int mkdirat(int dirfd, const char *pathname, mode_t mode);
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int mknodat(int dirfd, const char *pathname, mode_t mode, dev_t dev);
  mknodat: { parameters: ["i32", "buffer", "u32", "u64"], result: "i32" },
  // int symlinkat(const char *target, int newdirfd, const char *linkpath);
  symlinkat: { parameters: ["buffer", "i32", "buffer"], result: "i32" },
  // int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags);
  linkat: { parameters: ["i32", "buffer", "i32", "buffer", "i32"], result: "i32" },
  // int unlinkat(int dirfd, const char *pathname, int flags);
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);
  renameat2: { parameters: ["i32", "buffer", "i32", "buffer", "u32"], result: "i32" },
  // int fchmodat(int dirfd, const char *pathname, mode_t mode, int flags);
  fchmodat: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  // int fchownat(int dirfd, const char *pathname, uid_t owner, gid_t group, int flags);
  fchownat: { parameters: ["i32", "buffer", "u32", "u32", "i32"], result: "i32" },
  // int utimensat(int dirfd, const char *pathname, const struct timespec times[2], int flags);
  utimensat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  // int fsync(int fd);
  fsync: { parameters: ["i32"], result: "i32" },
  // int fdatasync(int fd);
  fdatasync: { parameters: ["i32"], result: "i32" },
  // int syncfs(int fd);
  syncfs: { parameters: ["i32"], result: "i32" },
  // int fstatfs(int fd, struct statfs *buf);
  fstatfs: { parameters: ["i32", "buffer"], result: "i32" },
  // ssize_t getdents64(int fd, void *dirp, size_t count);
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // int fallocate(int fd, int mode, off_t offset, off_t len);
  fallocate: { parameters: ["i32", "i32", "i64", "i64"], result: "i32" },
  // off_t lseek(int fd, off_t offset, int whence);
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  // ssize_t copy_file_range(int fd_in, off64_t *off_in, int fd_out, off64_t *off_out, size_t len, unsigned int flags);
  copy_file_range: {
    parameters: ["i32", "buffer", "i32", "buffer", "usize", "u32"],
    result: "isize",
  },
  // ssize_t preadv(int fd, const struct iovec *iov, int iovcnt, off_t offset);
  preadv: { parameters: ["i32", "buffer", "i32", "i64"], result: "isize" },
  // ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset);
  pwritev: { parameters: ["i32", "buffer", "i32", "i64"], result: "isize" },
  // int fcntl(int fd, int cmd, ... /* struct flock *lock */); the lock-taking form.
  fcntl_lock: { name: "fcntl", parameters: ["i32", "i32", "buffer"], result: "i32" },
  // int flock(int fd, int operation);
  flock: { parameters: ["i32", "i32"], result: "i32" },
  // ssize_t getxattr(const char *path, const char *name, void *value, size_t size);
  getxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
  // int setxattr(const char *path, const char *name, const void *value, size_t size, int flags);
  setxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
  // ssize_t listxattr(const char *path, char *list, size_t size);
  listxattr: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  // int removexattr(const char *path, const char *name);
  removexattr: { parameters: ["buffer", "buffer"], result: "i32" },
  // int statx(int dirfd, const char *pathname, int flags, unsigned int mask, struct statx *statxbuf);
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  // int setrlimit(int resource, const struct rlimit *rlim);
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  // int getrlimit(int resource, struct rlimit *rlim);
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** Symbols of the opened libc, typed from the table above. */
export type LibcSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let opened: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

/**
 * Opens libc on first use, so importing sys/ costs nothing for commands that
 * never make a foreign call (and do not need --allow-ffi).
 */
export function libc(): LibcSymbols {
  opened ??= Deno.dlopen(LIBC_PATH, SYMBOLS);
  return opened.symbols;
}
