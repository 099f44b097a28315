/* SPDX-License-Identifier: GPL-2.0 */
/* Orphan scan and reap: builds orphans.c's inputs from the process table (lineage, port holders, reparenting),
 * journals each orphan once, and drives the SIGTERM -> grace -> SIGKILL state machine through pidfds. */
#ifndef OOMSENTRY_SCAN_H
#define OOMSENTRY_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "config.h"
#include "orphans.h"

struct daemon;

struct scan_result {
	struct orphan_proc *procs;
	struct orphan_verdict *verdicts;
	size_t n;
	size_t n_orphans;
	uint64_t orphan_bytes;
};

/* Classifies every live process in the table against the scope of ic and the servers known alive (every
 * instance's, not only ic's: one instance's server is never another's orphan). live_home (may be NULL) is ic's
 * live server; without one, the last server known, or the one persisted under state_dir, is the home heuristic
 * finds are compared with. Persists ic's lineage (daemon modes). */
int scan_orphans(struct daemon *d, const struct instance_config *ic, const struct orphan_server *servers,
		 size_t nservers, const struct orphan_home *live_home, struct scan_result *ret);
void scan_result_free(struct scan_result *sr);
/* Journals orphans not reported before (one record per process, not per scan). Returns how many were new. */
int scan_report_new(const struct scan_result *sr, const char *instance);
/* Starts reaping every orphan of sr that is not being reaped already. */
void scan_reap_start(const struct scan_result *sr, struct orphan_reap *reaps, uint64_t *rss, size_t *n, size_t max,
		     uint64_t grace_ms, uint64_t now_ns);
/* Advances all reaps; finished ones are journaled with the bytes given back and removed. Returns the bytes freed
 * by reaps that finished in this call. */
uint64_t scan_reap_step(struct daemon *d, const char *instance, struct orphan_reap *reaps, uint64_t *rss, size_t *n,
			uint64_t now_ns);

/* ---- one instance (struct instance from instance-state.h) ---- */

struct instance;

/* Classifies the instance's orphans against every instance's live server, journals new ones, starts reaping them
 * when reap is set, and advances the reaps under way. Returns the number of orphans, or negative errno when the
 * scan could not run (not logged: the caller says what the scan was for). */
int scan_instance(struct instance *in, uint64_t now_ns, bool reap);
/* Writes the instance's lineage to the state directory now if it changed (the daemon is stopping). */
void scan_persist_lineage(struct instance *in);
/* `oomsentry scan`: as scan_instance, then waits until every reap has finished. Returns the number of orphans or
 * negative errno. */
int scan_instance_to_end(struct instance *in, uint64_t now_ns, bool reap);

#endif
