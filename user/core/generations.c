// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <math.h>
#include <string.h>
#include "generations.h"

static const char *const status_names[_GEN_STATUS_MAX] = {
	[GEN_RUNNING] = "running",
	[GEN_SUCCESS] = "success",
	[GEN_ERROR] = "error",
	[GEN_INTERRUPTED] = "interrupted",
	[GEN_UNKNOWN] = "unknown",
};

const char *gen_status_to_string(enum gen_status s)
{
	if ((unsigned)s >= _GEN_STATUS_MAX)
		return "invalid";
	return status_names[s];
}

int gen_status_from_string(const char *s, enum gen_status *ret)
{
	if (ret)
		*ret = GEN_UNKNOWN;
	if (!s || !ret)
		return -EINVAL;
	for (unsigned i = 0; i < _GEN_STATUS_MAX; i++)
		if (strcmp(s, status_names[i]) == 0) {
			*ret = (enum gen_status)i;
			return 0;
		}
	return -EINVAL;
}

/* Differences of uint64 memory figures can exceed int64_t on garbage input; saturate instead of wrapping. */
static int64_t diff_sat(uint64_t a, uint64_t b)
{
	if (a >= b)
		return a - b > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)(a - b);
	return b - a > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)(b - a);
}

static void copy_trunc(char *dst, size_t size, const char *src)
{
	size_t n = src ? strnlen(src, size - 1) : 0;

	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

static bool id_valid(const char *id)
{
	return id && id[0] != '\0';
}

static bool id_equal(const char *stored, const char *id)
{
	return strncmp(stored, id, GEN_PROMPT_ID_MAX) == 0;
}

/* The ring indices are only ever set by this file, but a caller may hand us a corrupted or uninitialised
 * struct: clamp so that a bad one yields wrong answers, never an out-of-bounds access. */
static size_t ring_count(const struct gen_tracker *t)
{
	return t->count > GEN_RING_SIZE ? GEN_RING_SIZE : t->count;
}

static struct generation *ring_at(const struct gen_tracker *t, size_t i)
{
	size_t idx;

	if (i >= ring_count(t))
		return NULL;
	idx = (t->head % GEN_RING_SIZE + GEN_RING_SIZE - 1 - i) % GEN_RING_SIZE;
	return (struct generation *)&t->ring[idx];
}

static struct generation *running_gen(const struct gen_tracker *t)
{
	struct generation *g;

	if (!t->running)
		return NULL;
	g = ring_at(t, 0);
	return g && g->status == GEN_RUNNING ? g : NULL;
}

int gen_tracker_init(struct gen_tracker *t, const char *instance)
{
	if (!t)
		return -EINVAL;
	memset(t, 0, sizeof(*t));
	copy_trunc(t->instance, sizeof(t->instance), instance);
	t->next_seq = 1;
	t->epoch = 1;
	return 0;
}

size_t gen_count(const struct gen_tracker *t)
{
	return t ? ring_count(t) : 0;
}

const struct generation *gen_get(const struct gen_tracker *t, size_t i)
{
	return t ? ring_at(t, i) : NULL;
}

const struct generation *gen_last(const struct gen_tracker *t)
{
	return gen_get(t, 0);
}

const struct generation *gen_running(const struct gen_tracker *t)
{
	return t ? running_gen(t) : NULL;
}

static struct generation *find_gen(const struct gen_tracker *t, const char *prompt_id)
{
	size_t n = ring_count(t);

	for (size_t i = 0; i < n; i++) {
		struct generation *g = ring_at(t, i);

		if (id_equal(g->prompt_id, prompt_id))
			return g;
	}
	return NULL;
}

const struct generation *gen_find(const struct gen_tracker *t, const char *prompt_id)
{
	if (!t || !id_valid(prompt_id))
		return NULL;
	return find_gen(t, prompt_id);
}

static bool completed_in_epoch(const struct gen_tracker *t, const struct generation *g)
{
	return g->epoch == t->epoch && g->status != GEN_RUNNING && g->has_residual;
}

const struct generation *gen_last_completed(const struct gen_tracker *t)
{
	size_t n;

	if (!t)
		return NULL;
	n = ring_count(t);
	for (size_t i = 0; i < n; i++) {
		const struct generation *g = ring_at(t, i);

		if (g->epoch != t->epoch)
			break;
		if (completed_in_epoch(t, g))
			return g;
	}
	return NULL;
}

unsigned gen_completed_in_epoch(const struct gen_tracker *t)
{
	unsigned c = 0;
	size_t n;

	if (!t)
		return 0;
	n = ring_count(t);
	for (size_t i = 0; i < n; i++) {
		const struct generation *g = ring_at(t, i);

		if (g->epoch != t->epoch)
			break;
		if (completed_in_epoch(t, g))
			c++;
	}
	return c;
}

/* Growth is relative to the previous generation's residual so that a steady leak shows as a constant; the
 * epoch's first generation has no predecessor it may be compared with (after a restart the old residual is gone,
 * and comparing with it would report a large negative growth). */
static void update_growth(const struct gen_tracker *t, struct generation *g)
{
	const struct generation *prev = NULL;

	if (!g->has_residual) {
		g->growth_bytes = 0;
		return;
	}
	if (!g->first_in_epoch) {
		prev = ring_at(t, 1);
		if (g != ring_at(t, 0) || !prev || prev->epoch != g->epoch || !prev->has_residual)
			prev = NULL;
	}
	g->growth_bytes = prev ? diff_sat(g->residual_bytes, prev->residual_bytes)
			       : diff_sat(g->residual_bytes, g->usage_start_bytes);
}

static void finish(struct gen_tracker *t, struct generation *g, enum gen_status status, uint64_t now_ns,
		   uint64_t usage_bytes, bool with_residual)
{
	if ((unsigned)status >= _GEN_STATUS_MAX || status == GEN_RUNNING)
		status = GEN_UNKNOWN;
	g->status = status;
	/* Clocks of different sources may disagree by a little; an end before the start would make durations
	 * wrap, so clamp. */
	g->end_ns = now_ns < g->start_ns ? g->start_ns : now_ns;
	g->usage_end_bytes = usage_bytes;
	if (usage_bytes > g->peak_bytes)
		g->peak_bytes = usage_bytes;
	g->has_residual = with_residual;
	g->residual_bytes = with_residual ? usage_bytes : 0;
	t->running = false;
	update_growth(t, g);
}

int64_t gen_start(struct gen_tracker *t, const char *prompt_id, uint64_t now_ns, uint64_t usage_bytes)
{
	char id[GEN_PROMPT_ID_MAX + 1];
	struct generation *g;

	if (!t || !id_valid(prompt_id))
		return -EINVAL;
	/* prompt_id may point into the slot about to be recycled (a requeued prompt keeps its id). */
	copy_trunc(id, sizeof(id), prompt_id);
	g = running_gen(t);
	if (g) {
		if (id_equal(g->prompt_id, id))
			return (int64_t)(g->seq & INT64_MAX);
		/* ComfyUI runs one prompt at a time, so a new one means we missed the end of the old one. */
		finish(t, g, GEN_UNKNOWN, now_ns, usage_bytes, true);
	}
	t->running = false;

	g = &t->ring[t->head % GEN_RING_SIZE];
	memset(g, 0, sizeof(*g));
	memcpy(g->prompt_id, id, sizeof(id));
	if (t->next_seq == 0 || t->next_seq > (uint64_t)INT64_MAX)
		t->next_seq = 1;
	g->seq = t->next_seq++;
	g->epoch = t->epoch;
	g->first_in_epoch = !t->epoch_has_gen;
	g->status = GEN_RUNNING;
	g->start_ns = now_ns;
	g->usage_start_bytes = usage_bytes;
	g->peak_bytes = usage_bytes;

	t->head = (t->head % GEN_RING_SIZE + 1) % GEN_RING_SIZE;
	if (t->count < GEN_RING_SIZE)
		t->count++;
	t->running = true;
	t->epoch_has_gen = true;
	t->total++;
	t->last_sample_ns = now_ns;
	t->last_usage_bytes = usage_bytes;
	return (int64_t)g->seq;
}

int64_t gen_end(struct gen_tracker *t, const char *prompt_id, enum gen_status status, uint64_t now_ns,
		uint64_t usage_bytes)
{
	struct generation *g;

	if (!t || !id_valid(prompt_id))
		return -EINVAL;
	if ((unsigned)status >= _GEN_STATUS_MAX || status == GEN_RUNNING)
		status = GEN_UNKNOWN;

	g = running_gen(t);
	if (g && id_equal(g->prompt_id, prompt_id)) {
		finish(t, g, status, now_ns, usage_bytes, true);
		t->last_sample_ns = now_ns;
		t->last_usage_bytes = usage_bytes;
		return (int64_t)(g->seq & INT64_MAX);
	}

	g = find_gen(t, prompt_id);
	if (!g || g->status == GEN_RUNNING)
		return -ENOENT;
	if (g->status == GEN_UNKNOWN)
		g->status = status;
	return (int64_t)(g->seq & INT64_MAX);
}

int gen_set_window(struct gen_tracker *t, const char *prompt_id, uint64_t start_ns, uint64_t end_ns,
		   uint64_t usage_start_bytes, uint64_t peak_bytes, uint64_t usage_end_bytes, uint64_t residual_bytes)
{
	struct generation *g;
	size_t n;

	if (!t || !id_valid(prompt_id))
		return -EINVAL;
	g = find_gen(t, prompt_id);
	if (!g)
		return -ENOENT;
	if (g->status == GEN_RUNNING)
		return -EBUSY;
	if (start_ns > end_ns)
		return -EINVAL;
	g->start_ns = start_ns;
	g->end_ns = end_ns;
	g->usage_start_bytes = usage_start_bytes;
	g->usage_end_bytes = usage_end_bytes;
	g->peak_bytes = peak_bytes > usage_start_bytes ? peak_bytes : usage_start_bytes;
	if (usage_end_bytes > g->peak_bytes)
		g->peak_bytes = usage_end_bytes;
	if (g->has_residual)
		g->residual_bytes = residual_bytes;
	/* update_growth() only looks one slot back, from the newest: recompute g and the one after it */
	n = ring_count(t);
	for (size_t i = 0; i < n; i++) {
		if (ring_at(t, i) != g)
			continue;
		if (i == 0) {
			update_growth(t, g);
		} else {
			struct generation *next = ring_at(t, i - 1);
			const struct generation *prev = ring_at(t, i + 1);
			if (!g->has_residual)
				g->growth_bytes = 0;
			else if (!g->first_in_epoch && prev && prev->epoch == g->epoch && prev->has_residual)
				g->growth_bytes = diff_sat(g->residual_bytes, prev->residual_bytes);
			else
				g->growth_bytes = diff_sat(g->residual_bytes, g->usage_start_bytes);
			if (next->has_residual && !next->first_in_epoch && next->epoch == g->epoch && g->has_residual)
				next->growth_bytes = diff_sat(next->residual_bytes, g->residual_bytes);
		}
		break;
	}
	return 0;
}

int gen_sample(struct gen_tracker *t, uint64_t now_ns, uint64_t usage_bytes)
{
	struct generation *g;

	if (!t)
		return -EINVAL;
	t->last_sample_ns = now_ns;
	t->last_usage_bytes = usage_bytes;

	g = running_gen(t);
	if (g) {
		if (usage_bytes > g->peak_bytes)
			g->peak_bytes = usage_bytes;
		return 0;
	}
	/* Idle: what the last generation left behind settles (garbage collection, cache trimming) until the
	 * next one starts; the latest sample is the best measure of it. */
	g = ring_at(t, 0);
	if (g && g->epoch == t->epoch && g->has_residual) {
		g->residual_bytes = usage_bytes;
		update_growth(t, g);
	}
	return 0;
}

static void begin_epoch(struct gen_tracker *t, uint64_t now_ns, uint64_t usage_bytes)
{
	t->epoch++;
	if (t->epoch == 0) /* 0 never names an epoch, so a wrapped counter cannot match zeroed slots */
		t->epoch = 1;
	t->epoch_start_ns = now_ns;
	t->epoch_start_bytes = usage_bytes;
	t->epoch_has_gen = false;
	t->last_sample_ns = now_ns;
	t->last_usage_bytes = usage_bytes;
}

int gen_server_restarted(struct gen_tracker *t, uint64_t now_ns, uint64_t usage_bytes)
{
	struct generation *g;

	if (!t)
		return -EINVAL;
	g = running_gen(t);
	if (g)
		/* The memory of a dead server says nothing about what the prompt would have left behind. */
		finish(t, g, GEN_INTERRUPTED, now_ns, 0, false);
	t->running = false;
	t->next_seq = 1;
	begin_epoch(t, now_ns, usage_bytes);
	return 0;
}

int gen_new_epoch(struct gen_tracker *t, uint64_t now_ns, uint64_t usage_bytes)
{
	if (!t)
		return -EINVAL;
	if (running_gen(t))
		return -EBUSY;
	t->running = false;
	begin_epoch(t, now_ns, usage_bytes);
	return 0;
}

int gen_leak_estimate(const struct gen_tracker *t, unsigned n_last, struct leak_estimate *ret)
{
	const struct generation *pts[GEN_RING_SIZE];
	unsigned n = 0;
	double mx = 0, my = 0, sxx = 0, sxy = 0, syy = 0, ss_res;
	size_t count;

	if (ret)
		memset(ret, 0, sizeof(*ret));
	if (!t || !ret)
		return -EINVAL;

	/* Newest first, stop at the epoch boundary: residuals of another epoch belong to another series. */
	count = ring_count(t);
	for (size_t i = 0; i < count && (n_last == 0 || n < n_last); i++) {
		const struct generation *g = ring_at(t, i);

		if (g->epoch != t->epoch)
			break;
		if (completed_in_epoch(t, g))
			pts[n++] = g;
	}
	/* pts[] is newest first; the epoch's first generation, if present, is the last entry. */
	if (n >= 3 && pts[n - 1]->first_in_epoch) {
		n--;
		ret->first_excluded = true;
	}
	ret->points = n;
	if (n == 0)
		return 0;
	ret->first_seq = pts[n - 1]->seq;
	ret->last_seq = pts[0]->seq;
	if (n == 1) {
		ret->intercept_bytes = (double)pts[0]->residual_bytes;
		return 1;
	}

	/* Centred sums keep precision with residuals of many GiB. */
	for (unsigned i = 0; i < n; i++) {
		mx += (double)pts[i]->seq;
		my += (double)pts[i]->residual_bytes;
	}
	mx /= n;
	my /= n;
	for (unsigned i = 0; i < n; i++) {
		double dx = (double)pts[i]->seq - mx, dy = (double)pts[i]->residual_bytes - my;

		sxx += dx * dx;
		sxy += dx * dy;
		syy += dy * dy;
	}
	if (!(sxx > 0) || !isfinite(sxy) || !isfinite(syy)) {
		ret->intercept_bytes = my;
		return (int)n;
	}
	ret->slope_bytes_per_gen = sxy / sxx;
	ret->intercept_bytes = my - ret->slope_bytes_per_gen * mx;
	ss_res = syy - ret->slope_bytes_per_gen * sxy;
	if (!(ss_res > 0))
		ss_res = 0;
	if (syy > 0) {
		ret->r2 = 1.0 - ss_res / syy;
		if (ret->r2 < 0)
			ret->r2 = 0;
		if (ret->r2 > 1)
			ret->r2 = 1;
	}
	if (n > 2)
		ret->slope_stderr_bytes = sqrt(ss_res / (n - 2) / sxx);
	return (int)n;
}

void gen_settle_begin(struct gen_settle *s, uint64_t now_ns, uint64_t ref_bytes, uint64_t usage_bytes)
{
	if (!s)
		return;
	*s = (struct gen_settle){
		.active = true,
		.start_ns = now_ns,
		.ref_bytes = ref_bytes,
		.low_bytes = usage_bytes,
		.low_ns = now_ns,
		.anchor_bytes = ref_bytes > usage_bytes ? ref_bytes : usage_bytes,
	};
}

int gen_settle_sample(struct gen_settle *s, uint64_t now_ns, uint64_t usage_bytes, uint64_t quiet_ns,
		      uint64_t noise_bytes, uint64_t max_ns, uint64_t *ret_low_bytes, uint64_t *ret_low_ns)
{
	bool done = false;

	if (!s)
		return -EINVAL;
	if (!s->active)
		return 0;
	if (now_ns < s->low_ns)
		now_ns = s->low_ns;
	if (usage_bytes < s->low_bytes)
		s->low_bytes = usage_bytes;
	/* a new low by more than noise: the release goes on (small steps add up against the anchor) */
	if (s->anchor_bytes > s->low_bytes && s->anchor_bytes - s->low_bytes > noise_bytes) {
		s->anchor_bytes = s->low_bytes;
		s->low_ns = now_ns;
	}
	if (s->ref_bytes > s->low_bytes && s->ref_bytes - s->low_bytes > noise_bytes)
		s->dropped = true;
	if (s->dropped && usage_bytes > s->low_bytes && usage_bytes - s->low_bytes > noise_bytes)
		done = true; /* climbing again: the next generation began on the floor */
	else if (s->dropped && now_ns - s->low_ns >= quiet_ns)
		done = true;
	else if (now_ns - s->start_ns >= max_ns)
		done = true;
	if (!done)
		return 0;
	s->active = false;
	if (ret_low_bytes)
		*ret_low_bytes = s->low_bytes;
	if (ret_low_ns)
		*ret_low_ns = s->low_ns;
	return 1;
}
