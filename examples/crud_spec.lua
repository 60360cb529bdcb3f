-- Shows a CRUD scenario against a real json-server 0.17 over a fresh db.json:
-- create, read, update with PUT and PATCH, filter, sort, limit, delete, and 404s.
-- Without json-server installed every test is reported skipped, with the reason.
local http = require("sonde.http")
local json = require("sonde.json")
local servers = require("examples.servers")

-- `books` is only read, so the filter examples see the same three records
-- whatever order tests run in; the write examples each create their own post.
local DB = {
  books = {
    { id = 1, title = "Dune", author = "Herbert", year = 1965 },
    { id = 2, title = "Neuromancer", author = "Gibson", year = 1984 },
    { id = 3, title = "Count Zero", author = "Gibson", year = 1986 },
  },
  posts = json.array(), -- an empty Lua table encodes as {}; json-server needs a list
}

describe("json-server CRUD", function()
  local missing = servers.json_server_missing()
  local srv, dir, client
  setup(function()
    if missing then return end
    srv, dir = servers.json_server(DB)
    client = http.client { base_url = srv.url }
  end)
  teardown(function()
    if srv then srv:stop() end
    if dir then servers.remove_dir(dir) end
  end)

  -- api() -> the client of the server; skips the test without json-server.
  local function api()
    if missing then pending(missing) end
    return client
  end

  -- new_post(fields) -> the created post, as the server stored it.
  local function new_post(fields)
    local r = api():post("/posts", { json = fields })
    assert.are.equal(201, r.status)
    return r:json()
  end

  describe("create and read", function()
    it("POST creates a record: 201, a new id, and a Location to read it back", function()
      local c = api()
      local r = c:post("/posts", { json = { title = "hello", body = "first post" } })
      assert.are.equal(201, r.status)
      local post = r:json()
      assert.is_number(post.id)
      assert.are.equal(srv.url .. "/posts/" .. post.id, r.headers["Location"])
      assert.are.same(post, c:get(r.headers["Location"]):json())
    end)

    it("GET /books/2 reads one record by id", function()
      local c = api()
      local r = c:get("/books/2")
      assert.are.equal(200, r.status)
      assert.are.same(DB.books[2], r:json())
    end)

    it("GET /books lists the whole collection", function()
      local c = api()
      assert.are.same(DB.books, c:get("/books"):json())
    end)
  end)

  describe("update", function()
    it("PUT replaces a record: fields it does not send are gone", function()
      local c = api()
      local post = new_post { title = "draft", body = "text" }
      local r = c:put("/posts/" .. post.id, { json = { title = "final" } })
      assert.are.equal(200, r.status)
      assert.are.same({ id = post.id, title = "final" }, c:get("/posts/" .. post.id):json())
    end)

    it("PATCH changes the fields it sends and keeps the others", function()
      local c = api()
      local post = new_post { title = "draft", body = "text" }
      local r = c:patch("/posts/" .. post.id, { json = { title = "final" } })
      assert.are.equal(200, r.status)
      assert.are.same({ id = post.id, title = "final", body = "text" }, c:get("/posts/" .. post.id):json())
    end)
  end)

  describe("filter", function()
    it("?author=Gibson keeps only the records whose field equals the value", function()
      local c = api()
      local books = c:get("/books", { params = { author = "Gibson" } }):json()
      assert.are.same({ DB.books[2], DB.books[3] }, books)
    end)

    it("_sort=year&_order=desc orders the records by a field, newest first", function()
      local c = api()
      local books = c:get("/books", { params = { _sort = "year", _order = "desc" } }):json()
      assert.are.same({ DB.books[3], DB.books[2], DB.books[1] }, books)
    end)

    it("_limit=2 returns the first two records and X-Total-Count the total", function()
      local c = api()
      local r = c:get("/books", { params = { _limit = 2 } })
      assert.are.same({ DB.books[1], DB.books[2] }, r:json())
      assert.are.equal("3", r.headers["X-Total-Count"])
    end)
  end)

  describe("delete", function()
    it("DELETE removes a record: 200, then reading it is a 404", function()
      local c = api()
      local post = new_post { title = "short-lived" }
      assert.are.equal(200, c:delete("/posts/" .. post.id).status)
      assert.are.equal(404, c:get("/posts/" .. post.id).status)
    end)
  end)

  describe("404s", function()
    it("GET of an id that does not exist", function()
      local c = api()
      assert.are.equal(404, c:get("/books/999").status)
    end)

    it("PUT of an id that does not exist", function()
      local c = api()
      assert.are.equal(404, c:put("/books/999", { json = { title = "x" } }).status)
    end)

    it("PATCH of an id that does not exist", function()
      local c = api()
      assert.are.equal(404, c:patch("/books/999", { json = { title = "x" } }).status)
    end)

    it("DELETE of an id that does not exist", function()
      local c = api()
      assert.are.equal(404, c:delete("/books/999").status)
    end)

    it("GET of a collection that does not exist", function()
      local c = api()
      assert.are.equal(404, c:get("/authors").status)
    end)
  end)
end)
