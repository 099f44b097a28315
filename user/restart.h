/* SPDX-License-Identifier: GPL-2.0 */
/* The controlled restart that keeps the queue. */
#ifndef OOMSENTRY_RESTART_H
#define OOMSENTRY_RESTART_H

#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>

struct comfy_queue;
struct instance;

/* Begins a stop that keeps the queue. Controlled (last_resort false): /queue is saved and persisted first (a
 * failed save means no restart), then the configured method; the outcome is journaled as it happens. Last
 * resort: from the snapshot, without asking the server, SIGTERM through pidfds now, SIGKILL + process_mrelease
 * after last_resort_grace. Returns 0 when it began (detail says what), negative errno when it could not. */
int restart_begin(struct instance *in, uint64_t now_ns, bool last_resort, char *detail, size_t len);
/* Called every sample: escalates a stop the server ignores, gives up on one it survives, and resubmits every
 * saved prompt the answering server does not know, with its original id. */
void restart_step(struct instance *in, uint64_t now_ns);
/* After each /queue reply (no stop under way): the snapshot follows it, persisted when it changed. */
void restart_snapshot_update(struct instance *in, const struct comfy_queue *q);
/* At start: a stop that the previous daemon began is read back from state_dir and finished. */
void restart_resume(struct instance *in, uint64_t now_ns);

#endif
