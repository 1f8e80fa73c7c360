/* SPDX-License-Identifier: MIT */
/*
 * metrics.c: lock-free broker-wide counters and their Prometheus text.
 * Methods are indexed by their position in the generated service
 * descriptor, so methods added to mq.proto are counted without edits here.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "metrics.h"

#define MAX_METHODS  128 /* methods of mq.Broker counted; the rest as "other" */
#define N_STATUS     17  /* gRPC codes 0..16 */
#define LAT_BUCKETS  16
#define SIZE_BUCKETS 12

static const double lat_bounds[LAT_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                               0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
static const double size_bounds[SIZE_BUCKETS] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};

typedef struct histo {
	atomic_uint_fast64_t bucket[LAT_BUCKETS + 1]; /* non-cumulative; last = +Inf */
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum; /* ns, or units for sizes */
} histo;

/* Slot MAX_METHODS is for requests without a known method. */
static atomic_uint_fast64_t req_total[MAX_METHODS + 1][N_STATUS];
static histo req_latency[MAX_METHODS + 1];
static histo commit_latency;
static histo batch_size;
static atomic_int parked, conns;

uint64_t brk_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void histo_add(histo *h, const double *bounds, int n, double v, uint64_t sum_add)
{
	int i = 0;

	while (i < n && v > bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum, sum_add, memory_order_relaxed);
}

static size_t method_slot(const ProtobufCMethodDescriptor *m)
{
	size_t i;

	if (m == NULL)
		return MAX_METHODS;
	i = (size_t)(m - mq__broker__descriptor.methods);
	return i < mq__broker__descriptor.n_methods && i < MAX_METHODS ? i : MAX_METHODS;
}

void brk_metrics_request(const ProtobufCMethodDescriptor *m, int status, uint64_t dur_ns)
{
	size_t slot = method_slot(m);

	if (status < 0 || status >= N_STATUS)
		status = 2; /* UNKNOWN */
	atomic_fetch_add_explicit(&req_total[slot][status], 1, memory_order_relaxed);
	histo_add(&req_latency[slot], lat_bounds, LAT_BUCKETS, (double)dur_ns / 1e9, dur_ns);
}

void brk_metrics_commit(size_t calls, uint64_t dur_ns)
{
	histo_add(&commit_latency, lat_bounds, LAT_BUCKETS, (double)dur_ns / 1e9, dur_ns);
	histo_add(&batch_size, size_bounds, SIZE_BUCKETS, (double)calls, calls);
}

void brk_metrics_parked_add(int delta)
{
	atomic_fetch_add_explicit(&parked, delta, memory_order_relaxed);
}

void brk_metrics_conn_add(int delta)
{
	atomic_fetch_add_explicit(&conns, delta, memory_order_relaxed);
}

void brk_metrics_printf(brk_metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (d == NULL) {
			b->failed = 1;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
}

static uint64_t ld(atomic_uint_fast64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* histo_render prints one series of a histogram; labels is "" or
 * `name="value",` (with the trailing comma). scale turns the sum into
 * base units. */
static void histo_render(brk_metrics_buf *b, const char *name, const char *labels, histo *h,
                         const double *bounds, int n, double scale)
{
	uint64_t cum = 0;
	size_t ll = strlen(labels);
	/* The label set without its trailing comma, for _sum and _count. */
	char plain[160];

	snprintf(plain, sizeof(plain), "%.*s", ll ? (int)ll - 1 : 0, labels);
	for (int i = 0; i < n; i++) {
		cum += ld(&h->bucket[i]);
		brk_metrics_printf(b, "%s_bucket{%sle=\"%g\"} %" PRIu64 "\n", name, labels,
		                   bounds[i], cum);
	}
	cum += ld(&h->bucket[n]);
	brk_metrics_printf(b, "%s_bucket{%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, cum);
	if (ll) {
		brk_metrics_printf(b, "%s_sum{%s} %.9g\n", name, plain,
		                   (double)ld(&h->sum) * scale);
		brk_metrics_printf(b, "%s_count{%s} %" PRIu64 "\n", name, plain, cum);
	} else {
		brk_metrics_printf(b, "%s_sum %.9g\n", name, (double)ld(&h->sum) * scale);
		brk_metrics_printf(b, "%s_count %" PRIu64 "\n", name, cum);
	}
}

void brk_metrics_render(brk_metrics_buf *b)
{
	const ProtobufCServiceDescriptor *sd = &mq__broker__descriptor;
	size_t nm = sd->n_methods < MAX_METHODS ? sd->n_methods : MAX_METHODS;

	brk_metrics_printf(b, "# HELP mq_requests_total Requests answered, by method and status "
	                      "(gRPC code name), over nng and HTTP.\n"
	                      "# TYPE mq_requests_total counter\n");
	for (size_t m = 0; m <= MAX_METHODS; m++) {
		if (m >= nm && m != MAX_METHODS)
			continue;
		const char *name = m == MAX_METHODS ? "unknown" : sd->methods[m].name;
		for (int s = 0; s < N_STATUS; s++) {
			uint64_t v = ld(&req_total[m][s]);
			if (v == 0 && !(s == 0 && m != MAX_METHODS))
				continue;
			brk_metrics_printf(
			    b, "mq_requests_total{method=\"%s\",status=\"%s\"} %" PRIu64 "\n", name,
			    mq_status_name(s), v);
		}
	}
	brk_metrics_printf(b, "# HELP mq_request_duration_seconds Time from a request's receipt "
	                      "to its reply (long polls included), by method.\n"
	                      "# TYPE mq_request_duration_seconds histogram\n");
	for (size_t m = 0; m <= MAX_METHODS; m++) {
		char labels[160];
		if (m >= nm && m != MAX_METHODS)
			continue;
		if (m == MAX_METHODS && ld(&req_latency[m].count) == 0)
			continue;
		snprintf(labels, sizeof(labels), "method=\"%s\",",
		         m == MAX_METHODS ? "unknown" : sd->methods[m].name);
		histo_render(b, "mq_request_duration_seconds", labels, &req_latency[m], lat_bounds,
		             LAT_BUCKETS, 1e-9);
	}
	brk_metrics_printf(b, "# HELP mq_commit_duration_seconds Time of one group-commit "
	                      "transaction's commit (with its fsyncs in durable mode).\n"
	                      "# TYPE mq_commit_duration_seconds histogram\n");
	histo_render(b, "mq_commit_duration_seconds", "", &commit_latency, lat_bounds, LAT_BUCKETS,
	             1e-9);
	brk_metrics_printf(b, "# HELP mq_commit_batch_size Requests applied in one group-commit "
	                      "transaction.\n"
	                      "# TYPE mq_commit_batch_size histogram\n");
	histo_render(b, "mq_commit_batch_size", "", &batch_size, size_bounds, SIZE_BUCKETS, 1);
	brk_metrics_printf(b,
	                   "# HELP mq_parked_pulls Long-poll pulls waiting for a message.\n"
	                   "# TYPE mq_parked_pulls gauge\n"
	                   "mq_parked_pulls %d\n"
	                   "# HELP mq_connections Open nng connections.\n"
	                   "# TYPE mq_connections gauge\n"
	                   "mq_connections %d\n",
	                   atomic_load(&parked), atomic_load(&conns));
}
