/* SPDX-License-Identifier: MIT */
/*
 * cron.c: parsing and evaluation of cron expressions (cron.h).
 *
 * Evaluation works on wall-clock minutes (minutes since 1970-01-01 00:00
 * of the zone's local calendar, as if it were UTC) and maps each matching
 * wall time W to an instant inst(W): the first instant whose local time is
 * W (the first occurrence in an overlap), or, when W does not exist (a
 * gap), the first instant after the gap. inst() never decreases as W
 * grows, so the next slot after T is inst(W) for the first matching W with
 * inst(W) > T; the search starts a few hours of wall time before T's own
 * wall time, which covers an overlap.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"

/* ---- Parsing ------------------------------------------------------------ */

static const char *const month_names[12] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                            "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const dow_names[7] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

typedef struct field_def {
	const char *name;
	int min, max;
	const char *const *names; /* value min + i, or NULL */
	int n_names;
} field_def;

static const field_def fields[5] = {
    {"minute", 0, 59, NULL, 0},          {"hour", 0, 23, NULL, 0},
    {"day of month", 1, 31, NULL, 0},    {"month", 1, 12, month_names, 12},
    {"day of week", 0, 7, dow_names, 7},
};

/* parse_value reads a number or a name at *p. */
static bool parse_value(const char **p, const field_def *f, int *out)
{
	const char *s = *p;

	if (isdigit((unsigned char)*s)) {
		long v = 0;

		while (isdigit((unsigned char)*s)) {
			v = v * 10 + (*s - '0');
			if (v > 1000)
				return false;
			s++;
		}
		*out = (int)v;
		*p = s;
		return true;
	}
	for (int i = 0; i < f->n_names; i++) {
		if (strncasecmp(s, f->names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
			*out = f->min + i;
			*p = s + 3;
			return true;
		}
	}
	return false;
}

/* parse_field parses one field (its text is s[0..len)) into bits. */
static bool parse_field(const char *s, size_t len, const field_def *f, uint64_t *bits, char *err,
                        size_t errlen)
{
	char buf[CRON_EXPR_MAX + 1];
	char *save = NULL, *item;

	if (len == 0 || len > CRON_EXPR_MAX) {
		snprintf(err, errlen, "empty %s field", f->name);
		return false;
	}
	memcpy(buf, s, len);
	buf[len] = 0;
	if (buf[0] == ',' || buf[len - 1] == ',' || strstr(buf, ",,")) {
		snprintf(err, errlen, "%s: empty list item in '%s'", f->name, buf);
		return false;
	}
	*bits = 0;
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		const char *p = item;
		int lo, hi, step = 1;
		bool range = false;

		if (*p == '*') {
			lo = f->min;
			hi = f->max == 7 ? 6 : f->max;
			p++;
			range = true;
		} else {
			if (!parse_value(&p, f, &lo))
				goto bad;
			hi = lo;
			if (*p == '-') {
				p++;
				if (!parse_value(&p, f, &hi))
					goto bad;
				range = true;
			}
		}
		if (*p == '/') {
			p++;
			if (!isdigit((unsigned char)*p))
				goto bad;
			step = 0;
			while (isdigit((unsigned char)*p)) {
				step = step * 10 + (*p++ - '0');
				if (step > 1000)
					goto bad;
			}
			if (step == 0)
				goto bad;
			if (!range)
				hi = f->max == 7 ? 6 : f->max; /* "N/S": N to the maximum */
		}
		if (*p != 0)
			goto bad;
		if (lo < f->min || hi > f->max || lo > hi) {
			snprintf(err, errlen, "%s: '%s' is out of range %d-%d", f->name, item,
			         f->min, f->max);
			return false;
		}
		for (int v = lo; v <= hi; v += step)
			*bits |= 1ull << (f->max == 7 && v == 7 ? 0 : v);
	}
	if (*bits == 0)
		goto bad_empty;
	return true;
bad:
	snprintf(err, errlen, "%s: cannot parse '%s'", f->name, item);
	return false;
bad_empty:
	snprintf(err, errlen, "empty %s field", f->name);
	return false;
}

bool cron_parse(const char *expr, cron_expr *out, char *err, size_t errlen)
{
	static const struct {
		const char *name, *expr;
	} macros[] = {
	    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
	    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
	    {"@hourly", "0 * * * *"},
	};
	const char *p, *start[5];
	size_t len[5];
	uint64_t bits[5];
	int n = 0;

	if (!expr || !expr[0]) {
		snprintf(err, errlen, "empty cron expression");
		return false;
	}
	if (strlen(expr) > CRON_EXPR_MAX) {
		snprintf(err, errlen, "cron expression longer than %d bytes", CRON_EXPR_MAX);
		return false;
	}
	if (expr[0] == '@') {
		for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
			if (strcasecmp(expr, macros[i].name) == 0)
				return cron_parse(macros[i].expr, out, err, errlen);
		snprintf(err, errlen, "unknown cron macro '%s'", expr);
		return false;
	}
	for (p = expr;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		if (n == 5) {
			snprintf(err, errlen,
			         "a cron expression has 5 fields (minute hour day-of-month month "
			         "day-of-week), not more");
			return false;
		}
		start[n] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		len[n] = (size_t)(p - start[n]);
		n++;
	}
	if (n != 5) {
		snprintf(err, errlen,
		         "a cron expression has 5 fields (minute hour day-of-month month "
		         "day-of-week), not %d",
		         n);
		return false;
	}
	for (int i = 0; i < 5; i++)
		if (!parse_field(start[i], len[i], &fields[i], &bits[i], err, errlen))
			return false;
	out->minute = bits[0];
	out->hour = (uint32_t)bits[1];
	out->dom = (uint32_t)bits[2];
	out->month = (uint16_t)bits[3];
	out->dow = (uint8_t)bits[4];
	out->dom_star = start[2][0] == '*';
	out->dow_star = start[4][0] == '*';
	return true;
}

/* ---- Calendar ------------------------------------------------------------- */

/* days_from_civil: days since 1970-01-01 of y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int64_t floordiv(int64_t a, int64_t b)
{
	return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* next_match returns the first wall minute >= w that c matches, or
 * INT64_MAX when there is none before limit. */
static int64_t next_match(const cron_expr *c, int64_t w, int64_t limit)
{
	while (w < limit) {
		int64_t day = floordiv(w, 1440), y;
		unsigned mo, d, dow;
		int mins = (int)(w - day * 1440);
		bool dom_ok, dow_ok, day_ok;

		civil_from_days(day, &y, &mo, &d);
		if (!(c->month & (1u << mo))) {
			/* the first day of the next month */
			w = days_from_civil(mo == 12 ? y + 1 : y, mo == 12 ? 1 : mo + 1, 1) * 1440;
			continue;
		}
		dow = (unsigned)(((day % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
		dom_ok = (c->dom >> d) & 1u;
		dow_ok = (c->dow >> dow) & 1u;
		if (c->dom_star || c->dow_star)
			day_ok = dom_ok && dow_ok;
		else
			day_ok = dom_ok || dow_ok;
		if (!day_ok) {
			w = (day + 1) * 1440;
			continue;
		}
		if (!((c->hour >> (mins / 60)) & 1u)) {
			w = day * 1440 + (mins / 60 + 1) * 60;
			continue;
		}
		if (!((c->minute >> (mins % 60)) & 1u)) {
			w++;
			continue;
		}
		return w;
	}
	return INT64_MAX;
}

/* ---- Time zones ------------------------------------------------------------ */

static pthread_mutex_t tz_mu = PTHREAD_MUTEX_INITIALIZER;

static bool tz_is_utc(const char *zone)
{
	return !zone || !zone[0] || strcmp(zone, "UTC") == 0 || strcmp(zone, "Etc/UTC") == 0;
}

bool cron_tz_valid(const char *zone, char *err, size_t errlen)
{
	const char *dir = getenv("TZDIR");
	char path[512], magic[4];
	FILE *f;

	if (tz_is_utc(zone))
		return true;
	if (strlen(zone) > CRON_TZ_MAX) {
		snprintf(err, errlen, "time zone name longer than %d bytes", CRON_TZ_MAX);
		return false;
	}
	for (const char *p = zone; *p; p++) {
		if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p)) {
			snprintf(err, errlen, "unknown time zone '%s'", zone);
			return false;
		}
	}
	if (zone[0] == '/' || strstr(zone, "..") || strstr(zone, "//")) {
		snprintf(err, errlen, "unknown time zone '%s'", zone);
		return false;
	}
	snprintf(path, sizeof(path), "%s/%s", dir && dir[0] ? dir : "/usr/share/zoneinfo", zone);
	f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "unknown time zone '%s' (no zoneinfo file %s: %s)", zone,
		         path, strerror(errno));
		return false;
	}
	if (fread(magic, 1, 4, f) != 4 || memcmp(magic, "TZif", 4) != 0) {
		fclose(f);
		snprintf(err, errlen, "unknown time zone '%s' (%s is not a zoneinfo file)", zone,
		         path);
		return false;
	}
	fclose(f);
	return true;
}

/* tz_ctx holds TZ while a zone is applied (under tz_mu). */
typedef struct tz_ctx {
	bool utc;
	bool had_tz;
	char old[256];
} tz_ctx;

static void tz_enter(tz_ctx *z, const char *zone)
{
	char val[CRON_TZ_MAX + 2];
	const char *old;

	z->utc = tz_is_utc(zone);
	if (z->utc)
		return;
	pthread_mutex_lock(&tz_mu);
	old = getenv("TZ");
	z->had_tz = old != NULL;
	snprintf(z->old, sizeof(z->old), "%s", old ? old : "");
	snprintf(val, sizeof(val), ":%s", zone); /* ":" = a file, never a POSIX rule */
	setenv("TZ", val, 1);
	tzset();
}

static void tz_leave(tz_ctx *z)
{
	if (z->utc)
		return;
	if (z->had_tz)
		setenv("TZ", z->old, 1);
	else
		unsetenv("TZ");
	tzset();
	pthread_mutex_unlock(&tz_mu);
}

/* utc_offset is the zone's offset from UTC at unix second t, seconds. */
static int64_t utc_offset(const tz_ctx *z, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (z->utc || !localtime_r(&tt, &tm))
		return 0;
	return tm.tm_gmtoff;
}

/* inst maps wall minute w to its instant (unix seconds); see the top. */
static int64_t inst(const tz_ctx *z, int64_t w)
{
	int64_t n = w * 60, oa, ob, t1, t2, lo, hi;
	bool v1, v2;

	if (z->utc)
		return n;
	oa = utc_offset(z, n - 86400);
	ob = utc_offset(z, n + 86400);
	t1 = n - oa;
	t2 = n - ob;
	v1 = utc_offset(z, t1) == oa;
	v2 = utc_offset(z, t2) == ob;
	if (v1 && v2)
		return t1 < t2 ? t1 : t2; /* an overlap: the first occurrence */
	if (v1)
		return t1;
	if (v2)
		return t2;
	/* A gap: the first instant whose offset is the later one. */
	lo = t1 < t2 ? t1 : t2;
	hi = t1 < t2 ? t2 : t1;
	if (utc_offset(z, hi) != ob)
		return hi; /* more than one change in two days: good enough */
	while (lo < hi) {
		int64_t mid = lo + (hi - lo) / 2;

		if (utc_offset(z, mid) == ob)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

uint64_t cron_next(const cron_expr *c, const char *zone, uint64_t after_ms)
{
	int64_t t = (int64_t)(after_ms / 1000), w, limit;
	uint64_t result = UINT64_MAX;
	tz_ctx z;

	tz_enter(&z, zone);
	/* Start 3 hours of wall time before T's wall time: an overlap repeats
	 * at most that much (real zones: 1 h, some historical 2 h). */
	w = floordiv(t + utc_offset(&z, t), 60) - 180;
	limit = w + 8 * 366 * 1440;
	for (int i = 0; i < 100000; i++) {
		int64_t s;

		w = next_match(c, w, limit);
		if (w == INT64_MAX)
			break;
		s = inst(&z, w);
		if (s >= 0 && (uint64_t)s * 1000 > after_ms) {
			result = (uint64_t)s * 1000;
			break;
		}
		w++;
	}
	tz_leave(&z);
	return result;
}
