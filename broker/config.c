/* SPDX-License-Identifier: MIT */
/* config.c: the settings table and its parser. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

#ifndef MQ_VERSION_STRING
#define MQ_VERSION_STRING "unknown"
#endif

enum opt_type { T_STR, T_LIST, T_U32, T_SIZE, T_BOOL };

typedef struct opt_def {
	const char *flag; /* long flag without "--" */
	int short_flag;   /* 0 = none */
	const char *env;
	enum opt_type type;
	size_t off;
	const char *def; /* default, as text */
	uint64_t min, max;
	const char *help;
} opt_def;

#define OFF(f) offsetof(brk_config, f)

static const opt_def opts[] = {
    {"listen", 'l', "MQ_LISTEN", T_LIST, OFF(listen), BRK_DEFAULT_LISTEN, 0, 0,
     "URL to listen on (tcp://HOST:PORT, ipc:///PATH); repeatable; the variable takes a "
     "comma-separated list"},
    {"data-dir", 'd', "MQ_DATA_DIR", T_STR, OFF(data_dir), BRK_DEFAULT_DATA_DIR, 0, 0,
     "directory of the LMDB data files (created if missing)"},
    {"storage", 0, "MQ_STORAGE", T_STR, OFF(storage), "lmdb", 0, 0,
     "storage engine: lmdb (durable), memory (not durable) or postgres (shared by several mqd; "
     "docs/postgres.md)"},
    {"pg", 0, "MQ_PG", T_STR, OFF(pg), "", 0, 0,
     "postgres engine: libpq connection string or URI (e.g. 'host=db dbname=mq' or "
     "postgresql://user@db/mq)"},
    {"pg-schema", 0, "MQ_PG_SCHEMA", T_STR, OFF(pg_schema), "mq", 0, 0,
     "postgres engine: the schema of mq's tables (created if missing); mqd instances with "
     "the same --pg and --pg-schema serve the same queues"},
    {"durability", 0, "MQ_DURABILITY", T_STR, OFF(durability), "durable", 0, 0,
     "durable: a push is acknowledged only once synced to disk; relaxed: synced every "
     "--sync-interval-ms (a power loss may lose that interval)"},
    {"sync-interval-ms", 0, "MQ_SYNC_INTERVAL_MS", T_U32, OFF(sync_interval_ms), "10", 1, 60000,
     "relaxed durability: milliseconds between syncs"},
    {"map-size", 0, "MQ_MAP_SIZE", T_SIZE, OFF(map_size), "64M", 1 << 20, UINT64_MAX,
     "initial LMDB map size (K, M, G suffixes); it grows on demand"},
    {"map-size-max", 0, "MQ_MAP_SIZE_MAX", T_SIZE, OFF(map_size_max), "64G", 1 << 20, UINT64_MAX,
     "largest the LMDB map may grow; beyond it pushes get RESOURCE_EXHAUSTED"},
    {"max-payload", 0, "MQ_MAX_PAYLOAD", T_SIZE, OFF(max_payload), "1M", 0, 1ull << 30,
     "largest message payload accepted, bytes"},
    {"max-request", 0, "MQ_MAX_REQUEST", T_SIZE, OFF(max_request), "16M", 4096, 1ull << 31,
     "largest request frame; a larger one closes the connection"},
    {"default-lease-ms", 0, "MQ_DEFAULT_LEASE_MS", T_U32, OFF(default_lease_ms), "30000", 1,
     12u * 3600u * 1000u, "lease time of queues that do not set one"},
    {"default-max-attempts", 0, "MQ_DEFAULT_MAX_ATTEMPTS", T_U32, OFF(default_max_attempts), "5", 1,
     UINT32_MAX, "deliveries before a message goes dead, for queues that do not set it"},
    {"auto-create", 0, "MQ_AUTO_CREATE", T_BOOL, OFF(auto_create), "true", 0, 0,
     "create a queue with the default config on its first push (true/false)"},
    {"log-level", 0, "MQ_LOG_LEVEL", T_STR, OFF(log_level), "info", 0, 0,
     "error, warn, info or debug"},
    {"contexts", 0, "MQ_CONTEXTS", T_U32, OFF(contexts), "64", 1, 65536,
     "nng contexts receiving at start; more are added under load"},
    {"max-contexts", 0, "MQ_MAX_CONTEXTS", T_U32, OFF(max_contexts), "8192", 1, 1u << 20,
     "most requests in flight at once (parked long polls included)"},
    {"max-batch", 0, "MQ_MAX_BATCH", T_U32, OFF(max_batch), "4096", 1, 1u << 20,
     "most requests applied in one storage transaction (group commit)"},
    /* ops: HTTP listener and log format. */
    {"http-listen", 0, "MQ_HTTP_LISTEN", T_STR, OFF(http_listen), "", 0, 0,
     "HTTP listener (http://HOST:PORT; port 0 picks one) for the JSON API, /metrics, /livez "
     "and /readyz; empty = off"},
    {"log-format", 0, "MQ_LOG_FORMAT", T_STR, OFF(log_format), "text", 0, 0,
     "log line format: text or json (one JSON object per line)"},
    /* ---- security and connection limits (docs/security.md) ---- */
    {"tls-cert", 0, "MQ_TLS_CERT", T_STR, OFF(tls_cert), "", 0, 0,
     "PEM certificate (chain) served on tls+tcp:// listeners"},
    {"tls-key", 0, "MQ_TLS_KEY", T_STR, OFF(tls_key), "", 0, 0, "PEM private key of --tls-cert"},
    {"tls-ca", 0, "MQ_TLS_CA", T_STR, OFF(tls_ca), "", 0, 0,
     "PEM CA certificates that verify client certificates (mutual TLS)"},
    {"tls-client-auth", 0, "MQ_TLS_CLIENT_AUTH", T_STR, OFF(tls_client_auth), "auto", 0, 0,
     "client certificates: none, optional or required; auto = required when --tls-ca is "
     "set, else none"},
    {"auth", 0, "MQ_AUTH", T_STR, OFF(auth), "auto", 0, 0,
     "token authentication: on, off, or auto (on when tokens are configured; mqd refuses "
     "to start without tokens on a non-loopback listener unless --auth=off)"},
    {"auth-file", 0, "MQ_AUTH_FILE", T_STR, OFF(auth_file), "", 0, 0,
     "INI file of tokens and their permissions (tokens may also come from MQ_AUTH_TOKENS)"},
    {"max-connections", 0, "MQ_MAX_CONNECTIONS", T_U32, OFF(max_connections), "1000", 1, 1u << 20,
     "most client connections at once; more are refused with RESOURCE_EXHAUSTED"},
    {"max-parked-pulls", 0, "MQ_MAX_PARKED_PULLS", T_U32, OFF(max_parked_pulls), "64", 1, 1u << 20,
     "most long-poll pulls (wait_ms > 0) waiting at once on one connection"},
    /* ---- backup (docs/backup.md) ---- */
    {"restore", 0, "MQ_RESTORE", T_STR, OFF(restore), "", 0, 0,
     "restore this backup file (made by mqctl backup) into --data-dir, which must not exist "
     "or be empty, then exit (0 = restored); start mqd again without it to serve"},
    {"backup-idle-ms", 0, "MQ_BACKUP_IDLE_MS", T_U32, OFF(backup_idle_ms), "60000", 100, 86400000,
     "a backup's temporary file is deleted after this long without a read"},
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: mqd [options]\n\n"
	           "mqd is the mq broker: a durable job queue served over nng (protobuf).\n\n"
	           "options (each also read from the environment variable shown):\n");
	for (size_t i = 0; i < N_OPTS; i++) {
		char flag[64];
		if (opts[i].short_flag)
			snprintf(flag, sizeof(flag), "-%c, --%s", opts[i].short_flag, opts[i].flag);
		else
			snprintf(flag, sizeof(flag), "    --%s", opts[i].flag);
		fprintf(f, "  %-26s %s\n  %-26s [%s, default %s]\n", flag, opts[i].help, "",
		        opts[i].env, opts[i].def);
	}
	fprintf(f, "  -h, --help                 this text\n"
	           "  -V, --version              print the version\n");
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return -1;
	uint64_t mul = 1;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mul = 1ull << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mul = 1ull << 20;
		end++;
		break;
	case 'g':
	case 'G':
		mul = 1ull << 30;
		end++;
		break;
	default:
		return -1;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end != '\0' || (v != 0 && mul > UINT64_MAX / v))
		return -1;
	*out = v * mul;
	return 0;
}

static int set_opt(brk_config *cfg, const opt_def *o, const char *val, const char *from)
{
	char *base = (char *)cfg;
	uint64_t v;

	switch (o->type) {
	case T_STR: {
		char **p = (char **)(base + o->off);
		free(*p);
		*p = strdup(val);
		return 0;
	}
	case T_LIST: {
		/* A flag appends (after dropping the default); the variable and the
		 * default are comma-separated lists. */
		char *copy = strdup(val), *save = NULL;
		for (char *tok = strtok_r(copy, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			if (cfg->n_listen >= BRK_MAX_LISTEN) {
				fprintf(stderr, "mqd: at most %d listen URLs\n", BRK_MAX_LISTEN);
				free(copy);
				return -1;
			}
			cfg->listen[cfg->n_listen++] = strdup(tok);
		}
		free(copy);
		return 0;
	}
	case T_BOOL: {
		bool *p = (bool *)(base + o->off);
		if (!strcmp(val, "1") || !strcasecmp(val, "true") || !strcasecmp(val, "yes") ||
		    !strcasecmp(val, "on"))
			*p = true;
		else if (!strcmp(val, "0") || !strcasecmp(val, "false") || !strcasecmp(val, "no") ||
		         !strcasecmp(val, "off"))
			*p = false;
		else
			goto bad;
		return 0;
	}
	case T_U32:
	case T_SIZE:
		if (parse_size(val, &v) != 0 || v < o->min || v > o->max ||
		    (o->type == T_U32 && v > UINT32_MAX))
			goto bad;
		if (o->type == T_U32)
			*(uint32_t *)(base + o->off) = (uint32_t)v;
		else
			*(uint64_t *)(base + o->off) = v;
		return 0;
	}
bad:
	fprintf(stderr, "mqd: invalid value '%s' for %s%s", val, from,
	        o->type == T_BOOL ? " (want true or false)\n" : "");
	if (o->type == T_U32 || o->type == T_SIZE)
		fprintf(stderr, " (want %" PRIu64 " to %" PRIu64 ")\n", o->min, o->max);
	return -1;
}

static void clear_list(brk_config *cfg)
{
	for (int i = 0; i < cfg->n_listen; i++)
		free(cfg->listen[i]);
	cfg->n_listen = 0;
}

int brk_config_load(brk_config *cfg, int argc, char **argv)
{
	struct option lopts[N_OPTS + 3];
	char shorts[64] = "hV";
	bool listen_from_flag = false;

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_OPTS; i++) {
		const char *env = getenv(opts[i].env);
		char from[64];
		if (set_opt(cfg, &opts[i], opts[i].def, "default") != 0)
			return -1;
		if (env && *env) {
			if (opts[i].type == T_LIST)
				clear_list(cfg);
			snprintf(from, sizeof(from), "%s", opts[i].env);
			if (set_opt(cfg, &opts[i], env, from) != 0)
				return -1;
		}
		lopts[i] = (struct option){opts[i].flag, required_argument, NULL, 256 + (int)i};
		if (opts[i].short_flag) {
			size_t n = strlen(shorts);
			shorts[n] = (char)opts[i].short_flag;
			shorts[n + 1] = ':';
			shorts[n + 2] = '\0';
		}
	}
	lopts[N_OPTS] = (struct option){"help", no_argument, NULL, 'h'};
	lopts[N_OPTS + 1] = (struct option){"version", no_argument, NULL, 'V'};
	lopts[N_OPTS + 2] = (struct option){0, 0, 0, 0};

	optind = 1;
	for (;;) {
		int c = getopt_long(argc, argv, shorts, lopts, NULL);
		const opt_def *o = NULL;
		char from[80];
		if (c == -1)
			break;
		if (c == 'h') {
			usage(stdout);
			return 1;
		}
		if (c == 'V') {
			printf("mqd %s\n", MQ_VERSION_STRING);
			return 1;
		}
		if (c >= 256 && c < 256 + (int)N_OPTS)
			o = &opts[c - 256];
		for (size_t i = 0; !o && i < N_OPTS; i++)
			if (opts[i].short_flag == c)
				o = &opts[i];
		if (!o) {
			fprintf(stderr, "mqd: try 'mqd --help'\n");
			return -1;
		}
		if (o->type == T_LIST && !listen_from_flag) {
			clear_list(cfg);
			listen_from_flag = true;
		}
		snprintf(from, sizeof(from), "--%s", o->flag);
		if (set_opt(cfg, o, optarg, from) != 0)
			return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "mqd: unexpected argument '%s'; try 'mqd --help'\n", argv[optind]);
		return -1;
	}
	if (strcmp(cfg->storage, "lmdb") != 0 && strcmp(cfg->storage, "memory") != 0 &&
	    strcmp(cfg->storage, "postgres") != 0) {
		fprintf(stderr,
		        "mqd: unknown storage engine '%s' (want lmdb, memory or postgres)\n",
		        cfg->storage);
		return -1;
	}
	if (strcmp(cfg->storage, "postgres") == 0 && cfg->pg[0] == '\0') {
		fprintf(stderr, "mqd: --storage postgres needs --pg (or MQ_PG): a libpq connection "
		                "string or URI\n");
		return -1;
	}
	if (strcmp(cfg->durability, "durable") != 0 && strcmp(cfg->durability, "relaxed") != 0) {
		fprintf(stderr, "mqd: unknown durability '%s' (want durable or relaxed)\n",
		        cfg->durability);
		return -1;
	}
	if (brk_log_parse_level(cfg->log_level) < 0) {
		fprintf(stderr, "mqd: unknown log level '%s'\n", cfg->log_level);
		return -1;
	}
	if (strcmp(cfg->log_format, "text") != 0 && strcmp(cfg->log_format, "json") != 0) {
		fprintf(stderr, "mqd: unknown log format '%s' (want text or json)\n",
		        cfg->log_format);
		return -1;
	}
	if (strcmp(cfg->auth, "auto") != 0 && strcmp(cfg->auth, "on") != 0 &&
	    strcmp(cfg->auth, "off") != 0) {
		fprintf(stderr, "mqd: --auth is '%s' (want on, off or auto)\n", cfg->auth);
		return -1;
	}
	if (strcmp(cfg->tls_client_auth, "auto") != 0 &&
	    strcmp(cfg->tls_client_auth, "none") != 0 &&
	    strcmp(cfg->tls_client_auth, "optional") != 0 &&
	    strcmp(cfg->tls_client_auth, "required") != 0) {
		fprintf(stderr,
		        "mqd: --tls-client-auth is '%s' (want none, optional, required or auto)\n",
		        cfg->tls_client_auth);
		return -1;
	}
	if (cfg->map_size > cfg->map_size_max)
		cfg->map_size = cfg->map_size_max;
	if (cfg->max_request < cfg->max_payload + 4096)
		cfg->max_request = cfg->max_payload + 4096;
	if (cfg->contexts > cfg->max_contexts)
		cfg->contexts = cfg->max_contexts;
	return 0;
}

void brk_config_free(brk_config *cfg)
{
	clear_list(cfg);
	free(cfg->data_dir);
	free(cfg->storage);
	free(cfg->pg);
	free(cfg->pg_schema);
	free(cfg->durability);
	free(cfg->log_level);
	free(cfg->http_listen); /* ops */
	free(cfg->log_format);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->tls_ca);
	free(cfg->tls_client_auth);
	free(cfg->auth);
	free(cfg->auth_file);
	free(cfg->restore);
}
