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
	Mq__Request env;
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

	mq__request__pack(&call->env, dst);
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

mq_status mqc_rpc_pack_request(mq_client *c, const ProtobufCMessage *req,
                               const ProtobufCMethodDescriptor **method, uint8_t **out, size_t *len)
{
	Mq__Request env = MQ__REQUEST__INIT;
	uint8_t *body, *buf;
	size_t blen, elen;

	if ((*method = mqc_method_for(req->descriptor)) == NULL)
		return mqc_fail(MQ_INTERNAL, "no Broker method takes %s", req->descriptor->name);
	blen = protobuf_c_message_get_packed_size(req);
	/* +1: malloc(0) may return NULL for an empty request. */
	if ((body = malloc(blen + 1)) == NULL)
		return mqc_fail(MQ_INTERNAL, "out of memory");
	protobuf_c_message_pack(req, body);
	env.version = MQ_PROTOCOL_VERSION;
	env.method = (char *)(*method)->name;
	env.auth_token = (char *)mqc_auth_token(c);
	env.body.data = body;
	env.body.len = blen;
	elen = mq__request__get_packed_size(&env);
	if ((buf = malloc(elen + 1)) == NULL) {
		free(body);
		return mqc_fail(MQ_INTERNAL, "out of memory");
	}
	mq__request__pack(&env, buf);
	free(body);
	*out = buf;
	*len = elen;
	return MQ_OK;
}

mq_status mqc_rpc(mq_client *c, const ProtobufCMessage *req, uint32_t extra_ms,
                  ProtobufCMessage **reply)
{
	struct mqc_rpc_call call = {.env = MQ__REQUEST__INIT};
	uint8_t *body;
	size_t len;
	mq_status st;

	call.method = mqc_method_for(req->descriptor);
	if (call.method == NULL)
		return mqc_fail(MQ_INTERNAL, "no Broker method takes %s", req->descriptor->name);
	len = protobuf_c_message_get_packed_size(req);
	/* +1: malloc(0) may return NULL for an empty request. */
	if ((body = malloc(len + 1)) == NULL)
		return mqc_fail(MQ_INTERNAL, "out of memory");
	protobuf_c_message_pack(req, body);
	call.env.version = MQ_PROTOCOL_VERSION;
	call.env.method = (char *)call.method->name;
	call.env.auth_token = (char *)mqc_auth_token(c);
	call.env.body.data = body;
	call.env.body.len = len;
	st = mqc_transact(c, mq__request__get_packed_size(&call.env), mqc_rpc_encode,
	                  mqc_rpc_decode, &call, extra_ms);
	free(body);
	if (st != MQ_OK)
		return st;
	*reply = call.reply;
	return MQ_OK;
}
