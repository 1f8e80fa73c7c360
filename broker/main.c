/* SPDX-License-Identifier: MIT */
/*
 * main.c: mqd's entry point: settings, storage, writer, server, signals.
 *
 * SIGINT/SIGTERM: stop taking requests (new ones get UNAVAILABLE), apply
 * what was taken in, answer parked long polls, let a backup copy in
 * progress finish, send the replies, close storage cleanly, exit 0. The
 * signals are blocked before the first thread starts and taken with
 * sigwait, so no nng thread receives them.
 *
 * --restore FILE: restore a backup into --data-dir and exit (restore()).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "backup.h"
#include "broker.h"
#include "http.h"
#include "log.h"

/* restore runs mqd --restore FILE: 0 when restored, else 1 (logged). */
static int restore(const brk_config *cfg)
{
	store_backup_info bi;
	store_err err;
	mq_status rv;

	if (strcmp(cfg->storage, "lmdb") != 0) {
		brk_err("--restore: the %s storage engine has no data directory to restore into; "
		        "restore needs --storage lmdb",
		        cfg->storage);
		return 1;
	}
	rv = store_restore(cfg->restore, cfg->data_dir, &bi, &err);
	if (rv != MQ_OK) {
		brk_err("cannot restore %s into %s: %s: %s", cfg->restore, cfg->data_dir,
		        mq_status_name(rv), err.msg);
		return 1;
	}
	brk_info("restored %s into %s: %llu bytes, schema version %u, taken at unix ms %llu; "
	         "start mqd without --restore to serve it",
	         cfg->restore, cfg->data_dir, (unsigned long long)bi.size, bi.schema_version,
	         (unsigned long long)bi.created_ms);
	return 0;
}

int main(int argc, char **argv)
{
	brk_config cfg;
	brk_info info = {0};
	brk_server *srv = NULL;
	brk_http *http = NULL;
	store_config scfg = {0};
	store_err err;
	sigset_t sigs;
	int sig = 0, rv;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	rv = brk_config_load(&cfg, argc, argv);
	if (rv != 0) {
		brk_config_free(&cfg);
		return rv > 0 ? 0 : 2;
	}
	brk_log_level = brk_log_parse_level(cfg.log_level);
	brk_log_json = strcmp(cfg.log_format, "json") == 0;
	if (cfg.restore[0] != '\0') {
		rv = restore(&cfg);
		brk_config_free(&cfg);
		return rv;
	}
	info.cfg = &cfg;
	info.start_ms = brk_mono_ms();
	/* Tokens and whether auth is on (auth.c); refuses an unprotected
	 * non-loopback listener. */
	if (brk_auth_open(&info.auth, &cfg) != 0) {
		brk_config_free(&cfg);
		return 2;
	}

	scfg.engine = cfg.storage;
	scfg.path = cfg.data_dir;
	scfg.pg_conninfo = cfg.pg;
	scfg.pg_schema = cfg.pg_schema;
	scfg.map_size = cfg.map_size;
	scfg.map_size_max = cfg.map_size_max;
	scfg.durability = strcmp(cfg.durability, "relaxed") == 0 ? STORE_RELAXED : STORE_DURABLE;
	scfg.default_lease_ms = cfg.default_lease_ms;
	scfg.default_max_attempts = cfg.default_max_attempts;
	scfg.on_ready = brk_writer_store_ready;
	scfg.ready_arg = &info; /* info.writer is set before its first transaction */
	rv = store_open(&info.store, &scfg, &err);
	/* A database that is not up yet (UNAVAILABLE) is waited for, as mqd
	 * waits for it once running; SIGTERM/SIGINT stop the wait. */
	for (unsigned n = 0; rv == MQ_UNAVAILABLE && strcmp(cfg.storage, "postgres") == 0; n++) {
		struct timespec ts = {1, 0};

		if (n % 10 == 0)
			brk_warn("waiting for PostgreSQL (retried every second): %s", err.msg);
		if (sigtimedwait(&sigs, NULL, &ts) > 0) {
			brk_info("stopped while waiting for PostgreSQL");
			brk_auth_free(info.auth);
			brk_config_free(&cfg);
			return 0;
		}
		rv = store_open(&info.store, &scfg, &err);
	}
	if (rv != MQ_OK) {
		brk_err("cannot open %s storage at %s: %s", cfg.storage,
		        strcmp(cfg.storage, "postgres") == 0 ? cfg.pg_schema : cfg.data_dir,
		        err.msg);
		brk_auth_free(info.auth);
		brk_config_free(&cfg);
		return 1;
	}
	if (brk_backup_open(&info.backup, &info) != 0) {
		store_close(info.store);
		brk_auth_free(info.auth);
		brk_config_free(&cfg);
		return 1;
	}
	brk_service_init(&info);
	if (brk_writer_start(&info.writer, &info) != 0) {
		brk_err("cannot start the writer thread");
		brk_backup_free(info.backup);
		store_close(info.store);
		brk_auth_free(info.auth);
		brk_config_free(&cfg);
		return 1;
	}
	/* Other mqd on a shared engine: their pushes wake our parked pulls. */
	if (store_watch(info.store, brk_writer_remote_ready, info.writer, &err) != MQ_OK)
		brk_warn("storage: cannot watch other instances' pushes (%s); parked pulls see "
		         "them within a second",
		         err.msg);
	if (brk_server_open(&srv, &cfg, &info) != 0) {
		store_unwatch(info.store);
		brk_writer_free(info.writer);
		brk_backup_free(info.backup);
		store_close(info.store);
		brk_auth_free(info.auth);
		brk_config_free(&cfg);
		return 1;
	}
	if (cfg.http_listen[0] != '\0' && brk_http_open(&http, &cfg, &info) != 0) {
		brk_server_quiesce(srv);
		brk_writer_stop(info.writer);
		brk_backup_stop(info.backup);
		brk_server_close(srv);
		store_unwatch(info.store);
		brk_writer_free(info.writer);
		brk_backup_free(info.backup);
		store_close(info.store);
		brk_config_free(&cfg);
		return 1;
	}
	brk_http_set_ready(http, true);
	if (strcmp(cfg.storage, "memory") == 0)
		brk_warn("storage engine 'memory': messages are lost when mqd stops");
	brk_info("mqd %s ready: storage %s (%s) in %s, max payload %llu bytes", MQ_VERSION_STRING,
	         store_engine(info.store), store_durability_name(info.store),
	         strcmp(cfg.storage, "memory") == 0     ? "memory"
	         : strcmp(cfg.storage, "postgres") == 0 ? cfg.pg_schema
	                                                : cfg.data_dir,
	         (unsigned long long)cfg.max_payload);

	sigwait(&sigs, &sig);
	brk_info("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	brk_http_quiesce(http);
	brk_server_quiesce(srv);
	brk_writer_stop(info.writer);
	brk_backup_stop(info.backup); /* its reply goes out before the server closes */
	brk_server_close(srv);
	brk_http_close(http);
	store_unwatch(info.store);
	brk_writer_free(info.writer);
	brk_backup_free(info.backup);
	store_close(info.store);
	brk_info("stopped cleanly");
	brk_auth_free(info.auth);
	brk_config_free(&cfg);
	return 0;
}
