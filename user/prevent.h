/* SPDX-License-Identifier: GPL-2.0 */
/* Prevention for one instance: asks policy.c for a rung, carries it out (comfy, restart, scan, actions), journals
 * the decision and its verified outcome, and keeps the incident report of the episode. */
#ifndef OOMSENTRY_PREVENT_H
#define OOMSENTRY_PREVENT_H

#include <stdint.h>
#include "incident.h"

struct instance;

/* Lets go of the memory.high brake, if held, restoring what was there; journaled with why. */
void prevent_brake_release(struct instance *in, const char *why);
/* A brake a daemon before this one held and never let go (killed while braked): memory.high is put back, once the
 * instance's cgroup is the one its mark names and only while it still holds the brake's value (journaled). */
void prevent_brake_leftover(struct instance *in);
/* After a reload: the /free (with its flags) and the /interrupt of interrupt_id ("" or NULL: none) that the image
 * before sent and never saw answered (its requests died with it) go again; both are harmless twice. 0 or
 * negative errno. */
int prevent_resend(struct instance *in, bool free, bool unload, bool free_memory, const char *interrupt_id);
/* With restart = none: one record at start saying which shapes cannot be prevented. */
void prevent_say_unpreventable(struct instance *in);
/* One policy step at now_ns (run mode only; the caller checks). */
void prevent_run(struct instance *in, uint64_t now_ns);
/* systemd-oomd is about to kill cgroup, which holds this instance: restart it keeping the queue (or /free without a
 * restart method) now, before the hook's reply lets the kill go ahead. */
void prevent_prekill(struct instance *in, const char *cgroup, uint64_t now_ns);
/* Opens the incident of an episode (no-op while one is open) with the sample ring and residuals so far. */
void prevent_incident_begin(struct instance *in, enum incident_trigger trig, uint64_t now_ns);
/* Closes the open incident (if any), writes it and journals where. */
void prevent_incident_finish(struct instance *in, enum incident_outcome outcome, const char *text, uint64_t freed);

#endif
