// SPDX-License-Identifier: GPL-2.0
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "utf8.h"
#include "incident.h"
#include "log.h"

#define MIB_BYTES ((uint64_t)1 << 20)
/* cgroup v1 reports "unlimited" as a page-rounded LONG_MAX; anything this large is not a real limit. */
#define LIMIT_UNLIMITED_MIN ((uint64_t)1 << 62)
#define INCIDENT_FILE_MAX (64u << 20)
#define INCIDENT_FORMAT_NAME "oomsentry-incident"

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

/* ---- shared formatting ---- */

static bool limit_valid(uint64_t limit)
{
	return limit > 0 && limit < LIMIT_UNLIMITED_MIN;
}

/* The limit shown in the reports: the most recent real one (a limit can be raised during an incident). */
static uint64_t current_limit(const struct incident *inc)
{
	size_t i;

	for (i = inc->n_samples; i > 0; i--)
		if (limit_valid(inc->samples[i - 1].limit_bytes))
			return inc->samples[i - 1].limit_bytes;
	return 0;
}

static uint64_t peak_usage(const struct incident *inc)
{
	uint64_t peak = 0;
	size_t i;

	for (i = 0; i < inc->n_samples; i++)
		peak = MAX(peak, inc->samples[i].usage_bytes);
	return peak;
}

/* Integer arithmetic so that the text is identical on every machine. */
static const char *fmt_mib(char *buf, size_t size, uint64_t bytes)
{
	uint64_t whole = bytes / MIB_BYTES, tenths = ((bytes % MIB_BYTES) * 10 + MIB_BYTES / 2) / MIB_BYTES;

	if (tenths == 10)
		whole++, tenths = 0;
	snprintf(buf, size, "%" PRIu64 ".%" PRIu64 " MiB", whole, tenths);
	return buf;
}

static const char *fmt_rel(char *buf, size_t size, uint64_t ts_ns, uint64_t t0_ns)
{
	bool neg = ts_ns < t0_ns;
	uint64_t diff = neg ? t0_ns - ts_ns : ts_ns - t0_ns;
	uint64_t ds = diff / 100000000 + (diff % 100000000 >= 50000000);

	snprintf(buf, size, "%c%" PRIu64 ".%" PRIu64 " s", neg && ds ? '-' : '+', ds / 10, ds % 10);
	return buf;
}

static const char *fmt_utc(char *buf, size_t size, uint64_t ts_ns, const char *format)
{
	time_t t = (time_t)(ts_ns / NSEC_PER_SEC);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(buf, size, format, &tm) == 0)
		snprintf(buf, size, "?");
	return buf;
}

/* Usage at ts: the last sample at or before it; NULL when there is none yet. */
static const struct incident_sample *sample_at(const struct incident *inc, uint64_t ts_ns)
{
	size_t lo = 0, hi = inc->n_samples;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (inc->samples[mid].ts_ns <= ts_ns)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &inc->samples[lo - 1] : NULL;
}

static int memstream_finish(FILE *f, char **buf, char **ret)
{
	bool failed = ferror(f);

	if (fclose(f) != 0 || failed || !*buf) {
		free(*buf);
		*buf = NULL;
		return -ENOMEM;
	}
	*ret = *buf;
	return 0;
}

static bool incident_valid(const struct incident *inc)
{
	return inc && inc->instance && incident_trigger_to_string(inc->trigger) &&
	       incident_outcome_to_string(inc->outcome);
}

/* ---- timeline.txt ---- */

static void timeline_row(FILE *f, const struct incident *inc, uint64_t ts_ns, const char *kind, const char *text)
{
	const struct incident_sample *s = sample_at(inc, ts_ns);
	char rel[32], usage[32];

	fprintf(f, "%10s  %14s  %-10s  %s\n", fmt_rel(rel, sizeof(rel), ts_ns, inc->ts_ns),
		s ? fmt_mib(usage, sizeof(usage), s->usage_bytes) : "-", kind, text);
}

int incident_render_timeline(const struct incident *inc, char **ret)
{
	char a[32], b[32], when[64];
	uint64_t limit, peak;
	bool trigger_done = false;
	char *buf = NULL;
	size_t size, i;
	FILE *f;

	if (!incident_valid(inc) || !ret)
		return -EINVAL;
	f = open_memstream(&buf, &size);
	if (!f)
		return -ENOMEM;

	fprintf(f, "oomsentry incident\n");
	fprintf(f, "instance:  %s\n", inc->instance);
	fprintf(f, "trigger:   %s\n", incident_trigger_to_string(inc->trigger));
	fprintf(f, "time:      %s\n", fmt_utc(when, sizeof(when), inc->ts_ns, "%Y-%m-%d %H:%M:%S UTC"));
	fprintf(f, "outcome:   %s", incident_outcome_to_string(inc->outcome));
	if (inc->outcome_text)
		fprintf(f, ": %s", inc->outcome_text);
	if (inc->freed_bytes)
		fprintf(f, " (freed %s)", fmt_mib(a, sizeof(a), inc->freed_bytes));
	fprintf(f, "\n");

	limit = current_limit(inc);
	peak = peak_usage(inc);
	if (inc->n_samples == 0) {
		fprintf(f, "memory:    no samples\n");
	} else {
		fprintf(f, "memory:    peak %s", fmt_mib(a, sizeof(a), peak));
		if (limit) {
			unsigned __int128 pm = ((unsigned __int128)peak * 1000 + limit / 2) / limit;

			fprintf(f, ", limit %s (%" PRIu64 ".%" PRIu64 " %%)", fmt_mib(b, sizeof(b), limit),
				(uint64_t)(pm / 10), (uint64_t)(pm % 10));
		} else {
			fprintf(f, ", no limit");
		}
		fprintf(f, ", %zu samples from %s", inc->n_samples,
			fmt_rel(a, sizeof(a), inc->samples[0].ts_ns, inc->ts_ns));
		fprintf(f, " to %s\n", fmt_rel(b, sizeof(b), inc->samples[inc->n_samples - 1].ts_ns, inc->ts_ns));
	}

	fprintf(f, "\n%10s  %14s  %-10s  %s\n", "time", "usage", "kind", "event");
	for (i = 0; i < inc->n_events; i++) {
		const struct incident_event *e = &inc->events[i];

		if (!trigger_done && e->ts_ns >= inc->ts_ns) {
			timeline_row(f, inc, inc->ts_ns, "trigger", incident_trigger_to_string(inc->trigger));
			trigger_done = true;
		}
		timeline_row(f, inc, e->ts_ns, incident_event_kind_to_string(e->kind), e->text);
	}
	if (!trigger_done)
		timeline_row(f, inc, inc->ts_ns, "trigger", incident_trigger_to_string(inc->trigger));

	if (inc->n_generations == 0) {
		fprintf(f, "\ngenerations: none\n");
	} else {
		fprintf(f, "\ngenerations:\n%6s  %-36s  %14s  %14s\n", "seq", "prompt", "peak", "residual");
		for (i = 0; i < inc->n_generations; i++) {
			const struct incident_generation *g = &inc->generations[i];

			fprintf(f, "%6" PRIu64 "  %-36s  %14s  %14s\n", g->seq, g->prompt_id[0] ? g->prompt_id : "-",
				fmt_mib(a, sizeof(a), g->peak_bytes), fmt_mib(b, sizeof(b), g->residual_bytes));
		}
	}
	return memstream_finish(f, &buf, ret);
}

/* ---- memory.svg ---- */

#define SVG_W 960
#define SVG_H 540
#define PLOT_L 90.0
#define PLOT_R 930.0
#define PLOT_T 70.0
#define PLOT_B 470.0
#define LABEL_CHARS 24
#define COLOR_USAGE "#1f77b4"
#define COLOR_LIMIT "#d62728"
#define COLOR_TRIGGER "#ff7f0e"
#define COLOR_EVENT "#7f7f7f"

static void xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		default: fputc(*s, f);
		}
	}
}

/* First LABEL_CHARS characters of already sanitized (valid UTF-8) text, with an ellipsis when cut. */
static void xml_label(FILE *f, const char *s)
{
	char buf[LABEL_CHARS * 4 + 4];
	size_t len = 0, chars = 0, n;

	while (s[len] && chars < LABEL_CHARS) {
		n = utf8_seq_len((const unsigned char *)s + len);
		len += n ? n : 1;
		chars++;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	xml_text(f, buf);
	if (s[len])
		fputs("\xe2\x80\xa6", f);
}

/* 1, 2 or 5 times a power of ten, so that about `target` ticks cover span. */
static double nice_step(double span, double target)
{
	double raw = span / target, mag, norm;

	if (!(raw > 0) || !isfinite(raw))
		return 1;
	mag = pow(10, floor(log10(raw)));
	norm = raw / mag;
	return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

static int step_decimals(double step)
{
	return step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
}

struct plot {
	uint64_t t_min, t_max; /* x range, ns */
	double top_mib;        /* y range 0..top_mib */
};

static double plot_x(const struct plot *p, uint64_t ts_ns)
{
	return PLOT_L + (double)(ts_ns - p->t_min) / (double)(p->t_max - p->t_min) * (PLOT_R - PLOT_L);
}

static double plot_y(const struct plot *p, uint64_t bytes)
{
	return PLOT_B - ((double)bytes / (double)MIB_BYTES) / p->top_mib * (PLOT_B - PLOT_T);
}

static void svg_axes(FILE *f, const struct incident *inc, const struct plot *p)
{
	double step, span, r0, r1, v;
	int64_t k, k0, k1;
	int dec;

	/* y: MiB */
	step = nice_step(p->top_mib, 6);
	dec = step_decimals(step);
	fprintf(f, "<g class=\"y-ticks\" text-anchor=\"end\">\n");
	for (k = 0; k <= 50 && k * step <= p->top_mib * (1 + 1e-9); k++) {
		double y = PLOT_B - (k * step) / p->top_mib * (PLOT_B - PLOT_T);

		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#dddddd\"/>\n", PLOT_L, y,
			PLOT_R, y);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%.*f MiB</text>\n", PLOT_L - 6, y + 4, dec, k * step);
	}
	fprintf(f, "</g>\n");
	/* After the grid, so the grid's 0 line does not paint over the axis. */
	fprintf(f, "<g class=\"axes\" stroke=\"#000000\" stroke-width=\"1\">\n");
	fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PLOT_L, PLOT_B, PLOT_R, PLOT_B);
	fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PLOT_L, PLOT_T, PLOT_L, PLOT_B);
	fprintf(f, "</g>\n");

	/* x: seconds relative to the trigger */
	r0 = (double)(int64_t)(p->t_min - inc->ts_ns) / 1e9;
	r1 = (double)(int64_t)(p->t_max - inc->ts_ns) / 1e9;
	span = r1 - r0;
	step = nice_step(span, 8);
	dec = step_decimals(step);
	k0 = (int64_t)ceil(r0 / step - 1e-9);
	k1 = (int64_t)floor(r1 / step + 1e-9);
	if (k1 - k0 > 50)
		k1 = k0 + 50;
	fprintf(f, "<g class=\"x-ticks\" text-anchor=\"middle\">\n");
	for (k = k0; k <= k1; k++) {
		double x;

		v = (double)k * step;
		x = PLOT_L + (v - r0) / span * (PLOT_R - PLOT_L);
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000000\"/>\n", x, PLOT_B, x,
			PLOT_B + 5);
		if (k == 0)
			fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">0 s</text>\n", x, PLOT_B + 18);
		else
			fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%+.*f s</text>\n", x, PLOT_B + 18, dec, v);
	}
	fprintf(f, "</g>\n");
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">seconds relative to the trigger</text>\n",
		(PLOT_L + PLOT_R) / 2, PLOT_B + 40);
	fprintf(f, "<text x=\"20\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 20 %.1f)\">memory "
		   "usage (MiB)</text>\n", (PLOT_T + PLOT_B) / 2, (PLOT_T + PLOT_B) / 2);
}

#define LABEL_ROWS 6
#define LABEL_CHAR_PX 5.6 /* average advance of a 10px sans-serif glyph */

/* Places labels left to right in the first row where they do not overlap the previous label; markers come
 * in time order, so one right edge per row is enough. Dense clusters fall back to the least crowded row. */
struct label_rows {
	double end[LABEL_ROWS];
};

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static void svg_marker(FILE *f, const struct plot *p, struct label_rows *rows, uint64_t ts_ns, const char *cls,
		       const char *color, const char *text, bool dashed)
{
	double x = plot_x(p, ts_ns), w = (double)MIN(utf8_chars(text), (size_t)LABEL_CHARS + 1) * LABEL_CHAR_PX + 6;
	bool right = x + w > PLOT_R;
	double left = right ? x - w : x;
	unsigned row = 0, r;

	for (r = 0; r < LABEL_ROWS; r++) {
		if (rows->end[r] < left) {
			row = r;
			break;
		}
		if (rows->end[r] < rows->end[row])
			row = r;
	}
	rows->end[row] = right ? x : x + w;

	fprintf(f, "<g class=\"%s\">\n<title>", cls);
	xml_text(f, text);
	fprintf(f, "</title>\n");
	fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"%s/>\n", x, PLOT_T, x, PLOT_B,
		color, dashed ? " stroke-dasharray=\"4,3\"" : " stroke-width=\"1.5\"");
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\" text-anchor=\"%s\">", right ? x - 3 : x + 3,
		PLOT_T + 12 + 13.0 * row, color, right ? "end" : "start");
	xml_label(f, text);
	fprintf(f, "</text>\n</g>\n");
}

int incident_render_svg(const struct incident *inc, char **ret)
{
	char when[64], mib[32], title[128];
	struct label_rows rows = {};
	bool trigger_done = false;
	uint64_t limit, top_bytes;
	struct plot p;
	char *buf = NULL;
	size_t size, i;
	FILE *f;

	if (!incident_valid(inc) || !ret)
		return -EINVAL;

	p.t_min = p.t_max = inc->ts_ns;
	if (inc->n_samples) {
		p.t_min = MIN(p.t_min, inc->samples[0].ts_ns);
		p.t_max = MAX(p.t_max, inc->samples[inc->n_samples - 1].ts_ns);
	}
	if (inc->n_events) {
		p.t_min = MIN(p.t_min, inc->events[0].ts_ns);
		p.t_max = MAX(p.t_max, inc->events[inc->n_events - 1].ts_ns);
	}
	if (p.t_max == p.t_min) {
		p.t_min = p.t_min >= NSEC_PER_SEC ? p.t_min - NSEC_PER_SEC : 0;
		p.t_max = p.t_max <= UINT64_MAX - NSEC_PER_SEC ? p.t_max + NSEC_PER_SEC : UINT64_MAX;
	}
	limit = current_limit(inc);
	top_bytes = MAX(peak_usage(inc), limit);
	if (top_bytes < MIB_BYTES)
		top_bytes = MIB_BYTES;
	{
		double want = (double)top_bytes / (double)MIB_BYTES * 1.08, step = nice_step(want, 6);

		p.top_mib = ceil(want / step - 1e-9) * step;
	}

	f = open_memstream(&buf, &size);
	if (!f)
		return -ENOMEM;
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
		   "font-family=\"sans-serif\" font-size=\"11\">\n", SVG_W, SVG_H, SVG_W, SVG_H);
	fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", SVG_W, SVG_H);
	fprintf(f, "<text class=\"title\" x=\"%.1f\" y=\"24\" font-size=\"15\" font-weight=\"bold\">", PLOT_L);
	xml_text(f, inc->instance);
	fprintf(f, ": %s at %s</text>\n", incident_trigger_to_string(inc->trigger),
		fmt_utc(when, sizeof(when), inc->ts_ns, "%Y-%m-%d %H:%M:%S UTC"));
	fprintf(f, "<text class=\"outcome\" x=\"%.1f\" y=\"44\">outcome: %s", PLOT_L,
		incident_outcome_to_string(inc->outcome));
	if (inc->outcome_text) {
		fputs(": ", f);
		xml_text(f, inc->outcome_text);
	}
	if (inc->freed_bytes)
		fprintf(f, " (freed %s)", fmt_mib(mib, sizeof(mib), inc->freed_bytes));
	fprintf(f, "</text>\n");

	svg_axes(f, inc, &p);

	if (limit) {
		double y = plot_y(&p, limit);

		fprintf(f, "<line class=\"limit\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
			   "stroke-width=\"1.5\"/>\n", PLOT_L, y, PLOT_R, y, COLOR_LIMIT);
		/* Below the line at the left: the event labels own the top right. */
		fprintf(f, "<text class=\"limit-label\" x=\"%.1f\" y=\"%.1f\" fill=\"%s\">limit %s</text>\n",
			PLOT_L + 4, y + 13, COLOR_LIMIT, fmt_mib(mib, sizeof(mib), limit));
	}

	if (inc->n_samples) {
		fprintf(f, "<polyline class=\"usage\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
			COLOR_USAGE);
		for (i = 0; i < inc->n_samples; i++)
			fprintf(f, "%s%.1f,%.1f", i ? " " : "", plot_x(&p, inc->samples[i].ts_ns),
				plot_y(&p, inc->samples[i].usage_bytes));
		fprintf(f, "\"/>\n");
	} else {
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no memory samples</text>\n",
			(PLOT_L + PLOT_R) / 2, (PLOT_T + PLOT_B) / 2);
	}

	snprintf(title, sizeof(title), "trigger: %s", incident_trigger_to_string(inc->trigger));
	fprintf(f, "<g class=\"markers\" font-size=\"10\">\n");
	for (i = 0; i <= inc->n_events; i++) {
		const struct incident_event *e = i < inc->n_events ? &inc->events[i] : NULL;

		/* The trigger sits in time order too, ahead of events at the same instant (as in the timeline). */
		if (!trigger_done && (!e || e->ts_ns >= inc->ts_ns)) {
			svg_marker(f, &p, &rows, inc->ts_ns, "trigger", COLOR_TRIGGER, title, false);
			trigger_done = true;
		}
		if (e)
			svg_marker(f, &p, &rows, e->ts_ns, "event", COLOR_EVENT, e->text, true);
	}
	fprintf(f, "</g>\n");
	fprintf(f, "</svg>\n");
	return memstream_finish(f, &buf, ret);
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
	fmt_utc(when, sizeof(when), inc->ts_ns, "%Y-%m-%dT%H:%M:%S");
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
	json_object_object_add(o, "peak_usage_bytes", json_object_new_uint64(peak_usage(inc)));
	json_object_object_add(o, "limit_bytes", json_object_new_uint64(current_limit(inc)));
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

/* ---- files ---- */

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_file_at(int dfd, const char *name, const char *text)
{
	int fd, r;

	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return -errno;
	/* Explicit mode: the report may name prompts and processes, and umask must not widen or narrow it. */
	if (fchmod(fd, 0640) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = write_all(fd, text, strlen(text));
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t i, len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return len ? -ENAMETOOLONG : -EINVAL;
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		if (i < len)
			buf[i] = '/';
	}
	if (stat(path, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* The instance name becomes part of a path: keep it short, visible and free of separators. */
static void path_component(char *buf, size_t size, const char *s)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < size && i < 64; i++) {
		char c = s[i];

		buf[i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
			  c == '_' || (c == '.' && i > 0)) ? c : '_';
	}
	buf[i] = '\0';
}

static void remove_tmp(const char *tmp, int dfd)
{
	static const char *const names[] = { INCIDENT_JSON, INCIDENT_TIMELINE, INCIDENT_SVG };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(names); i++)
		(void)unlinkat(dfd, names[i], 0);
	(void)rmdir(tmp);
}

int incident_write(const struct incident *inc, const char *dir, char *ret_path, size_t ret_path_size)
{
	_cleanup_free_ char *json = NULL, *timeline = NULL, *svg = NULL;
	char tmp[PATH_MAX], final[PATH_MAX], base[160], when[32], inst[80];
	_cleanup_close_ int dfd = -1;
	int r, n;

	if (!incident_valid(inc) || !dir || !*dir || (ret_path && ret_path_size == 0))
		return -EINVAL;
	if (ret_path)
		ret_path[0] = '\0';
	/* Render everything first: a failure here leaves nothing on disk. */
	r = incident_to_json(inc, &json);
	if (r >= 0)
		r = incident_render_timeline(inc, &timeline);
	if (r >= 0)
		r = incident_render_svg(inc, &svg);
	if (r < 0)
		return r;

	r = mkdir_p(dir, 0750);
	if (r < 0)
		return log_error_errno(r, "incident: cannot create %s", dir);
	fmt_utc(when, sizeof(when), inc->ts_ns, "%Y%m%dT%H%M%SZ");
	path_component(inst, sizeof(inst), inc->instance);
	snprintf(base, sizeof(base), "%s-%s-%s", when, inst, incident_trigger_to_string(inc->trigger));
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.incident-XXXXXX", dir) >= sizeof(tmp))
		return -ENAMETOOLONG;
	if (!mkdtemp(tmp))
		return log_error_errno(-errno, "incident: cannot create a directory in %s", dir);
	dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		(void)rmdir(tmp);
		return log_error_errno(r, "incident: cannot open %s", tmp);
	}
	if (fchmod(dfd, 0750) < 0)
		r = -errno;
	if (r >= 0)
		r = write_file_at(dfd, INCIDENT_JSON, json);
	if (r >= 0)
		r = write_file_at(dfd, INCIDENT_TIMELINE, timeline);
	if (r >= 0)
		r = write_file_at(dfd, INCIDENT_SVG, svg);
	if (r < 0) {
		remove_tmp(tmp, dfd);
		return log_error_errno(r, "incident: cannot write the report in %s", dir);
	}

	/* Two incidents of one instance within a second get -2, -3, ...; never overwrite a report. */
	for (n = 1; n < 100; n++) {
		size_t len = n == 1 ? (size_t)snprintf(final, sizeof(final), "%s/%s", dir, base)
				    : (size_t)snprintf(final, sizeof(final), "%s/%s-%d", dir, base, n);

		if (len >= sizeof(final) || (ret_path && len >= ret_path_size)) {
			r = -ENAMETOOLONG;
			break;
		}
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) == 0) {
			r = 0;
			break;
		}
		r = -errno;
		if (r == -EINVAL) {
			/* File systems without RENAME_NOREPLACE: check, then rename (a race only with ourselves). */
			if (access(final, F_OK) == 0) {
				r = -EEXIST;
				continue;
			}
			r = rename(tmp, final) < 0 ? -errno : 0;
			if (r == 0)
				break;
		}
		if (r != -EEXIST && r != -ENOTEMPTY)
			break;
	}
	if (r < 0) {
		remove_tmp(tmp, dfd);
		return log_error_errno(r, "incident: cannot publish %s/%s", dir, base);
	}
	if (ret_path)
		snprintf(ret_path, ret_path_size, "%s", final);
	return 0;
}

static int read_text_file(const char *path, char **ret)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t len = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADMSG;
	if (st.st_size > INCIDENT_FILE_MAX)
		return -EFBIG;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	/* Read to EOF rather than trusting st_size, within the same bound. */
	for (;;) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size + 1 - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > (size_t)st.st_size)
			return -EFBIG;
	}
	buf[len] = '\0';
	if (strlen(buf) != len)
		return -EBADMSG;
	*ret = TAKE_PTR(buf);
	return 0;
}

int incident_load_and_print(const char *path_or_dir, FILE *out)
{
	_cleanup_free_ char *text = NULL, *timeline = NULL, *dir = NULL, *abs_dir = NULL;
	_cleanup_incident_ struct incident *inc = NULL;
	char json_path[PATH_MAX], svg_path[PATH_MAX];
	struct stat st;
	char *slash;
	int r;

	if (!path_or_dir || !*path_or_dir || !out)
		return -EINVAL;
	if (stat(path_or_dir, &st) < 0)
		return log_error_errno(-errno, "%s: cannot open incident", path_or_dir);
	if (S_ISDIR(st.st_mode)) {
		dir = strdup(path_or_dir);
		if ((size_t)snprintf(json_path, sizeof(json_path), "%s/%s", path_or_dir, INCIDENT_JSON) >=
		    sizeof(json_path))
			return log_error_errno(-ENAMETOOLONG, "%s: path too long", path_or_dir);
		if (access(json_path, F_OK) < 0)
			return log_errno(LOG_ERR, -ENOENT, "%s is not an incident directory (no %s in it)", path_or_dir,
					 INCIDENT_JSON);
	} else {
		if ((size_t)snprintf(json_path, sizeof(json_path), "%s", path_or_dir) >= sizeof(json_path))
			return log_error_errno(-ENAMETOOLONG, "%s: path too long", path_or_dir);
		dir = strdup(path_or_dir);
		if (dir) {
			slash = strrchr(dir, '/');
			if (!slash)
				snprintf(dir, strlen(dir) + 1, ".");
			else if (slash == dir)
				slash[1] = '\0';
			else
				*slash = '\0';
		}
	}
	if (!dir)
		return log_error_errno(-ENOMEM, "%s", path_or_dir);

	r = read_text_file(json_path, &text);
	if (r == -EBADMSG)
		return log_errno(LOG_ERR, r, "%s is not an oomsentry incident (not a text file)", json_path);
	if (r < 0)
		return log_error_errno(r, "%s: cannot read", json_path);
	r = incident_from_json(text, &inc);
	if (r == -EBADMSG)
		return log_errno(LOG_ERR, r, "%s is not an oomsentry incident report (format %s version %d)", json_path,
				 INCIDENT_FORMAT_NAME, INCIDENT_FORMAT_VERSION);
	if (r < 0)
		return log_error_errno(r, "%s: cannot load", json_path);
	r = incident_render_timeline(inc, &timeline);
	if (r < 0)
		return log_error_errno(r, "%s: cannot render the timeline", json_path);

	abs_dir = realpath(dir, NULL);
	if ((size_t)snprintf(svg_path, sizeof(svg_path), "%s/%s", abs_dir ? abs_dir : dir, INCIDENT_SVG) >=
	    sizeof(svg_path))
		return log_error_errno(-ENAMETOOLONG, "%s: path too long", dir);
	fputs(timeline, out);
	fprintf(out, "\nplot: %s%s\n", svg_path, access(svg_path, R_OK) == 0 ? "" : " (missing)");
	if (fflush(out) != 0 || ferror(out))
		return -EIO;
	return 0;
}
