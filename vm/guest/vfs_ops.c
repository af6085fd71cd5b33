/*
 * vfs_ops: file-system calls the vfstrace guest's busybox cannot make, one
 * subcommand each, for the posix_more workload. Built statically by
 * vm/initramfs.ts with the other guest helpers.
 *
 *   vfs_ops as UID GID CMD [ARG…]        run CMD with these ids (no extra groups)
 *   vfs_ops rename2 noreplace|exchange|whiteout FROM TO
 *   vfs_ops seek data|hole FILE OFFSET    prints the offset lseek returns
 *   vfs_ops punch FILE OFFSET LENGTH      fallocate(PUNCH_HOLE|KEEP_SIZE)
 *   vfs_ops append FILE COUNT TEXT        COUNT writes of TEXT\n through O_APPEND
 *   vfs_ops direct FILE SIZE              O_DIRECT write of SIZE bytes of 'd', then read back
 *   vfs_ops copy FROM TO                  copy_file_range of all of FROM into TO
 *   vfs_ops tmpfile DIR                   O_TMPFILE in DIR, write, linkat it as DIR/tmpfile-linked
 *   vfs_ops utimens FILE ASEC ANSEC MSEC MNSEC   (NSEC "now" or "omit" for UTIME_NOW/OMIT)
 *   vfs_ops unlinked FILE                 open, unlink, write, read back, print fstat nlink
 *   vfs_ops create FILE MODE              open(O_CREAT|O_EXCL) with this octal mode
 *
 * Exit status: 0 done, 1 the call failed (stderr names it and the errno,
 * e.g. "renameat2: EEXIST"), 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE (1 << 1)
#define RENAME_WHITEOUT (1 << 2)
#endif

static const char *errno_name(int e)
{
	switch (e) {
	case EEXIST: return "EEXIST";
	case ENOENT: return "ENOENT";
	case EINVAL: return "EINVAL";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENXIO: return "ENXIO";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ENOSYS: return "ENOSYS";
	case EISDIR: return "EISDIR";
	case ENOTDIR: return "ENOTDIR";
	case ENOTEMPTY: return "ENOTEMPTY";
	case EXDEV: return "EXDEV";
	case EBADF: return "EBADF";
	case EIO: return "EIO";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case EROFS: return "EROFS";
	default: return "E?";
	}
}

static int failed(const char *call)
{
	int e = errno;
	fprintf(stderr, "%s: %s (%s)\n", call, errno_name(e), strerror(e));
	return 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: vfs_ops as|rename2|seek|punch|append|direct|copy|tmpfile|utimens|"
			"unlinked|create ARG… (see vm/guest/vfs_ops.c)\n");
	return 2;
}

static long nsec(const char *s)
{
	if (strcmp(s, "now") == 0)
		return UTIME_NOW;
	if (strcmp(s, "omit") == 0)
		return UTIME_OMIT;
	return atol(s);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	const char *cmd = argv[1];
	if (strcmp(cmd, "as") == 0 && argc >= 5) {
		gid_t gid = (gid_t)atol(argv[3]);
		if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid((uid_t)atol(argv[2])) != 0)
			return failed("setgroups/setgid/setuid");
		execvp(argv[4], argv + 4);
		return failed("execvp");
	}
	if (strcmp(cmd, "rename2") == 0 && argc == 5) {
		unsigned flags = strcmp(argv[2], "noreplace") == 0 ? RENAME_NOREPLACE
				 : strcmp(argv[2], "exchange") == 0 ? RENAME_EXCHANGE
								    : RENAME_WHITEOUT;
		if (syscall(SYS_renameat2, AT_FDCWD, argv[3], AT_FDCWD, argv[4], flags) != 0)
			return failed("renameat2");
		return 0;
	}
	if (strcmp(cmd, "seek") == 0 && argc == 5) {
		int fd = open(argv[3], O_RDONLY);
		if (fd < 0)
			return failed("open");
		off_t off = lseek(fd, atoll(argv[4]), strcmp(argv[2], "data") == 0 ? SEEK_DATA : SEEK_HOLE);
		if (off < 0)
			return failed("lseek");
		printf("%lld\n", (long long)off);
		return 0;
	}
	if (strcmp(cmd, "punch") == 0 && argc == 5) {
		int fd = open(argv[2], O_RDWR);
		if (fd < 0)
			return failed("open");
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, atoll(argv[3]), atoll(argv[4])) != 0)
			return failed("fallocate");
		return 0;
	}
	if (strcmp(cmd, "append") == 0 && argc == 5) {
		int fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT, 0644);
		if (fd < 0)
			return failed("open");
		char line[256];
		int n = snprintf(line, sizeof line, "%s\n", argv[4]);
		for (long i = 0; i < atol(argv[3]); i++) {
			if (write(fd, line, (size_t)n) != n)
				return failed("write");
		}
		return 0;
	}
	if (strcmp(cmd, "direct") == 0 && argc == 4) {
		size_t size = (size_t)atol(argv[3]);
		void *buf;
		if (posix_memalign(&buf, 4096, size) != 0)
			return 1;
		memset(buf, 'd', size);
		int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0644);
		if (fd < 0)
			return failed("open(O_DIRECT)");
		if (pwrite(fd, buf, size, 0) != (ssize_t)size)
			return failed("pwrite(O_DIRECT)");
		memset(buf, 0, size);
		if (pread(fd, buf, size, 0) != (ssize_t)size)
			return failed("pread(O_DIRECT)");
		for (size_t i = 0; i < size; i++) {
			if (((char *)buf)[i] != 'd') {
				fprintf(stderr, "byte %zu differs after O_DIRECT read\n", i);
				return 1;
			}
		}
		return 0;
	}
	if (strcmp(cmd, "copy") == 0 && argc == 4) {
		int in = open(argv[2], O_RDONLY);
		int out = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (in < 0 || out < 0)
			return failed("open");
		struct stat st;
		if (fstat(in, &st) != 0)
			return failed("fstat");
		off_t left = st.st_size;
		while (left > 0) {
			ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
			if (n < 0)
				return failed("copy_file_range");
			if (n == 0)
				break;
			left -= n;
		}
		return 0;
	}
	if (strcmp(cmd, "tmpfile") == 0 && argc == 3) {
		int fd = open(argv[2], O_TMPFILE | O_RDWR, 0600);
		if (fd < 0)
			return failed("open(O_TMPFILE)");
		if (write(fd, "tmp\n", 4) != 4)
			return failed("write");
		char proc[64], dest[PATH_MAX];
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
		snprintf(dest, sizeof dest, "%s/tmpfile-linked", argv[2]);
		if (linkat(AT_FDCWD, proc, AT_FDCWD, dest, AT_SYMLINK_FOLLOW) != 0)
			return failed("linkat");
		return 0;
	}
	if (strcmp(cmd, "utimens") == 0 && argc == 7) {
		struct timespec ts[2] = {{atol(argv[3]), nsec(argv[4])}, {atol(argv[5]), nsec(argv[6])}};
		if (utimensat(AT_FDCWD, argv[2], ts, 0) != 0)
			return failed("utimensat");
		return 0;
	}
	if (strcmp(cmd, "create") == 0 && argc == 4) {
		int fd = open(argv[2], O_WRONLY | O_CREAT | O_EXCL, (mode_t)strtol(argv[3], NULL, 8));
		if (fd < 0)
			return failed("open(O_CREAT)");
		return 0;
	}
	if (strcmp(cmd, "unlinked") == 0 && argc == 3) {
		int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			return failed("open");
		if (unlink(argv[2]) != 0)
			return failed("unlink");
		if (pwrite(fd, "still here", 10, 0) != 10)
			return failed("pwrite");
		char buf[16] = {0};
		if (pread(fd, buf, 10, 0) != 10)
			return failed("pread");
		struct stat st;
		if (fstat(fd, &st) != 0)
			return failed("fstat");
		printf("%s nlink=%lu\n", buf, (unsigned long)st.st_nlink);
		return 0;
	}
	return usage();
}
