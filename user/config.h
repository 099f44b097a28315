/* SPDX-License-Identifier: GPL-2.0 */
/* One documented struct config, filled from defaults < /etc/oomsentry/oomsentry.conf < OOMSENTRY_* env < flags.
 * Every key exists in all three forms; the key table in config.c is the single source of truth (and of --help). */
#ifndef OOMSENTRY_CONFIG_H
#define OOMSENTRY_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_INSTANCES 8
#define CONFIG_MAX_LIST 8
#define CONFIG_STR 256
#define CONFIG_DEFAULT_PATH "/etc/oomsentry/oomsentry.conf"

enum restart_method {
	RESTART_NONE = 0,    /* no controlled restart: the ladder skips that rung */
	RESTART_SIGNAL = 1,  /* SIGTERM (pidfd) to the server and each of its workers; a supervisor starts it again */
	RESTART_COMMAND = 2, /* run restart_command with /bin/sh -c */
	RESTART_SYSTEMD = 3, /* RestartUnit over D-Bus */
};

/* A ComfyUI server watched by the daemon ([instance NAME] sections; "default" from the global keys). */
struct instance_config {
	char name[64];
	char url[CONFIG_STR];
	char auth_header[CONFIG_STR];
	char pid_file[CONFIG_STR];
	char cmdline_pattern[CONFIG_STR];
	char cgroup[CONFIG_STR]; /* memory cgroup directory; empty: the server's own */
	enum restart_method restart_method;
	char restart_command[CONFIG_STR];
	char systemd_unit[CONFIG_STR];
	bool free_after_each_generation;
	bool websocket; /* follow /ws for queue changes (yes); no: poll /queue only */
	uint64_t restart_every_generations;
	uint64_t restart_timeout_ms;
	uint64_t stop_grace_ms;        /* controlled restart: SIGTERM (or the method) -> SIGKILL of the old server */
	uint64_t last_resort_grace_ms; /* last resort: SIGTERM -> SIGKILL + process_mrelease */
	uint64_t give_up_after; /* interrupts/restarts a prompt that cannot fit may cause before it is dropped; 0 never */
	bool brake;             /* memory.high brake on cgroup v2 */
};

struct config {
	/* what to watch */
	char comm_prefixes[CONFIG_MAX_LIST][16];
	int n_comm_prefixes;
	char cgroups[CONFIG_MAX_LIST][CONFIG_STR];
	int n_cgroups;
	uint64_t rss_step_bytes;
	uint64_t mmap_threshold_bytes;
	uint64_t sample_interval_ms;
	uint64_t reclaim_report_interval_ms;
	uint64_t poll_interval_ms;   /* ComfyUI /queue polling */
	uint64_t http_timeout_ms;
	/* prevention */
	bool dry_run;
	double act_usage_fraction;
	double forecast_margin;
	uint64_t cooldown_ms;
	bool reap_orphans;
	uint64_t orphan_grace_ms;
	uint64_t orphan_min_rss_bytes;
	uint64_t orphan_min_age_ms;
	int64_t orphan_uid; /* -1: any user */
	bool kill;
	/* crash loops */
	uint64_t crashloop_window_ms;
	uint64_t crashloop_threshold;
	/* output */
	bool json;
	bool journal;
	bool bpf;                    /* false: /proc + cgroup polling only */
	bool rss_probe_on_demand;    /* run mode: rss_stat attached only while an instance wants it (core/rssarm.h) */
	bool memcg_events_probe;     /* count_memcg_events: per-cgroup direct-scan and OOM-kill counts */
	char metrics_listen[64];     /* "off" or ADDR:PORT */
	char priority[24];           /* keep, high or realtime[:N] (config_parse_priority) */
	char incident_dir[CONFIG_STR];
	char state_dir[CONFIG_STR]; /* learn-INSTANCE and lineage-INSTANCE files */
	uint64_t incident_max_count; /* incident reports kept; the oldest go first */
	uint64_t incident_max_bytes; /* and their total size */
	char socket_path[CONFIG_STR];
	char prekill_hook[CONFIG_STR]; /* "off" or the socket oomd calls before a kill (systemd >= 260) */
	char runtime_dir[CONFIG_STR]; /* per-instance lock files */
	uint64_t max_processes;       /* process table cap */
	uint64_t ring_buffer_bytes;   /* the BPF ring buffer: a power of two, at least a page */
	int verbose;

	struct instance_config instances[CONFIG_MAX_INSTANCES];
	int n_instances;
	bool default_instance_set; /* a per-instance key was given outside [instance NAME] */
};

void config_defaults(struct config *cfg);
/* Loads PATH (missing file is fine unless required), then OOMSENTRY_* from envp.
 * Returns 0, or -EINVAL after writing one clear line to errbuf. */
int config_load_file(struct config *cfg, const char *path, bool required, char *errbuf, size_t errlen);
int config_load_env(struct config *cfg, char *const *envp, char *errbuf, size_t errlen);
/* Applies "--key=value" / "--key value" / "--flag" for any key in the table; returns the number of argv entries
 * consumed (1 or 2), 0 when arg is not a config flag, -EINVAL on a bad value. */
int config_apply_flag(struct config *cfg, const char *arg, const char *next, char *errbuf, size_t errlen);
/* One key=value, as in the INI file, for section "" / "oomsentry" or "instance NAME". */
int config_set(struct config *cfg, const char *section, const char *key, const char *value, char *errbuf,
	       size_t errlen);
int config_finalize(struct config *cfg, char *errbuf, size_t errlen);
void config_print_help_keys(FILE *out);
void config_dump(const struct config *cfg, FILE *out);

/* Value parsers, exported for the unit tests: sizes ("64M", "1.5GiB", "300MB", "1048576"),
 * durations ("500ms", "5s", "2m", "1h", bare number = ms), fractions ("0.9", "90%"), booleans. */
int config_parse_bytes(const char *s, uint64_t *ret);
int config_parse_duration_ms(const char *s, uint64_t *ret);
int config_parse_fraction(const char *s, double *ret);
int config_parse_bool(const char *s, bool *ret);
int config_url_port(const char *url, uint16_t *ret_port);
/* The host of http://HOST:PORT/..., IPv6 brackets kept. 0, -EINVAL, -ENAMETOOLONG. */
int config_url_host(const char *url, char *buf, size_t len);

/* The daemon's scheduling (`priority`): keep (as started: the unit's Nice=/CPUSchedulingPolicy=), high (nice -20,
 * as earlyoom -p) or realtime[:N] (SCHED_FIFO at N, 1-99, default 1). Returns 0 with *ret_nice (keep: 1, unused)
 * and *ret_fifo (0: not realtime), or -EINVAL. */
int config_parse_priority(const char *s, int *ret_nice, int *ret_fifo);

#endif
