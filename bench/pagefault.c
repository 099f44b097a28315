// SPDX-License-Identifier: GPL-2.0
/* Page-fault microbenchmark for bench/overhead.sh: oomsentry's hot BPF path is the rss_stat tracepoint, which the
 * kernel fires on nearly every page fault. This program does nothing but fault anonymous pages in and unmap them,
 * so any cost the probes add shows up directly in ns per fault.
 *
 * usage: pfbench [MIB [ROUNDS [WARMUP_MS [thp] [keep]]]]
 *   mmaps MIB MiB anonymous (4 KiB pages: THP is refused with MADV_NOHUGEPAGE), writes one byte per page (one
 *   fault each), munmaps; ROUNDS times. With "thp" the mapping asks for transparent huge pages (MADV_HUGEPAGE,
 *   which works under THP "madvise" and "always" without touching the machine's setting): then one fault
 *   maps 2 MiB, and ns_per_mib is the figure to compare. It is built as "pfbench" so that its comm is pfbench: oomsentry tracks it
 *   only when started with --comm-prefixes pfbench. With "keep" every mapping stays until the end (RSS grows to
 *   MIB x ROUNDS, as a model load does; the RSS step events come as the process climbs), then all are unmapped: the
 *   issue-11 reproduction is a copy named python_pf run as "1024 4 0 keep" (4 GiB in 1 GiB mappings).
 * Output, one line of key=value: faults (timed), warmup_faults (the untimed warm-up: one cycle, with "keep" as many as the timed part), ns_per_fault (touch phase
 * only), ns_per_page (touch + munmap), ns_per_mib (touch phase per MiB), user_ns and sys_ns (getrusage), minflt (the kernel's count of minor faults
 * during the timed part: it should equal faults).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t tv_ns(struct timeval tv)
{
	return (uint64_t)tv.tv_sec * 1000000000ull + (uint64_t)tv.tv_usec * 1000ull;
}

static long parse_arg(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "pfbench: %s must be an integer in [%ld, %ld], got '%s'\n", what, lo, hi, s);
		exit(2);
	}
	return v;
}

/* one mmap/touch/munmap cycle; returns the faulting time and adds the munmap time to *unmap_ns */
static int use_thp, keep;

static volatile char *kept[100000];
static long n_kept;

static int cycle(size_t len, long page, uint64_t *touch_ns, uint64_t *unmap_ns)
{
	volatile char *p;
	uint64_t t0, t1, t2;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "pfbench: mmap %zu bytes: %s\n", len, strerror(errno));
		return -errno;
	}
	/* 4 KiB faults unless asked: a huge page is one fault for 512 pages */
	(void)madvise((void *)p, len, use_thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	t0 = now_ns();
	for (size_t off = 0; off < len; off += (size_t)page)
		p[off] = 1;
	t1 = now_ns();
	if (keep && n_kept < (long)(sizeof(kept) / sizeof(kept[0])))
		kept[n_kept++] = p;
	else
		munmap((void *)p, len);
	t2 = now_ns();
	*touch_ns += t1 - t0;
	*unmap_ns += t2 - t1;
	return 0;
}

int main(int argc, char **argv)
{
	long mib = argc > 1 ? parse_arg(argv[1], 1, 4096, "MIB") : 256;
	long rounds = argc > 2 ? parse_arg(argv[2], 1, 100000, "ROUNDS") : 20;
	long warmup_ms = argc > 3 ? parse_arg(argv[3], 0, 60000, "WARMUP_MS") : 200;
	long page = sysconf(_SC_PAGESIZE);
	size_t len = (size_t)mib << 20;
	uint64_t touch_ns = 0, unmap_ns = 0, scratch = 0;
	struct rusage r0, r1;
	size_t pages = len / (size_t)page;

	if (page <= 0)
		return 2;
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "thp"))
			use_thp = 1;
		else if (!strcmp(argv[i], "keep"))
			keep = 1;
		else {
			fprintf(stderr, "pfbench: the arguments after WARMUP_MS can only be 'thp' and 'keep', got '%s'\n",
				argv[i]);
			return 2;
		}
	}
	/* untimed: first-touch costs of the allocator and page tables, and time for a watcher to settle (never kept: it
	 * would count twice in the RSS). With "keep", as much as the timed part will hold, all mapped before any is
	 * unmapped: in a VM that reports free pages to its host (virtio-balloon free page reporting, 2 MiB blocks
	 * after ~2 s free) memory left free for a few seconds is given back and each page's next first touch faults in
	 * the host too, so the timed part's speed depended on how long the machine sat idle before it (4 GiB with THP:
	 * 0.6 s right after another run, 3.1 s after 4 s idle, 4 of 4 each); the warm-up takes that cost */
	int keep_all = keep;
	long warm = keep ? rounds : 1;

	for (long i = 0; i < warm; i++)
		if (cycle(len, page, &scratch, &scratch) < 0)
			return 1;
	for (long i = 0; i < n_kept; i++)
		munmap((void *)kept[i], len);
	n_kept = 0;
	keep = keep_all;
	if (warmup_ms)
		usleep((useconds_t)warmup_ms * 1000);

	getrusage(RUSAGE_SELF, &r0);
	for (long i = 0; i < rounds; i++)
		if (cycle(len, page, &touch_ns, &unmap_ns) < 0)
			return 1;
	getrusage(RUSAGE_SELF, &r1);
	{
		uint64_t t0 = now_ns();

		for (long i = 0; i < n_kept; i++)
			munmap((void *)kept[i], len);
		unmap_ns += now_ns() - t0;
	}

	uint64_t faults = (uint64_t)pages * (uint64_t)rounds;
	printf("faults=%llu warmup_faults=%zu ns_per_fault=%.1f ns_per_page=%.1f ns_per_mib=%.1f user_ns=%llu "
	       "sys_ns=%llu minflt=%ld\n",
	       (unsigned long long)faults, pages * (size_t)warm, (double)touch_ns / (double)faults,
	       (double)(touch_ns + unmap_ns) / (double)faults, (double)touch_ns / (double)(mib * rounds),
	       (unsigned long long)(tv_ns(r1.ru_utime) - tv_ns(r0.ru_utime)),
	       (unsigned long long)(tv_ns(r1.ru_stime) - tv_ns(r0.ru_stime)), r1.ru_minflt - r0.ru_minflt);
	return 0;
}
