/* SPDX-License-Identifier: GPL-2.0 */
/* Human-oriented diagnostics: stderr always, plus the journal (PRIORITY=) when one is reachable.
 * Structured per-event records are journal.c's job; this is for "what went wrong and what we do now". */
#ifndef OOMSENTRY_LOG_H
#define OOMSENTRY_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>
#include "common.h"

enum log_target { LOG_TARGET_STDERR = 1, LOG_TARGET_JOURNAL = 2 };

void log_setup(int max_priority, int targets);
int log_get_max_priority(void);
/* From here on stderr is written by a thread (recout.c): a stderr pipe nobody reads holds up nothing; what finds
 * no room is dropped and counted. For the daemon's loop; one-shot commands write at once. */
void log_queue_stderr(void);
/* Before exit or re-exec: the queued messages written, waiting until deadline_ns at most (CLOCK_MONOTONIC).
 * Returns how many were left unwritten. */
size_t log_flush(uint64_t deadline_ns);
/* Logs and returns r (negative errno) so callers can write `return log_errno(LOG_ERR, r, "...")`.
 * "%m" is not supported; the errno text is appended. */
int log_errno(int priority, int r, const char *fmt, ...) _printf_(3, 4);
void log_msg(int priority, const char *fmt, ...) _printf_(2, 3);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_error_errno(r, ...) log_errno(LOG_ERR, (r), __VA_ARGS__)
#define log_warn_errno(r, ...) log_errno(LOG_WARNING, (r), __VA_ARGS__)
#define log_debug_errno(r, ...) log_errno(LOG_DEBUG, (r), __VA_ARGS__)

#endif
