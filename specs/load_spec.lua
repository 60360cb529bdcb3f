-- sonde load: k6's executors, metrics, thresholds and summary, run in this
-- process (exact counts on a virtual clock, HTTP against nginx) and as
-- `sonde load` subprocesses (exit codes, --out json, segments and merge).
local support = require("specs.support")
local servers = require("specs.servers")
local clock = require("sonde.clock")
local json = require("sonde.json")
local load = require("sonde.load")
local load_cli = require("sonde.load.cli")
local summary = require("sonde.load.summary")

-- A sink for the header and summary of a run in this process.
local function buffer()
  local b = { parts = {} }
  function b:write(...)
    for _, s in ipairs({ ... }) do self.parts[#self.parts + 1] = tostring(s) end
    return self
  end
  function b:flush() end
  function b:text() return table.concat(self.parts) end
  return b
end

-- script(text) -> the path of a file holding text, in the test's temp dir
local function script(text)
  local path = support.temp_dir("load") .. "/script.lua"
  support.write_file(path, text)
  return path
end

-- run(text[, cli]) -> exit code, the summary's data, its text: the script
-- run by `sonde load`'s own code, in this task
local function run(text, cli)
  local out, err = buffer(), buffer()
  local code, report = load_cli.run_script(script(text), cli or { quiet = true }, out, err)
  return code, report and summary.to_data(report), out:text(), err:text()
end

-- virtual(text[, cli]) -> as run, on a virtual clock: sleeps take no time
-- and every count is exact
local function virtual(text, cli)
  return clock.virtual(run, text, cli)
end

local function values(data, name)
  local m = data.metrics[name]
  assert(m, "no metric " .. name .. " in the summary")
  return m.values
end

describe("sonde load executors (virtual clock: exact counts)", function()
  it("shared-iterations: the iterations, shared by the VUs", function()
    local code, data = virtual([[
      local load = require("sonde.load")
      options = { vus = 4, iterations = 10 }
      function default() load.sleep(1) end
    ]])
    assert.are.equal(0, code)
    assert.are.equal(10, values(data, "iterations").count)
    assert.are.equal(4, values(data, "vus_max").max)
    assert.are.equal(3, data.duration) -- ceil(10 / 4) rounds of 1 s
    assert.are.equal(0, data.interrupted)
  end)

  it("per-vu-iterations: the iterations for each VU", function()
    local code, data = virtual([[
      local load = require("sonde.load")
      local per_vu = load.Counter("per_vu")
      options = { scenarios = { each = { executor = "per-vu-iterations", vus = 3, iterations = 4 } },
        thresholds = { ["per_vu{vu:2}"] = { "count==4" } } }
      function default()
        per_vu:add(1, { vu = load.vu().id })
        load.sleep(0.5)
      end
    ]])
    assert.are.equal(0, code)
    assert.are.equal(12, values(data, "iterations").count)
    assert.are.equal(4, values(data, "per_vu{vu:2}").count)
    assert.are.equal(3, values(data, "vus").max)
  end)

  it("constant-vus: each VU loops for the duration", function()
    local code, data = virtual([[
      local load = require("sonde.load")
      options = { vus = 5, duration = "10s" }
      function default() load.sleep(1) end
    ]])
    assert.are.equal(0, code)
    assert.are.equal(50, values(data, "iterations").count)
    assert.are.same({ value = 5, min = 5, max = 5 }, values(data, "vus"))
  end)

  it("the command line's --vus and --duration replace the script's scenarios", function()
    local code, data = virtual([[
      local load = require("sonde.load")
      options = { scenarios = { one = { executor = "shared-iterations", iterations = 1 } } }
      function default() load.sleep(1) end
    ]], { quiet = true, vus = 2, duration = 3 })
    assert.are.equal(0, code)
    assert.are.equal(6, values(data, "iterations").count)
    assert.are.same({ "default" }, data.scenarios)
  end)

  -- VU k of 4 joins at k s and leaves at 11-k s; iterations of 0.4 s
  -- started in [k, 11-k) all finish (graceful ramp-down 10 s): ceil((11-2k)/0.4)
  it("ramping-vus: VUs join and leave one at a time along the stages", function()
    local code, data = virtual([[
      local load = require("sonde.load")
      options = { scenarios = { ramp = { executor = "ramping-vus", start_vus = 0, graceful_ramp_down = "10s",
        stages = { { duration = "4s", target = 4 }, { duration = "2s", target = 4 }, { duration = "4s",
            target = 0 } } } } }
      function default() load.sleep(0.4) end
    ]])
    assert.are.equal(0, code)
    assert.are.equal(23 + 18 + 13 + 8, values(data, "iterations").count)
    assert.are.equal(0, data.interrupted)
    assert.are.equal(4, values(data, "vus_max").max)
  end)

  it("ramping-vus: an iteration still running when its ramp-down time is up is interrupted", function()
    local _, data = virtual([[
      local load = require("sonde.load")
      options = { scenarios = { ramp = { executor = "ramping-vus", start_vus = 0, graceful_ramp_down = "0.1s",
        stages = { { duration = "4s", target = 4 }, { duration = "2s", target = 4 }, { duration = "4s",
            target = 0 } } } } }
      function default() load.sleep(0.4) end
    ]])
    -- VUs 4, 3, 2 leave mid-iteration; VU 1 leaves at the end (graceful stop)
    assert.are.equal(3, data.interrupted)
    assert.are.equal(23 + 17 + 12 + 7, values(data, "iterations").count)
  end)

  it("constant-arrival-rate: iterations start on the schedule", function()
    local code, data = virtual([[
      local load = require("sonde.load")
      options = { scenarios = { arrivals = { executor = "constant-arrival-rate", rate = 20, time_unit = "1s",
        duration = "3s", pre_allocated_vus = 2, max_vus = 10 } } }
      function default() load.sleep(0.15) end
    ]])
    assert.are.equal(0, code)
    assert.are.equal(60, values(data, "iterations").count)
    assert.is_nil(data.metrics.dropped_iterations)
    assert.are.equal(4, values(data, "vus_max").max) -- 0.15 s of work every 0.05 s: 3 busy, a 4th as one frees
  end)

  it("ramping-arrival-rate: the rate moves linearly through the stages", function()
    local code, data = virtual([[
      local load = require("sonde.load")
      options = { scenarios = { ramp = { executor = "ramping-arrival-rate", start_rate = 0, time_unit = "1s",
        pre_allocated_vus = 2, max_vus = 20,
        stages = { { duration = "10s", target = 10 }, { duration = "10s", target = 10 } } } } }
      function default() load.sleep(0.1) end
    ]])
    assert.are.equal(0, code)
    assert.are.equal(50 + 100, values(data, "iterations").count)
  end)

  -- 4 arrivals (at 0, .25, .5, .75 s) for one VU whose iterations take
  -- .4 s: the second starts at .4, the third at .8, the fourth is still
  -- waiting when the scenario ends at 1 s.
  it("arrival rates count durations from the intended start (no coordinated omission)", function()
    local _, data = virtual([[
      local load = require("sonde.load")
      options = { scenarios = { slow = { executor = "constant-arrival-rate", rate = 4, duration = "1s",
        pre_allocated_vus = 1, max_vus = 1 } } }
      function default() load.sleep(0.4) end
    ]])
    local d = values(data, "iteration_duration")
    assert.are.equal(3, d.count)
    assert.are.equal(400, d.min)
    assert.is_true(math.abs(d.max - 700) < 1e-6, "max " .. d.max)
    assert.is_true(math.abs(d.avg - (400 + 550 + 700) / 3) < 1e-6, "avg " .. d.avg)
    assert.are.equal(1, values(data, "dropped_iterations").count)
  end)

  it("an iteration's error is counted with its first messages, and the VU goes on", function()
    local code, data, text = virtual([[
      local load = require("sonde.load")
      options = { scenarios = { each = { executor = "per-vu-iterations", vus = 2, iterations = 5 } } }
      function default()
        load.sleep(0.1)
        if load.vu().iteration % 2 == 1 then error("odd iteration " .. load.vu().iteration) end
      end
    ]])
    assert.are.equal(0, code)
    assert.are.equal(10, values(data, "iterations").count)
    assert.are.equal(4, values(data, "iteration_errors").count)
    local first = data.iteration_errors.first
    assert.are.equal(2, #first)
    assert.matches("script%.lua:5: odd iteration 1$", first[1].message)
    assert.are.equal(2, first[1].count)
    assert.matches("ITERATION ERRORS: 4", text)
  end)

  it("setup's value reaches every iteration and teardown; their samples count too", function()
    local code, data = virtual([[
      local load = require("sonde.load")
      local seen = load.Counter("seen")
      local torn = load.Gauge("torn")
      options = { vus = 2, iterations = 6 }
      function setup() return { weight = 5 } end
      function default(data) seen:add(data.weight) end
      function teardown(data) torn:add(data.weight * 2) end
    ]])
    assert.are.equal(0, code)
    assert.are.equal(30, values(data, "seen").count)
    assert.are.equal(10, values(data, "torn").value)
  end)

  it("an error in teardown exits 107 after the summary", function()
    local code, data, text, err = virtual([[
      options = { iterations = 3 }
      function default() end
      function teardown() error("cannot clean up") end
    ]])
    assert.are.equal(107, code)
    assert.are.equal(3, values(data, "iterations").count)
    assert.matches("METRICS", text)
    assert.matches("^sonde load: teardown failed: [^\n]*script%.lua:3: cannot clean up\n$", err)
  end)

  it("abort_on_fail stops the run at the first check that finds the threshold crossed", function()
    local code, data, text, err = virtual([[
      local load = require("sonde.load")
      options = { vus = 5, duration = "30s",
        thresholds = { iterations = { { threshold = "count<20", abort_on_fail = true } } } }
      function default() load.sleep(0.3) end
    ]])
    assert.are.equal(99, code)
    assert.are.equal("sonde load: thresholds crossed: iterations 'count<20'\n", err)
    -- checked each second: 15 iterations at 1 s, 30 at 2 s; the 5 running are cancelled
    assert.are.equal(30, values(data, "iterations").count)
    assert.are.equal(5, data.interrupted)
    assert.matches("aborted: threshold 'count<20' on iterations crossed", text)
  end)
end)

describe("sonde load metrics and thresholds", function()
  it("custom Trend, Counter, Rate and Gauge take samples and thresholds", function()
    local code, data, text = virtual([[
      local load = require("sonde.load")
      local t, c, r, g = load.Trend("wait_ms", true), load.Counter("things"), load.Rate("good"), load.Gauge("level")
      options = { iterations = 100, thresholds = { wait_ms = { "p(95)<97", "med<=51", "max==100", "count==100" },
        things = { "count==200" }, good = { "rate>=0.75" }, level = { "value==100" } } }
      function default()
        local i = load.vu().iteration + 1
        t:add(i)
        c:add(2)
        r:add(i % 4 ~= 0)
        g:add(i)
      end
    ]])
    assert.are.equal(0, code, text)
    local w = values(data, "wait_ms")
    assert.are.equal(1, w.min)
    assert.are.equal(100, w.max)
    assert.is_true(math.abs(w["p(95)"] - 95.05) <= 95.05 / 128, "p(95) " .. w["p(95)"])
    assert.are.equal(0.75, values(data, "good").rate)
    assert.are.same({ value = 100, min = 1, max = 100 }, values(data, "level"))
    assert.matches("✓ 'p%(95%)<97' p%(95%)=", text)
  end)

  it("load.check counts each named check, and returns whether all passed", function()
    local code, data, text = virtual([[
      local load = require("sonde.load")
      options = { iterations = 10, thresholds = { checks = { "rate>0.7" },
          ["checks{check:is even}"] = { "rate>=0.5" } } }
      function default()
        local i = load.vu().iteration
        local all = load.check(i, { ["is even"] = function(v) return v % 2 == 0 end,
          ["is small"] = function(v) return v < 100 end })
        assert(all == (i % 2 == 0))
      end
    ]])
    assert.are.equal(0, code, text)
    assert.are.same({ passes = 15, fails = 5, rate = 0.75 }, values(data, "checks"))
    assert.are.same({ { name = "is even", passes = 5, fails = 5 }, { name = "is small", passes = 10, fails = 0 } },
      data.checks)
    assert.matches("✗ is even\n     ↳  50%% — ✓ 5 / ✗ 5\n    ✓ is small", text)
  end)

  it("outside a load run, checks only return their result", function()
    assert.is_true(load.check(4, { even = function(v) return v % 2 == 0 end }))
    assert.is_false(load.check(3, { even = function(v) return v % 2 == 0 end }))
    assert.has_error(function() load.check(3, "even") end,
      'load.check: expected a table of named checks { ["status is 200"] = function(r) ... end }, got string')
  end)

  describe("against nginx", function()
    local ngx
    setup(function() ngx = servers.nginx() end)

    it("records every request with its tags, phases and bytes", function()
      local code, data, text = run(string.format([[
        local http = require("sonde.http")
        local load = require("sonde.load")
        local URL = %q
        options = { scenarios = {
          browse = { executor = "shared-iterations", vus = 4, iterations = 40 },
          orders = { executor = "per-vu-iterations", vus = 2, iterations = 5, exec = "order",
              tags = { team = "shop" } },
        }, thresholds = { http_req_duration = { "p(95)<5000" }, ["http_reqs{scenario:orders}"] = { "count==20" },
          ["http_reqs{name:health}"] = { "count==10" }, ["http_reqs{team:shop}"] = { "count==20" },
          ["http_req_failed{status:404}"] = { "rate==1" }, http_req_failed = { "rate<0.2" } } }
        function default()
          local r = http.get(URL .. "/small.json")
          load.check(r, { ["status is 200"] = function(r) return r.status == 200 end })
        end
        function order()
          http.get(URL .. "/health", { tags = { name = "health" } })
          http.get(URL .. "/missing")
        end
      ]], ngx.url))
      assert.are.equal(0, code, text)
      assert.are.equal(60, values(data, "http_reqs").count)
      assert.are.equal(50, values(data, "iterations").count)
      assert.are.equal(60, values(data, "http_req_duration").count)
      assert.are.equal(60, values(data, "http_req_waiting").count)
      assert.are.equal(20, values(data, "http_reqs{scenario:orders}").count)
      assert.are.equal(10, values(data, "http_reqs{name:health}").count)
      assert.are.equal(10, values(data, "http_req_failed").passes) -- the 404s
      assert.are.equal(10, values(data, "http_req_failed{status:404}").passes)
      assert.are.equal(40, values(data, "checks").passes)
      assert.is_true(values(data, "data_received").count > 60 * 100)
      assert.is_true(values(data, "data_sent").count > 60 * 40)
      -- nginx answers on loopback well within a second
      assert.is_true(values(data, "http_req_duration").max < 1000)
    end)

    -- real time: bounds that only a broken executor can cross
    it("constant-vus and ramping-arrival-rate on real time: one request per iteration, counts within bounds", function()
      local code, data, text = run(string.format([[
        local http = require("sonde.http")
        local load = require("sonde.load")
        local URL = %q
        options = { scenarios = {
          looping = { executor = "constant-vus", vus = 3, duration = "1s" },
          rising = { executor = "ramping-arrival-rate", start_rate = 0, pre_allocated_vus = 5, max_vus = 20,
            stages = { { duration = "1s", target = 20 } }, exec = "once" },
        }, thresholds = { ["iterations{scenario:looping}"] = { "count>=3" },
            ["iterations{scenario:rising}"] = { "count>0" },
          ["dropped_iterations{scenario:rising}"] = { "count>=0" } } }
        function default()
          http.get(URL .. "/small.json")
          load.sleep(0.2)
        end
        function once() http.get(URL .. "/health") end
      ]], ngx.url))
      assert.are.equal(0, code, text)
      assert.are.equal(values(data, "iterations").count, values(data, "http_reqs").count)
      -- 3 VUs for 1 s of iterations >= 0.2 s: each starts 1 to 5 of them
      local looping = values(data, "iterations{scenario:looping}").count
      assert.is_true(looping >= 3 and looping <= 15, "looping iterations: " .. looping)
      -- 0 to 20 a second over 1 s is 10 arrivals, each run or dropped
      assert.are.equal(10, values(data, "iterations{scenario:rising}").count +
        values(data, "dropped_iterations{scenario:rising}").count)
    end)

    it("a slow server's queueing shows in http_req_duration under an arrival rate", function()
      local server = require("sonde.server")
      local task = require("sonde.task")
      local slow = server.serve({}, function(s)
        s:get("/slow", function()
          task.sleep(0.3)
          return "ok"
        end)
      end)
      local code, data, text = run(string.format([[
        local http = require("sonde.http")
        options = { scenarios = { orders = { executor = "constant-arrival-rate", rate = 5, duration = "2s",
          pre_allocated_vus = 1, max_vus = 1 } } }
        function default() http.get(%q) end
      ]], slow.url .. "/slow"))
      slow:close()
      assert.are.equal(0, code, text)
      local d = values(data, "http_req_duration")
      -- every request takes 0.3 s; arrivals come every 0.2 s to one VU, so
      -- the third (due at 0.4 s) cannot start before 0.6 s: >= 0.5 s late
      -- to finish. Measured from when each was sent, none would pass 0.3 s.
      assert.is_true(d.min >= 290, "min " .. d.min)
      assert.is_true(d.max >= 490, "max " .. d.max)
      assert.are.equal(10, values(data, "iterations").count + values(data, "dropped_iterations").count)
    end)

    it("a crossed threshold exits 99 and is marked ✗ in the summary", function()
      local path = script(string.format([[
        local http = require("sonde.http")
        options = { vus = 2, iterations = 6, thresholds = { http_req_duration = { "max<0", "avg>=0" } } }
        function default() http.get(%q) end
      ]], ngx.url .. "/small.json"))
      local code, out, err = support.sonde("load", "-q", path)
      assert.are.equal(99, code, err)
      assert.matches("✗ 'max<0' max=", out)
      assert.matches("✓ 'avg>=0' avg=", out)
      assert.matches("✗ http_req_duration%.%.%.+: avg=", out)
      assert.are.equal("sonde load: thresholds crossed: http_req_duration 'max<0'\n", err)
    end)

    it("--out json writes one JSON object per line: metrics, points and the summary the text shows", function()
      local dir = support.temp_dir("load-json")
      local path = dir .. "/script.lua"
      support.write_file(path, string.format([[
        local http = require("sonde.http")
        local load = require("sonde.load")
        options = { vus = 3, iterations = 30, thresholds = { http_req_duration = { "p(99)<5000" } } }
        function default()
          local r = http.get(%q)
          load.check(r, { ok = function(r) return r.ok end })
        end
      ]], ngx.url .. "/small.json"))
      local code, out, err = support.sonde("load", "-q", path, "--out", "json=" .. dir .. "/out.json")
      assert.are.equal(0, code, err)
      local points, declared, final = {}, {}, nil
      for line in io.lines(dir .. "/out.json") do
        local obj = json.decode(line)
        if obj.type == "Point" then
          points[obj.metric] = (points[obj.metric] or 0) + 1
          assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z$", obj.data.time)
        elseif obj.type == "Metric" then
          declared[obj.metric] = obj.data.type
        else
          assert.are.equal("Summary", obj.type)
          final = obj.data
        end
      end
      assert.are.equal(30, points.http_reqs)
      assert.are.equal(30, points.http_req_duration)
      assert.are.equal(30, points.checks)
      assert.are.equal("trend", declared.http_req_duration)
      assert.are.equal(30, final.metrics.http_reqs.values.count)
      -- every number of the text summary is the JSON summary's
      for _, name in ipairs({ "http_req_duration", "iteration_duration" }) do
        local v = final.metrics[name].values
        local shown = {}
        for _, stat in ipairs({ "avg", "min", "med", "max", "p(90)", "p(95)" }) do
          shown[#shown + 1] = stat .. "=" .. summary.ms(v[stat])
        end
        assert.truthy(out:find(table.concat(shown, " "), 1, true), name .. " not shown as " .. table.concat(shown, " "))
      end
      local reqs = final.metrics.http_reqs.values
      assert.truthy(out:find(string.format("%-10s %.2f/s", "30", reqs.rate), 1, true))
      assert.truthy(out:find(string.format("'p(99)<5000' p(99)=%s", summary.ms(final.thresholds[1].list[1].observed)),
        1, true))
    end)

    it("two segments merged equal one run's counts", function()
      local dir = support.temp_dir("load-merge")
      local path = dir .. "/script.lua"
      support.write_file(path, string.format([[
        local http = require("sonde.http")
        local load = require("sonde.load")
        local URL = %q
        options = { scenarios = {
          shared = { executor = "shared-iterations", vus = 5, iterations = 101 },
          each = { executor = "per-vu-iterations", vus = 3, iterations = 7, exec = "health" },
          arrivals = { executor = "constant-arrival-rate", rate = 30, duration = "1s", pre_allocated_vus = 5,
            exec = "health" },
        }, thresholds = { ["http_reqs{scenario:each}"] = { "count==21" } } }
        function default()
          load.check(http.get(URL .. "/small.json"), { ok = function(r) return r.status == 200 end })
        end
        function health() http.get(URL .. "/health") end
      ]], ngx.url))
      local function sonde_load(...)
        local code, out, err = support.sonde("load", "-q", path, ...)
        return code, out, err
      end
      assert.are.equal(0, (sonde_load("-o", "json=" .. dir .. "/whole.json")))
      -- a segment alone has 1/2 of the 21 requests: its threshold is crossed
      assert.are.equal(99, (sonde_load("--segment", "1/2", "-o", "json=" .. dir .. "/a.json")))
      assert.are.equal(99, (sonde_load("--segment", "2/2", "-o", "json=" .. dir .. "/b.json")))
      local code, out, err = support.sonde("load", "merge", dir .. "/a.json", dir .. "/b.json", "-o",
        "json=" .. dir .. "/merged.json")
      assert.are.equal(0, code, err)
      assert.matches("merged segments 1/2 %+ 2/2", out)
      local function counts(file)
        local last
        for line in io.lines(file) do last = line end
        local m = json.decode(last).data.metrics
        return { iterations = m.iterations.values.count, reqs = m.http_reqs.values.count,
          durations = m.http_req_duration.state.count, checks = m.checks.values.passes,
          each = m["http_reqs{scenario:each}"].values.count, vus_max = m.vus_max.values.max }
      end
      local whole, merged = counts(dir .. "/whole.json"), counts(dir .. "/merged.json")
      assert.are.same(whole, merged)
      assert.are.equal(101 + 21 + 30, whole.iterations)
      assert.are.equal(21, merged.each)
    end)
  end)
end)

describe("sonde load: bad input is one line, and nothing starts", function()
  local cases = {
    { "bad_executor.lua", 107,
        "bad_executor.lua:5: scenario 'browse': unknown executor 'constant%-vu' %(expected one " ..
      "of: constant%-arrival%-rate, constant%-vus, per%-vu%-iterations, ramping%-arrival%-rate, ramping%-vus, " ..
      "shared%-iterations%)" },
    { "bad_option.lua", 107, "bad_option.lua:6: scenario 'browse' %(constant%-vus%): unknown option 'vu' %(expected " ..
      "one of: duration, exec, executor, graceful_stop, start_time, tags, vus%)" },
    { "bad_threshold.lua", 107, "bad_threshold.lua:4: threshold 'p%(95%)<<2' on http_req_duration does not parse: " ..
      "expected AGGREGATION OPERATOR NUMBER" },
    { "bad_metric.lua", 107, "bad_metric.lua:5: threshold on 'http_req_durations': no metric of that name" },
    { "bad_stage.lua", 107, "bad_stage.lua:7: scenario 'ramp': stage 3 has no duration" },
    { "bad_exec.lua", 107, "bad_exec.lua:5: scenario 'orders': exec names 'place_order', which is no function of " ..
      "the script" },
    { "no_default.lua", 107, "no_default.lua: the script defines no function default" },
    { "setup_error.lua", 107, "setup failed: specs/fixtures/load/setup_error.lua:3: cannot get a token" },
    { "init_error.lua", 107, "init_error.lua:3: attempt to index local 'config' %(a nil value%)" },
  }
  for _, case in ipairs(cases) do
    it(case[1], function()
      local code, out, err = support.sonde("load", "-q", support.fixture("load/" .. case[1]))
      assert.are.equal(case[2], code, err)
      assert.matches("^sonde load: [^\n]*" .. case[3] .. "[^\n]*\n$", err)
      assert.is_nil(out:find("setup ran", 1, true))
      assert.is_nil(out:find("iteration ran", 1, true))
      assert.is_nil(out:find("METRICS", 1, true))
    end)
  end

  it("a usage mistake on the command line exits 2", function()
    local usage = {
      { { "--vus", "0", "x.lua" }, "--vus expects a whole number of at least 1, got '0'" },
      { { "--segment", "3/2", "x.lua" }, "--segment expects K/N with 1 <= K <= N (for example 2/4), got '3/2'" },
      { { "--duration", "5x", "x.lua" }, "--duration expects a duration such as 30s, 1m30s or 500ms, got '5x'" },
      { { "-o", "xml=r.xml", "x.lua" }, "--out expects json=FILE or html=FILE, got 'xml=r.xml'" },
      { { "-o", "html=a.html", "-o", "html=b.html", "x.lua" }, "--out html=FILE may be given once" },
      { { "--bogus", "x.lua" }, "unknown option '--bogus' (see sonde load --help)" },
      { {}, "expected one SCRIPT to run (see sonde load --help)" },
      { { "/no/such/script.lua" }, "cannot read /no/such/script.lua: no such file or not readable" },
    }
    for _, u in ipairs(usage) do
      local code, _, err = support.sonde("load", unpack(u[1]))
      assert.are.equal(2, code, err)
      assert.are.equal("sonde load: " .. u[2] .. "\n", err)
    end
    local code, _, err = support.sonde("load", "merge", support.fixture("load/bad_exec.lua"))
    assert.are.equal(2, code)
    assert.matches("^sonde load merge: specs/fixtures/load/bad_exec.lua: no Summary line", err)
  end)
end)
