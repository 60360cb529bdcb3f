-- sonde.process: exit codes, output, signals, env, and no orphans.
local loop = require("sonde.c.loop")
local process = require("sonde.process")
local task = require("sonde.task")
local support = require("specs.support")

describe("process.spawn", function()
  it("reports the exit code and captures stdout and stderr", function()
    local p = process.spawn { "sh", "-c", "echo out; echo err >&2; exit 3" }
    local code, sig = p:wait(30)
    assert.are.equal(3, code)
    assert.is_nil(sig)
    assert.are.equal("out\n", p:stdout())
    assert.are.equal("err\n", p:stderr())
    assert.is_false(p:running())
  end)

  it("passes argv without a shell: no globbing, no word splitting", function()
    local p = process.spawn { "printf", "%s|", "a b", "*", "$HOME" }
    p:wait(30)
    assert.are.equal("a b|*|$HOME|", p:stdout())
  end)

  it("adds env entries, removes those set to false, and keeps the rest", function()
    local p = process.spawn { "sh", "-c", 'echo "$SONDE_X|${HOME:+home}|${SONDE_GONE:-unset}"',
      env = { SONDE_X = "1", SONDE_GONE = false } }
    p:wait(30)
    assert.are.equal("1|home|unset\n", p:stdout())
  end)

  it("runs in cwd and feeds stdin", function()
    local p = process.spawn { "sh", "-c", "pwd; cat", cwd = "/tmp", stdin = "fed\n" }
    p:wait(30)
    assert.are.equal("/tmp\nfed\n", p:stdout())
  end)

  it("writes to stdin incrementally", function()
    local p = process.spawn { "cat" }
    p:write("one ")
    p:write("two")
    p:close_stdin()
    p:wait(30)
    assert.are.equal("one two", p:stdout())
  end)

  it("keeps only the last bytes of a large output", function()
    local p = process.spawn { "sh", "-c", "seq 1 100000", output_limit = 1000 }
    p:wait(30)
    local out = p:stdout()
    assert.are.equal(1000, #out)
    assert.matches("100000\n$", out)
  end)

  it("kill sends a signal that wait reports by name", function()
    local p = process.spawn { "sleep", "300" }
    assert.is_true(p:running())
    assert.is_true(p:kill())
    local code, sig = p:wait(30)
    assert.is_nil(code)
    assert.are.equal("TERM", sig)
    assert.are.same({ false, "already exited" }, { p:kill() })
  end)

  it("kill reaches the whole process group", function()
    local p = process.spawn { "sh", "-c", "sleep 300 & echo $!; wait" }
    local grandchild = tonumber(p:read_line(30))
    p:kill("KILL")
    p:wait(30)
    process.wait_exit(grandchild, 30)
  end)

  it("stop() escalates from TERM to KILL after the grace period", function()
    local p = process.spawn { "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done" }
    p:wait_output("ready", 30)
    local code, sig = p:stop(0.2)
    assert.is_nil(code)
    assert.are.equal("KILL", sig)
  end)

  it("wait with a timeout raises a timeout error naming the process", function()
    local p = process.spawn { "sleep", "300" }
    local ok, err = pcall(p.wait, p, 0.01)
    assert.is_false(ok)
    assert.matches("^timeout: process<sleep pid %d+> did not exit", tostring(err))
    p:kill("KILL")
    p:wait(30)
  end)

  it("many waiters on one process all see the exit", function()
    local p = process.spawn { "sh", "-c", "sleep 0.05" }
    local a = task.spawn(function() return p:wait(30) end)
    local b = task.spawn(function() return p:wait(30) end)
    assert.are.equal(0, a:join())
    assert.are.equal(0, b:join())
  end)

  it("process.run returns code, stdout and stderr", function()
    local code, out, err = process.run { "sh", "-c", "echo hi; echo no >&2; exit 4" }
    assert.are.same({ 4, "hi\n", "no\n" }, { code, out, err })
  end)
end)

describe("process output as a stream", function()
  it("read_line and lines hand out each line once, as it comes; the last may lack its newline", function()
    local p = process.spawn { "sh", "-c", "printf 'a\\nb\\nc'; printf 'x\\ny\\n' >&2" }
    assert.are.equal("a", p:read_line(30))
    local rest = {}
    for line in p:lines(30) do rest[#rest + 1] = line end
    assert.are.same({ "b", "c" }, rest)
    assert.is_nil(p:read_line(30))
    local err = {}
    for line in p:lines(30, "stderr") do err[#err + 1] = line end
    assert.are.same({ "x", "y" }, err)
  end)

  -- Nothing polls: the bytes wake the reader. A reader that slept and
  -- looked again would never wake while a mocked clock stands still.
  it("wakes a waiting reader with the bytes themselves, even while a mocked clock stands still", function()
    local p = process.spawn { "cat" }
    local m = require("sonde.clock").mocked { autojump = false }
    p:write("first\n")
    assert.are.equal("first", p:read_line())
    local waiting = task.spawn(function() return p:wait_output("^second (%a+)$") end)
    p:write("second li")
    task.sleep(0) -- the waiter takes the half line and waits on
    assert.is_false(waiting:done())
    p:write("ne\n")
    assert.are.equal("line", waiting:join())
    p:close_stdin()
    assert.are.equal("second line", p:read_line())
    assert.is_nil(p:read_line())
    m:close()
  end)

  it("wait_output returns the captures of the first matching line, one that came before the call too", function()
    local p = process.spawn { "sh", "-c", "echo 'listening on 8123'; echo next; exec cat" }
    assert.are.equal("8123", p:wait_output("listening on (%d+)", 30))
    assert.are.same({ "8123", "o", "n" }, { p:wait_output("(%d+)", 30), p:wait_output("(o)(n)", 30) })
    assert.are.equal("listening on 8123", p:read_line(30), "read_line's place is its own")
    p:close_stdin()
  end)

  it("a wait_output that times out names the pattern and the last lines", function()
    local p = process.spawn { "sh", "-c", "echo one; echo two; exec cat" }
    p:wait_output("two", 30)
    local ok, err = pcall(p.wait_output, p, "never (%d+)", 0.05)
    assert.is_false(ok)
    assert.is_true(task.is_timeout(err))
    assert.are.equal("timeout: " .. tostring(p) .. " wrote no line matching 'never (%d+)' to stdout within 0.05s; "
      .. "its last lines:\none\ntwo", tostring(err))
    p:close_stdin()
  end)

  it("a wait_output whose stream ends first says so, with the last lines", function()
    local p = process.spawn { "sh", "-c", "echo only >&2; exit 3" }
    local ok, err = pcall(p.wait_output, p, "never", 30, "stderr")
    assert.is_false(ok)
    assert.matches("process:wait_output: " .. tostring(p) .. " ended its stderr before a line matched 'never'; ", err,
      1, true)
    assert.matches("its last lines:\nonly$", err)
  end)

  it("a reader more than output_limit bytes behind gets the cut line and the count of bytes lost", function()
    local p = process.spawn { "sh", "-c", "head -c 5000 /dev/zero | tr '\\0' x; echo; echo after", output_limit = 1000 }
    p:wait(30)
    local line, lost = p:read_line()
    assert.are.equal(string.rep("x", 993), line)
    assert.are.equal(5000 - 993, lost)
    assert.are.same({ "after" }, { p:read_line() })
  end)

  it("fd3 is a channel of its own that loses nothing: lines far longer than output_limit come whole", function()
    local p = process.spawn { "sh", "-c", "for i in 1 2 3; do head -c 300000 /dev/zero | tr '\\0' $i >&3; echo >&3; " ..
      "done; echo done", fd3 = true, output_limit = 100000 }
    for i = 1, 3 do
      local line, lost = p:read_line(30, "fd3")
      assert.is_true(line == string.rep(tostring(i), 300000), "line " .. i .. " is not whole")
      assert.is_nil(lost)
    end
    assert.is_nil(p:read_line(30, "fd3"))
    assert.are.equal(0, p:wait(30))
    assert.are.equal("done\n", p:stdout())
  end)

  it("names a wrong pattern, stream or timeout at the caller's line", function()
    local p = process.spawn { "cat" }
    local function fails(fn, message)
      local ok, err = pcall(fn)
      assert.is_false(ok)
      assert.matches("process_spec.lua:%d+: " .. message, err)
    end
    fails(function() p:wait_output(42) end, "process:wait_output: expected a pattern %(a string%), got number")
    fails(function() p:wait_output("%") end, "process:wait_output: bad pattern '%%': malformed pattern")
    fails(function() p:read_line(1, "stdin") end,
      'process:read_line: the stream must be "stdout", "stderr" or "fd3", got stdin')
    fails(function() p:lines(1, "fd3") end,
      "process:lines: process<cat pid %d+> has no fd3 %(spawn it with fd3 = true%)")
    fails(function() p:read_line(-1) end, "timeout must be a number of seconds >= 0, got %-1")
    fails(function() process.spawn { "true", fd3 = 1 } end, "process.spawn: option 'fd3' must be a boolean, got number")
    p:close_stdin()
  end)
end)

describe("process.wait_exit", function()
  it("waits for a process that is not this host's child, until it exits", function()
    local _, out = process.run { "sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!", timeout = 30 }
    local pid = assert(tonumber(out), out)
    finally(function() process.run { "kill", "-KILL", tostring(pid) } end)
    assert.has_error(function() process.wait_exit(pid, 0.05) end,
      "timeout: process " .. pid .. " did not exit within 0.05s")
    assert.is_true(support.alive(pid))
    process.run { "kill", tostring(pid), timeout = 30 }
    process.wait_exit(pid, 30)
    assert.is_false(support.alive(pid))
  end)

  it("returns at once for a process that no longer exists", function()
    local p = process.spawn { "true" }
    p:wait(30)
    process.wait_exit(p.pid, 0)
  end)

  it("names a pid that is not an integer at the caller's line", function()
    local ok, err = pcall(function() process.wait_exit("12") end)
    assert.is_false(ok)
    assert.matches("process_spec.lua:%d+: process.wait_exit: expected a pid %(an integer%), got string", err)
    ok, err = pcall(function() process.wait_exit(1.5) end)
    assert.is_false(ok)
    assert.matches("process_spec.lua:%d+: process.wait_exit: expected a pid %(an integer%), got 1.5", err)
  end)
end)

describe("process.spawn with bad input", function()
  it("names a command that does not exist", function()
    assert.has_error(function() process.spawn { "sonde-no-such-command" } end,
      "process.spawn: cannot run 'sonde-no-such-command': no such executable in PATH")
  end)

  it("names a path that is not executable", function()
    local ok, err = pcall(process.spawn, { "/etc/hostname" })
    assert.is_false(ok)
    assert.matches("^process.spawn: cannot run '/etc/hostname': ", err)
  end)

  it("names a cwd that does not exist or is no directory, not only the command", function()
    local ok, err = pcall(function() process.spawn { "true", cwd = "/nonexistent/dir" } end)
    assert.is_false(ok)
    assert.matches("^[^:]*process_spec.lua:%d+: process.spawn: cannot run 'true' in '/nonexistent/dir' %(cwd%): " ..
      "No such file or directory$", err)
    ok, err = pcall(function() process.run { "true", cwd = "/etc/hostname" } end)
    assert.is_false(ok)
    assert.matches("process.run: cannot run 'true' in '/etc/hostname' %(cwd%): Not a directory$", err)
  end)

  it("rejects argv that is not a list of strings", function()
    assert.has_error(function() process.spawn("ls") end)
    assert.has_error(function() process.spawn {} end)
    assert.has_error(function() process.spawn { "echo", {} } end,
        "process.spawn: argument 2 must be a string, got table")
    assert.has_error(function() process.spawn { "echo", env = { [1] = "x" } } end)
  end)

  it("names an unknown or mistyped option at the caller's line, and a timeout given to spawn", function()
    assert.has_error(function() process.spawn { "true", environment = {} } end,
      "process.spawn: unknown option 'environment' (expected one of: cwd, env, fd3, output_limit, stdin)")
    assert.has_error(function() process.spawn { "true", output_limit = "1k" } end,
      "process.spawn: option 'output_limit' must be a number, got string")
    assert.has_error(function() process.spawn { "true", output_limit = -1 } end,
      "process.spawn: option 'output_limit' must be a whole number >= 0, got -1")
    assert.has_error(function() process.spawn { "true", timeout = 5 } end,
      "process.spawn: unknown option 'timeout' (a spawned process has none: give it to p:wait)")
    local ok, err = pcall(function() local code = process.run { "true", time_out = 5 } return code end)
    assert.is_false(ok)
    assert.matches("process_spec.lua:%d+: process.run: unknown option 'time_out' %(expected one of: .*timeout", err)
  end)

  it("rejects an unknown signal name", function()
    local p = process.spawn { "sleep", "300" }
    assert.has_error(function() p:kill("NOPE") end, "process:kill: unknown signal NOPE")
    p:kill("KILL")
    p:wait(30)
  end)
end)

describe("no orphans", function()
  -- assert_gone(pid, what): waits for pid's exit; fails naming `what` if it lives on
  local function assert_gone(pid, what)
    local ok = pcall(process.wait_exit, pid, 10)
    assert.is_true(ok and not support.alive(pid), what .. " " .. pid .. " outlived the host")
  end

  local function start_hanging_host(marker)
    local host = process.spawn { support.bin, "run", support.fixture("spawn_and_hang.lua"),
      env = { SONDE_SPEC_MARKER = marker } }
    host:wait_output("escapees %d+ %d+", 30, "stderr")
    local out = host:stdout()
    return host, tonumber(out:match("child (%d+)")), tonumber(out:match("grandchild (%d+)"))
  end

  for _, sig in ipairs({ "TERM", "INT", "KILL" }) do
    it("children and grandchildren die when the host gets SIG" .. sig, function()
      local marker = support.marker()
      finally(function() support.kill_marked(marker) end)
      local host, child, grandchild = start_hanging_host(marker)
      assert.is_true(support.alive(child))
      assert.is_true(support.alive(grandchild))
      host:kill(sig)
      host:wait(30)
      assert_gone(child, "child")
      assert_gone(grandchild, "grandchild")
    end)
  end

  -- Grandchildren that leave the child's process group and session
  -- (setsid) and lose their parent: SIGINT and SIGTERM let the host stop
  -- them on its way out, as it adopted them (a subreaper), even one with an
  -- empty environment; after SIGKILL the host's watchdog finds them by the
  -- mark that every descendant carries in its environment. (The test names
  -- them on stderr, which --no-capture lets through.)
  local ways = {
    { "sonde run", "run", support.fixture("spawn_and_hang.lua") },
    { "sonde test", "test", "--no-capture", support.fixture("runner/escapees.lua") },
    { "sonde test --jobs 2", "test", "--jobs", "2", "--no-capture", support.fixture("runner/escapees.lua") },
  }
  for _, way in ipairs(ways) do
    for _, sig in ipairs({ "TERM", "INT", "KILL" }) do
      it(way[1] .. ": grandchildren in sessions of their own die when sonde gets SIG" .. sig, function()
        local marker = support.marker()
        finally(function() support.kill_marked(marker) end)
        local host = process.spawn { support.bin, env = { SONDE_SPEC_MARKER = marker }, unpack(way, 2) }
        local pids = host:wait_output("escapees (%d+ %d+)", 30, "stderr")
        local escapee, scrubbed = pids:match("(%d+) (%d+)")
        process.run { "kill", "-" .. sig, tostring(host.pid), timeout = 30 } -- sonde alone, not its group
        host:wait(30)
        if sig ~= "KILL" then
          assert.is_false(support.alive(escapee), "sonde exited before the escapee " .. escapee .. " was stopped")
          assert.is_false(support.alive(scrubbed), "sonde exited before the escapee " .. scrubbed .. " was stopped")
        end
        assert_gone(tonumber(escapee), "the escapee")
      end)
    end
  end

  -- stat(pid) -> the fields of /proc/pid/stat after the name, or nil once
  -- the process is gone (reaped)
  local function stat(pid)
    local f = io.open("/proc/" .. pid .. "/stat")
    if not f then return nil end
    local fields = f:read("*a"):match("^%d+ %b() (.*)$")
    f:close()
    return fields
  end

  it("an orphan of a child's is adopted by the host and reaped once it exits", function()
    local _, out = process.run { "sh", "-c", "(setsid sleep 300 >/dev/null 2>&1 & echo $!)", timeout = 30 }
    local orphan = assert(tonumber(out), out)
    finally(function() process.run { "kill", "-KILL", tostring(orphan) } end)
    assert.are.equal(loop.pid(), tonumber(stat(orphan):match("^%a (%d+)")), "its parent")
    process.run { "kill", tostring(orphan), timeout = 30 }
    process.wait_exit(orphan, 30)
    -- its SIGCHLD came before the next child's exit, which run() waits for
    process.run { "true", timeout = 30 }
    assert.is_nil(stat(orphan), "the orphan is still a zombie")
  end)

  it("leaves io.popen's shell to pclose (it is in the host's own group)", function()
    local f = io.popen("echo $$")
    local shell = tonumber(f:read("*l"))
    process.wait_exit(shell, 30)
    process.run { "true", timeout = 30 } -- the host reaps the orphans it adopted: not this one
    assert.is_true(f:close())
  end)

  it("a host that ends normally stops the children it left running", function()
    local host = process.spawn { support.bin, "run", support.fixture("spawn_and_exit.lua") }
    host:wait(30)
    local child = tonumber(host:stdout():match("child (%d+)"))
    assert.is_truthy(child, host:stderr())
    assert_gone(child, "child")
  end)
end)

describe("processes left running", function()
  it("are stopped when the test that started them ends, a setup's when its block ends; a session's live on",
    function()
      local code, out = support.sonde("test", "-o", "tap", support.fixture("process/left_running.lua"))
      assert.are.equal(1, code, out)
      local status, order = support.tap(out)
      assert.are.equal(6, #order, out)
      for name, s in pairs(status) do
        assert.are.equal(name == "leaves a process running and fails" and "not ok" or "ok", s, out)
      end
      -- the failing test's output (TAP shows it for failures only)
      assert.matches("\n  output: |\n    process 'sleep 104' %(pid %d+%) was still running at the end of the test; " ..
        "stopped\n", out)
    end)
end)

describe("what children inherit", function()
  it("no descriptor of the host but stdin, stdout and stderr (curl's sockets included)", function()
    local server = require("sonde.server")
    local http = require("sonde.http")
    local s = server.serve({}, function(srv) srv:get("/", function() return "ok" end) end)
    http.get(s.url .. "/") -- leaves a keep-alive connection open in the host
    local _, out = process.run { "sh", "-c", "ls /proc/$$/fd" }
    s:close()
    local fds = {}
    for fd in out:gmatch("%d+") do fds[#fds + 1] = tonumber(fd) end
    table.sort(fds)
    -- the shell itself may hold one descriptor of its own (for reading ls)
    assert.is_true(#fds <= 4, "the child holds " .. table.concat(fds, " "))
    for _, fd in ipairs(fds) do assert.is_true(fd <= 3, "inherited fd " .. fd) end
  end)

  it("the host's mark in SONDE_HOSTS, after those of the hosts above it, whatever env says", function()
    local above = os.getenv("SONDE_HOSTS")
    for _, env in ipairs({ {}, { SONDE_HOSTS = "mine" }, { SONDE_HOSTS = false } }) do
      local _, out = process.run { "sh", "-c", 'printf %s "$SONDE_HOSTS"', env = env, timeout = 30 }
      local inherited, pid = out:match("^(.-) ?(%d+)%.%d+$")
      assert.are.equal(above or "", inherited, out)
      assert.are.equal(loop.pid(), tonumber(pid), out)
    end
  end)

  it("stop() in a cancelled task kills the child and re-raises the cancellation", function()
    local p = process.spawn { "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done" }
    p:wait_output("ready", 30)
    local after = false
    local h = task.spawn(function() p:stop(30) after = true end)
    task.sleep(0) -- h runs until it waits in stop
    h:cancel()
    local ok, err = pcall(h.join, h)
    assert.is_false(ok)
    assert.is_true(task.is_cancelled(err))
    assert.is_false(after)
    assert.are.equal("KILL", select(2, p:wait(30)))
  end)
end)
