/* SPDX-License-Identifier: MIT */
/* log.c: timestamped, leveled lines on stderr. One fprintf per line so
 * lines from different threads do not interleave. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

int brk_log_level = BRK_LOG_INFO;
int brk_log_json;

/* json_escape writes s as the inside of a JSON string (RFC 8259). */
static void json_escape(char *out, size_t len, const char *s)
{
	size_t o = 0;

	for (; *s && o + 7 < len; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c < 0x20) {
			o += (size_t)snprintf(out + o, len - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
}

int brk_log_parse_level(const char *s)
{
	if (strcmp(s, "error") == 0)
		return BRK_LOG_ERROR;
	if (strcmp(s, "warn") == 0 || strcmp(s, "warning") == 0)
		return BRK_LOG_WARN;
	if (strcmp(s, "info") == 0)
		return BRK_LOG_INFO;
	if (strcmp(s, "debug") == 0)
		return BRK_LOG_DEBUG;
	return -1;
}

void brk_log_write(int level, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	const char *name = level <= BRK_LOG_ERROR  ? "ERROR"
	                   : level <= BRK_LOG_WARN ? "WARN"
	                   : level <= BRK_LOG_INFO ? "INFO"
	                                           : "DEBUG";
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (brk_log_json) {
		char esc[sizeof(line) * 6 + 1];
		static const char *lower[] = {"error", "warn", "info", "debug"};
		int li = level <= BRK_LOG_ERROR  ? 0
		         : level <= BRK_LOG_WARN ? 1
		         : level <= BRK_LOG_INFO ? 2
		                                 : 3;
		json_escape(esc, sizeof(esc), line);
		fprintf(stderr,
		        "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"msg\":"
		        "\"%s\"}\n",
		        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		        tm.tm_sec, ts.tv_nsec / 1000000L, lower[li], esc);
		return;
	}
	fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s\n", tm.tm_year + 1900,
	        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
	        name, line);
}
