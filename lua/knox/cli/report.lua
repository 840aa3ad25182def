--- knox.cli.report: exit statuses and how a failure is told.
--
--   0 ok
--   1 Knox answered with an error (kind api, decode, closed)
--   2 usage: bad flags or arguments, missing or bad configuration (kinds
--     usage, key; a lauxlib "bad argument")
--   3 transport: no answer, a timeout, TLS (kinds transport, timeout)
--   4 authentication refused (kind auth)
--   5 partial: a bulk command where some devices failed or are unknown
--     (kind partial)
--   130 interrupted (Ctrl-C), as shells report SIGINT
--
-- A failure is one line on stderr: tostring(err) for a knox.Error. With
-- --output json (and jsonl) it is one JSON object instead:
-- {"error": {"kind": ..., "code": ..., "exit": n, ...}}. A Lua error that
-- is not a knox.Error is a bug in knox: it is reported on one line as an
-- internal error, never as a traceback (KNOX_DEBUG=1 adds the traceback).
local core = require "knox.core"

local M = {}

M.OK, M.API, M.USAGE, M.TRANSPORT, M.AUTH, M.PARTIAL = 0, 1, 2, 3, 4, 5

local BY_KIND = { api = 1, decode = 1, closed = 1, usage = 2, key = 2, transport = 3, timeout = 3, auth = 4,
  partial = 5 }

--- M.status(err) -> exit status for a failure.
function M.status(err)
  if core.is_error(err) then return BY_KIND[err.kind] or 1 end
  if tostring(err):find("bad argument", 1, true) then return 2 end
  return 1
end

local FIELDS = { "kind", "status", "code", "name", "message", "description", "service", "method", "url",
  "request_id", "error_id", "transaction_id", "retryable", "retry_after" }

--- M.fields(err) -> a plain table of an error's public fields.
function M.fields(err)
  local t = {}
  if core.is_error(err) then
    for _, k in ipairs(FIELDS) do
      local v = err[k]
      if type(v) == "string" or type(v) == "number" or type(v) == "boolean" then t[k] = v end
    end
    if type(err.cause) == "table" and type(err.cause.name) == "string" then t.cause = err.cause.name end
  else
    t.kind, t.message = "internal", tostring(err)
  end
  return t
end

-- The one line of a non-knox error.
local function line_of(err)
  -- lauxlib's "file:line:" prefix says where in knox, not what went wrong
  local s = tostring(err):gsub("[\r\n]+", " "):gsub("^[^%s:]+%.lua:%d+: ", "")
  if s:find("bad argument", 1, true) then return "knox: " .. s end
  return "knox: internal error: " .. s
end

--- M.fail(io, err) -> exit status, after telling err on io.err.
-- io: { err = stream, json = bool, verbose = bool }
function M.fail(io_, err)
  local status = M.status(err)
  if io_.json then
    local t = M.fields(err)
    t.exit = status
    io_.err:write(core.json.encode({ error = t }, { sort_keys = true }), "\n")
  elseif core.is_error(err) then
    io_.err:write(tostring(err), "\n")
    if io_.verbose and type(err.body) == "string" and err.body ~= "" then
      io_.err:write("< body: ", (err.body:gsub("[\r\n]+", " ")), "\n")
    end
  else
    io_.err:write(line_of(err), "\n")
  end
  return status
end

--- M.usage(io, message [, hint]) -> 2, after telling a usage mistake.
function M.usage(io_, message, hint)
  if io_.json then
    io_.err:write(core.json.encode({ error = { kind = "usage", message = message, exit = 2 } },
      { sort_keys = true }), "\n")
  else
    io_.err:write("knox: ", message, "\n")
    if hint then io_.err:write(hint, "\n") end
  end
  return 2
end

--- M.protect(io, fn, ...) -> fn's exit status, or the status of what it
-- raised (told on io.err). Never lets an error escape.
function M.protect(io_, fn, ...)
  local ok, res = xpcall(fn, function(e)
    if core.is_error(e) or os.getenv("KNOX_DEBUG") ~= "1" then return e end
    return debug.traceback(tostring(e), 2)
  end, ...)
  if ok then return res or 0 end
  -- Ctrl-C: lua.c raises "interrupted!" at the next Lua instruction
  if type(res) == "string" and res:match "interrupted!" then
    io_.err:write("knox: interrupted\n")
    return 130
  end
  if type(res) == "string" and res:find("stack traceback", 1, true) then
    io_.err:write("knox: internal error: ", res, "\n")
    return 1
  end
  return M.fail(io_, res)
end

return M
