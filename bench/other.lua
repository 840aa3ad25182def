--- The benchmark scripts of earlier issues that are not rows of the table
-- (transport limits, simulator and job scale), run as child processes; their
-- output goes into BENCHMARKS.md as it is. BENCH_QUICK=1 gives them small
-- sizes, so that a smoke run still runs every script.
return function(lib)
  local scripts = {
    { "bench/http_limits.lua" },
    { "bench/sim_scale.lua", lib.QUICK and "10000 30000" or "" },
    { "bench/job_scale.lua", "", lib.QUICK and "JOB_SCALE_N=20000 " or "" },
  }
  for _, s in ipairs(scripts) do
    local cmd = ("%s%s %s %s"):format(s[3] or "", lib.LUA, s[1], s[2] or ""):gsub("%s+$", "")
    print("  " .. cmd)
    local t0 = lib.now()
    local out = lib.run(lib.LUAPATH .. " " .. cmd .. " 2>&1")
    lib.others[#lib.others + 1] = { cmd = cmd, out = out, seconds = lib.now() - t0 }
  end
end
