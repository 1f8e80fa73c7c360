/* SPDX-License-Identifier: MIT */
/* config.h: mqd's settings. One table (config.c) drives the command-line
 * flags, the MQ_* environment variables, defaults, bounds and --help.
 * Precedence: flag > environment > default. */
#ifndef BRK_CONFIG_H
#define BRK_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#define BRK_MAX_LISTEN 16

#define BRK_DEFAULT_LISTEN      "tcp://127.0.0.1:7450"
#define BRK_DEFAULT_DATA_DIR    "./mq-data"
#define BRK_DEFAULT_MAX_PAYLOAD (1u << 20)  /* 1 MiB */
#define BRK_DEFAULT_MAX_REQUEST (16u << 20) /* 16 MiB */
#define BRK_DEFAULT_SYNC_MS     10u
#define BRK_MAX_BATCH           1000u /* messages per push / pull */

typedef struct brk_config {
	char *listen[BRK_MAX_LISTEN];
	int n_listen;
	char *data_dir;
	char *storage;             /* "lmdb" | "memory" | "postgres" */
	char *pg;                  /* postgres: libpq connection string or URI */
	char *pg_schema;           /* postgres: schema of mq's tables */
	char *durability;          /* "durable" | "relaxed" */
	uint32_t sync_interval_ms; /* relaxed mode */
	uint64_t map_size;
	uint64_t map_size_max;
	uint64_t max_payload;
	uint64_t max_request;
	uint32_t default_lease_ms;
	uint32_t default_max_attempts;
	bool auto_create;
	char *log_level;
	uint32_t contexts;     /* nng contexts started at once */
	uint32_t max_contexts; /* upper bound of requests in flight */
	uint32_t max_batch;    /* requests applied in one transaction */
	/* ops: HTTP listener (http.c) and log format (log.c). */
	char *http_listen; /* "" = no HTTP listener */
	char *log_format;  /* "text" | "json" */
	/* Security and connection limits (tls.c, auth.c, limits.c). Empty
	 * strings mean "not set". */
	char *tls_cert, *tls_key, *tls_ca;
	char *tls_client_auth;     /* auto | none | optional | required */
	char *auth;                /* auto | on | off */
	char *auth_file;           /* INI token file */
	uint32_t max_connections;  /* pipes at once */
	uint32_t max_parked_pulls; /* long polls waiting per connection */
	/* Backup (docs/backup.md): a backup file to restore into data_dir,
	 * then exit; "" = serve as usual. */
	char *restore;
	uint32_t backup_idle_ms; /* a backup file unread this long is deleted */
} brk_config;

/* brk_config_load fills cfg from defaults, the environment and argv.
 * Returns 0 to run, 1 when it printed --help or --version (exit 0), -1 on
 * a usage error (already printed). */
int brk_config_load(brk_config *cfg, int argc, char **argv);

void brk_config_free(brk_config *cfg);

#endif
