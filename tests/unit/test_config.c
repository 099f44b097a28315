// SPDX-License-Identifier: GPL-2.0
/* config: value parsers (table driven), the INI file (tests/fixtures/config), OOMSENTRY_* variables, flags,
 * finalize checks and the precedence defaults < file < environment < flags. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "common.h"
#include "config.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif
#define CONF FIXTURES "/config"

#define assert_double_near(a, b) assert_true(fabs((double)(a) - (double)(b)) < 1e-12)

static char err[512];

/* One configuration at a time, static so that a failing or skipped test (cmocka longjmps out) leaks nothing. */
static struct config the_cfg;

static struct config *cfg_new(void)
{
	config_defaults(&the_cfg);
	err[0] = 0;
	return &the_cfg;
}

/* ---------------------------------------------------------------- value parsers */

struct u64_case {
	const char *in;
	int ret;
	uint64_t out;
};

static void test_parse_bytes(void **state)
{
	(void)state;
	static const struct u64_case cases[] = {
		{ "64M", 0, MIB(64) },
		{ "1.5G", 0, MIB(1536) },
		{ "1.5GiB", 0, MIB(1536) },
		{ "300MB", 0, MIB(300) },
		{ "1048576", 0, 1048576 },
		{ "0", 0, 0 },
		{ "512K", 0, KIB(512) },
		{ "1k", 0, 1024 },
		{ "4kib", 0, 4096 },
		{ "7b", 0, 7 },
		{ "7B", 0, 7 },
		{ "2t", 0, 2ULL << 40 },
		{ "64 M", 0, MIB(64) },     /* a space between number and unit */
		{ "1.5", 0, 1 },            /* bytes are whole: the fraction is dropped */
		{ "8388607T", 0, 8388607ULL << 40 },
		{ "-1", -EINVAL, 0 },
		{ "-1M", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
		{ "abc", -EINVAL, 0 },
		{ "M", -EINVAL, 0 },
		{ "10X", -EINVAL, 0 },
		{ "10 MBs", -EINVAL, 0 },
		{ "1.5.2G", -EINVAL, 0 },
		{ "8388608T", -EINVAL, 0 },                 /* 2^63: too big */
		{ "9223372036854775808", -EINVAL, 0 },      /* 2^63 */
		{ "18446744073709551616", -EINVAL, 0 },     /* 2^64 */
		{ "99999999999999999999999", -EINVAL, 0 },
		{ "1e400", -EINVAL, 0 },                    /* strtod overflow */
		{ "nan", -EINVAL, 0 },
		{ "inf", -EINVAL, 0 },
		{ "infM", -EINVAL, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t v = 0xdeadbeef;
		int r = config_parse_bytes(cases[i].in, &v);

		if (r != cases[i].ret || (r == 0 && v != cases[i].out))
			fail_msg("config_parse_bytes(\"%s\") = %d, %llu; want %d, %llu", cases[i].in, r,
				 (unsigned long long)v, cases[i].ret, (unsigned long long)cases[i].out);
		if (r < 0)
			assert_int_equal(v, 0xdeadbeef); /* untouched on error */
	}
	assert_int_equal(config_parse_bytes(NULL, &(uint64_t){ 0 }), -EINVAL);
}

static void test_parse_duration(void **state)
{
	(void)state;
	static const struct u64_case cases[] = {
		{ "500ms", 0, 500 },
		{ "5s", 0, 5000 },
		{ "3sec", 0, 3000 },
		{ "1.5s", 0, 1500 },
		{ "10 s", 0, 10000 },
		{ "2m", 0, 120000 }, /* m is minutes, not milliseconds */
		{ "2min", 0, 120000 },
		{ "1h", 0, 3600000 },
		{ "1H", 0, 3600000 },
		{ "250", 0, 250 }, /* bare number: milliseconds */
		{ "0", 0, 0 },
		{ "0.5ms", 0, 0 },
		{ "-1", -EINVAL, 0 },
		{ "-5s", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
		{ "s", -EINVAL, 0 },
		{ "5x", -EINVAL, 0 },
		{ "1d", -EINVAL, 0 },
		{ "5 seconds", -EINVAL, 0 },
		{ "1e400", -EINVAL, 0 },
		{ "9007199254740992", -EINVAL, 0 }, /* 2^53 ms */
		{ "nan", -EINVAL, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t v = 0xdeadbeef;
		int r = config_parse_duration_ms(cases[i].in, &v);

		if (r != cases[i].ret || (r == 0 && v != cases[i].out))
			fail_msg("config_parse_duration_ms(\"%s\") = %d, %llu; want %d, %llu", cases[i].in, r,
				 (unsigned long long)v, cases[i].ret, (unsigned long long)cases[i].out);
	}
	assert_int_equal(config_parse_duration_ms(NULL, &(uint64_t){ 0 }), -EINVAL);
}

/* Every duration is converted to ns by its users (crashloop_window_ms * NSEC_PER_MSEC in instance.c,
 * restart_timeout_ms, orphan_min_age_ms, reclaim_report_interval_ms ...) without a saturation check, so an
 * accepted duration must fit in uint64 nanoseconds: at most UINT64_MAX / 1e6 ms (about 584 years). */
static void test_parse_duration_fits_ns(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(config_parse_duration_ms("1000000h", &v), 0); /* 3.6e12 ms: 3.6e18 ns fits */
	assert_true(v <= UINT64_MAX / NSEC_PER_MSEC);
	v = 0;
	if (config_parse_duration_ms("10000000h", &v) == 0)
		fail_msg("\"10000000h\" accepted as %llu ms, which is %.3g ns: wraps when converted to ns",
			 (unsigned long long)v, (double)v * 1e6);
}

static void test_parse_fraction(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int ret;
		double out;
	} cases[] = {
		{ "0.9", 0, 0.9 },
		{ "90%", 0, 0.9 },
		{ "50 %", 0, 0.5 },
		{ "1", 0, 1.0 },
		{ "100%", 0, 1.0 },
		{ "0.001", 0, 0.001 },
		{ "0", -EINVAL, 0 },
		{ "0%", -EINVAL, 0 },
		{ "1.5", -EINVAL, 0 },
		{ "101%", -EINVAL, 0 },
		{ "-0.5", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
		{ "abc", -EINVAL, 0 },
		{ "90 percent", -EINVAL, 0 },
		{ "0.9x", -EINVAL, 0 },
		{ "nan", -EINVAL, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		double v = -7;
		int r = config_parse_fraction(cases[i].in, &v);

		if (r != cases[i].ret || (r == 0 && fabs(v - cases[i].out) > 1e-12))
			fail_msg("config_parse_fraction(\"%s\") = %d, %g; want %d, %g", cases[i].in, r, v,
				 cases[i].ret, cases[i].out);
		if (r < 0)
			assert_true(v == -7);
	}
}

static void test_parse_bool(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int ret;
		bool out;
	} cases[] = {
		{ "1", 0, true },   { "yes", 0, true },  { "YES", 0, true },  { "true", 0, true }, { "True", 0, true },
		{ "on", 0, true },  { "y", 0, true },    { "0", 0, false },   { "no", 0, false }, { "No", 0, false },
		{ "false", 0, false }, { "off", 0, false }, { "OFF", 0, false }, { "n", 0, false },
		{ "", -EINVAL, false }, { "2", -EINVAL, false }, { "yes ", -EINVAL, false }, { "yess", -EINVAL, false },
		{ "enable", -EINVAL, false }, { "-1", -EINVAL, false },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		bool v = !cases[i].out;
		int r = config_parse_bool(cases[i].in, &v);

		if (r != cases[i].ret || (r == 0 && v != cases[i].out))
			fail_msg("config_parse_bool(\"%s\") = %d, %d; want %d, %d", cases[i].in, r, v, cases[i].ret,
				 cases[i].out);
	}
}

static void test_url_port(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int ret;
		uint16_t port;
	} cases[] = {
		{ "http://127.0.0.1:8188", 0, 8188 },
		{ "http://127.0.0.1:8188/", 0, 8188 },
		{ "http://comfy.local", 0, 80 },
		{ "http://comfy.local/", 0, 80 },
		{ "https://comfy.local", 0, 443 },
		{ "https://comfy.local/api", 0, 443 },
		{ "https://comfy.local:8443/x", 0, 8443 },
		{ "http://[::1]:8188", 0, 8188 },
		{ "http://[::1]:8188/prefix", 0, 8188 },
		{ "http://[::1]", 0, 80 },
		{ "https://[::1]/p", 0, 443 },
		{ "https://[fe80::1%25eth0]:9000", 0, 9000 },
		{ "http://h:1", 0, 1 },
		{ "http://h:65535", 0, 65535 },
		{ "http://h/path:99", 0, 80 }, /* a colon after the host is not a port */
		{ "http://h:", -EINVAL, 0 },
		{ "http://h:/x", -EINVAL, 0 },
		{ "http://h:abc", -EINVAL, 0 },
		{ "http://h:80x", -EINVAL, 0 },
		{ "http://h:+80", -EINVAL, 0 },
		{ "http://h:-1", -EINVAL, 0 },
		{ "http://h:0", -EINVAL, 0 },
		{ "http://h:65536", -EINVAL, 0 },
		{ "http://h:99999999", -EINVAL, 0 },
		{ "http://h:18446744073709551617", -EINVAL, 0 },
		{ "http://[::1", -EINVAL, 0 },
		{ "http://[::1]:", -EINVAL, 0 },
		{ "127.0.0.1:8188", -EINVAL, 0 }, /* no scheme */
		{ "", -EINVAL, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint16_t v = 4242;
		int r = config_url_port(cases[i].in, &v);

		if (r != cases[i].ret || (r == 0 && v != cases[i].port))
			fail_msg("config_url_port(\"%s\") = %d, %u; want %d, %u", cases[i].in, r, v, cases[i].ret,
				 cases[i].port);
	}
}

/* ---------------------------------------------------------------- defaults, config_set */

static void test_defaults(void **state)
{
	struct config *c = cfg_new();

	(void)state;
	assert_int_equal(c->n_comm_prefixes, 2);
	assert_string_equal(c->comm_prefixes[0], "python");
	assert_string_equal(c->comm_prefixes[1], "comfy");
	assert_int_equal(c->n_cgroups, 0);
	assert_int_equal(c->rss_step_bytes, MIB(64));
	assert_int_equal(c->mmap_threshold_bytes, MIB(64));
	assert_int_equal(c->sample_interval_ms, 500);
	assert_int_equal(c->reclaim_report_interval_ms, 1000);
	assert_int_equal(c->poll_interval_ms, 500);
	assert_int_equal(c->http_timeout_ms, 3000);
	assert_false(c->dry_run);
	assert_double_near(c->act_usage_fraction, 0.90);
	assert_double_near(c->forecast_margin, 0.95);
	assert_int_equal(c->cooldown_ms, 30000);
	assert_true(c->reap_orphans);
	assert_int_equal(c->orphan_grace_ms, 5000);
	assert_int_equal(c->orphan_min_rss_bytes, 0);
	assert_int_equal(c->orphan_min_age_ms, 10000);
	assert_false(c->kill);
	assert_int_equal(c->crashloop_window_ms, 60000);
	assert_int_equal(c->crashloop_threshold, 3);
	assert_false(c->json);
	assert_true(c->journal);
	assert_true(c->bpf);
	assert_string_equal(c->metrics_listen, "off");
	assert_string_equal(c->incident_dir, "/var/lib/oomsentry/incidents");
	assert_string_equal(c->socket_path, "/run/oomsentry/oomsentry.sock");
	assert_int_equal(c->verbose, 0);
	assert_int_equal(c->n_instances, 1);
	assert_string_equal(c->instances[0].name, "default");
	assert_string_equal(c->instances[0].url, "http://127.0.0.1:8188");
	assert_int_equal(c->instances[0].restart_method, RESTART_NONE);
	assert_int_equal(c->instances[0].restart_timeout_ms, 120000);
	assert_int_equal(c->instances[0].restart_every_generations, 0);
	assert_false(c->instances[0].free_after_each_generation);
	assert_string_equal(c->instances[0].restart_command, "");
	/* the defaults are a valid configuration */
	assert_int_equal(config_finalize(c, err, sizeof(err)), 0);
}

static void test_set_sections(void **state)
{
	struct config *c = cfg_new();

	(void)state;
	/* global keys: NULL, "" and "oomsentry" are the same section */
	assert_int_equal(config_set(c, NULL, "rss_step", "1M", err, sizeof(err)), 0);
	assert_int_equal(c->rss_step_bytes, MIB(1));
	assert_int_equal(config_set(c, "", "rss_step", "2M", err, sizeof(err)), 0);
	assert_int_equal(c->rss_step_bytes, MIB(2));
	assert_int_equal(config_set(c, "oomsentry", "rss_step", "3M", err, sizeof(err)), 0);
	assert_int_equal(c->rss_step_bytes, MIB(3));
	/* a per-instance key in the global section sets the default instance, and creates no other */
	assert_int_equal(config_set(c, "oomsentry", "url", "http://10.0.0.1:8188", err, sizeof(err)), 0);
	assert_int_equal(config_set(c, NULL, "restart", "SIGNAL", err, sizeof(err)), 0);
	assert_int_equal(c->n_instances, 1);
	assert_string_equal(c->instances[0].url, "http://10.0.0.1:8188");
	assert_int_equal(c->instances[0].restart_method, RESTART_SIGNAL);
	/* [instance NAME] creates the instance from the defaults, [instance default] is the default one */
	assert_int_equal(config_set(c, "instance gpu1", "restart", "command", err, sizeof(err)), 0);
	assert_int_equal(c->n_instances, 2);
	assert_string_equal(c->instances[1].name, "gpu1");
	assert_string_equal(c->instances[1].url, "http://127.0.0.1:8188");
	assert_int_equal(c->instances[1].restart_timeout_ms, 120000);
	assert_int_equal(c->instances[1].restart_method, RESTART_COMMAND);
	assert_int_equal(config_set(c, "instance gpu1", "restart_command", "systemctl restart comfy", err,
				    sizeof(err)), 0);
	assert_int_equal(c->n_instances, 2);
	assert_string_equal(c->instances[1].restart_command, "systemctl restart comfy");
	assert_int_equal(config_set(c, "instance default", "restart", "systemd", err, sizeof(err)), 0);
	assert_int_equal(c->n_instances, 2);
	assert_int_equal(c->instances[0].restart_method, RESTART_SYSTEMD);

	/* a global key in an instance section */
	assert_int_equal(config_set(c, "instance gpu1", "kill", "yes", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "'kill' belongs in [oomsentry], not in [instance gpu1]");
	assert_false(c->kill);
	/* unknown section, unknown key: key names are exact (lower case, underscores) */
	assert_int_equal(config_set(c, "server", "url", "http://x", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown section [server] (use [oomsentry] or [instance NAME])");
	assert_int_equal(config_set(c, "instance", "url", "http://x", err, sizeof(err)), -EINVAL);
	assert_int_equal(config_set(c, NULL, "rss-step", "1M", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown setting 'rss-step' (see oomsentry --help)");
	assert_int_equal(config_set(c, NULL, "RSS_STEP", "1M", err, sizeof(err)), -EINVAL);
	/* errbuf is optional */
	assert_int_equal(config_set(c, NULL, "nope", "1", NULL, 0), -EINVAL);
	assert_int_equal(c->rss_step_bytes, MIB(3));
}

static void test_set_values(void **state)
{
	struct config *c = cfg_new();
	char longstr[CONFIG_STR + 8];

	(void)state;
	/* one error message per type, naming the key and the bad value */
	static const struct {
		const char *key, *value, *msg;
	} bad[] = {
		{ "dry_run", "maybe", "invalid value dry_run = 'maybe': expected yes or no" },
		{ "rss_step", "lots", "invalid value rss_step = 'lots': expected a size such as 64M or 1.5G" },
		{ "cooldown", "soon", "invalid value cooldown = 'soon': expected a duration such as 500ms, 5s or 2m" },
		{ "act_usage_fraction", "1.5",
		  "invalid value act_usage_fraction = '1.5': expected a fraction in (0,1] such as 0.9 or 90%" },
		{ "crashloop_threshold", "-3", "invalid value crashloop_threshold = '-3': expected a whole number" },
		{ "crashloop_threshold", "3x", "invalid value crashloop_threshold = '3x': expected a whole number" },
		{ "crashloop_threshold", " 3", "invalid value crashloop_threshold = ' 3': expected a whole number" },
		{ "crashloop_threshold", "18446744073709551616",
		  "invalid value crashloop_threshold = '18446744073709551616': expected a whole number" },
		{ "restart", "reboot", "invalid value restart = 'reboot': expected none, signal, command or systemd" },
		{ "verbose", "10", "invalid value verbose = '10': expected a number" },
		{ "verbose", "-1", "invalid value verbose = '-1': expected a number" },
		{ "comm_prefixes", "a,b,c,d,e,f,g,h,i",
		  "invalid value comm_prefixes = 'a,b,c,d,e,f,g,h,i': expected a comma separated list (at most 8 items)" },
		{ "comm_prefixes", "python,sixteen_chars_xx",
		  "invalid value comm_prefixes = 'python,sixteen_chars_xx': expected a comma separated list (at most 8 "
		  "items)" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err[0] = 0;
		assert_int_equal(config_set(c, NULL, bad[i].key, bad[i].value, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, bad[i].msg);
	}
	/* the value is cut to 60 characters in the message */
	memset(longstr, 'x', 100);
	longstr[100] = 0;
	assert_int_equal(config_set(c, NULL, "rss_step", longstr, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "rss_step = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx': "));
	/* a small errbuf truncates safely */
	char tiny[8];
	assert_int_equal(config_set(c, NULL, "rss_step", "lots", tiny, sizeof(tiny)), -EINVAL);
	assert_string_equal(tiny, "invalid");

	/* strings: CONFIG_STR - 1 characters fit, CONFIG_STR do not */
	memset(longstr, 'a', sizeof(longstr));
	memcpy(longstr, "http://", 7);
	longstr[CONFIG_STR - 1] = 0;
	assert_int_equal(config_set(c, NULL, "url", longstr, err, sizeof(err)), 0);
	assert_int_equal(strlen(c->instances[0].url), CONFIG_STR - 1);
	longstr[CONFIG_STR - 1] = 'a';
	longstr[CONFIG_STR] = 0;
	assert_int_equal(config_set(c, NULL, "url", longstr, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "expected a string (too long?)"));
	assert_int_equal(strlen(c->instances[0].url), CONFIG_STR - 1);
	assert_int_equal(config_set(c, NULL, "metrics_listen", "0.0.0.0:9464", err, sizeof(err)), 0);
	assert_string_equal(c->metrics_listen, "0.0.0.0:9464");
	memset(longstr, '1', 64);
	longstr[64] = 0;
	assert_int_equal(config_set(c, NULL, "metrics_listen", longstr, err, sizeof(err)), -EINVAL);

	/* lists: spaces around items trimmed, empty items skipped, at most 8 items of at most 15 characters */
	assert_int_equal(config_set(c, NULL, "comm_prefixes", " python3 , comfyui,, main ", err, sizeof(err)), 0);
	assert_int_equal(c->n_comm_prefixes, 3);
	assert_string_equal(c->comm_prefixes[0], "python3");
	assert_string_equal(c->comm_prefixes[1], "comfyui");
	assert_string_equal(c->comm_prefixes[2], "main");
	assert_int_equal(config_set(c, NULL, "comm_prefixes", "a,b,c,d,e,f,g,fifteen_chars_x", err, sizeof(err)), 0);
	assert_int_equal(c->n_comm_prefixes, 8);
	assert_string_equal(c->comm_prefixes[7], "fifteen_chars_x");
	assert_int_equal(config_set(c, NULL, "comm_prefixes", "", err, sizeof(err)), 0);
	assert_int_equal(c->n_comm_prefixes, 0);
	assert_int_equal(config_set(c, NULL, "cgroups", "/sys/fs/cgroup/a, /sys/fs/cgroup/b c", err, sizeof(err)), 0);
	assert_int_equal(c->n_cgroups, 2);
	assert_string_equal(c->cgroups[0], "/sys/fs/cgroup/a");
	assert_string_equal(c->cgroups[1], "/sys/fs/cgroup/b c"); /* inner spaces are part of a path */
	assert_int_equal(c->n_comm_prefixes, 0);                  /* the other list is untouched */

	/* verbose takes a boolean or a number below 10 */
	assert_int_equal(config_set(c, NULL, "verbose", "yes", err, sizeof(err)), 0);
	assert_int_equal(c->verbose, 1);
	assert_int_equal(config_set(c, NULL, "verbose", "9", err, sizeof(err)), 0);
	assert_int_equal(c->verbose, 9);
	assert_int_equal(config_set(c, NULL, "verbose", "off", err, sizeof(err)), 0);
	assert_int_equal(c->verbose, 0);
	/* restart names are case-insensitive */
	assert_int_equal(config_set(c, NULL, "restart", "None", err, sizeof(err)), 0);
	assert_int_equal(c->instances[0].restart_method, RESTART_NONE);
	assert_int_equal(config_set(c, NULL, "crashloop_threshold", "0032", err, sizeof(err)), 0);
	assert_int_equal(c->crashloop_threshold, 32);
}

/* ---------------------------------------------------------------- INI files */

static void test_load_full(void **state)
{
	struct config *c = cfg_new();

	(void)state;
	assert_int_equal(config_load_file(c, CONF "/full.conf", true, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(c->n_comm_prefixes, 3);
	assert_string_equal(c->comm_prefixes[0], "python3");
	assert_string_equal(c->comm_prefixes[1], "comfyui");
	assert_string_equal(c->comm_prefixes[2], "main");
	assert_int_equal(c->n_cgroups, 2);
	assert_string_equal(c->cgroups[0], "/sys/fs/cgroup/system.slice/comfyui.service");
	assert_string_equal(c->cgroups[1], "/sys/fs/cgroup/memory/comfyui");
	assert_int_equal(c->rss_step_bytes, MIB(32));
	assert_int_equal(c->mmap_threshold_bytes, MIB(1536));
	assert_int_equal(c->sample_interval_ms, 250);
	assert_int_equal(c->reclaim_report_interval_ms, 2000);
	assert_int_equal(c->poll_interval_ms, 1000);
	assert_int_equal(c->http_timeout_ms, 10000);
	assert_true(c->dry_run);
	assert_double_near(c->act_usage_fraction, 0.85);
	assert_double_near(c->forecast_margin, 0.97);
	assert_int_equal(c->cooldown_ms, 120000);
	assert_false(c->reap_orphans);
	assert_int_equal(c->orphan_grace_ms, 3000);
	assert_int_equal(c->orphan_min_rss_bytes, MIB(300));
	assert_int_equal(c->orphan_min_age_ms, 60000);
	assert_true(c->kill);
	assert_int_equal(c->crashloop_window_ms, 3600000);
	assert_int_equal(c->crashloop_threshold, 5);
	assert_true(c->json);
	assert_false(c->journal);
	assert_false(c->bpf);
	assert_string_equal(c->metrics_listen, "127.0.0.1:9464");
	assert_string_equal(c->incident_dir, "/srv/oomsentry/incidents");
	assert_string_equal(c->socket_path, "/tmp/oomsentry.sock");
	assert_int_equal(c->verbose, 2);

	assert_int_equal(c->n_instances, 2);
	const struct instance_config *d = &c->instances[0], *f = &c->instances[1];
	assert_string_equal(d->name, "default");
	assert_string_equal(d->url, "http://127.0.0.1:8188");
	assert_string_equal(d->auth_header, "Authorization: Bearer T0KEN");
	assert_string_equal(d->pid_file, "/run/comfyui/comfyui.pid");
	assert_string_equal(d->cmdline_pattern, "ComfyUI/main.py");
	assert_string_equal(d->cgroup, "/sys/fs/cgroup/system.slice/comfyui.service");
	assert_int_equal(d->restart_method, RESTART_COMMAND);
	assert_string_equal(d->restart_command, "docker restart comfyui");
	assert_true(d->free_after_each_generation);
	assert_int_equal(d->restart_every_generations, 20);
	assert_int_equal(d->restart_timeout_ms, 90000);
	assert_string_equal(f->name, "flux");
	assert_string_equal(f->url, "https://[::1]:8443/comfy");
	assert_int_equal(f->restart_method, RESTART_SYSTEMD);
	assert_string_equal(f->systemd_unit, "comfyui-flux.service");
	assert_string_equal(f->restart_command, "");
	assert_false(f->free_after_each_generation);
	assert_int_equal(f->restart_timeout_ms, 120000);
	assert_int_equal(config_finalize(c, err, sizeof(err)), 0);

	/* config_dump shows the main values */
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	assert_non_null(out);
	config_dump(c, out);
	fclose(out);
	assert_string_equal(buf, "[oomsentry]\ncomm_prefixes = python3,comfyui,main\nrss_step = 33554432\n"
				 "act_usage_fraction = 0.850\ndry_run = yes\nkill = yes\n"
				 "[instance default]\nurl = http://127.0.0.1:8188\nrestart = 2\n"
				 "[instance flux]\nurl = https://[::1]:8443/comfy\nrestart = 3\n");
	free(buf);
}

static void expect_file_error(const char *file, const char *want_fmt)
{
	struct config *c = cfg_new();
	char path[512], want[1024];

	snprintf(path, sizeof(path), CONF "/%s", file);
	snprintf(want, sizeof(want), want_fmt, path);
	assert_int_equal(config_load_file(c, path, true, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
	/* not required makes no difference for a file that exists */
	config_defaults(c);
	assert_int_equal(config_load_file(c, path, false, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
}

static void test_load_errors(void **state)
{
	(void)state;
	/* each error names the file and the line */
	expect_file_error("unknown_key.conf", "%s:5: unknown setting 'rss_stepp' (see oomsentry --help)");
	expect_file_error("bad_value.conf", "%s:3: invalid value act_usage_fraction = '1.5': expected a fraction in "
					    "(0,1] such as 0.9 or 90%%");
	expect_file_error("global_in_instance.conf", "%s:3: 'rss_step' belongs in [oomsentry], not in [instance a]");
	expect_file_error("unknown_section.conf",
			  "%s:4: unknown section [server] (use [oomsentry] or [instance NAME])");
	expect_file_error("syntax.conf", "%s:3: syntax error");
	expect_file_error("too_many.conf", "%s:17: too many instances at [instance i8]");

	/* parsing stops at the first error: later lines are not applied */
	struct config *c = cfg_new();
	assert_int_equal(config_load_file(c, CONF "/unknown_key.conf", true, err, sizeof(err)), -EINVAL);
	assert_int_equal(c->rss_step_bytes, MIB(32)); /* line 3, before the error */
	assert_false(c->kill);                         /* line 6, after it */
}

static void test_load_too_many(void **state)
{
	struct config *c = cfg_new();

	(void)state;
	assert_int_equal(config_load_file(c, CONF "/too_many.conf", true, err, sizeof(err)), -EINVAL);
	/* the default instance and i1..i7 fill the table: never more than CONFIG_MAX_INSTANCES */
	assert_int_equal(c->n_instances, CONFIG_MAX_INSTANCES);
	assert_string_equal(c->instances[0].name, "default");
	assert_string_equal(c->instances[7].name, "i7");
	assert_string_equal(c->instances[7].url, "http://127.0.0.1:8194");
}

static void test_load_instances(void **state)
{
	struct config *c = cfg_new();

	(void)state;
	assert_int_equal(config_load_file(c, CONF "/instances.conf", true, err, sizeof(err)), 0);
	assert_int_equal(c->n_instances, 3);
	assert_string_equal(c->instances[0].name, "default");
	assert_string_equal(c->instances[0].url, "http://127.0.0.1:8190");
	assert_int_equal(c->instances[0].restart_method, RESTART_SIGNAL);
	assert_string_equal(c->instances[1].name, "sdxl");
	assert_string_equal(c->instances[1].url, "http://127.0.0.1:8188");
	assert_string_equal(c->instances[1].cmdline_pattern, "--port 8188");
	assert_int_equal(c->instances[1].restart_method, RESTART_NONE);
	assert_int_equal(c->instances[1].restart_timeout_ms, 300000);
	assert_string_equal(c->instances[2].name, "flux");
	assert_string_equal(c->instances[2].url, "http://[::1]:8189");
	assert_int_equal(c->instances[2].restart_method, RESTART_SYSTEMD);
	assert_string_equal(c->instances[2].systemd_unit, "comfyui-flux.service");
	assert_true(c->instances[2].free_after_each_generation);
	assert_int_equal(c->instances[2].restart_every_generations, 20);
	assert_false(c->instances[1].free_after_each_generation);
	assert_int_equal(config_finalize(c, err, sizeof(err)), 0);

	/* keys before any section are global */
	c = cfg_new();
	assert_int_equal(config_load_file(c, CONF "/nosection.conf", true, err, sizeof(err)), 0);
	assert_int_equal(c->rss_step_bytes, MIB(16));
	assert_int_equal(c->n_instances, 1);
	assert_string_equal(c->instances[0].url, "http://127.0.0.1:9000");
}

static void test_load_missing(void **state)
{
	struct config *c = cfg_new();

	(void)state;
	/* the default path may be absent; a file named with -c / OOMSENTRY_CONFIG may not */
	assert_int_equal(config_load_file(c, CONF "/does-not-exist.conf", false, err, sizeof(err)), 0);
	assert_int_equal(c->rss_step_bytes, MIB(64));
	assert_int_equal(config_load_file(c, CONF "/does-not-exist.conf", true, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "cannot read config " CONF "/does-not-exist.conf: No such file or directory");
	/* a missing directory on the way is "missing" too */
	assert_int_equal(config_load_file(c, CONF "/nodir/x.conf", false, err, sizeof(err)), 0);
}

/* Writes text to a fresh temporary file; returns its path in path (caller unlinks). */
static void write_tmp(char *path, size_t len, const char *text)
{
	int fd;
	FILE *f;

	snprintf(path, len, "/tmp/test_config.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_load_syntax_details(void **state)
{
	struct config *c = cfg_new();
	char path[64];

	(void)state;
	/* inih: "key: value" works, ';' after a value starts a comment, '#' only at the start of a line; an
	 * indented line continues the previous value (and replaces it); a UTF-8 BOM is skipped */
	write_tmp(path, sizeof(path), "\xef\xbb\xbf[oomsentry]\nrss_step: 8M\n# comment\n; comment\n"
				      "url = http://a:1 ;comment\nrestart_command = first\n  second\n");
	assert_int_equal(config_load_file(c, path, true, err, sizeof(err)), 0);
	unlink(path);
	assert_int_equal(c->rss_step_bytes, MIB(8));
	assert_string_equal(c->instances[0].url, "http://a:1");
	assert_string_equal(c->instances[0].restart_command, "second");

	/* an empty file changes nothing */
	config_defaults(c);
	write_tmp(path, sizeof(path), "");
	assert_int_equal(config_load_file(c, path, true, err, sizeof(err)), 0);
	unlink(path);
	assert_int_equal(c->n_instances, 1);
}

/* inih reads lines into a 200-byte buffer: a longer line is cut and its rest parsed as the next line. When that
 * rest starts with a space, it silently becomes a "continuation" that replaces the value: here restart_command
 * (run with /bin/sh -c) would become "echo pwned ...". A long line must be an error instead. */
static void test_load_long_line(void **state)
{
	struct config *c = cfg_new();
	char cmd[240], text[400], path[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cmd) - 1; i++)
		cmd[i] = (char)('a' + i % 26);
	cmd[sizeof(cmd) - 1] = 0;
	/* "restart_command = " is 18 characters: the line buffer ends after cmd[180] */
	memcpy(cmd + 181, "  echo pwned", 12);
	snprintf(text, sizeof(text), "[oomsentry]\nrestart = command\nrestart_command = %s\nrss_step = 32M\n", cmd);
	write_tmp(path, sizeof(path), text);
	int r = config_load_file(c, path, true, err, sizeof(err));
	unlink(path);
	assert_int_equal(r, -EINVAL);
	assert_non_null(strstr(err, ":3:"));
}

/* fopen() of a directory succeeds and ini_parse_file() then sees no line at all: `oomsentry -c /etc/oomsentry`
 * runs with the defaults and no word of warning. */
static void test_load_directory(void **state)
{
	struct config *c = cfg_new();
	int r;

	(void)state;
	r = config_load_file(c, CONF, true, err, sizeof(err));
	assert_int_equal(r, -EINVAL);
	assert_non_null(strstr(err, CONF));
}

/* "[instance ]" creates an instance named "": it shows up as instance="" in metrics and "instance : ..." in
 * every message. */
static void test_load_empty_instance_name(void **state)
{
	struct config *c = cfg_new();
	int r;

	(void)state;
	r = config_set(c, "instance ", "url", "http://127.0.0.1:8189", err, sizeof(err));
	assert_int_equal(r, -EINVAL);
	assert_int_equal(c->n_instances, 1);
}

/* ---------------------------------------------------------------- environment */

static void test_env(void **state)
{
	struct config *c = cfg_new();

	(void)state;
	char *env[] = {
		"PATH=/usr/bin:/bin",
		"OOMSENTRY_RSS_STEP=32M",
		"OOMSENTRY_URL=http://10.0.0.2:8188",
		"OOMSENTRY_CONFIG=/nonexistent/oomsentry.conf", /* names the file, not a key */
		"OOMSENTRY_Dry_Run=yes",                       /* the name is case-insensitive */
		"OOMSENTRY_=x",                                /* no key: ignored */
		"OOMSENTRY_NOEQUALS",                          /* not a variable: ignored */
		"oomsentry_kill=yes",                          /* the prefix is upper case */
		"XOOMSENTRY_KILL=yes",
		"OOMSENTRY_COMM_PREFIXES=python3,ComfyUI",
		NULL,
	};
	assert_int_equal(config_load_env(c, env, err, sizeof(err)), 0);
	assert_int_equal(c->rss_step_bytes, MIB(32));
	assert_string_equal(c->instances[0].url, "http://10.0.0.2:8188");
	assert_int_equal(c->n_instances, 1);
	assert_true(c->dry_run);
	assert_false(c->kill);
	assert_int_equal(c->n_comm_prefixes, 2);
	assert_string_equal(c->comm_prefixes[1], "ComfyUI");
	assert_int_equal(config_load_env(c, NULL, err, sizeof(err)), 0);

	/* a bad value names the variable as it was written */
	char *bad[] = { "OOMSENTRY_KILL=yes", "OOMSENTRY_Act_Usage_Fraction=2", "OOMSENTRY_JSON=yes", NULL };
	assert_int_equal(config_load_env(c, bad, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "environment OOMSENTRY_Act_Usage_Fraction: invalid value act_usage_fraction = '2': "
				 "expected a fraction in (0,1] such as 0.9 or 90%");
	assert_true(c->kill);  /* before */
	assert_false(c->json); /* after */
	/* so does an unknown one */
	char *unknown[] = { "OOMSENTRY_BOGUS=1", NULL };
	assert_int_equal(config_load_env(c, unknown, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "environment OOMSENTRY_BOGUS: unknown setting 'bogus' (see oomsentry --help)");
	/* a key name longer than the buffer is ignored, not cut into another key */
	char longname[100];
	snprintf(longname, sizeof(longname), "OOMSENTRY_%070d=1", 0);
	char *lng[] = { longname, NULL };
	assert_int_equal(config_load_env(c, lng, err, sizeof(err)), 0);
}

/* ---------------------------------------------------------------- flags */

static void test_flags(void **state)
{
	struct config *c = cfg_new();

	(void)state;
	assert_int_equal(config_apply_flag(c, "--rss-step=32M", NULL, err, sizeof(err)), 1);
	assert_int_equal(c->rss_step_bytes, MIB(32));
	assert_int_equal(config_apply_flag(c, "--rss-step", "16M", err, sizeof(err)), 2);
	assert_int_equal(c->rss_step_bytes, MIB(16));
	assert_int_equal(config_apply_flag(c, "--rss_step=8M", "--kill", err, sizeof(err)), 1);
	assert_int_equal(c->rss_step_bytes, MIB(8));
	assert_false(c->kill);

	/* booleans: --flag, --no-flag, --flag=value; a boolean never consumes the next argument */
	assert_int_equal(config_apply_flag(c, "--dry-run", "no", err, sizeof(err)), 1);
	assert_true(c->dry_run);
	assert_int_equal(config_apply_flag(c, "--no-dry-run", NULL, err, sizeof(err)), 1);
	assert_false(c->dry_run);
	assert_int_equal(config_apply_flag(c, "--dry-run=yes", NULL, err, sizeof(err)), 1);
	assert_true(c->dry_run);
	assert_int_equal(config_apply_flag(c, "--dry-run=off", NULL, err, sizeof(err)), 1);
	assert_false(c->dry_run);
	assert_int_equal(config_apply_flag(c, "--no-reap-orphans", NULL, err, sizeof(err)), 1);
	assert_false(c->reap_orphans);
	assert_int_equal(config_apply_flag(c, "--free-after-each-generation", NULL, err, sizeof(err)), 1);
	assert_true(c->instances[0].free_after_each_generation);

	/* --verbose counts; --verbose=N sets */
	assert_int_equal(config_apply_flag(c, "--verbose", NULL, err, sizeof(err)), 1);
	assert_int_equal(config_apply_flag(c, "--verbose", "x", err, sizeof(err)), 1);
	assert_int_equal(c->verbose, 2);
	assert_int_equal(config_apply_flag(c, "--verbose=5", NULL, err, sizeof(err)), 1);
	assert_int_equal(c->verbose, 5);

	/* per-instance keys go to the default instance */
	assert_int_equal(config_apply_flag(c, "--url", "http://127.0.0.1:9999", err, sizeof(err)), 2);
	assert_string_equal(c->instances[0].url, "http://127.0.0.1:9999");
	assert_int_equal(config_apply_flag(c, "--restart=signal", NULL, err, sizeof(err)), 1);
	assert_int_equal(c->instances[0].restart_method, RESTART_SIGNAL);
	assert_int_equal(config_apply_flag(c, "--comm-prefixes=python3,comfyui", NULL, err, sizeof(err)), 1);
	assert_int_equal(c->n_comm_prefixes, 2);
	assert_int_equal(c->n_instances, 1);

	/* not ours: 0, nothing changed */
	static const char *const not_ours[] = { "--unknown", "--unknown=1", "-v", "rss-step", "--", "---rss-step=1M",
						"--RSS-STEP=1M", "--no-unknown", "--help" };
	for (size_t i = 0; i < ARRAY_SIZE(not_ours); i++)
		if (config_apply_flag(c, not_ours[i], "1M", err, sizeof(err)) != 0)
			fail_msg("config_apply_flag(\"%s\") should return 0", not_ours[i]);
	char longflag[100];
	snprintf(longflag, sizeof(longflag), "--%070d", 0);
	assert_int_equal(config_apply_flag(c, longflag, NULL, err, sizeof(err)), 0);
	assert_int_equal(c->rss_step_bytes, MIB(8));

	/* a missing value, a bad value */
	assert_int_equal(config_apply_flag(c, "--rss-step", NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--rss-step needs a value: a size such as 64M or 1.5G");
	assert_int_equal(config_apply_flag(c, "--rss-step=abc", NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--rss-step=abc: invalid value rss_step = 'abc': expected a size such as 64M or 1.5G");
	assert_int_equal(config_apply_flag(c, "--dry-run=perhaps", NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--dry-run=perhaps: invalid value dry_run = 'perhaps': expected yes or no");
	assert_int_equal(config_apply_flag(c, "--restart", "reboot", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--restart: invalid value restart = 'reboot': expected none, signal, command or "
				 "systemd");
	assert_int_equal(c->rss_step_bytes, MIB(8));
}

/* "--no-" is only for booleans. For any other key, the lookup of "no_KEY" leaves k pointing at KEY (assignment
 * inside the && chain) with negate false, so --no-verbose increments verbose and --no-rss-step=1M sets rss_step. */
static void test_flags_no_prefix_non_bool(void **state)
{
	struct config *c = cfg_new();
	int r1, r2, r3;

	(void)state;
	r1 = config_apply_flag(c, "--no-verbose", NULL, err, sizeof(err));
	r2 = config_apply_flag(c, "--no-rss-step=1M", NULL, err, sizeof(err));
	r3 = config_apply_flag(c, "--no-url", "http://10.1.1.1:1", err, sizeof(err));
	assert_int_equal(r1, 0);
	assert_int_equal(r2, 0);
	assert_int_equal(r3, 0);
	assert_int_equal(c->verbose, 0);
	assert_int_equal(c->rss_step_bytes, MIB(64));
	assert_string_equal(c->instances[0].url, "http://127.0.0.1:8188");
}

/* ---------------------------------------------------------------- finalize */

static void expect_finalize(void (*setup)(struct config *), const char *want)
{
	struct config *c = cfg_new();

	setup(c);
	err[0] = 0;
	if (want) {
		assert_int_equal(config_finalize(c, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, want);
	} else {
		assert_int_equal(config_finalize(c, err, sizeof(err)), 0);
	}
}

#define SETUP(name, body) static void name(struct config *c) { body; }
SETUP(bad_scheme, strcpy(c->instances[0].url, "ftp://127.0.0.1:8188"))
SETUP(upper_scheme, strcpy(c->instances[0].url, "HTTP://127.0.0.1:8188"))
SETUP(bad_port, strcpy(c->instances[0].url, "http://127.0.0.1:99999"))
SETUP(bad_port_2nd, config_set(c, "instance flux", "url", "http://[::1]:x", NULL, 0))
SETUP(restart_cmd_missing, c->instances[0].restart_method = RESTART_COMMAND)
SETUP(restart_cmd_ok, c->instances[0].restart_method = RESTART_COMMAND;
      strcpy(c->instances[0].restart_command, "true"))
SETUP(restart_unit_missing, config_set(c, "instance flux", "restart", "systemd", NULL, 0))
SETUP(sample_too_small, c->sample_interval_ms = 9)
SETUP(poll_too_small, c->poll_interval_ms = 0)
SETUP(intervals_min, c->sample_interval_ms = 10; c->poll_interval_ms = 10)
SETUP(rss_step_small, c->rss_step_bytes = 4095)
SETUP(rss_step_min, c->rss_step_bytes = 4096)
SETUP(ring_page, c->ring_buffer_bytes = (uint64_t)sysconf(_SC_PAGESIZE))
SETUP(ring_half_page, c->ring_buffer_bytes = (uint64_t)sysconf(_SC_PAGESIZE) / 2)
SETUP(ring_not_pow2, c->ring_buffer_bytes = 3ULL << 20)
SETUP(ring_1g, c->ring_buffer_bytes = 1ULL << 30)
SETUP(ring_2g, c->ring_buffer_bytes = 2ULL << 30)
SETUP(crashloop_1, c->crashloop_threshold = 1)
SETUP(crashloop_2, c->crashloop_threshold = 2)
SETUP(crashloop_32, c->crashloop_threshold = 32)
SETUP(crashloop_33, c->crashloop_threshold = 33)
SETUP(crashloop_huge, c->crashloop_threshold = UINT64_MAX)

static void test_finalize(void **state)
{
	(void)state;
	expect_finalize(bad_scheme, "instance default: url 'ftp://127.0.0.1:8188' must start with http:// or https://");
	expect_finalize(upper_scheme,
			"instance default: url 'HTTP://127.0.0.1:8188' must start with http:// or https://");
	expect_finalize(bad_port, "instance default: url 'http://127.0.0.1:99999' has an invalid port");
	expect_finalize(bad_port_2nd, "instance flux: url 'http://[::1]:x' has an invalid port");
	expect_finalize(restart_cmd_missing, "instance default: restart=command needs restart_command");
	expect_finalize(restart_cmd_ok, NULL);
	expect_finalize(restart_unit_missing, "instance flux: restart=systemd needs systemd_unit");
	expect_finalize(sample_too_small, "sample_interval and poll_interval must be at least 10ms");
	expect_finalize(poll_too_small, "sample_interval and poll_interval must be at least 10ms");
	expect_finalize(intervals_min, NULL);
	expect_finalize(rss_step_small, "rss_step must be at least 4K");
	expect_finalize(rss_step_min, NULL);
	expect_finalize(ring_page, NULL);
	expect_finalize(ring_1g, NULL);
	/* the kernel refuses anything but a power-of-two multiple of the page: say so at start, not at load */
	char want[128];
	snprintf(want, sizeof(want), "ring_buffer_size must be a power of two between the page size and 1G, not %llu",
		 (unsigned long long)sysconf(_SC_PAGESIZE) / 2);
	expect_finalize(ring_half_page, want);
	expect_finalize(ring_not_pow2, "ring_buffer_size must be a power of two between the page size and 1G, not 3145728");
	expect_finalize(ring_2g, "ring_buffer_size must be a power of two between the page size and 1G, not 2147483648");
	expect_finalize(crashloop_1, "crashloop_threshold must be between 2 and 32");
	expect_finalize(crashloop_2, NULL);
	expect_finalize(crashloop_32, NULL);
	expect_finalize(crashloop_33, "crashloop_threshold must be between 2 and 32");
	expect_finalize(crashloop_huge, "crashloop_threshold must be between 2 and 32");
}

/* ---------------------------------------------------------------- precedence, help */

static void test_precedence(void **state)
{
	struct config *c = cfg_new();

	(void)state;
	/* file: rss_step 32M, cooldown 2m, kill on, verbose 2, default url 8188, flux instance */
	assert_int_equal(config_load_file(c, CONF "/full.conf", true, err, sizeof(err)), 0);
	char *env[] = { "OOMSENTRY_COOLDOWN=45s", "OOMSENTRY_RSS_STEP=16M", "OOMSENTRY_URL=http://127.0.0.1:8200",
			NULL };
	assert_int_equal(config_load_env(c, env, err, sizeof(err)), 0);
	assert_int_equal(config_apply_flag(c, "--rss-step=8M", NULL, err, sizeof(err)), 1);
	assert_int_equal(config_apply_flag(c, "--no-kill", NULL, err, sizeof(err)), 1);
	assert_int_equal(config_finalize(c, err, sizeof(err)), 0);

	assert_int_equal(c->rss_step_bytes, MIB(8));                     /* flag > env > file */
	assert_int_equal(c->cooldown_ms, 45000);                         /* env > file */
	assert_false(c->kill);                                           /* flag > file */
	assert_int_equal(c->orphan_grace_ms, 3000);                      /* file > default */
	assert_int_equal(c->sample_interval_ms, 250);                    /* file > default */
	assert_int_equal(c->http_timeout_ms, 10000);
	assert_string_equal(c->instances[0].url, "http://127.0.0.1:8200"); /* env sets the default instance */
	assert_string_equal(c->instances[1].url, "https://[::1]:8443/comfy"); /* and only that one */
	assert_int_equal(c->n_instances, 2);
}

static void test_help_keys(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(out);
	config_print_help_keys(out);
	fclose(out);
	/* every key in its three forms, with its help */
	assert_non_null(strstr(buf, "\n  --rss-step                     OOMSENTRY_RSS_STEP                    "
				    "report a process when its RSS moves by this much (default 64M; finer near the limit)\n"));
	static const char *const keys[] = {
		"comm_prefixes", "cgroups", "rss_step", "mmap_threshold", "sample_interval", "reclaim_report_interval",
		"poll_interval", "http_timeout", "dry_run", "act_usage_fraction", "forecast_margin", "cooldown",
		"reap_orphans", "orphan_grace", "orphan_min_rss", "orphan_min_age", "orphan_uid", "kill", "crashloop_window",
		"crashloop_threshold", "json", "journal", "bpf", "rss_probe_on_demand", "memcg_events_probe", "priority", "metrics_listen", "incident_dir",
		"incident_max_count", "incident_max_size", "socket", "prekill_hook", "runtime_dir", "state_dir", "max_processes", "ring_buffer_size", "verbose",
		"url", "auth_header", "pid_file", "cmdline_pattern", "cgroup", "restart", "restart_command",
		"systemd_unit", "websocket", "free_after_each_generation", "restart_every_generations", "restart_timeout",
		"stop_grace", "last_resort_grace",
		"give_up_after", "brake",
	};
	int lines = 0;
	for (const char *p = buf; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, ARRAY_SIZE(keys));
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		char flag[64], env[64];
		size_t j;

		snprintf(flag, sizeof(flag), "  --%s ", keys[i]);
		for (j = 4; flag[j]; j++)
			flag[j] = flag[j] == '_' ? '-' : flag[j];
		snprintf(env, sizeof(env), " OOMSENTRY_%s ", keys[i]);
		for (j = 0; env[j]; j++)
			env[j] = (char)toupper((unsigned char)env[j]);
		if (!strstr(buf, flag) || !strstr(buf, env))
			fail_msg("--help does not list %s as %s and %s", keys[i], flag, env);
		/* and each one is a key config_set knows */
		struct config *c = cfg_new();
		config_set(c, NULL, keys[i], "", err, sizeof(err));
		if (strstr(err, "unknown setting"))
			fail_msg("%s: %s", keys[i], err);
	}
	free(buf);
}

static void test_priority(void **state)
{
	static const struct {
		const char *text;
		int r, nice, fifo;
	} t[] = {
		{ "keep", 0, 1, 0 },       { "high", 0, -20, 0 },     { "realtime", 0, 1, 1 },
		{ "realtime:1", 0, 1, 1 }, { "realtime:99", 0, 1, 99 }, { "realtime:0", -EINVAL, 1, 0 },
		{ "realtime:100", -EINVAL, 1, 0 }, { "realtime:", -EINVAL, 1, 0 }, { "realtime:5x", -EINVAL, 1, 0 },
		{ "realtime:-1", -EINVAL, 1, 0 }, { "fifo", -EINVAL, 1, 0 },   { "", -EINVAL, 1, 0 },
		{ "High", -EINVAL, 1, 0 },
	};
	struct config *c = cfg_new();

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		int nice_value = 7, fifo = 7;

		assert_int_equal(config_parse_priority(t[i].text, &nice_value, &fifo), t[i].r);
		if (t[i].r == 0) {
			assert_int_equal(nice_value, t[i].nice);
			assert_int_equal(fifo, t[i].fifo);
		}
	}
	/* the default reacts ahead of the host's other tasks; a bad value stops the start with one line */
	assert_string_equal(c->priority, "high");
	assert_int_equal(config_set(c, NULL, "priority", "realtime:200", err, sizeof(err)), 0);
	assert_int_equal(config_finalize(c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "priority must be keep, high, realtime or realtime:N with N from 1 to 99, not 'realtime:200'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_bytes),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_duration_fits_ns),
		cmocka_unit_test(test_parse_fraction),
		cmocka_unit_test(test_parse_bool),
		cmocka_unit_test(test_url_port),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_set_sections),
		cmocka_unit_test(test_set_values),
		cmocka_unit_test(test_load_full),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_load_too_many),
		cmocka_unit_test(test_load_instances),
		cmocka_unit_test(test_load_missing),
		cmocka_unit_test(test_load_syntax_details),
		cmocka_unit_test(test_load_long_line),
		cmocka_unit_test(test_load_directory),
		cmocka_unit_test(test_load_empty_instance_name),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_flags_no_prefix_non_bool),
		cmocka_unit_test(test_finalize),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_help_keys),
		cmocka_unit_test(test_priority),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
