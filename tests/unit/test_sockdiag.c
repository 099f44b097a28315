// SPDX-License-Identifier: GPL-2.0
/* sockdiag.c: the listening sockets of a port, as the kernel's sock_diag reports them, agree with /proc/net/tcp
 * (procfs_listening_inodes_on) and honour the wanted address. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "procfs.h"
#include "procfs-read.h"
#include "sockdiag.h"

static int listen_on(const char *addr, uint16_t *ret_port, uint64_t *ret_inode)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	struct stat st;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(inet_pton(AF_INET, addr, &a.sin_addr), 1);
	a.sin_port = htons(*ret_port);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	assert_int_equal(fstat(fd, &st), 0);
	*ret_port = ntohs(a.sin_port);
	*ret_inode = st.st_ino;
	return fd;
}

static void test_listeners(void **state)
{
	uint16_t port = 0, port2;
	uint64_t ino, ino2, got[8], proc[8];
	struct procfs_addr lo, other, any = { 0 };
	int fd = listen_on("127.0.0.1", &port, &ino), fd2, n, np;

	(void)state;
	assert_int_equal(procfs_addr_from_host("127.0.0.1", &lo), 0);
	assert_int_equal(procfs_addr_from_host("127.0.0.2", &other), 0);
	n = sockdiag_listening_inodes(port, NULL, got, 8);
	if (n == -EPROTONOSUPPORT || n == -EACCES)
		skip();
	assert_int_equal(n, 1);
	assert_int_equal(got[0], ino);
	np = procfs_listening_inodes_on("/proc", port, NULL, proc, 8);
	assert_int_equal(np, 1);
	assert_int_equal(proc[0], ino);
	assert_int_equal(sockdiag_listening_inodes(port, &lo, got, 8), 1);
	assert_int_equal(sockdiag_listening_inodes(port, &any, got, 8), 1);
	/* bound to 127.0.0.1: does not serve 127.0.0.2 */
	assert_int_equal(sockdiag_listening_inodes(port, &other, got, 8), 0);
	/* a wildcard listener on another port serves every address of its own port only */
	port2 = 0;
	fd2 = listen_on("0.0.0.0", &port2, &ino2);
	assert_int_equal(sockdiag_listening_inodes(port2, &other, got, 8), 1);
	assert_int_equal(got[0], ino2);
	assert_int_equal(sockdiag_listening_inodes(port2, &other, got, 0), 0); /* max 0 stores nothing */
	close(fd2);
	close(fd);
	/* closed: nothing listens there any more */
	assert_int_equal(sockdiag_listening_inodes(port, NULL, got, 8), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listeners),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
