--- knox.cli.cache: the token cache consecutive `knox` commands share, so
-- that each does not fetch a token of its own.
--
-- One file per credential under $XDG_CACHE_HOME/knox (default
-- ~/.cache/knox), named by a hash of what the token belongs to: the
-- profile, the scheme, the client id, the token endpoint's base URL, the
-- OAuth scope and the key's fingerprint. The same text is stored in the
-- file and compared when it is read, so a token is never handed to a
-- provider of other credentials, even if two names collided.
--
-- Safety: the directory is created mode 0700 and used only when it is a
-- real directory (not a symbolic link) owned by this user with no access
-- for others; a token file is used only when it is a regular file owned by
-- this user, mode 0600. Files are written to a new temporary file
-- (mktemp(1): O_EXCL, mode 0600) in that directory and renamed over the
-- old one, so a writer never follows a link and a reader never sees half a
-- file. Anything unexpected disables the cache for the run (-v says why);
-- it never fails a command.
local json = require("knox.core").json

local M = {}

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- M.dir(getenv) -> the cache directory's path.
function M.dir(getenv)
  getenv = getenv or os.getenv
  local x = getenv("XDG_CACHE_HOME")
  if x and x ~= "" then return x .. "/knox" end
  return (getenv("HOME") or ".") .. "/.cache/knox"
end

-- 64-bit FNV-1a of s, as 16 hex digits (a file name, not a secret).
local function fnv(s)
  local h = 0xcbf29ce484222325
  for i = 1, #s do
    h = h ~ s:byte(i)
    h = h * 0x100000001b3
  end
  return ("%016x"):format(h)
end
M.hash = fnv

local uid_cache
local function my_uid()
  if uid_cache == nil then
    local p = io.popen("id -u 2>/dev/null")
    uid_cache = p and tonumber(p:read("l") or "") or false
    if p then p:close() end
  end
  return uid_cache or nil
end

local function lfs()
  local ok, mod = pcall(require, "lfs")
  return ok and mod or nil
end

--- M.open(getenv [, note]) -> a cache, or nil and why it is off.
function M.open(getenv, note)
  local fs = lfs()
  if not fs then return nil, "the token cache needs LuaFileSystem (Debian: lua-filesystem)" end
  local uid = my_uid()
  if not uid then return nil, "cannot tell this user's id" end
  local dir = M.dir(getenv)
  local a = fs.symlinkattributes(dir)
  if not a then
    os.execute("mkdir -p -m 700 " .. quote(dir) .. " 2>/dev/null")
    a = fs.symlinkattributes(dir)
  end
  if not a then return nil, "cannot create " .. dir end
  if a.mode ~= "directory" then return nil, dir .. " is not a directory (a symbolic link?)" end
  if a.uid ~= uid then return nil, dir .. " belongs to another user" end
  if a.permissions:sub(4) ~= "------" then
    -- ours, but open to others: close it before putting tokens in it
    os.execute("chmod 700 " .. quote(dir))
    a = fs.symlinkattributes(dir)
    if not a or a.permissions:sub(4) ~= "------" then return nil, dir .. " is open to other users" end
  end
  return setmetatable({ dir = dir, fs = fs, uid = uid, note = note or function() end }, { __index = M })
end

--- M.identity(parts) -> the text a token belongs to (no secrets in it).
function M.identity(p)
  return table.concat({ "v1", p.profile or "", p.scheme or "", p.client_id or "", p.base_url or "", p.scope or "",
    p.key or "" }, "\n")
end

function M:_file(identity)
  return self.dir .. "/" .. fnv(identity) .. ".json"
end

--- cache:get(identity) -> { token =, expires_at = } or nil.
function M:get(identity)
  local path = self:_file(identity)
  local a = self.fs.symlinkattributes(path)
  if not a then return nil end
  if a.mode ~= "file" or a.uid ~= self.uid or a.permissions ~= "rw-------" then
    self.note("token cache: ignoring " .. path .. " (not a private regular file of this user)")
    return nil
  end
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local ok, t = pcall(json.decode, text)
  if not ok or type(t) ~= "table" or t.identity ~= identity then return nil end
  return { token = t.token, expires_at = t.expires_at, scheme = t.scheme }
end

--- cache:put(identity, t) -> true | nil, why. t: provider:export_token().
function M:put(identity, t)
  local path = self:_file(identity)
  local p = io.popen("mktemp " .. quote(self.dir .. "/.token.XXXXXXXX") .. " 2>/dev/null")
  local tmp = p and p:read("l")
  if p then p:close() end
  if not tmp or tmp == "" then return nil, "mktemp failed in " .. self.dir end
  local a = self.fs.symlinkattributes(tmp)
  if not a or a.mode ~= "file" or a.uid ~= self.uid or a.permissions ~= "rw-------" then
    os.remove(tmp)
    return nil, "the temporary file is not private"
  end
  local f = io.open(tmp, "wb")
  if not f then
    os.remove(tmp)
    return nil, "cannot write " .. tmp
  end
  f:write(json.encode({ identity = identity, token = t.token, expires_at = t.expires_at, scheme = t.scheme },
    { sort_keys = true }))
  f:close()
  local ok, err = os.rename(tmp, path)
  if not ok then
    os.remove(tmp)
    return nil, err
  end
  return true
end

--- cache:clear([profile]) -> the number of token files removed (of one
-- profile, or all).
function M:clear(profile)
  local n = 0
  for name in self.fs.dir(self.dir) do
    if name:match "^%x+%.json$" then
      local path = self.dir .. "/" .. name
      local drop = profile == nil
      if not drop then
        local f = io.open(path, "rb")
        local text = f and f:read("a")
        if f then f:close() end
        local ok, t = pcall(json.decode, text or "")
        drop = ok and type(t) == "table" and type(t.identity) == "string"
          and t.identity:match "^v1\n([^\n]*)" == profile
      end
      if drop and os.remove(path) then n = n + 1 end
    end
  end
  return n
end

--- cache:entries(profile) -> { { identity =, expires_at =, scheme = } } of a profile.
function M:entries(profile)
  local out = {}
  for name in self.fs.dir(self.dir) do
    if name:match "^%x+%.json$" then
      local f = io.open(self.dir .. "/" .. name, "rb")
      local text = f and f:read("a")
      if f then f:close() end
      local ok, t = pcall(json.decode, text or "")
      if ok and type(t) == "table" and type(t.identity) == "string" and t.identity:match "^v1\n([^\n]*)" == profile then
        out[#out + 1] = { identity = t.identity, expires_at = t.expires_at, scheme = t.scheme }
      end
    end
  end
  return out
end

return M
