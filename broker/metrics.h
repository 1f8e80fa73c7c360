/* SPDX-License-Identifier: MIT */
/*
 * metrics.h: broker-wide counters for GET /metrics (Prometheus text format).
 * Every update is a relaxed C11 atomic: no lock on the request or commit
 * path. Per-queue numbers are not kept here: they are read from the store
 * (ListQueues through the writer) when /metrics is scraped.
 */
#ifndef BRK_METRICS_H
#define BRK_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* brk_metrics_buf is a growing text buffer. */
typedef struct brk_metrics_buf {
	char *data;
	size_t len, cap;
	int failed; /* out of memory */
} brk_metrics_buf;

void brk_metrics_printf(brk_metrics_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

uint64_t brk_mono_ns(void);

/* brk_metrics_request counts one answered request (m NULL: undecodable). */
void brk_metrics_request(const ProtobufCMethodDescriptor *m, int status, uint64_t dur_ns);
/* brk_metrics_commit records one committed group-commit transaction. */
void brk_metrics_commit(size_t calls, uint64_t dur_ns);
void brk_metrics_parked_add(int delta);
void brk_metrics_conn_add(int delta);

/* brk_metrics_render appends the broker-wide families to b. */
void brk_metrics_render(brk_metrics_buf *b);

#endif
