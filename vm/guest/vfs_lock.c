/*
 * vfs_lock: file locks for the vfstrace guest (busybox's flock covers flock(2)
 * only). Built statically by vm/initramfs.ts with the other guest helpers.
 *
 *   vfs_lock fcntl FILE r|w START LEN nb|wait [HOLD_MS]
 *       F_SETLK (nb) or F_SETLKW (wait) on [START, START+LEN) (LEN 0: to the
 *       end); on success prints "locked" and keeps the lock HOLD_MS ms.
 *   vfs_lock flock FILE sh|ex nb|wait [HOLD_MS]
 *       flock(2), likewise.
 *   vfs_lock getlk FILE r|w START LEN
 *       F_GETLK: prints "unlocked", or the conflicting lock as "r|w START LEN".
 *   vfs_lock owner FILE
 *       POSIX owner semantics in one go: a process's locks through two open
 *       files do not conflict; a forked child conflicts even through the
 *       inherited descriptor; closing any descriptor of the file releases all
 *       of the process's locks on it. Prints each step.
 *
 * Exit status: 0 done, 1 the call failed (stderr names it and the errno, e.g.
 * "fcntl(F_SETLK): EAGAIN"), 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *errno_name(int e)
{
	switch (e) {
	case EAGAIN: return "EAGAIN";
	case EACCES: return "EACCES";
	case EINTR: return "EINTR";
	case EDEADLK: return "EDEADLK";
	case ENOLCK: return "ENOLCK";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ENOSYS: return "ENOSYS";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case ENOENT: return "ENOENT";
	case EIO: return "EIO";
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
	fprintf(stderr,
		"usage: vfs_lock fcntl FILE r|w START LEN nb|wait [HOLD_MS]\n"
		"       vfs_lock flock FILE sh|ex nb|wait [HOLD_MS]\n"
		"       vfs_lock getlk FILE r|w START LEN\n"
		"       vfs_lock owner FILE\n");
	return 2;
}

static void hold(const char *ms)
{
	long n = ms == NULL ? 0 : atol(ms);
	struct timespec ts = { n / 1000, (n % 1000) * 1000000L };
	printf("locked\n");
	fflush(stdout);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static struct flock range(short type, off_t start, off_t len)
{
	struct flock fl;
	memset(&fl, 0, sizeof fl);
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = start;
	fl.l_len = len;
	return fl;
}

/* In a child: tries a write lock on [0, 10) through fd; exits 0 if refused. */
static int child_refused(int fd)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		struct flock fl = range(F_WRLCK, 0, 10);
		_exit(fcntl(fd, F_SETLK, &fl) != 0 && (errno == EAGAIN || errno == EACCES) ? 0 : 1);
	}
	int status;
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int owner(const char *path)
{
	int fd1 = open(path, O_RDWR);
	int fd2 = open(path, O_RDWR);
	if (fd1 < 0 || fd2 < 0)
		return failed("open");
	struct flock fl = range(F_WRLCK, 0, 10);
	if (fcntl(fd1, F_SETLK, &fl) != 0)
		return failed("fcntl(F_SETLK) through the first descriptor");
	fl = range(F_WRLCK, 0, 10);
	if (fcntl(fd2, F_SETLK, &fl) != 0)
		return failed("fcntl(F_SETLK) by the same process through a second descriptor");
	printf("same process, two descriptors: no conflict\n");
	int inherited = open(path, O_RDWR);
	if (inherited < 0)
		return failed("open");
	int r = child_refused(fd1);
	if (r != 1) {
		fprintf(stderr, "a forked child got the parent's lock through the inherited descriptor\n");
		return 1;
	}
	printf("forked child, inherited descriptor: refused\n");
	r = child_refused(inherited);
	if (r != 1) {
		fprintf(stderr, "a forked child got the parent's lock through its own descriptor\n");
		return 1;
	}
	printf("forked child, own descriptor: refused\n");
	/* Closing any descriptor of the file drops every lock of the process on it. */
	close(fd2);
	r = child_refused(inherited);
	if (r != 0) {
		fprintf(stderr, "the lock survived the close of another descriptor of the file\n");
		return 1;
	}
	printf("after close of the other descriptor: released\n");
	close(fd1);
	close(inherited);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	const char *cmd = argv[1];
	const char *path = argv[2];
	if (strcmp(cmd, "owner") == 0)
		return owner(path);
	if (strcmp(cmd, "flock") == 0) {
		if (argc < 5)
			return usage();
		int how = strcmp(argv[3], "sh") == 0 ? LOCK_SH : LOCK_EX;
		if (strcmp(argv[4], "nb") == 0)
			how |= LOCK_NB;
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			return failed("open");
		if (flock(fd, how) != 0)
			return failed("flock");
		hold(argc > 5 ? argv[5] : NULL);
		return 0;
	}
	if (argc < 6)
		return usage();
	short type = strcmp(argv[3], "r") == 0 ? F_RDLCK : F_WRLCK;
	struct flock fl = range(type, atoll(argv[4]), atoll(argv[5]));
	int fd = open(path, type == F_RDLCK ? O_RDONLY : O_RDWR);
	if (fd < 0)
		return failed("open");
	if (strcmp(cmd, "getlk") == 0) {
		if (fcntl(fd, F_GETLK, &fl) != 0)
			return failed("fcntl(F_GETLK)");
		if (fl.l_type == F_UNLCK)
			printf("unlocked\n");
		else
			printf("%s %lld %lld\n", fl.l_type == F_RDLCK ? "r" : "w", (long long)fl.l_start,
			       (long long)fl.l_len);
		return 0;
	}
	if (strcmp(cmd, "fcntl") != 0 || argc < 7)
		return usage();
	int wait = strcmp(argv[6], "wait") == 0;
	if (fcntl(fd, wait ? F_SETLKW : F_SETLK, &fl) != 0)
		return failed(wait ? "fcntl(F_SETLKW)" : "fcntl(F_SETLK)");
	hold(argc > 7 ? argv[7] : NULL);
	return 0;
}
