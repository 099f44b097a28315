/* SPDX-License-Identifier: GPL-2.0 */
/* Whether the prompt the last /queue reply showed running has finished since, from ComfyUI's websocket alone
 * (`status` broadcasts, then the prompt ids of execution events): the last resort stops the server without asking
 * it, and a prompt that finished in the round trip of the /queue its own `status` woke would otherwise be
 * resubmitted and run twice. Pure: no I/O, no clock.
 *
 * What ComfyUI does (server.py queue_updated, execution.py PromptQueue): every queue change broadcasts
 * {"status": {"exec_info": {"queue_remaining": N}}} to every websocket, N = running + pending, computed under the
 * queue's mutex, and the broadcasts leave in the order of the changes (one publish loop). The changes: a POST puts
 * (+1); the one worker takes the next prompt (get: N unchanged, a frame with the same N); a prompt leaves after it
 * ran, finished, failed or was interrupted (task_done: -1); a DELETE of a pending one (-1, or, for the last
 * pending one, wipe_queue's frame and then its own: -1 and the same N again); a clear (wipe: down to the running
 * count). So, while a prompt runs, two frames in a row with the same N >= 2 can only be a get: the worker was free,
 * the running prompt had finished. And N == 0 says nothing runs. Nothing else proves it: a lone -1 may be a DELETE,
 * and the pair (1, 1) may be the DELETE of the last pending prompt.
 *
 * Placing the frames after the reply. A frame received before the reply's request was sent came before the reply;
 * one received after may still be older than it (the reply and the frames travel on two connections). So only the
 * frames received since the request was sent are looked at (with the one before them, for the first change), and
 * only when every rise among them is one of the daemon's own POSTs sent after the reply was read (as many rises as
 * such POSTs accepted): those land after the reply was made. Then a frame below the reply's N is later than the
 * reply (an older one would have needed a put between it and the reply, a rise not the daemon's), and so is every
 * frame from the first rise on. The proof (N = 0, or the worker taking the next prompt) counts only in a frame known
 * to be later than the reply. This assumes ComfyUI's frames sent before a reply (or before its answer to the
 * daemon's POST) reach the daemon before it stops the server after reading that reply (its publish loop runs on the
 * same event loop that answers HTTP). Frames from another connection (the server restarted, the websocket
 * reconnected) are never mixed in: a reconnection drops the reply's anchor.
 *
 * Prompt ids, where the counts prove nothing (the pair (1, 1), a rise that is not the daemon's, no frame at all).
 * ComfyUI has one worker: a prompt the reply showed pending can start only once the running one has left. And an
 * execution event names the prompt the worker is executing; progress_state (ComfyUI 0.3.4x on: every node's
 * start, step and end) is sent to every websocket whatever the prompt's client_id, `progress` to every websocket
 * when the prompt has no client_id; the others (executing, execution_start/_cached/_success/_error) only to the
 * prompt's client_id, and execution_interrupted to it or to everybody without one (execution.py add_message,
 * main.py prompt_worker, comfy_execution/progress.py). So an event on this connection naming a prompt the reply
 * showed pending says that prompt started after the reply was made (a pending prompt had never run, unless the same
 * id was queued again: an event for it received before the request was sent voids it, and the caller rules out its
 * own requeues), and the running one had left; an end event of the running prompt itself (execution_success/
 * _error/_interrupted, executing with node null) received since the request says it left, unless events of another
 * run of that id follow it. Only the prompt's own
 * client sees most of these: a daemon that is not that client sees progress_state (or nothing, before 0.3.4x)
 * and, for prompts without a client_id, progress and execution_interrupted. */
#ifndef OOMSENTRY_QTRACK_H
#define OOMSENTRY_QTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Status frames kept: the ones since a /queue request was sent and the one before them; a burst of more queue
 * changes in one round trip and nothing is concluded until the next reply. */
#define QTRACK_FRAMES 32
/* Prompt ids named by execution events, kept one entry per run of events naming the same prompt: the last
 * prompts' starts. */
#define QTRACK_IDS 16
/* Pending prompts of the reply looked for among them: the next ones to run (lowest numbers). */
#define QTRACK_PENDING 8
#define QTRACK_ID_MAX 64

struct qtrack_idseen {
	char id[QTRACK_ID_MAX];
	uint64_t first_at;        /* the message count of this connection when its first event came */
	bool ended;               /* an end event came */
	uint64_t ended_at;
};

struct qtrack {
	/* the websocket connection: frames count only within one */
	uint64_t conn;            /* bumped at every connect and loss */
	bool connected;
	uint64_t seen;            /* status frames received on this connection */
	int64_t ring[QTRACK_FRAMES]; /* queue_remaining of frame number k at ring[k % QTRACK_FRAMES] */
	uint64_t msgs;            /* status frames and execution events received on this connection */
	struct qtrack_idseen ids[QTRACK_IDS]; /* entry k at ids[k % QTRACK_IDS] */
	uint64_t n_ids;

	/* the /queue reply the snapshot mirrors */
	bool anchored;
	uint64_t anchor_conn;     /* the connection its request was sent on */
	uint64_t anchor_seen;     /* frames received before its request was sent */
	uint64_t anchor_msgs;     /* messages received before its request was sent */
	char running_id[QTRACK_ID_MAX]; /* its running prompt ("" with none or more than one) */
	char pending_ids[QTRACK_PENDING][QTRACK_ID_MAX]; /* its next pending prompts */
	int64_t pending_numbers[QTRACK_PENDING];
	size_t n_pending_ids;
	char posted_ids[QTRACK_PENDING][QTRACK_ID_MAX]; /* the daemon's POSTs sent since it was read (the last ones) */
	size_t n_posted_ids;
	int64_t remaining;        /* its running + pending */
	bool running;             /* it showed a running prompt */
	size_t n_running;
	uint64_t replies;         /* replies anchored so far: a POST's ticket */
	unsigned own_posts;       /* the daemon's POSTs sent after that reply was read and accepted since */
	bool tainted;             /* a POST of the daemon's that may have landed before the reply was made */
};

/* The mark a /queue request carries: what had been received when it was sent. */
struct qtrack_mark {
	uint64_t conn;
	uint64_t seen;
	uint64_t msgs;
	bool connected;
};

void qtrack_init(struct qtrack *t);
/* The websocket connected (again), or was lost: frames of the old connection no longer follow on. */
void qtrack_connected(struct qtrack *t);
void qtrack_lost(struct qtrack *t);
/* One `status` broadcast with its queue_remaining (the connection's own first frame, which carries a "sid" and is
 * sent outside the broadcast order, is not one: the caller leaves it out). */
void qtrack_status(struct qtrack *t, int64_t queue_remaining);
/* An execution event naming prompt_id (progress_state, progress, executing, execution_*); ended: it says the prompt
 * left the worker (execution_success/_error/_interrupted, executing with node null). Events without an id are
 * not passed. */
void qtrack_event(struct qtrack *t, const char *prompt_id, bool ended);
/* Taken when a /queue request is sent. */
struct qtrack_mark qtrack_mark(const struct qtrack *t);
/* The reply to the request marked m is what the snapshot now mirrors. */
void qtrack_reply(struct qtrack *t, struct qtrack_mark m, size_t n_running, size_t n_pending);
/* Each item of that reply, after qtrack_reply: the running prompt's id and the next pending prompts' ids. */
void qtrack_reply_item(struct qtrack *t, const char *prompt_id, int64_t number, bool running);

/* The daemon's own POST /prompt (a resubmission, a requeue) of prompt_id: the ticket taken when it is sent, and its
 * acceptance by the server. One sent after the anchored reply was read lands after that reply was made, so its +1
 * is known to follow the reply, and its start, like a pending prompt's, says the running one had left; one sent
 * before and accepted after may be on either side of the next reply: nothing is concluded from its +1 until the
 * reply after that. */
uint64_t qtrack_post_sent(struct qtrack *t, const char *prompt_id);
void qtrack_post_accepted(struct qtrack *t, uint64_t ticket);

enum qtrack_verdict {
	QTRACK_UNKNOWN = 0,       /* nothing proves it finished (it may have) */
	QTRACK_FINISHED_EMPTY,    /* a frame said 0: nothing ran any more */
	QTRACK_FINISHED_NEXT,     /* the worker took the next prompt (two frames in a row with the same N >= 2) */
	QTRACK_FINISHED_STARTED,  /* an execution event named a prompt the reply showed pending, or one the daemon
				   * POSTed after reading it */
	QTRACK_FINISHED_ENDED,    /* an end event named it */
};
/* Whether the prompt the anchored reply showed running left the queue after that reply, from the frames received
 * since its request was sent, then from the execution events' prompt ids. */
enum qtrack_verdict qtrack_running_finished(const struct qtrack *t);
const char *qtrack_verdict_name(enum qtrack_verdict v);

#endif
