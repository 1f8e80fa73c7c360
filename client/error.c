/* SPDX-License-Identifier: MIT */
/* error.c: the per-thread reason behind the last failed call (mq_errmsg).
 * Every public call clears it on success and sets it on failure. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mqc.h"

static _Thread_local char mqc_errbuf[512];

const char *mq_errmsg(void)
{
	return mqc_errbuf;
}

mq_status mqc_fail(mq_status status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(mqc_errbuf, sizeof(mqc_errbuf), fmt, ap);
	va_end(ap);
	if (mqc_errbuf[0] == '\0')
		snprintf(mqc_errbuf, sizeof(mqc_errbuf), "%s", mq_strerror(status));
	return status;
}

mq_status mqc_ok(void)
{
	mqc_errbuf[0] = '\0';
	return MQ_OK;
}

mq_status mqc_check_name(const char *what, const char *name)
{
	if (name == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "%s: missing", what);
	if (!mq_name_valid(name))
		return mqc_fail(
		    MQ_INVALID_ARGUMENT, "%s \"%.*s%s\": want 1 to %d characters of [A-Za-z0-9._-]",
		    what, MQ_NAME_MAX, name, strlen(name) > MQ_NAME_MAX ? "..." : "", MQ_NAME_MAX);
	return MQ_OK;
}
