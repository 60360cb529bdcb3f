-- Shared by the benchmarks: timing and memory figures, printed plainly.
local task = require("sonde.task")
local process = require("sonde.process")

local M = {}

-- peak_rss_mb() -> this process's peak resident set size in MiB (VmHWM).
function M.peak_rss_mb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local kb = f:read("*a"):match("VmHWM:%s*(%d+)")
  f:close()
  return (tonumber(kb) or 0) / 1024
end

-- median of a list of numbers
function M.median(xs)
  table.sort(xs)
  local n = #xs
  if n % 2 == 1 then return xs[(n + 1) / 2] end
  return (xs[n / 2] + xs[n / 2 + 1]) / 2
end

-- run(argv) -> its stdout; a peer that fails stops the benchmark.
function M.run(argv)
  local code, out, err = process.run(argv)
  if code ~= 0 then error(table.concat(argv, " ") .. " failed: " .. err, 2) end
  return out
end

-- children_cpu() -> seconds of CPU (user + system) used so far by the
-- children this process has waited for: its difference around M.run is
-- what that peer used, a figure the load of the machine moves less than
-- its wall time.
local ffi = require("ffi")
pcall(ffi.cdef, [[
struct bench_timeval { long tv_sec, tv_usec; };
struct bench_rusage { struct bench_timeval ru_utime, ru_stime; long ru_rest[14]; };
int getrusage(int who, struct bench_rusage *usage);
]])
local usage = ffi.new("struct bench_rusage")
function M.children_cpu()
  ffi.C.getrusage(-1, usage) -- RUSAGE_CHILDREN
  local u, s = usage.ru_utime, usage.ru_stime
  return tonumber(u.tv_sec) + tonumber(u.tv_usec) / 1e6 + tonumber(s.tv_sec) + tonumber(s.tv_usec) / 1e6
end

-- run_cpu(argv) -> its stdout and the CPU seconds it used.
function M.run_cpu(argv)
  local c0 = M.children_cpu()
  local out = M.run(argv)
  return out, M.children_cpu() - c0
end

-- wall(argv, runs) -> median seconds of running argv to completion.
function M.wall(argv, runs)
  local times = {}
  for i = 1, runs do
    local t0 = task.now()
    M.run(argv)
    times[i] = task.now() - t0
  end
  return M.median(times)
end

-- wrk(url, connections, seconds) -> requests/s, and the count of non-2xx
-- or 3xx responses when wrk saw any.
function M.wrk(url, connections, seconds)
  local out = M.run { "wrk", "-t1", "-c" .. connections, "-d" .. seconds .. "s", url, timeout = seconds + 60 }
  return tonumber(out:match("Requests/sec:%s*([%d%.]+)")), out:match("Non%-2xx or 3xx responses: (%d+)")
end

function M.report(name, value, unit, extra)
  print(string.format("%-44s %12.3f %-6s %s", name, value, unit, extra or ""))
end

-- goal(text, met) prints one goal of the run as met (✓) or not (✗): `text`
-- says the figure, its peer and the goal, each figure printed above in the
-- same run. bench/run gathers these lines (SONDE_BENCH_GOALS names the file)
-- and prints them again at the end, one summary of the whole run.
function M.goal(text, met)
  local line = (met and "✓ " or "✗ ") .. text
  print("  goal " .. line)
  local path = os.getenv("SONDE_BENCH_GOALS")
  if path and path ~= "" then
    local f = assert(io.open(path, "a"))
    f:write(line, "\n")
    f:close()
  end
end

return M
