/* SPDX-License-Identifier: MIT */
/*
 * fuzz_request.c: libFuzzer target for the broker's request decoder and
 * dispatch. An input is a sequence of requests, each a 2-byte big-endian
 * length then that many bytes of (what should be) an mq.Request envelope.
 * Each runs through brk_service_dispatch, the function the server calls
 * with a received message, against a fresh memory store and the real
 * writer thread (group commit, parked pulls, timers). This file provides
 * brk_call_finish (server.c's sends the reply over nng); it checks that
 * every call is answered exactly once, that the reply packs and unpacks as
 * an mq.Reply, that an error carries a message and that an OK body decodes
 * as the method's output type.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"

#define MAX_CALLS 32

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static brk_config cfg;
static brk_info info;
static atomic_int finished;

typedef struct fz_call {
	brk_call c;
	atomic_int answers;
} fz_call;

void brk_call_finish(brk_call *c)
{
	fz_call *f = (fz_call *)c;
	Mq__Reply reply = MQ__REPLY__INIT, *back;
	uint8_t *buf;
	size_t n;

	reply.status = (uint32_t)c->status;
	if (c->status != MQ_OK) {
		reply.message = c->errmsg[0] ? c->errmsg : (char *)mq_strerror(c->status);
		if (!c->errmsg[0])
			abort(); /* every error carries a human message */
	} else {
		reply.body.data = c->body;
		reply.body.len = c->body_len;
		if (c->method != NULL) {
			ProtobufCMessage *out = protobuf_c_message_unpack(c->method->output, NULL,
			                                                  c->body_len, c->body);
			if (out == NULL)
				abort(); /* an OK body is the method's output type */
			protobuf_c_message_free_unpacked(out, NULL);
		}
	}
	n = mq__reply__get_packed_size(&reply);
	buf = malloc(n ? n : 1);
	if (buf == NULL)
		abort();
	mq__reply__pack(&reply, buf);
	back = mq__reply__unpack(NULL, n, buf);
	if (back == NULL || back->status != reply.status)
		abort();
	mq__reply__free_unpacked(back, NULL);
	free(buf);
	brk_call_free_request(c);
	free(c->body);
	c->body = NULL;
	c->body_len = c->body_cap = 0;
	if (atomic_fetch_add(&f->answers, 1) != 0)
		abort(); /* answered twice */
	atomic_fetch_add(&finished, 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *args[] = {"mqd",
	                "--storage=memory",
	                "--data-dir=/nonexistent-mq-fuzz",
	                "--log-level=error",
	                "--max-payload=64K",
	                "--max-request=1M",
	                NULL};

	(void)argc;
	(void)argv;
	if (brk_config_load(&cfg, 6, args) != 0)
		abort();
	brk_log_level = brk_log_parse_level("error");
	info.cfg = &cfg;
	info.start_ms = brk_mono_ms();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	store_config scfg = {0};
	store_err err;
	fz_call *calls[MAX_CALLS];
	int n = 0;

	scfg.engine = "memory";
	scfg.default_lease_ms = cfg.default_lease_ms;
	scfg.default_max_attempts = cfg.default_max_attempts;
	scfg.on_ready = brk_writer_store_ready;
	scfg.ready_arg = &info;
	if (store_open(&info.store, &scfg, &err) != MQ_OK)
		abort();
	brk_service_init(&info);
	if (brk_writer_start(&info.writer, &info) != 0)
		abort();
	atomic_store(&finished, 0);
	while (size >= 2 && n < MAX_CALLS) {
		size_t len = ((size_t)data[0] << 8) | data[1];
		uint8_t *msg;

		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		calls[n] = calloc(1, sizeof(fz_call));
		msg = malloc(len ? len : 1);
		if (calls[n] == NULL || msg == NULL)
			abort();
		memcpy(msg, data, len); /* an exact-size copy, so ASan sees overreads */
		brk_service_dispatch(&info, &calls[n]->c, msg, len);
		free(msg);
		n++;
		data += len;
		size -= len;
	}
	brk_writer_stop(info.writer); /* applies what is queued, answers parked pulls */
	brk_writer_free(info.writer);
	info.writer = NULL;
	if (atomic_load(&finished) != n)
		abort(); /* every call answered */
	for (int i = 0; i < n; i++)
		free(calls[i]);
	store_close(info.store);
	info.store = NULL;
	return 0;
}
