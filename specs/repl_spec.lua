-- The REPL: driven at a real terminal (a private tmux server, send-keys and
-- capture-pane) the way a person uses it, fed through a pipe for the
-- non-terminal paths, and its printer, completer and compiler called
-- directly for the sizes and shapes that must never flood a terminal.
local support = require("specs.support")
local servers = require("specs.servers")
local process = require("sonde.process")
local fixture = require("sonde.fixture")
local http = require("sonde.http")
local task = require("sonde.task")
local repl = require("sonde.repl")

local DEADLINE = 20 -- seconds a screen gets to show what is expected (tests time out at 30)

-- ------------------------------------------------------------ terminal

-- A REPL running in its own tmux server (socket name unique per session).
local Terminal = {}
Terminal.__index = Terminal

local serial = 0
local live = {} -- terminals started and not yet killed, killed after each test

local function tmux(term, ...)
  local argv = { "tmux", "-L", term.socket, ... }
  argv.timeout = 10
  local code, out, err = process.run(argv)
  assert(code == 0, "tmux " .. table.concat({ ... }, " ") .. " failed: " .. err)
  return out
end

-- start{history=path, report_exit=bool, bare=bool (plain `sonde`), locale=LC_ALL} -> a terminal showing the REPL's
-- prompt. tmux 3.3 sometimes never reaps a pane's process, so a session
-- whose exit status matters runs under a shell that prints it.
local function start(opts)
  opts = opts or {}
  serial = serial + 1
  local term = setmetatable({ socket = string.format("sonde_repl_spec_%d_%d_%d", os.time(), serial,
    fixture.unused_port()) }, Terminal)
  local cmd = { "env", "SONDE_HISTORY=" .. (opts.history or ""), "NO_COLOR=1" }
  if opts.locale then cmd[#cmd + 1] = "LC_ALL=" .. opts.locale end
  if opts.report_exit then
    cmd = { "sh", "-c", '"$@"; echo "[sonde exited with $?]"; exec sleep 600', "sh", unpack(cmd) }
  end
  local lua_path = os.getenv("SONDE_LUA_PATH")
  if lua_path then cmd[#cmd + 1] = "SONDE_LUA_PATH=" .. lua_path end
  cmd[#cmd + 1] = support.bin
  if not opts.bare then cmd[#cmd + 1] = "repl" end
  local args = { "-f", "specs/fixtures/repl/tmux.conf", "new-session", "-d", "-s", "repl", "-x", "120", "-y", "50" }
  for _, a in ipairs(cmd) do args[#args + 1] = a end
  live[term] = true
  tmux(term, unpack(args))
  term.socket_path = tmux(term, "display-message", "-p", "#{socket_path}"):match("[^\n]+")
  local ok, err = pcall(term.wait_for, term, "> ")
  if not ok then
    term:kill()
    error(err, 2)
  end
  return term
end

-- type(text): sends text literally (tmux would read "end" as the End key).
function Terminal:type(text) tmux(self, "send-keys", "-t", "repl", "-l", text) end
function Terminal:key(...) tmux(self, "send-keys", "-t", "repl", ...) end
function Terminal:line(text)
  self:type(text)
  self:key("Enter")
end

function Terminal:screen() return tmux(self, "capture-pane", "-p", "-J", "-t", "repl", "-S", "-1000") end

-- wait_for(text[, after]) -> the screen once it shows text (plain, not a
-- pattern) after the first `after` bytes; fails with the screen at the deadline.
function Terminal:wait_for(text, after)
  local deadline = task.now() + DEADLINE
  while true do
    local screen = self:screen()
    if screen:find(text, (after or 0) + 1, true) then return screen end
    if task.now() > deadline then
      error(string.format("the terminal did not show %q within %ds; it shows:\n%s", text, DEADLINE, screen), 2)
    end
    task.sleep(0.05)
  end
end

-- mark() -> where the screen's text ends now, for a later wait_for(text, mark).
function Terminal:mark() return #(self:screen():gsub("%s+$", "")) end

-- exit_status() -> the REPL's exit code once it has exited (report_exit).
function Terminal:exit_status()
  return tonumber(self:wait_for("[sonde exited with "):match("%[sonde exited with (%d+)%]"))
end

-- Stops the tmux server (and the REPL with it) and removes its socket.
function Terminal:kill()
  if not live[self] then return end
  live[self] = nil
  process.run { "tmux", "-L", self.socket, "kill-server", timeout = 10 }
  if self.socket_path then os.remove(self.socket_path) end
end

local function kill_all()
  for term in pairs(live) do term:kill() end
end

local function temp_path(name)
  local path = os.tmpname()
  os.remove(path)
  return path .. "-" .. name
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- -------------------------------------------------------- at a terminal

describe("sonde repl at a terminal", function()
  local term
  after_each(kill_all)

  it("prints an HTTP response from a real nginx as status line, headers and JSON body", function()
    local ngx = servers.nginx()
    term = start()
    term:line(string.format("r = http.get(%q)", ngx.url .. "/small.json"))
    term:wait_for("> r = http.get")
    term:line("r")
    local screen = term:wait_for('{"items": [1, 2, 3], "ok": true}')
    assert.matches("\nHTTP/1%.1 200 OK  %(%d+%.%d ms%)\n", screen)
    assert.matches("\nServer: nginx", screen)
    assert.matches("\nContent%-Type: application/json\n", screen)
    term:line("r.status + 1")
    term:wait_for("201")
  end)

  it("opens for plain `sonde` too, with the modules as globals", function()
    term = start { bare = true }
    term:line("={type(http.get), type(json.decode), type(task.spawn), type(sonde.server.serve)}")
    term:wait_for('["function", "function", "function", "function"]')
  end)

  it("prints tables as indented JSON-like text, cycles marked", function()
    term = start()
    term:line('t = {name = "sonde", tags = {"a", "b"}, nested = {deep = {deeper = true}, n = 1.5}}; t.self = t')
    term:line("t")
    local screen = term:wait_for('"self": <cycle>')
    assert.matches('{\n  "name": "sonde",\n  "nested": {"deep": {"deeper": true}, "n": 1.5},\n  "self": <cycle>,\n'
      .. '  "tags": %["a", "b"%]\n}', screen)
  end)

  it("continues an unfinished chunk with a .. prompt", function()
    term = start()
    term:line("function twice(x)")
    term:wait_for(".. ")
    term:line("return x * 2")
    term:line("end")
    term:line("=twice(21)")
    local screen = term:wait_for("\n42\n")
    assert.matches("> function twice%(x%)\n%.%. return x %* 2\n%.%. end\n> =twice%(21%)\n42\n", screen)
  end)

  it("completes http. with Tab, and fields of live values", function()
    term = start()
    term:type("http.ge")
    term:key("Tab")
    term:wait_for("> http.get")
    term:type('("x")')
    term:key("C-u")
    term:type("http.")
    term:key("Tab", "Tab")
    local screen = term:wait_for("http.post")
    assert.truthy(screen:find("http.client", 1, true))
    assert.truthy(screen:find("http.delete", 1, true))
    term:key("C-u")
    term:line('probe = {alpha = 1, beta = {gamma = 2}}')
    term:wait_for("gamma = 2}}\n> ") -- the line ran: keys typed ahead are echoed out of place
    term:type("probe.beta.g")
    term:key("Tab")
    term:wait_for("> probe.beta.gamma")
  end)

  it("cancels a running task.sleep(60) with Ctrl-C and returns to the prompt", function()
    term = start()
    term:line('task.sleep(60) print("not" .. " reached")')
    term:wait_for("> task.sleep(60)")
    term:key("C-c")
    term:wait_for("interrupted at repl:1")
    local mark = term:mark()
    term:line("=6 * 7")
    local screen = term:wait_for("42", mark)
    assert.falsy(screen:find("not reached", 1, true))
  end)

  it("drops the line being typed on Ctrl-C, and keeps going", function()
    term = start()
    term:type("this line is abandoned")
    term:wait_for("> this line is abandoned") -- Ctrl-C is a signal: it could overtake keys still unread
    term:key("C-c")
    term:wait_for("abandoned^C")
    term:line("=1 + 1")
    term:wait_for("\n2\n")
  end)

  it("survives a syntax error and an error, with a trimmed traceback", function()
    term = start()
    term:line("x = = 1")
    term:wait_for("repl:1: unexpected symbol near '='")
    term:line('local function f() error("deep") end f()')
    local screen = term:wait_for("in main chunk")
    assert.matches("repl:1: deep\nstack traceback:\n", screen)
    assert.falsy(screen:find("lua/sonde/", 1, true))
    term:line("=40 + 2")
    term:wait_for("\n42\n")
  end)

  it("keeps the history across two sessions in SONDE_HISTORY, private to the user", function()
    local path = temp_path("history")
    finally(function() os.remove(path) end)
    term = start { history = path, report_exit = true }
    term:line("history_probe = 4242")
    term:wait_for("> history_probe = 4242\n> ")
    term:key("C-d")
    assert.are.equal(0, term:exit_status())
    term:kill()
    assert.matches("history_probe", read_file(path))
    local _, mode = process.run { "stat", "-c", "%a", path }
    assert.are.equal("600\n", mode)

    term = start { history = path }
    term:key("Up")
    term:wait_for("> history_probe = 4242")
    term:key("Enter")
    term:line("=history_probe")
    term:wait_for("\n4242\n")
  end)

  it("keeps the loop turning at the prompt: a server started on one line answers while the next is typed", function()
    local port = fixture.unused_port()
    term = start()
    term:line(string.format('s = server.serve({port = %d}, function(s) s:get("/hi", function() '
      .. 'return {json = {hello = "from the repl"}} end) end)', port))
    term:wait_for("> s = server.serve")
    term:type("half a line, not sent")
    term:wait_for("> half a line, not sent")
    local r = http.get(string.format("http://127.0.0.1:%d/hi", port))
    assert.are.equal(200, r.status)
    assert.are.same({ hello = "from the repl" }, r:json())
    term:key("C-u")
    term:line('task.spawn(function() task.sleep(0.05) print("from the background") end)')
    term:type("typing")
    local screen = term:wait_for("from the background\n> typing")
    assert.truthy(screen:find("from the background", 1, true))
  end)

  it("leaves on Ctrl-D, stopping its servers and fixture sessions", function()
    local port = fixture.unused_port()
    local marker = temp_path("teardown")
    finally(function() os.remove(marker) end)
    term = start { report_exit = true }
    term:line(string.format('s = server.serve({port = %d}, function(s) s:get("/", function() return "up" end) end)',
      port))
    term:line(string.format('fixture.session("probe", function() return 1, function() '
      .. 'local f = io.open(%q, "w") f:write("torn down") f:close() end end)', marker))
    term:line("=http.get(s.url).body")
    term:wait_for('"up"')
    term:key("C-d")
    assert.are.equal(0, term:exit_status())
    assert.are.equal("torn down", read_file(marker))
    local ok, err = pcall(http.get, string.format("http://127.0.0.1:%d/", port), { timeout = 5 })
    assert.is_false(ok)
    assert.are.equal("connect", err.kind)
  end)

  -- While a line runs the terminal is in its normal (canonical) mode, where
  -- Ctrl-D is no byte but an end-of-file mark; switched to raw mode for the
  -- next prompt, the kernel hands that mark over as a NUL, and the Ctrl-D
  -- was lost. Each line below ends only once the terminal holds the keys
  -- typed ahead (poll on stdin), so nothing depends on how fast it runs.
  local function wait_for_keys(tty)
    tty:line('ffi = require("ffi") ffi.cdef("struct pollfd {int fd; short events, revents;}; '
      .. 'int poll(struct pollfd *, unsigned long, int);")')
    tty:wait_for("> ffi = ")
    tty:line('print("wait" .. "ing") ffi.C.poll(ffi.new("struct pollfd[1]", {{0, 1, 0}}), 1, 20000)')
    tty:wait_for("\nwaiting\n")
  end

  it("leaves on a Ctrl-D typed while a line still runs", function()
    term = start { report_exit = true }
    wait_for_keys(term)
    term:key("C-d")
    assert.are.equal(0, term:exit_status())
  end)

  it("runs a line typed while a line still runs, then goes on at the prompt", function()
    term = start()
    wait_for_keys(term)
    term:line("=6 * 7")
    term:wait_for("\n> =6 * 7\n42\n> ")
    term:line("=1 + 1")
    term:wait_for("\n> =1 + 1\n2\n> ")
  end)

  -- Keys the editor has not read when a line ends stay queued while the
  -- line runs; wherever the Ctrl-D lands, it ends the session after the line.
  it("leaves on a Ctrl-D sent right behind a line", function()
    term = start { report_exit = true }
    term:type("=6 * 7")
    term:key("Enter", "C-d")
    assert.are.equal(0, term:exit_status())
    assert.matches("\n> =6 %* 7\n42\n", term:screen())
  end)

  it("edits a line holding multi-byte characters character by character", function()
    term = start { locale = "C.UTF-8" }
    term:type('="añb"')
    term:key("Left", "Left", "BSpace")
    term:key("Enter")
    term:wait_for('\n"ab"\n> ')
  end)
end)

-- --------------------------------------------------------- without a terminal

describe("sonde without a terminal", function()
  it("runs a script from stdin when called with no arguments", function()
    local code, out, err = support.sonde { stdin = 'print("from stdin", 1 + 1)\n' }
    assert.are.equal(0, code, err)
    assert.are.equal("from stdin\t2\n", out)
  end)

  it("reports a script error from stdin with its line, exit 1", function()
    local code, _, err = support.sonde { stdin = 'local x = 1\nerror("piped boom")\n' }
    assert.are.equal(1, code)
    assert.matches("^sonde: stdin:2: piped boom\n", err)
  end)

  it("reads `sonde run -` from stdin too", function()
    local code, out = support.sonde("run", "-", "a1", { stdin = "print(arg[1])" })
    assert.are.equal(0, code)
    assert.are.equal("a1\n", out)
  end)

  it("rejects arguments to repl", function()
    local code, _, err = support.sonde("repl", "extra")
    assert.are.equal(2, code)
    assert.matches("sonde repl: takes no arguments", err)
  end)
end)

describe("sonde repl fed through a pipe", function()
  local function feed(input)
    local code, out, err = support.sonde("repl", { stdin = input })
    assert.are.equal(0, code, err)
    return out, err
  end

  it("prints values of expressions, nothing for statements, and goes on after errors", function()
    local out, err = feed(table.concat({
      "=1 + 1", "x = 10", "x * 2", '1, "two", nil', "x = = 1", 'error("boom")', "=x",
      "function add(a, b)", "  return a + b", "end", "add(2, 3)", "_ + 1",
    }, "\n") .. "\n")
    assert.are.equal('2\n20\n1\t"two"\tnil\n10\n5\n6\n', out)
    assert.matches("repl:1: unexpected symbol near '='\n", err, 1, true)
    assert.matches("repl:1: boom\nstack traceback:\n\trepl:1: in main chunk\n", err, 1, true)
    assert.falsy(err:find("lua/sonde/", 1, true))
  end)

  it("runs each line as a task: task.sleep and http work, a deadlock is reported", function()
    local ngx = servers.nginx()
    local out, err = feed(string.format('task.sleep(0.01) return "slept"\n=http.get(%q).status\n'
      .. "task.event():wait()\n=3\n", ngx.url .. "/health"))
    assert.are.equal('"slept"\n200\n3\n', out)
    assert.matches("deadlock", err)
    assert.matches("the line waits at repl:1", err, 1, true)
  end)

  it("prints a binary response body as a summary, not raw bytes", function()
    local out = feed('s = server.serve({}, function(s) s:get("/bin", function() '
      .. 'return {body = "\\0\\1\\2\\255\\27[2J", '
      .. 'headers = {["Content-Type"] = "application/octet-stream"}} end) end)\n'
      .. 'http.get(s.url .. "/bin")\n')
    assert.matches("^HTTP/1%.1 200 OK", out)
    assert.truthy(out:find("<binary body: 8 bytes, application/octet-stream; starts 00 01 02 ff 1b 5b 32 4a>", 1, true))
    assert.falsy(out:find("\27", 1, true))
  end)

  it("prints a response with the secrets it was sent, and echoes, redacted", function()
    local bin = servers.httpbin()
    local out = feed(string.format('http.redact{"x-mine"}\n'
      .. 'http.get(%q, {headers = {["X-Api-Key"] = "s3cr3t-key", ["X-Mine"] = "mine-hidden-1"}})\n'
      .. 'http.get(%q, {params = {["Set-Cookie"] = "sid=setcookie-secret"}})\n',
      bin.url .. "/anything?token=abc123tok", bin.url .. "/response-headers"))
    assert.matches('"X%-Api%-Key": "%[redacted%]"', out)
    assert.matches('"token": "%[redacted%]"', out)
    assert.matches("\nSet%-Cookie: %[redacted%]\n", out)
    for _, secret in ipairs({ "s3cr3t-key", "abc123tok", "mine-hidden-1", "setcookie-secret" }) do
      assert.falsy(out:find(secret, 1, true), secret)
    end
  end)

  it("reports errors of tasks a line left running, and errors in __tostring", function()
    local _, err = feed('task.spawn(function() error("background boom") end)\n=1\n'
      .. 'error(setmetatable({}, {__tostring = function() error("bad tostring") end}))\n')
    assert.matches("error in a background task: repl:1: background boom", err, 1, true)
    assert.matches("error object whose __tostring failed", err, 1, true)
  end)

  it("runs :load files in the session and lists modules on :help", function()
    local out, err = feed(":load specs/fixtures/repl/load_me.lua\n=loaded_probe\n"
      .. ":load specs/fixtures/repl/load_error.lua\n"
      .. ":load no/such.lua\n:help\n:frobnicate\n")
    assert.matches('^{"from": "load_me", "n": 3}\n"set by load_me.lua"\n', out)
    assert.matches("load_error.lua:3: raised in a loaded file\nstack traceback:\n", err, 1, true)
    assert.matches("load_error.lua:5: in main chunk", err, 1, true)
    assert.matches("cannot load no/such.lua: no such file or not readable", err, 1, true)
    assert.matches("unknown command :frobnicate", err, 1, true)
    for _, m in ipairs(repl.MODULES) do
      assert.matches("\n  " .. m[1] .. " +[^\n]+\n", out)
    end
  end)

  it("loads a file as Lua source only, never as bytecode", function()
    local path = os.tmpname()
    finally(function() os.remove(path) end)
    support.write_file(path, string.dump(loadstring('print("planted")')))
    local out, err = feed(":load " .. path .. "\n=1\n")
    assert.are.equal("1\n", out)
    assert.matches("cannot load " .. path .. ": is LuaJIT bytecode, not Lua source", err, 1, true)
  end)

  it("ends on SIGTERM, cancelling the running line, exit 143", function()
    local p = process.spawn { support.bin, "repl" }
    finally(function() p:kill("KILL") end)
    p:write("=1 + 1\ntask.sleep(60)\n")
    p:wait_output("2", 20)
    p:kill("TERM")
    assert.are.equal(143, p:wait(20))
    assert.matches("terminated at repl:1", p:stderr(), 1, true)
  end)

  it("names the syntax error of a chunk left unfinished at the end of input", function()
    local _, err = feed("function never_closed()\n  return 1\n")
    assert.matches("'end' expected (to close 'function' at line 1) near '<eof>'", err, 1, true)
  end)
end)

-- ----------------------------------------------------------- completing

describe("repl.complete", function()
  before_each(function()
    _G.repl_probe = setmetatable({ alpha = 1, beta = function() end, _hidden = 2 },
      { __index = { inherited = true, method = function() end } })
  end)
  after_each(function() _G.repl_probe = nil end)

  it("completes fields of live values after a dot, hiding _names unless asked", function()
    assert.are.same({ "repl_probe.alpha" }, repl.complete("x = repl_probe.a", "repl_probe.a"))
    assert.are.same({ "repl_probe.alpha", "repl_probe.beta", "repl_probe.inherited", "repl_probe.method" },
      repl.complete("repl_probe.", "repl_probe."))
    assert.are.same({ "repl_probe._hidden" }, repl.complete("repl_probe._", "repl_probe._"))
  end)

  it("completes only methods after a colon, strings included", function()
    assert.are.same({ "repl_probe:beta", "repl_probe:method" }, repl.complete("repl_probe:", "repl_probe:"))
    _G.repl_text = "abc"
    finally(function() _G.repl_text = nil end)
    assert.are.same({ "repl_text:upper" }, repl.complete("repl_text:up", "repl_text:up"))
  end)

  it("completes globals, keywords and commands", function()
    assert.are.same({ "repl_probe" }, repl.complete("repl_pr", "repl_pr"))
    assert.are.same({ "function" }, repl.complete("funct", "funct"))
    assert.are.same({ ":help" }, repl.complete(":he", ":he"))
    assert.are.same({}, repl.complete("nothing_like_this.", "nothing_like_this."))
  end)

  it("completes :load paths", function()
    assert.are.same({ "load_error.lua", "load_me.lua" }, repl.complete(":load specs/fixtures/repl/load_", "load_"))
  end)
end)

describe("repl.compile", function()
  it("compiles expressions to return their values, statements as they are", function()
    assert.are.same({ 3 }, { repl.compile("1 + 2")() })
    assert.are.same({ 1, 2 }, { repl.compile("=1, 2")() })
    assert.are.equal(0, select("#", repl.compile("local x = 1")()))
  end)

  it("tells an unfinished chunk from a wrong one", function()
    local fn, err, more = repl.compile("for i = 1, 3 do")
    assert.is_nil(fn)
    assert.matches("<eof>", err)
    assert.is_true(more)
    fn, err, more = repl.compile("x = = 1")
    assert.is_nil(fn)
    assert.is_false(more)
    assert.matches("unexpected symbol", err)
  end)
end)
