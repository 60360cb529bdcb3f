-- sonde.repl: the interactive prompt (`sonde repl`, or `sonde` on a terminal).
--
-- Every line runs as a task on the host's loop, and the loop keeps turning
-- while the prompt waits: stdin is a watched descriptor (host/repl.c feeds
-- libedit from it), so servers and background tasks started at the prompt
-- go on working while the next line is typed. Values print pretty: tables
-- as indented JSON-like text, HTTP responses as status line, headers and
-- body. Every size is bounded, so a huge, cyclic or binary value never
-- floods the terminal. Ctrl-C cancels the running line (its task, and so
-- its I/O); Ctrl-D leaves, stopping the servers the session started.
--
-- Without a terminal (`sonde repl < file`) lines are read as they come, with
-- no prompt or editing, and run the same way: results on stdout, errors on
-- stderr.
local task = require("sonde.task")
local trace = require("sonde.lib.trace")
local loop = require("sonde.c.loop")
local pretty = require("sonde.lib.pretty")

local M = {}

-- Values print as sonde.lib.pretty renders them; the REPL adds colour.
local show, colored, metatable_of = pretty.show, pretty.colored, pretty.metatable_of

-- --------------------------------------------------------------- modules

-- The sonde.* modules the REPL makes globals, with one line for :help.
M.MODULES = {
  { "http", "HTTP client: http.get(url), http.post(url, {json=}), http.client{base_url=}; r.status, r:json()" },
  { "json", "JSON: json.decode(s), json.encode(v), json.pretty(v), json.null, json.array(t)" },
  { "task", "tasks: task.spawn(fn), task.sleep(s), task.gather(f, g), task.timeout(s, fn), task.event()" },
  { "clock", "virtual time: clock.mocked{autojump=true}, clock.virtual(fn), clock.pending()" },
  { "events", "Prefect events: events.emitted(), events.client(), events.wait_for(criteria)" },
  { "fixture", "real servers: fixture.server{cmd=, health=}, fixture.unused_port()" },
  { "server", "HTTP server on this loop: server.serve({port=}, function(s) s:get(path, fn) end)" },
  { "livecheck", "end-to-end checks through a running system: livecheck.app{...}, cases, signals, reports" },
  { "process", "child processes: process.run{\"cmd\", ...}, process.spawn{...}" },
  { "redis", "Redis client: r = redis.connect(\"redis://127.0.0.1:6379/0\"), r:get(k), r:command(...), " ..
      "r:pipeline(fn)" },
}

-- Requires each module; a missing or broken one is noted, not fatal.
local function load_modules()
  local loaded, missing = {}, {}
  for _, m in ipairs(M.MODULES) do
    local ok, mod = pcall(require, "sonde." .. m[1])
    if ok then
      loaded[m[1]] = mod
    else
      missing[m[1]] = tostring(mod):match("^[^\n]*")
    end
  end
  return loaded, missing
end

-- The global `sonde`: sonde.http and the like, required on first use.
local function sonde_namespace()
  return setmetatable({}, { __index = function(t, k)
    if type(k) ~= "string" then return nil end
    local ok, mod = pcall(require, "sonde." .. k)
    if not ok then return nil end
    rawset(t, k, mod)
    return mod
  end })
end

-- -------------------------------------------------------------- completion

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in", "local",
  "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }
local COMMANDS = { ":help", ":load ", ":quit" }

local function safe_index(v, k)
  local ok, x = pcall(function() return v[k] end)
  if ok then return x end
end

-- Names reachable with `.` (or `:` when methods) on v: its own string keys,
-- then those of its __index tables; string methods for strings.
local function names_of(v, methods)
  local names, seen = {}, {}
  local function add(t, only_functions)
    for k, x in next, t do
      if type(k) == "string" and k:match("^[%a_][%w_]*$") and not seen[k]
        and (not only_functions or type(x) == "function" or metatable_of(x) and rawget(metatable_of(x), "__call")) then
        seen[k] = true
        names[#names + 1] = k
      end
    end
  end
  local t = type(v) == "string" and string or v
  for _ = 1, 8 do
    if type(t) ~= "table" then break end
    add(t, methods)
    local mt = metatable_of(t)
    t = mt and rawget(mt, "__index")
    -- an __index function usually looks methods up in the metatable itself
    if type(t) == "function" then add(mt, true) end
  end
  local kept = {}
  for _, name in ipairs(names) do
    if name:sub(1, 2) ~= "__" then kept[#kept + 1] = name end
  end
  return kept
end

-- Follows a dotted path of names from the globals; nil when any step fails.
local function resolve(path)
  local v = _G
  for name in path:gmatch("[^.]+") do
    if not name:match("^[%a_][%w_]*$") then return nil end
    v = safe_index(v, name)
    if v == nil then return nil end
  end
  return v
end

local function starting_with(list, prefix, out)
  for _, name in ipairs(list) do
    if name:sub(1, #prefix) == prefix then out[#out + 1] = name end
  end
end

local function complete_path(line, word)
  local dir = (line:match("^%s*:load%s+(.*)$") or ""):match("^(.*/)") or ""
  local list = loop.scandir(dir == "" and "." or dir) or {}
  local names = {}
  for _, e in ipairs(list) do
    if e.name:sub(1, #word) == word and (e.dir or e.name:match("%.lua$")) then
      names[#names + 1] = e.name .. (e.dir and "/" or "")
    end
  end
  return names
end

-- complete(line, word) -> sorted candidates replacing word, the text being
-- completed (line is everything before the cursor).
function M.complete(line, word)
  local out = {}
  if line:match("^%s*:load%s") then
    out = complete_path(line, word)
  elseif word:sub(1, 1) == ":" and line:match("^%s*:[%w]*$") then
    starting_with(COMMANDS, word, out)
  else
    local base, sep, partial = word:match("^(.-)([.:])([%w_]*)$")
    if base and base ~= "" then
      local v = resolve(base)
      if v ~= nil then
        local names = names_of(v, sep == ":")
        if v == rawget(_G, "sonde") then
          for _, m in ipairs(M.MODULES) do
            if package.loaded["sonde." .. m[1]] then names[#names + 1] = m[1] end
          end
        end
        local hidden = partial:sub(1, 1) ~= "_"
        for _, name in ipairs(names) do
          if name:sub(1, #partial) == partial and not (hidden and name:sub(1, 1) == "_") then
            out[#out + 1] = base .. sep .. name
          end
        end
      end
    elseif not base then
      local names = names_of(_G, false)
      starting_with(names, word, out)
      starting_with(KEYWORDS, word, out)
    end
  end
  table.sort(out)
  local unique = {}
  for i, s in ipairs(out) do
    if s ~= out[i - 1] then unique[#unique + 1] = s end
  end
  return unique
end

-- ---------------------------------------------------------------- compiling

local function incomplete(err) return err:sub(-7) == "'<eof>'" end

-- `return f(x)` would be a tail call, and an error raised by f would lose
-- the line it came from: the values pass through a call instead.
local RETURN = "return (function(...) return ... end)(%s\n)"

-- compile(src[, chunkname]) -> fn, or nil, err, incomplete. As lua.c does,
-- `=expr` and a bare expression compile as `return <src>`, so their values
-- print; incomplete is true when more lines could finish the chunk.
function M.compile(src, chunkname)
  chunkname = chunkname or "=repl"
  local expr = src:match("^%s*=(.*)$")
  local fn, err = loadstring(RETURN:format(expr or src), chunkname)
  if fn or expr then return fn, err, err ~= nil and incomplete(err) end
  fn, err = loadstring(src, chunkname)
  if fn then return fn end
  return nil, err, incomplete(err)
end

-- ------------------------------------------------------------------- input

local INTERRUPTED = {} -- read_line's answer when Ctrl-C dropped the input

-- A wait for stdin: the watch stops however the wait ends.
local Readable = {}
Readable.__index = Readable
function Readable:forget()
  if not self.fired then
    task.drop_token(self.token)
    self.editor:unwatch()
  end
end

local Input = {}
Input.__index = Input

local function new_input(editor, terminal)
  return setmetatable({ editor = editor, terminal = terminal, buffer = "", eof = false }, Input)
end

-- Waits until stdin has input or Ctrl-C arrives.
function Input:wait()
  local me = task.current()
  local w = setmetatable({ editor = self.editor }, Readable)
  w.token = task.new_token(function()
    w.fired = true
    task.wake(me)
  end)
  local ok, err = self.editor:watch(w.token)
  if not ok then
    task.drop_token(w.token)
    error("sonde repl: cannot watch stdin: " .. tostring(err), 0)
  end
  self.waiting = me
  local done, e = pcall(task.wait, w, nil, "input")
  self.waiting = nil
  if not done then error(e, 0) end
end

-- Called from the interrupt handler: ends the wait for input, if any.
function Input:interrupt()
  if not self.waiting then return false end
  self.interrupted = true
  task.wake(self.waiting)
  return true
end

function Input:take_interrupt()
  local was = self.interrupted
  self.interrupted = false
  return was
end

-- read_line(prompt) -> the line, nil at the end of input, or INTERRUPTED.
function Input:read_line(prompt)
  if self.terminal then return self:edit_line(prompt) end
  return self:plain_line()
end

function Input:edit_line(prompt)
  local editor = self.editor
  editor:prompt(prompt)
  while true do
    self:wait()
    if self:take_interrupt() then
      editor:pause()
      io.stdout:write("^C\n")
      return INTERRUPTED
    end
    local status, line = editor:feed()
    if status == "line" then return line end
    if status == "eof" then
      io.stdout:write("\n")
      return nil
    end
  end
end

function Input:plain_line()
  while true do
    local nl = self.buffer:find("\n", 1, true)
    if nl then
      local line = self.buffer:sub(1, nl - 1)
      self.buffer = self.buffer:sub(nl + 1)
      return (line:gsub("\r$", ""))
    end
    if self.eof then
      local rest = self.buffer
      self.buffer = ""
      return rest ~= "" and rest or nil
    end
    self:wait()
    if self:take_interrupt() then return nil end
    local data, err, name = self.editor:read()
    if data == "" or (data == nil and name ~= "EAGAIN") then
      if err then io.stderr:write("sonde repl: reading stdin: ", err, "\n") end
      self.eof = true
    elseif data then
      self.buffer = self.buffer .. data
    end
  end
end

-- Keeps a line in the history; says once if the file cannot be written.
function Input:remember(line)
  if not self.terminal then return end
  local ok, err = self.editor:add_history(line)
  if not ok and not self.history_warned then
    self.history_warned = true
    io.stdout:write("sonde repl: ", err, " ", tostring(self.history), " (history stays in memory)\n")
  end
end

-- ---------------------------------------------------------------- session

local Session = {}
Session.__index = Session

local PROMPT, CONTINUE = "> ", ".. "

local function new_session(editor, terminal)
  local color = terminal and loop.isatty(1) and os.getenv("NO_COLOR") == nil and os.getenv("TERM") ~= "dumb"
  local s = setmetatable({ editor = editor, terminal = terminal, color = color,
    input = new_input(editor, terminal), scope = task.scope("repl") }, Session)
  s.out = io.stdout
  s.err = terminal and io.stdout or io.stderr -- one stream on a terminal keeps the order
  return s
end

function Session:paint(kind, text) return self.color and colored(kind, text) or text end

function Session:say_error(text)
  self.out:flush()
  self.err:write(self:paint("error", text), "\n")
  self.err:flush()
end

-- Prints a line's results: each on its own line when any spans lines.
function Session:show_results(results)
  if results.n == 0 then return end
  rawset(_G, "_", results[1])
  local texts, multi = {}, false
  for i = 1, results.n do
    texts[i] = show(results[i], self.color)
    multi = multi or texts[i]:find("\n") ~= nil
  end
  self.out:write(table.concat(texts, multi and "\n" or "\t"), "\n")
  self.out:flush()
end

-- The first user frame of a traceback, as "file:line".
local function first_frame(tb)
  return trace.trim(tb):match("\n%s*([^\n]-:%d+):")
end

-- Runs fn as the line's task and prints what came of it.
function Session:run(fn, ...)
  local t = task.spawn_in(self.scope, fn, ...)
  t.name = "repl line"
  self.running = t
  local ok, why = pcall(t.join, t)
  local stuck = not ok and not t:done() -- our own wait failed: every task waits (deadlock)
  local where = stuck and t.co and first_frame(debug.traceback(t.co))
  if stuck then
    t:cancel("the REPL's wait for it failed")
    pcall(t.join, t)
  end
  self.running = nil
  t:observe()
  if stuck then
    self:say_error(task.describe(why) .. (where and (" (the line waits at " .. where .. ")") or ""))
  elseif t.err ~= nil then
    if self.interrupted == t then
      local at = first_frame(t.interrupted_at)
      -- the terminal has echoed ^C on the line's last output line
      self:say_error((self.terminal and "\n" or "") .. self.interrupt_word .. (at and (" at " .. at) or ""))
    else
      self:say_error(trace.format(t.err, t.traceback))
    end
  else
    self:show_results(t.results)
  end
  self.interrupted = nil
end

-- Cancels the running line, remembering where it was.
function Session:cancel_line(why)
  local t = self.running
  if not t or t:done() then return false end
  if t.co then t.interrupted_at = debug.traceback(t.co) end
  self.interrupted, self.interrupt_word = t, why
  t:cancel(why)
  return true
end

-- Ctrl-C cancels the running line or drops the line being typed; SIGTERM
-- ends the session (a second one ends the process, as the host does).
function Session:on_interrupt()
  local crepl = require("sonde.c.repl")
  if crepl.take_terminate() then
    self.quit, self.terminated = true, true
    self:cancel_line("terminated")
    self.input:interrupt()
    return
  end
  crepl.reset_interrupts()
  if self:cancel_line("interrupted") then return end
  if not self.input:interrupt() and not self.terminal then self.quit = true end
end

-- Errors of tasks that lines left running, reported before the next prompt.
function Session:report_lost()
  local lost = {}
  for t in pairs(self.scope.lost) do lost[#lost + 1] = t end
  if #lost == 0 then return end
  table.sort(lost, function(a, b) return a.serial < b.serial end)
  self.scope.lost = {}
  for _, t in ipairs(lost) do
    self:say_error("error in a background task: " .. trace.format(t.err, t.traceback))
  end
end

function Session:help()
  local lines = {
    "Each line runs as a task on the live loop: http.get(...), task.sleep(...) and servers work at the prompt.",
    "  expr or =expr   print the value (tables as JSON-like text, responses as status, headers, body); _ is the last",
    "  :load FILE      run a Lua file in this session",
    "  :help           this text;  :quit or Ctrl-D leaves;  Ctrl-C cancels the running line",
    "  Tab completes globals, sonde.* modules and fields after . and :",
    "modules (globals; also sonde.NAME):",
  }
  for _, m in ipairs(M.MODULES) do
    local state = self.missing[m[1]] and ("(not available: " .. self.missing[m[1]] .. ")") or m[2]
    lines[#lines + 1] = string.format("  %-10s %s", m[1], state)
  end
  self.out:write(table.concat(lines, "\n"), "\n")
end

function Session:load(path)
  if path == "" then return self:say_error(":load needs a file: :load path/to/file.lua") end
  local fn, err = loadfile(path, "t")
  if not fn then return self:say_error("cannot load " .. trace.load_message(path, err)) end
  self:run(fn)
end

function Session:command(line)
  local name, rest = line:match("^%s*:(%S*)%s*(.-)%s*$")
  if name == "help" or name == "h" or name == "?" then return self:help() end
  if name == "load" or name == "l" then return self:load(rest) end
  if name == "quit" or name == "q" or name == "exit" then
    self.quit = true
    return
  end
  self:say_error("unknown command :" .. name .. " (:help lists them)")
end

-- read_chunk() -> {fn=} | {command=} | {err=} | nil at the end of input.
-- Lines are added until the chunk compiles or fails for a reason other
-- than its end; two empty lines give up on an unfinished one.
function Session:read_chunk()
  local lines = {}
  while true do
    local line = self.input:read_line(#lines == 0 and PROMPT or CONTINUE)
    if line == nil then
      if #lines > 0 then return { err = select(2, M.compile(table.concat(lines, "\n"))) } end
      return nil
    end
    if line == INTERRUPTED then
      if self.quit then return nil end
      lines = {}
    elseif #lines > 0 or line:find("%S") then
      self.input:remember(line)
      if #lines == 0 and line:match("^%s*:") then return { command = line } end
      lines[#lines + 1] = line
      local fn, err, more = M.compile(table.concat(lines, "\n"))
      if fn then return { fn = fn } end
      local gave_up = #lines >= 3 and lines[#lines] == "" and lines[#lines - 1] == ""
      if not more or gave_up then return { err = err } end
    end
  end
end

function Session:loop()
  while not self.quit do
    self:report_lost()
    local chunk = self:read_chunk()
    if chunk == nil then break end
    if chunk.command then
      self:command(chunk.command)
    elseif chunk.err then
      self:say_error(chunk.err)
    else
      self:run(chunk.fn)
    end
  end
  self:report_lost()
end

-- Makes the sonde modules globals and `print` aware of the prompt.
function Session:install_globals()
  local loaded, missing = load_modules()
  self.missing = missing
  for name, mod in pairs(loaded) do
    if rawget(_G, name) == nil then rawset(_G, name, mod) end
  end
  if rawget(_G, "sonde") == nil then rawset(_G, "sonde", sonde_namespace()) end
  if not self.terminal then return end
  local raw_print, editor = print, self.editor
  -- output from a background task while a prompt is shown goes above it
  rawset(_G, "print", function(...)
    if not editor:editing() then return raw_print(...) end
    io.stdout:write("\r\27[K")
    raw_print(...)
    io.stdout:flush()
    editor:redisplay()
  end)
end

-- Stops what the session started: its tasks, servers and fixture sessions.
function Session:shutdown()
  local lost = task.close_scope(self.scope, "the REPL ended")
  for _, t in ipairs(lost) do self:say_error("error in a background task: " .. trace.format(t.err, t.traceback)) end
  local server = package.loaded["sonde.server"]
  local fixture = package.loaded["sonde.fixture"]
  task.run(function()
    if server and server._started then
      for s in pairs(server._started) do pcall(s.close, s, 1) end
    end
    if fixture then fixture.teardown_sessions() end
  end)
end

local function history_file()
  local path = os.getenv("SONDE_HISTORY")
  if path then return path ~= "" and path or nil end
  local home = os.getenv("HOME")
  return home and home ~= "" and (home .. "/.sonde_history") or nil
end

-- main() -> exit code: the REPL on stdin (what `sonde repl` runs).
function M.main()
  local crepl = require("sonde.c.repl")
  local terminal = loop.isatty(0)
  local history = terminal and history_file() or nil
  local editor, err = crepl.open { edit = terminal, history = history,
    history_size = tonumber(os.getenv("SONDE_HISTORY_SIZE") or "") }
  if not editor then
    io.stderr:write("sonde repl: ", err, "\n")
    return 2
  end
  local session = new_session(editor, terminal)
  session.input.history = history
  editor:set_completer(function(line, word) return M.complete(line, word) end)
  local raw_print = print
  session:install_globals()
  if terminal then
    io.stdout:write("sonde REPL: each line runs as a task on the live loop. :help lists modules and commands, ",
      "Ctrl-D leaves.\n")
  end
  local main = task.spawn_in(task.scope("repl main"), function() session:loop() end)
  local remove = task.on_interrupt(function() session:on_interrupt() end)
  task.run_until_done(main)
  remove()
  rawset(_G, "print", raw_print)
  editor:pause()
  session:shutdown()
  editor:close()
  if main.err ~= nil then
    io.stderr:write("sonde repl: internal error: ", trace.format(main.err, main.traceback), "\n")
    return 2
  end
  return session.terminated and 143 or 0
end

return M
