--- knox.cli.job: `knox job`, resumable fleet jobs (knox.job) from the
-- command line.
--
--   knox job run OP --devices FILE.csv|- --ledger FILE [--arg name=value]...
--        [--concurrency N] [--max-rate R] [--chunk-size N]
--   knox job resume --ledger FILE [--resend-unknown] [--devices FILE] [--concurrency N] [--max-rate R]
--   knox job status --ledger FILE [-o json]      (the ledger only, no network)
--   knox job report --ledger FILE -o csv|json    (one row per device: device, state, code, name)
--
-- OP is service.method of a bulk method (kme.assign_profile, kdp.upload_devices,
-- kg.lock_async, ...); --arg values are typed by the method's arguments
-- (integers, booleans, comma-separated lists). `run` on a ledger that
-- already holds the same job continues it, as `resume` does.
-- Exit status: 0 every device ok, 5 some failed or unknown (or still
-- pending), else the command's usual statuses for what stopped the job.
local args_mod = require "knox.args"
local report = require "knox.cli.report"
local common = require "knox.cli.common"
local progress = require "knox.cli.progress"
local term = require "knox.cli.term"

local M = {}

local function parser(verb)
  local p = args_mod.parser("knox job " .. verb, ({
    run = "Runs a bulk method over a device list, recorded in a crash-safe ledger.",
    resume = "Continues a job after a crash or a stop: nothing done is sent again.",
    status = "Counts of the job's devices by state, from the ledger alone.",
    report = "Every device's outcome: device, state, code, name.",
  })[verb])
  if verb == "run" then p:argument("op", "the bulk method: service.method (kme.assign_profile)"):argname("OP") end
  p:option("--ledger", "the job's SQLite ledger"):argname("FILE")
  if verb == "run" or verb == "resume" then
    p:option("--devices", "CSV of devices (first column, or a column named imei/serial/device); - for stdin")
      :argname("FILE")
    p:option("--concurrency", "chunks in flight at once (default 8)"):argname("N")
      :convert(args_mod.number("--concurrency", 1, 256, true))
    p:option("--max-rate", "at most R requests a second"):argname("R")
      :convert(args_mod.number("--max-rate", 0.01, 100000))
  end
  if verb == "run" then
    p:option("--arg", "an argument of the method; repeatable"):argname("NAME=VALUE"):count("*")
    p:option("--chunk-size", "devices per request (default: the method's bulk limit)"):argname("N")
      :convert(args_mod.number("--chunk-size", 1, 100000, true))
  end
  if verb == "resume" then p:flag("--resend-unknown", "send devices whose outcome is unknown again") end
  common.add(p, { client = verb == "run" or verb == "resume" })
  return p
end

-- A --arg value typed by the method's row.
local function typed(def, name, value)
  for _, a in ipairs(def.args or {}) do
    if a[1] == name then
      local t = a[2]
      if t == "integer" then return math.tointeger(tonumber(value)) or value end
      if t == "number" then return tonumber(value) or value end
      if t == "boolean" then
        if value == "true" then return true elseif value == "false" then return false end
        return value
      end
      if t == "strings" or t == "array" then
        local list = {}
        for x in value:gmatch "[^,]+" do list[#list + 1] = x end
        return list
      end
      return value
    end
  end
  return value
end

local function def_of(op)
  local sname, mname = tostring(op):match "^([%w_]+)%.([%w_]+)$"
  local spec = sname and require("knox.services").get(sname)
  return spec and spec.endpoints[mname]
end

local function summary_line(st)
  return ("knox job %s: %d devices: %d ok, %d failed, %d unknown, %d pending%s (ledger %s)"):format(st.op,
    st.total, st.ok, st.failed, st.unknown, st.pending,
    (st.duplicates or 0) > 0 and (", " .. st.duplicates .. " duplicate lines") or "", st.ledger)
end

local function exit_of(st)
  if st.failed == 0 and st.unknown == 0 and st.pending == 0 then return 0 end
  return report.PARTIAL
end

-- The status on stdout (JSON, or the summary line); true when that was JSON.
local function print_status(st, flags, ctx)
  local printer = common.printer(flags, nil, ctx)
  if printer.format == "json" or printer.format == "jsonl" then
    printer:value(st)
    return true
  end
  ctx.out:write(summary_line(st), "\n")
  return false
end

local function run_or_resume(verb, a, flags, ctx, io_)
  local extra = {}
  if a.max_rate then extra.max_rate = a.max_rate end
  local s <close> = require("knox.cli.session").open(flags, io_, { client = extra })
  local opts = { ledger = a.ledger, concurrency = a.concurrency, max_rate = a.max_rate, chunk_size = a.chunk_size,
    resend_unknown = a.resend_unknown or nil }
  if a.devices then opts.devices = a.devices end
  if verb == "run" then
    local def = def_of(a.op)
    opts.op, opts.args = a.op, {}
    for _, v in ipairs(a.arg or {}) do
      local k, val = v:match "^([^=]+)=(.*)$"
      if not k then return report.usage(io_, "--arg takes name=value", "") end
      opts.args[k] = def and typed(def, k, val) or val
    end
    if not a.devices then return report.usage(io_, "job run needs --devices FILE|-", "") end
  end
  local bar = progress.new { stream = ctx.err, label = "job", unit = "devices",
    enabled = not flags.quiet and term.isatty(2) }
  opts.on_progress = function(p)
    bar.label = "job " .. (opts.op or "") .. (p.failed + p.unknown > 0
      and (" (%d failed, %d unknown)"):format(p.failed, p.unknown) or "")
    bar:update(p.done, p.total)
  end
  local job <close> = s.client:job(opts)
  if verb == "resume" then bar.label = "job " .. job.op end
  local ok, st = pcall(job.run, job)
  bar:finish()
  if not ok then error(st, 0) end
  -- JSON on stdout for scripts; the one-line summary for the operator on stderr
  if print_status(st, flags, ctx) and not flags.quiet then ctx.err:write(summary_line(st), "\n") end
  return exit_of(st)
end

local function csv_cell(v)
  if v == nil then return "" end
  v = tostring(v)
  if v:find '[,"\r\n]' then return '"' .. v:gsub('"', '""') .. '"' end
  return v
end

local function write_report(job, format, out)
  local core = require "knox.core"
  local json = core.json
  local function row(r)
    return { device = r.device, state = r.state, code = r.code or core.null, name = r.name or core.null }
  end
  if format == "csv" then
    out:write "device,state,code,name\n"
    for r in job:report() do
      out:write(csv_cell(r.device), ",", r.state, ",", csv_cell(r.code), ",", csv_cell(r.name), "\n")
    end
  elseif format == "jsonl" then
    for r in job:report() do out:write(json.encode(row(r)), "\n") end
  else
    out:write "["
    local first = true
    for r in job:report() do
      out:write(first and "\n" or ",\n", json.encode(row(r)))
      first = false
    end
    out:write(first and "]\n" or "\n]\n")
  end
end

--- M.run(argv, ctx) -> exit status (commands.job in knox.cli).
function M.run(argv, ctx)
  local io_ = { err = ctx.err, json = common.json_errors(ctx.pre, argv) }
  local verb = argv[1]
  if verb == nil or verb == "-h" or verb == "--help" then
    ctx.out:write [[
usage: knox job run OP --devices FILE.csv|- --ledger FILE [--arg name=value]... [--concurrency N] [--max-rate R]
       knox job resume --ledger FILE [--resend-unknown]
       knox job status --ledger FILE [-o json]
       knox job report --ledger FILE -o csv|json
]]
    return verb and 0 or 2
  end
  if verb ~= "run" and verb ~= "resume" and verb ~= "status" and verb ~= "report" then
    return report.usage(io_, "job: run, resume, status or report (not " .. verb .. ")", "(knox job --help)")
  end
  local p = parser(verb)
  local a, why = common.parse(p, table.move(argv, 2, #argv, 1, {}), ctx)
  if a == false then return 0 end -- the help was printed
  if not a then return report.usage(io_, "job " .. verb .. ": " .. why, "(knox job " .. verb .. " --help)") end
  return report.protect(io_, function()
    local flags = common.flags(a, ctx.pre)
    io_.json = flags.json_errors
    if not a.ledger then return report.usage(io_, "job " .. verb .. " needs --ledger FILE", "") end
    if verb == "run" or verb == "resume" then return run_or_resume(verb, a, flags, ctx, io_) end
    local job <close> = require("knox.job").open(a.ledger)
    if verb == "status" then
      local st = job:status()
      print_status(st, flags, ctx)
      return exit_of(st)
    end
    local format = flags.output
    if format ~= "csv" and format ~= "json" and format ~= "jsonl" then
      return report.usage(io_, "job report needs --output csv or json", "")
    end
    write_report(job, format, ctx.out)
    return 0
  end)
end

return M
