--- knox.sim fleets: one service's devices in one tenant, generated lazily.
--
-- A fleet of n generated devices stores nothing per device until the API
-- changes one: device i is made on demand by make(i) (a pure function of
-- the tenant, the seed and i), a changed device is kept in `changed[i]`,
-- devices added through the API take the indexes n+1, n+2, ... (always
-- kept), and a deleted index goes into a sorted array. A million-device
-- fleet therefore costs a few tables, and a page is made from its indexes.
--
-- Positions (1-based, what pageNum/pageSize address) run over the live
-- indexes in order: generated devices first, then added ones.
local M = {}

local Fleet = {}
Fleet.__index = Fleet

--- A fleet of n generated devices. opts: make(i) -> a fresh device table;
-- decode(id) -> the generated index an identifier names, or nil (never
-- raises); keys(dev) -> the identifiers of an added device; fix(dev, now)
-- (optional) brings a device up to date with the simulator's clock
-- before it is read, returning true when it changed it.
function M.new(n, opts)
  return setmetatable({ n = n, top = n, make = opts.make, decode = opts.decode, keys = opts.keys,
    fix = opts.fix, changed = {}, nchanged = 0, deleted = {}, is_deleted = {}, by_key = {} }, Fleet)
end

--- Live devices.
function Fleet:count()
  return self.top - #self.deleted
end

local function alive(self, i)
  return i >= 1 and i <= self.top and not self.is_deleted[i]
end

--- The device at index i (a fresh table for an unchanged generated one:
-- reading it and dropping it costs nothing). nil for a deleted index.
function Fleet:get(i, now)
  if not alive(self, i) then return nil end
  local d = self.changed[i]
  if d then
    if self.fix and now then self.fix(d, now) end
    return d
  end
  d = self.make(i)
  if self.fix and now and self.fix(d, now) then self:keep(i, d) end
  return d
end

function Fleet:keep(i, d)
  -- a generated object encoded by its generator's template may now change
  local mt = getmetatable(d)
  if mt and mt.__kept then setmetatable(d, mt.__kept) end
  if not self.changed[i] then self.nchanged = self.nchanged + 1 end
  self.changed[i] = d
end

--- The device at index i, kept from now on so that changes to it stay.
function Fleet:mut(i, now)
  local d = self:get(i, now)
  if d and self.journal then self.journal[i] = true end -- [persist] knox.sim.persist (--state)
  if d and not self.changed[i] then self:keep(i, d) end
  return d
end

--- The index of the device an identifier names (any identifier the
-- service's decode knows, or a key of an added device), or nil.
function Fleet:find(id)
  if type(id) ~= "string" then return nil end
  local i = self.by_key[id]
  if not i then
    i = self.decode(id)
    if not i or i > self.n then return nil end
  end
  if not alive(self, i) then return nil end
  return i
end

--- Adds a device (kept); returns its index.
function Fleet:add(d)
  self.top = self.top + 1
  local i = self.top
  self:keep(i, d)
  if self.journal then self.journal[i] = true end -- [persist]
  for _, k in ipairs(self.keys(d)) do self.by_key[k] = i end
  return i
end

--- Deletes the device at index i.
function Fleet:delete(i)
  if not alive(self, i) then return end
  if self.journal then self.journal[i] = true end -- [persist]
  local d = self.changed[i]
  if d then
    self.changed[i] = nil
    self.nchanged = self.nchanged - 1
    if i > self.n then
      for _, k in ipairs(self.keys(d)) do
        if self.by_key[k] == i then self.by_key[k] = nil end
      end
    end
  end
  local del = self.deleted
  local lo, hi = 1, #del + 1
  while lo < hi do
    local mid = (lo + hi) // 2
    if del[mid] < i then lo = mid + 1 else hi = mid end
  end
  table.insert(del, lo, i)
  self.is_deleted[i] = true
end

--- The index of the device at live position pos, or nil.
function Fleet:index_at(pos)
  if pos < 1 or pos > self:count() then return nil end
  local del = self.deleted
  -- the largest j with del[j] - j < pos: exactly j deleted indexes precede
  -- the answer, which is then pos + j
  local lo, hi = 0, #del
  while lo < hi do
    local mid = (lo + hi + 1) // 2
    if del[mid] - mid < pos then lo = mid else hi = mid - 1 end
  end
  return pos + lo
end

--- Iterates index, device over the live devices from position `from`
-- (default 1), in order.
function Fleet:each(now, from)
  local i = (from and self:index_at(from) or (from == nil and 1 or nil))
  if not i then return function() return nil end end
  i = i - 1
  local top = self.top
  return function()
    while true do
      i = i + 1
      if i > top then return nil end
      if not self.is_deleted[i] then return i, self:get(i, now) end
    end
  end
end

--- The devices at positions first .. first+size-1 (a list).
function Fleet:slice(first, size, now)
  local out, n = {}, 0
  if size <= 0 then return out end
  for _, d in self:each(now, first) do
    n = n + 1
    out[n] = d
    if n >= size then break end
  end
  return out
end

--- A filtered page without making every device: gen(i) answers for an
-- unchanged generated device from its index alone (cheap arithmetic),
-- keep(d) for a kept one. Returns the matching devices at match positions
-- first .. first+size-1 and the number of matches. (When only one side
-- can match, pass gen or keep as a function returning false.)
function Fleet:filter(gen, keep, first, size, now)
  local out, total = {}, 0
  local last = first + size - 1
  local del, dn = self.deleted, 1
  local changed, n = self.changed, self.n
  for i = 1, self.top do
    while del[dn] and del[dn] < i do dn = dn + 1 end
    if del[dn] ~= i then
      local d = changed[i]
      local hit
      if d then
        if self.fix and now then self.fix(d, now) end
        hit = keep(d)
      elseif i <= n then
        hit = gen(i)
      end
      if hit then
        total = total + 1
        if total >= first and total <= last then out[#out + 1] = d or self:get(i, now) end
      end
    end
  end
  return out, total
end

--- The kept (changed or added) indexes, ascending.
function Fleet:kept()
  local out = {}
  for i in pairs(self.changed) do out[#out + 1] = i end
  table.sort(out)
  return out
end

return M
