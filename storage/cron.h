/* SPDX-License-Identifier: MIT */
/*
 * cron.h: 5-field cron expressions evaluated in an IANA time zone, for
 * recurring schedules (schedules.c). Pure functions of their arguments:
 * the caller passes the time ("after"), so tests use explicit times.
 *
 * Syntax: "MIN HOUR DOM MON DOW", each field a comma-separated list of
 * "*", "N", "N-M", with an optional "/STEP" ("*\/15", "1-30/2", "5/10" =
 * 5 to the field's maximum by 10). MIN 0-59, HOUR 0-23, DOM 1-31, MON 1-12
 * or JAN-DEC, DOW 0-7 (0 and 7 = Sunday) or SUN-SAT, names in any case.
 * When both DOM and DOW are restricted (neither starts with "*"), a day
 * matches when either matches (Vixie cron). Macros: @yearly (@annually),
 * @monthly, @weekly, @daily (@midnight), @hourly.
 *
 * Time zones and daylight saving time: slots are wall-clock times of the
 * zone. A slot that does not exist (the spring-forward gap, e.g. 02:30 in
 * Europe/Paris on the last Sunday of March) fires once, at the first
 * instant after the gap (03:00 local); slots that fall into one gap fire
 * once together. A slot that exists twice (the fall-back overlap) fires
 * once, at its first occurrence.
 *
 * Zones come from the system's zoneinfo files ($TZDIR, else
 * /usr/share/zoneinfo; Debian package tzdata). glibc has no per-call time
 * zone API, so the zone is applied with setenv("TZ") + tzset() under a
 * process-wide mutex, and TZ is restored afterwards; nothing else in mqd
 * uses local time (its log is UTC).
 */
#ifndef MQ_STORAGE_CRON_H
#define MQ_STORAGE_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRON_EXPR_MAX 128 /* longest expression, bytes */
#define CRON_TZ_MAX   64  /* longest zone name, bytes */

/* cron_expr is a parsed expression: one bit per allowed value. */
typedef struct cron_expr {
	uint64_t minute; /* bits 0-59 */
	uint32_t hour;   /* bits 0-23 */
	uint32_t dom;    /* bits 1-31 */
	uint16_t month;  /* bits 1-12 */
	uint8_t dow;     /* bits 0-6, Sunday = 0 */
	bool dom_star;   /* the DOM field started with "*" */
	bool dow_star;   /* the DOW field started with "*" */
} cron_expr;

/* cron_parse parses expr into *out. On failure returns false and writes
 * why into err (errlen bytes). */
bool cron_parse(const char *expr, cron_expr *out, char *err, size_t errlen);

/* cron_tz_valid tells whether zone names a readable zoneinfo file ("" and
 * "UTC" are always valid). On false, err says why. */
bool cron_tz_valid(const char *zone, char *err, size_t errlen);

/* cron_next returns the first slot of c in zone ("" = UTC) strictly after
 * after_ms (unix ms), as unix ms (a whole second), or UINT64_MAX when
 * there is none within the next 8 years (e.g. "0 0 30 2 *"). */
uint64_t cron_next(const cron_expr *c, const char *zone, uint64_t after_ms);

#endif
