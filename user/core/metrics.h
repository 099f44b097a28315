/* SPDX-License-Identifier: GPL-2.0 */
/* Prometheus exposition of the daemon's counters and gauges: the registry and the text rendering, pure (no I/O).
 * metrics-http.h serves it, so that fleets of ComfyUI hosts can be watched and alerted on centrally. */
#ifndef OOMSENTRY_METRICS_H
#define OOMSENTRY_METRICS_H

#include <stdbool.h>
#include <stddef.h>

/* Fixed capacity: the registry never allocates; a scrape allocates only its reply buffer. */
#define METRICS_MAX_FAMILIES 64
#define METRICS_MAX_SERIES 512
#define METRICS_NAME_MAX 96   /* bytes, including the NUL */
#define METRICS_LABELS_MAX 256 /* bytes of label text, including the NUL */
#define METRICS_HELP_MAX 256  /* bytes, including the NUL */

/* The metric families oomsentry exports; metrics_describe_oomsentry() registers their HELP and TYPE.
 * A ComfyUI server's series carry METRIC_LABEL_INSTANCE, not "instance": Prometheus sets "instance" and "job" on
 * every scraped series and renames a scraped "instance" to "exported_instance". */
#define METRIC_LABEL_INSTANCE "comfyui"
#define METRIC_EVENTS_TOTAL "oomsentry_events_total"                           /* {type} */
#define METRIC_BPF_DROPS_TOTAL "oomsentry_bpf_drops_total"                     /* no labels */
#define METRIC_TRACKED_PROCESSES "oomsentry_tracked_processes"                 /* no labels */
#define METRIC_RESYNCS_TOTAL "oomsentry_process_table_resyncs_total"         /* no labels */
#define METRIC_PROBES_ATTACHED "oomsentry_probes_attached"                     /* no labels; 0 when polling */
#define METRIC_PROBES_EXPECTED "oomsentry_probes_expected"                     /* no labels; only with BPF */
#define METRIC_MEMORY_USAGE_BYTES "oomsentry_memory_usage_bytes"               /* {comfyui} */
#define METRIC_MEMORY_LIMIT_BYTES "oomsentry_memory_limit_bytes"               /* {comfyui} */
#define METRIC_GENERATIONS_TOTAL "oomsentry_generations_total"                 /* {comfyui,status} */
#define METRIC_GENERATION_PEAK_BYTES "oomsentry_generation_peak_bytes"         /* {comfyui} */
#define METRIC_GENERATION_RESIDUAL_BYTES "oomsentry_generation_residual_bytes" /* {comfyui} */
#define METRIC_LEAK_BYTES_PER_GENERATION "oomsentry_leak_bytes_per_generation" /* {comfyui} */
#define METRIC_FORECAST_GENERATIONS_LEFT "oomsentry_forecast_generations_left" /* {comfyui} */
#define METRIC_ACTIONS_TOTAL "oomsentry_actions_total"                         /* {comfyui,action,result} */
#define METRIC_FREED_BYTES_TOTAL "oomsentry_freed_bytes_total"                 /* {comfyui,action} */
#define METRIC_OOM_KILLS_TOTAL "oomsentry_oom_kills_total"                     /* {cgroup} */
#define METRIC_ORPHANS "oomsentry_orphans"                                     /* {comfyui} */
#define METRIC_CRASH_LOOPS_TOTAL "oomsentry_crash_loops_total"                 /* {comfyui} */
#define METRIC_LADDER_EXHAUSTED_TOTAL "oomsentry_ladder_exhausted_total"       /* {comfyui} */

enum metric_type {
	METRIC_COUNTER,
	METRIC_GAUGE,
};

/* ---- registry (process-wide, single-threaded, no I/O) ---- */

/* Declares a family. Families render in the order they were first seen (describe or first sample).
 * Re-describing updates the help text; changing the type of a family that already has series is -EINVAL.
 * name: [a-zA-Z_:][a-zA-Z0-9_:]*; help: any text (NULL = none), backslashes and newlines are escaped on output.
 * Returns 0, -EINVAL (bad name/type/too long), -ENOSPC (METRICS_MAX_FAMILIES reached). */
int metrics_describe(const char *name, enum metric_type type, const char *help);

/* Registers HELP/TYPE for every METRIC_* family above. Returns 0 or negative errno. */
int metrics_describe_oomsentry(void);

/* labels: Prometheus label text without braces, e.g. `instance="a",status="success"` (build it with
 * metrics_labels() so values are escaped), or NULL/"" for none. A series is identified by the exact
 * (name, labels) text, so always pass labels in the same order. An undescribed name is created with the
 * type implied by the call and no HELP.
 * Returns 0, -EINVAL (bad name, malformed labels, type clash, counter delta < 0 or NaN),
 * -ENOSPC (METRICS_MAX_SERIES or METRICS_MAX_FAMILIES reached; see metrics_take_full_warning()). */
int metrics_set_gauge(const char *name, const char *labels, double value);
int metrics_add_counter(const char *name, const char *labels, double delta);
/* For counters kept elsewhere (the BPF per-CPU stats map): sets the absolute value. value must be >= 0;
 * a smaller value than before is taken as a reset of the source, as Prometheus' rate() does. */
int metrics_set_counter(const char *name, const char *labels, double value);

/* Reads one series back (tests, `oomsentry status`). Returns 0, -ENOENT, -EINVAL. */
int metrics_get(const char *name, const char *labels, double *ret_value);

/* Builds label text from NULL-terminated (label name, value) pairs, escaping values (\\, \", \n) and
 * replacing invalid UTF-8 with '?'. Writes a NUL-terminated string into buf.
 * Returns its length, -EINVAL (bad label name, NULL value), -ENOBUFS (buf too small). */
int metrics_labels(char *buf, size_t size, ...) __attribute__((sentinel));

/* Renders the text exposition format 0.0.4. *ret is malloc'd and owned by the caller (free()); *ret_len
 * excludes the terminating NUL that is always present. Returns 0 or -ENOMEM. */
int metrics_render(char **ret, size_t *ret_len);

/* Drops every family and series (tests; a fresh daemon starts empty). */
void metrics_reset(void);

/* Once after a table overflowed: "family table" or "series table" (the caller logs that further series are
 * dropped); NULL otherwise. metrics_reset() re-arms it. */
const char *metrics_take_full_warning(void);

#endif
