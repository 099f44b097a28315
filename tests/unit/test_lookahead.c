// SPDX-License-Identifier: GPL-2.0
/* Queue look-ahead: models and latent read from workflows, learned load costs, and the unload-at-the-boundary
 * decision when the next model does not fit beside the loaded ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "common.h"
#include "lookahead.h"

static struct la_prompt parse(const char *json)
{
	struct la_prompt p;

	assert_int_equal(la_parse_prompt(json, strlen(json), &p), 0);
	return p;
}

static void test_parse_workflows(void **state)
{
	/* SD1.5 text-to-image as the default ComfyUI workflow exports it (API format) */
	const char *sd = "{\"3\":{\"class_type\":\"KSampler\",\"inputs\":{\"model\":[\"4\",0],\"steps\":20}},"
			 "\"4\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":\"v1-5.safetensors\"}},"
			 "\"5\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":512,\"height\":768,\"batch_size\":4}},"
			 "\"10\":{\"class_type\":\"LoraLoader\",\"inputs\":{\"model\":[\"4\",0],\"lora_name\":\"detail.safetensors\","
			 "\"strength_model\":1.0}}}";
	/* Flux: UNet, two CLIPs, a VAE, an SD3 latent; width wired from another node in a second latent */
	const char *flux = "{\"1\":{\"class_type\":\"UNETLoader\",\"inputs\":{\"unet_name\":\"flux1-dev.safetensors\","
			   "\"weight_dtype\":\"fp8_e4m3fn\"}},"
			   "\"2\":{\"class_type\":\"DualCLIPLoader\",\"inputs\":{\"clip_name1\":\"t5xxl.safetensors\","
			   "\"clip_name2\":\"clip_l.safetensors\",\"type\":\"flux\"}},"
			   "\"3\":{\"class_type\":\"VAELoader\",\"inputs\":{\"vae_name\":\"ae.safetensors\"}},"
			   "\"4\":{\"class_type\":\"EmptySD3LatentImage\",\"inputs\":{\"width\":1024,\"height\":1024}},"
			   "\"5\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":[\"9\",0],\"height\":64}},"
			   "\"6\":{\"class_type\":\"CheckpointLoader\",\"inputs\":{\"config_name\":\"v1.yaml\","
			   "\"ckpt_name\":[\"7\",0]}}}";
	struct la_prompt p;

	(void)state;
	p = parse(sd);
	assert_int_equal(p.n_models, 2);
	assert_string_equal(p.models[0].name, "checkpoint:v1-5.safetensors");
	assert_int_equal(p.models[0].kind, LA_CHECKPOINT);
	assert_string_equal(p.models[1].name, "lora:detail.safetensors");
	assert_true(p.latent_known);
	assert_int_equal(p.width, 512);
	assert_int_equal(p.height, 768);
	assert_int_equal(p.batch, 4);
	assert_int_equal(la_prompt_pixels(&p), 512 * 768 * 4);
	assert_true(la_prompt_has(&p, "lora:detail.safetensors"));
	assert_false(la_prompt_has(&p, "checkpoint:detail.safetensors"));

	p = parse(flux);
	assert_int_equal(p.n_models, 4);
	assert_string_equal(p.models[0].name, "unet:flux1-dev.safetensors");
	assert_string_equal(p.models[1].name, "clip:t5xxl.safetensors");
	assert_string_equal(p.models[2].name, "clip:clip_l.safetensors");
	assert_string_equal(p.models[3].name, "vae:ae.safetensors");
	assert_int_equal(la_prompt_pixels(&p), 1024 * 1024);
	assert_int_equal(p.batch, 1);

	/* video latent: frames count */
	p = parse("{\"1\":{\"class_type\":\"EmptyHunyuanLatentVideo\",\"inputs\":{\"width\":848,\"height\":480,"
		  "\"length\":73,\"batch_size\":1}}}");
	assert_int_equal(la_prompt_pixels(&p), 848ULL * 480 * 73);
}

static void test_parse_odd(void **state)
{
	static const struct {
		const char *json;
		int r;
		size_t models;
		bool latent;
	} t[] = {
		{ "{}", 0, 0, false },
		{ "{\"1\":5,\"2\":null,\"3\":[],\"4\":{\"class_type\":7},\"5\":{\"class_type\":\"VAELoader\",\"inputs\":3}}",
		  0, 0, false },
		/* the same checkpoint loaded twice counts once */
		{ "{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":\"a\"}},"
		  "\"2\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":\"a\"}}}",
		  0, 1, false },
		/* a custom loader's *_name input */
		{ "{\"1\":{\"class_type\":\"UpscaleModelLoader\",\"inputs\":{\"model_name\":\"4x.pth\"}}}", 0, 1, false },
		/* empty names and non-loader nodes with *_name inputs are not models */
		{ "{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":\"\"}},"
		  "\"2\":{\"class_type\":\"SaveImage\",\"inputs\":{\"filename_name\":\"x\"}}}",
		  0, 0, false },
		/* latent sizes that cannot be */
		{ "{\"1\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":0,\"height\":64}}}", 0, 0, false },
		{ "{\"1\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":1e30,\"height\":64}}}", 0, 0, false },
		{ "{\"1\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":64.0,\"height\":64}}}", 0, 0, true },
		{ "[1]", -EPROTO, 0, false },
		{ "{\"1\":", -EPROTO, 0, false },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct la_prompt p;
		int r = la_parse_prompt(t[i].json, strlen(t[i].json), &p);

		if (r != t[i].r)
			fail_msg("row %zu: %d, expected %d", i, r, t[i].r);
		assert_int_equal(p.n_models, t[i].models);
		assert_int_equal(p.latent_known, t[i].latent);
	}
	assert_int_equal(la_parse_prompt("{}", 2, NULL), -EINVAL);
}

static void test_too_many_models(void **state)
{
	char buf[8192];
	size_t n = 0;
	struct la_prompt p;

	(void)state;
	buf[n++] = '{';
	for (int i = 0; i < LA_MAX_MODELS + 3; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n,
				      "%s\"%d\":{\"class_type\":\"LoraLoader\",\"inputs\":{\"lora_name\":\"l%d\"}}",
				      i ? "," : "", i, i);
	buf[n++] = '}';
	assert_int_equal(la_parse_prompt(buf, n, &p), 0);
	assert_int_equal(p.n_models, LA_MAX_MODELS);
	assert_int_equal(p.n_models_dropped, 3);
}

static void test_costs(void **state)
{
	struct la_costs c;
	const struct la_cost *e;

	(void)state;
	la_costs_init(&c);
	assert_null(la_costs_find(&c, "checkpoint:a"));
	assert_int_equal(la_costs_learn(&c, "checkpoint:a", MIB(300), 1), 0);
	e = la_costs_find(&c, "checkpoint:a");
	assert_non_null(e);
	assert_int_equal(e->bytes, MIB(300));
	assert_int_equal(la_costs_learn(&c, "checkpoint:a", MIB(320), 2), 0);
	assert_int_equal(e->bytes, MIB(310));
	assert_int_equal(e->samples, 2);
	/* persisted entries come back as they were */
	assert_int_equal(la_costs_set(&c, "unet:b", MIB(900), 5, 3), 0);
	assert_int_equal(la_costs_find(&c, "unet:b")->samples, 5);
	assert_non_null(la_costs_get_entry(&c, 1));
	assert_null(la_costs_get_entry(&c, 2));
	assert_int_equal(la_costs_learn(&c, "", 1, 1), -EINVAL);
	assert_int_equal(la_costs_set(NULL, "x", 1, 1, 1), -EINVAL);
	/* a full table forgets the least recently used */
	for (int i = 0; i < LA_COSTS_MAX; i++) {
		char name[32];
		snprintf(name, sizeof(name), "lora:%d", i);
		assert_int_equal(la_costs_learn(&c, name, MIB(1), 100 + (uint64_t)i), 0);
	}
	assert_int_equal(c.n, LA_COSTS_MAX);
	assert_null(la_costs_find(&c, "checkpoint:a")); /* tick 2, the oldest */
	assert_non_null(la_costs_find(&c, "lora:63"));
}

static void test_learning_from_generations(void **state)
{
	struct la_prompt a = parse("{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":\"a\"}}}");
	struct la_prompt ab = parse("{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":\"a\"}},"
				    "\"2\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":\"b\"}},"
				    "\"3\":{\"class_type\":\"VAELoader\",\"inputs\":{\"vae_name\":\"v\"}}}");
	struct la_loaded loaded;
	struct la_costs c;

	(void)state;
	la_costs_init(&c);
	la_loaded_clear(&loaded);
	/* generation 1 loads a: its growth, less the leak, is a's cost */
	assert_int_equal(la_learn_generation(&c, &a, &loaded, (int64_t)MIB(310), (int64_t)MIB(10), 1), 1);
	assert_int_equal(la_costs_find(&c, "checkpoint:a")->bytes, MIB(300));
	assert_int_equal(la_loaded_add_prompt(&loaded, &a), 1);
	assert_true(la_loaded_has(&loaded, "checkpoint:a"));
	/* generation 2 adds b and a VAE: split evenly between the two new ones */
	assert_int_equal(la_learn_generation(&c, &ab, &loaded, (int64_t)MIB(410), (int64_t)MIB(10), 2), 2);
	assert_int_equal(la_costs_find(&c, "checkpoint:b")->bytes, MIB(200));
	assert_int_equal(la_costs_find(&c, "vae:v")->bytes, MIB(200));
	assert_int_equal(la_costs_find(&c, "checkpoint:a")->bytes, MIB(300)); /* resident: not relearned */
	assert_int_equal(la_loaded_add_prompt(&loaded, &ab), 2);
	/* nothing new, or a growth within the leak: nothing learned */
	assert_int_equal(la_learn_generation(&c, &ab, &loaded, (int64_t)MIB(500), 0, 3), 0);
	la_loaded_clear(&loaded);
	assert_int_equal(la_learn_generation(&c, &a, &loaded, (int64_t)MIB(5), (int64_t)MIB(10), 4), 0);
	assert_int_equal(la_learn_generation(&c, &a, &loaded, -(int64_t)MIB(50), 0, 4), 0);
}

/* Three 300 MiB checkpoints, a 1400 MiB limit at a 0.95 margin, 200 MiB of base and a 100 MiB working set: two
 * models fit side by side, a third only after unloading. */
static void test_forecast_switching(void **state)
{
	const char *fmt = "{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":\"%s\"}},"
			  "\"2\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":%d,\"height\":%d,\"batch_size\":1}}}";
	static const struct {
		const char *loaded[3];
		const char *next;
		int w, h;
		uint64_t usage_mib;
		bool known, fits, fits_after, unload;
		uint64_t load_mib, peak_mib;
	} t[] = {
		/* a resident: a again needs only its working set */
		{ { "a" }, "a", 512, 512, 500, true, true, true, false, 0, 600 },
		/* a resident, b beside it fits */
		{ { "a" }, "b", 512, 512, 500, true, true, true, false, 300, 900 },
		/* a and b resident: c beside them does not fit (1000 + 300 + 100 > 1330), alone it does (800) */
		{ { "a", "b" }, "c", 512, 512, 1000, true, false, true, true, 300, 1400 },
		/* ... and with a 16x latent the working set alone breaks the limit: unloading does not help */
		{ { "a", "b" }, "c", 2048, 2048, 1000, true, false, false, false, 300, 2900 },
		/* a checkpoint never loaded here is costed like the largest one seen */
		{ { "a" }, "z", 512, 512, 500, true, true, true, false, 300, 900 },
	};
	struct la_costs c;

	(void)state;
	la_costs_init(&c);
	la_costs_set(&c, "checkpoint:a", MIB(300), 1, 1);
	la_costs_set(&c, "checkpoint:b", MIB(300), 1, 1);
	la_costs_set(&c, "checkpoint:c", MIB(300), 1, 1);
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct la_loaded loaded;
		struct la_prompt next;
		struct la_forecast f;
		char json[512];

		la_loaded_clear(&loaded);
		for (int j = 0; j < 3 && t[i].loaded[j]; j++) {
			snprintf(json, sizeof(json), fmt, t[i].loaded[j], 64, 64);
			next = parse(json);
			la_loaded_add_prompt(&loaded, &next);
		}
		snprintf(json, sizeof(json), fmt, t[i].next, t[i].w, t[i].h);
		next = parse(json);
		assert_int_equal(la_forecast_next(&c, &loaded, &next, MIB(t[i].usage_mib), MIB(1400), MIB(100), 512 * 512,
						  0.95, &f),
				 0);
		if (f.known != t[i].known || f.fits != t[i].fits || f.fits_after_unload != t[i].fits_after ||
		    f.unload_at_boundary != t[i].unload)
			fail_msg("row %zu: known %d fits %d after %d unload %d (peak %llu MiB, after unload %llu MiB)", i,
				 f.known, f.fits, f.fits_after_unload, f.unload_at_boundary,
				 (unsigned long long)(f.peak_bytes >> 20), (unsigned long long)(f.peak_after_unload_bytes >> 20));
		assert_int_equal(f.load_bytes, MIB(t[i].load_mib));
		assert_int_equal(f.peak_bytes, MIB(t[i].peak_mib));
	}
}

static void test_forecast_unknown(void **state)
{
	struct la_prompt next = parse("{\"1\":{\"class_type\":\"UNETLoader\",\"inputs\":{\"unet_name\":\"u\"}}}");
	struct la_prompt ck = parse("{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":\"n\"}}}");
	struct la_loaded loaded;
	struct la_costs c;
	struct la_forecast f;

	(void)state;
	la_costs_init(&c);
	la_loaded_clear(&loaded);
	la_costs_set(&c, "checkpoint:a", MIB(300), 1, 1);
	la_costs_set(&c, "checkpoint:b", MIB(500), 1, 1);
	/* no unet was ever costed: unknown, never an unload */
	assert_int_equal(la_forecast_next(&c, &loaded, &next, MIB(1300), MIB(1400), 0, 0, 0.95, &f), 0);
	assert_false(f.known);
	assert_int_equal(f.unknown_models, 1);
	assert_false(f.unload_at_boundary);
	/* a new checkpoint is costed like the largest checkpoint seen */
	assert_int_equal(la_forecast_next(&c, &loaded, &ck, MIB(100), MIB(1400), 0, 0, 0.95, &f), 0);
	assert_true(f.known);
	assert_int_equal(f.estimated_models, 1);
	assert_int_equal(f.load_bytes, MIB(500));
	/* what a running prompt adds: its new checkpoint at the largest checkpoint's cost, an unknown kind nothing */
	{
		unsigned unknown = 9;
		struct la_prompt both = parse("{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":\"n\"}},"
					      "\"2\":{\"class_type\":\"UNETLoader\",\"inputs\":{\"unet_name\":\"u\"}}}");
		assert_int_equal(la_load_bytes(&c, &both, &loaded, &unknown), MIB(500));
		assert_int_equal(unknown, 1);
		la_loaded_add_prompt(&loaded, &ck);
		assert_int_equal(la_load_bytes(&c, &both, &loaded, NULL), 0);
		assert_int_equal(la_load_bytes(NULL, &both, &loaded, &unknown), 0);
		la_loaded_clear(&loaded);
	}
	/* bad arguments */
	assert_int_equal(la_forecast_next(&c, &loaded, &ck, 0, MIB(1), 0, 0, 0, &f), -EINVAL);
	assert_int_equal(la_forecast_next(&c, &loaded, &ck, 0, 0, 0, 0, 0.9, &f), -EINVAL);
	assert_int_equal(la_forecast_next(NULL, &loaded, &ck, 0, MIB(1), 0, 0, 0.9, &f), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_workflows),
		cmocka_unit_test(test_parse_odd),
		cmocka_unit_test(test_too_many_models),
		cmocka_unit_test(test_costs),
		cmocka_unit_test(test_learning_from_generations),
		cmocka_unit_test(test_forecast_switching),
		cmocka_unit_test(test_forecast_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
