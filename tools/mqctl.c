/* SPDX-License-Identifier: MIT */
/* mqctl: command-line client and admin tool of the mq broker.
 *
 * Uses only the public <mq/mq.h> (libmqclient) plus jansson for --json; it
 * must never see the wire format. Each command is one row of `cmds`: its
 * name, synopsis, help text and run function. Human output goes to stdout
 * as aligned tables or "key: value" lines; --json prints exactly one JSON
 * document per command, built with jansson, with the proto's field names.
 * Errors go to stderr as "mqctl: STATUS_NAME: message".
 *
 * Exit codes: 0 ok; 1 the broker or the library returned an error; 2 usage
 * error; 3 broker unreachable (MQ_UNAVAILABLE or MQ_DEADLINE_EXCEEDED). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <mq/mq.h>

#define EXIT_OK          0
#define EXIT_ERROR       1
#define EXIT_USAGE       2
#define EXIT_UNREACHABLE 3

#define DEFAULT_URL        "tcp://127.0.0.1:7450"
#define DEFAULT_TIMEOUT_MS 5000
/* PAYLOAD_SHOW is how many payload bytes a human pull listing shows. */
#define PAYLOAD_SHOW 60

/* ---- Global state ------------------------------------------------------ */

/* ctl holds the global options; commands read it, main() owns it. */
static struct {
	const char *url;
	bool json;
	int32_t timeout_ms;
	mq_client *client;
	/* Security (docs/security.md): flag, else MQ_TOKEN / MQ_TLS_*. */
	const char *token, *tls_ca, *tls_cert, *tls_key, *tls_server_name;
} ctl;

struct cmd;
typedef int (*cmd_fn)(const struct cmd *cmd, int argc, char **argv);

/* cmd is one command: `name` is the full path ("queue create"). */
struct cmd {
	const char *name;
	const char *args;    /* synopsis after the name */
	const char *summary; /* one line for the command list */
	const char *help;    /* options and details for --help */
	cmd_fn run;
};

/* Option codes shared by every command (global options may also follow
 * the command) and those of the commands, all above any char. */
enum {
	OPT_URL = 256,
	OPT_JSON,
	OPT_TIMEOUT,
	OPT_LEASE_MS,
	OPT_MAX_ATTEMPTS,
	OPT_IF_NOT_EXISTS,
	OPT_STATE,
	OPT_FILE,
	OPT_DEDUP_KEY,
	OPT_DEDUP_MODE,
	OPT_DELAY_MS,
	OPT_PRIORITY,
	OPT_TYPE,
	OPT_HEADER,
	OPT_MAX,
	OPT_WAIT_MS,
	OPT_ERROR,
	OPT_REASON,
	OPT_LIMIT,
	OPT_AFTER,
	OPT_ID,
	OPT_TO,
	OPT_RETRY_BASE_MS,
	OPT_RETRY_MAX_MS,
	OPT_ATOMIC,
	OPT_REASON_PREFIX,
	OPT_DEAD_SINCE_MS,
	OPT_RATE,
	OPT_LINES,
	OPT_MAX_LENGTH,
	OPT_MAX_AGE_MS,
	OPT_RATE_LIMIT,
	OPT_DEDUP_SCOPE,
	OPT_DEDUP_WINDOW_MS,
	OPT_GROUP,
	OPT_AT,
	OPT_TTL_MS,
	OPT_DLQ,
	OPT_INTERVAL_MS,
	OPT_COUNT,
	OPT_TOKEN,
	OPT_TLS_CA,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_SERVER_NAME,
};

/* COMMON_OPTS ends every command's long-option table. */
// clang-format off
#define COMMON_OPTS                                              \
	{"url", required_argument, NULL, OPT_URL},               \
	{"json", no_argument, NULL, OPT_JSON},                   \
	{"timeout", required_argument, NULL, OPT_TIMEOUT},       \
	{"token", required_argument, NULL, OPT_TOKEN},           \
	{"tls-ca", required_argument, NULL, OPT_TLS_CA},         \
	{"tls-cert", required_argument, NULL, OPT_TLS_CERT},     \
	{"tls-key", required_argument, NULL, OPT_TLS_KEY},       \
	{"tls-server-name", required_argument, NULL, OPT_TLS_SERVER_NAME}, \
	{"help", no_argument, NULL, 'h'},                        \
	{NULL, 0, NULL, 0}
// clang-format on

#define COMMON_HELP                                                                                \
	"  --url URL      broker URL (default $MQ_URL, else " DEFAULT_URL ")\n"                    \
	"  --json         print one JSON document instead of text\n"                               \
	"  --timeout MS   time limit of each call (default 5000)\n"                                \
	"  --token T      auth token (default $MQ_TOKEN; prefer the variable: flags show in ps)\n" \
	"  --tls-ca FILE  CA that verifies a tls+tcp:// broker (default $MQ_TLS_CA)\n"             \
	"  --tls-cert FILE, --tls-key FILE\n"                                                      \
	"                 client certificate and key for mutual TLS ($MQ_TLS_CERT, $MQ_TLS_KEY)\n" \
	"  --tls-server-name NAME\n"                                                               \
	"                 name the broker's certificate must hold (default: the URL's host;\n"     \
	"                 $MQ_TLS_SERVER_NAME)\n"                                                  \
	"  -h, --help     show this help\n"

/* ---- Small helpers ----------------------------------------------------- */

static int usage_error(const struct cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const struct cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mqctl%s%s: ", cmd != NULL ? " " : "", cmd != NULL ? cmd->name : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'mqctl%s%s --help'.\n", cmd != NULL ? " " : "",
	        cmd != NULL ? cmd->name : "");
	return EXIT_USAGE;
}

/* fail reports a failed call and returns its exit code. */
static int fail(mq_status st)
{
	const char *msg = mq_errmsg();

	fprintf(stderr, "mqctl: %s: %s\n", mq_status_name(st),
	        msg[0] != '\0' ? msg : mq_strerror(st));
	if (st == MQ_UNAVAILABLE || st == MQ_DEADLINE_EXCEEDED)
		return EXIT_UNREACHABLE;
	return EXIT_ERROR;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_u32(const char *s, uint32_t *out)
{
	uint64_t v;

	if (!parse_u64(s, UINT32_MAX, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool parse_i32(const char *s, int32_t *out)
{
	long long v;
	char *end;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < INT32_MIN || v > INT32_MAX)
		return false;
	*out = (int32_t)v;
	return true;
}

static uint64_t now_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* fmt_duration writes a short human duration: 850ms, 4.2s, 3m12s, 2h05m,
 * 3d04h. */
static const char *fmt_duration(char *buf, size_t len, uint64_t ms)
{
	uint64_t s = ms / 1000;

	if (ms < 1000)
		snprintf(buf, len, "%" PRIu64 "ms", ms);
	else if (s < 60)
		snprintf(buf, len, "%" PRIu64 ".%" PRIu64 "s", s, (ms % 1000) / 100);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, (s % 3600) / 60);
	else /* at most 99999 days shown: the text fits any caller's buffer */
		snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h",
		         s / 86400 > 99999 ? 99999 : s / 86400, (s % 86400) / 3600);
	return buf;
}

/* fmt_age writes how long ago unix time @p then_ms was ("-" if unknown). */
static const char *fmt_age(char *buf, size_t len, uint64_t then_ms)
{
	uint64_t now = now_unix_ms();

	if (then_ms == 0)
		return snprintf(buf, len, "-"), buf;
	return fmt_duration(buf, len, now > then_ms ? now - then_ms : 0);
}

/* fmt_until writes how long until unix time @p then_ms ("expired" if past). */
static const char *fmt_until(char *buf, size_t len, uint64_t then_ms)
{
	uint64_t now = now_unix_ms();

	if (then_ms <= now)
		return snprintf(buf, len, "expired"), buf;
	return fmt_duration(buf, len, then_ms - now);
}

static const char *fmt_bytes(char *buf, size_t len, uint64_t n)
{
	if (n >= (1u << 20) && n % (1u << 20) == 0)
		snprintf(buf, len, "%" PRIu64 " MiB", n >> 20);
	else if (n >= 1024 && n % 1024 == 0)
		snprintf(buf, len, "%" PRIu64 " KiB", n >> 10);
	else
		snprintf(buf, len, "%" PRIu64 " B", n);
	return buf;
}

/* utf8_seq returns the length of the valid UTF-8 sequence at p (n bytes
 * left), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		len = 2, cp = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		len = 3, cp = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* fmt_payload writes a printable rendering of a payload: valid UTF-8 text
 * as is, control characters and invalid bytes as C escapes, cut after
 * about @p show input bytes with "...". @p buf must hold 4*show+8 bytes. */
static const char *fmt_payload(char *buf, const void *data, size_t n, size_t show)
{
	const unsigned char *p = data;
	size_t i = 0, o = 0, seq;

	while (i < n && i < show) {
		unsigned char ch = p[i];

		if (ch == '\n' || ch == '\t' || ch == '\r' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = ch == '\n' ? 'n' : ch == '\t' ? 't' : ch == '\r' ? 'r' : '\\';
			i++;
		} else if (ch < 0x20 || ch == 0x7f || (seq = utf8_seq(p + i, n - i)) == 0) {
			o += (size_t)sprintf(buf + o, "\\x%02x", ch);
			i++;
		} else {
			memcpy(buf + o, p + i, seq);
			o += seq;
			i += seq;
		}
	}
	if (i < n) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

static char *base64(const void *data, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		*o++ = tab[(v >> 18) & 63];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? tab[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* read_all reads a whole stream into a malloc'd buffer. */
static bool read_all(FILE *f, char **out, size_t *len)
{
	size_t cap = 65536, n = 0, got;
	char *buf = malloc(cap), *grown;

	if (buf == NULL)
		return false;
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			if ((grown = realloc(buf, cap * 2)) == NULL) {
				free(buf);
				return false;
			}
			buf = grown;
			cap *= 2;
		}
	}
	if (ferror(f)) {
		free(buf);
		return false;
	}
	*out = buf;
	*len = n;
	return true;
}

/* ---- Output: JSON and tables ------------------------------------------- */

/* json_u64 makes a JSON integer of an unsigned counter (they stay far
 * below 2^63; lease tokens, which may not, are printed as strings). */
static json_t *json_u64(uint64_t v)
{
	return json_integer((json_int_t)v);
}

static int json_print(json_t *doc)
{
	int rv = EXIT_OK;

	if (doc == NULL || json_dumpf(doc, stdout, JSON_INDENT(2)) != 0) {
		fprintf(stderr, "mqctl: INTERNAL: cannot build JSON output\n");
		rv = EXIT_ERROR;
	} else {
		fputc('\n', stdout);
	}
	json_decref(doc);
	return rv;
}

/* ---- Progress ---------------------------------------------------------- */

/* A progress bar on stderr, drawn only when stderr is a terminal and the
 * output is not JSON: nothing extra when piped. */
static bool progress_on(void)
{
	return !ctl.json && isatty(STDERR_FILENO);
}

static void progress(const char *what, uint64_t done, uint64_t total)
{
	char bar[31];
	unsigned fill;

	if (!progress_on())
		return;
	if (total == 0 || done > total)
		total = done;
	fill = total ? (unsigned)(done * 30 / total) : 30;
	memset(bar, '#', fill);
	memset(bar + fill, '.', 30 - fill);
	bar[30] = '\0';
	fprintf(stderr, "\r%s [%s] %3u%% %" PRIu64 "/%" PRIu64, what, bar,
	        total ? (unsigned)(done * 100 / total) : 100, done, total);
	fflush(stderr);
}

static void progress_done(void)
{
	if (progress_on())
		fprintf(stderr, "\r\033[K");
}

#define TABLE_MAX_COLS 16

/* table collects rows of cells and prints them with aligned columns;
 * numeric columns (right[i]) are right-aligned. */
struct table {
	size_t ncols, nrows, cap;
	const char *head[TABLE_MAX_COLS];
	bool right[TABLE_MAX_COLS];
	char **cells;
};

static void table_row(struct table *t, ...)
{
	va_list ap;

	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->cells = realloc(t->cells, t->cap * t->ncols * sizeof(char *));
		if (t->cells == NULL) {
			perror("mqctl");
			exit(EXIT_ERROR);
		}
	}
	va_start(ap, t);
	for (size_t i = 0; i < t->ncols; i++) {
		const char *s = va_arg(ap, const char *);

		t->cells[t->nrows * t->ncols + i] = strdup(s != NULL ? s : "");
	}
	va_end(ap);
	t->nrows++;
}

static void table_print(struct table *t)
{
	size_t w[TABLE_MAX_COLS];

	for (size_t i = 0; i < t->ncols; i++) {
		w[i] = strlen(t->head[i]);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t l = strlen(t->cells[r * t->ncols + i]);
			w[i] = l > w[i] ? l : w[i];
		}
	}
	for (size_t r = 0; r <= t->nrows; r++) {
		for (size_t i = 0; i < t->ncols; i++) {
			const char *s = r == 0 ? t->head[i] : t->cells[(r - 1) * t->ncols + i];
			bool last = i + 1 == t->ncols;

			if (t->right[i])
				printf("%*s%s", (int)w[i], s, last ? "" : "  ");
			else if (last)
				printf("%s", s);
			else
				printf("%-*s  ", (int)w[i], s);
		}
		putchar('\n');
	}
	for (size_t r = 0; r < t->nrows * t->ncols; r++)
		free(t->cells[r]);
	free(t->cells);
}

/* ---- Connection -------------------------------------------------------- */

/* check_name rejects a bad queue name before any connection is made
 * (connecting and closing at once is needless load on the broker; with
 * nng 1.5.2 a peer that hangs up mid-handshake can even stall the broker's
 * listener, nng issue #1518). Returns -1 to go on, else the exit code. */
static int check_name(const char *name)
{
	if (mq_name_valid(name))
		return -1;
	fprintf(stderr,
	        "mqctl: INVALID_ARGUMENT: queue name \"%s\": want 1 to %d characters of "
	        "[A-Za-z0-9._-]\n",
	        name, MQ_NAME_MAX);
	return EXIT_ERROR;
}

static int connect_broker(void)
{
	mq_client_opts opts;
	mq_status st;

	mq_client_opts_init(&opts);
	opts.timeout_ms = ctl.timeout_ms;
	opts.auth_token = ctl.token;
	opts.tls_ca_file = ctl.tls_ca;
	opts.tls_cert_file = ctl.tls_cert;
	opts.tls_key_file = ctl.tls_key;
	opts.tls_server_name = ctl.tls_server_name;
	if ((st = mq_client_open(&ctl.client, ctl.url, &opts)) != MQ_OK)
		return fail(st);
	return EXIT_OK;
}

static void print_help(const struct cmd *cmd)
{
	printf("Usage: mqctl [--url URL] [--json] [--timeout MS] %s%s%s\n\n%s\n", cmd->name,
	       cmd->args[0] != '\0' ? " " : "", cmd->args, cmd->summary);
	if (cmd->help[0] != '\0')
		printf("\n%s", cmd->help);
	printf("\nCommon options:\n" COMMON_HELP);
}

/* common_opt handles an option every command takes. It returns -1 to go
 * on, else the exit code to return now (help shown, or a usage error). */
static int common_opt(const struct cmd *cmd, int opt)
{
	uint32_t ms;

	switch (opt) {
	case OPT_URL:
		ctl.url = optarg;
		return -1;
	case OPT_JSON:
		ctl.json = true;
		return -1;
	case OPT_TIMEOUT:
		if (!parse_u32(optarg, &ms) || ms == 0 || ms > INT32_MAX)
			return usage_error(cmd, "--timeout: want a positive number of ms, not '%s'",
			                   optarg);
		ctl.timeout_ms = (int32_t)ms;
		return -1;
	case OPT_TOKEN:
		ctl.token = optarg;
		return -1;
	case OPT_TLS_CA:
		ctl.tls_ca = optarg;
		return -1;
	case OPT_TLS_CERT:
		ctl.tls_cert = optarg;
		return -1;
	case OPT_TLS_KEY:
		ctl.tls_key = optarg;
		return -1;
	case OPT_TLS_SERVER_NAME:
		ctl.tls_server_name = optarg;
		return -1;
	case 'h':
		print_help(cmd);
		return EXIT_OK;
	default:
		return usage_error(cmd, "unexpected option");
	}
}

/* parse_args runs getopt over a command's arguments: command options go
 * to @p on_opt (returns -1 to go on, -2 for "not mine", or an exit code),
 * common ones to common_opt. GNU getopt permutes, so options may follow
 * positionals and "--" ends options. It checks the number of positionals
 * and leaves them in *pos (malloc'd). Returns -1 to go on, else an exit
 * code (and *pos is NULL). */
static int parse_args(const struct cmd *cmd, int argc, char **argv, const struct option *lo,
                      int (*on_opt)(const struct cmd *, int, void *), void *arg, int min_pos,
                      int max_pos, char ***pos, int *npos)
{
	int opt, rv;

	*pos = NULL;
	optind = 0; /* glibc: reinitialise for this argv */
	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (opt == '?') {
			/* getopt already said what was wrong. */
			fprintf(stderr, "Try 'mqctl %s --help'.\n", cmd->name);
			return EXIT_USAGE;
		}
		rv = on_opt != NULL ? on_opt(cmd, opt, arg) : -2;
		if (rv == -2)
			rv = common_opt(cmd, opt);
		if (rv != -1)
			return rv;
	}
	*npos = argc - optind;
	if (*npos < min_pos)
		return usage_error(cmd, "missing argument; usage: mqctl %s %s", cmd->name,
		                   cmd->args);
	if (*npos > max_pos)
		return usage_error(cmd, "unexpected argument '%s'", argv[optind + max_pos]);
	if ((*pos = calloc((size_t)*npos + 1, sizeof(char *))) == NULL)
		return EXIT_ERROR;
	memcpy(*pos, argv + optind, (size_t)*npos * sizeof(char *));
	return -1;
}

/* ---- Commands: server -------------------------------------------------- */

static int cmd_ping(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS};
	struct timespec t0, t1;
	char **pos;
	int npos, rv;
	uint64_t now_ms;
	double rtt;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, NULL, NULL, 0, 0, &pos, &npos)) != -1)
		return rv;
	free(pos);
	if ((rv = connect_broker()) != EXIT_OK)
		return rv;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((st = mq_ping(ctl.client, &now_ms)) != MQ_OK)
		return fail(st);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	rtt = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	if (ctl.json)
		return json_print(json_pack("{s:s, s:o, s:f}", "url", ctl.url, "now_ms",
		                            json_u64(now_ms), "rtt_ms", rtt));
	printf("pong from %s in %.2f ms\n", ctl.url, rtt);
	return EXIT_OK;
}

static int cmd_info(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS};
	mq_server_info si;
	char **pos, b1[32], b2[32];
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, NULL, NULL, 0, 0, &pos, &npos)) != -1)
		return rv;
	free(pos);
	if ((rv = connect_broker()) != EXIT_OK)
		return rv;
	if ((st = mq_server_info_get(ctl.client, &si)) != MQ_OK)
		return fail(st);
	if (ctl.json)
		return json_print(json_pack(
		    "{s:s, s:i, s:s, s:s, s:o, s:o, s:o, s:b, s:i, s:i}", "version", si.version,
		    "protocol_version", (int)si.protocol_version, "storage_engine",
		    si.storage_engine, "durability", si.durability, "uptime_ms",
		    json_u64(si.uptime_ms), "max_payload_bytes", json_u64(si.max_payload_bytes),
		    "now_ms", json_u64(si.now_ms), "auto_create_queues", si.auto_create_queues,
		    "default_lease_ms", (int)si.default_lease_ms, "default_max_attempts",
		    (int)si.default_max_attempts));
	printf("url:                  %s\n", ctl.url);
	printf("version:              %s\n", si.version);
	printf("protocol version:     %u (client speaks %d, library %s)\n", si.protocol_version,
	       MQ_PROTOCOL_VERSION, mq_version());
	printf("storage engine:       %s\n", si.storage_engine);
	printf("durability:           %s\n", si.durability);
	printf("uptime:               %s\n", fmt_duration(b1, sizeof(b1), si.uptime_ms));
	printf("max payload:          %s\n", fmt_bytes(b2, sizeof(b2), si.max_payload_bytes));
	printf("auto-create queues:   %s\n", si.auto_create_queues ? "yes" : "no");
	printf("default lease:        %s\n", fmt_duration(b1, sizeof(b1), si.default_lease_ms));
	printf("default max attempts: %u\n", si.default_max_attempts);
	return EXIT_OK;
}

/* ---- Commands: queues -------------------------------------------------- */

struct create_args {
	mq_queue_config cfg;
	uint32_t fields; /* MQ_QCFG_* given on the command line */
	bool if_not_exists;
};

static const char *const dedup_scopes[] = {"acked", "waiting", "window"};

/* QUEUE_CONFIG_OPTS are the options of queue create and queue update. */
// clang-format off
#define QUEUE_CONFIG_OPTS                                                        \
	{"lease-ms", required_argument, NULL, OPT_LEASE_MS},                     \
	{"max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},             \
	{"retry-base-ms", required_argument, NULL, OPT_RETRY_BASE_MS},           \
	{"retry-max-ms", required_argument, NULL, OPT_RETRY_MAX_MS},             \
	{"max-length", required_argument, NULL, OPT_MAX_LENGTH},                 \
	{"max-age-ms", required_argument, NULL, OPT_MAX_AGE_MS},                 \
	{"rate-limit", required_argument, NULL, OPT_RATE_LIMIT},                 \
	{"dedup-scope", required_argument, NULL, OPT_DEDUP_SCOPE},               \
	{"dedup-window-ms", required_argument, NULL, OPT_DEDUP_WINDOW_MS},       \
	{"dead-letter-queue", required_argument, NULL, OPT_DLQ}
// clang-format on

#define QUEUE_CONFIG_HELP                                                                          \
	"  --lease-ms N           default lease time of a pull, ms (0 = broker default)\n"         \
	"  --max-attempts N       deliveries before a message goes dead (0 = broker default)\n"    \
	"  --retry-base-ms N      a nack without delay waits N ms, doubling with each\n"           \
	"                         attempt, +-20% jitter (default 0: ready again at once)\n"        \
	"  --retry-max-ms N       cap of that wait, ms (default 0: 24 h)\n"                        \
	"  --max-length N         refuse pushes while N messages are ready, delayed or\n"          \
	"                         leased (default 0: unlimited)\n"                                 \
	"  --max-age-ms N         messages older than N ms go dead, reason \"expired\"\n"          \
	"                         (default 0: never)\n"                                            \
	"  --rate-limit N         hand out at most N messages per second (default 0: no limit)\n"  \
	"  --dedup-scope S        how long a dedup key is held: acked (while waiting or\n"         \
	"                         leased, default), waiting (while waiting only) or window\n"      \
	"                         (until acked, then --dedup-window-ms more)\n"                    \
	"  --dedup-window-ms N    the window of --dedup-scope window (default 0: 5 min)\n"         \
	"  --dead-letter-queue Q  move dead messages into queue Q ('' = keep them here)\n"

static int queue_config_opt(const struct cmd *cmd, int opt, struct create_args *a)
{
	mq_queue_config *c = &a->cfg;
	uint64_t v;

	switch (opt) {
	case OPT_LEASE_MS:
		a->fields |= MQ_QCFG_LEASE_MS;
		if (!parse_u32(optarg, &c->lease_ms))
			return usage_error(cmd, "--lease-ms: bad number '%s'", optarg);
		return -1;
	case OPT_MAX_ATTEMPTS:
		a->fields |= MQ_QCFG_MAX_ATTEMPTS;
		if (!parse_u32(optarg, &c->max_attempts))
			return usage_error(cmd, "--max-attempts: bad number '%s'", optarg);
		return -1;
	case OPT_RETRY_BASE_MS:
		a->fields |= MQ_QCFG_RETRY_BASE_MS;
		if (!parse_u32(optarg, &c->retry_base_ms))
			return usage_error(cmd, "--retry-base-ms: bad number '%s'", optarg);
		return -1;
	case OPT_RETRY_MAX_MS:
		a->fields |= MQ_QCFG_RETRY_MAX_MS;
		if (!parse_u32(optarg, &c->retry_max_ms))
			return usage_error(cmd, "--retry-max-ms: bad number '%s'", optarg);
		return -1;
	case OPT_MAX_LENGTH:
		a->fields |= MQ_QCFG_MAX_LENGTH;
		if (!parse_u64(optarg, UINT64_MAX, &c->max_length))
			return usage_error(cmd, "--max-length: bad number '%s'", optarg);
		return -1;
	case OPT_MAX_AGE_MS:
		a->fields |= MQ_QCFG_MAX_AGE_MS;
		if (!parse_u64(optarg, UINT64_MAX, &c->max_age_ms))
			return usage_error(cmd, "--max-age-ms: bad number '%s'", optarg);
		return -1;
	case OPT_RATE_LIMIT:
		a->fields |= MQ_QCFG_RATE_LIMIT;
		if (!parse_u32(optarg, &c->rate_limit))
			return usage_error(cmd, "--rate-limit: bad number '%s'", optarg);
		return -1;
	case OPT_DEDUP_SCOPE:
		a->fields |= MQ_QCFG_DEDUP_SCOPE;
		for (v = 0; v < 3; v++)
			if (strcmp(optarg, dedup_scopes[v]) == 0)
				break;
		if (v == 3)
			return usage_error(
			    cmd, "--dedup-scope: want acked, waiting or window, not '%s'", optarg);
		c->dedup_scope = (uint32_t)v;
		return -1;
	case OPT_DEDUP_WINDOW_MS:
		a->fields |= MQ_QCFG_DEDUP_WINDOW_MS;
		if (!parse_u64(optarg, UINT64_MAX, &c->dedup_window_ms))
			return usage_error(cmd, "--dedup-window-ms: bad number '%s'", optarg);
		return -1;
	case OPT_DLQ:
		a->fields |= MQ_QCFG_DEAD_LETTER_QUEUE;
		if (strlen(optarg) > MQ_NAME_MAX || (optarg[0] && !mq_name_valid(optarg)))
			return usage_error(cmd, "--dead-letter-queue: invalid queue name '%s'",
			                   optarg);
		snprintf(c->dead_letter_queue, sizeof(c->dead_letter_queue), "%s", optarg);
		return -1;
	}
	return -2;
}

static int create_opt(const struct cmd *cmd, int opt, void *arg)
{
	struct create_args *a = arg;

	if (opt == OPT_IF_NOT_EXISTS) {
		a->if_not_exists = true;
		return -1;
	}
	return queue_config_opt(cmd, opt, a);
}

static int cmd_queue_create(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {
	    QUEUE_CONFIG_OPTS,
	    {"if-not-exists", no_argument, NULL, OPT_IF_NOT_EXISTS},
	    COMMON_OPTS,
	};
	struct create_args a = {0};
	char **pos;
	int npos, rv;
	bool created = false;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, create_opt, &a, 1, 1, &pos, &npos)) != -1)
		return rv;
	if ((rv = check_name(pos[0])) == -1 && (rv = connect_broker()) == EXIT_OK) {
		st = mq_queue_create(ctl.client, pos[0], &a.cfg, a.if_not_exists, &created);
		if (st != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv =
			    json_print(json_pack("{s:s, s:b}", "name", pos[0], "created", created));
		else
			printf("%s queue %s\n", created ? "created" : "kept existing", pos[0]);
	}
	free(pos);
	return rv;
}

static json_t *queue_json(const mq_queue_info *q);
static void queue_print(const mq_queue_info *q);

static int update_opt(const struct cmd *cmd, int opt, void *arg)
{
	return queue_config_opt(cmd, opt, arg);
}

static int cmd_queue_update(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {QUEUE_CONFIG_OPTS, COMMON_OPTS};
	struct create_args a = {0};
	mq_queue_info q;
	char **pos;
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, update_opt, &a, 1, 1, &pos, &npos)) != -1)
		return rv;
	if (a.fields == 0) {
		free(pos);
		return usage_error(cmd, "name at least one setting to change");
	}
	if ((rv = check_name(pos[0])) == -1 && (rv = connect_broker()) == EXIT_OK) {
		if ((st = mq_queue_update(ctl.client, pos[0], &a.cfg, a.fields, &q)) != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv = json_print(queue_json(&q));
		else
			queue_print(&q);
	}
	free(pos);
	return rv;
}

/* cmd_queue_pause serves both queue pause and queue resume. */
static int cmd_queue_pause(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS};
	bool pause = strcmp(cmd->name, "queue pause") == 0;
	mq_queue_info q;
	char **pos;
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, NULL, NULL, 1, 1, &pos, &npos)) != -1)
		return rv;
	if ((rv = check_name(pos[0])) == -1 && (rv = connect_broker()) == EXIT_OK) {
		st = pause ? mq_queue_pause(ctl.client, pos[0], &q)
		           : mq_queue_resume(ctl.client, pos[0], &q);
		if (st != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv = json_print(queue_json(&q));
		else
			printf("%s queue %s\n", pause ? "paused" : "resumed", pos[0]);
	}
	free(pos);
	return rv;
}

static json_t *queue_json(const mq_queue_info *q)
{
	const mq_queue_stats *s = &q->stats;
	const mq_queue_config *c = &q->config;
	json_t *cfg = json_pack(
	    "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:s}", "lease_ms", json_u64(c->lease_ms),
	    "max_attempts", json_u64(c->max_attempts), "retry_base_ms", json_u64(c->retry_base_ms),
	    "retry_max_ms", json_u64(c->retry_max_ms), "max_length", json_u64(c->max_length),
	    "max_age_ms", json_u64(c->max_age_ms), "rate_limit", json_u64(c->rate_limit),
	    "dedup_scope", c->dedup_scope < 3 ? dedup_scopes[c->dedup_scope] : "unknown",
	    "dedup_window_ms", json_u64(c->dedup_window_ms), "dead_letter_queue",
	    c->dead_letter_queue);
	json_t *st = json_pack(
	    "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "ready",
	    json_u64(s->ready), "delayed", json_u64(s->delayed), "in_flight",
	    json_u64(s->in_flight), "dead", json_u64(s->dead), "pushed_total",
	    json_u64(s->pushed_total), "acked_total", json_u64(s->acked_total), "nacked_total",
	    json_u64(s->nacked_total), "expired_total", json_u64(s->expired_total),
	    "deduplicated_total", json_u64(s->deduplicated_total), "dead_total",
	    json_u64(s->dead_total), "redriven_total", json_u64(s->redriven_total),
	    "oldest_ready_age_ms", json_u64(s->oldest_ready_age_ms));

	return json_pack("{s:s, s:b, s:o, s:o, s:o}", "name", q->name, "paused", q->paused,
	                 "config", cfg, "stats", st, "created_ms", json_u64(q->created_ms));
}

static int cmd_queue_list(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS};
	struct table t = {.ncols = 13,
	                  .head = {"NAME", "READY", "DELAYED", "INFLIGHT", "DEAD", "PUSHED",
	                           "ACKED", "NACKED", "EXPIRED", "DEDUPED", "LEASE", "MAX_ATT",
	                           "AGE"},
	                  .right = {false, true, true, true, true, true, true, true, true, true,
	                            true, true, true}};
	mq_queue_info *qs;
	char **pos;
	int npos, rv;
	size_t n;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, NULL, NULL, 0, 0, &pos, &npos)) != -1)
		return rv;
	free(pos);
	if ((rv = connect_broker()) != EXIT_OK)
		return rv;
	if ((st = mq_queue_list(ctl.client, &qs, &n)) != MQ_OK)
		return fail(st);
	if (ctl.json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, queue_json(&qs[i]));
		mq_queue_list_free(qs);
		return json_print(json_pack("{s:o}", "queues", arr));
	}
	for (size_t i = 0; i < n; i++) {
		const mq_queue_stats *s = &qs[i].stats;
		char c[10][24], lease[16], maxatt[16], age[16];

		snprintf(c[0], 24, "%" PRIu64, s->ready);
		snprintf(c[1], 24, "%" PRIu64, s->delayed);
		snprintf(c[2], 24, "%" PRIu64, s->in_flight);
		snprintf(c[3], 24, "%" PRIu64, s->dead);
		snprintf(c[4], 24, "%" PRIu64, s->pushed_total);
		snprintf(c[5], 24, "%" PRIu64, s->acked_total);
		snprintf(c[6], 24, "%" PRIu64, s->nacked_total);
		snprintf(c[7], 24, "%" PRIu64, s->expired_total);
		snprintf(c[8], 24, "%" PRIu64, s->deduplicated_total);
		if (qs[i].config.lease_ms == 0)
			snprintf(lease, sizeof(lease), "default");
		else
			fmt_duration(lease, sizeof(lease), qs[i].config.lease_ms);
		if (qs[i].config.max_attempts == 0)
			snprintf(maxatt, sizeof(maxatt), "default");
		else
			snprintf(maxatt, sizeof(maxatt), "%u", qs[i].config.max_attempts);
		table_row(&t, qs[i].name, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8],
		          lease, maxatt, fmt_age(age, sizeof(age), qs[i].created_ms));
	}
	mq_queue_list_free(qs);
	if (n == 0)
		printf("no queues\n");
	else
		table_print(&t);
	return EXIT_OK;
}

/* queue_print prints a queue's config and counters, one per line. */
static void queue_print(const mq_queue_info *q)
{
	const mq_queue_stats *s = &q->stats;
	const mq_queue_config *c = &q->config;
	char b[32], b2[32];

	printf("name:          %s\n", q->name);
	printf("state:         %s\n", q->paused ? "paused" : "active");
	printf("created:       %s ago\n", fmt_age(b, sizeof(b), q->created_ms));
	if (c->lease_ms != 0)
		printf("lease:         %s\n", fmt_duration(b, sizeof(b), c->lease_ms));
	else
		printf("lease:         broker default\n");
	if (c->max_attempts != 0)
		printf("max attempts:  %u\n", c->max_attempts);
	else
		printf("max attempts:  broker default\n");
	if (c->retry_base_ms != 0)
		printf("retry backoff: %s doubling, up to %s\n",
		       fmt_duration(b, sizeof(b), c->retry_base_ms),
		       c->retry_max_ms != 0 ? fmt_duration(b2, sizeof(b2), c->retry_max_ms)
		                            : "24h");
	else
		printf("retry backoff: none\n");
	if (c->max_length != 0)
		printf("max length:    %" PRIu64 "\n", c->max_length);
	else
		printf("max length:    unlimited\n");
	printf("max age:       %s\n",
	       c->max_age_ms != 0 ? fmt_duration(b, sizeof(b), c->max_age_ms) : "none");
	if (c->rate_limit != 0)
		printf("rate limit:    %u/s\n", c->rate_limit);
	else
		printf("rate limit:    none\n");
	printf("dedup scope:   %s", c->dedup_scope < 3 ? dedup_scopes[c->dedup_scope] : "unknown");
	if (c->dedup_scope == MQ_DEDUP_SCOPE_WINDOW)
		printf(
		    " (%s after the ack)",
		    fmt_duration(b, sizeof(b), c->dedup_window_ms ? c->dedup_window_ms : 300000));
	printf("\n");
	printf("dead letters:  %s\n",
	       c->dead_letter_queue[0] ? c->dead_letter_queue : "kept in this queue");
	printf("ready:         %" PRIu64 "\n", s->ready);
	printf("delayed:       %" PRIu64 "\n", s->delayed);
	printf("in flight:     %" PRIu64 "\n", s->in_flight);
	printf("dead:          %" PRIu64 "\n", s->dead);
	printf("oldest ready:  %s\n",
	       s->oldest_ready_age_ms ? fmt_duration(b, sizeof(b), s->oldest_ready_age_ms) : "-");
	printf("pushed total:  %" PRIu64 "\n", s->pushed_total);
	printf("acked total:   %" PRIu64 "\n", s->acked_total);
	printf("nacked total:  %" PRIu64 "\n", s->nacked_total);
	printf("expired total: %" PRIu64 "\n", s->expired_total);
	printf("deduplicated:  %" PRIu64 "\n", s->deduplicated_total);
	printf("dead total:    %" PRIu64 "\n", s->dead_total);
	printf("redriven:      %" PRIu64 "\n", s->redriven_total);
}

static int cmd_queue_stats(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS};
	mq_queue_info q;
	char **pos;
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, NULL, NULL, 1, 1, &pos, &npos)) != -1)
		return rv;
	if ((rv = check_name(pos[0])) == -1 && (rv = connect_broker()) == EXIT_OK) {
		if ((st = mq_queue_get(ctl.client, pos[0], &q)) != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv = json_print(queue_json(&q));
		else
			queue_print(&q);
	}
	free(pos);
	return rv;
}

static int purge_opt(const struct cmd *cmd, int opt, void *arg)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} states[] = {
	    {"ready", MQ_STATE_READY}, {"delayed", MQ_STATE_DELAYED}, {"leased", MQ_STATE_LEASED},
	    {"dead", MQ_STATE_DEAD},   {"all", MQ_STATE_ALL},
	};
	uint32_t *mask = arg;

	if (opt != OPT_STATE)
		return -2;
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		if (strcmp(optarg, states[i].name) == 0) {
			*mask |= states[i].bit;
			return -1;
		}
	}
	return usage_error(cmd, "--state: want ready, delayed, leased, dead or all, not '%s'",
	                   optarg);
}

/* A purge goes in steps of this many messages, each its own short write
 * transaction, so a huge purge never holds the broker's writer for long and
 * a progress bar can follow it. */
#define PURGE_STEP 10000

/* purge_total estimates how many messages of the queue are in the mask's
 * states (for the progress bar only); 0 when unknown. */
static uint64_t purge_total(const char *name, uint32_t mask)
{
	mq_queue_info qi;

	if (mq_queue_get(ctl.client, name, &qi) != MQ_OK)
		return 0;
	if (mask == 0)
		mask = MQ_STATE_ALL;
	return ((mask & MQ_STATE_READY) ? qi.stats.ready : 0) +
	       ((mask & MQ_STATE_DELAYED) ? qi.stats.delayed : 0) +
	       ((mask & MQ_STATE_LEASED) ? qi.stats.in_flight : 0) +
	       ((mask & MQ_STATE_DEAD) ? qi.stats.dead : 0);
}

/* purge_steps purges the queue's messages in mask in steps of PURGE_STEP,
 * drawing a progress bar labelled `what` against total (0 = unknown). */
static mq_status purge_steps(const char *name, uint32_t mask, const char *what, uint64_t total,
                             uint64_t *purged, uint64_t *steps)
{
	mq_purge_opts o = {.state_mask = mask, .max = PURGE_STEP};
	mq_status st;
	bool more;

	do {
		uint64_t n = 0;

		st = mq_queue_purge_ex(ctl.client, name, &o, &n, &more, &o.cursor);
		if (st != MQ_OK)
			break;
		*purged += n;
		(*steps)++;
		progress(what, *purged, total);
	} while (more);
	progress_done();
	return st;
}

static int cmd_queue_purge(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"state", required_argument, NULL, OPT_STATE},
	    COMMON_OPTS,
	};
	uint32_t mask = 0;
	uint64_t purged = 0, steps = 0;
	char **pos;
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, purge_opt, &mask, 1, 1, &pos, &npos)) != -1)
		return rv;
	if ((rv = check_name(pos[0])) == -1 && (rv = connect_broker()) == EXIT_OK) {
		st = purge_steps(pos[0], mask, "purging",
		                 progress_on() ? purge_total(pos[0], mask) : 0, &purged, &steps);
		if (st != MQ_OK) {
			if (purged > 0)
				fprintf(stderr,
				        "mqctl: %" PRIu64 " message%s purged before the error\n",
				        purged, purged == 1 ? " was" : "s were");
			rv = fail(st);
		} else if (ctl.json)
			rv = json_print(json_pack("{s:s, s:o, s:o}", "name", pos[0], "purged",
			                          json_u64(purged), "steps", json_u64(steps)));
		else
			printf("purged %" PRIu64 " message%s from %s\n", purged,
			       purged == 1 ? "" : "s", pos[0]);
	}
	free(pos);
	return rv;
}

static int cmd_queue_delete(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS};
	char **pos;
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, NULL, NULL, 1, 1, &pos, &npos)) != -1)
		return rv;
	if ((rv = check_name(pos[0])) == -1 && (rv = connect_broker()) == EXIT_OK) {
		uint64_t total = purge_total(pos[0], MQ_STATE_ALL), purged = 0, steps = 0;

		/* A large queue is emptied in bounded steps first (with a
		 * progress bar), so the delete itself is one short transaction. */
		st = MQ_OK;
		if (total > PURGE_STEP)
			st = purge_steps(pos[0], MQ_STATE_ALL, "emptying",
			                 progress_on() ? total : 0, &purged, &steps);
		if (st == MQ_OK)
			st = mq_queue_delete(ctl.client, pos[0]);
		if (st != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv = json_print(json_pack("{s:s, s:b}", "name", pos[0], "deleted", 1));
		else
			printf("deleted queue %s\n", pos[0]);
	}
	free(pos);
	return rv;
}

/* ---- Commands: messages ------------------------------------------------ */

#define PUSH_MAX_HEADERS 64

struct push_args {
	mq_push_opts opts;
	mq_header headers[PUSH_MAX_HEADERS];
	const char *file;
	bool lines; /* --lines: one message per line of --file or stdin */
	bool atomic;
};

/* parse_time_ms reads an absolute time: unix ms (digits only) or RFC 3339
 * (date, 'T' or ' ', time, optional fraction, then 'Z' or +-HH:MM). */
static bool parse_time_ms(const char *s, uint64_t *out)
{
	int y, mo, d, h, mi, sec, n = 0, oh = 0, om = 0;
	uint64_t frac = 0, scale = 1000;
	struct tm tm = {0};
	const char *p;
	int64_t t;

	if (s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") == strlen(s))
		return parse_u64(s, UINT64_MAX, out);
	if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n == 0)
		return false;
	p = s + n;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*p - '0') * scale;
			}
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;

		if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2)
			return false;
		p += 1 + n;
		oh *= sign;
		om *= sign;
	} else {
		return false;
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = (int64_t)timegm(&tm) - (int64_t)oh * 3600 - (int64_t)om * 60;
	if (t < 0)
		return false;
	*out = (uint64_t)t * 1000u + frac;
	return true;
}

static int push_opt(const struct cmd *cmd, int opt, void *arg)
{
	struct push_args *a = arg;
	char *eq;

	switch (opt) {
	case OPT_FILE:
		a->file = optarg;
		return -1;
	case OPT_LINES:
		a->lines = true;
		return -1;
	case OPT_ATOMIC:
		a->atomic = true;
		return -1;
	case OPT_DEDUP_KEY:
		a->opts.dedup_key = optarg;
		return -1;
	case OPT_DEDUP_MODE:
		if (strcmp(optarg, "ignore") == 0)
			a->opts.dedup_mode = MQ_DEDUP_IGNORE;
		else if (strcmp(optarg, "replace") == 0)
			a->opts.dedup_mode = MQ_DEDUP_REPLACE;
		else if (strcmp(optarg, "debounce") == 0)
			a->opts.dedup_mode = MQ_DEDUP_DEBOUNCE;
		else
			return usage_error(
			    cmd, "--dedup-mode: want ignore, replace or debounce, not '%s'",
			    optarg);
		return -1;
	case OPT_GROUP:
		a->opts.group = optarg;
		return -1;
	case OPT_AT:
		if (!parse_time_ms(optarg, &a->opts.not_before_ms))
			return usage_error(cmd,
			                   "--at: want RFC 3339 (2030-01-02T03:04:05Z, "
			                   "2030-01-02T03:04:05.5+02:00) or unix ms, not '%s'",
			                   optarg);
		return -1;
	case OPT_TTL_MS:
		if (!parse_u64(optarg, UINT64_MAX, &a->opts.ttl_ms))
			return usage_error(cmd, "--ttl-ms: bad number '%s'", optarg);
		return -1;
	case OPT_DELAY_MS:
		if (!parse_u64(optarg, UINT64_MAX, &a->opts.delay_ms))
			return usage_error(cmd, "--delay-ms: bad number '%s'", optarg);
		return -1;
	case OPT_PRIORITY:
		if (!parse_i32(optarg, &a->opts.priority))
			return usage_error(cmd, "--priority: bad number '%s'", optarg);
		return -1;
	case OPT_TYPE:
		a->opts.type = optarg;
		return -1;
	case OPT_HEADER:
		if ((eq = strchr(optarg, '=')) == NULL || eq == optarg)
			return usage_error(cmd, "--header: want KEY=VALUE, not '%s'", optarg);
		if (a->opts.n_headers == PUSH_MAX_HEADERS)
			return usage_error(cmd, "--header: at most %d headers", PUSH_MAX_HEADERS);
		/* Split in place: optarg points into argv, which we own. */
		*eq = '\0';
		a->headers[a->opts.n_headers].key = optarg;
		a->headers[a->opts.n_headers].value = eq + 1;
		a->opts.n_headers++;
		return -1;
	}
	return -2;
}

/* push_many pushes several messages in one request: the DATA
 * positionals, or the lines of --lines FILE ("-" = stdin), with the same
 * options; --atomic makes it all or nothing. */
static int push_many(const struct cmd *cmd, struct push_args *a, char **pos, int npos)
{
	const void **payloads = NULL;
	size_t *lens = NULL, n = 0, len = 0;
	mq_push_opts *opts = NULL;
	mq_push_result *res = NULL;
	char *data = NULL;
	int rv;
	mq_status st;

	if (a->lines && npos > 1)
		return usage_error(cmd, "give DATA... or --lines, not both");
	if (!a->lines && a->file != NULL)
		return usage_error(cmd,
		                   "--atomic with --file needs --lines (one message per line)");
	if (a->lines) {
		FILE *f =
		    a->file == NULL || strcmp(a->file, "-") == 0 ? stdin : fopen(a->file, "rb");

		if (f == NULL) {
			fprintf(stderr, "mqctl: INVALID_ARGUMENT: %s: %s\n", a->file,
			        strerror(errno));
			return EXIT_ERROR;
		}
		if (!read_all(f, &data, &len)) {
			fprintf(stderr, "mqctl: INTERNAL: reading %s: %s\n",
			        a->file != NULL ? a->file : "stdin", strerror(errno));
			if (f != stdin)
				fclose(f);
			return EXIT_ERROR;
		}
		if (f != stdin)
			fclose(f);
	}
	payloads = calloc(MQ_PUSH_BATCH_MAX, sizeof(*payloads));
	lens = calloc(MQ_PUSH_BATCH_MAX, sizeof(*lens));
	opts = calloc(MQ_PUSH_BATCH_MAX, sizeof(*opts));
	res = calloc(MQ_PUSH_BATCH_MAX, sizeof(*res));
	if (payloads == NULL || lens == NULL || opts == NULL || res == NULL) {
		rv = EXIT_ERROR;
		goto out;
	}
	if (a->lines) { /* non-empty lines, as push --lines */
		for (char *p = data, *end = data + len; p < end;) {
			char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t l = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

			if (l > 0 && n == MQ_PUSH_BATCH_MAX) {
				rv = usage_error(cmd, "--atomic: at most %d messages",
				                 MQ_PUSH_BATCH_MAX);
				goto out;
			}
			if (l > 0) {
				payloads[n] = p;
				lens[n++] = l;
			}
			p += l + 1;
		}
	} else {
		for (int i = 1; i < npos; i++) {
			payloads[n] = pos[i];
			lens[n++] = strlen(pos[i]);
		}
	}
	if (n == 0) {
		rv = usage_error(cmd, "no messages to push");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		opts[i] = a->opts;
	if ((rv = check_name(pos[0])) != -1 || (rv = connect_broker()) != EXIT_OK)
		goto out;
	st = mq_push_batch_ex(ctl.client, pos[0], n, payloads, lens, opts,
	                      a->atomic ? MQ_PUSH_ATOMIC : 0, res);
	rv = st == MQ_OK ? EXIT_OK : fail(st);
	if (ctl.json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, json_pack("{s:s, s:o, s:b}", "status",
			                                     mq_status_name(res[i].status), "id",
			                                     json_u64(res[i].id), "duplicate",
			                                     res[i].duplicate));
		if (json_print(json_pack("{s:s, s:b, s:o}", "queue", pos[0], "atomic", a->atomic,
		                         "results", arr)) != EXIT_OK &&
		    rv == EXIT_OK)
			rv = EXIT_ERROR;
	} else {
		for (size_t i = 0; i < n; i++) {
			if (res[i].status != MQ_OK)
				printf("message %zu: not stored: %s\n", i,
				       mq_status_name(res[i].status));
			else if (res[i].duplicate)
				printf("message %zu: duplicate of %" PRIu64 "\n", i, res[i].id);
			else
				printf("message %zu: pushed %" PRIu64 " to %s\n", i, res[i].id,
				       pos[0]);
		}
	}
out:
	free(payloads);
	free(lens);
	free(opts);
	free(res);
	free(data);
	return rv;
}

#define PUSH_LINES_BATCH 500

/* push_lines pushes each non-empty line of data[0..len) as one message, in
 * batches, with a progress bar; data is modified (lines split in place). */
static int push_lines(const char *queue, char *data, size_t len, const mq_push_opts *opts)
{
	const void *payloads[PUSH_LINES_BATCH];
	size_t lens[PUSH_LINES_BATCH];
	mq_push_opts o[PUSH_LINES_BATCH];
	mq_push_result res[PUSH_LINES_BATCH];
	uint64_t total = 0, done = 0, pushed = 0, dups = 0, failed = 0;
	mq_status first = MQ_OK;
	char first_msg[512] = "";
	char *p = data, *end = data + len;

	for (char *q = data; q < end; q++)
		if (*q == '\n' && q > data && q[-1] != '\n')
			total++;
	if (len && data[len - 1] != '\n')
		total++;
	for (size_t i = 0; i < PUSH_LINES_BATCH; i++)
		o[i] = *opts;
	while (p < end) {
		size_t n = 0;
		mq_status st;

		while (p < end && n < PUSH_LINES_BATCH) {
			char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);

			if (l > 0) {
				payloads[n] = p;
				lens[n++] = l;
			}
			p += l + (nl ? 1 : 0);
		}
		if (n == 0)
			break;
		memset(res, 0, sizeof(res));
		st = mq_push_batch(ctl.client, queue, n, payloads, lens, o, res);
		if (st != MQ_OK && res[0].status == MQ_OK && res[0].id == 0) {
			/* The request itself failed (results are written only when
			 * the broker answered, and an answered result has a
			 * failure status or an id): nothing of this batch is known. */
			progress_done();
			return fail(st);
		}
		for (size_t i = 0; i < n; i++) {
			if (res[i].status != MQ_OK) {
				if (failed++ == 0) {
					first = res[i].status;
					snprintf(first_msg, sizeof(first_msg), "%s", mq_errmsg());
				}
			} else if (res[i].duplicate) {
				dups++;
			} else {
				pushed++;
			}
		}
		done += n;
		progress("pushing", done, total);
	}
	progress_done();
	if (ctl.json)
		json_print(json_pack("{s:s, s:o, s:o, s:o}", "queue", queue, "pushed",
		                     json_u64(pushed), "duplicates", json_u64(dups), "failed",
		                     json_u64(failed)));
	else
		printf("pushed %" PRIu64 " message%s to %s (%" PRIu64 " duplicate%s, %" PRIu64
		       " failed)\n",
		       pushed, pushed == 1 ? "" : "s", queue, dups, dups == 1 ? "" : "s", failed);
	if (failed) {
		fprintf(stderr, "mqctl: %s: %" PRIu64 " message%s failed; the first: %s\n",
		        mq_status_name(first), failed, failed == 1 ? "" : "s", first_msg);
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

static int cmd_push(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"lines", no_argument, NULL, OPT_LINES},
	    {"file", required_argument, NULL, OPT_FILE},
	    {"dedup-key", required_argument, NULL, OPT_DEDUP_KEY},
	    {"dedup-mode", required_argument, NULL, OPT_DEDUP_MODE},
	    {"delay-ms", required_argument, NULL, OPT_DELAY_MS},
	    {"priority", required_argument, NULL, OPT_PRIORITY},
	    {"type", required_argument, NULL, OPT_TYPE},
	    {"header", required_argument, NULL, OPT_HEADER},
	    {"group", required_argument, NULL, OPT_GROUP},
	    {"at", required_argument, NULL, OPT_AT},
	    {"ttl-ms", required_argument, NULL, OPT_TTL_MS},
	    {"atomic", no_argument, NULL, OPT_ATOMIC},
	    COMMON_OPTS,
	};
	struct push_args a = {0};
	char **pos, *data = NULL;
	size_t len = 0;
	uint64_t id = 0;
	bool dup = false, owned = false;
	int npos, rv;
	mq_status st;

	a.opts.headers = a.headers;
	if ((rv = parse_args(cmd, argc, argv, lo, push_opt, &a, 1, 1 + MQ_PUSH_BATCH_MAX, &pos,
	                     &npos)) != -1)
		return rv;
	if (npos > 2 || a.atomic) {
		rv = push_many(cmd, &a, pos, npos);
		free(pos);
		return rv;
	}
	if (npos == 2 && a.file != NULL) {
		free(pos);
		return usage_error(cmd, "give DATA or --file, not both");
	}
	if (a.lines && (npos == 2 || a.opts.dedup_key != NULL)) {
		free(pos);
		return usage_error(cmd, "--lines reads --file or stdin and takes no --dedup-key");
	}
	if (npos == 2) {
		data = pos[1];
		len = strlen(data);
	} else {
		FILE *f = stdin;

		if (a.file != NULL && strcmp(a.file, "-") != 0 &&
		    (f = fopen(a.file, "rb")) == NULL) {
			fprintf(stderr, "mqctl: INVALID_ARGUMENT: %s: %s\n", a.file,
			        strerror(errno));
			free(pos);
			return EXIT_ERROR;
		}
		if (f == stdin && isatty(STDIN_FILENO))
			fprintf(stderr, "mqctl: reading the payload from the terminal; end it with "
			                "Ctrl-D\n");
		if (!read_all(f, &data, &len)) {
			fprintf(stderr, "mqctl: INTERNAL: reading %s: %s\n",
			        a.file != NULL ? a.file : "stdin", strerror(errno));
			if (f != stdin)
				fclose(f);
			free(pos);
			return EXIT_ERROR;
		}
		if (f != stdin)
			fclose(f);
		owned = true;
	}
	if (a.lines) {
		if ((rv = check_name(pos[0])) == -1 && (rv = connect_broker()) == EXIT_OK)
			rv = push_lines(pos[0], data, len, &a.opts);
	} else if ((rv = check_name(pos[0])) == -1 && (rv = connect_broker()) == EXIT_OK) {
		if ((st = mq_push(ctl.client, pos[0], data, len, &a.opts, &id, &dup)) != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv = json_print(json_pack("{s:s, s:o, s:b}", "queue", pos[0], "id",
			                          json_u64(id), "duplicate", dup));
		else if (dup)
			printf("duplicate of %" PRIu64 " in %s (dedup key %s)\n", id, pos[0],
			       a.opts.dedup_key);
		else
			printf("pushed %" PRIu64 " to %s (%zu bytes)\n", id, pos[0], len);
	}
	if (owned)
		free(data);
	free(pos);
	return rv;
}

struct pull_args {
	size_t max;
	mq_pull_opts opts;
};

static int pull_opt(const struct cmd *cmd, int opt, void *arg)
{
	struct pull_args *a = arg;
	uint64_t v;

	switch (opt) {
	case OPT_MAX:
		if (!parse_u64(optarg, 1000, &v) || v == 0)
			return usage_error(cmd, "--max: want 1 to 1000, not '%s'", optarg);
		a->max = (size_t)v;
		return -1;
	case OPT_WAIT_MS:
		if (!parse_u32(optarg, &a->opts.wait_ms))
			return usage_error(cmd, "--wait-ms: bad number '%s'", optarg);
		return -1;
	case OPT_LEASE_MS:
		if (!parse_u32(optarg, &a->opts.lease_ms))
			return usage_error(cmd, "--lease-ms: bad number '%s'", optarg);
		return -1;
	}
	return -2;
}

static json_t *message_json(const mq_message *m)
{
	size_t len, nh = mq_message_header_count(m);
	const void *p = mq_message_payload(m, &len);
	json_t *o, *hs = json_array(), *payload;
	char token[24];

	for (size_t i = 0; i < nh; i++) {
		mq_header h = mq_message_header(m, i);
		json_array_append_new(hs, json_pack("{s:s, s:s}", "key", h.key, "value", h.value));
	}
	/* Lease tokens use all 64 bits: a string, so no JSON reader rounds it. */
	snprintf(token, sizeof(token), "%" PRIu64, mq_message_lease_token(m));
	o = json_pack("{s:o, s:s, s:i, s:s, s:o, s:o, s:i, s:s, s:s, s:o, s:o}", "id",
	              json_u64(mq_message_id(m)), "queue", mq_message_queue(m), "attempts",
	              (int)mq_message_attempts(m), "lease_token", token, "lease_expiry_ms",
	              json_u64(mq_message_lease_expiry_ms(m)), "enqueued_ms",
	              json_u64(mq_message_enqueued_ms(m)), "priority", (int)mq_message_priority(m),
	              "dedup_key", mq_message_dedup_key(m), "type", mq_message_type(m), "headers",
	              hs, "payload_size", json_u64(len));
	/* json_stringn refuses invalid UTF-8: then the bytes go as base64. */
	if ((payload = json_stringn(p, len)) != NULL) {
		json_object_set_new(o, "payload", payload);
	} else {
		char *b64 = base64(p, len);
		json_object_set_new(o, "payload_base64", json_string(b64 != NULL ? b64 : ""));
		free(b64);
	}
	return o;
}

static void pull_print(mq_message **msgs, size_t n)
{
	struct table t = {
	    .ncols = 8,
	    .head = {"ID", "TOKEN", "ATTEMPTS", "PRIO", "TYPE", "AGE", "LEASE", "PAYLOAD"},
	    .right = {true, true, true, true}};
	bool any_headers = false;

	for (size_t i = 0; i < n; i++)
		any_headers |= mq_message_header_count(msgs[i]) > 0;
	if (any_headers) {
		/* HEADERS goes before PAYLOAD, which stays last. */
		t.ncols = 9;
		t.head[7] = "HEADERS";
		t.head[8] = "PAYLOAD";
	}
	for (size_t i = 0; i < n; i++) {
		const mq_message *m = msgs[i];
		char id[24], tok[24], att[12], prio[12], age[16], lease[16], hdrs[256] = "";
		char shown[PAYLOAD_SHOW * 4 + 40], *end;
		size_t len, nh = mq_message_header_count(m), used = 0;
		const void *p = mq_message_payload(m, &len);

		snprintf(id, sizeof(id), "%" PRIu64, mq_message_id(m));
		snprintf(tok, sizeof(tok), "%" PRIu64, mq_message_lease_token(m));
		snprintf(att, sizeof(att), "%u", mq_message_attempts(m));
		snprintf(prio, sizeof(prio), "%d", (int)mq_message_priority(m));
		fmt_age(age, sizeof(age), mq_message_enqueued_ms(m));
		fmt_until(lease, sizeof(lease), mq_message_lease_expiry_ms(m));
		for (size_t h = 0; h < nh && used < sizeof(hdrs) - 1; h++) {
			mq_header hd = mq_message_header(m, h);
			int w = snprintf(hdrs + used, sizeof(hdrs) - used, "%s%s=%s",
			                 h > 0 ? "," : "", hd.key, hd.value);
			used += w > 0 ? (size_t)w : 0;
		}
		fmt_payload(shown, p, len, PAYLOAD_SHOW);
		if (len > PAYLOAD_SHOW) {
			end = shown + strlen(shown);
			sprintf(end, " (%zu bytes)", len);
		}
		if (any_headers)
			table_row(&t, id, tok, att, prio, mq_message_type(m), age, lease, hdrs,
			          shown);
		else
			table_row(&t, id, tok, att, prio, mq_message_type(m), age, lease, shown);
	}
	table_print(&t);
}

static int cmd_pull(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"max", required_argument, NULL, OPT_MAX},
	    {"wait-ms", required_argument, NULL, OPT_WAIT_MS},
	    {"lease-ms", required_argument, NULL, OPT_LEASE_MS},
	    COMMON_OPTS,
	};
	struct pull_args a = {.max = 1};
	mq_message **msgs = NULL;
	char **pos;
	size_t n = 0;
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, pull_opt, &a, 1, 1, &pos, &npos)) != -1)
		return rv;
	if ((rv = check_name(pos[0])) != -1 || (rv = connect_broker()) != EXIT_OK)
		goto out;
	if ((msgs = calloc(a.max, sizeof(*msgs))) == NULL) {
		rv = EXIT_ERROR;
		goto out;
	}
	if ((st = mq_pull(ctl.client, pos[0], &a.opts, msgs, a.max, &n)) != MQ_OK) {
		rv = fail(st);
		goto out;
	}
	if (ctl.json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, message_json(msgs[i]));
		rv = json_print(json_pack("{s:o}", "messages", arr));
	} else if (n == 0) {
		printf("no messages ready in %s\n", pos[0]);
	} else {
		pull_print(msgs, n);
	}
	for (size_t i = 0; i < n; i++)
		mq_message_free(msgs[i]);
out:
	free(msgs);
	free(pos);
	return rv;
}

/* lease_args parses the QUEUE ID TOKEN positionals of ack/nack/extend. */
static int lease_args(const struct cmd *cmd, char **pos, uint64_t *id, uint64_t *token)
{
	if (!parse_u64(pos[1], UINT64_MAX, id))
		return usage_error(cmd, "bad message id '%s'", pos[1]);
	if (!parse_u64(pos[2], UINT64_MAX, token))
		return usage_error(cmd, "bad lease token '%s'", pos[2]);
	return -1;
}

/* lease_list parses the ID:TOKEN positionals pos[1..npos) of a batch
 * ack/nack/extend into *items (malloc'd). */
static int lease_list(const struct cmd *cmd, char **pos, int npos, mq_lease_ref **items)
{
	mq_lease_ref *it = calloc((size_t)npos, sizeof(*it));

	*items = NULL;
	if (it == NULL)
		return EXIT_ERROR;
	for (int i = 1; i < npos; i++) {
		char *colon = strchr(pos[i], ':');

		if (colon == NULL) {
			free(it);
			return usage_error(cmd, "want ID:TOKEN, not '%s'", pos[i]);
		}
		*colon = '\0';
		if (!parse_u64(pos[i], UINT64_MAX, &it[i - 1].id) ||
		    !parse_u64(colon + 1, UINT64_MAX, &it[i - 1].token)) {
			*colon = ':';
			free(it);
			return usage_error(cmd, "bad ID:TOKEN '%s'", pos[i]);
		}
		*colon = ':';
	}
	*items = it;
	return -1;
}

/* is_batch tells whether ack/nack/extend got ID:TOKEN pairs (else the
 * single form QUEUE ID TOKEN). */
static bool is_batch(char **pos, int npos)
{
	return npos != 3 || strchr(pos[1], ':') != NULL || strchr(pos[2], ':') != NULL;
}

enum lease_op { LEASE_ACK, LEASE_NACK, LEASE_EXTEND };

/* run_lease_batch sends one batch and prints each lease's outcome; the
 * exit code is the first failure's. */
static int run_lease_batch(const struct cmd *cmd, enum lease_op op, char **pos, int npos,
                           uint64_t delay_ms, const char *error, uint32_t lease_ms)
{
	static const char *const verb[] = {"acked", "nacked", "extended"};
	mq_lease_ref *items;
	mq_lease_result *res;
	size_t n = (size_t)npos - 1;
	int rv;
	mq_status st;

	if (n > MQ_LEASE_BATCH_MAX)
		return usage_error(cmd, "at most %d ID:TOKEN pairs", MQ_LEASE_BATCH_MAX);
	if ((rv = lease_list(cmd, pos, npos, &items)) != -1)
		return rv;
	if ((rv = check_name(pos[0])) != -1 || (rv = connect_broker()) != EXIT_OK) {
		free(items);
		return rv;
	}
	if ((res = calloc(n, sizeof(*res))) == NULL) {
		free(items);
		return EXIT_ERROR;
	}
	if (op == LEASE_ACK)
		st = mq_ack_batch(ctl.client, pos[0], items, n, res);
	else if (op == LEASE_NACK)
		st = mq_nack_batch(ctl.client, pos[0], items, n, delay_ms, error, res);
	else
		st = mq_extend_batch(ctl.client, pos[0], items, n, lease_ms, res);
	rv = st == MQ_OK ? EXIT_OK : fail(st);
	if (ctl.json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++) {
			json_t *o = json_pack("{s:o, s:s}", "id", json_u64(items[i].id), "status",
			                      mq_status_name(res[i].status));
			if (op == LEASE_EXTEND && res[i].status == MQ_OK)
				json_object_set_new(o, "lease_expiry_ms",
				                    json_u64(res[i].lease_expiry_ms));
			json_array_append_new(arr, o);
		}
		if (json_print(json_pack("{s:s, s:o}", "queue", pos[0], "results", arr)) !=
		        EXIT_OK &&
		    rv == EXIT_OK)
			rv = EXIT_ERROR;
	} else {
		for (size_t i = 0; i < n; i++) {
			if (res[i].status == MQ_OK)
				printf("%s %" PRIu64 " in %s\n", verb[op], items[i].id, pos[0]);
			else
				printf("failed %" PRIu64 " in %s: %s\n", items[i].id, pos[0],
				       mq_status_name(res[i].status));
		}
	}
	free(res);
	free(items);
	return rv;
}

static int cmd_ack(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS};
	uint64_t id = 0, token = 0;
	char **pos;
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, NULL, NULL, 2, 1 + MQ_LEASE_BATCH_MAX, &pos,
	                     &npos)) != -1)
		return rv;
	if (is_batch(pos, npos)) {
		rv = run_lease_batch(cmd, LEASE_ACK, pos, npos, 0, NULL, 0);
		free(pos);
		return rv;
	}
	if ((rv = lease_args(cmd, pos, &id, &token)) == -1 && (rv = check_name(pos[0])) == -1 &&
	    (rv = connect_broker()) == EXIT_OK) {
		if ((st = mq_ack_id(ctl.client, pos[0], id, token)) != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv = json_print(json_pack("{s:s, s:o, s:b}", "queue", pos[0], "id",
			                          json_u64(id), "acked", 1));
		else
			printf("acked %" PRIu64 " in %s\n", id, pos[0]);
	}
	free(pos);
	return rv;
}

struct nack_args {
	uint64_t delay_ms;
	const char *error;
};

static int nack_opt(const struct cmd *cmd, int opt, void *arg)
{
	struct nack_args *a = arg;

	switch (opt) {
	case OPT_DELAY_MS:
		if (!parse_u64(optarg, UINT64_MAX, &a->delay_ms))
			return usage_error(cmd, "--delay-ms: bad number '%s'", optarg);
		return -1;
	case OPT_ERROR:
		a->error = optarg;
		return -1;
	}
	return -2;
}

/* print_given_back reports a message handed back by nack or snooze
 * (verb "nacked"/"snoozed"), human or JSON. */
static int print_given_back(const char *verb, const char *queue, uint64_t id, uint64_t delay_ms)
{
	char b[16];

	if (ctl.json)
		return json_print(json_pack("{s:s, s:o, s:b, s:o}", "queue", queue, "id",
		                            json_u64(id), verb, 1, "delay_ms", json_u64(delay_ms)));
	if (delay_ms > 0)
		printf("%s %" PRIu64 " in %s: ready again in %s\n", verb, id, queue,
		       fmt_duration(b, sizeof(b), delay_ms));
	else
		printf("%s %" PRIu64 " in %s: ready again now\n", verb, id, queue);
	return EXIT_OK;
}

static int cmd_nack(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"delay-ms", required_argument, NULL, OPT_DELAY_MS},
	    {"error", required_argument, NULL, OPT_ERROR},
	    COMMON_OPTS,
	};
	struct nack_args a = {0};
	uint64_t id = 0, token = 0;
	char **pos;
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, nack_opt, &a, 2, 1 + MQ_LEASE_BATCH_MAX, &pos,
	                     &npos)) != -1)
		return rv;
	if (is_batch(pos, npos)) {
		rv = run_lease_batch(cmd, LEASE_NACK, pos, npos, a.delay_ms, a.error, 0);
		free(pos);
		return rv;
	}
	if ((rv = lease_args(cmd, pos, &id, &token)) == -1 && (rv = check_name(pos[0])) == -1 &&
	    (rv = connect_broker()) == EXIT_OK) {
		if ((st = mq_nack_id(ctl.client, pos[0], id, token, a.delay_ms, a.error)) != MQ_OK)
			rv = fail(st);
		else
			rv = print_given_back("nacked", pos[0], id, a.delay_ms);
	}
	free(pos);
	return rv;
}

static int cmd_snooze(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"delay-ms", required_argument, NULL, OPT_DELAY_MS},
	    COMMON_OPTS,
	};
	struct nack_args a = {0};
	uint64_t id = 0, token = 0;
	char **pos;
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, nack_opt, &a, 3, 3, &pos, &npos)) != -1)
		return rv;
	if ((rv = lease_args(cmd, pos, &id, &token)) == -1 && (rv = check_name(pos[0])) == -1 &&
	    (rv = connect_broker()) == EXIT_OK) {
		if ((st = mq_snooze_id(ctl.client, pos[0], id, token, a.delay_ms)) != MQ_OK)
			rv = fail(st);
		else
			rv = print_given_back("snoozed", pos[0], id, a.delay_ms);
	}
	free(pos);
	return rv;
}

static int extend_opt(const struct cmd *cmd, int opt, void *arg)
{
	if (opt != OPT_LEASE_MS)
		return -2;
	if (!parse_u32(optarg, arg))
		return usage_error(cmd, "--lease-ms: bad number '%s'", optarg);
	return -1;
}

static int cmd_extend(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"lease-ms", required_argument, NULL, OPT_LEASE_MS},
	    COMMON_OPTS,
	};
	uint32_t lease_ms = 0;
	uint64_t id = 0, token = 0, expiry = 0;
	char **pos, b[16];
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, extend_opt, &lease_ms, 2, 1 + MQ_LEASE_BATCH_MAX,
	                     &pos, &npos)) != -1)
		return rv;
	if (is_batch(pos, npos)) {
		rv = run_lease_batch(cmd, LEASE_EXTEND, pos, npos, 0, NULL, lease_ms);
		free(pos);
		return rv;
	}
	if ((rv = lease_args(cmd, pos, &id, &token)) == -1 && (rv = check_name(pos[0])) == -1 &&
	    (rv = connect_broker()) == EXIT_OK) {
		st = mq_extend_lease_id(ctl.client, pos[0], id, token, lease_ms, &expiry);
		if (st != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv = json_print(json_pack("{s:s, s:o, s:o}", "queue", pos[0], "id",
			                          json_u64(id), "lease_expiry_ms",
			                          json_u64(expiry)));
		else
			printf("extended lease of %" PRIu64 " in %s: ends in %s\n", id, pos[0],
			       fmt_until(b, sizeof(b), expiry));
	}
	free(pos);
	return rv;
}

/* ---- Commands: term and message inspection ------------------------------- */

static int term_opt(const struct cmd *cmd, int opt, void *arg)
{
	(void)cmd;
	if (opt != OPT_REASON)
		return -2;
	*(const char **)arg = optarg;
	return -1;
}

static int cmd_term(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"reason", required_argument, NULL, OPT_REASON},
	    COMMON_OPTS,
	};
	const char *reason = NULL;
	uint64_t id = 0, token = 0;
	char **pos;
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, term_opt, &reason, 3, 3, &pos, &npos)) != -1)
		return rv;
	if ((rv = lease_args(cmd, pos, &id, &token)) == -1 && (rv = check_name(pos[0])) == -1 &&
	    (rv = connect_broker()) == EXIT_OK) {
		if ((st = mq_term_id(ctl.client, pos[0], id, token, reason)) != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv = json_print(json_pack("{s:s, s:o, s:b, s:s}", "queue", pos[0], "id",
			                          json_u64(id), "termed", 1, "reason",
			                          reason != NULL ? reason : ""));
		else
			printf("termed %" PRIu64 " in %s: it is dead\n", id, pos[0]);
	}
	free(pos);
	return rv;
}

static const char *state_name(uint32_t state)
{
	switch (state) {
	case MQ_STATE_READY:
		return "ready";
	case MQ_STATE_DELAYED:
		return "delayed";
	case MQ_STATE_LEASED:
		return "leased";
	case MQ_STATE_DEAD:
		return "dead";
	default:
		return "unknown";
	}
}

static const char *outcome_name(mq_attempt_outcome o)
{
	switch (o) {
	case MQ_ATTEMPT_NACKED:
		return "nacked";
	case MQ_ATTEMPT_EXPIRED:
		return "expired";
	case MQ_ATTEMPT_TERMED:
		return "termed";
	default:
		return "unknown";
	}
}

/* inspect_json is message_json plus what inspection shows. */
static json_t *inspect_json(const mq_message *m)
{
	json_t *o = message_json(m), *hist = json_array();

	for (size_t i = 0; i < mq_message_history_count(m); i++) {
		mq_attempt a = mq_message_history(m, i);
		json_array_append_new(hist, json_pack("{s:o, s:s, s:s}", "time_ms",
		                                      json_u64(a.time_ms), "outcome",
		                                      outcome_name(a.outcome), "error", a.error));
	}
	json_object_set_new(o, "state", json_string(state_name(mq_message_state(m))));
	json_object_set_new(o, "dead_reason", json_string(mq_message_dead_reason(m)));
	json_object_set_new(o, "last_error", json_string(mq_message_last_error(m)));
	json_object_set_new(o, "not_before_ms", json_u64(mq_message_not_before_ms(m)));
	json_object_set_new(o, "group", json_string(mq_message_group(m)));
	json_object_set_new(o, "expires_ms", json_u64(mq_message_expires_ms(m)));
	json_object_set_new(o, "history", hist);
	return o;
}

struct list_args {
	mq_list_opts opts;
	uint32_t limit;
};

static int list_opt(const struct cmd *cmd, int opt, void *arg)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} states[] = {
	    {"ready", MQ_STATE_READY},
	    {"delayed", MQ_STATE_DELAYED},
	    {"leased", MQ_STATE_LEASED},
	    {"dead", MQ_STATE_DEAD},
	    {"all", 0},
	};
	struct list_args *a = arg;

	switch (opt) {
	case OPT_STATE:
		for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
			if (strcmp(optarg, states[i].name) == 0) {
				a->opts.state = states[i].bit;
				return -1;
			}
		}
		return usage_error(
		    cmd, "--state: want ready, delayed, leased, dead or all, not '%s'", optarg);
	case OPT_LIMIT:
		if (!parse_u32(optarg, &a->limit) || a->limit < 1 || a->limit > 1000)
			return usage_error(cmd, "--limit: want 1 to 1000, not '%s'", optarg);
		return -1;
	case OPT_AFTER:
		if (!parse_u64(optarg, UINT64_MAX, &a->opts.after_id))
			return usage_error(cmd, "--after: bad message id '%s'", optarg);
		return -1;
	}
	return -2;
}

static void list_print(mq_message **msgs, size_t n)
{
	struct table t = {
	    .ncols = 7,
	    .head = {"ID", "STATE", "ATTEMPTS", "PRIO", "AGE", "REASON/ERROR", "PAYLOAD"},
	    .right = {true, false, true, true}};

	for (size_t i = 0; i < n; i++) {
		const mq_message *m = msgs[i];
		char id[24], att[12], prio[12], age[16], shown[PAYLOAD_SHOW * 4 + 40];
		const char *why = mq_message_dead_reason(m);
		size_t len;
		const void *p = mq_message_payload(m, &len);

		if (why[0] == '\0')
			why = mq_message_last_error(m);
		snprintf(id, sizeof(id), "%" PRIu64, mq_message_id(m));
		snprintf(att, sizeof(att), "%u", mq_message_attempts(m));
		snprintf(prio, sizeof(prio), "%d", (int)mq_message_priority(m));
		fmt_age(age, sizeof(age), mq_message_enqueued_ms(m));
		fmt_payload(shown, p, len, PAYLOAD_SHOW);
		table_row(&t, id, state_name(mq_message_state(m)), att, prio, age, why, shown);
	}
	table_print(&t);
}

static int run_list(const struct cmd *cmd, int argc, char **argv, uint32_t force_state)
{
	static const struct option lo[] = {
	    {"state", required_argument, NULL, OPT_STATE},
	    {"limit", required_argument, NULL, OPT_LIMIT},
	    {"after", required_argument, NULL, OPT_AFTER},
	    COMMON_OPTS,
	};
	static const struct option lo_dead[] = {
	    {"limit", required_argument, NULL, OPT_LIMIT},
	    {"after", required_argument, NULL, OPT_AFTER},
	    COMMON_OPTS,
	};
	struct list_args a = {.limit = 100};
	mq_message **msgs = NULL;
	uint64_t next = 0;
	bool more = false;
	char **pos;
	size_t n = 0;
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, force_state ? lo_dead : lo, list_opt, &a, 1, 1, &pos,
	                     &npos)) != -1)
		return rv;
	if (force_state)
		a.opts.state = force_state;
	if ((rv = check_name(pos[0])) != -1 || (rv = connect_broker()) != EXIT_OK)
		goto out;
	if ((msgs = calloc(a.limit, sizeof(*msgs))) == NULL) {
		rv = EXIT_ERROR;
		goto out;
	}
	st = mq_message_list(ctl.client, pos[0], &a.opts, msgs, a.limit, &n, &next, &more);
	if (st != MQ_OK) {
		rv = fail(st);
		goto out;
	}
	if (ctl.json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, inspect_json(msgs[i]));
		rv = json_print(json_pack("{s:o, s:b, s:o}", "messages", arr, "more", more,
		                          "next_after_id", json_u64(next)));
	} else {
		if (n == 0)
			printf("no %s%smessages in %s\n",
			       a.opts.state ? state_name(a.opts.state) : "",
			       a.opts.state ? " " : "", pos[0]);
		else
			list_print(msgs, n);
		if (more)
			printf("more: mqctl %s %s --after %" PRIu64 "\n", cmd->name, pos[0], next);
	}
	for (size_t i = 0; i < n; i++)
		mq_message_free(msgs[i]);
out:
	free(msgs);
	free(pos);
	return rv;
}

static int cmd_messages(const struct cmd *cmd, int argc, char **argv)
{
	return run_list(cmd, argc, argv, 0);
}

static int cmd_dead_list(const struct cmd *cmd, int argc, char **argv)
{
	return run_list(cmd, argc, argv, MQ_STATE_DEAD);
}

static void message_print(const mq_message *m)
{
	char b[64], shown[PAYLOAD_SHOW * 16 + 40];
	size_t len, nh = mq_message_header_count(m), nhist = mq_message_history_count(m);
	const void *p = mq_message_payload(m, &len);

	printf("id:           %" PRIu64 "\n", mq_message_id(m));
	printf("queue:        %s\n", mq_message_queue(m));
	printf("state:        %s\n", state_name(mq_message_state(m)));
	printf("attempts:     %u\n", mq_message_attempts(m));
	printf("priority:     %d\n", (int)mq_message_priority(m));
	printf("age:          %s\n", fmt_age(b, sizeof(b), mq_message_enqueued_ms(m)));
	if (mq_message_state(m) == MQ_STATE_DELAYED)
		printf("ready in:     %s\n", fmt_until(b, sizeof(b), mq_message_not_before_ms(m)));
	if (mq_message_state(m) == MQ_STATE_LEASED)
		printf("lease ends:   %s\n",
		       fmt_until(b, sizeof(b), mq_message_lease_expiry_ms(m)));
	if (mq_message_dedup_key(m)[0] != '\0')
		printf("dedup key:    %s\n", mq_message_dedup_key(m));
	if (mq_message_type(m)[0] != '\0')
		printf("type:         %s\n", mq_message_type(m));
	for (size_t i = 0; i < nh; i++) {
		mq_header h = mq_message_header(m, i);
		printf("header:       %s=%s\n", h.key, h.value);
	}
	if (mq_message_dead_reason(m)[0] != '\0')
		printf("dead reason:  %s\n", mq_message_dead_reason(m));
	if (mq_message_last_error(m)[0] != '\0')
		printf("last error:   %s\n", mq_message_last_error(m));
	fmt_payload(shown, p, len, PAYLOAD_SHOW * 4);
	printf("payload:      %s (%zu bytes)\n", shown, len);
	if (nhist > 0) {
		printf("history:\n");
		for (size_t i = 0; i < nhist; i++) {
			mq_attempt a = mq_message_history(m, i);
			printf("  %s ago  %-8s %s\n", fmt_age(b, sizeof(b), a.time_ms),
			       outcome_name(a.outcome), a.error);
		}
	}
}

/* id_args parses the QUEUE ID positionals. */
static int id_args(const struct cmd *cmd, char **pos, uint64_t *id)
{
	if (!parse_u64(pos[1], UINT64_MAX, id))
		return usage_error(cmd, "bad message id '%s'", pos[1]);
	return -1;
}

static int cmd_message_get(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS};
	mq_message *m = NULL;
	uint64_t id = 0;
	char **pos;
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, NULL, NULL, 2, 2, &pos, &npos)) != -1)
		return rv;
	if ((rv = id_args(cmd, pos, &id)) == -1 && (rv = check_name(pos[0])) == -1 &&
	    (rv = connect_broker()) == EXIT_OK) {
		if ((st = mq_message_get(ctl.client, pos[0], id, &m)) != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv = json_print(inspect_json(m));
		else
			message_print(m);
		mq_message_free(m);
	}
	free(pos);
	return rv;
}

static int cmd_message_delete(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS};
	uint32_t state = 0;
	uint64_t id = 0;
	char **pos;
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, NULL, NULL, 2, 2, &pos, &npos)) != -1)
		return rv;
	if ((rv = id_args(cmd, pos, &id)) == -1 && (rv = check_name(pos[0])) == -1 &&
	    (rv = connect_broker()) == EXIT_OK) {
		if ((st = mq_message_delete(ctl.client, pos[0], id, &state)) != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv = json_print(json_pack("{s:s, s:o, s:b, s:s}", "queue", pos[0], "id",
			                          json_u64(id), "deleted", 1, "state",
			                          state_name(state)));
		else
			printf("deleted %" PRIu64 " (%s) from %s\n", id, state_name(state), pos[0]);
	}
	free(pos);
	return rv;
}

struct redrive_args {
	uint64_t *ids;
	size_t n_ids;
	const char *to;
	mq_redrive_opts o;
	uint64_t max_total; /* --max: stop after this many; 0 = all */
	uint32_t rate;      /* --rate: at most this many per second; 0 = no limit */
};

static int redrive_opt(const struct cmd *cmd, int opt, void *arg)
{
	struct redrive_args *a = arg;
	uint64_t *ids;

	switch (opt) {
	case OPT_ID:
		if (a->n_ids == MQ_REDRIVE_MAX)
			return usage_error(cmd, "--id: at most %d ids", MQ_REDRIVE_MAX);
		if ((ids = realloc(a->ids, (a->n_ids + 1) * sizeof(*ids))) == NULL)
			return EXIT_ERROR;
		a->ids = ids;
		if (!parse_u64(optarg, UINT64_MAX, &a->ids[a->n_ids]))
			return usage_error(cmd, "--id: bad message id '%s'", optarg);
		a->n_ids++;
		return -1;
	case OPT_TO:
		a->to = optarg;
		return -1;
	case OPT_REASON_PREFIX:
		a->o.reason_prefix = optarg;
		return -1;
	case OPT_TYPE:
		a->o.type = optarg;
		return -1;
	case OPT_DEAD_SINCE_MS:
		if (!parse_u64(optarg, UINT64_MAX, &a->o.dead_since_ms))
			return usage_error(cmd, "--dead-since-ms: bad time '%s'", optarg);
		return -1;
	case OPT_MAX:
		if (!parse_u64(optarg, UINT64_MAX, &a->max_total) || a->max_total == 0)
			return usage_error(cmd, "--max: want 1 or more, not '%s'", optarg);
		return -1;
	case OPT_RATE:
		if (!parse_u32(optarg, &a->rate) || a->rate == 0 || a->rate > MQ_REDRIVE_MAX)
			return usage_error(cmd, "--rate: want 1 to %d per second, not '%s'",
			                   MQ_REDRIVE_MAX, optarg);
		return -1;
	}
	return -2;
}

/* sleep_until_mono sleeps until the monotonic clock reads at_ms. */
static void sleep_until_mono(uint64_t at_ms)
{
	struct timespec ts = {(time_t)(at_ms / 1000), (long)(at_ms % 1000) * 1000000L};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int cmd_dead_redrive(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"id", required_argument, NULL, OPT_ID},
	    {"to", required_argument, NULL, OPT_TO},
	    {"reason-prefix", required_argument, NULL, OPT_REASON_PREFIX},
	    {"type", required_argument, NULL, OPT_TYPE},
	    {"dead-since-ms", required_argument, NULL, OPT_DEAD_SINCE_MS},
	    {"max", required_argument, NULL, OPT_MAX},
	    {"rate", required_argument, NULL, OPT_RATE},
	    COMMON_OPTS,
	};
	struct redrive_args a = {0};
	uint64_t moved = 0, total = 0, next = 0, steps = 0;
	bool more = false;
	char **pos;
	int npos, rv;
	mq_status st = MQ_OK;

	if ((rv = parse_args(cmd, argc, argv, lo, redrive_opt, &a, 1, 1, &pos, &npos)) != -1) {
		free(a.ids);
		return rv;
	}
	if (a.n_ids > 0 && (a.o.reason_prefix || a.o.type || a.o.dead_since_ms || a.rate)) {
		free(a.ids);
		free(pos);
		return usage_error(cmd, "--id does not combine with filters or --rate");
	}
	if ((rv = check_name(pos[0])) == -1 && (a.to == NULL || (rv = check_name(a.to)) == -1) &&
	    (rv = connect_broker()) == EXIT_OK) {
		mq_queue_info qi;
		uint64_t dead = a.n_ids;

		if (a.n_ids == 0 && progress_on() && mq_queue_get(ctl.client, pos[0], &qi) == MQ_OK)
			dead = qi.stats.dead;
		a.o.ids = a.ids;
		a.o.n_ids = a.n_ids;
		a.o.to_queue = a.to;
		/* Without ids, each call moves a bounded step and says where the
		 * next starts: go on while more. With --rate N a step moves at most
		 * N and the next starts a second after it began. */
		do {
			uint64_t began = mono_ms();
			uint64_t left = a.max_total ? a.max_total - total : 0;

			a.o.max = a.rate;
			if (left && (a.o.max == 0 || left < a.o.max))
				a.o.max = left > MQ_REDRIVE_MAX ? MQ_REDRIVE_MAX : (uint32_t)left;
			st = mq_redrive_ex(ctl.client, pos[0], &a.o, &moved, &more, &next);
			if (st != MQ_OK)
				break;
			total += moved;
			steps++;
			a.o.after_id = next;
			progress("redriving", total, dead);
			if (a.max_total && total >= a.max_total)
				break;
			if (a.rate && more)
				sleep_until_mono(began + 1000);
		} while (more && a.n_ids == 0);
		progress_done();
		if (st != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv = json_print(json_pack("{s:s, s:s, s:o, s:o}", "queue", pos[0],
			                          "to_queue", a.to != NULL ? a.to : "", "redriven",
			                          json_u64(total), "steps", json_u64(steps)));
		else
			printf("redrove %" PRIu64 " dead message%s of %s to %s\n", total,
			       total == 1 ? "" : "s", pos[0], a.to != NULL ? a.to : pos[0]);
	}
	free(a.ids);
	free(pos);
	return rv;
}

/* ---- Command: top ------------------------------------------------------- */

static volatile sig_atomic_t top_stop;

static void top_on_signal(int sig)
{
	(void)sig;
	top_stop = 1;
}

struct top_args {
	uint32_t interval_ms;
	uint32_t count; /* 0 = until interrupted */
};

static int top_opt(const struct cmd *cmd, int opt, void *arg)
{
	struct top_args *a = arg;

	switch (opt) {
	case OPT_INTERVAL_MS:
		if (!parse_u32(optarg, &a->interval_ms) || a->interval_ms < 100)
			return usage_error(
			    cmd, "--interval-ms: want a number of ms >= 100, not '%s'", optarg);
		return -1;
	case OPT_COUNT:
		if (!parse_u32(optarg, &a->count) || a->count == 0)
			return usage_error(cmd, "--count: want a number >= 1, not '%s'", optarg);
		return -1;
	}
	return -2;
}

/* top_prev finds a queue's totals in the previous sample. */
static const mq_queue_info *top_prev(const mq_queue_info *prev, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(prev[i].name, name) == 0)
			return &prev[i];
	return NULL;
}

static double rate(uint64_t now, uint64_t before, double secs)
{
	return now >= before && secs > 0 ? (double)(now - before) / secs : 0.0;
}

static int cmd_top(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"interval-ms", required_argument, NULL, OPT_INTERVAL_MS},
	    {"count", required_argument, NULL, OPT_COUNT},
	    COMMON_OPTS,
	};
	struct top_args a = {.interval_ms = 1000};
	mq_queue_info *prev = NULL, *cur;
	size_t nprev = 0, ncur;
	uint64_t t_prev = 0;
	bool tty = isatty(STDOUT_FILENO) && !ctl.json;
	char **pos;
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, top_opt, &a, 0, 0, &pos, &npos)) != -1)
		return rv;
	free(pos);
	if ((rv = connect_broker()) != EXIT_OK)
		return rv;
	signal(SIGINT, top_on_signal);
	signal(SIGTERM, top_on_signal);
	for (uint32_t iter = 0; !top_stop && (a.count == 0 || iter < a.count); iter++) {
		struct timespec ts;
		uint64_t t_now;
		double secs;

		if (iter > 0) {
			/* sleep in short steps so Ctrl-C ends it promptly */
			for (uint32_t slept = 0; slept < a.interval_ms && !top_stop; slept += 50)
				usleep(50 * 1000);
			if (top_stop)
				break;
		}
		if ((st = mq_queue_list(ctl.client, &cur, &ncur)) != MQ_OK) {
			mq_queue_list_free(prev);
			return fail(st);
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		t_now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
		secs = prev != NULL ? (double)(t_now - t_prev) / 1000.0 : 0.0;
		if (ctl.json) {
			json_t *arr = json_array();

			for (size_t i = 0; i < ncur; i++) {
				const mq_queue_info *q = &cur[i],
				                    *p = top_prev(prev, nprev, q->name);
				const mq_queue_stats *s = &q->stats;

				json_array_append_new(
				    arr,
				    json_pack(
				        "{s:s, s:b, s:o, s:o, s:o, s:o, s:o, s:f, s:f, s:f}",
				        "name", q->name, "paused", q->paused, "ready",
				        json_u64(s->ready), "delayed", json_u64(s->delayed),
				        "in_flight", json_u64(s->in_flight), "dead",
				        json_u64(s->dead), "oldest_ready_age_ms",
				        json_u64(s->oldest_ready_age_ms), "push_rate",
				        p ? rate(s->pushed_total, p->stats.pushed_total, secs)
				          : 0.0,
				        "ack_rate",
				        p ? rate(s->acked_total, p->stats.acked_total, secs) : 0.0,
				        "dead_rate",
				        p ? rate(s->dead_total, p->stats.dead_total, secs) : 0.0));
			}
			/* JSON lines: one object per refresh */
			json_t *o =
			    json_pack("{s:o, s:o}", "interval_s", json_real(secs), "queues", arr);

			json_dumpf(o, stdout, JSON_COMPACT | JSON_SORT_KEYS);
			json_decref(o);
			printf("\n");
		} else {
			struct table t = {.ncols = 10,
			                  .head = {"QUEUE", "STATE", "READY", "DELAYED", "INFLIGHT",
			                           "DEAD", "PUSH/s", "ACK/s", "DEAD/s", "OLDEST"},
			                  .right = {false, false, true, true, true, true, true,
			                            true, true, true}};

			if (tty)
				printf("\033[H\033[2J");
			printf("mq top: %s, %zu queue%s, every %s (Ctrl-C to quit)\n\n", ctl.url,
			       ncur, ncur == 1 ? "" : "s",
			       fmt_duration((char[16]){0}, 16, a.interval_ms));
			for (size_t i = 0; i < ncur; i++) {
				const mq_queue_info *q = &cur[i],
				                    *p = top_prev(prev, nprev, q->name);
				const mq_queue_stats *s = &q->stats;
				char c[8][32];

				snprintf(c[0], 32, "%" PRIu64, s->ready);
				snprintf(c[1], 32, "%" PRIu64, s->delayed);
				snprintf(c[2], 32, "%" PRIu64, s->in_flight);
				snprintf(c[3], 32, "%" PRIu64, s->dead);
				if (p != NULL) {
					snprintf(
					    c[4], 32, "%.1f",
					    rate(s->pushed_total, p->stats.pushed_total, secs));
					snprintf(c[5], 32, "%.1f",
					         rate(s->acked_total, p->stats.acked_total, secs));
					snprintf(c[6], 32, "%.1f",
					         rate(s->dead_total, p->stats.dead_total, secs));
				} else {
					snprintf(c[4], 32, "-");
					snprintf(c[5], 32, "-");
					snprintf(c[6], 32, "-");
				}
				if (s->oldest_ready_age_ms)
					fmt_duration(c[7], 32, s->oldest_ready_age_ms);
				else
					snprintf(c[7], 32, "-");
				table_row(&t, q->name, q->paused ? "paused" : "active", c[0], c[1],
				          c[2], c[3], c[4], c[5], c[6], c[7]);
			}
			if (ncur == 0)
				printf("no queues\n");
			else
				table_print(&t);
			if (!tty)
				printf("\n");
		}
		fflush(stdout);
		mq_queue_list_free(prev);
		prev = cur;
		nprev = ncur;
		t_prev = t_now;
	}
	mq_queue_list_free(prev);
	return EXIT_OK;
}

/* ---- Commands: backup ---------------------------------------------------- */

static void backup_progress(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	progress("backup", done, total);
}

/* backup_fsync_dir fsyncs the directory holding path (the rename). */
static int backup_fsync_dir(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, rc;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	if ((fd = open(dir, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int cmd_backup(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS};
	mq_backup_opts bo = {.progress = backup_progress};
	mq_backup_info bi;
	char **pos, tmp[PATH_MAX], hex[65], b1[32];
	const char *file;
	bool to_stdout;
	int npos, rv, fd;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, NULL, NULL, 1, 1, &pos, &npos)) != -1)
		return rv;
	file = pos[0];
	free(pos);
	to_stdout = strcmp(file, "-") == 0;
	if (to_stdout && ctl.json)
		return usage_error(cmd, "--json prints to stdout; it cannot go with FILE '-'");
	if (to_stdout && isatty(STDOUT_FILENO))
		return usage_error(cmd, "will not write a binary backup to a terminal; redirect "
		                        "stdout or give a FILE");
	if (!to_stdout && (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= sizeof(tmp))
		return usage_error(cmd, "FILE is too long");
	if ((rv = connect_broker()) != EXIT_OK)
		return rv;
	if (to_stdout) {
		fd = STDOUT_FILENO;
	} else if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		fprintf(stderr, "mqctl: cannot create %s: %s\n", tmp, strerror(errno));
		return EXIT_ERROR;
	}
	/* The library checks the checksum over every byte written. */
	st = mq_backup(ctl.client, fd, &bo, &bi);
	progress_done();
	if (st != MQ_OK) {
		if (!to_stdout) {
			close(fd);
			unlink(tmp);
		}
		return fail(st);
	}
	if (!to_stdout) {
		if (fsync(fd) != 0 || close(fd) != 0) {
			fprintf(stderr, "mqctl: cannot write %s: %s\n", tmp, strerror(errno));
			unlink(tmp);
			return EXIT_ERROR;
		}
		if (rename(tmp, file) != 0) {
			fprintf(stderr, "mqctl: cannot rename %s to %s: %s\n", tmp, file,
			        strerror(errno));
			unlink(tmp);
			return EXIT_ERROR;
		}
		if (backup_fsync_dir(file) != 0) {
			fprintf(stderr, "mqctl: cannot sync the directory of %s: %s\n", file,
			        strerror(errno));
			return EXIT_ERROR;
		}
	}
	for (size_t i = 0; i < sizeof(bi.checksum); i++)
		snprintf(hex + 2 * i, 3, "%02x", bi.checksum[i]);
	if (ctl.json)
		return json_print(json_pack("{s:s, s:o, s:i, s:o, s:s}", "file", file, "size",
		                            json_u64(bi.size), "schema_version",
		                            (int)bi.schema_version, "created_ms",
		                            json_u64(bi.created_ms), "blake2b", hex));
	if (bi.size >= (1u << 20))
		snprintf(b1, sizeof(b1), "%.1f MiB", (double)bi.size / (1u << 20));
	else
		snprintf(b1, sizeof(b1), "%.1f KiB", (double)bi.size / 1024);
	fprintf(to_stdout ? stderr : stdout,
	        "backup written to %s: %s (%" PRIu64 " bytes), schema version %u, blake2b %s\n",
	        to_stdout ? "stdout" : file, b1, bi.size, bi.schema_version, hex);
	return EXIT_OK;
}

/* ---- Commands: schedules, topics, subscriptions ------------------------------ */

#include "mqctl_pubsub.c"

/* ---- Command table and main -------------------------------------------- */

static const struct cmd cmds[] = {
    {"ping", "", "Check that the broker answers; prints the round-trip time.", "", cmd_ping},
    {"top", "[--interval-ms N] [--count N]",
     "Live per-queue depths and rates (pushes, acks, dead letters per second),\n"
     "refreshed until Ctrl-C. On a terminal the screen is redrawn; piped, each\n"
     "refresh is a table followed by a blank line; --json prints one object per\n"
     "refresh (JSON lines). Rates appear from the second refresh on.",
     "Options:\n"
     "  --interval-ms N   time between refreshes (default 1000, at least 100)\n"
     "  --count N         stop after N refreshes (default: until interrupted)\n",
     cmd_top},
    {"info", "", "Show the broker's version, storage, durability and defaults.", "", cmd_info},
    {"queue create", "NAME [settings] [--if-not-exists]", "Create a queue.",
     "Settings:\n" QUEUE_CONFIG_HELP "Options:\n"
     "  --if-not-exists        succeed when the queue already exists\n",
     cmd_queue_create},
    {"queue update", "NAME settings...",
     "Change settings of a queue; the others keep their values. A setting given\n"
     "as 0 (or '' for --dead-letter-queue) goes back to its default.",
     "Settings:\n" QUEUE_CONFIG_HELP, cmd_queue_update},
    {"queue pause", "NAME", "Stop handing out the queue's messages; pushes, acks and nacks go on.",
     "", cmd_queue_pause},
    {"queue resume", "NAME", "Resume a paused queue; waiting consumers get messages.", "",
     cmd_queue_pause},
    {"queue list", "", "List all queues with their depths and totals.", "", cmd_queue_list},
    {"queue stats", "NAME", "Show one queue's configuration and counters.", "", cmd_queue_stats},
    {"queue purge", "NAME [--state ready|delayed|leased|dead]...",
     "Delete a queue's messages (all, or those in the given states).",
     "Options:\n"
     "  --state S   purge messages in state S: ready, delayed, leased, dead or all;\n"
     "              repeat for several states (default: all states)\n"
     "Goes in steps of 10000 messages (one short broker transaction each), with a\n"
     "progress bar on a terminal.\n",
     cmd_queue_purge},
    {"queue delete", "NAME", "Delete a queue and all its messages.",
     "A queue of more than 10000 messages is first emptied in steps of 10000 (one\n"
     "short broker transaction each, with a progress bar on a terminal).\n",
     cmd_queue_delete},
    {"push",
     "QUEUE [DATA] [--lines] [--file F] [--dedup-key K] "
     "[--dedup-mode ignore|replace|debounce] [--delay-ms N | --at TIME] [--priority N] "
     "[--type T] [--header K=V]... [--group G] [--ttl-ms N]",
     "Push one message (payload: DATA, else --file, else stdin), or with --lines\n"
     "one message per line.",
     "Options:\n"
     "  --lines           each non-empty line of --file or stdin is a message; pushed\n"
     "                    in batches of 500, with a progress bar on a terminal\n"
     "  --atomic          several DATA (or --lines, at most 1000) in one request,\n"
     "                    all or nothing: when one fails none is stored\n"
     "  --file F          read the payload from file F ('-' = stdin)\n"
     "  --dedup-key K     while a message with key K is queued or leased, a push\n"
     "                    with K is a duplicate\n"
     "  --dedup-mode M    ignore (keep the existing message, default), replace\n"
     "                    (swap in this payload if the existing one is not leased)\n"
     "                    or debounce (replace, and its time becomes the later of\n"
     "                    the two)\n"
     "  --delay-ms N      deliver no earlier than N ms from now\n"
     "  --at TIME         deliver no earlier than TIME: RFC 3339 or unix ms\n"
     "  --group G         ordering group: one message of G leased at a time, in\n"
     "                    push order\n"
     "  --ttl-ms N        the message expires (goes dead) N ms after the push\n"
     "  --priority N      higher is delivered first (default 0; may be negative)\n"
     "  --type T          application message type\n"
     "  --header K=V      add a header; repeat for more\n",
     cmd_push},
    {"pull", "QUEUE [--max N] [--wait-ms N] [--lease-ms N]",
     "Lease up to N messages and print them. They stay leased until acked,\n"
     "nacked or their lease ends: use the printed ID and TOKEN with ack/nack/extend.",
     "Options:\n"
     "  --max N        lease up to N messages, 1 to 1000 (default 1)\n"
     "  --wait-ms N    when none is ready, wait up to N ms for one (default 0)\n"
     "  --lease-ms N   lease time, ms (default: the queue's)\n",
     cmd_pull},
    {"ack", "QUEUE ID TOKEN", "Acknowledge a leased message: the broker deletes it.", "", cmd_ack},
    {"nack", "QUEUE ID TOKEN [--delay-ms N] [--error MSG]",
     "Give a leased message back (counts as an attempt).",
     "Options:\n"
     "  --delay-ms N   make it ready again after N ms (default: now)\n"
     "  --error MSG    why it failed, kept with the message\n",
     cmd_nack},
    {"snooze", "QUEUE ID TOKEN [--delay-ms N]",
     "Give a leased message back for a while without spending an attempt.",
     "Options:\n"
     "  --delay-ms N   make it ready again after N ms (default: now)\n",
     cmd_snooze},
    {"extend", "QUEUE ID TOKEN [--lease-ms N]", "Extend a lease to end N ms from now.",
     "Options:\n"
     "  --lease-ms N   new lease time from now, ms (default: the queue's)\n",
     cmd_extend},
    {"term", "QUEUE ID TOKEN [--reason R]",
     "Fail a leased message for good: it goes dead at once (no retry).",
     "Options:\n"
     "  --reason R   why, kept with the message (dead reason \"termed: R\")\n",
     cmd_term},
    {"messages", "QUEUE [--state S] [--limit N] [--after ID]",
     "List a queue's messages without leasing them (state, attempts, reason).",
     "Options:\n"
     "  --state S    only state S: ready, delayed, leased, dead or all (default)\n"
     "  --limit N    at most N messages, 1 to 1000 (default 100)\n"
     "  --after ID   start after message ID (paging; see the \"more:\" line)\n",
     cmd_messages},
    {"message get", "QUEUE ID",
     "Show one message: state, dead reason, last error and attempt history.", "", cmd_message_get},
    {"message delete", "QUEUE ID", "Delete one message in any state.", "", cmd_message_delete},
    {"dead list", "QUEUE [--limit N] [--after ID]",
     "List a queue's dead messages (messages QUEUE --state dead).",
     "Options:\n"
     "  --limit N    at most N messages, 1 to 1000 (default 100)\n"
     "  --after ID   start after message ID\n",
     cmd_dead_list},
    {"dead redrive",
     "QUEUE [--id ID]... [--to QUEUE] [--reason-prefix P] [--type T] [--dead-since-ms MS] "
     "[--max N] [--rate N]",
     "Move dead messages back to ready (attempts reset, history kept).",
     "Options:\n"
     "  --id ID             redrive message ID only; repeat for more (default: every\n"
     "                      dead message of QUEUE that matches the filters)\n"
     "  --to QUEUE          put them in this queue (created if the broker creates\n"
     "                      queues on push); default: the queue each message was\n"
     "                      dead-lettered from, else QUEUE itself\n"
     "  --reason-prefix P   only messages whose dead reason starts with P\n"
     "                      (e.g. 'termed:', 'max attempts', 'expired')\n"
     "  --type T            only messages of type T\n"
     "  --dead-since-ms MS  only messages that went dead at or after unix ms MS\n"
     "  --max N             stop after N messages\n"
     "  --rate N            at most N messages per second: mqctl moves N, waits for\n"
     "                      the rest of the second, and goes on (each step is one\n"
     "                      durable call; stopping mqctl stops the redrive)\n",
     cmd_dead_redrive},
    MQCTL_PUBSUB_CMDS,
    {"backup", "FILE",
     "Take a hot backup of the whole broker (a consistent, compacted copy made while\n"
     "it serves) into FILE; restore it with mqd --restore FILE (docs/backup.md).",
     "FILE is written as FILE.tmp, checked against the broker's BLAKE2b checksum,\n"
     "fsync'ed, then renamed to FILE. FILE '-' writes the backup to stdout (not a\n"
     "terminal; the summary goes to stderr). A progress bar is drawn on a terminal.\n"
     "Needs the admin permission on every queue when the broker uses tokens.\n",
     cmd_backup},
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void print_main_help(FILE *f)
{
	fprintf(f, "Usage: mqctl [--url URL] [--json] [--timeout MS] COMMAND [ARGS...]\n\n"
	           "Command-line client of the mq job-queue broker.\n\nCommands:\n");
	for (size_t i = 0; i < NCMDS; i++) {
		const char *nl = strchr(cmds[i].summary, '\n');
		int len = nl != NULL ? (int)(nl - cmds[i].summary) : (int)strlen(cmds[i].summary);

		fprintf(f, "  %-14s %.*s\n", cmds[i].name, len, cmds[i].summary);
	}
	fprintf(f, "\nOptions:\n" COMMON_HELP "  --version      print the version\n"
	           "\nRun 'mqctl COMMAND --help' for a command's arguments.\n"
	           "Exit status: 0 ok, 1 error, 2 usage error, 3 broker unreachable.\n");
}

/* env_or_null returns a non-empty environment variable, else NULL. */
static const char *env_or_null(const char *name)
{
	const char *v = getenv(name);
	return v != NULL && v[0] != '\0' ? v : NULL;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"version", no_argument, NULL, 'V'},
	    COMMON_OPTS,
	};
	const struct cmd *cmd = NULL;
	char label[64];
	int opt, rv, words;

	ctl.url = getenv("MQ_URL") != NULL && getenv("MQ_URL")[0] != '\0' ? getenv("MQ_URL")
	                                                                  : DEFAULT_URL;
	ctl.timeout_ms = DEFAULT_TIMEOUT_MS;
	ctl.token = env_or_null("MQ_TOKEN");
	ctl.tls_ca = env_or_null("MQ_TLS_CA");
	ctl.tls_cert = env_or_null("MQ_TLS_CERT");
	ctl.tls_key = env_or_null("MQ_TLS_KEY");
	ctl.tls_server_name = env_or_null("MQ_TLS_SERVER_NAME");
	/* '+': global options end at the command name. */
	while ((opt = getopt_long(argc, argv, "+hV", lo, NULL)) != -1) {
		switch (opt) {
		case 'h':
			print_main_help(stdout);
			return EXIT_OK;
		case 'V':
			printf("mqctl %s (protocol %d)\n", mq_version(), MQ_PROTOCOL_VERSION);
			return EXIT_OK;
		case '?':
			fprintf(stderr, "Try 'mqctl --help'.\n");
			return EXIT_USAGE;
		default:
			if ((rv = common_opt(NULL, opt)) != -1)
				return rv;
		}
	}
	if (optind >= argc) {
		print_main_help(stderr);
		return EXIT_USAGE;
	}
	/* Find the command: one word, or "queue" plus one. */
	for (size_t i = 0; i < NCMDS && cmd == NULL; i++) {
		const char *sp = strchr(cmds[i].name, ' ');

		if (sp == NULL && strcmp(cmds[i].name, argv[optind]) == 0)
			cmd = &cmds[i];
		else if (sp != NULL && optind + 1 < argc &&
		         strncmp(cmds[i].name, argv[optind], (size_t)(sp - cmds[i].name)) == 0 &&
		         argv[optind][sp - cmds[i].name] == '\0' &&
		         strcmp(sp + 1, argv[optind + 1]) == 0)
			cmd = &cmds[i];
	}
	if (cmd == NULL) {
		static const char *const groups[][2] = {
		    {"message", "get or delete"},
		    {"dead", "list or redrive"},
		    {"schedule", "create, list, get, pause, resume or delete"},
		    {"topic", "create, list, get, delete or publish"},
		    {"sub", "create or delete"},
		};

		for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
			if (strcmp(argv[optind], groups[i][0]) == 0) {
				fprintf(stderr, "mqctl %s: want %s%s%s\nTry 'mqctl --help'.\n",
				        groups[i][0], groups[i][1],
				        optind + 1 < argc ? ", not " : "",
				        optind + 1 < argc ? argv[optind + 1] : "");
				return EXIT_USAGE;
			}
		}
		if (strcmp(argv[optind], "queue") == 0) {
			if (optind + 1 < argc && (strcmp(argv[optind + 1], "--help") == 0 ||
			                          strcmp(argv[optind + 1], "-h") == 0)) {
				print_main_help(stdout);
				return EXIT_OK;
			}
			fprintf(stderr,
			        "mqctl queue: want create, list, stats, purge or delete%s%s\n",
			        optind + 1 < argc ? ", not " : "",
			        optind + 1 < argc ? argv[optind + 1] : "");
		} else {
			fprintf(stderr, "mqctl: unknown command '%s'\n", argv[optind]);
		}
		fprintf(stderr, "Try 'mqctl --help'.\n");
		return EXIT_USAGE;
	}
	words = strchr(cmd->name, ' ') != NULL ? 2 : 1;
	/* The command sees argv from its last word on, named like itself so
	 * getopt's messages read "mqctl queue create: ...". */
	snprintf(label, sizeof(label), "mqctl %s", cmd->name);
	argv[optind + words - 1] = label;
	rv = cmd->run(cmd, argc - (optind + words - 1), argv + optind + words - 1);
	mq_client_close(ctl.client);
	return rv;
}
