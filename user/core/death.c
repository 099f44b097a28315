// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include "common.h"
#include "death.h"

const char *death_signal_name(int sig)
{
	/* Linux numbering shared by x86 and arm64. */
	static const char *const names[] = {
		[1] = "SIGHUP",   [2] = "SIGINT",     [3] = "SIGQUIT",  [4] = "SIGILL",   [5] = "SIGTRAP",
		[6] = "SIGABRT",  [7] = "SIGBUS",     [8] = "SIGFPE",   [9] = "SIGKILL",  [10] = "SIGUSR1",
		[11] = "SIGSEGV", [12] = "SIGUSR2",   [13] = "SIGPIPE", [14] = "SIGALRM", [15] = "SIGTERM",
		[16] = "SIGSTKFLT", [17] = "SIGCHLD", [18] = "SIGCONT", [19] = "SIGSTOP", [20] = "SIGTSTP",
		[21] = "SIGTTIN", [22] = "SIGTTOU",   [23] = "SIGURG",  [24] = "SIGXCPU", [25] = "SIGXFSZ",
		[26] = "SIGVTALRM", [27] = "SIGPROF", [28] = "SIGWINCH", [29] = "SIGIO", [30] = "SIGPWR",
		[31] = "SIGSYS",
	};

	if (sig <= 0 || (size_t)sig >= ARRAY_SIZE(names))
		return NULL;
	return names[sig];
}

int death_from_exit_code(uint32_t raw_task_exit_code, bool oom_victim, bool child_oom_killed_recently,
			 struct death_cause *ret)
{
	uint32_t sig = raw_task_exit_code & 0x7f, code = (raw_task_exit_code >> 8) & 0xff;

	if (!ret)
		return -EINVAL;
	*ret = (struct death_cause){ .kind = DEATH_UNKNOWN, .code = (int32_t)(raw_task_exit_code & 0x7fffffff) };
	if (raw_task_exit_code > 0xffff || (sig && code) || sig > 64 || (!sig && (raw_task_exit_code & 0x80)))
		return -EINVAL;
	if (sig) {
		ret->kind = oom_victim && sig == 9 ? DEATH_OOM_KILLED : DEATH_SIGNALED;
		ret->code = (int32_t)sig;
		ret->core_dumped = raw_task_exit_code & 0x80;
	} else {
		ret->kind = code == 0 && child_oom_killed_recently ? DEATH_EXIT0_AFTER_CHILD_OOM : DEATH_EXITED;
		ret->code = (int32_t)code;
	}
	return 0;
}

const char *death_cause_str(const struct death_cause *c, char *buf, size_t buflen)
{
	const char *core, *name;

	if (!buf || !buflen)
		return "";
	core = c && c->core_dumped ? ", core dumped" : "";
	switch (c ? c->kind : DEATH_UNKNOWN) {
	case DEATH_OOM_KILLED:
		snprintf(buf, buflen, "killed by the OOM killer%s", core);
		break;
	case DEATH_SIGNALED:
		name = death_signal_name(c->code);
		if (name)
			snprintf(buf, buflen, "killed by signal %d (%s)%s", c->code, name, core);
		else
			snprintf(buf, buflen, "killed by signal %d%s", c->code, core);
		break;
	case DEATH_EXITED:
		snprintf(buf, buflen, "exited with code %d", c->code);
		break;
	case DEATH_EXIT0_AFTER_CHILD_OOM:
		snprintf(buf, buflen, "exited with code 0 after the OOM killer killed a child");
		break;
	default:
		snprintf(buf, buflen, "died for an unknown reason");
		break;
	}
	return buf;
}
