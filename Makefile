# SPDX-License-Identifier: GPL-2.0
# oomsentry build: bpf/*.bpf.c -> .output/*.bpf.o -> .output/*.skel.h -> user/probes.o; user/core/*.c (pure, no
# library headers but json-c) -> .output/core/*.o; user/*.c (glue) -> .output/user/*.o; all -> oomsentry
OUTPUT ?= .output
CLANG ?= clang
LLVM_STRIP ?= llvm-strip
BPFTOOL ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
CC ?= gcc
PYTHON ?= /usr/bin/python3
# A hung integration test fails on its own, with every thread's stack, instead of running out CI's clock
# (pytest-timeout, from scripts/deps.sh; without it the tests run unbounded as before).
PYTEST_TIMEOUT ?= $(shell $(PYTHON) -c 'import pytest_timeout' 2>/dev/null && echo --timeout=900)
PREFIX ?= /usr/local
DESTDIR ?=
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo 0.1)

PKGS := libbpf libsystemd libcurl json-c inih libmicrohttpd libwebsockets
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# The pure core (user/core) may use json-c, a parser without I/O, and nothing else: it is compiled without -Iuser,
# the skeleton's folder or the other libraries' flags, so a core file that reaches for them does not build.
CORE_PKGS := json-c
CORE_PKG_CFLAGS = $(shell pkg-config --cflags $(CORE_PKGS) 2>/dev/null)
CORE_PKG_LIBS = $(shell pkg-config --libs $(CORE_PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wformat-security -Wno-missing-field-initializers
CFLAGS ?= -O2 -g
BASE_CFLAGS = $(CFLAGS) $(WARN) -std=gnu11 -D_GNU_SOURCE -DOOMSENTRY_VERSION='"$(VERSION)"' -MMD -MP
CORE_CFLAGS = $(BASE_CFLAGS) -Iinclude -Iuser/core $(CORE_PKG_CFLAGS)
ALL_CFLAGS = $(BASE_CFLAGS) -Iinclude -Iuser -Iuser/core -I$(OUTPUT) $(PKG_CFLAGS)
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

CORE_SRCS := $(sort $(wildcard user/core/*.c))
GLUE_SRCS := $(sort $(wildcard user/*.c))
CORE_OBJS := $(patsubst user/core/%.c,$(OUTPUT)/core/%.o,$(CORE_SRCS))
GLUE_OBJS := $(patsubst user/%.c,$(OUTPUT)/user/%.o,$(GLUE_SRCS))
# Unit tests never touch the probes, so the sanitized archives (and `make unit`) need neither clang's BPF target
# nor bpftool.
CORE_SAN_OBJS := $(patsubst user/core/%.c,$(OUTPUT)/san/core/%.o,$(CORE_SRCS))
GLUE_SAN_OBJS := $(patsubst user/%.c,$(OUTPUT)/san/user/%.o,$(filter-out user/main.c user/probes.c,$(GLUE_SRCS)))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUTPUT)/unit/%,$(UNIT_SRCS))
# A test of a core module (tests/unit/test_X.c for user/core/X.c) links the core alone: no libcurl, libbpf,
# libsystemd or libmicrohttpd.
CORE_UNIT_BINS := $(foreach t,$(UNIT_BINS),$(if $(wildcard user/core/$(patsubst test_%,%,$(notdir $(t))).c),$(t)))
GLUE_UNIT_BINS := $(filter-out $(CORE_UNIT_BINS),$(UNIT_BINS))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(OUTPUT)/fuzz/%,$(FUZZ_SRCS))
FUZZ_SECONDS ?= 15

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Iinclude -I$(OUTPUT) -Wall -Werror \
	-Wno-unused-function -Wno-compare-distinct-pointer-types

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.PHONY: all deps test unit unit-core integration fuzz fuzz-long demo install uninstall clean format bench check-structure vmtest
.DELETE_ON_ERROR:
.SECONDARY:

all: oomsentry

deps:
	$(Q)./scripts/deps.sh

$(OUTPUT) $(OUTPUT)/user $(OUTPUT)/core $(OUTPUT)/san/user $(OUTPUT)/san/core $(OUTPUT)/unit $(OUTPUT)/fuzz:
	$(Q)mkdir -p $@

# The version is compiled into these objects: they are rebuilt when it changes (a new commit, a dirty tree), not
# only when their sources do, or the binary names a commit it was not built from. The stamp is rewritten while the
# Makefile is read (only when the version differs), since .SECONDARY would not remake it as a target.
VERSION_STAMP := $(OUTPUT)/version.stamp
$(shell mkdir -p $(OUTPUT) && (echo '$(VERSION)' | cmp -s - $(VERSION_STAMP) || echo '$(VERSION)' > $(VERSION_STAMP)))
$(OUTPUT)/user/main.o $(OUTPUT)/user/loop.o $(OUTPUT)/user/comfy-client.o \
$(OUTPUT)/san/user/loop.o $(OUTPUT)/san/user/comfy-client.o: $(VERSION_STAMP)

# Prefer the running kernel's BTF; fall back to the checked-in copy for build hosts without it.
$(OUTPUT)/vmlinux.h: | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)if [ -r /sys/kernel/btf/vmlinux ] && $(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp 2>/dev/null; \
	then mv $@.tmp $@; else rm -f $@.tmp; cp vmlinux/$(ARCH)/vmlinux.h $@; fi

$(OUTPUT)/%.bpf.o: bpf/%.bpf.c include/oomsentry/events.h $(OUTPUT)/vmlinux.h | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@
	$(Q)$(LLVM_STRIP) -g $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

# Dependencies on headers come from the compiler (-MMD); only probes.c includes the BPF skeleton.
$(OUTPUT)/core/%.o: user/core/%.c | $(OUTPUT)/core
	$(call msg,CC,$@)
	$(Q)$(CC) $(CORE_CFLAGS) -c $< -o $@

$(OUTPUT)/user/%.o: user/%.c | $(OUTPUT)/user
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(OUTPUT)/user/probes.o: $(OUTPUT)/oomsentry.skel.h

oomsentry: $(GLUE_OBJS) $(CORE_OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(PKG_LIBS) -lm -o $@

# Unit tests link only what they use from sanitized archives: the core's, and (for glue tests) the glue's.
$(OUTPUT)/san/core/%.o: user/core/%.c | $(OUTPUT)/san/core
	$(call msg,CC-SAN,$@)
	$(Q)$(CC) $(CORE_CFLAGS) $(SAN_FLAGS) -c $< -o $@

$(OUTPUT)/san/user/%.o: user/%.c | $(OUTPUT)/san/user
	$(call msg,CC-SAN,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -c $< -o $@

$(OUTPUT)/liboomsentry-core-san.a: $(CORE_SAN_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUTPUT)/liboomsentry-glue-san.a: $(GLUE_SAN_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

# tests/unit/*.h are helpers shared by several tests; a change to one rebuilds them all (no -MMD here).
UNIT_HDRS := $(wildcard tests/unit/*.h)
$(CORE_UNIT_BINS): $(OUTPUT)/unit/%: tests/unit/%.c $(UNIT_HDRS) $(OUTPUT)/liboomsentry-core-san.a | $(OUTPUT)/unit
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CORE_CFLAGS) $(SAN_FLAGS) -DFIXTURES='"$(CURDIR)/tests/fixtures"' $< \
		$(OUTPUT)/liboomsentry-core-san.a -lcmocka $(CORE_PKG_LIBS) -lm -o $@

$(GLUE_UNIT_BINS): $(OUTPUT)/unit/%: tests/unit/%.c $(UNIT_HDRS) $(OUTPUT)/liboomsentry-glue-san.a \
		$(OUTPUT)/liboomsentry-core-san.a | $(OUTPUT)/unit
	$(call msg,TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -DFIXTURES='"$(CURDIR)/tests/fixtures"' $< \
		$(OUTPUT)/liboomsentry-glue-san.a $(OUTPUT)/liboomsentry-core-san.a -lcmocka $(PKG_LIBS) -lm -o $@

unit-core: $(CORE_UNIT_BINS)
	$(Q)fail=0; for t in $(CORE_UNIT_BINS); do \
		ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $$t || fail=1; done; \
	exit $$fail

unit: $(UNIT_BINS)
	$(Q)fail=0; for t in $(UNIT_BINS); do \
		ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $$t || fail=1; done; \
	exit $$fail

integration: oomsentry
	$(Q)$(PYTHON) -m pytest -v -ra $(PYTEST_TIMEOUT) tests/deploy tests/sim tests/integration

# libFuzzer needs clang; each target runs for FUZZ_SECONDS on its seed corpus. The targets exercise every parser of
# input oomsentry does not control: ComfyUI replies and websocket messages, /proc and cgroup files, incident.json,
# the persisted lineage, the Varlink calls of the pre-kill hook (all in the core, so those targets link the core
# alone), the configuration and the metrics listen address (glue: a target names the glue files it links in
# FUZZ_GLUE_<target>).
FUZZ_LINK := $(addprefix user/core/,comfy.c procfs.c cgroup.c utf8.c jsontext.c wsmsg.c lookahead.c lineage.c \
	incident.c incident-render.c varlink.c units.c)
FUZZ_GLUE_fuzz_config := user/config.c
FUZZ_GLUE_fuzz_metrics_listen := user/metrics-http.c user/log.c user/journal-send.c user/recout.c user/core/lineq.c \
	user/core/metrics.c
FUZZ_LONG_SECONDS ?= 600
.SECONDEXPANSION:
$(OUTPUT)/fuzz/%: tests/fuzz/%.c $(FUZZ_LINK) $$(FUZZ_GLUE_$$*) | $(OUTPUT)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(if $(FUZZ_GLUE_$*),$(ALL_CFLAGS),$(CORE_CFLAGS)) -g -O1 -fsanitize=fuzzer,address,undefined $< \
		$(FUZZ_LINK) $(FUZZ_GLUE_$*) $(if $(FUZZ_GLUE_$*),$(PKG_LIBS),$(CORE_PKG_LIBS)) -lm -o $@

fuzz: $(FUZZ_BINS)
	$(Q)for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p $(OUTPUT)/corpus/$$n; \
		if ! $$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 $(OUTPUT)/corpus/$$n tests/fuzz/corpus/$$n \
			> $(OUTPUT)/$$n.log 2>&1; then tail -40 $(OUTPUT)/$$n.log; echo "fuzz: $$n FAILED"; exit 1; fi; \
		echo "  FUZZ-OK  $$n: $$(grep -o 'Done [0-9]* runs in [0-9]* second(s)' $(OUTPUT)/$$n.log)"; done

# Every target for FUZZ_LONG_SECONDS (10 minutes) from the repository's corpus; a line per target in
# $(OUTPUT)/fuzz-long.txt (the table in docs/security.md is copied from it). Stops at the first failure.
fuzz-long: $(FUZZ_BINS)
	$(Q)rm -f $(OUTPUT)/fuzz-long.txt; for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p $(OUTPUT)/corpus-long/$$n; \
		start=$$(date -u +%FT%TZ); \
		if ! $$f -max_total_time=$(FUZZ_LONG_SECONDS) -max_len=65536 -print_final_stats=1 \
			$(OUTPUT)/corpus-long/$$n tests/fuzz/corpus/$$n > $(OUTPUT)/$$n-long.log 2>&1; then \
			tail -40 $(OUTPUT)/$$n-long.log; echo "fuzz-long: $$n FAILED"; exit 1; fi; \
		echo "$$n $$start $$(grep -o 'Done [0-9]* runs in [0-9]* second(s)' $(OUTPUT)/$$n-long.log)" \
			"$$(grep -o 'cov: [0-9]*' $(OUTPUT)/$$n-long.log | tail -1)" | tee -a $(OUTPUT)/fuzz-long.txt; done

# Fails on an include cycle under user/ and on a core file that includes anything but the core, libc and json-c.
check-structure:
	$(Q)$(PYTHON) scripts/check-structure

test: deps all
	$(Q)$(MAKE) --no-print-directory check-structure
	$(Q)$(MAKE) --no-print-directory unit
	$(Q)$(MAKE) --no-print-directory fuzz
	$(Q)$(MAKE) --no-print-directory integration

# Debian's own kernels (bullseye 5.10, bookworm 6.1, trixie 6.12) under qemu with cgroup v2: tests/vm/README.md.
# VMTEST_KERNELS=bookworm narrows it; VMTEST_QUICK=1 runs only the tests behind the table's columns.
vmtest: deps all
	$(Q)$(PYTHON) tests/vm/vmtest.py
	$(Q)$(PYTHON) tests/vm/vmsystemd.py

demo: deps all
	$(Q)$(PYTHON) tests/sim/demo.py

bench: deps all
	$(Q)./scripts/deps.sh bench
	$(Q)./bench/run.sh

install: oomsentry
	install -D -m 0755 oomsentry $(DESTDIR)$(PREFIX)/sbin/oomsentry
	install -D -m 0644 deploy/oomsentry.conf $(DESTDIR)/etc/oomsentry/oomsentry.conf.example
	install -D -m 0644 deploy/oomsentry.service $(DESTDIR)/lib/systemd/system/oomsentry.service
	install -D -m 0644 deploy/oomsentry.catalog $(DESTDIR)/usr/lib/systemd/catalog/oomsentry.catalog
	install -D -m 0644 docs/oomsentry.8 $(DESTDIR)$(PREFIX)/share/man/man8/oomsentry.8
	@if [ -z "$(DESTDIR)" ] && command -v journalctl >/dev/null; then journalctl --update-catalog || true; fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/oomsentry $(DESTDIR)/lib/systemd/system/oomsentry.service \
		$(DESTDIR)/usr/lib/systemd/catalog/oomsentry.catalog $(DESTDIR)$(PREFIX)/share/man/man8/oomsentry.8

format:
	clang-format -i user/*.c user/*.h user/core/*.c user/core/*.h bpf/*.c include/oomsentry/*.h tests/unit/*.c tests/unit/*.h

clean:
	rm -rf $(OUTPUT) oomsentry

-include $(wildcard $(OUTPUT)/core/*.d $(OUTPUT)/user/*.d $(OUTPUT)/san/core/*.d $(OUTPUT)/san/user/*.d \
	$(OUTPUT)/unit/*.d $(OUTPUT)/fuzz/*.d)
