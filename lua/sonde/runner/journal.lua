-- sonde.runner.journal: a serial run's side of its supervisor
-- (host/supervise.c): every result goes into the journal the two share, and
-- a runner forked after another died replays it, then goes on.
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
-- A runner forked after a death walks the same files in the same order
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
M.start, M.done, M.stops = journal.start, journal.done, journal.stops

-- ----------------------------------------------------------- journaling

-- Only what a reporter reads is journaled, and crosses a --jobs worker's
-- wire (sonde.runner.jobs).
local FIELDS = { "name", "file", "line", "tags", "status", "duration", "requests", "message", "traceback",
  "last_exchange", "output", "attempts", "iteration", "timeout", "tests", "open", "path", "started", "finished",
  "http" }

-- encode_event(event, data) -> the JSON text of what reporters read of an
-- event; a run replays it with run:replay_event(cjson.decode(text)).
function M.encode_event(event, data)
  local clean = {}
  for _, k in ipairs(FIELDS) do clean[k] = data[k] end
  return cjson.encode({ e = event, d = clean })
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
    return journal.pass(self.run.steps, r.duration, r.requests)
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

-- resumed() -> nil, or what a runner after a death needs: the step `at`
-- that was running, `how` its process ended, the records, the notes and
-- the steps that killed a runner. (What the step printed is in the
-- capture the runners share: sonde.runner.capture.)
function M.resumed()
  local at, how = journal.resume()
  if not at then return nil end
  local resume = { at = at, how = how, records = journal.records(), next = 1, notes = {}, deaths = {} }
  for _, rec in ipairs(resume.records) do
    if rec[3] == nil then
      local ev = cjson.decode(rec[2])
      if ev.e == "note" then
        for k, v in pairs(ev.d) do
          if k == "died" then resume.deaths[v] = true else resume.notes[k] = v end
        end
      end
      rec[2] = ev
    end
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
