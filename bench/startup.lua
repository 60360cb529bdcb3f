-- `sonde test` on one file with one trivial `it`, against `luajit -e ''`:
-- the whole process, start to exit, median of 30 runs each, wall and CPU
-- time (on a loaded machine the wall time is mostly the wait for a CPU, so
-- the goal reads the CPU time, which on an idle one is the wall time).
local bench = require("bench.lib")
local loop = require("sonde.c.loop")
local task = require("sonde.task")

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
local spec = dir .. "/one_spec.lua"
local f = assert(io.open(spec, "w"))
f:write('it("is trivial", function() end)\n')
f:close()

local sonde = loop.exe_path()
local runs = tonumber(arg[1]) or 30
local function times(argv)
  local wall, cpu = {}, {}
  for i = 1, runs do
    local t0 = task.now()
    local _, c = bench.run_cpu(argv)
    wall[i], cpu[i] = task.now() - t0, c
  end
  return bench.median(wall), bench.median(cpu)
end
local s_wall, s_cpu = times { sonde, "test", spec }
local l_wall, l_cpu = times { "luajit", "-e", "" }
os.execute("rm -rf " .. dir)
bench.report("sonde test, one trivial it (median)", s_wall * 1000, "ms", string.format("%.1f ms CPU", s_cpu * 1000))
bench.report("luajit -e '' (median)", l_wall * 1000, "ms", string.format("%.1f ms CPU", l_cpu * 1000))
bench.report("ratio sonde test / luajit -e ''", s_wall / l_wall, "x")
bench.goal(string.format("sonde test of one trivial it: %.1f ms CPU, %.1f ms wall, luajit -e '' %.1f ms CPU "
  .. "(goal <= 10 ms)", s_cpu * 1000, s_wall * 1000, l_cpu * 1000), s_cpu <= 0.010)
