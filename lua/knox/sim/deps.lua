--- knox.sim's dependencies: the Debian-packaged Lua modules it runs on.
-- The simulator deliberately does not use knox.core (its JSON and crypto
-- are independent, so specs that pass against it cross-check the library);
-- these modules are the knox-sim rock's dependencies, not the knox rock's
-- (rockspec/knox-sim-scm-1.rockspec), so a missing one is reported by the
-- Debian package that provides it and by that rock.
local M = {}

local NEEDED = {
  { module = "socket", name = "luasocket", package = "lua-socket" },
  { module = "ssl", name = "luasec", package = "lua-sec" },
  { module = "openssl.pkey", name = "luaossl", package = "lua-luaossl" },
  { module = "cjson", name = "lua-cjson", package = "lua-cjson" },
  -- the command line only (knox.args); checked with the rest so that one
  -- message names every missing package
  { module = "argparse", name = "lua-argparse", package = "lua-argparse" },
}

--- Raises one error naming every missing module and its Debian package.
function M.check()
  local names, pkgs = {}, {}
  for _, d in ipairs(NEEDED) do
    if not pcall(require, d.module) then
      names[#names + 1] = d.name .. " (Debian package " .. d.package .. ")"
      pkgs[#pkgs + 1] = d.package
    end
  end
  if #names > 0 then
    error("knox.sim needs " .. table.concat(names, ", ")
      .. " for Lua 5.4; install with: apt-get install " .. table.concat(pkgs, " ")
      .. " (or with LuaRocks: luarocks install knox-sim)", 0)
  end
end

return M
