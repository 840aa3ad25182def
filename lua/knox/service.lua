--- knox.service: turns a service's registry rows (lua/knox/services/*.lua,
-- `endpoints`) into methods on a client: `client.kme:list_devices{ pageSize = 100 }`.
--
-- A method takes one table of arguments and an optional table of call
-- options (OPTS below). The arguments are checked against the row's `args`
-- (knox.schema) before anything is sent and mapped onto the wire: path
-- placeholders, query, body, headers. `raw = true` sends the argument
-- table untouched (path placeholders still filled): for fields Knox adds
-- before knox does.
--
-- A row may also say:
--   each = "each_device", items = "deviceList"   a paged list: an iterator
--                                                (knox.pager), one page in memory
--   bulk = { arg = "devices", limit = N }        any number of devices, chunked,
--                                                sent concurrently, a bulk
--                                                result (knox.bulk)
--   async = { ... }                              the answer is a handle with
--                                                :wait() (knox.waiter)
local pager = require "knox.pager"
local schema = require "knox.schema"

local M = {}

-- Call options every method takes (the second table).
local OPTS = { "headers", "timeout", "idempotent", "tenant", "raw", "query", "body", "params",
  -- bulk methods
  "strict", "concurrency", "chunk_size",
  -- paged iterators
  "on_page", "max_pages" }
local OPT_SET = {}
for _, k in ipairs(OPTS) do OPT_SET[k] = true end
M.OPTS = OPTS

local function check_opts(opts, where)
  for k in pairs(opts) do
    if not OPT_SET[k] then schema.unknown("option", k, OPTS, where, 3) end
  end
end

-- The old pass-through split, for raw calls.
local function split_raw(path, method, args)
  local params, rest = {}, {}
  for k, v in pairs(args) do
    if type(k) == "string" and path:find("{" .. k .. "}", 1, true) then params[k] = v else rest[k] = v end
  end
  local in_query = method == "GET" or method == "DELETE"
  return { params = params, query = in_query and rest or nil, body = (not in_query) and rest or nil }
end

--- The request options of one call of def with args (checked) and opts.
function M.request_opts(svc, def, args, opts)
  local where = svc.name .. ":" .. def.name
  local w
  if opts and opts.raw then
    w = split_raw(def[2], def[1], args)
    if w.body ~= nil and next(w.body) == nil and not def.body then w.body = nil end
  else
    w = schema.build(def, args, where)
    if def.finish then def.finish(w, args) end
  end
  local ropts = { params = w.params, query = w.query, body = w.body, headers = w.headers, service = svc.name,
    idempotent = def.idempotent }
  for k, v in pairs(opts or {}) do
    if k == "headers" and ropts.headers then
      for hk, hv in pairs(v) do ropts.headers[hk] = hv end
    elseif k ~= "raw" and k ~= "strict" and k ~= "concurrency" and k ~= "chunk_size" and k ~= "on_page"
      and k ~= "max_pages" then
      ropts[k] = v
    end
  end
  return ropts
end

local function check_call(name, args, opts, level)
  if args ~= nil and type(args) ~= "table" then
    error(("bad argument #1 to '%s' (table expected, got %s)"):format(name, type(args)), level + 1)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #2 to '%s' (table expected, got %s)"):format(name, type(opts)), level + 1)
  end
end

local function make_method(def)
  local method, path = def[1], def[2]
  return function(self, args, opts)
    check_call(def.name, args, opts, 2)
    args = args or {}
    if opts then check_opts(opts, self.name .. ":" .. def.name) end
    if def.bulk and not (opts and opts.raw) then
      return require("knox.bulk").run(self, def, args, opts or {})
    end
    local body, res = self.client:request(method, path, M.request_opts(self, def, args, opts))
    if def.async and not (opts and opts.raw) then
      body = require("knox.waiter").handle(self, def, args, opts, body)
    end
    return body, res
  end
end

local function make_each(def, fetch_method)
  return function(self, args, opts)
    check_call(def.each, args, opts, 2)
    args = args or {}
    local fetch_opts
    if opts then
      check_opts(opts, self.name .. ":" .. def.each)
      fetch_opts = {}
      for k, v in pairs(opts) do if k ~= "on_page" and k ~= "max_pages" then fetch_opts[k] = v end end
    end
    local size = args.pageSize or def.page_size or 100
    return pager.each(function(page, page_size)
      local a = {}
      for k, v in pairs(args) do a[k] = v end
      a.pageNum, a.pageSize = page, page_size
      return (fetch_method(self, a, fetch_opts))
    end, { page_size = size, items = def.items, start = args.pageNum or 0,
      on_page = opts and opts.on_page, max_pages = opts and opts.max_pages })
  end
end

--- M.bind(client, spec): the service object for client.
function M.bind(client, spec)
  local methods = {}
  for name, def in pairs(spec.endpoints) do
    def.name = name
    local fn = make_method(def)
    methods[name] = fn
    if def.each then
      if def.cursor then
        methods[def.each] = require("knox.pager").cursor_method(def, fn)
      else
        methods[def.each] = make_each(def, fn)
      end
    end
  end
  methods.__index = methods
  return setmetatable({ client = client, name = spec.name, spec = spec }, methods)
end

return M
