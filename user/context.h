/* SPDX-License-Identifier: GPL-2.0 */
/* What the modules below the loop share about the running daemon: the configuration, the process table, the cgroup
 * mounts, the probes, the watched instances (opaque here) and the clocks. Kept apart from loop.h so that instance,
 * scan and restart can reach the daemon without including the loop that drives them. */
#ifndef OOMSENTRY_CONTEXT_H
#define OOMSENTRY_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cgroup.h"
#include "config.h"
#include "dropsync.h"
#include "learn.h"

enum daemon_mode { MODE_INVALID = 0, MODE_OBSERVE, MODE_RUN, MODE_SCAN, MODE_STATUS, MODE_REPORT };

/* Checks that the configuration would load now (for SIGHUP); 0 or negative errno with err filled. */
typedef int (*reload_check_fn)(char *err, size_t errlen);

struct curl_loop;
struct probes;
struct proc;
struct proctree;
struct instance;
struct comfy_ws;

struct daemon {
	const struct config *cfg;
	enum daemon_mode mode;
	int epfd;
	int sigfd;
	int sample_tfd;
	int poll_tfd;
	int far_tfd; /* reads the usage of instances far from their limit while the rss probe is off (loop.c) */
	int status_fd;
	int prekill_fd; /* systemd-oomd pre-kill hook, -1 when off */
	struct probes *probes;
	bool polling; /* no BPF: /proc + cgroup polling */
	uint64_t usage_tag; /* epoll tag of the instances' usage notifications (the instance index + 1 above it) */
	bool timers_on; /* the sample and poll timers are armed (loop.c: only while some instance needs them) */
	/* run mode: the rss_stat probe attached only while an instance wants it (core/rssarm.h, loop.c arm_rss) */
	bool rss_on_demand;
	bool rss_lingering;        /* attached though no instance wants it now: detached at rss_wanted_until_ns */
	bool rss_missing;          /* wanted, and the attach failed: the timers sample instead */
	bool far_on;               /* far_tfd runs */
	uint64_t rss_wanted_until_ns;
	uint64_t rss_retry_ns;
	uint64_t rss_attaches;     /* how often it was attached again (`oomsentry status`) */
	struct proctree *pt;
	struct cg_mounts mounts;
	struct instance *instances[CONFIG_MAX_INSTANCES];
	struct comfy_ws *ws; /* ComfyUI websockets; NULL without one (polling only) */
	int n_instances;
	bool metrics_on;
	struct curl_loop *curl; /* ComfyUI requests run on the loop (none in `oomsentry scan`: blocking there) */
	uint64_t events_by_type[16];
	uint64_t bpf_drops_reported;
	uint64_t bpf_drops_warned_ns;
	/* lost exec/fork/exit events: when to rescan /proc (loop.c) */
	struct dropsync drops;
	uint64_t drops_checked_ns;
	bool drops_check_owed; /* events came since the last look at the kernel's count */
	uint64_t resyncs;
	/* kernel timestamp of an RSS event to its handling: the lag of the daemon's looks at memory, which the last
	 * resort's tightest deadline must leave room for (policy_look_margin_ns) */
	struct learn_lag event_lag;
	uint64_t looking_since_ns; /* the loop began handling events: the lag counts from events stamped since */
	bool exiting;
	bool reload;
	reload_check_fn reload_check;
};

/* Tracks a process everywhere it must be known (process table and the kernel's tracked map). */
struct proc *daemon_track(struct daemon *d, int pid, uint32_t flags);
void daemon_watch_cgroup(struct daemon *d, uint64_t cgroup_id);

uint64_t now_mono_ns(void);
/* Wall clock of a CLOCK_MONOTONIC instant: incident reports carry real dates. */
uint64_t mono_to_real_ns(uint64_t mono_ns);
/* CLOCK_BOOTTIME: the clock of /proc/PID/stat start times. */
uint64_t now_boot_ns(void);

#endif
