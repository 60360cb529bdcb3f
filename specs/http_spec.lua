-- sonde.http against real servers on loopback: httpbin (gunicorn) and nginx.
local http = require("sonde.http")
local json = require("sonde.json")
local task = require("sonde.task")
local fixture = require("sonde.fixture")
local servers = require("specs.servers")

describe("sonde.http against httpbin", function()
  local bin, c
  setup(function()
    bin = servers.httpbin()
    c = http.client { base_url = bin.url }
  end)

  it("sends params, headers and gets JSON back", function()
    local r = c:get("/get", { params = { q = "a b&c", list = { "x", "y" } }, headers = { ["X-Trace"] = "t1" } })
    assert.are.equal(200, r.status)
    assert.is_true(r.ok)
    local body = r:json()
    assert.are.equal("a b&c", body.args.q)
    assert.are.same({ "x", "y" }, body.args.list)
    assert.are.equal("t1", body.headers["X-Trace"])
  end)

  it("posts JSON with its content type", function()
    local r = c:post("/post", { json = { name = "sonde", tags = json.array(), n = 3 } })
    local body = r:json()
    assert.are.same({ name = "sonde", tags = {}, n = 3 }, body.json)
    assert.matches('"tags":%[%]', body.data)
    assert.are.equal("application/json", body.headers["Content-Type"])
  end)

  it("posts a form and a raw body", function()
    local r = c:post("/post", { form = { a = "1", b = "two words" } })
    assert.are.same({ a = "1", b = "two words" }, r:json().form)
    r = c:put("/put", { body = "raw text", headers = { ["Content-Type"] = "text/plain" } })
    assert.are.equal("raw text", r:json().data)
  end)

  it("supports every method", function()
    assert.are.equal(200, c:patch("/patch", { json = {} }).status)
    assert.are.equal(200, c:delete("/delete").status)
    local head = c:head("/get")
    assert.are.equal(200, head.status)
    assert.are.equal("", head.body)
    assert.are.equal(200, c:options("/get").status)
    assert.are.equal("PUT", c:request("PUT", "/anything"):json().method)
  end)

  it("joins base_url paths as httpx does", function()
    local api = http.client { base_url = bin.url .. "/anything/api" }
    assert.are.equal("/anything/api/health", api:get("/health"):json().url:match("//[^/]+(/.*)$"))
    assert.are.equal(bin.url .. "/anything/api/x", http.join_url(bin.url .. "/anything/api/", "x"))
  end)

  it("treats error statuses as responses and raise_for_status raises them", function()
    local r = c:get("/status/404")
    assert.are.equal(404, r.status)
    assert.is_false(r.ok)
    local ok, err = pcall(r.raise_for_status, r)
    assert.is_false(ok)
    assert.are.equal("status", err.kind)
    assert.are.equal(404, err.status)
    assert.matches("404", tostring(err))
    assert.are.equal(r, c:get("/status/201"):raise_for_status() and r)
  end)

  it("keeps repeated headers and looks them up in any case", function()
    local r = c:get("/response-headers", { params = { ["X-Multi"] = { "one", "two" } } })
    assert.are.same({ "one", "two" }, r.headers:get_all("x-multi"))
    assert.are.equal("one, two", r.headers["X-MULTI"])
    assert.are.equal(r.headers["content-type"], r.headers["Content-Type"])
  end)

  it("follows redirects only when asked", function()
    local r = c:get("/redirect/2")
    assert.are.equal(302, r.status)
    r = c:get("/redirect/2", { follow_redirects = true })
    assert.are.equal(200, r.status)
    assert.are.equal(bin.url .. "/get", r.url)
  end)

  it("gives per-phase timings and elapsed time", function()
    local r = c:get("/get")
    assert.is_true(r.timings.total >= r.timings.first_byte)
    assert.is_true(r.timings.first_byte >= r.timings.connect)
    assert.is_true(r.elapsed > 0)
  end)

  it("runs requests of many tasks concurrently on one loop", function()
    -- every request has started before any of them has finished
    local started, finished, overlap = 0, 0, true
    local function one()
      started = started + 1
      local status = c:get("/delay/1").status
      if started < 4 then overlap = false end
      finished = finished + 1
      return status
    end
    local statuses = { task.gather(one, one, one, one) }
    assert.are.same({ 200, 200, 200, 200 }, statuses)
    assert.is_true(overlap, "a request finished before all four had started")
    assert.are.equal(4, finished)
  end)

  it("raises a timeout error with kind, url and curl's message", function()
    local ok, err = pcall(c.get, c, "/delay/5", { timeout = 0.2 })
    assert.is_false(ok)
    assert.is_true(http.is_error(err))
    assert.are.equal("timeout", err.kind)
    assert.are.equal(bin.url .. "/delay/5", err.url)
    assert.matches("^timeout error: GET .*/delay/5: .*timed out", tostring(err))
  end)

  it("a cancelled request stops its transfer", function()
    local h = task.spawn(function() return c:get("/delay/10") end)
    task.sleep(0.05)
    h:cancel()
    local ok, err = pcall(h.join, h)
    assert.is_false(ok)
    assert.is_true(task.is_cancelled(err))
    assert.are.equal(200, c:get("/get").status) -- the engine still works
  end)

  it("counts requests per client and per process", function()
    local mine = http.client { base_url = bin.url }
    local before = http.request_count()
    mine:get("/get")
    mine:get("/get")
    assert.are.equal(2, mine.request_count)
    assert.are.equal(before + 2, http.request_count())
  end)

  it("names the URL and content type when a body is not JSON", function()
    local r = c:get("/html")
    local ok, err = pcall(r.json, r)
    assert.is_false(ok)
    assert.matches("response from GET " .. bin.url:gsub("%p", "%%%0") .. "/html is not JSON %(text/html", err)
  end)

  it("sends client headers with every request and lets a request override them", function()
    local authed = http.client { base_url = bin.url, headers = { Authorization = "Bearer a", ["X-Client"] = "c" } }
    local h = authed:get("/headers", { headers = { ["x-client"] = "request" } }):json().headers
    assert.are.equal("Bearer a", h.Authorization)
    assert.are.equal("request", h["X-Client"])
  end)

  it("asks for every encoding libcurl decodes and decodes the response, with or without headers of its own", function()
    for _, headers in ipairs { {}, { ["X-Trace"] = "t2" } } do
      local r = c:get("/gzip", { headers = headers })
      assert.are.equal("gzip", r.headers["content-encoding"])
      local echoed = r:json() -- decoded: httpbin's JSON, not gzip's bytes
      assert.is_true(echoed.gzipped)
      local _, named = echoed.headers["Accept-Encoding"]:gsub("gzip", "")
      assert.are.equal(1, named) -- one Accept-Encoding line, not sonde's and curl's
    end
    -- a request's own replaces sonde's, and its response is decoded too
    local own = c:get("/gzip", { headers = { ["accept-encoding"] = "gzip" } })
    assert.are.equal("gzip", own:json().headers["Accept-Encoding"])
  end)
end)

describe("sonde.http transport errors", function()
  it("connect: nothing listens on the port", function()
    local port = fixture.unused_port()
    local ok, err = pcall(http.get, "http://127.0.0.1:" .. port .. "/")
    assert.is_false(ok)
    assert.are.equal("connect", err.kind)
  end)

  it("dns: the host does not resolve", function()
    local ok, err = pcall(http.get, "http://sonde-no-such-host.invalid/")
    assert.is_false(ok)
    assert.are.equal("dns", err.kind)
  end)

  it("retries transport errors with backoff, then raises", function()
    local port = fixture.unused_port()
    local c = http.client { base_url = "http://127.0.0.1:" .. port, retries = 2,
      retry_backoff = { min = 0.01, factor = 2, max = 0.05 } }
    local before = http.request_count()
    local ok, err = pcall(c.get, c, "/")
    assert.is_false(ok)
    assert.are.equal("connect", err.kind)
    assert.are.equal(before + 3, http.request_count())
  end)
end)

describe("sonde.http against nginx", function()
  local ngx
  setup(function() ngx = servers.nginx() end)

  it("reuses one connection across sequential requests", function()
    local c = http.client { base_url = ngx.url }
    local first = c:get("/small.json")
    local second = c:get("/small.json")
    assert.are.same({ ok = true, items = { 1, 2, 3 } }, second:json())
    assert.is_true(first.new_connections <= 1)
    assert.are.equal(0, second.new_connections) -- reused the first one's
  end)

  it("serves static files and relative redirects", function()
    local c = http.client { base_url = ngx.url }
    assert.are.equal("hello from nginx\n", c:get("/static/hello.txt").body)
    assert.are.equal(ngx.url .. "/small.json", c:get("/redirect", { follow_redirects = true }).url)
  end)

  it("200 requests from 20 tasks all complete", function()
    local c = http.client { base_url = ngx.url }
    local handles = {}
    for i = 1, 20 do
      handles[i] = task.spawn(function()
        local n = 0
        for _ = 1, 10 do n = n + (c:get("/health").status == 200 and 1 or 0) end
        return n
      end)
    end
    local total = 0
    for i = 1, 20 do total = total + handles[i]:join() end
    assert.are.equal(200, total)
  end)
end)

describe("sonde.http on the loop (curl's multi-uv traps)", function()
  it("arms curl's 0 ms timeouts as 0 ms, never rounded up to 1 ms (curl#17144)", function()
    local chttp = require("sonde.c.http")
    local ngx = servers.nginx()
    local asked0, armed0 = chttp.timer_stats()
    for _ = 1, 20 do http.get(ngx.url .. "/health") end
    local asked, armed = chttp.timer_stats()
    assert.is_true(asked > asked0, "curl asked for no 0 ms timeout: the check proves nothing")
    assert.are.equal(asked - asked0, armed - armed0)
  end)

  it("curl's timer callback finds its engine (timer.data set, curl#19462): a timeout fires", function()
    local bin = servers.httpbin()
    local ok, err = pcall(http.get, bin.url .. "/delay/3", { timeout = 0.1 })
    assert.is_false(ok)
    assert.are.equal("timeout", err.kind)
  end)
end)

describe("sonde.http bad input", function()
  it("a relative URL without base_url says what it needs", function()
    local ok, err = pcall(function() http.get("/health") end)
    assert.is_false(ok)
    assert.matches("http_spec.lua:%d+: GET /health: a relative URL needs a client with base_url " ..
        "%(http.client{base_url=...}%)", err)
  end)

  it("an unknown option is named", function()
    local ok, err = pcall(function() local r = http.get("http://127.0.0.1:1/", { time_out = 1 }) return r end)
    assert.is_false(ok)
    assert.matches("get: unknown option 'time_out' %(expected one of: ", err)
    assert.matches("http_spec.lua:%d+:", err)
    assert.has_error(function() http.client { baseurl = "x" } end)
  end)

  it("a negative max_body, a fractional retries or a NaN timeout is named with what it must be", function()
    for _, case in ipairs({ { { max_body = -1 }, "option 'max_body' must be a whole number >= 0, got %-1" },
      { { retries = 1.5 }, "option 'retries' must be a whole number >= 0, got 1.5" },
      { { timeout = 0 / 0 }, "option 'timeout' must be a number of seconds >= 0, got n?a?n" } }) do
      local ok, err = pcall(function() local r = http.get("http://127.0.0.1:1/", case[1]) return r end)
      assert.is_false(ok)
      assert.matches("http_spec.lua:%d+: get: " .. case[2], err)
    end
  end)

  it("headers must be a table of strings", function()
    local hok, herr = pcall(function() http.get("http://127.0.0.1:1/", { headers = "X: y" }) end)
    assert.is_false(hok)
    assert.matches("http_spec.lua:%d+: get: option 'headers' must be a table, got string", herr)
    local ok, err = pcall(http.get, "http://127.0.0.1:1/", { headers = { X = {} } })
    assert.is_false(ok)
    assert.matches("header 'X' must be a string or number, got table", err)
  end)

  it("a json body cjson cannot encode says where", function()
    local ok, err = pcall(http.post, "http://127.0.0.1:1/", { json = { a = { f = print } } })
    assert.is_false(ok)
    assert.matches("json=: cannot encode: %$%.a%.f is a function", err)
    ok, err = pcall(http.post, "http://127.0.0.1:1/", { json = { [1] = 1, [100] = 2 } })
    assert.is_false(ok)
    assert.matches("sparse array", err)
  end)

  it("base_url must be absolute and only one body kind is allowed", function()
    assert.has_error(function() http.client { base_url = "localhost:8080" } end)
    local ok, err = pcall(function() http.post("http://127.0.0.1:1/", { json = {}, body = "x" }) end)
    assert.is_false(ok)
    assert.matches("http_spec.lua:%d+: give only one of json=, body= and form=$", err)
  end)
end)

describe("sonde.http in the runner's reports", function()
  local support = require("specs.support")

  it("a failed test shows its last exchange with credentials redacted, and its request count", function()
    local code, out = support.sonde("test", support.fixture("runner/http_failure.lua"))
    assert.are.equal(1, code)
    assert.matches("last HTTP exchange:\n    GET http://127%.0%.0%.1:%d+/users/2\n", out)
    assert.matches("> Authorization: %[redacted%]", out)
    assert.matches("> Cookie: %[redacted%]", out)
    assert.matches("< HTTP/1.1 404 Not Found", out)
    assert.matches('{"error":"no user 2"}', out)
    assert.not_matches("secret%-token", out)
    assert.not_matches("session=abc", out)
    local _, json_out = support.sonde("test", "-o", "json", support.fixture("runner/http_failure.lua"))
    local report = require("sonde.json").decode(json_out)
    assert.are.equal(2, report.sections[1].requests)
    assert.are.equal(0, report.sections[2].requests)
    assert.are.equal(2, report.total_requests)
  end)

  -- every secret the fixture sends, in clear and as curl sends alice's password
  local SECRETS = { "abc123tok", "s3cr3t-key", "passw0rd-basic", "YWxpY2U6cGFzc3cwcmQtYmFzaWM=", "sess-cookie-1",
    "setcookie-secret", "mine-hidden-1" }

  local function assert_redacted(text, what)
    for i, secret in ipairs(SECRETS) do -- (named by number: this report would redact it)
      assert.falsy(text:find(secret, 1, true), what .. " shows SECRETS[" .. i .. "]")
    end
    assert.truthy(text:find("[redacted]", 1, true), what .. " redacts nothing")
  end

  it("no secret a test sent shows in the human, TAP or JUnit report, even where httpbin echoes it", function()
    local dir = support.temp_dir()
    local bin = servers.httpbin()
    local code, out, err = support.sonde("test", "-o", "human", "-o", "tap=" .. dir .. "/r.tap", "-o",
      "junit=" .. dir .. "/r.xml", support.fixture("runner/secrets.lua"), { env = { HTTPBIN_URL = bin.url } })
    assert.are.equal(1, code, err)
    assert.matches("1 passed, 5 failed", out)
    assert_redacted(out .. err, "the human report")
    assert.matches("GET http://127%.0%.0%.1:%d+/anything%?token=%[redacted%]&page=2\n", out)
    assert.matches("> X%-Api%-Key: %[redacted%]\n", out)
    assert.matches("< Set%-Cookie: %[redacted%]\n", out)
    local tap = support.read_file(dir .. "/r.tap")
    assert.matches("not ok 1 %- sends an API key and a token", tap)
    assert_redacted(tap, "the TAP report")
    local xml = support.read_file(dir .. "/r.xml")
    assert.matches('name="passes after printing what came back"[^\n]*>\n[^\n]*\n      <system%-out>{', xml)
    assert.matches("last HTTP exchange:", xml)
    assert_redacted(xml, "the JUnit report")
    local _, jobs_out = support.sonde("test", "--jobs", "2", "-o", "tap", support.fixture("runner/secrets.lua"),
      { env = { HTTPBIN_URL = bin.url } })
    assert.matches("not ok 5 ", jobs_out)
    assert_redacted(jobs_out, "the TAP report of a --jobs worker")
  end)

  it("a server a test started is closed when that test ends", function()
    local code, out = support.sonde("test", "-o", "tap", support.fixture("runner/server_left_open.lua"))
    assert.are.equal(0, code, out)
  end)
end)
