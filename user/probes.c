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
#include "log.h"
#include "probes.h"
#include "procfs.h"
#include "oomsentry.skel.h"

struct probes {
	struct oomsentry_bpf *skel;
	struct ring_buffer *rb;
	probes_event_fn fn;
	void *ctx;
	int n_attached;
	int n_total;
	char summary[512];
};

static int libbpf_verbose;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

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

	/* a short sample would mean the object and this binary disagree on the ABI: never read past it */
	if (size < sizeof(struct os_event))
		return 0;
	return p->fn(p->ctx, data);
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

struct prog_desc {
	struct bpf_program *prog;
	struct bpf_link **link;
	const char *what;
	bool needs_tracefs;
	bool core; /* without it, observing makes no sense */
};

int probes_start(const struct probes_config *pc, probes_event_fn fn, void *ctx, struct probes **ret)
{
	struct probes *p;
	bool tracefs_ok = true, tracefs_tried = false;
	char missing[384] = "";
	int r;

	libbpf_verbose = pc->verbose;
	libbpf_set_print(libbpf_print);
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->fn = fn;
	p->ctx = ctx;

	p->skel = oomsentry_bpf__open();
	if (!p->skel) {
		r = -errno;
		log_error_errno(r, "cannot open the BPF object");
		goto fail;
	}
	set_rodata(p->skel, pc);
	if (!pc->memcg_events)
		bpf_program__set_autoload(p->skel->progs.handle_memcg_events, false);
	r = oomsentry_bpf__load(p->skel);
	if (r) {
		log_error_errno(r, "cannot load the BPF programs into the kernel (needs BTF at /sys/kernel/btf/vmlinux "
				   "and CAP_BPF + CAP_PERFMON)");
		goto fail;
	}
	for (int i = 0; i < pc->n_filter_cgroups; i++) {
		__u8 one = 1;
		bpf_map__update_elem(p->skel->maps.filter_cgroups, &pc->filter_cgroup_ids[i], sizeof(__u64), &one,
				     sizeof(one), BPF_ANY);
	}

	struct prog_desc progs[] = {
		{ p->skel->progs.handle_exec, &p->skel->links.handle_exec, "exec", false, true },
		{ p->skel->progs.handle_fork, &p->skel->links.handle_fork, "fork", false, true },
		{ p->skel->progs.handle_exit, &p->skel->links.handle_exit, "exit", false, true },
		{ p->skel->progs.handle_mark_victim, &p->skel->links.handle_mark_victim, "oom victim", false, true },
		{ p->skel->progs.handle_rss_stat, &p->skel->links.handle_rss_stat, "rss", false, false },
		{ p->skel->progs.handle_memcg_reclaim, &p->skel->links.handle_memcg_reclaim, "memcg reclaim", false, false },
		{ p->skel->progs.handle_direct_reclaim, &p->skel->links.handle_direct_reclaim, "direct reclaim", false, false },
		{ p->skel->progs.handle_memcg_events, &p->skel->links.handle_memcg_events, "memcg events", false, false },
		{ p->skel->progs.handle_enter_mmap, &p->skel->links.handle_enter_mmap, "mmap", true, false },
		{ p->skel->progs.handle_exit_mmap, &p->skel->links.handle_exit_mmap, "mmap exit", true, false },
		{ p->skel->progs.handle_enter_munmap, &p->skel->links.handle_enter_munmap, "munmap", true, false },
	};
	p->n_total = (int)ARRAY_SIZE(progs) - !pc->memcg_events;
	for (size_t i = 0; i < ARRAY_SIZE(progs); i++) {
		struct bpf_link *link;

		if (!bpf_program__autoload(progs[i].prog))
			continue;

		if (progs[i].needs_tracefs && !tracefs_tried) {
			tracefs_tried = true;
			tracefs_ok = ensure_tracefs();
		}
		if (progs[i].needs_tracefs && !tracefs_ok) {
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%s%s (no tracefs)",
				 missing[0] ? ", " : "", progs[i].what);
			continue;
		}
		link = bpf_program__attach(progs[i].prog);
		if (!link) {
			r = -errno;
			if (progs[i].core) {
				log_error_errno(r, "cannot attach the %s probe", progs[i].what);
				goto fail;
			}
			log_warn_errno(r, "cannot attach the %s probe; continuing without it", progs[i].what);
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%s%s", missing[0] ? ", " : "",
				 progs[i].what);
			continue;
		}
		*progs[i].link = link;
		p->n_attached++;
	}
	snprintf(p->summary, sizeof(p->summary), "%d of %d probes attached%s%s%s", p->n_attached, p->n_total,
		 missing[0] ? " (missing: " : "", missing, missing[0] ? ")" : "");

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
	oomsentry_bpf__destroy(p->skel);
	free(p);
}

int probes_epoll_fd(const struct probes *p)
{
	return ring_buffer__epoll_fd(p->rb);
}

int probes_consume(struct probes *p)
{
	return ring_buffer__consume(p->rb);
}

int probes_track(struct probes *p, uint32_t pid, uint32_t flags)
{
	struct os_tracked t = { .flags = flags };

	if (bpf_map__update_elem(p->skel->maps.tracked, &pid, sizeof(pid), &t, sizeof(t), BPF_NOEXIST) < 0 &&
	    errno != EEXIST)
		return -errno;
	return 0;
}

int probes_untrack(struct probes *p, uint32_t pid)
{
	if (bpf_map__delete_elem(p->skel->maps.tracked, &pid, sizeof(pid), 0) < 0 && errno != ENOENT)
		return -errno;
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

const char *probes_summary(const struct probes *p)
{
	return p->summary;
}
