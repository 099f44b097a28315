/* SPDX-License-Identifier: GPL-2.0 */
/* When the rss_stat probe must be attached. It runs on every page fault of every process on the host (its dispatch
 * alone is ~1 % of a 4 KiB fault here, the tracked work 2 % more: docs/performance.md), and in run mode its events
 * matter only to an instance whose server is known: for a generation's peaks, and for the policy near the limit.
 * Far from the limit and idle, the cgroup's own usage, read by a kernel notification (v1) or a slow poll (v2; and the
 * server's tree read from /proc for a server without a limited cgroup, whose limit is MemTotal), says when to attach
 * it again, early enough that the fastest credible growth cannot reach the warn line first. Pure: the
 * caller measures, attaches and polls. */
#ifndef OOMSENTRY_RSSARM_H
#define OOMSENTRY_RSSARM_H

#include <stdbool.h>
#include <stdint.h>

/* The growth the arm line is placed against when the instance's own measured rate is slower: a process faulting 4 KiB
 * pages on one CPU here grows ~3 GB/s, with transparent huge pages more (PyTorch's tensor allocation). */
#define RSSARM_RATE_FLOOR_BPS (4.0 * 1024 * 1024 * 1024)
/* The line moves in steps of this: a cgroup v1 notification is registered again only when it moves */
#define RSSARM_LINE_GRAIN (256ULL << 20)
/* What the line must cover: the slow poll's period on cgroup v2 (and the attach, a few ms, on v1) */
#define RSSARM_LEAD_NS 1000000000ULL

struct rssarm_view {
	bool server;         /* the instance's server is known: RSS events reach it */
	bool busy;           /* a generation, a queue, a restart, an incident, no /ws: the events measure or decide */
	uint64_t usage_bytes; /* the cgroup's usage as charged (page cache included: the notification's measure), or
			       * without a limited cgroup the RSS of the server's tree */
	uint64_t limit_bytes; /* the cgroup's limit, or MemTotal; 0: unknown */
	double warn_fraction;
	double rate_bps; /* measured growth of usage (bytes/s), 0 unknown */
};

/* The usage at and above which the probe must be attached: the warn line less what the faster of the measured rate
 * (doubled) and RSSARM_RATE_FLOOR_BPS grows in RSSARM_LEAD_NS, rounded down to RSSARM_LINE_GRAIN. 0 when that is
 * every usage (small limits). */
uint64_t rssarm_line(uint64_t limit_bytes, double warn_fraction, double rate_bps);

/* Whether this instance needs the probe attached now. */
bool rssarm_wanted(const struct rssarm_view *v);

#endif
