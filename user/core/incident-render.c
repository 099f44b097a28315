// SPDX-License-Identifier: GPL-2.0
/* Incident reports for people: timeline.txt and memory.svg, rendered from a built incident. Pure: same incident, same
 * bytes on every machine. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "incident.h"
#include "incident-render.h"
#include "units.h"
#include "utf8.h"

#define MIB_BYTES ((uint64_t)1 << 20)

/* ---- shared formatting ---- */

static const char *fmt_rel(char *buf, size_t size, uint64_t ts_ns, uint64_t t0_ns)
{
	bool neg = ts_ns < t0_ns;
	uint64_t diff = neg ? t0_ns - ts_ns : ts_ns - t0_ns;
	uint64_t ds = diff / 100000000 + (diff % 100000000 >= 50000000);

	snprintf(buf, size, "%c%" PRIu64 ".%" PRIu64 " s", neg && ds ? '-' : '+', ds / 10, ds % 10);
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

/* ---- timeline.txt ---- */

static void timeline_row(FILE *f, const struct incident *inc, uint64_t ts_ns, const char *kind, const char *text)
{
	const struct incident_sample *s = sample_at(inc, ts_ns);
	char rel[32], usage[32];

	fprintf(f, "%10s  %14s  %-10s  %s\n", fmt_rel(rel, sizeof(rel), ts_ns, inc->ts_ns),
		s ? FMT_BYTES(usage, s->usage_bytes) : "-", kind, text);
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
	fprintf(f, "time:      %s\n", incident_format_utc(when, sizeof(when), inc->ts_ns, "%Y-%m-%d %H:%M:%S UTC"));
	fprintf(f, "outcome:   %s", incident_outcome_to_string(inc->outcome));
	if (inc->outcome_text)
		fprintf(f, ": %s", inc->outcome_text);
	if (inc->freed_bytes)
		fprintf(f, " (freed %s)", FMT_BYTES(a, inc->freed_bytes));
	fprintf(f, "\n");

	limit = incident_limit_bytes(inc);
	peak = incident_peak_bytes(inc);
	if (inc->n_samples == 0) {
		fprintf(f, "memory:    no samples\n");
	} else {
		fprintf(f, "memory:    peak %s", FMT_BYTES(a, peak));
		if (limit) {
			unsigned __int128 pm = ((unsigned __int128)peak * 1000 + limit / 2) / limit;

			fprintf(f, ", limit %s (%" PRIu64 ".%" PRIu64 " %%)", FMT_BYTES(b, limit),
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
				FMT_BYTES(a, g->peak_bytes), FMT_BYTES(b, g->residual_bytes));
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
	limit = incident_limit_bytes(inc);
	top_bytes = MAX(incident_peak_bytes(inc), limit);
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
		incident_format_utc(when, sizeof(when), inc->ts_ns, "%Y-%m-%d %H:%M:%S UTC"));
	fprintf(f, "<text class=\"outcome\" x=\"%.1f\" y=\"44\">outcome: %s", PLOT_L,
		incident_outcome_to_string(inc->outcome));
	if (inc->outcome_text) {
		fputs(": ", f);
		xml_text(f, inc->outcome_text);
	}
	if (inc->freed_bytes)
		fprintf(f, " (freed %s)", FMT_BYTES(mib, inc->freed_bytes));
	fprintf(f, "</text>\n");

	svg_axes(f, inc, &p);

	if (limit) {
		double y = plot_y(&p, limit);

		fprintf(f, "<line class=\"limit\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
			   "stroke-width=\"1.5\"/>\n", PLOT_L, y, PLOT_R, y, COLOR_LIMIT);
		/* Below the line at the left: the event labels own the top right. */
		fprintf(f, "<text class=\"limit-label\" x=\"%.1f\" y=\"%.1f\" fill=\"%s\">limit %s</text>\n",
			PLOT_L + 4, y + 13, COLOR_LIMIT, FMT_BYTES(mib, limit));
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
