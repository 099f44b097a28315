/* SPDX-License-Identifier: GPL-2.0 */
/* `oomsentry status`: the daemon answers on a UNIX socket with its live table; the client prints it. Transport only:
 * the table is rendered by the caller (loop.c), so this module knows nothing of the daemon. */
#ifndef OOMSENTRY_STATUS_H
#define OOMSENTRY_STATUS_H

#include <stdio.h>

/* Writes the table into out. */
typedef void (*status_render_fn)(FILE *out, void *ctx);

/* Returns the listening fd, or negative errno (not logged: the caller decides how much a missing status socket
 * matters); -EADDRINUSE when another running daemon answers on path (its socket is left alone). */
int status_server_start(const char *path);
void status_server_stop(int fd, const char *path);
/* Accepts the clients waiting and queues for each what render writes; it is sent on the loop (localconn.c). */
void status_server_accept(int fd, status_render_fn render, void *ctx);
/* Returns 0 after printing the table, negative errno (with one line on stderr) when no daemon answers. */
int status_client(const char *path, FILE *out);

#endif
