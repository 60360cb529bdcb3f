-- The scheduler under load: 100k tasks that each sleep 10 ms, against the
-- same with bare LuaJIT coroutines and the least scheduler that can run them
-- (a FIFO of deadlines, nanosleep until the next one), each a process of its
-- own so that its peak RSS is its own; then 1M spawn+join of an empty
-- function. What one task costs is the difference between N and 0 sleepers,
-- divided by N, for both.
-- Usage: sonde run bench/tasks.lua [N] [SPAWNS] [ROUNDS]
local bench = require("bench.lib")
local task = require("sonde.task")
local loop = require("sonde.c.loop")

local n = tonumber(arg[1]) or 100000
local m = tonumber(arg[2]) or 1000000
local rounds = tonumber(arg[3]) or 3

-- Both print: seconds from the first spawn to the last one done, and the
-- process's peak RSS in KiB.
local HWM = [[
local function peak_kb()
  local f = io.open("/proc/self/status")
  local kb = f:read("*a"):match("VmHWM:%s*(%d+)")
  f:close()
  return tonumber(kb)
end
]]
local SONDE = HWM .. [[
local task = require("sonde.task")
local n = tonumber(arg[1])
local t0 = task.now()
local handles = {}
for i = 1, n do handles[i] = task.spawn(task.sleep, 0.01) end
for i = 1, n do handles[i]:join() end
print(task.now() - t0, peak_kb())
]]
local BARE = HWM .. [[
local ffi = require("ffi")
ffi.cdef [=[
typedef struct { long tv_sec, tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *ts);
int nanosleep(const bench_timespec *want, bench_timespec *left);
]=]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end
local function sleep(s)
  local want = ffi.new("bench_timespec", math.floor(s), (s - math.floor(s)) * 1e9)
  ffi.C.nanosleep(want, nil)
end
local yield = coroutine.yield
local function sleeper(d) yield(d) end
local n = tonumber(arg[1])
local t0 = now()
local cos, due = {}, {}
for i = 1, n do
  local co = coroutine.create(sleeper)
  local _, d = coroutine.resume(co, 0.01)
  cos[i], due[i] = co, now() + d
end
for i = 1, n do -- one delay for all: creation order is deadline order
  local wait = due[i] - now()
  if wait > 0 then sleep(wait) end
  coroutine.resume(cos[i])
end
print(now() - t0, peak_kb())
]]

local function sonde_run(count)
  local out = bench.run { loop.exe_path(), "run", "-", tostring(count), stdin = SONDE }
  local s, kb = out:match("(%S+)%s+(%S+)")
  return tonumber(s), tonumber(kb)
end
local function bare_run(count)
  local out = bench.run { "luajit", "-", tostring(count), stdin = BARE }
  local s, kb = out:match("(%S+)%s+(%S+)")
  return tonumber(s), tonumber(kb)
end

local st, sk, bt, bk, s0, b0 = {}, {}, {}, {}, {}, {}
for r = 1, rounds do
  st[r], sk[r] = sonde_run(n)
  bt[r], bk[r] = bare_run(n)
  s0[r] = select(2, sonde_run(0))
  b0[r] = select(2, bare_run(0))
end
local s_time, s_kb, b_time, b_kb = bench.median(st), bench.median(sk), bench.median(bt), bench.median(bk)
local s_task = (s_kb - bench.median(s0)) * 1024 / n
local b_task = (b_kb - bench.median(b0)) * 1024 / n
bench.report(string.format("%d tasks sleeping 10 ms (median of %d)", n, rounds), s_time * 1000, "ms")
bench.report("  peak RSS", s_kb / 1024, "MiB", string.format("%.0f bytes a task", s_task))
bench.report("  bare LuaJIT coroutines, the same", b_time * 1000, "ms")
bench.report("  peak RSS", b_kb / 1024, "MiB", string.format("%.0f bytes a coroutine", b_task))
bench.report("  ratio sonde / bare, time", s_time / b_time, "x", "goal: <= 2")
bench.report("  ratio sonde / bare, peak RSS", s_kb / b_kb, "x", "goal: <= 2")
bench.goal(string.format("%d sleeping tasks: %.0f ms, %.1fx bare coroutines (goal <= 2)", n, s_time * 1000,
  s_time / b_time), s_time / b_time <= 2)
bench.goal(string.format("%d sleeping tasks: %.0f MiB peak RSS, %.1fx bare coroutines (goal <= 2)", n, s_kb / 1024,
  s_kb / b_kb), s_kb / b_kb <= 2)

local empty = function() end
local t0 = task.now()
for _ = 1, m do task.spawn(empty):join() end
local spawned = task.now() - t0
bench.report(string.format("%d spawn+join of an empty function", m), spawned * 1000, "ms")
bench.report("spawn+join rate", m / spawned / 1e6, "M/s")
