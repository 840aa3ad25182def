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
KCFLAGS   = -std=c11 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden $(OPT) $(WARN) \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(CFLAGS)
# Lua modules must not link liblua: the host interpreter provides it.
KLIBS     = $(shell pkg-config --libs libcurl libcjson openssl 2>/dev/null) $(LDFLAGS)

LUAPATH   = LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='$(BUILD)/?.so;;'

.PHONY: all build deps test test-run check lint bench demo docs clean

all: deps
	@$(MAKE) --no-print-directory build

deps:
	@sh scripts/install-deps.sh

build: $(SO)

$(BUILD)/obj/%.o: csrc/%.c $(HDR) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(KCFLAGS) -c $< -o $@

$(SO): $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJ) $(KLIBS)

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
	luacheck -q $(wildcard lua spec bench examples) bin/knox
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
	  --std=c11 --inline-suppr --suppress=toomanyconfigs -I/usr/include/lua5.4 csrc

bench: deps
	@$(MAKE) --no-print-directory build
	@for b in bench/*.lua; do echo "== $$b"; $(LUAPATH) $(LUA) $$b || exit 1; done

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

clean:
	rm -rf build build-asan
