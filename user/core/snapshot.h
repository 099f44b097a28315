/* SPDX-License-Identifier: GPL-2.0 */
/* The queue snapshot: what ComfyUI had queued (running + pending, with prompt ids, numbers, the prompt and its
 * extra_data), kept from every /queue poll and persisted, so that a stop of the server (a controlled restart, or
 * the last resort when the server no longer answers) never loses a prompt, and so that a daemon killed in the
 * middle of a restart finishes it when it starts again. And the exactly-once rule for resubmission: an item is
 * submitted again only when the server answering now knows nothing of its prompt id (neither queued, running,
 * nor in its history). Pure: JSON text in and out; the file is statefile.c's. */
#ifndef OOMSENTRY_SNAPSHOT_H
#define OOMSENTRY_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "comfy.h"

#define SNAPSHOT_VERSION 1
/* A persisted snapshot is trusted up to this size; a real queue of thousands of workflows stays far below. */
#define SNAPSHOT_TEXT_MAX (256u << 20)

struct snap_item {
	char prompt_id[COMFY_PROMPT_ID_MAX];
	int64_t number;
	bool running;        /* it was running when the snapshot was taken: resubmitted first */
	bool submitted;      /* held by the server holder_* names (its reply accepted the original id, or it had the
			      * id queued or in its history) */
	int32_t holder_pid;  /* which server holds it: a prompt held by a server that is gone without it being seen
			      * finished there is owed again to the next one */
	uint64_t holder_start_ns;
	bool check;          /* not persisted: a controlled restart's drain asks /history whether it ran */
	char *prompt_json;   /* JSON object */
	char *extra_json;    /* JSON object */
	uint64_t added_ns;   /* CLOCK_MONOTONIC when the daemon queued it itself (snapshot_add_next); 0 when it came
			      * from a /queue reply (not persisted) */
};

/* Why the snapshot must outlive the server it was taken from. */
enum snap_stop {
	SNAP_STOP_NONE = 0,  /* no stop under way: the snapshot only mirrors the live queue */
	SNAP_STOP_RESTART,   /* a controlled restart saved the queue and stops the server */
	SNAP_STOP_LAST_RESORT, /* the last resort stops the server from the snapshot it kept */
};

struct queue_snapshot {
	struct snap_item *items; /* no fixed cap: every queued prompt is kept */
	size_t n, cap;
	enum snap_stop stop;
	int32_t old_pid;         /* the server being stopped (stop != NONE) */
	uint64_t old_start_ns;
	int64_t taken_ms;        /* wall clock of the /queue reply it mirrors (0 unknown) */
};

/* Frees the items and zeroes *s. Safe on a zeroed struct and twice. */
void snapshot_free(struct queue_snapshot *s);
/* Replaces s's items with q's, running first (oldest first), then pending in queue order; keeps s->stop.
 * 0 or -ENOMEM (s unchanged then). */
int snapshot_set_queue(struct queue_snapshot *s, const struct comfy_queue *q);
/* Adds every item of q whose id s does not hold yet (prompts queued between a save and the stop).
 * Returns how many were added, or -ENOMEM. */
int snapshot_merge_queue(struct queue_snapshot *s, const struct comfy_queue *q);
/* Puts qi first among the pending items (after any running one) unless s holds its id: a prompt the daemon itself
 * queued at the front (a requeue) is owed from the moment ComfyUI accepted it, not from the next /queue.
 * 1 added, 0 already held, -ENOMEM (s unchanged). */
int snapshot_add_next(struct queue_snapshot *s, const struct comfy_queue_item *qi, uint64_t now_ns);
/* A /queue reply the stopped server sent before it died (asked before the stop, read after it) is its last word:
 * when the snapshot mirrored its queue as the stop began (mirror), a prompt the snapshot had from its earlier
 * replies and absent from this one left the queue before the stop (finished, or deleted by a client) and is not
 * owed again. Prompts the daemon queued itself after the request was sent (added_ns >= sent_ns) and prompts owed
 * from an earlier stop (their resubmission may have been taken after the reply was made) stay. Returns how many
 * left. */
size_t snapshot_drop_left(struct queue_snapshot *s, const struct comfy_queue *q, bool mirror, uint64_t sent_ns);
/* q holds exactly s's prompt ids, in the same order (nothing worth writing again). */
bool snapshot_same(const struct queue_snapshot *s, const struct comfy_queue *q);
/* Removes the item with this id (a prompt that finished before the stop). true when one was removed. */
bool snapshot_remove(struct queue_snapshot *s, const char *prompt_id);
ssize_t snapshot_find(const struct queue_snapshot *s, const char *prompt_id);

/* A controlled restart's drain, once nothing of s runs on the old server any more: marks (check) every item q
 * does not hold, neither running nor pending. Each was taken out of its queue by oomsentry or ran there since the
 * save (the worker may take the next prompt before a deletion lands); /history tells which. Returns how many. */
size_t snapshot_mark_left(struct queue_snapshot *s, const struct comfy_queue *q);
/* The marked item ComfyUI's worker took first: one running at the save, else the lowest number (the worker takes
 * the lowest first). Those that ran lead in this order, so the first one /history does not know ends the look:
 * none after it ran. -1 when none is marked. */
ssize_t snapshot_next_marked(const struct queue_snapshot *s);
void snapshot_unmark(struct queue_snapshot *s);

/* JSON text (malloc'd, NUL-terminated) of s: {"version", "stop", "old_pid", "old_start_ns", "taken_ms",
 * "items": [{"prompt_id", "number", "running", "submitted", "prompt": {...}, "extra_data": {...}}]}.
 * 0, -EINVAL, -ENOMEM. */
int snapshot_format(const struct queue_snapshot *s, char **ret);
/* Parses what snapshot_format wrote. Anything malformed fails the whole text (-EBADMSG, *ret zeroed): a
 * half-understood snapshot must not resubmit anything. */
int snapshot_parse(const char *text, size_t len, struct queue_snapshot *ret);

/* Exactly-once, against the server answering now (pid, start_ns) and the ids it knows (in its /queue, running or
 * pending, and any its /history holds; known_ids may repeat ids):
 *   - an item held by another server is owed again (that server was stopped or died; ComfyUI's queue and history
 *     die with it, so this server is asked afresh);
 *   - an item this server held and no longer knows left its queue: it ran there (or a user deleted it), and is
 *     owed to nobody: removed;
 *   - an item it knows is held by it.
 * Returns how many items still need a submission. */
size_t snapshot_reconcile(struct queue_snapshot *s, int32_t pid, uint64_t start_ns, const char *const *known_ids,
			  size_t n_known);
/* snapshot_reconcile with this server's /queue, after adding the prompts queued on it that s does not hold yet
 * (queued there by users while prompts are owed: a stop of this server must put them back too). Returns the
 * items still needing a submission, or -ENOMEM (s unchanged then). */
ssize_t snapshot_observe(struct queue_snapshot *s, int32_t pid, uint64_t start_ns, const struct comfy_queue *q);
/* Item i is held by this server now (its reply to the resubmission accepted the id, or its /history holds it). */
void snapshot_held(struct queue_snapshot *s, size_t i, int32_t pid, uint64_t start_ns);
/* The next item to submit (the first not yet submitted: running ones come first), or -1 when none is left. */
ssize_t snapshot_next(const struct queue_snapshot *s);
size_t snapshot_pending(const struct queue_snapshot *s);

#endif
