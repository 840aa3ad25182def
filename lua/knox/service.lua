--- knox.service: turns a thin endpoint table (lua/knox/services/*.lua) into
-- methods on a client: `client.kme:list_devices{ pageSize = 100 }`.
--
-- A method takes one table of arguments and an optional table of request
-- options (headers, timeout, idempotent, tenant, query/body overrides).
-- Path placeholders ({profileId}) are taken from the arguments; the rest go
-- in the query string for GET and DELETE, in the JSON body otherwise. A
-- paged endpoint also gets an iterator, `each_<noun>`, that walks every page
-- through knox.pager, one page in memory at a time.
local pager = require "knox.pager"

local M = {}

local function split_args(path, method, args)
  local params, rest = {}, {}
  local names = {}
  for name in path:gmatch "{([%w_]+)}" do names[name] = true end
  for k, v in pairs(args) do
    if names[k] then params[k] = v else rest[k] = v end
  end
  local in_query = method == "GET" or method == "DELETE"
  return params, in_query and rest or nil, (not in_query) and rest or nil
end

local function make_method(def)
  local method, path = def[1], def[2]
  return function(self, args, opts)
    if args ~= nil and type(args) ~= "table" then
      error(("bad argument #1 to '%s' (table expected, got %s)"):format(def.name, type(args)), 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
      error(("bad argument #2 to '%s' (table expected, got %s)"):format(def.name, type(opts)), 2)
    end
    local params, query, body = split_args(path, method, args or {})
    local ropts = {
      params = params, query = query, body = body, service = self.name,
      idempotent = def.idempotent,
    }
    if body ~= nil and next(body) == nil and not def.body then ropts.body = nil end
    for k, v in pairs(opts or {}) do ropts[k] = v end
    return self.client:request(method, path, ropts)
  end
end

local function make_each(def, fetch_method)
  return function(self, args, opts)
    args = args or {}
    local size = args.pageSize or 100
    return pager.each(function(page, page_size)
      local a = {}
      for k, v in pairs(args) do a[k] = v end
      a.pageNum, a.pageSize = page, page_size
      return (fetch_method(self, a, opts))
    end, { page_size = size, items = def.items, start = args.pageNum or 0 })
  end
end

--- M.bind(client, spec): the service object for client.
function M.bind(client, spec)
  local methods = {}
  for name, def in pairs(spec.endpoints) do
    def.name = name
    local fn = make_method(def)
    methods[name] = fn
    if def.each then methods[def.each] = make_each(def, fn) end
  end
  methods.__index = methods
  return setmetatable({ client = client, name = spec.name }, methods)
end

return M
