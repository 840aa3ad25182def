--- Runs the knox command as a real process for specs, with only the
-- KNOX_* variables a spec gives and a private HOME, cache and config:
--
--   local cli = require "support.cli"
--   local run = cli.runner { config = path }     -- optional KNOX_CONFIG
--   local code, out, err = run("kme devices list", { KNOX_BASE_URL = url }, stdin_text)
local sim_support = require "support.sim"
local helpers = require "helpers"

local M = {}

local quote = sim_support.quote

M.KNOX_VARS = { "KNOX_REGION", "KNOX_BASE_URL", "KNOX_KEYS_FILE", "KNOX_CLIENT_ID", "KNOX_OAUTH_CLIENT_ID",
  "KNOX_OAUTH_CLIENT_SECRET", "KNOX_OAUTH_SCOPE", "KNOX_TENANT", "KNOX_CA_FILE", "KNOX_PROFILE", "KNOX_OUTPUT",
  "KNOX_TTY", "KNOX_TOKEN_CACHE", "KNOX_DEBUG" }

--- A private directory (mode 700) for HOME, the cache and the config.
function M.tmpdir()
  local tmp = os.tmpname()
  os.remove(tmp)
  os.execute("mkdir -p -m 700 " .. quote(tmp))
  return tmp
end

--- runner(opts) -> run(args, env, stdin) -> exit code, stdout, stderr.
-- opts: home (a directory; default a new tmpdir), config (KNOX_CONFIG;
-- default a path that does not exist), cache (XDG_CACHE_HOME).
function M.runner(opts)
  opts = opts or {}
  local home = opts.home or M.tmpdir()
  local base = { HOME = home, XDG_CACHE_HOME = opts.cache or (home .. "/cache"),
    KNOX_CONFIG = opts.config or (home .. "/no-config") }
  return function(args, env, stdin)
    local prefix = sim_support.ENV
    for _, k in ipairs(M.KNOX_VARS) do prefix = prefix .. "-u " .. k .. " " end
    local e = {}
    for k, v in pairs(base) do e[k] = v end
    for k, v in pairs(env or {}) do e[k] = v end
    for k, v in pairs(e) do prefix = prefix .. k .. "=" .. quote(v) .. " " end
    local errfile, infile = os.tmpname(), nil
    if stdin then
      infile = os.tmpname()
      sim_support.write_file(infile, stdin)
    end
    local p = io.popen(prefix .. helpers.KNOX .. " " .. args .. " 2>" .. errfile .. " <" .. (infile or "/dev/null"))
    local out = p:read "a"
    local _, _, code = p:close()
    local err = sim_support.read_file(errfile) or ""
    os.remove(errfile)
    if infile then os.remove(infile) end
    return code, out, err
  end, home
end

return M
