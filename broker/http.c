/* SPDX-License-Identifier: MIT */
/*
 * http.c: mqd's HTTP listener on nng's HTTP server.
 *
 *   POST /v1/<Method>  the JSON form of <Method>'s input message; the reply
 *                      is the JSON form of its output message, or
 *                      {"code","status","message"} with the mapped HTTP code.
 *   GET /metrics       Prometheus text format (metrics.c + ListQueues).
 *   GET /livez         200 while the process serves HTTP.
 *   GET /readyz        200 once storage and listeners are up, 503 before and
 *                      while shutting down.
 *   GET /, GET /ui/... the web dashboard (ui.c; files from broker/ui/).
 *
 * An API request takes the same path as an nng one: the JSON becomes the
 * packed input message (json.c, by descriptor), wrapped in a Request
 * envelope {version, method, auth_token (from "Authorization: Bearer"),
 * body} and handed to brk_service_dispatch. The call's on_finish hook
 * answers the HTTP request when the reply is ready, from whatever thread
 * finishes it (the writer, after its commit, for storage methods and long
 * polls): nng's handler thread never waits. A client that disconnects while
 * its call is pending (a parked long poll) gets its aio cancelled; the call
 * still completes inside the broker and its reply is dropped.
 *
 * Calls are pooled and freed only at close, so a late cancellation never
 * touches freed memory (a cancel compares the aio the call now serves).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "http.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "ui.h"

#define PROTOCOL_VERSION  1u
#define METRICS_PAGE      1000u
#define METRICS_MAX_PAGES 1000

enum call_kind { K_API, K_METRICS };

typedef struct queue_row {
	char name[MQ_NAME_MAX + 1];
	bool paused;
	uint64_t ready, delayed, in_flight, dead, oldest_ready_age_ms;
	uint64_t pushed, acked, nacked, expired, dead_total, dedup, redriven;
} queue_row;

typedef struct http_call {
	brk_call call; /* first: on_finish gets &call */
	brk_http *h;
	pthread_mutex_t mu; /* guards aio, active, cancelled */
	nng_aio *aio;
	bool active, cancelled;
	enum call_kind kind;
	const ProtobufCMethodDescriptor *m;
	/* /metrics: queues gathered page by page. */
	queue_row *rows;
	size_t n_rows, cap_rows;
	char after[MQ_NAME_MAX + 1];
	int pages;
	struct http_call *next_free, *next_all;
} http_call;

struct brk_http {
	nng_http_server *srv;
	nng_url *url;
	brk_info *info;
	atomic_bool ready, quiescing;
	atomic_int inflight;
	pthread_mutex_t pool_mu;
	http_call *free_list, *all;
	const ProtobufCMethodDescriptor *list_queues;
};

/* ---- Status mapping (grpc-gateway's HTTPStatusFromCode) ------------------ */

static uint16_t http_status_of(int st)
{
	switch (st) {
	case MQ_OK:
		return 200;
	case MQ_CANCELLED:
		return 499;
	case MQ_INVALID_ARGUMENT:
	case MQ_FAILED_PRECONDITION:
	case MQ_OUT_OF_RANGE:
		return 400;
	case MQ_DEADLINE_EXCEEDED:
		return 504;
	case MQ_NOT_FOUND:
		return 404;
	case MQ_ALREADY_EXISTS:
	case MQ_ABORTED:
		return 409;
	case MQ_PERMISSION_DENIED:
		return 403;
	case MQ_UNAUTHENTICATED:
		return 401;
	case MQ_RESOURCE_EXHAUSTED:
		return 429;
	case MQ_UNIMPLEMENTED:
		return 501;
	case MQ_UNAVAILABLE:
		return 503;
	default:
		return 500;
	}
}

/* ---- Replies --------------------------------------------------------------- */

/* reply_aio completes a handler aio with a response. */
static void reply_aio(nng_aio *aio, uint16_t code, const char *ctype, const char *body, size_t len)
{
	nng_http_res *res;
	int rv;

	if ((rv = nng_http_res_alloc(&res)) != 0) {
		nng_aio_finish(aio, rv);
		return;
	}
	if ((rv = nng_http_res_set_status(res, code)) != 0 ||
	    (rv = nng_http_res_set_header(res, "Content-Type", ctype)) != 0 ||
	    (rv = nng_http_res_set_header(res, "Cache-Control", "no-store")) != 0 ||
	    (rv = nng_http_res_copy_data(res, body, len)) != 0) {
		nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

/* error_body makes {"code":N,"status":"NAME","message":"..."}. */
static char *error_body(int st, const char *msg)
{
	json_t *j =
	    json_pack("{s:i,s:s,s:s}", "code", st, "status", mq_status_name(st), "message", msg);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s;
}

static void reply_error_aio(nng_aio *aio, int st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_error_aio(nng_aio *aio, int st, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	char *s;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s = error_body(st, msg);
	if (s == NULL) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	reply_aio(aio, http_status_of(st), "application/json", s, strlen(s));
	free(s);
}

/* ---- Call pool ------------------------------------------------------------- */

static void http_finish(brk_call *c);

static http_call *call_get(brk_http *h)
{
	http_call *hc;

	pthread_mutex_lock(&h->pool_mu);
	hc = h->free_list;
	if (hc != NULL) {
		h->free_list = hc->next_free;
	} else if ((hc = calloc(1, sizeof(*hc))) != NULL) {
		pthread_mutex_init(&hc->mu, NULL);
		hc->h = h;
		hc->next_all = h->all;
		h->all = hc;
	}
	pthread_mutex_unlock(&h->pool_mu);
	if (hc == NULL)
		return NULL;
	hc->call.work = NULL;
	hc->call.on_finish = http_finish;
	hc->call.internal = false;
	hc->n_rows = 0;
	hc->after[0] = '\0';
	hc->pages = 0;
	atomic_fetch_add(&h->inflight, 1);
	return hc;
}

static void call_put(http_call *hc)
{
	brk_http *h = hc->h;

	brk_call_free_request(&hc->call);
	hc->call.body_len = 0;
	if (hc->call.body_cap > 65536) {
		free(hc->call.body);
		hc->call.body = NULL;
		hc->call.body_cap = 0;
	}
	pthread_mutex_lock(&h->pool_mu);
	hc->next_free = h->free_list;
	h->free_list = hc;
	pthread_mutex_unlock(&h->pool_mu);
	atomic_fetch_sub(&h->inflight, 1);
}

/* http_cancel: the connection closed while the call was pending. */
static void http_cancel(nng_aio *aio, void *arg, int rv)
{
	http_call *hc = arg;

	pthread_mutex_lock(&hc->mu);
	if (hc->active && hc->aio == aio && !hc->cancelled) {
		hc->cancelled = true;
		nng_aio_finish(aio, rv);
	}
	pthread_mutex_unlock(&hc->mu);
}

static void call_start(http_call *hc, nng_aio *aio)
{
	pthread_mutex_lock(&hc->mu);
	hc->aio = aio;
	hc->active = true;
	hc->cancelled = false;
	pthread_mutex_unlock(&hc->mu);
	nng_aio_defer(aio, http_cancel, hc);
}

/* call_reply answers the call's HTTP request unless it was cancelled. */
static void call_reply(http_call *hc, uint16_t code, const char *ctype, const char *body,
                       size_t len)
{
	pthread_mutex_lock(&hc->mu);
	if (hc->active && !hc->cancelled)
		reply_aio(hc->aio, code, ctype, body, len);
	hc->active = false;
	hc->aio = NULL;
	pthread_mutex_unlock(&hc->mu);
}

static void call_reply_error(http_call *hc, int st, const char *msg)
{
	char *s = error_body(st, msg);

	if (s == NULL) {
		pthread_mutex_lock(&hc->mu);
		if (hc->active && !hc->cancelled)
			nng_aio_finish(hc->aio, NNG_ENOMEM);
		hc->active = false;
		hc->aio = NULL;
		pthread_mutex_unlock(&hc->mu);
		return;
	}
	call_reply(hc, http_status_of(st), "application/json", s, strlen(s));
	free(s);
}

/* call_dispatch wraps a packed input in a Request envelope and hands it to
 * the service, as server.c does with a received nng message. */
static void call_dispatch(http_call *hc, const char *method, const char *token, uint8_t *body,
                          size_t body_len)
{
	Mq__Request env = MQ__REQUEST__INIT;
	uint8_t *buf;
	size_t n;

	env.version = PROTOCOL_VERSION;
	env.method = (char *)method;
	env.auth_token = (char *)(token ? token : "");
	env.body.data = body;
	env.body.len = body_len;
	n = mq__request__get_packed_size(&env);
	buf = malloc(n ? n : 1);
	if (buf == NULL) {
		brk_call_reset_result(&hc->call);
		brk_call_set_error(&hc->call, MQ_RESOURCE_EXHAUSTED, "out of memory");
		brk_call_finish(&hc->call);
		return;
	}
	mq__request__pack(&env, buf);
	hc->call.start_ns = brk_mono_ns();
	brk_service_dispatch(hc->h->info, &hc->call, buf, n);
	free(buf);
}

/* ---- JSON API ---------------------------------------------------------------- */

static void api_finish(http_call *hc)
{
	brk_call *c = &hc->call;

	if (c->status == MQ_OK) {
		ProtobufCMessage *out =
		    protobuf_c_message_unpack(hc->m->output, NULL, c->body_len, c->body);
		json_t *j = out ? brk_pb_to_json(out) : NULL;
		char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
		if (s != NULL)
			call_reply(hc, 200, "application/json", s, strlen(s));
		else
			call_reply_error(hc, MQ_INTERNAL, "cannot convert the reply to JSON");
		free(s);
		json_decref(j);
		if (out)
			protobuf_c_message_free_unpacked(out, NULL);
	} else {
		call_reply_error(hc, c->status, c->errmsg[0] ? c->errmsg : mq_strerror(c->status));
	}
	call_put(hc);
}

/* bearer_token returns the token of "Authorization: Bearer <token>". */
static const char *bearer_token(nng_http_req *req)
{
	const char *a = nng_http_req_get_header(req, "Authorization");

	if (a == NULL || strncasecmp(a, "Bearer ", 7) != 0)
		return NULL;
	a += 7;
	while (*a == ' ')
		a++;
	return a;
}

static void api_cb(nng_aio *aio)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	nng_http_handler *hd = nng_aio_get_input(aio, 1);
	brk_http *h = nng_http_handler_get_data(hd);
	const char *uri = nng_http_req_get_uri(req), *p;
	const ProtobufCMethodDescriptor *m;
	char name[128], err[512];
	json_error_t jerr;
	json_t *j;
	void *data;
	size_t len, n, blen = 0;
	uint8_t *body = NULL;
	http_call *hc;

	p = strstr(uri, "/v1/");
	p = p ? p + 4 : "";
	n = strcspn(p, "?#/");
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	memcpy(name, p, n);
	name[n] = '\0';
	m = protobuf_c_service_descriptor_get_method_by_name(&mq__broker__descriptor, name);
	if (m == NULL) {
		brk_metrics_request(NULL, MQ_NOT_FOUND, 0);
		reply_error_aio(aio, MQ_NOT_FOUND,
		                "unknown method '%s': POST /v1/<Method> with a method of service "
		                "%s, e.g. /v1/Push",
		                name, mq__broker__descriptor.name);
		return;
	}
	if (atomic_load(&h->quiescing)) {
		reply_error_aio(aio, MQ_UNAVAILABLE, "the broker is shutting down");
		return;
	}
	nng_http_req_get_data(req, &data, &len);
	while (len > 0 && (((char *)data)[len - 1] == '\n' || ((char *)data)[len - 1] == ' ' ||
	                   ((char *)data)[len - 1] == '\r'))
		len--;
	j = len ? json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr) : json_object();
	if (j == NULL) {
		brk_metrics_request(m, MQ_INVALID_ARGUMENT, 0);
		reply_error_aio(aio, MQ_INVALID_ARGUMENT,
		                "invalid JSON body (line %d, column %d): %s; send the JSON form of "
		                "%s",
		                jerr.line, jerr.column, jerr.text, m->input->name);
		return;
	}
	if (brk_json_to_pb(m->input, j, &body, &blen, err, sizeof(err)) != 0) {
		json_decref(j);
		brk_metrics_request(m, MQ_INVALID_ARGUMENT, 0);
		reply_error_aio(aio, MQ_INVALID_ARGUMENT, "invalid %s: %s", m->input->name, err);
		return;
	}
	json_decref(j);
	hc = call_get(h);
	if (hc == NULL) {
		free(body);
		reply_error_aio(aio, MQ_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	hc->kind = K_API;
	hc->m = m;
	call_start(hc, aio);
	call_dispatch(hc, m->name, bearer_token(req), body, blen);
	free(body);
}

/* ---- /metrics ------------------------------------------------------------------ */

static void metrics_next_page(http_call *hc)
{
	Mq__ListQueuesRequest in = MQ__LIST_QUEUES_REQUEST__INIT;
	uint8_t *body;
	size_t n;

	in.after = hc->after;
	in.limit = METRICS_PAGE;
	n = mq__list_queues_request__get_packed_size(&in);
	body = malloc(n ? n : 1);
	if (body == NULL) {
		brk_call_reset_result(&hc->call);
		brk_call_set_error(&hc->call, MQ_RESOURCE_EXHAUSTED, "out of memory");
		brk_call_finish(&hc->call);
		return;
	}
	mq__list_queues_request__pack(&in, body);
	hc->pages++;
	call_dispatch(hc, hc->h->list_queues->name, NULL, body, n);
	free(body);
}

static void esc_label(char *out, size_t len, const char *in)
{
	size_t o = 0;

	for (; *in && o + 3 < len; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}

#define QUEUE_COUNTER(b, hc, metric, help, field)                                                  \
	do {                                                                                       \
		brk_metrics_printf(b, "# HELP " metric " " help "\n# TYPE " metric " counter\n");  \
		for (size_t i_ = 0; i_ < (hc)->n_rows; i_++) {                                     \
			char q_[2 * MQ_NAME_MAX + 4];                                              \
			esc_label(q_, sizeof(q_), (hc)->rows[i_].name);                            \
			brk_metrics_printf(b, metric "{queue=\"%s\"} %" PRIu64 "\n", q_,           \
			                   (hc)->rows[i_].field);                                  \
		}                                                                                  \
	} while (0)

static void metrics_render(http_call *hc)
{
	brk_http *h = hc->h;
	const brk_config *cfg = h->info->cfg;
	brk_metrics_buf b = {0};
	uint64_t used = 0, map = 0;
	static const char *states[] = {"ready", "delayed", "in_flight", "dead"};

	brk_metrics_printf(&b, "# HELP mq_queue_messages Messages in a queue, by state.\n"
	                       "# TYPE mq_queue_messages gauge\n");
	for (size_t i = 0; i < hc->n_rows; i++) {
		char q[2 * MQ_NAME_MAX + 4];
		const queue_row *r = &hc->rows[i];
		uint64_t v[4] = {r->ready, r->delayed, r->in_flight, r->dead};
		esc_label(q, sizeof(q), r->name);
		for (int s = 0; s < 4; s++)
			brk_metrics_printf(
			    &b, "mq_queue_messages{queue=\"%s\",state=\"%s\"} %" PRIu64 "\n", q,
			    states[s], v[s]);
	}
	brk_metrics_printf(&b, "# HELP mq_queue_oldest_ready_age_seconds Age of the oldest ready "
	                       "message (0 when none).\n"
	                       "# TYPE mq_queue_oldest_ready_age_seconds gauge\n");
	for (size_t i = 0; i < hc->n_rows; i++) {
		char q[2 * MQ_NAME_MAX + 4];
		esc_label(q, sizeof(q), hc->rows[i].name);
		brk_metrics_printf(&b, "mq_queue_oldest_ready_age_seconds{queue=\"%s\"} %.3f\n", q,
		                   (double)hc->rows[i].oldest_ready_age_ms / 1000.0);
	}
	brk_metrics_printf(&b, "# HELP mq_queue_paused 1 when the queue is paused.\n"
	                       "# TYPE mq_queue_paused gauge\n");
	for (size_t i = 0; i < hc->n_rows; i++) {
		char q[2 * MQ_NAME_MAX + 4];
		esc_label(q, sizeof(q), hc->rows[i].name);
		brk_metrics_printf(&b, "mq_queue_paused{queue=\"%s\"} %d\n", q, hc->rows[i].paused);
	}
	QUEUE_COUNTER(&b, hc, "mq_queue_pushed_total", "Messages pushed.", pushed);
	QUEUE_COUNTER(&b, hc, "mq_queue_acked_total", "Messages acked.", acked);
	QUEUE_COUNTER(&b, hc, "mq_queue_nacked_total", "Deliveries nacked.", nacked);
	QUEUE_COUNTER(&b, hc, "mq_queue_expired_total", "Leases that expired.", expired);
	QUEUE_COUNTER(&b, hc, "mq_queue_dead_total", "Messages that went dead.", dead_total);
	QUEUE_COUNTER(&b, hc, "mq_queue_deduplicated_total", "Pushes deduplicated.", dedup);
	QUEUE_COUNTER(&b, hc, "mq_queue_redriven_total", "Dead messages redriven.", redriven);
	brk_metrics_render(&b);
	store_usage(h->info->store, &used, &map);
	brk_metrics_printf(&b,
	                   "# HELP mq_storage_used_bytes Bytes of the storage map in use.\n"
	                   "# TYPE mq_storage_used_bytes gauge\n"
	                   "mq_storage_used_bytes %" PRIu64 "\n"
	                   "# HELP mq_storage_map_bytes Current size of the storage map.\n"
	                   "# TYPE mq_storage_map_bytes gauge\n"
	                   "mq_storage_map_bytes %" PRIu64 "\n"
	                   "# HELP mq_storage_map_limit_bytes Largest the storage map may grow "
	                   "(--map-size-max).\n"
	                   "# TYPE mq_storage_map_limit_bytes gauge\n"
	                   "mq_storage_map_limit_bytes %" PRIu64 "\n"
	                   "# HELP mq_uptime_seconds Seconds since mqd started.\n"
	                   "# TYPE mq_uptime_seconds gauge\n"
	                   "mq_uptime_seconds %.3f\n"
	                   "# HELP mq_ready 1 when mqd is ready (as /readyz).\n"
	                   "# TYPE mq_ready gauge\n"
	                   "mq_ready %d\n",
	                   used, map, cfg->map_size_max,
	                   (double)(brk_mono_ms() - h->info->start_ms) / 1000.0,
	                   atomic_load(&h->ready) && !atomic_load(&h->quiescing));
	if (b.failed)
		call_reply_error(hc, MQ_RESOURCE_EXHAUSTED, "out of memory rendering metrics");
	else
		call_reply(hc, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
	free(b.data);
}

static bool rows_add(http_call *hc, const Mq__QueueInfo *qi)
{
	queue_row *r;

	if (hc->n_rows == hc->cap_rows) {
		size_t cap = hc->cap_rows ? hc->cap_rows * 2 : 64;
		queue_row *rows = realloc(hc->rows, cap * sizeof(*rows));
		if (rows == NULL)
			return false;
		hc->rows = rows;
		hc->cap_rows = cap;
	}
	r = &hc->rows[hc->n_rows++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", qi->name ? qi->name : "");
	r->paused = qi->paused;
	if (qi->stats != NULL) {
		const Mq__QueueStats *s = qi->stats;
		r->ready = s->ready;
		r->delayed = s->delayed;
		r->in_flight = s->in_flight;
		r->dead = s->dead;
		r->oldest_ready_age_ms = s->oldest_ready_age_ms;
		r->pushed = s->pushed_total;
		r->acked = s->acked_total;
		r->nacked = s->nacked_total;
		r->expired = s->expired_total;
		r->dead_total = s->dead_total;
		r->dedup = s->deduplicated_total;
		r->redriven = s->redriven_total;
	}
	return true;
}

static void metrics_finish(http_call *hc)
{
	brk_call *c = &hc->call;
	Mq__ListQueuesReply *rep;
	bool more, cancelled;

	if (c->status != MQ_OK) {
		call_reply_error(hc, c->status, c->errmsg[0] ? c->errmsg : mq_strerror(c->status));
		call_put(hc);
		return;
	}
	rep = mq__list_queues_reply__unpack(NULL, c->body_len, c->body);
	if (rep == NULL) {
		call_reply_error(hc, MQ_INTERNAL, "undecodable ListQueues reply");
		call_put(hc);
		return;
	}
	for (size_t i = 0; i < rep->n_queues; i++)
		if (!rows_add(hc, rep->queues[i])) {
			mq__list_queues_reply__free_unpacked(rep, NULL);
			call_reply_error(hc, MQ_RESOURCE_EXHAUSTED, "out of memory");
			call_put(hc);
			return;
		}
	more = rep->more && rep->n_queues > 0;
	if (more)
		snprintf(hc->after, sizeof(hc->after), "%s", rep->queues[rep->n_queues - 1]->name);
	mq__list_queues_reply__free_unpacked(rep, NULL);
	pthread_mutex_lock(&hc->mu);
	cancelled = hc->cancelled;
	pthread_mutex_unlock(&hc->mu);
	if (more && !cancelled && hc->pages < METRICS_MAX_PAGES) {
		brk_call_free_request(c);
		metrics_next_page(hc);
		return;
	}
	metrics_render(hc);
	call_put(hc);
}

static void metrics_cb(nng_aio *aio)
{
	nng_http_handler *hd = nng_aio_get_input(aio, 1);
	brk_http *h = nng_http_handler_get_data(hd);
	http_call *hc = call_get(h);

	if (hc == NULL) {
		reply_error_aio(aio, MQ_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	hc->kind = K_METRICS;
	hc->call.internal = true; /* not counted as a ListQueues request */
	hc->m = h->list_queues;
	call_start(hc, aio);
	metrics_next_page(hc);
}

static void http_finish(brk_call *c)
{
	http_call *hc = (http_call *)c;

	if (hc->kind == K_METRICS)
		metrics_finish(hc);
	else
		api_finish(hc);
}

/* ---- Health ----------------------------------------------------------------------- */

static void livez_cb(nng_aio *aio)
{
	reply_aio(aio, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

static void readyz_cb(nng_aio *aio)
{
	nng_http_handler *hd = nng_aio_get_input(aio, 1);
	brk_http *h = nng_http_handler_get_data(hd);

	if (atomic_load(&h->quiescing))
		reply_aio(aio, 503, "text/plain; charset=utf-8", "shutting down\n", 14);
	else if (!atomic_load(&h->ready))
		reply_aio(aio, 503, "text/plain; charset=utf-8", "starting\n", 9);
	else
		reply_aio(aio, 200, "text/plain; charset=utf-8", "ready\n", 6);
}

/* ---- Setup ----------------------------------------------------------------------- */

static int add_handler(brk_http *h, const char *path, const char *method, void (*cb)(nng_aio *),
                       bool tree, size_t max_body)
{
	nng_http_handler *hd;
	int rv;

	if ((rv = nng_http_handler_alloc(&hd, path, cb)) != 0)
		return rv;
	if ((rv = nng_http_handler_set_method(hd, method)) != 0 ||
	    (tree && (rv = nng_http_handler_set_tree(hd)) != 0) ||
	    (rv = nng_http_handler_collect_body(hd, max_body > 0, max_body)) != 0 ||
	    (rv = nng_http_handler_set_data(hd, h, NULL)) != 0 ||
	    (rv = nng_http_server_add_handler(h->srv, hd)) != 0) {
		nng_http_handler_free(hd);
		return rv;
	}
	return 0;
}

int brk_http_open(brk_http **out, const brk_config *cfg, brk_info *info)
{
	brk_http *h = calloc(1, sizeof(*h));
	nng_sockaddr sa;
	int rv, port = 0;
	/* base64 makes payloads 4/3 larger, JSON escapes more. */
	size_t max_body =
	    (size_t)(cfg->max_request < (1ull << 30) ? cfg->max_request * 2 : 1ull << 31);

	if (h == NULL)
		return -1;
	h->info = info;
	pthread_mutex_init(&h->pool_mu, NULL);
	h->list_queues =
	    protobuf_c_service_descriptor_get_method_by_name(&mq__broker__descriptor, "ListQueues");
	if ((rv = nng_url_parse(&h->url, cfg->http_listen)) != 0 ||
	    strcmp(h->url->u_scheme, "http") != 0) {
		brk_err("--http-listen %s: not an http://HOST:PORT URL", cfg->http_listen);
		goto fail;
	}
	if ((rv = nng_http_server_hold(&h->srv, h->url)) != 0) {
		brk_err("http server %s: %s", cfg->http_listen, nng_strerror(rv));
		goto fail;
	}
	if ((rv = add_handler(h, "/v1", "POST", api_cb, true, max_body)) != 0 ||
	    (rv = add_handler(h, "/metrics", "GET", metrics_cb, false, 0)) != 0 ||
	    (rv = add_handler(h, "/livez", "GET", livez_cb, false, 0)) != 0 ||
	    (rv = add_handler(h, "/readyz", "GET", readyz_cb, false, 0)) != 0 ||
	    (rv = brk_ui_add_handlers(h->srv)) != 0) {
		brk_err("http server %s: %s", cfg->http_listen, nng_strerror(rv));
		goto fail;
	}
	if ((rv = nng_http_server_start(h->srv)) != 0) {
		brk_err("cannot listen on %s: %s", cfg->http_listen, nng_strerror(rv));
		goto fail;
	}
	if (nng_http_server_get_addr(h->srv, &sa) == 0 && sa.s_family == NNG_AF_INET)
		port = ntohs(sa.s_in.sa_port);
	else if (nng_http_server_get_addr(h->srv, &sa) == 0 && sa.s_family == NNG_AF_INET6)
		port = ntohs(sa.s_in6.sa_port);
	brk_info("http listening on http://%s:%d (dashboard /, JSON API /v1/<Method>, /metrics, "
	         "/livez, /readyz)",
	         h->url->u_hostname, port);
	if (strcmp(h->url->u_hostname, "127.0.0.1") != 0 &&
	    strcmp(h->url->u_hostname, "localhost") != 0 && strcmp(h->url->u_hostname, "::1") != 0)
		brk_warn("%s is not a loopback address: anyone who can reach it can use every "
		         "queue through the HTTP API",
		         cfg->http_listen);
	*out = h;
	return 0;
fail:
	if (h->srv)
		nng_http_server_release(h->srv);
	if (h->url)
		nng_url_free(h->url);
	pthread_mutex_destroy(&h->pool_mu);
	free(h);
	return -1;
}

void brk_http_set_ready(brk_http *h, bool ready)
{
	if (h != NULL)
		atomic_store(&h->ready, ready);
}

void brk_http_quiesce(brk_http *h)
{
	if (h != NULL)
		atomic_store(&h->quiescing, true);
}

void brk_http_close(brk_http *h)
{
	if (h == NULL)
		return;
	atomic_store(&h->quiescing, true);
	/* Replies in flight go out before the connections close (bounded). */
	for (int i = 0; i < 200 && atomic_load(&h->inflight) > 0; i++)
		usleep(10000);
	usleep(50000);
	nng_http_server_stop(h->srv);
	nng_http_server_release(h->srv);
	nng_url_free(h->url);
	/* nng reaps connections (and their handler threads) asynchronously. */
	usleep(100000);
	if (atomic_load(&h->inflight) > 0) {
		brk_warn("%d HTTP calls still in flight at close", atomic_load(&h->inflight));
		return; /* leak rather than free what a thread may still use */
	}
	for (http_call *hc = h->all, *next; hc != NULL; hc = next) {
		next = hc->next_all;
		brk_call_free_request(&hc->call);
		free(hc->call.body);
		free(hc->rows);
		pthread_mutex_destroy(&hc->mu);
		free(hc);
	}
	pthread_mutex_destroy(&h->pool_mu);
	free(h);
}
