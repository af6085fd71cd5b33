/*
 * vfs_xattr: extended attributes for the vfstrace guest, whose busybox has no
 * setfattr/getfattr. Each subcommand makes the calls a real program makes, so
 * the backend sees SETXATTR, GETXATTR, LISTXATTR and REMOVEXATTR, size probes
 * included. Built statically by vm/initramfs.ts when the initramfs is built.
 *
 *   vfs_xattr set NAME VALUE FILE [create|replace]
 *   vfs_xattr get NAME FILE     size probe, then read; the value goes to
 *                               stdout as is (no newline added)
 *   vfs_xattr size NAME FILE    size probe only; prints the size
 *   vfs_xattr list FILE         size probe, then read; one name per line
 *   vfs_xattr remove NAME FILE
 *
 * Symlinks are followed, as by setfattr/getfattr. Exit status: 0 done, 1 the
 * call failed (stderr names the call, the errno and its text, e.g.
 * "getxattr(f, user.x): ENODATA (No data available)"), 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/xattr.h>

/* A value or list may change between the size probe and the read (ERANGE);
 * probe again this many times before giving up. */
#define READ_ATTEMPTS 5

/* Symbolic names of the errors these calls return, so a script can match
 * "ENODATA" instead of a locale-dependent message. */
static const char *errno_name(int e)
{
	switch (e) {
	case ENODATA: return "ENODATA";
	case EEXIST: return "EEXIST";
	case ERANGE: return "ERANGE";
	case E2BIG: return "E2BIG";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ENOSPC: return "ENOSPC";
	case EDQUOT: return "EDQUOT";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENOENT: return "ENOENT";
	case ENOTDIR: return "ENOTDIR";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case ELOOP: return "ELOOP";
	case EINVAL: return "EINVAL";
	case EIO: return "EIO";
	case EROFS: return "EROFS";
	case ENOMEM: return "ENOMEM";
	case EFAULT: return "EFAULT";
	case EINTR: return "EINTR";
	case ENOSYS: return "ENOSYS";
	}
	return NULL;
}

/* Reports errno for call(file, name) on stderr; returns the exit status. */
static int fail(const char *call, const char *file, const char *name)
{
	int e = errno;
	const char *sym = errno_name(e);
	char num[32];

	if (sym == NULL) {
		snprintf(num, sizeof num, "errno %d", e);
		sym = num;
	}
	if (name != NULL)
		fprintf(stderr, "vfs_xattr: %s(%s, %s): %s (%s)\n", call, file, name, sym,
			strerror(e));
	else
		fprintf(stderr, "vfs_xattr: %s(%s): %s (%s)\n", call, file, sym, strerror(e));
	return 1;
}

static int usage(void)
{
	fputs("usage: vfs_xattr set NAME VALUE FILE [create|replace]\n"
	      "       vfs_xattr get NAME FILE\n"
	      "       vfs_xattr size NAME FILE\n"
	      "       vfs_xattr list FILE\n"
	      "       vfs_xattr remove NAME FILE\n",
	      stderr);
	return 2;
}

/* getxattr(file, name) when name is set, else listxattr(file). */
static ssize_t query(const char *file, const char *name, char *buf, size_t size)
{
	return name != NULL ? getxattr(file, name, buf, size) : listxattr(file, buf, size);
}

/*
 * Size probe, then a read into a buffer of exactly that size. Returns a
 * malloc'd buffer and its length in *len, or NULL with errno set.
 */
static char *read_sized(const char *file, const char *name, size_t *len)
{
	for (int attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
		ssize_t want = query(file, name, NULL, 0);
		if (want < 0)
			return NULL;
		/* +1: malloc(0) may return NULL. */
		char *buf = malloc((size_t)want + 1);
		if (buf == NULL)
			return NULL;
		if (want == 0) {
			*len = 0;
			return buf;
		}
		ssize_t got = query(file, name, buf, (size_t)want);
		if (got >= 0) {
			*len = (size_t)got;
			return buf;
		}
		int e = errno;
		free(buf);
		errno = e;
		if (e != ERANGE)
			return NULL;
	}
	errno = ERANGE;
	return NULL;
}

/* Flushes stdout; a write error (e.g. a closed pipe) is a failure, not silence. */
static int finish_output(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "vfs_xattr: writing to stdout: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

static int cmd_set(int argc, char **argv)
{
	int flags = 0;

	if (argc == 6) {
		if (strcmp(argv[5], "create") == 0)
			flags = XATTR_CREATE;
		else if (strcmp(argv[5], "replace") == 0)
			flags = XATTR_REPLACE;
		else
			return usage();
	} else if (argc != 5) {
		return usage();
	}
	const char *name = argv[2], *value = argv[3], *file = argv[4];
	if (setxattr(file, name, value, strlen(value), flags) != 0)
		return fail("setxattr", file, name);
	return 0;
}

static int cmd_get(int argc, char **argv)
{
	if (argc != 4)
		return usage();
	const char *name = argv[2], *file = argv[3];
	size_t len;
	char *value = read_sized(file, name, &len);
	if (value == NULL)
		return fail("getxattr", file, name);
	fwrite(value, 1, len, stdout);
	free(value);
	return finish_output();
}

static int cmd_size(int argc, char **argv)
{
	if (argc != 4)
		return usage();
	const char *name = argv[2], *file = argv[3];
	ssize_t size = getxattr(file, name, NULL, 0);
	if (size < 0)
		return fail("getxattr", file, name);
	printf("%zd\n", size);
	return finish_output();
}

static int cmd_list(int argc, char **argv)
{
	if (argc != 3)
		return usage();
	const char *file = argv[2];
	size_t len;
	char *list = read_sized(file, NULL, &len);
	if (list == NULL)
		return fail("listxattr", file, NULL);
	/* NUL-separated names; the last one is printed even if unterminated. */
	for (size_t at = 0; at < len;) {
		size_t n = strnlen(list + at, len - at);
		fwrite(list + at, 1, n, stdout);
		putchar('\n');
		at += n + 1;
	}
	free(list);
	return finish_output();
}

static int cmd_remove(int argc, char **argv)
{
	if (argc != 4)
		return usage();
	const char *name = argv[2], *file = argv[3];
	if (removexattr(file, name) != 0)
		return fail("removexattr", file, name);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const char *cmd = argv[1];
	if (strcmp(cmd, "set") == 0)
		return cmd_set(argc, argv);
	if (strcmp(cmd, "get") == 0)
		return cmd_get(argc, argv);
	if (strcmp(cmd, "size") == 0)
		return cmd_size(argc, argv);
	if (strcmp(cmd, "list") == 0)
		return cmd_list(argc, argv);
	if (strcmp(cmd, "remove") == 0)
		return cmd_remove(argc, argv);
	return usage();
}
