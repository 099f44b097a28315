// SPDX-License-Identifier: GPL-2.0
#include <stdarg.h>
#include <string.h>
#include "journal-send.h"
#include "log.h"

static int max_prio = LOG_INFO;
static int log_targets = LOG_TARGET_STDERR;

void log_setup(int max_priority, int targets)
{
	max_prio = max_priority;
	log_targets = targets;
}

int log_get_max_priority(void)
{
	return max_prio;
}

static void log_emit(int priority, const char *text)
{
	static const char *const prefix[] = {
		[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit", [LOG_ERR] = "error",
		[LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
	};

	if (priority > max_prio)
		return;
	if (log_targets & LOG_TARGET_STDERR)
		fprintf(stderr, "oomsentry: %s: %s\n", prefix[priority & 7], text);
	if (log_targets & LOG_TARGET_JOURNAL)
	{
		char m[1100], p[16];
		struct iovec iov[3] = { { m, 0 }, { p, 0 }, { (char *)"SYSLOG_IDENTIFIER=oomsentry", 27 } };

		iov[0].iov_len = (size_t)snprintf(m, sizeof(m), "MESSAGE=%s", text);
		if (iov[0].iov_len >= sizeof(m))
			iov[0].iov_len = sizeof(m) - 1;
		iov[1].iov_len = (size_t)snprintf(p, sizeof(p), "PRIORITY=%d", priority);
		journal_send(iov, 3);
	}
}

void log_msg(int priority, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (priority > max_prio)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_emit(priority, buf);
}

int log_errno(int priority, int r, const char *fmt, ...)
{
	char buf[1024];
	size_t n;
	va_list ap;

	if (priority > max_prio)
		return r;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	n = strlen(buf);
	snprintf(buf + n, sizeof(buf) - n, ": %s", strerror(r < 0 ? -r : r));
	log_emit(priority, buf);
	return r;
}
