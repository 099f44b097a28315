// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: every pure /proc and cgroup parser over the same input. They read kernel text that a
 * future kernel, a container runtime or a hostile process name (comm, cgroup names) may shape. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cgroup.h"
#include "procfs.h"

static struct cg_mounts mounts_all, mounts_parsed;

static void init_mounts(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	mounts_all.has_v1_memory = true;
	mounts_all.has_v2 = true;
	mounts_all.v2_has_memory = true;
	strcpy(mounts_all.v1_memory, "/sys/fs/cgroup/memory");
	strcpy(mounts_all.v1_memory_root, "/docker/abc");
	strcpy(mounts_all.v2, "/sys/fs/cgroup");
	strcpy(mounts_all.v2_root, "/");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, rel[256], dir[PATH_MAX], small[8], cmd[64];
	struct proc_stat st;
	struct proc_status status;
	struct meminfo mi;
	struct psi psi;
	struct cg_memory m;
	uint64_t inodes[4], v;
	uint16_t port;
	unsigned state;
	enum cg_version ver;
	const char *p;

	init_mounts();
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	procfs_parse_stat(text, 100, &st);
	procfs_parse_stat(text, 1, &st);
	procfs_parse_status(text, &status);
	procfs_parse_meminfo(text, &mi);
	procfs_parse_psi(text, &psi);
	procfs_parse_tcp_line(text, &port, &state, &v);
	procfs_parse_tcp_listeners(text, 8188, inodes, 4);
	procfs_parse_tcp_listeners(text, 0, inodes, 0);
	procfs_cmdline_to_string((const char *)data, size, cmd, sizeof(cmd));
	procfs_cmdline_to_string((const char *)data, size, small, 1);
	p = text;
	procfs_next_u64(&p, 10, &v);
	p = text;
	procfs_next_u64(&p, 16, &v);

	cg_parse_mountinfo(text, &mounts_parsed);
	cg_controllers_contain(text, "memory");
	if (cg_parse_proc_cgroup(text, &mounts_all, rel, sizeof(rel), &ver) == 0)
		cg_join_dir(&mounts_all, ver, rel, dir, sizeof(dir));
	mounts_parsed.v2_has_memory = true;
	if (cg_parse_proc_cgroup(text, &mounts_parsed, small, sizeof(small), &ver) == 0)
		cg_join_dir(&mounts_parsed, ver, small, dir, 16);
	cg_parse_value(text, &v);
	memset(&m, 0, sizeof(m));
	cg_parse_memory_stat(text, CG_V1, &m);
	cg_parse_memory_stat(text, CG_V2, &m);
	cg_parse_memory_events(text, &m);
	cg_parse_oom_control(text, &m);
	cg_memory_working_set(&m);

	free(text);
	return 0;
}
