/* SPDX-License-Identifier: MIT */
/* status.c: the strings of the status codes, generated from MQ_STATUS_MAP.
 * Linked into libmqclient and, as a small static library, into the broker,
 * storage and tools so every layer speaks the same codes. */
#include <stdio.h>

#include "mq/status.h"

const char *mq_strerror(int status)
{
	static _Thread_local char buf[32];

	switch (status) {
#define MQ_STATUS_STR_(name, num, text)                                                            \
	case num:                                                                                  \
		return text;
		MQ_STATUS_MAP(MQ_STATUS_STR_)
#undef MQ_STATUS_STR_
	}
	snprintf(buf, sizeof(buf), "unknown status %d", status);
	return buf;
}

const char *mq_status_name(int status)
{
	switch (status) {
#define MQ_STATUS_NAME_(name, num, text)                                                           \
	case num:                                                                                  \
		return #name;
		MQ_STATUS_MAP(MQ_STATUS_NAME_)
#undef MQ_STATUS_NAME_
	}
	return "UNKNOWN_STATUS";
}

int mq_name_valid(const char *name)
{
	size_t n = 0;

	if (name == NULL)
		return 0;
	for (; name[n] != '\0'; n++) {
		char c = name[n];
		if (n >= MQ_NAME_MAX)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return n > 0;
}
