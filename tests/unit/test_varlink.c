// SPDX-License-Identifier: GPL-2.0
/* The Varlink protocol of the systemd-oomd pre-kill hook: calls as oomd and varlinkctl send them, the replies, and what
 * the service must refuse; which instance a notified cgroup holds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>
#include "varlink.h"

static void test_message_end(void **state)
{
	static const char two[] = "{\"method\":\"a.B\"}\0{\"meth";

	(void)state;
	assert_int_equal(varlink_message_end(two, sizeof(two) - 1), 16);
	assert_int_equal(varlink_message_end(two, 16), -1);
	assert_int_equal(varlink_message_end("", 0), -1);
}

static void test_calls(void **state)
{
	static const struct {
		const char *msg;
		int verdict;
		const char *cgroup;   /* of a Notify */
		const char *reply;    /* exact reply text; NULL: none (oneway, or closed without one) */
		const char *contains; /* or: a part of it */
	} t[] = {
		/* oomd (src/oom/oomd-util.c): one call per hook socket, the cgroup from the hierarchy's root */
		{ "{\"method\":\"io.systemd.oom.Prekill.Notify\",\"parameters\":{\"cgroup\":\"/system.slice/comfyui.service\"}}",
		  VARLINK_NOTIFY, "/system.slice/comfyui.service", "{\"parameters\":{}}", NULL },
		{ " { \"parameters\" : { \"cgroup\" : \"/a\" } , \"method\" : \"io.systemd.oom.Prekill.Notify\" } ",
		  VARLINK_NOTIFY, "/a", "{\"parameters\":{}}", NULL },
		/* oneway: acted on, never answered */
		{ "{\"method\":\"io.systemd.oom.Prekill.Notify\",\"oneway\":true,\"parameters\":{\"cgroup\":\"/x\"}}",
		  VARLINK_NOTIFY, "/x", NULL, NULL },
		/* bad parameters: an error reply, no action */
		{ "{\"method\":\"io.systemd.oom.Prekill.Notify\",\"parameters\":{}}", VARLINK_REPLY, "",
		  "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"cgroup\"}}", NULL },
		{ "{\"method\":\"io.systemd.oom.Prekill.Notify\",\"parameters\":{\"cgroup\":42}}", VARLINK_REPLY, "",
		  NULL, "InvalidParameter" },
		{ "{\"method\":\"io.systemd.oom.Prekill.Notify\",\"parameters\":{\"cgroup\":\"relative/path\"}}",
		  VARLINK_REPLY, "", NULL, "InvalidParameter" },
		{ "{\"method\":\"io.systemd.oom.Prekill.Notify\",\"parameters\":{\"cgroup\":\"/a/../etc\"}}", VARLINK_REPLY,
		  "", NULL, "InvalidParameter" },
		{ "{\"method\":\"io.systemd.oom.Prekill.Notify\",\"parameters\":[\"/a\"]}", VARLINK_REPLY, "",
		  "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"parameters\"}}", NULL },
		/* varlinkctl info / introspect */
		{ "{\"method\":\"org.varlink.service.GetInfo\",\"parameters\":{}}", VARLINK_REPLY, "", NULL,
		  "\"interfaces\":[\"io.systemd.oom.Prekill\",\"org.varlink.service\"]" },
		{ "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":"
		  "\"io.systemd.oom.Prekill\"}}",
		  VARLINK_REPLY, "", NULL, "method Notify(cgroup: string) -> ()" },
		{ "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"x.Y\"}}",
		  VARLINK_REPLY, "",
		  "{\"error\":\"org.varlink.service.InterfaceNotFound\",\"parameters\":{\"interface\":\"x.Y\"}}", NULL },
		{ "{\"method\":\"io.systemd.oom.Prekill.Kill\"}", VARLINK_REPLY, "",
		  "{\"error\":\"org.varlink.service.MethodNotFound\",\"parameters\":{\"method\":\"io.systemd.oom.Prekill.Kill\"}}",
		  NULL },
		/* no call at all: hang up */
		{ "{\"method\":\"io.systemd.oom.Prekill.Notify\"", VARLINK_CLOSE, "", NULL, NULL },
		{ "[\"method\"]", VARLINK_CLOSE, "", NULL, NULL },
		{ "{\"method\":7}", VARLINK_CLOSE, "", NULL, NULL },
		{ "{\"parameters\":{}}", VARLINK_CLOSE, "", NULL, NULL },
		{ "{\"method\":\"a.B\"} {\"method\":\"a.B\"}", VARLINK_CLOSE, "", NULL, NULL },
		{ "", VARLINK_CLOSE, "", NULL, NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char cgroup[VARLINK_CGROUP_MAX], *reply = (char *)1;
		int v = varlink_handle(t[i].msg, strlen(t[i].msg), "1.0", &reply, cgroup, sizeof(cgroup));

		if (v != t[i].verdict || strcmp(cgroup, t[i].cgroup))
			fail_msg("case %zu: verdict %d cgroup '%s'", i, v, cgroup);
		if (t[i].reply)
			assert_string_equal(reply, t[i].reply);
		else if (t[i].contains) {
			if (!reply || !strstr(reply, t[i].contains))
				fail_msg("case %zu: reply %s lacks %s", i, reply ? reply : "(none)", t[i].contains);
		} else
			assert_null(reply);
		/* every reply is one JSON object */
		if (reply) {
			json_object *o = json_tokener_parse(reply);
			assert_non_null(o);
			assert_true(json_object_is_type(o, json_type_object));
			json_object_put(o);
		}
		free(reply);
	}
}

static void test_refused_sizes(void **state)
{
	char cgroup[16], *reply;
	size_t n = VARLINK_MESSAGE_MAX + 1;
	char *big = malloc(n + 1);
	static const char nul_inside[] = "{\"method\":\"a.B\"}\0x";

	(void)state;
	assert_non_null(big);
	memset(big, ' ', n);
	big[n] = '\0';
	assert_int_equal(varlink_handle(big, n, "1", &reply, cgroup, sizeof(cgroup)), VARLINK_CLOSE);
	assert_null(reply);
	free(big);
	assert_int_equal(varlink_handle(nul_inside, sizeof(nul_inside) - 1, "1", &reply, cgroup, sizeof(cgroup)),
			 VARLINK_CLOSE);
	/* a cgroup longer than the caller's buffer is refused, never cut */
	static const char longcg[] = "{\"method\":\"io.systemd.oom.Prekill.Notify\",\"parameters\":{\"cgroup\":"
				     "\"/system.slice/comfyui.service\"}}";
	assert_int_equal(varlink_handle(longcg, sizeof(longcg) - 1, "1", &reply, cgroup, sizeof(cgroup)), VARLINK_REPLY);
	assert_non_null(strstr(reply, "InvalidParameter"));
	assert_string_equal(cgroup, "");
	free(reply);
}

static void test_cgroup_contains(void **state)
{
	static const struct {
		const char *notified, *mount, *root, *dir;
		bool in;
	} t[] = {
		{ "/system.slice/comfyui.service", "/sys/fs/cgroup", "/", "/sys/fs/cgroup/system.slice/comfyui.service", true },
		{ "/system.slice/comfyui.service/", "/sys/fs/cgroup", "/", "/sys/fs/cgroup/system.slice/comfyui.service", true },
		/* oomd kills a slice holding the server */
		{ "/comfy.slice", "/sys/fs/cgroup", "/", "/sys/fs/cgroup/comfy.slice/comfyui.service", true },
		{ "/", "/sys/fs/cgroup", "/", "/sys/fs/cgroup/comfy.slice/comfyui.service", true },
		/* a sibling whose name starts the same is another cgroup */
		{ "/system.slice/comfyui.service", "/sys/fs/cgroup", "/", "/sys/fs/cgroup/system.slice/comfyui.service2",
		  false },
		{ "/system.slice/other.service", "/sys/fs/cgroup", "/", "/sys/fs/cgroup/system.slice/comfyui.service", false },
		/* below the server's cgroup is not the server's cgroup */
		{ "/system.slice/comfyui.service/worker", "/sys/fs/cgroup", "/", "/sys/fs/cgroup/system.slice/comfyui.service",
		  false },
		/* a bind mount of a subtree (a container's view) */
		{ "/kubepods/pod1/ctr", "/host/sys/fs/cgroup", "/kubepods", "/host/sys/fs/cgroup/pod1/ctr", true },
		/* an instance on another hierarchy */
		{ "/system.slice/comfyui.service", "/sys/fs/cgroup", "/", "/sys/fs/cgroup-other/system.slice/comfyui.service",
		  false },
		{ "/x", "", "/", "/x", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (varlink_cgroup_contains(t[i].notified, t[i].mount, t[i].root, t[i].dir) != t[i].in)
			fail_msg("case %zu: %s in %s", i, t[i].dir, t[i].notified);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_message_end),
		cmocka_unit_test(test_calls),
		cmocka_unit_test(test_refused_sizes),
		cmocka_unit_test(test_cgroup_contains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
