--- knox.services: the service registry. Every fact about a service lives
-- in its own file, lua/knox/services/<name>.lua (a "service file"); this
-- module finds those files, checks them, and builds from them the one
-- classifier every other part uses (path -> service and route).
--
-- A service file returns a table:
--   name      the service's name ("kme"), the key in errors and catalogs
--   title     what a person calls it ("Knox Mobile Enrollment")
--   routes    list of { name =, prefixes = { <Lua pattern anchored at ^/> }, hosts = { us =, eu = },
--             schemes = { legacy = { tenant = bool }, oauth2 = { tenant = bool } } }:
--             the paths that belong to the service, where they go, which
--             credential schemes they accept and whether each honours the
--             MSP tenant header (x-wsm-managed-tenantid). A route's name is
--             the key of client.endpoints that overrides its host.
--   token     true for token endpoints: a 401 there is a credential problem,
--             not a stale token (no renewal)
--   catalog_fallback  the service whose code table is searched when this
--             one's does not know a code (the Knox Cloud Authentication check
--             in front of every kcs service answers with its own codes)
--   codes     (optional) codes the C catalog does not have: { code, name,
--             status, description } each, looked up like the catalog's
--   errors    error rules keyed by code text: auth (a credential problem:
--             kind "auth"), renew (a fresh token can fix it), retry (a
--             server failure worth another try), no_retry (a 5xx that
--             repeating cannot fix). See knox.errors for how they combine.
--   bulk      the bulk-result shape: ids (keys naming an item, in order),
--             lists (keys of per-item lists and what they mean)
--   endpoints method name -> { METHOD, path, ... } (see knox.service)
--
-- Service files are found wherever `require` would find them: every
-- directory of package.path (read with LuaFileSystem) and package.preload
-- (a C host that embeds the modules). Adding a service is adding a file.
local M = {}

local SCHEMES = { legacy = true, oauth2 = true }

-- The service files knox ships; only used where LuaFileSystem is missing.
local BUILTIN = { "auth", "kai", "kc", "kdp", "kg", "kme", "msp", "oauth2", "samsung_account" }

local function bad(name, msg)
  error(("knox.services: service file '%s': %s"):format(name, msg), 0)
end

-- Checks what a service file returned; raises naming the file.
local function check(name, spec)
  if type(spec) ~= "table" then bad(name, "must return a table") end
  if spec.name ~= name then bad(name, "its name must be '" .. name .. "'") end
  if type(spec.routes) ~= "table" then bad(name, "routes must be a list") end
  for i, r in ipairs(spec.routes) do
    if type(r.name) ~= "string" then bad(name, "route " .. i .. " has no name") end
    if type(r.prefixes) ~= "table" then bad(name, "route " .. r.name .. ": prefixes must be a list") end
    for _, p in ipairs(r.prefixes) do
      if type(p) ~= "string" or p:sub(1, 2) ~= "^/" then
        bad(name, "route " .. r.name .. ": prefix " .. tostring(p) .. " must be a pattern anchored at '^/'")
      end
    end
    if type(r.hosts) ~= "table" then bad(name, "route " .. r.name .. " has no hosts") end
    if type(r.schemes) ~= "table" then bad(name, "route " .. r.name .. " has no schemes") end
    for s, rule in pairs(r.schemes) do
      if not SCHEMES[s] then bad(name, "route " .. r.name .. ": unknown scheme '" .. tostring(s) .. "'") end
      if type(rule) ~= "table" or type(rule.tenant) ~= "boolean" then
        bad(name, "route " .. r.name .. ": scheme " .. s .. " must say tenant = true or false")
      end
    end
  end
  local rules = spec.errors or {}
  for _, k in ipairs { "auth", "renew", "retry", "no_retry" } do
    if rules[k] ~= nil and type(rules[k]) ~= "table" then bad(name, "errors." .. k .. " must be a table") end
  end
  spec.errors = rules
  spec.endpoints = spec.endpoints or {}
  for ename, def in pairs(spec.endpoints) do
    if type(def) ~= "table" or type(def[1]) ~= "string" or type(def[2]) ~= "string" then
      bad(name, "endpoint " .. tostring(ename) .. " must be { METHOD, path, ... }")
    end
    local ok, why = pcall(require("knox.schema").check_row, name, ename, def)
    if not ok then bad(name, why) end
  end
  spec.bulk = spec.bulk or {}
  return spec
end

-- The names of the service files on package.path and in package.preload.
local function discover()
  local names, seen = {}, {}
  local function add(n)
    if not seen[n] and n ~= "init" and n ~= "hosts" then
      seen[n] = true
      names[#names + 1] = n
    end
  end
  for k in pairs(package.preload) do
    local n = type(k) == "string" and k:match "^knox%.services%.([%w_]+)$"
    if n then add(n) end
  end
  local ok, lfs = pcall(require, "lfs")
  if not ok then
    -- without LuaFileSystem no directory can be listed: the services knox
    -- ships (a file added beside them then needs lfs, or package.preload)
    for _, n in ipairs(BUILTIN) do
      if package.searchpath("knox.services." .. n, package.path) then add(n) end
    end
  else
    for template in package.path:gmatch "[^;]+" do
      local dir = template:match "^(.-)%?%.lua$"
      if dir then
        dir = (dir == "" and "./" or dir) .. "knox/services"
        if lfs.attributes(dir, "mode") == "directory" then
          for f in lfs.dir(dir) do
            local n = f:match "^([%w_]+)%.lua$"
            if n then add(n) end
          end
        end
      end
    end
  end
  table.sort(names)
  return names
end

-- Built once per package.path, like package.loaded: service files do not
-- change while a program runs, but a program may add a directory.
local registry, registry_path

--- M.load(): the registry { services = { name -> spec }, names = {...},
-- routes = { name -> route }, ordered = { {prefix =, route =}... } }.
function M.load()
  if registry and registry_path == package.path then return registry end
  local reg = { services = {}, names = {}, routes = {}, ordered = {} }
  for _, n in ipairs(discover()) do
    local spec = check(n, require("knox.services." .. n))
    reg.services[n] = spec
    reg.names[#reg.names + 1] = n
    for _, r in ipairs(spec.routes) do
      if reg.routes[r.name] then bad(n, "route name '" .. r.name .. "' is taken by another service") end
      r.service = n
      reg.routes[r.name] = r
      for _, p in ipairs(r.prefixes) do reg.ordered[#reg.ordered + 1] = { prefix = p, route = r } end
    end
  end
  -- the most specific prefix first (/ams/v1/oauth2/ before /ams/)
  table.sort(reg.ordered, function(a, b)
    if #a.prefix ~= #b.prefix then return #a.prefix > #b.prefix end
    return a.prefix < b.prefix
  end)
  registry, registry_path = reg, package.path
  return reg
end

--- M.get(name): the service's spec, or nil.
function M.get(name)
  return M.load().services[name]
end

--- M.route(name): the route called name, or nil.
function M.route(name)
  return M.load().routes[name]
end

--- M.classify(path): the service name and route of a request path, or
-- nil when no service claims it.
function M.classify(path)
  for _, p in ipairs(M.load().ordered) do
    if path:find(p.prefix) then return p.route.service, p.route end
  end
  return nil
end

--- M.service_of(url): the service a URL (or path) belongs to, or nil.
-- The service's prefix may follow other segments (a base_url with a path,
-- a proxy's prefix): each segment boundary is tried, leftmost first.
function M.service_of(url)
  local path = url:match "^%a[%w+.-]*://[^/?#]*(/[^?#]*)" or url:match "^(/[^?#]*)"
  if not path then return nil end
  local i = 1
  while i do
    local s = M.classify(path:sub(i))
    if s then return s end
    i = path:find("/", i + 1, true)
  end
  return nil
end

return M
