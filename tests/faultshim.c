/* SPDX-License-Identifier: MIT */
/*
 * faultshim.c: an LD_PRELOAD library for tests: while the file named by
 * $MQ_FAULT_FILE exists, fsync, fdatasync and msync of an LMDB data file
 * (a path ending in "data.mdb") fail with EIO, as a failing disk would.
 * Everything else passes through. Only the tests load it (test_reliab.c
 * starts mqd with it), so LMDB's real commit path meets the error.
 *
 * Hold: while the file named by $MQ_FAULT_HOLD_FILE exists, fsync and
 * fdatasync of data.mdb wait (at most 60 s, then go on), and
 * "$MQ_FAULT_HOLD_FILE.held" is created when a wait begins, so a test knows
 * that mqd's writer (or its store_open) is held inside a commit
 * (test_http.c holds mqd in its shutdown and in its start this way).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int fault_on(void)
{
	const char *f = getenv("MQ_FAULT_FILE");

	return f != NULL && *f && access(f, F_OK) == 0;
}

static int is_data_file(int fd)
{
	char link[64], path[4096];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return 0;
	path[n] = 0;
	return n >= 8 && strcmp(path + n - 8, "data.mdb") == 0;
}

static void hold_wait(int fd)
{
	const char *f = getenv("MQ_FAULT_HOLD_FILE");
	char marker[4200];
	int mfd;

	if (f == NULL || !*f || access(f, F_OK) != 0 || !is_data_file(fd))
		return;
	snprintf(marker, sizeof(marker), "%s.held", f);
	mfd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (mfd >= 0)
		close(mfd);
	for (int i = 0; i < 60000 && access(f, F_OK) == 0; i++)
		usleep(1000);
}

int fsync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");

	if (fault_on() && is_data_file(fd)) {
		errno = EIO;
		return -1;
	}
	hold_wait(fd);
	return real(fd);
}

int fdatasync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");

	if (fault_on() && is_data_file(fd)) {
		errno = EIO;
		return -1;
	}
	hold_wait(fd);
	return real(fd);
}

int msync(void *addr, size_t len, int flags)
{
	int (*real)(void *, size_t, int) = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "msync");

	if (fault_on()) {
		errno = EIO;
		return -1;
	}
	return real(addr, len, flags);
}
