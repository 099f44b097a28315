/* SPDX-License-Identifier: GPL-2.0 */
/* The systemd-oomd pre-kill hook (systemd >= 260): a Varlink socket, normally /run/systemd/oomd.prekill.hook/oomsentry,
 * on which oomd calls io.systemd.oom.Prekill.Notify before it kills a cgroup and waits PrekillHookTimeoutSec= for
 * the reply. Transport only: varlink.h speaks the protocol, the caller (loop.c) decides what to do for the cgroup. */
#ifndef OOMSENTRY_PREKILL_H
#define OOMSENTRY_PREKILL_H

/* Called for a Notify from root or systemd-oom (oomd's user) before its reply is sent: the reply tells oomd to go on
 * with the kill. */
typedef void (*prekill_notify_fn)(const char *cgroup, void *ctx);

/* Creates the socket (and its directory), returns the listening fd or -1 (logged): the hook is an addition. */
int prekill_server_start(const char *path);
void prekill_server_stop(int fd, const char *path);
/* Accepts the connections waiting; their calls are read and answered on the loop (localconn.c), never waited for. */
void prekill_server_accept(int fd, const char *version, prekill_notify_fn notify, void *ctx);

#endif
