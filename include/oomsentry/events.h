/* SPDX-License-Identifier: GPL-2.0 */
/* The only ABI between bpf/oomsentry.bpf.c and user space: one ring buffer of struct os_event records, each as long
 * as its kind needs (os_event_size): the common header and its own member of the union, no more. An rss record is
 * 80 bytes where the exec's 256-byte filename made every record 304, so the same ring holds 3.5 times the events
 * between two reads (docs/performance.md, "burst room"). User space reads a record into a whole, zeroed struct.
 * Fixed-width types only (no libc headers) so that the BPF side can include it with vmlinux.h.
 * Pids are always as seen from the daemon's pid namespace; sizes are in bytes unless named _pages. */
#ifndef OOMSENTRY_EVENTS_H
#define OOMSENTRY_EVENTS_H

/* BPF gets the fixed-width types from vmlinux.h; user space from the kernel's UAPI header */
#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#ifndef TASK_COMM_LEN
#define TASK_COMM_LEN 16
#endif
#define OS_FILENAME_LEN 256
#define OS_MAX_COMM_PREFIXES 8
#define OS_COMM_PREFIX_LEN 16

enum os_event_type {
	OS_EV_EXEC = 1,
	OS_EV_FORK = 2,
	OS_EV_EXIT = 3,
	OS_EV_OOM_VICTIM = 4,
	OS_EV_RSS = 5,
	OS_EV_MMAP = 6,
	OS_EV_MUNMAP = 7,
	OS_EV_RECLAIM = 8,
	OS_EV_MEMCG = 9,
	OS_EV_MAX,
};

enum os_reclaim_kind {
	OS_RECLAIM_MEMCG = 1,  /* mm_vmscan_memcg_reclaim_begin: a cgroup hit its limit */
	OS_RECLAIM_DIRECT = 2, /* mm_vmscan_direct_reclaim_begin: the whole machine is short */
};

/* vm_event_item values reported by tp_btf/count_memcg_events; resolved with CO-RE on the BPF side. */
enum os_memcg_item {
	OS_MEMCG_PGSCAN_DIRECT = 1,
	OS_MEMCG_OOM_KILL = 2,
};

struct os_event_exec {
	char filename[OS_FILENAME_LEN];
};

struct os_event_fork {
	__u32 child_pid;
};

struct os_event_exit {
	__u32 exit_code; /* raw task->exit_code: (code << 8) | signal, 0x80 = core dumped */
	__u32 pad;
	__u64 maxrss_pages; /* signal->maxrss: the process's RSS high-water mark (what getrusage calls ru_maxrss) */
};

struct os_event_oom {
	__u64 total_vm_pages;
	__u64 anon_rss_pages;
	__u64 file_rss_pages;
	__u64 shmem_rss_pages;
	__s32 oom_score_adj;
	__u32 page_size;
};

struct os_event_rss {
	__u64 rss_bytes; /* anon + file + shmem */
	__u64 anon_bytes;
	__u64 file_bytes;
	__u64 shmem_bytes;
};

struct os_event_mmap {
	__u64 addr;
	__u64 len;
	__u64 prot;
	__u64 flags;
	__s32 fd; /* -1 for anonymous mappings; user space resolves the path from /proc/PID/map_files */
	__u32 pad;
};

struct os_event_reclaim {
	__u32 kind;        /* enum os_reclaim_kind */
	__u32 order;
	__u64 count;       /* reclaim entries in this cgroup since the probes started */
	__u64 suppressed;  /* entries not reported because of the rate limit since the last event */
};

struct os_event_memcg {
	__u32 item; /* enum os_memcg_item */
	__u32 pad;
	__u64 val;
	__u64 total; /* running total per cgroup and item */
};

struct os_event {
	__u32 type; /* enum os_event_type */
	__u32 pid;  /* thread group id in the daemon's pid namespace; 0 when unknown */
	__u32 tid;
	__u32 ppid;
	__u64 ts_ns;     /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u64 cgroup_id; /* memory cgroup (kernfs id == inode of its directory); of the victim for OOM */
	char comm[TASK_COMM_LEN];
	union {
		struct os_event_exec exec;
		struct os_event_fork fork;
		struct os_event_exit exit;
		struct os_event_oom oom;
		struct os_event_rss rss;
		struct os_event_mmap mmap;
		struct os_event_reclaim reclaim;
		struct os_event_memcg memcg;
	};
};

/* The bytes of a record with this member of the union: the header and the member. A constant wherever member is a
 * name, as bpf_ringbuf_reserve needs at each call site. */
#define OS_EVENT_SIZE(member) \
	(__builtin_offsetof(struct os_event, member) + sizeof(((struct os_event *)0)->member))
#define OS_EVENT_HEADER_SIZE __builtin_offsetof(struct os_event, exec)

/* The length of a record of this type: what the BPF side reserves, and the least user space accepts (0 for a type
 * this header does not know: the header alone is read). With a constant type it folds to a constant. */
static inline __u32 os_event_size(__u32 type)
{
	switch (type) {
	case OS_EV_EXEC:
		return OS_EVENT_SIZE(exec);
	case OS_EV_FORK:
		return OS_EVENT_SIZE(fork);
	case OS_EV_EXIT:
		return OS_EVENT_SIZE(exit);
	case OS_EV_OOM_VICTIM:
		return OS_EVENT_SIZE(oom);
	case OS_EV_RSS:
		return OS_EVENT_SIZE(rss);
	case OS_EV_MMAP:
	case OS_EV_MUNMAP:
		return OS_EVENT_SIZE(mmap);
	case OS_EV_RECLAIM:
		return OS_EVENT_SIZE(reclaim);
	case OS_EV_MEMCG:
		return OS_EVENT_SIZE(memcg);
	default:
		return 0;
	}
}

/* Value of the tracked map: per-process state the hot rss_stat path needs without a second lookup. */
struct os_tracked {
	__u64 last_rss_bytes; /* RSS at the last OS_EV_RSS event */
	/* this process's event step; 0: the configured rss_step. User space tightens it as the headroom under the limit
	 * shrinks (core/rsstep.h); a child forked in the kernel inherits its parent's. */
	__u64 step_bytes;
	/* the process's mm_struct (a kernel address) once the rss_stat program has seen current->mm equal the event's
	 * mm, 0 before and after exec: later faults compare one word instead of reading current->mm */
	__u64 mm;
	__u32 flags;
	__u32 pad;
};

/* The untracked rss_stat path (every page fault of every process) tests one counter of a global array, indexed by
 * the low bits of the tgid, before it looks anything up: slot tgid % OS_TRACK_FILTER_SLOTS counts the tracked
 * processes whose tgid falls there (kept with every insertion into and deletion from the tracked map, by the BPF
 * side and by user space through the mmapped .bss). 0 means "certainly not tracked"; non-zero, look it up. */
#define OS_TRACK_FILTER_SLOTS 32768

/* The tracked rss_stat path (every fault of a tracked process) reads its os_tracked from a direct-mapped array
 * (tracked_hot) whose lookup the verifier inlines, instead of the hash (a helper call and a jhash: ~12 ns of the
 * ~19 it cost above an empty program, measured). Slot tgid % OS_TRACKED_HOT_SLOTS holds a copy of one tracked
 * process's os_tracked, tagged with its tgid; the tracked hash stays the record of what is tracked, and a process
 * whose slot another holds runs from the hash. The rss_stat program fills a free slot on its slow path; the copy is
 * the live one from then on: the rss_stat path and step updates write it, and exec and every (un)tracking (BPF or
 * user space) free it. Copies are written without a lock (no BPF compare-and-swap before 5.12): two processes whose tgids
 * share a slot faulting for the first time in the same instant can leave one fault's worth of mixed fields, i.e.
 * one early or late RSS event, or one process running on the other's step until its step next changes. */
#define OS_TRACKED_HOT_SLOTS 4096

struct os_tracked_hot {
	__u32 tgid; /* 0: free */
	__u32 pad;
	struct os_tracked t;
};

#define OS_TRACKED_SEEDED 1 /* added by user space from the /proc scan */
#define OS_TRACKED_COMM 2   /* matched a comm prefix at exec */
#define OS_TRACKED_CHILD 4  /* child of a tracked process */
#define OS_TRACKED_CGROUP 8 /* runs in a watched cgroup */

/* Index into the per-CPU stats array map. */
enum os_stat {
	OS_STAT_DROPS = 0,     /* ring buffer full: event lost */
	OS_STAT_EVENTS = 1,    /* events submitted */
	OS_STAT_RSS_CALLS = 2, /* no longer counted (it cost the hot path a per-CPU map access); BPF_ENABLE_STATS has it */
	OS_STAT_OOM_DUPLICATES = 3, /* a second mark_victim for a process already reported */
	OS_STAT_OOM_UNRESOLVED = 4, /* mark_victim with only a pid (before 6.8) whose task could not be found */
	OS_STAT_LIFECYCLE_DROPS = 5, /* of OS_STAT_DROPS, exec/fork/exit: the process table is out of step */
	OS_STAT_MAX = 6,
};

#endif
