/* SPDX-License-Identifier: GPL-2.0 */
/* Queue look-ahead (issue 14): what the next prompt in ComfyUI's queue will load and how big its latent is, read
 * from its workflow (API format: {node_id: {"class_type", "inputs"}}) before it starts; what each model costs to
 * load, learned from earlier generations; and whether the next prompt fits beside the models already loaded, or
 * only after they are unloaded at the boundary (a /free sent while the current prompt runs is applied by ComfyUI
 * after it ends and before the next one starts).
 *
 * Pure: no I/O, no clock, no logging; sizes in bytes. Persisting what was learned is the caller's business:
 * la_costs is plain data, walked with la_costs_get_entry() and refilled with la_costs_set(). */
#ifndef OOMSENTRY_LOOKAHEAD_H
#define OOMSENTRY_LOOKAHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LA_NAME_MAX 160     /* "kind:file name"; longer names are truncated (and still compared as such) */
#define LA_MAX_MODELS 16    /* model files one prompt loads; more are ignored (and counted) */
#define LA_COSTS_MAX 64     /* models with a learned cost; the least recently used is forgotten */
#define LA_LOADED_MAX 32    /* models believed resident */
#define LA_MAX_DEPTH 128    /* workflows nest ~10 deep; extra_pnginfo is not parsed here */

enum la_kind {
	LA_CHECKPOINT = 0, /* ckpt_name: model + CLIP + VAE */
	LA_UNET,           /* unet_name */
	LA_LORA,           /* lora_name (patches the model in memory: small, but counted) */
	LA_VAE,
	LA_CLIP,           /* clip_name, clip_name1..3 */
	LA_CONTROLNET,
	LA_OTHER,          /* other *_name inputs of a *Loader* node (upscale models, custom loaders) */
	_LA_KIND_MAX,
};

struct la_model {
	enum la_kind kind;
	char name[LA_NAME_MAX]; /* "checkpoint:sd_xl_base_1.0.safetensors": the kind keeps a VAE and a checkpoint of the
				 * same file name apart */
};

struct la_prompt {
	struct la_model models[LA_MAX_MODELS]; /* distinct, in node order */
	size_t n_models;
	size_t n_models_dropped;
	bool latent_known;     /* an Empty*Latent* node with literal width/height */
	uint64_t width, height;
	uint64_t batch;        /* batch_size, 1 when absent */
	uint64_t frames;       /* length (video latents), 1 when absent */
};

/* Reads a prompt (the workflow object of a /queue item). Loader nodes: any class_type containing "Loader" with a
 * string input named ckpt_name, unet_name, lora_name, vae_name, clip_name[1-3], control_net_name or another
 * *_name. Inputs wired from other nodes ([node_id, slot]) are not literals and are skipped. The largest
 * Empty*Latent* node gives the latent. Returns 0; -EPROTO when json is not a JSON object (or too deep); -EINVAL;
 * -ENOMEM. Nodes that are not objects are ignored: a prompt ComfyUI accepted may still hold odd ones. */
int la_parse_prompt(const char *json, size_t len, struct la_prompt *ret);

/* width*height*batch*frames, saturated; 0 when not known. */
uint64_t la_prompt_pixels(const struct la_prompt *p);
bool la_prompt_has(const struct la_prompt *p, const char *name);

/* ---- learned load costs ---- */
struct la_cost {
	char name[LA_NAME_MAX];
	uint64_t bytes;     /* what loading it added to the residual (smoothed) */
	uint32_t samples;
	uint64_t last_used; /* caller's counter (e.g. generation count) for forgetting */
};

struct la_costs {
	struct la_cost e[LA_COSTS_MAX];
	size_t n;
};

void la_costs_init(struct la_costs *c);
/* Learns that loading `name` cost `bytes`: the first figure is taken as is, later ones are averaged with weight
 * 1/2 (a model's size does not drift, but one measurement may carry a leak or a transient). `tick` marks use.
 * Returns 0, -EINVAL. A full table forgets its least recently used entry. */
int la_costs_learn(struct la_costs *c, const char *name, uint64_t bytes, uint64_t tick);
/* Sets an entry as persisted (no averaging); for the policy helper's state file. Returns 0, -EINVAL. */
int la_costs_set(struct la_costs *c, const char *name, uint64_t bytes, uint32_t samples, uint64_t tick);
/* The learned cost or NULL. */
const struct la_cost *la_costs_find(const struct la_costs *c, const char *name);
/* Entry i (0..n-1) for persisting, NULL beyond. */
const struct la_cost *la_costs_get_entry(const struct la_costs *c, size_t i);

/* ---- what is resident ---- */
struct la_loaded {
	char names[LA_LOADED_MAX][LA_NAME_MAX];
	size_t n;
};

void la_loaded_clear(struct la_loaded *l); /* after a verified /free or a server restart */
/* A prompt ran: its models stay resident (ComfyUI keeps them until /free or its own eviction). Returns how many
 * of them were not resident before (their load is in this generation's growth). */
size_t la_loaded_add_prompt(struct la_loaded *l, const struct la_prompt *p);
bool la_loaded_has(const struct la_loaded *l, const char *name);

/* Learns the load cost of the models a generation loaded (`new_models` of them, not resident before it) from its
 * growth (residual minus the residual before it): split evenly, since one residual cannot tell them apart; the
 * leak per generation (when known) is taken out first. A growth at or below the leak teaches nothing. Returns the
 * number of models learned. */
size_t la_learn_generation(struct la_costs *c, const struct la_prompt *p, const struct la_loaded *before,
			   int64_t growth_bytes, int64_t leak_bytes_per_gen, uint64_t tick);

/* What loading p's models that are not in `before` adds, each at its learned cost or, never loaded here, at the
 * largest learned cost of its kind; models of a kind never costed add nothing and are counted in
 * *ret_unknown (may be NULL). */
uint64_t la_load_bytes(const struct la_costs *c, const struct la_prompt *p, const struct la_loaded *before,
		       unsigned *ret_unknown);

/* ---- the forecast ---- */
struct la_forecast {
	bool known;                /* every model the next prompt loads has a cost (learned or estimated) */
	unsigned unknown_models;   /* models without a learned cost of their kind */
	unsigned estimated_models; /* models costed at the largest learned cost of their kind */
	uint64_t load_bytes;       /* what loading the models that are not resident adds */
	uint64_t loaded_bytes;     /* cost of everything resident now (learned, else estimated by kind) */
	uint64_t excess_bytes;     /* the generation's own transient, scaled by its latent size */
	uint64_t peak_bytes;       /* usage now + load + excess: the next prompt's peak beside what is loaded */
	uint64_t peak_after_unload_bytes; /* ... when every resident model is unloaded first (it reloads its own) */
	bool fits;                 /* peak_bytes stays below limit * margin */
	bool fits_after_unload;
	bool unload_at_boundary;   /* !fits && fits_after_unload: unload when the running prompt ends */
};

/* usage_bytes: memory now (with the running prompt's transient still in it, the forecast is pessimistic by that
 * much; call it between generations or with the residual the running one is expected to leave).
 * excess_bytes / excess_pixels: a typical generation's peak above its start and its latent pixels (0: not known,
 * the excess is used unscaled). margin: the fraction of the limit a peak may reach (forecast_margin, (0,1]).
 * Returns 0 with *ret filled (known false when a model has no cost of its kind); -EINVAL. */
int la_forecast_next(const struct la_costs *c, const struct la_loaded *loaded, const struct la_prompt *next,
		     uint64_t usage_bytes, uint64_t limit_bytes, uint64_t excess_bytes, uint64_t excess_pixels,
		     double margin, struct la_forecast *ret);

const char *la_kind_name(enum la_kind k);

#endif
