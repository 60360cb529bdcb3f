-- sonde.runner_journal: a serial run's side of its supervisor
-- (host/supervise.c): every result goes into the journal the two share, and
-- a runner forked after another died in a test replays it, then goes on.
--
-- A passing test is journaled as its ordinal (the count of tests started
-- so far, in run order), duration and requests: no text, so the record
-- costs a store and the runner's per-test path stays as fast as without
-- it. Everything else is the JSON line a --jobs worker would send. A new
-- runner walks the same files in the same order (the seed is journaled),
-- running describe bodies but no hook or test, up to the test that was
-- running; there it replays the journal (a pass takes its name, file and
-- line from the walk) and reports that test as an error.
local journal = require("sonde.c.journal")
local cjson = require("cjson")
local jobs = require("sonde.runner_jobs")

local M = {}

M.active = journal.active

-- ----------------------------------------------------------- journaling

local Recorder = {}
Recorder.__index = Recorder

-- recorder() -> a reporter that journals what it is told, about the run
-- set as its `run` field (it reads the ordinal of the test started last).
function M.recorder()
  return setmetatable({ on = true }, Recorder)
end

function Recorder:event(event, data)
  if self.on then journal.event(self.run.started, jobs.encode_event(event, data)) end
end

function Recorder:file_start(data) self:event("file_start", data) end
function Recorder:file_end(data) self:event("file_end", data) end
function Recorder:load_error(result) self:event("load_error", result) end

function Recorder:test_end(r)
  if not self.on then return end
  if r.status == "pass" and r.output == nil and r.attempts == nil and r.last_exchange == nil then
    return journal.pass(self.run.started, r.duration, r.requests)
  end
  journal.event(self.run.started, jobs.encode_event("test_end", r))
  journal.idle()
end

-- note(key, value): a fact of the run a later runner takes over: the seed
-- drawn (to walk in the same order), when the run started (its duration).
function M.note(key, value)
  journal.event(0, cjson.encode({ e = "note", d = { [key] = value } }))
end

-- start(ordinal): the test of this ordinal starts (for the supervisor to
-- know which one a death took).
M.start = journal.start

-- ------------------------------------------------------------- resuming

-- resumed() -> nil, or what a runner after a death needs: the ordinal of the
-- test that was running, how its process ended, the records, the notes.
function M.resumed()
  local at, how = journal.resume()
  if not at then return nil end
  local resume = { at = at, how = how, records = journal.records(), notes = {} }
  for _, rec in ipairs(resume.records) do
    if rec[3] == nil then
      local ev = cjson.decode(rec[2])
      if ev.e == "note" then
        for k, v in pairs(ev.d) do resume.notes[k] = v end
      end
      rec[2] = ev
    end
  end
  return resume
end

-- replay(run, resume, new_pass): the journal's events to the run's
-- reporters; new_pass(ordinal, duration, requests) makes a passing test's
-- result from the walk.
function M.replay(run, resume, new_pass)
  for _, rec in ipairs(resume.records) do
    if rec[3] ~= nil then
      run:finish_result(new_pass(rec[1], rec[2], rec[3]))
    elseif rec[2].e ~= "note" then
      jobs.replay_event(run, rec[2])
    end
  end
end

-- mute(reporters) -> unmute(): reporters that write to the terminal say
-- nothing while a runner replays what an earlier one already showed.
local SILENT = { write = function() end, flush = function() end }

function M.mute(reporters)
  local kept = {}
  for _, r in ipairs(reporters) do
    if r.on ~= nil then
      r.on = false
    elseif not r.owns_out then
      kept[r], r.out = r.out, SILENT
    end
  end
  return function()
    for _, r in ipairs(reporters) do
      if r.on ~= nil then r.on = true end
      if kept[r] then r.out = kept[r] end
    end
  end
end

return M
