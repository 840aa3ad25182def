rockspec_format = "3.0"
package = "knox-sim"
version = "scm-1"

-- Made from rockspec/knox-scm-1.rockspec's source table by `make rockspecs`:
-- edit the URL there, not here.
source = {
  url = "git+https://example.invalid/knox.git",
}

description = {
  summary = "The Knox simulator's dependencies, for knox sim and knox.sim.testing",
  detailed = [[
The knox rock ships the Knox simulator (knox.sim, `knox sim`, and the test
kit knox.sim.testing), a real HTTP/HTTPS server on loopback that behaves
like the Samsung Knox cloud services. It runs on luasocket, luasec, luaossl
and lua-cjson -- deliberately not on knox's own C core, so tests that pass
against it cross-check the library. This rock installs nothing itself: it
declares those dependencies, so `luarocks install knox-sim` (or knox-sim in
a project's test_dependencies) gives a working simulator.
]],
  license = "MIT",
}

dependencies = {
  "lua >= 5.4",
  "knox",
  "luasocket >= 3.0",
  "luasec >= 1.0",
  "luaossl",
  "lua-cjson >= 2.1",
}

build = {
  type = "none",
}
