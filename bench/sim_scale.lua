--- bench/sim_scale.lua: the simulator with big fleets. For each size it
-- starts `knox-sim --devices N`, reads its resident set (VmRSS) after start
-- and after paging, and pages the KME device list 1,000 at a time over one
-- keep-alive connection (reading the bytes, not decoding them), printing
-- devices/s. Run: LUA_PATH='lua/?.lua;lua/?/init.lua;;' lua5.4 bench/sim_scale.lua [N ...]
-- (default: 100000 1000000).
local socket = require "socket"

local sizes = {}
for i, a in ipairs(arg or {}) do sizes[i] = tonumber(a) end
if #sizes == 0 then sizes = { 100000, 1000000 } end
local PAGES = 40

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local root = (arg and arg[0] or ""):match("^(.*)/bench/[^/]*$") or "."

local function rss(pid)
  return tonumber((read("/proc/" .. pid .. "/status") or ""):match("VmRSS:%s*(%d+)"))
end

-- One HTTP/1.1 request on c; returns status and body length.
local function request(c, host, method, path, headers, body)
  local h = { method .. " " .. path .. " HTTP/1.1", "Host: " .. host }
  for k, v in pairs(headers or {}) do h[#h + 1] = k .. ": " .. v end
  if body then h[#h + 1] = "Content-Length: " .. #body end
  assert(c:send(table.concat(h, "\r\n") .. "\r\n\r\n" .. (body or "")))
  local status = tonumber(assert(c:receive("*l")):match(" (%d%d%d)"))
  local len
  while true do
    local line = assert(c:receive("*l"))
    if line == "" then break end
    len = tonumber(line:match("^[Cc]ontent%-[Ll]ength: *(%d+)")) or len
  end
  local data = len and len > 0 and assert(c:receive(len)) or ""
  return status, data
end

for _, n in ipairs(sizes) do
  local out = os.tmpname()
  local pid_file = os.tmpname()
  local t0 = socket.gettime()
  local proc = assert(io.popen(("exec sh -c 'echo $$ > %s; exec lua5.4 %s/bin/knox-sim --port 0 --devices %d "
    .. "--stdin-eof --max-lifetime 600' > %s"):format(quote(pid_file), quote(root), n, quote(out)), "w"))
  local text
  repeat
    socket.sleep(0.02)
    text = read(out) or ""
  until text:find("customer id") or socket.gettime() - t0 > 60
  local started = socket.gettime() - t0
  local pid = tonumber(read(pid_file))
  local url = assert(text:match("listening on (%S+)"), text)
  local id, secret = text:match("oauth client: (%S+) secret (%S+)")
  local host, port = url:match("^http://([^:]+):(%d+)")
  local c = assert(socket.connect(host, tonumber(port)))
  local _, tok = request(c, host .. ":" .. port, "POST", "/ams/v1/oauth2/token",
    { ["Content-Type"] = "application/x-www-form-urlencoded" },
    "grant_type=client_credentials&client_id=" .. id .. "&client_secret=" .. secret)
  local h = { Authorization = "Bearer " .. tok:match('"access_token":"([^"]+)"') }
  local rss0 = rss(pid)
  local pages = math.min(PAGES, n // 1000)
  local bytes = 0
  local t1 = socket.gettime()
  for p = 0, pages - 1 do
    local status, data = request(c, host .. ":" .. port, "GET", "/kcs/v1/kme/devices/list?pageSize=1000&pageNum="
      .. (p * (n // 1000) // math.max(1, pages)), h)
    assert(status == 200, data)
    bytes = bytes + #data
  end
  local elapsed = socket.gettime() - t1
  print(("%8d devices: started in %.2f s, RSS %.1f MB (after paging %.1f MB); %d pages of 1,000 in %.2f s = "
    .. "%.0f devices/s (%.1f MB/s)"):format(n, started, rss0 / 1024, rss(pid) / 1024, pages, elapsed,
    pages * 1000 / elapsed, bytes / elapsed / 1e6))
  c:close()
  proc:close()
  os.remove(out)
  os.remove(pid_file)
end
