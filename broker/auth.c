/* SPDX-License-Identifier: MIT */
/*
 * auth.c: tokens, the method -> permission table, and the check run before
 * every handler (auth.h).
 *
 * Token file (INI, read with inih: a flat list of named sections is all a
 * token file needs, and inih is a tiny, dependency-free parser; YAML would
 * bring a much larger grammar for no gain):
 *
 *     [ci-producer]               ; the token's name, shown in logs
 *     token = s3cret              ; the secret, or instead:
 *     sha256 = 5e8848...          ; its SHA-256 in hex (keeps the file secret-free)
 *     produce = orders.*, emails  ; name patterns, comma or space separated
 *     consume = orders.*
 *     admin =
 *
 * MQ_AUTH_TOKENS holds more tokens, separated by ';', each
 * "NAME=SECRET PERM=PATTERNS ...", e.g.
 *     MQ_AUTH_TOKENS='ci=s3cret produce=orders.*,emails; ops=sha256:5e88.. admin=*'
 *
 * Secrets are hashed (SHA-256) when loaded; a presented token is hashed and
 * compared with every stored hash with sodium_memcmp (constant time), the
 * loop never stopping early. Neither a secret nor a hash is ever logged.
 */
#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>
#include <sodium.h>

#include "auth.h"
#include "broker.h"
#include "log.h"

#define HASH_LEN      crypto_hash_sha256_BYTES
#define MAX_RESOURCES 16
#define MAX_DEPTH     4

typedef struct brk_grant {
	unsigned perms;
	char *pattern;
} brk_grant;

struct brk_token {
	char *name;
	uint8_t hash[HASH_LEN];
	bool has_hash;
	brk_grant *grants;
	size_t n_grants;
};

struct brk_auth {
	brk_token *tokens;
	size_t n_tokens;
};

/* ---- The method table -------------------------------------------------
 * One line per method of service mq.Broker. A method not listed here is
 * denied to every token (tests/test_auth.c checks that every method of the
 * generated service descriptor has a line). Scoped needs apply to every
 * queue/topic name the request carries (brk_auth_resources); a request
 * carrying none needs the permission on the pattern "*". */
static const struct {
	const char *method;
	brk_need need;
} method_table[] = {
    /* clang-format off */
    {"Push",          BRK_NEED_PRODUCE},
    {"Pull",          BRK_NEED_CONSUME},
    {"Ack",           BRK_NEED_CONSUME},
    {"Nack",          BRK_NEED_CONSUME},
    {"ExtendLease",   BRK_NEED_CONSUME},
    {"AckBatch",      BRK_NEED_CONSUME},
    {"NackBatch",     BRK_NEED_CONSUME},
    {"ExtendBatch",   BRK_NEED_CONSUME},
    {"Term",          BRK_NEED_CONSUME},
    {"Snooze",        BRK_NEED_CONSUME},
    {"ListMessages",  BRK_NEED_CONSUME},
    {"GetMessage",    BRK_NEED_CONSUME},
    {"DeleteMessage", BRK_NEED_ADMIN},
    {"Redrive",       BRK_NEED_ADMIN},
    {"CreateQueue",   BRK_NEED_ADMIN},
    {"GetQueue",      BRK_NEED_ANY},
    {"ListQueues",    BRK_NEED_TOKEN}, /* the reply lists only the queues it may see */
    {"UpdateQueue",   BRK_NEED_ADMIN},
    {"PauseQueue",    BRK_NEED_ADMIN},
    {"ResumeQueue",   BRK_NEED_ADMIN},
    {"PurgeQueue",    BRK_NEED_ADMIN},
    {"DeleteQueue",   BRK_NEED_ADMIN},
    {"Ping",          BRK_NEED_NONE},  /* liveness (the listener watchdog too): only the clock */
    {"ServerInfo",    BRK_NEED_TOKEN},
    /* Schedules push into queues on the broker's own authority: all admin.
     * Their names count as resources as well as their target queue. */
    {"CreateSchedule",     BRK_NEED_ADMIN},
    {"GetSchedule",        BRK_NEED_ADMIN},
    {"ListSchedules",      BRK_NEED_ADMIN},
    {"PauseSchedule",      BRK_NEED_ADMIN},
    {"ResumeSchedule",     BRK_NEED_ADMIN},
    {"DeleteSchedule",     BRK_NEED_ADMIN},
    /* Topics: publishing is producing to the topic; the rest is admin
     * (ListTopics is not filtered per token, so it needs admin on "*"). */
    {"CreateTopic",        BRK_NEED_ADMIN},
    {"DeleteTopic",        BRK_NEED_ADMIN},
    {"GetTopic",           BRK_NEED_ANY},
    {"ListTopics",         BRK_NEED_ADMIN},
    {"CreateSubscription", BRK_NEED_ADMIN},
    {"DeleteSubscription", BRK_NEED_ADMIN},
    {"Publish",            BRK_NEED_PRODUCE},
    /* Backups copy every queue's messages: admin on "*" (the requests
     * name no queue). */
    {"Backup",             BRK_NEED_ADMIN},
    {"BackupRead",         BRK_NEED_ADMIN},
    {"BackupEnd",          BRK_NEED_ADMIN},
    /* clang-format on */
};

brk_need brk_auth_method_need(const char *method)
{
	for (size_t i = 0; i < sizeof(method_table) / sizeof(method_table[0]); i++)
		if (strcmp(method_table[i].method, method) == 0)
			return method_table[i].need;
	return BRK_NEED_DENY;
}

static const char *need_verb(brk_need need)
{
	switch (need) {
	case BRK_NEED_PRODUCE:
		return "produce to";
	case BRK_NEED_CONSUME:
		return "consume from";
	case BRK_NEED_ADMIN:
		return "administer";
	default:
		return "access";
	}
}

/* ---- Resource names from any request ---------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool resource_field(const char *name, int depth)
{
	if (strcmp(name, "queue") == 0 || strcmp(name, "topic") == 0 ||
	    strcmp(name, "queues") == 0 || strcmp(name, "topics") == 0 ||
	    ends_with(name, "_queue") || ends_with(name, "_topic"))
		return true;
	/* `name` names the queue/topic itself in top-level requests only
	 * (CreateQueueRequest.name); nested messages use it for other things. */
	return depth == 0 && strcmp(name, "name") == 0;
}

static void collect(const ProtobufCMessage *msg, int depth, const char **names, size_t max,
                    size_t *n)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;

	if (depth > MAX_DEPTH)
		return;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)msg;
		const void *member = base + f->offset;
		size_t count = 1;
		const void *const *items = NULL;

		if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->type == PROTOBUF_C_TYPE_STRING && !resource_field(f->name, depth))
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			count = *(const size_t *)(base + f->quantifier_offset);
			items = *(const void *const *const *)member;
		} else {
			if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
				uint32_t which = *(const uint32_t *)(base + f->quantifier_offset);
				if (which != f->id)
					continue;
			}
			items = (const void *const *)member;
		}
		for (size_t k = 0; k < count && items != NULL; k++) {
			const void *v = items[k];
			if (v == NULL)
				continue;
			if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
				collect(v, depth + 1, names, max, n);
			} else if (*(const char *)v != '\0' &&
			           (const char *)v != (const char *)f->default_value) {
				if (*n < max)
					names[*n] = v;
				(*n)++;
			}
		}
	}
}

size_t brk_auth_resources(const ProtobufCMessage *msg, const char **names, size_t max)
{
	size_t n = 0;

	if (msg != NULL)
		collect(msg, 0, names, max, &n);
	return n;
}

/* ---- Loading tokens ----------------------------------------------------- */

static int parse_perm(const char *key)
{
	if (strcmp(key, "produce") == 0)
		return BRK_PERM_PRODUCE;
	if (strcmp(key, "consume") == 0)
		return BRK_PERM_CONSUME;
	if (strcmp(key, "admin") == 0)
		return BRK_PERM_ADMIN;
	return 0;
}

static int hex_hash(const char *hex, uint8_t out[HASH_LEN])
{
	size_t bin_len = 0;

	if (strlen(hex) != 2 * HASH_LEN ||
	    sodium_hex2bin(out, HASH_LEN, hex, strlen(hex), NULL, &bin_len, NULL) != 0 ||
	    bin_len != HASH_LEN)
		return -1;
	return 0;
}

static brk_token *token_get(brk_auth *a, const char *name)
{
	brk_token *t;

	for (size_t i = 0; i < a->n_tokens; i++)
		if (strcmp(a->tokens[i].name, name) == 0)
			return &a->tokens[i];
	t = realloc(a->tokens, (a->n_tokens + 1) * sizeof(*t));
	if (t == NULL)
		return NULL;
	a->tokens = t;
	t = &a->tokens[a->n_tokens++];
	memset(t, 0, sizeof(*t));
	t->name = strdup(name);
	return t->name != NULL ? t : NULL;
}

/* add_grants adds perm on every pattern of a comma/space separated list. */
static int add_grants(brk_token *t, unsigned perm, const char *list)
{
	char *copy = strdup(list), *save = NULL;

	if (copy == NULL)
		return -1;
	for (char *p = strtok_r(copy, ", \t", &save); p; p = strtok_r(NULL, ", \t", &save)) {
		brk_grant *g = realloc(t->grants, (t->n_grants + 1) * sizeof(*g));
		if (g == NULL) {
			free(copy);
			return -1;
		}
		t->grants = g;
		g[t->n_grants].perms = perm;
		g[t->n_grants].pattern = strdup(p);
		if (g[t->n_grants].pattern == NULL) {
			free(copy);
			return -1;
		}
		t->n_grants++;
	}
	free(copy);
	return 0;
}

static int set_secret(brk_token *t, const char *secret)
{
	if (strncmp(secret, "sha256:", 7) == 0)
		return hex_hash(secret + 7, t->hash) == 0 ? (t->has_hash = true, 0) : -1;
	if (*secret == '\0')
		return -1;
	crypto_hash_sha256(t->hash, (const unsigned char *)secret, strlen(secret));
	t->has_hash = true;
	return 0;
}

struct ini_ctx {
	brk_auth *a;
	const char *path;
	char err[256];
};

static int ini_cb(void *user, const char *section, const char *key, const char *value)
{
	struct ini_ctx *x = user;
	brk_token *t;
	int perm;

	if (x->err[0] != '\0')
		return 0; /* keep the first error */
	if (section[0] == '\0') {
		snprintf(x->err, sizeof(x->err), "%s: key '%.40s' outside a [token] section",
		         x->path, key);
		return 0;
	}
	if ((t = token_get(x->a, section)) == NULL) {
		snprintf(x->err, sizeof(x->err), "out of memory");
		return 0;
	}
	if (strcmp(key, "token") == 0 || strcmp(key, "sha256") == 0) {
		int rv;
		if (t->has_hash) {
			snprintf(x->err, sizeof(x->err), "%s: token [%.40s] has two secrets",
			         x->path, section);
			return 0;
		}
		rv = strcmp(key, "sha256") == 0 ? hex_hash(value, t->hash) : set_secret(t, value);
		if (rv != 0) {
			/* The value is a secret: never echo it. */
			snprintf(x->err, sizeof(x->err),
			         "%s: token [%.40s]: bad %s (want a non-empty token, or 64 hex "
			         "digits for sha256)",
			         x->path, section, key);
			return 0;
		}
		t->has_hash = true;
		return 1;
	}
	if ((perm = parse_perm(key)) == 0) {
		snprintf(x->err, sizeof(x->err),
		         "%s: token [%.40s]: unknown key '%.40s' (want token, sha256, produce, "
		         "consume or admin)",
		         x->path, section, key);
		return 0;
	}
	if (add_grants(t, (unsigned)perm, value) != 0) {
		snprintf(x->err, sizeof(x->err), "out of memory");
		return 0;
	}
	return 1;
}

/* load_env parses MQ_AUTH_TOKENS. */
static int load_env(brk_auth *a, const char *spec)
{
	char *copy = strdup(spec), *save = NULL;
	int rv = 0;

	if (copy == NULL)
		return -1;
	for (char *ent = strtok_r(copy, ";", &save); ent && rv == 0;
	     ent = strtok_r(NULL, ";", &save)) {
		char *save2 = NULL, *word = strtok_r(ent, " \t\n", &save2), *eq;
		brk_token *t;
		if (word == NULL)
			continue;
		if ((eq = strchr(word, '=')) == NULL || eq == word) {
			brk_err("MQ_AUTH_TOKENS: an entry does not start with NAME=SECRET");
			rv = -1;
			break;
		}
		*eq = '\0';
		for (size_t i = 0; i < a->n_tokens; i++)
			if (strcmp(a->tokens[i].name, word) == 0) {
				brk_err("MQ_AUTH_TOKENS: token name '%.40s' is used twice", word);
				rv = -1;
			}
		if (rv != 0)
			break;
		if ((t = token_get(a, word)) == NULL || set_secret(t, eq + 1) != 0) {
			brk_err("MQ_AUTH_TOKENS: token '%.40s': empty secret or bad sha256:HEX",
			        word);
			rv = -1;
			break;
		}
		while ((word = strtok_r(NULL, " \t\n", &save2)) != NULL) {
			int perm;
			if ((eq = strchr(word, '=')) == NULL) {
				brk_err(
				    "MQ_AUTH_TOKENS: token '%.40s': '%.40s' is not PERM=PATTERNS",
				    t->name, word);
				rv = -1;
				break;
			}
			*eq = '\0';
			if ((perm = parse_perm(word)) == 0) {
				brk_err("MQ_AUTH_TOKENS: token '%.40s': unknown permission '%.40s' "
				        "(want produce, consume or admin)",
				        t->name, word);
				rv = -1;
				break;
			}
			if (add_grants(t, (unsigned)perm, eq + 1) != 0) {
				rv = -1;
				break;
			}
		}
	}
	sodium_memzero(copy, strlen(spec));
	free(copy);
	return rv;
}

void brk_auth_free(brk_auth *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->n_tokens; i++) {
		brk_token *t = &a->tokens[i];
		for (size_t g = 0; g < t->n_grants; g++)
			free(t->grants[g].pattern);
		free(t->grants);
		free(t->name);
	}
	sodium_memzero(a->tokens, a->n_tokens * sizeof(*a->tokens));
	free(a->tokens);
	free(a);
}

bool brk_listen_is_loopback(const char *url)
{
	const char *host, *end;
	size_t n;

	if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0 ||
	    strncmp(url, "abstract://", 11) == 0)
		return true;
	if ((host = strstr(url, "://")) == NULL)
		return false;
	host += 3;
	if (*host == '[') {
		end = strchr(host, ']');
		return end != NULL && (size_t)(end - host) == 4 && strncmp(host, "[::1", 4) == 0;
	}
	end = strrchr(host, ':');
	n = end != NULL ? (size_t)(end - host) : strlen(host);
	if (n == 9 && strncasecmp(host, "localhost", 9) == 0)
		return true;
	return n >= 4 && strncmp(host, "127.", 4) == 0;
}

int brk_auth_open(brk_auth **out, const brk_config *cfg)
{
	const char *env = getenv("MQ_AUTH_TOKENS");
	bool loopback = true;
	brk_auth *a;

	*out = NULL;
	for (int i = 0; i < cfg->n_listen; i++)
		if (!brk_listen_is_loopback(cfg->listen[i]))
			loopback = false;
	if (sodium_init() < 0) {
		brk_err("libsodium failed to initialise");
		return -1;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return -1;
	if (cfg->auth_file[0] != '\0') {
		struct ini_ctx x = {.a = a, .path = cfg->auth_file};
		int rv = ini_parse(cfg->auth_file, ini_cb, &x);
		if (rv < 0) {
			brk_err("cannot read the token file %s", cfg->auth_file);
			goto fail;
		}
		if (rv > 0) {
			if (x.err[0] == '\0')
				snprintf(x.err, sizeof(x.err), "%s:%d: syntax error",
				         cfg->auth_file, rv);
			else
				snprintf(x.err + strlen(x.err), sizeof(x.err) - strlen(x.err),
				         " (line %d)", rv);
			brk_err("token file: %s", x.err);
			goto fail;
		}
	}
	if (env != NULL && *env != '\0' && load_env(a, env) != 0)
		goto fail;
	for (size_t i = 0; i < a->n_tokens; i++) {
		if (!a->tokens[i].has_hash) {
			brk_err("token [%s] has no token or sha256 key", a->tokens[i].name);
			goto fail;
		}
		for (size_t j = 0; j < i; j++)
			if (sodium_memcmp(a->tokens[i].hash, a->tokens[j].hash, HASH_LEN) == 0) {
				brk_err("tokens [%s] and [%s] have the same secret",
				        a->tokens[j].name, a->tokens[i].name);
				goto fail;
			}
	}

	if (strcmp(cfg->auth, "off") == 0) {
		if (a->n_tokens > 0)
			brk_warn("--auth=off: the %zu configured tokens are ignored", a->n_tokens);
		if (!loopback)
			brk_warn(
			    "!!! AUTHENTICATION IS OFF on a non-loopback listener: anyone who can "
			    "reach mqd can use and delete every queue. Configure tokens "
			    "(--auth-file, MQ_AUTH_TOKENS) and TLS; see docs/security.md !!!");
		brk_auth_free(a);
		return 0;
	}
	if (a->n_tokens == 0) {
		if (strcmp(cfg->auth, "on") == 0) {
			brk_err(
			    "--auth=on but no tokens are configured (--auth-file, MQ_AUTH_TOKENS)");
			goto fail;
		}
		if (!loopback) {
			brk_err(
			    "mqd listens on a non-loopback address and no tokens are configured: "
			    "configure tokens (--auth-file or MQ_AUTH_TOKENS), or pass --auth=off "
			    "to run without authentication (see docs/security.md)");
			goto fail;
		}
		brk_auth_free(a); /* auto, loopback/ipc only: off */
		return 0;
	}
	brk_info("authentication on: %zu tokens", a->n_tokens);
	*out = a;
	return 0;
fail:
	brk_auth_free(a);
	return -1;
}

/* ---- The check ---------------------------------------------------------- */

static const brk_token *find_token(const brk_auth *a, const char *presented)
{
	uint8_t h[HASH_LEN];
	const brk_token *found = NULL;

	crypto_hash_sha256(h, (const unsigned char *)presented, strlen(presented));
	/* Every stored hash is compared, whatever matched before. */
	for (size_t i = 0; i < a->n_tokens; i++) {
		bool eq = sodium_memcmp(h, a->tokens[i].hash, HASH_LEN) == 0;
		found = eq ? &a->tokens[i] : found;
	}
	sodium_memzero(h, sizeof(h));
	return found;
}

static bool token_may(const brk_token *t, unsigned perms, const char *name)
{
	for (size_t g = 0; g < t->n_grants; g++)
		if ((t->grants[g].perms & perms) != 0 &&
		    fnmatch(t->grants[g].pattern, name, 0) == 0)
			return true;
	return false;
}

/* anonymous is the caller of a method that needs no token: it may see
 * nothing. */
static const brk_token anonymous = {.name = (char *)"(none)"};

bool brk_auth_check(const brk_auth *a, struct brk_call *c)
{
	const char *names[MAX_RESOURCES];
	const char *method = c->method->name;
	const brk_token *t;
	brk_need need;
	unsigned perms;
	size_t n;

	c->token = NULL;
	if (a == NULL)
		return true;
	need = brk_auth_method_need(method);
	if ((c->env->auth_token == NULL || c->env->auth_token[0] == '\0') &&
	    need == BRK_NEED_NONE) {
		c->token = &anonymous;
		return true;
	}
	if (c->env->auth_token == NULL || c->env->auth_token[0] == '\0') {
		brk_call_set_error(c, MQ_UNAUTHENTICATED,
		                   "authentication required: this broker needs an auth token");
		brk_info("denied %s: no token", method);
		return false;
	}
	if ((t = find_token(a, c->env->auth_token)) == NULL) {
		brk_call_set_error(c, MQ_UNAUTHENTICATED, "invalid auth token");
		brk_info("denied %s: unknown token", method);
		return false;
	}
	c->token = t;
	if (need == BRK_NEED_DENY) {
		brk_call_set_error(c, MQ_PERMISSION_DENIED,
		                   "method %s has no entry in the broker's permission table",
		                   method);
		brk_err("method %s has no entry in auth.c's permission table: denied", method);
		return false;
	}
	if (need == BRK_NEED_TOKEN || need == BRK_NEED_NONE)
		return true;
	perms = need == BRK_NEED_ANY ? (BRK_PERM_PRODUCE | BRK_PERM_CONSUME | BRK_PERM_ADMIN)
	                             : (unsigned)need;
	n = brk_auth_resources(c->input, names, MAX_RESOURCES);
	if (n > MAX_RESOURCES) {
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "a request may name at most %d queues or topics", MAX_RESOURCES);
		return false;
	}
	if (n == 0) {
		names[0] = "";
		n = 1;
	}
	for (size_t i = 0; i < n; i++) {
		if (token_may(t, perms, names[i]))
			continue;
		/* Only the name the caller sent is repeated: nothing about other
		 * queues, and the check runs before the queue is looked up, so the
		 * answer is the same whether it exists or not. */
		if (names[i][0] == '\0')
			brk_call_set_error(c, MQ_PERMISSION_DENIED,
			                   "token '%s' may not call %s (it needs the permission on "
			                   "every queue, pattern \"*\")",
			                   t->name, method);
		else
			brk_call_set_error(c, MQ_PERMISSION_DENIED, "token '%s' may not %s '%.*s'",
			                   t->name, need_verb(need), MQ_NAME_MAX, names[i]);
		brk_info("denied %s: token '%s' on '%.*s'", method, t->name, MQ_NAME_MAX, names[i]);
		return false;
	}
	return true;
}

bool brk_auth_visible(const struct brk_call *c, const char *name)
{
	if (c->token == NULL)
		return true; /* auth off (with auth on, every call has a token) */
	return token_may(c->token, BRK_PERM_PRODUCE | BRK_PERM_CONSUME | BRK_PERM_ADMIN, name);
}
