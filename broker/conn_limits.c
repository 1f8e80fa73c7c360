/* SPDX-License-Identifier: MIT */
/* conn_limits.c: connection and parked-pull limits (conn_limits.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "conn_limits.h"
#include "log.h"

#define N_BUCKETS 1024u

typedef struct pipe_ent {
	uint32_t id;
	bool refused;
	bool exempt; /* our own watchdog probe */
	uint32_t longpolls;
	uint64_t opened_ms;
	struct pipe_ent *next;
} pipe_ent;

struct brk_limits {
	pthread_mutex_t mu;
	uint32_t max_conn, max_parked;
	uint32_t open;            /* counted pipes */
	uint64_t refused_total;   /* for the log */
	uint64_t last_refuse_log; /* ms; refusals are logged at most once a second */
	uint64_t refused_unlogged;
	pipe_ent *buckets[N_BUCKETS];
};

brk_limits *brk_limits_new(uint32_t max_connections, uint32_t max_parked_pulls)
{
	brk_limits *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	pthread_mutex_init(&l->mu, NULL);
	l->max_conn = max_connections;
	l->max_parked = max_parked_pulls;
	return l;
}

void brk_limits_free(brk_limits *l)
{
	if (l == NULL)
		return;
	for (unsigned b = 0; b < N_BUCKETS; b++) {
		pipe_ent *e = l->buckets[b], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	pthread_mutex_destroy(&l->mu);
	free(l);
}

/* find returns the entry of id (with mu held); with create, adds it. */
static pipe_ent *find(brk_limits *l, uint32_t id, bool create)
{
	pipe_ent **pp = &l->buckets[id % N_BUCKETS], *e;

	for (e = *pp; e != NULL; e = e->next)
		if (e->id == id)
			return e;
	if (!create || (e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->id = id;
	e->next = *pp;
	*pp = e;
	return e;
}

static void drop(brk_limits *l, uint32_t id)
{
	pipe_ent **pp = &l->buckets[id % N_BUCKETS], *e;

	for (; (e = *pp) != NULL; pp = &e->next)
		if (e->id == id) {
			*pp = e->next;
			free(e);
			return;
		}
}

void brk_limits_pipe_event(brk_limits *l, nng_pipe p, nng_pipe_ev ev)
{
	uint32_t id = (uint32_t)nng_pipe_id(p);
	pipe_ent *e;
	int peer_pid = 0;

	if (ev == NNG_PIPE_EV_ADD_PRE) {
		/* The listener watchdog probes ipc:// listeners from this very
		 * process: those connections do not count. */
		bool exempt = nng_pipe_get_int(p, NNG_OPT_IPC_PEER_PID, &peer_pid) == 0 &&
		              peer_pid == (int)getpid();
		pthread_mutex_lock(&l->mu);
		if ((e = find(l, id, true)) == NULL) {
			pthread_mutex_unlock(&l->mu);
			nng_pipe_close(p); /* out of memory: cannot track it */
			return;
		}
		e->opened_ms = brk_mono_ms();
		e->exempt = exempt;
		if (!exempt && l->open >= l->max_conn) {
			uint64_t now = e->opened_ms, suppressed;
			e->refused = true;
			l->refused_total++;
			if (now - l->last_refuse_log >= 1000) {
				suppressed = l->refused_unlogged;
				l->refused_unlogged = 0;
				l->last_refuse_log = now;
				pthread_mutex_unlock(&l->mu);
				brk_warn(
				    "connection refused: %u connections open, the limit "
				    "(--max-connections) is %u (%llu more refused since the last "
				    "such line)",
				    l->max_conn, l->max_conn, (unsigned long long)suppressed);
				return;
			}
			l->refused_unlogged++;
		} else if (!exempt) {
			l->open++;
		}
		pthread_mutex_unlock(&l->mu);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		pthread_mutex_lock(&l->mu);
		if ((e = find(l, id, false)) != NULL) {
			if (!e->refused && !e->exempt && l->open > 0)
				l->open--;
			drop(l, id);
		}
		pthread_mutex_unlock(&l->mu);
	}
}

bool brk_limits_refused(brk_limits *l, uint32_t pipe_id)
{
	pipe_ent *e;
	bool r;

	pthread_mutex_lock(&l->mu);
	e = find(l, pipe_id, false);
	r = e != NULL && e->refused;
	pthread_mutex_unlock(&l->mu);
	return r;
}

void brk_limits_refuse_call(brk_limits *l, brk_call *c)
{
	brk_call_set_error(c, MQ_RESOURCE_EXHAUSTED,
	                   "connection refused: the broker has reached its connection limit "
	                   "(--max-connections=%u); try again later",
	                   l->max_conn);
}

void brk_limits_sweep(brk_limits *l)
{
	uint32_t ids[64];
	unsigned n = 0;
	uint64_t now = brk_mono_ms();

	pthread_mutex_lock(&l->mu);
	for (unsigned b = 0; b < N_BUCKETS && n < 64; b++)
		for (pipe_ent *e = l->buckets[b]; e != NULL && n < 64; e = e->next)
			if (e->refused && now - e->opened_ms >= BRK_REFUSED_LINGER_MS)
				ids[n++] = e->id;
	pthread_mutex_unlock(&l->mu);
	/* Closing fires REM_POST, which drops the entry. */
	for (unsigned i = 0; i < n; i++) {
		nng_pipe p = NNG_PIPE_INITIALIZER;
		p.id = ids[i];
		nng_pipe_close(p);
	}
}

uint32_t brk_limits_open_count(brk_limits *l)
{
	uint32_t n;

	pthread_mutex_lock(&l->mu);
	n = l->open;
	pthread_mutex_unlock(&l->mu);
	return n;
}

/* wait_ms_of returns the request's `wait_ms` field (0 when it has none). */
static uint64_t wait_ms_of(const ProtobufCMessage *in)
{
	const ProtobufCFieldDescriptor *f;

	if (in == NULL ||
	    (f = protobuf_c_message_descriptor_get_field_by_name(in->descriptor, "wait_ms")) ==
	        NULL ||
	    f->label == PROTOBUF_C_LABEL_REPEATED)
		return 0;
	switch (f->type) {
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return *(const uint32_t *)((const char *)in + f->offset);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return *(const uint64_t *)((const char *)in + f->offset);
	default:
		return 0;
	}
}

bool brk_limits_longpoll_enter(brk_limits *l, brk_call *c)
{
	pipe_ent *e;
	bool ok = true;
	uint32_t held = 0;

	c->longpoll_held = false;
	if (l == NULL || c->pipe_id == 0 || wait_ms_of(c->input) == 0)
		return true;
	pthread_mutex_lock(&l->mu);
	e = find(l, c->pipe_id, false);
	if (e != NULL) {
		if (e->longpolls >= l->max_parked) {
			ok = false;
			held = e->longpolls;
		} else {
			e->longpolls++;
			c->longpoll_held = true;
		}
	}
	pthread_mutex_unlock(&l->mu);
	if (!ok) {
		brk_call_set_error(
		    c, MQ_RESOURCE_EXHAUSTED,
		    "too many long-poll pulls waiting on this connection (%u, the limit "
		    "--max-parked-pulls is %u): pull without wait_ms or wait for one "
		    "to return",
		    held, l->max_parked);
		brk_debug("%s refused: %u long polls parked on connection %u", c->method->name,
		          held, c->pipe_id);
	}
	return ok;
}

void brk_limits_call_done(brk_limits *l, brk_call *c)
{
	pipe_ent *e;

	if (l == NULL || !c->longpoll_held)
		return;
	c->longpoll_held = false;
	pthread_mutex_lock(&l->mu);
	if ((e = find(l, c->pipe_id, false)) != NULL && e->longpolls > 0)
		e->longpolls--;
	pthread_mutex_unlock(&l->mu);
}
