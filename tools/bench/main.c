/* SPDX-License-Identifier: MIT */
/*
 * mqbench: load generator for mq and, side by side, its peers (beanstalkd,
 * Redis, NATS JetStream). See docs/benchmarks.md and `mqbench --help`.
 *
 * main.c owns the command line, the scenario table of issue 6, the order of
 * runs (--compare: scenario by scenario, every system in turn), the report
 * (text, the comparison tables) and the JSON file. run.c times one run;
 * sys_*.c drive one system each; pg.c the PostgreSQL cluster of
 * --storage postgres (issue 10: --instances, scenarios pgdirect and soak).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* scen is one scenario of issue 6 (or a legacy one). */
typedef struct scen {
	const char *id;   /* "1", "2a", ... */
	const char *name; /* accepted by --scenario too */
	const char *title;
	int producers, consumers, inflight, batch;
	bool prefill;   /* scenario 5: --prefill messages queued first */
	bool half_load; /* pushes paced at half the peak of scenario 2b */
	bool pg_only;   /* pgdirect, soak: --storage postgres only, not in "all" */
} scen;

static const scen scenarios[] = {
    {"1", "push-1p-w1", "push, 1 producer, 1 in flight", 1, 0, 1, 1, false, false},
    {"2a", "push-1p-w16", "push, 1 producer, 16 in flight", 1, 0, 16, 1, false, false},
    {"2b", "push-4p-w16", "push, 4 producers, 16 in flight each", 4, 0, 16, 1, false, false},
    {"2h", "push-4p-w16-half", "push as 2b, paced at half of 2b's peak", 4, 0, 16, 1, false, true},
    {"3", "cycle-4p4c-w16", "cycle push->pull->ack, 4P+4C, 16 in flight each", 4, 4, 16, 1, false,
     false},
    {"4", "batch-100", "batch push, 100 per request, 1 producer, 16 in flight", 1, 0, 16, 100,
     false, false},
    {"5", "cycle-prefilled", "scenario 3 with --prefill messages queued", 4, 4, 16, 1, true, false},
    {"pgdirect", "pgdirect",
     "scenario 3 as a direct libpq client: INSERT, UPDATE .. SKIP LOCKED LIMIT 16, DELETE", 4, 4,
     16, 1, false, false, true},
    {"soak", "soak", "scenario 3 for --seconds, sampling mq's table sizes and dead tuples", 4, 4,
     16, 1, false, false, true},
};
#define N_SCEN (sizeof(scenarios) / sizeof(scenarios[0]))

static const bsys *const systems[] = {&sys_mq, &sys_beanstalkd, &sys_redis, &sys_nats};
#define N_SYS (sizeof(systems) / sizeof(systems[0]))

static struct {
	const char *scenario;
	const char *peer;
	bool compare, relaxed, no_relaxed;
	int producers, consumers, inflight, batch;
	size_t size;
	double seconds, warmup, rate;
	uint64_t max_messages, prefill;
	unsigned backlog;
	const char *queue;
	const char *json;
	bool async;
	const char *storage;
	int instances[8], n_instances;
	int repeat;
	double soak_interval;
} opt = {
    .producers = 1,
    .consumers = -1,
    .inflight = 1,
    .batch = 1,
    .size = 200,
    .seconds = 3,
    .warmup = 0.5,
    .max_messages = 50000000,
    .prefill = 10000000,
    .backlog = 512,
    .queue = "bench",
    .instances = {1},
    .n_instances = 1,
    .repeat = 1,
    .soak_interval = 5,
};

static bool on_pg(void)
{
	return opt.storage != NULL && strcmp(opt.storage, "postgres") == 0;
}

/* soak_sample is one sample of the soak: the schema's tables, summed. */
typedef struct soak_sample {
	double t;
	uint64_t acked; /* cycles since the window began */
	uint64_t total_bytes, index_bytes, live, dead, vacuums, autovacuums;
	int tables;
} soak_sample;

/* rec is one run's entry in the report and the JSON file. */
typedef struct rec {
	const bsys *sys;
	bool relaxed;
	const scen *sc; /* NULL: legacy scenario */
	char legacy[16];
	int producers, consumers, inflight, batch;
	double rate_target;
	bool ok;
	char skipped[320];
	char note[256];
	bresult res;
	uint64_t prefill;
	uint64_t disk_bytes, disk_apparent;
	int instances; /* mq on PostgreSQL: mqd processes; 0 otherwise */
	int rep;       /* --repeat: which repetition (0-based) */
	soak_sample *soak;
	size_t n_soak;
	pg_rel soak_rels[64]; /* the last sample, per table */
	int n_soak_rels;
} rec;

static rec *recs;
static size_t n_recs, cap_recs;

static rec *rec_new(void)
{
	if (n_recs == cap_recs) {
		size_t cap = cap_recs ? cap_recs * 2 : 64;
		rec *p = realloc(recs, cap * sizeof(*p));

		if (p == NULL) {
			fprintf(stderr, "mqbench: out of memory\n");
			exit(1);
		}
		recs = p;
		cap_recs = cap;
	}
	memset(&recs[n_recs], 0, sizeof(recs[0]));
	return &recs[n_recs++];
}

static const char *mode_name(const bsys *s, bool relaxed)
{
	if (s == &sys_mq)
		return relaxed ? "mq relaxed" : "mq";
	if (s == &sys_limit)
		return "stack limit";
	if (s == &sys_beanstalkd)
		return relaxed ? "beanstalkd -f 50" : "beanstalkd -f 0";
	if (s == &sys_redis)
		return relaxed ? "redis everysec" : "redis always";
	if (s == &sys_pgdirect)
		return "pgdirect (libpq)";
	return relaxed ? "nats (relaxed)" : "nats jetstream";
}

/* rec_label is the row label of e: mode_name, or for mq on PostgreSQL
 * "mq postgres, N mqd". */
static const char *rec_label(const rec *e)
{
	static char buf[4][64];
	static int k;

	if (e->sys != &sys_mq || e->instances == 0)
		return mode_name(e->sys, e->relaxed);
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "mq postgres, %d mqd%s", e->instances,
	         e->relaxed ? " (relaxed)" : "");
	return buf[k];
}

static void print_pct(const char *what, const pct *p)
{
	if (p->n == 0)
		return;
	printf("  %-5s latency ms: p50 %.3f  p99 %.3f  p999 %.3f  (%zu calls)\n", what, p->p50,
	       p->p99, p->p999, p->n);
}

static void print_rec(const rec *e)
{
	const char *title = e->sc ? e->sc->title : e->legacy;

	if (e->skipped[0]) {
		printf("%s | %s: skipped: %s\n\n", rec_label(e), title, e->skipped);
		return;
	}
	printf("%s | scenario %s: %s\n", rec_label(e), e->sc ? e->sc->id : e->legacy, title);
	printf("  %d producer(s) + %d consumer(s), %d in flight each, batch %d, %zu-byte "
	       "payloads, %.1f s; durability: %s\n",
	       e->producers, e->consumers, e->inflight, e->batch, opt.size, e->res.seconds,
	       e->res.durability);
	if (e->note[0])
		printf("  note: %s\n", e->note);
	if (e->rate_target > 0)
		printf("  paced at %.0f msg/s\n", e->rate_target);
	printf("  %s: %.0f msg/s (pushed %" PRIu64 ", acked %" PRIu64 ")\n",
	       e->consumers ? "cycles" : "pushes", e->res.rate, e->res.pushed, e->res.acked);
	print_pct("push", &e->res.push);
	print_pct("pull", &e->res.pull);
	print_pct("ack", &e->res.ack);
	if (e->res.have_cpu)
		printf("  %s CPU: %.2f s over %.1f s (%.0f%% of one core)\n",
		       e->instances > 1 ? "mqd (all instances)" : "server", e->res.cpu_s,
		       e->res.seconds, 100.0 * e->res.cpu_s / e->res.seconds);
	if (e->res.have_pg_cpu)
		printf("  PostgreSQL CPU (postmaster + backends): %.2f s (%.0f%% of one core)\n",
		       e->res.pg_cpu_s, 100.0 * e->res.pg_cpu_s / e->res.seconds);
	if (e->res.have_pg_stats && e->res.seconds > 0)
		printf("  PostgreSQL: %.0f commits/s, %.0f WAL flushes/s (%.1f %s per flush)\n",
		       (double)e->res.pg_commits / e->res.seconds,
		       (double)e->res.pg_wal_syncs / e->res.seconds,
		       e->res.pg_wal_syncs ? (double)(e->consumers ? e->res.acked : e->res.pushed) /
		                                 (double)e->res.pg_wal_syncs
		                           : 0,
		       e->consumers ? "cycles" : "pushes");
	if (e->prefill)
		printf("  prefilled %" PRIu64 " messages: data dir %.1f MB on disk, files %.1f MB "
		       "(%.0f bytes per message on disk, %.0f in files; payload %zu)\n",
		       e->prefill, (double)e->disk_bytes / 1e6, (double)e->disk_apparent / 1e6,
		       (double)e->disk_bytes / (double)e->prefill,
		       (double)e->disk_apparent / (double)e->prefill, opt.size);
	if (e->res.errors)
		printf("  errors: %" PRIu64 " (first: %s)\n", e->res.errors, e->res.first_error);
	printf("\n");
	fflush(stdout);
}

static int cur_instances, cur_rep; /* of the run being made (for its rec) */
static size_t soak_idx;            /* the soak's rec */
static uint64_t soak_acked0;

static double mb(uint64_t b)
{
	return (double)b / 1e6;
}

/* soak_tick samples the schema's tables (run_measure calls it every
 * --soak-interval s) and prints one line. */
static void soak_tick(brun *r, double t)
{
	rec *e = &recs[soak_idx];
	pg_rel rels[64];
	soak_sample smp = {.t = t};
	soak_sample *p;
	char err[256] = "";
	int n = 0;
	double dt;

	if (e->n_soak == 0)
		soak_acked0 = atomic_load(&r->acked);
	smp.acked = atomic_load(&r->acked) - soak_acked0;
	if (pg_schema_rels(r->srv->pg_schema, rels, 64, &n, err, sizeof(err)) != 0) {
		fprintf(stderr, "mqbench: soak: %s\n", err);
		return;
	}
	for (int i = 0; i < n; i++) {
		smp.total_bytes += rels[i].total_bytes;
		smp.index_bytes += rels[i].index_bytes;
		smp.live += rels[i].live;
		smp.dead += rels[i].dead;
		smp.autovacuums += rels[i].autovacuums;
		smp.vacuums += rels[i].vacuums;
	}
	smp.tables = n;
	memcpy(e->soak_rels, rels, (size_t)n * sizeof(rels[0]));
	e->n_soak_rels = n;
	if ((p = realloc(e->soak, (e->n_soak + 1) * sizeof(*p))) == NULL)
		return;
	e->soak = p;
	dt = e->n_soak ? t - p[e->n_soak - 1].t : t;
	printf("  soak t=%6.1f s  cycles %10llu (%6.0f/s)  %d tables %8.2f MB (indexes %7.2f MB)  "
	       "live %8llu  dead %8llu  vacuums %llu + autovacuums %llu\n",
	       t, (unsigned long long)smp.acked,
	       dt > 0 ? (double)(smp.acked - (e->n_soak ? p[e->n_soak - 1].acked : 0)) / dt : 0, n,
	       mb(smp.total_bytes), mb(smp.index_bytes), (unsigned long long)smp.live,
	       (unsigned long long)smp.dead, (unsigned long long)smp.vacuums,
	       (unsigned long long)smp.autovacuums);
	fflush(stdout);
	p[e->n_soak++] = smp;
}

/* print_soak summarises the soak: the tables at the end, and the total size
 * at the start, its maximum in each half of the run and at the end. */
static void print_soak(const rec *e)
{
	uint64_t max1 = 0, max2 = 0, maxdead = 0;
	const soak_sample *first, *last;

	if (e->n_soak == 0)
		return;
	first = &e->soak[0];
	last = &e->soak[e->n_soak - 1];
	for (size_t i = 0; i < e->n_soak; i++) {
		const soak_sample *p = &e->soak[i];
		uint64_t *m = p->t <= last->t / 2 ? &max1 : &max2;

		if (p->total_bytes > *m)
			*m = p->total_bytes;
		if (p->dead > maxdead)
			maxdead = p->dead;
	}
	printf("  soak: %llu cycles in %.0f s; tables + indexes %.2f MB at the first sample, "
	       "max %.2f MB in the first half, max %.2f MB in the second half, %.2f MB at the "
	       "end; most dead tuples %llu\n",
	       (unsigned long long)last->acked, last->t, mb(first->total_bytes), mb(max1), mb(max2),
	       mb(last->total_bytes), (unsigned long long)maxdead);
	printf("  %-24s %10s %10s %10s %10s %7s %7s\n", "table", "total MB", "index MB", "live",
	       "dead", "vacuum", "autovac");
	for (int i = 0; i < e->n_soak_rels; i++) {
		const pg_rel *t = &e->soak_rels[i];

		printf("  %-24s %10.3f %10.3f %10llu %10llu %7llu %7llu\n", t->name,
		       mb(t->total_bytes), mb(t->index_bytes), (unsigned long long)t->live,
		       (unsigned long long)t->dead, (unsigned long long)t->vacuums,
		       (unsigned long long)t->autovacuums);
	}
	printf("\n");
}

static uint64_t pgw_commits, pgw_syncs;
static bool pgw_ok;

/* pg_window reads PostgreSQL's commits and WAL flushes at the start and
 * the end of the measuring window (pg_db_stats). */
static void pg_window(brun *r, bool end)
{
	uint64_t c, w;
	char err[256];

	(void)r;
	if (pg_db_stats(&c, &w, err, sizeof(err)) != 0) {
		fprintf(stderr, "mqbench: %s\n", err);
		pgw_ok = false;
		return;
	}
	if (!end) {
		pgw_commits = c;
		pgw_syncs = w;
		pgw_ok = true;
	} else {
		pgw_commits = c - pgw_commits;
		pgw_syncs = w - pgw_syncs;
	}
}

/* run_one starts a fresh server of s, runs one scenario, stops it. */
static rec *run_one(const bsys *s, bool relaxed, const scen *sc, const char *legacy, int prod,
                    int cons, int inflight, int batch, double rate)
{
	rec *e = rec_new();
	bserver srv;
	brun r;
	char err[256] = "";
	const char *why = s->unavailable();

	memset(&srv, 0, sizeof(srv));
	memset(&r, 0, sizeof(r));
	e->sys = s;
	e->relaxed = relaxed;
	e->sc = sc;
	snprintf(e->legacy, sizeof(e->legacy), "%s", legacy ? legacy : "");
	e->producers = prod;
	e->consumers = cons;
	e->inflight = inflight;
	e->batch = batch;
	e->rate_target = rate;
	e->instances = s == &sys_mq && on_pg() ? cur_instances : 0;
	e->rep = cur_rep;
	if (why != NULL) {
		snprintf(e->skipped, sizeof(e->skipped), "%s", why);
		print_rec(e);
		return e;
	}
	r.sys = s;
	r.srv = &srv;
	r.queue = opt.queue;
	r.producers = prod;
	r.consumers = cons;
	r.inflight = inflight;
	r.batch = batch;
	r.size = opt.size;
	r.natural = sc != NULL;
	r.legacy_async = opt.async;
	r.rate = rate;
	r.max_messages = opt.max_messages;
	r.capped = cons > 0;
	r.backlog_cap = opt.backlog;
	if (sc != NULL && strcmp(sc->id, "soak") == 0) {
		soak_idx = (size_t)(e - recs);
		soak_acked0 = 0;
		r.tick = soak_tick;
		r.tick_s = opt.soak_interval;
	}
	if ((s == &sys_mq && on_pg()) || s == &sys_pgdirect) {
		r.window = pg_window;
		pgw_ok = false;
	}
	if (s->start(&srv, relaxed, err, sizeof(err)) != 0 ||
	    s->prepare(&r, err, sizeof(err)) != 0) {
		snprintf(e->skipped, sizeof(e->skipped), "failed: %s", err);
		if (s->stop)
			s->stop(&srv);
		server_stop(&srv);
		print_rec(e);
		return e;
	}
	snprintf(e->note, sizeof(e->note), "%s", srv.note);
	if (sc != NULL && sc->prefill && opt.prefill > 0) {
		uint64_t t0 = now_us();

		fprintf(stderr, "mqbench: %s: prefill %" PRIu64 " messages...\n", s->name,
		        opt.prefill);
		if (s->prefill(&r, opt.prefill, err, sizeof(err)) != 0) {
			snprintf(e->skipped, sizeof(e->skipped), "prefill failed: %s", err);
			if (s->stop)
				s->stop(&srv);
			server_stop(&srv);
			print_rec(e);
			return e;
		}
		e->prefill = opt.prefill;
		e->disk_bytes = dir_bytes(srv.data);
		e->disk_apparent = dir_apparent_bytes(srv.data);
		fprintf(stderr, "mqbench: %s: prefill took %.1f s\n", s->name,
		        (double)(now_us() - t0) / 1e6);
	}
	if (legacy != NULL && strcmp(legacy, "consume") == 0) {
		uint64_t n = opt.max_messages < 50000000 ? opt.max_messages : 20000;

		e->ok = mq_run_consume(&r, cons > 0 ? cons : 4, n, opt.seconds, &e->res) == 0;
		e->producers = 0;
		e->consumers = cons > 0 ? cons : 4;
	} else {
		e->ok = run_measure(&r, opt.warmup, opt.seconds, &e->res) == 0;
		if (e->ok && r.window != NULL && pgw_ok) {
			e->res.pg_commits = pgw_commits;
			e->res.pg_wal_syncs = pgw_syncs;
			e->res.have_pg_stats = true;
		}
		if (!e->ok)
			snprintf(e->skipped, sizeof(e->skipped), "failed: %s", r.first_error);
	}
	if (s->stop)
		s->stop(&srv);
	server_stop(&srv);
	print_rec(e);
	if (r.tick != NULL)
		print_soak(e);
	return e;
}

static const rec *find_rec(const bsys *s, bool relaxed, const char *id)
{
	for (size_t i = n_recs; i-- > 0;)
		if (recs[i].sys == s && recs[i].relaxed == relaxed && recs[i].sc &&
		    strcmp(recs[i].sc->id, id) == 0 && recs[i].ok)
			return &recs[i];
	return NULL;
}

static void run_scenario(const bsys *s, bool relaxed, const scen *sc)
{
	double rate = 0;

	if (sc->half_load) {
		const rec *peak = find_rec(s, relaxed, "2b");

		if (peak == NULL || peak->res.rate <= 0) {
			rec *e = rec_new();

			e->sys = s;
			e->relaxed = relaxed;
			e->sc = sc;
			snprintf(e->skipped, sizeof(e->skipped),
			         "needs scenario 2b's figure first");
			print_rec(e);
			return;
		}
		rate = peak->res.rate / 2;
	}
	run_one(s, relaxed, sc, NULL, sc->producers, sc->consumers, sc->inflight, sc->batch, rate);
	/* Goal 1 compares scenario 1 with this stack's own limit, measured in
	 * the same run: right after mq's scenario 1. */
	if (s == &sys_mq && !relaxed && strcmp(sc->id, "1") == 0 && !on_pg())
		run_one(&sys_limit, false, sc, NULL, 1, 0, 1, 1, 0);
}

/* ---- the comparison tables ---- */

static void fmt_rate(char *buf, size_t len, double v)
{
	if (v >= 1e6)
		snprintf(buf, len, "%.2fM", v / 1e6);
	else if (v >= 1e4)
		snprintf(buf, len, "%.1fk", v / 1e3);
	else
		snprintf(buf, len, "%.0f", v);
}

static bool sel[N_SCEN];

/* print_table prints one row per selected scenario: each system's figure
 * (msg/s, or p99 push latency when p99) and the ratios mq/peer. */
static void print_table(bool relaxed, bool p99)
{
	const bsys *cols[N_SYS];
	int nc = 0;
	char b[32];

	for (size_t i = 0; i < N_SYS; i++) {
		if (relaxed && systems[i] == &sys_nats)
			continue; /* NATS has one mode; it is in the durable table */
		cols[nc++] = systems[i];
	}
	printf("| scenario |");
	for (int c = 0; c < nc; c++)
		printf(" %s |", mode_name(cols[c], relaxed));
	for (int c = 1; c < nc; c++)
		printf(" mq/%s |", cols[c]->name);
	printf("\n|---|");
	for (int c = 0; c < 2 * nc - 1; c++)
		printf("---:|");
	printf("\n");
	for (size_t i = 0; i < N_SCEN; i++) {
		const rec *mq;
		double v[N_SYS];

		if (!sel[i])
			continue;
		if (relaxed && scenarios[i].prefill)
			continue;
		printf("| %s %s |", scenarios[i].id, scenarios[i].name);
		for (int c = 0; c < nc; c++) {
			const rec *e = find_rec(cols[c], relaxed, scenarios[i].id);

			v[c] = e == NULL ? -1 : p99 ? e->res.push.p99 : e->res.rate;
			if (e == NULL)
				printf(" – |");
			else if (p99)
				printf(" %.2f ms |", v[c]);
			else {
				fmt_rate(b, sizeof(b), v[c]);
				printf(" %s |", b);
			}
		}
		mq = find_rec(cols[0], relaxed, scenarios[i].id);
		for (int c = 1; c < nc; c++) {
			if (mq == NULL || v[c] <= 0 || v[0] < 0)
				printf(" – |");
			else
				printf(" %.2f |", v[0] / v[c]);
		}
		printf("\n");
	}
	printf("\n");
}

static void print_limit(void)
{
	const rec *mq = find_rec(&sys_mq, false, "1"), *lim = find_rec(&sys_limit, false, "1");

	if (mq == NULL || lim == NULL || lim->res.rate <= 0)
		return;
	printf("Scenario 1 against this stack's limit (one nng ipc round trip + one durable LMDB "
	       "commit per request, measured in-process in the same run): mq %.0f/s, limit "
	       "%.0f/s (p50 %.3f ms) = %.0f%%\n\n",
	       mq->res.rate, lim->res.rate, lim->res.push.p50,
	       100.0 * mq->res.rate / lim->res.rate);
}

static double rate_of(const bsys *s, bool relaxed, const char *id)
{
	const rec *e = find_rec(s, relaxed, id);

	return e ? e->res.rate : -1;
}

/* goal prints one goal of issue 6: have against want (higher is better
 * unless lower). */
static void goal(const char *what, double have, double want, bool lower, const char *unit)
{
	if (have < 0 || want <= 0) {
		printf("- %s: not measured\n", what);
		return;
	}
	bool met = lower ? have <= want : have >= want;

	printf("- %s: %.*f%s against %.*f%s: %s", what, have < 100 ? 2 : 0, have, unit,
	       want < 100 ? 2 : 0, want, unit, met ? "met" : "MISSED");
	if (!met && !lower)
		printf(" by %.0f%%: %.2fx of the goal", 100.0 * (1 - have / want), have / want);
	if (!met && lower)
		printf(" by %.1f%%: %.2fx the goal", 100.0 * (have / want - 1), have / want);
	printf("\n");
}

/* print_goals checks the goals of issue 6 on this run's figures. */
static void print_goals(void)
{
	const rec *lim = find_rec(&sys_limit, false, "1"), *h = find_rec(&sys_mq, false, "2h");
	const rec *s5 = find_rec(&sys_mq, false, "5");
	char buf[160];

	printf("== goals of issue 6 (this run; ratios mean little on a loaded machine)\n\n");
	goal("1: scenario 1 >= 90% of the stack limit", rate_of(&sys_mq, false, "1"),
	     lim ? 0.9 * lim->res.rate : -1, false, "/s");
	goal("2: 2a >= 2x redis always", rate_of(&sys_mq, false, "2a"),
	     2 * rate_of(&sys_redis, false, "2a"), false, "/s");
	goal("2: 2b >= 2x redis always", rate_of(&sys_mq, false, "2b"),
	     2 * rate_of(&sys_redis, false, "2b"), false, "/s");
	goal("2: 2a >= nats jetstream", rate_of(&sys_mq, false, "2a"),
	     rate_of(&sys_nats, false, "2a"), false, "/s");
	goal("2: 2b >= nats jetstream", rate_of(&sys_mq, false, "2b"),
	     rate_of(&sys_nats, false, "2b"), false, "/s");
	goal("3: cycles >= 2x redis always", rate_of(&sys_mq, false, "3"),
	     2 * rate_of(&sys_redis, false, "3"), false, "/s");
	goal("4: batch push >= 500,000 msg/s durable", rate_of(&sys_mq, false, "4"), 500000, false,
	     "/s");
	goal("p99 push latency at half of peak (2h) <= 2 ms", h ? h->res.push.p99 : -1, 2, true,
	     " ms");
	goal("5: >= 80% of scenario 3", rate_of(&sys_mq, false, "5"),
	     0.8 * rate_of(&sys_mq, false, "3"), false, "/s");
	snprintf(buf, sizeof(buf), "5: LMDB file <= 2x the payload bytes (%zu B/msg)", opt.size);
	goal(buf, s5 && s5->prefill ? (double)s5->disk_apparent / (double)s5->prefill : -1,
	     2.0 * (double)opt.size, true, " B/msg");
	for (size_t i = 0; i < N_SCEN; i++) {
		double b = rate_of(&sys_beanstalkd, true, scenarios[i].id);
		double r = rate_of(&sys_redis, true, scenarios[i].id);

		if (!sel[i] || scenarios[i].prefill)
			continue;
		snprintf(buf, sizeof(buf), "relaxed %s: >= max(beanstalkd -f 50, redis everysec)",
		         scenarios[i].id);
		goal(buf, rate_of(&sys_mq, true, scenarios[i].id), b > r ? b : r, false, "/s");
	}
	printf("\n");
}

/* ---- PostgreSQL: mq against the direct client (issue 10) ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* pg_stat is the median (and range) over the repetitions of one row. */
typedef struct pg_stat {
	int n;
	double rate, min, max, cpu, pg_cpu, pull_p99, ack_p99, flushes;
} pg_stat;

/* pg_row gathers the runs of scenario id by s (instances k for mq): the
 * median of each figure over the repetitions. */
static pg_stat pg_row(const bsys *s, const char *id, int k)
{
	double v[6][64];
	pg_stat st = {0};

	for (size_t i = 0; i < n_recs && st.n < 64; i++) {
		const rec *e = &recs[i];

		if (e->sys != s || e->sc == NULL || strcmp(e->sc->id, id) != 0 || !e->ok ||
		    e->res.seconds <= 0 || (s == &sys_mq && e->instances != k))
			continue;
		v[0][st.n] = e->res.rate;
		v[1][st.n] = e->res.have_cpu ? 100.0 * e->res.cpu_s / e->res.seconds : -1;
		v[2][st.n] = e->res.have_pg_cpu ? 100.0 * e->res.pg_cpu_s / e->res.seconds : -1;
		v[3][st.n] = e->res.pull.p99;
		v[4][st.n] = e->res.ack.p99;
		v[5][st.n] =
		    e->res.have_pg_stats ? (double)e->res.pg_wal_syncs / e->res.seconds : -1;
		st.n++;
	}
	if (st.n == 0)
		return st;
	for (int j = 0; j < 6; j++)
		qsort(v[j], (size_t)st.n, sizeof(double), cmp_double);
	st.rate = v[0][st.n / 2];
	st.min = v[0][0];
	st.max = v[0][st.n - 1];
	st.cpu = v[1][st.n / 2];
	st.pg_cpu = v[2][st.n / 2];
	st.pull_p99 = v[3][st.n / 2];
	st.ack_p99 = v[4][st.n / 2];
	st.flushes = v[5][st.n / 2];
	return st;
}

static void print_pg_row(const char *label, const pg_stat *st, double direct)
{
	char b[3][32];

	fmt_rate(b[0], sizeof(b[0]), st->rate);
	fmt_rate(b[1], sizeof(b[1]), st->min);
	fmt_rate(b[2], sizeof(b[2]), st->max);
	printf("| %s | %s [%s–%s] |", label, b[0], b[1], b[2]);
	if (st->cpu >= 0)
		printf(" %.0f%% |", st->cpu);
	else
		printf(" – |");
	if (st->pg_cpu >= 0)
		printf(" %.0f%% |", st->pg_cpu);
	else
		printf(" – |");
	if (st->flushes >= 0)
		printf(" %.0f |", st->flushes);
	else
		printf(" – |");
	printf(" %.2f | %.2f |", st->pull_p99, st->ack_p99);
	if (direct > 0)
		printf(" %.2f |\n", st->rate / direct);
	else
		printf(" – |\n");
}

/* print_pg prints scenario 3 of mq on PostgreSQL with each --instances
 * count beside pgdirect, and the goals of issue 10. */
static void print_pg(void)
{
	pg_stat d = pg_row(&sys_pgdirect, "pgdirect", 0), m[8];
	int reps = 0;
	char label[64];

	for (int i = 0; i < opt.n_instances; i++) {
		m[i] = pg_row(&sys_mq, "3", opt.instances[i]);
		if (m[i].n > reps)
			reps = m[i].n;
	}
	if (d.n > reps)
		reps = d.n;
	if (reps == 0 || (d.n == 0 && opt.n_instances < 2 && m[0].n == 0))
		return;
	printf("== PostgreSQL, scenario 3 (4P+4C, 16 in flight each, pull 16 + ack 16 per call): "
	       "cycles/s, median of %d run(s) [min–max]; CPU %% of one core\n\n",
	       reps);
	printf("| system | cycles/s | mqd CPU | PostgreSQL CPU | WAL flushes/s | pull p99 ms | "
	       "ack p99 ms | / pgdirect |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < opt.n_instances; i++) {
		if (m[i].n == 0)
			continue;
		snprintf(label, sizeof(label), "mq postgres, %d mqd", opt.instances[i]);
		print_pg_row(label, &m[i], d.n ? d.rate : -1);
	}
	if (d.n)
		print_pg_row("pgdirect (libpq, SKIP LOCKED)", &d, d.rate);
	printf("\n== goals of issue 10 (this run)\n\n");
	for (int i = 0; i < opt.n_instances; i++) {
		snprintf(label, sizeof(label), "mq on PostgreSQL with %d mqd >= the direct client",
		         opt.instances[i]);
		goal(label, m[i].n ? m[i].rate : -1, d.n ? d.rate : -1, false, "/s");
	}
	for (int i = 0; i < opt.n_instances; i++) {
		if (opt.instances[i] <= 1 || m[0].n == 0 || opt.instances[0] != 1)
			continue;
		snprintf(label, sizeof(label), "%d mqd not slower than 1", opt.instances[i]);
		goal(label, m[i].n ? m[i].rate : -1, m[0].rate, false, "/s");
	}
	printf("\n");
}

/* ---- JSON ---- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_pct(FILE *f, const char *name, const pct *p, bool comma)
{
	fprintf(f, "\"%s\":{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"n\":%zu}%s", name, p->p50,
	        p->p99, p->p999, p->n, comma ? "," : "");
}

static void loadavg(double l[3])
{
	FILE *f = fopen("/proc/loadavg", "r");

	l[0] = l[1] = l[2] = -1;
	if (f != NULL) {
		if (fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3)
			l[0] = l[1] = l[2] = -1;
		fclose(f);
	}
}

static int write_json(const char *path, const char *cmdline, const double load0[3],
                      const char *date)
{
	FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
	struct utsname u;
	double load1[3];

	if (f == NULL) {
		fprintf(stderr, "mqbench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	uname(&u);
	loadavg(load1);
	fprintf(f, "{\"tool\":\"mqbench\",\"command\":");
	json_str(f, cmdline);
	fprintf(f, ",\"date\":");
	json_str(f, date);
	fprintf(f, ",\"host\":{\"sysname\":");
	json_str(f, u.sysname);
	fprintf(f, ",\"release\":");
	json_str(f, u.release);
	fprintf(f, ",\"machine\":");
	json_str(f, u.machine);
	fprintf(f, ",\"cpus\":%ld},\"load_start\":[%.2f,%.2f,%.2f],\"load_end\":[%.2f,%.2f,%.2f]",
	        sysconf(_SC_NPROCESSORS_ONLN), load0[0], load0[1], load0[2], load1[0], load1[1],
	        load1[2]);
	fprintf(f, ",\"size\":%zu,\"seconds\":%.2f,\"warmup\":%.2f,\"results\":[", opt.size,
	        opt.seconds, opt.warmup);
	for (size_t i = 0; i < n_recs; i++) {
		const rec *e = &recs[i];

		fprintf(f, "%s\n{\"system\":", i ? "," : "");
		json_str(f, e->sys->name);
		fprintf(f, ",\"mode\":");
		json_str(f, e->relaxed ? "relaxed" : "durable");
		fprintf(f, ",\"label\":");
		json_str(f, rec_label(e));
		fprintf(f, ",\"scenario\":");
		json_str(f, e->sc ? e->sc->id : e->legacy);
		fprintf(f, ",\"name\":");
		json_str(f, e->sc ? e->sc->name : e->legacy);
		fprintf(f, ",\"title\":");
		json_str(f, e->sc ? e->sc->title : e->legacy);
		fprintf(f, ",\"ok\":%s", e->ok ? "true" : "false");
		if (e->skipped[0]) {
			fprintf(f, ",\"skipped\":");
			json_str(f, e->skipped);
		}
		fprintf(f,
		        ",\"producers\":%d,\"consumers\":%d,\"inflight\":%d,\"batch\":%d,"
		        "\"size\":%zu,\"rate_target\":%.0f,\"seconds\":%.3f,\"rate\":%.1f,"
		        "\"pushed\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"errors\":%" PRIu64 ",",
		        e->producers, e->consumers, e->inflight, e->batch, opt.size, e->rate_target,
		        e->res.seconds, e->res.rate, e->res.pushed, e->res.acked, e->res.errors);
		fprintf(f, "\"durability\":");
		json_str(f, e->res.durability);
		fprintf(f, ",\"note\":");
		json_str(f, e->note);
		fprintf(f, ",\"latency_ms\":{");
		json_pct(f, "push", &e->res.push, true);
		json_pct(f, "pull", &e->res.pull, true);
		json_pct(f, "ack", &e->res.ack, false);
		fprintf(f, "},\"server_cpu_s\":");
		if (e->res.have_cpu)
			fprintf(f, "%.3f,\"server_cpu_pct\":%.1f", e->res.cpu_s,
			        e->res.seconds > 0 ? 100.0 * e->res.cpu_s / e->res.seconds : 0);
		else
			fprintf(f, "null,\"server_cpu_pct\":null");
		fprintf(f, ",\"storage\":");
		json_str(f, e->sys == &sys_pgdirect ? "postgres"
		            : e->sys == &sys_mq     ? (opt.storage ? opt.storage : "lmdb")
		                                    : "");
		fprintf(f, ",\"instances\":%d,\"rep\":%d,\"pg_commits\":", e->instances, e->rep);
		if (e->res.have_pg_stats)
			fprintf(f, "%" PRIu64 ",\"pg_wal_syncs\":%" PRIu64, e->res.pg_commits,
			        e->res.pg_wal_syncs);
		else
			fprintf(f, "null,\"pg_wal_syncs\":null");
		fprintf(f, ",\"pg_cpu_s\":");
		if (e->res.have_pg_cpu)
			fprintf(f, "%.3f,\"pg_cpu_pct\":%.1f", e->res.pg_cpu_s,
			        e->res.seconds > 0 ? 100.0 * e->res.pg_cpu_s / e->res.seconds : 0);
		else
			fprintf(f, "null,\"pg_cpu_pct\":null");
		if (e->n_soak > 0) {
			fprintf(f, ",\"soak\":[");
			for (size_t k = 0; k < e->n_soak; k++) {
				const soak_sample *p = &e->soak[k];

				fprintf(f,
				        "%s{\"t\":%.2f,\"acked\":%" PRIu64 ",\"tables\":%d,"
				        "\"total_bytes\":%" PRIu64 ",\"index_bytes\":%" PRIu64
				        ",\"live\":%" PRIu64 ",\"dead\":%" PRIu64
				        ",\"vacuums\":%" PRIu64 ",\"autovacuums\":%" PRIu64 "}",
				        k ? "," : "", p->t, p->acked, p->tables, p->total_bytes,
				        p->index_bytes, p->live, p->dead, p->vacuums,
				        p->autovacuums);
			}
			fprintf(f, "],\"soak_tables\":[");
			for (int k = 0; k < e->n_soak_rels; k++) {
				const pg_rel *t = &e->soak_rels[k];

				fprintf(f, "%s{\"name\":", k ? "," : "");
				json_str(f, t->name);
				fprintf(f,
				        ",\"total_bytes\":%" PRIu64 ",\"index_bytes\":%" PRIu64
				        ",\"live\":%" PRIu64 ",\"dead\":%" PRIu64
				        ",\"vacuums\":%" PRIu64 ",\"autovacuums\":%" PRIu64 "}",
				        t->total_bytes, t->index_bytes, t->live, t->dead,
				        t->vacuums, t->autovacuums);
			}
			fprintf(f, "]");
		}
		fprintf(f, ",\"prefill\":%" PRIu64, e->prefill);
		if (e->prefill)
			fprintf(f,
			        ",\"disk_bytes\":%" PRIu64 ",\"disk_apparent_bytes\":%" PRIu64
			        ",\"disk_bytes_per_message\":%.1f",
			        e->disk_bytes, e->disk_apparent,
			        (double)e->disk_bytes / (double)e->prefill);
		if (e->res.first_error[0]) {
			fprintf(f, ",\"first_error\":");
			json_str(f, e->res.first_error);
		}
		fprintf(f, "}");
	}
	fprintf(f, "\n]}\n");
	if (f != stdout && fclose(f) != 0) {
		fprintf(stderr, "mqbench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: mqbench [--mqd PATH [--mqd-arg ARG]... | --url URL]\n"
	        "               [--scenario LIST] [--peer beanstalkd|redis|nats] [--compare]\n"
	        "               [--relaxed] [--no-relaxed] [--prefill N] [--size BYTES]\n"
	        "               [--seconds S] [--warmup S] [--max-messages N] [--rate MSG/S]\n"
	        "               [--json FILE|-]\n"
	        "               [--storage lmdb|postgres [--pg CONNINFO] [--pg-schema S]\n"
	        "                [--instances LIST] [--repeat N] [--soak-interval S]]\n"
	        "  LIST: comma-separated scenarios of issue 6: 1, 2 (= 2a,2b), 2a, 2b, 2h, 3, 4,\n"
	        "        5, all, or their names (push-1p-w1, ...); or one legacy scenario\n"
	        "        push|cycle|consume with [--producers N] [--consumers N] [--inflight W]\n"
	        "        [--batch B] [--backlog N] [--queue NAME] [--async]\n"
	        "  --compare: mq and every available peer, scenario by scenario, then the\n"
	        "        relaxed modes (mq --durability=relaxed, beanstalkd -f 50, Redis\n"
	        "        everysec) unless --no-relaxed; prints tables with ratios mq/peer.\n"
	        "  --storage postgres: mqd runs on PostgreSQL (--pg CONNINFO, else mqbench starts\n"
	        "        its own cluster with tests/pg.sh in $TMPDIR); --instances 1,3 runs each\n"
	        "        scenario with 1 and with 3 mqd on one database, workers spread over\n"
	        "        them round-robin; --repeat N repeats the whole sequence (medians).\n"
	        "        Scenarios pgdirect (a libpq client doing scenario 3 directly, SKIP\n"
	        "        LOCKED) and soak (scenario 3 for --seconds, up to 86400, printing the\n"
	        "        schema's table sizes and dead tuples every --soak-interval s).\n"
	        "  Without --mqd or --url, mqd is looked for beside mqbench (../broker/mqd).\n");
}

static const bsys *sys_by_name(const char *name)
{
	for (size_t i = 0; i < N_SYS; i++)
		if (strcmp(systems[i]->name, name) == 0)
			return systems[i];
	return NULL;
}

/* select_scenarios parses LIST into sel[]; false for a legacy name. */
static int select_scenarios(const char *list)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		bool found = false;

		if (strcmp(t, "all") == 0) {
			for (size_t i = 0; i < N_SCEN; i++)
				sel[i] = !scenarios[i].pg_only;
			continue;
		}
		for (size_t i = 0; i < N_SCEN; i++) {
			if (strcmp(t, scenarios[i].id) == 0 || strcmp(t, scenarios[i].name) == 0 ||
			    (strcmp(t, "2") == 0 && scenarios[i].id[0] == '2' &&
			     scenarios[i].id[1] != 'h')) {
				sel[i] = true;
				found = true;
			}
		}
		if (!found) {
			fprintf(stderr, "mqbench: unknown scenario '%s'\n", t);
			return -1;
		}
	}
	return 0;
}

static bool scen_selected(const char *id)
{
	for (size_t i = 0; i < N_SCEN; i++)
		if (sel[i] && strcmp(scenarios[i].id, id) == 0)
			return true;
	return false;
}

/* run_pg runs the selected scenarios on PostgreSQL, --repeat times: mq with
 * each --instances count, pgdirect; every other repetition in reverse order
 * so that neither side always runs first. */
static void run_pg(void)
{
	struct {
		const scen *sc;
		int k; /* mqd instances; 0 = pgdirect */
	} items[N_SCEN * 8];
	int n = 0;

	for (size_t i = 0; i < N_SCEN; i++) {
		if (!sel[i])
			continue;
		if (strcmp(scenarios[i].id, "pgdirect") == 0) {
			items[n].sc = &scenarios[i];
			items[n++].k = 0;
			continue;
		}
		for (int j = 0; j < opt.n_instances; j++) {
			items[n].sc = &scenarios[i];
			items[n++].k = opt.instances[j];
		}
	}
	for (int rep = 0; rep < opt.repeat; rep++) {
		cur_rep = rep;
		for (int j = 0; j < n; j++) {
			int x = rep % 2 ? n - 1 - j : j;
			const scen *sc = items[x].sc;

			if (opt.repeat > 1)
				fprintf(stderr, "mqbench: repetition %d of %d: %s, %s\n", rep + 1,
				        opt.repeat, sc->id, items[x].k ? "mq" : "pgdirect");
			if (items[x].k == 0) {
				cur_instances = 0;
				run_one(&sys_pgdirect, false, sc, NULL, sc->producers,
				        sc->consumers, sc->inflight, sc->batch, 0);
				continue;
			}
			cur_instances = mq_opt_instances = items[x].k;
			if (opt.rate > 0 && !sc->half_load)
				run_one(&sys_mq, false, sc, NULL, sc->producers, sc->consumers,
				        sc->inflight, sc->batch, opt.rate);
			else
				run_scenario(&sys_mq, false, sc);
		}
	}
	print_pg();
}

static void find_mqd(char *buf, size_t len)
{
	char exe[512];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return;
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) == NULL)
		return;
	*slash = '\0';
	/* build/tools/bench/mqbench or build/tools/mqbench */
	snprintf(buf, len, "%s/../broker/mqd", exe);
	if (access(buf, X_OK) == 0)
		return;
	snprintf(buf, len, "%s/../../broker/mqd", exe);
	if (access(buf, X_OK) != 0)
		buf[0] = '\0';
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"mqd", required_argument, NULL, 'm'},
	    {"mqd-arg", required_argument, NULL, 'a'},
	    {"scenario", required_argument, NULL, 's'},
	    {"peer", required_argument, NULL, 'P'},
	    {"compare", no_argument, NULL, 'C'},
	    {"relaxed", no_argument, NULL, 'R'},
	    {"no-relaxed", no_argument, NULL, 'N'},
	    {"prefill", required_argument, NULL, 'F'},
	    {"rate", required_argument, NULL, 'r'},
	    {"producers", required_argument, NULL, 'p'},
	    {"consumers", required_argument, NULL, 'c'},
	    {"inflight", required_argument, NULL, 'w'},
	    {"batch", required_argument, NULL, 'b'},
	    {"size", required_argument, NULL, 'z'},
	    {"seconds", required_argument, NULL, 't'},
	    {"warmup", required_argument, NULL, 'W'},
	    {"max-messages", required_argument, NULL, 'M'},
	    {"backlog", required_argument, NULL, 'B'},
	    {"queue", required_argument, NULL, 'q'},
	    {"json", required_argument, NULL, 'j'},
	    {"async", no_argument, NULL, 'A'},
	    {"storage", required_argument, NULL, 'S'},
	    {"pg", required_argument, NULL, 'g'},
	    {"pg-schema", required_argument, NULL, 'G'},
	    {"instances", required_argument, NULL, 'i'},
	    {"repeat", required_argument, NULL, 'n'},
	    {"soak-interval", required_argument, NULL, 'I'},
	    {"help", no_argument, NULL, 'h'},
	    {0, 0, 0, 0},
	};
	static char mqd_path[600];
	char cmdline[2048] = "", date[64];
	double load0[3];
	const char *legacy = NULL;
	const bsys *only = &sys_mq;
	int c, rv = 0;
	time_t now = time(NULL);

	for (int i = 0; i < argc; i++) {
		size_t l = strlen(cmdline);

		snprintf(cmdline + l, sizeof(cmdline) - l, "%s%s", i ? " " : "", argv[i]);
	}
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	loadavg(load0);
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'u':
			mq_opt_url = optarg;
			break;
		case 'm':
			mq_opt_mqd = optarg;
			break;
		case 'a':
			if (mq_opt_n_mqd_args < 16)
				mq_opt_mqd_args[mq_opt_n_mqd_args++] = optarg;
			break;
		case 's':
			opt.scenario = optarg;
			break;
		case 'P':
			opt.peer = optarg;
			break;
		case 'C':
			opt.compare = true;
			break;
		case 'R':
			opt.relaxed = true;
			break;
		case 'N':
			opt.no_relaxed = true;
			break;
		case 'F':
			opt.prefill = strtoull(optarg, NULL, 10);
			break;
		case 'r':
			opt.rate = atof(optarg);
			break;
		case 'p':
			opt.producers = atoi(optarg);
			break;
		case 'c':
			opt.consumers = atoi(optarg);
			break;
		case 'w':
			opt.inflight = atoi(optarg);
			break;
		case 'b':
			opt.batch = atoi(optarg);
			break;
		case 'z':
			opt.size = (size_t)atol(optarg);
			break;
		case 't':
			opt.seconds = atof(optarg);
			break;
		case 'W':
			opt.warmup = atof(optarg);
			break;
		case 'M':
			opt.max_messages = strtoull(optarg, NULL, 10);
			break;
		case 'B':
			opt.backlog = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'q':
			opt.queue = optarg;
			break;
		case 'j':
			opt.json = optarg;
			break;
		case 'A':
			opt.async = true;
			break;
		case 'S':
			opt.storage = optarg;
			break;
		case 'g':
			pg_opt_conninfo = optarg;
			break;
		case 'G':
			mq_opt_pg_schema = optarg;
			break;
		case 'i': {
			char buf[64], *save = NULL;

			snprintf(buf, sizeof(buf), "%s", optarg);
			opt.n_instances = 0;
			for (char *t = strtok_r(buf, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				int k = atoi(t);

				if (k < 1 || k > 8 || opt.n_instances == 8) {
					fprintf(stderr, "mqbench: --instances: 1 to 8, up to 8 "
					                "counts\n");
					return 2;
				}
				opt.instances[opt.n_instances++] = k;
			}
			if (opt.n_instances == 0) {
				fprintf(stderr, "mqbench: --instances: empty list\n");
				return 2;
			}
			break;
		}
		case 'n':
			opt.repeat = atoi(optarg);
			break;
		case 'I':
			opt.soak_interval = atof(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (opt.scenario == NULL)
		opt.scenario = opt.compare ? "all" : "push";
	if (strcmp(opt.scenario, "push") == 0 || strcmp(opt.scenario, "cycle") == 0 ||
	    strcmp(opt.scenario, "consume") == 0)
		legacy = opt.scenario;
	else if (select_scenarios(opt.scenario) != 0)
		return 2;
	if (opt.batch < 1 || opt.batch > 1000 || opt.inflight < 1 || opt.inflight > 1024 ||
	    opt.producers < 0 || opt.seconds <= 0 ||
	    opt.seconds > (legacy == NULL && scen_selected("soak") ? 86400 : 600) || opt.size < 1 ||
	    opt.size > (1u << 20) || opt.warmup < 0 || opt.backlog < 1 || opt.repeat < 1 ||
	    opt.repeat > 100 || opt.soak_interval < 0.1) {
		fprintf(stderr, "mqbench: out-of-range option\n");
		return 2;
	}
	if (opt.storage != NULL && strcmp(opt.storage, "lmdb") != 0 && !on_pg()) {
		fprintf(stderr, "mqbench: --storage: lmdb or postgres\n");
		return 2;
	}
	mq_opt_storage = opt.storage;
	if (!on_pg()) {
		bool pg_only = false;

		for (size_t i = 0; i < N_SCEN; i++)
			pg_only |= legacy == NULL && sel[i] && scenarios[i].pg_only;
		if (pg_only || pg_opt_conninfo != NULL || mq_opt_pg_schema != NULL ||
		    opt.n_instances > 1 || opt.instances[0] > 1) {
			fprintf(stderr,
			        "mqbench: pgdirect, soak, --pg, --pg-schema and --instances "
			        "need --storage postgres\n");
			return 2;
		}
	} else if (opt.compare || opt.peer != NULL || opt.relaxed) {
		fprintf(stderr, "mqbench: --storage postgres runs mq (and pgdirect) only: no "
		                "--compare, --peer or --relaxed\n");
		return 2;
	} else if (mq_opt_url != NULL &&
	           (opt.n_instances > 1 || opt.instances[0] > 1 || scen_selected("soak"))) {
		fprintf(stderr, "mqbench: --instances and the soak start mqd themselves: not with "
		                "--url\n");
		return 2;
	}
	if (opt.peer != NULL) {
		if ((only = sys_by_name(opt.peer)) == NULL || only == &sys_mq) {
			fprintf(stderr, "mqbench: unknown peer '%s' (beanstalkd, redis, nats)\n",
			        opt.peer);
			return 2;
		}
	}
	if (legacy != NULL && strcmp(legacy, "consume") == 0 && only != &sys_mq) {
		fprintf(stderr, "mqbench: scenario consume is mq's consumer runtime only\n");
		return 2;
	}
	if (mq_opt_url == NULL && mq_opt_mqd == NULL) {
		const char *env = getenv("MQ_URL");

		find_mqd(mqd_path, sizeof(mqd_path));
		if (mqd_path[0])
			mq_opt_mqd = mqd_path;
		else if (env != NULL && *env)
			mq_opt_url = env;
		else
			mq_opt_url = "tcp://127.0.0.1:7450";
	}
	cleanup_install();
	cur_instances = mq_opt_instances = opt.instances[0];

	if (legacy == NULL && on_pg()) {
		run_pg();
	} else if (legacy != NULL) {
		int cons = opt.consumers;

		if (strcmp(legacy, "push") == 0)
			cons = 0;
		else if (cons < 0)
			cons = strcmp(legacy, "cycle") == 0 ? opt.producers : 4;
		if (opt.compare) {
			for (size_t i = 0; i < N_SYS; i++)
				run_one(systems[i], opt.relaxed, NULL, legacy, opt.producers, cons,
				        opt.inflight, opt.batch, opt.rate);
		} else {
			run_one(only, opt.relaxed, NULL, legacy, opt.producers, cons, opt.inflight,
			        opt.batch, opt.rate);
		}
	} else {
		int passes = opt.compare && !opt.no_relaxed ? 2 : 1;

		for (int pass = 0; pass < passes; pass++) {
			bool relaxed = opt.compare ? pass == 1 : opt.relaxed;

			for (size_t i = 0; i < N_SCEN; i++) {
				if (!sel[i] || (pass == 1 && scenarios[i].prefill))
					continue;
				if (!opt.compare) {
					if (opt.rate > 0 && !scenarios[i].half_load)
						run_one(only, relaxed, &scenarios[i], NULL,
						        scenarios[i].producers,
						        scenarios[i].consumers,
						        scenarios[i].inflight, scenarios[i].batch,
						        opt.rate);
					else
						run_scenario(only, relaxed, &scenarios[i]);
					continue;
				}
				for (size_t k = 0; k < N_SYS; k++) {
					if (relaxed && systems[k] == &sys_nats)
						continue;
					run_scenario(systems[k], relaxed, &scenarios[i]);
				}
			}
		}
		if (opt.compare) {
			double l[3];

			loadavg(l);
			printf("== comparison, messages/s (cycles/s for 3 and 5); durable modes; "
			       "load average %.2f at start, %.2f at end\n\n",
			       load0[0], l[0]);
			print_table(false, false);
			print_limit();
			printf(
			    "== p99 push latency (the ratio mq/peer: lower is better for mq)\n\n");
			print_table(false, true);
			if (!opt.no_relaxed) {
				printf("== relaxed modes, messages/s\n\n");
				print_table(true, false);
			}
			print_goals();
		}
	}
	for (size_t i = 0; i < n_recs; i++)
		if (!recs[i].ok &&
		    (recs[i].sys == &sys_mq || recs[i].sys == &sys_pgdirect || !opt.compare))
			rv = 1; /* mq failing fails the run; a missing peer does not */
	for (size_t i = 0; i < n_recs; i++)
		if (recs[i].ok && recs[i].res.errors > 0 &&
		    (recs[i].sys == &sys_mq || recs[i].sys == &sys_pgdirect))
			rv = 1;
	if (opt.json != NULL && write_json(opt.json, cmdline, load0, date) != 0)
		rv = 1;
	return rv;
}
