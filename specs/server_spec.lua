-- sonde.server: routes and handlers as tasks, talked to with sonde.http, and
-- bad input sent as raw bytes by a small Python client.
local server = require("sonde.server")
local http = require("sonde.http")
local process = require("sonde.process")
local task = require("sonde.task")
local support = require("specs.support")

-- raw(port, mode...) -> what the server answered to each mode's bytes
-- (fixtures/server/raw_client.py), each sent on a connection of its own
local function raw(port, ...)
  local modes = { ... }
  local argv = { "python3", support.fixture("server/raw_client.py"), tostring(port), timeout = 60 }
  for i, mode in ipairs(modes) do argv[3 + i] = mode end
  local code, out, err = process.run(argv)
  assert.are.equal(0, code, err)
  local answers, at = {}, 1
  for i, mode in ipairs(modes) do
    local _, header_end = out:find("--- " .. mode .. "\n", at, true)
    assert.is_truthy(header_end, out)
    local from = header_end + 1
    at = modes[i + 1] and out:find("--- " .. modes[i + 1] .. "\n", from, true) or #out + 1
    answers[i] = out:sub(from, at - 1)
  end
  return unpack(answers)
end

local function stub()
  return server.serve({ max_body = 4096, max_header_count = 50, max_header_bytes = 8192 }, function(s)
    s:get("/hello/{name}", function(req) return { json = { hi = req.params.name } } end)
    s:post("/echo", function(req) return { status = 201, body = req.body, headers = { ["X-Len"] = #req.body } } end)
    s:get("/query", function(req) return { json = req.query } end)
    s:get("/headers", function(req)
      return { json = { agent = req.headers["user-agent"], x = req.headers["X-Thing"], host = req.headers.host } }
    end)
    s:get("/wait", function() task.sleep(0.2) return "waited" end)
    s:get("/nothing", function() end)
    s:route("*", "/any", function(req) return req.method end)
  end)
end

describe("sonde.server routes", function()
  local s, c
  before_each(function()
    s = stub()
    c = http.client { base_url = s.url }
  end)
  after_each(function() s:close() end)

  it("matches {param} segments and answers JSON", function()
    local r = c:get("/hello/wor%20ld")
    assert.are.equal(200, r.status)
    assert.are.equal("application/json", r.headers["content-type"])
    assert.are.same({ hi = "wor ld" }, r:json())
  end)

  it("parses the query string, repeated keys as lists", function()
    assert.are.same({ a = "1", b = { "x", "y z" } }, c:get("/query?a=1&b=x&b=y+z"):json())
  end)

  it("gives handlers the body and case-insensitive headers", function()
    local r = c:post("/echo", { body = "payload" })
    assert.are.equal(201, r.status)
    assert.are.equal("payload", r.body)
    assert.are.equal("7", r.headers["x-len"])
    local h = c:get("/headers", { headers = { ["x-thing"] = "yes" } }):json()
    assert.are.equal("yes", h.x)
    assert.matches("curl", h.agent or "curl") -- libcurl sends none by default
  end)

  it("answers 404 for an unknown path and 405 with Allow for a wrong method", function()
    local r = c:get("/nope")
    assert.are.equal(404, r.status)
    assert.matches("no route for GET /nope", r:json().error)
    r = c:delete("/echo")
    assert.are.equal(405, r.status)
    assert.are.equal("POST", r.headers["allow"])
  end)

  it("a handler returning nothing answers 204, a string answers text, * matches any method", function()
    assert.are.equal(204, c:get("/nothing").status)
    assert.are.equal("PATCH", c:patch("/any").body)
  end)

  it("handlers run as tasks: slow ones do not hold up others", function()
    local order = {}
    task.gather(
      function() c:get("/wait") order[#order + 1] = "slow" end,
      function() task.sleep(0.05) c:get("/hello/x") order[#order + 1] = "fast" end)
    assert.are.same({ "fast", "slow" }, order)
  end)

  it("keeps connections alive across requests", function()
    c:get("/hello/a")
    assert.are.equal(0, c:get("/hello/b").new_connections)
  end)
end)

describe("sonde.server bad input", function()
  local s
  before_each(function() s = stub() end)
  after_each(function() s:close() end)

  it("answers garbage and broken headers with 400 and keeps serving", function()
    local garbage, bad_header = raw(s.port, "garbage", "bad-header")
    assert.matches("^HTTP/1.1 400 Bad Request\r\n", garbage)
    assert.matches("^HTTP/1.1 400 Bad Request\r\n", bad_header)
    assert.are.equal(200, http.get(s.url .. "/hello/still").status)
  end)

  it("refuses too many or too large headers with 431", function()
    local many, huge = raw(s.port, "many-headers", "huge-header")
    assert.matches("^HTTP/1.1 431 Request Header Fields Too Large\r\n.*too many request headers", many)
    assert.matches("^HTTP/1.1 431 ", huge)
  end)

  it("refuses a body over the limit with 413 before reading it", function()
    assert.matches("^HTTP/1.1 413 Payload Too Large\r\n", raw(s.port, "big-body"))
  end)

  it("answers a request in an HTTP version other than 1.x with 505, and serves 1.0 and 1.2", function()
    local refused = { "HTTP/2.0", "HTTP/3.0", "HTTP/0.9", "" } -- no version at all is HTTP/0.9
    local served = { "HTTP/1.0", "HTTP/1.2" }
    local modes = {}
    for i, version in ipairs(refused) do modes[i] = "version:" .. version end
    for i, version in ipairs(served) do modes[#refused + i] = "version:" .. version end
    local answers = { raw(s.port, unpack(modes)) }
    for i, version in ipairs(refused) do
      assert.matches("^HTTP/1.1 505 HTTP Version Not Supported\r\n.*\r\n\r\nHTTP version not supported", answers[i],
        nil, nil, version)
    end
    for i, version in ipairs(served) do
      assert.matches('^HTTP/1.1 200 OK\r\n.*{"hi":"v"}$', answers[#refused + i], nil, nil, version)
    end
  end)

  it("maps a target in absolute-form to its path and query; its authority is the Host", function()
    local query, userinfo, origin, empty = raw(s.port, "target:http://example.com/query?x=1",
      "target:HTTP://user@example.com:8080/headers", "target:/headers", "target:http://example.com?x=1")
    assert.matches('^HTTP/1.1 200 OK\r\n.*\r\n\r\n{"x":"1"}$', query)
    assert.matches('"host":"example.com:8080"', userinfo)
    assert.matches('"host":"other"', origin)
    assert.matches('^HTTP/1.1 404 .*no route for GET /"', empty) -- an empty path is "/"
  end)

  it("answers pipelined requests in order", function()
    local out = raw(s.port, "pipelined")
    local a, b = out:find('{"hi":"a"}', 1, true), out:find('{"hi":"b"}', 1, true)
    assert.is_truthy(a, out)
    assert.is_truthy(b, out)
    assert.is_true(a < b)
  end)

  it("joins a header sent twice with ', ', whatever the case of its name", function()
    local out = raw(s.port, "repeated-header")
    assert.matches('"x":"a, b"', out)
    assert.matches('"agent":"u"', out)
  end)

  it("answers every request sent before the client half-closed", function()
    local out = raw(s.port, "half-close")
    assert.matches("^HTTP/1.1 200 OK\r\n.*\r\n\r\nwaitedHTTP/1.1 200 OK\r\n.*\r\n\r\n{\"hi\":\"b\"}$", out)
  end)

  it("answers a long pipeline in order, more than it buffers while handling one", function()
    local out = raw(s.port, "pipelined-many")
    local _, n = out:gsub('HTTP/1.1 200 OK\r\n[^{]*{"hi":"x"}', "")
    assert.are.equal(599, n)
    assert.matches('{"hi":"x"}HTTP/1.1 200 OK\r\n[^{]*{"hi":"last"}$', out)
  end)

  it("reads chunked request bodies", function()
    local out = raw(s.port, "chunked")
    assert.matches("^HTTP/1.1 201 Created\r\n", out)
    assert.matches("\r\n\r\nhello world$", out)
  end)

  it("serves many requests on one keep-alive connection", function()
    local out = raw(s.port, "keepalive")
    local _, n = out:gsub("HTTP/1.1 200 OK", "")
    assert.are.equal(4, n)
  end)
end)

describe("sonde.server slow clients", function()
  it("drops a client that stops mid-request, with 408, while serving others", function()
    local s = server.serve({ request_timeout = 0.3 }, function(srv)
      srv:get("/hello/{name}", function(req) return req.params.name end)
    end)
    local slow = task.spawn(function() return raw(s.port, "slow") end)
    assert.are.equal("fast", http.get(s.url .. "/hello/fast").body)
    assert.matches("^HTTP/1.1 408 Request Timeout", slow:join())
    s:close()
  end)
end)

describe("sonde.server life cycle", function()
  -- close() is woken by the last answer itself: a close that slept and
  -- looked again would never wake while a mocked clock stands still.
  it("close() completes once the requests being handled are answered, even while a mocked clock stands still",
    function()
      local started, go = task.event(), task.event()
      local big = string.rep("x", 4 * 1024 * 1024)
      local s = server.serve({}, function(srv)
        srv:get("/slow", function()
          started:set()
          go:wait()
          return big
        end)
      end)
      local m = require("sonde.clock").mocked { autojump = false }
      local pending = task.spawn(function() return http.get(s.url .. "/slow").body end)
      started:wait()
      local closing = task.spawn(function() s:close(30) end)
      task.sleep(0) -- closing waits for the answer
      assert.is_false(closing:done())
      go:set()
      closing:join()
      assert.is_true(pending:join() == big, "the answer came whole")
      local ok, err = pcall(http.get, s.url .. "/slow")
      assert.is_false(ok)
      assert.are.equal("connect", err.kind)
      m:close()
    end)

  it("close() in a task that is cancelled while it waits still closes, then raises the cancellation", function()
    local started, never = task.event(), task.event()
    local s = server.serve({}, function(srv)
      srv:get("/", function()
        started:set()
        never:wait()
      end)
    end)
    local pending = task.spawn(function() return pcall(http.get, s.url .. "/", { timeout = 30 }) end)
    started:wait()
    local closing = task.spawn(function() s:close(30) end)
    task.sleep(0)
    closing:cancel()
    local ok, err = pcall(closing.join, closing)
    assert.is_false(ok)
    assert.is_true(task.is_cancelled(err))
    assert.is_nil(s.c)
    assert.is_false((pending:join()))
  end)

  it("a handler error answers 500 and fails the test that owns the server", function()
    local code, out = support.sonde("test", "-o", "tap", support.fixture("server/handler_error.lua"))
    assert.are.equal(1, code)
    assert.matches("\nok 1 %- handler errors the client sees a 500", out)
    assert.matches("not ok 2 %- handler errors the owning test fails", out)
    assert.matches("handler_error.lua:%d+: broken handler", out)
  end)

  it("a port in use and a bad host are one clear line", function()
    local s = stub()
    local ok, err = pcall(function() local x = server.new { port = s.port }:start() return x end)
    assert.is_false(ok)
    assert.matches("server_spec.lua:%d+: server.start: cannot listen on 127.0.0.1:%d+: address already in use", err)
    ok, err = pcall(function() local x = server.new { host = "nowhere" }:start() return x end)
    assert.is_false(ok)
    assert.matches("'nowhere' is not an IP address", err)
    s:close()
  end)

  it("bad routes and options are refused where they are written", function()
    local s = server.new()
    assert.has_error(function() s:route("GET", "no-slash", function() end) end)
    assert.has_error(function() s:get("/x", "not a function") end)
    assert.has_error(function() server.new { prot = 1 } end, "server.new: unknown option 'prot' (expected one of: "
      .. "host, idle_timeout, max_body, max_header_bytes, max_header_count, name, port, request_timeout)")
  end)

  it("numbers out of their range are refused at the caller's line, naming what they must be", function()
    for _, case in ipairs({
      { { port = 70000 }, "option 'port' must be a whole number from 0 to 65535, got 70000" },
      { { port = 80.5 }, "option 'port' must be a whole number from 0 to 65535, got 80.5" },
      { { max_body = -1 }, "option 'max_body' must be a whole number >= 0, got %-1" },
      { { request_timeout = -5 }, "option 'request_timeout' must be a number of seconds >= 0, got %-5" },
    }) do
      local ok, err = pcall(function() local s = server.serve(case[1]) return s end)
      assert.is_false(ok)
      assert.matches("server_spec.lua:%d+: server.serve: " .. case[2], err)
    end
    local ok, err = pcall(function() local s = server.serve(function() end) return s end)
    assert.is_false(ok)
    assert.matches("server_spec.lua:%d+: server.serve: options must be a table, got function", err)
  end)

  it("serve without a function defining the routes is one line at the caller's (it served nothing but 404s)", function()
    for _, args in ipairs({ { nil, nil }, { {}, nil }, { {}, "routes" } }) do
      local ok, err = pcall(function() local s = server.serve(args[1], args[2]) return s end)
      assert.is_false(ok)
      assert.matches("^[^:]*server_spec.lua:%d+: server.serve: the second argument must be a function%(server%) " ..
        "defining the routes, got " .. type(args[2]) .. "$", err)
    end
  end)
end)

describe("sonde.server workers (tasks that run one request after another)", function()
  -- The server's tasks belong to a scope of their own: the handler error
  -- below is not this test's.
  local function serve_apart(define)
    return task.in_scope(task.scope("apart"), function() return server.serve({}, define) end)
  end

  it("a handler's error leaves no request that came with it unanswered", function()
    local raised, all_raised = 0, task.event()
    local s = serve_apart(function(srv)
      srv:get("/boom", function()
        raised = raised + 1
        if raised == 5 then all_raised:set() end
        error("boom")
      end)
    end)
    -- io.popen's read blocks the loop until all five requests are sent:
    -- its next turn reads them together, and one worker takes the first.
    local client = io.popen("python3 " .. support.fixture("server/burst.py") .. " " .. s.port .. " /boom 5")
    assert.are.equal("sent", client:read("*l"))
    local ok = pcall(all_raised.wait, all_raised, 10)
    s:close()
    client:close()
    assert.is_true(ok, raised .. " of the 5 requests reached their handler")
  end)

  it("a request without LiveCheck headers runs with no test, after one with them", function()
    local livecheck = require("sonde.livecheck")
    local s = serve_apart(function(srv)
      srv:get("/test", function() return (livecheck.current_test() or { id = "none" }).id end)
    end)
    local out = raw(s.port, "livecheck-pipelined")
    s:close()
    assert.matches("^HTTP/1.1 200 .*\r\n\r\nt1HTTP/1.1 200 .*\r\n\r\nnone$", out)
  end)
end)

describe("sonde.server handler edge cases", function()
  it("a '+' in a path stays a '+'", function()
    local s = server.serve({}, function(srv)
      srv:get("/files/{name}", function(req) return req.params.name end)
    end)
    assert.are.equal("c++ x.txt", http.get(s.url .. "/files/c++%20x.txt").body)
    s:close()
  end)

  it("a bad status from a handler is a 500 naming the route, and fails the owning test", function()
    local code, out = support.sonde("test", "-o", "tap", support.fixture("server/bad_status.lua"))
    assert.are.equal(1, code, out)
    assert.matches("not ok 1 %- gets a 500 for a bad status", out)
    assert.matches("not ok 2 %- gets a 500 for a number", out)
    local at = "specs/fixtures/server/bad_status.lua:"
    local status_line = at .. "7: the handler for GET /bad returned a status that must be a whole number from 100 to "
      .. "999, got abc"
    assert.matches('message: "a task it spawned, task<', out, 1, true) -- the test's error
    assert.matches(': ' .. status_line, out, 1, true)
    assert.matches("500\t" .. status_line, out, 1, true) -- and the client's 500
    local number_line = at .. "14: the handler for GET /number must return a table {status=, headers=, json=|body=}, "
      .. "a string or nil, got number"
    assert.matches(': ' .. number_line, out, 1, true)
    assert.matches("500\t" .. number_line, out, 1, true)
    assert.matches(at .. "23: the handler for GET /fn returned json= that cannot be encoded: $.f is a function", out, 1,
      true)
  end)

  it("closing the server from inside a handler answers nothing more and does not crash", function()
    local s
    s = server.serve({}, function(srv)
      srv:post("/shutdown", function() s:close(0.05) return "bye" end)
    end)
    local ok, err = pcall(http.post, s.url .. "/shutdown", { timeout = 5 })
    assert.is_true(ok or http.is_error(err))
  end)
end)

describe("sonde.server timeouts", function()
  it("an infinite idle or request timeout means none, not zero", function()
    local s = server.serve({ idle_timeout = math.huge, request_timeout = math.huge }, function(srv)
      srv:get("/", function() return "up" end)
    end)
    assert.are.equal("up", http.get(s.url .. "/").body)
    s:close()
  end)
end)
