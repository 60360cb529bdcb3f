-- sonde.lib.stamp: what stamps an event or a report: random ids (UUID v4) and
-- times (RFC 3339), shared by sonde.events and sonde.livecheck.
local bit = require("bit")

local M = {}

local format, byte, floor, concat = string.format, string.byte, math.floor, table.concat

-- --------------------------------------------------------------- UUID v4

local HEX = {}
for i = 0, 255 do HEX[i] = format("%02x", i) end

-- Random bytes come from /dev/urandom in blocks, so ids stay unique even when
-- a test seeds math.random (the runner's --seed does).
local pool, pool_pos = "", 1
local POOL_SIZE = 65536

local function refill()
  local f, bytes = io.open("/dev/urandom", "rb"), nil
  if f then
    bytes = f:read(POOL_SIZE)
    f:close()
  end
  if not bytes or #bytes < POOL_SIZE then -- no /dev/urandom: still unique enough for tests
    local t = {}
    for i = 1, POOL_SIZE do t[i] = string.char(math.random(0, 255)) end
    bytes = concat(t)
  end
  pool, pool_pos = bytes, 1
end

local bor, band = bit.bor, bit.band

-- uuid4() -> a random (version 4, RFC 4122 variant) UUID string.
function M.uuid4()
  if pool_pos + 15 > #pool then refill() end
  local i = pool_pos
  pool_pos = i + 16
  local b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16 = byte(pool, i, i + 15)
  return HEX[b1] .. HEX[b2] .. HEX[b3] .. HEX[b4] .. "-" .. HEX[b5] .. HEX[b6] .. "-"
    .. HEX[bor(band(b7, 0x0f), 0x40)] .. HEX[b8] .. "-" .. HEX[bor(band(b9, 0x3f), 0x80)] .. HEX[b10] .. "-"
    .. HEX[b11] .. HEX[b12] .. HEX[b13] .. HEX[b14] .. HEX[b15] .. HEX[b16]
end

-- ------------------------------------------------------------- timestamps

local last_second, last_prefix
local DIGITS3 = {} -- "000" .. "999", so formatting needs no string.format
for i = 0, 999 do DIGITS3[i] = format("%03d", i) end

-- rfc3339(epoch_seconds) -> "2024-05-01T12:00:00.250000Z" (UTC, microseconds).
function M.rfc3339(t)
  local second = floor(t)
  if second ~= last_second then
    last_second, last_prefix = second, os.date("!%Y-%m-%dT%H:%M:%S", second)
  end
  local micros = floor((t - second) * 1e6 + 0.5)
  if micros > 999999 then micros = 999999 end
  local ms = floor(micros / 1000)
  return last_prefix .. "." .. DIGITS3[ms] .. DIGITS3[micros - ms * 1000] .. "Z"
end

function M.is_rfc3339(s)
  local rest = s:match("^%d%d%d%d%-%d%d%-%d%d[Tt ]%d%d:%d%d:%d%d(.*)$")
  if not rest then return false end
  rest = rest:gsub("^%.%d+", "")
  return rest == "Z" or rest == "z" or rest:match("^[+-]%d%d:%d%d$") ~= nil
end

M.UUID_PATTERN = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

return M
