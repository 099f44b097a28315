// SPDX-License-Identifier: GPL-2.0
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include "common.h"
#include "metrics.h"
#include "utf8.h"

struct metric_family {
	char name[METRICS_NAME_MAX];
	char help[METRICS_HELP_MAX];
	enum metric_type type;
	bool has_help;
};

struct metric_series {
	char labels[METRICS_LABELS_MAX];
	double value;
	unsigned family;
};

/* Static storage: an update on the hot path never allocates, and a full registry degrades to dropped series
 * instead of an out-of-memory daemon on a host that is already short of memory. */
static struct metric_family families[METRICS_MAX_FAMILIES];
static unsigned n_families;
static struct metric_series series[METRICS_MAX_SERIES];
static unsigned n_series;
static const char *full_what; /* the table that overflowed first, until reported */
static bool full_reported;

static bool is_name_char(char c, bool first, bool colon)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':'))
		return true;
	return !first && c >= '0' && c <= '9';
}

static bool valid_name(const char *s, size_t max, bool colon)
{
	size_t i;

	if (!s || !*s)
		return false;
	for (i = 0; s[i]; i++)
		if (i + 1 >= max || !is_name_char(s[i], i == 0, colon))
			return false;
	return true;
}

/* Accepts exactly what metrics_labels() produces, plus hand-written text in the same grammar:
 * name="value"(,name="value")* with \\ \" \n as the only escapes and no raw newline. */
static bool valid_labels(const char *s)
{
	const char *p = s;

	if (strlen(s) >= METRICS_LABELS_MAX)
		return false;
	while (*p) {
		if (!is_name_char(*p, true, false))
			return false;
		while (is_name_char(*p, false, false))
			p++;
		if (*p++ != '=' || *p++ != '"')
			return false;
		for (;; p++) {
			if (*p == '\0' || *p == '\n')
				return false;
			if (*p == '"')
				break;
			if (*p == '\\') {
				p++;
				if (*p != '\\' && *p != '"' && *p != 'n')
					return false;
			}
		}
		p++;
		if (*p == ',') {
			p++;
			if (!*p)
				return false;
		} else if (*p) {
			return false;
		}
	}
	return true;
}

static int family_find(const char *name)
{
	unsigned i;

	for (i = 0; i < n_families; i++)
		if (strcmp(families[i].name, name) == 0)
			return (int)i;
	return -ENOENT;
}

/* The registry does no I/O: the daemon asks metrics_take_full_warning() and says it once. */
static void warn_full(const char *what)
{
	if (!full_what)
		full_what = what;
}

const char *metrics_take_full_warning(void)
{
	if (!full_what || full_reported)
		return NULL;
	full_reported = true;
	return full_what;
}

static int family_add(const char *name, enum metric_type type)
{
	struct metric_family *f;

	if (n_families >= METRICS_MAX_FAMILIES) {
		warn_full("family table");
		return -ENOSPC;
	}
	f = &families[n_families];
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->type = type;
	return (int)n_families++;
}

static bool family_has_series(unsigned fam)
{
	unsigned i;

	for (i = 0; i < n_series; i++)
		if (series[i].family == fam)
			return true;
	return false;
}

int metrics_describe(const char *name, enum metric_type type, const char *help)
{
	struct metric_family *f;
	int r;

	if (!valid_name(name, METRICS_NAME_MAX, true) || (type != METRIC_COUNTER && type != METRIC_GAUGE))
		return -EINVAL;
	if (help && strlen(help) >= METRICS_HELP_MAX)
		return -EINVAL;
	r = family_find(name);
	if (r >= 0) {
		f = &families[r];
		if (f->type != type && family_has_series((unsigned)r))
			return -EINVAL;
	} else {
		r = family_add(name, type);
		if (r < 0)
			return r;
		f = &families[r];
	}
	f->type = type;
	f->has_help = help != NULL;
	snprintf(f->help, sizeof(f->help), "%s", help ? help : "");
	return 0;
}

int metrics_describe_oomsentry(void)
{
	static const struct {
		const char *name;
		enum metric_type type;
		const char *help;
	} table[] = {
		{ METRIC_EVENTS_TOTAL, METRIC_COUNTER, "Events received from the kernel probes, by type." },
		{ METRIC_BPF_DROPS_TOTAL, METRIC_COUNTER, "Events the BPF programs could not queue (ring buffer full)." },
		{ METRIC_TRACKED_PROCESSES, METRIC_GAUGE, "Processes currently tracked." },
		{ METRIC_RESYNCS_TOTAL, METRIC_COUNTER, "Rescans of /proc after the kernel dropped exec/fork/exit events." },
		{ METRIC_MEMORY_USAGE_BYTES, METRIC_GAUGE, "Memory charged to the instance's cgroup." },
		{ METRIC_MEMORY_LIMIT_BYTES, METRIC_GAUGE, "Memory limit that applies to the instance." },
		{ METRIC_GENERATIONS_TOTAL, METRIC_COUNTER, "Finished ComfyUI generations (prompts), by status." },
		{ METRIC_GENERATION_PEAK_BYTES, METRIC_GAUGE, "Peak memory of the last generation." },
		{ METRIC_GENERATION_RESIDUAL_BYTES, METRIC_GAUGE, "Memory left after the last generation finished." },
		{ METRIC_LEAK_BYTES_PER_GENERATION, METRIC_GAUGE, "Residual memory growth per generation (regression slope)." },
		{ METRIC_FORECAST_GENERATIONS_LEFT, METRIC_GAUGE, "Generations left before the forecast reaches the limit." },
		{ METRIC_ACTIONS_TOTAL, METRIC_COUNTER, "Prevention actions taken, by action and result." },
		{ METRIC_FREED_BYTES_TOTAL, METRIC_COUNTER, "Memory verified as freed by prevention actions." },
		{ METRIC_OOM_KILLS_TOTAL, METRIC_COUNTER, "OOM kills observed, by the victim's cgroup." },
		{ METRIC_ORPHANS, METRIC_GAUGE, "Orphaned ComfyUI processes currently present." },
		{ METRIC_CRASH_LOOPS_TOTAL, METRIC_COUNTER, "Crash loops detected." },
		{ METRIC_LADDER_EXHAUSTED_TOTAL, METRIC_COUNTER,
		  "Times the ladder was under pressure with no rung left that could help." },
		{ METRIC_PROBES_ATTACHED, METRIC_GAUGE, "BPF programs attached (0: polling /proc without BPF)." },
		{ METRIC_PROBES_EXPECTED, METRIC_GAUGE, "BPF programs this kernel and configuration ask for." },
	};
	size_t i;
	int r;

	for (i = 0; i < ARRAY_SIZE(table); i++) {
		r = metrics_describe(table[i].name, table[i].type, table[i].help);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Finds or creates the series; creating an undescribed family gives it the caller's type. */
static int series_lookup(const char *name, const char *labels, enum metric_type type, bool create,
			 struct metric_series **ret)
{
	unsigned i;
	int fam;

	if (!labels)
		labels = "";
	if (!valid_name(name, METRICS_NAME_MAX, true) || !valid_labels(labels))
		return -EINVAL;
	fam = family_find(name);
	if (fam >= 0 && families[fam].type != type)
		return -EINVAL;
	if (fam >= 0)
		for (i = 0; i < n_series; i++)
			if (series[i].family == (unsigned)fam && strcmp(series[i].labels, labels) == 0) {
				*ret = &series[i];
				return 0;
			}
	if (!create)
		return -ENOENT;
	if (n_series >= METRICS_MAX_SERIES) {
		warn_full("series table");
		return -ENOSPC;
	}
	if (fam < 0) {
		fam = family_add(name, type);
		if (fam < 0)
			return fam;
	}
	*ret = &series[n_series++];
	memset(*ret, 0, sizeof(**ret));
	(*ret)->family = (unsigned)fam;
	snprintf((*ret)->labels, sizeof((*ret)->labels), "%s", labels);
	return 0;
}

int metrics_set_gauge(const char *name, const char *labels, double value)
{
	struct metric_series *s;
	int r;

	r = series_lookup(name, labels, METRIC_GAUGE, true, &s);
	if (r < 0)
		return r;
	s->value = value;
	return 0;
}

int metrics_add_counter(const char *name, const char *labels, double delta)
{
	struct metric_series *s;
	int r;

	/* Counters only go up; a negative or NaN delta is a caller bug that would corrupt rate() forever. */
	if (!(delta >= 0))
		return -EINVAL;
	r = series_lookup(name, labels, METRIC_COUNTER, true, &s);
	if (r < 0)
		return r;
	s->value += delta;
	return 0;
}

int metrics_set_counter(const char *name, const char *labels, double value)
{
	struct metric_series *s;
	int r;

	if (!(value >= 0))
		return -EINVAL;
	r = series_lookup(name, labels, METRIC_COUNTER, true, &s);
	if (r < 0)
		return r;
	s->value = value;
	return 0;
}

int metrics_get(const char *name, const char *labels, double *ret_value)
{
	struct metric_series *s;
	int fam, r;

	if (!name || !ret_value)
		return -EINVAL;
	fam = family_find(name);
	if (fam < 0)
		return valid_name(name, METRICS_NAME_MAX, true) ? -ENOENT : -EINVAL;
	r = series_lookup(name, labels, families[fam].type, false, &s);
	if (r < 0)
		return r;
	*ret_value = s->value;
	return 0;
}


int metrics_labels(char *buf, size_t size, ...)
{
	const char *name, *value;
	size_t len = 0;
	int r = 0;
	va_list ap;

#define PUT(c)                                   \
	do {                                     \
		if (len + 1 >= size) {           \
			r = -ENOBUFS;            \
			goto out;                \
		}                                \
		buf[len++] = (c);                \
	} while (0)

	if (!buf || size == 0)
		return -ENOBUFS;
	va_start(ap, size);
	while ((name = va_arg(ap, const char *))) {
		value = va_arg(ap, const char *);
		if (!value || !valid_name(name, METRICS_NAME_MAX, false)) {
			r = -EINVAL;
			goto out;
		}
		if (len > 0)
			PUT(',');
		for (; *name; name++)
			PUT(*name);
		PUT('=');
		PUT('"');
		while (*value) {
			size_t n = utf8_seq_len((const unsigned char *)value);

			if (*value == '\\' || *value == '"') {
				PUT('\\');
				PUT(*value);
			} else if (*value == '\n') {
				PUT('\\');
				PUT('n');
			} else if (n == 0) {
				PUT('?');
				n = 1;
			} else {
				for (size_t i = 0; i < n; i++)
					PUT(value[i]);
				value += n;
				continue;
			}
			value++;
		}
		PUT('"');
	}
#undef PUT
out:
	va_end(ap);
	if (r < 0) {
		buf[0] = '\0';
		return r;
	}
	if (len >= METRICS_LABELS_MAX) {
		buf[0] = '\0';
		return -ENOBUFS;
	}
	buf[len] = '\0';
	return (int)len;
}

/* Sizes the reply in a first pass (buf == NULL) so a scrape makes exactly one allocation. */
struct out {
	char *buf;
	size_t len;
};

static void out_mem(struct out *o, const char *s, size_t n)
{
	if (o->buf)
		memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void out_str(struct out *o, const char *s)
{
	out_mem(o, s, strlen(s));
}

static void out_help(struct out *o, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			out_str(o, "\\\\");
		else if (*s == '\n')
			out_str(o, "\\n");
		else
			out_mem(o, s, 1);
	}
}

/* Shortest text that parses back to the same double, in the spellings Prometheus' parser accepts. */
static void format_value(double v, char *buf, size_t size)
{
	if (isnan(v)) {
		snprintf(buf, size, "NaN");
	} else if (isinf(v)) {
		snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
	} else if (v == 0) {
		snprintf(buf, size, "0");
	} else if (fabs(v) < 1e15 && v == trunc(v)) {
		snprintf(buf, size, "%.0f", v);
	} else {
		snprintf(buf, size, "%.15g", v);
		if (strtod(buf, NULL) != v)
			snprintf(buf, size, "%.17g", v);
	}
}

static void render(struct out *o)
{
	static const char *const type_name[] = { [METRIC_COUNTER] = "counter", [METRIC_GAUGE] = "gauge" };
	unsigned f, i;
	char value[64];

	for (f = 0; f < n_families; f++) {
		const struct metric_family *fam = &families[f];

		if (!family_has_series(f))
			continue;
		if (fam->has_help) {
			out_str(o, "# HELP ");
			out_str(o, fam->name);
			out_str(o, " ");
			out_help(o, fam->help);
			out_str(o, "\n");
		}
		out_str(o, "# TYPE ");
		out_str(o, fam->name);
		out_str(o, " ");
		out_str(o, type_name[fam->type]);
		out_str(o, "\n");
		for (i = 0; i < n_series; i++) {
			if (series[i].family != f)
				continue;
			out_str(o, fam->name);
			if (series[i].labels[0]) {
				out_str(o, "{");
				out_str(o, series[i].labels);
				out_str(o, "}");
			}
			format_value(series[i].value, value, sizeof(value));
			out_str(o, " ");
			out_str(o, value);
			out_str(o, "\n");
		}
	}
}

int metrics_render(char **ret, size_t *ret_len)
{
	struct out o = {};

	if (!ret || !ret_len)
		return -EINVAL;
	render(&o);
	o.buf = malloc(o.len + 1);
	if (!o.buf)
		return -ENOMEM;
	o.len = 0;
	render(&o);
	o.buf[o.len] = '\0';
	*ret = o.buf;
	*ret_len = o.len;
	return 0;
}

void metrics_reset(void)
{
	n_families = 0;
	n_series = 0;
	full_what = NULL;
	full_reported = false;
}
