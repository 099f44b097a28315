// SPDX-License-Identifier: GPL-2.0
/* oomsentry kernel side: tracepoints -> one ring buffer of struct os_event records (each as long as its type needs).
 *
 * Everything is filtered here so that untracked work costs one hash lookup: a process is tracked when
 * user space seeded it, when its comm matches a configured prefix at exec, when its parent is tracked at
 * fork, or when it runs in a watched memory cgroup. Pids are reported as seen from the daemon's pid
 * namespace (a sidecar with shareProcessNamespace sees pod pids, not host pids); tasks outside that
 * namespace are invisible. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "oomsentry/events.h"

#define MAX_TRACKED 16384

/* Tunables, set by user space between open and load so that the verifier sees constants. */
const volatile __u64 rss_step_bytes = 64ULL << 20;
const volatile __u64 mmap_min_bytes = 64ULL << 20;
const volatile __u64 reclaim_interval_ns = 1000000000ULL;
const volatile __u32 pidns_is_init = 1; /* the daemon runs in the initial pid namespace */
const volatile __u64 pidns_ino = 0;     /* inode of the daemon's pid namespace: /proc/self/ns/pid */
const volatile __u64 pidns_dev = 0;
const volatile __u32 n_comm_prefixes = 0;
const volatile __u32 n_cgroups = 0;     /* 0: no cgroup filter configured */
const volatile char comm_prefixes[OS_MAX_COMM_PREFIXES][OS_COMM_PREFIX_LEN] = {};
const volatile __u32 comm_prefix_lens[OS_MAX_COMM_PREFIXES] = {};
const volatile int pgscan_direct_item = -1; /* vm_event_item values, resolved by user space from BTF */
const volatile int oom_kill_item = -1;

/* see OS_TRACK_FILTER_SLOTS: a plain global, so the hot path reads it with one load and no map lookup */
__u32 track_filter[OS_TRACK_FILTER_SLOTS] = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} rb SEC(".maps");

/* key: tgid in the daemon's pid namespace */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TRACKED);
	__type(key, __u32);
	__type(value, struct os_tracked);
} tracked SEC(".maps");

/* see OS_TRACKED_HOT_SLOTS: the rss_stat path's copy of a tracked process's os_tracked */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, OS_TRACKED_HOT_SLOTS);
	__type(key, __u32);
	__type(value, struct os_tracked_hot);
} tracked_hot SEC(".maps");

/* key: memory cgroup id; processes starting in these cgroups are tracked (the configured scope) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, __u8);
} filter_cgroups SEC(".maps");

/* key: memory cgroup id whose reclaim and OOM counters matter (where tracked processes live) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} watched_cgroups SEC(".maps");

struct os_rate {
	__u64 count;
	__u64 last_report_ns;
	__u64 suppressed;
};

/* key: memory cgroup id */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct os_rate);
} reclaim_rate SEC(".maps");

struct memcg_key {
	__u64 cgroup_id;
	__u32 item;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct memcg_key);
	__type(value, struct os_rate);
} memcg_counts SEC(".maps");

struct mmap_args {
	__u64 len;
	__u64 prot;
	__u64 flags;
	__s64 fd;
};

/* key: thread id (global), between sys_enter_mmap and sys_exit_mmap */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct mmap_args);
} mmap_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OS_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		(*v)++;
}

/* The pid of a task as numbered in the daemon's namespace; 0 when the task is not visible there.
 * The namespace is found by inode among the task's levels, so the daemon needs no absolute nesting level
 * (a /proc mounted inside the namespace cannot tell it). */
static __always_inline __u32 pid_in_ns(struct pid *pid)
{
	unsigned int level;

	if (!pid)
		return 0;
	level = BPF_CORE_READ(pid, level);
	for (unsigned int i = 0; i < 8; i++) {
		struct upid up;

		if (i > level)
			break;
		if (bpf_probe_read_kernel(&up, sizeof(up), &pid->numbers[i]))
			return 0;
		if (!pidns_ino || BPF_CORE_READ(up.ns, ns.inum) == pidns_ino)
			return up.nr;
	}
	return 0;
}

static __always_inline __u32 task_tgid_ns(struct task_struct *task)
{
	return pid_in_ns(BPF_CORE_READ(task, group_leader, thread_pid));
}

static __always_inline __u32 task_tid_ns(struct task_struct *task)
{
	return pid_in_ns(BPF_CORE_READ(task, thread_pid));
}

static __always_inline __u64 task_memcg_id(struct task_struct *task)
{
	int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct css_set *cgroups = BPF_CORE_READ(task, cgroups);
	struct cgroup_subsys_state *css;

	if (!cgroups)
		return 0;
	if (bpf_probe_read_kernel(&css, sizeof(css), &cgroups->subsys[id & 15]) || !css)
		return 0;
	return BPF_CORE_READ(css, cgroup, kn, id);
}

/* Cheap path for current: the helper avoids walking pid->numbers. */
static __always_inline __u32 current_tgid_ns(void)
{
	struct bpf_pidns_info ns = {};

	if (pidns_is_init)
		return bpf_get_current_pid_tgid() >> 32;
	if (bpf_get_ns_current_pid_tgid(pidns_dev, pidns_ino, &ns, sizeof(ns)))
		return 0;
	return ns.tgid;
}

/* false: certainly not tracked (the common case on every page fault); true: look it up in the tracked map */
static __always_inline bool maybe_tracked(__u32 tgid)
{
	return track_filter[tgid & (OS_TRACK_FILTER_SLOTS - 1)] != 0;
}

/* A record as long as its type needs (os_event_size): type is a constant at every inlined call site, and so is the
 * size, as bpf_ringbuf_reserve needs. Only the reserved bytes may be written: the union's other members lie past them. */
static __always_inline struct os_event *event_reserve(__u32 type, struct task_struct *task)
{
	__u32 size = os_event_size(type);
	struct os_event *e = bpf_ringbuf_reserve(&rb, size, 0);

	if (!e) {
		stat_inc(OS_STAT_DROPS);
		/* type is a constant in each inlined caller: no branch left on the rss_stat path */
		if (type == OS_EV_EXEC || type == OS_EV_FORK || type == OS_EV_EXIT)
			stat_inc(OS_STAT_LIFECYCLE_DROPS);
		return NULL;
	}
	/* ring buffer memory is not zeroed: never hand stale kernel bytes to user space */
	__builtin_memset(e, 0, size);
	e->type = type;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = task_tgid_ns(task);
	e->tid = task_tid_ns(task);
	e->ppid = task_tgid_ns(BPF_CORE_READ(task, real_parent));
	e->cgroup_id = task_memcg_id(task);
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	return e;
}

static __always_inline void event_submit(struct os_event *e)
{
	stat_inc(OS_STAT_EVENTS);
	bpf_ringbuf_submit(e, 0);
}

static __always_inline bool comm_matches(const char *comm)
{
	for (__u32 i = 0; i < OS_MAX_COMM_PREFIXES; i++) {
		bool match = true;

		if (i >= n_comm_prefixes)
			break;
		for (__u32 j = 0; j < OS_COMM_PREFIX_LEN; j++) {
			if (j >= comm_prefix_lens[i])
				break;
			if (comm[j] != comm_prefixes[i][j]) {
				match = false;
				break;
			}
		}
		if (match)
			return true;
	}
	return false;
}

static __always_inline bool cgroup_watched(__u64 id)
{
	return n_cgroups && bpf_map_lookup_elem(&filter_cgroups, &id);
}

/* tgid's slot in tracked_hot, whoever holds it (never NULL: the index is in range; the check is for the verifier) */
static __always_inline struct os_tracked_hot *hot_slot(__u32 tgid)
{
	__u32 slot = tgid & (OS_TRACKED_HOT_SLOTS - 1);

	return bpf_map_lookup_elem(&tracked_hot, &slot);
}

/* free tgid's slot if it holds it: a copy left by a process that is no longer tracked would outlive it */
static __always_inline void hot_forget(__u32 tgid)
{
	struct os_tracked_hot *h = hot_slot(tgid);

	if (h && h->tgid == tgid)
		h->tgid = 0;
}

static __always_inline void track(__u32 tgid, __u32 flags, __u64 step_bytes)
{
	struct os_tracked t = { .flags = flags, .step_bytes = step_bytes };

	if (bpf_map_update_elem(&tracked, &tgid, &t, BPF_NOEXIST) == 0) {
		hot_forget(tgid);
		__sync_fetch_and_add(&track_filter[tgid & (OS_TRACK_FILTER_SLOTS - 1)], 1);
	}
}

static __always_inline void untrack(__u32 tgid)
{
	if (bpf_map_delete_elem(&tracked, &tgid) == 0) {
		hot_forget(tgid);
		__sync_fetch_and_add(&track_filter[tgid & (OS_TRACK_FILTER_SLOTS - 1)], -1);
	}
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	char comm[TASK_COMM_LEN] = {};
	struct os_event *e;
	__u32 tgid = task_tgid_ns(p);
	__u32 flags = 0;

	struct os_tracked *t;

	if (!tgid)
		return 0;
	bpf_probe_read_kernel_str(comm, sizeof(comm), p->comm);
	t = bpf_map_lookup_elem(&tracked, &tgid);
	if (t) {
		/* a new image starts with a new, empty mm: RSS steps count from there (the hot copy is dropped, and the
		 * next fault copies this reset state) */
		t->last_rss_bytes = 0;
		t->mm = 0;
		hot_forget(tgid);
		flags = OS_TRACKED_CHILD;
	}
	else if (comm_matches(comm))
		flags = OS_TRACKED_COMM;
	else if (cgroup_watched(task_memcg_id(p)))
		flags = OS_TRACKED_CGROUP;
	if (!flags)
		return 0;
	track(tgid, flags, 0);

	e = event_reserve(OS_EV_EXEC, p);
	if (!e)
		return 0;
	bpf_probe_read_kernel_str(e->exec.filename, sizeof(e->exec.filename), BPF_CORE_READ(bprm, filename));
	event_submit(e);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	struct os_tracked *pt;
	struct os_event *e;
	__u32 ptgid, ctgid;

	/* ignore new threads: only new processes matter */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	ptgid = task_tgid_ns(parent);
	pt = ptgid ? bpf_map_lookup_elem(&tracked, &ptgid) : NULL;
	if (!pt)
		return 0;
	ctgid = task_tgid_ns(child);
	if (!ctgid)
		return 0;
	/* a worker forked near the limit shares its parent's headroom: the same fine step from its first fault (user
	 * space writes a step to the hash and the hot copy alike) */
	track(ctgid, OS_TRACKED_CHILD, pt->step_bytes);

	e = event_reserve(OS_EV_FORK, parent);
	if (!e)
		return 0;
	e->fork.child_pid = ctgid;
	event_submit(e);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *p)
{
	struct os_event *e;
	__u32 tgid, code;

	/* only the last thread of a process: that is when the process is gone */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	tgid = task_tgid_ns(p);
	if (!tgid || !bpf_map_lookup_elem(&tracked, &tgid))
		return 0;
	untrack(tgid);

	e = event_reserve(OS_EV_EXIT, p);
	if (!e)
		return 0;
	/* exit_group() and fatal signals record the process-wide status in signal->group_exit_code */
	code = BPF_CORE_READ(p, signal, group_exit_code);
	if (!code)
		code = BPF_CORE_READ(p, exit_code);
	e->exit.exit_code = code;
	/* do_exit() folded the mm's high-water RSS into signal->maxrss before the mm went away */
	e->exit.maxrss_pages = BPF_CORE_READ(p, signal, maxrss);
	event_submit(e);
	return 0;
}

/* mm->rss_stat before 6.2: one struct of atomic counters (the struct is gone since) */
struct mm_rss_stat___old {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));

struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));

/* The mm's counter (MM_FILEPAGES, MM_ANONPAGES, MM_SHMEMPAGES) in pages. Since 6.2 it is a percpu_counter whose
 * .count lags by at most the per-CPU batch; before, an atomic_long_t (lagging by the per-task cache of 5.x). The
 * layout is chosen by CO-RE against the running kernel: the branch that does not fit is dead code to the verifier. */
static __always_inline __u64 mm_counter_pages(struct mm_struct *mm, int member)
{
	__s64 v;

	if (bpf_core_type_exists(struct mm_rss_stat___old))
		v = BPF_CORE_READ((struct mm_struct___old *)mm, rss_stat.count[member & 3].counter);
	else
		v = BPF_CORE_READ(mm, rss_stat[member & 3].count);
	return v > 0 ? v : 0;
}

static __always_inline __u64 nonneg(__s64 v)
{
	return v > 0 ? v : 0;
}

/* The file, anon and shmem counters (pages) for the hot path. Since 6.2: plain loads through the tracepoint's
 * BTF-typed mm, no helper call (constant indices: the verifier refuses a variable offset into a BTF object). Before:
 * one bpf_probe_read_kernel of the whole atomic array, because those verifiers (5.10 measured) refuse a load through
 * an array of atomic_long_t ("Type 'atomic_long_t' is not a struct"). */
static __always_inline void mm_counters_hot(struct mm_struct *mm, __u64 *file, __u64 *anon, __u64 *shmem)
{
	if (bpf_core_type_exists(struct mm_rss_stat___old)) {
		__s64 c[4] = {};

		bpf_probe_read_kernel(c, sizeof(c), &((struct mm_struct___old *)mm)->rss_stat.count);
		*file = nonneg(c[MM_FILEPAGES]);
		*anon = nonneg(c[MM_ANONPAGES]);
		*shmem = nonneg(c[MM_SHMEMPAGES]);
	} else {
		*file = nonneg(mm->rss_stat[MM_FILEPAGES].count);
		*anon = nonneg(mm->rss_stat[MM_ANONPAGES].count);
		*shmem = nonneg(mm->rss_stat[MM_SHMEMPAGES].count);
	}
}

/* One OOM-victim record per death. The kernel marks threads, not processes: a thread of a dying victim that
 * allocates again is marked once more (task_will_free_mem(current)), so remember the process (global tgid) with the
 * start time of its leader, which tells a recycled pid apart. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} oom_reported SEC(".maps");

static __always_inline bool oom_first_report(struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	__u64 start = BPF_CORE_READ(p, group_leader, start_time);
	__u64 *seen = bpf_map_lookup_elem(&oom_reported, &tgid);

	if (seen && *seen == start)
		return false;
	bpf_map_update_elem(&oom_reported, &tgid, &start, BPF_ANY);
	return true;
}

static __always_inline int report_oom_victim(struct task_struct *p)
{
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	struct os_event *e;

	if (!oom_first_report(p)) {
		stat_inc(OS_STAT_OOM_DUPLICATES);
		return 0;
	}
	/* every OOM victim is reported, tracked or not: the kernel chose it and the user must learn why */
	e = event_reserve(OS_EV_OOM_VICTIM, p);
	if (!e)
		return 0;
	if (mm) {
		e->oom.total_vm_pages = BPF_CORE_READ(mm, total_vm);
		e->oom.file_rss_pages = mm_counter_pages(mm, MM_FILEPAGES);
		e->oom.anon_rss_pages = mm_counter_pages(mm, MM_ANONPAGES);
		e->oom.shmem_rss_pages = mm_counter_pages(mm, MM_SHMEMPAGES);
	}
	e->oom.oom_score_adj = BPF_CORE_READ(p, signal, oom_score_adj);
	e->oom.page_size = 4096;
	event_submit(e);
	return 0;
}

/* Since 6.8 the tracepoint passes the victim. User space loads this variant or the pid one below, never both. */
SEC("tp_btf/mark_victim")
int BPF_PROG(handle_mark_victim, struct task_struct *p)
{
	return report_oom_victim(p);
}

/* Before 6.8 mark_victim passes only the victim's (global) pid, and BPF there has no way from a pid to its task.
 * __oom_kill_process() sends the victim SIGKILL just before it marks it, in the same thread: remember, per killing
 * thread, the last task it sent SIGKILL to. The OOM killer holds a reference to the victim until it is marked, so
 * the pointer is good when mark_victim comes. A victim marked without a new signal is one that was already dying:
 * the allocating task itself (task_will_free_mem(current)) or a process whose first marking was reported. */
struct sigkill_target {
	__u64 task;
	__u32 pid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* global thread id of the sender */
	__type(value, struct sigkill_target);
} sigkill_targets SEC(".maps");

SEC("tp_btf/signal_generate")
int BPF_PROG(handle_sigkill, int sig, struct kernel_siginfo *info, struct task_struct *task)
{
	struct sigkill_target t = {};
	__u32 me;

	if (sig != 9 /* SIGKILL */)
		return 0;
	me = (__u32)bpf_get_current_pid_tgid();
	t.task = (__u64)task;
	t.pid = BPF_CORE_READ(task, pid);
	bpf_map_update_elem(&sigkill_targets, &me, &t, BPF_ANY);
	return 0;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(handle_mark_victim_pid, int pid)
{
	struct task_struct *cur = (struct task_struct *)bpf_get_current_task();
	__u32 me = (__u32)bpf_get_current_pid_tgid();
	struct sigkill_target *t = bpf_map_lookup_elem(&sigkill_targets, &me);
	struct task_struct *victim = NULL;

	if (t && t->pid == (__u32)pid)
		victim = (struct task_struct *)t->task;
	else if (me == (__u32)pid)
		victim = cur;
	if (t)
		bpf_map_delete_elem(&sigkill_targets, &me);
	if (!victim) {
		stat_inc(OS_STAT_OOM_UNRESOLVED);
		return 0;
	}
	return report_oom_victim(victim);
}

/* Hot path: fires on nearly every page fault of every process (docs/performance.md has its cost). Untracked: the
 * tgid (bpf_get_current_pid_tgid in the initial pid namespace) and one load from track_filter. Tracked: one
 * inlined array lookup and a tag compare (tracked_hot; the hash only for a process whose slot another holds), one
 * compare of the cached mm, three plain loads of the mm's counters (before 6.2: one bpf_probe_read_kernel of them);
 * no other helper call until a step is crossed. */
SEC("tp_btf/rss_stat")
int BPF_PROG(handle_rss_stat, struct mm_struct *mm, int member)
{
	struct os_tracked_hot *h;
	struct os_tracked *t;
	struct os_event *e;
	__u64 anon, file, shmem, rss, last, step;
	__u32 tgid = current_tgid_ns();

	if (!maybe_tracked(tgid))
		return 0;
	h = hot_slot(tgid);
	if (!h)
		return 0;
	if (h->tgid == tgid) {
		t = &h->t;
	} else {
		t = bpf_map_lookup_elem(&tracked, &tgid);
		if (!t)
			return 0;
		/* a free slot: copy the process's state there, tag last, and run from the copy from now on */
		if (!h->tgid) {
			h->t = *t;
			asm volatile("" ::: "memory");
			h->tgid = tgid;
			t = &h->t;
		}
	}
	/* the event may be about another process's mm (reclaim by a tracked task, a remote access): only count our own.
	 * The first fault of an image reads current->mm; later ones compare with the cached pointer. An mm being torn
	 * down (exit, or the old image at exec) has no users left: its falling counters are not the process's RSS. */
	if (!mm->mm_users.counter)
		return 0;
	if (t->mm != (__u64)mm) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();

		if ((__u64)BPF_CORE_READ(task, mm) != (__u64)mm)
			return 0;
		t->mm = (__u64)mm;
	}
	mm_counters_hot(mm, &file, &anon, &shmem);
	file <<= 12;
	anon <<= 12;
	shmem <<= 12;
	rss = anon + file + shmem;
	last = t->last_rss_bytes;
	step = t->step_bytes ? t->step_bytes : rss_step_bytes;
	if (rss < last + step && rss + step > last)
		return 0;
	t->last_rss_bytes = rss;

	e = event_reserve(OS_EV_RSS, (struct task_struct *)bpf_get_current_task());
	if (!e)
		return 0;
	e->rss.rss_bytes = rss;
	e->rss.anon_bytes = anon;
	e->rss.file_bytes = file;
	e->rss.shmem_bytes = shmem;
	event_submit(e);
	return 0;
}

SEC("tp/syscalls/sys_enter_mmap")
int handle_enter_mmap(struct trace_event_raw_sys_enter *ctx)
{
	struct mmap_args a;
	__u32 tgid, tid;

	/* PROT_NONE reservations (malloc arenas, guard regions) cost no memory */
	if ((__u64)ctx->args[1] < mmap_min_bytes || ctx->args[2] == 0)
		return 0;
	tgid = current_tgid_ns();
	if (!maybe_tracked(tgid) || !bpf_map_lookup_elem(&tracked, &tgid))
		return 0;
	a.len = ctx->args[1];
	a.prot = ctx->args[2];
	a.flags = ctx->args[3];
	a.fd = (int)ctx->args[4];
	tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&mmap_inflight, &tid, &a, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_exit_mmap")
int handle_exit_mmap(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct mmap_args *a = bpf_map_lookup_elem(&mmap_inflight, &tid);
	struct os_event *e;

	if (!a)
		return 0;
	if (ctx->ret < 0 && ctx->ret > -4096)
		goto out;
	e = event_reserve(OS_EV_MMAP, (struct task_struct *)bpf_get_current_task());
	if (!e)
		goto out;
	e->mmap.addr = ctx->ret;
	e->mmap.len = a->len;
	e->mmap.prot = a->prot;
	e->mmap.flags = a->flags;
	e->mmap.fd = (a->flags & 0x20 /* MAP_ANONYMOUS */) ? -1 : (int)a->fd;
	event_submit(e);
out:
	bpf_map_delete_elem(&mmap_inflight, &tid);
	return 0;
}

SEC("tp/syscalls/sys_enter_munmap")
int handle_enter_munmap(struct trace_event_raw_sys_enter *ctx)
{
	struct os_event *e;
	__u32 tgid;

	if ((__u64)ctx->args[1] < mmap_min_bytes)
		return 0;
	tgid = current_tgid_ns();
	if (!maybe_tracked(tgid) || !bpf_map_lookup_elem(&tracked, &tgid))
		return 0;
	e = event_reserve(OS_EV_MUNMAP, (struct task_struct *)bpf_get_current_task());
	if (!e)
		return 0;
	e->mmap.addr = ctx->args[0];
	e->mmap.len = ctx->args[1];
	e->mmap.fd = -1;
	event_submit(e);
	return 0;
}

/* Reclaim begins in the context of the allocating task: count per memory cgroup, report at most once
 * per reclaim_interval_ns per cgroup so a thrashing cgroup cannot flood the ring buffer. */
static __always_inline int on_reclaim(__u32 kind, int order)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct os_rate *st, zero = {};
	struct os_event *e;
	__u64 id, now;
	__u32 tgid = current_tgid_ns();

	if (!maybe_tracked(tgid) || !bpf_map_lookup_elem(&tracked, &tgid))
		return 0;
	id = task_memcg_id(task);
	st = bpf_map_lookup_elem(&reclaim_rate, &id);
	if (!st) {
		bpf_map_update_elem(&reclaim_rate, &id, &zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&reclaim_rate, &id);
		if (!st)
			return 0;
	}
	__sync_fetch_and_add(&st->count, 1);
	now = bpf_ktime_get_ns();
	if (now - st->last_report_ns < reclaim_interval_ns) {
		__sync_fetch_and_add(&st->suppressed, 1);
		return 0;
	}
	e = event_reserve(OS_EV_RECLAIM, task);
	if (!e)
		return 0;
	e->reclaim.kind = kind;
	e->reclaim.order = order;
	e->reclaim.count = st->count;
	e->reclaim.suppressed = st->suppressed;
	st->last_report_ns = now;
	st->suppressed = 0;
	event_submit(e);
	return 0;
}

SEC("tp_btf/mm_vmscan_memcg_reclaim_begin")
int BPF_PROG(handle_memcg_reclaim, int order, gfp_t gfp)
{
	return on_reclaim(OS_RECLAIM_MEMCG, order);
}

SEC("tp_btf/mm_vmscan_direct_reclaim_begin")
int BPF_PROG(handle_direct_reclaim, int order, gfp_t gfp)
{
	return on_reclaim(OS_RECLAIM_DIRECT, order);
}

/* Fires on every page fault too (PGFAULT), so test the item before anything else. */
SEC("tp_btf/count_memcg_events")
int BPF_PROG(handle_memcg_events, struct mem_cgroup *memcg, int item, unsigned long val)
{
	struct memcg_key key = {};
	struct os_rate *st, zero = {};
	struct os_event *e;
	__u64 now;
	__u32 kind;

	if (item == oom_kill_item)
		kind = OS_MEMCG_OOM_KILL;
	else if (item == pgscan_direct_item)
		kind = OS_MEMCG_PGSCAN_DIRECT;
	else
		return 0;
	key.cgroup_id = BPF_CORE_READ(memcg, css.cgroup, kn, id);
	key.item = kind;
	if (!bpf_map_lookup_elem(&watched_cgroups, &key.cgroup_id))
		return 0;
	st = bpf_map_lookup_elem(&memcg_counts, &key);
	if (!st) {
		bpf_map_update_elem(&memcg_counts, &key, &zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&memcg_counts, &key);
		if (!st)
			return 0;
	}
	__sync_fetch_and_add(&st->count, val);
	now = bpf_ktime_get_ns();
	if (kind == OS_MEMCG_PGSCAN_DIRECT && now - st->last_report_ns < reclaim_interval_ns)
		return 0;
	st->last_report_ns = now;
	e = bpf_ringbuf_reserve(&rb, OS_EVENT_SIZE(memcg), 0);
	if (!e) {
		stat_inc(OS_STAT_DROPS);
		return 0;
	}
	__builtin_memset(e, 0, OS_EVENT_SIZE(memcg));
	e->type = OS_EV_MEMCG;
	e->ts_ns = now;
	e->cgroup_id = key.cgroup_id;
	e->memcg.item = kind;
	e->memcg.val = val;
	e->memcg.total = st->count;
	event_submit(e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
