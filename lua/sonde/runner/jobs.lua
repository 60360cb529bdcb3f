-- sonde.runner.jobs: `sonde test --jobs N`, spec files spread over N
-- worker processes on one machine, results merged into one report.
--
-- Protocol. The parent forks its workers before it runs the helper (a
-- worker then has the runner loaded already), or starts `sonde test
-- --worker` (a fresh worker after a death) and writes it one JSON line of
-- options to its stdin. Then it writes one line per work unit (a file and
-- a --repeat iteration); a closed stdin ends the worker. The worker writes
-- one JSON line per runner event (file_start, plan, test_start, test_end,
-- load_error, file_end, then unit_done) to its fd 3, a pipe the parent
-- reads as a stream (process.spawn's fd3): each line as it comes, none
-- lost. Not the worker's stdout, because a test may write anything to fd 1.
--
-- Order. Units are handed out as workers free up, each worker holding the
-- next one as it runs one when there are enough; their events are kept
-- until every earlier unit is complete and then replayed to the reporters,
-- so the report is in file order whatever finished first.
--
-- Failure. A worker that exits mid-unit (crash, watchdog, killed) ends its
-- pipe, which the parent sees at once: every planned test it did not
-- report becomes an error naming what happened and its last stderr. One
-- silent for far longer than a test may take is killed first. Either way a
-- fresh worker takes the next unit, and the one the dead worker held but
-- had not begun: never a hang.
local cjson = require("cjson")
local loop = require("sonde.c.loop")
local task = require("sonde.task")
local process = require("sonde.process")
local util = require("sonde.lib.report_util")
local output = require("sonde.runner.capture")
local journal = require("sonde.runner.journal")
local encode_event, decode_event = journal.encode_event, journal.decode_event

local M = {}

-- The worker's descriptor for results (the parent's fd3 stream of it).
local RESULTS_FD = 3

-- ------------------------------------------------------------------ worker

-- Events of the worker's run, one JSON line each, flushed so the parent
-- sees them even if the worker dies right after.
local Wire = {}
Wire.__index = Wire

local function wire_reporter(out)
  local r = setmetatable({ out = out }, Wire)
  for _, event in ipairs({ "file_start", "plan", "test_start", "test_end", "load_error", "file_end" }) do
    r[event] = function(self, data) self:send(event, data) end
  end
  return r
end

function Wire:send(event, data)
  self.out:write(encode_event(event, data), "\n")
  self.out:flush()
end

-- What --coverage counted during a unit, as it is (sonde.runner.coverage.take_wire).
function Wire:send_coverage(data)
  self.out:write(cjson.encode({ e = "coverage", d = data }), "\n")
  self.out:flush()
end

-- worker_main([opts, results_fd]) -> exit code: reads the options line
-- from stdin (unless a forked worker has them), then units until EOF.
function M.worker_main(opts, results_fd)
  local runner = require("sonde.runner")
  if not opts then
    local line = io.read("*l")
    if not line then return 0 end
    opts = cjson.decode(line)
  end
  if opts.interleave then task.set_interleave(opts.seed) end
  local coverage = opts.coverage and require("sonde.runner.coverage")
  if coverage then -- on before the helper runs, as in a serial run
    local ok, cerr = coverage.setup(opts)
    if not ok then
      io.stderr:write("sonde worker: ", cerr, "\n")
      return 2
    end
    coverage.start()
  end
  local ready, err = require("sonde.runner.busted").prepare(opts)
  if not ready then
    io.stderr:write("sonde worker: ", err, "\n")
    return 2
  end
  local out = io.open("/dev/fd/" .. (results_fd or RESULTS_FD), "w")
  if not out then
    io.stderr:write("sonde worker: fd ", results_fd or RESULTS_FD, " is not open: a worker sends its results there ",
      "to the sonde test --jobs that starts it\n")
    return 2
  end
  local wire = wire_reporter(out)
  local run = runner.Run.new(opts, { wire })
  -- The parent passes an interrupt on: the running test is cancelled and
  -- reported, the unit ends, and the worker takes no more.
  task.on_interrupt(function() run:interrupt() end)
  if run.capture then output.begin() end
  local root = task.run(function()
    for unit_line in io.lines() do
      local unit = cjson.decode(unit_line)
      run.iteration = unit.iteration
      run:run_file(unit.file)
      if coverage then wire:send_coverage(coverage.take_wire()) end
      wire:send("unit_done", { name = unit.file })
      if run.stopping then break end -- interrupted: the unit queued behind it is not run
    end
  end)
  if run.capture then output.finish() end
  out:close()
  if root.err ~= nil then
    io.stderr:write("sonde worker: ", tostring(root.err), "\n", root.traceback or "", "\n")
    return 2
  end
  return 0
end

-- ------------------------------------------------------------------ parent

-- What a worker needs of the parent's options (JSON-safe).
local function worker_options(opts)
  local o = {}
  for _, k in ipairs({ "filter", "filter_out", "tags", "exclude_tags", "timeout", "retries", "fail_on_flaky",
    "fail_fast", "seed", "shuffle", "shuffle_tests", "sort_tests", "interleave", "repeat_count", "no_capture", "lpath",
    "cpath", "helper", "xhelper", "execute", "lazy", "auto_insulate", "argv", "detail", "coverage", "coverage_include",
    "coverage_exclude", "coverage_config_file" }) do
    o[k] = opts[k]
  end
  o.shard, o.durations = opts.shard, opts.durations
  return o
end

-- fork_workers(opts, files) -> the pool for main, its workers forked from
-- this runner and holding their first units already | nil (workers are
-- started as the pool needs them); and in each worker, its exit code.
-- Forked before the helper runs and before anything is started or opened:
-- a worker starts with what the parent had loaded, runs its own
-- preparation as a started one does, then its first file while the parent
-- still prepares.
function M.fork_workers(opts, files)
  local count = math.min(opts.jobs, #files * opts.repeat_count)
  -- A whole collection first: a cycle under way would go on in every copy,
  -- its marking and sweeping writing to (so copying) each page they share,
  -- and the next one starts only once the heap has grown a few times.
  collectgarbage()
  local ok, workers, _, fd = pcall(process._fork, count, "sonde test --worker")
  if not ok then return nil end
  if not workers then return nil, M.worker_main(cjson.decode(cjson.encode(worker_options(opts))), fd) end
  local pool = M.new_pool({ opts = opts }, files)
  for lane, p in ipairs(workers) do
    pool.held[lane] = { p = p, queue = {} }
    pool:hand_out(pool.held[lane], lane)
  end
  return pool
end

local Pool = {}
Pool.__index = Pool

-- new_pool(run, files) -> the pool that hands the run's units (each file,
-- each --repeat round) to its workers.
function M.new_pool(run, files)
  local units = {}
  for iteration = 1, run.opts.repeat_count do
    for _, f in ipairs(files) do
      units[#units + 1] = { file = f, iteration = iteration, events = {}, seen = 0, index = #units + 1 }
    end
  end
  local size = math.min(run.opts.jobs, #units)
  return setmetatable({ run = run, files = files, units = units, next = 0, emitted = 0, workers = {}, held = {},
    returned = {}, counts = { pass = 0, fail = 0, error = 0, pending = 0, skip = 0, flaky = 0 },
    size = size, depth = #units >= 2 * size and 2 or 1 }, Pool)
end

-- Whether no unit is left to hand out.
function Pool:exhausted() return self.stopping or (#self.returned == 0 and self.next >= #self.units) end

-- take_line(unit, line): a line a worker wrote on its results pipe; one
-- that is not an event (sonde.runner.journal.decode_event) is dropped.
function M.take_line(unit, line)
  local ev = decode_event(line)
  if ev then unit.events[#unit.events + 1] = ev end
end

-- take_events(w, chunk): take_line for each whole line of what arrived
-- (after the line it had begun), as bytes come in pieces (fuzz_jobs).
function M.take_events(w, chunk)
  w.partial = w.partial .. chunk
  for line in w.partial:gmatch("([^\n]*)\n") do M.take_line(w.unit, line) end
  w.partial = w.partial:match("[^\n]*$")
end

-- What the worker wrote to stderr (sonde's own words; its tests' too with
-- --no-capture) goes on to ours, whole lines at a time so that workers do
-- not cut into each other's lines. Ends with the worker's stderr.
local function forward_stderr(p)
  for line in p:lines(nil, "stderr") do io.stderr:write(line, "\n") end
end

-- The forked worker of this lane, holding its first units, else a started
-- one (a fresh worker after a death), which is sent the options first.
function Pool:spawn_worker(lane)
  local w = self.held[lane]
  self.held[lane] = nil
  if not w then
    -- a cache this process refused (and said so) is refused for its workers too
    local env = require("sonde.boot.chunk_cache").refused and { SONDE_CACHE = "off" } or nil
    local p = process.spawn { loop.exe_path(), "test", "--worker", env = env, fd3 = true }
    p:write(cjson.encode(worker_options(self.run.opts)) .. "\n")
    w = { p = p, queue = {} }
  end
  w.forwarder = task.spawn(forward_stderr, w.p)
  return w
end

-- release(): the forked workers no driver took (the run ended first) end
-- with their stdin.
function Pool:release()
  for lane, w in pairs(self.held) do
    w.p:close_stdin()
    self.held[lane] = nil
  end
end

-- Once the worker has exited: what it wrote to stderr is all passed on.
function Pool:retire(w) w.forwarder:join() end

-- How the worker ended, for the errors of the tests it took with it.
local function how_it_ended(w, killed_for)
  local code, sig = w.p.code, w.p.signal
  local how = killed_for or (sig and ("its worker was killed by SIG" .. sig) or ("its worker exited with code "
    .. tostring(code)))
  local err = w.p:stderr():sub(-2000):gsub("%s+$", "")
  if err ~= "" then how = how .. "; the worker's last words:\n" .. err end
  return how
end

-- The tests of a unit its worker never reported become errors (with the
-- unit's round, as a worker's own results have it under --repeat). A
-- worker plans each block's tests when the block's body has run, so the
-- tests of describe blocks it never reached are one error together.
function M.close_crashed_unit(unit, how, repeating)
  local iteration = repeating and unit.iteration or nil
  local planned, open, reported, running = nil, 0, {}, nil
  for _, ev in ipairs(unit.events) do
    if ev.e == "plan" then
      planned = planned or {}
      for _, t in ipairs(ev.d.tests) do planned[#planned + 1] = t end
      open = ev.d.open or 0
    end
    if ev.e == "test_start" then running = ev.d.name end
    if ev.e == "test_end" then
      reported[ev.d.name] = true
      running = nil
    end
  end
  if not planned then
    unit.events[#unit.events + 1] = { e = "load_error", d = { name = unit.file, file = unit.file, line = 0,
      status = "error", message = unit.file .. ": the worker loading this file stopped: " .. how,
      iteration = iteration } }
  else
    for _, t in ipairs(planned) do
      if not reported[t.name] then
        local msg = t.name == running and ("the worker running this test stopped: " .. how)
          or ("not run: the worker running this file stopped" .. (running and (" during '" .. running .. "'") or ""))
        unit.events[#unit.events + 1] = { e = "test_end", d = { name = t.name, file = unit.file, line = t.line,
          status = "error", message = msg, duration = 0, requests = 0, tags = t.tags or {}, iteration = iteration } }
      end
    end
    if open > 0 then
      unit.events[#unit.events + 1] = { e = "test_end", d = { name = unit.file .. " (not reached)", file = unit.file,
        line = 0, status = "error", duration = 0, requests = 0, tags = {}, iteration = iteration,
        message = string.format("not run: %d describe block(s) of this file had not started when its worker " ..
            "stopped: %s",
          open, how) } }
    end
    unit.events[#unit.events + 1] = { e = "file_end", d = { name = unit.file } }
  end
  unit.done = true
end

-- unit_finished(unit) -> whether the worker said it is done with it (the
-- word is dropped from the events).
function M.unit_finished(unit)
  local last = unit.events[#unit.events]
  if not (last and last.e == "unit_done") then return false end
  table.remove(unit.events)
  unit.done = true
  return true
end

-- Waits for the unit's last event, or for the worker's end, which ends its
-- results pipe. A worker silent far longer than any test may take (the
-- watchdog should have acted) is killed.
function Pool:wait_unit(w, unit)
  local silent_limit = self.run.opts.timeout * 2 + 10
  while true do
    local ok, line = pcall(w.p.read_line, w.p, silent_limit, "fd3")
    if not ok and not task.is_timeout(line) then error(line, 0) end
    if not ok or line == nil then return self:worker_stopped(w, unit, not ok and silent_limit) end
    M.take_line(unit, line)
    if M.unit_finished(unit) then return true end
  end
end

-- The worker's results ended: it exited (or, silent for `silent` seconds, is
-- killed now). The tests of its unit it did not report become errors,
-- unless the pool is stopping. Returns false: the worker is done.
function Pool:worker_stopped(w, unit, silent)
  if silent then w.p:stop(1) end
  local exited, e = pcall(w.p.wait, w.p, 10) -- its pipe ends as it exits
  if not exited and task.is_cancelled(e) then error(e, 0) end
  if not exited then w.p:stop(1) end -- it closed fd 3 and lives on
  if self.stopping then return false end
  local how = silent and string.format("its worker was silent for %gs and was killed", silent)
  M.close_crashed_unit(unit, how_it_ended(w, how), self.run.opts.repeat_count > 1)
  return false
end

-- The next unit to hand out: one a dead worker had not started comes first.
function Pool:next_unit()
  if self.stopping then return nil end
  if #self.returned > 0 then return table.remove(self.returned, 1) end
  if self.next >= #self.units then return nil end
  self.next = self.next + 1
  return self.units[self.next]
end

-- Units a worker held and never started, for the next worker, in order.
function Pool:give_back(units)
  for _, unit in ipairs(units) do self.returned[#self.returned + 1] = unit end
  table.sort(self.returned, function(a, b) return a.index < b.index end)
end

-- A worker holds the unit it runs and, when there are units enough for
-- every worker to hold two, the next one too: it goes on to it without
-- waiting for the parent to read the end of the first and answer.
function Pool:hand_out(w, lane)
  while #w.queue < self.depth do
    local unit = self:next_unit()
    if not unit then return end
    unit.events, unit.seen, unit.lane = {}, 0, lane
    w.queue[#w.queue + 1] = unit
    w.p:write(cjson.encode({ file = unit.file, iteration = unit.iteration }) .. "\n")
  end
end

function Pool:count_progress(unit)
  for i = unit.seen + 1, #unit.events do
    local ev = unit.events[i]
    if ev.e == "test_end" or ev.e == "load_error" then
      local s = ev.d.status
      self.counts[s] = self.counts[s] + 1
      if self.run.opts.fail_fast and util.is_failed(s, self.run.opts) then self:stop("now") end
    end
  end
  unit.seen = #unit.events
end

-- One driver task per worker: takes units until none is left. `lane`
-- numbers the driver (a report's timeline draws one lane per worker).
function Pool:drive(lane)
  local w
  while true do
    if not w and (self.held[lane] or not self:exhausted()) then
      w = self:spawn_worker(lane)
      self.workers[w] = true
    end
    if w then self:hand_out(w, lane) end
    local unit = w and w.queue[1]
    if not unit then break end
    w.unit = unit
    local ok = self:wait_unit(w, unit)
    table.remove(w.queue, 1)
    self:count_progress(unit)
    self:flush_ready()
    if not ok then
      self:give_back(w.queue)
      self.workers[w] = nil
      self:retire(w)
      w = nil
    end
  end
  if w then
    w.p:close_stdin()
    pcall(w.p.wait, w.p, 10)
    w.p:stop(1)
    self.workers[w] = nil
    self:retire(w)
  end
end

function Pool:replay(unit)
  local run = self.run
  run.iteration = unit.iteration
  for _, ev in ipairs(unit.events) do
    if ev.e == "test_end" or ev.e == "load_error" then ev.d.worker = unit.lane end -- its timeline lane
    run:replay_event(ev)
  end
  unit.events = nil
end

-- Replays complete units to the reporters in file order.
function Pool:flush_ready()
  while self.units[self.emitted + 1] and self.units[self.emitted + 1].done do
    self.emitted = self.emitted + 1
    self:replay(self.units[self.emitted])
  end
  local left = #self.units - self.next + #self.returned
  self.run:emit("progress", { counts = self.counts, workers = self.size, files_left = math.max(0, left) })
end

-- After a stop (--fail-fast, an interrupt) some units never finished: what
-- did finish is still reported, in order.
function Pool:flush_rest()
  for i = self.emitted + 1, #self.units do
    if self.units[i].done then self:replay(self.units[i]) end
  end
end

-- stop("now"): --fail-fast, the other workers are killed and what they
-- had not finished is dropped. stop("interrupted"): each worker cancels its
-- running test, reports it and ends its file, which is then reported too.
function Pool:stop(how)
  if self.stopping then return end
  self.stopping = how
  for w in pairs(self.workers) do w.p:kill(how == "now" and "KILL" or "INT") end
end

-- main(run, files[, pool]) -> summary: the parent's side of `sonde test
-- --jobs N`, with the pool fork_workers made for these files, if it did.
function M.main(run, files, pool)
  pool = pool or M.new_pool(run, files)
  pool.run = run
  run:emit("suite_start", { opts = run.opts, seed = run.opts.seed, started_at = run.started_at, workers = pool.size })
  local remove = task.on_interrupt(function()
    run.interrupted = true
    pool:stop("interrupted")
  end)
  local drivers, failure = {}, nil
  for i = 1, pool.size do drivers[i] = task.spawn(pool.drive, pool, i) end
  for _, d in ipairs(drivers) do
    while not d:done() do
      local ok, e = pcall(d.join, d)
      if not ok then
        if not task.is_cancelled(e) then failure = failure or e end
        if task.is_cancelled(e) then run.interrupted = true end
        pool:stop(task.is_cancelled(e) and "interrupted" or "now")
      end
    end
  end
  remove()
  pool:release()
  if failure then error(failure, 0) end
  pool:flush_rest()
  local summary = run:summary()
  run:end_suite(summary)
  return summary
end

return M
