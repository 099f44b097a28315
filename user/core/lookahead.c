// SPDX-License-Identifier: GPL-2.0
/* Queue look-ahead: the next prompt's models and latent, learned load costs, fit beside the resident models;
 * see lookahead.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <json-c/json.h>

#include "common.h"
#include "jsontext.h"
#include "lookahead.h"

static const char *const kind_names[_LA_KIND_MAX] = {
	[LA_CHECKPOINT] = "checkpoint", [LA_UNET] = "unet", [LA_LORA] = "lora", [LA_VAE] = "vae",
	[LA_CLIP] = "clip", [LA_CONTROLNET] = "controlnet", [LA_OTHER] = "model",
};

const char *la_kind_name(enum la_kind k)
{
	return (unsigned)k < _LA_KIND_MAX ? kind_names[k] : "invalid";
}

/* Input names of ComfyUI's loaders (nodes.py, comfy_extras) by kind; other *_name inputs of a loader are
 * LA_OTHER. */
static const struct {
	const char *input;
	enum la_kind kind;
} loader_inputs[] = {
	{ "ckpt_name", LA_CHECKPOINT }, { "unet_name", LA_UNET },	  { "lora_name", LA_LORA },
	{ "vae_name", LA_VAE },		{ "clip_name", LA_CLIP },	  { "clip_name1", LA_CLIP },
	{ "clip_name2", LA_CLIP },	{ "clip_name3", LA_CLIP },	  { "control_net_name", LA_CONTROLNET },
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

static bool loader_input(const char *key, enum la_kind *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(loader_inputs); i++)
		if (!strcmp(key, loader_inputs[i].input)) {
			*ret = loader_inputs[i].kind;
			return true;
		}
	/* config_name (CheckpointLoader's yaml) names no weights */
	if (ends_with(key, "_name") && strcmp(key, "config_name")) {
		*ret = LA_OTHER;
		return true;
	}
	return false;
}

bool la_prompt_has(const struct la_prompt *p, const char *name)
{
	if (!p || !name)
		return false;
	for (size_t i = 0; i < p->n_models; i++)
		if (!strcmp(p->models[i].name, name))
			return true;
	return false;
}

static void add_model(struct la_prompt *p, enum la_kind kind, const char *file)
{
	char name[LA_NAME_MAX];

	snprintf(name, sizeof(name), "%s:%s", kind_names[kind], file);
	if (la_prompt_has(p, name))
		return;
	if (p->n_models == LA_MAX_MODELS) {
		p->n_models_dropped++;
		return;
	}
	p->models[p->n_models].kind = kind;
	memcpy(p->models[p->n_models].name, name, sizeof(name));
	p->n_models++;
}

/* A literal positive integer input; links ([node, slot]) and anything else are not. */
static bool literal_u64(struct json_object *inputs, const char *key, uint64_t *ret)
{
	struct json_object *v;
	int64_t i;

	if (!json_object_object_get_ex(inputs, key, &v) || !v)
		return false;
	if (json_object_is_type(v, json_type_int)) {
		i = json_object_get_int64(v);
	} else if (json_object_is_type(v, json_type_double)) {
		double d = json_object_get_double(v);
		if (!isfinite(d) || d < 1 || d > 1e9)
			return false;
		i = (int64_t)d;
	} else {
		return false;
	}
	/* ComfyUI caps latents at 16384 px a side and batches at 4096; beyond 2^24 it is not a latent */
	if (i < 1 || i > (1 << 24))
		return false;
	*ret = (uint64_t)i;
	return true;
}

static uint64_t mul_sat(uint64_t a, uint64_t b)
{
	return a && b > UINT64_MAX / a ? UINT64_MAX : a * b;
}

uint64_t la_prompt_pixels(const struct la_prompt *p)
{
	if (!p || !p->latent_known)
		return 0;
	return mul_sat(mul_sat(mul_sat(p->width, p->height), p->batch ? p->batch : 1), p->frames ? p->frames : 1);
}

static void read_latent(struct la_prompt *p, struct json_object *inputs)
{
	struct la_prompt cand = { .batch = 1, .frames = 1 };

	if (!literal_u64(inputs, "width", &cand.width) || !literal_u64(inputs, "height", &cand.height))
		return;
	literal_u64(inputs, "batch_size", &cand.batch);
	literal_u64(inputs, "length", &cand.frames);
	cand.latent_known = true;
	if (p->latent_known && la_prompt_pixels(&cand) <= la_prompt_pixels(p))
		return;
	p->latent_known = true;
	p->width = cand.width;
	p->height = cand.height;
	p->batch = cand.batch;
	p->frames = cand.frames;
}

int la_parse_prompt(const char *json, size_t len, struct la_prompt *ret)
{
	struct json_object *root = NULL;
	struct la_prompt p = { 0 };
	int r;

	if (!ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	r = jsontext_parse_object(json, len, LA_MAX_DEPTH, &root, NULL, 0);
	if (r < 0)
		return r;
	/* json-c keeps insertion order: models come out in the workflow's node order */
	json_object_object_foreach(root, node_id, node)
	{
		struct json_object *inputs;
		const char *cls;

		(void)node_id;
		if (!node || !json_object_is_type(node, json_type_object))
			continue;
		cls = jsontext_get_string(node, "class_type");
		if (!cls || !json_object_object_get_ex(node, "inputs", &inputs) ||
		    !json_object_is_type(inputs, json_type_object))
			continue;
		if (!strncmp(cls, "Empty", 5) && strstr(cls, "Latent")) {
			read_latent(&p, inputs);
			continue;
		}
		if (!strstr(cls, "Loader"))
			continue;
		json_object_object_foreach(inputs, key, val)
		{
			enum la_kind kind;

			if (!val || !json_object_is_type(val, json_type_string) || !json_object_get_string_len(val))
				continue;
			if (loader_input(key, &kind))
				add_model(&p, kind, json_object_get_string(val));
		}
	}
	json_object_put(root);
	*ret = p;
	return 0;
}

/* ---- costs ---- */

void la_costs_init(struct la_costs *c)
{
	if (c)
		memset(c, 0, sizeof(*c));
}

static struct la_cost *cost_slot(struct la_costs *c, const char *name, bool create)
{
	size_t victim = 0;

	for (size_t i = 0; i < MIN(c->n, (size_t)LA_COSTS_MAX); i++)
		if (!strncmp(c->e[i].name, name, LA_NAME_MAX - 1))
			return &c->e[i];
	if (!create)
		return NULL;
	if (c->n < LA_COSTS_MAX) {
		victim = c->n++;
	} else {
		for (size_t i = 1; i < LA_COSTS_MAX; i++)
			if (c->e[i].last_used < c->e[victim].last_used)
				victim = i;
	}
	memset(&c->e[victim], 0, sizeof(c->e[victim]));
	snprintf(c->e[victim].name, LA_NAME_MAX, "%s", name);
	return &c->e[victim];
}

int la_costs_learn(struct la_costs *c, const char *name, uint64_t bytes, uint64_t tick)
{
	struct la_cost *e;

	if (!c || !name || !name[0])
		return -EINVAL;
	e = cost_slot(c, name, true);
	e->bytes = e->samples ? e->bytes / 2 + bytes / 2 : bytes;
	if (e->samples < UINT32_MAX)
		e->samples++;
	e->last_used = tick;
	return 0;
}

int la_costs_set(struct la_costs *c, const char *name, uint64_t bytes, uint32_t samples, uint64_t tick)
{
	struct la_cost *e;

	if (!c || !name || !name[0])
		return -EINVAL;
	e = cost_slot(c, name, true);
	e->bytes = bytes;
	e->samples = samples ? samples : 1;
	e->last_used = tick;
	return 0;
}

const struct la_cost *la_costs_find(const struct la_costs *c, const char *name)
{
	if (!c || !name)
		return NULL;
	return cost_slot((struct la_costs *)c, name, false);
}

const struct la_cost *la_costs_get_entry(const struct la_costs *c, size_t i)
{
	return c && i < MIN(c->n, (size_t)LA_COSTS_MAX) ? &c->e[i] : NULL;
}

/* ---- resident models ---- */

void la_loaded_clear(struct la_loaded *l)
{
	if (l)
		memset(l, 0, sizeof(*l));
}

bool la_loaded_has(const struct la_loaded *l, const char *name)
{
	if (!l || !name)
		return false;
	for (size_t i = 0; i < MIN(l->n, (size_t)LA_LOADED_MAX); i++)
		if (!strncmp(l->names[i], name, LA_NAME_MAX))
			return true;
	return false;
}

size_t la_loaded_add_prompt(struct la_loaded *l, const struct la_prompt *p)
{
	size_t added = 0;

	if (!l || !p)
		return 0;
	for (size_t i = 0; i < MIN(p->n_models, (size_t)LA_MAX_MODELS); i++) {
		if (la_loaded_has(l, p->models[i].name))
			continue;
		added++;
		if (l->n >= LA_LOADED_MAX) {
			/* ComfyUI would have evicted something by now; forget the oldest */
			memmove(l->names[0], l->names[1], sizeof(l->names[0]) * (LA_LOADED_MAX - 1));
			l->n = LA_LOADED_MAX - 1;
		}
		snprintf(l->names[l->n++], LA_NAME_MAX, "%s", p->models[i].name);
	}
	return added;
}

size_t la_learn_generation(struct la_costs *c, const struct la_prompt *p, const struct la_loaded *before,
			   int64_t growth_bytes, int64_t leak_bytes_per_gen, uint64_t tick)
{
	size_t n_new = 0, learned = 0;
	int64_t load;

	if (!c || !p)
		return 0;
	for (size_t i = 0; i < MIN(p->n_models, (size_t)LA_MAX_MODELS); i++)
		if (!la_loaded_has(before, p->models[i].name))
			n_new++;
	load = growth_bytes - (leak_bytes_per_gen > 0 ? leak_bytes_per_gen : 0);
	if (!n_new || load <= 0)
		return 0;
	for (size_t i = 0; i < MIN(p->n_models, (size_t)LA_MAX_MODELS); i++) {
		if (la_loaded_has(before, p->models[i].name))
			continue;
		if (la_costs_learn(c, p->models[i].name, (uint64_t)load / n_new, tick) == 0)
			learned++;
	}
	return learned;
}

/* ---- forecast ---- */

static bool kind_of(const char *name, enum la_kind *ret)
{
	for (unsigned k = 0; k < _LA_KIND_MAX; k++) {
		size_t n = strlen(kind_names[k]);
		if (!strncmp(name, kind_names[k], n) && name[n] == ':') {
			*ret = (enum la_kind)k;
			return true;
		}
	}
	return false;
}

/* A model never loaded here costs what the largest model of its kind cost: checkpoints of one family are
 * alike, and guessing high only unloads a little early. */
static bool cost_of(const struct la_costs *c, const char *name, uint64_t *ret, bool *estimated)
{
	const struct la_cost *e = la_costs_find(c, name);
	enum la_kind k;
	bool found = false;

	*estimated = false;
	if (e) {
		*ret = e->bytes;
		return true;
	}
	if (!c || !kind_of(name, &k))
		return false;
	*ret = 0;
	for (size_t i = 0; i < MIN(c->n, (size_t)LA_COSTS_MAX); i++) {
		enum la_kind ki;
		if (kind_of(c->e[i].name, &ki) && ki == k) {
			*ret = MAX(*ret, c->e[i].bytes);
			found = true;
		}
	}
	*estimated = found;
	return found;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t la_load_bytes(const struct la_costs *c, const struct la_prompt *p, const struct la_loaded *before,
		       unsigned *ret_unknown)
{
	uint64_t sum = 0;
	unsigned unknown = 0;

	if (p && c) {
		for (size_t i = 0; i < MIN(p->n_models, (size_t)LA_MAX_MODELS); i++) {
			uint64_t cost;
			bool est;
			if (la_loaded_has(before, p->models[i].name))
				continue;
			if (cost_of(c, p->models[i].name, &cost, &est))
				sum = add_sat(sum, cost);
			else
				unknown++;
		}
	}
	if (ret_unknown)
		*ret_unknown = unknown;
	return sum;
}

int la_forecast_next(const struct la_costs *c, const struct la_loaded *loaded, const struct la_prompt *next,
		     uint64_t usage_bytes, uint64_t limit_bytes, uint64_t excess_bytes, uint64_t excess_pixels,
		     double margin, struct la_forecast *ret)
{
	struct la_forecast f = { .known = true };
	uint64_t own = 0, pixels, cap;

	if (!ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (!c || !loaded || !next || !(margin > 0 && margin <= 1) || !limit_bytes)
		return -EINVAL;
	for (size_t i = 0; i < MIN(next->n_models, (size_t)LA_MAX_MODELS); i++) {
		uint64_t cost;
		bool est;

		if (!cost_of(c, next->models[i].name, &cost, &est)) {
			f.unknown_models++;
			f.known = false;
			continue;
		}
		f.estimated_models += est;
		own = add_sat(own, cost);
		if (!la_loaded_has(loaded, next->models[i].name))
			f.load_bytes = add_sat(f.load_bytes, cost);
	}
	for (size_t i = 0; i < MIN(loaded->n, (size_t)LA_LOADED_MAX); i++) {
		uint64_t cost;
		bool est;
		if (cost_of(c, loaded->names[i], &cost, &est))
			f.loaded_bytes = add_sat(f.loaded_bytes, cost);
	}
	/* a bigger latent needs a proportionally bigger working set (activations scale with pixels) */
	pixels = la_prompt_pixels(next);
	if (excess_pixels && pixels)
		f.excess_bytes = (uint64_t)MIN((double)excess_bytes * ((double)pixels / (double)excess_pixels), 1.8e19);
	else
		f.excess_bytes = excess_bytes;
	f.peak_bytes = add_sat(add_sat(usage_bytes, f.load_bytes), f.excess_bytes);
	f.peak_after_unload_bytes =
		add_sat(add_sat(usage_bytes > f.loaded_bytes ? usage_bytes - f.loaded_bytes : 0, own), f.excess_bytes);
	cap = (uint64_t)((double)limit_bytes * margin);
	f.fits = f.peak_bytes < cap;
	f.fits_after_unload = f.peak_after_unload_bytes < cap;
	f.unload_at_boundary = f.known && !f.fits && f.fits_after_unload;
	*ret = f;
	return 0;
}
