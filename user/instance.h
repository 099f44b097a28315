/* SPDX-License-Identifier: GPL-2.0 */
/* One watched ComfyUI server: finds its process and memory cgroup, follows its generations through /queue and
 * /history, forecasts, and (in run mode) climbs the prevention ladder. instance.c follows generations and dispatches
 * the loop's events; finding the server is locate.c, carrying out rungs prevent.c, the controlled restart
 * restart.c, orphans scan.c. */
#ifndef OOMSENTRY_INSTANCE_H
#define OOMSENTRY_INSTANCE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "config.h"

struct comfy_ws;
struct daemon;
struct instance;
struct proc;

struct instance *instance_new(struct daemon *d, const struct instance_config *ic, int index);
void instance_free(struct instance *in);
/* After the /proc scan at start: find the server, report orphans left by earlier runs. */
void instance_after_scan(struct instance *in, uint64_t now_ns);
void instance_poll(struct instance *in, uint64_t now_ns);   /* ComfyUI /queue + /history */
/* Follow the instance's /ws through ws (NULL: polling only). */
void instance_connect_ws(struct instance *in, struct comfy_ws *ws);
/* After the websocket was serviced, and once every loop iteration: poll now when a message asked for it and no poll
 * is being answered (else once it is). */
void instance_ws_wake(struct instance *in, uint64_t now_ns);
void instance_sample(struct instance *in, uint64_t now_ns); /* memory, forecast, policy, pending actions */
void instance_on_new_proc(struct instance *in, struct proc *p, uint64_t now_ns);
void instance_on_exit(struct instance *in, struct proc *p, uint64_t now_ns);
void instance_on_oom(struct instance *in, struct proc *victim, uint64_t now_ns);
void instance_on_rss(struct instance *in, struct proc *p, uint64_t now_ns);
void instance_on_reclaim(struct instance *in, uint64_t cgroup_id, uint64_t count, uint64_t now_ns);
/* Whether the instance needs the timers now (samples, /queue polls): anything under way (a generation, prompts
 * queued, a restart, a verification, an orphan check, usage past the warn line, activity in the last seconds), or
 * no /ws to wake the daemon. False: the instance is idle and its BPF events and /ws messages wake the daemon. */
bool instance_needs_timers(const struct instance *in, uint64_t now_ns);
/* Whether this instance needs the rss_stat probe attached now (core/rssarm.h). The daemon reads the usage of an
 * idle instance without a v1 notification (instance_far_polled) every RSSARM_LEAD_NS, so the line is always watched. */
bool instance_wants_rss(const struct instance *in);
bool instance_far_polled(const struct instance *in);
/* That read: the cgroup's usage and its growth rate, which places the line */
void instance_far_check(struct instance *in, uint64_t now_ns);
/* The kernel's notification that the instance's cgroup crossed the warn line (v1, memwatch.c) is readable. */
void instance_on_usage_line(struct instance *in, uint64_t now_ns);
/* `oomsentry scan`: report orphans once, and with reap terminate them and wait until each is gone.
 * Returns the number of orphans or negative errno. */
int instance_scan(struct instance *in, uint64_t now_ns, bool reap);
/* The server and what it forked, to the state directory (the daemon is stopping). */
void instance_persist_lineage(struct instance *in);
/* SIGHUP: the daemon re-executes itself; what this instance has in flight (a requeue owed, the ladder's state and
 * cooldowns, the open incident) is written for the image that follows (carry-store.c). */
void instance_carry_save(struct instance *in, uint64_t now_ns);
/* One block of the live table for `oomsentry status`. */
void instance_status(struct instance *in, FILE *out);
/* systemd-oomd's pre-kill hook names cgroup (from the hierarchy's root): when it holds this instance's server, act
 * before the kill (prevent_prekill) and return true. */
bool instance_prekill(struct instance *in, const char *cgroup, uint64_t now_ns);

#endif
