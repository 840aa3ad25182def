--- B7: signing access tokens (the x-knox-apitoken JWT: RS512 with a loaded
-- 2048-bit key), 5,000 of them, against `openssl speed -seconds 3 rsa2048`
-- (raw RSA-2048 private-key signs, the floor), Samsung's
-- knox-token-library-js (npm; installed into build/bench/node when node,
-- npm and the registry are there, else skipped) and PyJWT (Debian
-- python3-jwt). Rates are per second of the signing process's CPU time
-- (os.clock, process.cpuUsage, time.process_time), as `openssl speed`
-- divides by CPU time: other load on the machine skews neither side.
local knox = require "knox"

return function(lib)
  local N = lib.size(5000, 300)
  local keys_file = lib.WORK .. "/keys.json"
  lib.write(keys_file, knox.keys.generate { bits = 2048 }:to_json())
  local key = knox.keys.load(keys_file)
  local token = ("t"):rep(200) -- Knox access tokens are opaque strings of this order

  local function knox_rate(n)
    collectgarbage()
    local c0 = os.clock()
    for _ = 1, n do key:sign_access_token(token) end
    return n / (os.clock() - c0)
  end

  local function openssl_rate()
    local out = lib.run("openssl speed -seconds " .. lib.size(3, 1) .. " rsa2048 2>/dev/null")
    local rate = out:match("rsa%s+2048 bits%s+[%d.]+s%s+[%d.]+s%s+([%d.]+)")
    return assert(tonumber(rate), "cannot read `openssl speed` output:\n" .. out)
  end

  -- knox and openssl take turns; the ratio is of rates (higher is better)
  local ka, oa, r = lib.alternate(function(w) return knox_rate(w and 100 or N) end,
    function(w) return w and 1 or openssl_rate() end, lib.size(5, 2))
  lib.row { id = "B7", what = ("sign %d access tokens: key:sign_access_token"):format(N),
    value = ("%.0f/s"):format(ka.median), baseline = ("openssl speed rsa2048 %.0f sign/s"):format(oa.median),
    ratio = ("%.3fx"):format(r.median), spread = ("ratio %s; knox %.0f–%.0f/s"):format(lib.range(r, "%.3f"), ka.min,
      ka.max), target = "≥ 0.9x OpenSSL", verdict = lib.verdict(r.median, nil, 0.9) }
  lib.command("B7", "openssl speed -seconds 3 rsa2048")

  -- PyJWT
  local pem = lib.WORK .. "/key.pem"
  require("support.sim").private_pem(keys_file, pem)
  local pub = require("cjson").decode(lib.read(keys_file)).Public
  if not lib.sh(lib.PYTHON .. " -c 'import jwt, cryptography' 2>/dev/null") then
    lib.row { id = "B7", what = "PyJWT", value = "skipped", note = "python3-jwt or python3-cryptography missing" }
  else
    local script = lib.write(lib.WORK .. "/peer_pyjwt.py", [[
import sys, time, uuid
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
# the key loaded once, as a careful user does (passing the PEM text to
# every jwt.encode parses and checks the key each time: some 10/s here)
key = load_pem_private_key(open(sys.argv[1], "rb").read(), None)
pub, n = sys.argv[2], int(sys.argv[3])
token = "t" * 200
c0 = time.process_time()
for _ in range(n):
    now = int(time.time())
    jwt.encode({"accessToken": token, "publicKey": pub, "aud": "KnoxWSM", "jti": uuid.uuid4().hex,
                "iat": now, "exp": now + 1800}, key, algorithm="RS512")
print("%.3f" % (n / (time.process_time() - c0)))
]])
    local function py(n) return tonumber(lib.run(("%s %s %s %s %d"):format(lib.PYTHON, script, pem, pub, n))) end
    local pa, kb, pr = lib.alternate(function(w) return py(w and 20 or N) end,
      function(w) return knox_rate(w and 20 or N) end, lib.size(3, 1))
    lib.command("B7", ("%s %s KEY.pem PUBLIC N"):format(lib.PYTHON, script))
    lib.row { id = "B7", what = "PyJWT jwt.encode RS512 (python3-jwt), key loaded once",
      value = ("%.0f/s"):format(pa.median),
      baseline = ("knox %.0f/s"):format(kb.median), ratio = ("knox %.2fx faster"):format(1 / pr.median),
      spread = ("PyJWT %.0f–%.0f/s"):format(pa.min, pa.max), target = "report", verdict = "reported" }
  end

  -- knox-token-library-js
  local node_dir = lib.WORK .. "/node"
  local lib_js = lib.ROOT .. "/" .. node_dir .. "/node_modules/knox-token-library-js"
  local why
  if not (lib.have("node") and lib.have("npm")) then
    why = "node or npm is not installed"
  elseif not lib.read(lib_js .. "/index.js") then
    local ok, out = lib.sh(("mkdir -p %s && timeout 180 npm install --no-audit --no-fund --silent --prefix %s "
      .. "knox-token-library-js@1.0.22 2>&1"):format(node_dir, node_dir))
    if not ok or not lib.read(lib_js .. "/index.js") then
      why = "npm could not install knox-token-library-js (no registry?): " .. (out:match("[^\n]*") or "")
    end
  end
  if why then
    lib.row { id = "B7", what = "knox-token-library-js (Samsung, npm)", value = "skipped", note = why }
    lib.note("B7: knox-token-library-js skipped: " .. why)
  else
    local script = lib.write(lib.WORK .. "/peer_knox_token.js", [[
const lib = require(process.argv[2]);
const file = process.argv[3], n = parseInt(process.argv[4], 10);
const token = "t".repeat(200);
const c0 = process.cpuUsage();
for (let i = 0; i < n; i++) lib.generateSignedAccessTokenJWT(file, token);
const c = process.cpuUsage(c0);
console.log((n / ((c.user + c.system) / 1e6)).toFixed(3));
]])
    local function js(n)
      return tonumber(lib.run(("node %s %s %s %d"):format(script, lib_js, keys_file, n)))
    end
    local ja, kb, jr = lib.alternate(function(w) return js(w and 20 or N) end,
      function(w) return knox_rate(w and 20 or N) end, lib.size(3, 1))
    local v = lib.read(lib_js .. "/package.json"):match('"version"%s*:%s*"([^"]+)"') or "?"
    lib.row { id = "B7", what = ("knox-token-library-js %s generateSignedAccessTokenJWT (node %s)"):format(v,
      lib.run("node --version"):match("%S+")), value = ("%.0f/s"):format(ja.median),
      baseline = ("knox %.0f/s"):format(kb.median), ratio = ("knox %.2fx faster"):format(1 / jr.median),
      spread = ("library %.0f–%.0f/s"):format(ja.min, ja.max), target = "report", verdict = "reported" }
    lib.note("B7: knox-token-library-js reads and parses keys.json on every call, as its API does; that is "
      .. "how its users sign, so it is measured that way.")
  end
end
