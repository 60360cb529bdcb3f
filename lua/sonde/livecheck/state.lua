-- sonde.livecheck.state: a case's state machine, in one place for both
-- buses. Each transition is a pure function of the state s and its
-- parameters p (times are epoch seconds, from the caller): the in-process
-- bus runs it on the case itself; the Redis bus ships the same source to
-- the server (EVAL), where it runs atomically on the case's hash, so that
-- failures counted by every process add up. It is plain Lua 5.1 without
-- sonde: Redis' scripting runs it as it is.
--
-- s: status, consecutive_failures, total_failures, total_by_state,
-- last_fail, last_failure {error, at, state}, last_test_received,
-- last_started, runtime_history, latency_history, frequency_history.
-- A transition returns a suite report {error=, state=} to send, or nil.
local M = {}

M.SOURCE = [=[
local T = {}
local OK_STATES = { INIT = true, PASS = true, SKIP = true }

local function count(s, state)
  s.total_by_state[state] = (s.total_by_state[state] or 0) + 1
end

local function push(list, value, max)
  list[#list + 1] = value
  while #list > max do table.remove(list, 1) end
end

local function since_fail(s, now)
  if s.last_fail then return now - s.last_fail end
  return nil
end

-- The suite fails: reported unless it failed within state_transition_delay
-- (p.delay); each failure postpones reports and recovery.
function T.suite_fail(s, p)
  local since = since_fail(s, p.now)
  local report = OK_STATES[s.status] or since == nil or since > p.delay
  s.status = p.state
  s.last_fail = p.now
  s.last_failure = { error = p.message, at = p.now, state = p.state }
  if report then return { error = p.message, state = p.state } end
  return nil
end

-- Back to PASS once state_transition_delay has passed since the last
-- failure (faust's _maybe_recover_from_failed_state).
function T.recover(s, p)
  if s.status == "PASS" then return nil end
  local since = since_fail(s, p.now)
  if since == nil or since > p.delay then
    s.status = "PASS"
    s.consecutive_failures = 0
    count(s, "PASS")
  end
  return nil
end

-- An execution starts: the gap since the previous one (anywhere) goes to
-- the histories.
function T.started(s, p)
  s.last_test_received = p.now
  if s.last_started then
    local gap = p.now - s.last_started
    push(s.frequency_history, gap, p.max_history)
    if p.frequency then push(s.latency_history, gap - p.frequency, p.max_history) end
  end
  s.last_started = p.now
  return nil
end

function T.skipped(s, p)
  s.last_test_received = p.now
  count(s, "SKIP")
  return nil
end

function T.passed(s, p)
  push(s.runtime_history, p.runtime, p.max_history)
  T.recover(s, p)
  count(s, "PASS")
  return nil
end

-- FAIL, ERROR or TIMEOUT (p.state): reaching max_consecutive_failures
-- fails the suite.
function T.failed(s, p)
  s.status = p.state
  s.consecutive_failures = s.consecutive_failures + 1
  s.total_failures = s.total_failures + 1
  count(s, p.state)
  s.last_failure = { error = p.message, at = p.now, state = p.state }
  if s.consecutive_failures >= p.max_failures then
    return T.suite_fail(s, { now = p.now, delay = p.delay, state = "FAIL",
      message = string.format("Failed after %d (max=%d)", s.consecutive_failures, p.max_failures) })
  end
  return nil
end

-- The stall check: no test received (anywhere) for warn_stalled_after
-- since the checks began (p.since) sets STALL; otherwise it may recover.
function T.stall_check(s, p)
  local last = p.since
  if s.last_test_received and s.last_test_received > last then last = s.last_test_received end
  if p.now - last >= p.warn then
    return T.suite_fail(s, { now = p.now, delay = p.delay, state = "STALL",
      message = string.format("Test stalled! Last received %gs ago (warn_stalled_after=%g).", p.now - last, p.warn) })
  end
  return T.recover(s, p)
end

return T
]=]

-- The fields of s and how the Redis hash stores them (tables as JSON).
M.NUMBERS = { "consecutive_failures", "total_failures", "last_fail", "last_test_received", "last_started" }
M.TABLES = { "total_by_state", "last_failure", "runtime_history", "latency_history", "frequency_history" }

-- Loaded here under this file's name, its lines where they are in it.
-- median(history) -> the median of a case's history list (runtimes,
-- latencies, intervals), or nil when it holds none: /status on either bus.
function M.median(xs)
  if type(xs) ~= "table" or #xs == 0 then return nil end
  local sorted = {}
  for i, x in ipairs(xs) do sorted[i] = x end
  table.sort(sorted)
  local n = #sorted
  if n % 2 == 1 then return sorted[(n + 1) / 2] end
  return (sorted[n / 2] + sorted[n / 2 + 1]) / 2
end

M.transitions = assert(loadstring(("\n"):rep(15) .. M.SOURCE, "@lua/sonde/livecheck/state.lua"))()

-- fresh() -> the state of a case nothing has happened to
function M.fresh()
  return { status = "INIT", consecutive_failures = 0, total_failures = 0, total_by_state = {}, runtime_history = {},
    latency_history = {}, frequency_history = {} }
end

-- apply(s, op, p) -> the transition's suite report or nil
function M.apply(s, op, p)
  local fn = M.transitions[op]
  if not fn then error("sonde.livecheck.state: no transition '" .. tostring(op) .. "'", 2) end
  return fn(s, p)
end

return M
