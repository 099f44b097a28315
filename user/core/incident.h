/* SPDX-License-Identifier: GPL-2.0 */
/* Incident reports: what happened around a prevention action or an OOM kill, kept on disk as JSON (for tools),
 * a text timeline and an SVG memory plot (for people), so that every death or near-death can be explained.
 * This header: the incident, its builder and incident.json (pure); incident-render.h draws it, incident-store.h
 * keeps it on disk. */
#ifndef OOMSENTRY_INCIDENT_H
#define OOMSENTRY_INCIDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "common.h"

/* Bounds that keep a report readable and a broken caller from filling the disk. Longer text is truncated
 * (at a UTF-8 boundary); more samples/events/generations than this is -ENOSPC. */
#define INCIDENT_INSTANCE_MAX 128 /* bytes of instance name, excluding the NUL */
#define INCIDENT_TEXT_MAX 512     /* bytes of event/outcome text, excluding the NUL */
#define INCIDENT_PROMPT_ID_MAX 128
#define INCIDENT_MAX_SAMPLES 65536
#define INCIDENT_MAX_EVENTS 4096
#define INCIDENT_MAX_GENERATIONS 1024
#define INCIDENT_FORMAT_VERSION 1
#define INCIDENT_FORMAT_NAME "oomsentry-incident"

#define INCIDENT_JSON "incident.json"
#define INCIDENT_TIMELINE "timeline.txt"
#define INCIDENT_SVG "memory.svg"

enum incident_trigger {
	INCIDENT_TRIGGER_FORECAST, /* "forecast": the forecast said the limit is near */
	INCIDENT_TRIGGER_USAGE,    /* "usage": usage crossed a threshold */
	INCIDENT_TRIGGER_RECLAIM,  /* "reclaim": direct reclaim under the memcg limit */
	INCIDENT_TRIGGER_OOM_KILL, /* "oom-kill": the kernel killed a process */
	_INCIDENT_TRIGGER_MAX,
};

enum incident_event_kind {
	INCIDENT_EVENT_NOTE,       /* "note" */
	INCIDENT_EVENT_GENERATION, /* "generation": a prompt started or finished */
	INCIDENT_EVENT_ACTION,     /* "action": oomsentry did something (/free, signal, restart) */
	INCIDENT_EVENT_RESULT,     /* "result": what an action achieved (freed bytes, failure) */
	INCIDENT_EVENT_PRESSURE,   /* "pressure": reclaim, PSI, forecast numbers */
	INCIDENT_EVENT_OOM_KILL,   /* "oom-kill": a victim */
	_INCIDENT_EVENT_MAX,
};

enum incident_outcome {
	INCIDENT_OUTCOME_UNKNOWN,    /* "unknown": not set (yet) */
	INCIDENT_OUTCOME_PREVENTED,  /* "prevented" */
	INCIDENT_OUTCOME_FAILED,     /* "failed": actions did not bring memory back */
	INCIDENT_OUTCOME_OOM_KILLED, /* "oom-killed" */
	INCIDENT_OUTCOME_DRY_RUN,    /* "dry-run": decided, not acted */
	_INCIDENT_OUTCOME_MAX,
};

/* All timestamps are CLOCK_REALTIME nanoseconds since the epoch, so a report stands on its own; the daemon
 * converts its monotonic/boot timestamps once when it builds the incident. limit_bytes 0 means "no limit";
 * values >= 2^62 (cgroup v1 "unlimited") are treated the same way in the reports. */
struct incident_sample {
	uint64_t ts_ns;
	uint64_t usage_bytes;
	uint64_t limit_bytes;
};

struct incident_event {
	uint64_t ts_ns;
	enum incident_event_kind kind;
	char *text;
};

struct incident_generation {
	uint64_t seq;
	char *prompt_id;
	uint64_t peak_bytes;
	uint64_t residual_bytes;
};

/* Readable by anyone; change it only through the functions below. Samples and events are kept sorted by
 * ts_ns (stable), generations in insertion order. All text is valid UTF-8 without control characters. */
struct incident {
	char *instance;
	enum incident_trigger trigger;
	uint64_t ts_ns;
	enum incident_outcome outcome;
	char *outcome_text;
	uint64_t freed_bytes;
	struct incident_sample *samples;
	size_t n_samples, allocated_samples;
	struct incident_event *events;
	size_t n_events, allocated_events;
	struct incident_generation *generations;
	size_t n_generations, allocated_generations;
};

const char *incident_trigger_to_string(enum incident_trigger t);          /* NULL when out of range */
int incident_trigger_from_string(const char *s);                          /* the enum or -EINVAL */
const char *incident_event_kind_to_string(enum incident_event_kind k);    /* NULL when out of range */
int incident_event_kind_from_string(const char *s);                       /* the enum or -EINVAL */
const char *incident_outcome_to_string(enum incident_outcome o);          /* NULL when out of range */
int incident_outcome_from_string(const char *s);                          /* the enum or -EINVAL */

/* Starts an incident at ts_ns (the trigger time). *ret is owned by the caller: incident_free().
 * Returns 0, -EINVAL (NULL/empty/over-long instance, bad trigger), -ENOMEM. */
int incident_new(const char *instance, enum incident_trigger trigger, uint64_t ts_ns, struct incident **ret);
/* Returns 0, -EINVAL, -ENOSPC (INCIDENT_MAX_*), -ENOMEM. Text is copied and sanitized. */
int incident_add_sample(struct incident *inc, uint64_t ts_ns, uint64_t usage_bytes, uint64_t limit_bytes);
int incident_add_event(struct incident *inc, uint64_t ts_ns, enum incident_event_kind kind, const char *text);
int incident_add_eventf(struct incident *inc, uint64_t ts_ns, enum incident_event_kind kind, const char *fmt, ...)
	_printf_(4, 5);
int incident_add_generation(struct incident *inc, uint64_t seq, const char *prompt_id, uint64_t peak_bytes,
			    uint64_t residual_bytes);
/* text may be NULL; freed_bytes 0 means none verified. Returns 0, -EINVAL, -ENOMEM. */
int incident_set_outcome(struct incident *inc, enum incident_outcome outcome, const char *text, uint64_t freed_bytes);
/* NULL is fine. */
void incident_free(struct incident *inc);
static inline void incident_freep(struct incident **p) { incident_free(*p); }
#define _cleanup_incident_ _cleanup_(incident_freep)

/* Pure: *ret is malloc'd, NUL-terminated, owned by the caller. Return 0, -EINVAL, -ENOMEM. */
int incident_to_json(const struct incident *inc, char **ret);
/* Parses incident.json text back. Returns 0, -EBADMSG (not an incident / wrong version / bad field), -ENOMEM. */
int incident_from_json(const char *text, struct incident **ret);

/* The facts every rendering shows. */
bool incident_valid(const struct incident *inc);
/* The limit shown in the reports: the most recent real one (0 when none; cgroup v1 "unlimited" is none). */
uint64_t incident_limit_bytes(const struct incident *inc);
uint64_t incident_peak_bytes(const struct incident *inc);
/* strftime of ts_ns (UTC) into buf; "?" when it cannot be formatted. Returns buf. */
const char *incident_format_utc(char *buf, size_t size, uint64_t ts_ns, const char *format);

#endif
