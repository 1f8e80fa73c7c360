/* SPDX-License-Identifier: MIT */
/*
 * backup.c: the backup file (its format is documented in storage.h) and
 * restore. The engine's part is kv_ops.copy (kv_lmdb.c: LMDB's compacting
 * hot copy); this file wraps it in a header and a checksum, and restores it
 * into a data directory through a temporary one, checked with store_open
 * before it is moved into place.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "internal.h"

#define BK_CHUNK (1u << 20)

static mq_status bk_errno(store_err *err, const char *what, const char *path)
{
	int en = errno;
	mq_status st = en == ENOSPC                                 ? MQ_RESOURCE_EXHAUSTED
	               : en == EACCES || en == EPERM || en == EROFS ? MQ_PERMISSION_DENIED
	               : en == ENOENT                               ? MQ_NOT_FOUND
	               : en == EIO                                  ? MQ_DATA_LOSS
	                                                            : MQ_INTERNAL;

	return store_seterr(err, st, "%s%s%s: %s", what, path ? " " : "", path ? path : "",
	                    strerror(en));
}

static int bk_write_all(int fd, const uint8_t *p, size_t n, off_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

static void bk_header(uint8_t h[STORE_BACKUP_HEADER_LEN], const char *engine, uint64_t created,
                      uint64_t data_len)
{
	memset(h, 0, STORE_BACKUP_HEADER_LEN);
	memcpy(h, STORE_BACKUP_MAGIC, 8);
	le32_put(h + 8, STORE_BACKUP_FORMAT);
	le32_put(h + 12, STORE_SCHEMA_VERSION);
	strncpy((char *)h + 16, engine, 8);
	le64_put(h + 24, created);
	le64_put(h + 32, data_len);
}

/* bk_hash_range feeds bytes [off, off+n) of fd to the hash state. */
static int bk_hash_range(int fd, crypto_generichash_state *hs, off_t off, uint64_t n, uint8_t *buf)
{
	while (n > 0) {
		size_t want = n < BK_CHUNK ? (size_t)n : BK_CHUNK;
		ssize_t r = pread(fd, buf, want, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO; /* shorter than it should be */
			return -1;
		}
		crypto_generichash_update(hs, buf, (size_t)r);
		off += r;
		n -= (uint64_t)r;
	}
	return 0;
}

mq_status store_backup_check(const store *s, store_err *err)
{
	if (s->ops->copy == NULL && s->ops->shared)
		return store_seterr(err, MQ_UNIMPLEMENTED,
		                    "the %s storage engine keeps its data in the database: back it "
		                    "up with the database's own tools (pg_dump, point-in-time "
		                    "recovery; docs/postgres.md); mq backups need the lmdb engine",
		                    s->ops->engine);
	if (s->ops->copy == NULL)
		return store_seterr(
		    err, MQ_UNIMPLEMENTED,
		    "the %s storage engine keeps nothing on disk, so it has nothing "
		    "to back up; backups need the lmdb engine",
		    s->ops->engine);
	return MQ_OK;
}

mq_status store_backup(store *s, int fd, store_backup_info *info, store_err *err)
{
	store_err local;
	uint8_t hdr[STORE_BACKUP_HEADER_LEN], trailer[STORE_BACKUP_TRAILER_LEN];
	crypto_generichash_state hs, whole;
	uint64_t created, data_len;
	uint8_t *buf;
	struct stat st;
	mq_status rv;

	if (!err)
		err = &local;
	if (!s)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "store_backup: no store");
	if ((rv = store_backup_check(s, err)) != MQ_OK)
		return rv;
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "store_backup: the target must be a regular file open for "
		                    "reading and writing");
	if (sodium_init() < 0)
		return store_seterr(err, MQ_INTERNAL, "libsodium failed to initialise");
	created = store_now(s);
	if (ftruncate(fd, 0) != 0 || lseek(fd, STORE_BACKUP_HEADER_LEN, SEEK_SET) < 0)
		return bk_errno(err, "backup: prepare the file", NULL);
	if ((rv = s->ops->copy(s->kv, fd, err)) != MQ_OK)
		return rv;
	if (fstat(fd, &st) != 0)
		return bk_errno(err, "backup: stat the copy", NULL);
	if ((uint64_t)st.st_size <= STORE_BACKUP_HEADER_LEN)
		return store_seterr(err, MQ_INTERNAL, "backup: the engine wrote no data");
	data_len = (uint64_t)st.st_size - STORE_BACKUP_HEADER_LEN;
	bk_header(hdr, s->ops->engine, created, data_len);
	if (bk_write_all(fd, hdr, sizeof(hdr), 0) != 0)
		return bk_errno(err, "backup: write the header", NULL);
	/* Read back what is in the file: the checksum covers what was
	 * written, not what was meant to be. */
	if ((buf = malloc(BK_CHUNK)) == NULL)
		return store_seterr(err, MQ_RESOURCE_EXHAUSTED, "backup: out of memory");
	crypto_generichash_init(&hs, NULL, 0, STORE_BACKUP_HASH_LEN);
	if (bk_hash_range(fd, &hs, 0, STORE_BACKUP_HEADER_LEN + data_len, buf) != 0) {
		free(buf);
		return bk_errno(err, "backup: read the copy back", NULL);
	}
	free(buf);
	whole = hs;
	crypto_generichash_final(&hs, trailer, sizeof(trailer));
	if (bk_write_all(fd, trailer, sizeof(trailer),
	                 (off_t)(STORE_BACKUP_HEADER_LEN + data_len)) != 0)
		return bk_errno(err, "backup: write the checksum", NULL);
	if (fsync(fd) != 0)
		return bk_errno(err, "backup: fsync", NULL);
	if (info) {
		memset(info, 0, sizeof(*info));
		info->size = STORE_BACKUP_HEADER_LEN + data_len + STORE_BACKUP_TRAILER_LEN;
		info->data_len = data_len;
		info->schema_version = STORE_SCHEMA_VERSION;
		info->created_ms = created;
		crypto_generichash_update(&whole, trailer, sizeof(trailer));
		crypto_generichash_final(&whole, info->checksum, sizeof(info->checksum));
	}
	return MQ_OK;
}

/* bk_check reads fd's header and checks its length and checksum. */
static mq_status bk_check(int fd, const char *file, store_backup_info *info, store_err *err)
{
	uint8_t hdr[STORE_BACKUP_HEADER_LEN], trailer[STORE_BACKUP_TRAILER_LEN];
	uint8_t sum[STORE_BACKUP_HASH_LEN];
	crypto_generichash_state hs, whole;
	uint32_t format, schema;
	uint64_t data_len;
	char engine[9];
	struct stat st;
	uint8_t *buf;
	ssize_t r;

	if (fstat(fd, &st) != 0)
		return bk_errno(err, "stat", file);
	if (!S_ISREG(st.st_mode))
		return store_seterr(err, MQ_INVALID_ARGUMENT, "%s is not a regular file", file);
	r = pread(fd, hdr, sizeof(hdr), 0);
	if (r < 0)
		return bk_errno(err, "read", file);
	if ((size_t)r < 8 || memcmp(hdr, STORE_BACKUP_MAGIC, 8) != 0)
		return store_seterr(
		    err, MQ_INVALID_ARGUMENT,
		    "%s is not an mq backup (it does not start with \"%s\"; make one "
		    "with mqctl backup)",
		    file, STORE_BACKUP_MAGIC);
	if ((size_t)r < sizeof(hdr))
		return store_seterr(err, MQ_DATA_LOSS, "%s is truncated (%zd bytes)", file, r);
	format = le32_get(hdr + 8);
	schema = le32_get(hdr + 12);
	memcpy(engine, hdr + 16, 8);
	engine[8] = 0;
	data_len = le64_get(hdr + 32);
	if (format != STORE_BACKUP_FORMAT)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "%s has backup format %" PRIu32 "; this mq reads format %u",
		                    file, format, STORE_BACKUP_FORMAT);
	if (schema > STORE_SCHEMA_VERSION)
		return store_seterr(
		    err, MQ_FAILED_PRECONDITION,
		    "%s holds schema version %" PRIu32
		    ", newer than this mqd supports (%u): restore it with a newer mq",
		    file, schema, STORE_SCHEMA_VERSION);
	if (schema == 0)
		return store_seterr(err, MQ_DATA_LOSS, "%s has schema version 0", file);
	if (strcmp(engine, "lmdb") != 0)
		return store_seterr(
		    err, MQ_FAILED_PRECONDITION,
		    "%s is a backup of engine \"%s\"; this mq restores lmdb backups", file, engine);
	if (data_len > (uint64_t)st.st_size ||
	    (uint64_t)st.st_size != STORE_BACKUP_HEADER_LEN + data_len + STORE_BACKUP_TRAILER_LEN)
		return store_seterr(err, MQ_DATA_LOSS,
		                    "%s is %" PRIu64 " bytes; its header says %" PRIu64
		                    ": the file is truncated or damaged",
		                    file, (uint64_t)st.st_size,
		                    (uint64_t)STORE_BACKUP_HEADER_LEN + data_len +
		                        STORE_BACKUP_TRAILER_LEN);
	if (sodium_init() < 0)
		return store_seterr(err, MQ_INTERNAL, "libsodium failed to initialise");
	if ((buf = malloc(BK_CHUNK)) == NULL)
		return store_seterr(err, MQ_RESOURCE_EXHAUSTED, "out of memory");
	crypto_generichash_init(&hs, NULL, 0, STORE_BACKUP_HASH_LEN);
	if (bk_hash_range(fd, &hs, 0, STORE_BACKUP_HEADER_LEN + data_len, buf) != 0) {
		free(buf);
		return bk_errno(err, "read", file);
	}
	free(buf);
	whole = hs;
	crypto_generichash_final(&hs, sum, sizeof(sum));
	r = pread(fd, trailer, sizeof(trailer), (off_t)(STORE_BACKUP_HEADER_LEN + data_len));
	if (r != (ssize_t)sizeof(trailer))
		return bk_errno(err, "read the checksum of", file);
	if (sodium_memcmp(sum, trailer, sizeof(sum)) != 0)
		return store_seterr(err, MQ_DATA_LOSS,
		                    "%s does not match its checksum: the file is damaged", file);
	if (info) {
		memset(info, 0, sizeof(*info));
		info->size = (uint64_t)st.st_size;
		info->data_len = data_len;
		info->schema_version = schema;
		info->created_ms = le64_get(hdr + 24);
		crypto_generichash_update(&whole, trailer, sizeof(trailer));
		crypto_generichash_final(&whole, info->checksum, sizeof(info->checksum));
	}
	return MQ_OK;
}

mq_status store_backup_read_info(const char *file, store_backup_info *info, store_err *err)
{
	store_err local;
	mq_status rv;
	int fd;

	if (!err)
		err = &local;
	if (!file || !*file)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "no backup file given");
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		return bk_errno(err, "open", file);
	rv = bk_check(fd, file, info, err);
	close(fd);
	return rv;
}

#define BK_STAGE_PREFIX ".restore-"

static void bk_rm_stage(const char *dir);

/* bk_dir_state: 0 missing, 1 empty directory, 2 not empty, -1 error (or
 * not a directory; errno set). Staging directories an interrupted restore
 * left behind (".restore-*") do not count; they are removed. */
static int bk_dir_state(const char *dir)
{
	struct dirent *d;
	DIR *dp = opendir(dir);
	int state = 1;

	if (dp == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((d = readdir(dp)) != NULL) {
		char p[PATH_MAX];

		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (strncmp(d->d_name, BK_STAGE_PREFIX, strlen(BK_STAGE_PREFIX)) == 0 &&
		    (size_t)snprintf(p, sizeof(p), "%s/%s", dir, d->d_name) < sizeof(p)) {
			bk_rm_stage(p);
			continue;
		}
		state = 2;
	}
	closedir(dp);
	return state;
}

static int bk_fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* bk_path joins dir and name into out (PATH_MAX); "" when too long. */
static const char *bk_path(char *out, const char *dir, const char *name)
{
	if ((size_t)snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		out[0] = 0;
	return out;
}

/* bk_rm_stage removes a staging directory (flat: no subdirs). */
static void bk_rm_stage(const char *dir)
{
	static const char *const names[] = {"data.mdb", "lock.mdb", "mqd.lock"};
	char p[PATH_MAX];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		unlink(bk_path(p, dir, names[i]));
	}
	rmdir(dir);
}

/* bk_extract copies the data part of the backup into path and fsyncs it. */
static mq_status bk_extract(int in, uint64_t data_len, const char *path, store_err *err)
{
	uint8_t *buf = malloc(BK_CHUNK);
	off_t off = STORE_BACKUP_HEADER_LEN, out_off = 0;
	uint64_t left = data_len;
	int out;

	if (buf == NULL)
		return store_seterr(err, MQ_RESOURCE_EXHAUSTED, "out of memory");
	out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0) {
		free(buf);
		return bk_errno(err, "create", path);
	}
	while (left > 0) {
		size_t want = left < BK_CHUNK ? (size_t)left : BK_CHUNK;
		ssize_t r = pread(in, buf, want, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			free(buf);
			close(out);
			return bk_errno(err, "read the backup", NULL);
		}
		if (bk_write_all(out, buf, (size_t)r, out_off) != 0) {
			free(buf);
			close(out);
			return bk_errno(err, "write", path);
		}
		off += r;
		out_off += r;
		left -= (uint64_t)r;
	}
	free(buf);
	if (fsync(out) != 0) {
		close(out);
		return bk_errno(err, "fsync", path);
	}
	if (close(out) != 0)
		return bk_errno(err, "close", path);
	return MQ_OK;
}

mq_status store_restore(const char *file, const char *data_dir, store_backup_info *info,
                        store_err *err)
{
	store_err local;
	store_backup_info bi;
	char stage[PATH_MAX - 64], from[PATH_MAX], to[PATH_MAX];
	store_config cfg = {0};
	store *s = NULL;
	bool created = false;
	mq_status rv;
	int fd, state;

	if (!err)
		err = &local;
	if (!file || !*file || !data_dir || !*data_dir)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "store_restore: a backup file and a data directory are needed");
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		return bk_errno(err, "open", file);
	if ((rv = bk_check(fd, file, &bi, err)) != MQ_OK) {
		close(fd);
		return rv;
	}
	state = bk_dir_state(data_dir);
	if (state < 0) {
		rv = bk_errno(err, "cannot read the data directory", data_dir);
		close(fd);
		return rv;
	}
	if (state == 2) {
		close(fd);
		return store_seterr(
		    err, MQ_FAILED_PRECONDITION,
		    "the data directory %s is not empty: restore only into a new or "
		    "empty directory (move the current data away first)",
		    data_dir);
	}
	if (state == 0) {
		if (mkdir(data_dir, 0755) != 0) {
			rv = bk_errno(err, "create the data directory", data_dir);
			close(fd);
			return rv;
		}
		created = true;
	}
	/* Staged inside data_dir itself: the same file system for the final
	 * rename, and no write access needed to its parent (a container's
	 * volume is its own mount). */
	if ((size_t)snprintf(stage, sizeof(stage), "%s/" BK_STAGE_PREFIX "XXXXXX", data_dir) >=
	    sizeof(stage)) {
		rv = store_seterr(err, MQ_INVALID_ARGUMENT, "data directory path too long");
		close(fd);
		goto fail_dir;
	}
	if (mkdtemp(stage) == NULL) {
		rv = bk_errno(err, "create a staging directory in", data_dir);
		close(fd);
		goto fail_dir;
	}
	rv = bk_extract(fd, bi.data_len, bk_path(from, stage, "data.mdb"), err);
	close(fd);
	if (rv != MQ_OK)
		goto fail;
	/* Open it as mqd would: LMDB checks its pages' header, the store its
	 * schema version (and upgrades an older one). */
	cfg.engine = "lmdb";
	cfg.path = stage;
	if ((rv = store_open(&s, &cfg, err)) != MQ_OK) {
		char why[STORE_ERR_MAX];

		snprintf(why, sizeof(why), "%s", err->msg);
		store_seterr(err, rv, "%.200s does not open as an mq store: %s", file, why);
		goto fail;
	}
	store_close(s);
	if (bk_fsync_path(bk_path(from, stage, "data.mdb")) != 0) {
		rv = bk_errno(err, "fsync", from);
		goto fail;
	}
	if ((size_t)snprintf(to, sizeof(to), "%s/data.mdb", data_dir) >= sizeof(to)) {
		rv = store_seterr(err, MQ_INVALID_ARGUMENT, "data directory path too long");
		goto fail;
	}
	/* The one step that makes the data appear: a rename, then the
	 * directory's fsync. */
	if (rename(from, to) != 0) {
		rv = bk_errno(err, "move the restored data to", to);
		goto fail;
	}
	bk_rm_stage(stage);
	if (bk_fsync_path(data_dir) != 0)
		return bk_errno(err, "fsync the directory", data_dir);
	if (created) { /* and the new directory's entry in its parent */
		char parent[PATH_MAX], *slash;

		snprintf(parent, sizeof(parent), "%s", data_dir);
		while (strlen(parent) > 1 && parent[strlen(parent) - 1] == '/')
			parent[strlen(parent) - 1] = 0;
		slash = strrchr(parent, '/');
		if (slash == parent)
			parent[1] = 0;
		else if (slash)
			*slash = 0;
		else
			snprintf(parent, sizeof(parent), ".");
		if (bk_fsync_path(parent) != 0)
			return bk_errno(err, "fsync the directory", parent);
	}
	if (info)
		*info = bi;
	return MQ_OK;
fail:
	bk_rm_stage(stage);
fail_dir:
	if (created)
		rmdir(data_dir);
	return rv;
}
