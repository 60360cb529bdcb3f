-- sonde.process: child processes that a task can wait on, never orphaned.
--
-- process.spawn{"cmd", "arg", env={NAME="v", DROP=false}, cwd=, stdin=,
-- output_limit=, fd3=} starts argv directly (a shell only if you spawn one).
-- The child leads its own process group, dies with the host
-- (PR_SET_PDEATHSIG) and is stopped when the host exits, and so is any
-- descendant that left its group (host/orphans.h). stdout and stderr are
-- captured; the last output_limit bytes (default 1 MiB) of each are kept,
-- and read as streams line by line as they arrive (read_line, lines,
-- wait_output). With fd3, the child's fd 3 is one more output pipe, a
-- channel apart from stdout (sonde's --jobs workers send results on it)
-- that loses nothing: its bytes wait for their reader. Under the spec
-- runner, a process still running when the test that started it ends is
-- stopped then (one started by a block's setup, when the block ends), as
-- the servers a test starts are closed.
local cproc = require("sonde.c.process")
local loop = require("sonde.c.loop")
local task = require("sonde.task")
local options_check = require("sonde.lib.options")

local M = { signals = cproc.signals }

local DEFAULT_LIMIT = 1024 * 1024 -- output_limit: bytes kept of each stream

local Process = {}
Process.__index = Process
Process.__tostring = function(p) return string.format("process<%s pid %d>", p.argv[1], p.pid) end

-- What a spawn spec may hold besides its argv, and the type of each (env
-- is checked by split_env). process.run also takes a timeout.
local SPAWN_OPTIONS = { env = "table", cwd = "string", stdin = "string", output_limit = "count", fd3 = "boolean" }
local RUN_OPTIONS = { timeout = "seconds" }
for k, v in pairs(SPAWN_OPTIONS) do RUN_OPTIONS[k] = v end

-- Checks a spec; returns its argv. Errors are raised at level 0: the
-- public entry re-raises them at its caller's line.
local function check_spec(what, spec, options)
  if type(spec) ~= "table" then error(what .. ": expected a table {\"cmd\", \"arg\", ...}, got " .. type(spec), 0) end
  if type(spec[1]) ~= "string" then error(what .. ": the first array item must be the command (a string)", 0) end
  local argv = {}
  for i = 1, #spec do
    local a = spec[i]
    if type(a) == "number" then a = tostring(a) end
    if type(a) ~= "string" then
      error(string.format("%s: argument %d must be a string, got %s", what, i, type(a)), 0)
    end
    argv[i] = a
  end
  for k, v in pairs(spec) do
    if argv[k] == nil then
      local want = options[k]
      if type(k) == "number" then
        error(string.format("%s: argument %s comes after a nil (argv must be a list without holes)", what, tostring(k)),
            0)
      elseif k == "timeout" and not want then
        error(what .. ": unknown option 'timeout' (a spawned process has none: give it to p:wait)", 0)
      elseif not want then
        error(string.format("%s: unknown option '%s' (expected one of: %s)", what, tostring(k),
            options_check.names(options)),
          0)
      end
      options_check.check_value(what, k, v, want, 0)
    end
  end
  return argv
end

local function split_env(what, env)
  if env == nil then return nil, nil end
  local set, unset = {}, {}
  for k, v in pairs(env) do
    if type(k) ~= "string" or k == "" or k:find("=", 1, true) then
      error(what .. ": env names must be non-empty strings without '=', got " .. tostring(k), 0)
    end
    if v == false then
      unset[#unset + 1] = k
    elseif type(v) == "string" or type(v) == "number" then
      set[#set + 1] = k .. "=" .. tostring(v)
    else
      error(what .. ": env." .. k .. " must be a string, number or false, got " .. type(v), 0)
    end
  end
  return set, unset
end

-- The processes running now: each knows the scope that started it, so the
-- runner can stop what a test or a block's hooks left running.
local running = {}

-- A process not yet started, and the token its exit completes.
local function new_process(argv, spec)
  local p = setmetatable({ argv = argv, exit_event = task.event(), scope = task.current_scope(), readers = {},
    arrivals = {}, output_limit = spec.output_limit or DEFAULT_LIMIT, fd3 = spec.fd3 or false }, Process)
  local token = task.new_token(function(code, sig)
    p.code = sig == 0 and code or nil
    p.signal = sig ~= 0 and (cproc.signals[sig] or sig) or nil
    running[p] = nil
    p.exit_event:set()
  end)
  return p, token
end

local function mark_started(p, h)
  p.handle, p.pid = h, h:pid()
  running[p] = true
  return p
end

-- Starts the child a spec describes; raises at level 0.
local function start(what, spec, options)
  local argv = check_spec(what, spec, options)
  local set, unset = split_env(what, spec.env)
  local p, token = new_process(argv, spec)
  local h, err = cproc.spawn { argv = argv, env_set = set, env_unset = unset, cwd = spec.cwd,
    tail = p.output_limit, fd3 = spec.fd3, token = token }
  if not h then
    task.drop_token(token)
    error(what .. ": " .. err, 0)
  end
  mark_started(p, h)
  if spec.stdin then
    h:write(spec.stdin)
    h:close_stdin()
  end
  return p
end

function M.spawn(spec)
  local ok, p = pcall(start, "process.spawn", spec, SPAWN_OPTIONS)
  if not ok then error(p, 2) end
  return p
end

-- _fork(count, name) -> count processes that are copies of this one, made
-- by fork without exec (sonde.runner.jobs' workers), each with fd 3's
-- stream | nil, i, fd in copy i, whose results go to fd | raises. Only a
-- process that has started none may (process.c's sonde_proc_fork); `name`
-- stands for the copies' command line in what is said of them.
function M._fork(count, name)
  local list, tokens = {}, {}
  for i = 1, count do list[i], tokens[i] = new_process({ name }, { fd3 = true }) end
  local handles, fd = cproc.fork { tokens = tokens, tail = DEFAULT_LIMIT }
  if type(handles) == "table" then
    for k = 1, count do mark_started(list[k], handles[k]) end
    return list
  end
  for _, token in ipairs(tokens) do task.drop_token(token) end -- a copy's are the host's
  if handles == nil then error("process._fork: " .. fd, 2) end
  return nil, handles, fd
end

-- wait([timeout[, real]]) -> code, signal: code is nil when a signal ended
-- it, and signal is its name ("TERM", "KILL"...). Raises a timeout error.
-- With `real`, the timeout runs on real time even under a virtual clock.
function Process:wait(timeout, real)
  task.check_timeout(timeout)
  if not self.exit_event:is_set() then
    loop.real_pending(1) -- a real operation: virtual time must not jump past it
    local ok, e = pcall(self.exit_event.wait, self.exit_event, timeout, real)
    loop.real_pending(-1)
    if not ok then
      if task.is_timeout(e) then
        e = task.new_error("timeout", string.format("timeout: %s did not exit within %gs", tostring(self), timeout))
      end
      error(e, 2)
    end
  end
  return self.code, self.signal
end

-- kill([signal="TERM"]): signals the child's process group. Returns true, or
-- false and a reason when the child has already exited.
function Process:kill(sig)
  sig = sig or "TERM"
  local num = type(sig) == "number" and sig or cproc.signals[tostring(sig):upper():gsub("^SIG", "")]
  if not num then error("process:kill: unknown signal " .. tostring(sig), 2) end
  if self.exit_event:is_set() then return false, "already exited" end
  local ok, err = self.handle:signal(num)
  return ok or false, err
end

function Process:running() return not self.exit_event:is_set() end
function Process:stdout() return (self.handle:stdout()) end
function Process:stderr() return (self.handle:stderr()) end

function Process:write(s)
  local ok, err = self.handle:write(s)
  if not ok then error("process:write: " .. err, 2) end
end

function Process:close_stdin() self.handle:close_stdin() end

-- stop([grace=10[, real]]): TERM, then KILL after grace seconds (real ones
-- with `real`); returns code, signal.
function Process:stop(grace, real)
  if not self:running() then return self.code, self.signal end
  self:kill("TERM")
  local ok, err = pcall(self.wait, self, grace or 10, real)
  if not ok then
    self:kill("KILL")
    if task.is_cancelled(err) then error(err, 0) end -- stopped, but the caller was cancelled
    self:wait()
  end
  return self.code, self.signal
end

-- ------------------------------------------------------- output streams

-- last_lines(text, n) -> the last n lines of text that are not empty.
function M.last_lines(text, n)
  local lines = {}
  for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return table.concat(lines, "\n", math.max(1, #lines - n + 1))
end

-- A reader of one output stream: its place in the stream (bytes from the
-- first), the lines it has whole and not handed out yet, and the pieces of
-- the line it is still reading. C reads the pipe as bytes arrive; a reader
-- that has no whole line asks C to wake it at the next bytes (notify).
local Reader = {}
Reader.__index = Reader

local function new_reader(p, stream)
  return setmetatable({ p = p, stream = stream, pos = 0, lines = {}, lost_before = {}, first = 1, last = 0,
    pieces = {}, piece_bytes = 0, lost = 0, cut_at = stream ~= "fd3" and p.output_limit },
    Reader)
end

-- A line longer than output_limit is cut to its last output_limit bytes
-- (what the tail could hold of it); fd 3 keeps whole lines.
function Reader:add(piece)
  local pieces = self.pieces
  pieces[#pieces + 1] = piece
  self.piece_bytes = self.piece_bytes + #piece
  if self.cut_at and self.piece_bytes > self.cut_at then
    local kept = table.concat(pieces):sub(-self.cut_at)
    self.lost = self.lost + self.piece_bytes - #kept
    self.pieces, self.piece_bytes = { kept }, #kept
  end
end

function Reader:end_line()
  self.last = self.last + 1
  self.lines[self.last] = #self.pieces == 1 and self.pieces[1] or table.concat(self.pieces)
  self.lost_before[self.last] = self.lost > 0 and self.lost or nil
  self.pieces, self.piece_bytes, self.lost = {}, 0, 0
end

-- Takes the bytes that arrived since the last look, into lines.
function Reader:take()
  local chunk, pos, skipped, ended = self.p.handle:read(self.stream, self.pos)
  self.pos = pos
  self.lost = self.lost + skipped -- slid out of the tail before this reader came
  local at = 1
  while true do
    local nl = chunk:find("\n", at, true)
    if not nl then break end
    self:add(chunk:sub(at, nl - 1))
    self:end_line()
    at = nl + 1
  end
  if at <= #chunk then self:add(chunk:sub(at)) end
  if ended and self.piece_bytes + self.lost > 0 then self:end_line() end -- the last line, without "\n"
  self.ended = ended
end

-- Waits until C says bytes came to p's `stream` or it ended, or until
-- `deadline` (task.now() seconds; nil: none): a real operation, as a
-- process wait is. Every reader of a stream waits on the same arrival, as
-- C wakes one token a stream.
local function await_bytes(p, stream, deadline)
  local arrival = p.arrivals[stream]
  if not arrival then
    arrival = { event = task.event() }
    p.arrivals[stream] = arrival
  end
  local event = arrival.event
  event:clear()
  if not arrival.armed then
    arrival.armed = true
    p.handle:notify(stream, task.new_token(function()
      arrival.armed = false
      event:set()
    end))
  end
  loop.real_pending(1)
  local ok, e = pcall(event.wait, event, deadline and math.max(0, deadline - task.now()))
  loop.real_pending(-1)
  if not ok then error(e, 0) end
end

-- next_line(deadline) -> the next line and the bytes lost before it (nil:
-- none), or nil once the stream has ended; raises a timeout error.
function Reader:next_line(deadline)
  while self.first > self.last do
    if self.ended then return nil end
    self:take()
    if self.first > self.last and not self.ended then await_bytes(self.p, self.stream, deadline) end
  end
  local i = self.first
  local line, lost = self.lines[i], self.lost_before[i]
  self.lines[i], self.lost_before[i], self.first = nil, nil, i + 1
  return line, lost
end

local STREAMS = { stdout = true, stderr = true, fd3 = true }

-- The stream a call names (stdout when nil); raises `level` frames up.
local function check_stream(what, p, stream, level)
  if stream == nil then return "stdout" end
  if not STREAMS[stream] then
    error(string.format('%s: the stream must be "stdout", "stderr" or "fd3", got %s', what, tostring(stream)),
      level + 1)
  end
  if stream == "fd3" and not p.fd3 then
    error(what .. ": " .. tostring(p) .. " has no fd3 (spawn it with fd3 = true)", level + 1)
  end
  return stream
end

-- The reader read_line and lines share: each line is handed out once.
local function shared_reader(p, stream)
  local r = p.readers[stream]
  if not r then
    r = new_reader(p, stream)
    p.readers[stream] = r
  end
  return r
end

-- The next line of a checked stream, within timeout seconds.
local function read_line(p, stream, timeout)
  local r = shared_reader(p, stream)
  local ok, line, lost = pcall(r.next_line, r, timeout and task.now() + timeout)
  if not ok then
    if task.is_timeout(line) then
      line = task.new_error("timeout", string.format("timeout: %s wrote no whole line to %s within %gs", tostring(p),
        stream, timeout))
    end
    error(line, 0)
  end
  return line, lost
end

-- read_line([timeout[, stream="stdout"]]) -> the stream's next line, without
-- its newline, and the number of bytes lost before it (nil: none; a reader
-- more than output_limit bytes behind loses the oldest); nil once the
-- stream has ended (the child exited or closed it) and every line was
-- read. The first call reads from the first byte still kept. Raises a
-- timeout error when no whole line comes in time.
function Process:read_line(timeout, stream)
  task.check_timeout(timeout)
  stream = check_stream("process:read_line", self, stream, 2)
  local line, lost = read_line(self, stream, timeout)
  return line, lost
end

-- lines([timeout[, stream="stdout"]]): for line, lost in p:lines() do ...
-- end reads as read_line does (the timeout is for each line).
function Process:lines(timeout, stream)
  task.check_timeout(timeout)
  stream = check_stream("process:lines", self, stream, 2)
  return function() return read_line(self, stream, timeout) end
end

-- The end of a wait_output error: how the process ended, when it is known
-- yet (a pipe may end just before its exit is seen), and the last lines of
-- the stream.
local function output_so_far(p, stream)
  local how = p.signal and "it was killed by SIG" .. p.signal or p.code and "it exited with code " .. p.code
  local last = stream ~= "fd3" and M.last_lines(p[stream](p), 10) or "" -- fd3 keeps nothing read
  local said = last == "" and "it wrote nothing there" or "its last lines:\n" .. last
  return how and (how .. "; " .. said) or said
end

-- wait_output(pattern[, timeout[, stream="stdout"]]) -> what
-- line:match(pattern) returns for the first line of the stream that
-- matches, from the first byte still kept (a line that came before the
-- call counts); read_line's place is not moved (on fd3, whose bytes are
-- read once, it is). Raises when the stream ends first or the timeout
-- passes, naming the pattern and the last lines.
function Process:wait_output(pattern, timeout, stream)
  if type(pattern) ~= "string" then
    error("process:wait_output: expected a pattern (a string), got " .. type(pattern), 2)
  end
  task.check_timeout(timeout)
  stream = check_stream("process:wait_output", self, stream, 2)
  local valid, problem = pcall(string.find, "", pattern)
  if not valid then error("process:wait_output: bad pattern '" .. pattern .. "': " .. problem, 2) end
  local r = stream == "fd3" and shared_reader(self, stream) or new_reader(self, stream)
  local deadline = timeout and task.now() + timeout
  while true do
    local ok, line = pcall(r.next_line, r, deadline)
    if not ok then
      if not task.is_timeout(line) then error(line, 0) end -- cancelled
      error(task.new_error("timeout", string.format("timeout: %s wrote no line matching '%s' to %s within %gs; %s",
        tostring(self), pattern, stream, timeout, output_so_far(self, stream))), 2)
    end
    if line == nil then
      error(string.format("process:wait_output: %s ended its %s before a line matched '%s'; %s", tostring(self),
        stream, pattern, output_so_far(self, stream)), 2)
    end
    local found = { pcall(string.match, line, pattern) }
    if not found[1] then error("process:wait_output: bad pattern '" .. pattern .. "': " .. found[2], 2) end
    if found[2] ~= nil then return unpack(found, 2) end
  end
end

-- wait_exit(pid[, timeout]): returns once process pid has exited, whether
-- or not this host started it (a daemon's pid, what a child left behind);
-- at once when no such process exists. Raises a timeout error. A zombie
-- counts as exited; no exit status is known for a process not our child.
function M.wait_exit(pid, timeout)
  if type(pid) ~= "number" or pid ~= math.floor(pid) then
    error("process.wait_exit: expected a pid (an integer), got " .. (type(pid) == "number" and pid or type(pid)), 2)
  end
  task.check_timeout(timeout)
  local exited = task.event()
  local token = task.new_token(function() exited:set() end)
  local watch, err = cproc.watch_exit(pid, token)
  if not watch then
    task.drop_token(token)
    if watch == false then return end
    error("process.wait_exit: cannot watch pid " .. pid .. ": " .. err, 2)
  end
  loop.real_pending(1) -- a real operation: virtual time must not jump past it
  local ok, e = pcall(exited.wait, exited, timeout)
  loop.real_pending(-1)
  watch:close()
  task.drop_token(token)
  if not ok then
    if task.is_timeout(e) then
      e = task.new_error("timeout", string.format("timeout: process %d did not exit within %gs", pid, timeout))
    end
    error(e, 2)
  end
end

-- run{"cmd", ...}: spawns, waits (spec.timeout, default none) and returns
-- code, stdout, stderr, signal.
function M.run(spec)
  local started, p = pcall(start, "process.run", spec, RUN_OPTIONS)
  if not started then error(p, 2) end
  local ok, e = pcall(p.wait, p, spec.timeout)
  if not ok then
    p:stop(1)
    error(e, 2)
  end
  return p.code, p:stdout(), p:stderr(), p.signal
end

-- ------------------------------------------------------------ test ends

-- Seconds a process left running by a test gets between TERM and KILL (a
-- fixture.server's own grace when it has one), as servers get at test end.
local LEFT_GRACE = 1

local function started_in(p, scope) return p.scope == scope end
local function started_by_hooks_of(p, block) return p.scope.block == block end
local function by_pid(a, b) return a.pid < b.pid end

-- Stops the running processes p for which owned(p, owner) holds: TERM to
-- every group at once, then each gets its grace on real time (a mocked
-- clock the test left open must not hold the KILL back). Returns them by pid.
local function stop_left(owned, owner)
  local left = {}
  for p in pairs(running) do
    if owned(p, owner) then left[#left + 1] = p end
  end
  table.sort(left, by_pid)
  for _, p in ipairs(left) do p:kill("TERM") end
  for _, p in ipairs(left) do p:stop(p.grace or LEFT_GRACE, true) end
  return left
end

-- The command line in a note: argv's first line, cut short.
local function command_line(p)
  local s = table.concat(p.argv, " "):match("^[^\n]*")
  if #s > 60 then s = s:sub(1, 57) .. "..." end
  return s
end

-- The runner calls this when a test ends: what the test (its before_each,
-- after_each, tasks) started and left running is stopped, and its output
-- says so. The test does not fail for it.
function M._test_end(_, scope)
  if next(running) == nil then return end
  for _, p in ipairs(stop_left(started_in, scope)) do
    io.stdout:write(string.format("process '%s' (pid %d) was still running at the end of the test; stopped\n",
      command_line(p), p.pid))
  end
end

-- ... and this once a block's teardown has run: what its setup (or another
-- of its block hooks) started lives until then.
function M._block_end(block)
  if next(running) == nil then return end
  stop_left(started_by_hooks_of, block)
end

require("sonde.lib.test_hooks").add(M)

return M
