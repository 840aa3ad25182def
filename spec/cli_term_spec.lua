-- The knox command in a real terminal (tmux): the progress line and the
-- table; and the shell completion scripts.
local sim_support = require "support.sim"
local KNOX = require("helpers").KNOX

local quote = sim_support.quote

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read "a"
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

local function have(prog)
  return os.execute("command -v " .. prog .. " >/dev/null 2>&1") == true
end

describe("knox completion", function()
  local scripts = {}
  setup(function()
    for _, shell in ipairs { "bash", "zsh", "fish" } do
      local code, out = sh(sim_support.ENV .. KNOX .. " completion " .. shell)
      assert.are.equal(0, code, out)
      local file = os.tmpname()
      sim_support.write_file(file, out)
      scripts[shell] = file
    end
  end)
  teardown(function()
    for _, f in pairs(scripts) do os.remove(f) end
  end)

  it("prints a bash script bash accepts, which completes commands, nouns, verbs and flags", function()
    local code, out = sh("bash -n " .. scripts.bash)
    assert.are.equal(0, code, out)
    local function complete(words)
      local list = {}
      for w in words:gmatch "%S+" do list[#list + 1] = quote(w) end
      if words:match " $" then list[#list + 1] = "''" end
      local script = ("source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _knox; printf '%%s\\n' \"${COMPREPLY[@]}\"")
        :format(quote(scripts.bash), table.concat(list, " "), #list - 1)
      local _, res = sh("bash -c " .. quote(script))
      local set = {}
      for w in res:gmatch "%S+" do set[w] = true end
      return set
    end
    assert.is_true(complete("knox km").kme)
    assert.is_true(complete("knox kme dev").devices)
    assert.is_true(complete("knox kme devices ").assign)
    local flags = complete("knox kme devices assign --pro")
    assert.is_true(flags["--profile-id"])
    assert.is_true(flags["--profile"])
    assert.is_true(complete("knox kg devices lock 3562 --mess")["--message"])
    assert.is_true(complete("knox --profile prod kme devices list --al")["--all"])
    assert.is_true(complete("knox kme devices list -o ")["jsonl"])
    assert.is_true(complete("knox completion ").fish)
  end)

  it("prints zsh and fish scripts their shells accept (where those shells are installed)", function()
    local content = sim_support.read_file(scripts.zsh)
    assert.matches("^#compdef knox\n", content)
    assert.matches("bashcompinit", content)
    assert.matches("complete %-c knox", sim_support.read_file(scripts.fish))
    if have "zsh" then
      local code, out = sh("zsh -n " .. scripts.zsh)
      assert.are.equal(0, code, out)
    end
    if have "fish" then
      local code, out = sh("fish -n " .. scripts.fish)
      assert.are.equal(0, code, out)
    end
  end)

  it("refuses an unknown shell (exit 2)", function()
    local code = sh(sim_support.ENV .. KNOX .. " completion tcsh")
    assert.are.equal(2, code)
  end)
end)

describe("knox in a terminal", function()
  if not have "tmux" then
    pending("tmux is not installed (scripts/install-deps.sh installs it): the terminal specs need it")
    return
  end

  local sim, dir, session
  local socket = require "socket"

  setup(function()
    sim = sim_support.start { devices = 1500, latency_ms = 60 }
    dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p -m 700 " .. quote(dir))
    session = "knox-spec-" .. sim_support.random_hex(4)
    -- a script with the environment, so the tmux command line stays short
    sim_support.write_file(dir .. "/env.sh", table.concat({
      "unset KNOX_PROFILE KNOX_TENANT KNOX_OUTPUT KNOX_TTY COLUMNS",
      "export HOME=" .. quote(dir) .. " XDG_CACHE_HOME=" .. quote(dir .. "/cache")
        .. " KNOX_CONFIG=" .. quote(dir .. "/none"),
      "export KNOX_BASE_URL=" .. quote(sim.url) .. " KNOX_KEYS_FILE=" .. quote(sim.keys_file)
        .. " KNOX_CLIENT_ID=" .. quote(sim.client_id),
      "unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS",
      "cd " .. quote(sim_support.ROOT),
    }, "\n") .. "\n")
  end)
  teardown(function()
    os.execute("tmux kill-session -t " .. session .. " 2>/dev/null")
    if sim then sim:stop() end
    os.execute("rm -rf " .. quote(dir))
  end)

  -- Runs cmd in a fresh 120x30 tmux window; calls look(screen) on each
  -- capture until it returns true or the command has ended. Returns the
  -- captures.
  local function in_terminal(cmd, look)
    os.execute("tmux kill-session -t " .. session .. " 2>/dev/null")
    local done = dir .. "/done"
    os.remove(done)
    local full = ". " .. quote(dir .. "/env.sh") .. "; " .. cmd .. "; touch " .. quote(done) .. "; sleep 30"
    assert(os.execute("tmux new-session -d -s " .. session .. " -x 120 -y 30 " .. quote("bash -c " .. quote(full))))
    local screens = {}
    local deadline = socket.gettime() + 30
    while socket.gettime() < deadline do
      local _, screen = sh("tmux capture-pane -p -t " .. session)
      screens[#screens + 1] = screen
      if look and look(screen) then break end
      if sim_support.read_file(done) then
        local _, last = sh("tmux capture-pane -p -t " .. session)
        screens[#screens + 1] = last
        break
      end
      socket.sleep(0.05)
    end
    return screens
  end

  it("draws a progress line (count, total, percent, rate, ETA) on stderr while --all pages", function()
    local bar
    in_terminal(KNOX .. " kme devices list --all --page-size 50 -o jsonl > " .. quote(dir .. "/out.jsonl"),
      function(screen)
        bar = screen:match "kme devices list[^\n]*ETA[^\n]*"
        return bar ~= nil
      end)
    assert.is_string(bar, "no progress line seen")
    assert.matches("[█░]+", bar)
    assert.matches("[%d,]+/1,500", bar)
    assert.matches("%d+%%", bar)
    assert.matches("%d+/s", bar)
    assert.matches("ETA %d+", bar)
    -- the command ends with every item written and the line cleared
    local screens = in_terminal("sleep 0")
    assert.is_nil(screens[#screens]:find "ETA")
  end)

  it("draws no progress line with --quiet, or when stderr is not the terminal", function()
    for _, cmd in ipairs {
      KNOX .. " kme devices list --all --page-size 100 -o jsonl --quiet > /dev/null",
      KNOX .. " kme devices list --all --page-size 100 -o jsonl > /dev/null 2> " .. quote(dir .. "/err"),
    } do
      local screens = in_terminal(cmd)
      for _, s in ipairs(screens) do assert.is_nil(s:find("ETA", 1, true), cmd) end
    end
    assert.are.equal("", sim_support.read_file(dir .. "/err"))
  end)

  it("prints a table fitted to the terminal, by default on a terminal", function()
    local screens = in_terminal(KNOX .. " kme devices list --page-size 5 --quiet")
    local screen = screens[#screens]
    local lines = {}
    for l in screen:gmatch "[^\n]+" do lines[#lines + 1] = l end
    -- the IMEI first: how an administrator knows a device
    assert.matches("^mei%s+%a", lines[1])
    for i = 2, 6 do assert.matches("^%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%s", lines[i]) end
    for _, l in ipairs(lines) do assert.is_true(#l <= 120) end
    -- every row's columns start where the header's do
    local starts = {}
    for pos in lines[1]:gmatch "()%S+" do starts[#starts + 1] = pos end
    for i = 2, 6 do
      for _, pos in ipairs(starts) do
        local c = lines[i]:sub(pos - 1, pos - 1)
        assert.is_true(pos == 1 or c == " ", lines[i])
      end
    end
    assert.is_nil(screen:find("{", 1, true))
  end)
end)
