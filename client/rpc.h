/* SPDX-License-Identifier: MIT */
/* rpc.h: one protobuf call to the broker through the Request/Reply
 * envelope. For message.c and queue.c only (they see mq.pb-c.h). */
#ifndef MQC_RPC_H
#define MQC_RPC_H

#include <protobuf-c/protobuf-c.h>

#include "mq.pb-c.h"
#include "mqc.h"

/* mqc_rpc calls the Broker method whose input type is @p req's type (each
 * method of service Broker has its own request message, so the request
 * names the method: the method name and reply type come from the generated
 * service descriptor). On MQ_OK *reply holds the unpacked reply, to free
 * with protobuf_c_message_free_unpacked(*reply, NULL).
 * @param extra_ms time the call may take beyond opts.timeout_ms (long poll)
 * @return MQ_OK; the broker's status with its message; transport errors
 *   (mqc_transact); MQ_INTERNAL for an undecodable reply. */
mq_status mqc_rpc(mq_client *c, const ProtobufCMessage *req, uint32_t extra_ms,
                  ProtobufCMessage **reply);

/* mqc_rpc_req is a request ready to be packed into its Request envelope:
 * the envelope's fields but the body, and the method's request, packed as
 * the body straight into the destination (no intermediate buffer). */
typedef struct mqc_rpc_req {
	const ProtobufCMethodDescriptor *method;
	const ProtobufCMessage *req; /* borrowed: valid until mqc_rpc_pack */
	Mq__Request env;             /* without body */
	size_t blen;                 /* packed size of req */
	size_t len;                  /* packed size of the whole envelope */
} mqc_rpc_req;

/* mqc_rpc_prepare is the first half of mqc_rpc for callers that do their
 * own transport (async.c): it finds the method of @p req and sizes its
 * envelope (r->len bytes). @p req must stay unchanged until mqc_rpc_pack.
 * @return MQ_OK; MQ_INTERNAL (no such method). */
mq_status mqc_rpc_prepare(mq_client *c, const ProtobufCMessage *req, mqc_rpc_req *r);

/* mqc_rpc_pack writes exactly r->len bytes of the envelope into @p dst. */
void mqc_rpc_pack(const mqc_rpc_req *r, uint8_t *dst);

/* mqc_rpc_decode_reply is the second half: it unpacks a Reply envelope for
 * @p method. On MQ_OK *reply is as for mqc_rpc. Sets the calling thread's
 * mq_errmsg() on failure, so it may run on an nng thread.
 * @return MQ_OK; the broker's status; MQ_INTERNAL for an undecodable reply. */
mq_status mqc_rpc_decode_reply(const ProtobufCMethodDescriptor *method, const uint8_t *data,
                               size_t len, ProtobufCMessage **reply);

/* mqc_push_fill sets pm from one message's payload and options, for every
 * push path (message.c, async.c). It allocates the header arrays *hps and
 * *hpp, which the caller frees (also on failure).
 * @return MQ_OK; MQ_INVALID_ARGUMENT (message set); MQ_INTERNAL (memory). */
mq_status mqc_push_fill(Mq__PushMessage *pm, const void *payload, size_t len,
                        const mq_push_opts *opts, Mq__Header **hps, Mq__Header ***hpp);

#endif
