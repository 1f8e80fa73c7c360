/* SPDX-License-Identifier: MIT */
/*
 * topics.c: topics and their subscriptions (pubsub.h): create, delete,
 * get, list, subscription create and delete, publish (one store_push per
 * subscription queue, in the caller's transaction), and the hook that
 * detaches a subscription whose queue is deleted. Formats in
 * record_pubsub.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "pubsub.h"
#include "record_pubsub.h"
#include "topics.h"

static mq_status topic_name_check(const char *name, store_err *err)
{
	if (!mq_name_valid(name))
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "invalid topic name \"%.*s\": a name is 1 to %d characters of "
		                    "[A-Za-z0-9._-]",
		                    name ? 64 : 0, name ? name : "", MQ_NAME_MAX);
	return MQ_OK;
}

static mq_status topic_read(store_txn *t, const char *name, rec_topic *r, store_err *err)
{
	kv_val v;
	mq_status st = tx_get(t, KV_TOPICS, name, strlen(name), &v, err);

	if (st == MQ_NOT_FOUND)
		return store_seterr(err, MQ_NOT_FOUND, "topic %s not found", name);
	if (st != MQ_OK)
		return st;
	if (!store_rec_topic_decode(r, v.data, v.len))
		return store_fail(t, err, MQ_DATA_LOSS, "topic %s record is corrupted", name);
	return MQ_OK;
}

static mq_status topic_write(store_txn *t, const char *name, const rec_topic *r, store_err *err)
{
	uint8_t v[REC_TOPIC_SIZE];

	store_rec_topic_encode(v, r);
	return tx_put(t, KV_TOPICS, name, strlen(name), v, sizeof(v), err);
}

/* sub_next finds the subscription of topic after queue name `after`
 * ("" = the first) and copies its name into out (MQ_NAME_MAX + 1 bytes);
 * MQ_NOT_FOUND when there is none. */
static mq_status sub_next(store_txn *t, const char *topic, const char *after, char *out,
                          uint64_t *created_ms, store_err *err)
{
	uint8_t k[KEY_SUB_MAX + 1];
	size_t tl = strlen(topic), kl;
	kv_val key, val;
	mq_status st;

	kl = key_sub(k, topic, tl, after, strlen(after));
	if (after[0])
		k[kl++] = 0; /* strictly after: names hold no NUL */
	st = tx_seek(t, KV_SUBS, k, kl, &key, &val, err);
	if (st != MQ_OK)
		return st;
	if (key.len <= tl + 1 || memcmp(key.data, topic, tl) != 0 ||
	    ((const uint8_t *)key.data)[tl] != 0)
		return MQ_NOT_FOUND;
	if (key.len - tl - 1 > MQ_NAME_MAX || val.len != 8)
		return store_fail(t, err, MQ_DATA_LOSS, "a subscription of topic %s is corrupted",
		                  topic);
	memcpy(out, (const uint8_t *)key.data + tl + 1, key.len - tl - 1);
	out[key.len - tl - 1] = 0;
	if (created_ms)
		*created_ms = le64_get(val.data);
	return MQ_OK;
}

/* sub_detach removes subscription queue of topic (record r, written). */
static mq_status sub_detach(store_txn *t, const char *topic, rec_topic *r, const char *queue,
                            store_err *err)
{
	uint8_t k[KEY_SUB_MAX];
	size_t kl = key_sub(k, topic, strlen(topic), queue, strlen(queue));
	mq_status st;

	if ((st = store_del_must(t, KV_SUBS, k, kl, err)) != MQ_OK ||
	    (st = store_del_must(t, KV_SUB_TOPIC, queue, strlen(queue), err)) != MQ_OK)
		return st;
	if (r->n_subs)
		r->n_subs--;
	return MQ_OK;
}

mq_status store_topic_queue_deleted(store_txn *t, const char *queue, store_err *err)
{
	char topic[MQ_NAME_MAX + 1];
	rec_topic r;
	kv_val v;
	mq_status st;

	st = tx_get(t, KV_SUB_TOPIC, queue, strlen(queue), &v, err);
	if (st == MQ_NOT_FOUND)
		return MQ_OK;
	if (st != MQ_OK)
		return st;
	if (v.len == 0 || v.len > MQ_NAME_MAX)
		return store_fail(t, err, MQ_DATA_LOSS, "the topic of queue %s is corrupted",
		                  queue);
	memcpy(topic, v.data, v.len);
	topic[v.len] = 0;
	st = topic_read(t, topic, &r, err);
	if (st == MQ_NOT_FOUND)
		return store_fail(t, err, MQ_DATA_LOSS, "queue %s names a missing topic %s", queue,
		                  topic);
	if (st != MQ_OK || (st = sub_detach(t, topic, &r, queue, err)) != MQ_OK)
		return st;
	return topic_write(t, topic, &r, err);
}

mq_status store_topic_create(store_txn *t, const char *name, bool if_not_exists, bool *created,
                             store_err *err)
{
	store_err local;
	rec_topic r;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK || (st = topic_name_check(name, err)) != MQ_OK)
		return st;
	st = topic_read(t, name, &r, err);
	if (st == MQ_OK) {
		if (!if_not_exists)
			return store_seterr(err, MQ_ALREADY_EXISTS, "topic %s already exists",
			                    name);
		if (created)
			*created = false;
		return MQ_OK;
	}
	if (st != MQ_NOT_FOUND)
		return st;
	r = (rec_topic){.created_ms = t->now};
	if ((st = topic_write(t, name, &r, err)) != MQ_OK)
		return st;
	if (created)
		*created = true;
	return MQ_OK;
}

mq_status store_topic_delete(store_txn *t, const char *name, uint32_t *detached, store_err *err)
{
	store_err local;
	char sub[MQ_NAME_MAX + 1];
	uint32_t n = 0;
	rec_topic r;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = topic_name_check(name, err)) != MQ_OK ||
	    (st = topic_read(t, name, &r, err)) != MQ_OK)
		return st;
	while ((st = sub_next(t, name, "", sub, NULL, err)) == MQ_OK) {
		if ((st = sub_detach(t, name, &r, sub, err)) != MQ_OK)
			return st;
		n++;
	}
	if (st != MQ_NOT_FOUND)
		return st;
	if ((st = store_del_must(t, KV_TOPICS, name, strlen(name), err)) != MQ_OK)
		return st;
	if (detached)
		*detached = n;
	return MQ_OK;
}

/* topic_view collects the subscriptions of topic and passes it to cb. */
static mq_status topic_view(store_txn *t, const char *name, const rec_topic *r, store_topic_cb cb,
                            void *arg, int *stop, store_err *err)
{
	store_sub_info *subs = NULL;
	size_t n = 0, cap = 0;
	char sub[MQ_NAME_MAX + 1] = "";
	uint64_t created;
	store_topic_info info;
	mq_status st;

	while ((st = sub_next(t, name, sub, sub, &created, err)) == MQ_OK) {
		qent *q;

		if (n == cap) {
			size_t nc = cap ? cap * 2 : 8;
			store_sub_info *p = realloc(subs, nc * sizeof(*p));

			if (!p) {
				free(subs);
				return store_fail(t, err, MQ_RESOURCE_EXHAUSTED, "out of memory");
			}
			subs = p;
			cap = nc;
		}
		st = store_q_get(t, sub, &q, err);
		if (st != MQ_OK) {
			free(subs);
			return st == MQ_NOT_FOUND ? store_fail(t, err, MQ_DATA_LOSS,
			                                       "subscription %s of topic %s has no "
			                                       "queue",
			                                       sub, name)
			                          : st;
		}
		store_queue_info qi;

		store_q_info(q, &qi);
		memset(&subs[n], 0, sizeof(subs[n]));
		memcpy(subs[n].name, qi.name, sizeof(subs[n].name));
		subs[n].config = qi.config; /* every field, as GetQueue shows it */
		subs[n].stats = qi.stats;
		subs[n].created_ms = created;
		n++;
	}
	if (st != MQ_NOT_FOUND) {
		free(subs);
		return st;
	}
	info = (store_topic_info){
	    .name = name,
	    .created_ms = r->created_ms,
	    .published_total = r->published_total,
	    .copies_total = r->copies_total,
	    .n_subs = n,
	    .subs = subs,
	};
	if (cb(arg, &info) != 0 && stop)
		*stop = 1;
	free(subs);
	return MQ_OK;
}

mq_status store_topic_get(store_txn *t, const char *name, store_topic_cb cb, void *arg,
                          store_err *err)
{
	store_err local;
	rec_topic r;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = topic_name_check(name, err)) != MQ_OK ||
	    (st = topic_read(t, name, &r, err)) != MQ_OK)
		return st;
	if (!cb)
		return MQ_OK;
	return topic_view(t, name, &r, cb, arg, NULL, err);
}

mq_status store_topic_list(store_txn *t, const char *after, uint32_t limit, store_topic_cb cb,
                           void *arg, bool *more, store_err *err)
{
	store_err local;
	char key[MQ_NAME_MAX + 2], name[MQ_NAME_MAX + 1];
	size_t klen = 0;
	uint32_t count = 0;
	int stop = 0;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK)
		return st;
	if (!cb)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "store_topic_list: no callback");
	if (more)
		*more = false;
	if (after && after[0]) {
		klen = strlen(after);
		if (klen > MQ_NAME_MAX)
			return store_seterr(err, MQ_INVALID_ARGUMENT,
			                    "list: after is longer than a name");
		memcpy(key, after, klen);
		key[klen++] = 0;
	}
	for (;;) {
		kv_val k, v;
		rec_topic r;

		st = tx_seek(t, KV_TOPICS, key, klen, &k, &v, err);
		if (st == MQ_NOT_FOUND)
			break;
		if (st != MQ_OK)
			return st;
		if (stop || (limit && count == limit)) {
			if (more)
				*more = true;
			break;
		}
		if (k.len == 0 || k.len > MQ_NAME_MAX)
			return store_fail(t, err, MQ_DATA_LOSS, "a topic name is corrupted");
		memcpy(name, k.data, k.len);
		name[k.len] = 0;
		if (!store_rec_topic_decode(&r, v.data, v.len))
			return store_fail(t, err, MQ_DATA_LOSS, "topic %s record is corrupted",
			                  name);
		if ((st = topic_view(t, name, &r, cb, arg, &stop, err)) != MQ_OK)
			return st;
		count++;
		memcpy(key, name, k.len);
		key[k.len] = 0;
		klen = k.len + 1;
	}
	return MQ_OK;
}

mq_status store_sub_create(store_txn *t, const char *topic, const char *name,
                           const store_queue_config *cfg, bool if_not_exists, store_sub_info *info,
                           bool *created, store_err *err)
{
	store_err local;
	store_queue_info qi;
	uint8_t k[KEY_SUB_MAX], cv[8];
	size_t kl;
	rec_topic r;
	kv_val v;
	bool qcreated = false;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = topic_name_check(topic, err)) != MQ_OK ||
	    (st = store_name_check(name, err)) != MQ_OK ||
	    (st = topic_read(t, topic, &r, err)) != MQ_OK)
		return st;
	kl = key_sub(k, topic, strlen(topic), name, strlen(name));
	st = tx_get(t, KV_SUBS, k, kl, &v, err);
	if (st == MQ_OK) {
		if (!if_not_exists)
			return store_seterr(err, MQ_ALREADY_EXISTS,
			                    "subscription %s of topic %s already exists", name,
			                    topic);
		if ((st = store_queue_get(t, name, &qi, err)) != MQ_OK)
			return st == MQ_NOT_FOUND ? store_fail(t, err, MQ_DATA_LOSS,
			                                       "subscription %s has no queue", name)
			                          : st;
		if (created)
			*created = false;
		goto done;
	}
	if (st != MQ_NOT_FOUND)
		return st;
	/* A new queue, never an existing one: its messages would not be the
	 * topic's. */
	if ((st = store_queue_create(t, name, cfg, false, &qi, &qcreated, err)) != MQ_OK)
		return st == MQ_ALREADY_EXISTS
		           ? store_seterr(err, MQ_ALREADY_EXISTS,
		                          "a queue named %s already exists; a subscription creates "
		                          "its own queue",
		                          name)
		           : st;
	le64_put(cv, t->now);
	if ((st = tx_put(t, KV_SUBS, k, kl, cv, sizeof(cv), err)) != MQ_OK ||
	    (st = tx_put(t, KV_SUB_TOPIC, name, strlen(name), topic, strlen(topic), err)) != MQ_OK)
		return st;
	r.n_subs++;
	if ((st = topic_write(t, topic, &r, err)) != MQ_OK)
		return st;
	if (created)
		*created = true;
done:
	if (info) {
		memset(info, 0, sizeof(*info));
		memcpy(info->name, qi.name, sizeof(info->name));
		info->config = qi.config;
		info->stats = qi.stats;
		st = tx_get(t, KV_SUBS, k, kl, &v, err);
		if (st != MQ_OK || v.len != 8)
			return store_fail(t, err, MQ_DATA_LOSS, "subscription %s is corrupted",
			                  name);
		info->created_ms = le64_get(v.data);
	}
	return MQ_OK;
}

mq_status store_sub_delete(store_txn *t, const char *topic, const char *name, store_err *err)
{
	store_err local;
	uint8_t k[KEY_SUB_MAX];
	size_t kl;
	rec_topic r;
	kv_val v;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = topic_name_check(topic, err)) != MQ_OK ||
	    (st = store_name_check(name, err)) != MQ_OK ||
	    (st = topic_read(t, topic, &r, err)) != MQ_OK)
		return st;
	kl = key_sub(k, topic, strlen(topic), name, strlen(name));
	st = tx_get(t, KV_SUBS, k, kl, &v, err);
	if (st == MQ_NOT_FOUND)
		return store_seterr(err, MQ_NOT_FOUND, "topic %s has no subscription %s", topic,
		                    name);
	if (st != MQ_OK)
		return st;
	/* Deleting the queue detaches it (store_topic_queue_deleted). */
	st = store_queue_delete(t, name, err);
	if (st == MQ_NOT_FOUND)
		return store_fail(t, err, MQ_DATA_LOSS, "subscription %s has no queue", name);
	return st;
}

/* pub_copy is one copy stored by a publish. */
typedef struct pub_copy {
	char queue[MQ_NAME_MAX + 1];
	store_push_result res;
} pub_copy;

/* publish_undo takes back the copies done[0..n) after a later copy failed
 * with request error st (a queue limit, say): new copies are deleted and
 * the counters put back, so the publish stores nothing. (A REPLACE dedup
 * already applied to an earlier subscription's waiting job stays.) */
static mq_status publish_undo(store_txn *t, const pub_copy *done, uint32_t n, const char *failed,
                              mq_status st, store_err *err)
{
	store_err why = *err, e2;

	for (uint32_t i = 0; i < n; i++) {
		qent *q;
		mq_status s2;

		if ((s2 = store_q_get(t, done[i].queue, &q, &e2)) != MQ_OK) {
			*err = e2;
			return store_fail(t, err, s2, "publish: cannot undo: %s", e2.msg);
		}
		if (done[i].res.duplicate) {
			q->rec.stats.deduplicated_total--;
		} else {
			if ((s2 = store_message_delete(t, done[i].queue, done[i].res.id, NULL,
			                               &e2)) != MQ_OK) {
				*err = e2;
				return store_fail(t, err, s2, "publish: cannot undo: %s", e2.msg);
			}
			q->rec.stats.pushed_total--;
		}
		q->dirty = true;
	}
	snprintf(err->msg, sizeof(err->msg), "publish: subscription %.64s: %.150s", failed,
	         why.msg);
	return st;
}

mq_status store_publish(store_txn *t, const char *topic, const store_push_msg *m,
                        store_publish_cb cb, void *arg, uint32_t *copies, store_err *err)
{
	store_err local;
	char sub[MQ_NAME_MAX + 1] = "";
	pub_copy *done = NULL;
	uint32_t n = 0, cap = 0;
	rec_topic r;
	mq_status st;

	if (!err)
		err = &local;
	if (copies)
		*copies = 0;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = topic_name_check(topic, err)) != MQ_OK ||
	    (st = topic_read(t, topic, &r, err)) != MQ_OK)
		return st;
	/* Check the message the way store_push will, before the first copy:
	 * a request error must store no copy at all. */
	if (!m)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "publish: no message");
	if (m->payload_len && !m->payload)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "publish: payload is NULL");
	if (m->payload_len > UINT32_MAX / 2)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "publish: message too large");
	if (m->dedup_mode != STORE_DEDUP_IGNORE && m->dedup_mode != STORE_DEDUP_REPLACE)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "publish: unknown dedup mode %d",
		                    (int)m->dedup_mode);
	if (m->dedup_key && strlen(m->dedup_key) > STORE_DEDUP_MAX)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "publish: the dedup key is longer than %u bytes",
		                    STORE_DEDUP_MAX);
	if (m->type && strlen(m->type) > STORE_TYPE_MAX)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "publish: the type is longer than %u bytes", STORE_TYPE_MAX);
	if (m->n_headers && !m->headers)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "publish: headers are NULL");
	for (size_t i = 0; i < m->n_headers; i++)
		if (!m->headers[i].key || !m->headers[i].key[0] || !m->headers[i].value)
			return store_seterr(err, MQ_INVALID_ARGUMENT,
			                    "publish: header %zu has no key or value", i);
	while ((st = sub_next(t, topic, sub, sub, NULL, err)) == MQ_OK) {
		pub_copy *c;

		if (n == cap) {
			uint32_t nc = cap ? cap * 2 : 8;
			pub_copy *p = realloc(done, nc * sizeof(*p));

			if (!p) {
				free(done);
				return store_fail(t, err, MQ_RESOURCE_EXHAUSTED, "out of memory");
			}
			done = p;
			cap = nc;
		}
		c = &done[n];
		memcpy(c->queue, sub, sizeof(c->queue));
		st = store_push(t, sub, false, m, &c->res, err);
		if (st != MQ_OK) {
			if (!store_txn_failed(t))
				st = publish_undo(t, done, n, sub, st, err);
			free(done);
			return st;
		}
		n++;
	}
	if (st != MQ_NOT_FOUND) {
		free(done);
		return st;
	}
	for (uint32_t i = 0; cb && i < n; i++)
		cb(arg, done[i].queue, &done[i].res);
	free(done);
	if (st != MQ_NOT_FOUND)
		return st;
	r.published_total++;
	r.copies_total += n;
	if ((st = topic_write(t, topic, &r, err)) != MQ_OK)
		return st;
	if (copies)
		*copies = n;
	return MQ_OK;
}
