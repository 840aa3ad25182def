-- Specs for embedding knox.core in a C host: core.so exports nothing but
-- luaopen_knox_core, and two lua_States on two threads of one process use
-- knox (JSON, keys, HTTP) at the same time with the results a single
-- thread gets. The host is spec/support/embed/threads.c, built here.
local servers = require "support.http_servers"
local docs = require "support.embed.docs"
local helpers = require "helpers"

-- The knox.core this run loads (build/ or, under `make check`, build-asan/).
local so = assert(package.searchpath("knox.core", package.cpath))
local build_dir = assert(so:match("^(.*)/knox/core%.so$"), "unexpected path " .. so)
-- the Lua modules beside it: the checkout's lua/ or the installed tree's
local lpath = helpers.lua_path():gsub(";;$", "")
local asan = os.getenv("LD_PRELOAD") ~= nil and os.getenv("LD_PRELOAD"):find("asan", 1, true) ~= nil

local PLAIN_ENV = helpers.PLAIN_ENV

local sh = helpers.sh

local writefile = servers.write_file

describe("embedding knox.core", function()
  it("exports only luaopen_knox_core from core.so", function()
    local out, code = sh(PLAIN_ENV .. "nm -D --defined-only '" .. so .. "'")
    assert.are.equal(0, code, out)
    local functions, knox_symbols = {}, {}
    for line in out:gmatch("[^\n]+") do
      local kind, name = line:match("^%x*%s+(%a)%s+(%S+)$")
      if kind and kind:match("[TtWwi]") then functions[#functions + 1] = name end
      if name and name:match("^knox_") then knox_symbols[#knox_symbols + 1] = name end
    end
    assert.are.same({ "luaopen_knox_core" }, functions)
    assert.are.same({}, knox_symbols)
  end)

  describe("in a C host with two threads", function()
    local dir, srv, host

    lazy_setup(function()
      dir = servers.tmpdir()
      host = dir .. "/threads"
      local cmd = ("%scc -std=c11 -O1 -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes "
        .. "-Werror -o '%s' spec/support/embed/threads.c $(pkg-config --cflags --libs lua5.4) -lpthread")
        :format(PLAIN_ENV, host)
      local out, code = sh(cmd)
      assert(code == 0, "building the host failed: " .. out)
      srv = servers.httpd(300)
    end)

    lazy_teardown(function()
      if srv then srv.stop() end
      servers.rmdir(dir)
    end)

    it("runs JSON round trips, key signing and HTTP requests on both at once, as one thread does", function()
      local knox = require "knox"
      local json = knox.json
      -- the expectations, from this single-threaded process
      local key = knox.keys.generate()
      local keyfile = dir .. "/keys.json"
      writefile(keyfile, key:to_json())
      local big_n, small_n = 300, 5
      local big = json.encode(docs.page(json, big_n), { sort_keys = true })
      assert.is_true(#big > 64 * 1024)   -- well beyond the size decoded in pieces
      local bad = {}
      for _, text in ipairs {
        big:sub(1, -2),                                    -- truncated
        big:gsub('"approved":true', '"approved":tru', 1),  -- bad literal, deep inside
        big:gsub("%],", "]\1,", 1),                        -- a control byte between tokens
        "[" .. big .. ",01]",                              -- leading zero after the big value
        big .. " x",                                       -- trailing text
      } do
        local ok, e = pcall(json.decode, text)
        assert.is_false(ok)
        bad[#bad + 1] = { text = text, message = e.message, offset = e.offset }
      end
      local lines = { "return {" }
      local function field(k, v) lines[#lines + 1] = ("  %s = %q,"):format(k, v) end
      field("big_n", big_n)
      field("small_n", small_n)
      field("big", big)
      field("small", json.encode(docs.page(json, small_n), { sort_keys = true }))
      field("public_key", key:public_key())
      field("signature", key:sign(docs.claims()))
      lines[#lines + 1] = "  bad = {"
      for _, b in ipairs(bad) do
        lines[#lines + 1] = ("    { text = %q, message = %q, offset = %d },"):format(b.text, b.message, b.offset)
      end
      lines[#lines + 1] = "  },"
      lines[#lines + 1] = "}"
      writefile(dir .. "/expect.lua", table.concat(lines, "\n"))
      key:close()

      -- the host inherits this process's environment: under `make check`
      -- the sanitizer runtime is preloaded into it, as into lua5.4, and it
      -- loads the sanitized core.so
      local rounds = asan and 12 or 40
      local cmd = ("'%s' 2 '%s;spec/?.lua' '%s/?.so' spec/support/embed/worker.lua "
        .. "'%s' '%s' '%s' %d"):format(host, lpath, build_dir, keyfile, dir .. "/expect.lua", srv.url("/echo"), rounds)
      local out, code = sh(cmd)
      local per = ("json=%d sign=%d http=%d"):format(rounds, rounds // 4, rounds // 4)
      assert.are.equal(("thread 1: ok %s\nthread 2: ok %s\n"):format(per, per), out)
      assert.are.equal(0, code)
    end)

    it("exits non-zero when a thread's result differs from the expectation", function()
      local script = dir .. "/fail.lua"
      writefile(script, 'sync(); local json = require("knox.core").json\n'
        .. 'if THREAD == 2 then error("thread 2: mismatch", 0) end\n'
        .. 'return "ok " .. json.encode(json.decode("[1,2]"))\n')
      local out, code = sh(("'%s' 2 '%s' '%s/?.so' '%s'"):format(host, lpath, build_dir, script))
      assert.are.equal("thread 1: ok [1,2]\nthread 2: error: thread 2: mismatch\n", out)
      assert.are.equal(1, code)
    end)
  end)
end)
