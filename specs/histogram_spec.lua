-- sonde.c.histogram: the log-linear histogram behind `sonde load`'s
-- percentiles, checked against exact percentiles of sorted values.
local H = require("sonde.c.histogram")

-- k6's percentile of sorted values: rank q*(n-1), interpolated.
local function exact(sorted, q)
  local r = q * (#sorted - 1)
  local lo, hi = math.floor(r), math.ceil(r)
  return sorted[lo + 1] + (sorted[hi + 1] - sorted[lo + 1]) * (r - lo)
end

local QUANTILES = { 0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1 }
local BOUND = 1 / 128 -- half a bucket's width over its lower edge

-- record(values) -> a histogram of them, and the values sorted
local function record(values)
  local h, sorted = H.new(), {}
  for i, v in ipairs(values) do
    h:record(v)
    sorted[i] = v
  end
  table.sort(sorted)
  return h, sorted
end

local function assert_close(h, sorted, what)
  for _, q in ipairs(QUANTILES) do
    local got, want = h:quantile(q), exact(sorted, q)
    local err = math.abs(got - want) / math.max(math.abs(want), 1e-300)
    if err > BOUND then
      error(string.format("%s: quantile %g is %.17g, exact %.17g (relative error %g > %g)", what, q, got, want, err,
        BOUND), 2)
    end
  end
end

local function generate(n, seed, draw)
  math.randomseed(seed)
  local xs = {}
  for i = 1, n do xs[i] = draw(i) end
  return xs
end

describe("sonde.c.histogram", function()
  it("reads percentiles within 1/128 of the exact ones, with exact count, min, max and sum", function()
    local sets = {
      uniform = generate(20000, 1, function() return math.random() * 1000 end),
      exponential = generate(20000, 2, function() return -math.log(1 - math.random()) * 5 end),
      wide = generate(20000, 3, function() return math.exp(math.random() * 40 - 20) end),
      ties = generate(5000, 4, function(i) return (i % 7) * 0.25 + 1 end),
      latency_ms = generate(30000, 5, function() return 0.05 + math.random() ^ 8 * 900 end),
    }
    for name, xs in pairs(sets) do
      local h, sorted = record(xs)
      assert_close(h, sorted, name)
      local count, min, max, sum = h:stats()
      local want = 0
      for _, v in ipairs(xs) do want = want + v end
      assert.are.equal(#xs, count)
      assert.are.equal(sorted[1], min)
      assert.are.equal(sorted[#sorted], max)
      assert.is_true(math.abs(sum - want) <= 1e-9 * math.abs(want), name .. ": sum " .. sum .. " vs " .. want)
    end
  end)

  it("reads negative values and zeros in order", function()
    local xs = generate(10001, 6, function(i) return i % 3 == 0 and 0 or (math.random() - 0.5) * 200 end)
    local h, sorted = record(xs)
    for _, q in ipairs(QUANTILES) do
      local got, want = h:quantile(q), exact(sorted, q)
      -- near zero a relative bound means little: an absolute one of a bucket there
      assert.is_true(math.abs(got - want) <= BOUND * math.abs(want) + 1e-9,
        string.format("quantile %g: %.17g vs %.17g", q, got, want))
    end
  end)

  it("is exact for one and two values, and 0 when empty", function()
    local h = H.new()
    assert.are.equal(0, h:quantile(0.5))
    h:record(7.3)
    assert.are.equal(7.3, h:quantile(0.5))
    assert.are.equal(7.3, h:quantile(0.99))
    h:record(1.1)
    assert.are.equal(1.1, h:quantile(0))
    assert.are.equal(7.3, h:quantile(1))
    assert.is_true(math.abs(h:quantile(0.5) - 4.2) < 1e-12) -- between min and max, as k6 interpolates
  end)

  it("merges as the union of the values: the same buckets as one histogram of both", function()
    local a_values = generate(7000, 7, function() return math.random() * 50 end)
    local b_values = generate(9000, 8, function() return math.random() * 500 + 20 end)
    local both = {}
    for _, v in ipairs(a_values) do both[#both + 1] = v end
    for _, v in ipairs(b_values) do both[#both + 1] = v end
    local whole, sorted = record(both)
    local a, b = record(a_values), record(b_values)
    a:merge(b)
    local merged, direct = a:dump(), whole:dump()
    assert.are.same(direct.buckets, merged.buckets)
    assert.are.equal(direct.count, merged.count)
    assert.are.equal(direct.min, merged.min)
    assert.are.equal(direct.max, merged.max)
    for _, q in ipairs(QUANTILES) do assert.are.equal(whole:quantile(q), a:quantile(q)) end
    assert_close(a, sorted, "merged")
  end)

  it("dumps to a table that loads back to the same histogram", function()
    local h = record(generate(3000, 9, function() return math.random() * 10 - 2 end))
    local back = H.load(h:dump())
    assert.are.same(h:dump(), back:dump())
    for _, q in ipairs(QUANTILES) do assert.are.equal(h:quantile(q), back:quantile(q)) end
  end)

  it("keeps memory constant: a million distinct values in one power of two use at most 64 buckets", function()
    local h = H.new()
    for i = 1, 1000000 do h:record(1 + i / 1000001) end
    assert.is_true(#h:dump().buckets / 2 <= 64)
    assert.are.equal(1000000, (h:stats()))
  end)

  it("refuses what is no value, count or quantile, and a dump that does not add up", function()
    local h = H.new()
    assert.has_error(function() h:record(0 / 0) end, "histogram: cannot record nan (expected a finite number)")
    assert.has_error(function() h:record(math.huge) end, "histogram: cannot record inf (expected a finite number)")
    assert.has_error(function() h:record(1, 1.5) end, "histogram: a count must be a whole number >= 0")
    assert.has_error(function() h:quantile(1.5) end, "histogram: a quantile must be from 0 to 1, got 1.5")
    assert.has_error(function() H.load({ count = 2, min = 1, max = 1, sum = 2, buckets = { 5, 1 } }) end,
      "histogram.load: the buckets do not add up to its count")
    assert.has_error(function() H.load({ count = 1, min = 1, max = 1, sum = 1, buckets = { 1e9, 1 } }) end)
    h:close()
    assert.has_error(function() h:record(1) end, "histogram already closed")
  end)
end)
