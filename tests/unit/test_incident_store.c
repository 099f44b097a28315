// SPDX-License-Identifier: GPL-2.0
/* incident-store.c: reports written atomically to disk and read back by `oomsentry report`. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "incident.h"
#include "incident-render.h"
#include "incident-store.h"
#include "log.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif

#include "incident-fixture.h"

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	log_setup(LOG_CRIT, LOG_TARGET_STDERR); /* error paths are exercised on purpose */
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_incident.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf;
	long len;

	if (!f)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	assert_true(len >= 0);
	rewind(f);
	buf = malloc((size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static size_t count(const char *haystack, const char *needle)
{
	size_t n = 0;

	for (const char *p = haystack; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* Enough of an XML checker for what we emit: one root <svg>, balanced and properly nested tags, quoted
 * attributes, and '&' only as a predefined entity. */
static void assert_well_formed_svg(const char *s)
{
	static const char *const entities[] = { "&amp;", "&lt;", "&gt;", "&quot;", "&apos;" };
	char stack[32][32];
	int depth = 0, roots = 0;
	const char *p = s;

	assert_memory_equal(s, "<svg", 4);
	while (*p) {
		if (*p == '&') {
			size_t i;

			for (i = 0; i < ARRAY_SIZE(entities); i++)
				if (strncmp(p, entities[i], strlen(entities[i])) == 0)
					break;
			if (i == ARRAY_SIZE(entities))
				fail_msg("bare '&' at offset %td", p - s);
			p++;
			continue;
		}
		if (*p == '>')
			fail_msg("bare '>' at offset %td", p - s);
		if (*p != '<') {
			if (depth == 0 && !strchr(" \n", *p))
				fail_msg("text outside the root at offset %td", p - s);
			p++;
			continue;
		}
		p++;
		if (*p == '/') {
			size_t n = strcspn(++p, ">");

			assert_true(depth > 0);
			depth--;
			if (strlen(stack[depth]) != n || strncmp(stack[depth], p, n) != 0)
				fail_msg("</%.*s> closes <%s>", (int)n, p, stack[depth]);
			p += n;
			assert_int_equal(*p, '>');
			p++;
			continue;
		}
		{
			size_t n = strcspn(p, " />\n");
			bool self_closing = false;

			assert_true(n > 0 && n < sizeof(stack[0]));
			if (depth == 0)
				roots++;
			assert_true(depth < (int)ARRAY_SIZE(stack));
			memcpy(stack[depth], p, n);
			stack[depth][n] = '\0';
			p += n;
			/* attributes: name="value" */
			for (;;) {
				while (*p == ' ' || *p == '\n')
					p++;
				if (*p == '>' || (p[0] == '/' && p[1] == '>'))
					break;
				n = strcspn(p, "=");
				assert_true(n > 0);
				p += n;
				assert_memory_equal(p, "=\"", 2);
				p += 2;
				n = strcspn(p, "\"<>");
				p += n;
				assert_int_equal(*p, '"');
				p++;
			}
			if (*p == '/') {
				self_closing = true;
				p++;
			}
			assert_int_equal(*p, '>');
			p++;
			if (!self_closing)
				depth++;
		}
	}
	assert_int_equal(depth, 0);
	assert_int_equal(roots, 1);
}

static void xmllint_if_present(const char *path)
{
	char cmd[PATH_MAX + 64];
	int status;

	if (access("/usr/bin/xmllint", X_OK) != 0)
		return; /* optional: the built-in checker above is the real test */
	snprintf(cmd, sizeof(cmd), "/usr/bin/xmllint --noout '%s'", path);
	status = system(cmd);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static size_t polyline_points(const char *svg)
{
	const char *p = strstr(svg, "class=\"usage\"");
	const char *end;
	size_t n = 0;

	if (!p)
		return 0;
	p = strstr(p, "points=\"");
	assert_non_null(p);
	p += strlen("points=\"");
	end = strchr(p, '"');
	assert_non_null(end);
	while (p < end) {
		double x, y;
		int used;

		assert_int_equal(sscanf(p, "%lf,%lf%n", &x, &y, &used), 2);
		assert_true(x >= 90.0 && x <= 930.0);
		assert_true(y >= 70.0 && y <= 470.0);
		n++;
		p += used;
		if (*p == ' ')
			p++;
	}
	return n;
}

static void test_write_and_read_back(void **state)
{
	char path[PATH_MAX], file[PATH_MAX + 32];
	struct incident *inc = build();
	json_object *root, *v, *arr, *e;
	char *text;
	struct stat st;
	mode_t old_umask;
	DIR *d;
	struct dirent *de;
	int entries = 0;

	(void)state;
	/* The modes must not depend on the caller's umask. */
	old_umask = umask(0077);
	snprintf(file, sizeof(file), "%s/incidents/nested", tmpdir);
	assert_int_equal(incident_write(inc, file, path, sizeof(path)), 0);
	umask(old_umask);
	snprintf(file, sizeof(file), "%s/incidents/nested/20231114T221320Z-default-forecast", tmpdir);
	assert_string_equal(path, file);

	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0750);
	for (const char *const *name = (const char *const[]){ INCIDENT_JSON, INCIDENT_TIMELINE, INCIDENT_SVG, NULL };
	     *name; name++) {
		snprintf(file, sizeof(file), "%s/%s", path, *name);
		assert_int_equal(stat(file, &st), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0640);
	}

	/* No temporary directory is left behind. */
	snprintf(file, sizeof(file), "%s/incidents/nested", tmpdir);
	d = opendir(file);
	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			entries++;
	closedir(d);
	assert_int_equal(entries, 1);

	/* JSON, read back with json-c directly. */
	snprintf(file, sizeof(file), "%s/%s", path, INCIDENT_JSON);
	root = json_object_from_file(file);
	assert_non_null(root);
	assert_true(json_object_object_get_ex(root, "format", &v));
	assert_string_equal(json_object_get_string(v), "oomsentry-incident");
	assert_true(json_object_object_get_ex(root, "version", &v));
	assert_int_equal(json_object_get_int(v), 1);
	assert_true(json_object_object_get_ex(root, "instance", &v));
	assert_string_equal(json_object_get_string(v), "default");
	assert_true(json_object_object_get_ex(root, "trigger", &v));
	assert_string_equal(json_object_get_string(v), "forecast");
	assert_true(json_object_object_get_ex(root, "ts_ns", &v));
	assert_true(json_object_get_uint64(v) == T0);
	assert_true(json_object_object_get_ex(root, "time", &v));
	assert_string_equal(json_object_get_string(v), "2023-11-14T22:13:20.000Z");
	assert_true(json_object_object_get_ex(root, "outcome", &v));
	assert_true(json_object_object_get_ex(v, "result", &e));
	assert_string_equal(json_object_get_string(e), "prevented");
	assert_true(json_object_object_get_ex(v, "freed_bytes", &e));
	assert_true(json_object_get_uint64(e) == MIB(812));
	assert_true(json_object_object_get_ex(root, "summary", &v));
	assert_true(json_object_object_get_ex(v, "peak_usage_bytes", &e));
	assert_true(json_object_get_uint64(e) == MIB(7420));
	assert_true(json_object_object_get_ex(v, "limit_bytes", &e));
	assert_true(json_object_get_uint64(e) == MIB(8192));

	assert_true(json_object_object_get_ex(root, "samples", &arr));
	assert_int_equal(json_object_array_length(arr), 16);
	e = json_object_array_get_idx(arr, 3);
	assert_true(json_object_object_get_ex(e, "ts_ns", &v));
	assert_true(json_object_get_uint64(v) == T0 - SEC(45));
	assert_true(json_object_object_get_ex(e, "usage_bytes", &v));
	assert_true(json_object_get_uint64(v) == MIB(6400));
	assert_true(json_object_object_get_ex(e, "limit_bytes", &v));
	assert_true(json_object_get_uint64(v) == MIB(8192));

	assert_true(json_object_object_get_ex(root, "events", &arr));
	assert_int_equal(json_object_array_length(arr), 5);
	e = json_object_array_get_idx(arr, 1);
	assert_true(json_object_object_get_ex(e, "kind", &v));
	assert_string_equal(json_object_get_string(v), "note");
	assert_true(json_object_object_get_ex(e, "text", &v));
	assert_string_equal(json_object_get_string(v), "reclaim <rising> & \"fast\"");
	assert_true(json_object_object_get_ex(e, "ts_ns", &v));
	assert_true(json_object_get_uint64(v) == T0 - MSEC(250));

	assert_true(json_object_object_get_ex(root, "generations", &arr));
	assert_int_equal(json_object_array_length(arr), 2);
	e = json_object_array_get_idx(arr, 1);
	assert_true(json_object_object_get_ex(e, "seq", &v));
	assert_int_equal(json_object_get_int(v), 3);
	assert_true(json_object_object_get_ex(e, "prompt_id", &v));
	assert_string_equal(json_object_get_string(v), "abc");
	assert_true(json_object_object_get_ex(e, "peak_bytes", &v));
	assert_true(json_object_get_uint64(v) == MIB(7420));
	assert_true(json_object_object_get_ex(e, "residual_bytes", &v));
	assert_true(json_object_get_uint64(v) == MIB(6100));
	json_object_put(root);

	/* Timeline file, byte for byte. */
	snprintf(file, sizeof(file), "%s/%s", path, INCIDENT_TIMELINE);
	text = read_file(file);
	assert_string_equal(text, expected_timeline);
	free(text);

	/* SVG: well-formed, the limit line at 8192 of 10000 MiB, one point per sample. */
	snprintf(file, sizeof(file), "%s/%s", path, INCIDENT_SVG);
	text = read_file(file);
	assert_well_formed_svg(text);
	xmllint_if_present(file);
	assert_non_null(strstr(text, "<line class=\"limit\" x1=\"90.0\" y1=\"142.3\" x2=\"930.0\" y2=\"142.3\" "
				     "stroke=\"#d62728\""));
	assert_non_null(strstr(text, ">limit 8.00 GiB</text>"));
	assert_int_equal(polyline_points(text), 16);
	assert_non_null(strstr(text, "points=\"90.0,230.0 146.0,228.0 "));
	assert_non_null(strstr(text, " 930.0,205.7\"/>"));
	assert_int_equal(count(text, "<g class=\"event\">"), 5);
	assert_int_equal(count(text, "<g class=\"trigger\">"), 1);
	assert_non_null(strstr(text, "<title>reclaim &lt;rising&gt; &amp; &quot;fast&quot;</title>"));
	assert_non_null(strstr(text, ">generation 3 started (pr\xe2\x80\xa6</text>"));
	assert_non_null(strstr(text, ">10000 MiB</text>"));
	assert_non_null(strstr(text, ">-60 s</text>"));
	assert_non_null(strstr(text, ">0 s</text>"));
	assert_non_null(strstr(text, ">+10 s</text>"));
	free(text);

	/* A second report of the same second gets its own directory. */
	snprintf(file, sizeof(file), "%s/incidents/nested", tmpdir);
	assert_int_equal(incident_write(inc, file, path, sizeof(path)), 0);
	snprintf(file, sizeof(file), "%s/incidents/nested/20231114T221320Z-default-forecast-2", tmpdir);
	assert_string_equal(path, file);
	incident_free(inc);
}

static void test_svg_edge_cases(void **state)
{
	_cleanup_incident_ struct incident *inc = NULL;
	char path[PATH_MAX], file[PATH_MAX + 32];
	char *svg;

	(void)state;
	/* Nothing but the trigger: still a valid, labelled plot. */
	assert_int_equal(incident_new("a&b<c>", INCIDENT_TRIGGER_USAGE, T0, &inc), 0);
	assert_int_equal(incident_render_svg(inc, &svg), 0);
	assert_well_formed_svg(svg);
	assert_null(strstr(svg, "class=\"limit\""));
	assert_int_equal(polyline_points(svg), 0);
	assert_non_null(strstr(svg, "no memory samples"));
	assert_non_null(strstr(svg, "a&amp;b&lt;c&gt;: usage at 2023-11-14 22:13:20 UTC"));
	free(svg);

	/* One sample, no limit, an event far to the right (label anchored to its left). */
	assert_int_equal(incident_add_sample(inc, T0, MIB(512), 0), 0);
	assert_int_equal(incident_add_event(inc, T0 + MSEC(900), INCIDENT_EVENT_OOM_KILL,
					    "OOM victim pid 1234 python3 \xe2\x80\x94 a long text that is cut"), 0);
	assert_int_equal(incident_render_svg(inc, &svg), 0);
	assert_well_formed_svg(svg);
	assert_int_equal(polyline_points(svg), 1);
	assert_null(strstr(svg, "class=\"limit\""));
	assert_non_null(strstr(svg, "text-anchor=\"end\">OOM victim pid 1234 pyth\xe2\x80\xa6</text>"));
	free(svg);

	/* The instance name is made safe for a path. */
	assert_int_equal(incident_write(inc, tmpdir, path, sizeof(path)), 0);
	snprintf(file, sizeof(file), "%s/20231114T221320Z-a_b_c_-usage", tmpdir);
	assert_string_equal(path, file);
	snprintf(file, sizeof(file), "%s/%s", path, INCIDENT_SVG);
	xmllint_if_present(file);
}

static void test_write_errors(void **state)
{
	_cleanup_incident_ struct incident *inc = NULL;
	char path[PATH_MAX], file[PATH_MAX + 32], small[16];
	DIR *d;
	struct dirent *de;
	int entries = 0;

	(void)state;
	assert_int_equal(incident_new(".hidden/../x", INCIDENT_TRIGGER_RECLAIM, T0, &inc), 0);
	assert_int_equal(incident_write(NULL, tmpdir, path, sizeof(path)), -EINVAL);
	assert_int_equal(incident_write(inc, NULL, path, sizeof(path)), -EINVAL);
	assert_int_equal(incident_write(inc, "", path, sizeof(path)), -EINVAL);
	assert_int_equal(incident_write(inc, tmpdir, path, 0), -EINVAL);

	/* DIR is a file. */
	snprintf(file, sizeof(file), "%s/plain", tmpdir);
	write_text(file, "x");
	assert_int_equal(incident_write(inc, file, path, sizeof(path)), -ENOTDIR);

	/* ret_path too small: an error, and nothing left behind. */
	snprintf(file, sizeof(file), "%s/out", tmpdir);
	assert_int_equal(incident_write(inc, file, small, sizeof(small)), -ENAMETOOLONG);
	assert_string_equal(small, "");
	d = opendir(file);
	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			entries++;
	closedir(d);
	assert_int_equal(entries, 0);

	/* ret_path is optional. */
	assert_int_equal(incident_write(inc, file, NULL, 0), 0);
	snprintf(path, sizeof(path), "%s/out/20231114T221320Z-_hidden_.._x-reclaim/%s", tmpdir, INCIDENT_JSON);
	assert_int_equal(access(path, R_OK), 0);
}

static char *load_and_print(const char *path, int expected_r)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	assert_non_null(f);
	assert_int_equal(incident_load_and_print(path, f), expected_r);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void test_load_and_print(void **state)
{
	char path[PATH_MAX], file[PATH_MAX + 32], *expected, *out;
	struct incident *inc = build();

	(void)state;
	assert_int_equal(incident_write(inc, tmpdir, path, sizeof(path)), 0);
	incident_free(inc);
	assert_int_equal(asprintf(&expected, "%s\nplot: %s/%s\n", expected_timeline, path, INCIDENT_SVG) > 0, true);

	/* By directory, and by the JSON file itself. */
	out = load_and_print(path, 0);
	assert_string_equal(out, expected);
	free(out);
	snprintf(file, sizeof(file), "%s/%s", path, INCIDENT_JSON);
	out = load_and_print(file, 0);
	assert_string_equal(out, expected);
	free(out);
	free(expected);

	/* The SVG gone: still printed, and said to be missing. */
	snprintf(file, sizeof(file), "%s/%s", path, INCIDENT_SVG);
	assert_int_equal(unlink(file), 0);
	out = load_and_print(path, 0);
	assert_non_null(strstr(out, "/memory.svg (missing)\n"));
	free(out);
}

static void test_load_errors(void **state)
{
	char file[PATH_MAX + 32], *out;

	(void)state;
	snprintf(file, sizeof(file), "%s/nope", tmpdir);
	out = load_and_print(file, -ENOENT);
	assert_string_equal(out, "");
	free(out);
	/* A directory that is not an incident. */
	out = load_and_print(tmpdir, -ENOENT);
	assert_string_equal(out, "");
	free(out);
	/* A file that is not JSON, JSON that is not ours, and not a text file. */
	snprintf(file, sizeof(file), "%s/garbage.json", tmpdir);
	write_text(file, "this is not json");
	free(load_and_print(file, -EBADMSG));
	write_text(file, "{\"format\": \"something-else\", \"version\": 1}");
	free(load_and_print(file, -EBADMSG));
	write_text(file, "");
	free(load_and_print(file, -EBADMSG));
	snprintf(file, sizeof(file), "%s/%s", tmpdir, INCIDENT_JSON);
	assert_int_equal(mkdir(file, 0700), 0);
	free(load_and_print(tmpdir, -EBADMSG));
	assert_int_equal(incident_load_and_print(NULL, stdout), -EINVAL);
	assert_int_equal(incident_load_and_print(tmpdir, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_and_read_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_svg_edge_cases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_and_print, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_errors, setup, teardown),
	};

	log_setup(LOG_CRIT, LOG_TARGET_STDERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
