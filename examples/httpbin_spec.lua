-- Shows sonde.http as an API scenario against a real httpbin the spec starts
-- itself: params, headers, JSON and form bodies, statuses, redirects, timeouts, gather.
local http = require("sonde.http")
local task = require("sonde.task")
local fixture = require("sonde.fixture")
local servers = require("examples.servers")

describe("httpbin", function()
  local bin, c
  setup(function()
    bin = servers.httpbin()
    c = http.client { base_url = bin.url, headers = { ["User-Agent"] = "sonde-example" } }
  end)

  describe("GET", function()
    it("sends params as the query string, a list as a repeated key", function()
      local r = c:get("/get", { params = { q = "a b&c", tag = { "x", "y" } } })
      assert.are.equal(200, r.status)
      assert.are.same({ q = "a b&c", tag = { "x", "y" } }, r:json().args)
    end)

    it("sends the client's headers and the request's own", function()
      local sent = c:get("/headers", { headers = { ["X-Trace"] = "t-1" } }):json().headers
      assert.are.equal("sonde-example", sent["User-Agent"])
      assert.are.equal("t-1", sent["X-Trace"])
    end)
  end)

  describe("POST", function()
    it("json= sends a JSON body with Content-Type application/json", function()
      local echo = c:post("/post", { json = { name = "sonde", n = 3, ok = true } }):json()
      assert.are.same({ name = "sonde", n = 3, ok = true }, echo.json)
      assert.are.equal("application/json", echo.headers["Content-Type"])
    end)

    it("form= sends a urlencoded form", function()
      local echo = c:post("/post", { form = { a = "1", b = "two words" } }):json()
      assert.are.same({ a = "1", b = "two words" }, echo.form)
      assert.are.equal("application/x-www-form-urlencoded", echo.headers["Content-Type"])
    end)
  end)

  describe("status codes", function()
    it("an error status is a response, not an error: check r.status and r.ok", function()
      local r = c:get("/status/418")
      assert.are.equal(418, r.status)
      assert.is_false(r.ok)
    end)

    it("raise_for_status() turns an error status into an error of kind 'status'", function()
      assert.are.equal(201, c:get("/status/201"):raise_for_status().status) -- a success passes through
      local ok, err = pcall(function() c:get("/status/503"):raise_for_status() end)
      assert.is_false(ok)
      assert.are.equal("status", err.kind)
      assert.are.equal(503, err.status)
    end)
  end)

  describe("redirects", function()
    it("are not followed by default: the 302 and its Location come back", function()
      local r = c:get("/redirect/2")
      assert.are.equal(302, r.status)
      assert.are.equal("/relative-redirect/1", r.headers["location"])
    end)

    it("follow_redirects=true follows them to the final URL", function()
      local r = c:get("/redirect/2", { follow_redirects = true })
      assert.are.equal(200, r.status)
      assert.are.equal(bin.url .. "/get", r.url)
    end)
  end)

  describe("timeouts and transport failures are errors", function()
    -- httpbin's /delay/N answers after N seconds, far beyond these timeouts.
    it("a request slower than timeout= raises an error of kind 'timeout'", function()
      local ok, err = pcall(c.get, c, "/delay/5", { timeout = 0.2 })
      assert.is_false(ok)
      assert.is_true(http.is_error(err))
      assert.are.equal("timeout", err.kind)
      assert.are.equal(bin.url .. "/delay/5", err.url)
    end)

    it("task.timeout bounds a whole block of work and cancels it", function()
      local ok, err = pcall(task.timeout, 0.2, function() return c:get("/delay/5") end)
      assert.is_false(ok)
      assert.is_true(task.is_timeout(err))
      assert.are.equal(200, c:get("/get").status) -- the cancelled request left the client usable
    end)

    it("nothing listening raises an error of kind 'connect'", function()
      local closed = "http://127.0.0.1:" .. fixture.unused_port()
      local ok, err = pcall(http.get, closed .. "/get")
      assert.is_false(ok)
      assert.are.equal("connect", err.kind)
    end)
  end)

  describe("concurrency", function()
    it("task.gather runs requests side by side and returns their results in order", function()
      -- Each request notes when it starts and ends: side by side, all three
      -- start before any ends; one after another, they would alternate.
      local log = {}
      local function fetch(n)
        return function()
          log[#log + 1] = "start"
          local r = c:get("/anything/" .. n)
          log[#log + 1] = "end"
          return r:json().url:match("/anything/(%d+)$")
        end
      end
      local a, b, d = task.gather(fetch(1), fetch(2), fetch(3))
      assert.are.same({ "1", "2", "3" }, { a, b, d })
      assert.are.same({ "start", "start", "start", "end", "end", "end" }, log)
    end)
  end)
end)
