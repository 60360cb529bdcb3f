-- The HTML report of a 5000-test run: its size (goal: under 5 MB) and the
-- time headless chromium takes to parse, run its script and lay it out
-- (goal: under 2 s), measured in the page (performance.now() once layout is
-- done, from a copy with one script added) and as chromium's whole run
-- beside its run on an empty page. The spec file has 50 describe blocks,
-- a failure and a pending test in every hundred, and tests that print.
-- Usage: sonde run bench/report.lua [TESTS] [RUNS]
local bench = require("bench.lib")
local loop = require("sonde.c.loop")
local process = require("sonde.process")
local task = require("sonde.task")

local n = tonumber(arg[1]) or 5000
local runs = tonumber(arg[2]) or 3

local dir = os.tmpname()
os.remove(dir)
assert(loop.mkdir(dir))
local spec = dir .. "/many_spec.lua"
local f = assert(io.open(spec, "w"))
for b = 1, 50 do
  f:write(string.format('describe("block %d #b%d", function()\n', b, b % 5))
  for i = 1, n / 50 do
    local k = (b - 1) * (n / 50) + i
    if k % 100 == 7 then
      f:write(string.format('  it("case %d fails", function() assert.are.same({ a = 1, b = { %d } }, { a = 1, b = { ' ..
          '0 } }) end)\n', k, k))
    elseif k % 100 == 9 then
      f:write(string.format('  pending("case %d later")\n', k))
    elseif k % 100 == 11 then
      f:write(string.format('  it("case %d prints", function() print("line of case %d") end)\n', k, k))
    else
      f:write(string.format('  it("case %d", function() assert.are.same({ a = %d }, { a = %d }) end)\n', k, k, k))
    end
  end
  f:write("end)\n")
end
f:close()

-- timed(argv) -> seconds of a `sonde test` that exits 1 (the file has failures)
local function timed(argv)
  local t = task.now()
  local code, _, err = process.run(argv)
  if code ~= 1 then error("sonde test exited " .. tostring(code) .. ": " .. err) end
  return task.now() - t
end

-- whole runs, alternating, median of `runs` each (a first run fills the chunk cache)
local report = dir .. "/report.html"
process.run { loop.exe_path(), "test", "-o", "json=" .. dir .. "/r.json", spec, timeout = 600 }
local html_runs, json_runs = {}, {}
for i = 1, runs do
  html_runs[i] = timed { loop.exe_path(), "test", "-o", "html=" .. report, spec, timeout = 600 }
  json_runs[i] = timed { loop.exe_path(), "test", "-o", "json=" .. dir .. "/r.json", spec, timeout = 600 }
end
local t_run, t_json = bench.median(html_runs), bench.median(json_runs)
local html = assert(io.open(report)):read("*a")
bench.report(string.format("html report of %d tests", n), #html / 1e6, "MB", "goal: < 5 MB")
bench.report("  sonde test -o html= (whole run)", t_run * 1000, "ms")
bench.report("  sonde test -o json= (whole run, for scale)", t_json * 1000, "ms")

local chromium
for d in (os.getenv("PATH") or ""):gmatch("[^:]+") do
  if not chromium and loop.stat(d .. "/chromium") == "file" then chromium = d .. "/chromium" end
end
if not chromium then
  print("chromium is not installed (scripts/install-deps installs it): no render time")
else
  -- the copy that measures itself: layout forced, then the time since navigation start in the title
  local probe = dir .. "/probe.html"
  local measured = html:gsub("<head>", "<head><script>var t0=performance.now()</script>", 1)
    :gsub("</body>", "<script>document.body.getBoundingClientRect();document.body.offsetHeight;var " ..
        "t1=performance.now();"
    .. "document.title='rendered '+(t1-t0).toFixed(0)+' '+t1.toFixed(0)</script></body>")
  local function write(path, text)
    local out = assert(io.open(path, "w"))
    out:write(text)
    out:close()
  end
  write(probe, measured)
  local empty = dir .. "/empty.html"
  write(empty, "<!DOCTYPE html><title>e</title>")
  local function chrome(page)
    local t = task.now()
    local code, out, err = process.run { chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
      "--user-data-dir=" .. dir .. "/profile", "--dump-dom", "file://" .. page, timeout = 300,
          output_limit = 64 * 2 ^ 20 }
    if code ~= 0 then error("chromium failed: " .. err) end
    return task.now() - t, out
  end
  local in_page, from_nav, whole, base = {}, {}, {}, {}
  for i = 1, runs do
    local t, out = chrome(probe)
    local page_ms, nav_ms = out:match("<title>rendered (%d+) (%d+)</title>")
    in_page[i], from_nav[i] = tonumber(page_ms) or 0, tonumber(nav_ms) or 0
    whole[i] = t
    base[i] = chrome(empty)
  end
  bench.report(string.format("  parsed, scripted, laid out in chromium (median of %d)", runs), bench.median(in_page),
      "ms",
    "goal: < 2000 ms")
  bench.report("  the same from navigation start", bench.median(from_nav), "ms")
  bench.report("  chromium --dump-dom, the report", bench.median(whole) * 1000, "ms")
  bench.report("  chromium --dump-dom, an empty page", bench.median(base) * 1000, "ms")
end
process.run { "rm", "-rf", dir }
