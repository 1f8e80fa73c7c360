/* SPDX-License-Identifier: MIT */
/*
 * faultshim.c: an LD_PRELOAD library for tests: while the file named by
 * $MQ_FAULT_FILE exists, fsync, fdatasync and msync of an LMDB data file
 * (a path ending in "data.mdb") fail with EIO, as a failing disk would.
 * Everything else passes through. Only the tests load it (test_reliab.c
 * starts mqd with it), so LMDB's real commit path meets the error.
 */
#include <dlfcn.h>
#include <errno.h>
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

int fsync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");

	if (fault_on() && is_data_file(fd)) {
		errno = EIO;
		return -1;
	}
	return real(fd);
}

int fdatasync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");

	if (fault_on() && is_data_file(fd)) {
		errno = EIO;
		return -1;
	}
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
