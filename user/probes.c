// SPDX-License-Identifier: GPL-2.0
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include "evrecord.h"
#include "log.h"
#include "probes.h"
#include "procfs.h"
#include "probe_variants.h"
#include "procfs-read.h"
#include "oomsentry.skel.h"

struct probes {
	struct oomsentry_bpf *skel;
	struct ring_buffer *rb;
	probes_event_fn fn;
	void *ctx;
	struct bpf_link *links[PV_N];
	int n_links;
	int rss_link; /* index in links of the rss_stat probe's link (NULL while detached), -1 none */
	struct bpf_program *rss_prog;
	int n_attached;
	int n_total;
	char summary[1024];
};

static int libbpf_verbose;
static char load_failed_prog[64], load_failed_msg[200];
static void note_failed_prog(const char *line);

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	if (level == LIBBPF_WARN) {
		/* the verifier's log comes as one message: room for its end, where the reason is */
		static char warn[16384];
		va_list aq;

		va_copy(aq, ap);
		vsnprintf(warn, sizeof(warn), fmt, aq);
		va_end(aq);
		note_failed_prog(warn);
	}
	/* libbpf explains every failed attach at length; our own error line says what matters */
	if (level == LIBBPF_DEBUG && libbpf_verbose < 2)
		return 0;
	if (level != LIBBPF_DEBUG && libbpf_verbose < 1)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = 0;
	log_debug("libbpf: %s", buf);
	return 0;
}

static int on_sample(void *ctx, void *data, size_t size)
{
	struct probes *p = ctx;
	struct os_event e;

	/* a record shorter than its type's length would mean the object and this binary disagree on the ABI */
	if (!evrecord_decode(data, size, &e))
		return 0;
	return p->fn(p->ctx, &e);
}

static int enum_value(const struct btf *btf, const char *type, const char *name)
{
	int id = btf__find_by_name_kind(btf, type, BTF_KIND_ENUM);
	const struct btf_type *t;
	const struct btf_enum *e;

	if (id < 0)
		return -1;
	t = btf__type_by_id(btf, id);
	e = btf_enum(t);
	for (int i = 0; i < btf_vlen(t); i++, e++)
		if (!strcmp(btf__name_by_offset(btf, e->name_off), name))
			return e->val;
	return -1;
}

/* Classic tp/ programs need tracefs to resolve tracepoint ids; mount it when nobody has. */
static bool ensure_tracefs(void)
{
	struct stat st;

	if (stat("/sys/kernel/tracing/events", &st) == 0 || stat("/sys/kernel/debug/tracing/events", &st) == 0)
		return true;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0) {
		log_notice("mounted tracefs on /sys/kernel/tracing for the mmap probes");
		return true;
	}
	log_warn_errno(-errno, "cannot mount tracefs on /sys/kernel/tracing; mmap/munmap probes disabled");
	return false;
}

static void set_rodata(struct oomsentry_bpf *skel, const struct probes_config *pc)
{
	struct pidns_info ns = {};
	struct btf *btf;
	int n;

	skel->rodata->rss_step_bytes = pc->rss_step_bytes;
	skel->rodata->mmap_min_bytes = pc->mmap_min_bytes;
	skel->rodata->reclaim_interval_ns = pc->reclaim_interval_ns;
	n = pc->n_comm_prefixes < OS_MAX_COMM_PREFIXES ? pc->n_comm_prefixes : OS_MAX_COMM_PREFIXES;
	for (int i = 0; i < n; i++) {
		size_t len = strnlen(pc->comm_prefixes[i], OS_COMM_PREFIX_LEN - 1);

		memcpy((char *)skel->rodata->comm_prefixes[i], pc->comm_prefixes[i], len);
		skel->rodata->comm_prefix_lens[i] = (__u32)len;
	}
	skel->rodata->n_comm_prefixes = (__u32)n;
	skel->rodata->n_cgroups = (__u32)pc->n_filter_cgroups;
	if (procfs_self_pidns(&ns) == 0) {
		/* PROC_PID_INIT_INO: the initial namespace has a fixed inode number */
		skel->rodata->pidns_is_init = ns.ino == 0xEFFFFFFCULL;
		skel->rodata->pidns_ino = ns.ino;
		skel->rodata->pidns_dev = ns.dev;
	} else {
		log_warn("cannot read this process's pid namespace; assuming the initial one");
	}
	btf = btf__load_vmlinux_btf();
	if (btf) {
		skel->rodata->pgscan_direct_item = enum_value(btf, "vm_event_item", "PGSCAN_DIRECT");
		skel->rodata->oom_kill_item = enum_value(btf, "vm_event_item", "OOM_KILL");
		btf__free(btf);
	}
}

/* The first parameter after the context of btf_trace_<tp> (typedef -> pointer -> function prototype). */
static enum pv_arg tp_first_arg(const struct btf *btf, const char *tp)
{
	char name[96];
	const struct btf_type *t;
	const struct btf_param *params;
	int id;

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	id = btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF);
	if (id < 0)
		return PV_ARG_UNKNOWN;
	t = btf__type_by_id(btf, btf__resolve_type(btf, id));
	if (!t || !btf_is_ptr(t))
		return PV_ARG_UNKNOWN;
	t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_func_proto(t) || btf_vlen(t) < 2)
		return PV_ARG_UNKNOWN;
	params = btf_params(t);
	t = btf__type_by_id(btf, btf__resolve_type(btf, params[1].type));
	if (!t)
		return PV_ARG_UNKNOWN;
	if (btf_is_int(t))
		return PV_ARG_INT;
	if (btf_is_ptr(t)) {
		t = btf__type_by_id(btf, btf__resolve_type(btf, t->type));
		if (t && btf_is_struct(t) && !strcmp(btf__name_by_offset(btf, t->name_off), "task_struct"))
			return PV_ARG_TASK;
	}
	return PV_ARG_UNKNOWN;
}

/* The type of member `name` of a struct, looking into anonymous structs and unions (mm_struct wraps its fields in
 * one); 0 when there is none. */
static int member_type(const struct btf *btf, const struct btf_type *t, const char *name, int depth)
{
	const struct btf_member *m = btf_members(t);

	for (int i = 0; i < btf_vlen(t); i++, m++) {
		const char *mn = btf__name_by_offset(btf, m->name_off);
		const struct btf_type *mt;

		if (mn && !strcmp(mn, name))
			return (int)m->type;
		if (mn && mn[0])
			continue;
		mt = btf__type_by_id(btf, btf__resolve_type(btf, m->type));
		if (mt && depth < 4 && (btf_is_struct(mt) || btf_is_union(mt))) {
			int r = member_type(btf, mt, name, depth + 1);

			if (r > 0)
				return r;
		}
	}
	return 0;
}

static bool rss_stat_is_percpu_array(const struct btf *btf)
{
	int id = btf__find_by_name_kind(btf, "mm_struct", BTF_KIND_STRUCT);
	const struct btf_type *t;

	if (id < 0)
		return false;
	id = member_type(btf, btf__type_by_id(btf, id), "rss_stat", 0);
	if (id <= 0)
		return false;
	t = btf__type_by_id(btf, btf__resolve_type(btf, id));
	if (!t || !btf_is_array(t))
		return false;
	t = btf__type_by_id(btf, btf__resolve_type(btf, btf_array(t)->type));
	return t && btf_is_struct(t) && !strcmp(btf__name_by_offset(btf, t->name_off), "percpu_counter");
}

static void btf_facts(const struct btf *btf, bool memcg_events, struct pv_facts *f)
{
	char name[96];

	memset(f, 0, sizeof(*f));
	for (int i = 0; i < PV_TP_N; i++) {
		snprintf(name, sizeof(name), "btf_trace_%s", pv_tp_names[i]);
		f->tp[i] = btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF) >= 0;
	}
	f->mark_victim = tp_first_arg(btf, "mark_victim");
	f->mm_rss_stat_struct = btf__find_by_name_kind(btf, "mm_rss_stat", BTF_KIND_STRUCT) >= 0;
	f->rss_stat_percpu = rss_stat_is_percpu_array(btf);
	f->want_memcg_events = memcg_events;
}

/* The line of a verifier log that says why: libbpf's own note on a CO-RE relocation that found nothing in this
 * kernel, else the verifier's last line before "-- END PROG LOAD LOG --". */
static void log_reason(const char *log, char *out, size_t size)
{
	const char *end = strstr(log, "-- END PROG LOAD LOG --"), *p, *line = NULL;
	size_t n;

	p = strstr(log, "failed to resolve CO-RE relocation");
	if (p && (!end || p < end)) {
		line = p;
		end = strchr(p, '\n');
		if (!end)
			end = p + strlen(p);
	} else if (end) {
		/* back over the newline(s) to the start of the last non-empty line; older kernels end the log with the
		 * verifier's statistics ("processed 43 insns ...", "verification time ...", "stack depth ..."), which say
		 * nothing about why: the reason is the line before them */
		p = end;
		for (int skip = 0; skip < 4 && p > log; skip++) {
			while (p > log && (p[-1] == '\n' || p[-1] == ' '))
				p--;
			end = p;
			while (p > log && p[-1] != '\n')
				p--;
			line = p;
			if (strncmp(line, "processed ", 10) && strncmp(line, "verification time", 17) &&
			    strncmp(line, "stack depth", 11))
				break;
		}
	}
	if (!line || end <= line)
		return;
	n = (size_t)(end - line);
	if (n >= size)
		n = size - 1;
	memcpy(out, line, n);
	out[n] = 0;
}

/* libbpf names the program that failed in its warnings ("prog 'handle_rss_stat': BPF program load failed: ...",
 * then its verifier log; "prog 'x': failed to find kernel BTF type ID of 'y'"): remember the first one of the current
 * load attempt, with the most telling reason it gives. */
static void note_failed_prog(const char *line)
{
	const char *s = strstr(line, "prog '"), *e;
	size_t n;

	if (!s)
		return;
	s += 6;
	e = strchr(s, '\'');
	if (!e || (n = (size_t)(e - s)) >= sizeof(load_failed_prog))
		return;
	if (load_failed_prog[0]) {
		/* a later message about the same program: its verifier log says more than "load failed" */
		if (strncmp(load_failed_prog, s, n) || load_failed_prog[n] || !strstr(e, "BEGIN PROG LOAD LOG"))
			return;
		log_reason(e, load_failed_msg, sizeof(load_failed_msg));
		return;
	}
	memcpy(load_failed_prog, s, n);
	load_failed_prog[n] = 0;
	e += 2;
	while (*e == ' ')
		e++;
	snprintf(load_failed_msg, sizeof(load_failed_msg), "%s", e);
	n = strcspn(load_failed_msg, "\n");
	load_failed_msg[n] = 0;
}

static void append(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

/* Opens and loads the object with the chosen programs; a program the kernel still refuses is switched off with its
 * reason and the load retried, so that one program never takes the others down. */
static int load_object(struct probes *p, const struct probes_config *pc, struct pv_choice *c, const char *why[PV_N])
{
	static char reasons[PV_N][160];
	int r = -EINVAL;

	for (int attempt = 0; attempt <= PV_N; attempt++) {
		p->skel = oomsentry_bpf__open();
		if (!p->skel) {
			r = -errno;
			log_error_errno(r, "cannot open the BPF object");
			return r;
		}
		set_rodata(p->skel, pc);
		if (pc->ring_bytes && bpf_map__set_max_entries(p->skel->maps.rb, (__u32)pc->ring_bytes) < 0)
			log_warn("cannot size the BPF ring buffer to %llu bytes; keeping the default",
				 (unsigned long long)pc->ring_bytes);
		for (int i = 0; i < PV_N; i++) {
			struct bpf_program *prog = bpf_object__find_program_by_name(p->skel->obj, pv_progs[i].prog);

			if (prog)
				bpf_program__set_autoload(prog, c->load[i]);
		}
		load_failed_prog[0] = load_failed_msg[0] = 0;
		r = oomsentry_bpf__load(p->skel);
		if (!r)
			return 0;
		int bad = pv_prog_by_name(load_failed_prog);

		oomsentry_bpf__destroy(p->skel);
		p->skel = NULL;
		if (bad < 0 || !c->load[bad]) {
			log_error_errno(r, "cannot load the BPF programs into the kernel (needs BTF at /sys/kernel/btf/vmlinux "
					   "and CAP_BPF + CAP_PERFMON)%s%s", load_failed_msg[0] ? ": " : "", load_failed_msg);
			return r;
		}
		snprintf(reasons[bad], sizeof(reasons[bad]), "the kernel refused it: %s", load_failed_msg);
		log_warn("the %s probe (%s) cannot load on this kernel: %s; loading the others without it",
			 pv_progs[bad].what, pv_progs[bad].prog, load_failed_msg);
		c->load[bad] = false;
		why[bad] = reasons[bad];
	}
	return r;
}

int probes_start(const struct probes_config *pc, probes_event_fn fn, void *ctx, struct probes **ret)
{
	struct probes *p;
	struct pv_facts facts;
	struct pv_choice choice;
	const char *why[PV_N];
	bool attached[PV_N] = { false };
	bool tracefs_ok = true, tracefs_tried = false;
	char missing[640] = "", essentials[128];
	struct btf *btf;
	int r;

	libbpf_verbose = pc->verbose;
	libbpf_set_print(libbpf_print);
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->fn = fn;
	p->ctx = ctx;
	p->rss_link = -1;

	btf = btf__load_vmlinux_btf();
	if (!btf) {
		r = -errno;
		log_error_errno(r, "cannot read the kernel's BTF (/sys/kernel/btf/vmlinux): the BPF probes need it");
		goto fail;
	}
	btf_facts(btf, pc->memcg_events, &facts);
	btf__free(btf);
	pv_choose(&facts, &choice);
	for (int i = 0; i < PV_N; i++)
		why[i] = choice.skip_reason[i];

	r = load_object(p, pc, &choice, why);
	if (r)
		goto fail;
	for (int i = 0; i < pc->n_filter_cgroups; i++) {
		__u8 one = 1;
		bpf_map__update_elem(p->skel->maps.filter_cgroups, &pc->filter_cgroup_ids[i], sizeof(__u64), &one,
				     sizeof(one), BPF_ANY);
	}

	for (int i = 0; i < PV_N; i++) {
		struct bpf_program *prog = bpf_object__find_program_by_name(p->skel->obj, pv_progs[i].prog);
		struct bpf_link *link;

		if (!choice.counted[i])
			continue;
		p->n_total++;
		if (!prog || !choice.load[i]) {
			append(missing, sizeof(missing), "%s%s: %s", missing[0] ? "; " : "", pv_progs[i].what,
			       why[i] ? why[i] : "not loaded");
			continue;
		}
		if (pv_progs[i].needs_tracefs && !tracefs_tried) {
			tracefs_tried = true;
			tracefs_ok = ensure_tracefs();
		}
		if (pv_progs[i].needs_tracefs && !tracefs_ok) {
			append(missing, sizeof(missing), "%s%s: no tracefs", missing[0] ? "; " : "", pv_progs[i].what);
			continue;
		}
		link = bpf_program__attach(prog);
		if (!link) {
			r = -errno;
			log_warn_errno(r, "cannot attach the %s probe; continuing without it", pv_progs[i].what);
			append(missing, sizeof(missing), "%s%s: attach failed: %s", missing[0] ? "; " : "", pv_progs[i].what,
			       strerror(-r));
			continue;
		}
		if (i == PV_RSS_STAT) {
			p->rss_link = p->n_links;
			p->rss_prog = prog;
		}
		p->links[p->n_links++] = link;
		attached[i] = true;
		p->n_attached++;
	}
	if (pv_missing_essentials(attached, essentials, sizeof(essentials))) {
		log_error("the essential BPF probes are missing on this kernel (%s): %s", essentials, missing);
		r = -ENOENT;
		goto fail;
	}
	snprintf(p->summary, sizeof(p->summary), "%d of %d probes attached%s%s%s%s%s%s%s", p->n_attached, p->n_total,
		 choice.oom_variant ? " (oom victim: " : "", choice.oom_variant ? choice.oom_variant : "",
		 choice.rss_variant ? "; rss: " : "", choice.rss_variant ? choice.rss_variant : "",
		 missing[0] ? "; missing: " : "", missing, choice.oom_variant ? ")" : "");

	p->rb = ring_buffer__new(bpf_map__fd(p->skel->maps.rb), on_sample, p, NULL);
	if (!p->rb) {
		r = -errno;
		log_error_errno(r, "cannot set up the BPF ring buffer");
		goto fail;
	}
	*ret = p;
	return 0;
fail:
	probes_stop(p);
	return r < 0 ? r : -EINVAL;
}

void probes_stop(struct probes *p)
{
	if (!p)
		return;
	ring_buffer__free(p->rb);
	for (int i = 0; i < p->n_links; i++)
		bpf_link__destroy(p->links[i]);
	oomsentry_bpf__destroy(p->skel);
	free(p);
}

int probes_rss_attach(struct probes *p, bool on)
{
	struct bpf_link *link;

	if (p->rss_link < 0 || !!p->links[p->rss_link] == on)
		return 0;
	if (!on) {
		/* the link's release unregisters the program from the tracepoint: faults go back to a patched-out jump */
		bpf_link__destroy(p->links[p->rss_link]);
		p->links[p->rss_link] = NULL;
		return 0;
	}
	link = bpf_program__attach(p->rss_prog);
	if (!link)
		return -errno;
	p->links[p->rss_link] = link;
	return 0;
}

bool probes_rss_attached(const struct probes *p)
{
	return p->rss_link >= 0 && p->links[p->rss_link];
}

int probes_epoll_fd(const struct probes *p)
{
	return ring_buffer__epoll_fd(p->rb);
}

int probes_consume(struct probes *p)
{
	return ring_buffer__consume(p->rb);
}

/* The slot of pid in the kernel's track_filter (events.h), shared through the mmapped .bss; the BPF side changes the
 * same counters with atomic adds, so these are atomic too. Counted after the insertion and after the deletion: a
 * fault in between finds the map first, which is harmless either way. */
static void filter_add(struct probes *p, uint32_t pid, int delta)
{
	__atomic_fetch_add(&p->skel->bss->track_filter[pid & (OS_TRACK_FILTER_SLOTS - 1)], (uint32_t)delta,
			   __ATOMIC_RELAXED);
}

/* pid's slot in tracked_hot (events.h) as it reads now; 0 when read, -errno otherwise */
static int hot_read(struct probes *p, uint32_t pid, uint32_t *slot, struct os_tracked_hot *h)
{
	*slot = pid & (OS_TRACKED_HOT_SLOTS - 1);
	if (bpf_map__lookup_elem(p->skel->maps.tracked_hot, slot, sizeof(*slot), h, sizeof(*h), 0) < 0)
		return -errno;
	return 0;
}

/* Free pid's slot if it holds it, as the BPF side's hot_forget: a copy must not outlive the tracking it copies. The
 * BPF side only fills a free slot and only frees its own, so clearing a slot tagged pid takes nothing from another. */
static void hot_forget(struct probes *p, uint32_t pid)
{
	struct os_tracked_hot h, none = { 0 };
	uint32_t slot;

	if (hot_read(p, pid, &slot, &h) == 0 && h.tgid == pid)
		bpf_map__update_elem(p->skel->maps.tracked_hot, &slot, sizeof(slot), &none, sizeof(none), BPF_ANY);
}

int probes_track(struct probes *p, uint32_t pid, uint32_t flags)
{
	struct os_tracked t = { .flags = flags };

	if (bpf_map__update_elem(p->skel->maps.tracked, &pid, sizeof(pid), &t, sizeof(t), BPF_NOEXIST) < 0)
		return errno == EEXIST ? 0 : -errno;
	hot_forget(p, pid);
	filter_add(p, pid, 1);
	return 0;
}

/* The same step in pid's hot copy, which the rss_stat path reads once it holds its slot (and a fork copies from the
 * hash: both must say it). */
static int hot_set_step(struct probes *p, uint32_t pid, uint64_t step_bytes)
{
	struct os_tracked_hot h;
	uint32_t slot;
	int err = hot_read(p, pid, &slot, &h);

	if (err)
		return err;
	if (h.tgid != pid)
		return 0;
	h.t.step_bytes = step_bytes;
	if (bpf_map__update_elem(p->skel->maps.tracked_hot, &slot, sizeof(slot), &h, sizeof(h), BPF_ANY) < 0)
		return -errno;
	return 0;
}

int probes_set_rss_step(struct probes *p, uint32_t pid, uint64_t step_bytes)
{
	struct os_tracked t;

	if (!p)
		return -ENODEV;
	/* read-modify-write of a value the rss_stat program also writes (last_rss_bytes): a fault racing with it may
	 * have its last_rss_bytes replaced by the one read here, which costs at most one early or late event */
	if (bpf_map__lookup_elem(p->skel->maps.tracked, &pid, sizeof(pid), &t, sizeof(t), 0) < 0)
		return -errno;
	if (t.step_bytes == step_bytes)
		return 0;
	t.step_bytes = step_bytes;
	if (bpf_map__update_elem(p->skel->maps.tracked, &pid, sizeof(pid), &t, sizeof(t), BPF_EXIST) < 0)
		return -errno;
	return hot_set_step(p, pid, step_bytes);
}

int probes_untrack(struct probes *p, uint32_t pid)
{
	if (bpf_map__delete_elem(p->skel->maps.tracked, &pid, sizeof(pid), 0) < 0)
		return errno == ENOENT ? 0 : -errno;
	hot_forget(p, pid);
	filter_add(p, pid, -1);
	return 0;
}

int probes_watch_cgroup(struct probes *p, uint64_t cgroup_id)
{
	__u8 one = 1;

	if (bpf_map__update_elem(p->skel->maps.watched_cgroups, &cgroup_id, sizeof(cgroup_id), &one, sizeof(one),
				 BPF_ANY) < 0)
		return -errno;
	return 0;
}

int probes_read_stats(const struct probes *p, uint64_t ret_stats[OS_STAT_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals;

	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (__u32 i = 0; i < OS_STAT_MAX; i++) {
		ret_stats[i] = 0;
		if (bpf_map__lookup_elem(p->skel->maps.stats, &i, sizeof(i), vals, sizeof(*vals) * (size_t)ncpu, 0) < 0)
			continue;
		for (int c = 0; c < ncpu; c++)
			ret_stats[i] += vals[c];
	}
	free(vals);
	return 0;
}

int probes_read_stat(const struct probes *p, enum os_stat which, uint64_t *ret)
{
	int ncpu = libbpf_num_possible_cpus();
	_cleanup_free_ uint64_t *vals = NULL;
	__u32 key = which;

	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	if (bpf_map__lookup_elem(p->skel->maps.stats, &key, sizeof(key), vals, sizeof(*vals) * (size_t)ncpu, 0) < 0)
		return -errno;
	*ret = 0;
	for (int c = 0; c < ncpu; c++)
		*ret += vals[c];
	return 0;
}

int probes_list_tracked(const struct probes *p, uint32_t **ret)
{
	size_t cap = bpf_map__max_entries(p->skel->maps.tracked), n = 0;
	_cleanup_free_ uint32_t *pids = calloc(cap ? cap : 1, sizeof(*pids));
	uint32_t key, next;
	const void *prev = NULL;

	if (!pids)
		return -ENOMEM;
	/* a key deleted under the walk restarts it from the top (the kernel's rule for hash maps), so a pid may come
	 * twice: the caller skips what it knows; the cap bounds the walk */
	while (n < cap && bpf_map__get_next_key(p->skel->maps.tracked, prev, &next, sizeof(next)) == 0) {
		pids[n++] = next;
		key = next;
		prev = &key;
	}
	*ret = TAKE_PTR(pids);
	return (int)n;
}

const char *probes_summary(const struct probes *p)
{
	return p->summary;
}

void probes_count(const struct probes *p, int *ret_attached, int *ret_total)
{
	*ret_attached = p->n_attached;
	*ret_total = p->n_total;
}
