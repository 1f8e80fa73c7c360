/* SPDX-License-Identifier: MIT */
/*
 * record_pubsub.c: encoding and decoding of schedule and topic records, as
 * documented in record_pubsub.h.
 */
#include "record_pubsub.h"

static uint64_t hdrs_size(const store_header *h, size_t nh)
{
	uint64_t n = 0;

	for (size_t i = 0; i < nh; i++)
		n += 10 + (uint64_t)strlen(h[i].key) + strlen(h[i].value);
	return n;
}

size_t store_rec_sched_size(const rec_sched *s, const store_header *h, size_t nh)
{
	uint64_t n = REC_SCHED_FIXED + 6ull + s->queue_len + s->cron_len + s->tz_len + s->type_len +
	             s->dedup_len + s->error_len + s->payload_len;

	n += h ? hdrs_size(h, nh) : s->hdrs_len;
	return n > UINT32_MAX ? 0 : (size_t)n;
}

static uint8_t *put_s(uint8_t *p, const char *s, uint32_t len)
{
	if (len)
		memcpy(p, s, len);
	p[len] = 0;
	return p + len + 1;
}

void store_rec_sched_encode(uint8_t *out, const rec_sched *s, const store_header *h, size_t nh)
{
	uint8_t *p = out + REC_SCHED_FIXED;
	uint32_t hdrs_len = h ? (uint32_t)hdrs_size(h, nh) : s->hdrs_len;

	memset(out, 0, REC_SCHED_FIXED);
	out[0] = REC_SCHED_VERSION;
	out[1] = s->kind;
	out[2] = s->flags;
	out[3] = s->dedup_mode;
	le32_put(out + 4, (uint32_t)s->priority);
	le32_put(out + 8, h ? (uint32_t)nh : s->n_headers);
	le64_put(out + 16, s->interval_ms);
	le64_put(out + 24, s->anchor_ms);
	le64_put(out + 32, s->created_ms);
	le64_put(out + 40, s->next_ms);
	le64_put(out + 48, s->last_slot_ms);
	le64_put(out + 56, s->last_fired_ms);
	le64_put(out + 64, s->fired_total);
	le64_put(out + 72, s->missed_total);
	le64_put(out + 80, s->delay_ms);
	le64_put(out + 88, s->last_id);
	le32_put(out + 96, s->queue_len);
	le32_put(out + 100, s->cron_len);
	le32_put(out + 104, s->tz_len);
	le32_put(out + 108, s->type_len);
	le32_put(out + 112, s->dedup_len);
	le32_put(out + 116, s->error_len);
	le32_put(out + 120, hdrs_len);
	le32_put(out + 124, s->payload_len);
	p = put_s(p, s->queue, s->queue_len);
	p = put_s(p, s->cron, s->cron_len);
	p = put_s(p, s->tz, s->tz_len);
	p = put_s(p, s->type, s->type_len);
	p = put_s(p, s->dedup, s->dedup_len);
	p = put_s(p, s->error, s->error_len);
	if (h) {
		for (size_t i = 0; i < nh; i++) {
			uint32_t kl = (uint32_t)strlen(h[i].key), vl = (uint32_t)strlen(h[i].value);

			le32_put(p, kl);
			p = put_s(p + 4, h[i].key, kl);
			le32_put(p, vl);
			p = put_s(p + 4, h[i].value, vl);
		}
	} else if (hdrs_len) {
		memcpy(p, s->hdrs, hdrs_len);
		p += hdrs_len;
	}
	if (s->payload_len)
		memcpy(p, s->payload, s->payload_len);
}

/* get_s points *out at a NUL-terminated string of len bytes at *p. */
static bool get_s(const uint8_t **p, const uint8_t *end, uint32_t len, const char **out)
{
	if ((uint64_t)(end - *p) < (uint64_t)len + 1 || (*p)[len] != 0)
		return false;
	*out = (const char *)*p;
	*p += len + 1;
	return true;
}

bool store_rec_sched_decode(rec_sched *s, const void *data, size_t len)
{
	const uint8_t *p = data, *end = p + len;

	if (len < REC_SCHED_FIXED || p[0] != REC_SCHED_VERSION)
		return false;
	s->kind = p[1];
	s->flags = p[2];
	s->dedup_mode = p[3];
	s->priority = (int32_t)le32_get(p + 4);
	s->n_headers = le32_get(p + 8);
	s->interval_ms = le64_get(p + 16);
	s->anchor_ms = le64_get(p + 24);
	s->created_ms = le64_get(p + 32);
	s->next_ms = le64_get(p + 40);
	s->last_slot_ms = le64_get(p + 48);
	s->last_fired_ms = le64_get(p + 56);
	s->fired_total = le64_get(p + 64);
	s->missed_total = le64_get(p + 72);
	s->delay_ms = le64_get(p + 80);
	s->last_id = le64_get(p + 88);
	s->queue_len = le32_get(p + 96);
	s->cron_len = le32_get(p + 100);
	s->tz_len = le32_get(p + 104);
	s->type_len = le32_get(p + 108);
	s->dedup_len = le32_get(p + 112);
	s->error_len = le32_get(p + 116);
	s->hdrs_len = le32_get(p + 120);
	s->payload_len = le32_get(p + 124);
	if (s->kind != REC_SCHED_CRON && s->kind != REC_SCHED_INTERVAL)
		return false;
	p += REC_SCHED_FIXED;
	if (!get_s(&p, end, s->queue_len, &s->queue) || !get_s(&p, end, s->cron_len, &s->cron) ||
	    !get_s(&p, end, s->tz_len, &s->tz) || !get_s(&p, end, s->type_len, &s->type) ||
	    !get_s(&p, end, s->dedup_len, &s->dedup) || !get_s(&p, end, s->error_len, &s->error))
		return false;
	if ((uint64_t)(end - p) != (uint64_t)s->hdrs_len + s->payload_len ||
	    s->n_headers > s->hdrs_len / 10)
		return false;
	s->hdrs = p;
	s->payload = p + s->hdrs_len;
	return true;
}

bool store_rec_sched_headers(const rec_sched *s, store_header *h)
{
	rec_msg m = {.n_headers = s->n_headers, .hdrs = s->hdrs, .hdrs_len = s->hdrs_len};

	return store_rec_headers_decode(&m, h);
}

void store_rec_topic_encode(uint8_t out[REC_TOPIC_SIZE], const rec_topic *t)
{
	memset(out, 0, REC_TOPIC_SIZE);
	out[0] = REC_TOPIC_VERSION;
	le32_put(out + 4, t->n_subs);
	le64_put(out + 8, t->created_ms);
	le64_put(out + 16, t->published_total);
	le64_put(out + 24, t->copies_total);
}

bool store_rec_topic_decode(rec_topic *t, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (len != REC_TOPIC_SIZE || p[0] != REC_TOPIC_VERSION)
		return false;
	t->n_subs = le32_get(p + 4);
	t->created_ms = le64_get(p + 8);
	t->published_total = le64_get(p + 16);
	t->copies_total = le64_get(p + 24);
	return true;
}
