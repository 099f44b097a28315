/* SPDX-License-Identifier: GPL-2.0 */
/* Varlink, as far as the systemd-oomd pre-kill hook needs it, without I/O: calls in, replies out. The wire format is
 * one JSON object per message, each ended by a NUL byte: {"method": "iface.Method", "parameters": {...},
 * "oneway": bool, "more": bool} in, {"parameters": {...}} or {"error": "iface.Error", "parameters": {...}} out.
 * Debian 12's libsystemd has no sd-varlink; prekill.c carries these over a unix socket in the event loop.
 *
 * The service answers io.systemd.oom.Prekill.Notify(cgroup: string) -> () (systemd >= 260: oomd calls every socket
 * in /run/systemd/oomd.prekill.hook/ before it kills a cgroup, waits PrekillHookTimeoutSec= for the reply, then
 * kills), and org.varlink.service.GetInfo / GetInterfaceDescription, so `varlinkctl introspect` works. */
#ifndef OOMSENTRY_VARLINK_H
#define OOMSENTRY_VARLINK_H

#include <stdbool.h>
#include <stddef.h>

#define VARLINK_PREKILL_INTERFACE "io.systemd.oom.Prekill"
#define VARLINK_PREKILL_NOTIFY VARLINK_PREKILL_INTERFACE ".Notify"
/* A message longer than this is refused (oomd's calls are a cgroup path long). */
#define VARLINK_MESSAGE_MAX 65536
#define VARLINK_CGROUP_MAX 4096

/* What the caller must do with one call. */
enum varlink_verdict {
	VARLINK_REPLY,  /* send *ret_reply, nothing else to do */
	VARLINK_NOTIFY, /* act on ret_cgroup first, then send *ret_reply (the empty reply of Notify) */
	VARLINK_CLOSE,  /* a message that is no call (bad JSON, no method): send *ret_reply if set, then hang up */
};

/* Offset of the NUL that ends the first message in buf[0..len), or -1 when there is none yet. */
long varlink_message_end(const char *buf, size_t len);

/* Handles one message (msg[0..len), without its NUL). version goes into GetInfo. ret_reply gets the reply's JSON
 * text (malloc'd, to be sent followed by a NUL) or NULL for a oneway call; ret_cgroup (size cgroup_len) gets the
 * cgroup of a Notify, "" otherwise. Returns the verdict, or -ENOMEM. */
int varlink_handle(const char *msg, size_t len, const char *version, char **ret_reply, char *ret_cgroup,
		   size_t cgroup_len);

/* Whether an instance whose memory cgroup is the directory instance_dir (under the hierarchy mounted at
 * mount_point, holding the hierarchy's root_path there, "/" for a whole-hierarchy mount) is inside the cgroup oomd
 * names (a path from the hierarchy's root, "/system.slice/comfyui.service"): the same cgroup or one below it. */
bool varlink_cgroup_contains(const char *notified, const char *mount_point, const char *root_path,
			     const char *instance_dir);

#endif
