-- sonde.runner.journal: a serial run's side of its protection
-- (host/protect.c): every result goes into the journal, a memfd that
-- outlives the process image; when a test kills the process, sonde execs
-- itself, and the new image (a new runner) replays it, then goes on.
--
-- The runner numbers its steps, each piece of user code it runs: loading a
-- file, a describe body, each setup, lazy_setup, teardown and lazy_teardown
-- hook, each test with its before_each, after_each and finally. Every
-- record carries the number of the step last started. A passing test is
-- journaled as numbers alone (its step, duration and requests), so its
-- cost is a store; everything else is the JSON line a --jobs worker would
-- send. A record ends the step that was running (a test's result is
-- reported once its code has run); a step that reports nothing ends with
-- done().
--
-- A runner started after a death walks the same files in the same order
-- (the seed is journaled): it loads files and runs describe bodies, which
-- the walk needs, but runs no hook and no test; at the end of each step it
-- walked it replays that step's records (a pass takes its name, file and
-- line from the walk), so the run stops where the dead runner's did under
-- --fail-fast, and a setup that failed there fails here. At the step the
-- runner died in, the walk ends: that step is an error saying how its
-- process ended, and the run goes on live. Steps that killed an earlier
-- runner are not run again by later walks.
local journal = require("sonde.c.journal")
local cjson = require("cjson")

local M = {}

M.active = journal.active
M.done, M.stops = journal.done, journal.stops

-- The two calls made for every step and every passing test go through the
-- FFI, which the JIT compiles into the trace (host/ljournal.c says why).
local c_start, c_pass = (function()
  local ffi = require("ffi")
  local start, pass = journal.hot_calls()
  return ffi.cast("int (*)(double)", start), ffi.cast("int (*)(double, double, double)", pass)
end)()

-- start(step): the step of this number starts.
function M.start(step)
  if c_start(step) ~= 0 then error("this run has no journal (not a protected serial `sonde test` run)", 2) end
end

local function pass(step, duration, requests)
  if c_pass(step, duration, requests) ~= 0 then error("cannot grow the run's journal (out of memory?)", 2) end
end

-- ----------------------------------------------------------- journaling

-- Only what a reporter reads is journaled, and crosses a --jobs worker's
-- wire (sonde.runner.jobs).
local FIELDS = { "name", "file", "line", "tags", "status", "duration", "requests", "message", "traceback",
  "last_exchange", "output", "attempts", "iteration", "timeout", "tests", "open", "path", "started", "finished",
  "http" }

-- encode_event(event, data) -> the JSON text of what reporters read of an
-- event; a run replays it with run:replay_event(M.decode_event(text)).
function M.encode_event(event, data)
  local clean = {}
  for _, k in ipairs(FIELDS) do clean[k] = data[k] end
  return cjson.encode({ e = event, d = clean })
end

-- What a field of an event's data must be (each is optional unless its
-- event requires it), and what each event requires.
local STATUSES = { pass = true, fail = true, error = true, pending = true, skip = true, flaky = true }

local function list_of(check)
  return function(v)
    if type(v) ~= "table" then return false end
    local n = #v
    for k, x in pairs(v) do
      if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 or not check(x) then return false end
    end
    return true
  end
end

local function is(kind) return function(v) return type(v) == kind end end
local is_string, is_number = is("string"), is("number")
local is_strings = list_of(is_string)

-- a table whose fields listed in `kinds` have their kinds, and that has
-- those named in `required`
local function record_of(kinds, required)
  return function(v)
    if type(v) ~= "table" then return false end
    for k, check in pairs(kinds) do
      if v[k] ~= nil and not check(v[k]) then return false end
    end
    for _, k in ipairs(required or {}) do
      if v[k] == nil then return false end
    end
    return true
  end
end

local FIELD_KINDS = { name = is_string, file = is_string, line = is_number, tags = is_strings,
  status = function(v) return STATUSES[v] == true end, duration = is_number, requests = is_number,
  message = is_string, traceback = is_string, last_exchange = is_string, output = is_string,
  attempts = list_of(record_of { status = is_string, message = is_string, traceback = is_string, output = is_string,
    duration = is_number }),
  iteration = is_number, timeout = is("boolean"),
  tests = list_of(record_of({ name = is_string, line = is_number, tags = is_strings }, { "name", "line" })),
  open = is_number, path = is_strings, started = is_number, finished = is_number,
  http = list_of(record_of({ target = is_string, origin = is_string, status = is_number, error = is_string,
    timings = record_of { dns = is_number, connect = is_number, tls = is_number, first_byte = is_number,
      total = is_number } }, { "target" })) }

local RESULT = { "name", "file", "line", "status", "duration", "requests" }
M.REQUIRED = { file_start = { "name" }, plan = { "tests" }, test_start = { "name" }, test_end = RESULT,
  load_error = RESULT, file_end = { "name" }, unit_done = { "name" }, coverage = {} }

-- A --jobs worker's --coverage counts (sonde.runner.coverage.take_wire): per file,
-- lines and their counts, one for one.
local is_coverage = (function()
  local is_numbers = list_of(is_number)
  return function(d)
    for path, t in pairs(d) do
      if type(path) ~= "string" or type(t) ~= "table" or not is_numbers(t.lines) or not is_numbers(t.counts)
        or #t.lines ~= #t.counts then
        return false
      end
    end
    return true
  end
end)()

-- decode_event(text[, required=M.REQUIRED]) -> the event {e=, d=} that a
-- line of a --jobs worker (or a record of the journal) holds, with only
-- the fields reporters read; or nil and why it is not one. Whatever wrote
-- it (a test that wrote where it should not), nothing malformed goes on.
function M.decode_event(text, required)
  local ok, ev = pcall(cjson.decode, text)
  if not ok then return nil, "not JSON: " .. tostring(ev):gsub("^.-:%d+: ", "") end
  local needs = type(ev) == "table" and (required or M.REQUIRED)[ev.e]
  if not needs then return nil, "not an event {e=, d=} of a known kind" end
  if type(ev.d) ~= "table" then return nil, "the data of a " .. ev.e .. " event is not an object" end
  if ev.e == "coverage" then
    if not is_coverage(ev.d) then return nil, "malformed coverage counts" end
    return { e = ev.e, d = ev.d }
  end
  local d = {}
  for _, k in ipairs(FIELDS) do
    local v = ev.d[k]
    if v ~= nil and not FIELD_KINDS[k](v) then
      return nil, string.format("field %q of a %s event is malformed", k, ev.e)
    end
    d[k] = v
  end
  for _, k in ipairs(needs) do
    if d[k] == nil then return nil, string.format("a %s event without its field %q", ev.e, k) end
  end
  return { e = ev.e, d = d }
end

local Recorder = {}
Recorder.__index = Recorder

-- A reporter that journals what it is told, about the run set as its
-- `run` field (it reads the number of the step started last).
local function recorder()
  return setmetatable({ on = true }, Recorder)
end

function Recorder:event(event, data)
  if self.on then journal.event(self.run.steps, M.encode_event(event, data)) end
end

function Recorder:file_start(data) self:event("file_start", data) end
function Recorder:file_end(data) self:event("file_end", data) end
function Recorder:load_error(result) self:event("load_error", result) end

function Recorder:test_end(r)
  if not self.on then return end
  if r.status == "pass" and r.output == nil and r.attempts == nil and r.last_exchange == nil then
    return pass(self.run.steps, r.duration, r.requests)
  end
  journal.event(self.run.steps, M.encode_event("test_end", r))
end

-- listening(reporters) -> the reporters and a recorder after them.
function M.listening(reporters)
  local list = { unpack(reporters) }
  list[#list + 1] = recorder()
  return list
end

-- attach(run, walk): the run journals its steps (its recorder, made by
-- listening, reads their numbers); `walk` is resumed()'s, for a runner
-- after a death.
function M.attach(run, walk)
  run.reporters[#run.reporters].run = run
  run.journal, run.walk = true, walk
  if walk then
    run.started_at = walk.notes.started_at or run.started_at
  else
    M.note("started_at", run.started_at)
  end
end

-- note(key, value): a fact of the run a later runner takes over: the seed
-- drawn (to walk in the same order), when the run started (its duration),
-- a step that killed its runner ("died": not to be run again).
function M.note(key, value)
  journal.event(0, cjson.encode({ e = "note", d = { [key] = value } }))
end

-- ------------------------------------------------------------- resuming

-- What a record may hold: the events a recorder journals, or a note of the
-- run's facts (each a number).
local JOURNALED = {}
for _, e in ipairs({ "file_start", "file_end", "load_error", "test_end" }) do JOURNALED[e] = M.REQUIRED[e] end
local NOTES = { seed = "number", started_at = "number", died = "number" }

-- The event or note a record's text holds, or nil: a runner that died may
-- have died of a test that wrote over its memory, the journal's included.
local function decode_record(text)
  local ok, ev = pcall(cjson.decode, text)
  if not (ok and type(ev) == "table" and ev.e == "note") then return M.decode_event(text, JOURNALED) end
  if type(ev.d) ~= "table" then return nil end
  for k, v in pairs(ev.d) do
    if NOTES[k] == nil or type(v) ~= NOTES[k] then return nil end
  end
  return ev
end

-- Whether a decoded record can be what the runner wrote: results come in
-- the order of their steps, none after the step it died in, and a pass
-- took a time a clock can show.
local function in_place(rec, last, at)
  if rec[2] == nil then return false end
  if rec[3] == nil and rec[2].e == "note" then return true end -- notes are step 0, written at any time
  local step, duration = rec[1], rec[3] ~= nil and rec[2] or 0
  return step >= last and step <= at and duration >= 0 and duration < math.huge
end

-- resumed() -> nil, or what a runner after a death needs: the step `at`
-- that was running, `how` its process ended, the records, the notes, the
-- steps that killed a runner, and how many records were damaged (they are
-- left out). (What the step printed is in the capture the runners share:
-- sonde.runner.capture.)
function M.resumed()
  local at, how = journal.resume()
  if not at then return nil end
  local records, unread = journal.records()
  local resume = { at = at, how = how, records = {}, next = 1, notes = {}, deaths = {},
    damaged = (unread or 0) > 0 and 1 or 0 }
  local last = 0
  for _, rec in ipairs(records) do
    if rec[3] == nil then rec[2] = decode_record(rec[2]) end
    if not in_place(rec, last, at) then
      resume.damaged = resume.damaged + 1
    elseif rec[3] == nil and rec[2].e == "note" then
      for k, v in pairs(rec[2].d) do
        if k == "died" then resume.deaths[v] = true else resume.notes[k] = v end
      end
      resume.records[#resume.records + 1] = rec
    else
      last = rec[1]
      resume.records[#resume.records + 1] = rec
    end
  end
  if resume.damaged > 0 then
    io.stderr:write(string.format("sonde test: %d record(s) of the results journaled before the runner died are "
      .. "damaged (did the test write over sonde's memory?) and are not in the report\n", resume.damaged))
  end
  return resume
end

-- replay_through(run, resume, step, new_pass) -> whether a result replayed
-- failed (a hook's error: pending tests reported after it carry its step
-- too): the records up to those of `step`, to the run's reporters and
-- counts; new_pass(duration, requests) makes a passing test's result.
function M.replay_through(run, resume, step, new_pass)
  local records, failed = resume.records, false
  local i = resume.next
  while records[i] and records[i][1] <= step do
    local rec = records[i]
    if rec[3] ~= nil then
      run:finish_result(new_pass(rec[2], rec[3]))
    elseif rec[2].e ~= "note" then
      local ev = rec[2]
      local status = ev.e == "test_end" and ev.d.status
      if ev.e == "load_error" or status == "error" or status == "fail" then failed = true end
      run:replay_event(ev)
    end
    i = i + 1
  end
  resume.next = i
  return failed
end

-- mute(reporters) -> unmute(): while a runner walks what an earlier one
-- already showed, reporters that write to the terminal say nothing, and
-- the recorder journals nothing.
local SILENT = { write = function() end, flush = function() end }

function M.mute(reporters)
  local kept = {}
  for _, r in ipairs(reporters) do
    if getmetatable(r) == Recorder then
      r.on = false
    elseif not r.owns_out then
      kept[r], r.out = r.out, SILENT
    end
  end
  return function()
    for _, r in ipairs(reporters) do
      if getmetatable(r) == Recorder then r.on = true end
      if kept[r] then r.out = kept[r] end
    end
  end
end

return M
