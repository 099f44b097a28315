// SPDX-License-Identifier: GPL-2.0
/* A program that does nothing, on the same tracepoint as oomsentry's hot path: with BPF_ENABLE_STATS on, its
 * run_time_ns / run_cnt is what the statistics measure for no work at all (their clock reads and bookkeeping), the
 * floor to subtract from handle_rss_stat's figure (bench/overhead.sh). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("tp_btf/rss_stat")
int BPF_PROG(bench_null_rss_stat, struct mm_struct *mm, int member)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
