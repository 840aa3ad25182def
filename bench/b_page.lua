--- B1-B5: one keep-alive GET of a 1.3 KB JSON device page from a loopback
-- nginx, over HTTP/1.1 and HTTPS (HTTP/2 where the client negotiates it),
-- measured five ways, each alternating with its baseline in this run:
--   B1 knox.Session:request (transport only)     vs plain C on libcurl
--   B2 client:request (token header, decode, response table)
--                                                 vs the C loop + lua-cjson decode
--   B3 luasocket / luasec http.request + lua-cjson vs client:request
--   B4 python3-requests Session + json             vs client:request
--   B5 curl + jq, one process each per call        vs client:request
local knox = require "knox"
local core = require "knox.core"
local cjson = require "cjson"

return function(lib)
  local p = lib.page()
  local N = lib.size(10000, 400)
  local schemes = { { "http", p.http }, { "https", p.https, p.ca } }
  local us = function(s) return ("%.1f µs"):format(s * 1e6) end
  local function spread_us(st) return ("%.1f–%.1f µs"):format(st.min * 1e6, st.max * 1e6) end

  local function session_loop(url, ca, n)
    local s <close> = core.session { ca_file = ca }
    local req = { method = "GET", url = url }
    local t0 = lib.now()
    for _ = 1, n do
      local status, _, body = s:request(req)
      if status ~= 200 or #body ~= #p.doc then error("bad response " .. tostring(status)) end
    end
    return (lib.now() - t0) / n
  end

  local function client_loop(url, ca, n)
    local base = url:match("^(https?://[^/]+)")
    local c <close> = knox.client { base_url = base, ca_file = ca, auth = knox.auth.token { value = "bench-token" } }
    local t0 = lib.now()
    for _ = 1, n do
      local body, res = c:request("GET", "/data.json")
      if res.status ~= 200 or body.totalCount ~= 6 then error("bad response") end
    end
    return (lib.now() - t0) / n
  end

  local function cjson_loop(n)
    local t0 = lib.now()
    for _ = 1, n do
      if cjson.decode(p.doc).totalCount ~= 6 then error("bad decode") end
    end
    return (lib.now() - t0) / n
  end

  -- B1, B2
  for _, sc in ipairs(schemes) do
    local name, url, ca = sc[1], sc[2], sc[3]
    local a, b, r = lib.alternate(function(w) return session_loop(url, ca, w and 300 or N) end,
      function(w) return lib.c_loop(url, w and 300 or N, ca) end)
    lib.row { id = "B1", what = "transport, " .. name .. ": knox.Session:request", value = us(a.median),
      baseline = "C libcurl " .. us(b.median), ratio = ("%.3fx"):format(r.median),
      spread = ("ratio %s; knox %s, C %s"):format(lib.range(r, "%.3f"), spread_us(a), spread_us(b)),
      target = "≤ 1.10x", verdict = lib.verdict(r.median, 1.10) }
  end
  for _, sc in ipairs(schemes) do
    local name, url, ca = sc[1], sc[2], sc[3]
    local a, b, r = lib.alternate(function(w) return client_loop(url, ca, w and 300 or N) end,
      function(w)
        local n = w and 300 or N
        return lib.c_loop(url, n, ca) + cjson_loop(n)
      end)
    lib.row { id = "B2", what = "client:request, " .. name .. " (token, decode, response)", value = us(a.median),
      baseline = "C libcurl + lua-cjson " .. us(b.median), ratio = ("%.3fx"):format(r.median),
      spread = ("ratio %s; knox %s, floor %s"):format(lib.range(r, "%.3f"), spread_us(a), spread_us(b)),
      target = "≤ 1.25x", verdict = lib.verdict(r.median, 1.25) }
  end

  -- B3: what a Lua user writes without knox
  local http, https, ltn12 = require "socket.http", require "ssl.https", require "ltn12"
  -- luasec's https.request waits some 40 ms a call (see the note): fewer calls there
  local NL, NLS = lib.size(1000, 100), lib.size(100, 10)
  local function luasocket_loop(url, ca, n)
    local t0 = lib.now()
    for _ = 1, n do
      local out = {}
      local ok, code
      if ca then
        ok, code = https.request { url = url, sink = ltn12.sink.table(out), cafile = ca, verify = "peer",
          protocol = "any", options = "all" }
      else
        ok, code = http.request { url = url, sink = ltn12.sink.table(out) }
      end
      if not ok or code ~= 200 or cjson.decode(table.concat(out)).totalCount ~= 6 then error("luasocket: " .. code) end
    end
    return (lib.now() - t0) / n
  end
  for _, sc in ipairs(schemes) do
    local name, url, ca = sc[1], sc[2], sc[3]
    local n = ca and NLS or NL
    local a, b, r = lib.alternate(function(w) return luasocket_loop(url, ca, w and 5 or n) end,
      function(w) return client_loop(url, ca, w and 5 or n) end)
    lib.row { id = "B3", what = ("luasocket%s http.request + lua-cjson, %s (%d calls)"):format(ca and "/luasec" or "",
        name, n),
      value = us(a.median), baseline = "client:request " .. us(b.median),
      ratio = ("knox %.1fx faster"):format(r.median), spread = ("speed-up %s"):format(lib.range(r, "%.1f")),
      target = "report", verdict = "reported" }
  end
  lib.note("B3: luasocket's http.request (and luasec's https.request) send `Connection: close` and open a new "
    .. "connection (and TLS handshake) for every call; that, not Lua, is most of the difference. Over HTTPS each "
    .. "call also waits for a delayed ACK: luasec writes the request in several small TLS records with Nagle's "
    .. "algorithm on, so the second waits for the server's ACK (about 40 ms on Linux loopback).")

  -- B4: what a Python user writes
  local ok_py = lib.sh(lib.PYTHON .. " -c 'import requests' 2>/dev/null")
  local NP = lib.size(2000, 200)
  if not ok_py then
    lib.row { id = "B4", what = "python3-requests Session + json", value = "skipped",
      note = "python3-requests is not installed" }
  else
    local script = lib.write(lib.WORK .. "/peer_requests.py", [[
import json, sys, time
import requests
url, n, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = requests.Session()
t0 = time.perf_counter()
for _ in range(n):
    r = s.get(url, verify=ca if ca != "-" else True)
    if r.status_code != 200 or json.loads(r.content)["totalCount"] != 6:
        raise SystemExit("bad response")
print("%.9f" % ((time.perf_counter() - t0) / n))
]])
    for _, sc in ipairs(schemes) do
      local name, url, ca = sc[1], sc[2], sc[3]
      local function py(n)
        return tonumber(lib.run(("%s %s %s %d %s"):format(lib.PYTHON, script, url, n, ca or "-")))
      end
      local a, b, r = lib.alternate(function(w) return py(w and 20 or NP) end,
        function(w) return client_loop(url, ca, w and 20 or NP) end)
      lib.row { id = "B4", what = "python3-requests Session + json, " .. name, value = us(a.median),
        baseline = "client:request " .. us(b.median), ratio = ("knox %.1fx faster"):format(r.median),
        spread = ("speed-up %s"):format(lib.range(r, "%.1f")), target = "report", verdict = "reported" }
    end
    lib.command("B4", lib.PYTHON .. " " .. script .. " URL N CA_FILE|-")
    lib.note("B4: the Python loop is timed inside the interpreter (time.perf_counter around the loop), so "
      .. "its start-up and `import requests` are not counted.")
  end

  -- B5: what a shell user writes
  local NS = lib.size(100, 10)
  if not (lib.have("curl") and lib.have("jq")) then
    lib.row { id = "B5", what = "curl + jq per call", value = "skipped", note = "curl or jq is not installed" }
  else
    for _, sc in ipairs(schemes) do
      local name, url, ca = sc[1], sc[2], sc[3]
      local cacert = ca and ("--cacert " .. ca .. " ") or ""
      local cmd = ("curl -sf %s%s | jq -e '.totalCount == 6' >/dev/null"):format(cacert, url)
      local function shell(n)
        local t0 = lib.now()
        lib.run(("i=0; while [ $i -lt %d ]; do %s || exit 1; i=$((i+1)); done"):format(n, cmd))
        return (lib.now() - t0) / n
      end
      local a, b, r = lib.alternate(function(w) return shell(w and 3 or NS) end,
        function(w) return client_loop(url, ca, w and 3 or NS) end)
      lib.row { id = "B5", what = ("curl + jq, one process each per call, %s (%d calls)"):format(name, NS),
        value = ("%.2f ms"):format(a.median * 1e3), baseline = "client:request " .. us(b.median),
        ratio = ("knox %.0fx faster"):format(r.median), spread = ("speed-up %s"):format(lib.range(r, "%.0f")),
        target = "report", verdict = "reported" }
      if name == "http" then lib.command("B5", (cmd:gsub("http://[^ ]+", "URL"))) end
    end
  end
  lib.stop_page()
end
