/* SPDX-License-Identifier: MIT */
/*
 * record.c: encoding and decoding of queue and message records, as
 * documented in record.h. Decoders check versions and lengths: a record
 * that does not parse is reported by the caller as DATA_LOSS.
 */
#include "record.h"

size_t store_rec_queue_encode(uint8_t out[REC_QUEUE_SIZE_MAX], const rec_queue *q)
{
	const store_queue_stats *s = &q->stats;
	const uint64_t st[10] = {s->ready,        s->delayed,       s->in_flight,
	                         s->dead,         s->pushed_total,  s->acked_total,
	                         s->nacked_total, s->expired_total, s->deduplicated_total,
	                         s->dead_total};
	size_t dlen = strnlen(q->dlq, MQ_NAME_MAX);

	memset(out, 0, REC_QUEUE_FIXED);
	out[0] = REC_QUEUE_VERSION;
	out[1] = q->paused ? 1 : 0;
	out[2] = q->dedup_scope;
	out[3] = (uint8_t)dlen;
	le32_put(out + 4, q->qid);
	le32_put(out + 8, q->lease_ms);
	le32_put(out + 12, q->max_attempts);
	le64_put(out + 16, q->created_ms);
	for (int i = 0; i < 10; i++)
		le64_put(out + 24 + 8 * i, st[i]);
	le32_put(out + 104, q->retry_base_ms);
	le32_put(out + 108, q->retry_max_ms);
	le64_put(out + 112, q->max_length);
	le64_put(out + 120, q->max_age_ms);
	le64_put(out + 128, q->dedup_window_ms);
	le32_put(out + 136, q->rate_limit);
	le64_put(out + 144, s->redriven_total);
	memcpy(out + REC_QUEUE_FIXED, q->dlq, dlen);
	return REC_QUEUE_FIXED + dlen;
}

bool store_rec_queue_decode(rec_queue *q, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t st[10];
	uint8_t ver = len ? p[0] : 0;

	if (ver == REC_QUEUE_VERSION) {
		if (len < REC_QUEUE_FIXED || len != REC_QUEUE_FIXED + (size_t)p[3] ||
		    p[3] > MQ_NAME_MAX || p[1] > 1)
			return false;
	} else if (!(len == REC_QUEUE_SIZE_2 && ver == REC_QUEUE_VERSION_2) &&
	           !(len == REC_QUEUE_SIZE_1 && ver == REC_QUEUE_VERSION_1)) {
		return false;
	}
	memset(q, 0, sizeof(*q));
	q->retry_base_ms = ver >= REC_QUEUE_VERSION_2 ? le32_get(p + 104) : 0;
	q->retry_max_ms = ver >= REC_QUEUE_VERSION_2 ? le32_get(p + 108) : 0;
	q->qid = le32_get(p + 4);
	q->lease_ms = le32_get(p + 8);
	q->max_attempts = le32_get(p + 12);
	q->created_ms = le64_get(p + 16);
	for (int i = 0; i < 10; i++)
		st[i] = le64_get(p + 24 + 8 * i);
	q->stats = (store_queue_stats){
	    .ready = st[0],
	    .delayed = st[1],
	    .in_flight = st[2],
	    .dead = st[3],
	    .pushed_total = st[4],
	    .acked_total = st[5],
	    .nacked_total = st[6],
	    .expired_total = st[7],
	    .deduplicated_total = st[8],
	    .dead_total = st[9],
	};
	if (ver == REC_QUEUE_VERSION) {
		q->paused = p[1] & 1;
		q->dedup_scope = p[2];
		q->dlq_len = p[3];
		q->max_length = le64_get(p + 112);
		q->max_age_ms = le64_get(p + 120);
		q->dedup_window_ms = le64_get(p + 128);
		q->rate_limit = le32_get(p + 136);
		q->stats.redriven_total = le64_get(p + 144);
		memcpy(q->dlq, p + REC_QUEUE_FIXED, q->dlq_len);
		q->dlq[q->dlq_len] = 0;
	}
	return true;
}

static uint64_t headers_size(const store_header *h, size_t nh)
{
	uint64_t n = 0;

	for (size_t i = 0; i < nh; i++)
		n += 10 + (uint64_t)strlen(h[i].key) + strlen(h[i].value);
	return n;
}

size_t store_rec_msg_size(const rec_msg *m, const store_header *h, size_t nh)
{
	uint64_t n = REC_MSG_FIXED + 5ull + m->dedup_len + m->type_len + m->error_len +
	             m->reason_len + m->group_len + m->hist_len + m->payload_len;

	n += h ? headers_size(h, nh) : m->hdrs_len;
	if (n > UINT32_MAX)
		return 0;
	return (size_t)n;
}

static uint8_t *put_str(uint8_t *p, const char *s, uint32_t len)
{
	if (len)
		memcpy(p, s, len);
	p[len] = 0;
	return p + len + 1;
}

void store_rec_msg_encode(uint8_t *out, const rec_msg *m, const store_header *h, size_t nh)
{
	uint8_t *p = out + REC_MSG_FIXED;
	uint32_t hdrs_len = h ? (uint32_t)headers_size(h, nh) : m->hdrs_len;
	uint32_t n_headers = h ? (uint32_t)nh : m->n_headers;

	out[0] = REC_MSG_VERSION;
	out[1] = m->state;
	out[2] = m->n_hist;
	out[3] = m->flags;
	le32_put(out + 4, m->attempts);
	le32_put(out + 8, (uint32_t)m->priority);
	le32_put(out + 12, n_headers);
	le64_put(out + 16, m->enqueued_ms);
	le64_put(out + 24, m->due_ms);
	le64_put(out + 32, m->lease_token);
	le32_put(out + 40, m->dedup_len);
	le32_put(out + 44, m->type_len);
	le32_put(out + 48, m->error_len);
	le32_put(out + 52, hdrs_len);
	le32_put(out + 56, m->payload_len);
	le32_put(out + 60, m->reason_len);
	le32_put(out + 64, m->hist_len);
	le32_put(out + 68, m->group_len);
	le64_put(out + 72, m->expire_ms);
	le64_put(out + 80, m->group_seq);
	p = put_str(p, m->dedup, m->dedup_len);
	p = put_str(p, m->type, m->type_len);
	p = put_str(p, m->error, m->error_len);
	p = put_str(p, m->reason, m->reason_len);
	p = put_str(p, m->group, m->group_len);
	if (m->hist_len) {
		memcpy(p, m->hist, m->hist_len);
		p += m->hist_len;
	}
	if (h) {
		for (size_t i = 0; i < nh; i++) {
			uint32_t kl = (uint32_t)strlen(h[i].key);
			uint32_t vl = (uint32_t)strlen(h[i].value);

			le32_put(p, kl);
			p = put_str(p + 4, h[i].key, kl);
			le32_put(p, vl);
			p = put_str(p + 4, h[i].value, vl);
		}
	} else if (hdrs_len) {
		memcpy(p, m->hdrs, hdrs_len);
		p += hdrs_len;
	}
	if (m->payload_len)
		memcpy(p, m->payload, m->payload_len);
}

bool store_rec_msg_decode(rec_msg *m, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t need;
	size_t fixed;
	uint8_t ver;

	if (len < REC_MSG_FIXED_1 + 3)
		return false;
	ver = p[0];
	if (ver == REC_MSG_VERSION)
		fixed = REC_MSG_FIXED;
	else if (ver == REC_MSG_VERSION_2)
		fixed = REC_MSG_FIXED_2;
	else if (ver == REC_MSG_VERSION_1)
		fixed = REC_MSG_FIXED_1;
	else
		return false;
	if (len < fixed + 3)
		return false;
	m->state = p[1];
	m->flags = ver == REC_MSG_VERSION ? p[3] : 0;
	m->attempts = le32_get(p + 4);
	m->priority = (int32_t)le32_get(p + 8);
	m->n_headers = le32_get(p + 12);
	m->enqueued_ms = le64_get(p + 16);
	m->due_ms = le64_get(p + 24);
	m->lease_token = le64_get(p + 32);
	m->dedup_len = le32_get(p + 40);
	m->type_len = le32_get(p + 44);
	m->error_len = le32_get(p + 48);
	m->hdrs_len = le32_get(p + 52);
	m->payload_len = le32_get(p + 56);
	m->n_hist = 0;
	m->reason_len = 0;
	m->hist_len = 0;
	m->group_len = 0;
	m->expire_ms = 0;
	m->group_seq = 0;
	if (ver >= REC_MSG_VERSION_2) {
		m->n_hist = p[2];
		m->reason_len = le32_get(p + 60);
		m->hist_len = le32_get(p + 64);
	}
	if (ver == REC_MSG_VERSION) {
		m->group_len = le32_get(p + 68);
		m->expire_ms = le64_get(p + 72);
		m->group_seq = le64_get(p + 80);
	}
	need =
	    fixed + 3ull + m->dedup_len + m->type_len + m->error_len + m->hdrs_len + m->payload_len;
	if (ver >= REC_MSG_VERSION_2)
		need += 1ull + m->reason_len + m->hist_len;
	if (ver == REC_MSG_VERSION)
		need += 1ull + m->group_len;
	if (need != len || m->n_headers > m->hdrs_len / 10 ||
	    m->n_hist > m->hist_len / (REC_HIST_FIXED + 1) || m->n_hist > STORE_HISTORY_MAX)
		return false;
	p += fixed;
	m->dedup = (const char *)p;
	p += m->dedup_len + 1;
	m->type = (const char *)p;
	p += m->type_len + 1;
	m->error = (const char *)p;
	p += m->error_len + 1;
	m->reason = "";
	m->group = "";
	if (ver >= REC_MSG_VERSION_2) {
		m->reason = (const char *)p;
		p += m->reason_len + 1;
		if (m->reason[m->reason_len])
			return false;
	}
	if (ver == REC_MSG_VERSION) {
		m->group = (const char *)p;
		p += m->group_len + 1;
		if (m->group[m->group_len])
			return false;
	}
	m->hist = p;
	p += m->hist_len;
	m->hdrs = p;
	p += m->hdrs_len;
	m->payload = p;
	if (m->dedup[m->dedup_len] || m->type[m->type_len] || m->error[m->error_len])
		return false;
	return true;
}

bool store_rec_history_decode(const rec_msg *m, store_attempt *h)
{
	const uint8_t *p = m->hist, *end = m->hist + m->hist_len;

	for (uint32_t i = 0; i < m->n_hist; i++) {
		uint32_t el;

		if (end - p < REC_HIST_FIXED)
			return false;
		h[i].time_ms = le64_get(p);
		h[i].outcome = le32_get(p + 8);
		el = le32_get(p + 12);
		if ((uint64_t)(end - p) < REC_HIST_FIXED + 1ull + el)
			return false;
		h[i].error = (const char *)p + REC_HIST_FIXED;
		if (h[i].error[el])
			return false;
		p += REC_HIST_FIXED + 1 + el;
	}
	return p == end;
}

uint32_t store_rec_history_append(uint8_t *out, const rec_msg *m, uint64_t time_ms,
                                  uint32_t outcome, const char *error, uint8_t *n)
{
	const uint8_t *p = m->hist, *end = m->hist + m->hist_len;
	size_t el = error ? strlen(error) : 0;
	uint8_t *o = out;
	uint8_t count = m->n_hist;

	/* Drop the oldest entries so that the new one fits the bound. */
	while (count >= STORE_HISTORY_MAX && end - p >= REC_HIST_FIXED) {
		p += REC_HIST_FIXED + 1 + le32_get(p + 12);
		count--;
	}
	if (p > end)
		p = end, count = 0;
	memcpy(o, p, (size_t)(end - p));
	o += end - p;
	if (el > STORE_HISTORY_ERROR_MAX)
		el = STORE_HISTORY_ERROR_MAX;
	le64_put(o, time_ms);
	le32_put(o + 8, outcome);
	le32_put(o + 12, (uint32_t)el);
	o = put_str(o + REC_HIST_FIXED, error ? error : "", (uint32_t)el);
	*n = (uint8_t)(count + 1);
	return (uint32_t)(o - out);
}

bool store_rec_headers_decode(const rec_msg *m, store_header *h)
{
	const uint8_t *p = m->hdrs, *end = m->hdrs + m->hdrs_len;

	for (uint32_t i = 0; i < m->n_headers; i++) {
		uint32_t kl, vl;

		if (end - p < 4)
			return false;
		kl = le32_get(p);
		if ((uint64_t)(end - p) < 5ull + kl)
			return false;
		h[i].key = (const char *)p + 4;
		p += 5 + kl;
		if (end - p < 4)
			return false;
		vl = le32_get(p);
		if ((uint64_t)(end - p) < 5ull + vl)
			return false;
		h[i].value = (const char *)p + 4;
		p += 5 + vl;
		if (h[i].key[kl] || h[i].value[vl])
			return false;
	}
	return p == end;
}
