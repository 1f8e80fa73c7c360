/* SPDX-License-Identifier: MIT */
/* rpc.c: the wire envelope. Packs a method's request into a Request
 * {version, method, auth_token, body}, sends it through the transport
 * (client.c) and unpacks the Reply {status, message, body}. Method names
 * and reply types come only from the generated descriptor of service
 * Broker, so they cannot drift from proto/mq.proto. */
#include <stdlib.h>

#include "mq.pb-c.h"
#include "rpc.h"

struct mqc_rpc_call {
	const ProtobufCMethodDescriptor *method;
	mqc_rpc_req req;
	ProtobufCMessage *reply;
};

/* mqc_method_for finds the Broker method taking requests of type @p in. */
static const ProtobufCMethodDescriptor *mqc_method_for(const ProtobufCMessageDescriptor *in)
{
	for (unsigned i = 0; i < mq__broker__descriptor.n_methods; i++) {
		if (mq__broker__descriptor.methods[i].input == in)
			return &mq__broker__descriptor.methods[i];
	}
	return NULL;
}

static void mqc_rpc_encode(void *arg, uint8_t *dst)
{
	struct mqc_rpc_call *call = arg;

	mqc_rpc_pack(&call->req, dst);
}

static mq_status mqc_rpc_decode(void *arg, const uint8_t *data, size_t len)
{
	struct mqc_rpc_call *call = arg;
	Mq__Reply *rep;
	mq_status st;

	rep = mq__reply__unpack(NULL, len, data);
	if (rep == NULL)
		return mqc_fail(MQ_INTERNAL, "%s: undecodable reply envelope (%zu bytes)",
		                call->method->name, len);
	if (rep->status != MQ_OK) {
		if (rep->status > MQ_UNAUTHENTICATED)
			st = mqc_fail(MQ_UNKNOWN, "%s: broker status %u: %s", call->method->name,
			              rep->status, rep->message);
		else
			st = mqc_fail((mq_status)rep->status, "%s", rep->message);
		mq__reply__free_unpacked(rep, NULL);
		return st;
	}
	call->reply =
	    protobuf_c_message_unpack(call->method->output, NULL, rep->body.len, rep->body.data);
	mq__reply__free_unpacked(rep, NULL);
	if (call->reply == NULL)
		return mqc_fail(MQ_INTERNAL, "%s: undecodable %s", call->method->name,
		                call->method->output->short_name);
	return MQ_OK;
}

mq_status mqc_rpc_decode_reply(const ProtobufCMethodDescriptor *method, const uint8_t *data,
                               size_t len, ProtobufCMessage **reply)
{
	struct mqc_rpc_call call = {.method = method};
	mq_status st = mqc_rpc_decode(&call, data, len);

	if (st == MQ_OK)
		*reply = call.reply;
	return st;
}

/* varint_put writes v as a varint; returns its length. */
static size_t varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	do {
		p[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			p[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

mq_status mqc_rpc_prepare(mq_client *c, const ProtobufCMessage *req, mqc_rpc_req *r)
{
	uint8_t tmp[10];

	if ((r->method = mqc_method_for(req->descriptor)) == NULL)
		return mqc_fail(MQ_INTERNAL, "no Broker method takes %s", req->descriptor->name);
	mq__request__init(&r->env);
	r->env.version = MQ_PROTOCOL_VERSION;
	r->env.method = (char *)r->method->name;
	r->env.auth_token = (char *)mqc_auth_token(c);
	r->req = req;
	r->blen = protobuf_c_message_get_packed_size(req);
	r->len = mq__request__get_packed_size(&r->env);
	if (r->blen > 0) /* field 4 (body): tag, length, the packed request */
		r->len += 1 + varint_put(tmp, r->blen) + r->blen;
	return MQ_OK;
}

void mqc_rpc_pack(const mqc_rpc_req *r, uint8_t *dst)
{
	size_t n = mq__request__pack(&r->env, dst);

	if (r->blen == 0)
		return;
	dst[n++] = (4u << 3) | 2u; /* body = 4, length-delimited */
	n += varint_put(dst + n, r->blen);
	protobuf_c_message_pack(r->req, dst + n);
}

mq_status mqc_rpc(mq_client *c, const ProtobufCMessage *req, uint32_t extra_ms,
                  ProtobufCMessage **reply)
{
	struct mqc_rpc_call call = {0};
	mq_status st;

	if ((st = mqc_rpc_prepare(c, req, &call.req)) != MQ_OK)
		return st;
	call.method = call.req.method;
	st = mqc_transact(c, call.req.len, mqc_rpc_encode, mqc_rpc_decode, &call, extra_ms);
	if (st != MQ_OK)
		return st;
	*reply = call.reply;
	return MQ_OK;
}
