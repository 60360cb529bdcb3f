-- sonde.load.executors: k6's six executors, each a function(run, sc,
-- group, start) that runs one scenario's VUs from `start` (task.now()) and
-- returns once they have all stopped.
--
-- Closed model (shared-iterations, per-vu-iterations, constant-vus,
-- ramping-vus): each VU runs its next iteration when the last one ends.
-- Open model (constant-arrival-rate, ramping-arrival-rate): iterations
-- start on a schedule whether or not earlier ones have ended; an iteration
-- that finds every VU busy waits for the first free one (none is dropped
-- while the scenario runs) and its durations count from its intended
-- start, so a slow server cannot hide behind coordinated omission (wrk2's
-- correction). Arrivals still waiting when the scenario ends are counted
-- in dropped_iterations.
--
-- Past its end a scenario gives busy VUs graceful_stop to finish their
-- iteration; then they are cancelled and the iteration counts as
-- interrupted. Under --segment K/N an open-model scenario takes every N-th
-- arrival of the whole schedule, starting with the K-th.
local task = require("sonde.task")

local M = {}

local now = task.now

-- Iterations of an open model may start this early: the loop's real
-- timers fire on whole milliseconds, and one that starts late would count
-- the timer's rounding as latency. Virtual time (sonde.clock) is exact.
local EARLY = 0.001

local function early()
  local clock = package.loaded["sonde.clock"]
  return clock and clock.current() and 0 or EARLY
end

-- sleep_until(t): waits until task.now() >= t (never a negative sleep).
local function sleep_until(t)
  local left = t - now()
  if left > 0 then task.sleep(left) end
end

-- ---------------------------------------------------------- closed model

-- run_closed(run, sc, group, vus, vu_main, ends): starts `vus` VUs, each
-- running vu_main(vu), and returns when they have ended, or are cancelled
-- at `ends` plus the graceful stop.
local function run_closed(run, sc, group, vus, vu_main, ends)
  for _ = 1, vus do run:spawn_vu(group, vu_main, true) end
  run:sample_vus()
  group:finish(ends + sc.graceful_stop)
end

local function shared_iterations(run, sc, group, start)
  local ends, left = start + sc.max_duration, sc.iterations
  local function vu_main(vu)
    while left > 0 and now() < ends do
      left = left - 1
      run:iterate(vu)
    end
  end
  run_closed(run, sc, group, math.min(sc.vus, sc.iterations), vu_main, ends)
end

local function per_vu_iterations(run, sc, group, start)
  local ends = start + sc.max_duration
  local function vu_main(vu)
    for _ = 1, sc.iterations do
      if now() >= ends then return end
      run:iterate(vu)
    end
  end
  run_closed(run, sc, group, sc.iterations > 0 and sc.vus or 0, vu_main, ends)
end

local function constant_vus(run, sc, group, start)
  local ends = start + sc.duration
  local function vu_main(vu)
    while now() < ends do run:iterate(vu) end
  end
  run_closed(run, sc, group, sc.vus, vu_main, ends)
end

-- ramp_steps(start, stages) -> list of {at, count}, total duration: the VU
-- count moves one VU at a time, reaching each whole number when the stage's
-- straight line does (k6's ramp: floor going up, ceil going down).
function M.ramp_steps(start, stages)
  local list, t, from = {}, 0, start
  for _, st in ipairs(stages) do
    local to, d = st.target, st.duration
    if d == 0 then
      if to ~= from then list[#list + 1] = { at = t, count = to } end
    elseif to > from then
      for v = from + 1, to do list[#list + 1] = { at = t + d * (v - from) / (to - from), count = v } end
    else
      for v = from - 1, to, -1 do list[#list + 1] = { at = t + d * (from - v) / (from - to), count = v } end
    end
    t, from = t + d, to
  end
  return list, t
end

-- ramping-vus: VU i runs while i <= the current count; above it, it ends
-- its iteration (within graceful_ramp_down, else it is cancelled) and
-- waits idle until the count comes back up.
local function ramping_vus(run, sc, group, start)
  local steps, total = M.ramp_steps(sc.start_vus, sc.stages)
  local ends = start + total
  local st = { target = 0, vus = {} }
  local reaps, reap_head, reap_tail = {}, 1, 0 -- FIFO of {at, vu, started}: deadlines of ramp-downs

  local function vu_main(vu)
    while now() < ends and not st.finished do
      if vu.index > st.target then
        run:activate(vu, false)
        run:idle(vu)
        if st.finished then return end
        run:activate(vu, true)
      else
        run:iterate(vu)
      end
    end
  end

  local function set_target(n)
    local old = st.target
    st.target = n
    for i = old + 1, n do
      local vu = st.vus[i]
      if not vu then
        vu = run:spawn_vu(group, vu_main, true)
        vu.index, st.vus[i] = i, vu
      else
        run:wake(vu)
      end
    end
    for i = n + 1, old do
      local vu = st.vus[i]
      if vu and vu.busy then
        reap_tail = reap_tail + 1
        reaps[reap_tail] = { at = now() + sc.graceful_ramp_down, vu = vu, started = vu.started }
      end
    end
  end

  local function reap(r)
    local vu = r.vu
    if vu.busy and vu.started == r.started and vu.index > st.target then
      vu.ramped_down = true
      vu.task:cancel("graceful ramp down ended")
    end
  end

  -- waits until t, cancelling iterations whose ramp-down time ran out
  local function until_(t)
    while reaps[reap_head] and reaps[reap_head].at <= t do
      sleep_until(reaps[reap_head].at)
      reap(reaps[reap_head])
      reaps[reap_head] = nil
      reap_head = reap_head + 1
    end
    sleep_until(t)
  end

  set_target(sc.start_vus)
  run:sample_vus()
  for _, step in ipairs(steps) do
    until_(start + step.at)
    set_target(step.count)
  end
  until_(ends)
  st.finished = true
  for _, vu in pairs(st.vus) do run:wake(vu) end
  group:finish(ends + sc.graceful_stop)
end

-- ------------------------------------------------------------ open model

-- constant_schedule(sc) -> at(i): the offset of arrival i (0-based), or
-- nil when it falls at or after the scenario's end.
local function constant_schedule(sc)
  return function(i)
    local at = i * sc.time_unit / sc.rate
    if at < sc.duration then return at end
  end, sc.duration
end

-- ramping_schedule(sc) -> at(i) for rates that move linearly through the
-- stages: arrival i comes when the integral of the rate reaches i.
local function ramping_schedule(sc)
  local stages, t, n, r = {}, 0, 0, sc.start_rate / sc.time_unit
  for _, st in ipairs(sc.stages) do
    local r1 = st.target / sc.time_unit
    local count = (r + r1) * st.duration / 2
    stages[#stages + 1] = { t0 = t, d = st.duration, r0 = r, r1 = r1, n0 = n, n1 = n + count }
    t, n, r = t + st.duration, n + count, r1
  end
  local k = 1
  return function(i)
    while stages[k] and i >= stages[k].n1 do k = k + 1 end
    local s = stages[k]
    if not s then return nil end
    local x = i - s.n0
    if x <= 0 then return s.t0 end
    local a, b = (s.r1 - s.r0) / (2 * s.d), s.r0
    return s.t0 + 2 * x / (b + math.sqrt(b * b + 4 * a * x))
  end, t
end

-- The VUs of an open model: a free VU is handed the next arrival directly;
-- arrivals that find none wait in a FIFO for the first VU to free up.
local Pool = {}
Pool.__index = Pool

local function vu_of_pool(run, pool)
  return function(vu)
    while true do
      local due = vu.due or pool:pop()
      vu.due = nil
      if due then
        run:activate(vu, true)
        run:iterate(vu, due)
        run:activate(vu, false)
      elseif pool.closed then
        return
      else
        if not vu.in_free then
          vu.in_free = true
          pool.free[#pool.free + 1] = vu
        end
        run:idle(vu)
      end
    end
  end
end

function Pool:pop()
  local q = self.queue
  if q.head > q.tail then return nil end
  local due = q[q.head]
  q[q.head], q.head = nil, q.head + 1
  return due
end

function Pool:add_vu(due)
  local vu = self.run:spawn_vu(self.group, self.body, false)
  vu.due = due
  return vu
end

-- dispatch(due): arrival `due` goes to a free VU, a new one (up to
-- max_vus) or the queue.
function Pool:dispatch(due)
  local free = self.free
  local vu = free[#free]
  if vu then
    free[#free] = nil
    vu.in_free, vu.due = false, due
    self.run:wake(vu)
  elseif self.group.allocated < self.max_vus then
    self:add_vu(due)
  else
    local q = self.queue
    q.tail = q.tail + 1
    q[q.tail] = due
  end
end

-- close() -> arrivals that never started; idle VUs are let go
function Pool:close()
  self.closed = true
  local q = self.queue
  local dropped = q.tail - q.head + 1
  self.queue = { head = 1, tail = 0 }
  for _, vu in ipairs(self.free) do
    vu.in_free = false
    self.run:wake(vu)
  end
  self.free = {}
  return dropped
end

local function arrival_rate(run, sc, group, start, at, total)
  local pool = setmetatable({ run = run, group = group, free = {}, queue = { head = 1, tail = 0 },
    max_vus = sc.max_vus }, Pool)
  pool.body = vu_of_pool(run, pool)
  for _ = 1, sc.pre_allocated_vus do
    local vu = pool:add_vu(nil)
    vu.in_free = true
    pool.free[#pool.free + 1] = vu
  end
  run:sample_vus()
  local seg = sc.segment
  local i, stride = seg and seg.k - 1 or 0, seg and seg.n or 1
  local ahead = early()
  while true do
    local offset = at(i)
    if not offset then break end
    local due = start + offset
    sleep_until(due - ahead)
    pool:dispatch(due)
    i = i + stride
  end
  sleep_until(start + total)
  run:dropped(pool:close(), group)
  group:finish(start + total + sc.graceful_stop)
end

local function constant_arrival_rate(run, sc, group, start)
  local at, total = constant_schedule(sc)
  arrival_rate(run, sc, group, start, at, total)
end

local function ramping_arrival_rate(run, sc, group, start)
  local at, total = ramping_schedule(sc)
  arrival_rate(run, sc, group, start, at, total)
end

M.run = {
  ["shared-iterations"] = shared_iterations,
  ["per-vu-iterations"] = per_vu_iterations,
  ["constant-vus"] = constant_vus,
  ["ramping-vus"] = ramping_vus,
  ["constant-arrival-rate"] = constant_arrival_rate,
  ["ramping-arrival-rate"] = ramping_arrival_rate,
}

-- max_duration(sc) -> how long the scenario may last, graceful stop
-- included (for the scenario lines before the run)
function M.max_duration(sc)
  local e = sc.executor
  local d
  if e == "shared-iterations" or e == "per-vu-iterations" then
    d = sc.max_duration
  elseif e == "ramping-vus" or e == "ramping-arrival-rate" then
    d = select(2, M.ramp_steps(0, sc.stages))
    if e == "ramping-vus" then d = d + sc.graceful_ramp_down end
  else
    d = sc.duration
  end
  return sc.start_time + d + sc.graceful_stop
end

-- max_vus(sc) -> the most VUs the scenario may run at once
function M.max_vus(sc)
  local e = sc.executor
  if e == "shared-iterations" then return math.min(sc.vus, sc.iterations) end
  if e == "per-vu-iterations" or e == "constant-vus" then return sc.vus end
  if e == "ramping-vus" then
    local m = sc.start_vus
    for _, st in ipairs(sc.stages) do m = math.max(m, st.target) end
    return m
  end
  return sc.max_vus
end

return M
