/* SPDX-License-Identifier: GPL-2.0 */
/* The controlled restart that keeps the queue. */
#ifndef OOMSENTRY_RESTART_H
#define OOMSENTRY_RESTART_H

#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>
#include "qtrack.h"

struct comfy_queue;
struct instance;

/* Begins a stop that keeps the queue. Controlled (last_resort false): /queue is saved and persisted first (a
 * failed save means no restart), then the configured method; the outcome is journaled as it happens. Last
 * resort: from the snapshot, without asking the server, SIGTERM through pidfds now, SIGKILL + process_mrelease
 * after last_resort_grace, or at once when the limit (ttl_ns away; UINT64_MAX: not in sight) comes sooner
 * than that grace. Returns 0 when it began (detail says what), negative errno when it could not. */
int restart_begin(struct instance *in, uint64_t now_ns, bool last_resort, uint64_t ttl_ns, char *detail, size_t len);
/* Called every sample: escalates a stop the server ignores, gives up on one it survives, and resubmits every
 * saved prompt the answering server does not know, with its original id. */
void restart_step(struct instance *in, uint64_t now_ns);
/* A stop under way that sent SIGTERM and no SIGKILL yet: the ns left of its grace; 0 when there is none. */
uint64_t restart_grace_left_ns(const struct instance *in, uint64_t now_ns);
/* SIGKILL + process_mrelease to the server being stopped and its workers now; why goes to the journal record
 * ("pid N <why>: ..."). */
void restart_escalate(struct instance *in, uint64_t now_ns, const char *why);
/* After each /queue reply (no stop under way): the snapshot follows it, persisted when it changed. */
void restart_snapshot_update(struct instance *in, const struct comfy_queue *q);
/* After each poll's /queue reply (no stop under way): the status broadcasts received since its request (mark, sent
 * at sent_ns) are the ones a last resort weighs against it (core/qtrack.h). */
void restart_queue_anchor(struct instance *in, const struct comfy_queue *q, struct qtrack_mark mark, uint64_t sent_ns);
/* Every /interrupt the daemon sends to the server, when it is sent and when it is answered (or failed). */
void restart_interrupt_sent(struct instance *in);
void restart_interrupt_answered(struct instance *in);
/* ComfyUI said its queue changed (a /ws status): a resubmission round under way reads /queue before its next
 * request. */
void restart_queue_changed(struct instance *in);
/* A /queue reply to a poll sent at sent_ns that comes after the last resort began: when the poll was sent before
 * it, the reply is the old server's queue as of then, and the prompts in it that the snapshot lacks (queued after
 * the snapshot's reply, and dying with the server) are owed too, while those of the snapshot it no longer has
 * (finished just before the stop) are not (snapshot_drop_left). Returns how many were added. */
int restart_late_queue(struct instance *in, const struct comfy_queue *q, uint64_t sent_ns);
/* A prompt the daemon itself queued at the front (a requeue, under a new id replacing the interrupted one's) is in
 * the snapshot from ComfyUI's acceptance on, not from the next /queue: a last resort in between would lose it. */
void restart_snapshot_owe(struct instance *in, const char *prompt_id, const char *replaces, int64_t number,
			  const char *prompt_json, const char *extra_json);
/* At start: a stop that the previous daemon began is read back from state_dir and finished. */
void restart_resume(struct instance *in, uint64_t now_ns);

#endif
