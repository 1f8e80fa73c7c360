/* SPDX-License-Identifier: MIT */
/**
 * @file mq/status.h
 * @brief The one error model of mq: status codes shared by the broker, the
 * client library, the tools and the wire; and the queue-name rule, which
 * every layer checks the same way.
 *
 * The values are gRPC's canonical status codes. The numbers travel on the
 * wire in every reply and never change.
 */
#ifndef MQ_STATUS_H
#define MQ_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MQ_BUILDING_LIB) && defined(__GNUC__)
#define MQ_API __attribute__((visibility("default")))
#else
#define MQ_API
#endif

/**
 * MQ_STATUS_MAP is the single list of status codes: X(NAME, number, text).
 * The enum, mq_strerror() and mq_status_name() are generated from it.
 */
#define MQ_STATUS_MAP(X)                                                                           \
	X(OK, 0, "ok")                                                                             \
	X(CANCELLED, 1, "cancelled")                                                               \
	X(UNKNOWN, 2, "unknown error")                                                             \
	X(INVALID_ARGUMENT, 3, "invalid argument")                                                 \
	X(DEADLINE_EXCEEDED, 4, "deadline exceeded")                                               \
	X(NOT_FOUND, 5, "not found")                                                               \
	X(ALREADY_EXISTS, 6, "already exists")                                                     \
	X(PERMISSION_DENIED, 7, "permission denied")                                               \
	X(RESOURCE_EXHAUSTED, 8, "resource exhausted")                                             \
	X(FAILED_PRECONDITION, 9, "failed precondition")                                           \
	X(ABORTED, 10, "aborted")                                                                  \
	X(OUT_OF_RANGE, 11, "out of range")                                                        \
	X(UNIMPLEMENTED, 12, "unimplemented")                                                      \
	X(INTERNAL, 13, "internal error")                                                          \
	X(UNAVAILABLE, 14, "unavailable")                                                          \
	X(DATA_LOSS, 15, "data loss")                                                              \
	X(UNAUTHENTICATED, 16, "unauthenticated")

/** mq_status is returned by every fallible call; MQ_OK (0) is success. */
typedef enum mq_status {
#define MQ_STATUS_ENUM_(name, num, text) MQ_##name = num,
	MQ_STATUS_MAP(MQ_STATUS_ENUM_)
#undef MQ_STATUS_ENUM_
} mq_status;

/**
 * mq_strerror returns a short English description of @p status.
 * @return a static string; never NULL ("unknown status N" for values outside
 * the list, stored in a thread-local buffer valid until the next such call).
 */
MQ_API const char *mq_strerror(int status);

/**
 * mq_status_name returns the code's name, e.g. "NOT_FOUND".
 * @return a static string; "UNKNOWN_STATUS" for values outside the list.
 */
MQ_API const char *mq_status_name(int status);

/** MQ_NAME_MAX is the longest queue name, in bytes. */
#define MQ_NAME_MAX 128

/**
 * mq_name_valid tells whether @p name is a valid queue name: 1 to
 * MQ_NAME_MAX characters, each of [A-Za-z0-9._-].
 * @return 1 when valid, 0 otherwise (NULL is invalid).
 */
MQ_API int mq_name_valid(const char *name);

#ifdef __cplusplus
}
#endif
#endif
