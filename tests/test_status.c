/* SPDX-License-Identifier: MIT */
/* test_status.c: the status codes keep their wire numbers, every code has
 * a name and a text, unknown codes get a non-NULL text; the name rule. */
#include <string.h>

#include "mqtest.h"

static void test_status_numbers_fixed(void **state)
{
	(void)state;
	/* gRPC's canonical codes: these numbers are on the wire. */
	assert_int_equal(MQ_OK, 0);
	assert_int_equal(MQ_CANCELLED, 1);
	assert_int_equal(MQ_UNKNOWN, 2);
	assert_int_equal(MQ_INVALID_ARGUMENT, 3);
	assert_int_equal(MQ_DEADLINE_EXCEEDED, 4);
	assert_int_equal(MQ_NOT_FOUND, 5);
	assert_int_equal(MQ_ALREADY_EXISTS, 6);
	assert_int_equal(MQ_PERMISSION_DENIED, 7);
	assert_int_equal(MQ_RESOURCE_EXHAUSTED, 8);
	assert_int_equal(MQ_FAILED_PRECONDITION, 9);
	assert_int_equal(MQ_ABORTED, 10);
	assert_int_equal(MQ_OUT_OF_RANGE, 11);
	assert_int_equal(MQ_UNIMPLEMENTED, 12);
	assert_int_equal(MQ_INTERNAL, 13);
	assert_int_equal(MQ_UNAVAILABLE, 14);
	assert_int_equal(MQ_DATA_LOSS, 15);
	assert_int_equal(MQ_UNAUTHENTICATED, 16);
}

static void test_status_strings(void **state)
{
	(void)state;
	for (int i = 0; i <= 16; i++) {
		assert_non_null(mq_strerror(i));
		assert_true(strlen(mq_strerror(i)) > 0);
		assert_string_not_equal(mq_status_name(i), "UNKNOWN_STATUS");
	}
	assert_string_equal(mq_status_name(MQ_NOT_FOUND), "NOT_FOUND");
	assert_string_equal(mq_strerror(MQ_NOT_FOUND), "not found");
	assert_string_equal(mq_strerror(99), "unknown status 99");
	assert_string_equal(mq_strerror(-1), "unknown status -1");
	assert_string_equal(mq_status_name(99), "UNKNOWN_STATUS");
}

static void test_status_name_rule(void **state)
{
	char name[MQ_NAME_MAX + 2];

	(void)state;
	assert_true(mq_name_valid("a"));
	assert_true(mq_name_valid("orders.v2_high-prio"));
	assert_true(mq_name_valid("A-Z.0_9"));
	assert_false(mq_name_valid(NULL));
	assert_false(mq_name_valid(""));
	assert_false(mq_name_valid("a b"));
	assert_false(mq_name_valid("a/b"));
	assert_false(mq_name_valid("a:b"));
	assert_false(mq_name_valid("\xc3\xa9"));
	memset(name, 'x', sizeof(name));
	name[MQ_NAME_MAX] = '\0';
	assert_true(mq_name_valid(name));
	name[MQ_NAME_MAX] = 'x';
	name[MQ_NAME_MAX + 1] = '\0';
	assert_false(mq_name_valid(name));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_status_numbers_fixed),
	    cmocka_unit_test(test_status_strings),
	    cmocka_unit_test(test_status_name_rule),
	};
	return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
