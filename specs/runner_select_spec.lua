-- Selection and control: --shuffle/--seed, --repeat, --retries with flaky
-- reporting, --shard K/N with and without --shard-durations, and the one
-- clear line each bad option gets.
local cjson = require("cjson")
local support = require("specs.support")

local sonde, fixture = support.sonde, support.fixture

-- Test names of a TAP run, in order.
local function tap_names(out) return (select(2, support.tap(out))) end

local function run_names(...)
  local code, out, err = sonde("test", "-o", "tap", ...)
  return tap_names(out), code, out, err
end

-- "file:line: name" lines of --list, as a set and a count.
local function listed(...)
  local code, out = sonde("test", "--list", ...)
  assert.are.equal(0, code, out)
  local set, n = {}, 0
  for line in out:gmatch("[^\n]+") do
    set[line] = true
    n = n + 1
  end
  return set, n
end

local MANY = fixture("runner/many.lua")

describe("--shuffle and --seed", function()
  it("the same seed gives the same order, another seed another", function()
    local a = run_names("--seed", "1", MANY)
    local b = run_names("--seed", "1", MANY)
    local c = run_names("--seed", "2", MANY)
    local plain = run_names(MANY)
    assert.are.equal(20, #a)
    assert.are.same(a, b)
    assert.are_not.same(a, c)
    assert.are_not.same(a, plain)
    table.sort(a)
    table.sort(plain)
    assert.are.same(plain, a)
  end)

  it("tests stay inside their describe", function()
    local names = run_names("--seed", "7", MANY)
    local first_block = names[1]:match("^block %d")
    for i = 1, 10 do assert.matches("^" .. first_block, names[i]) end
  end)

  it("--shuffle prints the seed it drew, and that seed replays the order", function()
    local names, _, out = run_names("--shuffle", MANY)
    local seed = out:match("# seed (%d+)")
    assert.is_not_nil(seed)
    assert.are.same(names, (run_names("--seed", seed, MANY)))
    local _, human = sonde("test", "--shuffle", MANY)
    assert.matches("^Randomized with seed %d+ %(replay with %-%-seed %d+%)\n", human)
  end)

  it("--interleave's hint replays with --interleave too; randomize() alone reports the seed it drew", function()
    local _, human = sonde("test", "--interleave", MANY)
    assert.matches("^Randomized with seed %d+ %(replay with %-%-interleave %-%-seed %d+%)\n", human)
    local dir = support.temp_dir()
    support.write_file(dir .. "/r_spec.lua",
        'describe("r", function() randomize() for i = 1, 5 do it("t" .. i, function() end) end end)\n')
    local code, out = sonde("test", dir .. "/r_spec.lua")
    assert.are.equal(0, code)
    assert.matches("; seed %d+\n", out)
  end)

  it("--jobs keeps the order a serial run with the same seed has", function()
    local files = { MANY, fixture("runner/hooks.lua"), fixture("runner/tags.lua") }
    assert.are.same(run_names("--seed", "5", unpack(files)), (run_names("--seed", "5", "--jobs", "2", unpack(files))))
  end)
end)

describe("--repeat", function()
  it("runs everything N times, each result named with its round", function()
    local names, code = run_names("--repeat", "3", fixture("runner/hooks.lua"))
    assert.are.equal(0, code)
    assert.are.same({ "outer first [1/3]", "outer inner second [1/3]", "outer third [1/3]",
      "outer first [2/3]", "outer inner second [2/3]", "outer third [2/3]",
      "outer first [3/3]", "outer inner second [3/3]", "outer third [3/3]" }, names)
  end)
end)

describe("--retries", function()
  it("without retries a flaky test fails", function()
    local _, code, out = run_names(fixture("runner/flaky.lua"))
    assert.are.equal(1, code)
    assert.matches("not ok 2 %- is flaky", out)
  end)

  it("a test that fails then passes is flaky, not passed, and does not fail the run", function()
    local code, out = sonde("test", "--retries", "2", "--filter", "flaky", fixture("runner/flaky.lua"))
    assert.are.equal(0, code, out)
    assert.matches("FLAKY 1%) is flaky", out)
    assert.matches("\n0 passed, 0 failed\n$", out)
  end)

  it("--fail-on-flaky makes a flaky test fail the run", function()
    local code, out = sonde("test", "--retries", "2", "--fail-on-flaky", "--filter", "flaky",
        fixture("runner/flaky.lua"))
    assert.are.equal(1, code)
    assert.matches("\n0 passed, 1 failed\n$", out)
  end)

  it("a test failing every attempt keeps them all", function()
    local code, out = sonde("test", "--retries", "2", "--filter", "always", fixture("runner/flaky.lua"))
    assert.are.equal(1, code)
    assert.matches("attempt 1: .*attempt 2: ", out)
  end)
end)

describe("--shard", function()
  local files = { MANY, fixture("runner/outcomes.lua"), fixture("runner/tags.lua") }

  it("splits the suite into disjoint shards whose union is the whole", function()
    local whole, total = listed(unpack(files))
    local seen, n = {}, 0
    for k = 1, 3 do
      local part, count = listed("--shard", k .. "/3", unpack(files))
      assert.is_true(count > 0, "shard " .. k .. " is empty")
      for line in pairs(part) do
        assert.is_nil(seen[line], line .. " is in two shards")
        assert.is_true(whole[line], line)
        seen[line] = true
      end
      n = n + count
    end
    assert.are.equal(total, n)
  end)

  it("is the same split every time and for ./-prefixed paths", function()
    local a = listed("--shard", "2/3", unpack(files))
    local b = listed("--shard", "2/3", "./" .. MANY, "./" .. fixture("runner/outcomes.lua"),
      "./" .. fixture("runner/tags.lua"))
    local names_a, names_b = {}, {}
    for line in pairs(a) do names_a[#names_a + 1] = line:gsub("^%./", "") end
    for line in pairs(b) do names_b[#names_b + 1] = line:gsub("^%./", "") end
    table.sort(names_a)
    table.sort(names_b)
    assert.are.same(names_a, names_b)
  end)

  it("with --shard-durations deals the longest tests out first to the emptiest shard", function()
    local report = os.tmpname()
    finally(function() os.remove(report) end)
    local sections = {}
    for b = 1, 2 do
      for i = 1, 10 do
        local ms = (b == 1 and i == 1) and 10000 or 100
        sections[#sections + 1] = { name = "block " .. b .. " test " .. i, file = MANY, duration_ms = ms,
            passed = true }
      end
    end
    local f = assert(io.open(report, "w"))
    f:write(cjson.encode({ passed = true, total_duration_ms = 0, total_requests = 0, sections = sections }))
    f:close()
    local parts, total = {}, 0
    for k = 1, 2 do
      local set, n = listed("--shard", k .. "/2", "--shard-durations", report, MANY)
      parts[k], total = set, total + n
    end
    assert.are.equal(20, total)
    local long = MANY .. ":4: block 1 test 1"
    local with_long = parts[1][long] and parts[1] or parts[2]
    assert.is_true(with_long[long])
    local count = 0
    for _ in pairs(with_long) do count = count + 1 end
    assert.are.equal(1, count) -- 10 s alone against 19 x 0.1 s
  end)
end)

describe("bad options", function()
  local cases = {
    { { "--shard", "0/2" }, "--shard expects K/N with 1 <= K <= N (for example 2/4), got '0/2'" },
    { { "--shard", "3/2" }, "--shard expects K/N with 1 <= K <= N (for example 2/4), got '3/2'" },
    { { "--shard", "x/y" }, "--shard expects K/N with 1 <= K <= N (for example 2/4), got 'x/y'" },
    { { "--jobs", "0" }, "--jobs expects a whole number of at least 1, got '0'" },
    { { "--repeat", "0" }, "--repeat expects a whole number of at least 1, got '0'" },
    { { "--retries", "-1" }, "--retries expects a whole number of at least 0, got '-1'" },
    { { "--seed", "1.5" }, "--seed expects a whole number of at least 0, got '1.5'" },
    { { "--seed", "1e20" }, "--seed expects a number no larger than 2147483647, got '1e20'" },
    { { "--timeout", "1e300" }, "--timeout expects a number no larger than 1000000000, got '1e300'" },
    { { "--shard-durations", "r.json" }, "--shard-durations needs --shard K/N" },
    { { "--shard", "1/2", "--shard-durations", "/nonexistent/r.json" },
      "--shard-durations: cannot read /nonexistent/r.json: No such file or directory" },
    { { "--shard", "1/2", "--shard-durations", "specs/fixtures/runner/many.lua" },
      "--shard-durations: specs/fixtures/runner/many.lua is not a json report of sonde test" },
    { { "--filter", "[" }, "--filter expects a Lua pattern, got '['" },
    { { "--filter", "test [" }, "--filter expects a Lua pattern, got 'test [': missing ']'" },
    { { "--filter-out", "%" }, "--filter-out expects a Lua pattern, got '%': ends with '%'" },
    { { "--pattern", "_spec(" }, "--pattern expects a Lua pattern, got '_spec(': unfinished capture" },
    { { "--output", "xml" },
      "unknown reporter 'xml' (expected one of: human, tap, junit, json, table, html, or busted's utfTerminal, "
        .. "plainTerminal, gtest, TAP)" },
    { { "--output", "junit=/nonexistent/dir/r.xml" }, "cannot write the junit report: /nonexistent/dir/r.xml" },
  }
  for _, c in ipairs(cases) do
    it("rejects " .. table.concat(c[1], " ") .. " with one line, exit 2", function()
      local args = { "test" }
      for _, a in ipairs(c[1]) do args[#args + 1] = a end
      args[#args + 1] = MANY
      local code, out, err = sonde(unpack(args))
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.matches("^sonde test: [^\n]*\n$", err)
      assert.matches(c[2], err, 1, true)
    end)
  end
end)
