# knox — the developer's driver. `make test` gets a fresh Debian 12 machine
# (as root) from clone to green: it installs missing Debian packages first.

LUA      ?= lua5.4
BUSTED   ?= /usr/bin/busted
BUILD    ?= build
PKGS      = lua5.4 libcurl libcjson openssl
SRC       = $(wildcard csrc/*.c)
HDR       = $(wildcard csrc/*.h)
OBJ       = $(SRC:csrc/%.c=$(BUILD)/obj/%.o)
SO        = $(BUILD)/knox/core.so

OPT      ?= -O2
WARN      = -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Werror
# -fvisibility=hidden: core.so exports luaopen_knox_core only (core.c marks
# it), so its knox_* functions cannot clash with a host's symbols.
# LUA_INCDIR and CPPFLAGS: what LuaRocks passes (rockspec/knox-scm-1.rockspec)
# on systems where pkg-config does not know lua5.4.
KCFLAGS   = -std=c11 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden $(OPT) $(WARN) \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(if $(LUA_INCDIR),-I$(LUA_INCDIR)) \
            $(CPPFLAGS) $(CFLAGS)
# Lua modules must not link liblua: the host interpreter provides it.
DEPLIBS   = $(or $(shell pkg-config --libs libcurl libcjson openssl 2>/dev/null),-lcurl -lcjson -lssl -lcrypto)
KLIBS     = $(DEPLIBS) -lm $(LDFLAGS)
VERSION   = $(shell sed -n 's/^\#define KNOX_VERSION "\(.*\)"/\1/p' csrc/knox.h)
LUA_FILES = $(shell find lua -type f -name '*.lua' | LC_ALL=C sort)

LUAPATH   = LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='$(BUILD)/?.so;;'

.PHONY: all build deps test test-run check lint bench demo docs clean fuzz valgrind \
        rock rockspecs test-rock static install install-lua

all: deps
	@$(MAKE) --no-print-directory build

deps:
	@sh scripts/install-deps.sh

build: $(SO)

$(BUILD)/obj/%.o: csrc/%.c $(HDR) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(KCFLAGS) -c $< -o $@

# LIBFLAG: how a Lua module is linked here (LuaRocks passes its own, e.g.
# -bundle -undefined dynamic_lookup on macOS)
LIBFLAG  ?= -shared
$(SO): $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) -o $@ $(OBJ) $(KLIBS)

test: deps
	@$(MAKE) --no-print-directory test-run

test-run: build
	$(LUA) $(BUSTED) $(BUSTED_ARGS)

# The same suite under AddressSanitizer + UBSan, in its own build tree.
# lua5.4 is not built with ASan, so the runtime is preloaded.
check: deps
	@$(MAKE) --no-print-directory BUILD=build-asan \
	  OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
	  LDFLAGS="-fsanitize=address,undefined" build
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(LUA) $(BUSTED) --cpath='build-asan/?.so' $(BUSTED_ARGS)

lint: deps
	luacheck -q $(wildcard lua spec bench examples scripts embed) bin/knox bin/knox-sim
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
	  --std=c11 --inline-suppr --suppress=toomanyconfigs -I/usr/include/lua5.4 csrc
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
	  --std=c11 --inline-suppr --suppress=toomanyconfigs -I/usr/include/lua5.4 -Iinclude -Iembed \
	  embed examples/embed spec/support/embed

# The benchmark table (bench/run.lua): writes BENCHMARKS.md and
# bench/plots/. BENCH_QUICK=1 shrinks every benchmark (a smoke run of about
# a minute into build/bench/); BENCH_ONLY=B1,B6 runs some groups only.
BENCH_QUICK ?=
BENCH_ONLY  ?=
bench: deps
	@$(MAKE) --no-print-directory build
	BENCH_QUICK=$(BENCH_QUICK) BENCH_ONLY=$(BENCH_ONLY) $(LUAPATH) $(LUA) bench/run.lua

demo: deps
	@$(MAKE) --no-print-directory build
	@if [ -f examples/demo.lua ]; then $(LUAPATH) $(LUA) examples/demo.lua; \
	 else echo "knox: the demo does not exist yet (see README.md)"; exit 1; fi

# The API reference: docs/API.md (committed; spec/api_docs_spec.lua checks
# it is up to date) and docs/api/index.html from the registry rows
# (scripts/api-docs.lua), the hand-written modules' LDoc pages in
# docs/api/ldoc/ (config.ld). docs/api/ is generated and git-ignored.
docs: deps
	@$(MAKE) --no-print-directory build
	$(LUAPATH) $(LUA) scripts/api-docs.lua --md docs/API.md --html docs/api/index.html
	rm -rf docs/api/ldoc
	ldoc -q .
	@echo "knox: docs/API.md, docs/api/index.html, docs/api/ldoc/index.html"

# libFuzzer harnesses (fuzz/*_fuzz.c) with ASan + UBSan, built with clang
# into build/fuzz/; each runs FUZZ_SECONDS on a fresh copy of its seed
# corpus (fuzz/corpus/<name>/), from the repository root (the harnesses
# load lua/ from the checkout). Any crash, leak or failed property stops
# the run with the input saved as build/fuzz/<name>-crash-*.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS   = -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) \
                -Wall -Wextra -Wshadow -Icsrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_LIBS     = $(shell pkg-config --libs lua5.4 libcurl libcjson openssl 2>/dev/null) -lm
FUZZ_NAMES    = $(patsubst fuzz/%_fuzz.c,%,$(wildcard fuzz/*_fuzz.c))
FUZZ_BINS     = $(FUZZ_NAMES:%=build/fuzz/%_fuzz)
FUZZ_OBJ      = $(SRC:csrc/%.c=build/fuzz/obj/%.o)

# csrc/ is held to -Werror by gcc in `make build`; clang 14 reports a
# -Wsometimes-uninitialized false positive (a use after a call that
# raises, which clang cannot see), so only the harnesses are -Werror here.
$(FUZZ_OBJ): build/fuzz/obj/%.o: csrc/%.c $(HDR) Makefile
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wno-sometimes-uninitialized -fsanitize=fuzzer-no-link -c $< -o $@

build/fuzz/%_fuzz: fuzz/%_fuzz.c fuzz/fuzz.h $(FUZZ_OBJ) $(HDR) Makefile
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -fsanitize=fuzzer $< $(FUZZ_OBJ) $(FUZZ_LIBS) -o $@

fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@for n in $(FUZZ_NAMES); do \
	  echo "== fuzz $$n: $(FUZZ_SECONDS) s"; \
	  rm -rf build/fuzz/corpus-$$n && mkdir -p build/fuzz/corpus-$$n && \
	  cp fuzz/corpus/$$n/* build/fuzz/corpus-$$n/ && \
	  ASAN_OPTIONS=abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  build/fuzz/$${n}_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix=build/fuzz/$$n- \
	    build/fuzz/corpus-$$n > build/fuzz/$$n.log 2>&1 || \
	  { tail -n 60 build/fuzz/$$n.log; echo "knox: fuzz $$n failed (log: build/fuzz/$$n.log)"; exit 1; }; \
	  grep -E '^stat::number_of_executed_units|^Done' build/fuzz/$$n.log; \
	done

# The suite under valgrind memcheck, on a -O1 -g core.so of its own
# (build/valgrind/): it fails on any memory error and on any definitely or
# indirectly lost byte. Suppressions (fuzz/valgrind.supp) cover only
# lua5.4/libcurl/OpenSSL/libc internals, never csrc. Children the specs
# spawn (simulator, servers, the knox command) run natively. Heavy specs
# scale their counts by KNOX_SPEC_SCALE (spec/helpers.lua's scaled).
# About 12 minutes on 2 cores (2026-12), so not part of .ci/run.
VALGRIND_SCALE ?= 0.01
VALGRIND_LOG   ?= build/valgrind/memcheck.log
valgrind: deps
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory BUILD=build/valgrind OPT="-O1 -g -fno-omit-frame-pointer" build
	@echo "knox: the suite under valgrind (KNOX_SPEC_SCALE=$(VALGRIND_SCALE)); log: $(VALGRIND_LOG)"
	KNOX_SPEC_SCALE=$(VALGRIND_SCALE) valgrind --tool=memcheck --error-exitcode=99 \
	  --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
	  --suppressions=fuzz/valgrind.supp --num-callers=40 --log-file=$(VALGRIND_LOG) \
	  $(LUA) $(BUSTED) --cpath='build/valgrind/?.so' $(BUSTED_ARGS); \
	rc=$$?; grep -E 'ERROR SUMMARY|definitely lost|indirectly lost' $(VALGRIND_LOG); exit $$rc

# Source rocks of the working tree (scripts/rock.lua): build/rock/knox-scm-1.src.rock
# and build/rock/knox-sim-scm-1.src.rock. `make rockspecs` copies the source
# URL of rockspec/knox-scm-1.rockspec into the knox-sim rockspec.
ROCK_DIR ?= $(BUILD)/rock
rock:
	$(LUA) scripts/rock.lua pack $(ROCK_DIR)

rockspecs:
	$(LUA) scripts/rock.lua sync

# The suite against the rocks installed, offline, into a fresh tree: the
# Debian-installed Lua modules are declared provided (scripts/luarocks-debian.sh),
# and the specs run with only that tree on the paths (KNOX_SPEC_TREE, the
# `installed` task in .busted): nothing from lua/ or build/.
ROCK_TREE ?= $(BUILD)/rock-tree
test-rock: rock
	rm -rf $(ROCK_TREE)
	sh scripts/luarocks-debian.sh > $(ROCK_DIR)/luarocks-debian.lua
	LUAROCKS_CONFIG=$(ROCK_DIR)/luarocks-debian.lua luarocks --lua-version 5.4 install --tree=$(ROCK_TREE) \
	  $(ROCK_DIR)/knox-scm-1.src.rock
	LUAROCKS_CONFIG=$(ROCK_DIR)/luarocks-debian.lua luarocks --lua-version 5.4 install --tree=$(ROCK_TREE) \
	  $(ROCK_DIR)/knox-sim-scm-1.src.rock
	@t=$$(cd $(ROCK_TREE) && pwd); \
	echo "knox: the suite against $$t"; \
	KNOX_SPEC_TREE=$$t LUA_PATH="$$t/share/lua/5.4/?.lua;$$t/share/lua/5.4/?/init.lua;;" \
	  LUA_CPATH="$$t/lib/lua/5.4/?.so;;" $(LUA) $(BUSTED) --run=installed $(BUSTED_ARGS)

# libknox.a for C hosts: the core's objects (the same as core.so's) and
# every Lua module as preloadable source text (embed/gen.lua ->
# $(BUILD)/static/modules.c, registered by embed/openlibs.c's
# knox_openlibs), linked into one relocatable object whose only global
# symbols are luaopen_knox_core and knox_openlibs (objcopy), so the core's
# knox_* functions cannot clash with a host's. $(BUILD)/knox.pc points
# pkg-config at this tree (include/, $(BUILD)/): PKG_CONFIG_PATH=$(BUILD).
STATIC_DIR = $(BUILD)/static
STATIC_LIB = $(BUILD)/libknox.a
OBJCOPY   ?= objcopy
static: $(STATIC_LIB) $(BUILD)/knox.pc

$(STATIC_DIR)/modules.c: embed/gen.lua $(LUA_FILES)
	@mkdir -p $(dir $@)
	$(LUA) embed/gen.lua $@ lua

$(STATIC_DIR)/%.o: $(STATIC_DIR)/%.c embed/embed.h Makefile
	$(CC) $(KCFLAGS) -Iembed -c $< -o $@

$(STATIC_DIR)/openlibs.o: embed/openlibs.c embed/embed.h include/knox.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(KCFLAGS) -Iinclude -Iembed -c $< -o $@

$(STATIC_LIB): $(OBJ) $(STATIC_DIR)/modules.o $(STATIC_DIR)/openlibs.o
	$(LD) -r -o $(STATIC_DIR)/knox.o $^
	$(OBJCOPY) --keep-global-symbol=luaopen_knox_core --keep-global-symbol=knox_openlibs $(STATIC_DIR)/knox.o
	rm -f $@
	$(AR) rcs $@ $(STATIC_DIR)/knox.o

# knox.pc for prefix P: make_pc P LIBDIR INCLUDEDIR
make_pc = sed -e 's|@prefix@|$(1)|' -e 's|@libdir@|$(2)|' -e 's|@includedir@|$(3)|' \
            -e 's|@version@|$(VERSION)|' embed/knox.pc.in

$(BUILD)/knox.pc: embed/knox.pc.in csrc/knox.h Makefile
	@mkdir -p $(dir $@)
	$(call make_pc,$(CURDIR),$(abspath $(BUILD)),$(CURDIR)/include) > $@

# make install [PREFIX=/usr/local] [DESTDIR=]: for distributions and by
# hand. Lua modules to $(LUADIR), core.so to $(CMODDIR)/knox/, bin/* (the
# commands) to $(BINDIR), and for C hosts libknox.a, knox.h and knox.pc
# (whose prefix is PREFIX, not DESTDIR). install-lua is the Lua part alone:
# the rock's install step (LuaRocks passes its own LUADIR, CMODDIR, BINDIR).
PREFIX     ?= /usr/local
LUADIR     ?= $(PREFIX)/share/lua/5.4
CMODDIR    ?= $(PREFIX)/lib/lua/5.4
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PCDIR      ?= $(LIBDIR)/pkgconfig
INSTALL    ?= install

install-lua: build
	@for f in $(LUA_FILES); do \
	  echo "$(INSTALL) -m 644 $$f $(DESTDIR)$(LUADIR)/$${f#lua/}"; \
	  $(INSTALL) -D -m 644 $$f "$(DESTDIR)$(LUADIR)/$${f#lua/}" || exit 1; \
	done
	$(INSTALL) -D -m 755 $(SO) "$(DESTDIR)$(CMODDIR)/knox/core.so"
	@for f in $(wildcard bin/*); do \
	  echo "$(INSTALL) -m 755 $$f $(DESTDIR)$(BINDIR)/$${f#bin/}"; \
	  $(INSTALL) -D -m 755 $$f "$(DESTDIR)$(BINDIR)/$${f#bin/}" || exit 1; \
	done

install: install-lua static
	$(INSTALL) -D -m 644 $(STATIC_LIB) "$(DESTDIR)$(LIBDIR)/libknox.a"
	$(INSTALL) -D -m 644 include/knox.h "$(DESTDIR)$(INCLUDEDIR)/knox.h"
	@mkdir -p "$(DESTDIR)$(PCDIR)"
	$(call make_pc,$(PREFIX),$(LIBDIR),$(INCLUDEDIR)) > "$(DESTDIR)$(PCDIR)/knox.pc"

clean:
	rm -rf build build-asan
