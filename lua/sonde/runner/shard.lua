-- sonde.runner.shard: which tests a shard runs (--shard K/N), and the
-- seeded shuffling of --shuffle/--seed.
--
-- A test belongs to shard hash(file, full name) mod N + 1, so N machines
-- given the same files split them without talking to each other: the
-- shards are disjoint and their union is the whole suite, and the split
-- does not move when unrelated tests are added. With --shard-durations (a
-- previous `json` report), the tests that report knows are dealt out
-- longest first to the shard with the least time so far (LPT), which every
-- machine computes alike from the same report; tests it does not know fall
-- back to the hash.
local cjson = require("cjson")

local M = {}

local hash64 = require("sonde.c.loop").hash64
local read_file = require("sonde.lib.file").read

-- hash32(s) -> a non-negative 32-bit hash of s: the low half of the
-- host's MurmurHash64A (the chunk cache's hash), so there is one hash.
function M.hash32(s)
  return tonumber(hash64(s):sub(9), 16)
end

-- Paths as the user typed them may differ in a leading "./".
local function normal_path(path)
  return (path:gsub("^%./+", ""))
end

function M.key(file, full_name)
  return normal_path(file) .. "\0" .. full_name
end

-- parse("K/N") -> {k=, n=} | nil, message
function M.parse(text)
  local k, n = tostring(text):match("^(%d+)/(%d+)$")
  k, n = tonumber(k), tonumber(n)
  if not k or n < 1 or k < 1 or k > n then
    return nil, "--shard expects K/N with 1 <= K <= N (for example 2/4), got '" .. tostring(text) .. "'"
  end
  return { k = k, n = n }
end

-- durations(path) -> {key = seconds} | nil, message: from a json report.
function M.durations(path)
  local text, err = read_file(path)
  if not text then return nil, "--shard-durations: cannot read " .. err end
  local ok, report = pcall(cjson.decode, text)
  if not ok or type(report) ~= "table" or type(report.sections) ~= "table" then
    return nil, "--shard-durations: " .. path .. " is not a json report of sonde test (expected {\"sections\": [...]})"
  end
  local out = {}
  for _, s in ipairs(report.sections) do
    if type(s) == "table" and type(s.name) == "string" and type(s.file) == "string"
      and type(s.duration_ms) == "number" then
      local key = M.key(s.file, s.name)
      out[key] = math.max(out[key] or 0, s.duration_ms / 1000)
    end
  end
  return out
end

-- Longest first to the least loaded shard; ties by key and by shard number,
-- so every machine deals the same hand.
local function deal(durations, n)
  local keys = {}
  for key in pairs(durations) do keys[#keys + 1] = key end
  table.sort(keys, function(a, b)
    if durations[a] ~= durations[b] then return durations[a] > durations[b] end
    return a < b
  end)
  local load, assigned = {}, {}
  for i = 1, n do load[i] = 0 end
  for _, key in ipairs(keys) do
    local best = 1
    for i = 2, n do
      if load[i] < load[best] then best = i end
    end
    assigned[key] = best
    load[best] = load[best] + durations[key]
  end
  return assigned
end

-- selector(spec, durations) -> function(file, full_name) -> bool
function M.selector(spec, durations)
  local assigned = durations and deal(durations, spec.n) or {}
  return function(file, full_name)
    local key = M.key(file, full_name)
    local shard = assigned[key] or (M.hash32(key) % spec.n + 1)
    return shard == spec.k
  end
end

-- ---------------------------------------------------------------- shuffle

-- A Park-Miller generator: the same seed gives the same order on every
-- machine and is untouched by what tests do with math.random.
function M.random(seed)
  local state = seed % 2147483646 + 1
  return function(n)
    state = state * 16807 % 2147483647
    return state % n + 1
  end
end

-- shuffled(list, random) -> a shuffled copy (Fisher-Yates).
function M.shuffled(list, random)
  local out = {}
  for i = 1, #list do out[i] = list[i] end
  for i = #out, 2, -1 do
    local j = random(i)
    out[i], out[j] = out[j], out[i]
  end
  return out
end

-- seeded_random(seed, name, iteration): a generator that depends on these
-- alone, so a worker shuffles a block as a serial run does.
function M.seeded_random(seed, name, iteration)
  return M.random((seed + M.hash32(normal_path(name) .. "#" .. (iteration or 1))) % 2147483646)
end

return M
