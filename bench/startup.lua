-- `sonde test` on one file with one trivial `it`, against `luajit -e ''`:
-- the whole process, start to exit, median of 30 runs each.
local bench = require("bench.lib")
local loop = require("sonde.c.loop")

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
local spec = dir .. "/one_spec.lua"
local f = assert(io.open(spec, "w"))
f:write('it("is trivial", function() end)\n')
f:close()

local sonde = loop.exe_path()
local runs = tonumber(arg[1]) or 30
local t_sonde = bench.wall({ sonde, "test", spec }, runs)
local t_luajit = bench.wall({ "luajit", "-e", "" }, runs)
os.execute("rm -rf " .. dir)
bench.report("sonde test, one trivial it (median)", t_sonde * 1000, "ms", "goal: <= 10 ms")
bench.report("luajit -e '' (median)", t_luajit * 1000, "ms")
bench.report("ratio sonde test / luajit -e ''", t_sonde / t_luajit, "x")
bench.goal(string.format("sonde test of one trivial it: %.1f ms, %.1fx luajit -e '' (goal <= 10 ms)", t_sonde * 1000,
  t_sonde / t_luajit), t_sonde <= 0.010)
