/* SPDX-License-Identifier: MIT */
/*
 * schedules.c: recurring schedules (pubsub.h): create, get, list, pause,
 * resume, delete, and the tick that fires due schedules through
 * store_push, in the caller's transaction. Formats in record_pubsub.h;
 * cron evaluation in cron.c. Finding due schedules reads the first keys of
 * the due index (no scan); each firing is a few O(log n) steps.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "internal.h"
#include "pubsub.h"
#include "record_pubsub.h"

/* The most slots one firing walks to count the missed ones (cron); past
 * that the count stops growing (a year of an every-minute schedule is
 * about 526000 slots). */
#define SCHED_CATCHUP_MAX 10000000u

/* sched_buf is a schedule record copied out of the store: pointers of the
 * decoded record stay valid across writes. */
typedef struct sched_buf {
	uint8_t *data;
	rec_sched r;
} sched_buf;

static mq_status sched_name_check(const char *what, const char *name, store_err *err)
{
	if (!mq_name_valid(name))
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "invalid %s name \"%.*s\": a name is 1 to %d characters of "
		                    "[A-Za-z0-9._-]",
		                    what, name ? 64 : 0, name ? name : "", MQ_NAME_MAX);
	return MQ_OK;
}

/* sched_read reads and copies schedule name: NOT_FOUND (message set) when
 * absent. The caller frees b->data. */
static mq_status sched_read(store_txn *t, const char *name, sched_buf *b, store_err *err)
{
	kv_val v;
	mq_status st;

	b->data = NULL;
	st = tx_get(t, KV_SCHEDULES, name, strlen(name), &v, err);
	if (st == MQ_NOT_FOUND)
		return store_seterr(err, MQ_NOT_FOUND, "schedule %s not found", name);
	if (st != MQ_OK)
		return st;
	if (!(b->data = malloc(v.len ? v.len : 1)))
		return store_fail(t, err, MQ_RESOURCE_EXHAUSTED, "out of memory");
	memcpy(b->data, v.data, v.len);
	if (!store_rec_sched_decode(&b->r, b->data, v.len)) {
		free(b->data);
		b->data = NULL;
		return store_fail(t, err, MQ_DATA_LOSS, "schedule %s record is corrupted", name);
	}
	return MQ_OK;
}

static mq_status sched_write(store_txn *t, const char *name, const rec_sched *r,
                             const store_header *h, size_t nh, store_err *err)
{
	size_t n = store_rec_sched_size(r, h, nh);
	uint8_t *buf;

	if (n == 0)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "schedule: template too large");
	if (!(buf = store_scratch(t, n, err)))
		return MQ_RESOURCE_EXHAUSTED;
	store_rec_sched_encode(buf, r, h, nh);
	return tx_put(t, KV_SCHEDULES, name, strlen(name), buf, n, err);
}

static mq_status due_put(store_txn *t, const char *name, uint64_t due, store_err *err)
{
	uint8_t k[KEY_SCHED_DUE_MAX];
	size_t kl = key_sched_due(k, due, name, strlen(name));

	return tx_put(t, KV_SCHED_DUE, k, kl, "", 0, err);
}

static mq_status due_del(store_txn *t, const char *name, uint64_t due, store_err *err)
{
	uint8_t k[KEY_SCHED_DUE_MAX];
	size_t kl = key_sched_due(k, due, name, strlen(name));

	return store_del_must(t, KV_SCHED_DUE, k, kl, err);
}

/* sched_view passes a decoded record to cb. */
static mq_status sched_view(store_txn *t, const char *name, const rec_sched *r,
                            store_schedule_cb cb, void *arg, int *stop, store_err *err)
{
	store_schedule_info info;
	store_header *h = NULL;

	if (!cb)
		return MQ_OK;
	if (r->n_headers) {
		if (!(h = store_hdr_scratch(t, r->n_headers, err)))
			return MQ_RESOURCE_EXHAUSTED;
		if (!store_rec_sched_headers(r, h))
			return store_fail(t, err, MQ_DATA_LOSS, "schedule %s headers are corrupted",
			                  name);
	}
	info = (store_schedule_info){
	    .name = name,
	    .queue = r->queue,
	    .cron = r->kind == REC_SCHED_CRON ? r->cron : "",
	    .time_zone = r->tz,
	    .interval_ms = r->kind == REC_SCHED_INTERVAL ? r->interval_ms : 0,
	    .paused = (r->flags & REC_SCHED_PAUSED) != 0,
	    .created_ms = r->created_ms,
	    .next_ms = r->next_ms,
	    .last_slot_ms = r->last_slot_ms,
	    .last_fired_ms = r->last_fired_ms,
	    .last_id = r->last_id,
	    .fired_total = r->fired_total,
	    .missed_total = r->missed_total,
	    .last_error = r->error,
	    .msg =
	        {
	            .payload = r->payload,
	            .payload_len = r->payload_len,
	            .dedup_key = r->dedup,
	            .dedup_mode = (store_dedup_mode)r->dedup_mode,
	            .delay_ms = r->delay_ms,
	            .priority = r->priority,
	            .type = r->type,
	            .headers = h,
	            .n_headers = r->n_headers,
	        },
	};
	if (cb(arg, &info) != 0 && stop)
		*stop = 1;
	return MQ_OK;
}

/* sched_next returns the first slot of r strictly after `after`, or
 * UINT64_MAX when there is none. */
static uint64_t sched_next(const rec_sched *r, const cron_expr *ce, uint64_t after)
{
	uint64_t k;

	if (r->kind == REC_SCHED_CRON)
		return cron_next(ce, r->tz, after);
	if (after < r->anchor_ms)
		return r->anchor_ms;
	k = (after - r->anchor_ms) / r->interval_ms + 1;
	if (k > (UINT64_MAX - 1 - r->anchor_ms) / r->interval_ms)
		return UINT64_MAX;
	return r->anchor_ms + k * r->interval_ms;
}

static mq_status sched_cron(const rec_sched *r, cron_expr *ce, store_txn *t, store_err *err)
{
	char why[128];

	if (r->kind != REC_SCHED_CRON)
		return MQ_OK;
	if (!cron_parse(r->cron, ce, why, sizeof(why)))
		return store_fail(t, err, MQ_DATA_LOSS, "a stored cron expression is corrupted: %s",
		                  why);
	return MQ_OK;
}

/* ---- create, get, list, pause, resume, delete ---------------------------- */

static mq_status template_check(const store_push_msg *m, store_err *err)
{
	size_t dl = m->dedup_key ? strlen(m->dedup_key) : 0;

	if (m->payload_len && !m->payload)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "schedule: payload is NULL");
	if (m->payload_len > UINT32_MAX / 2)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "schedule: payload too large");
	if (m->dedup_mode != STORE_DEDUP_IGNORE && m->dedup_mode != STORE_DEDUP_REPLACE)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "schedule: unknown dedup mode %d",
		                    (int)m->dedup_mode);
	if (dl > STORE_DEDUP_MAX || (m->dedup_key && strstr(m->dedup_key, STORE_SCHED_SLOT_TAG) &&
	                             dl - strlen(STORE_SCHED_SLOT_TAG) + 20 > STORE_DEDUP_MAX))
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "schedule: the dedup key is longer than %u bytes (with {slot} "
		                    "replaced by up to 20 digits)",
		                    STORE_DEDUP_MAX);
	if (m->type && strlen(m->type) > STORE_TYPE_MAX)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "schedule: the type is longer than %u bytes", STORE_TYPE_MAX);
	if (m->n_headers && !m->headers)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "schedule: headers are NULL");
	if (m->n_headers > 1000)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "schedule: more than 1000 headers");
	for (size_t i = 0; i < m->n_headers; i++)
		if (!m->headers[i].key || !m->headers[i].key[0] || !m->headers[i].value)
			return store_seterr(err, MQ_INVALID_ARGUMENT,
			                    "schedule: header %zu has no key or value", i);
	return MQ_OK;
}

mq_status store_schedule_create(store_txn *t, const char *name, const store_schedule_spec *spec,
                                bool auto_create, bool if_not_exists, store_schedule_cb cb,
                                void *arg, bool *created, store_err *err)
{
	store_err local;
	const char *cron, *tz;
	char why[STORE_ERR_MAX - 64];
	cron_expr ce = {0};
	rec_sched r;
	sched_buf b;
	kv_val v;
	qent *q;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = sched_name_check("schedule", name, err)) != MQ_OK)
		return st;
	if (!spec)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "schedule: no spec");
	if ((st = sched_name_check("queue", spec->queue, err)) != MQ_OK ||
	    (st = template_check(&spec->msg, err)) != MQ_OK)
		return st;
	cron = spec->cron ? spec->cron : "";
	tz = spec->time_zone ? spec->time_zone : "";
	if (cron[0] && spec->interval_ms)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "schedule: give a cron expression or an interval, not both");
	if (!cron[0] && !spec->interval_ms)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "schedule: a cron expression or an interval is required");
	if (cron[0]) {
		if (!cron_parse(cron, &ce, why, sizeof(why)))
			return store_seterr(err, MQ_INVALID_ARGUMENT, "schedule: %s", why);
		if (!cron_tz_valid(tz, why, sizeof(why)))
			return store_seterr(err, MQ_INVALID_ARGUMENT, "schedule: %s", why);
	} else {
		if (tz[0])
			return store_seterr(err, MQ_INVALID_ARGUMENT,
			                    "schedule: a time zone applies to cron schedules only");
		if (spec->interval_ms < STORE_SCHED_MIN_MS ||
		    spec->interval_ms > STORE_SCHED_MAX_MS)
			return store_seterr(err, MQ_INVALID_ARGUMENT,
			                    "schedule: interval_ms %" PRIu64
			                    " is out of range (%u ms to 366 days)",
			                    spec->interval_ms, STORE_SCHED_MIN_MS);
	}
	st = tx_get(t, KV_SCHEDULES, name, strlen(name), &v, err);
	if (st == MQ_OK) {
		if (!if_not_exists)
			return store_seterr(err, MQ_ALREADY_EXISTS, "schedule %s already exists",
			                    name);
		if (created)
			*created = false;
		return store_schedule_get(t, name, cb, arg, err);
	}
	if (st != MQ_NOT_FOUND)
		return st;
	st = store_q_get(t, spec->queue, &q, err);
	if (st == MQ_NOT_FOUND && auto_create)
		st = MQ_OK; /* created when the schedule first fires */
	if (st != MQ_OK)
		return st;
	r = (rec_sched){
	    .kind = cron[0] ? REC_SCHED_CRON : REC_SCHED_INTERVAL,
	    .flags = spec->paused ? REC_SCHED_PAUSED : 0,
	    .dedup_mode = (uint8_t)spec->msg.dedup_mode,
	    .priority = spec->msg.priority,
	    .interval_ms = spec->interval_ms,
	    .anchor_ms = t->now,
	    .created_ms = t->now,
	    .delay_ms = spec->msg.delay_ms,
	    .queue = spec->queue,
	    .queue_len = (uint32_t)strlen(spec->queue),
	    .cron = cron,
	    .cron_len = (uint32_t)strlen(cron),
	    .tz = tz,
	    .tz_len = (uint32_t)strlen(tz),
	    .type = spec->msg.type ? spec->msg.type : "",
	    .type_len = spec->msg.type ? (uint32_t)strlen(spec->msg.type) : 0,
	    .dedup = spec->msg.dedup_key ? spec->msg.dedup_key : "",
	    .dedup_len = spec->msg.dedup_key ? (uint32_t)strlen(spec->msg.dedup_key) : 0,
	    .error = "",
	    .payload = spec->msg.payload,
	    .payload_len = (uint32_t)spec->msg.payload_len,
	};
	if (!spec->paused) {
		r.next_ms = sched_next(&r, &ce, t->now);
		if (r.next_ms == UINT64_MAX)
			return store_seterr(err, MQ_INVALID_ARGUMENT,
			                    "schedule: the cron expression \"%.64s\" never fires",
			                    cron);
	}
	if ((st = sched_write(t, name, &r, spec->msg.headers, spec->msg.n_headers, err)) != MQ_OK ||
	    (!spec->paused && (st = due_put(t, name, r.next_ms, err)) != MQ_OK))
		return st;
	if (created)
		*created = true;
	if (!cb)
		return MQ_OK;
	if ((st = sched_read(t, name, &b, err)) != MQ_OK)
		return st == MQ_NOT_FOUND ? store_fail(t, err, MQ_DATA_LOSS, "schedule vanished")
		                          : st;
	st = sched_view(t, name, &b.r, cb, arg, NULL, err);
	free(b.data);
	return st;
}

mq_status store_schedule_get(store_txn *t, const char *name, store_schedule_cb cb, void *arg,
                             store_err *err)
{
	store_err local;
	sched_buf b;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = sched_name_check("schedule", name, err)) != MQ_OK ||
	    (st = sched_read(t, name, &b, err)) != MQ_OK)
		return st;
	st = sched_view(t, name, &b.r, cb, arg, NULL, err);
	free(b.data);
	return st;
}

mq_status store_schedule_list(store_txn *t, const char *after, uint32_t limit, store_schedule_cb cb,
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
		return store_seterr(err, MQ_INVALID_ARGUMENT, "store_schedule_list: no callback");
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
		rec_sched r;

		st = tx_seek(t, KV_SCHEDULES, key, klen, &k, &v, err);
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
			return store_fail(t, err, MQ_DATA_LOSS, "a schedule name is corrupted");
		memcpy(name, k.data, k.len);
		name[k.len] = 0;
		if (!store_rec_sched_decode(&r, v.data, v.len))
			return store_fail(t, err, MQ_DATA_LOSS, "schedule %s record is corrupted",
			                  name);
		/* No write happens here: the record may stay borrowed. */
		if ((st = sched_view(t, name, &r, cb, arg, &stop, err)) != MQ_OK)
			return st;
		count++;
		memcpy(key, name, k.len);
		key[k.len] = 0;
		klen = k.len + 1;
	}
	return MQ_OK;
}

/* sched_set_paused pauses or resumes schedule name. */
static mq_status sched_set_paused(store_txn *t, const char *name, bool pause, store_schedule_cb cb,
                                  void *arg, store_err *err)
{
	store_err local;
	cron_expr ce = {0};
	sched_buf b;
	bool paused;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = sched_name_check("schedule", name, err)) != MQ_OK ||
	    (st = sched_read(t, name, &b, err)) != MQ_OK)
		return st;
	paused = (b.r.flags & REC_SCHED_PAUSED) != 0;
	if (paused != pause) {
		if (pause) {
			if (b.r.next_ms && (st = due_del(t, name, b.r.next_ms, err)) != MQ_OK)
				goto out;
			b.r.flags |= REC_SCHED_PAUSED;
			b.r.next_ms = 0;
		} else {
			if ((st = sched_cron(&b.r, &ce, t, err)) != MQ_OK)
				goto out;
			b.r.flags &= (uint8_t)~REC_SCHED_PAUSED;
			b.r.next_ms = sched_next(&b.r, &ce, t->now);
			if (b.r.next_ms == UINT64_MAX)
				b.r.next_ms = 0;
			else if ((st = due_put(t, name, b.r.next_ms, err)) != MQ_OK)
				goto out;
		}
		if ((st = sched_write(t, name, &b.r, NULL, 0, err)) != MQ_OK)
			goto out;
	}
	st = sched_view(t, name, &b.r, cb, arg, NULL, err);
out:
	free(b.data);
	return st;
}

mq_status store_schedule_pause(store_txn *t, const char *name, store_schedule_cb cb, void *arg,
                               store_err *err)
{
	return sched_set_paused(t, name, true, cb, arg, err);
}

mq_status store_schedule_resume(store_txn *t, const char *name, store_schedule_cb cb, void *arg,
                                store_err *err)
{
	return sched_set_paused(t, name, false, cb, arg, err);
}

mq_status store_schedule_delete(store_txn *t, const char *name, store_err *err)
{
	store_err local;
	sched_buf b;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = sched_name_check("schedule", name, err)) != MQ_OK ||
	    (st = sched_read(t, name, &b, err)) != MQ_OK)
		return st;
	if (!(b.r.flags & REC_SCHED_PAUSED) && b.r.next_ms)
		st = due_del(t, name, b.r.next_ms, err);
	if (st == MQ_OK)
		st = store_del_must(t, KV_SCHEDULES, name, strlen(name), err);
	free(b.data);
	return st;
}

/* ---- firing ------------------------------------------------------------------ */

/* fire_one fires schedule name (record in b, due at due). */
static mq_status fire_one(store_txn *t, const char *name, sched_buf *b, store_schedule_fire_fn cb,
                          void *arg, store_err *err)
{
	rec_sched *r = &b->r;
	char slot_s[24], dedup[STORE_DEDUP_MAX + 1], perr_msg[STORE_SCHED_ERROR_MAX + 1];
	const char *tag;
	store_header *h;
	store_push_msg m;
	store_push_result res = {0};
	store_schedule_fire fire;
	store_err perr;
	cron_expr ce = {0};
	uint64_t due = r->next_ms, slot = due, next, missed = 0;
	mq_status st, pst;

	if ((st = sched_cron(r, &ce, t, err)) != MQ_OK)
		return st;
	/* Catch-up: the latest slot not after now; the ones before it are
	 * missed. */
	if (r->kind == REC_SCHED_INTERVAL) {
		missed = (t->now - due) / r->interval_ms;
		slot = due + missed * r->interval_ms;
		next = sched_next(r, &ce, slot);
	} else {
		next = sched_next(r, &ce, slot);
		while (next <= t->now && missed < SCHED_CATCHUP_MAX) {
			slot = next;
			missed++;
			next = sched_next(r, &ce, slot);
		}
		if (next <= t->now) /* the count stopped growing */
			next = sched_next(r, &ce, t->now);
	}
	/* The message: the template plus the two schedule headers. */
	if (!(h = calloc(r->n_headers + 2, sizeof(*h))))
		return store_fail(t, err, MQ_RESOURCE_EXHAUSTED, "out of memory");
	if (r->n_headers && !store_rec_sched_headers(r, h)) {
		free(h);
		return store_fail(t, err, MQ_DATA_LOSS, "schedule %s headers are corrupted", name);
	}
	snprintf(slot_s, sizeof(slot_s), "%" PRIu64, slot);
	h[r->n_headers] = (store_header){STORE_SCHED_NAME_HDR, name};
	h[r->n_headers + 1] = (store_header){STORE_SCHED_SLOT_HDR, slot_s};
	m = (store_push_msg){
	    .payload = r->payload,
	    .payload_len = r->payload_len,
	    .dedup_key = r->dedup,
	    .dedup_mode = (store_dedup_mode)r->dedup_mode,
	    .delay_ms = r->delay_ms,
	    .priority = r->priority,
	    .type = r->type,
	    .headers = h,
	    .n_headers = r->n_headers + 2,
	};
	if (r->dedup_len && (tag = strstr(r->dedup, STORE_SCHED_SLOT_TAG)) != NULL) {
		snprintf(dedup, sizeof(dedup), "%.*s%s%s", (int)(tag - r->dedup), r->dedup, slot_s,
		         tag + strlen(STORE_SCHED_SLOT_TAG));
		m.dedup_key = dedup;
	}
	perr.msg[0] = 0;
	pst = store_push(t, r->queue, true, &m, &res, &perr);
	free(h);
	if (store_txn_failed(t)) {
		*err = perr;
		return pst;
	}
	snprintf(perr_msg, sizeof(perr_msg), "%s", pst == MQ_OK ? "" : perr.msg);
	/* Record the slot in the same transaction as the push. */
	if ((st = due_del(t, name, due, err)) != MQ_OK)
		return st;
	r->last_slot_ms = slot;
	r->last_fired_ms = t->now;
	r->fired_total++;
	r->missed_total += missed;
	r->next_ms = next == UINT64_MAX ? 0 : next;
	if (pst == MQ_OK)
		r->last_id = res.id;
	r->error = perr_msg;
	r->error_len = (uint32_t)strlen(perr_msg);
	if ((st = sched_write(t, name, r, NULL, 0, err)) != MQ_OK ||
	    (r->next_ms && (st = due_put(t, name, r->next_ms, err)) != MQ_OK))
		return st;
	if (cb) {
		fire = (store_schedule_fire){
		    .name = name,
		    .queue = r->queue,
		    .slot_ms = slot,
		    .missed = missed,
		    .id = pst == MQ_OK ? res.id : 0,
		    .duplicate = pst == MQ_OK && res.duplicate,
		    .status = pst,
		    .error = perr_msg,
		    .next_ms = next,
		};
		cb(arg, &fire);
	}
	return MQ_OK;
}

mq_status store_schedule_tick(store_txn *t, uint32_t max_items, store_schedule_fire_fn cb,
                              void *arg, uint32_t *fired, store_err *err)
{
	store_err local;
	uint32_t count = 0;
	mq_status st;

	if (!err)
		err = &local;
	if (fired)
		*fired = 0;
	if ((st = store_txn_check(t, err)) != MQ_OK)
		return st;
	while (!max_items || count < max_items) {
		char name[MQ_NAME_MAX + 1];
		kv_val k, v;
		sched_buf b;
		uint64_t due;

		st = tx_seek(t, KV_SCHED_DUE, NULL, 0, &k, &v, err);
		if (st == MQ_NOT_FOUND)
			break;
		if (st != MQ_OK)
			return st;
		if (k.len <= 8 || k.len > 8 + MQ_NAME_MAX)
			return store_fail(t, err, MQ_DATA_LOSS, "a schedule due key is corrupted");
		due = be64_get(k.data);
		if (due > t->now)
			break;
		memcpy(name, (const uint8_t *)k.data + 8, k.len - 8);
		name[k.len - 8] = 0;
		st = sched_read(t, name, &b, err);
		if (st == MQ_NOT_FOUND ||
		    (st == MQ_OK && (b.r.next_ms != due || (b.r.flags & REC_SCHED_PAUSED)))) {
			free(b.data);
			return store_fail(
			    t, err, MQ_DATA_LOSS,
			    "the due index names a missing or rescheduled schedule %s", name);
		}
		if (st != MQ_OK)
			return st;
		st = fire_one(t, name, &b, cb, arg, err);
		free(b.data);
		if (st != MQ_OK)
			return st;
		count++;
		if (fired)
			*fired = count;
	}
	return MQ_OK;
}

mq_status store_schedule_next_due(store_txn *t, uint64_t *due_ms, store_err *err)
{
	store_err local;
	kv_val k, v;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK)
		return st;
	st = tx_seek(t, KV_SCHED_DUE, NULL, 0, &k, &v, err);
	if (st == MQ_NOT_FOUND) {
		*due_ms = UINT64_MAX;
		return MQ_OK;
	}
	if (st != MQ_OK)
		return st;
	if (k.len <= 8)
		return store_fail(t, err, MQ_DATA_LOSS, "a schedule due key is corrupted");
	*due_ms = be64_get(k.data);
	return MQ_OK;
}
