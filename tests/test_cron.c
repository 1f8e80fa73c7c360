/* SPDX-License-Identifier: MIT */
/*
 * test_cron.c: unit tests of storage/cron.c with explicit times: parsing
 * (ranges, steps, lists, names, macros, errors), next slots in UTC and in
 * zones across daylight-saving gaps and overlaps (Europe/Paris,
 * Australia/Sydney), and zone validation. Expected instants were computed
 * with Python's zoneinfo.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cron.h"

static cron_expr parse_ok(const char *expr)
{
	cron_expr c;
	char err[128] = "";

	if (!cron_parse(expr, &c, err, sizeof(err)))
		fail_msg("cron_parse(\"%s\") failed: %s", expr, err);
	return c;
}

static void parse_bad(const char *expr, const char *want)
{
	cron_expr c;
	char err[128] = "";

	if (cron_parse(expr, &c, err, sizeof(err)))
		fail_msg("cron_parse(\"%s\") succeeded", expr);
	if (want && !strstr(err, want))
		fail_msg("cron_parse(\"%s\"): error \"%s\" lacks \"%s\"", expr, err, want);
}

static uint64_t next(const char *expr, const char *tz, uint64_t after)
{
	cron_expr c = parse_ok(expr);

	return cron_next(&c, tz, after);
}

#define JAN1_2024 1704067200000ull /* Monday 2024-01-01 00:00 UTC */

static void test_cron_parse_fields(void **state)
{
	cron_expr c;

	(void)state;
	c = parse_ok("*/15 9-17 * * MON-FRI");
	assert_true(c.minute == (1ull << 0 | 1ull << 15 | 1ull << 30 | 1ull << 45));
	assert_int_equal(c.hour, 0x3fe00u); /* 9..17 */
	assert_true(c.dom_star);
	assert_false(c.dow_star);
	assert_int_equal(c.dow, 0x3eu); /* 1..5 */
	c = parse_ok("0,30 1,2,3 1-31/10 jan,Jul,DEC 7");
	assert_true(c.minute == (1ull | 1ull << 30));
	assert_int_equal(c.hour, 0xeu);
	assert_int_equal(c.dom, 1u << 1 | 1u << 11 | 1u << 21 | 1u << 31);
	assert_int_equal(c.month, 1u << 1 | 1u << 7 | 1u << 12);
	assert_int_equal(c.dow, 1u); /* 7 is Sunday = 0 */
	c = parse_ok("5/20 * * * sun-sat");
	assert_true(c.minute == (1ull << 5 | 1ull << 25 | 1ull << 45));
	assert_int_equal(c.dow, 0x7fu);
	c = parse_ok("  0   0  *  *  *  ");
	assert_true(c.minute == 1ull && c.hour == 1u);
	c = parse_ok("@hourly");
	assert_true(c.minute == 1ull && c.hour == 0xffffffu);
	c = parse_ok("@weekly");
	assert_int_equal(c.dow, 1u);
	c = parse_ok("@YEARLY");
	assert_int_equal(c.month, 1u << 1);
	assert_int_equal(c.dom, 1u << 1);

	parse_bad("", "empty");
	parse_bad("* * * *", "5 fields");
	parse_bad("* * * * * *", "5 fields");
	parse_bad("60 * * * *", "out of range");
	parse_bad("* 24 * * *", "out of range");
	parse_bad("* * 0 * *", "out of range");
	parse_bad("* * * 13 *", "out of range");
	parse_bad("* * * * 8", "out of range");
	parse_bad("5-1 * * * *", "out of range");
	parse_bad("*/0 * * * *", "minute");
	parse_bad("a * * * *", "minute");
	parse_bad("1,,2 * * * *", NULL);
	parse_bad("* * * FOO *", "month");
	parse_bad("* * * * MONDAY", "day of week");
	parse_bad("1- * * * *", "minute");
	parse_bad("@every5m", "macro");
}

static void test_cron_next_utc(void **state)
{
	(void)state;
	/* steps and ranges */
	assert_int_equal(next("*/15 * * * *", "", JAN1_2024), JAN1_2024 + 15 * 60000);
	assert_int_equal(next("*/15 * * * *", "UTC", JAN1_2024 - 1), JAN1_2024);
	assert_int_equal(next("* * * * *", "", JAN1_2024 + 500), JAN1_2024 + 60000);
	/* weekdays at 09:00: Monday 2024-01-01, then Friday 10:00 -> Monday */
	assert_int_equal(next("0 9 * * 1-5", "", JAN1_2024), 1704099600000ull);
	assert_int_equal(next("0 9 * * MON-FRI", "", 1704448800000ull), 1704704400000ull);
	/* names */
	assert_int_equal(next("0 12 * * sun", "", JAN1_2024), 1704628800000ull);
	assert_int_equal(next("0 0 1 JAN *", "", JAN1_2024), 1735689600000ull);
	/* both DOM and DOW restricted: either matches (the 5th is a Friday) */
	assert_int_equal(next("0 0 13 * FRI", "", JAN1_2024), 1704412800000ull);
	/* both with '*': both must match */
	assert_int_equal(next("0 0 */1 * FRI", "", JAN1_2024), 1704412800000ull);
	/* leap day: next 29 February after 2024-03-01 is in 2028 */
	assert_int_equal(next("0 0 29 2 *", "", 1709251200000ull), 1835395200000ull);
	/* never */
	assert_true(next("0 0 30 2 *", "", JAN1_2024) == UINT64_MAX);
	assert_true(next("0 0 31 4,6,9,11 *", "", JAN1_2024) == UINT64_MAX);
}

static void test_cron_next_zone(void **state)
{
	(void)state;
	/* 09:00 Paris (CET, UTC+1) on Tuesday 2024-01-02 */
	assert_int_equal(next("0 9 * * 1-5", "Europe/Paris", JAN1_2024 + 9 * 3600000ull),
	                 1704182400000ull);
}

static void test_cron_dst_gap(void **state)
{
	(void)state;
	/* Europe/Paris, 2024-03-31: 02:00 CET -> 03:00 CEST (01:00 UTC). The
	 * 02:30 slot does not exist: it fires once, at 03:00 CEST. */
	assert_int_equal(next("30 2 * * *", "Europe/Paris", 1711800000000ull), 1711846800000ull);
	/* and not again that day: the next is 02:30 CEST on 1 April */
	assert_int_equal(next("30 2 * * *", "Europe/Paris", 1711846800000ull), 1711931400000ull);
	/* Every 30 min: 01:30 CET, then 02:00 and 02:30 (missing) and 03:00
	 * CEST are one instant (01:00 UTC), fired once; then 03:30 CEST. */
	assert_int_equal(next("*/30 * * * *", "Europe/Paris", 1711845000000ull - 1),
	                 1711845000000ull);
	assert_int_equal(next("*/30 * * * *", "Europe/Paris", 1711845000000ull), 1711846800000ull);
	assert_int_equal(next("*/30 * * * *", "Europe/Paris", 1711846800000ull), 1711848600000ull);
	/* Australia/Sydney, 2024-10-06: 02:00 AEST -> 03:00 AEDT (16:00 UTC
	 * the day before). */
	assert_int_equal(next("30 2 * * *", "Australia/Sydney", 1728129600000ull),
	                 1728144000000ull);
}

static void test_cron_dst_overlap(void **state)
{
	(void)state;
	/* Europe/Paris, 2024-10-27: 03:00 CEST -> 02:00 CET (01:00 UTC). 02:30
	 * happens twice: it fires once, at the first (00:30 UTC). */
	assert_int_equal(next("30 2 * * *", "Europe/Paris", 1729944000000ull), 1729989000000ull);
	assert_int_equal(next("30 2 * * *", "Europe/Paris", 1729989000000ull), 1730079000000ull);
	/* Every 30 min across the overlap: 02:00 and 02:30 CEST fire, their
	 * repeats in CET do not; next is 03:00 CET (02:00 UTC). */
	assert_int_equal(next("*/30 * * * *", "Europe/Paris", 1729986300000ull), 1729987200000ull);
	assert_int_equal(next("*/30 * * * *", "Europe/Paris", 1729987200000ull), 1729989000000ull);
	assert_int_equal(next("*/30 * * * *", "Europe/Paris", 1729989000000ull), 1729994400000ull);
	/* asked from inside the repeated hour (01:10 UTC = 02:10 CET): still
	 * 03:00 CET */
	assert_int_equal(next("*/30 * * * *", "Europe/Paris", 1729991400000ull), 1729994400000ull);
}

static void test_cron_tz_valid(void **state)
{
	char err[256];

	(void)state;
	assert_true(cron_tz_valid("", err, sizeof(err)));
	assert_true(cron_tz_valid("UTC", err, sizeof(err)));
	assert_true(cron_tz_valid("Europe/Paris", err, sizeof(err)));
	assert_true(cron_tz_valid("America/New_York", err, sizeof(err)));
	assert_false(cron_tz_valid("Mars/Olympus_Mons", err, sizeof(err)));
	assert_non_null(strstr(err, "unknown time zone"));
	assert_false(cron_tz_valid("../../etc/passwd", err, sizeof(err)));
	assert_false(cron_tz_valid("/etc/localtime", err, sizeof(err)));
	assert_false(cron_tz_valid("Europe", err, sizeof(err))); /* a directory */
	assert_false(cron_tz_valid("Europe/Paris x", err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cron_parse_fields), cmocka_unit_test(test_cron_next_utc),
	    cmocka_unit_test(test_cron_next_zone),    cmocka_unit_test(test_cron_dst_gap),
	    cmocka_unit_test(test_cron_dst_overlap),  cmocka_unit_test(test_cron_tz_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
