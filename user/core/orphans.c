// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "common.h"
#include "orphans.h"

/* ---- small string helpers (bounded: records come from /proc and BPF and are not trusted) ---- */

static bool str_ok(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

/* Copies src into dst replacing control characters, so a hostile comm cannot forge lines in the journal. */
static void copy_printable(char *dst, size_t cap, const char *src)
{
	size_t i = 0;

	if (!cap)
		return;
	for (; src[i] && i + 1 < cap; i++)
		dst[i] = ((unsigned char)src[i] < 0x20 || src[i] == 0x7f) ? '?' : src[i];
	dst[i] = '\0';
}

static void set_text(struct orphan_verdict *v, const char *fmt, ...) _printf_(2, 3);
static void set_text(struct orphan_verdict *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->text, sizeof(v->text), fmt, ap);
	va_end(ap);
}

/* Next token of a space-joined cmdline from *pos; returns its length, 0 at the end. */
static size_t next_token(const char *s, size_t *pos, const char **ret_tok)
{
	size_t i = *pos, start;

	while (s[i] == ' ' || s[i] == '\t')
		i++;
	start = i;
	while (s[i] && s[i] != ' ' && s[i] != '\t')
		i++;
	*pos = i;
	*ret_tok = s + start;
	return i - start;
}

static bool tok_eq(const char *tok, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(tok, lit, len) == 0;
}

/* ---- scope ---- */

void orphan_scope_init(struct orphan_scope *scope, int32_t self_pid, int32_t self_ppid)
{
	if (!scope)
		return;
	*scope = (struct orphan_scope){
		.uid = -1,
		.min_age_ns = ORPHAN_DEFAULT_MIN_AGE_NS,
		.self_pid = self_pid,
		.self_ppid = self_ppid,
	};
	(void)orphan_scope_add_comm_prefix(scope, "python");
	(void)orphan_scope_add_comm_prefix(scope, "comfy");
}

static int scope_add(char *slot, size_t cap, size_t *n, const char *s)
{
	size_t len;

	if (!s || !*s)
		return -EINVAL;
	if (*n >= ORPHAN_SCOPE_MAX)
		return -ENOSPC;
	len = strnlen(s, cap);
	if (len >= cap)
		return -ENAMETOOLONG;
	memcpy(slot, s, len + 1);
	(*n)++;
	return 0;
}

int orphan_scope_add_comm_prefix(struct orphan_scope *scope, const char *prefix)
{
	if (!scope)
		return -EINVAL;
	if (scope->n_comm_prefixes >= ORPHAN_SCOPE_MAX)
		return prefix && *prefix ? -ENOSPC : -EINVAL;
	return scope_add(scope->comm_prefixes[scope->n_comm_prefixes], ORPHAN_COMM_LEN, &scope->n_comm_prefixes,
			 prefix);
}

int orphan_scope_add_cmdline_pattern(struct orphan_scope *scope, const char *pattern)
{
	if (!scope)
		return -EINVAL;
	if (scope->n_cmdline_patterns >= ORPHAN_SCOPE_MAX)
		return pattern && *pattern ? -ENOSPC : -EINVAL;
	return scope_add(scope->cmdline_patterns[scope->n_cmdline_patterns], ORPHAN_PATTERN_LEN,
			 &scope->n_cmdline_patterns, pattern);
}

int orphan_scope_add_cgroup_prefix(struct orphan_scope *scope, const char *prefix)
{
	if (!scope)
		return -EINVAL;
	if (scope->n_cgroup_prefixes >= ORPHAN_SCOPE_MAX)
		return prefix && *prefix ? -ENOSPC : -EINVAL;
	return scope_add(scope->cgroup_prefixes[scope->n_cgroup_prefixes], ORPHAN_PATH_LEN, &scope->n_cgroup_prefixes,
			 prefix);
}

static bool scope_valid(const struct orphan_scope *s)
{
	if (s->n_comm_prefixes > ORPHAN_SCOPE_MAX || s->n_cmdline_patterns > ORPHAN_SCOPE_MAX ||
	    s->n_cgroup_prefixes > ORPHAN_SCOPE_MAX || s->uid < -1 || s->uid > UINT32_MAX)
		return false;
	for (size_t i = 0; i < s->n_comm_prefixes; i++)
		if (!str_ok(s->comm_prefixes[i], ORPHAN_COMM_LEN))
			return false;
	for (size_t i = 0; i < s->n_cmdline_patterns; i++)
		if (!str_ok(s->cmdline_patterns[i], ORPHAN_PATTERN_LEN))
			return false;
	for (size_t i = 0; i < s->n_cgroup_prefixes; i++)
		if (!str_ok(s->cgroup_prefixes[i], ORPHAN_PATH_LEN))
			return false;
	if (s->home.known && (!str_ok(s->home.exe, ORPHAN_PATH_LEN) || !str_ok(s->home.cwd, ORPHAN_PATH_LEN) ||
			      !str_ok(s->home.cgroup, ORPHAN_PATH_LEN) ||
			      !str_ok(s->home.cmdline, ORPHAN_CMDLINE_LEN) || s->home.pid <= 0))
		return false;
	return true;
}

int orphan_scope_default_to_home(struct orphan_scope *scope)
{
	if (!scope)
		return -EINVAL;
	if (!scope->home.known)
		return 0;
	if (scope->uid < 0)
		scope->uid = scope->home.uid;
	if (!scope->n_cgroup_prefixes && scope->home.cgroup[0])
		return orphan_scope_add_cgroup_prefix(scope, scope->home.cgroup);
	return 0;
}

static bool cgroup_under(const char *path, const char *prefix)
{
	size_t len = strlen(prefix);

	if (!len || strncmp(path, prefix, len) != 0)
		return false;
	return prefix[len - 1] == '/' || path[len] == '\0' || path[len] == '/';
}

/* Returns NULL when p is in scope, else why not (a static string or one built in buf). */
static const char *scope_reject(const struct orphan_scope *s, const struct orphan_proc *p, uint64_t now_ns,
				char *buf, size_t buflen)
{
	char comm[ORPHAN_COMM_LEN];
	bool ok;

	if (!s->n_comm_prefixes && !s->n_cmdline_patterns)
		return "the scope names no comm prefix or cmdline pattern";
	if (s->n_comm_prefixes) {
		ok = false;
		for (size_t i = 0; i < s->n_comm_prefixes && !ok; i++) {
			size_t len = strlen(s->comm_prefixes[i]);
			ok = len && strncasecmp(p->comm, s->comm_prefixes[i], len) == 0;
		}
		if (!ok) {
			copy_printable(comm, sizeof(comm), p->comm);
			snprintf(buf, buflen, "comm '%s' matches no configured prefix", comm);
			return buf;
		}
	}
	if (s->n_cmdline_patterns) {
		ok = false;
		for (size_t i = 0; i < s->n_cmdline_patterns && !ok; i++)
			ok = s->cmdline_patterns[i][0] && strstr(p->cmdline, s->cmdline_patterns[i]);
		if (!ok)
			return "cmdline matches no configured pattern";
	}
	if (s->n_cgroup_prefixes) {
		ok = false;
		for (size_t i = 0; i < s->n_cgroup_prefixes && !ok; i++)
			ok = cgroup_under(p->cgroup, s->cgroup_prefixes[i]);
		if (!ok)
			return "cgroup outside the configured prefixes";
	}
	if (s->uid >= 0 && (int64_t)p->uid != s->uid) {
		snprintf(buf, buflen, "uid %u is not the configured uid %lld", p->uid, (long long)s->uid);
		return buf;
	}
	if (p->rss_bytes < s->min_rss_bytes) {
		snprintf(buf, buflen, "rss %llu bytes is below the minimum of %llu", (unsigned long long)p->rss_bytes,
			 (unsigned long long)s->min_rss_bytes);
		return buf;
	}
	if (p->start_ns && (now_ns < p->start_ns || now_ns - p->start_ns < s->min_age_ns)) {
		snprintf(buf, buflen, "younger than the minimum age of %llu ms",
			 (unsigned long long)(s->min_age_ns / NSEC_PER_MSEC));
		return buf;
	}
	return NULL;
}

/* ---- classification ---- */

static bool proc_valid(const struct orphan_proc *p)
{
	return p->pid > 0 && p->ppid >= 0 && p->pgid >= 0 && p->sid >= 0 && str_ok(p->comm, sizeof(p->comm)) &&
	       str_ok(p->cmdline, sizeof(p->cmdline)) && str_ok(p->cwd, sizeof(p->cwd)) &&
	       str_ok(p->exe, sizeof(p->exe)) && str_ok(p->cgroup, sizeof(p->cgroup));
}

static bool server_valid(const struct orphan_server *s)
{
	return s->pid > 0 && s->ppid >= 0 && s->pgid >= 0 && s->sid >= 0 && str_ok(s->cwd, sizeof(s->cwd)) &&
	       str_ok(s->cmdline, sizeof(s->cmdline));
}

static bool is_mp_worker(const char *cmdline)
{
	static const char *const markers[] = {
		"multiprocessing.spawn",
		"multiprocessing.forkserver",
		"from multiprocessing",
		"--multiprocessing-fork",
	};

	for (size_t i = 0; i < ARRAY_SIZE(markers); i++)
		if (strstr(cmdline, markers[i]))
			return true;
	return false;
}

/* The port a ComfyUI cmdline serves on: the last --port N / --port=N, ComfyUI's default without one, 0 when
 * unparsable (which then matches nothing). */
static uint32_t cmdline_port(const char *cmdline)
{
	uint32_t port = ORPHAN_COMFY_DEFAULT_PORT;
	const char *tok, *val;
	size_t pos = 0, len, vlen;

	while ((len = next_token(cmdline, &pos, &tok))) {
		if (tok_eq(tok, len, "--port")) {
			vlen = next_token(cmdline, &pos, &val);
		} else if (len > 7 && memcmp(tok, "--port=", 7) == 0) {
			val = tok + 7;
			vlen = len - 7;
		} else {
			continue;
		}
		port = 0;
		if (vlen == 0 || vlen > 5)
			continue;
		for (size_t i = 0; i < vlen; i++) {
			if (val[i] < '0' || val[i] > '9') {
				port = 0;
				break;
			}
			port = port * 10 + (uint32_t)(val[i] - '0');
		}
		if (port > 65535)
			port = 0;
	}
	return port;
}

/* What a cmdline runs, as an absolute-ish key: the python script (or -m module) resolved against cwd, or the
 * executable itself. False when there is none we trust (python -c, stdin, relative path without cwd, too long). */
static bool cmdline_script_key(const char *cmdline, const char *cwd, char *buf, size_t buflen)
{
	const char *tok, *base, *script;
	size_t pos = 0, len, blen, slen;
	bool module = false;
	int n;

	len = next_token(cmdline, &pos, &tok);
	if (!len)
		return false;
	base = memrchr(tok, '/', len);
	base = base ? base + 1 : tok;
	blen = (size_t)(tok + len - base);
	script = tok;
	slen = len;
	if (blen >= 6 && memcmp(base, "python", 6) == 0) {
		script = NULL;
		while ((len = next_token(cmdline, &pos, &tok))) {
			if (tok[0] != '-') {
				script = tok;
				slen = len;
				break;
			}
			if (tok_eq(tok, len, "-c") || tok_eq(tok, len, "-"))
				return false;
			if (tok_eq(tok, len, "-m") || tok_eq(tok, len, "--")) {
				module = tok_eq(tok, len, "-m");
				slen = next_token(cmdline, &pos, &script);
				if (!slen)
					return false;
				break;
			}
			/* options that take the next token as their argument */
			if (tok_eq(tok, len, "-X") || tok_eq(tok, len, "-W") ||
			    tok_eq(tok, len, "--check-hash-based-pycs"))
				if (!next_token(cmdline, &pos, &tok))
					return false;
		}
		if (!script)
			return false;
	}
	if (module) {
		if (!*cwd)
			return false;
		n = snprintf(buf, buflen, "%s:-m %.*s", cwd, (int)slen, script);
	} else if (script[0] == '/') {
		n = snprintf(buf, buflen, "%.*s", (int)slen, script);
	} else {
		while (slen > 2 && script[0] == '.' && script[1] == '/') {
			script += 2;
			slen -= 2;
		}
		if (!*cwd)
			return false;
		n = snprintf(buf, buflen, "%s%s%.*s", cwd, cwd[strlen(cwd) - 1] == '/' ? "" : "/", (int)slen, script);
	}
	return n > 0 && (size_t)n < buflen;
}

/* Does p look like another start of server s? Returns what matched, or NULL. */
static const char *looks_like_server(const struct orphan_proc *p, const struct orphan_home *s)
{
	char pkey[ORPHAN_PATH_LEN + ORPHAN_CMDLINE_LEN + 8], skey[sizeof(pkey)];
	const char *how = NULL;

	if (p->cmdline[0] && strcmp(p->cmdline, s->cmdline) == 0)
		how = "command line";
	else if (cmdline_script_key(p->cmdline, p->cwd, pkey, sizeof(pkey)) &&
		 cmdline_script_key(s->cmdline, s->cwd, skey, sizeof(skey)) && strcmp(pkey, skey) == 0)
		how = "script and working directory";
	if (!how)
		return NULL;
	/* Same install, other port: a different instance the user runs on purpose. */
	if (s->port && cmdline_port(p->cmdline) != s->port)
		return NULL;
	return how;
}

static int classify_heuristic(const struct orphan_scope *scope, const struct orphan_proc *p, bool gone_parent,
			      struct orphan_verdict *ret);

static void verdict(struct orphan_verdict *v, enum orphan_verdict_kind kind, enum orphan_reason reason,
		    int32_t server_pid)
{
	v->verdict = kind;
	v->reason = reason;
	v->server_pid = server_pid;
}

static int classify_valid(const struct orphan_scope *scope, const struct orphan_server *servers, size_t nservers,
			  const struct orphan_proc *p, uint64_t now_ns, struct orphan_verdict *ret)
{
	char why[ORPHAN_TEXT_LEN];
	const char *reject, *how;
	bool gone_parent;

	/* Protected: never reaped whatever else is true. */
	if (p->pid == 1) {
		verdict(ret, ORPHAN_VERDICT_PROTECTED, ORPHAN_REASON_NONE, 0);
		set_text(ret, "pid 1 (init)");
		return 0;
	}
	if (p->is_self || (scope->self_pid > 0 && p->pid == scope->self_pid)) {
		verdict(ret, ORPHAN_VERDICT_PROTECTED, ORPHAN_REASON_NONE, 0);
		set_text(ret, "oomsentry itself");
		return 0;
	}
	if (p->is_self_parent || (scope->self_ppid > 0 && p->pid == scope->self_ppid)) {
		verdict(ret, ORPHAN_VERDICT_PROTECTED, ORPHAN_REASON_NONE, 0);
		set_text(ret, "parent of oomsentry");
		return 0;
	}
	if (!p->exe[0] && !p->cmdline[0]) {
		verdict(ret, ORPHAN_VERDICT_PROTECTED, ORPHAN_REASON_NONE, 0);
		set_text(ret, "kernel thread (no exe, no cmdline)");
		return 0;
	}
	for (size_t i = 0; i < nservers; i++)
		if (p->pid == servers[i].pid) {
			verdict(ret, ORPHAN_VERDICT_PROTECTED, ORPHAN_REASON_NONE, servers[i].pid);
			set_text(ret, "live ComfyUI server");
			return 0;
		}

	reject = scope_reject(scope, p, now_ns, why, sizeof(why));
	if (reject) {
		verdict(ret, ORPHAN_VERDICT_NOT_IN_SCOPE, ORPHAN_REASON_NONE, 0);
		set_text(ret, "not in scope: %s", reject);
		return 0;
	}

	/* Anything tied to a live server belongs to it. The kernel does not hand out a pid still used as a pgid or
	 * sid, so matching those against a live server's pid cannot be a coincidence. */
	if (p->descends_from_live_server) {
		verdict(ret, ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0);
		set_text(ret, "descends from a live ComfyUI server");
		return 0;
	}
	for (size_t i = 0; i < nservers; i++) {
		const struct orphan_server *s = &servers[i];

		if (p->ppid == s->pid || p->pgid == s->pid || p->sid == s->pid)
			how = p->ppid == s->pid ? "child" : p->pgid == s->pid ? "in the process group" : "in the session";
		else if (p->pid == s->ppid || p->pid == s->pgid || p->pid == s->sid)
			how = p->pid == s->ppid ? "parent" : "process group or session leader";
		else
			continue;
		verdict(ret, ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, s->pid);
		set_text(ret, "%s of live ComfyUI server pid %d", how, s->pid);
		return 0;
	}
	if (!p->start_ns) {
		verdict(ret, ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0);
		set_text(ret, "start time unknown: could not be told apart from a recycled pid");
		return 0;
	}

	gone_parent = p->reparented || p->ppid == 1;
	if (p->other_instance) {
		verdict(ret, ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0);
		set_text(ret, "belongs to another instance (its lineage or its port): that instance decides");
		return 0;
	}
	if (p->was_child_of_server && gone_parent) {
		verdict(ret, ORPHAN_VERDICT_ORPHAN, ORPHAN_REASON_PARENT_DIED, 0);
		set_text(ret, "its ComfyUI server died; reparented to pid %d%s", p->ppid,
			 p->lineage_persisted ? " (lineage persisted by the daemon before it stopped)" : "");
		return 0;
	}
	return classify_heuristic(scope, p, gone_parent, ret);
}

/* Why p does not share the home (uid, cgroup, exe, working directory, listen address), or NULL when it does. Two
 * ComfyUI pods on one node, two users' servers on one host, or a second instance all differ in one of them. */
static const char *home_mismatch(const struct orphan_home *h, const struct orphan_proc *p, char *buf, size_t len)
{
	if (!h->known)
		return "the instance's server is not known, so nothing proves it belongs to it";
	if (p->uid != h->uid) {
		snprintf(buf, len, "uid %u differs from the server's uid %u", p->uid, h->uid);
		return buf;
	}
	if (!h->cgroup[0] || !cgroup_under(p->cgroup, h->cgroup))
		return "its cgroup is not the server's";
	if (!h->exe[0] || strcmp(p->exe, h->exe) != 0)
		return "its executable is not the server's";
	if (!h->cwd[0] || strcmp(p->cwd, h->cwd) != 0)
		return "its working directory is not the server's";
	if (p->listen_port && !p->serves_url_address)
		return "it listens on another address than the URL's: another server";
	return NULL;
}

static int classify_heuristic(const struct orphan_scope *scope, const struct orphan_proc *p, bool gone_parent,
			      struct orphan_verdict *ret)
{
	const struct orphan_home *h = &scope->home;
	enum orphan_reason reason = ORPHAN_REASON_NONE;
	char what[ORPHAN_TEXT_LEN], why[ORPHAN_TEXT_LEN];
	const char *how, *mismatch;
	int32_t server_pid = 0;

	/* an older instance that still listens is best described as what it is, not by the port */
	if (h->known && h->alive && h->start_ns && p->start_ns < h->start_ns && (how = looks_like_server(p, h))) {
		reason = ORPHAN_REASON_OLDER_INSTANCE;
		server_pid = h->pid;
		snprintf(what, sizeof(what), "older ComfyUI instance: same %s as live server pid %d, started %llu s before it",
			 how, h->pid, (unsigned long long)((h->start_ns - p->start_ns) / NSEC_PER_SEC));
	} else if (p->listen_port) {
		reason = ORPHAN_REASON_PORT_HOLDER;
		if (h->known && h->alive) {
			server_pid = h->pid;
			snprintf(what, sizeof(what), "holds ComfyUI port %u but is not its live server (pid %d)",
				 p->listen_port, h->pid);
		} else {
			snprintf(what, sizeof(what), "holds ComfyUI port %u while the configured server is down",
				 p->listen_port);
		}
	} else if (is_mp_worker(p->cmdline) && gone_parent) {
		reason = ORPHAN_REASON_STALE_WORKER;
		snprintf(what, sizeof(what), "multiprocessing worker whose parent is gone (reparented to pid %d)", p->ppid);
	} else if (gone_parent && p->pid != p->pgid && p->pid != p->sid && !p->group_leader_alive) {
		/* seeds/004: a server SIGKILLed while no watchdog ran leaves its children to init; unlike a job started
		 * from a shell they lead neither a process group nor a session, and the leader of their group is gone
		 * (a child of a container's init shell has ppid 1 too, but its group leader, that shell, runs) */
		reason = ORPHAN_REASON_REPARENTED;
		snprintf(what, sizeof(what), "reparented to pid %d, its parent is gone, and it leads no process group "
			 "(%d) or session (%d)", p->ppid, p->pgid, p->sid);
	}

	if (reason == ORPHAN_REASON_NONE) {
		verdict(ret, ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0);
		if (p->was_child_of_server)
			set_text(ret, "child of a dead ComfyUI server, but its parent pid %d is alive", p->ppid);
		else if (gone_parent)
			set_text(ret, "reparented to pid %d with no known ComfyUI lineage", p->ppid);
		else
			set_text(ret, "parent pid %d is alive", p->ppid);
		return 0;
	}
	mismatch = home_mismatch(h, p, why, sizeof(why));
	if (!mismatch && reason == ORPHAN_REASON_PORT_HOLDER && !h->alive)
		mismatch = "while no live server is known, whoever serves the port may be the server starting again";
	if (mismatch) {
		verdict(ret, ORPHAN_VERDICT_SUSPECT, reason, server_pid);
		set_text(ret, "%s; not reaped: %s", what, mismatch);
	} else {
		verdict(ret, ORPHAN_VERDICT_ORPHAN, reason, server_pid);
		set_text(ret, "%s; same uid, cgroup, exe and cwd as server pid %d", what, h->pid);
	}
	return 0;
}

static bool servers_valid(const struct orphan_server *servers, size_t nservers)
{
	if (nservers && !servers)
		return false;
	for (size_t i = 0; i < nservers; i++)
		if (!server_valid(&servers[i]))
			return false;
	return true;
}

static void safe_verdict(struct orphan_verdict *v, const struct orphan_proc *p, const char *why)
{
	*v = (struct orphan_verdict){ .verdict = ORPHAN_VERDICT_NOT_IN_SCOPE };
	if (p) {
		v->pid = p->pid;
		v->start_ns = p->start_ns;
		v->rss_bytes = p->rss_bytes;
	}
	set_text(v, "invalid input: %s", why);
}

int orphan_classify(const struct orphan_scope *scope, const struct orphan_server *servers, size_t nservers,
		    const struct orphan_proc *p, uint64_t now_ns, struct orphan_verdict *ret)
{
	if (!ret)
		return -EINVAL;
	if (!scope || !p) {
		safe_verdict(ret, p, "missing scope or process");
		return -EINVAL;
	}
	if (!scope_valid(scope)) {
		safe_verdict(ret, p, "corrupt scope");
		return -EINVAL;
	}
	if (!servers_valid(servers, nservers)) {
		safe_verdict(ret, p, "corrupt live-server record");
		return -EINVAL;
	}
	if (!proc_valid(p)) {
		safe_verdict(ret, p, "corrupt process record");
		return -EINVAL;
	}
	safe_verdict(ret, p, "unclassified");
	return classify_valid(scope, servers, nservers, p, now_ns, ret);
}

int orphan_scan(const struct orphan_scope *scope, const struct orphan_server *servers, size_t nservers,
		const struct orphan_proc *procs, size_t nprocs, uint64_t now_ns, struct orphan_verdict *ret_verdicts,
		uint64_t *ret_reapable_bytes)
{
	uint64_t bytes = 0;
	int count = 0;

	if (ret_reapable_bytes)
		*ret_reapable_bytes = 0;
	if (nprocs && (!procs || !ret_verdicts))
		return -EINVAL;
	if (nprocs > INT_MAX)
		return -E2BIG;
	if (!scope || !scope_valid(scope) || !servers_valid(servers, nservers)) {
		for (size_t i = 0; i < nprocs; i++)
			safe_verdict(&ret_verdicts[i], NULL, "corrupt scope or live-server record");
		return -EINVAL;
	}
	for (size_t i = 0; i < nprocs; i++) {
		if (orphan_classify(scope, servers, nservers, &procs[i], now_ns, &ret_verdicts[i]) < 0)
			continue;
		if (ret_verdicts[i].verdict != ORPHAN_VERDICT_ORPHAN)
			continue;
		count++;
		bytes = procs[i].rss_bytes > UINT64_MAX - bytes ? UINT64_MAX : bytes + procs[i].rss_bytes;
	}
	if (ret_reapable_bytes)
		*ret_reapable_bytes = bytes;
	return count;
}

const char *orphan_verdict_kind_str(enum orphan_verdict_kind v)
{
	switch (v) {
	case ORPHAN_VERDICT_NOT_IN_SCOPE:
		return "not-in-scope";
	case ORPHAN_VERDICT_PROTECTED:
		return "protected";
	case ORPHAN_VERDICT_NOT_ORPHAN:
		return "not-orphan";
	case ORPHAN_VERDICT_ORPHAN:
		return "orphan";
	case ORPHAN_VERDICT_SUSPECT:
		return "suspect";
	}
	return "invalid";
}

const char *orphan_reason_str(enum orphan_reason r)
{
	switch (r) {
	case ORPHAN_REASON_NONE:
		return "none";
	case ORPHAN_REASON_PARENT_DIED:
		return "parent-died";
	case ORPHAN_REASON_OLDER_INSTANCE:
		return "older-instance";
	case ORPHAN_REASON_PORT_HOLDER:
		return "port-holder";
	case ORPHAN_REASON_STALE_WORKER:
		return "stale-worker";
	case ORPHAN_REASON_REPARENTED:
		return "reparented";
	}
	return "invalid";
}

/* ---- reaping ---- */

bool orphan_same_process(const struct orphan_identity *a, const struct orphan_identity *b)
{
	return a && b && a->pid > 0 && a->start_ns && a->pid == b->pid && a->start_ns == b->start_ns;
}

int orphan_reap_init(struct orphan_reap *r, const struct orphan_identity *target, uint64_t grace_ns)
{
	if (!r || !target || target->pid <= 1 || !target->start_ns)
		return -EINVAL;
	*r = (struct orphan_reap){
		.target = *target,
		.state = ORPHAN_REAP_PENDING,
		.grace_ns = grace_ns ? grace_ns : ORPHAN_REAP_DEFAULT_GRACE_NS,
		.kill_wait_ns = ORPHAN_REAP_DEFAULT_KILL_WAIT_NS,
	};
	return 0;
}

static void reap_finish(struct orphan_reap *r, enum orphan_reap_outcome o, int error)
{
	r->state = ORPHAN_REAP_DONE;
	r->outcome = o;
	r->error = error;
}

static uint64_t deadline(uint64_t from, uint64_t delta)
{
	return delta > UINT64_MAX - from ? UINT64_MAX : from + delta;
}

int orphan_reap_next_step(struct orphan_reap *r, uint64_t now_ns, const struct orphan_identity *seen,
			  enum orphan_reap_action *ret_action, uint64_t *ret_wake_ns)
{
	bool same;

	if (ret_wake_ns)
		*ret_wake_ns = 0;
	if (!ret_action)
		return -EINVAL;
	*ret_action = ORPHAN_REAP_FINISHED;
	if (!r)
		return -EINVAL;
	/* Gone and "another process under the same pid" both mean ours has exited; only the first signal differs. */
	same = orphan_same_process(&r->target, seen);

	switch (r->state) {
	case ORPHAN_REAP_PENDING:
		if (!seen)
			reap_finish(r, ORPHAN_REAP_VANISHED, 0);
		else if (!same)
			reap_finish(r, ORPHAN_REAP_PID_REUSED, 0);
		else {
			r->state = ORPHAN_REAP_TERM_SENT;
			r->term_sent_ns = now_ns;
			*ret_action = ORPHAN_REAP_SEND_SIGTERM;
		}
		return 0;
	case ORPHAN_REAP_TERM_SENT:
		if (!same) {
			reap_finish(r, ORPHAN_REAP_EXITED_AFTER_SIGTERM, 0);
		} else if (now_ns < deadline(r->term_sent_ns, r->grace_ns)) {
			*ret_action = ORPHAN_REAP_WAIT;
			if (ret_wake_ns)
				*ret_wake_ns = deadline(r->term_sent_ns, r->grace_ns);
		} else {
			r->state = ORPHAN_REAP_KILL_SENT;
			r->kill_sent_ns = now_ns;
			*ret_action = ORPHAN_REAP_SEND_SIGKILL;
		}
		return 0;
	case ORPHAN_REAP_KILL_SENT:
		if (!same) {
			reap_finish(r, ORPHAN_REAP_KILLED, 0);
		} else if (now_ns < deadline(r->kill_sent_ns, r->kill_wait_ns)) {
			*ret_action = ORPHAN_REAP_WAIT;
			if (ret_wake_ns)
				*ret_wake_ns = deadline(r->kill_sent_ns, r->kill_wait_ns);
		} else {
			reap_finish(r, ORPHAN_REAP_STUCK, 0);
		}
		return 0;
	case ORPHAN_REAP_DONE:
		return 0;
	}
	reap_finish(r, ORPHAN_REAP_FAILED, -EINVAL);
	return -EINVAL;
}

int orphan_reap_signal_result(struct orphan_reap *r, int signal_rc)
{
	if (!r || (r->state != ORPHAN_REAP_TERM_SENT && r->state != ORPHAN_REAP_KILL_SENT))
		return -EINVAL;
	if (signal_rc == 0)
		return 0;
	if (signal_rc == -ESRCH)
		/* Exited before the signal landed: after a SIGTERM that means SIGTERM (or the process) ended it. */
		reap_finish(r, r->state == ORPHAN_REAP_TERM_SENT ? ORPHAN_REAP_VANISHED : ORPHAN_REAP_EXITED_AFTER_SIGTERM,
			    0);
	else
		reap_finish(r, ORPHAN_REAP_FAILED, signal_rc < 0 ? signal_rc : -EINVAL);
	return 0;
}

const char *orphan_reap_outcome_str(enum orphan_reap_outcome o)
{
	switch (o) {
	case ORPHAN_REAP_IN_PROGRESS:
		return "in-progress";
	case ORPHAN_REAP_EXITED_AFTER_SIGTERM:
		return "exited-after-sigterm";
	case ORPHAN_REAP_KILLED:
		return "killed";
	case ORPHAN_REAP_VANISHED:
		return "vanished";
	case ORPHAN_REAP_PID_REUSED:
		return "pid-reused";
	case ORPHAN_REAP_FAILED:
		return "failed";
	case ORPHAN_REAP_STUCK:
		return "stuck";
	}
	return "invalid";
}
