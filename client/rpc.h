/* SPDX-License-Identifier: MIT */
/* rpc.h: one protobuf call to the broker through the Request/Reply
 * envelope. For message.c and queue.c only (they see mq.pb-c.h). */
#ifndef MQC_RPC_H
#define MQC_RPC_H

#include <protobuf-c/protobuf-c.h>

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

#endif
