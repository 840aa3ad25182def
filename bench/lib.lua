--- bench/lib.lua: what every benchmark of bench/run.lua shares: the run's
-- settings (BENCH_QUICK), shell helpers, statistics (median, min-max,
-- quartiles), alternation of a measured command with its baseline, the
-- loopback nginx with its 1.3 KB page, and rows of the result table.
--
-- Each benchmark file (bench/b_*.lua) returns function(lib) -> rows, where a
-- row is { id =, what =, baseline =, value =, ratio =, spread =, target =,
-- verdict =, note = } (strings, already formatted), and may add plots
-- (lib.plot) and notes (lib.note).
package.path = "spec/?.lua;lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath

local core = require "knox.core"
local servers = require "support.http_servers"

local M = {}

M.QUICK = os.getenv("BENCH_QUICK") == "1"
M.PARTIAL = (os.getenv("BENCH_ONLY") or ""):match("%S") ~= nil
-- where a run writes: the committed report and plots for a full run,
-- build/bench/ for a quick (smoke) or partial (BENCH_ONLY) run, so that
-- neither overwrites them
M.WORK = "build/bench"
M.ROOT = os.getenv("PWD") or "."
M.FULL = not M.QUICK and not M.PARTIAL
M.OUT = os.getenv("BENCH_OUT") or (M.FULL and "." or M.WORK)
M.PLOTS = M.FULL and "bench/plots" or M.WORK
M.LUA = "lua5.4"
-- Debian's python3 (python3-requests, python3-jwt), whatever PATH says
M.PYTHON = "/usr/bin/python3"
M.LUAPATH = "LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='build/?.so;;'"

--- n, or its quick size.
function M.size(full, quick)
  return M.QUICK and quick or full
end

M.ROUNDS = M.size(7, 3)

function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Runs a shell command; returns whether it succeeded and its stdout.
M.sh = servers.sh

--- Runs a shell command that must succeed; returns its stdout.
function M.run(cmd)
  local ok, out = M.sh(cmd)
  if not ok then error("bench: command failed: " .. cmd .. "\n" .. out, 2) end
  return out
end

function M.have(cmd)
  return (M.sh("command -v " .. cmd .. " >/dev/null 2>&1"))
end

M.now = core.monotime

function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

M.read = servers.read_file

---------------------------------------------------------------------------
-- Statistics

local function sorted(t)
  local s = { table.unpack(t) }
  table.sort(s)
  return s
end

-- The q-quantile (0..1) of a sorted list, linearly interpolated.
local function quantile(s, q)
  local pos = 1 + (#s - 1) * q
  local lo = math.floor(pos)
  local hi = math.min(lo + 1, #s)
  return s[lo] + (s[hi] - s[lo]) * (pos - lo)
end

function M.median(t)
  return quantile(sorted(t), 0.5)
end

--- { median =, min =, max =, q1 =, q3 =, n = } of a list of numbers.
function M.stats(t)
  local s = sorted(t)
  return { median = quantile(s, 0.5), min = s[1], max = s[#s], q1 = quantile(s, 0.25), q3 = quantile(s, 0.75),
    n = #s }
end

--- "lo–hi" of a stats table with fmt.
function M.range(st, fmt)
  fmt = fmt or "%.2f"
  return (fmt .. "–" .. fmt):format(st.min, st.max)
end

--- Runs measure() and baseline() alternately, rounds times (after one
-- warm-up of each), each returning a number (a time per operation, or a
-- rate). Returns the stats of each and the stats of the pair ratios
-- measure/baseline.
function M.alternate(measure, baseline, rounds)
  rounds = rounds or M.ROUNDS
  measure(true)
  baseline(true)
  local a, b, r = {}, {}, {}
  for i = 1, rounds do
    collectgarbage()
    b[i] = baseline()
    collectgarbage()
    a[i] = measure()
    r[i] = a[i] / b[i]
  end
  return M.stats(a), M.stats(b), M.stats(r)
end

---------------------------------------------------------------------------
-- Rows, notes, plots

M.rows, M.notes, M.plots, M.commands, M.others = {}, {}, {}, {}, {}

--- Adds a row; a missing peer has value = "skipped" and a note.
function M.row(r)
  M.rows[#M.rows + 1] = r
  io.stdout:write(("  %-4s %-58s %s | %s | %s %s\n"):format(r.id, r.what, r.value or "", r.baseline or "",
    r.ratio or "", r.verdict and ("[" .. r.verdict .. "]") or ""))
  io.stdout:flush()
end

function M.note(s)
  M.notes[#M.notes + 1] = s
  io.stdout:write("  note: ", s, "\n")
end

--- A command line a reader can run to repeat one benchmark's peer.
function M.command(id, cmd)
  M.commands[#M.commands + 1] = { id = id, cmd = cmd }
end

--- met / not met against a target: value <= max (or >= min).
function M.verdict(value, max, min)
  if max and value <= max then return "met" end
  if min and value >= min then return "met" end
  return "not met"
end

--- Plots with gnuplot: script is gnuplot text with %s for the output file
-- name; returns the PNG's path (relative to the repository), or nil.
function M.plot(name, title, script)
  local png = M.PLOTS .. "/" .. name .. ".png"
  local gp = ("set terminal pngcairo size 900,540 noenhanced font 'DejaVu Sans,11'\nset output '%s'\n"):format(png)
    .. script .. "\n"
  local ok, out = M.sh("gnuplot 2>&1 <<'EOF'\n" .. gp .. "EOF\n")
  if not ok then
    M.note("gnuplot failed for " .. name .. ": " .. out)
    return nil
  end
  M.plots[#M.plots + 1] = { name = name, title = title, png = png }
  return png
end

---------------------------------------------------------------------------
-- The loopback servers

local page_servers

--- nginx (Debian nginx-light) on loopback serving the 1.3 KB device page
-- over HTTP/1.1 and HTTPS (a CA made by openssl now, in build/bench/), and
-- the plain-C loop built now. Started once per run; { http =, https =,
-- ca =, doc =, loop =, user_agent = }.
function M.page()
  if page_servers then return page_servers end
  local dir = servers.tmpdir()
  local certs = servers.make_certs(dir)
  -- the CA a reader can point their own tools at while the run lasts
  M.run("cp " .. M.quote(certs.ca) .. " " .. M.WORK .. "/ca.pem")
  local ngx = servers.nginx { dir = dir, certs = certs, lifetime = 3600,
    locations = "    location = /data.json { default_type application/json; }" }
  local doc = servers.device_page("deviceList")
  M.write(dir .. "/www/data.json", doc)
  local loop = M.WORK .. "/http_loop"
  M.run(("cc -O2 -o %s bench/http_loop.c $(pkg-config --cflags --libs libcurl) 2>&1"):format(loop))
  page_servers = {
    http = ("http://127.0.0.1:%d/data.json"):format(ngx.http_port),
    https = ("https://127.0.0.1:%d/data.json"):format(ngx.https_port),
    ca = M.WORK .. "/ca.pem", doc = doc, loop = loop, dir = dir, stop = ngx.stop,
    user_agent = ("knox-lua/%s libcurl/%s %s"):format(core.version, core.curl_version, _VERSION),
  }
  return page_servers
end

function M.stop_page()
  if page_servers then
    page_servers.stop()
    servers.rmdir(page_servers.dir)
    page_servers = nil
  end
end

--- The plain-C loop (bench/http_loop.c): n keep-alive GETs of url;
-- returns seconds per request.
function M.c_loop(url, n, ca)
  local p = M.page()
  local out = M.run(("%s %s %d %s %s"):format(p.loop, url, n, ca or "-", M.quote(p.user_agent)))
  local secs, bytes = out:match("seconds=([%d.]+) cpu=[%d.]+ bytes=(%d+)")
  assert(tonumber(bytes) == n * #p.doc, "C loop got the wrong bytes")
  return tonumber(secs) / n
end

--- The simulator (spec/support/sim.lua) with opts; stopped by stop_sims.
local sims = {}
function M.sim(opts)
  local s = require("support.sim").start(opts)
  sims[#sims + 1] = s
  return s
end

function M.stop_sims()
  for _, s in ipairs(sims) do s:stop() end
  sims = {}
end

--- Peak resident set (VmHWM, KiB) of this process.
function M.vmhwm()
  local s = M.read("/proc/self/status") or ""
  return tonumber(s:match("VmHWM:%s*(%d+)"))
end

return M
