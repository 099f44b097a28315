/* SPDX-License-Identifier: GPL-2.0 */
/* Exact generation boundaries at any pace (issue 14): a generation is measured between the instants ComfyUI
 * itself stamped in /history (execution_start, execution_success/_error/_interrupted, epoch ms), over a trace of
 * every memory measurement (timer samples, RSS step events, polls), instead of between the polls that happened
 * to see the prompt. A 0.2 s generation between two 500 ms polls is then still one generation with its own
 * start level, peak and residual.
 *
 * Pure: no I/O, no clock, no logging. Times are ns of the caller's monotonic clock, sizes bytes. */
#ifndef OOMSENTRY_BOUNDARY_H
#define OOMSENTRY_BOUNDARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RSS step events come at most every few ms while memory moves and timer samples every poll_interval: 4096
 * points cover well over a minute of the busiest climb and hours of an idle server. */
#define MEMTRACE_SIZE 4096

struct memtrace_point {
	uint64_t ts_ns;
	uint64_t bytes;
};

/* A ring of measurements in time order; zero-initialise or memtrace_reset(). */
struct memtrace {
	struct memtrace_point pts[MEMTRACE_SIZE];
	size_t head; /* slot of the next point */
	size_t n;    /* valid points, at most MEMTRACE_SIZE */
};

void memtrace_reset(struct memtrace *mt);
/* Adds a measurement in time order: an RSS event read from the ring buffer late is stamped when the kernel saw
 * it, before measurements taken since. The oldest point makes room when the ring is full; a point older than
 * every point held is then dropped. */
void memtrace_add(struct memtrace *mt, uint64_t ts_ns, uint64_t bytes);
/* Points held, and the oldest time covered (0 when empty). */
size_t memtrace_count(const struct memtrace *mt);
uint64_t memtrace_oldest_ns(const struct memtrace *mt);

/* The level at an RSS step event's own time (ts_ns), for an event read from the ring buffer late: the usage
 * measured now, less what the process's RSS moved since the event (rss_now_bytes, read just after the usage, and
 * rss_event_bytes, the event's). A fall is bounded: the kernel lowers a process's RSS counters as it clears its
 * page tables, but uncharges the pages from the cgroup only when it frees them after the TLB flush, at the end of
 * the munmap or exit; a usage read in between still holds pages the RSS no longer counts, and adding back the
 * fall counted them twice (Debian 12's 6.1 under qemu: 160 MiB above any level measured). A step down is below
 * every RSS since the event before it, so the level is at most the trace's last point at or before ts_ns (or the
 * usage now, when that is higher or there is no such point). Returns 0 with *ret; -ERANGE when the RSS grew by
 * more than the usage now (the two readings disagree: nothing to add). */
int memtrace_event_level(const struct memtrace *mt, uint64_t ts_ns, uint64_t usage_now_bytes, uint64_t rss_now_bytes,
			 uint64_t rss_event_bytes, uint64_t *ret);

/* What one generation did between its boundaries. */
struct gen_window {
	uint64_t usage_start_bytes; /* the last measurement at or before start, or the first inside when lower (the
				     * end of a release reported in steps) */
	uint64_t peak_bytes;        /* max of the start level and every measurement in (start, end] */
	uint64_t usage_end_bytes;   /* the last measurement at or before end */
	uint64_t residual_bytes;    /* what the generation left: the lowest of the measurements in (end, settle]
				     * and of the end level when that is below the peak (ComfyUI frees a node's
				     * working set when the node returns, before the end stamp); else
				     * usage_end_bytes */
	bool residual_settled;      /* the residual was measured after the working set was released */
	bool start_unmeasured;      /* the trace begins inside the window: its first point stands for the start */
	unsigned points_inside;     /* measurements in (start, end] */
};

/* Fills *ret for a generation stamped [start_ns, end_ns], whose residual may settle until settle_ns (the next
 * generation's start, or now). Returns 0; -EINVAL for NULL or end < start; -ENODATA when no measurement is at
 * or before start_ns (the trace does not reach back that far: measure the start from poll timing instead):
 * *ret is then still filled from the trace's first point on when that lies at or before end_ns (with
 * start_unmeasured set), else zeroed. */
int memtrace_window(const struct memtrace *mt, uint64_t start_ns, uint64_t end_ns, uint64_t settle_ns,
		    struct gen_window *ret);

/* Converts an epoch-ms stamp of the server (same host, so the same realtime clock) to the monotonic clock, given
 * one reading of both clocks taken together. Returns 0; -ERANGE when the stamp lies more than skew_ms in the
 * future or before the monotonic clock's zero (a remote server or a clock step: do not trust it); a stamp up to
 * skew_ms ahead is clamped to mono_now_ns. */
int boundary_wall_ms_to_mono(int64_t wall_ms, uint64_t real_now_ns, uint64_t mono_now_ns, uint64_t skew_ms,
			     uint64_t *ret_mono_ns);

/* A generation's /history stamps (whole epoch ms, truncated: ComfyUI's int(time.time() * 1000)) as the monotonic
 * interval they can stand for: from the first nanosecond of the start's millisecond to the last of the end's
 * (clamped to mono_now_ns). Truncation puts an end stamp up to 1 ms before the real end, and a release measured in
 * that millisecond belongs to the generation, not to the gap after it. Returns 0; -ERANGE as
 * boundary_wall_ms_to_mono, or when end_ms < start_ms; -EINVAL for NULL. */
int boundary_stamps_to_mono(int64_t start_ms, int64_t end_ms, uint64_t real_now_ns, uint64_t mono_now_ns,
			    uint64_t skew_ms, uint64_t *ret_start_ns, uint64_t *ret_end_ns);

#endif
