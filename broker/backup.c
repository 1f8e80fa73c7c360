/* SPDX-License-Identifier: MIT */
/*
 * backup.c: Backup, BackupRead, BackupEnd (backup.h, docs/backup.md).
 *
 * One backup slot, guarded by b->mu:
 *
 *   IDLE --Backup--> COPYING --copy done--> READY --BackupEnd / idle / stop--> IDLE
 *                       |                     (BackupRead serves chunks)
 *                       +--copy failed--> IDLE (error reply, file removed)
 *
 * Backup starts a thread that runs store_backup (LMDB's compacting copy
 * reads a snapshot of its own, so the writer thread goes on committing),
 * replies with brk_call_finish when the copy is complete, and then keeps
 * the file until BackupEnd, --backup-idle-ms without a read, or
 * shutdown, and deletes it. BackupRead and BackupEnd are answered at once
 * on nng's callback thread (a pread of at most 1 MiB).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "backup.h"
#include "log.h"

#define BK_PREFIX "backup-"
#define BK_SUFFIX ".tmp"

enum bk_state { BK_IDLE, BK_COPYING, BK_READY };

struct brk_backup {
	brk_info *info;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum bk_state state;
	bool thread_live; /* a thread to join */
	pthread_t thread;
	bool stop, end;
	char id[33];
	char path[PATH_MAX];
	int fd;
	store_backup_info bi;
	uint64_t last_ms; /* monotonic: the last read */
	brk_call *call;   /* the Backup call, while COPYING */
};

static brk_info *bk_info;

static void bk_unlink(brk_backup *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	if (b->path[0] && unlink(b->path) != 0 && errno != ENOENT)
		brk_warn("backup %s: cannot remove %s: %s", b->id, b->path, strerror(errno));
	b->path[0] = '\0';
}

static void *bk_main(void *arg)
{
	brk_backup *b = arg;
	brk_call *c = b->call;
	Mq__BackupReply reply = MQ__BACKUP_REPLY__INIT;
	store_err err;
	uint64_t t0 = brk_mono_ms();
	int rv, fd;

	fd = open(b->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rv = errno == ENOSPC                                       ? MQ_RESOURCE_EXHAUSTED
		     : errno == EACCES || errno == EPERM || errno == EROFS ? MQ_PERMISSION_DENIED
		                                                           : MQ_INTERNAL;
		snprintf(err.msg, sizeof(err.msg), "cannot create %.180s: %s", b->path,
		         strerror(errno));
	} else {
		rv = store_backup(b->info->store, fd, &b->bi, &err);
	}
	pthread_mutex_lock(&b->mu);
	b->fd = fd;
	b->call = NULL;
	if (rv != MQ_OK) {
		bk_unlink(b);
		b->state = BK_IDLE;
		pthread_mutex_unlock(&b->mu);
		brk_warn("backup %s failed: %s", b->id, err.msg);
		brk_call_set_error(c, rv, "backup failed: %s", err.msg);
		brk_call_finish(c);
		return NULL;
	}
	b->state = BK_READY;
	b->last_ms = brk_mono_ms();
	reply.id = b->id;
	reply.size = b->bi.size;
	reply.checksum.data = b->bi.checksum;
	reply.checksum.len = sizeof(b->bi.checksum);
	reply.schema_version = b->bi.schema_version;
	reply.created_ms = b->bi.created_ms;
	reply.idle_timeout_ms = b->info->cfg->backup_idle_ms;
	brk_call_set_reply(c, &reply.base); /* packed: a copy of id and checksum */
	pthread_mutex_unlock(&b->mu);
	brk_info("backup %s: %" PRIu64 " bytes (schema %" PRIu32 ") in %" PRIu64 " ms", b->id,
	         b->bi.size, b->bi.schema_version, brk_mono_ms() - t0);
	brk_call_finish(c);

	/* Keep the file while it is being read. */
	pthread_mutex_lock(&b->mu);
	while (!b->stop && !b->end) {
		uint64_t now = brk_mono_ms(), due = b->last_ms + b->info->cfg->backup_idle_ms;
		struct timespec ts;
		uint64_t ns;

		if (now >= due) {
			brk_warn("backup %s: removed after %u ms without a read", b->id,
			         b->info->cfg->backup_idle_ms);
			break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ns = (uint64_t)ts.tv_nsec + (due - now) * 1000000u;
		ts.tv_sec += (time_t)(ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
		pthread_cond_timedwait(&b->cv, &b->mu, &ts);
	}
	bk_unlink(b);
	b->state = BK_IDLE;
	pthread_cond_broadcast(&b->cv); /* a BackupEnd waits for this */
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

int brk_backup_open(brk_backup **out, brk_info *info)
{
	brk_backup *b = calloc(1, sizeof(*b));
	const char *dir = info->cfg->data_dir;
	struct dirent *d;
	DIR *dp;

	*out = NULL;
	if (b == NULL) {
		brk_err("out of memory");
		return -1;
	}
	b->info = info;
	b->fd = -1;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	/* Backup files of a previous run (a crash or a kill while one
	 * existed): nobody can read them any more. */
	if (strcmp(store_engine(info->store), "lmdb") == 0 && (dp = opendir(dir)) != NULL) {
		while ((d = readdir(dp)) != NULL) {
			size_t n = strlen(d->d_name);
			char p[PATH_MAX];

			if (strncmp(d->d_name, BK_PREFIX, strlen(BK_PREFIX)) != 0 ||
			    n <= strlen(BK_SUFFIX) ||
			    strcmp(d->d_name + n - strlen(BK_SUFFIX), BK_SUFFIX) != 0)
				continue;
			if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, d->d_name) >= sizeof(p))
				continue;
			if (unlink(p) == 0)
				brk_info("removed %s, a backup file left by a previous run", p);
			else
				brk_warn("cannot remove the stale backup file %s: %s", p,
				         strerror(errno));
		}
		closedir(dp);
	}
	*out = b;
	return 0;
}

void brk_backup_stop(brk_backup *b)
{
	if (b == NULL)
		return;
	pthread_mutex_lock(&b->mu);
	b->stop = true;
	if (b->state == BK_COPYING)
		brk_info("waiting for backup %s to finish its copy", b->id);
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	if (b->thread_live) {
		pthread_join(b->thread, NULL);
		b->thread_live = false;
	}
}

void brk_backup_free(brk_backup *b)
{
	if (b == NULL)
		return;
	brk_backup_stop(b);
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
	free(b);
}

/* ---- Handlers ------------------------------------------------------------ */

void svc_backup_init(brk_info *info)
{
	bk_info = info;
}

static brk_backup *bk_get(brk_call *c)
{
	brk_backup *b = bk_info ? bk_info->backup : NULL;

	if (b == NULL)
		brk_call_set_error(c, MQ_UNAVAILABLE, "backups are not available in this broker");
	return b;
}

void svc_backup(Mq__Broker_Service *base, const Mq__BackupRequest *in,
                Mq__BackupReply_Closure closure, void *data)
{
	brk_call *c = data;
	brk_backup *b = bk_get(c);
	uint8_t rnd[8];
	store_err err;
	int rv;

	(void)base;
	(void)in;
	if (b == NULL) {
		closure(NULL, c);
		return;
	}
	if ((rv = store_backup_check(b->info->store, &err)) != MQ_OK) {
		brk_call_set_error(c, rv, "%s", err.msg);
		closure(NULL, c);
		return;
	}
	pthread_mutex_lock(&b->mu);
	if (b->stop) {
		pthread_mutex_unlock(&b->mu);
		brk_call_set_error(c, MQ_UNAVAILABLE, "the broker is shutting down");
		closure(NULL, c);
		return;
	}
	if (b->state != BK_IDLE) {
		brk_call_set_error(c, MQ_RESOURCE_EXHAUSTED,
		                   "backup %s is %s; one backup at a time: try again once it "
		                   "ends (BackupEnd, or %u ms without a read)",
		                   b->id, b->state == BK_COPYING ? "being made" : "being read",
		                   b->info->cfg->backup_idle_ms);
		pthread_mutex_unlock(&b->mu);
		closure(NULL, c);
		return;
	}
	if (b->thread_live) { /* the previous backup's thread has ended */
		pthread_join(b->thread, NULL);
		b->thread_live = false;
	}
	randombytes_buf(rnd, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(b->id + 2 * i, 3, "%02x", rnd[i]);
	if ((size_t)snprintf(b->path, sizeof(b->path), "%s/" BK_PREFIX "%s" BK_SUFFIX,
	                     b->info->cfg->data_dir, b->id) >= sizeof(b->path)) {
		b->path[0] = '\0';
		pthread_mutex_unlock(&b->mu);
		brk_call_set_error(c, MQ_INTERNAL, "the data directory's path is too long");
		closure(NULL, c);
		return;
	}
	b->state = BK_COPYING;
	b->end = false;
	b->call = c;
	memset(&b->bi, 0, sizeof(b->bi));
	if (pthread_create(&b->thread, NULL, bk_main, b) != 0) {
		b->state = BK_IDLE;
		b->call = NULL;
		b->path[0] = '\0';
		pthread_mutex_unlock(&b->mu);
		brk_call_set_error(c, MQ_RESOURCE_EXHAUSTED, "cannot start the backup thread");
		closure(NULL, c);
		return;
	}
	b->thread_live = true;
	pthread_mutex_unlock(&b->mu);
	brk_info("backup %s: copying the store to %s", b->id, b->path);
	/* bk_main answers c. */
}

/* bk_find checks that id names the backup being read (under b->mu). */
static bool bk_find(brk_backup *b, brk_call *c, const char *id)
{
	if (b->state != BK_READY || strcmp(id, b->id) != 0) {
		brk_call_set_error(c, MQ_NOT_FOUND,
		                   "no backup '%.40s' to read: it ended (BackupEnd), was removed "
		                   "after %u ms without a read, or mqd restarted",
		                   id, b->info->cfg->backup_idle_ms);
		return false;
	}
	return true;
}

void svc_backup_read(Mq__Broker_Service *base, const Mq__BackupReadRequest *in,
                     Mq__BackupReadReply_Closure closure, void *data)
{
	brk_call *c = data;
	brk_backup *b = bk_get(c);
	Mq__BackupReadReply reply = MQ__BACKUP_READ_REPLY__INIT;
	uint32_t max = in->max_bytes == 0 || in->max_bytes > BRK_BACKUP_CHUNK_MAX
	                   ? BRK_BACKUP_CHUNK_MAX
	                   : in->max_bytes;
	uint8_t *buf = NULL;
	size_t n = 0;

	(void)base;
	if (b == NULL) {
		closure(NULL, c);
		return;
	}
	pthread_mutex_lock(&b->mu);
	if (!bk_find(b, c, in->id))
		goto out;
	if (in->offset > b->bi.size) {
		brk_call_set_error(c, MQ_OUT_OF_RANGE,
		                   "offset %" PRIu64 " is past the end of backup %s (%" PRIu64
		                   " bytes)",
		                   in->offset, b->id, b->bi.size);
		goto out;
	}
	n = b->bi.size - in->offset < max ? (size_t)(b->bi.size - in->offset) : max;
	if ((buf = malloc(n ? n : 1)) == NULL) {
		brk_call_set_error(c, MQ_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	for (size_t got = 0; got < n;) {
		ssize_t r = pread(b->fd, buf + got, n - got, (off_t)(in->offset + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			brk_call_set_error(
			    c, MQ_DATA_LOSS, "backup %s: read %s: %s", b->id, b->path,
			    r < 0 ? strerror(errno) : "the file is shorter than it was");
			goto out;
		}
		got += (size_t)r;
	}
	b->last_ms = brk_mono_ms();
	reply.data.data = buf;
	reply.data.len = n;
	reply.eof = in->offset + n == b->bi.size;
	brk_call_set_reply(c, &reply.base);
out:
	pthread_mutex_unlock(&b->mu);
	free(buf);
	closure(NULL, c);
}

void svc_backup_end(Mq__Broker_Service *base, const Mq__BackupEndRequest *in,
                    Mq__BackupEndReply_Closure closure, void *data)
{
	brk_call *c = data;
	brk_backup *b = bk_get(c);
	Mq__BackupEndReply reply = MQ__BACKUP_END_REPLY__INIT;

	(void)base;
	if (b == NULL) {
		closure(NULL, c);
		return;
	}
	pthread_mutex_lock(&b->mu);
	if (bk_find(b, c, in->id)) {
		/* The thread deletes the file; the reply waits for it, so that a
		 * client sees the file gone once BackupEnd returns. */
		b->end = true;
		pthread_cond_broadcast(&b->cv);
		while (b->state == BK_READY)
			pthread_cond_wait(&b->cv, &b->mu);
		brk_call_set_reply(c, &reply.base);
	}
	pthread_mutex_unlock(&b->mu);
	closure(NULL, c);
}
