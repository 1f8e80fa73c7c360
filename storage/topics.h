/* SPDX-License-Identifier: MIT */
/* topics.h: what queues.c needs of topics.c. Not included outside storage/. */
#ifndef MQ_STORAGE_TOPICS_H
#define MQ_STORAGE_TOPICS_H

#include "internal.h"

/* store_topic_queue_deleted detaches queue from its topic, if it is a
 * subscription; store_queue_delete calls it in its transaction. */
mq_status store_topic_queue_deleted(store_txn *t, const char *queue, store_err *err);

#endif
