/* SPDX-License-Identifier: MIT */
/*
 * kv_mem.c: the in-memory key-value backend (engine "memory"). One
 * red-black tree (<bsd/sys/tree.h>) per database; keys and values are
 * copied in. A transaction keeps an undo log of its changes so that abort
 * restores exactly the state at begin; commit frees what the changes
 * replaced. Nothing is durable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libbsd's RB_GENERATE_STATIC uses __unused, which libbsd leaves
 * undefined on Linux (a kernel struct has a member of that name). */
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif
#include <bsd/sys/tree.h>

#include "kv.h"

typedef struct mem_node {
	RB_ENTRY(mem_node) entry;
	uint8_t *val;
	size_t vlen;
	size_t klen;
	const uint8_t *key; /* points into the node's own allocation, or a caller's key */
} mem_node;

static int mem_cmp(const mem_node *a, const mem_node *b)
{
	size_t n = a->klen < b->klen ? a->klen : b->klen;
	int c = n ? memcmp(a->key, b->key, n) : 0;

	if (c)
		return c;
	return a->klen < b->klen ? -1 : a->klen > b->klen;
}

RB_HEAD(mem_tree, mem_node);
RB_GENERATE_STATIC(mem_tree, mem_node, entry, mem_cmp)

/* undo_op says how to revert one change. */
typedef enum undo_op {
	UNDO_INSERTED, /* node was inserted: remove and free it */
	UNDO_REPLACED, /* node's value was replaced: old holds the previous one */
	UNDO_DELETED,  /* node was removed: put it back */
} undo_op;

typedef struct undo {
	undo_op op;
	kv_db db;
	mem_node *node;
	uint8_t *old;
	size_t old_len;
} undo;

struct kv_txn {
	kv_env *env;
	undo *log;
	size_t n, cap;
	mem_node *cur[KV_NDB]; /* the implicit cursors */
	bool cur_valid[KV_NDB];
	size_t sp; /* the savepoint: log entries before it stay on rollback */
};

struct kv_env {
	struct mem_tree trees[KV_NDB];
	struct kv_txn txn;
	bool in_txn;
};

static mq_status mem_nomem(store_err *err)
{
	snprintf(err->msg, sizeof(err->msg), "out of memory in the memory storage engine");
	return MQ_RESOURCE_EXHAUSTED;
}

static mq_status mem_open(kv_env **out, const kv_open_opts *o, store_err *err)
{
	kv_env *e = calloc(1, sizeof(*e));

	(void)o;
	if (!e)
		return mem_nomem(err);
	for (int i = 0; i < KV_NDB; i++)
		RB_INIT(&e->trees[i]);
	e->txn.env = e;
	*out = e;
	return MQ_OK;
}

static void node_free(mem_node *n)
{
	free(n->val);
	free(n);
}

static void mem_close(kv_env *e)
{
	if (!e)
		return;
	for (int i = 0; i < KV_NDB; i++) {
		mem_node *n, *nx;

		for (n = RB_MIN(mem_tree, &e->trees[i]); n; n = nx) {
			nx = RB_NEXT(mem_tree, &e->trees[i], n);
			RB_REMOVE(mem_tree, &e->trees[i], n);
			node_free(n);
		}
	}
	free(e->txn.log);
	free(e);
}

static const char *mem_durability(const kv_env *e)
{
	(void)e;
	return "none";
}

static mq_status mem_sync(kv_env *e, store_err *err)
{
	(void)e;
	(void)err;
	return MQ_OK;
}

static void mem_usage(const kv_env *e, uint64_t *used, uint64_t *map)
{
	(void)e;
	*used = 0;
	*map = 0;
}

static mq_status mem_begin(kv_env *e, kv_txn **out, store_err *err)
{
	if (e->in_txn) {
		snprintf(err->msg, sizeof(err->msg), "a transaction is already open");
		return MQ_FAILED_PRECONDITION;
	}
	e->in_txn = true;
	e->txn.n = 0;
	memset(e->txn.cur_valid, 0, sizeof(e->txn.cur_valid));
	*out = &e->txn;
	return MQ_OK;
}

static mq_status mem_commit(kv_txn *t, store_err *err)
{
	(void)err;
	for (size_t i = 0; i < t->n; i++) {
		undo *u = &t->log[i];

		if (u->op == UNDO_REPLACED)
			free(u->old);
		else if (u->op == UNDO_DELETED)
			node_free(u->node);
	}
	t->n = 0;
	t->env->in_txn = false;
	return MQ_OK;
}

/* undo_to reverts the log's entries down to (not including) entry n. */
static void undo_to(kv_txn *t, size_t n)
{
	kv_env *e = t->env;

	while (t->n > n) {
		undo *u = &t->log[--t->n];
		struct mem_tree *tree = &e->trees[u->db];

		switch (u->op) {
		case UNDO_INSERTED:
			RB_REMOVE(mem_tree, tree, u->node);
			node_free(u->node);
			break;
		case UNDO_REPLACED:
			free(u->node->val);
			u->node->val = u->old;
			u->node->vlen = u->old_len;
			break;
		case UNDO_DELETED:
			RB_INSERT(mem_tree, tree, u->node);
			break;
		}
	}
	memset(t->cur_valid, 0, sizeof(t->cur_valid));
}

static void mem_abort(kv_txn *t)
{
	undo_to(t, 0);
	t->env->in_txn = false;
}

static mq_status mem_savepoint(kv_txn *t, store_err *err)
{
	(void)err;
	t->sp = t->n;
	memset(t->cur_valid, 0, sizeof(t->cur_valid));
	return MQ_OK;
}

static mq_status mem_release(kv_txn *t, store_err *err)
{
	(void)err;
	memset(t->cur_valid, 0, sizeof(t->cur_valid));
	return MQ_OK;
}

static void mem_rollback(kv_txn *t)
{
	undo_to(t, t->sp);
}

static mq_status log_add(kv_txn *t, undo_op op, kv_db db, mem_node *n, store_err *err)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		undo *l = realloc(t->log, cap * sizeof(*l));

		if (!l)
			return mem_nomem(err);
		t->log = l;
		t->cap = cap;
	}
	t->log[t->n++] = (undo){.op = op, .db = db, .node = n};
	return MQ_OK;
}

static mem_node *mem_find(kv_txn *t, kv_db db, const void *k, size_t klen)
{
	mem_node probe = {.key = k, .klen = klen};

	return RB_FIND(mem_tree, &t->env->trees[db], &probe);
}

static mq_status mem_get(kv_txn *t, kv_db db, const void *k, size_t klen, kv_val *v, store_err *err)
{
	mem_node *n = mem_find(t, db, k, klen);

	(void)err;
	if (!n)
		return MQ_NOT_FOUND;
	v->data = n->val;
	v->len = n->vlen;
	return MQ_OK;
}

static uint8_t *val_dup(const void *v, size_t vlen)
{
	uint8_t *p = malloc(vlen ? vlen : 1);

	if (p && vlen)
		memcpy(p, v, vlen);
	return p;
}

static mq_status mem_put(kv_txn *t, kv_db db, const void *k, size_t klen, const void *v,
                         size_t vlen, store_err *err)
{
	mem_node *n = mem_find(t, db, k, klen);
	uint8_t *val;
	mq_status rc;

	t->cur_valid[db] = false;
	val = val_dup(v, vlen);
	if (!val)
		return mem_nomem(err);
	if (n) {
		if ((rc = log_add(t, UNDO_REPLACED, db, n, err)) != MQ_OK) {
			free(val);
			return rc;
		}
		t->log[t->n - 1].old = n->val;
		t->log[t->n - 1].old_len = n->vlen;
		n->val = val;
		n->vlen = vlen;
		return MQ_OK;
	}
	n = malloc(sizeof(*n) + klen);
	if (!n) {
		free(val);
		return mem_nomem(err);
	}
	if ((rc = log_add(t, UNDO_INSERTED, db, n, err)) != MQ_OK) {
		free(n);
		free(val);
		return rc;
	}
	memcpy(n + 1, k, klen);
	n->key = (const uint8_t *)(n + 1);
	n->klen = klen;
	n->val = val;
	n->vlen = vlen;
	RB_INSERT(mem_tree, &t->env->trees[db], n);
	return MQ_OK;
}

static mq_status mem_del(kv_txn *t, kv_db db, const void *k, size_t klen, store_err *err)
{
	mem_node *n = mem_find(t, db, k, klen);
	mq_status rc;

	t->cur_valid[db] = false;
	if (!n)
		return MQ_NOT_FOUND;
	if ((rc = log_add(t, UNDO_DELETED, db, n, err)) != MQ_OK)
		return rc;
	RB_REMOVE(mem_tree, &t->env->trees[db], n);
	return MQ_OK;
}

static mq_status cur_out(kv_txn *t, kv_db db, mem_node *n, kv_val *key, kv_val *val)
{
	t->cur[db] = n;
	t->cur_valid[db] = n != NULL;
	if (!n)
		return MQ_NOT_FOUND;
	key->data = n->key;
	key->len = n->klen;
	val->data = n->val;
	val->len = n->vlen;
	return MQ_OK;
}

static mq_status mem_seek(kv_txn *t, kv_db db, const void *k, size_t klen, kv_val *key, kv_val *val,
                          store_err *err)
{
	mem_node probe = {.key = k, .klen = klen};
	mem_node *n;

	(void)err;
	if (klen == 0)
		n = RB_MIN(mem_tree, &t->env->trees[db]);
	else
		n = RB_NFIND(mem_tree, &t->env->trees[db], &probe);
	return cur_out(t, db, n, key, val);
}

static mq_status mem_next(kv_txn *t, kv_db db, kv_val *key, kv_val *val, store_err *err)
{
	if (!t->cur_valid[db]) {
		snprintf(err->msg, sizeof(err->msg), "memory engine: cursor used after a write");
		return MQ_INTERNAL;
	}
	return cur_out(t, db, RB_NEXT(mem_tree, &t->env->trees[db], t->cur[db]), key, val);
}

const kv_ops store_kv_mem = {
    .engine = "memory",
    .open = mem_open,
    .close = mem_close,
    .durability = mem_durability,
    .sync = mem_sync,
    .usage = mem_usage,
    .begin = mem_begin,
    .commit = mem_commit,
    .abort = mem_abort,
    .get = mem_get,
    .put = mem_put,
    .del = mem_del,
    .seek = mem_seek,
    .next = mem_next,
    .savepoint = mem_savepoint,
    .release = mem_release,
    .rollback = mem_rollback,
};
