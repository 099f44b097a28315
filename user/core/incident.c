// SPDX-License-Identifier: GPL-2.0
/* Incidents: the builder, the shared facts of a report, and incident.json both ways. Rendering for people is
 * incident-render.c, files on disk incident-store.c. */
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include "common.h"
#include "incident.h"
#include "utf8.h"

/* cgroup v1 reports "unlimited" as a page-rounded LONG_MAX; anything this large is not a real limit. */
#define LIMIT_UNLIMITED_MIN ((uint64_t)1 << 62)

static const char *const trigger_names[_INCIDENT_TRIGGER_MAX] = {
	[INCIDENT_TRIGGER_FORECAST] = "forecast",
	[INCIDENT_TRIGGER_USAGE] = "usage",
	[INCIDENT_TRIGGER_RECLAIM] = "reclaim",
	[INCIDENT_TRIGGER_OOM_KILL] = "oom-kill",
};

static const char *const kind_names[_INCIDENT_EVENT_MAX] = {
	[INCIDENT_EVENT_NOTE] = "note",
	[INCIDENT_EVENT_GENERATION] = "generation",
	[INCIDENT_EVENT_ACTION] = "action",
	[INCIDENT_EVENT_RESULT] = "result",
	[INCIDENT_EVENT_PRESSURE] = "pressure",
	[INCIDENT_EVENT_OOM_KILL] = "oom-kill",
};

static const char *const outcome_names[_INCIDENT_OUTCOME_MAX] = {
	[INCIDENT_OUTCOME_UNKNOWN] = "unknown",
	[INCIDENT_OUTCOME_PREVENTED] = "prevented",
	[INCIDENT_OUTCOME_FAILED] = "failed",
	[INCIDENT_OUTCOME_OOM_KILLED] = "oom-killed",
	[INCIDENT_OUTCOME_DRY_RUN] = "dry-run",
};

static int lookup(const char *const *names, size_t n, const char *s)
{
	size_t i;

	if (!s)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], s) == 0)
			return (int)i;
	return -EINVAL;
}

const char *incident_trigger_to_string(enum incident_trigger t)
{
	return (unsigned)t < _INCIDENT_TRIGGER_MAX ? trigger_names[t] : NULL;
}

int incident_trigger_from_string(const char *s)
{
	return lookup(trigger_names, _INCIDENT_TRIGGER_MAX, s);
}

const char *incident_event_kind_to_string(enum incident_event_kind k)
{
	return (unsigned)k < _INCIDENT_EVENT_MAX ? kind_names[k] : NULL;
}

int incident_event_kind_from_string(const char *s)
{
	return lookup(kind_names, _INCIDENT_EVENT_MAX, s);
}

const char *incident_outcome_to_string(enum incident_outcome o)
{
	return (unsigned)o < _INCIDENT_OUTCOME_MAX ? outcome_names[o] : NULL;
}

int incident_outcome_from_string(const char *s)
{
	return lookup(outcome_names, _INCIDENT_OUTCOME_MAX, s);
}

/* ---- text hygiene ---- */


/* Text ends up in a terminal, an XML document and JSON: make it one line of valid UTF-8, cut at max bytes
 * without splitting a character. Control characters become spaces, invalid bytes '?'. */
static char *text_dup(const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = 0, n;
	char *d;

	d = malloc(MIN(strlen(s), max) + 1);
	if (!d)
		return NULL;
	while (*p) {
		n = utf8_seq_len(p);
		if (n == 0)
			n = 1;
		if (len + n > max)
			break;
		if (n == 1 && (*p < 0x20 || *p == 0x7f))
			d[len] = ' ';
		else if (n == 1 && *p >= 0x80)
			d[len] = '?';
		else
			memcpy(d + len, p, n);
		len += n;
		p += n;
	}
	d[len] = '\0';
	return d;
}

/* ---- builder ---- */

int incident_new(const char *instance, enum incident_trigger trigger, uint64_t ts_ns, struct incident **ret)
{
	struct incident *inc;

	if (!ret)
		return -EINVAL;
	*ret = NULL;
	if (!instance || !*instance || strlen(instance) > INCIDENT_INSTANCE_MAX || !incident_trigger_to_string(trigger))
		return -EINVAL;
	inc = calloc(1, sizeof(*inc));
	if (!inc)
		return -ENOMEM;
	inc->instance = text_dup(instance, INCIDENT_INSTANCE_MAX);
	if (!inc->instance) {
		free(inc);
		return -ENOMEM;
	}
	inc->trigger = trigger;
	inc->ts_ns = ts_ns;
	*ret = inc;
	return 0;
}

static int grow(void **array, size_t *allocated, size_t n, size_t elem_size, size_t max)
{
	size_t want;
	void *p;

	if (n >= max)
		return -ENOSPC;
	if (n < *allocated)
		return 0;
	want = *allocated ? *allocated * 2 : 64;
	if (want > max)
		want = max;
	p = reallocarray(*array, want, elem_size);
	if (!p)
		return -ENOMEM;
	*array = p;
	*allocated = want;
	return 0;
}

int incident_add_sample(struct incident *inc, uint64_t ts_ns, uint64_t usage_bytes, uint64_t limit_bytes)
{
	size_t i;
	int r;

	if (!inc)
		return -EINVAL;
	r = grow((void **)&inc->samples, &inc->allocated_samples, inc->n_samples, sizeof(*inc->samples),
		 INCIDENT_MAX_SAMPLES);
	if (r < 0)
		return r;
	/* Samples nearly always arrive in order, so this scan is O(1) in practice. */
	for (i = inc->n_samples; i > 0 && inc->samples[i - 1].ts_ns > ts_ns; i--)
		;
	memmove(inc->samples + i + 1, inc->samples + i, (inc->n_samples - i) * sizeof(*inc->samples));
	inc->samples[i] = (struct incident_sample){ ts_ns, usage_bytes, limit_bytes };
	inc->n_samples++;
	return 0;
}

int incident_add_event(struct incident *inc, uint64_t ts_ns, enum incident_event_kind kind, const char *text)
{
	char *copy;
	size_t i;
	int r;

	if (!inc || !text || !incident_event_kind_to_string(kind))
		return -EINVAL;
	r = grow((void **)&inc->events, &inc->allocated_events, inc->n_events, sizeof(*inc->events),
		 INCIDENT_MAX_EVENTS);
	if (r < 0)
		return r;
	copy = text_dup(text, INCIDENT_TEXT_MAX);
	if (!copy)
		return -ENOMEM;
	for (i = inc->n_events; i > 0 && inc->events[i - 1].ts_ns > ts_ns; i--)
		;
	memmove(inc->events + i + 1, inc->events + i, (inc->n_events - i) * sizeof(*inc->events));
	inc->events[i] = (struct incident_event){ ts_ns, kind, copy };
	inc->n_events++;
	return 0;
}

int incident_add_eventf(struct incident *inc, uint64_t ts_ns, enum incident_event_kind kind, const char *fmt, ...)
{
	char buf[INCIDENT_TEXT_MAX + 1];
	va_list ap;

	if (!fmt)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return incident_add_event(inc, ts_ns, kind, buf);
}

int incident_add_generation(struct incident *inc, uint64_t seq, const char *prompt_id, uint64_t peak_bytes,
			    uint64_t residual_bytes)
{
	char *copy;
	int r;

	if (!inc)
		return -EINVAL;
	r = grow((void **)&inc->generations, &inc->allocated_generations, inc->n_generations,
		 sizeof(*inc->generations), INCIDENT_MAX_GENERATIONS);
	if (r < 0)
		return r;
	copy = text_dup(prompt_id ? prompt_id : "", INCIDENT_PROMPT_ID_MAX);
	if (!copy)
		return -ENOMEM;
	inc->generations[inc->n_generations++] = (struct incident_generation){ seq, copy, peak_bytes, residual_bytes };
	return 0;
}

int incident_set_outcome(struct incident *inc, enum incident_outcome outcome, const char *text, uint64_t freed_bytes)
{
	char *copy = NULL;

	if (!inc || !incident_outcome_to_string(outcome))
		return -EINVAL;
	if (text && *text) {
		copy = text_dup(text, INCIDENT_TEXT_MAX);
		if (!copy)
			return -ENOMEM;
	}
	free(inc->outcome_text);
	inc->outcome_text = copy;
	inc->outcome = outcome;
	inc->freed_bytes = freed_bytes;
	return 0;
}

void incident_free(struct incident *inc)
{
	size_t i;

	if (!inc)
		return;
	for (i = 0; i < inc->n_events; i++)
		free(inc->events[i].text);
	for (i = 0; i < inc->n_generations; i++)
		free(inc->generations[i].prompt_id);
	free(inc->events);
	free(inc->generations);
	free(inc->samples);
	free(inc->outcome_text);
	free(inc->instance);
	free(inc);
}

/* ---- shared facts of a report ---- */

static bool limit_valid(uint64_t limit)
{
	return limit > 0 && limit < LIMIT_UNLIMITED_MIN;
}

/* The limit shown in the reports: the most recent real one (a limit can be raised during an incident). */
uint64_t incident_limit_bytes(const struct incident *inc)
{
	size_t i;

	for (i = inc->n_samples; i > 0; i--)
		if (limit_valid(inc->samples[i - 1].limit_bytes))
			return inc->samples[i - 1].limit_bytes;
	return 0;
}

uint64_t incident_peak_bytes(const struct incident *inc)
{
	uint64_t peak = 0;
	size_t i;

	for (i = 0; i < inc->n_samples; i++)
		peak = MAX(peak, inc->samples[i].usage_bytes);
	return peak;
}

const char *incident_format_utc(char *buf, size_t size, uint64_t ts_ns, const char *format)
{
	time_t t = (time_t)(ts_ns / NSEC_PER_SEC);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(buf, size, format, &tm) == 0)
		snprintf(buf, size, "?");
	return buf;
}

bool incident_valid(const struct incident *inc)
{
	return inc && inc->instance && incident_trigger_to_string(inc->trigger) &&
	       incident_outcome_to_string(inc->outcome);
}


/* ---- incident.json ---- */

static json_object *json_str(const char *s)
{
	return s ? json_object_new_string(s) : json_object_new_null();
}

int incident_to_json(const struct incident *inc, char **ret)
{
	json_object *root, *arr, *o;
	char when[64], iso[80];
	const char *text;
	size_t i;
	int r = -ENOMEM;

	if (!incident_valid(inc) || !ret)
		return -EINVAL;
	root = json_object_new_object();
	if (!root)
		return -ENOMEM;
	incident_format_utc(when, sizeof(when), inc->ts_ns, "%Y-%m-%dT%H:%M:%S");
	snprintf(iso, sizeof(iso), "%s.%03" PRIu64 "Z", when, (uint64_t)(inc->ts_ns % NSEC_PER_SEC / NSEC_PER_MSEC));

	/* json-c's add functions only fail on allocation; a failed object add leaves a hole that
	 * json_object_to_json_string would still serialize, so the final string is checked instead. */
	json_object_object_add(root, "format", json_object_new_string(INCIDENT_FORMAT_NAME));
	json_object_object_add(root, "version", json_object_new_int(INCIDENT_FORMAT_VERSION));
	json_object_object_add(root, "instance", json_object_new_string(inc->instance));
	json_object_object_add(root, "trigger", json_object_new_string(incident_trigger_to_string(inc->trigger)));
	json_object_object_add(root, "ts_ns", json_object_new_uint64(inc->ts_ns));
	json_object_object_add(root, "time", json_object_new_string(iso));

	o = json_object_new_object();
	json_object_object_add(o, "result", json_object_new_string(incident_outcome_to_string(inc->outcome)));
	json_object_object_add(o, "text", json_str(inc->outcome_text));
	json_object_object_add(o, "freed_bytes", json_object_new_uint64(inc->freed_bytes));
	json_object_object_add(root, "outcome", o);

	o = json_object_new_object();
	json_object_object_add(o, "peak_usage_bytes", json_object_new_uint64(incident_peak_bytes(inc)));
	json_object_object_add(o, "limit_bytes", json_object_new_uint64(incident_limit_bytes(inc)));
	json_object_object_add(root, "summary", o);

	arr = json_object_new_array_ext((int)inc->n_samples);
	for (i = 0; i < inc->n_samples; i++) {
		o = json_object_new_object();
		json_object_object_add(o, "ts_ns", json_object_new_uint64(inc->samples[i].ts_ns));
		json_object_object_add(o, "usage_bytes", json_object_new_uint64(inc->samples[i].usage_bytes));
		json_object_object_add(o, "limit_bytes", json_object_new_uint64(inc->samples[i].limit_bytes));
		json_object_array_add(arr, o);
	}
	json_object_object_add(root, "samples", arr);

	arr = json_object_new_array_ext((int)inc->n_events);
	for (i = 0; i < inc->n_events; i++) {
		o = json_object_new_object();
		json_object_object_add(o, "ts_ns", json_object_new_uint64(inc->events[i].ts_ns));
		json_object_object_add(o, "kind",
				       json_object_new_string(incident_event_kind_to_string(inc->events[i].kind)));
		json_object_object_add(o, "text", json_object_new_string(inc->events[i].text));
		json_object_array_add(arr, o);
	}
	json_object_object_add(root, "events", arr);

	arr = json_object_new_array_ext((int)inc->n_generations);
	for (i = 0; i < inc->n_generations; i++) {
		o = json_object_new_object();
		json_object_object_add(o, "seq", json_object_new_uint64(inc->generations[i].seq));
		json_object_object_add(o, "prompt_id", json_object_new_string(inc->generations[i].prompt_id));
		json_object_object_add(o, "peak_bytes", json_object_new_uint64(inc->generations[i].peak_bytes));
		json_object_object_add(o, "residual_bytes", json_object_new_uint64(inc->generations[i].residual_bytes));
		json_object_array_add(arr, o);
	}
	json_object_object_add(root, "generations", arr);

	o = json_object_new_object();
	json_object_object_add(o, "timeline", json_object_new_string(INCIDENT_TIMELINE));
	json_object_object_add(o, "svg", json_object_new_string(INCIDENT_SVG));
	json_object_object_add(root, "files", o);

	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text) {
		size_t len = strlen(text);

		*ret = malloc(len + 2);
		if (*ret) {
			memcpy(*ret, text, len);
			memcpy(*ret + len, "\n", 2);
			r = 0;
		}
	}
	json_object_put(root);
	return r;
}

static int json_get_u64(json_object *obj, const char *key, bool required, uint64_t *ret)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null)) {
		if (required)
			return -EBADMSG;
		*ret = 0;
		return 0;
	}
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return -EBADMSG;
	*ret = json_object_get_uint64(v);
	return 0;
}

/* Returns a pointer owned by obj, or NULL for an absent/null optional member. */
static int json_get_str(json_object *obj, const char *key, bool required, const char **ret)
{
	json_object *v;

	*ret = NULL;
	if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
		return required ? -EBADMSG : 0;
	if (!json_object_is_type(v, json_type_string))
		return -EBADMSG;
	*ret = json_object_get_string(v);
	return 0;
}

/* An optional array member; NULL when absent. */
static int json_get_array(json_object *obj, const char *key, json_object **ret)
{
	json_object *v;

	*ret = NULL;
	if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return -EBADMSG;
	*ret = v;
	return 0;
}

/* Anything but running out of memory means the document is not one of ours. */
static int bad(int r)
{
	return r == -ENOMEM ? r : -EBADMSG;
}

static int from_json(json_object *root, struct incident **ret)
{
	_cleanup_incident_ struct incident *inc = NULL;
	json_object *arr, *outcome;
	const char *s, *instance;
	uint64_t ts, a, b, c, version;
	size_t i, n;
	int r, trigger;

	if (!json_object_is_type(root, json_type_object))
		return -EBADMSG;
	if (json_get_str(root, "format", true, &s) < 0 || strcmp(s, INCIDENT_FORMAT_NAME) != 0)
		return -EBADMSG;
	if (json_get_u64(root, "version", true, &version) < 0 || version != INCIDENT_FORMAT_VERSION)
		return -EBADMSG;
	if (json_get_str(root, "instance", true, &instance) < 0 || json_get_str(root, "trigger", true, &s) < 0 ||
	    json_get_u64(root, "ts_ns", true, &ts) < 0)
		return -EBADMSG;
	trigger = incident_trigger_from_string(s);
	if (trigger < 0)
		return -EBADMSG;
	r = incident_new(instance, (enum incident_trigger)trigger, ts, &inc);
	if (r < 0)
		return bad(r);

	if (json_object_object_get_ex(root, "outcome", &outcome) && !json_object_is_type(outcome, json_type_null)) {
		const char *result, *text;
		int o;

		if (!json_object_is_type(outcome, json_type_object) || json_get_str(outcome, "result", true, &result) < 0 ||
		    json_get_str(outcome, "text", false, &text) < 0 || json_get_u64(outcome, "freed_bytes", false, &a) < 0)
			return -EBADMSG;
		o = incident_outcome_from_string(result);
		r = incident_set_outcome(inc, o < 0 ? INCIDENT_OUTCOME_UNKNOWN : (enum incident_outcome)o, text, a);
		if (r < 0)
			return bad(r);
	}

	if (json_get_array(root, "samples", &arr) < 0)
		return -EBADMSG;
	n = arr ? json_object_array_length(arr) : 0;
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);

		if (!json_object_is_type(e, json_type_object) || json_get_u64(e, "ts_ns", true, &a) < 0 ||
		    json_get_u64(e, "usage_bytes", true, &b) < 0 || json_get_u64(e, "limit_bytes", false, &c) < 0)
			return -EBADMSG;
		r = incident_add_sample(inc, a, b, c);
		if (r < 0)
			return bad(r);
	}

	if (json_get_array(root, "events", &arr) < 0)
		return -EBADMSG;
	n = arr ? json_object_array_length(arr) : 0;
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		const char *kind, *text;
		int k;

		if (!json_object_is_type(e, json_type_object) || json_get_u64(e, "ts_ns", true, &a) < 0 ||
		    json_get_str(e, "kind", false, &kind) < 0 || json_get_str(e, "text", true, &text) < 0)
			return -EBADMSG;
		/* A kind from a newer daemon still shows, as a note. */
		k = incident_event_kind_from_string(kind);
		r = incident_add_event(inc, a, k < 0 ? INCIDENT_EVENT_NOTE : (enum incident_event_kind)k, text);
		if (r < 0)
			return bad(r);
	}

	if (json_get_array(root, "generations", &arr) < 0)
		return -EBADMSG;
	n = arr ? json_object_array_length(arr) : 0;
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		const char *prompt;

		if (!json_object_is_type(e, json_type_object) || json_get_u64(e, "seq", true, &a) < 0 ||
		    json_get_str(e, "prompt_id", false, &prompt) < 0 || json_get_u64(e, "peak_bytes", false, &b) < 0 ||
		    json_get_u64(e, "residual_bytes", false, &c) < 0)
			return -EBADMSG;
		r = incident_add_generation(inc, a, prompt, b, c);
		if (r < 0)
			return bad(r);
	}

	*ret = TAKE_PTR(inc);
	return 0;
}

int incident_from_json(const char *text, struct incident **ret)
{
	struct json_tokener *tok;
	json_object *root;
	size_t len;
	int r;

	if (!ret)
		return -EINVAL;
	*ret = NULL;
	if (!text)
		return -EBADMSG;
	len = strlen(text);
	if (len > INT_MAX)
		return -EBADMSG;
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	root = json_tokener_parse_ex(tok, text, (int)len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(root);
		json_tokener_free(tok);
		return -EBADMSG;
	}
	/* Trailing garbage means the file is not what we wrote. */
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
		if (!strchr(" \t\r\n", text[i])) {
			json_object_put(root);
			json_tokener_free(tok);
			return -EBADMSG;
		}
	json_tokener_free(tok);
	r = from_json(root, ret);
	json_object_put(root);
	return r;
}
