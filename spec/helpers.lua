--- Shared helpers for the busted specs.
local M = {}

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

return M
