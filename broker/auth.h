/* SPDX-License-Identifier: MIT */
/*
 * auth.h: token authentication and per-queue authorization of mqd.
 *
 * Tokens come from an INI file (--auth-file) and/or MQ_AUTH_TOKENS; each
 * has a name (what logs show; the secret never is), the SHA-256 of its
 * secret, and grants: a permission (produce, consume, admin) on queue or
 * topic name patterns (fnmatch globs: "orders.*", "*").
 *
 * Every method of service mq.Broker has an entry in a table (auth.c) that
 * says what it needs; a method missing from the table is denied. The
 * queue/topic names a request touches are found generically through the
 * protobuf-c descriptor of its input (fields `queue`, `name`, `topic`,
 * `queues`, `topics`, `*_queue`, `*_topic`, also inside nested messages),
 * so new methods only need a table line. See docs/security.md.
 */
#ifndef BRK_AUTH_H
#define BRK_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "config.h"

typedef struct brk_auth brk_auth;
typedef struct brk_token brk_token;
struct brk_call;

/* Permission bits of a grant. */
enum {
	BRK_PERM_PRODUCE = 1u,
	BRK_PERM_CONSUME = 2u,
	BRK_PERM_ADMIN = 4u,
};

/* What a method needs (the table in auth.c). */
typedef enum brk_need {
	BRK_NEED_DENY = -1, /* not in the table: always denied */
	BRK_NEED_NONE = 16, /* no token needed (Ping); a token given must be valid */
	BRK_NEED_TOKEN = 0, /* any valid token (ServerInfo, ListQueues) */
	BRK_NEED_PRODUCE = BRK_PERM_PRODUCE,
	BRK_NEED_CONSUME = BRK_PERM_CONSUME,
	BRK_NEED_ADMIN = BRK_PERM_ADMIN,
	BRK_NEED_ANY = 8, /* any permission on every name in the request (GetQueue) */
} brk_need;

/* brk_auth_open loads the tokens (file and environment) and decides
 * whether auth is on from cfg->auth and the listeners. Returns 0, or -1
 * with the reason logged (mqd must not start). *out is NULL when off. */
int brk_auth_open(brk_auth **out, const brk_config *cfg);
void brk_auth_free(brk_auth *a);

/* brk_auth_check runs before a request's handler: with auth on it finds
 * the token of c->env->auth_token (constant-time compare of hashes), then
 * checks the method's need against the names in c->input. On refusal it
 * sets c's error (UNAUTHENTICATED or PERMISSION_DENIED) and returns false.
 * It records the token in c->auth_token for brk_auth_visible. */
bool brk_auth_check(const brk_auth *a, struct brk_call *c);

/* brk_auth_visible tells whether the caller of c may see queue `name`
 * (any permission on it); always true with auth off. */
bool brk_auth_visible(const struct brk_call *c, const char *name);

/* brk_auth_method_need returns the table entry of a method name, or
 * BRK_NEED_DENY when it has none (tests check every method has one). */
brk_need brk_auth_method_need(const char *method);

/* brk_auth_resources collects up to max names (pointers into msg) that a
 * request message refers to; returns how many were found (possibly more
 * than max: only max are stored). */
size_t brk_auth_resources(const ProtobufCMessage *msg, const char **names, size_t max);

/* brk_listen_is_loopback tells whether a listen URL is reachable from
 * this host only (ipc://, inproc://, 127.0.0.0/8, ::1, localhost). */
bool brk_listen_is_loopback(const char *url);

#endif
