/* SPDX-License-Identifier: MIT */
/*
 * kv_lmdb.c: the LMDB key-value backend (engine "lmdb"): one LMDB
 * environment in the data directory, one named database per kv_db, the
 * exclusive lock file, map growth and the durability mode. This is the
 * only file of mq that includes <lmdb.h>; lmdb_status() is the one place
 * where MDB_* and errno values become mq_status.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "kv.h"

/* lmdb_db_names are the names of the databases on disk, by kv_db. */
static const char *const lmdb_db_names[KV_NDB] = {
    "meta",   "queues", "qids",     "msgs",      "ready",     "timers", "dedup", "dead",
    "groups", "expiry", "dedupexp", "schedules", "sched_due", "topics", "subs",  "sub_topic",
};

struct kv_txn {
	kv_env *env;
	MDB_txn *txn;
	MDB_cursor *cur[KV_NDB];  /* opened lazily; LMDB frees them at txn end */
	MDB_txn *parent;          /* during a savepoint: the outer transaction */
	MDB_cursor *pcur[KV_NDB]; /* and its cursors */
	bool cur_valid[KV_NDB];
	uint64_t free_pages; /* pages free at begin: below the limit or in the freelist */
	uint64_t tail_pages; /* of which below the limit, past the last page used */
	uint64_t room_bytes; /* what room() granted to this transaction */
	uint64_t room_big;   /* of which to values on overflow pages */
};

struct kv_env {
	MDB_env *env;
	MDB_dbi dbi[KV_NDB];
	int lock_fd;
	char *path;
	uint64_t map_size; /* current */
	uint64_t map_max;
	uint32_t psize;
	bool relaxed;
	bool grow; /* the last transaction hit MDB_MAP_FULL */
	bool in_txn;
	struct kv_txn txn;
	size_t *fl; /* reusable freelist page numbers, sorted (scratch) */
	size_t fl_cap;
	uint32_t *runs; /* lengths of the runs of consecutive pages in fl */
	size_t n_runs, runs_cap;
	uint64_t file_end;  /* bytes of data.mdb known to be written (lmdb_prealloc) */
	uint64_t pa_used;   /* used bytes at lmdb_prealloc's last decision */
	uint64_t pa_begins; /* transactions begun since then */
	/* A copy (lmdb_copy, another thread) holds a read transaction on the
	 * map: mdb_env_set_mapsize must not remap it then. copy_mu guards
	 * copying and each growth. */
	pthread_mutex_t copy_mu;
	int copying;
};

/* lmdb_status maps an LMDB or errno code to mq_status and explains it in
 * err. Every LMDB call's failure goes through here. */
static mq_status lmdb_status(kv_env *e, int rc, const char *op, store_err *err)
{
	const char *what = mdb_strerror(rc);

	switch (rc) {
	case MDB_MAP_FULL:
		if (e)
			e->grow = true;
		if (e && e->map_size >= e->map_max)
			snprintf(err->msg, sizeof(err->msg),
			         "storage is full: the data file reached its configured maximum "
			         "size (map_size_max %" PRIu64 " bytes)",
			         e->map_max);
		else
			snprintf(err->msg, sizeof(err->msg),
			         "storage map is full at %" PRIu64
			         " bytes; it grows at the next transaction",
			         e ? e->map_size : 0);
		return MQ_RESOURCE_EXHAUSTED;
	case MDB_TXN_FULL:
		snprintf(err->msg, sizeof(err->msg), "%s: transaction too large (%s)", op, what);
		return MQ_RESOURCE_EXHAUSTED;
	case ENOSPC:
#ifdef EDQUOT
	case EDQUOT:
#endif
		snprintf(err->msg, sizeof(err->msg), "%s: disk full (%s)", op, what);
		return MQ_RESOURCE_EXHAUSTED;
	case ENOMEM:
		snprintf(err->msg, sizeof(err->msg), "%s: out of memory", op);
		return MQ_RESOURCE_EXHAUSTED;
	case EACCES:
	case EPERM:
	case EROFS:
		snprintf(err->msg, sizeof(err->msg), "%s: permission denied (%s)", op, what);
		return MQ_PERMISSION_DENIED;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
	case MDB_INCOMPATIBLE:
		snprintf(err->msg, sizeof(err->msg), "%s: storage is corrupted (%s)", op, what);
		return MQ_DATA_LOSS;
	case EIO:
		snprintf(err->msg, sizeof(err->msg), "%s: I/O error (%s)", op, what);
		return MQ_DATA_LOSS;
	default:
		snprintf(err->msg, sizeof(err->msg), "%s: %s", op, what);
		return MQ_INTERNAL;
	}
}

static mq_status lmdb_lock(kv_env *e, store_err *err)
{
	char file[4096], buf[32];
	int fd;

	snprintf(file, sizeof(file), "%s/mqd.lock", e->path);
	fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return lmdb_status(NULL, errno, "open lock file", err);
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int en = errno;
		long pid = 0;
		ssize_t n;

		if (en != EWOULDBLOCK) {
			close(fd);
			return lmdb_status(NULL, en, "lock data directory", err);
		}
		n = pread(fd, buf, sizeof(buf) - 1, 0);
		if (n > 0) {
			buf[n] = 0;
			pid = strtol(buf, NULL, 10);
		}
		close(fd);
		snprintf(err->msg, sizeof(err->msg),
		         "data directory %s is in use by another process (pid %ld)", e->path, pid);
		return MQ_FAILED_PRECONDITION;
	}
	snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, strlen(buf), 0) != (ssize_t)strlen(buf)) {
		mq_status rc = lmdb_status(NULL, errno, "write lock file", err);

		close(fd);
		return rc;
	}
	e->lock_fd = fd;
	return MQ_OK;
}

static void lmdb_close(kv_env *e)
{
	if (!e)
		return;
	if (e->env)
		mdb_env_close(e->env);
	if (e->lock_fd >= 0)
		close(e->lock_fd);
	pthread_mutex_destroy(&e->copy_mu);
	free(e->fl);
	free(e->runs);
	free(e->path);
	free(e);
}

static mq_status lmdb_open_dbs(kv_env *e, store_err *err)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(e->env, NULL, 0, &txn);

	if (rc)
		return lmdb_status(e, rc, "begin", err);
	for (int i = 0; i < KV_NDB; i++) {
		rc = mdb_dbi_open(txn, lmdb_db_names[i], MDB_CREATE, &e->dbi[i]);
		if (rc) {
			mdb_txn_abort(txn);
			return lmdb_status(e, rc, "open database", err);
		}
	}
	rc = mdb_txn_commit(txn);
	if (rc)
		return lmdb_status(e, rc, "commit", err);
	return MQ_OK;
}

static void lmdb_refresh(kv_env *e)
{
	MDB_envinfo info;

	if (mdb_env_info(e->env, &info) == 0)
		e->map_size = info.me_mapsize;
}

static mq_status lmdb_open(kv_env **out, const kv_open_opts *o, store_err *err)
{
	kv_env *e = calloc(1, sizeof(*e));
	char file[4096];
	struct stat st;
	MDB_stat ms;
	unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
	mq_status s;
	int rc;

	if (!e) {
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return MQ_RESOURCE_EXHAUSTED;
	}
	e->lock_fd = -1;
	pthread_mutex_init(&e->copy_mu, NULL);
	e->txn.env = e;
	e->relaxed = o->relaxed;
	e->map_size = o->map_size;
	e->map_max = o->map_size_max < o->map_size ? o->map_size : o->map_size_max;
	e->path = strdup(o->path);
	if (!e->path) {
		pthread_mutex_destroy(&e->copy_mu);
		free(e);
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return MQ_RESOURCE_EXHAUSTED;
	}
	if (mkdir(o->path, 0755) != 0 && errno != EEXIST) {
		s = lmdb_status(NULL, errno, "create data directory", err);
		goto fail;
	}
	if ((s = lmdb_lock(e, err)) != MQ_OK)
		goto fail;
	snprintf(file, sizeof(file), "%s/data.mdb", o->path);
	if (stat(file, &st) == 0 && (uint64_t)st.st_size > e->map_size)
		e->map_size = (uint64_t)st.st_size;
	if ((rc = mdb_env_create(&e->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(e->env, KV_NDB + 2)) != 0 ||
	    (rc = mdb_env_set_mapsize(e->env, (size_t)e->map_size)) != 0) {
		s = lmdb_status(e, rc, "create environment", err);
		goto fail;
	}
	/* Durable mode keeps LMDB's default syncs: never MDB_NOSYNC,
	 * MDB_NOMETASYNC or MDB_MAPASYNC there. */
	if (o->relaxed)
		flags |= MDB_NOSYNC;
	rc = mdb_env_open(e->env, o->path, flags, 0644);
	if (rc) {
		s = lmdb_status(e, rc, "open environment", err);
		goto fail;
	}
	if ((s = lmdb_open_dbs(e, err)) != MQ_OK)
		goto fail;
	mdb_env_stat(e->env, &ms);
	e->psize = ms.ms_psize;
	lmdb_refresh(e);
	if (e->map_max < e->map_size)
		e->map_max = e->map_size;
	*out = e;
	return MQ_OK;
fail:
	lmdb_close(e);
	return s;
}

/* lmdb_durability reads the environment's live flags rather than the
 * option it was opened with, so "durable" (which tests, ServerInfo and
 * mqctl report) can only be said when no LMDB sync is weakened. */
static const char *lmdb_durability(const kv_env *e)
{
	unsigned flags = 0;

	if (mdb_env_get_flags(e->env, &flags) != 0)
		return "unknown";
	if (flags & (MDB_NOSYNC | MDB_NOMETASYNC | MDB_MAPASYNC))
		return "relaxed";
	return "durable";
}

static mq_status lmdb_sync(kv_env *e, store_err *err)
{
	int rc;

	if (!e->relaxed)
		return MQ_OK;
	rc = mdb_env_sync(e->env, 1);
	return rc ? lmdb_status(e, rc, "sync", err) : MQ_OK;
}

static void lmdb_usage(const kv_env *e, uint64_t *used, uint64_t *map)
{
	MDB_envinfo info;

	if (mdb_env_info(e->env, &info) != 0) {
		*used = *map = 0;
		return;
	}
	*used = ((uint64_t)info.me_last_pgno + 1) * e->psize;
	*map = info.me_mapsize;
}

/* lmdb_maybe_grow grows the map before a transaction when the last one hit
 * MDB_MAP_FULL or the map is three quarters used: double, up to the max.
 * No transaction is active here, as mdb_env_set_mapsize requires. */
static mq_status lmdb_maybe_grow(kv_env *e, store_err *err)
{
	uint64_t used, map, want;
	int rc;

	lmdb_usage(e, &used, &map);
	if (!e->grow && used <= map / 4 * 3)
		return MQ_OK;
	if (e->map_size >= e->map_max) {
		e->grow = false;
		return MQ_OK;
	}
	pthread_mutex_lock(&e->copy_mu);
	if (e->copying) { /* remapping would pull the map from under the copy */
		pthread_mutex_unlock(&e->copy_mu);
		return MQ_OK; /* e->grow stays set: grown after the copy */
	}
	e->grow = false;
	want = e->map_size * 2;
	if (want > e->map_max || want < e->map_size)
		want = e->map_max;
	rc = mdb_env_set_mapsize(e->env, (size_t)want);
	pthread_mutex_unlock(&e->copy_mu);
	if (rc)
		return lmdb_status(e, rc, "grow map", err);
	lmdb_refresh(e);
	return MQ_OK;
}

/* ---- Room at the size limit -------------------------------------------
 *
 * LMDB writes copy-on-write: even a pull (which rewrites the message's
 * record) or a delete needs free pages for the copies of the pages it
 * touches, and pages freed by a transaction are reusable only by later
 * ones. So a map filled to map_size_max by pushes could not even be
 * drained. lmdb_room keeps a reserve: a push is refused (a request error,
 * the transaction goes on) when the pages free at the start of the
 * transaction (up to the maximum map size, plus LMDB's freelist), minus
 * what this transaction's writes took, would fall below the reserve.
 * Draining writes may use the reserve, down to a small margin for the
 * tree pages every transaction copies; a pull stops early there. */

#define LMDB_DRAIN_MARGIN_PAGES 32u

/* lmdb_reserve_pages: 1/8 of the maximum, at least 128 pages (512 KiB with
 * 4 KiB pages), at most 64 MiB. */
static uint64_t lmdb_reserve_pages(const kv_env *e)
{
	uint64_t max_pages = e->map_max / e->psize, r = max_pages / 8;
	uint64_t cap = (64ull << 20) / e->psize;

	if (r < 128)
		r = 128;
	return r > cap ? cap : r;
}

static int pgno_cmp(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/* lmdb_freelist_pages counts the pages in LMDB's freelist (database 0:
 * each value is a list of page numbers whose first word is the count) that
 * the next write transaction may reuse: those freed by transactions before
 * the last committed one (LMDB reuses pages freed by transaction N from
 * N+2 on; mqd has no readers that hold older ones). It also notes the runs
 * of consecutive pages (a value on overflow pages needs a run). LMDB
 * allows cursors on the freelist only in read transactions: this runs
 * before the write transaction begins. */
static uint64_t lmdb_freelist_pages(kv_env *e, uint64_t last_txnid)
{
	MDB_txn *rt;
	MDB_cursor *c;
	MDB_val k, v;
	size_t n = 0;

	e->n_runs = 0;
	if (mdb_txn_begin(e->env, NULL, MDB_RDONLY, &rt) != 0)
		return 0;
	if (mdb_cursor_open(rt, 0, &c) == 0) {
		while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
			size_t id = 0, cnt = 0;

			if (k.mv_size == sizeof(id))
				memcpy(&id, k.mv_data, sizeof(id));
			if (id >= last_txnid)
				break;
			if (v.mv_size >= sizeof(cnt))
				memcpy(&cnt, v.mv_data, sizeof(cnt));
			if (cnt > v.mv_size / sizeof(size_t) - 1)
				cnt = v.mv_size / sizeof(size_t) - 1;
			if (n + cnt > e->fl_cap) {
				size_t cap = (n + cnt) * 2;
				size_t *fl = realloc(e->fl, cap * sizeof(*fl));

				if (!fl)
					break;
				e->fl = fl;
				e->fl_cap = cap;
			}
			memcpy(e->fl + n, (const size_t *)v.mv_data + 1, cnt * sizeof(size_t));
			n += cnt;
		}
		mdb_cursor_close(c);
	}
	mdb_txn_abort(rt);
	if (n == 0)
		return 0;
	qsort(e->fl, n, sizeof(size_t), pgno_cmp);
	if (e->runs_cap < n) {
		uint32_t *r = realloc(e->runs, n * sizeof(*r));

		if (!r)
			return n;
		e->runs = r;
		e->runs_cap = n;
	}
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;

		while (j < n && e->fl[j] == e->fl[j - 1] + 1)
			j++;
		e->runs[e->n_runs++] = (uint32_t)(j - i);
		i = j;
	}
	return n;
}

/* lmdb_run_pages is how many free pages could hold values of k pages
 * each: the tail, and the runs of the freelist in whole k-page pieces. */
static uint64_t lmdb_run_pages(const kv_txn *t, uint64_t k)
{
	uint64_t n = t->tail_pages;

	for (size_t i = 0; i < t->env->n_runs; i++)
		n += t->env->runs[i] / k * k;
	return n;
}

/* lmdb_room_begin computes the pages free for the next write transaction;
 * the freelist is read only near the limit. Before mdb_txn_begin. */
static void lmdb_room_begin(kv_env *e)
{
	kv_txn *t = &e->txn;
	MDB_envinfo info;
	uint64_t max_pages = e->map_max / e->psize, used;

	t->room_bytes = 0;
	t->room_big = 0;
	t->free_pages = UINT64_MAX;
	e->n_runs = 0;
	if (mdb_env_info(e->env, &info) != 0)
		return;
	used = (uint64_t)info.me_last_pgno + 1;
	t->free_pages = max_pages > used ? max_pages - used : 0;
	t->tail_pages = t->free_pages;
	if (t->free_pages < 4 * lmdb_reserve_pages(e))
		t->free_pages += lmdb_freelist_pages(e, info.me_last_txnid);
	else
		t->free_pages = UINT64_MAX; /* far from the limit */
}

/* lmdb_settle runs after a commit near the limit: one more transaction
 * that rewrites the first record of the meta database as it is. LMDB
 * reuses the pages freed by transaction N only from N+2 on, so without it
 * the transaction after an ack or a purge could not use what they freed:
 * a push right after a purge would be refused. Its failure costs nothing
 * (it carries no data), so it is not reported. */
static void lmdb_settle(kv_env *e)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t kb[512], vb[512];
	MDB_val kc = {0, kb}, vc = {0, vb};
	int rc;

	if (mdb_txn_begin(e->env, NULL, 0, &txn) != 0)
		return;
	rc = mdb_cursor_open(txn, e->dbi[KV_META], &c);
	if (rc == 0) {
		rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
		if (rc == 0 && k.mv_size <= sizeof(kb) && v.mv_size <= sizeof(vb)) {
			kc.mv_size = k.mv_size;
			vc.mv_size = v.mv_size;
			memcpy(kb, k.mv_data, k.mv_size);
			memcpy(vb, v.mv_data, v.mv_size);
		} else {
			rc = -1;
		}
		mdb_cursor_close(c);
	}
	if (rc == 0 && mdb_put(txn, e->dbi[KV_META], &kc, &vc, 0) == 0)
		mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
}

static mq_status lmdb_room(kv_txn *t, size_t bytes, bool drain, store_err *err)
{
	kv_env *e = t->env;
	uint64_t reserve = lmdb_reserve_pages(e), keep = drain ? LMDB_DRAIN_MARGIN_PAGES : reserve;
	uint64_t need;
	bool full = false;

	if (t->free_pages == UINT64_MAX)
		return MQ_OK;
	/* A value above half a page goes to overflow pages of its own; small
	 * ones share leaf pages, counted twice for index entries and splits. */
	if (bytes > e->psize / 2)
		need = ((uint64_t)bytes + e->psize - 1) / e->psize * e->psize + e->psize;
	else
		need = 2 * (uint64_t)bytes;
	if (bytes > e->psize / 2) { /* overflow pages: a run of them */
		uint64_t runs = lmdb_run_pages(t, need / e->psize - 1);

		if (runs < keep || t->room_big + need > (runs - keep) * (uint64_t)e->psize)
			full = true;
	}
	if (t->free_pages < keep ||
	    t->room_bytes + need > (t->free_pages - keep) * (uint64_t)e->psize)
		full = true;
	if (full) {
		if (drain)
			snprintf(err->msg, sizeof(err->msg),
			         "storage is full: the data reached its maximum size (map_size_max "
			         "%" PRIu64 " bytes) and this transaction has no room left; retry "
			         "after acks or purges",
			         e->map_max);
		else
			snprintf(err->msg, sizeof(err->msg),
			         "storage is full: the data reached its maximum size (map_size_max "
			         "%" PRIu64 " bytes) but for %" PRIu64 " bytes kept free so that "
			         "queues can be drained; pushes are refused until messages are "
			         "acked, purged or deleted",
			         e->map_max, reserve * e->psize);
		return MQ_RESOURCE_EXHAUSTED;
	}
	t->room_bytes += need;
	if (bytes > e->psize / 2)
		t->room_big += need;
	return MQ_OK;
}

/* ---- Preallocation ----------------------------------------------------
 *
 * LMDB appends pages to data.mdb as the data grows. On ext4 (and most file
 * systems) an fdatasync after the file grew must also write the inode (its
 * size and block map): one more synchronous I/O in each durable commit of
 * a growing store. lmdb_prealloc keeps a run of zeroed, synced bytes past
 * the last page used, so that commits overwrite blocks that already exist
 * and their fdatasyncs flush only data. Zeros are written (not
 * fallocate'd: unwritten extents need a metadata change on first write),
 * between transactions and only past the end of the file, where LMDB has
 * nothing; LMDB never reads a page past its last one before writing it.
 * The run is 1/16 of the used size, 2 to 16 MiB, within the current map
 * (so it grows with the map). It pays off when commits are small: writing
 * the zeros costs about as much as the inode writes of a few dozen
 * commits, so when the store grew by more than LMDB_PREALLOC_PER_TXN bytes
 * per transaction since the last decision (big batches), the file is left
 * to grow by itself. Best effort: on an error (disk full) nothing is lost,
 * LMDB's own writes then meet the error. */

#define LMDB_PREALLOC_MIN     (2ull << 20)
#define LMDB_PREALLOC_MAX     (16ull << 20)
#define LMDB_PREALLOC_PER_TXN (64ull << 10)

static void lmdb_prealloc(kv_env *e)
{
	static const uint8_t zeros[65536];
	MDB_envinfo info;
	struct stat st;
	uint64_t used, chunk, start, end;
	int fd;

	if (mdb_env_info(e->env, &info) != 0)
		return;
	used = ((uint64_t)info.me_last_pgno + 1) * e->psize;
	e->pa_begins++;
	chunk = used / 16;
	chunk = chunk < LMDB_PREALLOC_MIN   ? LMDB_PREALLOC_MIN
	        : chunk > LMDB_PREALLOC_MAX ? LMDB_PREALLOC_MAX
	                                    : chunk;
	if (e->file_end >= used + chunk / 2)
		return; /* enough room written ahead */
	if (mdb_env_get_fd(e->env, &fd) != 0 || fstat(fd, &st) != 0)
		return;
	start = (uint64_t)st.st_size > used ? (uint64_t)st.st_size : used;
	e->file_end = start;
	if (start >= used + chunk / 2)
		return;
	if (e->pa_begins > 0 && used > e->pa_used &&
	    (used - e->pa_used) / e->pa_begins > LMDB_PREALLOC_PER_TXN) {
		e->pa_used = used; /* big transactions: not worth it now */
		e->pa_begins = 0;
		return;
	}
	e->pa_used = used;
	e->pa_begins = 0;
	end = (used + chunk) / e->psize * e->psize;
	if (end > e->map_size)
		end = e->map_size / e->psize * e->psize;
	if (end <= start)
		return;
	for (uint64_t off = start; off < end;) {
		size_t n = end - off < sizeof(zeros) ? (size_t)(end - off) : sizeof(zeros);
		ssize_t w = pwrite(fd, zeros, n, (off_t)off);
		if (w <= 0)
			return;
		off += (uint64_t)w;
	}
	if (fdatasync(fd) == 0)
		e->file_end = end;
}

static mq_status lmdb_begin(kv_env *e, kv_txn **out, store_err *err)
{
	mq_status s;
	int rc;

	if (e->in_txn) {
		snprintf(err->msg, sizeof(err->msg), "a transaction is already open");
		return MQ_FAILED_PRECONDITION;
	}
	if ((s = lmdb_maybe_grow(e, err)) != MQ_OK)
		return s;
	lmdb_prealloc(e);
	lmdb_room_begin(e);
	rc = mdb_txn_begin(e->env, NULL, 0, &e->txn.txn);
	if (rc == MDB_MAP_RESIZED) {
		mdb_env_set_mapsize(e->env, 0);
		lmdb_refresh(e);
		rc = mdb_txn_begin(e->env, NULL, 0, &e->txn.txn);
	}
	if (rc)
		return lmdb_status(e, rc, "begin", err);
	memset(e->txn.cur, 0, sizeof(e->txn.cur));
	memset(e->txn.cur_valid, 0, sizeof(e->txn.cur_valid));
	e->in_txn = true;
	*out = &e->txn;
	return MQ_OK;
}

static mq_status lmdb_commit(kv_txn *t, store_err *err)
{
	int rc = mdb_txn_commit(t->txn);

	t->txn = NULL;
	t->env->in_txn = false;
	if (rc)
		return lmdb_status(t->env, rc, "commit", err);
	if (t->free_pages != UINT64_MAX) /* near the size limit */
		lmdb_settle(t->env);
	return MQ_OK;
}

static void lmdb_abort(kv_txn *t)
{
	mdb_txn_abort(t->parent ? t->parent : t->txn); /* a parent aborts its child */
	t->parent = NULL;
	t->txn = NULL;
	t->env->in_txn = false;
}

static mq_status lmdb_get(kv_txn *t, kv_db db, const void *k, size_t klen, kv_val *v,
                          store_err *err)
{
	MDB_val key = {klen, (void *)k}, val;
	int rc = mdb_get(t->txn, t->env->dbi[db], &key, &val);

	if (rc == MDB_NOTFOUND)
		return MQ_NOT_FOUND;
	if (rc)
		return lmdb_status(t->env, rc, "get", err);
	v->data = val.mv_data;
	v->len = val.mv_size;
	return MQ_OK;
}

static mq_status lmdb_put(kv_txn *t, kv_db db, const void *k, size_t klen, const void *v,
                          size_t vlen, store_err *err)
{
	MDB_val key = {klen, (void *)k}, val = {vlen, (void *)v};
	int rc;

	t->cur_valid[db] = false;
	rc = mdb_put(t->txn, t->env->dbi[db], &key, &val, 0);
	return rc ? lmdb_status(t->env, rc, "put", err) : MQ_OK;
}

static mq_status lmdb_del(kv_txn *t, kv_db db, const void *k, size_t klen, store_err *err)
{
	MDB_val key = {klen, (void *)k};
	int rc;

	t->cur_valid[db] = false;
	rc = mdb_del(t->txn, t->env->dbi[db], &key, NULL);
	if (rc == MDB_NOTFOUND)
		return MQ_NOT_FOUND;
	return rc ? lmdb_status(t->env, rc, "delete", err) : MQ_OK;
}

static mq_status lmdb_cursor_get(kv_txn *t, kv_db db, MDB_val *key, MDB_cursor_op op, kv_val *k,
                                 kv_val *v, store_err *err)
{
	MDB_val val;
	int rc;

	if (!t->cur[db]) {
		rc = mdb_cursor_open(t->txn, t->env->dbi[db], &t->cur[db]);
		if (rc)
			return lmdb_status(t->env, rc, "cursor", err);
	}
	rc = mdb_cursor_get(t->cur[db], key, &val, op);
	t->cur_valid[db] = rc == 0;
	if (rc == MDB_NOTFOUND)
		return MQ_NOT_FOUND;
	if (rc)
		return lmdb_status(t->env, rc, "cursor get", err);
	k->data = key->mv_data;
	k->len = key->mv_size;
	v->data = val.mv_data;
	v->len = val.mv_size;
	return MQ_OK;
}

static mq_status lmdb_seek(kv_txn *t, kv_db db, const void *k, size_t klen, kv_val *key,
                           kv_val *val, store_err *err)
{
	MDB_val mk = {klen, (void *)k};

	return lmdb_cursor_get(t, db, &mk, klen ? MDB_SET_RANGE : MDB_FIRST, key, val, err);
}

static mq_status lmdb_next(kv_txn *t, kv_db db, kv_val *key, kv_val *val, store_err *err)
{
	MDB_val mk = {0, NULL};

	if (!t->cur_valid[db]) {
		snprintf(err->msg, sizeof(err->msg), "lmdb engine: cursor used after a write");
		return MQ_INTERNAL;
	}
	return lmdb_cursor_get(t, db, &mk, MDB_NEXT, key, val, err);
}

/* Savepoints are LMDB nested transactions: the child takes the parent's
 * place until released (committed into the parent) or rolled back. */
static mq_status lmdb_savepoint(kv_txn *t, store_err *err)
{
	MDB_txn *child;
	int rc = mdb_txn_begin(t->env->env, t->txn, 0, &child);

	if (rc)
		return lmdb_status(t->env, rc, "begin savepoint", err);
	t->parent = t->txn;
	t->txn = child;
	memcpy(t->pcur, t->cur, sizeof(t->cur));
	memset(t->cur, 0, sizeof(t->cur));
	memset(t->cur_valid, 0, sizeof(t->cur_valid));
	return MQ_OK;
}

static void lmdb_sp_end(kv_txn *t)
{
	t->txn = t->parent;
	t->parent = NULL;
	memcpy(t->cur, t->pcur, sizeof(t->cur));
	memset(t->cur_valid, 0, sizeof(t->cur_valid));
}

static mq_status lmdb_release(kv_txn *t, store_err *err)
{
	int rc = mdb_txn_commit(t->txn);

	lmdb_sp_end(t);
	return rc ? lmdb_status(t->env, rc, "release savepoint", err) : MQ_OK;
}

static void lmdb_rollback(kv_txn *t)
{
	mdb_txn_abort(t->txn);
	lmdb_sp_end(t);
}

/* lmdb_copy is mdb_env_copyfd2 with MDB_CP_COMPACT: LMDB's hot copy. It
 * takes a read transaction of its own (a snapshot: every transaction
 * committed before it, none after), writes the live pages only, renumbered
 * and without free pages, sequentially to fd. Writers go on meanwhile;
 * pages they free are not reused until the copy ends (its snapshot pins
 * them), and the map does not grow while it runs (lmdb_maybe_grow). */
static mq_status lmdb_copy(kv_env *e, int fd, store_err *err)
{
	int rc;

	pthread_mutex_lock(&e->copy_mu);
	e->copying++;
	pthread_mutex_unlock(&e->copy_mu);
	rc = mdb_env_copyfd2(e->env, fd, MDB_CP_COMPACT);
	pthread_mutex_lock(&e->copy_mu);
	e->copying--;
	pthread_mutex_unlock(&e->copy_mu);
	return rc ? lmdb_status(NULL, rc, "copy", err) : MQ_OK;
}

const kv_ops store_kv_lmdb = {
    .engine = "lmdb",
    .open = lmdb_open,
    .close = lmdb_close,
    .durability = lmdb_durability,
    .sync = lmdb_sync,
    .usage = lmdb_usage,
    .begin = lmdb_begin,
    .commit = lmdb_commit,
    .abort = lmdb_abort,
    .get = lmdb_get,
    .put = lmdb_put,
    .del = lmdb_del,
    .seek = lmdb_seek,
    .next = lmdb_next,
    .room = lmdb_room,
    .savepoint = lmdb_savepoint,
    .release = lmdb_release,
    .rollback = lmdb_rollback,
    .copy = lmdb_copy,
};
