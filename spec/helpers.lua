--- Shared helpers for the busted specs.
local M = {}

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- The installed tree the suite runs against, or nil for the checkout.
-- `make test-rock` installs the rocks into a fresh LuaRocks tree and runs
-- the suite with KNOX_SPEC_TREE naming it (and only that tree's modules on
-- LUA_PATH/LUA_CPATH, .busted's `installed` task): then every command a
-- spec runs is the tree's bin/knox or bin/knox-sim (LuaRocks' wrappers),
-- and every child Lua process loads knox from the tree. Specs may still
-- read checkout files as data (fixtures, README, docs/API.md).
M.TREE = os.getenv("KNOX_SPEC_TREE")
if M.TREE == "" then M.TREE = nil end

--- The shell words that run the knox command (then its arguments).
M.KNOX = M.TREE and quote(M.TREE .. "/bin/knox") or "lua5.4 bin/knox"

--- The shell words that run bin/knox-sim; root is the checkout (default ".").
function M.knox_sim(root)
  if M.TREE then return quote(M.TREE .. "/bin/knox-sim") end
  return "lua5.4 " .. quote((root or ".") .. "/bin/knox-sim")
end

--- LUA_PATH and LUA_CPATH for a child lua5.4 that requires knox: the
-- tree's, or the checkout's lua/ (root, default ".") and build dir (default
-- "build"); each ends with ";;" (the defaults after them).
function M.lua_path(root)
  if M.TREE then return M.TREE .. "/share/lua/5.4/?.lua;" .. M.TREE .. "/share/lua/5.4/?/init.lua;;" end
  root = root or "."
  return root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;"
end
function M.lua_cpath(build)
  if M.TREE then return M.TREE .. "/lib/lua/5.4/?.so;;" end
  return (build or "build") .. "/?.so;;"
end

--- "LUA_PATH='...' LUA_CPATH='...' " for a shell command line.
function M.lua_env(root, build)
  return "LUA_PATH=" .. quote(M.lua_path(root)) .. " LUA_CPATH=" .. quote(M.lua_cpath(build)) .. " "
end

--- Calls fn(...) expecting it to raise a knox.Error; returns the error.
-- Fails the spec (with what was raised instead) otherwise.
function M.raises(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  local core = require "knox.core"
  assert(core.is_error(err), "expected a knox.Error, got: " .. tostring(err))
  return err
end

--- n scaled by the environment variable KNOX_SPEC_SCALE (a number > 0,
-- default 1), for slow runs such as `make valgrind` (KNOX_SPEC_SCALE=0.01):
-- the heavy specs loop helpers.scaled(n) times instead of n. Never below
-- min (default 1), and always an integer, so a scaled spec still runs.
function M.scaled(n, min)
  local scale = tonumber(os.getenv("KNOX_SPEC_SCALE") or "")
  if scale == nil or scale <= 0 or scale ~= scale then scale = 1 end
  return math.max(min or 1, math.floor(n * scale + 0.5))
end

--- A valid IMEI (Luhn check digit added) from 14 digits.
function M.imei(body14)
  local sum = 0
  for i = 1, 14 do
    local d = tonumber(body14:sub(i, i))
    if i % 2 == 0 then d = d * 2; if d > 9 then d = d - 9 end end
    sum = sum + d
  end
  return body14 .. tostring((10 - sum % 10) % 10)
end

--- A fresh temporary path (nothing created there).
function M.tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p
end

--- Removes a SQLite file and its WAL companions.
function M.rm_ledger(p)
  for _, s in ipairs { "", "-wal", "-shm" } do os.remove(p .. s) end
end

--- The folder of the shared docs beside the repo, or nil when absent.
function M.shared_dir()
  for _, d in ipairs { "../shared", os.getenv("KNOX_SHARED_DIR") } do
    local f = io.open(d .. "/knox-docs/api-notes.md", "r")
    if f then
      f:close()
      return d
    end
  end
  return nil
end

--- Children that are tools (make, nm, cc, hosts built here) run without the
-- sanitizer preload of `make check`: a command prefix.
M.PLAIN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS "

--- Runs a shell command, stderr joined to stdout: its output and exit code.
function M.sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

return M
