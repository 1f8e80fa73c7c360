/* SPDX-License-Identifier: MIT */
/*
 * run.c: mqbench's harness for one timed run: client threads, warm-up,
 * the measuring window, the backlog cap of cycle runs, pacing (--rate),
 * latency samples and their percentiles, the server's CPU time. It knows
 * nothing of any system's protocol (bench.h's bsys does).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define LAT_CAP 400000 /* samples kept per thread and call type */

uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void lat_add(brun *r, lat *l, uint64_t us)
{
	if (!atomic_load(&r->measuring))
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		uint32_t *p;

		if (cap > LAT_CAP || (p = realloc(l->us, cap * sizeof(*p))) == NULL)
			return;
		l->us = p;
		l->cap = cap;
	}
	l->us[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

void lat_add_locked(bw *w, lat *l, uint64_t us)
{
	pthread_mutex_lock(&w->mu);
	lat_add(w->run, l, us);
	pthread_mutex_unlock(&w->mu);
}

bool run_stopped(brun *r)
{
	return atomic_load(&r->stop);
}

static int n_producer_threads(const brun *r)
{
	int per = r->sys->threads_per ? r->sys->threads_per(r, ROLE_PRODUCER) : 1;

	return r->producers * per;
}

bool run_take(bw *w, int n)
{
	brun *r = w->run;
	int got = 0;

	if (atomic_load(&r->stop))
		return false;
	if (atomic_load(&r->pushed) >= r->max_messages) {
		atomic_store(&r->stop, true);
		return false;
	}
	while (r->capped && got < n) {
		struct timespec ts;

		if (atomic_load(&r->stop)) {
			run_give(r, got);
			return false;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		if (sem_timedwait(&r->backlog, &ts) == 0)
			got++;
	}
	if (r->rate > 0) {
		double per_thread = r->rate / n_producer_threads(r);
		uint64_t due = r->t0_us + (uint64_t)((double)w->sent * 1e6 / per_thread);
		uint64_t t;

		while ((t = now_us()) < due) {
			if (atomic_load(&r->stop)) {
				run_give(r, got);
				return false;
			}
			usleep((useconds_t)(due - t > 20000 ? 20000 : due - t));
		}
	}
	w->sent += (uint64_t)n;
	return true;
}

void run_give(brun *r, int n)
{
	if (!r->capped)
		return;
	for (int i = 0; i < n; i++)
		sem_post(&r->backlog);
}

void run_pushed(brun *r, uint64_t n)
{
	atomic_fetch_add(&r->pushed, n);
}

void run_acked(brun *r, uint64_t n)
{
	atomic_fetch_add(&r->acked, n);
	run_give(r, (int)n);
}

void run_pulled(brun *r, uint64_t n)
{
	atomic_fetch_add(&r->pulled, n);
}

void run_error(brun *r, const char *what, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (atomic_fetch_add(&r->errors, 1) < 5)
		fprintf(stderr, "mqbench: %s: %s: %s\n", r->sys->name, what, msg);
	pthread_mutex_lock(&r->err_mu);
	if (r->first_error[0] == '\0')
		snprintf(r->first_error, sizeof(r->first_error), "%s: %s", what, msg);
	pthread_mutex_unlock(&r->err_mu);
}

const uint8_t *payload_stamp(bw *w)
{
	uint64_t v[2] = {now_us(), ((uint64_t)w->idx << 48) | ++w->seq};

	memcpy(w->buf, v, w->run->size < sizeof(v) ? w->run->size : sizeof(v));
	return w->buf;
}

uint64_t payload_time(const void *p, size_t len)
{
	uint64_t t = 0;

	if (len >= sizeof(t))
		memcpy(&t, p, sizeof(t));
	return t;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static pct percentiles(bw *ws, int n, size_t off)
{
	size_t total = 0, k = 0;
	pct r = {0};
	uint32_t *all;

	for (int i = 0; i < n; i++)
		total += ((lat *)((char *)&ws[i] + off))->n;
	if (total == 0 || (all = malloc(total * sizeof(*all))) == NULL)
		return r;
	for (int i = 0; i < n; i++) {
		lat *l = (lat *)((char *)&ws[i] + off);

		if (l->n > 0)
			memcpy(all + k, l->us, l->n * sizeof(*all));
		k += l->n;
	}
	qsort(all, total, sizeof(*all), cmp_u32);
	r.p50 = all[total / 2] / 1000.0;
	r.p99 = all[(size_t)((double)total * 0.99)] / 1000.0;
	r.p999 = all[(size_t)((double)total * 0.999)] / 1000.0;
	r.n = total;
	free(all);
	return r;
}

int run_measure(brun *r, double warmup, double seconds, bresult *out)
{
	const bsys *s = r->sys;
	int pp = s->threads_per ? s->threads_per(r, ROLE_PRODUCER) : 1;
	int cp = s->threads_per ? s->threads_per(r, ROLE_CONSUMER) : 1;
	int np = r->producers * pp, nc = r->consumers * cp, n = np + nc, opened = 0;
	bw *ws = calloc((size_t)(n > 0 ? n : 1), sizeof(*ws));
	char err[256] = "";
	int rv = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_init(&r->err_mu, NULL);
	if (sem_init(&r->backlog, 0, r->backlog_cap ? r->backlog_cap : 512) != 0 || ws == NULL)
		return -1;
	for (int i = 0; i < n; i++) {
		bw *w = &ws[i];

		w->run = r;
		w->role = i < np ? ROLE_PRODUCER : ROLE_CONSUMER;
		w->idx = i < np ? i / pp : (i - np) / cp;
		w->sub = i < np ? i % pp : (i - np) % cp;
		pthread_mutex_init(&w->mu, NULL);
		w->buf = malloc(r->size + 16);
		if (w->buf == NULL)
			return -1;
		memset(w->buf, 'x', r->size + 16);
		if (w->sub > 0) /* shares the connection of thread 0 */
			w->conn = ws[i - w->sub].conn;
		else if (s->open(w, err, sizeof(err)) != 0) {
			fprintf(stderr, "mqbench: %s: connect: %s\n", s->name, err);
			snprintf(r->first_error, sizeof(r->first_error), "connect: %s", err);
			rv = -1;
			break;
		}
		opened++;
	}
	if (rv == 0) {
		r->t0_us = now_us();
		for (int i = 0; i < n; i++)
			pthread_create(&ws[i].th, NULL,
			               ws[i].role == ROLE_PRODUCER ? s->producer : s->consumer,
			               &ws[i]);
		usleep((useconds_t)(warmup * 1e6));
		uint64_t p0 = atomic_load(&r->pushed), a0 = atomic_load(&r->acked);
		uint64_t e0 = atomic_load(&r->errors);
		double cpu0 = r->srv && r->srv->pid > 0 ? srv_cpu_s(r->srv) : 0;
		double pg0 = r->srv && r->srv->pg_pid > 0 ? tree_cpu_s(r->srv->pg_pid) : 0;
		uint64_t t0 = now_us(), next_tick = t0; /* a first sample at once */
		double last_tick = -1;

		if (r->window != NULL)
			r->window(r, false);
		atomic_store(&r->measuring, true);
		while (!atomic_load(&r->stop) && now_us() - t0 < (uint64_t)(seconds * 1e6)) {
			usleep(10000);
			if (r->tick != NULL && now_us() >= next_tick) {
				last_tick = (double)(now_us() - t0) / 1e6;
				r->tick(r, last_tick);
				next_tick += (uint64_t)(r->tick_s * 1e6);
			}
		}
		atomic_store(&r->measuring, false);
		if (r->window != NULL)
			r->window(r, true);
		out->seconds = (double)(now_us() - t0) / 1e6;
		out->pushed = atomic_load(&r->pushed) - p0;
		out->acked = atomic_load(&r->acked) - a0;
		if (r->srv && r->srv->pid > 0) {
			out->cpu_s = srv_cpu_s(r->srv) - cpu0;
			out->have_cpu = true;
		}
		if (r->srv && r->srv->pg_pid > 0) {
			out->pg_cpu_s = tree_cpu_s(r->srv->pg_pid) - pg0;
			out->have_pg_cpu = true;
		}
		/* The last sample at the window's end, unless one was just taken. */
		if (r->tick != NULL && out->seconds - last_tick >= r->tick_s / 2)
			r->tick(r, out->seconds);
		atomic_store(&r->stop, true);
		for (int i = 0; i < n; i++)
			pthread_join(ws[i].th, NULL);
		out->errors = atomic_load(&r->errors) - e0;
		out->rate = (double)(r->consumers ? out->acked : out->pushed) /
		            (out->seconds > 0 ? out->seconds : 1);
		out->push = percentiles(ws, n, offsetof(bw, push_lat));
		out->pull = percentiles(ws, n, offsetof(bw, pull_lat));
		out->ack = percentiles(ws, n, offsetof(bw, ack_lat));
	}
	for (int i = 0; i < opened; i++)
		if (ws[i].sub == 0)
			s->close(&ws[i]);
	for (int i = 0; i < n; i++) {
		free(ws[i].push_lat.us);
		free(ws[i].pull_lat.us);
		free(ws[i].ack_lat.us);
		free(ws[i].buf);
		pthread_mutex_destroy(&ws[i].mu);
	}
	free(ws);
	snprintf(out->first_error, sizeof(out->first_error), "%s", r->first_error);
	if (r->srv)
		snprintf(out->durability, sizeof(out->durability), "%s", r->srv->durability);
	sem_destroy(&r->backlog);
	return rv;
}
