--- Run by spec/support/embed/threads.c in each thread, each with its own
-- lua_State, all at once (sync() starts each phase on every thread
-- together). arg: keys.json path, expectations file (written by
-- spec/embed_spec.lua in its own, single-threaded process), URL of an echo
-- server, rounds. Returns "ok ..." or raises at the first mismatch.
-- luacheck: globals THREAD sync
local keyfile, expect_file, url, rounds = arg[1], arg[2], arg[3], assert(tonumber(arg[4]))

local function check(cond, what, ...)
  if not cond then error(("thread %d: %s"):format(THREAD, what:format(...)), 0) end
end

sync()   -- every thread loads knox (and dlopens knox.core) at once
local knox = require "knox"
local core = require "knox.core"
local docs = require "support.embed.docs"
local json = knox.json
local expect = dofile(expect_file)
check(core.json == json, "knox.json is not knox.core.json")

local big = docs.page(json, expect.big_n)     -- its text is large: the split decoder
local small = docs.page(json, expect.small_n)
sync()

local nj = 0
for i = 1, rounds do
  local t = json.encode(big, { sort_keys = true })
  check(t == expect.big, "round %d: encode of the large page differs", i)
  local v = json.decode(t)
  check(docs.same(v, big), "round %d: decode of the large page differs", i)
  check(getmetatable(v.devices) == json.array_mt, "round %d: no array marker", i)
  check(json.encode(v, { sort_keys = true }) == expect.big, "round %d: re-encode differs", i)
  local s = json.encode(small, { sort_keys = true })
  check(s == expect.small, "round %d: encode of the small page differs", i)
  check(docs.same(json.decode(s), small), "round %d: decode of the small page differs", i)
  for k, bad in ipairs(expect.bad) do
    local ok, e = pcall(json.decode, bad.text)
    check(not ok and core.is_error(e) and e.message == bad.message and e.offset == bad.offset,
      "round %d: bad text %d: %s", i, k, ok and "accepted" or tostring(e.message))
  end
  nj = nj + 1
end
sync()

local key = knox.keys.load(keyfile)
check(key:public_key() == expect.public_key, "another public key")
local ns = 0
for i = 1, math.max(1, rounds // 4) do
  check(key:sign(docs.claims()) == expect.signature, "sign %d: another signature", i)
  local jwt = key:sign_access_token("token-" .. THREAD .. "-" .. i)
  check(jwt:match("^[%w_-]+%.[%w_-]+%.[%w_-]+$"), "sign %d: not a compact JWS", i)
  ns = ns + 1
end
key:close()
sync()

local nh = 0
if url ~= "" then
  local session <close> = core.session { timeout = 20 }
  for i = 1, math.max(1, rounds // 4) do
    local body = json.encode({ thread = THREAD, i = i, page = small }, { sort_keys = true })
    local status, _, got = session:request { method = "POST", url = url, body = body,
      headers = { ["content-type"] = "application/json" } }
    check(status == 200, "request %d: status %s", i, tostring(status))
    check(got == body, "request %d: echoed body differs", i)
    local v = json.decode(got)
    check(v.thread == THREAD and v.i == i and docs.same(v.page, small), "request %d: decoded echo differs", i)
    nh = nh + 1
  end
end

return ("ok json=%d sign=%d http=%d"):format(nj, ns, nh)
