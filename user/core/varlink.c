// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "varlink.h"

#define ERR_INVALID_PARAMETER "org.varlink.service.InvalidParameter"
#define ERR_METHOD_NOT_FOUND "org.varlink.service.MethodNotFound"
#define ERR_INTERFACE_NOT_FOUND "org.varlink.service.InterfaceNotFound"

/* The interface as systemd defines it (src/shared/varlink-io.systemd.oom.Prekill.c), in the Varlink IDL. */
static const char prekill_idl[] = "# Prekill notifications from oomd\n"
				  "interface io.systemd.oom.Prekill\n"
				  "\n"
				  "# Notify about an imminent kill: the cgroup is killed once every hook has answered\n"
				  "method Notify(cgroup: string) -> ()\n";

static const char service_idl[] =
	"# The Varlink Service Interface is provided by every varlink service.\n"
	"interface org.varlink.service\n"
	"\n"
	"method GetInfo() -> (vendor: string, product: string, version: string, url: string, interfaces: []string)\n"
	"\n"
	"method GetInterfaceDescription(interface: string) -> (description: string)\n"
	"\n"
	"error InterfaceNotFound (interface: string)\n"
	"\n"
	"error MethodNotFound (method: string)\n"
	"\n"
	"error MethodNotImplemented (method: string)\n"
	"\n"
	"error InvalidParameter (parameter: string)\n";

long varlink_message_end(const char *buf, size_t len)
{
	const char *nul = memchr(buf, '\0', len);

	return nul ? (long)(nul - buf) : -1;
}

/* {"parameters": params} or {"error": error, "parameters": params}; takes params (NULL: {}). */
static char *reply_text(const char *error, json_object *params)
{
	json_object *o = json_object_new_object();
	char *text = NULL;

	if (!o) {
		json_object_put(params);
		return NULL;
	}
	if (error)
		json_object_object_add(o, "error", json_object_new_string(error));
	json_object_object_add(o, "parameters", params ? params : json_object_new_object());
	text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return text;
}

static char *error_text(const char *error, const char *key, const char *value)
{
	json_object *p = json_object_new_object();

	if (p)
		json_object_object_add(p, key, json_object_new_string(value));
	return reply_text(error, p);
}

static const char *string_member(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* An absolute cgroup path without "." or ".." components, as oomd sends it. */
static bool cgroup_path_ok(const char *p, size_t max)
{
	const char *c;

	if (!p || p[0] != '/' || strlen(p) >= max)
		return false;
	for (c = p; *c; c++) {
		if (c[0] == '/' && c[1] == '.' && (c[2] == '/' || c[2] == '\0' || (c[2] == '.' && (c[3] == '/' || c[3] == '\0'))))
			return false;
	}
	return true;
}

static char *get_info(const char *version)
{
	json_object *p = json_object_new_object(), *ifaces = json_object_new_array();

	if (!p || !ifaces) {
		json_object_put(p);
		json_object_put(ifaces);
		return NULL;
	}
	json_object_array_add(ifaces, json_object_new_string(VARLINK_PREKILL_INTERFACE));
	json_object_array_add(ifaces, json_object_new_string("org.varlink.service"));
	json_object_object_add(p, "vendor", json_object_new_string("oomsentry"));
	json_object_object_add(p, "product", json_object_new_string("oomsentry"));
	json_object_object_add(p, "version", json_object_new_string(version ? version : ""));
	json_object_object_add(p, "url", json_object_new_string("man:oomsentry(8)"));
	json_object_object_add(p, "interfaces", ifaces);
	return reply_text(NULL, p);
}

static char *describe(const char *iface)
{
	const char *idl = NULL;
	json_object *p;

	if (iface && !strcmp(iface, VARLINK_PREKILL_INTERFACE))
		idl = prekill_idl;
	else if (iface && !strcmp(iface, "org.varlink.service"))
		idl = service_idl;
	if (!idl)
		return error_text(ERR_INTERFACE_NOT_FOUND, "interface", iface ? iface : "");
	p = json_object_new_object();
	if (p)
		json_object_object_add(p, "description", json_object_new_string(idl));
	return reply_text(NULL, p);
}

int varlink_handle(const char *msg, size_t len, const char *version, char **ret_reply, char *ret_cgroup,
		   size_t cgroup_len)
{
	struct json_tokener *tok;
	json_object *root = NULL, *params = NULL, *v;
	const char *method;
	bool oneway = false;
	char *reply = NULL;
	int verdict = VARLINK_REPLY;

	*ret_reply = NULL;
	if (cgroup_len)
		ret_cgroup[0] = '\0';
	if (len > VARLINK_MESSAGE_MAX || memchr(msg, '\0', len))
		return VARLINK_CLOSE;
	tok = json_tokener_new_ex(32);
	if (!tok)
		return -ENOMEM;
	root = json_tokener_parse_ex(tok, msg, (int)len);
	/* one whole object and nothing after it */
	if (!root || json_tokener_get_error(tok) != json_tokener_success || (size_t)json_tokener_get_parse_end(tok) != len ||
	    !json_object_is_type(root, json_type_object) || !(method = string_member(root, "method"))) {
		json_tokener_free(tok);
		json_object_put(root);
		return VARLINK_CLOSE;
	}
	json_tokener_free(tok);
	if (json_object_object_get_ex(root, "oneway", &v))
		oneway = json_object_get_boolean(v);
	if (json_object_object_get_ex(root, "parameters", &params) && !json_object_is_type(params, json_type_object)) {
		reply = error_text(ERR_INVALID_PARAMETER, "parameter", "parameters");
		goto out;
	}
	if (!strcmp(method, VARLINK_PREKILL_NOTIFY)) {
		const char *cg = string_member(params, "cgroup");

		if (!cgroup_path_ok(cg, cgroup_len)) {
			reply = error_text(ERR_INVALID_PARAMETER, "parameter", "cgroup");
			goto out;
		}
		snprintf(ret_cgroup, cgroup_len, "%s", cg);
		verdict = VARLINK_NOTIFY;
		reply = reply_text(NULL, NULL);
	} else if (!strcmp(method, "org.varlink.service.GetInfo")) {
		reply = get_info(version);
	} else if (!strcmp(method, "org.varlink.service.GetInterfaceDescription")) {
		reply = describe(string_member(params, "interface"));
	} else {
		reply = error_text(ERR_METHOD_NOT_FOUND, "method", method);
	}
out:
	json_object_put(root);
	if (!reply)
		return -ENOMEM;
	if (oneway) {
		free(reply);
		reply = NULL;
	}
	*ret_reply = reply;
	return verdict;
}

bool varlink_cgroup_contains(const char *notified, const char *mount_point, const char *root_path,
			     const char *instance_dir)
{
	char full[VARLINK_CGROUP_MAX + 1];
	size_t mlen = strlen(mount_point), nlen = strlen(notified);
	const char *rel;
	int n;

	if (!mlen || strncmp(instance_dir, mount_point, mlen) || (instance_dir[mlen] && instance_dir[mlen] != '/'))
		return false;
	rel = instance_dir + mlen;
	/* a bind mount of a subtree shows root_path at the mount point */
	n = snprintf(full, sizeof(full), "%s%s", strcmp(root_path, "/") ? root_path : "", rel);
	if (n < 0 || (size_t)n >= sizeof(full))
		return false;
	if (!full[0])
		snprintf(full, sizeof(full), "/");
	while (nlen > 1 && notified[nlen - 1] == '/')
		nlen--;
	if (nlen == 1 && notified[0] == '/')
		return true;
	return !strncmp(full, notified, nlen) && (full[nlen] == '\0' || full[nlen] == '/');
}
