// SPDX-License-Identifier: GPL-2.0
/* Loads bench/nullprog.bpf.o (an empty program on tp_btf/rss_stat), prints its program id, and keeps it attached
 * until stdin closes. usage: nullprog OBJ */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_link *link;
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);
	char c;

	if (argc != 2) {
		fprintf(stderr, "usage: nullprog OBJ\n");
		return 2;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || libbpf_get_error(obj) || bpf_object__load(obj)) {
		fprintf(stderr, "nullprog: cannot load %s\n", argv[1]);
		return 1;
	}
	prog = bpf_object__find_program_by_name(obj, "bench_null_rss_stat");
	link = prog ? bpf_program__attach(prog) : NULL;
	if (!link || libbpf_get_error(link) || bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len)) {
		fprintf(stderr, "nullprog: cannot attach to rss_stat\n");
		return 1;
	}
	printf("%u\n", info.id);
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	bpf_link__destroy(link);
	bpf_object__close(obj);
	return 0;
}
