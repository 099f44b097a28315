/* SPDX-License-Identifier: GPL-2.0 */
/* Decides which processes are leftovers of dead ComfyUI runs and safe to reap, and plans the SIGTERM -> SIGKILL reap
 * (deaths: death.h; crash loops: crashloop.h). Pure (no I/O, no clock, no logging): the daemon fills the inputs from
 * its process table and does the signalling, so the rules that decide what gets killed can be tested exhaustively.
 *
 * Times: every *_ns is on one boot-relative clock chosen by the caller (start times from /proc/PID/stat converted to
 * ns, and "now" on the same clock); they are only ever compared with each other.
 * Strings in the records are fixed arrays that must be NUL-terminated; a record that is not is rejected (-EINVAL) and
 * gets a verdict that never leads to a kill. */
#ifndef OOMSENTRY_ORPHANS_H
#define OOMSENTRY_ORPHANS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORPHAN_COMM_LEN 16
#define ORPHAN_CMDLINE_LEN 512
#define ORPHAN_PATH_LEN 256
#define ORPHAN_TEXT_LEN 320
#define ORPHAN_SCOPE_MAX 8         /* entries per scope list */
#define ORPHAN_PATTERN_LEN 64      /* cmdline substring pattern, NUL included */
#define ORPHAN_COMFY_DEFAULT_PORT 8188 /* ComfyUI's port when its cmdline has no --port */
#define ORPHAN_DEFAULT_MIN_AGE_NS (10ULL * 1000000000ULL)
#define ORPHAN_REAP_DEFAULT_GRACE_NS (5ULL * 1000000000ULL)
#define ORPHAN_REAP_DEFAULT_KILL_WAIT_NS (5ULL * 1000000000ULL)

/* One process as the daemon's process table sees it. All pids in the daemon's pid namespace. */
struct orphan_proc {
	int32_t pid;
	int32_t ppid;
	int32_t pgid;
	int32_t sid;
	uint32_t uid;
	uint64_t start_ns; /* boot-relative start time; 0 = unknown (such a process is never an orphan: no pid-reuse guard) */
	char comm[ORPHAN_COMM_LEN];
	char cmdline[ORPHAN_CMDLINE_LEN]; /* argv joined by single spaces (the /proc NULs replaced), may be truncated */
	char cwd[ORPHAN_PATH_LEN];
	char exe[ORPHAN_PATH_LEN];
	char cgroup[ORPHAN_PATH_LEN]; /* memory cgroup path, e.g. "/system.slice/comfyui.service" */
	uint64_t rss_bytes;
	uint16_t listen_port; /* the instance's port, on which it holds a listening socket (any address); 0 = none */
	bool serves_url_address; /* one of those sockets is on the URL's address or the wildcard */
	bool was_child_of_server; /* forked (directly or transitively) from a server of THIS instance that died */
	bool group_leader_alive;  /* its process group's leader (pid == pgid) still runs: its family is not gone */
	bool lineage_persisted;   /* that lineage comes from the state a daemon persisted, not from this run */
	bool other_instance;      /* forked from another instance's server or holds its port: never this instance's orphan */
	bool reparented;          /* its ppid is now 1 or a known subreaper while its original parent is dead */
	bool descends_from_live_server; /* forked (directly or transitively) from a server in the live list */
	bool is_self;        /* oomsentry itself (also matched by orphan_scope.self_pid) */
	bool is_self_parent; /* oomsentry's parent (also matched by orphan_scope.self_ppid) */
};

/* A ComfyUI server the daemon currently believes alive. Pass every instance whose process is known, even before its
 * HTTP API answers, or a starting server may look like a port holder. */
struct orphan_server {
	int32_t pid;  /* > 0 */
	int32_t ppid; /* 0 = unknown; its parent, pgid and session leader are never reaped */
	int32_t pgid;
	int32_t sid;
	uint64_t start_ns;
	char cwd[ORPHAN_PATH_LEN];
	char cmdline[ORPHAN_CMDLINE_LEN];
	uint16_t port; /* 0 = unknown */
};

/* The instance's own server, live or the last one known (persisted lineage): what a process found by a heuristic
 * class must share with it before it may be reaped. Unknown (known = false): heuristic finds are only reported. */
struct orphan_home {
	bool known;
	bool alive; /* it is the live server: OLDER_INSTANCE compares start times with it */
	int32_t pid;
	uint64_t start_ns;
	uint32_t uid;
	uint16_t port; /* the URL's port; 0 = unknown */
	char exe[ORPHAN_PATH_LEN];
	char cwd[ORPHAN_PATH_LEN];
	char cgroup[ORPHAN_PATH_LEN];
	char cmdline[ORPHAN_CMDLINE_LEN];
};

/* Which processes the reaper may look at at all; every configured list narrows (AND). A process must match a comm
 * prefix (case-insensitive) when any is set and a cmdline substring when any is set; with neither set nothing is in
 * scope. Cgroup prefixes match whole path components ("/a/b" matches "/a/b" and "/a/b/c", not "/a/bc"). */
struct orphan_scope {
	char comm_prefixes[ORPHAN_SCOPE_MAX][ORPHAN_COMM_LEN];
	size_t n_comm_prefixes;
	char cmdline_patterns[ORPHAN_SCOPE_MAX][ORPHAN_PATTERN_LEN];
	size_t n_cmdline_patterns;
	char cgroup_prefixes[ORPHAN_SCOPE_MAX][ORPHAN_PATH_LEN];
	size_t n_cgroup_prefixes;
	int64_t uid;            /* -1: any user */
	uint64_t min_rss_bytes; /* smaller processes are not worth a kill */
	uint64_t min_age_ns;    /* younger processes are left alone: they may be a server starting up */
	int32_t self_pid;       /* oomsentry; 0 = unknown */
	int32_t self_ppid;      /* oomsentry's parent; 0 = unknown */
	struct orphan_home home;
};

/* Defaults: comm prefixes "python" and "comfy", no cmdline/cgroup restriction, any uid, min_rss 0,
 * min_age ORPHAN_DEFAULT_MIN_AGE_NS. To replace the default prefixes set n_comm_prefixes = 0 before adding. */
void orphan_scope_init(struct orphan_scope *scope, int32_t self_pid, int32_t self_ppid);
/* Append to a scope list. 0, -EINVAL (NULL or empty), -ENAMETOOLONG (does not fit the field), -ENOSPC (list full). */
int orphan_scope_add_comm_prefix(struct orphan_scope *scope, const char *prefix);
int orphan_scope_add_cmdline_pattern(struct orphan_scope *scope, const char *pattern);
int orphan_scope_add_cgroup_prefix(struct orphan_scope *scope, const char *prefix);
/* The default scope is the server's: with home known, an unset uid (-1) becomes the home's uid and an empty cgroup
 * list the home's cgroup. Returns 0, -EINVAL (NULL), or what orphan_scope_add_cgroup_prefix returns. */
int orphan_scope_default_to_home(struct orphan_scope *scope);

enum orphan_verdict_kind {
	ORPHAN_VERDICT_NOT_IN_SCOPE = 0, /* outside the scope (comm/cmdline/cgroup/uid/rss/age), or an invalid record */
	ORPHAN_VERDICT_PROTECTED,        /* pid 1, oomsentry, its parent, a kernel thread, a live server */
	ORPHAN_VERDICT_NOT_ORPHAN,       /* in scope, but no reason to reap it */
	ORPHAN_VERDICT_ORPHAN,           /* reapable; see reason */
	ORPHAN_VERDICT_SUSPECT,          /* a heuristic class matched, but not everything the home shares: reported,
					  * never reaped; text says which check failed */
};

enum orphan_reason {
	ORPHAN_REASON_NONE = 0,
	ORPHAN_REASON_PARENT_DIED,    /* child of a server that died, reparented to init or a subreaper */
	ORPHAN_REASON_OLDER_INSTANCE, /* same cmdline or same script+cwd+port as a live server, started before it */
	ORPHAN_REASON_PORT_HOLDER,    /* holds a ComfyUI port without being its live server (or while it is down) */
	ORPHAN_REASON_STALE_WORKER,   /* multiprocessing worker whose parent is gone */
	ORPHAN_REASON_REPARENTED,     /* reparented to init or a subreaper, not a group or session leader (seeds/004) */
};

struct orphan_verdict {
	int32_t pid;
	uint64_t start_ns; /* copied from the record: the identity to re-check just before signalling */
	enum orphan_verdict_kind verdict;
	enum orphan_reason reason; /* ORPHAN_REASON_NONE unless verdict is ORPHAN or SUSPECT */
	int32_t server_pid;        /* the live server this verdict refers to; 0 when none (e.g. port held, server down) */
	uint64_t rss_bytes;        /* what a reap would give back, as recorded */
	char text[ORPHAN_TEXT_LEN]; /* one human sentence explaining the verdict, control characters replaced */
};

/* Classifies one process. Never an orphan: pid 1, oomsentry or its parent, anything out of scope, a live server (of
 * any instance), its parent/group/session leader, anything in a live server's lineage, process group or session, or
 * in the lineage of another instance's server. Reapable by proof: PARENT_DIED (lineage from a dead server of this
 * instance). The heuristic classes (OLDER_INSTANCE against the live home, PORT_HOLDER, STALE_WORKER, REPARENTED) are
 * ORPHAN only when the process shares the home's uid, cgroup (or one below it), exe and working directory and any
 * socket it holds on the port serves the URL's address; otherwise SUSPECT. A reparented group or session leader
 * with no other reason is NOT_ORPHAN (a user's own job started from a shell).
 * servers may be NULL when nservers is 0. Returns 0, or -EINVAL on a NULL argument or invalid record/scope/server, in which case *ret (if ret is not
 * NULL) is still filled, with ORPHAN_VERDICT_NOT_IN_SCOPE and the problem in text. */
int orphan_classify(const struct orphan_scope *scope, const struct orphan_server *servers, size_t nservers,
		    const struct orphan_proc *p, uint64_t now_ns, struct orphan_verdict *ret);

/* Classifies procs[0..nprocs) into ret_verdicts[0..nprocs) (caller-allocated). Invalid records get a safe verdict and
 * do not fail the scan. Returns the number of orphans, with their summed rss (saturating) in *ret_reapable_bytes
 * (may be NULL); -EINVAL on NULL arrays or an invalid scope/server (then every verdict is NOT_IN_SCOPE),
 * -E2BIG when nprocs exceeds INT_MAX. */
int orphan_scan(const struct orphan_scope *scope, const struct orphan_server *servers, size_t nservers,
		const struct orphan_proc *procs, size_t nprocs, uint64_t now_ns, struct orphan_verdict *ret_verdicts,
		uint64_t *ret_reapable_bytes);

/* Short stable names for journal fields: "not-in-scope", "protected", "not-orphan", "orphan", "suspect"; "none",
 * "parent-died", "older-instance", "port-holder", "stale-worker", "reparented". "invalid" for values out of range. */
const char *orphan_verdict_kind_str(enum orphan_verdict_kind v);
const char *orphan_reason_str(enum orphan_reason r);

/* ---- reaping ---- */

/* A process identity that survives pid reuse: the same pid with another start time is another process. */
struct orphan_identity {
	int32_t pid;
	uint64_t start_ns; /* 0 = unknown */
};

/* True only when both are non-NULL, pid > 0, start_ns known (non-zero), and pid and start_ns are equal. Anything
 * unknown reads as "not the same" so that a doubt never turns into a signal. */
bool orphan_same_process(const struct orphan_identity *a, const struct orphan_identity *b);

enum orphan_reap_state {
	ORPHAN_REAP_PENDING = 0, /* nothing sent yet */
	ORPHAN_REAP_TERM_SENT,
	ORPHAN_REAP_KILL_SENT,
	ORPHAN_REAP_DONE,
};

/* What the caller must do now. */
enum orphan_reap_action {
	ORPHAN_REAP_WAIT = 0,     /* nothing; call again at *ret_wake_ns or when the process exits */
	ORPHAN_REAP_SEND_SIGTERM, /* signal the target now (pidfd) and report the result */
	ORPHAN_REAP_SEND_SIGKILL,
	ORPHAN_REAP_FINISHED,     /* stop; see outcome */
};

enum orphan_reap_outcome {
	ORPHAN_REAP_IN_PROGRESS = 0,
	ORPHAN_REAP_EXITED_AFTER_SIGTERM,
	ORPHAN_REAP_KILLED,     /* gone after SIGKILL */
	ORPHAN_REAP_VANISHED,   /* gone before any signal reached it (exited between scan and signal) */
	ORPHAN_REAP_PID_REUSED, /* the pid now names another process: nothing was sent */
	ORPHAN_REAP_FAILED,     /* signalling failed; error holds the negative errno */
	ORPHAN_REAP_STUCK,      /* still there kill_wait_ns after SIGKILL (D state?) */
};

struct orphan_reap {
	struct orphan_identity target;
	enum orphan_reap_state state;
	enum orphan_reap_outcome outcome;
	int error; /* negative errno when outcome is ORPHAN_REAP_FAILED, else 0 */
	uint64_t grace_ns;     /* SIGTERM -> SIGKILL */
	uint64_t kill_wait_ns; /* SIGKILL -> give up */
	uint64_t term_sent_ns;
	uint64_t kill_sent_ns;
};

/* grace_ns 0 means ORPHAN_REAP_DEFAULT_GRACE_NS. 0, or -EINVAL (NULL, pid <= 1, unknown start time). */
int orphan_reap_init(struct orphan_reap *r, const struct orphan_identity *target, uint64_t grace_ns);

/* Advances the reap of one process. Just before calling, the caller re-reads the process: seen = its current pid and
 * start time, or NULL when it is gone (no /proc entry, or a zombie). The machine never asks for a signal unless
 * orphan_same_process(target, seen) holds. SEND_* moves the state as if the signal was sent; the caller then reports
 * the result with orphan_reap_signal_result(). On WAIT, *ret_wake_ns (may be NULL) is when to call again.
 * Returns 0, or -EINVAL (NULL r/ret_action, corrupt state; then the action is FINISHED with outcome FAILED). */
int orphan_reap_next_step(struct orphan_reap *r, uint64_t now_ns, const struct orphan_identity *seen,
			  enum orphan_reap_action *ret_action, uint64_t *ret_wake_ns);

/* The result of the last SEND_*: 0 (sent), -ESRCH (the process exited first: ends the reap cleanly) or another
 * negative errno (ends it as FAILED; no SIGKILL follows a failed SIGTERM). Returns 0, or -EINVAL when no signal was
 * pending or r is NULL. */
int orphan_reap_signal_result(struct orphan_reap *r, int signal_rc);

const char *orphan_reap_outcome_str(enum orphan_reap_outcome o);

#endif
