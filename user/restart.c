// SPDX-License-Identifier: GPL-2.0
/* Stops of the server that keep the queue, and the resubmission that puts it back exactly once.
 *
 * The queue snapshot (core/snapshot.c) follows every /queue reply and is persisted under state_dir whenever it
 * changes, so that a stop never depends on the server answering at that moment:
 *   - controlled restart: a fresh /queue first (no restart on a failed save), persisted, the queue drained (pending
 *     prompts taken out, the running one interrupted and looked up in /history), and the stop by the configured
 *     method after a last /queue that shows nothing new and around which ComfyUI broadcast no queue change; a server that outlives stop_grace is SIGKILLed (+ process_mrelease), one that outlives
 *     that too is given up on (the ladder is live again, nothing was lost: it still holds its queue);
 *   - last resort (the policy's urgent restart): no question to the server; the persisted snapshot is the
 *     queue, SIGTERM through pidfds to the server and its workers, SIGKILL + process_mrelease after
 *     last_resort_grace;
 *   - the resubmission, whenever a stop is owed (snap.stop != NONE, which a daemon restarted in the middle reads
 *     back): /queue of the server that answers now, then for each saved prompt it does not hold, /history/{id},
 *     then POST /prompt with the original id and number; a failure is retried after looking again. One request
 *     at a time, on the loop: a large queue never holds the loop.
 * Everything is journaled (ACTION=restart, restart_complete, resubmit). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include "actions.h"
#include "comfy-client.h"
#include "common.h"
#include "context.h"
#include "comfy-ws.h"
#include "instance-state.h"
#include "locate.h"
#include "log.h"
#include "procfs.h"
#include "procfs-read.h"
#include "proctree.h"
#include "restart.h"
#include "snapshot.h"
#include "statefile.h"
#include "unitjob.h"
#include "usage.h"

/* ---- the snapshot on disk ---- */

static void snap_name(const struct instance *in, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "queue-%s.json", in->ic->name);

	/* an instance name is a config section name: keep it a single file name whatever it holds */
	for (size_t i = 6; i < n && i < len && buf[i] != '.'; i++)
		if (!(buf[i] == '-' || buf[i] == '_' || (buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'z') ||
		      (buf[i] >= 'A' && buf[i] <= 'Z')))
			buf[i] = '_';
}

static int snap_persist(struct instance *in)
{
	_cleanup_free_ char *text = NULL;
	char name[160];
	int r;

	if (!in->d->cfg->state_dir[0])
		return -ENOENT;
	snap_name(in, name, sizeof(name));
	r = snapshot_format(&in->snap, &text);
	/* queued to the writer thread: a stop must not wait seconds for a busy disk (statefile.h) */
	if (r >= 0)
		r = statefile_write_async(in->d->cfg->state_dir, name, text);
	if (r >= 0)
		r = statefile_async_error(); /* an earlier queued write that failed */
	in->snap_dirty = r < 0;
	if (r < 0)
		log_warn_errno(r, "instance %s: cannot write the queue snapshot under %s", in->ic->name, in->d->cfg->state_dir);
	return r;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void restart_snapshot_update(struct instance *in, const struct comfy_queue *q)
{
	if (in->snap.stop != SNAP_STOP_NONE)
		return; /* prompts are owed to a new server: this snapshot is what they are */
	if (snapshot_same(&in->snap, q) && !in->snap_dirty)
		return;
	if (snapshot_set_queue(&in->snap, q) < 0) {
		log_warn("instance %s: out of memory for the queue snapshot", in->ic->name);
		return;
	}
	in->snap.taken_ms = wall_ms();
	snap_persist(in);
}

int restart_late_queue(struct instance *in, const struct comfy_queue *q, uint64_t sent_ns)
{
	size_t left;
	int n;

	/* a poll sent after the stop began may have reached the next server: only the old one's own answers count */
	if (in->snap.stop != SNAP_STOP_LAST_RESORT || !in->rs_began_ns || sent_ns >= in->rs_began_ns)
		return 0;
	/* and the prompts it no longer had had left its queue before it died: a prompt that finished just before the
	 * stop is not run again */
	left = snapshot_drop_left(&in->snap, q, in->rs_snap_mirror, sent_ns);
	n = snapshot_merge_queue(&in->snap, q);
	if (n <= 0 && !left)
		return 0;
	snap_persist(in);
	if (left)
		log_notice("instance %s: %zu prompts had left the queue (finished) before the last resort, as a /queue reply "
			   "that came after it says: not owed again", in->ic->name, left);
	if (n > 0)
		log_notice("instance %s: %d prompts queued just before the last resort, seen in a /queue reply that came "
			   "after it, are owed to the next server too", in->ic->name, n);
	return MAX(n, 0);
}

void restart_queue_anchor(struct instance *in, const struct comfy_queue *q, struct qtrack_mark mark, uint64_t sent_ns)
{
	const char *running = q->n_running ? q->running[0].prompt_id : "";

	qtrack_reply(&in->qt, mark, q->n_running, q->n_pending);
	for (size_t i = 0; i < q->n_running; i++)
		qtrack_reply_item(&in->qt, q->running[i].prompt_id, q->running[i].number, true);
	for (size_t i = 0; i < q->n_pending; i++)
		qtrack_reply_item(&in->qt, q->pending[i].prompt_id, q->pending[i].number, false);
	if (strcmp(running, in->qt_running_id)) {
		/* the reply before this one had not seen it start */
		snprintf(in->qt_running_id, sizeof(in->qt_running_id), "%s", running);
		in->qt_before_sent_ns = in->qt_last_sent_ns;
	}
	in->qt_last_sent_ns = sent_ns;
}

void restart_interrupt_sent(struct instance *in)
{
	in->own_interrupts_open++;
}

void restart_interrupt_answered(struct instance *in)
{
	if (in->own_interrupts_open)
		in->own_interrupts_open--;
	in->own_interrupt_answered_ns = now_mono_ns();
}

/* The last resort, about to stop the server from a snapshot that mirrors its last /queue reply: the prompt that
 * reply showed running is not owed again when the websocket since proves it left the queue (qtrack.h) and
 * no /interrupt of the daemon's can have been what ended it. An interrupt stops the prompt running when it lands
 * (ComfyUI clears the flag when a prompt starts), so it is ruled out when it was answered before the request of a
 * reply that had not yet seen this prompt start; a rung's interrupt-and-requeue or a controlled restart's drain
 * owes its prompt a rerun, and taking that end for a finish would lose it. */
static void drop_finished_running(struct instance *in, bool mirror)
{
	enum qtrack_verdict v = qtrack_running_finished(&in->qt);
	const struct snap_item *it;
	const char *id;
	ssize_t k;

	if (v == QTRACK_UNKNOWN)
		return;
	if (in->rs == RS_DRAINING)
		return; /* the drain interrupts the running prompt: its end is no finish */
	/* a snapshot that mirrors the last reply holds its running prompt (unless a requeue replaced it); one owed from
	 * an earlier stop holds it as resubmitted to this server, which the look showed running */
	k = in->qt_running_id[0] ? snapshot_find(&in->snap, in->qt_running_id) : -1;
	if (k < 0)
		return;
	it = &in->snap.items[k];
	if (!mirror && (!it->submitted || it->holder_pid != in->rs_old_pid || it->holder_start_ns != in->rs_old_start_ns))
		return;
	id = it->prompt_id;
	if (in->own_interrupts_open || !strcmp(id, in->in_flight_interrupt) || !strcmp(id, in->rs_running_id) ||
	    (in->requeue_pending && !strcmp(id, in->requeue.prompt_id)))
		return;
	if (in->own_interrupt_answered_ns && in->own_interrupt_answered_ns >= in->qt_before_sent_ns)
		return;
	log_notice("instance %s: prompt %s finished after the last /queue reply (%s, as ComfyUI's websocket says): "
		   "not owed again by the last resort", in->ic->name, id, qtrack_verdict_name(v));
	snapshot_remove(&in->snap, id);
}

void restart_snapshot_owe(struct instance *in, const char *prompt_id, const char *replaces, int64_t number,
			  const char *prompt_json, const char *extra_json)
{
	struct comfy_queue_item it = {
		.number = number,
		.prompt_json = (char *)prompt_json,
		.extra_data_json = (char *)extra_json,
	};
	ssize_t i;

	snprintf(it.prompt_id, sizeof(it.prompt_id), "%s", prompt_id);
	/* the interrupted run it replaces ended there: owing both would run the prompt twice */
	if (replaces && strcmp(replaces, prompt_id))
		snapshot_remove(&in->snap, replaces);
	if (snapshot_add_next(&in->snap, &it, now_mono_ns()) < 0)
		return;
	/* while a stop's prompts are owed, this server holds the new one: should it be stopped before the prompt is
	 * seen finished, it is owed again */
	i = snapshot_find(&in->snap, prompt_id);
	if (in->snap.stop != SNAP_STOP_NONE && i >= 0)
		snapshot_held(&in->snap, (size_t)i, in->server_pid, in->server_start_ns);
	snap_persist(in);
}

/* What the stop under way carries besides the queue it saved: the prompt an interrupt took out, waiting for its
 * requeue (it goes back once, with the others), minus a prompt given up on. */
static void carry_extra(struct instance *in)
{
	if (in->requeue_pending && in->requeue.prompt_id[0] && snapshot_find(&in->snap, in->requeue.prompt_id) < 0) {
		struct comfy_queue_item it = {
			.number = in->requeue.number,
			.prompt_json = in->requeue.prompt_json,
			.extra_data_json = in->requeue.extra_json,
		};
		struct comfy_queue q = { .running = &it, .n_running = 1 };

		snprintf(it.prompt_id, sizeof(it.prompt_id), "%s", in->requeue.prompt_id);
		if (snapshot_merge_queue(&in->snap, &q) >= 0) {
			saved_prompt_clear(&in->requeue);
			in->requeue_pending = false;
		}
	} else if (in->requeue_pending) {
		saved_prompt_clear(&in->requeue);
		in->requeue_pending = false;
	}
	if (in->rs_drop_id[0]) {
		snapshot_remove(&in->snap, in->rs_drop_id);
		in->rs_drop_id[0] = 0;
	}
}

/* ---- the old server ---- */

static bool old_server_alive(struct instance *in)
{
	struct proc_stat st;

	if (!in->rs_old_pid)
		return false;
	return procfs_read_stat(proctree_root(in->d->pt), in->rs_old_pid, &st) == 0 && st.start_ns == in->rs_old_start_ns &&
	       st.state != 'Z' && st.state != 'X';
}

/* A SIGKILL to the tree keeps the pidfds for process_mrelease until every process is killed (then reaped in a
 * thread: action_release_async); beyond this many workers each is reaped as it is killed. */
#define TREE_KILL_FDS 32

struct tree_signal_ctx {
	struct instance *in;
	int sig; /* SIGKILL: with process_mrelease, once the whole tree is killed */
	int sent;
	int nfds;
	int fds[TREE_KILL_FDS];
	pid_t pids[TREE_KILL_FDS];
};

static void keep_kill_fd(struct tree_signal_ctx *c, int fd, pid_t pid)
{
	if (fd < 0)
		return;
	if (c->nfds == TREE_KILL_FDS) {
		action_release(fd, pid);
		return;
	}
	c->fds[c->nfds] = fd;
	c->pids[c->nfds++] = pid;
}

static void signal_tree(struct proc *p, void *ctx)
{
	struct tree_signal_ctx *c = ctx;
	const char *root = proctree_root(c->in->d->pt);

	/* the old server's descendants (workers); the server itself is signalled by the caller */
	if (p->death != PROC_ALIVE || p->pid == c->in->rs_old_pid || p->server_pid != c->in->rs_old_pid ||
	    p->server_start_ns != c->in->rs_old_start_ns)
		return;
	if (c->sig == SIGKILL) {
		int fd = action_kill_fd(root, p->pid, p->start_ns);

		if (fd >= 0)
			c->sent++;
		keep_kill_fd(c, fd, p->pid);
	} else if (action_signal(root, p->pid, p->start_ns, c->sig) == 0) {
		c->sent++;
	}
}

/* The old server and its workers, each through its own pidfd (start time checked). A SIGKILL goes to every one
 * of them before process_mrelease reaps any (*ret_killed_ns: when the last was sent; 0 for another signal).
 * Returns what the server's own signal returned. */
static int signal_old_tree_at(struct instance *in, int sig, int *ret_workers, uint64_t *ret_killed_ns)
{
	struct tree_signal_ctx c = { .in = in, .sig = sig };
	const char *root = proctree_root(in->d->pt);
	int r, fd = -1;

	if (sig == SIGKILL) {
		fd = action_kill_fd(root, in->rs_old_pid, in->rs_old_start_ns);
		r = fd < 0 ? fd : 0;
		keep_kill_fd(&c, fd, in->rs_old_pid);
	} else {
		r = action_signal(root, in->rs_old_pid, in->rs_old_start_ns, sig);
	}
	/* the server's own fd, when kept, is reaped first: it holds the most */
	c.sent = 0;
	proctree_foreach(in->d->pt, signal_tree, &c);
	if (ret_killed_ns)
		*ret_killed_ns = sig == SIGKILL ? now_mono_ns() : 0;
	action_release_async(c.fds, c.pids, c.nfds);
	*ret_workers = c.sent;
	return r;
}

static int signal_old_tree(struct instance *in, int sig, int *ret_workers)
{
	return signal_old_tree_at(in, sig, ret_workers, NULL);
}

/* SIGKILL + process_mrelease to the old tree. Its growth stops once every process of it is killed (a killed task
 * charges nothing past the page fault it is in); the reap that follows gives the memory back sooner, and the
 * server's exit, which waits for a CPU of its own, later still (50-100 ms each on a loaded 2-core machine). The
 * kill's time is what the last resort at the brink needs, learnt apart from a SIGTERM stop's. */
static int kill_old_tree(struct instance *in, int *ret_workers)
{
	uint64_t t = now_mono_ns(), killed = 0;
	int r = signal_old_tree_at(in, SIGKILL, ret_workers, &killed);

	if (r == 0 && killed >= t) {
		learn_note_kill(&in->learn, (killed - t + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC);
		instance_learnt(in);
	}
	return r;
}

static void journal_restart(struct instance *in, int prio, const char *result, const char *fmt, ...)
	_printf_(4, 5);

static void journal_restart(struct instance *in, int prio, const char *result, const char *fmt, ...)
{
	struct rec r;
	va_list ap;
	char msg[600];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	instance_rec(&r, in, REC_ACTION, prio);
	rec_add(&r, "ACTION", "restart_stop");
	rec_add(&r, "RESULT", "%s", result);
	rec_add(&r, "PID", "%d", in->rs_old_pid);
	rec_add(&r, "LAST_RESORT", "%d", in->rs_last_resort);
	rec_add(&r, "SAVED", "%zu", in->snap.n);
	rec_message(&r, "instance %s: %s", in->ic->name, msg);
	rec_emit(&r);
}

/* The restart did not happen (the save failed, the stop failed, the server would not die): the instance is
 * protected as before, with the ladder live; what was saved is dropped only when the old server still runs it. */
static void restart_abandon(struct instance *in, uint64_t now_ns, bool server_still_has_queue)
{
	in->rs = RS_IDLE;
	in->rs_killed = false;
	if (server_still_has_queue) {
		in->snap.stop = SNAP_STOP_NONE;
		snap_persist(in);
	}
	policy_record_outcome(&in->ps, POLICY_RUNG_RESTART, false, 0, now_ns);
}

/* ---- stopping ---- */

/* The end of RestartUnit's job, on the loop. A failed job (or call) while the server still runs is a stop that
 * did not happen: oomsentry stops it itself, as after a failed restart_command. */
static void unit_job_done(int r, const char *result, void *ctx)
{
	struct instance *in = ctx;
	int workers = 0;

	in->rs_job = NULL;
	if (r == 0) {
		journal_restart(in, LOG_INFO, "job_done", "RestartUnit %s: systemd's job is done", in->ic->systemd_unit);
		return;
	}
	if (in->rs == RS_STOPPING && !in->rs_killed && old_server_alive(in)) {
		journal_restart(in, LOG_ERR, "job_failed", "RestartUnit %s failed (%s) and pid %d still runs; SIGTERM to it, "
				"SIGKILL after %llu ms", in->ic->systemd_unit, result, in->rs_old_pid,
				(unsigned long long)in->ic->stop_grace_ms);
		signal_old_tree(in, SIGTERM, &workers);
		in->rs_deadline_ns = now_mono_ns() + in->ic->stop_grace_ms * NSEC_PER_MSEC;
	} else {
		journal_restart(in, LOG_ERR, "job_failed", "RestartUnit %s failed (%s)", in->ic->systemd_unit, result);
	}
}

static int restart_unit(struct instance *in)
{
	/* a job of an earlier stop that has not ended is no longer this stop's business */
	unitjob_cancel(in->rs_job);
	in->rs_job = NULL;
	return unitjob_restart(in->ic->systemd_unit, unit_job_done, in, &in->rs_job);
}

static int send_stop(struct instance *in, uint64_t now_ns, char *detail, size_t len)
{
	int r = 0, workers = 0;

	detail[0] = 0;
	if (in->rs_last_resort || in->ic->restart_method == RESTART_SIGNAL) {
		/* a supervisor (or the method, once the old server is gone) starts the server again */
		r = signal_old_tree(in, SIGTERM, &workers);
		snprintf(detail, len, "SIGTERM to pid %d and %d workers", in->rs_old_pid, workers);
	} else if (in->ic->restart_method == RESTART_COMMAND) {
		pid_t pid = action_spawn_command(in->ic->restart_command, in->ic->name);
		r = pid < 0 ? pid : 0;
		in->rs_command_pid = pid > 0 ? pid : 0;
		snprintf(detail, len, "ran '%.100s'", in->ic->restart_command);
	} else if (in->ic->restart_method == RESTART_SYSTEMD) {
		r = restart_unit(in);
		snprintf(detail, len, "RestartUnit %s", in->ic->systemd_unit);
	} else {
		r = -EOPNOTSUPP;
	}
	if (r == -ESRCH && !old_server_alive(in))
		r = 0; /* it is gone already: that is what a stop wants */
	if (r < 0)
		return r;
	in->rs = RS_STOPPING;
	in->rs_killed = false;
	in->rs_deadline_ns = now_ns + (in->rs_last_resort ? in->ic->last_resort_grace_ms : in->ic->stop_grace_ms) *
						      NSEC_PER_MSEC;
	return 0;
}

/* ---- draining: nothing finishes on the old server between the save and the stop ---- */

static void stop_now(struct instance *in, uint64_t now_ns)
{
	char detail[256];
	int r = send_stop(in, now_ns, detail, sizeof(detail));

	if (r < 0) {
		journal_restart(in, LOG_ERR, "failed", "restart not done: %s failed (%s)", detail, strerror(-r));
		/* the pending prompts were taken out of its queue: they are owed to this same server now */
		in->rs = RS_STARTING;
		in->rs_old_pid = 0;
		in->rs_old_start_ns = 0;
		in->rs_deadline_ns = now_ns;
		policy_record_outcome(&in->ps, POLICY_RUNG_RESTART, false, 0, now_ns);
		return;
	}
	journal_restart(in, LOG_NOTICE, "stopping", "%s; %zu prompts saved", detail, in->snap.n);
}

static void drain_ignore(struct comfy_client *c, int r, void *ctx)
{
	(void)c;
	(void)r;
	(void)ctx;
}

static void drain_interrupt_done(struct comfy_client *c, int r, void *ctx)
{
	(void)c;
	(void)r;
	restart_interrupt_answered(ctx);
}

static void drain_interrupt(struct instance *in, struct comfy_client *c)
{
	if (comfy_start_interrupt(c, in->rs_running_id, drain_interrupt_done, in) == 0)
		restart_interrupt_sent(in);
}

static void drain_step(struct instance *in);

/* The saved prompts that left the queue have been looked up in /history. The stop waits for one more look at
 * /queue (drain_queue_done): a client's prompt POSTed during the lookups is in no reply yet, and would die with the
 * server unsaved (it even runs at once: the drain emptied the queue). Unless the server no longer answers /queue,
 * or the grace is over: then the stop now. */
static void drain_checked(struct instance *in)
{
	uint64_t now_ns = now_mono_ns();

	snapshot_unmark(&in->snap);
	if (in->rs_drain_last || now_ns >= in->rs_deadline_ns) {
		stop_now(in, now_ns);
		return;
	}
	in->rs_drain_checked = true;
	drain_step(in);
}

static void drain_check_next(struct instance *in);

/* A saved prompt that left the old server's queue during the drain: finished there (it stays finished: not
 * resubmitted), stopped or failed there (resubmitted), or taken out of the queue by us before it ran (resubmitted;
 * and none after it ran: the look ends). */
static void drain_check_done(struct comfy_client *c, int r, void *ctx)
{
	struct instance *in = ctx;
	ssize_t i = snapshot_next_marked(&in->snap);
	struct comfy_history_item h;

	in->rs_drain_busy = false;
	if (in->rs != RS_DRAINING || i < 0) {
		snapshot_unmark(&in->snap);
		return;
	}
	r = comfy_take_history_item(c, r, in->snap.items[i].prompt_id, &h);
	if (r < 0 || !h.found) {
		/* not known to have run: it and the rest are resubmitted (a server that does not answer is stopped
		 * now) */
		in->rs_drain_last |= r < 0;
		drain_checked(in);
		return;
	}
	if (!h.msg_interrupted && (h.status == COMFY_STATUS_SUCCESS || h.msg_success)) {
		snapshot_remove(&in->snap, in->snap.items[i].prompt_id);
		snap_persist(in);
	} else {
		in->snap.items[i].check = false;
	}
	if (now_mono_ns() >= in->rs_deadline_ns) {
		drain_checked(in); /* no time left to ask: the rest are resubmitted */
		return;
	}
	drain_check_next(in);
}

static void drain_check_next(struct instance *in)
{
	ssize_t i = snapshot_next_marked(&in->snap);

	if (i >= 0 && comfy_start_history_item(in->comfy, in->snap.items[i].prompt_id, drain_check_done, in) == 0) {
		in->rs_drain_busy = true;
		return;
	}
	in->rs_drain_last |= i >= 0; /* could not ask */
	drain_checked(in);
}

/* No status broadcast was received while the last /queue was in flight (qtrack.h: ComfyUI broadcasts every queue
 * change, in order, on the loop that answers HTTP), after reading what has arrived on the websocket so far. A
 * frame means the queue changed around the reply: it may not show the change, so the look is repeated. Without a
 * websocket the reply is all there is. */
static bool look_quiet(struct instance *in)
{
	const struct qtrack_mark *m = &in->rs_look_mark;

	if (in->d->ws)
		comfy_ws_service(in->d->ws, now_mono_ns());
	if (!m->connected && !in->qt.connected)
		return true;
	return m->connected && in->qt.connected && m->conn == in->qt.conn && m->seen == in->qt.seen;
}

static void drain_queue_done(struct comfy_client *c, int r, void *ctx)
{
	struct instance *in = ctx;
	uint64_t now_ns = now_mono_ns();
	struct comfy_queue q;
	bool still = false, added = false;

	in->rs_drain_busy = false;
	r = comfy_take_queue(c, r, &q);
	if (in->rs != RS_DRAINING) {
		comfy_queue_free(&q);
		return;
	}
	/* prompts that arrived since the save are owed too: merged, and out of the old server's queue */
	if (r == 0 && snapshot_merge_queue(&in->snap, &q) > 0) {
		added = true;
		snap_persist(in);
		for (size_t i = 0; i < q.n_pending; i++) {
			const char *id = q.pending[i].prompt_id;
			comfy_start_delete_from_queue(c, &id, 1, drain_ignore, NULL);
		}
	}
	/* whatever runs is a saved prompt now: the one that ran at the save, or the next one the worker took before
	 * the deletions landed (a 0.2 s generation finishes in less than a round trip), or one a client POSTed since,
	 * which is stopped too */
	for (size_t i = 0; r == 0 && i < q.n_running; i++) {
		still = true;
		if (strcmp(q.running[i].prompt_id, in->rs_running_id)) {
			snprintf(in->rs_running_id, sizeof(in->rs_running_id), "%s", q.running[i].prompt_id);
			drain_interrupt(in, c);
		}
	}
	if (r == 0 && now_ns < in->rs_deadline_ns) {
		if (still) {
			/* what runs now is looked up once it stopped */
			in->rs_drain_checked = false;
			comfy_queue_free(&q);
			return;
		}
		if (in->rs_drain_checked) {
			comfy_queue_free(&q);
			/* the last look before the stop: nothing new in it, and no queue change around it */
			if (!added && look_quiet(in))
				stop_now(in, now_ns);
			else
				drain_step(in);
			return;
		}
	}
	/* stopped (or no longer answering, or late): learn from /history which of the saved prompts that left the queue
	 * ran there, then look at /queue once more (drain_checked) and stop the server */
	if (r == 0) {
		snapshot_mark_left(&in->snap, &q);
	} else {
		ssize_t k = snapshot_find(&in->snap, in->rs_running_id);
		if (k >= 0)
			in->snap.items[k].check = true;
	}
	in->rs_drain_last = r < 0 || now_ns >= in->rs_deadline_ns;
	comfy_queue_free(&q);
	drain_check_next(in);
}

static void drain_step(struct instance *in)
{
	if (in->rs_drain_busy)
		return;
	in->rs_look_mark = qtrack_mark(&in->qt);
	if (comfy_start_queue(in->comfy, drain_queue_done, in) == 0)
		in->rs_drain_busy = true;
	else
		stop_now(in, now_mono_ns());
}

static void drain_begin(struct instance *in, uint64_t now_ns)
{
	const char **ids = calloc(in->snap.n + 1, sizeof(*ids));
	size_t n = 0;

	in->rs_running_id[0] = 0;
	for (size_t i = 0; i < in->snap.n; i++) {
		if (in->snap.items[i].running && !in->rs_running_id[0])
			snprintf(in->rs_running_id, sizeof(in->rs_running_id), "%s", in->snap.items[i].prompt_id);
		else if (ids && !in->snap.items[i].running)
			ids[n++] = in->snap.items[i].prompt_id;
	}
	/* the pending ones must not start during the stop; the running one is stopped at its next step, so that
	 * it either finished before (and stays finished) or did not (and is resubmitted): never both */
	if (n)
		comfy_start_delete_from_queue(in->comfy, ids, n, drain_ignore, NULL);
	free(ids);
	if (in->rs_running_id[0])
		drain_interrupt(in, in->comfy);
	/* with nothing running too: the worker may take a pending prompt before its deletion lands, and a client may
	 * POST one after the save; the stop follows a look at /queue that shows neither (drain_queue_done) */
	in->rs = RS_DRAINING;
	in->rs_drain_busy = false;
	in->rs_drain_checked = false;
	in->rs_drain_last = false;
	in->rs_deadline_ns = now_ns + in->ic->stop_grace_ms * NSEC_PER_MSEC;
	drain_step(in);
}

static void save_done(struct comfy_client *c, int r, void *ctx)
{
	struct instance *in = ctx;
	uint64_t now_ns = now_mono_ns();
	struct comfy_queue q;

	r = comfy_take_queue(c, r, &q);
	if (in->rs != RS_SAVING) {
		comfy_queue_free(&q);
		return;
	}
	if (r < 0) {
		journal_restart(in, LOG_ERR, "failed", "restart not done: could not save the queue first (%s); the server "
						       "keeps running it", comfy_last_error(c));
		restart_abandon(in, now_ns, in->snap.stop == SNAP_STOP_NONE);
		return;
	}
	r = in->snap.stop == SNAP_STOP_NONE ? snapshot_set_queue(&in->snap, &q) : snapshot_merge_queue(&in->snap, &q);
	comfy_queue_free(&q);
	if (in->snap.stop == SNAP_STOP_NONE)
		in->snap.taken_ms = wall_ms();
	in->snap.stop = SNAP_STOP_RESTART;
	in->snap.old_pid = in->rs_old_pid;
	in->snap.old_start_ns = in->rs_old_start_ns;
	carry_extra(in);
	if (r < 0 || snap_persist(in) < 0) {
		journal_restart(in, LOG_ERR, "failed", "restart not done: the saved queue could not be written under %s",
				in->d->cfg->state_dir);
		restart_abandon(in, now_ns, true);
		return;
	}
	drain_begin(in, now_ns);
}

int restart_begin(struct instance *in, uint64_t now_ns, bool last_resort, uint64_t ttl_ns, char *detail, size_t len)
{
	int r;

	detail[0] = 0;
	if (in->ic->restart_method == RESTART_NONE)
		return -EOPNOTSUPP;
	if (in->rs != RS_IDLE && !(last_resort && (in->rs == RS_SAVING || in->rs == RS_DRAINING)))
		return -EBUSY;
	in->rs_old_pid = in->server_pid;
	in->rs_old_start_ns = in->server_start_ns;
	/* a server that does not answer cannot give its queue: the snapshot of its last answer is all there is, and
	 * waiting for a save that times out only brings the limit nearer */
	if (!last_resort && !in->reachable && in->d->curl)
		last_resort = true;
	in->rs_last_resort = last_resort;
	in->rs_began_ns = now_ns;
	if (!last_resort) {
		/* the queue as of now, not as of the last poll: then the stop (save_done) */
		r = comfy_start_queue(in->comfy, save_done, in);
		if (r < 0)
			return r;
		in->rs = RS_SAVING;
		snprintf(detail, len, "saving /queue, then the %s stop", in->ic->restart_method == RESTART_SIGNAL ? "SIGTERM" :
					   in->ic->restart_method == RESTART_COMMAND ? "restart_command" : "RestartUnit");
		return 0;
	}
	/* the last resort asks the server nothing: the snapshot of the last /queue reply is the queue (while prompts
	 * are still owed from an earlier stop, the snapshot is that stop's, kept up to date by every /queue of the
	 * server resubmitted to: what it holds is owed again once it is stopped) */
	in->rs_snap_mirror = in->snap.stop == SNAP_STOP_NONE;
	drop_finished_running(in, in->rs_snap_mirror);
	if (in->snap.stop == SNAP_STOP_NONE)
		in->snap.stop = SNAP_STOP_LAST_RESORT;
	/* a daemon restarted meanwhile must finish the stop of this server, not of the one before */
	in->snap.old_pid = in->rs_old_pid;
	in->snap.old_start_ns = in->rs_old_start_ns;
	carry_extra(in);
	/* the signal first, the snapshot's write after it (below): a write and two fsyncs can take a good part of a
	 * second on a loaded disk while memory climbs into the limit; a daemon killed in between loses only the mark
	 * that a stop was owed */
	if (ttl_ns < in->ic->last_resort_grace_ms * NSEC_PER_MSEC) {
		/* the limit comes before a SIGTERM's grace would end: a server still unwinding (or one that handles
		 * SIGTERM slowly under reclaim) would meet the kernel first; the queue is in the snapshot, so nothing
		 * is lost by not asking, and process_mrelease gives the memory back now */
		int workers = 0;

		r = kill_old_tree(in, &workers);
		if (r == -ESRCH && !old_server_alive(in))
			r = 0;
		snap_persist(in); /* a failed write does not hold back the last resort: the snapshot is in memory */
		if (r < 0)
			return r;
		in->rs = RS_STOPPING;
		in->rs_killed = true;
		in->rs_giveup_ns = now_ns + 5 * NSEC_PER_SEC;
		snprintf(detail, len, "SIGKILL + process_mrelease to pid %d and %d workers now (limit in %llu ms, before "
			 "the %llu ms grace of a SIGTERM)", in->rs_old_pid, workers,
			 (unsigned long long)(ttl_ns / NSEC_PER_MSEC), (unsigned long long)in->ic->last_resort_grace_ms);
	} else {
		r = send_stop(in, now_ns, detail, len);
		snap_persist(in);
		if (r < 0) {
			in->rs = RS_IDLE;
			return r;
		}
		snprintf(detail + strlen(detail), len - strlen(detail), ", SIGKILL after %llu ms",
			 (unsigned long long)in->ic->last_resort_grace_ms);
	}
	snprintf(detail + strlen(detail), len - strlen(detail), "; %zu prompts from the snapshot of %lld ms ago",
		 in->snap.n, in->snap.taken_ms ? (long long)(wall_ms() - in->snap.taken_ms) : -1LL);
	journal_restart(in, LOG_WARNING, "stopping", "last resort: %s", detail);
	return 0;
}

void restart_resume(struct instance *in, uint64_t now_ns)
{
	_cleanup_free_ char *text = NULL;
	struct queue_snapshot s;
	char name[160];
	size_t len;
	int r;

	if (!in->d->cfg->state_dir[0])
		return;
	snap_name(in, name, sizeof(name));
	r = statefile_read(in->d->cfg->state_dir, name, SNAPSHOT_TEXT_MAX, &text, &len);
	if (r == -ENOENT)
		return;
	if (r < 0 || snapshot_parse(text, len, &s) < 0) {
		log_warn("instance %s: the queue snapshot %s/%s is unreadable (%s); nothing is resubmitted from it",
			 in->ic->name, in->d->cfg->state_dir, name, r < 0 ? strerror(-r) : "malformed");
		return;
	}
	snapshot_free(&in->snap);
	in->snap = s;
	if (s.stop == SNAP_STOP_NONE)
		return; /* a mirror of a queue the server still holds */
	/* a stop was under way when the previous daemon ended: finish it (escalate if the old server lives on) */
	in->rs_old_pid = s.old_pid;
	in->rs_old_start_ns = s.old_start_ns;
	in->rs_last_resort = s.stop == SNAP_STOP_LAST_RESORT;
	in->rs = RS_STOPPING;
	in->rs_killed = false;
	in->rs_deadline_ns = now_ns + (in->rs_last_resort ? in->ic->last_resort_grace_ms : in->ic->stop_grace_ms) *
					      NSEC_PER_MSEC;
	journal_restart(in, LOG_NOTICE, "resumed", "a %s begun by the previous daemon is finished: %zu saved prompts, %zu "
			"not yet resubmitted", in->rs_last_resort ? "last-resort stop" : "controlled restart", s.n,
			snapshot_pending(&s));
}

/* ---- resubmission: exactly once ---- */

/* A round looks at /queue again at least this often: a resubmitted prompt seen to leave the queue ran, and is not
 * sent again should this server be stopped before the round ends (one look per prompt would cost a whole /queue
 * per prompt on a queue of thousands). */
#define RESUBMIT_LOOK_NS (100 * NSEC_PER_MSEC)

static void resubmit_next(struct instance *in);
static void resubmit_queue_done(struct comfy_client *c, int r, void *ctx);

/* A round's look at /queue: like a poll's, its reply anchors the status broadcasts that follow */
static int start_look(struct instance *in)
{
	int r = comfy_start_queue(in->comfy, resubmit_queue_done, in);

	if (r == 0) {
		in->look_mark = qtrack_mark(&in->qt);
		in->look_sent_ns = now_mono_ns();
	}
	return r;
}

static bool server_alive(struct instance *in, int32_t pid, uint64_t start_ns)
{
	struct proc_stat st;

	return pid > 0 && procfs_read_stat(proctree_root(in->d->pt), pid, &st) == 0 && st.start_ns == start_ns &&
	       st.state != 'Z' && st.state != 'X';
}

static bool round_valid(const struct instance *in)
{
	return (in->rs == RS_IDLE || in->rs == RS_STARTING) && in->snap.stop != SNAP_STOP_NONE && !in->server_gone &&
	       in->server_pid == in->resubmit_pid && in->server_start_ns == in->resubmit_start_ns;
}

static void resubmit_complete(struct instance *in)
{
	struct rec r;

	instance_rec(&r, in, REC_ACTION, LOG_NOTICE);
	rec_add(&r, "ACTION", "restart_complete");
	rec_add(&r, "PID", "%d", in->server_pid);
	rec_add(&r, "SAVED", "%zu", in->snap.n);
	rec_message(&r, "instance %s: ComfyUI is back as pid %d; all %zu saved prompts are in its queue or history",
		    in->ic->name, in->server_pid, in->snap.n);
	rec_emit(&r);
	in->snap.stop = SNAP_STOP_NONE;
	snap_persist(in);
	in->rs = RS_IDLE;
}

static void submit_done(struct comfy_client *c, int r, void *ctx)
{
	struct instance *in = ctx;
	ssize_t i = snapshot_next(&in->snap);
	char new_id[COMFY_PROMPT_ID_MAX] = "";
	struct rec rec;

	r = comfy_take_submit(c, r, new_id);
	if (i < 0) {
		in->resubmit_busy = false;
		return;
	}
	instance_rec(&rec, in, REC_ACTION, r < 0 ? LOG_ERR : LOG_INFO);
	rec_add(&rec, "ACTION", "resubmit");
	rec_add(&rec, "PROMPT_ID", "%s", in->snap.items[i].prompt_id);
	rec_add(&rec, "NEW_PROMPT_ID", "%s", new_id);
	rec_add(&rec, "RESULT", "%s", r < 0 ? "failed" : "ok");
	if (r < 0) {
		rec_message(&rec, "instance %s: could not resubmit prompt %s (%s); it is tried again with the same id after "
				  "a look at /queue and /history", in->ic->name, in->snap.items[i].prompt_id, comfy_last_error(c));
		rec_emit(&rec);
		in->resubmit_busy = false; /* the next sample starts over from /queue */
		return;
	}
	qtrack_post_accepted(&in->qt, in->resubmit_ticket);
	rec_message(&rec, "instance %s: resubmitted prompt %s -> %s", in->ic->name, in->snap.items[i].prompt_id, new_id);
	rec_emit(&rec);
	snapshot_held(&in->snap, (size_t)i, in->resubmit_pid, in->resubmit_start_ns);
	in->resubmit_unlooked = true;
	snap_persist(in);
	resubmit_next(in);
}

static void history_done(struct comfy_client *c, int r, void *ctx)
{
	struct instance *in = ctx;
	ssize_t i = snapshot_next(&in->snap);
	struct comfy_history_item h;

	if (i < 0 || !round_valid(in)) {
		/* nothing is sent to a server being stopped, or to one this round did not look at */
		in->resubmit_busy = false;
		return;
	}
	r = comfy_take_history_item(c, r, in->snap.items[i].prompt_id, &h);
	if (r < 0) {
		in->resubmit_busy = false; /* not known either way: nothing is sent until it is */
		return;
	}
	if (h.found) {
		/* this server ran it already (an earlier resubmission whose reply was lost) */
		snapshot_held(&in->snap, (size_t)i, in->resubmit_pid, in->resubmit_start_ns);
		snap_persist(in);
		resubmit_next(in);
		return;
	}
	in->resubmit_ticket = qtrack_post_sent(&in->qt, in->snap.items[i].prompt_id);
	if (comfy_start_submit(c, in->snap.items[i].prompt_json, in->snap.items[i].extra_json,
			       in->snap.items[i].prompt_id, false, in->snap.items[i].number, submit_done, in) < 0) {
		/* a prompt this client refuses to send (not JSON any more) cannot be resubmitted: say so, go on */
		log_error("instance %s: saved prompt %s cannot be resubmitted: %s", in->ic->name,
			  in->snap.items[i].prompt_id, comfy_last_error(c));
		snapshot_held(&in->snap, (size_t)i, in->resubmit_pid, in->resubmit_start_ns);
		snap_persist(in);
		resubmit_next(in);
	}
}

static void resubmit_next(struct instance *in)
{
	ssize_t i = snapshot_next(&in->snap);

	if (!round_valid(in)) {
		/* a stop of this server began, or another answers: the next sample starts over from /queue, so that
		 * what this one holds is owed again and no stop under way is taken for finished */
		in->resubmit_busy = false;
		return;
	}
	/* the round ends on a look at /queue after the last resubmission: "all in its queue or history" is then what
	 * this server said, and a prompt that already ran there is out of the snapshot a later stop works from */
	if (i < 0 && in->resubmit_unlooked && start_look(in) == 0)
		return;
	if (i < 0) {
		in->resubmit_busy = false;
		resubmit_complete(in);
		return;
	}
	if (now_mono_ns() - in->resubmit_look_ns >= RESUBMIT_LOOK_NS && start_look(in) == 0)
		return;
	if (comfy_start_history_item(in->comfy, in->snap.items[i].prompt_id, history_done, in) < 0) {
		/* an id ComfyUI cannot hold: nothing to send under it */
		snapshot_held(&in->snap, (size_t)i, in->resubmit_pid, in->resubmit_start_ns);
		resubmit_next(in);
	}
}

/* The first running prompt a round sees is the first this server ran only if nothing left its queue finished
 * before: a look that finds another prompt running later is not from a clean start. */
static void note_round_running(struct instance *in, const struct comfy_queue *q)
{
	const char *id = q->n_running ? q->running[0].prompt_id : "";

	if (!strcmp(id, in->resubmit_running_id))
		return;
	in->resubmit_running_first = id[0] && !in->resubmit_running_id[0] && !in->resubmit_ran_before;
	if (in->resubmit_running_id[0])
		in->resubmit_ran_before = true;
	snprintf(in->resubmit_running_id, sizeof(in->resubmit_running_id), "%s", id);
}

void restart_queue_changed(struct instance *in)
{
	/* the poll is off while a round runs, and its looks come every RESUBMIT_LOOK_NS at best (one per /history +
	 * POST): a prompt that finished on this server meanwhile stayed in the snapshot, and a last resort in that
	 * gap (x10 pace: 150 ms after the status broadcast) ran it again on the next server */
	in->resubmit_look_ns = 0;
}

static void resubmit_queue_done(struct comfy_client *c, int r, void *ctx)
{
	struct instance *in = ctx;
	struct comfy_queue q;
	ssize_t pending;

	r = comfy_take_queue(c, r, &q);
	if (r < 0 || !round_valid(in) || !server_alive(in, in->resubmit_pid, in->resubmit_start_ns)) {
		/* not up yet; or the reply may be another server's (this one is stopped or died meanwhile): what it
		 * lacks says nothing of what this one ran */
		comfy_queue_free(&q);
		in->resubmit_busy = false;
		return;
	}
	/* what this server holds now decides: prompts held by a server stopped since (or that died) are owed again,
	 * those that left this server's queue ran, and those queued on it meanwhile are put back by a stop of it */
	pending = snapshot_observe(&in->snap, in->resubmit_pid, in->resubmit_start_ns, &q);
	note_round_running(in, &q);
	restart_queue_anchor(in, &q, in->look_mark, in->look_sent_ns);
	comfy_queue_free(&q);
	if (pending < 0) {
		log_warn("instance %s: out of memory for the queue snapshot", in->ic->name);
		in->resubmit_busy = false;
		return;
	}
	in->snap.taken_ms = wall_ms();
	in->resubmit_look_ns = now_mono_ns();
	in->resubmit_unlooked = false;
	snap_persist(in);
	if (in->rs == RS_STARTING && !in->rs_answered) {
		struct rec rec;
		instance_rec(&rec, in, REC_ACTION, LOG_NOTICE);
		rec_add(&rec, "ACTION", "restart_answers");
		rec_add(&rec, "PID", "%d", in->server_pid);
		rec_message(&rec, "instance %s: ComfyUI answers again (pid %d); resubmitting %zu of %zu saved prompts",
			    in->ic->name, in->server_pid, snapshot_pending(&in->snap), in->snap.n);
		rec_emit(&rec);
		igen_server_answers(in);
		/* the clean level before any resubmitted prompt starts: the next generation starts from here */
		instance_measure(in);
		usage_levels_polled(&in->lv, in->usage_bytes);
		saved_prompt_clear(&in->running);
		in->rs_answered = true; /* restart_step ends the restart (and instance.c measures it) */
		in->resubmit_base_bytes = in->usage_bytes;
		/* its first resubmitted prompt may climb within a poll: follow it from the start */
		comfy_ws_retry_now(in->ws);
	}
	resubmit_next(in);
}

/* ---- the state machine, every sample ---- */

/* restart_command's exit: action_reap_children journals it (restart_command record) and counts the failures */
static void reap_command(struct instance *in, uint64_t now_ns)
{
	int failed = action_reap_children(), workers = 0;

	if (!in->rs_command_pid || kill(in->rs_command_pid, 0) == 0)
		return;
	in->rs_command_pid = 0;
	if (!failed)
		return;
	if (in->rs == RS_STOPPING && old_server_alive(in)) {
		/* the command failed and the server still runs: stop it ourselves now, SIGKILL after the grace */
		journal_restart(in, LOG_ERR, "command_failed", "restart_command failed; SIGTERM to pid %d, SIGKILL after "
				"%llu ms", in->rs_old_pid, (unsigned long long)in->ic->stop_grace_ms);
		signal_old_tree(in, SIGTERM, &workers);
		in->rs_deadline_ns = now_ns + in->ic->stop_grace_ms * NSEC_PER_MSEC;
	} else {
		journal_restart(in, LOG_ERR, "command_failed", "restart_command failed");
	}
}

uint64_t restart_grace_left_ns(const struct instance *in, uint64_t now_ns)
{
	if (in->rs != RS_STOPPING || in->rs_killed || !in->rs_old_pid)
		return 0;
	return in->rs_deadline_ns > now_ns ? in->rs_deadline_ns - now_ns : 0;
}

void restart_escalate(struct instance *in, uint64_t now_ns, const char *why)
{
	int workers = 0;

	kill_old_tree(in, &workers);
	in->rs_killed = true;
	in->rs_giveup_ns = now_ns + 5 * NSEC_PER_SEC;
	journal_restart(in, LOG_WARNING, "escalated", "pid %d %s: SIGKILL + process_mrelease to it and %d workers",
			in->rs_old_pid, why, workers);
}

void restart_step(struct instance *in, uint64_t now_ns)
{
	reap_command(in, now_ns);
	if (in->rs == RS_STARTING && in->rs_answered)
		in->rs = RS_IDLE;
	in->rs_answered = false;
	if (in->rs == RS_IDLE && in->snap.stop == SNAP_STOP_NONE)
		return;
	instance_locate_server(in, now_ns);
	if (in->rs == RS_SAVING && old_server_alive(in))
		return; /* save_done goes on */
	if (in->rs == RS_DRAINING && old_server_alive(in)) {
		drain_step(in);
		return;
	}
	if (in->rs == RS_SAVING || in->rs == RS_DRAINING) {
		/* it died while its queue was being saved: what the last /queue reply showed is what it held */
		if (in->snap.stop == SNAP_STOP_NONE)
			in->snap.stop = SNAP_STOP_RESTART;
		in->snap.old_pid = in->rs_old_pid;
		in->snap.old_start_ns = in->rs_old_start_ns;
		snap_persist(in);
		journal_restart(in, LOG_WARNING, "server_died", "pid %d died while its queue was being saved; the %zu "
				"prompts of the last /queue reply are resubmitted to its successor", in->rs_old_pid,
				in->snap.n);
		in->rs = RS_STOPPING; /* gone: the next step moves on to STARTING */
	}
	if (in->rs == RS_STOPPING) {
		if (!old_server_alive(in)) {
			in->rs = RS_STARTING;
			in->rs_deadline_ns = now_ns + in->ic->restart_timeout_ms * NSEC_PER_MSEC;
			/* a last resort stopped it itself: the configured method brings it back (a supervisor does for
			 * signal) */
			if (in->rs_last_resort && in->ic->restart_method == RESTART_COMMAND) {
				pid_t pid = action_spawn_command(in->ic->restart_command, in->ic->name);
				in->rs_command_pid = pid > 0 ? pid : 0;
			} else if (in->rs_last_resort && in->ic->restart_method == RESTART_SYSTEMD) {
				restart_unit(in);
			}
		} else if (!in->rs_killed && now_ns >= in->rs_deadline_ns) {
			char why[64];

			snprintf(why, sizeof(why), "outlived the stop by %llu ms",
				 (unsigned long long)(in->rs_last_resort ? in->ic->last_resort_grace_ms :
									   in->ic->stop_grace_ms));
			restart_escalate(in, now_ns, why);
			return;
		} else if (in->rs_killed && now_ns >= in->rs_giveup_ns) {
			journal_restart(in, LOG_CRIT, "failed", "pid %d survives SIGKILL (stuck in the kernel?); restart given "
					"up, the ladder is live again", in->rs_old_pid);
			restart_abandon(in, now_ns, true);
			return;
		} else {
			return;
		}
	}
	if (in->rs == RS_STARTING && now_ns > in->rs_deadline_ns) {
		journal_restart(in, LOG_ERR, "timeout", "ComfyUI did not come back within %llu ms; the %zu saved prompts "
				"are resubmitted when it answers; the ladder is live meanwhile",
				(unsigned long long)in->ic->restart_timeout_ms, snapshot_pending(&in->snap));
		in->rs = RS_IDLE;
		policy_record_outcome(&in->ps, POLICY_RUNG_RESTART, false, 0, now_ns);
	}
	/* a prompt is owed: to a server other than the one stopped, once it answers */
	if (in->snap.stop == SNAP_STOP_NONE || in->resubmit_busy || !in->server_pid || in->server_gone ||
	    (in->server_pid == in->rs_old_pid && in->server_start_ns == in->rs_old_start_ns) || !in->d->curl)
		return;
	if (start_look(in) == 0) {
		in->resubmit_busy = true;
		if (in->resubmit_pid != in->server_pid || in->resubmit_start_ns != in->server_start_ns) {
			in->resubmit_running_id[0] = 0;
			in->resubmit_ran_before = false;
			in->resubmit_running_first = false;
		}
		in->resubmit_pid = in->server_pid;
		in->resubmit_start_ns = in->server_start_ns;
	}
}
