/* SPDX-License-Identifier: MIT */
/*
 * store.c: engine selection, open/close, the schema version check,
 * transactions (begin/commit/abort with the per-transaction queue cache
 * and id counters) and the helpers queues.c and jobs.c share. The job
 * state machine itself is in jobs.c and queues.c, written once over kv.h.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static const char META_SCHEMA[] = "schema";
static const char META_NEXT_ID[] = "next_id";
static const char META_NEXT_TOKEN[] = "next_token";

/* STORE_TOKEN_GAP: more tokens than one process lifetime can issue between
 * two syncs of the relaxed mode. */
#define STORE_TOKEN_GAP (1ull << 32)
static const char META_NEXT_QID[] = "next_qid";

mq_status store_seterr(store_err *err, mq_status st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return st;
}

mq_status store_fail(store_txn *t, store_err *err, mq_status st, const char *fmt, ...)
{
	va_list ap;

	t->failed = true;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return st;
}

mq_status store_txn_check(store_txn *t, store_err *err)
{
	if (!t)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "no transaction");
	if (t->failed)
		return store_seterr(err, MQ_FAILED_PRECONDITION,
		                    "the transaction failed; only abort is allowed");
	t->now = store_now(t->s);
	return MQ_OK;
}

mq_status store_room(store_txn *t, size_t bytes, bool drain, store_err *err)
{
	mq_status st;

	if (!t->s->ops->room)
		return MQ_OK;
	st = t->s->ops->room(t->kv, bytes, drain, err);
	if (st != MQ_OK && st != MQ_RESOURCE_EXHAUSTED)
		t->failed = true;
	return st;
}

mq_status store_room_rewrite(store_txn *t, const rec_msg *m, store_err *err)
{
	size_t n = (size_t)m->payload_len + m->hdrs_len + m->dedup_len + m->type_len +
	           m->error_len + m->reason_len + m->hist_len + 128;

	return store_room(t, n, true, err);
}

uint8_t *store_scratch(store_txn *t, size_t n, store_err *err)
{
	store *s = t->s;

	if (n > s->buf_cap) {
		size_t cap = s->buf_cap ? s->buf_cap : 4096;
		uint8_t *b;

		while (cap < n)
			cap *= 2;
		b = realloc(s->buf, cap);
		if (!b) {
			store_fail(t, err, MQ_RESOURCE_EXHAUSTED, "out of memory (%zu bytes)", n);
			return NULL;
		}
		s->buf = b;
		s->buf_cap = cap;
	}
	return s->buf;
}

store_header *store_hdr_scratch(store_txn *t, size_t n, store_err *err)
{
	store *s = t->s;

	if (n > s->hdrs_cap) {
		size_t cap = s->hdrs_cap ? s->hdrs_cap : 16;
		store_header *h;

		while (cap < n)
			cap *= 2;
		h = realloc(s->hdrs, cap * sizeof(*h));
		if (!h) {
			store_fail(t, err, MQ_RESOURCE_EXHAUSTED, "out of memory (%zu headers)", n);
			return NULL;
		}
		s->hdrs = h;
		s->hdrs_cap = cap;
	}
	return s->hdrs;
}

mq_status store_del_must(store_txn *t, kv_db db, const void *k, size_t kl, store_err *err)
{
	/* A backend that checks later (del_later) fails the transaction then. */
	mq_status st = t->s->ops->del_later ? t->s->ops->del_later(t->kv, db, k, kl, true, err)
	                                    : t->s->ops->del(t->kv, db, k, kl, err);

	if (st == MQ_NOT_FOUND)
		return store_fail(t, err, MQ_DATA_LOSS, "storage index %d is missing an entry",
		                  (int)db);
	if (st != MQ_OK)
		t->failed = true;
	return st;
}

mq_status store_msg_get(store_txn *t, uint32_t qid, uint64_t id, rec_msg *m, store_err *err)
{
	uint8_t k[KEY_MSG_LEN];
	kv_val v;
	mq_status st;

	key_msg(k, qid, id);
	if ((st = tx_get(t, KV_MSGS, k, sizeof(k), &v, err)) != MQ_OK)
		return st;
	if (!store_rec_msg_decode(m, v.data, v.len))
		return store_fail(t, err, MQ_DATA_LOSS, "message %" PRIu64 " record is corrupted",
		                  id);
	return MQ_OK;
}

/* ---- Queue cache ---------------------------------------------------------- */

static uint32_t qc_name_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static uint32_t qc_qid_hash(uint32_t qid)
{
	return qid * 2654435761u;
}

static void qc_index(store_txn *t, uint32_t idx)
{
	const qent *q = t->ents[idx];
	uint32_t mask = t->hcap - 1;
	uint32_t h = qc_name_hash(q->name, q->name_len) & mask;

	while (t->name_gen[h] == t->gen)
		h = (h + 1) & mask;
	t->name_gen[h] = t->gen;
	t->name_slot[h] = idx;
	h = qc_qid_hash(q->qid) & mask;
	while (t->qid_gen[h] == t->gen)
		h = (h + 1) & mask;
	t->qid_gen[h] = t->gen;
	t->qid_slot[h] = idx;
}

static mq_status qc_grow(store_txn *t, store_err *err)
{
	uint32_t cap = t->hcap ? t->hcap * 2 : 64;
	uint32_t *a = calloc(cap, sizeof(uint32_t)), *b = calloc(cap, sizeof(uint32_t));
	uint32_t *c = calloc(cap, sizeof(uint32_t)), *d = calloc(cap, sizeof(uint32_t));

	if (!a || !b || !c || !d) {
		free(a);
		free(b);
		free(c);
		free(d);
		return store_fail(t, err, MQ_RESOURCE_EXHAUSTED, "out of memory");
	}
	free(t->name_slot);
	free(t->name_gen);
	free(t->qid_slot);
	free(t->qid_gen);
	t->name_slot = a;
	t->name_gen = b;
	t->qid_slot = c;
	t->qid_gen = d;
	t->hcap = cap;
	t->gen = 1;
	for (uint32_t i = 0; i < t->n_ents; i++)
		qc_index(t, i);
	return MQ_OK;
}

static qent *qc_find_name(store_txn *t, const char *name, size_t len)
{
	uint32_t mask = t->hcap - 1, h;

	if (!t->hcap)
		return NULL;
	for (h = qc_name_hash(name, len) & mask; t->name_gen[h] == t->gen; h = (h + 1) & mask) {
		qent *q = t->ents[t->name_slot[h]];

		if (!q->deleted && q->name_len == len && memcmp(q->name, name, len) == 0)
			return q;
	}
	return NULL;
}

static qent *qc_find_qid(store_txn *t, uint32_t qid)
{
	uint32_t mask = t->hcap - 1, h;

	if (!t->hcap)
		return NULL;
	for (h = qc_qid_hash(qid) & mask; t->qid_gen[h] == t->gen; h = (h + 1) & mask) {
		qent *q = t->ents[t->qid_slot[h]];

		if (!q->deleted && q->qid == qid)
			return q;
	}
	return NULL;
}

/* qc_add caches a queue read from (or just written to) the store. */
static mq_status qc_add(store_txn *t, const char *name, size_t len, const rec_queue *rec,
                        qent **out, store_err *err)
{
	qent *q;
	mq_status st;

	if ((uint64_t)(t->n_ents + 1) * 2 >= t->hcap && (st = qc_grow(t, err)) != MQ_OK)
		return st;
	if (t->n_ents == t->cap_ents) {
		uint32_t cap = t->cap_ents ? t->cap_ents * 2 : 16;
		qent **e = realloc(t->ents, cap * sizeof(*e));

		if (!e)
			return store_fail(t, err, MQ_RESOURCE_EXHAUSTED, "out of memory");
		t->ents = e;
		for (uint32_t i = t->cap_ents; i < cap; i++)
			e[i] = NULL;
		t->cap_ents = cap;
	}
	if (!t->ents[t->n_ents] && !(t->ents[t->n_ents] = malloc(sizeof(qent))))
		return store_fail(t, err, MQ_RESOURCE_EXHAUSTED, "out of memory");
	q = t->ents[t->n_ents];
	q->qid = rec->qid;
	q->dirty = false;
	q->deleted = false;
	q->name_len = (uint8_t)len;
	memcpy(q->name, name, len);
	q->name[len] = 0;
	q->rec = *rec;
	qc_index(t, t->n_ents++);
	*out = q;
	return MQ_OK;
}

mq_status store_name_check(const char *name, store_err *err)
{
	if (!mq_name_valid(name))
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "invalid queue name \"%.*s\": a name is 1 to %d characters of "
		                    "[A-Za-z0-9._-]",
		                    name ? 64 : 0, name ? name : "", MQ_NAME_MAX);
	return MQ_OK;
}

mq_status store_q_get(store_txn *t, const char *name, qent **out, store_err *err)
{
	size_t len;
	rec_queue rec;
	kv_val v;
	mq_status st;

	if ((st = store_name_check(name, err)) != MQ_OK)
		return st;
	len = strlen(name);
	if ((*out = qc_find_name(t, name, len)) != NULL)
		return MQ_OK;
	st = tx_get(t, KV_QUEUES, name, len, &v, err);
	if (st == MQ_NOT_FOUND)
		return store_seterr(err, MQ_NOT_FOUND, "queue %s not found", name);
	if (st != MQ_OK)
		return st;
	if (!store_rec_queue_decode(&rec, v.data, v.len))
		return store_fail(t, err, MQ_DATA_LOSS, "queue %s record is corrupted", name);
	return qc_add(t, name, len, &rec, out, err);
}

mq_status store_q_by_qid(store_txn *t, uint32_t qid, qent **out, store_err *err)
{
	char name[MQ_NAME_MAX + 1];
	uint8_t k[4];
	kv_val v;
	mq_status st;

	if ((*out = qc_find_qid(t, qid)) != NULL)
		return MQ_OK;
	be32_put(k, qid);
	st = tx_get(t, KV_QIDS, k, sizeof(k), &v, err);
	if (st == MQ_NOT_FOUND || (st == MQ_OK && (v.len == 0 || v.len > MQ_NAME_MAX)))
		return store_fail(t, err, MQ_DATA_LOSS, "queue id %" PRIu32 " has no valid name",
		                  qid);
	if (st != MQ_OK)
		return st;
	memcpy(name, v.data, v.len);
	name[v.len] = 0;
	st = store_q_get(t, name, out, err);
	if (st == MQ_NOT_FOUND || st == MQ_INVALID_ARGUMENT)
		return store_fail(t, err, MQ_DATA_LOSS, "queue id %" PRIu32 " has no record", qid);
	return st;
}

mq_status store_q_create(store_txn *t, const char *name, const store_queue_config *cfg, qent **out,
                         store_err *err)
{
	uint8_t k[4], v[REC_QUEUE_SIZE_MAX];
	size_t len = strlen(name), vlen;
	rec_queue rec = {0};
	mq_status st;

	if (t->next_qid == UINT32_MAX)
		return store_seterr(err, MQ_RESOURCE_EXHAUSTED, "out of queue ids");
	rec.qid = t->next_qid++;
	if (cfg)
		store_q_set_config(&rec, cfg, STORE_QCFG_ALL);
	rec.created_ms = t->now;
	be32_put(k, rec.qid);
	vlen = store_rec_queue_encode(v, &rec);
	if ((st = tx_put(t, KV_QIDS, k, sizeof(k), name, len, err)) != MQ_OK ||
	    (st = tx_put(t, KV_QUEUES, name, len, v, vlen, err)) != MQ_OK)
		return st;
	return qc_add(t, name, len, &rec, out, err);
}

void store_q_set_config(rec_queue *r, const store_queue_config *c, uint32_t mask)
{
	if (mask & STORE_QCFG_LEASE_MS)
		r->lease_ms = c->lease_ms;
	if (mask & STORE_QCFG_MAX_ATTEMPTS)
		r->max_attempts = c->max_attempts;
	if (mask & STORE_QCFG_RETRY_BASE_MS)
		r->retry_base_ms = c->retry_base_ms;
	if (mask & STORE_QCFG_RETRY_MAX_MS)
		r->retry_max_ms = c->retry_max_ms;
	if (mask & STORE_QCFG_MAX_LENGTH)
		r->max_length = c->max_length;
	if (mask & STORE_QCFG_MAX_AGE_MS)
		r->max_age_ms = c->max_age_ms;
	if (mask & STORE_QCFG_RATE_LIMIT)
		r->rate_limit = c->rate_limit;
	if (mask & STORE_QCFG_DEDUP_SCOPE)
		r->dedup_scope = (uint8_t)c->dedup_scope;
	if (mask & STORE_QCFG_DEDUP_WINDOW_MS)
		r->dedup_window_ms = c->dedup_window_ms;
	if (mask & STORE_QCFG_DEAD_LETTER_QUEUE) {
		size_t n = strnlen(c->dead_letter_queue, MQ_NAME_MAX);

		memcpy(r->dlq, c->dead_letter_queue, n);
		r->dlq[n] = 0;
		r->dlq_len = (uint8_t)n;
	}
}

void store_q_get_config(const rec_queue *r, store_queue_config *c)
{
	memset(c, 0, sizeof(*c));
	c->lease_ms = r->lease_ms;
	c->max_attempts = r->max_attempts;
	c->retry_base_ms = r->retry_base_ms;
	c->retry_max_ms = r->retry_max_ms;
	c->max_length = r->max_length;
	c->max_age_ms = r->max_age_ms;
	c->rate_limit = r->rate_limit;
	c->dedup_scope = r->dedup_scope;
	c->dedup_window_ms = r->dedup_window_ms;
	memcpy(c->dead_letter_queue, r->dlq, (size_t)r->dlq_len + 1);
}

uint32_t store_q_lease_ms(const store_txn *t, const qent *q, uint32_t lease_ms)
{
	if (!lease_ms)
		lease_ms = q->rec.lease_ms ? q->rec.lease_ms : t->s->lease_ms;
	return lease_ms > STORE_MAX_LEASE_MS ? STORE_MAX_LEASE_MS : lease_ms;
}

uint32_t store_q_max_attempts(const store_txn *t, const qent *q)
{
	return q->rec.max_attempts ? q->rec.max_attempts : t->s->max_attempts;
}

void store_q_info(const qent *q, store_queue_info *info)
{
	if (!info)
		return;
	memcpy(info->name, q->name, (size_t)q->name_len + 1);
	store_q_get_config(&q->rec, &info->config);
	info->stats = q->rec.stats;
	info->stats.oldest_ready_age_ms = 0;
	info->created_ms = q->rec.created_ms;
	info->paused = q->rec.paused;
}

void store_notify_ready(store_txn *t, const qent *q)
{
	if (t->s->cfg.on_ready)
		t->s->cfg.on_ready(t->s->cfg.ready_arg, q->name);
	if (t->s->ops->notify)
		t->s->ops->notify(t->kv, q->name);
}

/* ---- Open and close -------------------------------------------------------- */

static uint64_t store_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t store_now(const store *s)
{
	if (s->cfg.clock)
		return s->cfg.clock(s->cfg.clock_arg);
	return s->ops->clock ? s->ops->clock(s->kv) : store_wall_ms();
}

mq_status store_watch(store *s, store_ready_fn fn, void *arg, store_err *err)
{
	store_err local;

	if (!s->ops->watch)
		return MQ_OK;
	return s->ops->watch(s->kv, fn, arg, err ? err : &local);
}

void store_unwatch(store *s)
{
	if (s && s->ops->unwatch)
		s->ops->unwatch(s->kv);
}

static mq_status meta_get_u64(store_txn *t, const char *key, uint64_t *v, store_err *err)
{
	kv_val val;
	mq_status st = tx_get(t, KV_META, key, strlen(key), &val, err);

	if (st != MQ_OK)
		return st;
	if (val.len == 8)
		*v = le64_get(val.data);
	else if (val.len == 4)
		*v = le32_get(val.data);
	else
		return store_fail(t, err, MQ_DATA_LOSS, "meta record %s is corrupted", key);
	return MQ_OK;
}

static mq_status meta_put(store_txn *t, const char *key, uint64_t v, size_t len, store_err *err)
{
	uint8_t b[8];

	if (len == 8)
		le64_put(b, v);
	else
		le32_put(b, (uint32_t)v);
	return tx_put(t, KV_META, key, strlen(key), b, len, err);
}

/* schema_check reads (or, in a new store, writes) the schema version and
 * the counters. Upgrades from older versions go here (record.h). */
static mq_status schema_check(store *s, store_err *err)
{
	store_txn *t;
	uint64_t ver = 0, v;
	mq_status st;

	if ((st = store_begin(s, &t, err)) != MQ_OK)
		return st;
	st = meta_get_u64(t, META_SCHEMA, &ver, err);
	if (st == MQ_NOT_FOUND) {
		st = meta_put(t, META_SCHEMA, STORE_SCHEMA_VERSION, 4, err);
	} else if (st == MQ_OK && ver > STORE_SCHEMA_VERSION) {
		st = store_seterr(err, MQ_FAILED_PRECONDITION,
		                  "the store's schema version %" PRIu64
		                  " is newer than this build supports (%u); use a newer mq",
		                  ver, STORE_SCHEMA_VERSION);
	} else if (st == MQ_OK && ver == 0) {
		st = store_fail(t, err, MQ_DATA_LOSS, "the store's schema version is 0");
	} else if (st == MQ_OK && ver < STORE_SCHEMA_VERSION) {
		/* 1 -> 2 -> 3: older message and queue records still decode;
		 * new writes use the new versions, which an older binary would
		 * refuse. 2 -> 3 also adds the schedule and topic databases
		 * (record_pubsub.h), created empty at open. */
		st = meta_put(t, META_SCHEMA, STORE_SCHEMA_VERSION, 4, err);
	}
	if (st == MQ_OK) {
		static const char *const keys[3] = {META_NEXT_ID, META_NEXT_TOKEN, META_NEXT_QID};
		uint64_t *dst[3] = {&t->next_id, &t->next_token, NULL};

		for (int i = 0; i < 3 && st == MQ_OK; i++) {
			v = 1;
			st = meta_get_u64(t, keys[i], &v, err);
			if (st == MQ_NOT_FOUND)
				st = MQ_OK;
			if (dst[i])
				*dst[i] = v;
			else
				t->next_qid = (uint32_t)v;
		}
	}
	if (st != MQ_OK) {
		store_abort(t);
		return st;
	}
	/* Take the counters as committed before commit compares them. */
	s->next_id = t->next_id;
	s->next_token = t->next_token;
	s->next_qid = t->next_qid;
	/* Lease tokens jump ahead by STORE_TOKEN_GAP at every open, synced
	 * below even in relaxed mode: commits that a crash lost in relaxed mode
	 * may have handed out tokens past the stored counter, and a token must
	 * never be issued twice (a stale holder could then ack a new lease). */
	t->next_token += STORE_TOKEN_GAP;
	if ((st = store_commit(t, err)) != MQ_OK)
		return st;
	return store_sync(s, err);
}

mq_status store_open(store **out, const store_config *cfg, store_err *err)
{
	store_err local;
	kv_open_opts o = {0};
	store *s;
	mq_status st;

	if (!err)
		err = &local;
	if (!out || !cfg)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "store_open: no config");
	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return store_seterr(err, MQ_RESOURCE_EXHAUSTED, "out of memory");
	if (!cfg->engine || strcmp(cfg->engine, "lmdb") == 0) {
		s->ops = &store_kv_lmdb;
		if (!cfg->path || !cfg->path[0]) {
			free(s);
			return store_seterr(err, MQ_INVALID_ARGUMENT,
			                    "the lmdb engine needs a data directory");
		}
	} else if (strcmp(cfg->engine, "memory") == 0) {
		s->ops = &store_kv_mem;
	} else if (strcmp(cfg->engine, "postgres") == 0) {
		s->ops = &store_kv_pg;
	} else {
		free(s);
		return store_seterr(
		    err, MQ_INVALID_ARGUMENT,
		    "unknown storage engine \"%.64s\" (want lmdb, memory or postgres)",
		    cfg->engine);
	}
	if (cfg->durability != STORE_DURABLE && cfg->durability != STORE_RELAXED) {
		free(s);
		return store_seterr(err, MQ_INVALID_ARGUMENT, "unknown durability mode %d",
		                    (int)cfg->durability);
	}
	s->cfg = *cfg;
	s->cfg.path = NULL; /* not kept: the caller's strings */
	s->cfg.pg_conninfo = NULL;
	s->cfg.pg_schema = NULL;
	s->lease_ms = cfg->default_lease_ms ? cfg->default_lease_ms : STORE_DEFAULT_LEASE_MS;
	if (s->lease_ms > STORE_MAX_LEASE_MS)
		s->lease_ms = STORE_MAX_LEASE_MS;
	s->max_attempts =
	    cfg->default_max_attempts ? cfg->default_max_attempts : STORE_DEFAULT_MAX_ATTEMPTS;
	o.path = cfg->path;
	o.map_size = cfg->map_size ? cfg->map_size : STORE_DEFAULT_MAP_SIZE;
	o.map_size_max = cfg->map_size_max ? cfg->map_size_max : STORE_DEFAULT_MAP_SIZE_MAX;
	o.relaxed = cfg->durability == STORE_RELAXED;
	o.conninfo = cfg->pg_conninfo;
	o.schema = cfg->pg_schema;
	s->txn.s = s;
	if ((st = s->ops->open(&s->kv, &o, err)) != MQ_OK) {
		free(s);
		return st;
	}
	if ((st = schema_check(s, err)) != MQ_OK) {
		store_close(s);
		return st;
	}
	*out = s;
	return MQ_OK;
}

void store_close(store *s)
{
	store_txn *t;

	if (!s)
		return;
	t = &s->txn;
	if (s->txn_open)
		store_abort(t);
	s->ops->close(s->kv);
	for (uint32_t i = 0; i < t->cap_ents; i++)
		free(t->ents[i]);
	free(t->ents);
	free(t->name_slot);
	free(t->name_gen);
	free(t->qid_slot);
	free(t->qid_gen);
	free(t->sp_ents);
	free(s->buf);
	free(s->hdrs);
	free(s);
}

const char *store_engine(const store *s)
{
	return s->ops->engine;
}

bool store_shared(const store *s)
{
	return s->ops->shared;
}

const char *store_durability_name(const store *s)
{
	return s->ops->durability(s->kv);
}

mq_status store_sync(store *s, store_err *err)
{
	store_err local;

	return s->ops->sync(s->kv, err ? err : &local);
}

void store_usage(const store *s, uint64_t *used_bytes, uint64_t *map_bytes)
{
	uint64_t u, m;

	s->ops->usage(s->kv, &u, &m);
	if (used_bytes)
		*used_bytes = u;
	if (map_bytes)
		*map_bytes = m;
}

/* ---- Transactions -------------------------------------------------------- */

/* reload_counters re-reads the id, token and queue id counters that other
 * processes of a shared engine may have moved: one scan of the meta
 * database (a handful of records). */
static mq_status reload_counters(store_txn *t, store_err *err)
{
	store *s = t->s;
	kv_val k, v;
	mq_status st;

	for (st = tx_seek(t, KV_META, "", 0, &k, &v, err); st == MQ_OK;
	     st = tx_next(t, KV_META, &k, &v, err)) {
		uint64_t x;

		if (v.len == 8)
			x = le64_get(v.data);
		else if (v.len == 4)
			x = le32_get(v.data);
		else
			continue;
#define META_IS(name) (k.len == sizeof(name) - 1 && memcmp(k.data, name, k.len) == 0)
		if (META_IS(META_NEXT_ID))
			s->next_id = x;
		else if (META_IS(META_NEXT_TOKEN))
			s->next_token = x;
		else if (META_IS(META_NEXT_QID))
			s->next_qid = (uint32_t)x;
#undef META_IS
	}
	return st == MQ_NOT_FOUND ? MQ_OK : st;
}

mq_status store_begin(store *s, store_txn **out, store_err *err)
{
	store_err local;
	store_txn *t = &s->txn;
	mq_status st;

	if (!err)
		err = &local;
	if (s->txn_open)
		return store_seterr(err, MQ_FAILED_PRECONDITION, "a transaction is already open");
	if ((st = s->ops->begin(s->kv, &t->kv, err)) != MQ_OK)
		return st;
	s->txn_open = true;
	t->failed = false;
	if (s->ops->shared && (st = reload_counters(t, err)) != MQ_OK) {
		store_abort(t);
		return st;
	}
	t->next_id = s->next_id;
	t->next_token = s->next_token;
	t->next_qid = s->next_qid;
	t->n_ents = 0;
	if (++t->gen == 0 && t->hcap) {
		memset(t->name_gen, 0, t->hcap * sizeof(uint32_t));
		memset(t->qid_gen, 0, t->hcap * sizeof(uint32_t));
		t->gen = 1;
	}
	*out = t;
	return MQ_OK;
}

/* txn_flush writes the dirty queue records and counters. */
static mq_status txn_flush(store_txn *t, store_err *err)
{
	store *s = t->s;
	uint8_t v[REC_QUEUE_SIZE_MAX];
	mq_status st;

	for (uint32_t i = 0; i < t->n_ents; i++) {
		qent *q = t->ents[i];
		size_t vlen;

		if (!q->dirty || q->deleted)
			continue;
		vlen = store_rec_queue_encode(v, &q->rec);
		if ((st = tx_put(t, KV_QUEUES, q->name, q->name_len, v, vlen, err)) != MQ_OK)
			return st;
		q->dirty = false;
	}
	if (t->next_id != s->next_id &&
	    (st = meta_put(t, META_NEXT_ID, t->next_id, 8, err)) != MQ_OK)
		return st;
	if (t->next_token != s->next_token &&
	    (st = meta_put(t, META_NEXT_TOKEN, t->next_token, 8, err)) != MQ_OK)
		return st;
	if (t->next_qid != s->next_qid &&
	    (st = meta_put(t, META_NEXT_QID, t->next_qid, 4, err)) != MQ_OK)
		return st;
	return MQ_OK;
}

mq_status store_commit(store_txn *t, store_err *err)
{
	store_err local;
	store *s;
	mq_status st;

	if (!err)
		err = &local;
	if (!t)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "no transaction");
	s = t->s;
	if (t->failed) {
		store_abort(t);
		return store_seterr(err, MQ_ABORTED,
		                    "the transaction had failed; nothing of it was kept");
	}
	if (t->sp_active && (st = store_release(t, err)) != MQ_OK) {
		store_abort(t);
		return st;
	}
	if ((st = txn_flush(t, err)) != MQ_OK) {
		store_abort(t);
		return st;
	}
	s->txn_open = false;
	if ((st = s->ops->commit(t->kv, err)) != MQ_OK)
		return st;
	s->next_id = t->next_id;
	s->next_token = t->next_token;
	s->next_qid = t->next_qid;
	return MQ_OK;
}

void store_abort(store_txn *t)
{
	if (!t || !t->s->txn_open)
		return;
	t->s->ops->abort(t->kv);
	t->sp_active = false;
	t->s->txn_open = false;
}

mq_status store_savepoint(store_txn *t, store_err *err)
{
	store_err local;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK)
		return st;
	if (t->sp_active)
		return store_seterr(err, MQ_FAILED_PRECONDITION, "a savepoint is already active");
	if (t->n_ents > t->sp_cap) {
		qent *p = realloc(t->sp_ents, t->n_ents * sizeof(*p));

		if (!p)
			return store_fail(t, err, MQ_RESOURCE_EXHAUSTED, "out of memory");
		t->sp_ents = p;
		t->sp_cap = t->n_ents;
	}
	if ((st = t->s->ops->savepoint(t->kv, err)) != MQ_OK) {
		t->failed = true;
		return st;
	}
	for (uint32_t i = 0; i < t->n_ents; i++)
		t->sp_ents[i] = *t->ents[i];
	t->sp_n_ents = t->n_ents;
	t->sp_next_id = t->next_id;
	t->sp_next_token = t->next_token;
	t->sp_next_qid = t->next_qid;
	t->sp_active = true;
	return MQ_OK;
}

mq_status store_release(store_txn *t, store_err *err)
{
	store_err local;
	mq_status st;

	if (!err)
		err = &local;
	if (!t || !t->sp_active)
		return store_seterr(err, MQ_FAILED_PRECONDITION, "no savepoint is active");
	t->sp_active = false;
	if ((st = t->s->ops->release(t->kv, err)) != MQ_OK)
		t->failed = true;
	return st;
}

void store_rollback(store_txn *t)
{
	if (!t || !t->sp_active)
		return;
	t->sp_active = false;
	t->s->ops->rollback(t->kv);
	for (uint32_t i = 0; i < t->sp_n_ents; i++)
		*t->ents[i] = t->sp_ents[i];
	t->n_ents = t->sp_n_ents;
	t->next_id = t->sp_next_id;
	t->next_token = t->sp_next_token;
	t->next_qid = t->sp_next_qid;
	/* Queues cached since the savepoint leave the lookup tables. */
	if (++t->gen == 0) {
		memset(t->name_gen, 0, t->hcap * sizeof(uint32_t));
		memset(t->qid_gen, 0, t->hcap * sizeof(uint32_t));
		t->gen = 1;
	}
	for (uint32_t i = 0; i < t->n_ents; i++)
		qc_index(t, i);
}

bool store_txn_failed(const store_txn *t)
{
	return t && t->failed;
}
