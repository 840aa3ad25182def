--- knox: a Lua client for the Samsung Knox cloud services REST APIs.
-- The public entry point. Mechanism (transport, signing, JSON, error
-- normalization) lives in the C module knox.core; policy (clients,
-- credentials, retries, paging) lives in the Lua modules beside this file.
local core = require "knox.core"
local errors = require "knox.errors"

local knox = {
  version = core.version,
  null = core.null,
  json = core.json,
  Error = errors.Error,
  errors = errors,
  is_error = errors.is_error,
  keys = core.keys,
  encrypt = core.encrypt,
}

--- knox.try(fn, ...) -> true, fn's results... | false, err
-- Calls fn(...) like pcall, but only a knox.Error is caught: it comes back
-- as false, err. Other errors (programmer misuse such as a bad argument)
-- are raised again unchanged: they are bugs to fix, not outcomes to branch
-- on. The first result is always a boolean, so `local ok, err =
-- knox.try(...)` reads the same whatever fn returns (nothing included).
function knox.try(fn, ...)
  local mt = getmetatable(fn)
  if type(fn) ~= "function" and not (type(mt) == "table" and mt.__call) then
    error("bad argument #1 to 'try' (function expected, got " .. type(fn) .. ")", 2)
  end
  local res = table.pack(pcall(fn, ...))
  if res[1] then
    return true, table.unpack(res, 2, res.n)
  end
  if errors.is_error(res[2]) then
    return false, res[2]
  end
  error(res[2], 0)
end

--- knox.client(opts): a new client (see lua/knox/client.lua).
function knox.client(opts)
  return require("knox.client").new(opts)
end

-- Submodules loaded on first use, so `require "knox"` stays cheap and the
-- simulator's optional dependencies are only needed by those who use it.
local lazy = { auth = true, retry = true, pager = true, sim = true, cli = true }

return setmetatable(knox, {
  __index = function(t, k)
    if lazy[k] then
      local m = require("knox." .. k)
      rawset(t, k, m)
      return m
    end
    return nil
  end,
})
