/* SPDX-License-Identifier: MIT */
/* log.h: the broker's log, one line per event on stderr, with levels.
 * The level is checked before any argument is formatted. Payloads are never
 * logged; ids and queue names are. */
#ifndef BRK_LOG_H
#define BRK_LOG_H

enum brk_log_level {
	BRK_LOG_ERROR = 3, /* syslog numbering */
	BRK_LOG_WARN = 4,
	BRK_LOG_INFO = 6,
	BRK_LOG_DEBUG = 7,
};

extern int brk_log_level;
/* brk_log_json: one JSON object per line ({"ts","level","msg"}) instead of
 * text (--log-format json). Set before the first thread starts. */
extern int brk_log_json;

/* brk_log_parse_level maps "error", "warn", "info", "debug" to a level;
 * returns -1 for anything else. */
int brk_log_parse_level(const char *s);

void brk_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define brk_log(level, ...)                                                                        \
	do {                                                                                       \
		if ((level) <= brk_log_level)                                                      \
			brk_log_write((level), __VA_ARGS__);                                       \
	} while (0)

#define brk_err(...)   brk_log(BRK_LOG_ERROR, __VA_ARGS__)
#define brk_warn(...)  brk_log(BRK_LOG_WARN, __VA_ARGS__)
#define brk_info(...)  brk_log(BRK_LOG_INFO, __VA_ARGS__)
#define brk_debug(...) brk_log(BRK_LOG_DEBUG, __VA_ARGS__)

#endif
