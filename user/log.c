// SPDX-License-Identifier: GPL-2.0
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>
#include "journal-send.h"
#include "log.h"
#include "recout.h"

static int max_prio = LOG_INFO;
static int log_targets = LOG_TARGET_STDERR;

void log_setup(int max_priority, int targets)
{
	max_prio = max_priority;
	log_targets = targets;
}

/* Messages are few (a stderr that is not read holds back far fewer lines than stdout's records): 256 KiB. */
#define LOG_QUEUE_BYTES (256 << 10)

static size_t dropped_notice(uint64_t dropped, char *buf, size_t size, void *ctx)
{
	int n = snprintf(buf, size, "oomsentry: warning: %llu messages were not written to standard error: it was not read "
			 "while they came", (unsigned long long)dropped);

	(void)ctx;
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

void log_queue_stderr(void)
{
	/* stderr is unbuffered: nothing waits in the FILE */
	recout_start(&recout_stderr, STDERR_FILENO, LOG_QUEUE_BYTES, dropped_notice, NULL);
}

size_t log_flush(uint64_t deadline_ns)
{
	return recout_flush(&recout_stderr, deadline_ns);
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
	if (log_targets & LOG_TARGET_STDERR) {
		char line[1200];

		snprintf(line, sizeof(line), "oomsentry: %s: %s", prefix[priority & 7], text);
		recout_line(&recout_stderr, stderr, line);
	}
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
