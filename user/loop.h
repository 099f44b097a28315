/* SPDX-License-Identifier: GPL-2.0 */
/* The daemon: one thread, one epoll loop over the BPF ring buffer, timers, signals, the metrics endpoint and the
 * status socket. All state lives in struct daemon; per-ComfyUI-server state in struct instance (instance.c). */
#ifndef OOMSENTRY_LOOP_H
#define OOMSENTRY_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cgroup.h"
#include "config.h"

enum daemon_mode { MODE_INVALID = 0, MODE_OBSERVE, MODE_RUN, MODE_SCAN, MODE_STATUS, MODE_REPORT };

/* Checks that the configuration would load now (for SIGHUP); 0 or negative errno with err filled. */
typedef int (*reload_check_fn)(char *err, size_t errlen);

struct probes;
struct proctree;
struct instance;

struct daemon {
	const struct config *cfg;
	enum daemon_mode mode;
	int epfd;
	int sigfd;
	int sample_tfd;
	int poll_tfd;
	int status_fd;
	struct probes *probes;
	bool polling; /* no BPF: /proc + cgroup polling */
	struct proctree *pt;
	struct cg_mounts mounts;
	struct instance *instances[CONFIG_MAX_INSTANCES];
	int n_instances;
	bool metrics_on;
	uint64_t events_by_type[16];
	uint64_t bpf_drops_reported;
	bool exiting;
	bool reload;
	reload_check_fn reload_check;
};

#define DAEMON_REEXEC 3 /* daemon_main's return: SIGHUP with a valid configuration, re-execute */

/* Entry from main(): runs the command; returns the process exit status (0 clean, 1 config, 2 cannot run) or
 * DAEMON_REEXEC. */
int daemon_main(const struct config *cfg, enum daemon_mode mode, bool reap, const char *arg,
		reload_check_fn reload_check);
uint64_t now_mono_ns(void);
/* Tracks a process everywhere it must be known (process table and the kernel's tracked map). */
struct proc *daemon_track(struct daemon *d, int pid, uint32_t flags);
void daemon_watch_cgroup(struct daemon *d, uint64_t cgroup_id);
/* Wall clock of a CLOCK_MONOTONIC instant: incident reports carry real dates. */
uint64_t mono_to_real_ns(uint64_t mono_ns);
/* CLOCK_BOOTTIME: the clock of /proc/PID/stat start times. */
uint64_t now_boot_ns(void);

#endif
