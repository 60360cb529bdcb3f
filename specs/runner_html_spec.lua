-- The HTML report (-o html=FILE), read back by a real browser: Debian's
-- chromium, headless, prints the DOM once the page's script has run (skipped,
-- saying so, where chromium is not installed). The run is of
-- fixtures/runner/report_mix.lua under --retries 1: passes, a failure with
-- a diff, an error, pending, a flaky test, tags, output and HTTP requests.
local cjson = require("cjson")
local loop = require("sonde.c.loop")
local process = require("sonde.process")
local support = require("specs.support")
local servers = require("specs.servers")
local summary = require("sonde.load.summary")

local sonde, fixture = support.sonde, support.fixture

local function find_chromium()
  for dir in (os.getenv("PATH") or ""):gmatch("[^:]+") do
    for _, name in ipairs({ "chromium", "chromium-browser" }) do
      if loop.stat(dir .. "/" .. name) == "file" then return dir .. "/" .. name end
    end
  end
end

local CHROMIUM = find_chromium()
local NO_CHROMIUM = "chromium is not installed (scripts/install-deps installs it)"

local read = support.read_file

-- The DOM of the page at path (absolute, maybe with a query) after its
-- script ran.
local function dump_dom(path)
  local profile = support.temp_dir("chromium")
  local code, out, err = process.run { CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--user-data-dir=" .. profile, "--dump-dom", "file://" .. path, timeout = 240 }
  assert.are.equal(0, code, err)
  return out
end

local function count(text, pattern)
  local n = 0
  for _ in text:gmatch(pattern) do n = n + 1 end
  return n
end

-- has(page, text[, pattern]): the page holds text (a pattern with
-- `pattern`); a failure names what is missing, not the whole page.
local function has(page, text, pattern)
  if not page:find(text, 1, not pattern) then error("the page lacks: " .. text, 2) end
end

describe("the html report", function()
  it("shows every outcome, the diff, the redacted exchange, requests and the timeline in chromium", function()
    if not CHROMIUM then return pending(NO_CHROMIUM) end
    local dir = support.temp_dir("html")
    local report, json = dir .. "/report.html", dir .. "/report.json"
    local code = sonde("test", "--retries", "1", "-o", "html=" .. report, "-o", "json=" .. json,
      fixture("runner/report_mix.lua"))
    assert.are.equal(1, code)
    local counts = cjson.decode(read(json)).counts
    local dom = dump_dom(report)
    -- the script ran: tabs and the filter's count
    has(dom, '<html lang="en" class="js">')
    has(dom, '<span id="shown">7 of 7 tests shown</span>')
    has(dom, '<a href="#tests" class="on">Tests</a>')
    -- the summary agrees with the json report
    has(dom, string.format('<span class="c pass">%d passed</span>', counts.passed))
    has(dom, string.format('<span class="c fail">%d failed</span> (1 failure, 1 error)', counts.failed))
    has(dom, string.format('<span class="c pending">%d skipped</span>', counts.skipped))
    has(dom, string.format('<span class="c flaky">%d flaky</span>', counts.flaky))
    has(dom, "<dt>sonde</dt><dd>" .. loop.version .. "</dd>")
    -- every test under its file and describe block, with its status
    for status, n in pairs({ pass = 3, fail = 1, error = 1, pending = 1, flaky = 1 }) do
      assert.are.equal(n, count(dom, 'class="t ' .. status .. '"[ >]'), status)
    end
    has(dom, '<summary><span class="n">specs/fixtures/runner/report_mix.lua</span>')
    has(dom, '<summary><span class="n">users #api</span>')
    -- a failure is open, with its diff line, its traceback linked to the file, and the exchange redacted
    local failure = dom:match('<details class="t fail".-</details>')
    has(failure, 'data-tags="api" data-x="users #api compares a body" open="">')
    has(failure, '<a href="file://' .. loop.cwd() .. '/specs/fixtures/runner/report_mix.lua">:28</a>')
    has(failure, '<span class="diff">$.name: expected "Grace", got "Ada"</span>')
    has(failure, '<a href="file://' .. loop.cwd() .. '/specs/fixtures/runner/report_mix.lua" title="line 30">'
      .. "specs/fixtures/runner/report_mix.lua:30</a>")
    has(failure, "&gt; Authorization: [redacted]")
    assert.is_nil(dom:find("hidden-token-1", 1, true))
    -- the flaky test lists its attempts; output is shown; tags can be picked
    local flaky = dom:match('<details class="t flaky".-</details>')
    has(flaky, '<ol class="attempts"><li><span class="b fail">fail</span>.-attempt 1</code></li>'
      .. '<li><span class="b pass">pass</span>', true)
    has(dom, '<pre class="out">hello from a test\n</pre>')
    has(dom, '<option value="api">#api</option><option value="smoke">#smoke</option>')
    -- HTTP per host and per test, timeline with a bar per test that ran
    has(dom, "6 requests, 2xx: 6")
    has(dom, '<tr><td>users #api reads users</td><td class="r">6</td>')
    local timeline = dom:match('<svg class="timeline".-</svg>')
    has(timeline, 'aria-label="timeline of 1 lane"')
    -- the filter, given in the address: failed tests tagged #api whose name holds "body"
    local filtered = dump_dom(report .. "?status=fail,error&tag=api&q=body")
    has(filtered, '<span id="shown">1 of 7 tests shown</span>')
    assert.are.equal(7, count(filtered, 'class="t [a-z]+"[^>]- data%-x="[^"]*"'))
    assert.are.equal(6, count(filtered, 'class="t [a-z]+"[^>]- hidden=""'))
    has(filtered, 'data-x="users #api compares a body" open="">')
    has(filtered, '<details class="blk" open="" hidden=""><summary><span class="n">plain</span>') -- nothing shown in it
    local drawn = 0 -- bars of tests narrower than a pixel are one bar, titled with their count
    for title in timeline:gmatch("<title>(.-)</title>") do
      drawn = drawn + (tonumber(title:match("^(%d+) tests, ")) or 1)
    end
    assert.are.equal(6, drawn)
  end)

  it("draws one timeline lane per --jobs worker", function()
    local dir = support.temp_dir("html")
    local report = dir .. "/report.html"
    local code = sonde("test", "--jobs", "2", "-o", "html=" .. report, fixture("runner/report_mix.lua"),
      fixture("runner/outcomes.lua"))
    assert.are.equal(1, code)
    local html = read(report)
    local timeline = html:match('<svg class="timeline".-</svg>')
    has(timeline, 'aria-label="timeline of 2 lanes"')
    has(timeline, ">worker 2</text>")
    local lanes = {}
    for y in timeline:gmatch('<rect class="%a+" x="[%d.]+" y="(%d+)"') do lanes[y] = (lanes[y] or 0) + 1 end
    assert.is_truthy(lanes["18"], "no bar in lane 1")
    assert.is_truthy(lanes["40"], "no bar in lane 2")
    has(html, '<span class="diff">$.name: expected &quot;Grace&quot;, got &quot;Ada&quot;</span>')
    has(html, "6 requests, 2xx: 6")
  end)

  it("that cannot be written is one line, and the other reports are still written", function()
    local dir = support.temp_dir("html")
    local code, _, err = sonde("test", "-o", "html=/dev/full", "-o", "junit=" .. dir .. "/junit.xml",
      fixture("runner/outcomes.lua"))
    assert.are.equal(2, code)
    assert.are.equal("sonde test: the html reporter failed, its report is incomplete: cannot write /dev/full: "
      .. "No space left on device\n", err)
    assert.matches('<testsuite name="specs/fixtures/runner/outcomes.lua" tests="11"', read(dir .. "/junit.xml"), 1,
        true)
  end)

  it("in a folder that does not exist is one line before anything runs", function()
    local code, out, err = sonde("test", "-o", "html=/no/such/dir/report.html", fixture("runner/outcomes.lua"))
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.are.equal("sonde test: cannot write the html report: /no/such/dir/report.html: No such file or directory\n",
        err)
  end)
end)

describe("the load report (sonde load -o html=FILE)", function()
  local ngx
  setup(function() ngx = servers.nginx() end)

  it("shows thresholds, a row per scenario and the charts per second, with the --out json summary's counts", function()
    if not CHROMIUM then return pending(NO_CHROMIUM) end
    local dir = support.temp_dir("load-html")
    local path, report, out = dir .. "/script.lua", dir .. "/load.html", dir .. "/out.json"
    support.write_file(path, string.format([[
      local http = require("sonde.http")
      local load = require("sonde.load")
      options = {
        scenarios = {
          browse = { executor = "constant-vus", vus = 2, duration = "2500ms" },
          missing = { executor = "shared-iterations", vus = 1, iterations = 5, exec = "missing" },
        },
        thresholds = { http_req_duration = { "p(95)<5000" }, ["http_req_failed{scenario:missing}"] = { "rate<0.5" },
          ["http_reqs{scenario:browse}"] = { "count>0" }, ["iterations{scenario:browse}"] = { "count>0" } },
      }
      function default()
        load.check(http.get(%q), { ok = function(r) return r.ok end })
        load.sleep(0.05)
      end
      function missing() http.get(%q) end
    ]], ngx.url .. "/small.json", ngx.url .. "/missing"))
    local code, _, err = sonde("load", "-q", path, "-o", "html=" .. report, "-o", "json=" .. out)
    assert.are.equal(99, code, err)
    local final
    for line in io.lines(out) do
      if line:find('"type":"Summary"', 1, true) then final = cjson.decode(line).data end
    end
    local function count_of(name) return final.metrics[name].values.count end
    local browse_reqs, browse_iters = count_of("http_reqs{scenario:browse}"), count_of("iterations{scenario:browse}")
    assert.is_true(browse_reqs > 10, "browse made " .. browse_reqs .. " requests")
    assert.are.equal(browse_reqs + 5, count_of("http_reqs"))
    local dom = dump_dom(report)
    has(dom, '<title>sonde load: 1 of 4 thresholds crossed</title>')
    -- each threshold, ✓/✗ with what it read
    has(dom, '<tr class="crossed"><td class="c fail">✗</td><td>http_req_failed{scenario:missing}</td>'
      .. '<td><code>rate&lt;0.5</code></td><td class="r">rate=100.00%</td></tr>')
    has(dom, string.format('<tr class="ok"><td class="c pass">✓</td><td>http_reqs{scenario:browse}</td>'
      .. '<td><code>count&gt;0</code></td><td class="r">count=%d</td></tr>', browse_reqs))
    local p95 = final.thresholds[1].list[1].observed
    has(dom, "<td><code>p(95)&lt;5000</code></td><td class=\"r\">p(95)=" .. summary.ms(p95) .. "</td>")
    -- a row per scenario: iterations, requests, failures
    has(dom, string.format('<tr data-scenario="browse"><td>browse</td><td>constant-vus</td><td class="r">%d</td>'
      .. '<td class="r">%d</td><td class="r">0</td>', browse_iters, browse_reqs))
    has(dom, '<tr data-scenario="missing"><td>missing</td><td>shared-iterations</td><td class="r">5</td>'
      .. '<td class="r">5</td><td class="r">5</td>')
    -- the charts: the seconds add up to the run's requests; a point per second, titled
    local charts = {}
    for svg in dom:gmatch('<svg class="chart".-</svg>') do charts[#charts + 1] = svg end
    assert.are.equal(3, #charts)
    has(charts[1], string.format(": %d requests, 5 failed\"", count_of("http_reqs")))
    has(charts[2], string.format('aria-label="active VUs per second: at most %d"', final.metrics.vus_max.values.max))
    has(charts[3], 'aria-label="request duration p50, p95 and p99 per second"')
    for _, svg in ipairs(charts) do has(svg, '<polyline class="s1" points="') end
    local seconds = 0
    for _ in charts[1]:gmatch("<circle ") do seconds = seconds + 1 end
    assert.is_true(seconds >= 2 and seconds <= 4, seconds .. " seconds drawn")
    has(charts[3], "s: p50 [%d.]+[^,]*s, p95 [%d.]+[^,]*s, p99 [%d.]+[^<]*s</title>", true)
    -- the summary's metrics and checks
    local reqs = final.metrics.http_reqs.values
    has(dom, string.format("<td>http_reqs</td><td>counter</td><td><code>%-10s %.2f/s</code>", reqs.count, reqs.rate))
    has(dom, string.format('<td class="c pass">✓</td><td>ok</td><td class="r">%d</td><td class="r">0</td>',
      browse_iters))
    assert.is_nil(dom:find("<script", 1, true))
  end)

  it("that cannot be written is one line, and nothing runs", function()
    local dir = support.temp_dir("load-html")
    local path = dir .. "/script.lua"
    support.write_file(path, "options = { vus = 1, iterations = 1 }\nfunction default() print('iteration ran') end\n")
    local code, out, err = sonde("load", "-q", path, "-o", "html=/no/such/dir/load.html")
    assert.are.equal(2, code)
    assert.is_nil(out:find("iteration ran", 1, true))
    assert.are.equal("sonde load: cannot write the html report: /no/such/dir/load.html: No such file or directory\n",
      err)
  end)
end)
